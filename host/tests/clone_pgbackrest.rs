//! The example pgBackRest source (`examples/source-pgbackrest`), a vendor
//! plugin written with the SDK alone, against a real pgBackRest repository of
//! a real PostgreSQL 15 primary: installed with `plugin install`, it clones a
//! standby that starts, replays from the repository and streams.

mod support;

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
        self.sc.write(
            "pgclone.conf",
            &format!(
                "node_id=2\nnode_name=node2\nbackup_source=pgbackrest\npgbackrest_stanza={stanza}\n\
                 pgbackrest_config='{conf}'\ntablespace_mapping='{ts}={ts_standby}'\nplugins_config='{plugins}'\n\
                 restore_command='pgbackrest --config={conf} --stanza={stanza} archive-get %f \"%p\"'\n",
                conf = self.pbr_conf.display(),
                ts = self.sc.path("ts_primary").display(),
                ts_standby = self.sc.path("ts_standby").display(),
                plugins = self.plugins.display(),
            ),
        )
    }

    fn clone(&self, cfg: &Path, target: &Path) -> std::process::Output {
        let port = self.primary.port.to_string();
        pgclone(
            &self.sc,
            &[
                "-f",
                s(cfg),
                "standby",
                "clone",
                "-h",
                s(&self.primary.socket_dir),
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-D",
                s(target),
            ],
            &[],
        )
    }

    fn install(&self, cfg: &Path, extra: &[&str]) -> std::process::Output {
        let wasm = self.sc.path("pgbackrest-source.wasm");
        std::fs::copy(
            Path::new(pgclone::plugin::catalog::GUEST_DIR).join("example_source_pgbackrest.wasm"),
            &wasm,
        )
        .unwrap();
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
    let port = lab.primary.port.to_string();
    let out = pgclone(
        &lab.sc,
        &[
            "-f",
            s(&cfg),
            "standby",
            "clone",
            "-h",
            s(&lab.primary.socket_dir),
            "-p",
            &port,
            "-U",
            "postgres",
            "-D",
            s(&target),
            "--backup-id",
            "20200101-000000F",
        ],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no such backup set"), "{err}");
    assert!(!target.exists(), "{err}");
}
