//! `pgclone standby clone` with pg_basebackup against real PostgreSQL 15
//! servers: clones that start and stream, and failures that change nothing.

use crate::support;

use std::path::Path;
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(60);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `standby clone` from the primary at 127.0.0.1:`port` as the user `meta`
/// (over TCP, where passwords are asked for), into `target`.
fn clone_as_meta_over_tcp(
    sc: &Scratch,
    cfg: &Path,
    port: &str,
    target: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = vec![
        "-f",
        s(cfg),
        "standby",
        "clone",
        "-h",
        "127.0.0.1",
        "-p",
        port,
        "-U",
        "meta",
        "-d",
        "postgres",
        "-D",
        s(target),
    ];
    args.extend_from_slice(extra);
    pgclone(sc, &args, env)
}

fn auto_conf(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("postgresql.auto.conf")).unwrap()
}

#[test]
fn a_clone_starts_streams_and_replays_new_rows() {
    let sc = Scratch::new("basic");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    p.sql("CREATE TABLE t(i int); INSERT INTO t SELECT generate_series(1, 1000)");
    let cfg = sc.write("pgclone.conf", "node_id=2\nnode_name='node2'\n");
    let target = sc.path("standby");
    let out = standby_clone(&sc, &cfg, &p, &target, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("NOTICE: standby clone (using pg_basebackup) complete"),
        "{err}"
    );
    assert!(err.contains("HINT: for example: pg_ctl -D"), "{err}");
    let auto = auto_conf(&target);
    assert!(auto.contains("application_name=node2"), "{auto}");
    assert!(
        auto.contains("recovery_target_timeline = 'latest'"),
        "{auto}"
    );
    assert!(!auto.contains("dbname"), "{auto}");
    assert!(target.join("standby.signal").exists());

    let mut st = Pg::existing(&sc, target);
    st.start();
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    p.sql("INSERT INTO t VALUES (1001)");
    st.wait_for("SELECT count(*) FROM t", "1001", WAIT);
    p.wait_for(
        "SELECT application_name FROM pg_stat_replication",
        "node2",
        WAIT,
    );
}

#[test]
fn a_separate_replication_user_authenticates_with_a_password_file() {
    let sc = Scratch::new("repluser");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    p.sql("CREATE ROLE repl REPLICATION LOGIN PASSWORD 'r3pl s3cret'; CREATE ROLE meta SUPERUSER LOGIN PASSWORD 'm3ta'");
    let pgpass = sc.write(
        ".pgpass",
        &format!(
            "127.0.0.1:{0}:postgres:meta:m3ta\n127.0.0.1:{0}:replication:repl:r3pl s3cret\n",
            p.port
        ),
    );
    let cfg = sc.write(
        "pgclone.conf",
        &format!(
            "node_id=2\nnode_name=node2\nreplication_user=repl\npassfile='{}'\n",
            pgpass.display()
        ),
    );
    let target = sc.path("standby");
    let port = p.port.to_string();
    let out = clone_as_meta_over_tcp(&sc, &cfg, &port, &target, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("replication connection as \"repl\" works"),
        "{}",
        stderr(&out)
    );
    let auto = auto_conf(&target);
    assert!(auto.contains("user=repl "), "{auto}");
    assert!(
        auto.contains(&format!("passfile={}", pgpass.display())),
        "{auto}"
    );
    assert!(
        !auto.contains("password=") && !auto.contains("s3cret"),
        "{auto}"
    );

    let mut st = Pg::existing(&sc, target);
    st.start();
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    p.wait_for("SELECT usename FROM pg_stat_replication", "repl", WAIT);
}

#[test]
fn pgpassword_reaches_primary_conninfo_only_when_asked() {
    let sc = Scratch::new("pgpassword");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    p.sql("CREATE ROLE repl REPLICATION LOGIN PASSWORD 'it''s s3cret'");
    let port = p.port.to_string();
    let base = "node_id=2\nnode_name=node2\nreplication_user=repl\n";
    let args = |cfg: &Path, target: &Path| -> Vec<String> {
        [
            "-f",
            s(cfg),
            "standby",
            "clone",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "repl",
            "-d",
            "postgres",
            "-D",
            s(target),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let env = [("PGPASSWORD", "it's s3cret")];

    // Without use_primary_conninfo_password: PGPASSWORD is used, not written.
    let cfg = sc.write("plain.conf", base);
    let t1 = sc.path("standby1");
    let a = args(&cfg, &t1);
    let out = pgclone(&sc, &a.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!auto_conf(&t1).contains("s3cret"));

    // With it: the password from PGPASSWORD, quoted, in primary_conninfo.
    let cfg = sc.write(
        "withpw.conf",
        &format!("{base}use_primary_conninfo_password=true\n"),
    );
    let t2 = sc.path("standby2");
    let a = args(&cfg, &t2);
    let out = pgclone(&sc, &a.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("s3cret") && !stdout(&out).contains("s3cret"));
    let auto = auto_conf(&t2);
    assert!(auto.contains(r"password=''it\\''s s3cret''"), "{auto}");
    let mut st = Pg::existing(&sc, t2);
    st.start();
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
}

#[test]
fn a_replication_slot_is_created_and_used() {
    let sc = Scratch::new("slots");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let cfg = sc.write(
        "pgclone.conf",
        "node_id=3\nnode_name=node3\nuse_replication_slots=true\n",
    );
    let target = sc.path("standby");
    let out = standby_clone(&sc, &cfg, &p, &target, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(auto_conf(&target).contains("primary_slot_name = 'repmgr_slot_3'"));
    assert_eq!(
        p.sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'repmgr_slot_3'"),
        "1"
    );
    let mut st = Pg::existing(&sc, target);
    st.start();
    p.wait_for(
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'repmgr_slot_3'",
        "t",
        WAIT,
    );
}

#[test]
fn tablespaces_are_mapped_and_never_cloned_onto_themselves() {
    let sc = Scratch::new("tblspc");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let ts = sc.mkdir("ts_primary");
    p.sql(&format!("CREATE TABLESPACE ts LOCATION '{}'", ts.display()));
    p.sql("CREATE TABLE tt(i int) TABLESPACE ts; INSERT INTO tt SELECT generate_series(1, 500)");
    let target = sc.path("standby");

    // Same host, no mapping: refused before anything is touched.
    let cfg = sc.write("nomap.conf", "node_id=2\nnode_name=node2\n");
    let out = standby_clone(&sc, &cfg, &p, &target, &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("would be cloned onto itself"),
        "{}",
        stderr(&out)
    );
    assert!(!target.exists());

    let mapped = sc.path("ts_standby");
    let cfg = sc.write(
        "map.conf",
        &format!(
            "node_id=2\nnode_name=node2\ntablespace_mapping='{}={}'\n",
            ts.display(),
            mapped.display()
        ),
    );
    let out = standby_clone(&sc, &cfg, &p, &target, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let oid = p.sql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts'");
    assert_eq!(
        std::fs::read_link(target.join("pg_tblspc").join(&oid)).unwrap(),
        mapped
    );
    let mut st = Pg::existing(&sc, target);
    st.start();
    st.wait_for("SELECT count(*) FROM tt", "500", WAIT);
}

#[test]
fn a_populated_directory_needs_force_and_dry_run_changes_nothing() {
    let sc = Scratch::new("force");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let target = sc.mkdir("standby");
    sc.write("standby/precious.txt", "keep me");
    let cfg = sc.write(
        "pgclone.conf",
        "node_id=4\nnode_name=node4\nuse_replication_slots=true\n",
    );
    let run = |extra: &[&str]| standby_clone(&sc, &cfg, &p, &target, extra, &[]);

    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("ERROR: destination directory"), "{err}");
    assert!(err.contains("HINT: use -F/--force"), "{err}");
    assert!(target.join("precious.txt").exists());

    // --dry-run with -F: every check, the plan, the files; nothing changes.
    let before = snapshot(&sc.dir);
    let out = run(&["-F", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(plan.contains("pg_basebackup --pgdata"), "{plan}");
    assert!(plan.contains("--slot repmgr_slot_4"), "{plan}");
    assert!(
        plan.contains("create replication slot \"repmgr_slot_4\""),
        "{plan}"
    );
    assert!(
        plan.contains("primary_slot_name = 'repmgr_slot_4'"),
        "{plan}"
    );
    assert!(stderr(&out).contains("dry run complete: nothing was changed"));
    // The plan is the list execution walks, in its order: the directory
    // emptied, the slot made, the copy, its check, the configuration last.
    let at = |what: &str| {
        plan.find(what)
            .unwrap_or_else(|| panic!("no {what:?} in the plan:\n{plan}"))
    };
    let order = [
        at(&format!("empty {}", target.display())),
        at("create replication slot \"repmgr_slot_4\""),
        at("pg_basebackup --pgdata"),
        at(&format!(
            "check that {} is a complete data directory",
            target.display()
        )),
        at("write the recovery configuration"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}\n{plan}");
    let after = unchanged_part(&sc, snapshot(&sc.dir));
    let before = unchanged_part(&sc, before);
    assert_eq!(before, after);
    assert_eq!(p.sql("SELECT count(*) FROM pg_replication_slots"), "0");

    let out = run(&["-F"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!target.join("precious.txt").exists());
    assert!(target.join("PG_VERSION").exists());
}

/// What a dry run must leave alone: everything but the primary's own files
/// (it keeps running) and pgclone's compiled-plugin cache.
fn unchanged_part(
    sc: &Scratch,
    snap: Vec<(std::path::PathBuf, u64, i64)>,
) -> Vec<(std::path::PathBuf, u64, i64)> {
    snap.into_iter()
        .filter(|(p, _, _)| {
            !p.starts_with(sc.path("cache"))
                && !p.starts_with(sc.path("primary"))
                && !p.ends_with("primary.log")
        })
        .collect()
}

#[test]
fn replication_conf_only_configures_an_existing_copy() {
    let sc = Scratch::new("confonly");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let target = sc.path("standby");
    run_ok(
        as_pg(pg_bindir().join("pg_basebackup"))
            .arg("-D")
            .arg(&target)
            .args([
                "-h",
                s(&p.socket_dir),
                "-p",
                &p.port.to_string(),
                "-U",
                "postgres",
                "-X",
                "stream",
            ]),
    );
    // A stale recovery target from the primary must not survive.
    std::fs::write(
        target.join("postgresql.auto.conf"),
        "# Do not edit this file manually!\nwork_mem = '7MB'\nrecovery_target_name = 'stale'\n",
    )
    .unwrap();
    let cfg = sc.write("pgclone.conf", "node_id=2\nnode_name=node2\n");
    let out = standby_clone(&sc, &cfg, &p, &target, &["--recovery-conf-only"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let auto = auto_conf(&target);
    assert!(auto.contains("work_mem = '7MB'"), "{auto}");
    assert!(!auto.contains("stale"), "{auto}");
    assert!(auto.contains("primary_conninfo"), "{auto}");
    let mut st = Pg::existing(&sc, target);
    st.start();
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
}

#[test]
fn an_unreachable_upstream_is_an_error_and_changes_nothing() {
    let sc = Scratch::new("unreachable");
    let cfg = sc.write("pgclone.conf", "node_id=2\nnode_name=node2\n");
    let target = sc.path("standby");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let out = pgclone(
        &sc,
        &[
            "-f",
            s(&cfg),
            "standby",
            "clone",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-D",
            s(&target),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "ERROR: could not connect to server \"127.0.0.1:{port}\""
        )),
        "{err}"
    );
    assert!(!target.exists());
}

#[test]
fn pg_hba_refusing_replication_is_reported_with_a_hint() {
    let sc = Scratch::new("hba");
    let mut p = Pg::init(&sc, "primary");
    p.hba_prepend("host replication repl 127.0.0.1/32 reject");
    p.start();
    p.sql("CREATE ROLE repl REPLICATION LOGIN PASSWORD 'pw'");
    let cfg = sc.write(
        "pgclone.conf",
        "node_id=2\nnode_name=node2\nreplication_user=repl\n",
    );
    let target = sc.path("standby");
    let port = p.port.to_string();
    let out = pgclone(
        &sc,
        &[
            "-f",
            s(&cfg),
            "standby",
            "clone",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "repl",
            "-d",
            "postgres",
            "-D",
            s(&target),
        ],
        &[("PGPASSWORD", "pw")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("a replication connection to server \"127.0.0.1"),
        "{err}"
    );
    assert!(err.contains("pg_hba.conf"), "{err}");
    assert!(
        err.contains(
            "HINT: allow it in the upstream's pg_hba.conf: host replication repl 127.0.0.1/32 scram-sha-256"
        ),
        "{err}"
    );
    // The address the upstream saw, not a placeholder (issue 26, 2.8).
    assert!(!err.contains("<this host>"), "{err}");
    assert!(!target.exists());
}

#[test]
fn a_running_server_in_the_target_is_refused_even_with_force() {
    let sc = Scratch::new("running");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let mut other = Pg::init(&sc, "other");
    other.start();
    let cfg = sc.write("pgclone.conf", "node_id=2\nnode_name=node2\n");
    let out = standby_clone(&sc, &cfg, &p, &other.data, &["-F"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is running in"), "{}", stderr(&out));
    assert_eq!(other.sql("SELECT 1"), "1");
}

#[test]
fn a_killed_pg_basebackup_ends_in_error_with_nothing_left_behind() {
    let sc = Scratch::new("killed");
    let SlowClone {
        primary: p,
        target,
        handle,
    } = slow_clone(&sc, 5, Vec::new());
    std::thread::sleep(Duration::from_millis(500));
    let pattern = format!("pg_basebackup --pgdata {}", target.display());
    run_ok(std::process::Command::new("pkill").args(["-9", "-f", &pattern]));
    let out = handle.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("ERROR: pg_basebackup was killed by signal 9"),
        "{err}"
    );
    assert!(
        err.contains("replication slot \"repmgr_slot_5\" was dropped again"),
        "{err}"
    );
    assert!(
        err.contains("no recovery configuration was written"),
        "{err}"
    );
    assert!(
        !err.contains("standby clone (using pg_basebackup) complete"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    assert_eq!(p.sql("SELECT count(*) FROM pg_replication_slots"), "0");
}

#[test]
fn upstream_node_id_takes_conninfo_and_replication_user_from_repmgr() {
    let sc = Scratch::new("nodeid");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    p.sql("CREATE ROLE repl REPLICATION LOGIN");
    // A repmgr-managed primary, registered by repmgr itself.
    p.register_with_repmgr(
        &sc,
        " connect_timeout=3",
        "replication_user=repl
",
    );
    let cfg = sc.write("node2.conf", "node_id=2\nnode_name=node2\n");
    let target = sc.path("standby");
    let out = standby_clone(&sc, &cfg, &p, &target, &["--upstream-node-id", "1"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let auto = auto_conf(&target);
    assert!(auto.contains("user=repl"), "{auto}");
    assert!(auto.contains("connect_timeout=3"), "{auto}");
    assert!(auto.contains("application_name=node2"), "{auto}");
    let mut st = Pg::existing(&sc, target);
    st.start();
    p.wait_for("SELECT usename FROM pg_stat_replication", "repl", WAIT);
}

/// On a terminal the copy is one live line with its total, percent, rate and
/// time left (pg_basebackup's own reports, read by pgclone), then its summary.
#[test]
fn on_a_terminal_the_copy_shows_its_progress() {
    let sc = Scratch::new("termprogress");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    p.sql(
        "CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 300000) g",
    );
    // Slowed down so that pg_basebackup reports more than its start and end.
    let cfg = sc.write(
        "pgclone.conf",
        "node_id=2\nnode_name=node2\npg_basebackup_options='--max-rate=32M'\n",
    );
    let target = sc.path("standby");
    let args = clone_args(&cfg, &p, &target, &["-c"]);
    let out = pgclone_on_terminal(&sc, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let text = stdout(&out);
    if std::env::var_os("PGCLONE_SHOW").is_some() {
        eprintln!("{text:?}");
    }
    assert!(out.status.success(), "{text}");
    assert!(text.contains("copy ["), "{text:?}");
    assert!(text.contains("%), ") && text.contains(" left"), "{text:?}");
    assert!(text.contains("INFO: copy: "), "{text}");
    // The summary is a line of its own: not padded to the terminal's width,
    // ended by its newline (issue 26, 2.8).
    let after = text.rsplit("INFO: copy: ").next().unwrap();
    let line = &after[..after
        .find('\n')
        .unwrap_or_else(|| panic!("no newline: {after:?}"))];
    assert!(
        line.ends_with("MiB/s\r") || line.ends_with("MiB/s"),
        "{line:?}"
    );
    // pg_basebackup's --verbose account is pgclone's, not the operator's:
    // not shown without -v.
    assert!(
        !text.contains("pg_basebackup: checkpoint completed"),
        "{text}"
    );
    assert!(target.join("standby.signal").exists());
}

#[test]
fn verify_backup_and_external_config_files() {
    // It reads the machine's default plugins.toml (there is none).
    let _etc = system_paths::reading();
    let sc = Scratch::new("verify");
    let mut p = Pg::init(&sc, "primary");
    let etc = sc.mkdir("etc");
    let ident = sc.write(
        "etc/ident_ext.conf",
        "# external ident map\nmap1 os_user db_user\n",
    );
    p.append_conf(&format!("ident_file = '{}'\n", ident.display()));
    let _ = etc;
    p.start();
    let cfg = sc.write("pgclone.conf", "node_id=2\nnode_name=node2\n");
    let target = sc.path("standby");
    let out = standby_clone(
        &sc,
        &cfg,
        &p,
        &target,
        &["--verify-backup", "--copy-external-config-files=pgdata"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("pg_verifybackup: backup successfully verified"),
        "{err}"
    );
    assert!(
        err.contains(
            "INFO: no /etc/pgclone/plugins.toml: first-party plugins only; recovery policies: recovery-standard"
        ),
        "{err}"
    );
    // Not on a terminal: no live lines, a summary per phase.
    assert!(!err.contains('\r') && !err.contains('\x1b'), "{err:?}");
    for phase in ["copy", "verify"] {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("INFO: {phase}: ")))
            .unwrap_or_else(|| panic!("no {phase} summary in {err}"));
        assert!(
            line.contains(" MiB in ") && line.ends_with(" MiB/s"),
            "{line}"
        );
        // The bytes are those of the copy (a fresh cluster has over 20 MiB).
        let mib: f64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(mib > 15.0, "{line}");
    }
    assert_eq!(
        std::fs::read_to_string(target.join("ident_ext.conf")).unwrap(),
        "# external ident map\nmap1 os_user db_user\n"
    );
}

#[test]
fn the_error_is_the_first_failed_check_listed() {
    // No pg_hba line for replication and a populated target: both are
    // listed, and the ERROR is the first of them (the replication check).
    let sc = Scratch::new("first-failure");
    let mut p = Pg::init(&sc, "primary");
    p.hba_prepend("host replication repl 127.0.0.1/32 reject");
    p.start();
    p.sql("CREATE ROLE repl REPLICATION LOGIN PASSWORD 'pw'; CREATE ROLE meta SUPERUSER LOGIN PASSWORD 'pw'");
    let cfg = sc.write(
        "pgclone.conf",
        "node_id=2\nnode_name=node2\nreplication_user=repl\n",
    );
    let target = sc.mkdir("standby");
    sc.write("standby/old-file", "x");
    let port = p.port.to_string();
    let out = clone_as_meta_over_tcp(&sc, &cfg, &port, &target, &[], &[("PGPASSWORD", "pw")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("2 preflight checks failed"), "{err}");
    let fails: Vec<&str> = err.lines().filter(|l| l.starts_with("  FAIL  ")).collect();
    assert_eq!(fails.len(), 2, "{err}");
    assert!(fails[0].contains("a replication connection to"), "{err}");
    assert!(
        fails[1].contains(&format!(
            "destination directory \"{}\" cannot be used",
            target.display()
        )),
        "{err}"
    );
    let headline = err.lines().find(|l| l.starts_with("ERROR: ")).unwrap();
    assert!(headline.contains("a replication connection to"), "{err}");
    assert!(
        err.contains("HINT: allow it in the upstream's pg_hba.conf: host replication repl"),
        "{err}"
    );
    assert!(target.join("old-file").exists());
}

#[test]
fn a_missing_password_hint_makes_every_connection_work_in_one_step() {
    let sc = Scratch::new("pgpass-one-step");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    p.sql("CREATE ROLE repl REPLICATION LOGIN PASSWORD 'r3pl'; CREATE ROLE meta SUPERUSER LOGIN PASSWORD 'm3ta'");
    let port = p.port.to_string();
    let target = sc.path("standby");
    let pgpass = sc.write("pgpass", "");
    let cfg = sc.write(
        "pgclone.conf",
        &format!(
            "node_id=2\nnode_name=node2\nreplication_user=repl\npassfile='{}'\n",
            pgpass.display()
        ),
    );
    let out = clone_as_meta_over_tcp(&sc, &cfg, &port, &target, &["--dry-run"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let hint = err.lines().find(|l| l.starts_with("HINT: ")).unwrap();
    // The lines for pgclone's own connection and the replication one.
    let lines: Vec<&str> = hint
        .split_whitespace()
        .map(|w| w.trim_end_matches([',', ';', ')']))
        .filter(|w| w.ends_with(":PASSWORD"))
        .collect();
    assert_eq!(
        lines,
        [
            format!("127.0.0.1:{port}:postgres:meta:PASSWORD"),
            format!("127.0.0.1:{port}:replication:repl:PASSWORD"),
        ],
        "{err}"
    );
    // Written as the hint says, every connection of the clone works.
    let filled: String = lines
        .iter()
        .map(|l| {
            let pw = if l.contains(":repl:") { "r3pl" } else { "m3ta" };
            format!("{}\n", l.replace("PASSWORD", pw))
        })
        .collect();
    sc.write("pgpass", &filled);
    let out = clone_as_meta_over_tcp(&sc, &cfg, &port, &target, &["--dry-run"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // One user for both: the single line with * is offered, and works.
    sc.write("pgpass", "");
    let cfg = sc.write(
        "one-user.conf",
        &format!(
            "node_id=2\nnode_name=node2\npassfile='{}'\n",
            pgpass.display()
        ),
    );
    let out = clone_as_meta_over_tcp(&sc, &cfg, &port, &target, &["--dry-run"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let wild = format!("127.0.0.1:{port}:*:meta:PASSWORD");
    assert!(
        err.contains(&format!("(or the one line {wild} for them all)")),
        "{err}"
    );
    sc.write("pgpass", &format!("{}\n", wild.replace("PASSWORD", "m3ta")));
    let out = clone_as_meta_over_tcp(&sc, &cfg, &port, &target, &["--dry-run"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn password_problems_name_the_user_and_where_the_password_came_from() {
    let sc = Scratch::new("passwords");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    p.sql("CREATE ROLE repl REPLICATION LOGIN PASSWORD 'r3pl'; CREATE ROLE meta SUPERUSER LOGIN PASSWORD 'm3ta'");
    let port = p.port.to_string();
    let target = sc.path("standby");
    let run = |cfg: &Path, env: &[(&str, &str)]| {
        clone_as_meta_over_tcp(&sc, cfg, &port, &target, &["--dry-run"], env)
    };
    let never_shown = |err: &str| {
        for secret in ["wr0ng", "m3ta", "r3pl'"] {
            assert!(!err.contains(secret), "a password was printed:\n{err}");
        }
    };

    // The replication user's password is in the configured passfile, and wrong.
    let pgpass = sc.write(
        "pgpass",
        &format!("127.0.0.1:{port}:postgres:meta:m3ta\n127.0.0.1:{port}:replication:repl:wr0ng\n"),
    );
    let cfg = sc.write(
        "pgclone.conf",
        &format!(
            "node_id=2\nnode_name=node2\nreplication_user=repl\npassfile='{}'\n",
            pgpass.display()
        ),
    );
    let out = run(&cfg, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "refused the password of user \"repl\" taken from password file \"{}\"",
            pgpass.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("HINT: correct the password for \"repl\""),
        "{err}"
    );
    assert!(!err.contains("~/.pgpass"), "{err}");
    never_shown(&err);

    // No password anywhere: which user, where pgclone looked, the line to add.
    let cfg = sc.write("nopass.conf", "node_id=2\nnode_name=node2\n");
    let out = run(&cfg, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("asks user \"meta\" for a password and none was found"),
        "{err}"
    );
    assert!(!err.contains("invalid configuration"), "{err}");
    assert!(
        err.contains(&format!(
            "HINT: add the line 127.0.0.1:{port}:postgres:meta:PASSWORD to"
        )),
        "{err}"
    );

    // A wrong superuser password from PGPASSWORD.
    let out = run(&cfg, &[("PGPASSWORD", "wr0ng")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refused the password of user \"meta\" taken from PGPASSWORD"),
        "{err}"
    );
    assert!(err.contains("HINT: "), "{err}");
    never_shown(&err);
    assert!(!target.exists());
}

#[test]
fn verbose_shows_each_program_pgclone_runs_and_no_engine_internals() {
    let sc = Scratch::new("verbose");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let cfg = sc.write("pgclone.conf", "node_id=2\nnode_name=node2\n");
    let target = sc.path("standby");
    let out = standby_clone(
        &sc,
        &cfg,
        &p,
        &target,
        &["-v"],
        &[("PGPASSWORD", "n0t-shown")],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("DEBUG: running ") && err.contains("/psql -X -w"),
        "{err}"
    );
    assert!(err.contains("/pg_basebackup --pgdata"), "{err}");
    assert!(!err.contains("n0t-shown"), "{err}");
    // -vv: pgclone's own debug output, not wasmtime's or cranelift's.
    let out = standby_clone(
        &sc,
        &cfg,
        &p,
        &sc.path("standby2"),
        &["-vv", "--dry-run"],
        &[],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("DEBUG: running "), "{err}");
    for internal in ["cranelift", "wasmtime"] {
        assert!(
            !err.to_lowercase().contains(internal),
            "{internal} in:\n{err}"
        );
    }
    // Without -v, none of it.
    let out = standby_clone(&sc, &cfg, &p, &sc.path("standby3"), &["--dry-run"], &[]);
    assert!(!stderr(&out).contains("DEBUG:"), "{}", stderr(&out));
}

/// Without -c the upstream's spread checkpoint is said while the copy waits
/// for it, with how to avoid the wait, and the copy's rate leaves it out
/// (issue 26, 2.7); patroni-replica asks for a fast one as Patroni's
/// basebackup method spells it.
#[test]
fn a_spread_checkpoint_is_said_with_how_to_avoid_it() {
    let sc = Scratch::new("spreadckpt");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    // A spread checkpoint of a few seconds: paced over 0.1 x 30 s.
    p.sql("ALTER SYSTEM SET checkpoint_timeout = '30s'");
    p.sql("ALTER SYSTEM SET checkpoint_completion_target = 0.1");
    // The copy brings the upstream's port along (issue 26, 2.8).
    p.sql(&format!("ALTER SYSTEM SET port = {}", p.port));
    p.sql("SELECT pg_reload_conf()");
    p.sql("CREATE TABLE d AS SELECT generate_series(1, 300000) AS i");
    let cfg = sc.write("pgclone.conf", "node_id=2\nnode_name=node2\n");
    let target = sc.path("standby");
    let t0 = std::time::Instant::now();
    let out = standby_clone(&sc, &cfg, &p, &target, &[], &[]);
    let err = stderr(&out);
    eprintln!("spread: {:?}", t0.elapsed());
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "NOTICE: waiting for the upstream's checkpoint before the copy starts: it is a spread checkpoint"
        ),
        "{err}"
    );
    assert!(
        err.contains("\nHINT: -c/--fast-checkpoint asks the upstream for an immediate checkpoint"),
        "{err}"
    );
    let summary = err
        .lines()
        .find(|l| l.starts_with("INFO: copy: "))
        .unwrap_or_else(|| panic!("no summary: {err}"));
    assert!(
        summary.contains(" waiting for the upstream's checkpoint)"),
        "{summary}"
    );
    // On this host the copy's port is the upstream's: the start hint says so
    // and names a free one.
    assert!(
        err.contains(&format!(
            "WARNING: the copied configuration sets port {}, where the upstream listens on this host",
            p.port
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "HINT: give it a port of its own, for example: pg_ctl -D {} -o '-p ",
            target.display()
        )),
        "{err}"
    );
    assert!(
        !err.contains(&format!("pg_ctl -D {} start", target.display())),
        "{err}"
    );

    // Patroni's member: checkpoint=fast in the method's section.
    p.sql("INSERT INTO d SELECT generate_series(1, 300000)");
    let replica = sc.path("replica");
    let datadir = format!("--datadir={}", replica.display());
    let conn = format!(
        "--connstring=dbname=postgres user=postgres host={} port={}",
        p.socket_dir.display(),
        p.port
    );
    let t0 = std::time::Instant::now();
    let out = pgclone(
        &sc,
        &[
            "-f",
            s(&cfg),
            "-v",
            "patroni-replica",
            "--scope=demo",
            "--role=replica",
            &datadir,
            &conn,
            "--checkpoint=fast",
        ],
        &[],
    );
    let err = stderr(&out);
    eprintln!("fast: {:?}", t0.elapsed());
    assert!(out.status.success(), "{err}");
    let run = err
        .lines()
        .find(|l| l.starts_with("DEBUG: running ") && l.contains("pg_basebackup"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(run.contains(" --checkpoint fast "), "{run}");
    assert!(!err.contains("spread checkpoint"), "{err}");
    let out = pgclone(
        &sc,
        &[
            "-f",
            s(&cfg),
            "patroni-replica",
            &datadir,
            &conn,
            "--checkpoint=soon",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value \"soon\" for --checkpoint: expected fast or spread"),
        "{}",
        stderr(&out)
    );
}
