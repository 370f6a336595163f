//! Where a clone may never write, tried with real running servers as the
//! would-be victims: the parent of a data directory, a directory inside one,
//! the upstream's own directory however its host is spelled, home
//! directories; and bounded time against hosts that never answer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::*;

fn pid_of(pg: &Pg) -> String {
    std::fs::read_to_string(pg.data.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

fn assert_refused(out: &std::process::Output, wants: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in wants {
        assert!(err.contains(w), "expected {w:?} in:\n{err}");
    }
    assert!(err.contains("HINT: "), "{err}");
    assert!(!err.contains("complete"), "{err}");
    err
}

#[test]
fn the_parent_of_a_running_server_is_never_emptied() {
    let sc = Scratch::new("safety-parent");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let parent = sc.mkdir("node3");
    let mut victim = Pg::init(&sc, "node3/data");
    victim.start();
    victim.sql("CREATE TABLE precious AS SELECT 42 AS i");
    let pid = format!("PID {}", pid_of(&victim));
    let victim_dir = victim.data.display().to_string();
    let wants = ["contains another data directory", &pid, &victim_dir];

    // -D, with and without --dry-run.
    let cfg = sc.write("pgclone.conf", "node_id=3\nnode_name=node3\n");
    for extra in [&["-F", "--dry-run"][..], &["-F"]] {
        let out = standby_clone(&sc, &cfg, &p, &parent, extra, &[]);
        assert_refused(&out, &wants);
    }
    // data_directory in the configuration, as the issue saw it.
    let cfg = sc.write(
        "pgclone-dd.conf",
        &format!(
            "node_id=3\nnode_name=node3\ndata_directory='{}'\n",
            parent.display()
        ),
    );
    let port = p.port.to_string();
    let out = pgclone(
        &sc,
        &[
            "-f",
            cfg.to_str().unwrap(),
            "standby",
            "clone",
            "-h",
            p.socket_dir.to_str().unwrap(),
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-F",
        ],
        &[],
    );
    assert_refused(&out, &wants);
    // The victim did not lose a file.
    assert_eq!(victim.sql("SELECT i FROM precious"), "42");
    assert!(victim.data.join("PG_VERSION").exists());
    assert!(sc.path("node3/data.log").exists());

    // Stopped, it is still a data directory nobody may empty by accident.
    victim.stop();
    let out = standby_clone(&sc, &cfg, &p, &parent, &["-F"], &[]);
    assert_refused(
        &out,
        &["contains another data directory", "no server running"],
    );
    assert!(victim.data.join("global/pg_control").exists());
}

#[test]
fn nothing_is_written_inside_a_data_directory() {
    let sc = Scratch::new("safety-inside");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let vol = sc.mkdir("vol");
    let mut victim = Pg::init(&sc, "vol/victim");
    victim.start();
    let pid = format!("PID {}", pid_of(&victim));
    let cfg = sc.write("pgclone.conf", "node_id=3\nnode_name=node3\n");

    // The data directory inside a running server's.
    let inside = victim.data.join("standby");
    let out = standby_clone(&sc, &cfg, &p, &inside, &["--dry-run"], &[]);
    assert_refused(&out, &["lies inside another data directory", &pid]);
    let out = standby_clone(&sc, &cfg, &p, &inside, &[], &[]);
    assert_refused(&out, &["lies inside another data directory", &pid]);
    assert!(!inside.exists());

    // --waldir inside a data directory, or above one.
    let target = sc.path("standby");
    for (waldir, why) in [
        (
            victim.data.join("wal"),
            "lies inside another data directory",
        ),
        (vol, "contains another data directory"),
    ] {
        let cfg = sc.write(
            "pgclone-wal.conf",
            &format!(
                "node_id=3\nnode_name=node3\npg_basebackup_options='--waldir={}'\n",
                waldir.display()
            ),
        );
        let out = standby_clone(&sc, &cfg, &p, &target, &[], &[]);
        assert_refused(&out, &[why]);
        assert!(!target.exists(), "{}", stderr(&out));
    }
    assert!(!victim.data.join("wal").exists());
    assert_eq!(victim.sql("SELECT 1"), "1");
}

#[test]
fn home_and_system_directories_are_refused() {
    let sc = Scratch::new("safety-home");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let cfg = sc.write("pgclone.conf", "node_id=3\nnode_name=node3\n");
    // nobody's home, from the password database (it need not exist).
    let home = run_ok(std::process::Command::new("getent").args(["passwd", "nobody"]));
    let home = home.trim().split(':').nth(5).unwrap().to_string();
    let out = standby_clone(&sc, &cfg, &p, Path::new(&home), &["-F", "--dry-run"], &[]);
    assert_refused(&out, &["home directory"]);
    for dir in ["/var/lib/postgresql", "/etc/postgresql", "/usr/local"] {
        let out = standby_clone(&sc, &cfg, &p, Path::new(dir), &["-F"], &[]);
        assert_refused(&out, &["system directory"]);
    }
}

/// A standby of `p`, cloned by pgclone and running.
fn running_standby(sc: &Scratch, p: &Pg, name: &str) -> Pg {
    let cfg = sc.write(&format!("{name}.conf"), "node_id=2\nnode_name=node2\n");
    let target = sc.path(name);
    let out = standby_clone(sc, &cfg, p, &target, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut st = Pg::existing(sc, target);
    st.start();
    st
}

#[test]
fn the_upstream_is_recognised_by_what_it_is_not_by_its_spelling() {
    let sc = Scratch::new("safety-upstream");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    p.sql("ALTER USER postgres PASSWORD 'secret'");
    // A cascading upstream: a running standby, reconfigured with
    // --replication-conf-only into its own data directory.
    let st = running_standby(&sc, &p, "standby");
    let before = std::fs::read_to_string(st.data.join("postgresql.auto.conf")).unwrap();
    let socket_link = sc.path("sockets");
    std::os::unix::fs::symlink(&sc.dir, &socket_link).unwrap();
    let data_link = sc.path("standby-link");
    std::os::unix::fs::symlink(&st.data, &data_link).unwrap();
    let cfg = sc.write("node3.conf", "node_id=3\nnode_name=node3\n");
    let port = st.port.to_string();
    let socket_link = socket_link.display().to_string();
    let socket_dir = sc.dir.display().to_string();
    let hosts = [
        "127.0.0.1",
        "127.1",
        "::ffff:127.0.0.1",
        socket_dir.as_str(),
        socket_link.as_str(),
    ];
    for host in hosts {
        for dir in [&st.data, &data_link] {
            let out = pgclone(
                &sc,
                &[
                    "-f",
                    cfg.to_str().unwrap(),
                    "standby",
                    "clone",
                    "-h",
                    host,
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-D",
                    dir.to_str().unwrap(),
                    "--replication-conf-only",
                ],
                &[("PGPASSWORD", "secret")],
            );
            assert_refused(&out, &["is the data directory of the server being cloned"]);
        }
    }
    let after = std::fs::read_to_string(st.data.join("postgresql.auto.conf")).unwrap();
    assert_eq!(before, after, "the standby's configuration was changed");
    st.wait_for(
        "SELECT status FROM pg_stat_wal_receiver",
        "streaming",
        Duration::from_secs(60),
    );

    // The primary itself, by 127.1: it is not a standby either.
    let out = pgclone(
        &sc,
        &[
            "-f",
            cfg.to_str().unwrap(),
            "standby",
            "clone",
            "-h",
            "127.1",
            "-p",
            &p.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-D",
            p.data.to_str().unwrap(),
            "--replication-conf-only",
        ],
        &[("PGPASSWORD", "secret")],
    );
    assert_refused(&out, &["server being cloned"]);
    assert!(!p.data.join("standby.signal").exists());
}

/// Entries of `dir` (empty when it does not exist).
fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn an_interrupted_clone_removes_what_it_made() {
    let sc = Scratch::new("safety-interrupt");
    let tmp = sc.mkdir("tmp");
    let tmp_env = ("TMPDIR".to_string(), tmp.display().to_string());
    let SlowClone {
        primary: p,
        target,
        handle,
    } = slow_clone(&sc, 6, vec![tmp_env]);
    assert!(
        !entries(&tmp).is_empty(),
        "pgclone's scratch directory should be in TMPDIR"
    );
    // Signal pgclone itself (not runuser, not pg_basebackup).
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_pgclone")).unwrap();
    let pids = run_ok(std::process::Command::new("pgrep").args(["-f", target.to_str().unwrap()]));
    let pgclone_pid = pids
        .lines()
        .find(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe))
        .expect("pgclone's process")
        .to_string();
    run_ok(std::process::Command::new("kill").args(["-INT", &pgclone_pid]));
    let out = handle.join().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ERROR: interrupted by SIGINT"), "{err}");
    assert!(err.contains("the incomplete copy"), "{err}");
    assert!(
        err.contains("replication slot \"repmgr_slot_6\" was dropped again"),
        "{err}"
    );
    assert_eq!(entries(&target).len(), 0);
    assert_eq!(
        entries(&tmp),
        Vec::<PathBuf>::new(),
        "scratch files left behind"
    );
    assert_eq!(p.sql("SELECT count(*) FROM pg_replication_slots"), "0");
    // Nothing of pg_basebackup is left running.
    let left = std::process::Command::new("pgrep")
        .args([
            "-f",
            &format!("pg_basebackup --pgdata {}", target.display()),
        ])
        .output()
        .unwrap();
    assert!(!left.status.success(), "pg_basebackup still runs");
}

/// A TCP port that accepts connections and never says a word: ssh waits for
/// a banner, PostgreSQL's client for an answer to its start-up packet.
fn black_hole() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[test]
fn an_upstream_that_never_answers_is_reported_within_its_timeout() {
    let sc = Scratch::new("safety-blackhole-pg");
    let (_hole, port) = black_hole();
    let cfg = sc.write("pgclone.conf", "node_id=3\nnode_name=node3\n");
    let target = sc.path("standby");
    let tmp = sc.mkdir("tmp");
    let dbname =
        format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=3");
    let t = Instant::now();
    let out = pgclone(
        &sc,
        &[
            "-f",
            cfg.to_str().unwrap(),
            "standby",
            "clone",
            "-d",
            &dbname,
            "-D",
            target.to_str().unwrap(),
            "--dry-run",
        ],
        &[("TMPDIR", tmp.to_str().unwrap())],
    );
    let took = t.elapsed();
    let err = assert_refused(
        &out,
        &[
            "could not connect to server \"127.0.0.1",
            "no answer within 3 s",
        ],
    );
    assert!(took < Duration::from_secs(30), "took {took:?}:\n{err}");
    assert!(!target.exists());
    assert!(entries(&tmp).is_empty());
}

#[test]
fn a_barman_host_that_never_answers_is_named_within_its_timeout() {
    let sc = Scratch::new("safety-blackhole-ssh");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let (_hole, port) = black_hole();
    // ssh finds ~/.ssh/config through the password database, not $HOME.
    let ssh_config = sc.write(
        "ssh_config",
        &format!(
            "Host blackhole\n  HostName 127.0.0.1\n  Port {port}\n  User barman\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
        ),
    );
    let cfg = sc.write(
        "pgclone.conf",
        &format!(
            "node_id=3\nnode_name=node3\nbarman_host=blackhole\nbarman_server=pg\nssh_connect_timeout=3\nssh_options='-F {}'\n",
            ssh_config.display()
        ),
    );
    let target = sc.path("standby");
    let tmp = sc.mkdir("tmp");
    let t = Instant::now();
    let args = clone_args(&cfg, &p, &target, &["--dry-run"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = pgclone(&sc, &refs, &[("TMPDIR", tmp.to_str().unwrap())]);
    let took = t.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("blackhole"), "the host is not named:\n{err}");
    assert!(err.to_lowercase().contains("timed out"), "{err}");
    assert!(took < Duration::from_secs(40), "took {took:?}:\n{err}");
    assert!(!target.exists());
    assert!(entries(&tmp).is_empty());
}

#[test]
fn the_headline_error_is_the_running_server_not_the_slot() {
    let sc = Scratch::new("safety-headline");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    // A running standby that holds its slot, active.
    let cfg = sc.write(
        "node2.conf",
        "node_id=2\nnode_name=node2\nuse_replication_slots=true\n",
    );
    let target = sc.path("standby");
    let out = standby_clone(&sc, &cfg, &p, &target, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut st = Pg::existing(&sc, target.clone());
    st.start();
    p.wait_for(
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'repmgr_slot_2'",
        "t",
        Duration::from_secs(60),
    );
    // The same node cloned again over it: two failures, listed with reasons.
    let out = standby_clone(&sc, &cfg, &p, &target, &["-F"], &[]);
    let err = assert_refused(&out, &["2 preflight checks failed"]);
    let headline = err.lines().find(|l| l.starts_with("ERROR: ")).unwrap();
    assert!(headline.contains("is running in"), "{err}");
    assert!(
        err.contains("FAIL  replication slot \"repmgr_slot_2\""),
        "{err}"
    );
    // No bare line between DETAIL and HINT.
    let detail = err.lines().position(|l| l.starts_with("DETAIL: ")).unwrap();
    assert!(
        err.lines().nth(detail + 1).unwrap().starts_with("HINT: "),
        "{err}"
    );
    st.wait_for(
        "SELECT status FROM pg_stat_wal_receiver",
        "streaming",
        Duration::from_secs(60),
    );
}
