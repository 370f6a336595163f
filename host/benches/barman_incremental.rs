//! A clone from a PostgreSQL 17 incremental Barman backup (a full backup of a
//! pgbench primary and two incrementals, Barman 3.19.1, ssh on loopback):
//! pgclone (the chain copied with parallel rsync into a staging directory,
//! combined with pg_combinebackup, verified with pg_verifybackup, then the
//! recovery configuration) against doing it by hand: rsync of each backup of
//! the chain over ssh, pg_combinebackup, the directories Barman leaves out,
//! then the recovery configuration (`pgclone standby clone
//! --replication-conf-only`). Same chain, same run, alternating order;
//! medians and the ratio printed.
//!
//! Needs root (sshd, the barman user).
//! `cargo bench -p pgclone --bench barman_incremental`; PGCLONE_BENCH_SCALE
//! (pgbench scale, default 20), PGCLONE_BENCH_ROUNDS (default 3).

mod common;
// A benchmark uses part of the tests' support.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use common::{median, wipe};
use support::barman::IncrementalLab;
use support::*;

fn main() {
    let scale = common::scale("20");
    let rounds = common::rounds(3);
    let lab = IncrementalLab::new("bench-incr", 0);
    lab.primary.pgbench_init(&scale);
    let bench = |n: &str| {
        run_ok(
            as_pg(pg_bindir().join("pgbench"))
                .args(["-n", "-t", n, "-h"])
                .arg(&lab.primary.socket_dir)
                .args([
                    "-p",
                    &lab.primary.port.to_string(),
                    "-U",
                    "postgres",
                    "postgres",
                ]),
        );
    };
    let mut chain = vec![lab.barman.backup_with("pg", &["--name", "bench-full"])];
    for i in 1..=2 {
        bench("2000");
        chain.push(lab.barman.backup_with(
            "pg",
            &[
                "--incremental",
                "latest",
                "--name",
                &format!("bench-incr-{i}"),
            ],
        ));
    }
    let size = lab
        .primary
        .sql("SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database");
    let cfg = lab.conf("restore_command='/bin/false %f %p'\n");
    let target = lab.sc.path("standby");
    let staging = lab.sc.path("hand-staging");
    let by_hand = || -> Duration {
        let t = Instant::now();
        let mut dirs = Vec::new();
        for (i, id) in chain.iter().enumerate() {
            let d = staging.join(format!("{i}"));
            run_ok(as_pg("mkdir").arg("-p").arg(&d));
            run_ok(
                as_pg("rsync")
                    .args(["-a", "-e"])
                    .arg(format!("ssh -F {}", lab.sshd.ssh_config.display()))
                    .arg(format!(
                        "barmansrv:{}/pg/base/{id}/data/",
                        lab.barman.home.display()
                    ))
                    .arg(format!("{}/", d.display())),
            );
            run_ok(
                as_pg("mkdir")
                    .arg("-p")
                    .arg(d.join("pg_tblspc"))
                    .arg(d.join("pg_wal")),
            );
            dirs.push(d);
        }
        run_ok(
            as_pg(pg17_bindir().join("pg_combinebackup"))
                .args(&dirs)
                .arg("-o")
                .arg(&target),
        );
        for dir in [
            "pg_wal/archive_status",
            "pg_replslot",
            "pg_stat_tmp",
            "pg_logical/snapshots",
            "pg_logical/mappings",
            "pg_notify",
            "pg_serial",
            "pg_snapshots",
            "pg_subtrans",
            "pg_dynshmem",
            "pg_twophase",
            "pg_commit_ts",
            "pg_tblspc",
            "pg_stat",
        ] {
            run_ok(as_pg("mkdir").arg("-p").arg(target.join(dir)));
        }
        let out = standby_clone(
            &lab.sc,
            &cfg,
            &lab.primary,
            &target,
            &["--replication-conf-only"],
            &[],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let d = t.elapsed();
        wipe(&staging);
        d
    };
    let labels = [
        "pgclone (chain copied, combined, verified)",
        "by hand: rsync each backup + pg_combinebackup + recovery configuration",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); labels.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.rotate_left(round % labels.len());
        for &i in &order {
            wipe(&target);
            wipe(&staging);
            let d = if i == 0 {
                let t = Instant::now();
                let out = standby_clone(&lab.sc, &cfg, &lab.primary, &target, &[], &[]);
                assert!(out.status.success(), "{}", stderr(&out));
                t.elapsed()
            } else {
                by_hand()
            };
            assert!(
                target.join("standby.signal").exists() && target.join("PG_VERSION").exists(),
                "{} left no standby",
                labels[i]
            );
            eprintln!("round {round}: {}: {:.2} s", labels[i], d.as_secs_f64());
            times[i].push(d);
        }
    }
    let m: Vec<Duration> = times.into_iter().map(median).collect();
    println!(
        "incremental Barman clone, pgbench scale {scale} ({size}), a full backup + 2 incrementals, {rounds} rounds, medians:"
    );
    for (l, d) in labels.iter().zip(&m) {
        println!("  {l}: {:.2} s", d.as_secs_f64());
    }
    println!(
        "  ratio by hand / pgclone: {:.2}x",
        m[1].as_secs_f64() / m[0].as_secs_f64()
    );
}
