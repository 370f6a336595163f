//! `pgclone standby clone` from Barman: real Barman (Debian's 3.4 and 3.19.1
//! with the new catalogue layout), a real sshd on loopback reached through a
//! Host block on a non-default port, real rsync, real PostgreSQL 15.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::barman::{barman_319, barman_34, Barman, IncrementalLab, Sshd};
use support::*;

const WAIT: Duration = Duration::from_secs(90);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A primary with a mapped tablespace, backed up by Barman, and rows written
/// after the backup (so the standby needs WAL from Barman).
struct Lab {
    sc: Scratch,
    primary: Pg,
    sshd: Sshd,
    barman: Barman,
    ts_map: String,
}

fn lab(name: &str, barman_bin: PathBuf) -> Lab {
    let sc = Scratch::new(name);
    let mut primary = Pg::init(&sc, "primary");
    primary.start();
    let ts = sc.mkdir("ts_primary");
    primary.sql(&format!("CREATE TABLESPACE ts LOCATION '{}'", ts.display()));
    primary.sql("CREATE TABLE t(i int); INSERT INTO t SELECT generate_series(1, 1000)");
    primary
        .sql("CREATE TABLE tt(i int) TABLESPACE ts; INSERT INTO tt SELECT generate_series(1, 300)");
    let path = format!("{}:/usr/bin:/bin", barman_bin.parent().unwrap().display());
    let sshd = Sshd::start(&sc, &path);
    let barman = Barman::setup(&sc, &primary, barman_bin);
    let ts_map = format!("{}={}", ts.display(), sc.path("ts_standby").display());
    Lab {
        sc,
        primary,
        sshd,
        barman,
        ts_map,
    }
}

impl Lab {
    /// A pgclone configuration for node 2, cloning from Barman.
    fn conf(&self, extra: &str) -> PathBuf {
        self.conf_for("pg", &self.ts_map, extra)
    }

    /// The same for Barman server `server`, with tablespace mapping `ts_map`.
    fn conf_for(&self, server: &str, ts_map: &str, extra: &str) -> PathBuf {
        let restore = format!(
            "ssh -F {} barmansrv barman -c {} get-wal {server} %f > %p",
            self.sshd.ssh_config.display(),
            self.barman.config.display()
        );
        self.conf_raw(
            server,
            ts_map,
            &format!("restore_command='{restore}'\n{extra}"),
        )
    }

    /// The same without restore_command: the standby can only stream.
    fn conf_without_restore_command(&self, extra: &str) -> PathBuf {
        self.conf_raw("pg", &self.ts_map, extra)
    }

    fn conf_raw(&self, server: &str, ts_map: &str, extra: &str) -> PathBuf {
        self.sc.write(
            "pgclone.conf",
            &format!(
                "node_id=2\nnode_name=node2\nbarman_host=barmansrv\nbarman_server={server}\nbarman_config='{}'\n\
                 ssh_options='-F {}'\ntablespace_mapping='{ts_map}'\n{extra}",
                self.barman.config.display(),
                self.sshd.ssh_config.display(),
            ),
        )
    }

    fn clone(&self, cfg: &Path, target: &Path, extra: &[&str]) -> std::process::Output {
        standby_clone(&self.sc, cfg, &self.primary, target, extra, &[])
    }
}

/// How a clone in `clone_replay_stream` is run.
#[derive(PartialEq)]
enum Variant {
    /// Plain, output captured.
    Plain,
    /// On a terminal (live progress), with `--waldir` in pg_basebackup_options.
    TerminalWaldir,
}

fn clone_replay_stream(name: &str, bin: PathBuf, variant: Variant) {
    let lab = lab(name, bin);
    let id = lab.barman.backup();
    // Written after the backup: only Barman's archive and streaming have it.
    lab.primary
        .sql("INSERT INTO t SELECT generate_series(1001, 3000)");
    lab.barman.archive_now();
    let waldir = lab.sc.path("standby_wal");
    let target = lab.sc.path("standby");
    let (out, err) = if variant == Variant::TerminalWaldir {
        let cfg = lab.conf(&format!(
            "pg_basebackup_options='--waldir={}'\n",
            waldir.display()
        ));
        let args = clone_args(&cfg, &lab.primary, &target, &[]);
        let out = pgclone_on_terminal(
            &lab.sc,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let text = stdout(&out);
        // The live line, redrawn in place: the backup's size is known.
        assert!(text.contains("copy ["), "{text:?}");
        assert!(text.contains("%), ") && text.contains(" left"), "{text:?}");
        assert!(text.contains("INFO: copy: "), "{text}");
        (out, text)
    } else {
        let out = lab.clone(&lab.conf(""), &target, &[]);
        let err = stderr(&out);
        (out, err)
    };
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("Barman backup {id}")), "{err}");
    assert!(
        err.contains("NOTICE: retrieving backup from Barman..."),
        "{err}"
    );
    assert!(
        err.contains("NOTICE: standby clone (from Barman) complete"),
        "{err}"
    );
    // A backup this small is copied with one stream, and the notice says why.
    assert!(
        err.contains("with 1 rsync stream (one per 512 MiB of the backup)"),
        "{err}"
    );
    let map = std::fs::read_to_string(target.join("tablespace_map")).unwrap();
    assert!(map.contains(s(&lab.sc.path("ts_standby"))), "{map}");
    assert!(target.join("pg_wal").is_dir() && target.join("pg_replslot").is_dir());
    if variant == Variant::TerminalWaldir {
        assert_eq!(std::fs::read_link(target.join("pg_wal")).unwrap(), waldir);
        assert!(waldir.join("archive_status").is_dir());
    }

    let mut st = Pg::existing(&lab.sc, target.clone());
    st.start();
    st.wait_for("SELECT count(*) FROM t", "3000", WAIT);
    st.wait_for("SELECT count(*) FROM tt", "300", WAIT);
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    let log = std::fs::read_to_string(&st.log).unwrap();
    assert!(
        log.contains("restored log file"),
        "the standby never replayed WAL from Barman:\n{log}"
    );
    lab.primary.sql("INSERT INTO t VALUES (3001)");
    st.wait_for("SELECT count(*) FROM t", "3001", WAIT);
    if variant == Variant::TerminalWaldir {
        let segments = std::fs::read_dir(&waldir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().len() == 24)
            .count();
        assert!(segments > 0, "the standby wrote no WAL into --waldir");
    }
}

#[test]
fn clone_from_barman_3_4_replays_from_barman_then_streams() {
    clone_replay_stream("barman34", barman_34(), Variant::Plain);
}

#[test]
fn clone_from_barman_3_19_with_the_new_catalogue_layout() {
    clone_replay_stream("barman319", barman_319(), Variant::TerminalWaldir);
}

#[test]
fn barman_errors_are_distinct_and_change_nothing() {
    let lab = lab("barmanerr", barman_34());
    let named = lab.barman.backup_with("pg", &["--name", "nightly"]);
    let target = lab.sc.path("standby");
    let base = |host: &str, server: &str| {
        format!(
            "node_id=2\nnode_name=node2\nbarman_host={host}\nbarman_server='{server}'\nbarman_config='{}'\nssh_options='-F {}'\n\
             tablespace_mapping='{}'\n",
            lab.barman.config.display(),
            lab.sshd.ssh_config.display(),
            lab.ts_map
        )
    };
    let case = |conf: &str, want: &[&str]| {
        let cfg = lab.sc.write("err.conf", conf);
        let out = lab.clone(&cfg, &target, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        for w in want {
            assert!(err.contains(w), "missing {w:?} in:\n{err}");
        }
        assert!(!target.exists(), "{err}");
    };
    case(
        &base("wrongport", "pg"),
        &[
            "could not connect to the Barman host \"wrongport\" over ssh",
            "Connection refused",
        ],
    );
    case(
        &base("barmansrv", "nosuch"),
        &["has no server \"nosuch\"", "Unknown server"],
    );
    case(
        &base("barmansrv", "empty"),
        &["Barman has no backup of server \"empty\""],
    );
    // A WAL directory inside the data directory, or not empty, is refused.
    std::fs::create_dir_all(lab.sc.path("walfull")).unwrap();
    std::fs::write(lab.sc.path("walfull/x"), "x").unwrap();
    case(
        &format!(
            "{}pg_basebackup_options='--waldir={}'\n",
            base("barmansrv", "pg"),
            lab.sc.path("walfull").display()
        ),
        &["WAL directory", "is not empty"],
    );
    case(
        &format!(
            "{}pg_basebackup_options='--waldir={}/pg_wal'\n",
            base("barmansrv", "pg"),
            target.display()
        ),
        &["is inside the data directory"],
    );
    // A hostile server name is one literal argument: an unknown server, nothing more.
    let _ = std::fs::remove_file("/tmp/pgclone-injected");
    case(
        &base("barmansrv", "pg;touch$IFS/tmp/pgclone-injected;"),
        &["has no server"],
    );
    assert!(
        !Path::new("/tmp/pgclone-injected").exists(),
        "the server name reached a shell"
    );
    // One of the two keys without the other.
    case(
        "node_id=2\nnode_name=node2\nbarman_host=barmansrv\n",
        &["barman_host and barman_server must be set together"],
    );

    // --backup-id takes Barman's backup names. Barman 3.4 looks a name up in
    // backup.info, but its `backup --name` (with backup_method = postgres)
    // does not write it there: put it where a later Barman writes it.
    let info = lab.barman.home.join(format!("pg/base/{named}/backup.info"));
    let text = std::fs::read_to_string(&info).unwrap();
    if !text.contains("backup_name=") {
        std::fs::write(&info, format!("{text}backup_name=nightly\n")).unwrap();
    }
    let cfg = lab.sc.write("err.conf", &base("barmansrv", "pg"));
    let out = lab.clone(&cfg, &target, &["--backup-id", "nightly", "--dry-run"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("Barman backup {named} ")), "{err}");
    // An unknown name: what Barman has instead.
    let out = lab.clone(&cfg, &target, &["--backup-id", "weekly"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "ERROR: Barman has no backup \"weekly\" of server \"pg\"",
        "Unknown backup 'weekly'",
        &format!("pg {named} 'nightly'"),
        "HINT: give --backup-id a backup id or name from this list, or latest or oldest",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!target.exists(), "{err}");
}

/// Barman 3.19 and a PostgreSQL 17 primary: --backup-id takes backup names
/// and shortcuts; an incremental backup (`barman backup --incremental`),
/// named or the latest, is planned as its chain combined (the dry run shows
/// it); an unknown or ambiguous name is a clear error.
#[test]
fn barman_3_19_backup_names_and_incremental_backups() {
    let lab = IncrementalLab::new("incr319", 1);
    let (full, incr) = (&lab.full, &lab.incrementals[0]);
    let cfg = lab.conf("");
    let target = lab.sc.path("standby");
    let clone = |extra: &[&str]| standby_clone(&lab.sc, &cfg, &lab.primary, &target, extra, &[]);

    for extra in [
        &["--dry-run"][..],
        &["--backup-id", "incr-1", "--dry-run"][..],
    ] {
        let out = clone(extra);
        let (err, plan) = (stderr(&out), stdout(&out));
        assert!(out.status.success(), "{extra:?}: {err}");
        for want in [
            format!("backup {incr} is an incremental backup: its chain ({full} <- {incr}) is combined with pg_combinebackup"),
            format!("Barman backup {incr} (PostgreSQL 17."),
        ] {
            assert!(err.contains(&want), "{extra:?}: missing {want:?} in:\n{err}");
        }
        let staging = lab.sc.path(".standby.pgclone-staging");
        for want in [
            format!(
                "create staging directory {} (mode 0700; removed after the clone)",
                staging.display()
            ),
            format!(
                "to {}/00-{full} (parallel rsync over ssh)",
                staging.display()
            ),
            // The incremental, beside the full backup on the Barman host,
            // is listed by rsync as it is copied (no barman list-files).
            format!(
                "copy the whole tree barmansrv:{}/pg/base/{incr}/data to {}/01-{incr} (listed when the step runs; parallel rsync over ssh)",
                lab.barman.home.display(),
                staging.display()
            ),
            format!(
                "combine 2 backups (the full one, then each incremental) into {}",
                target.display()
            ),
        ] {
            assert!(
                plan.contains(&want),
                "{extra:?}: missing {want:?} in:\n{plan}"
            );
        }
        assert!(!target.exists() && !staging.exists(), "{extra:?}: {err}");
    }
    for id in ["base-full", "oldest", full.as_str()] {
        let out = clone(&["--backup-id", id, "--dry-run"]);
        let err = stderr(&out);
        assert!(out.status.success(), "{id}: {err}");
        assert!(
            err.contains(&format!("Barman backup {full} (PostgreSQL 17.")),
            "{id}: {err}"
        );
    }
    let out = clone(&["--backup-id", "nosuch"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "ERROR: Barman has no backup \"nosuch\" of server \"pg\"",
        &format!("pg {full} 'base-full' - F"),
        &format!("pg {incr} 'incr-1' - I"),
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // Two backups of one name: Barman cannot tell which.
    let second = lab.barman.backup_with("pg", &["--name", "base-full"]);
    let out = clone(&["--backup-id", "base-full"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ERROR: backup name \"base-full\" is not unique in Barman"),
        "{err}"
    );
    assert!(
        err.contains(&second) && err.contains(full.as_str()),
        "{err}"
    );
    assert!(!target.exists(), "{err}");

    // Whatever the source: a site plugin whose plan ends in an incremental
    // copy (pg_basebackup --incremental, never combined) runs to its end, and
    // the clone fails all the same, leaving nothing startable.
    let manifest_of = lab.sc.path("full_pbb");
    run_ok(
        as_pg(pg17_bindir().join("pg_basebackup"))
            .arg("-D")
            .arg(&manifest_of)
            .arg("-h")
            .arg(&lab.primary.socket_dir)
            .args(["-p", &lab.primary.port.to_string(), "-U", "postgres"])
            .args(["--checkpoint=fast", "--no-sync", "-X", "none"]),
    );
    let wasm = lab.sc.path("forgetful.wasm");
    std::fs::copy(component("test_forgetful"), &wasm).unwrap();
    let cfg = lab.sc.write(
        "forgetful.conf",
        &format!(
            "node_id=2\nnode_name=node2\nbackup_source=test-forgetful\nincremental_manifest='{}'\n\
             pg_bindir='{}'\nplugins_config='{}'\n",
            manifest_of.join("backup_manifest").display(),
            pg17_bindir().display(),
            lab.sc.path("plugins.toml").display()
        ),
    );
    let out = pgclone(
        &lab.sc,
        &["-f", s(&cfg), "plugin", "install", s(&wasm), "--grant-all"],
        &[],
    );
    assert!(out.status.success(), "{}{}", stderr(&out), stdout(&out));
    let out = standby_clone(&lab.sc, &cfg, &lab.primary, &target, &[], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "ERROR: the copy is an incremental backup, not a data directory",
        "backup_label\" says \"INCREMENTAL FROM LSN: ",
        "HINT: combine the chain (the full backup and every incremental up to this one) with pg_combinebackup",
        "was removed; no recovery configuration was written",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains("standby clone (from backup source"), "{err}");
    assert!(
        !target.exists() || std::fs::read_dir(&target).unwrap().count() == 0,
        "{err}"
    );
}

#[test]
fn barman_not_installed_on_the_host_is_reported_as_such() {
    let sc = Scratch::new("nobarman");
    let mut primary = Pg::init(&sc, "primary");
    primary.start();
    // Remote commands find no barman on this sshd's PATH.
    let sshd = Sshd::start(&sc, "/nonexistent");
    let cfg = sc.write(
        "pgclone.conf",
        &format!("node_id=2\nnode_name=node2\nbarman_host=barmansrv\nbarman_server=pg\nssh_options='-F {}'\n", sshd.ssh_config.display()),
    );
    let target = sc.path("standby");
    let out = standby_clone(&sc, &cfg, &primary, &target, &[], &[]);

    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("barman is not installed on \"barmansrv\""),
        "{err}"
    );
    assert!(!target.exists());
}

#[test]
fn without_barman_clones_with_pg_basebackup() {
    let lab = lab("withoutbarman", barman_34());
    let cfg = lab.conf("");
    let target = lab.sc.path("standby");
    let out = lab.clone(&cfg, &target, &["--without-barman"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("standby clone (using pg_basebackup) complete"),
        "{err}"
    );
    assert!(!err.contains("Barman backup"), "{err}");
}

#[test]
fn a_delta_reclone_moves_only_what_changed() {
    let lab = lab("delta", barman_34());
    lab.primary.sql(
        "CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 200000) g",
    );
    lab.barman.backup();
    let cfg = lab.conf("");
    let target = lab.sc.path("standby");
    let out = lab.clone(&cfg, &target, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = sent_and_total(&stderr(&out));

    // The primary moves on; the standby fell behind: a newer backup, re-cloned over it.
    lab.primary.sql("UPDATE t SET i = i + 1 WHERE i < 10");
    lab.barman.backup();
    let out = lab.clone(&cfg, &target, &["-F"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("only what changed will be copied"), "{err}");
    let second = sent_and_total(&err);
    assert!(
        second.0 * 4.0 < second.1 && second.0 * 4.0 < first.0,
        "delta sent {} of {} MiB (first clone sent {} MiB)",
        second.0,
        second.1,
        first.0
    );
    // What the plan wrote (not copied) stays: PostgreSQL makes the mapped
    // tablespace's link from it.
    let map = std::fs::read_to_string(target.join("tablespace_map")).unwrap_or_default();
    assert!(
        map.contains(&lab.sc.path("ts_standby").display().to_string()),
        "tablespace_map after a delta copy: {map:?}\n{err}"
    );
    let mut st = Pg::existing(&lab.sc, target);
    st.start();
    st.wait_for("SELECT count(*) FROM big", "200000", WAIT);
}

/// Sums "X MiB (Y MiB sent over the wire)" lines: (sent, total).
fn sent_and_total(err: &str) -> (f64, f64) {
    let mut sent = 0.0;
    let mut total = 0.0;
    for line in err.lines().filter(|l| l.contains("sent over the wire")) {
        let nums: Vec<f64> = line
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter_map(|w| w.parse().ok())
            .collect();
        // "INFO: N files, T MiB (S MiB sent over the wire)"
        total += nums[1];
        sent += nums[2];
    }
    (sent, total)
}

#[test]
fn rsync_killed_during_the_transfer_ends_in_error_with_nothing_left() {
    let lab = lab("killrsync", barman_34());
    lab.primary.sql(
        "CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 600000) g",
    );
    lab.barman.backup();
    let cfg = lab.conf("clone_jobs=2\n");
    let target = lab.sc.path("standby");
    let watch = target.clone();
    let killer = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while !watch.join("base").exists() {
            if start.elapsed() > WAIT {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Only this test's streams: their command lines end in the target.
        let pattern = format!("rsync -a --protect-args .* {}/", watch.display());
        let out = std::process::Command::new("pkill")
            .args(["-9", "-f", &pattern])
            .output()
            .unwrap();
        out.status.success()
    });
    let out = lab.clone(&cfg, &target, &[]);
    assert!(killer.join().unwrap(), "rsync could not be killed in time");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ERROR: rsync stream"), "{err}");
    assert!(
        err.contains("killed by signal 9") || err.contains("exited with status"),
        "{err}"
    );
    assert!(
        err.contains("no recovery configuration was written"),
        "{err}"
    );
    assert!(
        !err.contains("standby clone (from Barman) complete"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}

#[test]
fn external_config_files_come_over_ssh_from_a_remote_upstream() {
    let sc = Scratch::new("extremote");
    let mut primary = Pg::init(&sc, "primary");
    sc.mkdir("etc");
    let ident = sc.write(
        "etc/ident_ext.conf",
        "# external ident map\nmap1 os_user db_user\n",
    );
    // 127.0.0.2 is not this host for pgclone: the file must come over ssh.
    primary.append_conf(&format!(
        "ident_file = '{}'\nlisten_addresses = '127.0.0.1,127.0.0.2'\n",
        ident.display()
    ));
    primary.hba_prepend("host all all 127.0.0.0/8 trust");
    primary.hba_prepend("host replication all 127.0.0.0/8 trust");
    primary.start();
    let sshd = Sshd::start_for(&sc, "/usr/bin:/bin", true);
    // ssh_options from the configuration reach this ssh too (ssh reads the
    // account's real ~/.ssh/config, which a test must not touch).
    let ssh_config = sc.write(
        "ssh_upstream.conf",
        &format!(
            "Host 127.0.0.2\n  HostName 127.0.0.1\n  Port {}\n  User postgres\n  IdentityFile {}\n  \
             StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
            sshd.port,
            sc.path("ssh/client_key").display()
        ),
    );
    let cfg = sc.write(
        "pgclone.conf",
        &format!(
            "node_id=2\nnode_name=node2\nssh_options='-F {}'\n",
            ssh_config.display()
        ),
    );
    let target = sc.path("standby");
    let mut args = clone_args(
        &cfg,
        &primary,
        &target,
        &["--copy-external-config-files=pgdata"],
    );
    // The upstream by an address pgclone takes for another host.
    let h = args.iter().position(|a| a == "-h").unwrap() + 1;
    args[h] = "127.0.0.2".into();
    let out = pgclone(
        &sc,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("copied \"") && err.contains("ident_ext.conf"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("ident_ext.conf")).unwrap(),
        "# external ident map\nmap1 os_user db_user\n"
    );
}

/// `barman show-backup`'s value of `key` (e.g. "Begin WAL").
fn shown(lab: &Lab, id: &str, key: &str) -> String {
    let text = lab.barman.ok(&["show-backup", "pg", id]);
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}

/// Without restore_command a standby cloned from Barman can only catch up by
/// streaming from the backup's begin on: the upstream is asked first. While it
/// has the WAL, the clone goes ahead with a warning; once it removed it, the
/// clone (and its dry run) is refused before anything is copied, with the line
/// to add. A user who may not list the WAL directory gets a warning, not a
/// refusal; a configured restore_command needs no check.
#[test]
fn a_barman_clone_that_could_not_catch_up_is_refused_before_copying() {
    let lab = lab("catchup", barman_34());
    // node 2's slot, reserving WAL from before the backup.
    lab.primary
        .sql("SELECT pg_create_physical_replication_slot('repmgr_slot_2', true)");
    // A standby from before the backup, promoted after it (below).
    let promoted_dir = lab.sc.path("promoted");
    run_ok(
        as_pg(pg_bindir().join("pg_basebackup"))
            .arg("-D")
            .arg(&promoted_dir)
            .arg("-h")
            .arg(&lab.primary.socket_dir)
            .args(["-p", &lab.primary.port.to_string(), "-U", "postgres"])
            .args(["-R", "--checkpoint=fast", "-X", "stream", "-T"])
            .arg(format!(
                "{}={}",
                lab.sc.path("ts_primary").display(),
                lab.sc.mkdir("ts_promoted").display()
            )),
    );
    let mut promoted = Pg::existing(&lab.sc, promoted_dir);
    promoted.start();
    let id = lab.barman.backup();
    let begin_wal = shown(&lab, &id, "Begin WAL");
    // A user without pg_monitor: pg_ls_waldir() is not allowed.
    lab.primary.sql("CREATE ROLE watcher LOGIN REPLICATION");
    let cfg = lab.conf_without_restore_command("");
    let target = lab.sc.path("standby");
    let as_watcher = |cfg: &Path, extra: &[&str]| {
        let mut args = clone_args(cfg, &lab.primary, &target, extra);
        let u = args.iter().position(|a| a == "-U").unwrap() + 1;
        args[u] = "watcher".into();
        pgclone(
            &lab.sc,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &[],
        )
    };

    // The WAL is there (Barman's slot and wal_keep_size hold it): cloned, with the warning.
    let out = lab.clone(&cfg, &target, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("the upstream still has the WAL from segment {begin_wal}, where backup {id} begins: its WAL directory goes back to")),
        "{err}"
    );
    assert!(
        err.contains("standby clone (from Barman) complete"),
        "{err}"
    );
    assert!(err.contains("WARNING: restore_command is not set"), "{err}");
    assert!(
        err.contains(&format!("wal-restore %f %p' to \"{}\"", cfg.display())),
        "{err}"
    );
    std::fs::remove_dir_all(&target).unwrap();
    std::fs::remove_dir_all(lab.sc.path("ts_standby")).unwrap();
    // The standby's own slot retains it: that is enough, whoever asks.
    let slot_cfg = lab.conf_without_restore_command("use_replication_slots=1\n");
    let out = as_watcher(&slot_cfg, &["--dry-run"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "replication slot \"repmgr_slot_2\", which the standby will use, retains WAL from"
        ),
        "{err}"
    );
    assert!(err.contains("WARNING: restore_command is not set"), "{err}");

    // An upstream promoted to timeline 2 since the backup (timeline 1) still
    // has the backup's segment under its timeline-1 name: judged by segment
    // number, not by the name pg_walfile_name() gives there.
    let lsn = lab.primary.sql("SELECT pg_current_wal_lsn()");
    promoted.wait_for(
        &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'"),
        "t",
        WAIT,
    );
    promoted.sql("SELECT pg_promote()");
    assert_eq!(
        promoted.sql("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"),
        "00000002"
    );
    let out = standby_clone(&lab.sc, &cfg, &promoted, &target, &["--dry-run"], &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "the upstream still has the WAL from segment {begin_wal}, where backup {id} begins: its WAL directory goes back to segment 00000001"
        )),
        "{err}"
    );
    drop(promoted);

    // The primary moves on and drops old WAL: no slot, no wal_keep_size.
    lab.barman.ok(&["receive-wal", "--stop", "pg"]);
    lab.primary.wait_for(
        "SELECT count(*) FROM pg_replication_slots WHERE active",
        "0",
        WAIT,
    );
    lab.primary.sql("SELECT pg_drop_replication_slot('barman')");
    lab.primary
        .sql("SELECT pg_drop_replication_slot('repmgr_slot_2')");
    lab.primary
        .append_conf("wal_keep_size = 0\nmax_wal_size = 32MB\nmin_wal_size = 32MB\n");
    lab.primary.reload();
    for i in 0..4 {
        lab.primary.sql(&format!(
            "INSERT INTO t SELECT generate_series(1, 20000); SELECT pg_switch_wal(); CHECKPOINT -- {i}"
        ));
    }
    assert_eq!(
        lab.primary.sql(&format!(
            "SELECT count(*) FROM pg_ls_waldir() WHERE name = '{begin_wal}'"
        )),
        "0",
        "the primary still has {begin_wal}"
    );

    for extra in [&[][..], &["--dry-run"][..]] {
        let out = lab.clone(&cfg, &target, extra);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        for want in [
            &format!("ERROR: the standby could not catch up: the upstream no longer has the WAL from the start of backup {id}"),
            &format!("DETAIL: the backup begins in WAL segment {begin_wal} (LSN "),
            "the oldest segment the upstream still has is 0000000100000000000000",
            "restore_command is not set, so the standby could only get that WAL by streaming",
            "nothing was changed",
            &format!("HINT: let the standby fetch the WAL from Barman: add this line to \"{}\"", cfg.display()),
            &format!(" -f {} wal-restore %f %p'", cfg.display()),
        ] {
            assert!(err.contains(want), "{extra:?}: missing {want:?} in:\n{err}");
        }
        assert!(err.contains("\nrestore_command = '/"), "{err}");
        assert!(!err.contains("retrieving backup"), "{err}");
        assert!(!target.exists(), "{extra:?}: {err}");
    }

    // Without permission to look: a warning, not a refusal.
    let out = as_watcher(&cfg, &["--dry-run"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("WARNING: could not check whether the upstream still has WAL segment {begin_wal}, where backup {id} begins: permission denied")),
        "{err}"
    );
    assert!(err.contains("grant pg_monitor to \"watcher\""), "{err}");
    // Nor when the upstream cannot be reached (a Barman clone does not need it).
    let mut args = clone_args(&cfg, &lab.primary, &target, &["--dry-run"]);
    let p = args.iter().position(|a| a == "-p").unwrap() + 1;
    args[p] = "1".into();
    let out = pgclone(
        &lab.sc,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("could not check whether the upstream still has WAL segment")
            && err.contains("the upstream could not be reached"),
        "{err}"
    );

    // With restore_command the standby gets the WAL from Barman: no check.
    let out = lab.clone(&lab.conf(""), &target, &["--dry-run"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("could not catch up"), "{err}");
    assert!(!err.contains("still has the WAL"), "{err}");
    assert!(!err.contains("restore_command is not set"), "{err}");
    assert!(!target.exists(), "{err}");
}

/// Clones compressed backup `id` of Barman server `server` (tablespace to
/// `ts_dir`) and checks the standby: unpacked as it arrived, verified against
/// its manifest, started, the rows written before and after the backup there,
/// streaming. `rows` is the count of `t` the standby must reach.
fn clone_compressed(lab: &Lab, server: &str, id: &str, ts_dir: &str, rows: &str, waldir: bool) {
    let ts_standby = lab.sc.path(ts_dir);
    let ts_map = format!(
        "{}={}",
        lab.sc.path("ts_primary").display(),
        ts_standby.display()
    );
    let wal = lab.sc.path(&format!("{ts_dir}_wal"));
    let extra = if waldir {
        format!("pg_basebackup_options='--waldir={}'\n", wal.display())
    } else {
        String::new()
    };
    let cfg = lab.conf_for(server, &ts_map, &extra);
    let target = lab.sc.path(&format!("standby_{server}"));
    let started = std::time::Instant::now();
    let out = lab.clone(&cfg, &target, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    eprintln!(
        "clone of {server} ({id}): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(err.contains(&format!("Barman backup {id}")), "{err}");
    assert!(
        err.contains("unpacking 2 archives from barmansrv as they arrive"),
        "{err}"
    );
    assert!(
        err.contains("pg_verifybackup: backup successfully verified"),
        "{err}"
    );
    assert!(
        err.contains("NOTICE: standby clone (from Barman) complete"),
        "{err}"
    );
    assert!(err.contains(" MiB unpacked from "), "{err}");
    let map = std::fs::read_to_string(target.join("tablespace_map")).unwrap();
    assert!(map.contains(s(&ts_standby)), "{map}");
    assert!(
        ts_standby.read_dir().unwrap().next().is_some(),
        "tablespace empty"
    );
    assert!(!target.join("base.tar.gz").exists());
    if waldir {
        assert_eq!(std::fs::read_link(target.join("pg_wal")).unwrap(), wal);
    }
    let mut st = Pg::existing(&lab.sc, target.clone());
    st.start();
    st.wait_for("SELECT count(*) FROM t", rows, WAIT);
    st.wait_for("SELECT count(*) FROM tt", "300", WAIT);
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    st.stop();
}

/// A bad copy of an archive makes a clean failure: nothing startable, the
/// target and the tablespace directory empty, and the backup restored after.
fn damaged_archive_fails_cleanly(
    lab: &Lab,
    server: &str,
    archive: &Path,
    damage: &str,
    wants: &[&str],
) {
    let saved = lab.sc.path("saved-archive");
    run_ok(
        std::process::Command::new("cp")
            .arg("-p")
            .arg(archive)
            .arg(&saved),
    );
    run_ok(std::process::Command::new("sh").arg("-c").arg(damage));
    let ts_standby = lab.sc.path("ts_damaged");
    let ts_map = format!(
        "{}={}",
        lab.sc.path("ts_primary").display(),
        ts_standby.display()
    );
    let cfg = lab.conf_for(server, &ts_map, "");
    let target = lab.sc.path("standby_damaged");
    let out = lab.clone(&cfg, &target, &[]);
    run_ok(
        std::process::Command::new("cp")
            .arg("-p")
            .arg(&saved)
            .arg(archive),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in wants {
        assert!(err.contains(w), "missing {w:?} in:\n{err}");
    }
    assert!(
        err.contains("no recovery configuration was written"),
        "{err}"
    );
    assert!(
        !err.contains("standby clone (from Barman) complete"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "{err}");
    assert_eq!(std::fs::read_dir(&ts_standby).unwrap().count(), 0, "{err}");
    std::fs::remove_dir(&target).unwrap();
}

/// The archive of the data directory of backup `id` of `server`.
fn base_archive(lab: &Lab, server: &str, id: &str, suffix: &str) -> PathBuf {
    let p = lab
        .barman
        .home
        .join(server)
        .join("base")
        .join(id)
        .join("data")
        .join(format!("base.tar.{suffix}"));
    assert!(p.exists(), "{} missing", p.display());
    p
}

#[test]
fn compressed_backups_of_barman_3_4_gzip_are_streamed_and_unpacked() {
    let lab = lab("barmangz", barman_34());
    lab.barman.add_server("pgz", "backup_compression = gzip");
    lab.primary
        .sql("CREATE TABLE big AS SELECT g, md5(g::text) AS pad FROM generate_series(1, 100000) g");
    let id = lab.barman.backup_of("pgz");
    let archive = base_archive(&lab, "pgz", &id, "gz");
    // Written after the backup: replayed from Barman, then streamed.
    lab.primary
        .sql("INSERT INTO t SELECT generate_series(1001, 2000)");
    lab.barman.ok(&[
        "switch-wal",
        "--force",
        "--archive",
        "--archive-timeout",
        "60",
        "pgz",
    ]);

    // Cut in the middle: gzip notices the stream ends early.
    let size = std::fs::metadata(&archive).unwrap().len();
    damaged_archive_fails_cleanly(
        &lab,
        "pgz",
        &archive,
        &format!("truncate -s {} {}", size / 2, archive.display()),
        &["is corrupt or truncated", "gzip-compressed tar archive"],
    );
    // Bytes overwritten in the middle: the deflate stream or its CRC fails.
    damaged_archive_fails_cleanly(
        &lab,
        "pgz",
        &archive,
        &format!(
            "head -c 4096 /dev/urandom | dd of={} bs=1 seek={} conv=notrunc status=none",
            archive.display(),
            size / 2
        ),
        &["is corrupt or truncated"],
    );
    // Unreadable for Barman's ssh user: cat fails, and says why.
    damaged_archive_fails_cleanly(
        &lab,
        "pgz",
        &archive,
        &format!("chmod 000 {}", archive.display()),
        &[
            "could not read archive",
            "ssh exited with status 1",
            "Permission denied",
        ],
    );
    slow_stream_faults(&lab, "pgz", &archive);
    // --dry-run shows the archives it would unpack, and changes nothing.
    let ts_map = format!(
        "{}={}",
        lab.sc.path("ts_primary").display(),
        lab.sc.path("ts_dry").display()
    );
    let cfg = lab.conf_for("pgz", &ts_map, "");
    let dry = lab.sc.path("standby_dry");
    let out = lab.clone(&cfg, &dry, &["--dry-run"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains(&format!(
            "unpack barmansrv:{} (tar, gzip)",
            archive.display()
        )),
        "{text}"
    );
    assert!(!dry.exists());
    clone_compressed(&lab, "pgz", &id, "ts_gz", "2000", true);
}

#[test]
fn compressed_backups_of_barman_3_19_lz4_and_zstd_are_streamed_and_unpacked() {
    let lab = lab("barmanlz", barman_319());
    lab.barman.add_server("pglz4", "backup_compression = lz4");
    lab.barman.add_server("pgzst", "backup_compression = zstd");
    let lz4 = lab.barman.backup_of("pglz4");
    let zst = lab.barman.backup_of("pgzst");
    base_archive(&lab, "pglz4", &lz4, "lz4");
    let archive = base_archive(&lab, "pgzst", &zst, "zst");
    lab.primary
        .sql("INSERT INTO t SELECT generate_series(1001, 1500)");
    for server in ["pglz4", "pgzst"] {
        lab.barman.ok(&[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "60",
            server,
        ]);
    }
    // A zstd frame cut short.
    let size = std::fs::metadata(&archive).unwrap().len();
    damaged_archive_fails_cleanly(
        &lab,
        "pgzst",
        &archive,
        &format!("truncate -s {} {}", size - 100, archive.display()),
        &["is corrupt or truncated", "zstd-compressed tar archive"],
    );
    clone_compressed(&lab, "pglz4", &lz4, "ts_lz4", "1500", false);
    clone_compressed(&lab, "pgzst", &zst, "ts_zst", "1500", false);
}

/// Faults that need a stream under way: a second sshd whose `cat` sends the
/// archive at about 1.3 MB/s. The remote `cat` killed mid-stream fails the
/// clone naming ssh's status; pgclone interrupted mid-unpack stops its
/// streams and removes what it unpacked. Either way nothing is left.
fn slow_stream_faults(lab: &Lab, server: &str, archive: &Path) {
    let bin = lab.sc.mkdir("slowbin");
    let cat = bin.join("cat");
    std::fs::write(
        &cat,
        "#!/usr/bin/python3\n# cat -- FILE, slowly\nimport sys, time\n\
         f = open(sys.argv[-1], 'rb')\nout = sys.stdout.buffer\n\
         while True:\n    b = f.read(65536)\n    if not b:\n        break\n    out.write(b)\n    out.flush()\n    time.sleep(0.05)\n",
    )
    .unwrap();
    run_ok(std::process::Command::new("chmod").args(["755"]).arg(&cat));
    let slow = Sshd::start(&lab.sc, &format!("{}:/usr/bin:/bin", bin.display()));
    let ts_standby = lab.sc.path("ts_slow");
    let cfg = lab.sc.write(
        "slow.conf",
        &format!(
            "node_id=2\nnode_name=node2\nbarman_host=barmansrv\nbarman_server={server}\nbarman_config='{}'\n\
             ssh_options='-F {}'\ntablespace_mapping='{}={}'\n",
            lab.barman.config.display(),
            slow.ssh_config.display(),
            lab.sc.path("ts_primary").display(),
            ts_standby.display()
        ),
    );
    let target = lab.sc.path("standby_slow");
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_pgclone")).unwrap();
    for fault in ["kill-cat", "interrupt"] {
        let args = clone_args(&cfg, &lab.primary, &target, &[]);
        let handle = pgclone_in_background(&lab.sc, args);
        let started = std::time::Instant::now();
        while !target.join("base").exists() {
            assert!(
                !handle.is_finished(),
                "{fault}: pgclone ended before unpacking"
            );
            assert!(started.elapsed() < WAIT, "{fault}: unpacking never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        match fault {
            "kill-cat" => {
                // This test's slow cat of this archive, and nothing else.
                run_ok(std::process::Command::new("pkill").args([
                    "-9",
                    "-f",
                    &format!("{} -- {}", cat.display(), archive.display()),
                ]));
            }
            _ => {
                let pids = run_ok(
                    std::process::Command::new("pgrep").args(["-f", target.to_str().unwrap()]),
                );
                let pid = pids
                    .lines()
                    .find(|pid| {
                        std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe)
                    })
                    .expect("pgclone's process")
                    .to_string();
                run_ok(std::process::Command::new("kill").args(["-INT", &pid]));
            }
        }
        let out = handle.join().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{fault}: {err}");
        if fault == "kill-cat" {
            assert!(err.contains("could not read archive"), "{err}");
            assert!(err.contains("ssh exited with status 255"), "{err}");
        } else {
            assert!(err.contains("ERROR: interrupted by SIGINT"), "{err}");
        }
        assert!(
            err.contains("no recovery configuration was written"),
            "{fault}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(&target).unwrap().count(),
            0,
            "{fault}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(&ts_standby).unwrap().count(),
            0,
            "{fault}: {err}"
        );
        // No stream of this clone is left running (the remote end notices
        // its closed channel at its next write).
        let gone = std::time::Instant::now();
        loop {
            let left = std::process::Command::new("pgrep")
                .args(["-f", &format!("{} -- {}", cat.display(), archive.display())])
                .output()
                .unwrap();
            if left.stdout.is_empty() {
                break;
            }
            assert!(
                gone.elapsed() < Duration::from_secs(5),
                "{fault}: a slow cat is still running"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::remove_dir(&target).unwrap();
    }
    // On a terminal, the bytes read so far are shown as they arrive.
    let args = clone_args(&cfg, &lab.primary, &target, &[]);
    let out = pgclone_on_terminal(
        &lab.sc,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    // The live line (its own phase, redrawn in place), then its summary.
    assert!(text.contains("unpack ["), "{text:?}");
    // Against the backup's size: percent and time left.
    assert!(text.contains("%), ") && text.contains(" left"), "{text:?}");
    assert!(
        text.contains("INFO: unpack: ") && text.contains(" MiB/s"),
        "{text}"
    );
    assert!(
        text.contains("standby clone (from Barman) complete"),
        "{text}"
    );
    std::fs::remove_dir_all(&target).unwrap();
    std::fs::remove_dir_all(&ts_standby).unwrap();
}

/// A full backup and two incrementals of a PostgreSQL 17 primary: the clone of
/// the latest copies the chain into a staging directory, combines it with
/// pg_combinebackup, verifies the result, starts with every row written before
/// the latest backup, and streams. A pg_combinebackup missing from pg_bindir,
/// or of another major version, and a chain whose full backup Barman no longer
/// has, are clear errors before anything is copied, leaving nothing.
#[test]
fn barman_incremental_chain_is_combined_and_streams() {
    let lab = IncrementalLab::new("incrchain", 2);
    let (full, last) = (&lab.full, &lab.incrementals[1]);
    let target = lab.sc.path("standby");
    let staging = lab.sc.path(".standby.pgclone-staging");
    // Written after the latest backup: streaming brings it.
    lab.primary.sql("INSERT INTO t VALUES (0)");

    // pg_bindir without pg_combinebackup (PostgreSQL 16), or of PostgreSQL 18.
    for (var, want) in [
        ("PGCLONE_TEST_PG16_BINDIR", "program \"pg_combinebackup\" not found".to_string()),
        (
            "PGCLONE_TEST_PG18_BINDIR",
            "pg_combinebackup\" is of PostgreSQL 18; the incremental backup chain needs pg_combinebackup of PostgreSQL 17".to_string(),
        ),
    ] {
        let Some(bindir) = std::env::var_os(var) else {
            eprintln!("{var} not set: skipped");
            continue;
        };
        let cfg = lab.sc.write(
            "wrongbin.conf",
            &(std::fs::read_to_string(lab.conf(""))
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with("pg_bindir="))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                + &format!("pg_bindir='{}'\n", PathBuf::from(bindir).display())),
        );
        let out = standby_clone(&lab.sc, &cfg, &lab.primary, &target, &[], &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{var}: {err}");
        assert!(err.contains(&want), "{var}: missing {want:?} in:\n{err}");
        assert!(!target.exists() && !staging.exists(), "{var}: {err}");
    }

    let cfg = lab.conf("");
    let out = standby_clone(&lab.sc, &cfg, &lab.primary, &target, &[], &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    for want in [
        format!("its chain ({full} <- {} <- {last})", lab.incrementals[0]),
        format!(
            "combining 3 backups into \"{}\" with pg_combinebackup",
            target.display()
        ),
        "pg_verifybackup: backup successfully verified".to_string(),
        "NOTICE: standby clone (from Barman) complete".to_string(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(!staging.exists(), "the staging directory was left: {err}");
    let label = std::fs::read_to_string(target.join("backup_label")).unwrap();
    assert!(!label.contains("INCREMENTAL FROM LSN"), "{label}");
    let mut st = Pg::existing_with(&lab.sc, target.clone(), &pg17_bindir());
    st.start();
    st.wait_for(
        "SELECT count(*) FROM t WHERE i > 0",
        &lab.rows[2].to_string(),
        WAIT,
    );
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    st.wait_for("SELECT count(*) FROM t WHERE i = 0", "1", WAIT);
    lab.primary.sql("INSERT INTO t VALUES (-1)");
    st.wait_for("SELECT count(*) FROM t WHERE i = -1", "1", WAIT);
    st.stop();

    // A chain that does not hold together: the middle backup's manifest is
    // damaged. pg_combinebackup refuses it; nothing is left.
    let manifest = lab
        .barman
        .home
        .join("pg/base")
        .join(&lab.incrementals[0])
        .join("data/backup_manifest");
    let good = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &good[..good.len() / 2]).unwrap();
    let target3 = lab.sc.path("standby3");
    let out = standby_clone(&lab.sc, &cfg, &lab.primary, &target3, &[], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "ERROR: pg_combinebackup exited with status 1: the backup chain could not be combined",
        "DETAIL: pg_combinebackup: error: ",
        "was removed; no recovery configuration was written",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(
        !err.contains("standby clone (from Barman) complete"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(&target3).map_or(true, |mut d| d.next().is_none()),
        "{err}"
    );
    assert!(!lab.sc.path(".standby3.pgclone-staging").exists(), "{err}");
    std::fs::write(&manifest, &good).unwrap();

    // The full backup is gone from Barman (`barman delete` would delete its
    // incrementals with it): they cannot be restored.
    let full_dir = lab.barman.home.join("pg/base").join(full);
    assert!(full_dir.is_dir(), "{}", full_dir.display());
    std::fs::remove_dir_all(&full_dir).unwrap();
    // Barman 3.13.2+ keeps what it knows of a backup apart from its files.
    let _ = std::fs::remove_file(
        lab.barman
            .home
            .join("pg/meta")
            .join(format!("{full}-backup.info")),
    );
    let target2 = lab.sc.path("standby2");
    let staging2 = lab.sc.path(".standby2.pgclone-staging");
    for extra in [&["--dry-run"][..], &[][..]] {
        let out = standby_clone(&lab.sc, &cfg, &lab.primary, &target2, extra, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        for want in [
            format!("ERROR: backup {last} is an incremental backup whose chain is incomplete: Barman no longer has backup {full}, the parent of {}", lab.incrementals[0]),
            "nothing was copied".to_string(),
            "HINT: choose a backup whose chain is complete".to_string(),
        ] {
            assert!(err.contains(&want), "{extra:?}: missing {want:?} in:\n{err}");
        }
        assert!(!target2.exists() && !staging2.exists(), "{extra:?}: {err}");
    }
}

/// A compressed incremental chain (Barman 3.19, `backup_compression = lz4`,
/// a full backup and an incremental one): each backup's archives are unpacked
/// into the staging directory as they arrive, then combined, verified, and
/// the standby starts with the rows of the latest backup and streams.
#[test]
fn barman_compressed_incremental_chain_is_unpacked_and_combined() {
    let lab = IncrementalLab::new("incrlz4", 0);
    lab.barman.add_server("pgz", "backup_compression = lz4");
    let full = lab.barman.backup_with("pgz", &["--name", "z-full"]);
    lab.primary
        .sql("INSERT INTO t SELECT generate_series(1001, 2000)");
    let incr = lab
        .barman
        .backup_with("pgz", &["--incremental", "latest", "--name", "z-incr"]);
    let shown = lab.barman.ok(&["show-backup", "pgz", &incr]);
    assert!(shown.contains("lz4"), "not compressed:\n{shown}");
    let cfg = lab.sc.write(
        "pgz.conf",
        &std::fs::read_to_string(lab.conf(""))
            .unwrap()
            .replace("barman_server=pg\n", "barman_server=pgz\n"),
    );
    let target = lab.sc.path("standby");
    let out = standby_clone(&lab.sc, &cfg, &lab.primary, &target, &[], &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    for want in [
        format!("its chain ({full} <- {incr})"),
        "unpacking 1 archive from barmansrv as it arrives".to_string(),
        "combining 2 backups".to_string(),
        "pg_verifybackup: backup successfully verified".to_string(),
        "NOTICE: standby clone (from Barman) complete".to_string(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(!lab.sc.path(".standby.pgclone-staging").exists(), "{err}");
    let mut st = Pg::existing_with(&lab.sc, target.clone(), &pg17_bindir());
    st.start();
    st.wait_for("SELECT count(*) FROM t", "2000", WAIT);
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    st.stop();
}
