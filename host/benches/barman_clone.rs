//! A clone from Barman (a pgbench primary of about 1 GiB, over ssh on
//! loopback): pgclone with 1, 2 and 4 rsync streams vs `repmgr standby clone`
//! in Barman mode vs `barman recover --remote-ssh-command` with --jobs 1 and 2,
//! and a delta re-clone vs a full one. Same run, medians and ratios printed.
//!
//! Needs root (sshd, the barman user). repmgr reads the Host block from the
//! postgres user's ~/.ssh/config, so this benchmark installs one there for
//! the duration of the run and restores what was there.
//! `cargo bench -p pgclone --bench barman_clone` (PGCLONE_BENCH_SCALE, _ROUNDS).

mod common;
// A benchmark uses part of the tests' support.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use common::{median, wipe};
use support::barman::{barman_34, Barman, HomeSshConfig, Sshd};
use support::*;

fn main() {
    let scale = common::scale("70");
    let rounds = common::rounds(3);
    let sc = Scratch::new("bench-barman");
    let mut p = Pg::init(&sc, "primary");
    p.append_conf("shared_buffers = '256MB'\nmax_wal_size = '2GB'\n");
    p.start();
    p.pgbench_init(&scale);
    let sshd = Sshd::start_for(&sc, "/usr/bin:/bin", true);
    let barman = Barman::setup(&sc, &p, barman_34());
    let id = barman.backup();
    let size = p.sql("SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database");
    let sock = sc.dir.display().to_string();
    let port = p.port.to_string();
    let target = sc.path("standby");
    let _ssh = HomeSshConfig::install(
        "postgres",
        &std::fs::read_to_string(&sshd.ssh_config).unwrap(),
    );

    p.register_with_repmgr(&sc, "", "");
    let common = format!(
        "node_id=2\nnode_name=node2\nconninfo='host={sock} port=1 user=postgres dbname=postgres'\ndata_directory='{}'\n\
         barman_host=barmansrv\nbarman_server=pg\nbarman_config='{}'\nrestore_command='/bin/false %f %p'\n",
        target.display(),
        barman.config.display()
    );
    let node2 = sc.write("node2.conf", &common);
    let pgclone_conf = sc.write(
        "pgclone.conf",
        &format!("{common}ssh_options='-F {}'\n", sshd.ssh_config.display()),
    );

    let pgclone = |jobs: &str, extra: &[&str]| {
        let mut c = as_pg("env");
        c.arg(format!("HOME={sock}"))
            .arg(format!("PGCLONE_CACHE_DIR={sock}/cache"))
            .arg(env!("CARGO_BIN_EXE_pgclone"))
            .arg("-f")
            .arg(&pgclone_conf)
            .args([
                "standby", "clone", "-h", &sock, "-p", &port, "-U", "postgres", "-d", "postgres",
                "-j", jobs,
            ])
            .args(extra);
        c
    };
    let recover = |jobs: &str| {
        let key = sc.path("ssh/barman_key");
        let ssh = format!(
            "ssh -i {} -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR postgres@127.0.0.1",
            key.display(),
            sshd.port
        );
        let mut c = Command::new("runuser");
        c.args(["-u", "barman", "--"])
            .arg(&barman.bin)
            .arg("-c")
            .arg(&barman.config)
            .args([
                "recover",
                "--remote-ssh-command",
                &ssh,
                "--jobs",
                jobs,
                "pg",
                &id,
            ])
            .arg(&target);
        c
    };

    let labels = [
        "pgclone -j1",
        "pgclone -j2",
        "pgclone -j4",
        "repmgr (barman)",
        "barman recover -j1",
        "barman recover -j2",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); labels.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.rotate_left(round % labels.len());
        for &i in &order {
            wipe(&target);
            let d = match i {
                0 => timed(labels[i], &mut pgclone("1", &[])),
                1 => timed(labels[i], &mut pgclone("2", &[])),
                2 => timed(labels[i], &mut pgclone("4", &[])),
                3 => timed(
                    labels[i],
                    as_pg("repmgr").arg("-f").arg(&node2).args([
                        "-h", &sock, "-p", &port, "-U", "postgres", "-d", "postgres", "standby",
                        "clone",
                    ]),
                ),
                4 => timed(labels[i], &mut recover("1")),
                _ => timed(labels[i], &mut recover("2")),
            };
            eprintln!(
                "round {}: {:<20} {:.2} s",
                round + 1,
                labels[i],
                d.as_secs_f64()
            );
            times[i].push(d);
        }
    }

    // Delta: the standby fell behind; the primary changed a little; a newer backup.
    wipe(&target);
    timed("pgclone (first clone)", &mut pgclone("4", &[]));
    p.sql("UPDATE pgbench_branches SET bbalance = bbalance + 1");
    p.sql("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid < 1000");
    p.sql("CHECKPOINT");
    barman.backup();
    let delta = timed("pgclone delta re-clone", &mut pgclone("4", &["-F"]));
    let wire = {
        let out = run(&mut pgclone("4", &["-F", "--dry-run"]));
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).contains("only what changed")
    };
    assert!(wire, "the re-clone was not a delta copy");
    wipe(&target);
    let full = timed("pgclone full clone", &mut pgclone("4", &[]));

    let med: Vec<Duration> = times.into_iter().map(median).collect();
    println!("clone from Barman of a {size} pgbench primary (backup {id}), ssh on loopback, median of {rounds} rounds");
    for (l, d) in labels.iter().zip(&med) {
        println!("  {l:<22} {:7.2} s", d.as_secs_f64());
    }
    let best = med[..3].iter().min().unwrap().as_secs_f64();
    println!(
        "  repmgr / best pgclone        {:6.2}x   (target >= 1.5)",
        med[3].as_secs_f64() / best
    );
    println!(
        "  recover -j1 / best pgclone   {:6.2}x",
        med[4].as_secs_f64() / best
    );
    println!(
        "  recover -j2 / best pgclone   {:6.2}x",
        med[5].as_secs_f64() / best
    );
    println!(
        "  delta re-clone {:6.2} s vs full clone {:6.2} s: {:.2}x faster",
        delta.as_secs_f64(),
        full.as_secs_f64(),
        full.as_secs_f64() / delta.as_secs_f64()
    );
    wipe(&target);
}
