//! `pgclone wal-restore` against real Barman over a real sshd: a standby in
//! archive recovery replays 50+ segments through it; missing, damaged and
//! unreachable cases give the documented codes and never a file at %p.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use support::barman::{barman_34, Barman, Sshd};
use support::*;

struct Lab {
    sc: Scratch,
    primary: Pg,
    sshd: Sshd,
    barman: Barman,
}

fn lab(name: &str) -> Lab {
    let sc = Scratch::new(name);
    let mut primary = Pg::init(&sc, "primary");
    primary.start();
    let sshd = Sshd::start(&sc, "/usr/bin:/bin");
    let barman = Barman::setup(&sc, &primary, barman_34());
    Lab {
        sc,
        primary,
        sshd,
        barman,
    }
}

impl Lab {
    /// `pgclone wal-restore` as the postgres user, barman-wal-restore style.
    fn wal_restore(&self, extra: &[&str], name: &str, dest: &Path) -> Output {
        let cfg = format!("--ssh-option=-F{}", self.sshd.ssh_config.display());
        let spool = self.sc.path("spool");
        let mut args = vec![
            "wal-restore",
            &cfg,
            "-c",
            self.barman.config.to_str().unwrap(),
            "--spool-dir",
            spool.to_str().unwrap(),
        ];
        args.extend(extra);
        args.extend(["barmansrv", "pg", name, dest.to_str().unwrap()]);
        let conf = self.sc.write("empty.conf", "");
        let mut full = vec!["-f", conf.to_str().unwrap()];
        full.extend(args);
        pgclone(&self.sc, &full, &[])
    }

    /// The name of the segment the primary writes now, after archiving it.
    fn archived_segment(&self) -> String {
        let name = self
            .primary
            .sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
        self.barman.archive_now();
        name
    }
}

fn restore_command(lab: &Lab, extra: &str) -> String {
    format!(
        "{} wal-restore --ssh-option=-F{} -c {} --spool-dir {} {extra} barmansrv pg %f %p",
        env!("CARGO_BIN_EXE_pgclone"),
        lab.sshd.ssh_config.display(),
        lab.barman.config.display(),
        lab.sc.path("spool").display()
    )
}

/// The source directories in the spool whose names start with `prefix`.
fn source_dirs(top: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(top)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect()
}

#[test]
fn archive_recovery_replays_fifty_segments_through_wal_restore() {
    let lab = lab("walreplay");
    lab.primary.sql("CREATE TABLE t(i int)");
    lab.barman.backup();
    // 60 segments after the backup, then a named restore point.
    for i in 0..60 {
        lab.primary.sql(&format!(
            "INSERT INTO t VALUES ({i}); SELECT pg_switch_wal()"
        ));
    }
    lab.primary
        .sql("SELECT pg_create_restore_point('pgclone_target')");
    lab.primary.sql("INSERT INTO t VALUES (1000)");
    lab.barman.archive_now();

    let mut st =
        restore_for_archive_recovery(&lab, &lab.primary, "standby", Some("pgclone_target"), "");
    st.start();
    st.wait_for("SELECT pg_is_in_recovery()", "f", Duration::from_secs(180));
    assert_eq!(st.sql("SELECT count(*) FROM t"), "60");
    let log = std::fs::read_to_string(&st.log).unwrap();
    let restored = log.matches("restored log file").count();
    assert!(restored >= 50, "only {restored} segments restored:\n{log}");
    assert!(
        log.contains("recovery stopping at restore point \"pgclone_target\""),
        "{log}"
    );
}

/// Clones Barman's latest backup of `pg` (the upstream is `upstream`) into
/// `dir` and turns the copy into an archive recovery only: no
/// primary_conninfo, WAL through `pgclone wal-restore` (with `extra` flags) up
/// to the restore point `target_name` (else to the end of the archive), then
/// promote. The server is not started.
fn restore_for_archive_recovery(
    lab: &Lab,
    upstream: &Pg,
    dir: &str,
    target_name: Option<&str>,
    extra: &str,
) -> Pg {
    let target = lab.sc.path(dir);
    // With restore_command, as a standby fed by wal-restore is configured
    // (without it the clone refuses when the upstream lacks the backup's WAL).
    let cfg = lab.sc.write(
        "pgclone.conf",
        &format!(
            "node_id=2\nnode_name=node2\nbarman_host=barmansrv\nbarman_server=pg\nbarman_config='{}'\nssh_options='-F {}'\n\
             restore_command='{}'\n",
            lab.barman.config.display(),
            lab.sshd.ssh_config.display(),
            restore_command(lab, extra).replace('\'', "''")
        ),
    );
    let out = standby_clone(&lab.sc, &cfg, upstream, &target, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Archive recovery only: no primary_conninfo, a recovery target, then promote.
    std::fs::remove_file(target.join("standby.signal")).unwrap();
    std::fs::write(target.join("recovery.signal"), "").unwrap();
    let auto = std::fs::read_to_string(target.join("postgresql.auto.conf")).unwrap();
    let auto: String = auto
        .lines()
        .filter(|l| !l.starts_with("primary_conninfo"))
        .map(|l| format!("{l}\n"))
        .collect();
    let target_line = target_name
        .map(|t| format!("recovery_target_name = '{t}'\n"))
        .unwrap_or_default();
    std::fs::write(
        target.join("postgresql.auto.conf"),
        format!(
            "{auto}restore_command = '{}'\n{target_line}\
             recovery_target_timeline = 'latest'\nrecovery_target_action = 'promote'\n",
            restore_command(lab, extra)
        ),
    )
    .unwrap();
    run_ok(
        std::process::Command::new("chown")
            .arg("-R")
            .arg("postgres:postgres")
            .arg(&target),
    );
    Pg::existing(&lab.sc, target)
}

#[test]
fn archive_recovery_follows_a_timeline_switch() {
    let mut lab = lab("waltimeline");
    lab.primary.sql("CREATE TABLE t(i int)");
    lab.barman.backup();
    for i in 0..3 {
        lab.primary.sql(&format!(
            "INSERT INTO t VALUES ({i}); SELECT pg_switch_wal()"
        ));
    }
    // A streaming standby of the primary, then a failover to it: timeline 2.
    let conf = lab.sc.write("node3.conf", "node_id=3\nnode_name=node3\n");
    let new_dir = lab.sc.path("new_primary");
    let out = standby_clone(&lab.sc, &conf, &lab.primary, &new_dir, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut new_primary = Pg::existing(&lab.sc, new_dir);
    new_primary.start();
    new_primary.wait_for("SELECT count(*) FROM t", "3", Duration::from_secs(60));
    lab.primary.stop();
    new_primary.sql("SELECT pg_promote()");
    new_primary.wait_for("SELECT pg_is_in_recovery()", "f", Duration::from_secs(60));
    // It takes the old primary's place; Barman follows it onto timeline 2.
    new_primary.stop();
    new_primary.port = lab.primary.port;
    new_primary.start();
    lab.barman.start_archiving("pg");
    assert_eq!(
        new_primary.sql("SELECT timeline_id FROM pg_control_checkpoint()"),
        "2"
    );
    for i in 3..6 {
        new_primary.sql(&format!(
            "INSERT INTO t VALUES ({i}); SELECT pg_switch_wal()"
        ));
    }
    new_primary.sql("SELECT pg_create_restore_point('after_failover')");
    new_primary.sql("INSERT INTO t VALUES (1000)");
    lab.barman.archive_now();

    // The backup from timeline 1 is restored and follows the history to timeline 2.
    let mut st =
        restore_for_archive_recovery(&lab, &new_primary, "standby", Some("after_failover"), "");
    st.start();
    st.wait_for("SELECT pg_is_in_recovery()", "f", Duration::from_secs(180));
    assert_eq!(st.sql("SELECT count(*) FROM t"), "6");
    let log = std::fs::read_to_string(&st.log).unwrap();
    assert!(
        log.contains("restored log file \"00000002.history\""),
        "{log}"
    );
    assert!(
        log.contains("restored log file \"000000020000"),
        "no segment of timeline 2 was restored:\n{log}"
    );
    assert!(
        log.contains("recovery stopping at restore point \"after_failover\""),
        "{log}"
    );
    // History files are never kept in the spool.
    let spooled = spooled(&lab.sc.path("spool"));
    assert!(!spooled.is_empty());
    assert!(
        !spooled
            .iter()
            .any(|n| n.file_name().unwrap().to_string_lossy().contains("history")),
        "{spooled:?}"
    );
}

#[test]
fn codes_for_missing_damaged_and_unreachable_files_and_test_mode() {
    let lab = lab("walcodes");
    let dest_dir = lab.sc.mkdir("pg_wal");
    let dest = dest_dir.join("RECOVERYXLOG");

    // --test.
    let conf = lab.sc.write("empty.conf", "");
    let cfgopt = format!("--ssh-option=-F{}", lab.sshd.ssh_config.display());
    let out = pgclone(
        &lab.sc,
        &[
            "-f",
            conf.to_str().unwrap(),
            "wal-restore",
            &cfgopt,
            "-c",
            lab.barman.config.to_str().unwrap(),
            "--test",
            "barmansrv",
            "pg",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Ready to retrieve WAL files from the server pg"));

    // A segment that exists: delivered and checked.
    let name = lab.archived_segment();
    let out = lab.wal_restore(&["-p", "0"], &name, &dest);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), 16 << 20);
    std::fs::remove_file(&dest).unwrap();

    // One that does not exist (yet): 1, nothing at %p.
    let out = lab.wal_restore(&[], "0000000100000000000000FE", &dest);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!dest.exists());
    let out = lab.wal_restore(&[], "00000009.history", &dest);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // A damaged file in the archive is never delivered: 4.
    let damaged = lab.archived_segment();
    let path = lab
        .barman
        .home
        .join("pg/wals")
        .join(&damaged[..16])
        .join(&damaged);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let out = lab.wal_restore(&["-p", "0"], &damaged, &dest);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("not delivered"), "{}", stderr(&out));
    assert!(!dest.exists());

    // An unreachable Barman host: 3, nothing at %p.
    let out = pgclone(
        &lab.sc,
        &[
            "-f",
            conf.to_str().unwrap(),
            "wal-restore",
            &cfgopt,
            "--spool-dir",
            lab.sc.path("spool2").to_str().unwrap(),
            "wrongport",
            "pg",
            &name,
            dest.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(!dest.exists());

    // A name that is not a WAL file name: 2.
    let out = lab.wal_restore(&[], "../../etc/passwd", &dest);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn prefetched_segments_are_handed_over_and_concurrent_calls_agree() {
    let lab = lab("walprefetch");
    let first = lab
        .primary
        .sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    // A switch on an idle server is a no-op: write something before each.
    lab.primary.sql("CREATE TABLE t(i int)");
    for i in 0..12 {
        lab.primary.sql(&format!(
            "INSERT INTO t VALUES ({i}); SELECT pg_switch_wal()"
        ));
    }
    lab.barman.archive_now();
    let dir = lab.sc.mkdir("pg_wal");
    // The first call fetches and starts the prefetcher; the next ones come from the spool.
    let names: Vec<String> = {
        let n = u32::from_str_radix(&first[16..], 16).unwrap();
        (0..10)
            .map(|i| format!("{}{:08X}", &first[..16], n + i))
            .collect()
    };
    let out = lab.wal_restore(&["-p", "8"], &names[0], &dir.join("RECOVERYXLOG"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let spool = lab.sc.path("spool");
    let start = std::time::Instant::now();
    while !spooled(&spool).iter().any(|p| p.ends_with(&names[3])) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the prefetcher never filled the spool: {:?}",
            spooled(&spool)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Two processes at once for the same segment: both get the complete file.
    let a_dest = dir.join("A");
    let b_dest = dir.join("B");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| lab.wal_restore(&["-p", "8"], &names[1], &a_dest));
        let b = s.spawn(|| lab.wal_restore(&["-p", "8"], &names[1], &b_dest));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    assert_eq!(
        std::fs::read(&a_dest).unwrap(),
        std::fs::read(&b_dest).unwrap()
    );
    assert_eq!(std::fs::metadata(&a_dest).unwrap().len(), 16 << 20);
    // pg_rewind's mode (%p is pg_wal/<name>): exactly that file.
    let exact = dir.join(&names[2]);
    let out = lab.wal_restore(&[], &names[2], &exact);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(&exact).unwrap().len(), 16 << 20);
    // No temporary files are left in the destination.
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A request the spool cannot serve opens the prefetcher's window at
    // once, not only after its own file has arrived: even when that file is
    // damaged (4, nothing delivered) the segments after it are spooled.
    let damaged = &names[8];
    let path = lab
        .barman
        .home
        .join("pg/wals")
        .join(&damaged[..16])
        .join(damaged);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let fresh = lab.sc.path("spool-window");
    let cfg = format!("--ssh-option=-F{}", lab.sshd.ssh_config.display());
    let conf = lab.sc.write("empty.conf", "");
    let dest = dir.join("WINDOW");
    let out = pgclone(
        &lab.sc,
        &[
            "-f",
            conf.to_str().unwrap(),
            "wal-restore",
            &cfg,
            "-c",
            lab.barman.config.to_str().unwrap(),
            "-p",
            "4",
            "--spool-dir",
            fresh.to_str().unwrap(),
            "barmansrv",
            "pg",
            damaged,
            dest.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(!dest.exists());
    let start = std::time::Instant::now();
    while !spooled(&fresh).iter().any(|p| p.ends_with(&names[9])) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the window did not open at the request: {:?}",
            spooled(&fresh)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ssh_killed_mid_transfer_leaves_nothing_at_p() {
    let lab = lab("walkill");
    let name = lab.archived_segment();
    let proxy = lab.sc.write("slowproxy.py", SLOW_PROXY);
    let dir = lab.sc.mkdir("pg_wal");
    let dest = dir.join("RECOVERYXLOG");
    let conf = lab.sc.write("empty.conf", "");
    let cfgopt = format!("--ssh-option=-F{}", lab.sshd.ssh_config.display());
    let proxyopt = format!(
        "--ssh-option=-oProxyCommand=python3 {} 127.0.0.1 {} 1000000",
        proxy.display(),
        lab.sshd.port
    );
    let spool = lab.sc.path("spool-kill");
    let args: Vec<String> = [
        "-f",
        conf.to_str().unwrap(),
        "wal-restore",
        &cfgopt,
        &proxyopt,
        "-c",
        lab.barman.config.to_str().unwrap(),
        "-p",
        "0",
        "--spool-dir",
        spool.to_str().unwrap(),
        "barmansrv",
        "pg",
        &name,
        dest.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let handle = pgclone_in_background(&lab.sc, args);
    // The segment is on its way at 1 MB/s: kill the connection carrying it
    // (anchored: pgclone's own command line names the proxy too).
    std::thread::sleep(Duration::from_secs(4));
    let killed = std::process::Command::new("pkill")
        .args([
            "-9",
            "-f",
            &format!("^python3 {} 127.0.0.1 {}", proxy.display(), lab.sshd.port),
        ])
        .status()
        .unwrap();
    assert!(killed.success(), "no transfer in progress to kill");
    let out = handle.join().unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.status.code().unwrap_or(255) <= 125, "{:?}", out.status);
    assert!(!dest.exists(), "a file was left at %p");
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn partial_segments_only_with_dash_p() {
    let lab = lab("walpartial");
    lab.primary
        .sql("CREATE TABLE t(i int); INSERT INTO t VALUES (1)");
    // The segment the primary is writing: Barman has it only as .partial.
    let current = lab
        .primary
        .sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    let streaming = lab
        .barman
        .home
        .join("pg/streaming")
        .join(format!("{current}.partial"));
    let start = std::time::Instant::now();
    while !streaming.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Barman never streamed {current}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = lab.sc.mkdir("pg_wal");
    let dest = dir.join("RECOVERYXLOG");
    let out = lab.wal_restore(&["-p", "0"], &current, &dest);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!dest.exists());
    let out = lab.wal_restore(&["-p", "0", "-P"], &current, &dest);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), 16 << 20);
}

/// Disaster recovery with the primary gone: the last segments Barman has
/// received (streaming/) but whose cron has not archived them yet are
/// replayed, as with barman-wal-restore (`barman get-wal` serves them); the
/// rows written in them are there after promotion.
#[test]
fn recovery_replays_the_segments_barman_received_but_has_not_archived() {
    let mut lab = lab("walrpo");
    lab.primary
        .sql("CREATE TABLE t(i int); INSERT INTO t VALUES (1)");
    lab.barman.backup();
    let mut st = restore_for_archive_recovery(&lab, &lab.primary, "standby", None, "");
    // Written after the backup, switched, received by Barman, never archived.
    lab.primary.sql("INSERT INTO t VALUES (2)");
    let last = lab
        .primary
        .sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    lab.primary.sql("SELECT pg_switch_wal()");
    let received = lab.barman.home.join("pg/streaming").join(&last);
    let start = std::time::Instant::now();
    while !received.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Barman never received {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !lab.archived_file("pg", &last).exists(),
        "{last} already archived"
    );
    lab.primary.stop();
    st.start();
    st.wait_for("SELECT pg_is_in_recovery()", "f", Duration::from_secs(180));
    assert_eq!(st.sql("SELECT count(*) FROM t WHERE i = 2"), "1");
    let log = std::fs::read_to_string(&st.log).unwrap();
    assert!(
        log.contains(&format!("restored log file \"{last}\"")),
        "{log}"
    );
}

/// `pgclone` as the postgres user (as [`pgclone`] runs it), killed after
/// `limit` seconds so that a hang fails the test instead of stalling it;
/// with how long it ran.
fn pgclone_bounded(sc: &Scratch, args: &[String], limit: u64) -> (Output, Duration) {
    let t = std::time::Instant::now();
    let out = run(as_pg("timeout")
        .args(["-s", "KILL", &limit.to_string(), "env", "-i"])
        .arg(format!("HOME={}", sc.dir.display()))
        .arg("PATH=/usr/local/bin:/usr/bin:/bin")
        .arg(env!("CARGO_BIN_EXE_pgclone"))
        .args(args));
    (out, t.elapsed())
}

/// A directory that restore_command takes for a data directory (PG_VERSION,
/// pg_wal/, `files`, and a copy of `pg_control` if given); returns %p in it.
fn fake_data_dir(
    sc: &Scratch,
    name: &str,
    version: &str,
    files: &[&str],
    pg_control: Option<&Path>,
) -> PathBuf {
    let dir = sc.mkdir(name);
    std::fs::create_dir_all(dir.join("pg_wal")).unwrap();
    std::fs::write(dir.join("PG_VERSION"), format!("{version}\n")).unwrap();
    for f in files {
        let (file, text) = f.split_once(':').unwrap_or((f, ""));
        std::fs::write(dir.join(file), text).unwrap();
    }
    if let Some(control) = pg_control {
        std::fs::create_dir_all(dir.join("global")).unwrap();
        std::fs::copy(control, dir.join("global/pg_control")).unwrap();
    }
    run_ok(
        std::process::Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir),
    );
    dir.join("pg_wal/RECOVERYXLOG")
}

/// The pids of processes whose command line has every one of `parts`, the
/// first being the program's name.
fn processes_with(parts: &[&str]) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.first()
                .is_some_and(|a0| a0.rsplit('/').next() == Some(parts[0]))
                && parts[1..].iter().all(|p| args.iter().any(|a| a == p))
        })
        .collect()
}

fn temp_files_under(dir: &Path) -> Vec<PathBuf> {
    snapshot(dir)
        .into_iter()
        .map(|(p, _, _)| p)
        .filter(|p| p.to_string_lossy().contains(".tmp."))
        .collect()
}

#[test]
fn a_host_that_never_answers_is_reported_within_the_bound() {
    let sc = Scratch::new("walblackhole");
    // The kernel accepts connections on it and nothing ever answers: ssh
    // waits in its banner exchange, as with a host that drops packets.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port().to_string();
    let conf = sc.write("empty.conf", "");
    let name = "000000010000000000000005";
    let args = |spool: &str, dest: &Path, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "-f",
            conf.to_str().unwrap(),
            "wal-restore",
            "--ssh-option=-oStrictHostKeyChecking=no",
            "--ssh-option=-oUserKnownHostsFile=/dev/null",
            "-p",
            "0",
            "--port",
            &port,
            "--spool-dir",
            sc.path(spool).to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend([
            "barman@127.0.0.1".into(),
            "pg".into(),
            name.into(),
            dest.display().to_string(),
        ]);
        v
    };

    // Not a data directory, and a standby: 3 within the connect timeout,
    // naming the host and what was being done.
    let plain = sc.mkdir("plain").join("RECOVERYXLOG");
    let standby = fake_data_dir(
        &sc,
        "standby",
        "15",
        &["recovery.signal", "standby.signal"],
        None,
    );
    let pg11_standby = fake_data_dir(
        &sc,
        "standby11",
        "11",
        &["recovery.conf:standby_mode = 'on'\n"],
        None,
    );
    for dest in [&plain, &standby, &pg11_standby] {
        let (out, took) =
            pgclone_bounded(&sc, &args("spool", dest, &["--connect-timeout", "2"]), 60);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(took < Duration::from_secs(10), "took {took:?}");
        let err = stderr(&out);
        assert!(
            err.contains("barman@127.0.0.1") && err.contains(&port),
            "{err}"
        );
        assert!(err.contains(&format!("fetching {name}")), "{err}");
        assert!(!dest.exists());
    }

    // Targeted recovery (PITR): retried for --retry-for, then the status
    // that makes PostgreSQL stop recovery instead of promoting early.
    let pitr = fake_data_dir(&sc, "pitr", "15", &["recovery.signal"], None);
    let pitr11 = fake_data_dir(
        &sc,
        "pitr11",
        "11",
        &["recovery.conf:restore_command = 'x'\n"],
        None,
    );
    for dest in [&pitr, &pitr11] {
        let (out, took) = pgclone_bounded(
            &sc,
            &args(
                "spool",
                dest,
                &["--connect-timeout", "2", "--retry-for", "5"],
            ),
            60,
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(128), "{err}");
        assert!(
            took >= Duration::from_secs(5) && took < Duration::from_secs(20),
            "took {took:?}"
        );
        assert!(err.contains("retrying"), "{err}");
        assert!(
            err.contains("stopping recovery") && err.contains("barman@127.0.0.1"),
            "{err}"
        );
        assert!(err.contains("HINT: tried for"), "{err}");
        assert!(!dest.exists());
    }

    // SIGTERM (PostgreSQL shutting down) while ssh waits: the process ends at
    // once and leaves neither its ssh nor a temporary file behind.
    let term_dest = sc.mkdir("term").join("RECOVERYXLOG");
    let term_args = args(
        "spool-term",
        &term_dest,
        &["--connect-timeout", "60", "--timeout", "60"],
    );
    let spool_arg = sc.path("spool-term").display().to_string();
    let bg = {
        let dir = sc.dir.clone();
        std::thread::spawn(move || {
            let sc = std::mem::ManuallyDrop::new(Scratch { dir });
            pgclone_bounded(&sc, &term_args, 120)
        })
    };
    let start = std::time::Instant::now();
    let ssh = loop {
        let found = processes_with(&["ssh", "-p", &port]);
        if !found.is_empty() {
            break found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "ssh never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let pgclone_pid = processes_with(&["pgclone", &spool_arg]);
    assert_eq!(pgclone_pid.len(), 1, "{pgclone_pid:?}");
    let signalled = std::time::Instant::now();
    unsafe { libc::kill(pgclone_pid[0], libc::SIGTERM) };
    let (out, _) = bg.join().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let left: Vec<i32> = ssh
        .iter()
        .copied()
        .filter(|p| Path::new(&format!("/proc/{p}")).exists())
        .collect();
    assert!(left.is_empty(), "ssh left running: {left:?}");
    assert!(!term_dest.exists());
    let tmp = temp_files_under(&sc.dir);
    assert!(tmp.is_empty(), "{tmp:?}");
    drop(hole);
}

#[test]
fn spools_another_user_could_write_are_refused_and_nothing_is_delivered() {
    let sc = Scratch::new("walspooltrust");
    let conf = sc.write("empty.conf", "");
    let name = "000000010000000000000005";
    let planted = "planted by another user";
    let args = |spool: &Path, dest: &Path| -> Vec<String> {
        [
            "-f",
            conf.to_str().unwrap(),
            "wal-restore",
            "-p",
            "0",
            "--connect-timeout",
            "2",
            "--port",
            "1",
            "--spool-dir",
            spool.to_str().unwrap(),
            "barman@127.0.0.1",
            "pg",
            name,
            dest.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let dest = sc.mkdir("pg_wal").join("RECOVERYXLOG");
    // Another user got there first (any user can make /var/tmp/walrestore).
    let theirs =
        std::env::temp_dir().join(format!("pgclone-test-{}-nobody-spool", std::process::id()));
    let _ = std::fs::remove_dir_all(&theirs);
    let q = |p: &Path| shell_words::quote(p.to_str().unwrap()).into_owned();
    run_ok(as_user("nobody", "sh").arg("-c").arg(format!(
        "mkdir -m 0777 {d} && printf '{planted}' > {d}/{name} && chmod 0666 {d}/{name}",
        d = q(&theirs)
    )));
    // Ours, but writable by everyone.
    let open = sc.mkdir("open-spool");
    chmod(&open, 0o777);
    plant(&open.join(name), planted);
    // A symlink to theirs.
    let link = sc.path("link-spool");
    std::os::unix::fs::symlink(&theirs, &link).unwrap();
    run_ok(
        std::process::Command::new("chown")
            .args(["-h", "postgres:postgres"])
            .arg(&link),
    );
    // Ours, inside a directory another user can rename it out of.
    let loose = sc.mkdir("loose");
    chmod(&loose, 0o777);
    let under_loose = loose.join("spool");
    std::fs::create_dir(&under_loose).unwrap();
    chmod(&under_loose, 0o700);
    plant(&under_loose.join(name), planted);
    run_ok(
        std::process::Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&loose),
    );
    // A good spool whose source directory is another user's.
    let good = sc.mkdir("good-spool");
    chmod(&good, 0o700);
    let out = pgclone(&sc, &to_refs(&args(&good, &dest)), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let source = source_dirs(&good, "barman-pg-");
    assert_eq!(source.len(), 1, "{:?}", spooled(&good));
    plant(&source[0].join(name), planted);
    run_ok(
        std::process::Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&source[0]),
    );
    chmod(&source[0], 0o777);

    for spool in [&theirs, &open, &link, &under_loose, &good] {
        let out = pgclone(&sc, &to_refs(&args(spool, &dest)), &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", spool.display());
        assert!(err.contains("refusing to use the spool directory"), "{err}");
        assert!(
            err.contains("HINT: remove it or choose another with --spool-dir"),
            "{err}"
        );
        assert!(!dest.exists(), "delivered from {}", spool.display());
    }
    // In a targeted recovery the refusal stops recovery rather than end it.
    let pitr = fake_data_dir(&sc, "pitr", "15", &["recovery.signal"], None);
    let out = pgclone(&sc, &to_refs(&args(&theirs, &pitr)), &[]);
    assert_eq!(out.status.code(), Some(128), "{}", stderr(&out));
    assert!(!pitr.exists());
    std::fs::remove_dir_all(&theirs).unwrap();
}

fn to_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn as_user(user: &str, program: &str) -> std::process::Command {
    let mut c = std::process::Command::new("runuser");
    c.args(["-u", user, "--", program]);
    c
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes `contents` at `p`, owned by postgres (or its directory's owner).
fn plant(p: &Path, contents: impl AsRef<[u8]>) {
    std::fs::write(p, contents).unwrap();
    run_ok(
        std::process::Command::new("chown")
            .arg("postgres:postgres")
            .arg(p),
    );
}

impl Lab {
    /// `wal_restore` for another Barman server of the same Barman host.
    fn wal_restore_server(&self, server: &str, extra: &[&str], name: &str, dest: &Path) -> Output {
        let cfg = format!("--ssh-option=-F{}", self.sshd.ssh_config.display());
        let spool = self.sc.path("spool");
        let conf = self.sc.write("empty.conf", "");
        let mut args = vec![
            "-f",
            conf.to_str().unwrap(),
            "wal-restore",
            &cfg,
            "-c",
            self.barman.config.to_str().unwrap(),
            "--spool-dir",
            spool.to_str().unwrap(),
        ];
        args.extend(extra);
        args.extend(["barmansrv", server, name, dest.to_str().unwrap()]);
        pgclone(&self.sc, &args, &[])
    }

    fn archived_file(&self, server: &str, name: &str) -> PathBuf {
        self.barman
            .home
            .join(server)
            .join("wals")
            .join(&name[..16])
            .join(name)
    }

    /// Writes and switches `n` segments; returns their names.
    fn switch_segments(&self, n: usize) -> Vec<String> {
        let mut names = Vec::new();
        for i in 0..n {
            self.primary.sql(&format!(
                "CREATE TABLE IF NOT EXISTS s(i int); INSERT INTO s VALUES ({i})"
            ));
            names.push(
                self.primary
                    .sql("SELECT pg_walfile_name(pg_current_wal_lsn())"),
            );
            self.primary.sql("SELECT pg_switch_wal()");
        }
        self.barman.archive_now();
        names
    }
}

#[test]
fn one_barman_server_s_segments_and_facts_never_serve_another() {
    let lab = lab("walsources");
    // Segments only `pg` has: `pg2` starts archiving after them.
    let only_pg = lab.switch_segments(7);
    lab.barman.add_server("pg2", "");
    let both = lab.switch_segments(1);
    lab.barman.ok(&[
        "switch-wal",
        "--force",
        "--archive",
        "--archive-timeout",
        "60",
        "pg2",
    ]);
    let listing = || format!("{:?} / {:?}", snapshot(&lab.barman.home.join("pg2")), both);
    assert!(
        !lab.archived_file("pg2", &only_pg[1]).exists(),
        "{}",
        listing()
    );
    assert!(lab.archived_file("pg2", &both[0]).exists(), "{}", listing());
    let dir = lab.sc.mkdir("pg_wal");
    let dest = dir.join("RECOVERYXLOG");

    // pg: delivered, and its prefetcher spools what follows.
    let out = lab.wal_restore(&["-p", "4"], &only_pg[0], &dest);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::remove_file(&dest).unwrap();
    let spool = lab.sc.path("spool");
    let start = std::time::Instant::now();
    while !spooled(&spool).iter().any(|p| p.ends_with(&only_pg[1])) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}",
            spooled(&spool)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // pg2 has no such segment: not pg's spooled one, not from pg's WAL
    // directory (whose location pg's requests cached).
    for name in [&only_pg[1], &only_pg[6]] {
        let out = lab.wal_restore_server("pg2", &["-p", "0"], name, &dest);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(!dest.exists(), "pg's {name} was delivered for pg2");
    }
    // What pg2 has, it gets from its own archive.
    let out = lab.wal_restore_server("pg2", &["-p", "0"], &both[0], &dest);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(lab.archived_file("pg2", &both[0])).unwrap()
    );
    // Each source has its own directory, and its own facts.
    let pg = source_dirs(&spool, "barman-pg-");
    let pg2 = source_dirs(&spool, "barman-pg2-");
    assert_eq!((pg.len(), pg2.len()), (1, 1), "{:?}", spooled(&spool));
    let info = std::fs::read_to_string(pg2[0].join("wal-archive.toml")).unwrap();
    assert!(info.contains("/pg2/wals"), "{info}");
    assert!(pg2[0].join(&only_pg[1]).symlink_metadata().is_err());
    // pg's spooled segment is still pg's, and still delivered to pg.
    let out = lab.wal_restore(&["-p", "0"], &only_pg[1], &dest);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn planted_damaged_or_foreign_segments_are_never_delivered() {
    let lab = lab("walplant");
    let name = lab.switch_segments(1).remove(0);
    let real = std::fs::read(lab.archived_file("pg", &name)).unwrap();
    // A second cluster (its own initdb, its own system identifier) with a
    // segment of the same name.
    let mut other = Pg::init(&lab.sc, "other");
    other.start();
    loop {
        other.sql("CREATE TABLE IF NOT EXISTS o(i int); INSERT INTO o VALUES (1)");
        let current = other.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
        if current > name {
            break;
        }
        other.sql("SELECT pg_switch_wal()");
    }
    let foreign = std::fs::read(other.data.join("pg_wal").join(&name))
        .unwrap_or_else(|e| panic!("{name}: {e}: {:?}", snapshot(&other.data.join("pg_wal"))));
    assert_eq!(foreign.len(), real.len());
    assert_ne!(foreign[24..32], real[24..32], "the same system identifier?");
    let dest = lab.primary_s_view();
    let out = lab.wal_restore(&["-p", "0"], &name, &dest);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::remove_file(&dest).unwrap();
    let source = source_dirs(&lab.sc.path("spool"), "barman-pg-").remove(0);

    // Planted in the spool: discarded, and the archived file delivered.
    let truncated = real[..1 << 20].to_vec();
    let garbage = vec![0x5a; real.len()];
    let elsewhere = lab.sc.path("elsewhere");
    plant(&elsewhere, &real);
    for (what, bytes) in [
        ("truncated", Some(truncated)),
        ("garbage", Some(garbage)),
        ("another cluster's", Some(foreign.clone())),
        ("a symlink", None),
    ] {
        match bytes {
            Some(b) => plant(&source.join(&name), b),
            None => {
                std::os::unix::fs::symlink(&elsewhere, source.join(&name)).unwrap();
                run_ok(
                    std::process::Command::new("chown")
                        .args(["-h", "postgres:postgres"])
                        .arg(source.join(&name)),
                );
            }
        }
        let out = lab.wal_restore(&["-p", "0"], &name, &dest);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{what}: {err}");
        assert!(
            err.contains(&format!("discarded the spooled {name}")),
            "{what}: {err}"
        );
        let meta = std::fs::symlink_metadata(&dest).unwrap();
        assert!(meta.is_file(), "{what}: %p is not a regular file");
        assert!(
            std::fs::read(&dest).unwrap() == real,
            "{what} was delivered"
        );
        std::fs::remove_file(&dest).unwrap();
    }
    assert!(elsewhere.exists());

    // Another cluster's segment in the archive itself: never delivered.
    let archived = lab.archived_file("pg", &name);
    std::fs::write(&archived, &foreign).unwrap();
    let out = lab.wal_restore(&["-p", "0"], &name, &dest);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("not delivered") && err.contains("database system"),
        "{err}"
    );
    assert!(!dest.exists());
    // In a targeted recovery it stops recovery (4 would end it and promote).
    std::fs::write(
        dest.parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("recovery.signal"),
        "",
    )
    .unwrap();
    let out = lab.wal_restore(&["-p", "0"], &name, &dest);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(128), "{err}");
    assert!(err.contains("stopping recovery: not delivered"), "{err}");
    assert!(!dest.exists());
    std::fs::write(&archived, &real).unwrap();
}

/// Waits until the server's log shows at least `n` restored files.
fn wait_restored(st: &Pg, n: usize) {
    let start = std::time::Instant::now();
    loop {
        let log = std::fs::read_to_string(&st.log).unwrap_or_default();
        if log.matches("restored log file").count() >= n {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pitr_outlasts_a_barman_outage_and_stops_without_promoting_when_barman_stays_away() {
    let mut lab = lab("walpitr");
    lab.primary.sql("CREATE TABLE t(i int)");
    lab.barman.backup();
    for i in 0..40 {
        lab.primary.sql(&format!(
            "INSERT INTO t VALUES ({i}); SELECT pg_switch_wal()"
        ));
    }
    lab.primary
        .sql("SELECT pg_create_restore_point('pitr_target')");
    lab.primary.sql("INSERT INTO t VALUES (1000)");
    lab.barman.archive_now();

    // Barman's host goes away midway and comes back within --retry-for:
    // recovery waits, then reaches its target.
    let flags = "-p 0 --connect-timeout 2 --retry-for 40";
    let mut st =
        restore_for_archive_recovery(&lab, &lab.primary, "pitr", Some("pitr_target"), flags);
    st.start_nowait();
    wait_restored(&st, 5);
    lab.sshd.stop();
    std::thread::sleep(Duration::from_secs(8));
    // Still recovering, not promoted.
    let log = std::fs::read_to_string(&st.log).unwrap();
    assert!(log.contains("retrying (recovery stops in"), "{log}");
    assert!(!st.data.join("pg_wal/00000002.history").exists(), "{log}");
    assert!(!log.contains("archive recovery complete"), "{log}");
    assert!(st.data.join("postmaster.pid").exists(), "{log}");
    lab.sshd.restart();
    st.wait_for("SELECT pg_is_in_recovery()", "f", Duration::from_secs(180));
    assert_eq!(st.sql("SELECT count(*) FROM t"), "40");
    let log = std::fs::read_to_string(&st.log).unwrap();
    assert!(
        log.contains("recovery stopping at restore point \"pitr_target\""),
        "{log}"
    );
    st.stop();

    // Barman's host goes away for good, in a recovery to the end of the
    // archive (the case where PostgreSQL 13+ does not object to ending
    // early): recovery stops; the server neither promotes nor runs on.
    let flags = "-p 0 --connect-timeout 2 --retry-for 4";
    let mut st = restore_for_archive_recovery(&lab, &lab.primary, "pitr2", None, flags);
    st.start_nowait();
    wait_restored(&st, 5);
    lab.sshd.stop();
    let start = std::time::Instant::now();
    while st.data.join("postmaster.pid").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server still runs:\n{}",
            std::fs::read_to_string(&st.log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(&st.log).unwrap();
    assert!(log.contains("stopping recovery"), "{log}");
    assert!(log.contains("could not restore file"), "{log}");
    assert!(!log.contains("selected new timeline ID"), "{log}");
    assert!(!log.contains("archive recovery complete"), "{log}");
    assert!(!st.data.join("pg_wal/00000002.history").exists(), "{log}");
    let control = run_ok(as_pg(pg_bindir().join("pg_controldata")).arg(&st.data));
    assert!(control.contains("in archive recovery"), "{control}");
    lab.sshd.restart();
}

/// wal-restore and the clone reach Barman as the same ssh user: the User of
/// the ssh Host block when it sets one, barman (barman-wal-restore's `-U`
/// default) when it does not, and `-U` whenever it is given. sshd lets only
/// `barman` in, so the wrong user is refused for real.
#[test]
fn wal_restore_and_the_clone_reach_barman_as_the_same_ssh_user() {
    let lab = lab("waluser");
    let key = lab.sc.path("ssh/client_key");
    let block = |name: &str, user: &str| {
        format!(
            "Host {name}\n  HostName 127.0.0.1\n  Port {}\n{user}  IdentityFile {}\n  \
             StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
            lab.sshd.port,
            key.display()
        )
    };
    let ssh_config = lab.sc.write(
        "ssh/users_config",
        &(block("nouser", "") + &block("asnobody", "  User nobody\n")),
    );
    run_ok(
        std::process::Command::new("chown")
            .arg("postgres")
            .arg(&ssh_config),
    );
    let conf = lab.sc.write("empty.conf", "");
    let cfgopt = format!("--ssh-option=-F{}", ssh_config.display());
    let spool = lab.sc.path("spool");
    let test = |extra: &[&str], host: &str| {
        let mut args = vec![
            "-f",
            conf.to_str().unwrap(),
            "wal-restore",
            &cfgopt,
            "-c",
            lab.barman.config.to_str().unwrap(),
            "--spool-dir",
            spool.to_str().unwrap(),
            "--connect-timeout",
            "5",
        ];
        args.extend(extra);
        args.extend(["--test", host, "pg"]);
        pgclone(&lab.sc, &args, &[])
    };
    // No User in the Host block: barman, as barman-wal-restore.
    let out = test(&[], "nouser");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The Host block's User (nobody) is followed: refused by this sshd.
    let out = test(&[], "asnobody");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // -U wins over the Host block.
    let out = test(&["-U", "barman"], "asnobody");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A delivery through "nouser" starts the prefetcher, which fills the
    // same source directory (found with the same user).
    let first = lab
        .primary
        .sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    lab.primary.sql("CREATE TABLE t(i int)");
    for i in 0..4 {
        lab.primary.sql(&format!(
            "INSERT INTO t VALUES ({i}); SELECT pg_switch_wal()"
        ));
    }
    lab.barman.archive_now();
    let n = u32::from_str_radix(&first[16..], 16).unwrap();
    let next = format!("{}{:08X}", &first[..16], n + 1);
    let prefetch_spool = lab.sc.path("spool-nouser");
    let dest = lab.sc.mkdir("pg_wal").join("RECOVERYXLOG");
    let out = pgclone(
        &lab.sc,
        &[
            "-f",
            conf.to_str().unwrap(),
            "wal-restore",
            &cfgopt,
            "-c",
            lab.barman.config.to_str().unwrap(),
            "--spool-dir",
            prefetch_spool.to_str().unwrap(),
            "-p",
            "2",
            "nouser",
            "pg",
            &first,
            dest.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let start = std::time::Instant::now();
    while !spooled(&prefetch_spool).iter().any(|p| p.ends_with(&next)) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the prefetcher never filled the spool: {:?}",
            spooled(&prefetch_spool)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        source_dirs(&prefetch_spool, "barman-").len(),
        1,
        "{:?}",
        spooled(&prefetch_spool)
    );

    // The clone takes the same user for barman_host (its ssh commands, -v).
    let clone = |host: &str| {
        let cfg = lab.sc.write(
            &format!("clone-{host}.conf"),
            &format!(
                "node_id=2\nnode_name=node2\nbarman_host={host}\nbarman_server=pg\n\
                 barman_config='{}'\nssh_options='-F {}'\n",
                lab.barman.config.display(),
                ssh_config.display()
            ),
        );
        let mut args = clone_args(&cfg, &lab.primary, &lab.sc.path("standby"), &["--dry-run"]);
        args.insert(0, "-v".into());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        stderr(&pgclone(&lab.sc, &refs, &[]))
    };
    let err = clone("nouser");
    assert!(err.contains(" -- barman@nouser"), "{err}");
    assert!(!err.contains("Permission denied"), "{err}");
    let err = clone("asnobody");
    assert!(err.contains(" -- asnobody"), "{err}");
    assert!(!err.contains("@asnobody"), "{err}");
}

/// A source built against the frozen contract 1.1.0 has no
/// `locate-wal-archive`: a 1.2.0 host serves its WAL per file, where its
/// `locate-wal` says (a remote file read with `cat`, or `barman get-wal`),
/// with the same checks and codes, and only with the capabilities granted.
#[test]
fn a_contract_1_1_source_is_served_per_file_through_locate_wal() {
    let lab = lab("walpername");
    let names = lab.switch_segments(2);
    let wasm = lab.sc.path("contract-1-1.wasm");
    std::fs::copy(component("test_contract_1_1"), &wasm).unwrap();
    let sha = pgclone::plugin::catalog::sha256_hex(&std::fs::read(&wasm).unwrap());
    let all_grants = "\"remote-run:barman:cat\", \"remote-run:barman:barman\", \
                      \"read-config:contract_wals_directory\", \"read-config:barman_server\"";
    lab.sc.mkdir("etc");
    let plugins = |grants: &str| {
        lab.sc.write(
            "etc/plugins.toml",
            &format!(
                "[plugin.contract-1-1]\nfile = \"{}\"\nsha256 = \"{sha}\"\ngrants = [{grants}]\n",
                wasm.display()
            ),
        )
    };
    let conf = lab.sc.write(
        "pername.conf",
        &format!(
            "backup_source=contract-1-1\nbarman_host=barmansrv\nbarman_server=pg\n\
             contract_wals_directory='{}'\nssh_options='-F {}'\nplugins_config='{}'\n",
            lab.barman.home.join("pg/wals").display(),
            lab.sshd.ssh_config.display(),
            lab.sc.path("etc/plugins.toml").display()
        ),
    );
    let spool = lab.sc.path("spool-pername");
    let dest = lab.sc.mkdir("pg_wal").join("RECOVERYXLOG");
    let restore = |name: &str| {
        pgclone(
            &lab.sc,
            &[
                "-f",
                conf.to_str().unwrap(),
                "wal-restore",
                "--spool-dir",
                spool.to_str().unwrap(),
                name,
                dest.to_str().unwrap(),
            ],
            &[],
        )
    };

    plugins(all_grants);
    // A segment: `cat` of the file locate-wal names, checked, delivered.
    let out = restore(&names[0]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(lab.archived_file("pg", &names[0])).unwrap()
    );
    std::fs::remove_file(&dest).unwrap();
    // Not in the archive: 1, nothing at %p, for a segment (cat) and a
    // history file (barman get-wal).
    for missing in ["0000000100000000000000FE", "00000009.history"] {
        let out = restore(missing);
        assert_eq!(out.status.code(), Some(1), "{missing}: {}", stderr(&out));
        assert!(!dest.exists());
    }
    // Nothing was prefetched: a source located per file is asked per file.
    assert!(
        !spooled(&spool).iter().any(|p| p.ends_with(&names[1])),
        "{:?}",
        spooled(&spool)
    );

    // Without the grant for `cat`: refused, naming the capability.
    plugins("\"remote-run:barman:barman\", \"read-config:contract_wals_directory\", \"read-config:barman_server\"");
    let out = restore(&names[1]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("remote-run:barman:cat"), "{err}");
    assert!(!dest.exists(), "{err}");
}

/// A clone whose restore_command is `pgclone wal-restore` starts that
/// restore_command's prefetcher at the backup's first segment before it
/// copies: the WAL written since the backup arrives in the very spool
/// directory the standby's restore_command reads, before the standby asks,
/// and the standby replays it from there. `clone_wal_prefetch=0` turns it off.
#[test]
fn a_clone_fills_restore_command_s_spool_with_the_wal_since_the_backup() {
    let lab = lab("walwarm");
    lab.primary.sql("CREATE TABLE t(i int)");
    lab.barman.backup();
    let since = lab.switch_segments(8);
    lab.barman.archive_now();
    let conf = |extra: &str| {
        lab.sc.write(
            "warm.conf",
            &format!(
                "node_id=2\nnode_name=node2\nbarman_host=barmansrv\nbarman_server=pg\nbarman_config='{}'\nssh_options='-F {}'\n\
                 restore_command='{}'\n{extra}",
                lab.barman.config.display(),
                lab.sshd.ssh_config.display(),
                restore_command(&lab, "").replace('\'', "''")
            ),
        )
    };
    let target = lab.sc.path("standby");
    let out = standby_clone(&lab.sc, &conf(""), &lab.primary, &target, &[], &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("fetching the WAL since the backup (from 0000000100000000"),
        "{err}"
    );
    assert!(
        err.contains("segments since the backup are already in restore_command's spool"),
        "{err}"
    );
    // Nobody has asked yet: the clone's prefetcher fills the spool.
    let spool = lab.sc.path("spool");
    wait_spooled(&spool, &since);
    // In the one source directory the standby's restore_command uses.
    assert_eq!(
        source_dirs(&spool, "barman-").len(),
        1,
        "{:?}",
        spooled(&spool)
    );
    let mut st = Pg::existing(&lab.sc, target.clone());
    st.start();
    st.wait_for("SELECT count(*) FROM s", "8", Duration::from_secs(60));
    let log = std::fs::read_to_string(&st.log).unwrap();
    for n in &since {
        assert!(
            log.contains(&format!("restored log file \"{n}\" from archive")),
            "{n}: {log}"
        );
    }
    st.stop();

    // Turned off: the clone says nothing of it and starts no prefetcher.
    let other = lab.sc.path("standby2");
    let out = standby_clone(
        &lab.sc,
        &conf("clone_wal_prefetch=0\n"),
        &lab.primary,
        &other,
        &[],
        &[],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("fetching the WAL since the backup"), "{err}");
    assert!(!err.contains("warm-up"), "{err}");

    // Run by hand, a warm-up that cannot start says why (issue 26, 2.6).
    let by_hand = |extra: &[&str]| {
        let cfg = format!("--ssh-option=-F{}", lab.sshd.ssh_config.display());
        let spool = lab.sc.path("spool");
        let first = since[0].as_str();
        let mut args = vec!["wal-restore", "--warm-from", first, &cfg, "-c"];
        args.extend([lab.barman.config.to_str().unwrap(), "--spool-dir"]);
        args.push(spool.to_str().unwrap());
        args.extend(extra);
        args.extend(["barmansrv", "pg", first, "-"]);
        pgclone(&lab.sc, &args, &[])
    };
    let off = by_hand(&["-p", "0"]);
    let err = stderr(&off);
    assert_eq!(off.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ERROR: pgclone wal-restore: no warm-up: prefetching is turned off\nDETAIL: this restore_command prefetches no segments (-p/--parallel 0"),
        "{err}"
    );
    // A clone while another standby replays through the same spool (issue
    // 27, 3): its warm-up joins the prefetcher that serves the other one,
    // and says so; no WARNING.
    let mut st2 = Pg::existing(&lab.sc, other.clone());
    st2.start();
    wait_restored(&st2, 1);
    let third = lab.sc.path("standby3");
    let out = standby_clone(
        &lab.sc,
        &conf(""),
        &lab.primary,
        &third,
        &["--dry-run"],
        &[],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("WAL segments since the backup into restore_command's spool"),
        "{}",
        stderr(&out)
    );
    let out = standby_clone(&lab.sc, &conf(""), &lab.primary, &third, &[], &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("WARNING: the WAL warm-up is skipped"),
        "{err}"
    );
    let other_dir = std::fs::canonicalize(&other).unwrap();
    assert!(
        err.contains("fetching the WAL since the backup (from 0000000100000000"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "the prefetcher (pid {}) that also serves ",
            holder_pid(&lab)
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}: at 0000000100000000", other_dir.display())),
        "{err}"
    );
    // Run by hand meanwhile, a warm-up joins the same prefetcher.
    let joined = by_hand(&[]);
    let text = String::from_utf8_lossy(&joined.stdout);
    assert!(joined.status.success(), "{}", stderr(&joined));
    assert!(text.contains("joined=yes"), "{text}");
    assert!(
        text.contains(&format!("pid={}", holder_pid(&lab))),
        "{text}"
    );
    // The third standby's WAL is in the spool before it starts, although
    // the second one replayed the same segments meanwhile.
    wait_spooled(&spool, &since);
    st2.stop();
    let mut st3 = Pg::existing(&lab.sc, third.clone());
    st3.start();
    st3.wait_for("SELECT count(*) FROM s", "8", Duration::from_secs(60));
    let log = std::fs::read_to_string(&st3.log).unwrap();
    for n in &since {
        assert!(
            log.contains(&format!("restored log file \"{n}\" from archive")),
            "{n}: {log}"
        );
    }
    st3.stop();

    // An ssh login the Barman host refuses: the hint's command names the
    // real host, not a placeholder (issue 26, 2.8).
    let refused = lab.sc.write(
        "refused.conf",
        &format!(
            "node_id=2\nnode_name=node2\nbarman_host=nobody@barmansrv\nbarman_server=pg\n\
             barman_config='{}'\nssh_options='-F {}'\n",
            lab.barman.config.display(),
            lab.sshd.ssh_config.display(),
        ),
    );
    let out = standby_clone(
        &lab.sc,
        &refused,
        &lab.primary,
        &lab.sc.path("standby4"),
        &["--dry-run"],
        &[],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("ssh -o BatchMode=yes nobody@barmansrv true"),
        "{err}"
    );
    assert!(!err.contains(" HOST "), "{err}");
}

/// Hostile names, archives and WAL hosts; segments received but not archived.
mod hostile;

/// The pid of the prefetcher that holds the Barman source's spool of `lab`
/// (`wal-restore -v -t` says it).
fn holder_pid(lab: &Lab) -> u32 {
    let out = lab.wal_restore(&["-v", "-t"], "x", Path::new("-"));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let at = err
        .find("prefetcher pid ")
        .unwrap_or_else(|| panic!("no prefetcher: {err}"));
    err[at + 15..].split(' ').next().unwrap().parse().unwrap()
}

/// Two standbys of the same Barman server on one host, in one spool (issue
/// 27, 3): each clone gets its WAL warm-up (the second joins the first's
/// prefetcher and names it), `wal-restore -v` says who holds what, and the
/// two replay at different positions, each from the spool: the Barman host
/// is gone before they start, so no segment can come from anywhere else.
#[test]
fn two_standbys_of_one_barman_server_each_get_their_warm_up_from_one_spool() {
    let mut lab = lab("walshare");
    lab.primary.sql("CREATE TABLE t(i int)");
    lab.barman.backup();
    let since = lab.switch_segments(12);
    lab.barman.archive_now();
    let conf = lab.sc.write(
        "share.conf",
        &format!(
            "node_id=2\nnode_name=node2\nbarman_host=barmansrv\nbarman_server=pg\nbarman_config='{}'\nssh_options='-F {}'\n\
             restore_command='{}'\n",
            lab.barman.config.display(),
            lab.sshd.ssh_config.display(),
            restore_command(&lab, "").replace('\'', "''")
        ),
    );
    let (a, b) = (lab.sc.path("standby-a"), lab.sc.path("standby-b"));
    let out = standby_clone(&lab.sc, &conf, &lab.primary, &a, &[], &[]);
    let err_a = stderr(&out);
    assert!(out.status.success(), "{err_a}");
    assert!(
        err_a.contains("while the copy runs (prefetcher pid "),
        "{err_a}"
    );
    let out = standby_clone(&lab.sc, &conf, &lab.primary, &b, &[], &[]);
    let err_b = stderr(&out);
    assert!(out.status.success(), "{err_b}");
    assert!(
        !err_b.contains("WARNING: the WAL warm-up is skipped"),
        "{err_b}"
    );
    let (a_dir, b_dir) = (
        std::fs::canonicalize(&a).unwrap(),
        std::fs::canonicalize(&b).unwrap(),
    );
    let pid = holder_pid(&lab);
    assert!(
        err_a.contains(&format!("(prefetcher pid {pid})")),
        "{pid}: {err_a}"
    );
    assert!(
        err_b.contains(&format!(
            "it joined the prefetcher (pid {pid}) that also serves {}: warm-up from ",
            a_dir.display()
        )),
        "{err_b}"
    );
    // -v: the holder, and each standby with its position.
    let out = lab.wal_restore(&["-v", "-t"], "x", Path::new("-"));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("prefetcher pid {pid} serves 2 standbys")),
        "{err}"
    );
    for d in [&a_dir, &b_dir] {
        assert!(
            err.contains(&format!(
                "INFO: pgclone wal-restore:   {}: warm-up from ",
                d.display()
            )),
            "{err}"
        );
    }
    // Both warm-ups' WAL, once, in the one spool directory.
    let spool = lab.sc.path("spool");
    wait_spooled(&spool, &since);
    assert_eq!(source_dirs(&spool, "barman-").len(), 1);
    // From here on the spool is the only place the WAL can come from.
    lab.sshd.stop();
    let mut st_a = Pg::existing(&lab.sc, a.clone());
    st_a.start();
    wait_restored(&st_a, 6);
    // b starts at the backup while a is half-way (or done): a took its
    // segments as copies, since b's cursor was still before them.
    let mut st_b = Pg::existing(&lab.sc, b.clone());
    st_b.start();
    for st in [&st_a, &st_b] {
        st.wait_for("SELECT count(*) FROM s", "12", Duration::from_secs(60));
        let log = std::fs::read_to_string(&st.log).unwrap();
        for n in &since {
            assert!(
                log.contains(&format!("restored log file \"{n}\" from archive")),
                "{}: {n}: {log}",
                st.data.display()
            );
        }
    }
    st_a.stop();
    st_b.stop();
    lab.sshd.restart();
}
