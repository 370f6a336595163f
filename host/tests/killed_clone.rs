//! `pgclone standby clone` killed with SIGKILL — no handler, no rollback —
//! at each phase of a clone, for both sources: pg_basebackup (copying,
//! verifying), Barman over a real sshd (rsync), and Barman's incremental chain
//! (PostgreSQL 17, Barman 3.19: the copy into the staging directory,
//! pg_combinebackup). Each time: every process of pgclone's tree at the kill
//! is gone soon after (by pid and by process group, not by name), and the
//! rerun recognises what was left, says what it repairs (with `-F` where data
//! is in the way), and ends with a standby that starts and streams.
//!
//! A phase is hit by watching pgclone's own process tree (the program of the
//! phase is its child) and the files, never by sleeping: slow copies go
//! through `--max-rate` or a slow ssh relay, and the short programs
//! (pg_verifybackup, pg_combinebackup) through a gate that stops them before
//! they start. Before the kill, pgclone's children are frozen (SIGSTOP): none
//! can end on its own, so a child that is gone afterwards was killed.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::barman::{barman_34, Barman, IncrementalLab, Sshd};
use support::*;

const WAIT: Duration = Duration::from_secs(120);

/// One process, from `/proc/PID/stat`.
#[derive(Debug, Clone)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgid: i32,
    state: char,
    /// Clock ticks after boot: with the pid, names one process (pids are reused).
    start: u64,
    comm: String,
}

fn stat(pid: i32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may hold spaces: split after the last ')'.
    let (head, rest) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Proc {
        pid,
        state: f[0].chars().next()?,
        ppid: f[1].parse().ok()?,
        pgid: f[2].parse().ok()?,
        start: f[19].parse().ok()?,
        comm,
    })
}

fn all_procs() -> Vec<Proc> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter_map(stat)
        .collect()
}

/// Every process below `root` (children, their children, ...).
fn descendants(root: i32) -> Vec<Proc> {
    let all = all_procs();
    let mut out: Vec<Proc> = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for c in all.iter().filter(|c| c.ppid == p) {
            frontier.push(c.pid);
            out.push(c.clone());
        }
    }
    out
}

/// pgclone run in the background as support::pgclone runs it, with its pid.
struct Bg {
    runner: i32,
    handle: std::thread::JoinHandle<Output>,
}

fn start(sc: &Scratch, args: &[String]) -> Bg {
    let mut cmd = as_pg("env");
    cmd.arg("-i")
        .arg(format!("HOME={}", sc.dir.display()))
        .arg(format!(
            "PATH={}:/usr/local/bin:/usr/bin:/bin",
            pg_bindir().display()
        ))
        .arg(format!("PGCLONE_CACHE_DIR={}", sc.path("cache").display()))
        .arg(env!("CARGO_BIN_EXE_pgclone"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let runner = child.id() as i32;
    Bg {
        runner,
        handle: std::thread::spawn(move || child.wait_with_output().unwrap()),
    }
}

/// How the program of the phase is caught.
enum Catch<'a> {
    /// It runs long enough (a slowed copy): once it is pgclone's child and
    /// `ready` holds.
    Running(&'a dyn Fn() -> bool),
    /// Through a [`gate`]: stopped by the gate before it starts; let go, it
    /// becomes `real` and is frozen at once.
    Gated(&'a Path),
}

/// What the kill left to look at.
struct Killed {
    pid: i32,
    out: Output,
    at: Instant,
    /// The shared ssh connections of this test's clones alive at the kill:
    /// daemons of ssh's own, ended by the clone's reaper.
    masters: Vec<Proc>,
}

impl Killed {
    /// The shared ssh connection ends with the clone (the reaper kills its
    /// group), not ControlPersist later: a remote `cat` it carried would hold
    /// it, and itself on the backup host, for good.
    fn masters_end(&self) {
        while self
            .masters
            .iter()
            .any(|m| stat(m.pid).is_some_and(|p| p.start == m.start))
        {
            assert!(
                self.at.elapsed() < Duration::from_secs(10),
                "a shared ssh connection outlived the killed clone by 10 s: {:?}",
                self.masters
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The ssh masters of this test's clones: ssh processes with its HOME that
/// are masters (`ControlPersist=` in their arguments, or `[mux]` once they
/// renamed themselves in the background) at a clone's control path
/// (`ssh-master`; the WAL warm-up prefetcher's, in restore_command's spool,
/// is restore_command's and lives on by design).
fn masters(sc: &Scratch) -> Vec<Proc> {
    let home = format!("HOME={}", sc.dir.display());
    all_procs()
        .into_iter()
        .filter(|p| p.comm == "ssh")
        .filter(|p| {
            let read = |f: &str| {
                String::from_utf8_lossy(
                    &std::fs::read(format!("/proc/{}/{f}", p.pid)).unwrap_or_default(),
                )
                .into_owned()
            };
            let cmdline = read("cmdline");
            (cmdline.contains("ControlPersist=") || cmdline.contains("[mux]"))
                && cmdline.contains("ssh-master")
                && read("environ").split('\0').any(|v| v == home)
        })
        .collect()
}

/// Waits for pgclone to run a child named `program` (as /proc shows it: 15
/// characters at most), freezes pgclone and its children, kills pgclone with
/// SIGKILL, and checks that every process of its tree at that moment — and
/// every process of their process groups — is gone within 20 s.
fn kill_during(sc: &Scratch, bg: Bg, program: &str, catch: Catch) -> Killed {
    let comm: String = program.chars().take(15).collect();
    let started = Instant::now();
    let (pgclone, child) = loop {
        assert!(
            !bg.handle.is_finished(),
            "pgclone ended before running {program}:\n{}",
            stderr(&bg.handle.join().unwrap())
        );
        assert!(started.elapsed() < WAIT, "pgclone never ran {program}");
        // runuser's child (the one pgclone: a warm-up it starts is one too).
        let pgclone = stat(bg.runner).filter(|p| p.comm == "pgclone").or_else(|| {
            descendants(bg.runner)
                .into_iter()
                .find(|p| p.ppid == bg.runner && p.comm == "pgclone")
        });
        if let Some(pg) = pgclone {
            let child = descendants(pg.pid)
                .into_iter()
                .find(|c| c.ppid == pg.pid && c.comm == comm);
            let ready = match (&catch, &child) {
                (Catch::Running(ready), Some(_)) => ready(),
                (Catch::Gated(_), Some(c)) => c.state == 'T',
                _ => false,
            };
            if ready {
                break (pg, child.unwrap());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    signal(pgclone.pid, libc::SIGSTOP);
    if let Catch::Gated(real) = catch {
        let real = std::fs::canonicalize(real).unwrap();
        signal(child.pid, libc::SIGCONT);
        let t = Instant::now();
        while std::fs::read_link(format!("/proc/{}/exe", child.pid)).ok() != Some(real.clone()) {
            assert!(t.elapsed() < WAIT, "the gate never let {program} go");
            std::thread::yield_now();
        }
    }
    // pgclone's own children cannot end on their own from here on (all but
    // its reaper, a fork of pgclone that must act when pgclone dies).
    let tree = descendants(pgclone.pid);
    for c in tree
        .iter()
        .filter(|c| c.ppid == pgclone.pid && c.comm != "pgclone")
    {
        signal(c.pid, libc::SIGSTOP);
    }
    assert!(
        tree.iter()
            .any(|c| c.pid == child.pid && c.start == child.start),
        "{program} ended before the kill: {tree:?}"
    );
    let masters = masters(sc);
    signal(pgclone.pid, libc::SIGKILL);
    let at = Instant::now();
    // Process groups of the children (not pgclone's own: the test's).
    let groups: Vec<i32> = tree
        .iter()
        .map(|c| c.pgid)
        .filter(|g| *g != pgclone.pgid)
        .collect();
    assert!(
        groups.contains(&child.pid),
        "{program} is not in a process group of its own: {tree:?}"
    );
    let t = Instant::now();
    loop {
        let alive: Vec<Proc> = all_procs()
            .into_iter()
            .filter(|p| {
                tree.iter().any(|c| c.pid == p.pid && c.start == p.start)
                    || groups.contains(&p.pgid)
            })
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "still running 20 s after pgclone was killed during {program}: {alive:#?}\n(its tree at the kill: {tree:#?})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // runuser stops itself when its child stops (and waits for a SIGCONT).
    while !bg.handle.is_finished() {
        signal(bg.runner, libc::SIGCONT);
        assert!(t.elapsed() < WAIT, "runuser never ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = bg.handle.join().unwrap();
    Killed {
        pid: pgclone.pid,
        out,
        at,
        masters,
    }
}

fn signal(pid: i32, sig: i32) {
    unsafe { libc::kill(pid, sig) };
}

/// A pg_bindir like `bindir` in which `program` stops itself (SIGSTOP)
/// before it becomes the real one; `--version`/`--help` pass straight through.
fn gate(sc: &Scratch, name: &str, bindir: &Path, program: &str) -> PathBuf {
    let dir = sc.mkdir(name);
    for e in std::fs::read_dir(bindir).unwrap().flatten() {
        let _ = std::os::unix::fs::symlink(e.path(), dir.join(e.file_name()));
    }
    let gated = dir.join(program);
    std::fs::remove_file(&gated).unwrap();
    let real = bindir.join(program);
    std::fs::write(
        &gated,
        format!(
            "#!/bin/sh\ncase \"$1\" in --version|--help|-V) exec '{r}' \"$@\";; esac\nkill -STOP $$\nexec '{r}' \"$@\"\n",
            r = real.display()
        ),
    )
    .unwrap();
    run_ok(Command::new("chmod").arg("755").arg(&gated));
    dir
}

/// `ssh_config` with the Barman host reached through the slow relay
/// (`rate` bytes a second from the server).
fn slow_ssh_config(sc: &Scratch, sshd: &Sshd, rate: u32) -> PathBuf {
    let relay = sc.write("slowproxy.py", SLOW_PROXY);
    let text = std::fs::read_to_string(&sshd.ssh_config).unwrap().replacen(
        "Host barmansrv\n",
        &format!(
            "Host barmansrv\n  ProxyCommand python3 {} 127.0.0.1 {} {rate}\n",
            relay.display(),
            sshd.port
        ),
        1,
    );
    sc.write("ssh_config_slow", &text)
}

/// The slot the killed clone made is left on the upstream, inactive (its
/// walsender ends when it notices the closed connection).
fn slot_left_inactive(primary: &Pg) {
    primary.wait_for(
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'repmgr_slot_2'",
        "f",
        Duration::from_secs(20),
    );
}

/// The rerun after a kill: `-F` repairs; says what it repaired; the standby
/// starts and streams through the slot.
fn rerun_repairs(
    sc: &Scratch,
    cfg: &Path,
    primary: &Pg,
    target: &Path,
    killed: &Killed,
    bindir: &Path,
    also: &[String],
) {
    let out = standby_clone(sc, cfg, primary, target, &["-F"], &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    // Shown with --nocapture: what the operator reads.
    eprintln!("--- the rerun with -F:\n{err}");
    let who = format!("the clone interrupted earlier (pgclone PID {}", killed.pid);
    for want in [
        format!("left by {who}"),
        format!("replication slot \"repmgr_slot_2\", left inactive by {who}"),
        "was dropped and created again".to_string(),
        "standby clone".to_string(),
    ]
    .iter()
    .chain(also)
    {
        assert!(err.contains(want.as_str()), "missing {want:?} in:\n{err}");
    }
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    for left in [
        format!(".{name}.pgclone-staging"),
        format!(".{name}.pgclone-journal"),
    ] {
        assert!(!sc.path(&left).exists(), "{left} is still there: {err}");
    }
    let mut st = Pg::existing_with(sc, target.to_path_buf(), bindir);
    st.start();
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    primary.wait_for(
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'repmgr_slot_2'",
        "t",
        WAIT,
    );
    st.stop();
}

#[test]
fn pg_basebackup_killed_while_copying_and_verifying() {
    let sc = Scratch::new("killpgbb");
    let mut primary = Pg::init(&sc, "primary");
    primary.start();
    primary.sql(
        "CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 150000) g",
    );
    let base = "node_id=2\nnode_name=node2\nuse_replication_slots=true\n";
    let target = sc.path("standby");

    // Copying: pg_basebackup at 2 MB/s, once files arrive.
    let slow = sc.write(
        "slow.conf",
        &format!("{base}pg_basebackup_options='--max-rate=2M'\n"),
    );
    let bg = start(
        &sc,
        &clone_args(&slow, &primary, &target, &["--fast-checkpoint"]),
    );
    let watch = target.clone();
    let ready = move || watch.join("base").exists();
    let killed = kill_during(&sc, bg, "pg_basebackup", Catch::Running(&ready));
    // What it left: the copy, and the slot it made, inactive.
    assert!(target.join("base").is_dir());
    slot_left_inactive(&primary);
    assert!(sc.path(".standby.pgclone-journal").exists());

    // Without -F: refused, and why.
    let cfg = sc.write("pgclone.conf", base);
    let out = standby_clone(&sc, &cfg, &primary, &target, &[], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    eprintln!("--- the rerun without -F:\n{err}");
    for want in [
        format!(
            "ERROR: \"{}\" holds what the clone interrupted earlier (pgclone PID {}",
            target.display(),
            killed.pid
        ),
        format!("an incomplete copy in \"{}\"", target.display()),
        "replication slot \"repmgr_slot_2\" on the upstream".into(),
        "HINT: run the clone again with -F".into(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(target.join("base").is_dir(), "refused, yet changed: {err}");

    // Verifying (--verify-backup): pg_verifybackup stopped by the gate.
    let gated = gate(&sc, "gatebin", &pg_bindir(), "pg_verifybackup");
    let verify = sc.write(
        "verify.conf",
        &format!("{base}pg_bindir='{}'\n", gated.display()),
    );
    let bg = start(
        &sc,
        &clone_args(&verify, &primary, &target, &["-F", "--verify-backup"]),
    );
    let killed2 = kill_during(
        &sc,
        bg,
        "pg_verifybackup",
        Catch::Gated(&pg_bindir().join("pg_verifybackup")),
    );
    // That rerun repaired what the first kill left before it was killed.
    let err = stderr(&killed2.out);
    let who = format!("the clone interrupted earlier (pgclone PID {}", killed.pid);
    for want in [
        format!(
            "the incomplete copy in \"{}\" left by {who}",
            target.display()
        ),
        format!("replication slot \"repmgr_slot_2\", left inactive by {who}"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(!target.join("standby.signal").exists(), "{err}");

    rerun_repairs(
        &sc,
        &cfg,
        &primary,
        &target,
        &killed2,
        &pg_bindir(),
        &[format!(
            "the incomplete copy in \"{}\" left by",
            target.display()
        )],
    );
}

#[test]
fn barman_clone_killed_while_rsync_copies() {
    barman_clone_killed("killbarman", None, "rsync", 2_000_000);
}

/// A compressed backup (Barman 3.4, gzip) killed while its archive is read
/// over ssh and unpacked into the target.
#[test]
fn compressed_barman_clone_killed_while_unpacking() {
    barman_clone_killed(
        "killbarmangz",
        Some("backup_compression = gzip"),
        "ssh",
        50_000,
    );
}

/// A clone from Barman over the slow relay (`rate` bytes a second), killed
/// while pgclone's child `program` fills the target; the rerun with `-F`
/// repairs. `settings` makes the backup of a server of their own (`pgz`).
fn barman_clone_killed(name: &str, settings: Option<&str>, program: &str, rate: u32) {
    let sc = Scratch::new(name);
    let mut primary = Pg::init(&sc, "primary");
    primary.start();
    primary
        .sql("CREATE TABLE big AS SELECT g, md5(g::text) AS pad FROM generate_series(1, 100000) g");
    let bin = barman_34();
    let sshd = Sshd::start(
        &sc,
        &format!("{}:/usr/bin:/bin", bin.parent().unwrap().display()),
    );
    let barman = Barman::setup(&sc, &primary, bin);
    let server = match settings {
        Some(settings) => {
            barman.add_server("pgz", settings);
            barman.backup_of("pgz");
            "pgz"
        }
        None => {
            barman.backup();
            "pg"
        }
    };
    let conf = |name: &str, ssh_config: &Path| {
        let restore = format!(
            "ssh -F {} barmansrv barman -c {} get-wal {server} %f > %p",
            sshd.ssh_config.display(),
            barman.config.display()
        );
        sc.write(
            name,
            &format!(
                "node_id=2\nnode_name=node2\nuse_replication_slots=true\nbarman_host=barmansrv\nbarman_server={server}\n\
                 barman_config='{}'\nssh_options='-F {}'\nrestore_command='{restore}'\nclone_jobs=2\n",
                barman.config.display(),
                ssh_config.display()
            ),
        )
    };
    let target = sc.path("standby");
    let slow = conf("slow.conf", &slow_ssh_config(&sc, &sshd, rate));
    let bg = start(&sc, &clone_args(&slow, &primary, &target, &[]));
    let watch = target.clone();
    let ready = move || watch.join("base").exists();
    let killed = kill_during(&sc, bg, program, Catch::Running(&ready));
    assert!(target.join("base").is_dir());
    slot_left_inactive(&primary);

    let cfg = conf("pgclone.conf", &sshd.ssh_config);
    rerun_repairs(
        &sc,
        &cfg,
        &primary,
        &target,
        &killed,
        &pg_bindir(),
        &[format!(
            "the incomplete copy in \"{}\" left by",
            target.display()
        )],
    );
    assert!(
        !killed.masters.is_empty(),
        "no shared ssh connection was seen"
    );
    killed.masters_end();
}

#[test]
fn incremental_chain_killed_while_staging_and_combining() {
    let lab = IncrementalLab::new("killincr", 1);
    let sc = &lab.sc;
    let pg17 = pg17_bindir();
    let target = sc.path("standby");
    let staging = sc.path(".standby.pgclone-staging");
    let write_conf = |name: &str, ssh_config: &Path, bindir: &Path| {
        sc.write(
            name,
            &format!(
                "node_id=2\nnode_name=node2\nuse_replication_slots=true\nbarman_host=barmansrv\nbarman_server=pg\n\
                 barman_config='{}'\nssh_options='-F {}'\npg_bindir='{}'\n",
                lab.barman.config.display(),
                ssh_config.display(),
                bindir.display()
            ),
        )
    };

    // Copying the chain into the staging directory, through a slow relay.
    let slow = write_conf(
        "slow.conf",
        &slow_ssh_config(sc, &lab.sshd, 1_000_000),
        &pg17,
    );
    let bg = start(sc, &clone_args(&slow, &lab.primary, &target, &[]));
    let watch = staging.clone();
    let ready = move || {
        std::fs::read_dir(&watch)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("base").exists())
    };
    let killed = kill_during(sc, bg, "rsync", Catch::Running(&ready));
    assert!(staging.is_dir());
    slot_left_inactive(&lab.primary);

    // Without -F: the staging directory is named as what it is.
    let cfg = write_conf("pgclone.conf", &lab.sshd.ssh_config, &pg17);
    let out = standby_clone(sc, &cfg, &lab.primary, &target, &[], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        format!(
            "ERROR: the staging directory \"{}\" was left by the clone interrupted earlier (pgclone PID {}",
            staging.display(),
            killed.pid
        ),
        "HINT: run the clone again with -F".into(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(
        !err.contains("refusing to use"),
        "the leftover was taken for a data directory: {err}"
    );
    assert!(staging.is_dir(), "refused, yet changed: {err}");

    // Combining: pg_combinebackup stopped by the gate, then killed with pgclone.
    let gated = gate(sc, "gatebin", &pg17, "pg_combinebackup");
    let combine = write_conf("combine.conf", &lab.sshd.ssh_config, &gated);
    let bg = start(sc, &clone_args(&combine, &lab.primary, &target, &["-F"]));
    let killed2 = kill_during(
        sc,
        bg,
        "pg_combinebackup",
        Catch::Gated(&pg17.join("pg_combinebackup")),
    );
    let err = stderr(&killed2.out);
    let who = format!("the clone interrupted earlier (pgclone PID {}", killed.pid);
    for want in [
        format!(
            "the staging directory \"{}\" left by {who}",
            staging.display()
        ),
        format!("replication slot \"repmgr_slot_2\", left inactive by {who}"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(staging.is_dir(), "{err}");

    rerun_repairs(
        sc,
        &cfg,
        &lab.primary,
        &target,
        &killed2,
        &pg17,
        &[format!(
            "the staging directory \"{}\" left by",
            staging.display()
        )],
    );
    killed.masters_end();
    killed2.masters_end();
}
