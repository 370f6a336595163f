//! The example pgBackRest source (`examples/source-pgbackrest`), a vendor
//! plugin written with the SDK alone, against a real pgBackRest repository of
//! a real PostgreSQL 15 primary: installed with `plugin install`, it clones a
//! standby that starts, replays from the repository and streams.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(90);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Lab {
    sc: Scratch,
    primary: Pg,
    /// pgBackRest's configuration file.
    pbr_conf: PathBuf,
    plugins: PathBuf,
}

fn pgbackrest(lab: &Lab, args: &[&str]) -> String {
    run_ok(
        as_pg("pgbackrest")
            .arg(format!("--config={}", lab.pbr_conf.display()))
            .arg("--stanza=demo")
            .args(args),
    )
}

/// A primary archiving into a pgBackRest repository, with a tablespace, one
/// full backup, and rows written after it.
fn lab(name: &str) -> Lab {
    let sc = Scratch::new(name);
    let primary = Pg::init(&sc, "primary");
    for d in ["repo", "log", "lock", "spool"] {
        sc.mkdir(&format!("pbr/{d}"));
    }
    let pbr_conf = sc.write(
        "pbr/pgbackrest.conf",
        &format!(
            "[global]\nrepo1-path={d}/repo\nrepo1-retention-full=2\nlog-path={d}/log\nlock-path={d}/lock\n\
             spool-path={d}/spool\nlog-level-console=warn\nstart-fast=y\ncompress-type=lz4\n\n\
             [demo]\npg1-path={data}\npg1-port={port}\npg1-socket-path={sock}\n",
            d = sc.path("pbr").display(),
            data = primary.data.display(),
            port = primary.port,
            sock = primary.socket_dir.display(),
        ),
    );
    primary.append_conf(&format!(
        "archive_mode = on\narchive_command = 'pgbackrest --config={} --stanza=demo archive-push %p'\n",
        pbr_conf.display()
    ));
    let mut lab = Lab {
        plugins: sc.path("etc/plugins.toml"),
        sc,
        primary,
        pbr_conf,
    };
    lab.primary.start();
    let ts = lab.sc.mkdir("ts_primary");
    lab.primary
        .sql(&format!("CREATE TABLESPACE ts LOCATION '{}'", ts.display()));
    lab.primary
        .sql("CREATE TABLE t(i int); INSERT INTO t SELECT generate_series(1, 1000)");
    lab.primary
        .sql("CREATE TABLE tt(i int) TABLESPACE ts; INSERT INTO tt SELECT generate_series(1, 300)");
    pgbackrest(&lab, &["stanza-create"]);
    pgbackrest(&lab, &["backup", "--type=full"]);
    lab.primary
        .sql("INSERT INTO t SELECT generate_series(1001, 2000)");
    lab
}

impl Lab {
    fn conf(&self, stanza: &str) -> PathBuf {
        self.conf_with(stanza, "")
    }

    /// The node's configuration, with `extra` lines.
    fn conf_with(&self, stanza: &str, extra: &str) -> PathBuf {
        self.sc.write(
            "pgclone.conf",
            &format!(
                "node_id=2\nnode_name=node2\nbackup_source=pgbackrest\npgbackrest_stanza={stanza}\n\
                 pgbackrest_config='{conf}'\ntablespace_mapping='{ts}={ts_standby}'\nplugins_config='{plugins}'\n\
                 restore_command='pgbackrest --config={conf} --stanza={stanza} archive-get %f \"%p\"'\n{extra}",
                conf = self.pbr_conf.display(),
                ts = self.sc.path("ts_primary").display(),
                ts_standby = self.sc.path("ts_standby").display(),
                plugins = self.plugins.display(),
            ),
        )
    }

    fn clone(&self, cfg: &Path, target: &Path) -> std::process::Output {
        standby_clone(&self.sc, cfg, &self.primary, target, &[], &[])
    }

    fn install(&self, cfg: &Path, extra: &[&str]) -> std::process::Output {
        let wasm = self.sc.path("pgbackrest-source.wasm");
        std::fs::copy(component("example_source_pgbackrest"), &wasm).unwrap();
        let mut args = vec!["-f", s(cfg), "plugin", "install", s(&wasm)];
        args.extend(extra);
        pgclone(&self.sc, &args, &[])
    }
}

#[test]
fn a_pgbackrest_backup_becomes_a_streaming_standby() {
    let lab = lab("pbrclone");
    let cfg = lab.conf("demo");
    let out = lab.install(&cfg, &["--grant-all"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    assert!(text.contains("local-run:pgbackrest"), "{text}");
    assert!(
        text.contains("HINT: set backup_source=pgbackrest"),
        "{text}"
    );

    let target = lab.sc.path("standby");
    let out = lab.clone(&cfg, &target);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("\"pgbackrest\" backup 2"), "{err}");
    assert!(
        err.contains("standby clone (from backup source \"pgbackrest\") complete"),
        "{err}"
    );
    // pgclone's policy wrote the recovery configuration, not pgBackRest.
    let auto = std::fs::read_to_string(target.join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("application_name=node2"), "{auto}");
    assert!(!auto.contains("generated by pgBackRest"), "{auto}");
    assert!(target.join("standby.signal").exists());
    let link = std::fs::read_link(
        target
            .join("pg_tblspc")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    assert_eq!(link, lab.sc.path("ts_standby"));

    let mut st = Pg::existing(&lab.sc, target);
    st.start();
    st.wait_for("SELECT count(*) FROM t", "2000", WAIT);
    st.wait_for("SELECT count(*) FROM tt", "300", WAIT);
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    lab.primary.sql("INSERT INTO t VALUES (2001)");
    st.wait_for("SELECT count(*) FROM t", "2001", WAIT);
}

/// The repository on another host (sshd on loopback, logged in as
/// postgres): the source declares the ssh target `pgbackrest-repo`, mapped
/// from `pgbackrest_repo_host`, and gets what a clone from Barman gets: one
/// shared ssh connection to it, opened by the clone, that its `pgbackrest
/// info` calls go through.
#[test]
fn a_repository_host_is_reached_through_the_clone_s_shared_connection() {
    if !is_root() {
        eprintln!("skipped: sshd needs root");
        return;
    }
    let lab = lab("pbrssh");
    let sshd = support::barman::Sshd::start_for(&lab.sc, &std::env::var("PATH").unwrap(), true);
    let ssh_config = lab.sc.write(
        "ssh/ssh_config_repo",
        &format!(
            "Host pbrrepo\n  HostName 127.0.0.1\n  Port {}\n  User postgres\n  IdentityFile {}\n  \
             StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
            sshd.port,
            lab.sc.path("ssh/client_key").display()
        ),
    );
    run_ok(
        std::process::Command::new("chown")
            .arg("postgres:postgres")
            .arg(&ssh_config),
    );
    let cfg = lab.conf_with(
        "demo",
        &format!(
            "pgbackrest_repo_host=pbrrepo\nssh_options='-F {}'\n",
            ssh_config.display()
        ),
    );
    let out = lab.install(&cfg, &["--grant-all"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let target = lab.sc.path("standby");
    let out = standby_clone(&lab.sc, &cfg, &lab.primary, &target, &["-v"], &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("\"pgbackrest\" backup 2"), "{err}");
    assert!(
        err.contains("NOTICE: retrieving backup from backup source \"pgbackrest\"..."),
        "{err}"
    );
    assert!(
        err.contains("standby clone (from backup source \"pgbackrest\") complete"),
        "{err}"
    );
    let ssh: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("DEBUG: running ssh "))
        .collect();
    let master: Vec<&&str> = ssh
        .iter()
        .filter(|l| l.contains("ControlMaster=yes"))
        .collect();
    assert_eq!(master.len(), 1, "{ssh:#?}");
    assert!(
        master[0].contains("ssh-master-pgbackrest-repo") && master[0].contains(" pbrrepo"),
        "{}",
        master[0]
    );
    // Every `pgbackrest info` (the latest set, then that set) went through it.
    let info: Vec<&&str> = ssh
        .iter()
        .filter(|l| l.contains(" pgbackrest ") && l.contains(" info "))
        .collect();
    assert!(info.len() >= 2, "{ssh:#?}");
    for l in info {
        assert!(
            l.contains("ControlMaster=no") && l.contains("ssh-master-pgbackrest-repo"),
            "{l}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(target.join("PG_VERSION")).unwrap(),
        "15\n"
    );
}

#[test]
fn pgbackrest_errors_are_clear_and_change_nothing() {
    let lab = lab("pbrerrors");
    let target = lab.sc.path("standby");

    // Installed without grants: refused until granted, before anything runs.
    let cfg = lab.conf("demo");
    let out = lab.install(&cfg, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("NOT granted"), "{}", stdout(&out));
    let out = lab.clone(&cfg, &target);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("local-run:pgbackrest"), "{err}");
    assert!(!target.exists(), "{err}");

    // A stanza the repository does not have.
    lab.install(&cfg, &["--grant-all"]);
    let cfg = lab.conf("nosuch");
    let out = lab.clone(&cfg, &target);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("pgBackRest has no stanza \"nosuch\""), "{err}");
    assert!(!target.exists(), "{err}");

    // A backup set that does not exist.
    let cfg = lab.conf("demo");
    let out = standby_clone(
        &lab.sc,
        &cfg,
        &lab.primary,
        &target,
        &["--backup-id", "20200101-000000F"],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no such backup set"), "{err}");
    assert!(!target.exists(), "{err}");
}

/// Makes the standby in `target` an archive-recovery standby: no
/// primary_conninfo, WAL only from `pgclone wal-restore` through the
/// plugin (contract 1.2.0's `locate-wal-archive`: `pgbackrest archive-get`).
fn wal_from_pgclone(lab: &Lab, cfg: &Path, target: &Path) {
    let auto = std::fs::read_to_string(target.join("postgresql.auto.conf")).unwrap();
    let mut auto: String = auto
        .lines()
        .filter(|l| !l.starts_with("primary_conninfo") && !l.starts_with("restore_command"))
        .map(|l| format!("{l}\n"))
        .collect();
    auto.push_str(&format!(
        "restore_command = '{} -f {} wal-restore --spool-dir {} %f %p'\n",
        env!("CARGO_BIN_EXE_pgclone"),
        cfg.display(),
        lab.sc.path("walspool").display()
    ));
    std::fs::write(target.join("postgresql.auto.conf"), auto).unwrap();
    run_ok(
        std::process::Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(target),
    );
}

/// `pgclone wal-restore` as the postgres user, with the node's configuration.
fn wal_restore(lab: &Lab, cfg: &Path, args: &[&str]) -> std::process::Output {
    let spool = lab.sc.path("walspool");
    let mut all = vec!["-f", s(cfg), "wal-restore", "--spool-dir", s(&spool)];
    all.extend(args);
    pgclone(&lab.sc, &all, &[])
}

#[test]
fn a_pgbackrest_standby_replays_wal_fetched_by_wal_restore() {
    let lab = lab("pbrwal");
    let cfg = lab.conf("demo");
    let out = lab.install(&cfg, &["--grant-all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let target = lab.sc.path("standby");
    let out = lab.clone(&cfg, &target);
    assert!(out.status.success(), "{}", stderr(&out));
    wal_from_pgclone(&lab, &cfg, &target);
    // WAL written since the backup, archived by pgBackRest only.
    for i in 2001..=2004 {
        lab.primary.sql(&format!(
            "INSERT INTO t VALUES ({i}); SELECT pg_switch_wal()"
        ));
    }
    lab.primary.sql("INSERT INTO t VALUES (2005)");
    let last = lab
        .primary
        .sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    lab.primary.sql("SELECT pg_switch_wal()");
    lab.primary.sql("CHECKPOINT");
    let t0 = std::time::Instant::now();
    while !pgbackrest(&lab, &["info", "--output=json"]).contains(&format!("\"max\":\"{last}\"")) {
        assert!(t0.elapsed() < WAIT, "{last} was never archived");
        std::thread::sleep(Duration::from_millis(200));
    }

    // -t: the source says where its WAL is.
    let out = wal_restore(&lab, &cfg, &["-t"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "Ready to retrieve WAL files from source \"pgbackrest\" (fetched with pgbackrest)"
        ),
        "{}",
        stdout(&out)
    );

    let mut st = Pg::existing(&lab.sc, target);
    st.start();
    st.wait_for("SELECT count(*) FROM t", "2005", WAIT);
    assert_eq!(st.sql("SELECT count(*) FROM pg_stat_wal_receiver"), "0");
    assert_eq!(st.sql("SELECT count(*) FROM tt"), "300");
    let log = std::fs::read_to_string(&st.log).unwrap();
    assert!(
        log.contains(&format!("restored log file \"{last}\" from archive")),
        "{log}"
    );
    // Delivered from the source's own spool directory: the prefetcher ran
    // pgbackrest archive-get ahead of PostgreSQL.
    let sources: Vec<String> = std::fs::read_dir(lab.sc.path("walspool"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        sources.len() == 1 && sources[0].starts_with("pgbackrest-"),
        "{sources:?}"
    );
    st.stop();

    // What the archive does not have: "not there" (1), nothing written.
    let dest = lab.sc.path("RECOVERYXLOG");
    let out = wal_restore(
        &lab,
        &cfg,
        &["-p", "0", "0000000100000000000000F0", s(&dest)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!dest.exists());
    // The timeline history file of a timeline that never was: the same.
    let out = wal_restore(&lab, &cfg, &["-p", "0", "0000000F.history", s(&dest)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // A name that is no WAL file name never reaches pgbackrest.
    let out = wal_restore(&lab, &cfg, &["-p", "0", "--stanza=x", s(&dest)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // A source without WAL is refused, clearly, and nothing is written.
    let out = wal_restore(
        &lab,
        &cfg,
        &[
            "--source",
            "pg-basebackup",
            "000000010000000000000003",
            s(&dest),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("plugin \"pg-basebackup\" does not supply WAL"),
        "{err}"
    );
    assert!(err.contains("HINT:"), "{err}");
    assert!(!dest.exists());
}
