//! A clone from a compressed Barman backup (`backup_compression`, tar
//! format) of a pgbench primary, over ssh on loopback: pgclone (archives
//! streamed over ssh and unpacked as they arrive, then checked with
//! pg_verifybackup, then the recovery configuration) against Barman's own path
//! for such a backup: `barman recover --remote-ssh-command ...
//! --recovery-staging-path DIR` (the staging directory on the destination),
//! followed by the recovery configuration (`pgclone standby clone
//! --replication-conf-only`, what an operator would run after it). Same
//! backup, same run, alternating order; medians and the ratio printed.
//!
//! Needs root (sshd, the barman user).
//! `cargo bench -p pgclone --bench barman_compressed`; PGCLONE_BENCH_SCALE
//! (pgbench scale, default 30), PGCLONE_BENCH_ROUNDS (default 3),
//! PGCLONE_BENCH_COMPRESSION (gzip with Debian's Barman 3.4, the default; lz4
//! or zstd with Barman 3.19.1 from PGCLONE_TEST_BARMAN319, whose option is
//! `--staging-path DIR --staging-location remote`).

mod common;
// A benchmark uses part of the tests' support.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use common::{median, wipe};
use support::barman::{barman_319, barman_34, Barman, Sshd};
use support::*;

fn main() {
    let scale = common::scale("30");
    let rounds = common::rounds(3);
    let compression = std::env::var("PGCLONE_BENCH_COMPRESSION").unwrap_or_else(|_| "gzip".into());
    let new_barman = compression != "gzip";
    let bin = if !new_barman {
        barman_34()
    } else {
        barman_319()
    };
    let sc = Scratch::new("bench-compressed");
    let mut p = Pg::init(&sc, "primary");
    p.append_conf("shared_buffers = '256MB'\nmax_wal_size = '2GB'\n");
    p.start();
    p.pgbench_init(&scale);
    let path = format!("{}:/usr/bin:/bin", bin.parent().unwrap().display());
    let sshd = Sshd::start_for(&sc, &path, true);
    let barman = Barman::setup(&sc, &p, bin);
    let server = "pgc";
    barman.add_server(server, &format!("backup_compression = {compression}"));
    let id = barman.backup_of(server);
    let archives: u64 =
        std::fs::read_dir(barman.home.join(server).join("base").join(&id).join("data"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
    let size = p.sql("SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database");
    let sock = sc.dir.display().to_string();
    let port = p.port.to_string();
    let target = sc.path("standby");
    let staging = sc.path("staging");
    let conf = sc.write(
        "pgclone.conf",
        &format!(
            "node_id=2\nnode_name=node2\nbarman_host=barmansrv\nbarman_server={server}\nbarman_config='{}'\n\
             ssh_options='-F {}'\nrestore_command='/bin/false %f %p'\n",
            barman.config.display(),
            sshd.ssh_config.display()
        ),
    );
    let pgclone = |extra: &[&str]| {
        let mut c = as_pg("env");
        c.arg(format!("HOME={sock}"))
            .arg(format!("PGCLONE_CACHE_DIR={sock}/cache"))
            .arg(format!(
                "PATH={}:/usr/local/bin:/usr/bin:/bin",
                pg_bindir().display()
            ))
            .arg(env!("CARGO_BIN_EXE_pgclone"))
            .arg("-f")
            .arg(&conf)
            .args([
                "standby", "clone", "-h", &sock, "-p", &port, "-U", "postgres", "-d", "postgres",
                "-D",
            ])
            .arg(&target)
            .args(extra);
        c
    };
    let recover = || {
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
            .args(["recover", "--remote-ssh-command", &ssh]);
        if new_barman {
            // 3.15+ names it --staging-path (--recovery-staging-path is
            // deprecated and fails here); remote: on the destination.
            c.arg("--staging-path")
                .arg(&staging)
                .args(["--staging-location", "remote"]);
        } else {
            c.arg("--recovery-staging-path").arg(&staging);
        }
        c.args([server, &id]).arg(&target);
        c
    };

    let labels = [
        "pgclone",
        "barman recover, staging on the destination, + recovery configuration",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); labels.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.rotate_left(round % labels.len());
        for &i in &order {
            wipe(&target);
            wipe(&staging);
            let d = if i == 0 {
                timed(labels[i], &mut pgclone(&[]))
            } else {
                run_ok(as_pg("mkdir").arg("-p").arg(&staging));
                let a = timed("barman recover", &mut recover());
                // Barman leaves the files owned by the ssh user (postgres).
                let b = timed(
                    "recovery configuration",
                    &mut pgclone(&["--replication-conf-only"]),
                );
                a + b
            };
            assert!(
                target.join("standby.signal").exists() && target.join("PG_VERSION").exists(),
                "{} left no standby",
                labels[i]
            );
            eprintln!(
                "round {}: {:<66} {:.2} s",
                round + 1,
                labels[i],
                d.as_secs_f64()
            );
            times[i].push(d);
        }
    }
    let med: Vec<Duration> = times.into_iter().map(median).collect();
    println!(
        "clone from a {compression}-compressed Barman backup ({id}, {:.1} MiB of archives) of a {size} pgbench primary, ssh on loopback, median of {rounds} rounds",
        archives as f64 / 1048576.0
    );
    for (l, d) in labels.iter().zip(&med) {
        println!("  {l:<66} {:7.2} s", d.as_secs_f64());
    }
    println!(
        "  barman recover path / pgclone   {:6.2}x   (target >= 2)",
        med[1].as_secs_f64() / med[0].as_secs_f64()
    );
    wipe(&target);
    wipe(&staging);
}
