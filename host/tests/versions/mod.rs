//! PostgreSQL 12 to 18, data-driven: per version a real primary, a clone with
//! pg_basebackup that streams (standby.signal), and a standby in archive
//! recovery fed only by `pgclone wal-restore` from a real Barman over sshd.
//! scripts/test.sh fetches the binaries (PGCLONE_TEST_PG<N>_BINDIR).
//!
//! Barman (Debian's 3.4) archives as its users run it with `backup_method =
//! postgres`: its streaming archiver, pg_receivewal from `path_prefix`, the
//! version's own for 14+, Debian's 15 for 12 and 13.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::barman::{barman_34, Sshd};
use crate::support::*;

/// One PostgreSQL version under test: its server binaries and the client
/// tools (pg_basebackup) pgclone runs against it.
struct Version {
    major: u32,
    server: PathBuf,
    client: PathBuf,
}

/// Debian's client tools: the embedded-postgres builds of 12 and 13 ship
/// servers only, and a newer pg_basebackup clones older servers.
const DEBIAN_BIN: &str = "/usr/lib/postgresql/15/bin";

fn versions() -> Vec<Version> {
    let deps = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-deps");
    [12, 13, 14, 16, 17, 18]
        .into_iter()
        .map(|major| {
            let fallback = if major < 14 {
                deps.join(format!("pg{major}/package/native/bin"))
            } else {
                deps.join(format!("pg{major}/bin"))
            };
            let server = std::env::var_os(format!("PGCLONE_TEST_PG{major}_BINDIR"))
                .map(PathBuf::from)
                .unwrap_or(fallback);
            assert!(
                server.join("postgres").exists(),
                "PostgreSQL {major} binaries not found in {}: run scripts/test.sh, which fetches them",
                server.display()
            );
            let client = if server.join("pg_basebackup").exists() {
                server.clone()
            } else {
                PathBuf::from(DEBIAN_BIN)
            };
            Version {
                major,
                server,
                client,
            }
        })
        .collect()
}

/// The sshd and Barman every version shares; each version is a Barman
/// server of its own (`pg<N>`).
struct Lab {
    sc: Scratch,
    sshd: Sshd,
    barman_conf: PathBuf,
    barman_home: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let sc = Scratch::new("versions");
        let sshd = Sshd::start(&sc, "/usr/bin:/bin");
        let dir = sc.path("barman");
        std::fs::create_dir_all(dir.join("home")).unwrap();
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        let barman_conf = dir.join("barman.conf");
        std::fs::write(
            &barman_conf,
            format!(
                "[barman]\nbarman_user = barman\nbarman_home = {d}/home\nlog_file = {d}/barman.log\n\
                 log_level = INFO\nconfiguration_files_directory = {d}/conf.d\n",
                d = dir.display()
            ),
        )
        .unwrap();
        chown_barman(&dir);
        Lab {
            sc,
            sshd,
            barman_conf,
            barman_home: dir.join("home"),
        }
    }

    fn barman(&self, args: &[&str]) -> String {
        run_ok(
            Command::new("runuser")
                .args(["-u", "barman", "--"])
                .arg(barman_34())
                .arg("-c")
                .arg(&self.barman_conf)
                .args(args),
        )
    }

    /// Declares Barman server `name` for the running `pg` and starts its
    /// streaming archiver (stopped when the guard drops).
    fn add_server<'a>(&'a self, name: &str, pg: &Pg, v: &Version) -> Receiver<'a> {
        let conninfo = format!(
            "host={} port={} user=postgres",
            pg.socket_dir.display(),
            pg.port
        );
        let conf_d = self.barman_conf.parent().unwrap().join("conf.d");
        std::fs::write(
            conf_d.join(format!("{name}.conf")),
            format!(
                "[{name}]\ndescription = PostgreSQL {major}\nconninfo = {conninfo} dbname=postgres\n\
                 streaming_conninfo = {conninfo}\nbackup_method = postgres\nstreaming_archiver = on\n\
                 slot_name = barman\ncreate_slot = auto\npath_prefix = {bin}\n",
                major = v.major,
                bin = v.client.display()
            ),
        )
        .unwrap();
        chown_barman(&conf_d);
        self.barman(&["receive-wal", "--create-slot", name]);
        let guard = Receiver {
            lab: self,
            server: name.to_string(),
        };
        self.barman(&["cron"]);
        guard
    }
}

/// A Barman server's running WAL receiver.
struct Receiver<'a> {
    lab: &'a Lab,
    server: String,
}

impl Drop for Receiver<'_> {
    fn drop(&mut self) {
        let _ = run(Command::new("runuser")
            .args(["-u", "barman", "--"])
            .arg(barman_34())
            .arg("-c")
            .arg(&self.lab.barman_conf)
            .args(["receive-wal", "--stop", &self.server]));
    }
}

fn chown_barman(p: &Path) {
    run_ok(Command::new("chown").args(["-R", "barman:barman"]).arg(p));
}

/// `pgclone standby clone` of `primary` into `name` with `v`'s client tools.
fn clone(lab: &Lab, v: &Version, primary: &Pg, name: &str, node: u32) -> PathBuf {
    let cfg = lab.sc.write(
        &format!("pg{}-node{node}.conf", v.major),
        &format!(
            "node_id={node}\nnode_name=node{node}\npg_bindir='{}'\n",
            v.client.display()
        ),
    );
    let target = lab.sc.path(name);
    let out = standby_clone(&lab.sc, &cfg, primary, &target, &["--fast-checkpoint"], &[]);
    assert!(
        out.status.success(),
        "PostgreSQL {}: {}",
        v.major,
        stderr(&out)
    );
    let want = format!("upstream is PostgreSQL {}.", v.major);
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    target
}

/// The recovery configuration of 12+: standby.signal and the settings in
/// postgresql.auto.conf, never a recovery.conf (which 12+ refuses to start with).
fn assert_recovery_config(v: &Version, target: &Path) {
    assert!(target.join("standby.signal").exists(), "PG {}", v.major);
    assert!(!target.join("recovery.conf").exists(), "PG {}", v.major);
    let auto = std::fs::read_to_string(target.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("primary_conninfo = '"),
        "PG {}: {auto}",
        v.major
    );
    assert!(
        auto.contains("application_name=node2"),
        "PG {}: {auto}",
        v.major
    );
}

/// Turns a clone into a standby in archive recovery: standby.signal stays,
/// primary_conninfo goes, WAL comes from `pgclone wal-restore` only.
fn archive_only(lab: &Lab, target: &Path, server: &str) {
    let auto = std::fs::read_to_string(target.join("postgresql.auto.conf")).unwrap();
    let mut auto: String = auto
        .lines()
        .filter(|l| !l.starts_with("primary_conninfo") && !l.starts_with("primary_slot_name"))
        .map(|l| format!("{l}\n"))
        .collect();
    auto.push_str(&format!(
        "restore_command = '{} wal-restore --ssh-option=-F{} -c {} --spool-dir {} barmansrv {server} %f %p'\n",
        env!("CARGO_BIN_EXE_pgclone"),
        lab.sshd.ssh_config.display(),
        lab.barman_conf.display(),
        lab.sc.path(&format!("spool-{server}")).display()
    ));
    std::fs::write(target.join("postgresql.auto.conf"), auto).unwrap();
    run_ok(
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(target),
    );
}

/// Waits until Barman has filed `segment` of `server` (pg_receivewal
/// received it; `barman archive-wal` files it).
fn wait_archived(lab: &Lab, server: &str, segment: &str) {
    let path = lab
        .barman_home
        .join(server)
        .join("wals")
        .join(&segment[..16])
        .join(segment);
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "Barman never filed {segment} of {server}"
        );
        std::thread::sleep(Duration::from_millis(300));
        lab.barman(&["archive-wal", server]);
    }
}

fn exercise(lab: &Lab, v: &Version) {
    let started = Instant::now();
    let server = format!("pg{}", v.major);
    let mut p = Pg::init_with(&lab.sc, &format!("{server}-primary"), &v.server, &[]);
    let wal_keep = if v.major < 13 {
        "wal_keep_segments = 32"
    } else {
        "wal_keep_size = '512MB'"
    };
    p.append_conf(&format!("{wal_keep}\nhot_standby = on\n"));
    p.start();
    let receiver = lab.add_server(&server, &p, v);
    p.sql("CREATE TABLE t(i int); INSERT INTO t SELECT generate_series(1, 100)");

    // A pg_basebackup clone that streams.
    let target = clone(lab, v, &p, &format!("{server}-standby"), 2);
    assert_recovery_config(v, &target);
    let mut st = Pg::existing_with(&lab.sc, target, &v.server);
    st.start();
    st.wait_for(
        "SELECT status FROM pg_stat_wal_receiver",
        "streaming",
        Duration::from_secs(60),
    );
    p.sql("INSERT INTO t VALUES (101)");
    st.wait_for("SELECT count(*) FROM t", "101", Duration::from_secs(60));
    st.stop();

    // A standby in archive recovery, fed by wal-restore from Barman only.
    let target = clone(lab, v, &p, &format!("{server}-archive"), 3);
    archive_only(lab, &target, &server);
    for i in 102..=105 {
        p.sql(&format!(
            "INSERT INTO t VALUES ({i}); SELECT pg_switch_wal()"
        ));
    }
    // The segment that holds row 106 (right after a switch, the current
    // position names the segment before).
    p.sql("INSERT INTO t VALUES (106)");
    let last = p.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    p.sql("SELECT pg_switch_wal()");
    wait_archived(lab, &server, &last);
    let mut ar = Pg::existing_with(&lab.sc, target, &v.server);
    ar.start();
    ar.wait_for("SELECT count(*) FROM t", "106", Duration::from_secs(120));
    assert_eq!(ar.sql("SELECT count(*) FROM pg_stat_wal_receiver"), "0");
    assert_eq!(ar.sql("SELECT pg_is_in_recovery()"), "t");
    let log = std::fs::read_to_string(&ar.log).unwrap();
    let restored = log.matches("restored log file \"0000000100").count();
    assert!(
        restored >= 4,
        "PG {}: {restored} segments restored:\n{log}",
        v.major
    );
    // The segment with row 106 came through wal-restore.
    let row_106 = format!("restored log file \"{last}\" from archive");
    assert!(log.contains(&row_106), "PG {}: {log}", v.major);
    ar.stop();
    drop(receiver);
    p.stop();
    eprintln!(
        "PostgreSQL {}: streaming clone and wal-restore archive recovery in {:.1?}",
        v.major,
        started.elapsed()
    );
}

#[test]
fn postgresql_12_to_18_clone_stream_and_replay_wal_restore() {
    let vs = versions();
    let lab = Lab::new();
    let started = Instant::now();
    // Two versions at a time: most of each run is waiting on PostgreSQL and
    // Barman, and two fit the 2-core machines CI has.
    for pair in vs.chunks(2) {
        std::thread::scope(|s| {
            for v in pair {
                let lab = &lab;
                // Named, so that a failure says which version it was.
                std::thread::Builder::new()
                    .name(format!("PostgreSQL {}", v.major))
                    .spawn_scoped(s, move || exercise(lab, v))
                    .unwrap();
            }
        });
    }
    eprintln!("PostgreSQL 12 to 18 in {:.1?}", started.elapsed());
}
