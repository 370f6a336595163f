//! The figure users wait for: from "clone from Barman" to a standby that
//! streams from the primary, when the WAL written since the backup must come
//! from Barman through restore_command. `repmgr standby clone` with
//! `barman-wal-restore --parallel 4` vs `pgclone standby clone` with `pgclone
//! wal-restore`, and the time to copy the same bytes (the backup and the WAL
//! since) over one ssh stream with tar, the physical limit here. Same run,
//! medians and ratios printed, with pgclone's breakdown: the clone itself, how
//! much WAL it had spooled by its end, and the replay until streaming.
//!
//! Needs root (sshd, the barman user). repmgr and barman-wal-restore read the
//! Host block from the postgres user's ~/.ssh/config, so this benchmark puts
//! one there for the run and restores what was there.
//! `cargo bench -p pgclone --bench ready_to_stream` (PGCLONE_BENCH_SCALE,
//! _ROUNDS, PGCLONE_BENCH_SEGMENTS: the segments written since the backup).
//!
//! PGCLONE_BENCH_NEIGHBOUR=N: the same while another standby on the host
//! uses wal-restore: a neighbour, cloned from an older backup of the same
//! Barman server with N more segments after it, restarts from its copy at
//! the start of every run and replays through `pgclone wal-restore` with the
//! same spool directory as pgclone's restore_command (its prefetcher is the
//! one a clone's warm-up meets), for every tool alike.

mod common;
// A benchmark uses part of the tests' support.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{median, wipe};
use std::path::PathBuf;
use support::barman::{barman_34, Barman, HomeSshConfig, Sshd};
use support::*;

/// Starts the standby in `dir` and returns how long until it is ready to
/// stream: its WAL receiver streams and it has replayed up to `lsn` (the end
/// of the WAL written since the backup), so a standby that skipped the
/// archive and streams while still behind does not count as ready.
fn until_streaming(sc: &Scratch, dir: &Path, lsn: &str) -> Duration {
    let t = Instant::now();
    let mut st = Pg::existing(sc, dir.to_path_buf());
    // Each run's own log: it counts what came through restore_command.
    let _ = std::fs::remove_file(&st.log);
    st.start_nowait();
    let ready = format!(
        "SELECT status = 'streaming' AND pg_last_wal_replay_lsn() >= '{lsn}' FROM pg_stat_wal_receiver"
    );
    loop {
        let out = run(as_pg(pg_bindir().join("psql"))
            .args(["-h", &sc.dir.display().to_string(), "-p"])
            .arg(st.port.to_string())
            .args(["-d", "postgres", "-XAtqc", &ready]));
        if String::from_utf8_lossy(&out.stdout).trim() == "t" {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "the standby never caught up: {}",
            std::fs::read_to_string(&st.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let d = t.elapsed();
    st.stop();
    // How much came through restore_command (the rest was streamed).
    let log = std::fs::read_to_string(&st.log).unwrap_or_default();
    eprintln!(
        "  {}: ready in {:.2} s, {} files restored from the archive",
        dir.display(),
        d.as_secs_f64(),
        log.matches("restored log file").count()
    );
    d
}

/// WAL segments under `dir` (in any source's directory).
fn count_segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                count_segments(&e.path())
            } else {
                usize::from(name.len() == 24 && name.chars().all(|c| c.is_ascii_hexdigit()))
            }
        })
        .sum()
}

/// A standby of the same Barman server replaying through pgclone
/// wal-restore from an older backup, in the spool pgclone's clone uses.
struct Neighbour {
    base: PathBuf,
    dir: PathBuf,
    spool: PathBuf,
    segments: usize,
}

impl Neighbour {
    /// Clones `backup` into its base copy as a standby that has only
    /// restore_command (no primary_conninfo): it replays the archive.
    fn setup(
        sc: &Scratch,
        conf: &Path,
        clone_args: &[&str],
        backup: &str,
        spool: &Path,
        segments: usize,
    ) -> Neighbour {
        let base = sc.path("neighbour-base");
        run_ok(
            as_pg("env")
                .arg(format!("HOME={}", sc.dir.display()))
                .arg(format!("PGCLONE_CACHE_DIR={}/cache", sc.dir.display()))
                .arg(env!("CARGO_BIN_EXE_pgclone"))
                .arg("-f")
                .arg(conf)
                .args(["standby", "clone"])
                .args(clone_args)
                .args(["-D", base.to_str().unwrap(), "--backup-id", backup]),
        );
        let auto = base.join("postgresql.auto.conf");
        let text: String = std::fs::read_to_string(&auto)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("primary_conninfo"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&auto, text).unwrap();
        Neighbour {
            base,
            dir: sc.path("neighbour"),
            spool: spool.to_path_buf(),
            segments,
        }
    }

    /// A fresh spool and the neighbour from its copy, replaying once its
    /// first file is restored.
    fn start(&self, sc: &Scratch) -> Pg {
        wipe(&self.dir);
        wipe(&self.spool);
        run_ok(
            Command::new("install")
                .args(["-d", "-o", "postgres", "-m", "0700"])
                .arg(&self.spool),
        );
        run_ok(Command::new("cp").arg("-a").arg(&self.base).arg(&self.dir));
        let mut st = Pg::existing(sc, self.dir.clone());
        let _ = std::fs::remove_file(&st.log);
        st.start_nowait();
        let t = Instant::now();
        while !std::fs::read_to_string(&st.log)
            .unwrap_or_default()
            .contains("restored log file")
        {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "the neighbour never replays"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        st
    }

    /// Stops it; how many files it restored meanwhile.
    fn stop(st: &mut Pg) -> usize {
        st.stop();
        std::fs::read_to_string(&st.log)
            .unwrap_or_default()
            .matches("restored log file")
            .count()
    }
}

fn main() {
    let scale = common::scale("13");
    let rounds = common::rounds(3);
    let segments: u64 = std::env::var("PGCLONE_BENCH_SEGMENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(75);
    let sc = Scratch::new("bench-ready");
    let mut p = Pg::init(&sc, "primary");
    p.append_conf("shared_buffers = '256MB'\nmax_wal_size = '4GB'\nwal_keep_size = '4GB'\n");
    p.start();
    p.pgbench_init(&scale);
    let sshd = Sshd::start_for(&sc, "/usr/bin:/bin", true);
    let barman = Barman::setup(&sc, &p, barman_34());
    let neighbour_segments: usize = std::env::var("PGCLONE_BENCH_NEIGHBOUR")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // The neighbour's older backup, and its WAL before the measured backup.
    let older = (neighbour_segments > 0).then(|| {
        let older = barman.backup();
        p.sql("CREATE TABLE IF NOT EXISTS before(i int)");
        for i in 0..neighbour_segments {
            p.sql(&format!(
                "INSERT INTO before VALUES ({i}); SELECT pg_switch_wal()"
            ));
        }
        older
    });
    let id = barman.backup();
    let backup_size =
        p.sql("SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database");
    // WAL written since the backup, archived by Barman: real pgbench
    // transactions until `segments` segments have passed.
    let lsn_segment = |p: &Pg| -> u64 {
        p.sql("SELECT floor((pg_current_wal_lsn() - '0/0') / 16777216)::bigint")
            .parse()
            .unwrap()
    };
    let from = lsn_segment(&p);
    // PGCLONE_BENCH_WAL=switch (default): a row and a segment switch per
    // segment, as the figure in the brief was measured (replay is cheap, the
    // transfer is what is measured); =updates: real row changes, a quarter of
    // the accounts at a time (replay itself then takes seconds).
    let workload = std::env::var("PGCLONE_BENCH_WAL").unwrap_or_else(|_| "switch".into());
    eprintln!("writing {segments} segments of WAL ({workload}) after backup {id} ...");
    p.sql("CREATE TABLE IF NOT EXISTS since(i int)");
    let mut round = 0;
    while lsn_segment(&p) < from + segments {
        if workload == "updates" {
            p.sql(&format!(
                "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 4 = {}",
                round % 4
            ));
        } else {
            p.sql(&format!(
                "INSERT INTO since VALUES ({round}); SELECT pg_switch_wal()"
            ));
        }
        round += 1;
    }
    let last = p.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    // Replayed up to here, the standby has all the WAL written since the backup.
    let end_lsn = p.sql("SELECT pg_current_wal_lsn()");
    barman.archive_now();
    let wals = barman.home.join("pg/wals");
    let t0 = Instant::now();
    while !wals.join(&last[..16]).join(&last).exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{last} never archived"
        );
        barman.archive_now();
    }
    let sock = sc.dir.display().to_string();
    let port = p.port.to_string();
    let target = sc.path("standby");
    let _ssh = HomeSshConfig::install(
        "postgres",
        &std::fs::read_to_string(&sshd.ssh_config).unwrap(),
    );
    p.register_with_repmgr(&sc, "", "");
    let conninfo = format!(
        "node_id=2\nnode_name=node2\nconninfo='host={sock} port=1 user=postgres dbname=postgres'\ndata_directory='{}'\n\
         barman_host=barmansrv\nbarman_server=pg\nbarman_config='{}'\n",
        target.display(),
        barman.config.display()
    );
    let bwr_spool = sc.path("bwr-spool");
    let node2 = sc.write(
        "node2.conf",
        &format!(
            "{conninfo}restore_command='/usr/bin/barman-wal-restore --parallel 4 -U barman -c {} --spool-dir {} barmansrv pg %f %p'\n",
            barman.config.display(),
            bwr_spool.display()
        ),
    );
    let pgclone_spool = sc.path("pgclone-spool");
    let pgclone_conf = sc.write(
        "pgclone.conf",
        &format!(
            "{conninfo}ssh_options='-F {}'\nrestore_command='{} -f {} wal-restore --spool-dir {} %f %p'\n",
            sshd.ssh_config.display(),
            env!("CARGO_BIN_EXE_pgclone"),
            sc.path("pgclone.conf").display(),
            pgclone_spool.display()
        ),
    );
    let clone_args = ["-h", &sock, "-p", &port, "-U", "postgres", "-d", "postgres"];
    let neighbour = older.as_ref().map(|older| {
        let conf = sc.write(
            "neighbour.conf",
            &format!(
                "{}clone_wal_prefetch=0\n",
                std::fs::read_to_string(&pgclone_conf).unwrap()
            ),
        );
        Neighbour::setup(
            &sc,
            &conf,
            &clone_args,
            older,
            &pgclone_spool,
            neighbour_segments,
        )
    });
    // `pgclone -f CONF standby clone` as the postgres user.
    let pgclone = |conf: &Path| {
        let mut c = as_pg("env");
        c.arg(format!("HOME={sock}"))
            .arg(format!("PGCLONE_CACHE_DIR={sock}/cache"))
            .arg(env!("CARGO_BIN_EXE_pgclone"))
            .arg("-f")
            .arg(conf)
            .args(["standby", "clone"])
            .args(clone_args);
        c
    };
    let tar_out = sc.path("tar-out");
    let fresh = |spool: &Path| {
        wipe(&target);
        wipe(spool);
        run_ok(
            Command::new("install")
                .args(["-d", "-o", "postgres", "-m", "0700"])
                .arg(spool),
        );
    };

    let labels = [
        "repmgr + barman-wal-restore -p 4",
        "pgclone",
        "tar over one ssh stream",
    ];
    let mut totals: Vec<Vec<Duration>> = vec![Vec::new(); labels.len()];
    let (mut copies, mut replays, mut spooled) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.rotate_left(round % labels.len());
        for &i in &order {
            if i == 0 {
                fresh(&bwr_spool);
            } else if i == 1 {
                fresh(&pgclone_spool);
            }
            let mut next_door = neighbour.as_ref().map(|n| n.start(&sc));
            match i {
                0 => {
                    let copy = timed(
                        labels[i],
                        as_pg("repmgr")
                            .arg("-f")
                            .arg(&node2)
                            .args(clone_args)
                            .args(["standby", "clone"]),
                    );
                    totals[i].push(copy + until_streaming(&sc, &target, &end_lsn));
                }
                1 => {
                    let copy = timed(labels[i], &mut pgclone(&pgclone_conf));
                    spooled.push(count_segments(&pgclone_spool));
                    let replay = until_streaming(&sc, &target, &end_lsn);
                    copies.push(copy);
                    replays.push(replay);
                    totals[i].push(copy + replay);
                }
                _ => {
                    wipe(&tar_out);
                    // As postgres, whose ~/.ssh/config has the Host block.
                    let script = format!(
                        "mkdir -p {out}/wals && ssh barmansrv tar cf - -C {base} . | tar xf - -C {out} && \
                         ssh barmansrv 'cd {wals} && find . -newer {base}/backup.info -type f | tar cf - -T -' | tar xf - -C {out}/wals",
                        base = barman.home.join("pg/base").join(&id).display(),
                        wals = wals.display(),
                        out = tar_out.display()
                    );
                    totals[i].push(timed(labels[i], as_pg("sh").arg("-c").arg(&script)));
                }
            }
            if let Some(st) = next_door.as_mut() {
                eprintln!(
                    "  the neighbour restored {} files meanwhile",
                    Neighbour::stop(st)
                );
            }
        }
    }
    let med: Vec<Duration> = totals.into_iter().map(median).collect();
    println!(
        "from \"clone from Barman\" to a streaming standby: a {backup_size} pgbench primary (backup {id}), \
         {segments} segments of WAL since, ssh on loopback, median of {rounds} rounds"
    );
    if let Some(n) = &neighbour {
        println!(
            "  while another standby on the host replays {} segments from the same Barman server \
             through pgclone wal-restore, in the spool pgclone's restore_command uses",
            n.segments + segments as usize
        );
    }
    for (l, d) in labels.iter().zip(&med) {
        println!("  {l:<36} {:7.2} s", d.as_secs_f64());
    }
    println!(
        "  pgclone breakdown: clone {:.2} s (with {} segments spooled by its end), start and replay until streaming {:.2} s",
        median(copies).as_secs_f64(),
        {
            spooled.sort();
            spooled[spooled.len() / 2]
        },
        median(replays).as_secs_f64()
    );
    println!(
        "  ratio repmgr + barman-wal-restore -p 4 / pgclone: {:.1}x (target: at least 10x)",
        med[0].as_secs_f64() / med[1].as_secs_f64()
    );
    println!(
        "  ratio pgclone / tar over one ssh stream: {:.2}x (target: at most 1.3x)",
        med[1].as_secs_f64() / med[2].as_secs_f64()
    );
}
