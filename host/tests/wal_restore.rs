//! `pgclone wal-restore` against real Barman over a real sshd: a standby in
//! archive recovery replays 50+ segments through it; missing, damaged and
//! unreachable cases give the documented codes and never a file at %p.

mod support;

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

fn restore_command(lab: &Lab) -> String {
    format!(
        "{} wal-restore --ssh-option=-F{} -c {} --spool-dir {} barmansrv pg %f %p",
        env!("CARGO_BIN_EXE_pgclone"),
        lab.sshd.ssh_config.display(),
        lab.barman.config.display(),
        lab.sc.path("spool").display()
    )
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

    let mut st = restore_for_archive_recovery(&lab, &lab.primary, "pgclone_target");
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

/// Clones Barman's latest backup of `pg` (the upstream is `upstream`)
/// and turns the copy into an archive recovery only: no primary_conninfo,
/// WAL through `pgclone wal-restore` up to the restore point `target_name`,
/// then promote. The server is not started.
fn restore_for_archive_recovery(lab: &Lab, upstream: &Pg, target_name: &str) -> Pg {
    let target = lab.sc.path("standby");
    let cfg = lab.sc.write(
        "pgclone.conf",
        &format!(
            "node_id=2\nnode_name=node2\nbarman_host=barmansrv\nbarman_server=pg\nbarman_config='{}'\nssh_options='-F {}'\n",
            lab.barman.config.display(),
            lab.sshd.ssh_config.display()
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
    std::fs::write(
        target.join("postgresql.auto.conf"),
        format!(
            "{auto}restore_command = '{}'\nrecovery_target_name = '{target_name}'\n\
             recovery_target_timeline = 'latest'\nrecovery_target_action = 'promote'\n",
            restore_command(lab)
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
    let mut st = restore_for_archive_recovery(&lab, &new_primary, "after_failover");
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
    let spooled: Vec<String> = std::fs::read_dir(lab.sc.path("spool"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !spooled.iter().any(|n| n.contains("history")),
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
    while !spool.join(&names[3]).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the prefetcher never filled the spool: {:?}\n{}",
            std::fs::read_dir(&spool)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>(),
            std::fs::read_to_string(spool.join("prefetch.log")).unwrap_or_default()
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
}

/// A TCP relay for ssh's ProxyCommand that passes at most `rate` bytes per
/// second from the server: a transfer slow enough to be killed midway.
const SLOW_PROXY: &str = r#"
import socket, sys, threading, time, os
host, port, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port))
def up():
    while True:
        b = os.read(0, 65536)
        if not b:
            break
        s.sendall(b)
threading.Thread(target=up, daemon=True).start()
while True:
    b = s.recv(16384)
    if not b:
        break
    os.write(1, b)
    time.sleep(len(b) / rate)
"#;

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
