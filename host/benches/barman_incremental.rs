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
//! Then where each one's time goes: pgclone's phases and actions as its
//! `--output json` document times them (the copy within its steps from its
//! `-v` summary lines), and the by-hand path step by step.
//!
//! Needs root (sshd, the barman user).
//! `cargo bench -p pgclone --bench barman_incremental`; PGCLONE_BENCH_SCALE
//! (pgbench scale, default 20), PGCLONE_BENCH_ROUNDS (default 3),
//! PGCLONE_BENCH_HOLD=1 (keep the lab up after the setup, for a profile by
//! hand: the command is in hold.sh).

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
    hold(&lab, &cfg, &target, &chain);
    let by_hand = |parts: &mut Parts| -> Duration {
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
        parts.add("rsync of each backup", t.elapsed());
        let c = Instant::now();
        run_ok(
            as_pg(pg17_bindir().join("pg_combinebackup"))
                .args(&dirs)
                .arg("-o")
                .arg(&target),
        );
        parts.add("pg_combinebackup", c.elapsed());
        let r = Instant::now();
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
        parts.add("directories + recovery configuration", r.elapsed());
        let d = t.elapsed();
        wipe(&staging);
        d
    };
    let pgclone = |parts: &mut Parts| -> Duration {
        let t = Instant::now();
        let out = standby_clone(
            &lab.sc,
            &cfg,
            &lab.primary,
            &target,
            &["-v", "--output", "json"],
            &[],
        );
        let d = t.elapsed();
        assert!(out.status.success(), "{}", stderr(&out));
        parts.read_pgclone(&stdout(&out), &stderr(&out), d);
        d
    };
    let labels = [
        "pgclone (chain copied, combined, verified)",
        "by hand: rsync each backup + pg_combinebackup + recovery configuration",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); labels.len()];
    let mut parts = [Parts::default(), Parts::default()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.rotate_left(round % labels.len());
        for &i in &order {
            wipe(&target);
            wipe(&staging);
            let d = match i {
                0 => pgclone(&mut parts[0]),
                _ => by_hand(&mut parts[1]),
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
    wipe(&target);
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
    println!("where the time goes (medians of each part):");
    for (who, p) in ["pgclone", "by hand"].iter().zip(&parts) {
        println!("  {who}: {}", p.medians());
    }
}

/// The parts of one way's time, round by round, in the order first seen.
#[derive(Default)]
struct Parts(Vec<(String, Vec<Duration>)>);

impl Parts {
    fn add(&mut self, part: &str, d: Duration) {
        match self.0.iter_mut().find(|(p, _)| p == part) {
            Some((_, v)) => v.push(d),
            None => self.0.push((part.to_string(), vec![d])),
        }
    }

    /// pgclone's own account: the phases and the actions of its JSON
    /// document, and within the source's steps the phases its -v summary
    /// lines time (`INFO: copy: 321.0 MiB in 2.1 s, ...`, one per run of
    /// copies; added up).
    /// What the phases and actions leave of `total` is the process's start
    /// and exit and, in the execute phase, the staging directory's removal.
    fn read_pgclone(&mut self, json: &str, err: &str, total: Duration) {
        let doc: serde_json::Value = serde_json::from_str(json).expect("the JSON document");
        let secs = |v: &serde_json::Value| Duration::from_secs_f64(v.as_f64().unwrap_or(0.0));
        let mut rest = total;
        for p in doc["phases"].as_array().into_iter().flatten() {
            let name = p["phase"].as_str().unwrap_or("?");
            rest = rest.saturating_sub(secs(&p["seconds"]));
            if name != "execute" {
                self.add(name, secs(&p["seconds"]));
            }
        }
        for a in doc["performed"].as_array().into_iter().flatten() {
            let name = a["action"].as_str().unwrap_or("?");
            self.add(name, secs(&a["seconds"]));
        }
        let execute = doc["phases"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["phase"] == "execute")
            .map_or(Duration::ZERO, |p| secs(&p["seconds"]));
        let actions: Duration = doc["performed"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| secs(&a["seconds"]))
            .sum();
        self.add("staging removal", execute.saturating_sub(actions));
        self.add("process start and exit", rest);
        let mut within: Vec<(String, f64)> = Vec::new();
        for line in err.lines().filter_map(|l| l.strip_prefix("INFO: ")) {
            let Some((name, rest)) = line.split_once(": ") else {
                continue;
            };
            let Some(s) = rest
                .split_once(" in ")
                .and_then(|(_, t)| t.split_once(" s"))
                .and_then(|(t, _)| t.parse::<f64>().ok())
            else {
                continue;
            };
            if name.contains(' ') {
                continue;
            }
            match within.iter_mut().find(|(n, _)| n == name) {
                Some((_, t)) => *t += s,
                None => within.push((name.to_string(), s)),
            }
        }
        for (name, s) in within {
            self.add(&format!("  run-source: {name}"), Duration::from_secs_f64(s));
        }
    }

    fn medians(&self) -> String {
        self.0
            .iter()
            .map(|(p, v)| format!("{} {:.2} s", p.trim(), median(v.clone()).as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// PGCLONE_BENCH_HOLD=1: keeps the lab up after the setup, for a profile by
/// hand (the command is in hold.sh); the run goes on when the file `hold`
/// beside it is removed.
fn hold(lab: &IncrementalLab, cfg: &std::path::Path, target: &std::path::Path, chain: &[String]) {
    if std::env::var("PGCLONE_BENCH_HOLD").as_deref() != Ok("1") {
        return;
    }
    let args = clone_args(cfg, &lab.primary, target, &["-v"]);
    let script = format!(
        "# as postgres (runuser -u postgres -- sh hold.sh), into {}; the chain: {}\nenv -i HOME={} PATH={}:/usr/local/bin:/usr/bin:/bin PGCLONE_CACHE_DIR={} {} {}\n",
        target.display(),
        chain.join(" "),
        lab.sc.dir.display(),
        pg_bindir().display(),
        lab.sc.path("cache").display(),
        env!("CARGO_BIN_EXE_pgclone"),
        args.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    lab.sc.write("hold.sh", &script);
    let flag = lab.sc.write("hold", "");
    eprintln!(
        "holding: {} (remove {} to go on)",
        lab.sc.path("hold.sh").display(),
        flag.display()
    );
    while flag.exists() {
        std::thread::sleep(Duration::from_secs(1));
    }
}
