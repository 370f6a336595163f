//! `pgclone standby clone` vs `pg_basebackup` alone vs `repmgr standby clone`,
//! same primary (pgbench, about 1 GiB), same run, alternating order. Prints
//! medians and ratios. Run with `cargo bench -p pgclone --bench clone_vs_peers`
//! (PGCLONE_BENCH_SCALE sets the pgbench scale; 70 is about 1 GiB).

mod common;
// A benchmark uses part of the tests' support.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use common::median;
use support::*;

fn main() {
    let scale = common::scale("70");
    let rounds = common::rounds(5);
    let sc = Scratch::new("bench-clone");
    let mut p = Pg::init(&sc, "primary");
    p.append_conf("shared_buffers = '256MB'\nmax_wal_size = '2GB'\n");
    p.start();
    p.pgbench_init(&scale);
    let size = p.sql("SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database");

    let sock = sc.dir.display().to_string();
    let port = p.port.to_string();
    // repmgr needs a registered primary and its own config for the standby.
    p.register_with_repmgr(&sc, "", "");
    let target = sc.path("standby");
    let node2 = sc.write(
        "node2.conf",
        &format!(
            "node_id=2\nnode_name=node2\nconninfo='host={sock} port=1 user=postgres dbname=postgres'\ndata_directory='{}'\n",
            target.display()
        ),
    );

    let timed = |label: &str, cmd: &mut Command| -> Duration {
        let d = support::timed(label, cmd);
        let _ = std::fs::remove_dir_all(&target);
        d
    };
    let (mut t_pgclone, mut t_basebackup, mut t_repmgr) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        type Run<'a> = (&'static str, Box<dyn Fn() -> Duration + 'a>);
        let mut runs: Vec<Run> = vec![
            (
                "pg_basebackup",
                Box::new(|| {
                    timed(
                        "pg_basebackup",
                        as_pg(pg_bindir().join("pg_basebackup"))
                            .arg("-D")
                            .arg(&target)
                            .args([
                                "-h", &sock, "-p", &port, "-U", "postgres", "-X", "stream", "-c",
                                "fast",
                            ]),
                    )
                }),
            ),
            (
                "pgclone",
                Box::new(|| {
                    timed(
                        "pgclone",
                        as_pg("env")
                            .arg(format!("HOME={sock}"))
                            .arg(format!("PGCLONE_CACHE_DIR={sock}/cache"))
                            .arg(env!("CARGO_BIN_EXE_pgclone"))
                            .arg("-f")
                            .arg(&node2)
                            .args([
                                "standby", "clone", "-h", &sock, "-p", &port, "-U", "postgres",
                                "-d", "postgres", "-c",
                            ]),
                    )
                }),
            ),
            (
                "repmgr",
                Box::new(|| {
                    timed(
                        "repmgr standby clone",
                        as_pg("repmgr").arg("-f").arg(&node2).args([
                            "-h", &sock, "-p", &port, "-U", "postgres", "-d", "postgres",
                            "standby", "clone", "-c",
                        ]),
                    )
                }),
            ),
        ];
        runs.rotate_left(round % 3);
        for (name, f) in &runs {
            let d = f();
            eprintln!("round {}: {name:<14} {:.2} s", round + 1, d.as_secs_f64());
            match *name {
                "pgclone" => t_pgclone.push(d),
                "pg_basebackup" => t_basebackup.push(d),
                _ => t_repmgr.push(d),
            }
        }
    }
    let (a, b, c) = (median(t_pgclone), median(t_basebackup), median(t_repmgr));
    println!("clone of a {size} pgbench primary, median of {rounds} rounds (alternating order)");
    println!("  pg_basebackup alone        {:7.2} s", b.as_secs_f64());
    println!("  pgclone standby clone      {:7.2} s", a.as_secs_f64());
    println!("  repmgr standby clone       {:7.2} s", c.as_secs_f64());
    println!(
        "  pgclone / pg_basebackup    {:7.3}   (target <= 1.05)",
        a.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "  repmgr / pgclone           {:7.3}",
        c.as_secs_f64() / a.as_secs_f64()
    );
}
