//! WAL restore throughput, segments per second, same archive, same run:
//! `pgclone wal-restore` at several prefetch depths vs `barman-wal-restore`
//! without and with `--parallel 4` vs tar over one ssh stream (the physical
//! limit over ssh) vs a plain local copy; and the latency of a whole
//! `pgclone wal-restore` process delivering a segment already in the spool.
//!
//! Each tool is called the way PostgreSQL calls restore_command: one process
//! per segment, in order, the delivered file consumed before the next call.
//! Needs root (sshd, barman); the Host block for the Barman host is put into
//! root's ~/.ssh/config for the run (barman-wal-restore has no ssh options)
//! and what was there is restored. PGCLONE_BENCH_SEGMENTS (default 200).

// A benchmark uses part of the tests' support.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::barman::{barman_34, Barman, HomeSshConfig, Sshd};
use support::*;

fn pct(mut v: Vec<Duration>, q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Calls `cmd(name, dest)` for every name in order, consuming each file;
/// returns segments per second.
fn restore_all(
    names: &[String],
    dest_dir: &Path,
    mut cmd: impl FnMut(&str, &Path) -> Command,
) -> f64 {
    let dest = dest_dir.join("RECOVERYXLOG");
    let t = Instant::now();
    for n in names {
        let out = run(&mut cmd(n, &dest));
        assert!(
            out.status.success(),
            "{n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), 16 << 20);
        std::fs::remove_file(&dest).unwrap();
    }
    names.len() as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let count: usize = std::env::var("PGCLONE_BENCH_SEGMENTS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    let sc = Scratch::new("bench-wal");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let sshd = Sshd::start(&sc, "/usr/bin:/bin");
    let barman = Barman::setup(&sc, &p, barman_34());
    eprintln!("writing {count} segments ...");
    p.sql("CREATE TABLE t(i int)");
    let first = p.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    for i in 0..count + 1 {
        p.sql(&format!(
            "INSERT INTO t VALUES ({i}); SELECT pg_switch_wal()"
        ));
    }
    barman.archive_now();
    let start_seg = u32::from_str_radix(&first[16..], 16).unwrap();
    let names: Vec<String> = (0..count as u32)
        .map(|i| format!("{}{:08X}", &first[..16], start_seg + i))
        .collect();
    let wals = barman.home.join("pg/wals").join(&first[..16]);
    for n in &names {
        assert!(wals.join(n).exists(), "{n} is not archived");
    }
    let _cfg = HomeSshConfig::install("root", &std::fs::read_to_string(&sshd.ssh_config).unwrap());
    let out_dir = sc.mkdir("restored");
    let exe = env!("CARGO_BIN_EXE_pgclone");
    let cfg = barman.config.display().to_string();
    let empty = sc.write("empty.conf", "");
    let mut rows: Vec<(String, f64)> = Vec::new();

    // barman-wal-restore, as the seed configures it.
    let bwr = |parallel: Option<&str>| {
        let spool = sc.path(&format!("bwr-spool-{}", parallel.unwrap_or("0")));
        let _ = std::fs::remove_dir_all(&spool);
        std::fs::create_dir_all(&spool).unwrap();
        restore_all(&names, &out_dir, |n, dest| {
            let mut c = Command::new("/usr/bin/barman-wal-restore");
            c.args(["-U", "barman", "-c", &cfg, "--spool-dir"])
                .arg(&spool);
            if let Some(p) = parallel {
                c.args(["--parallel", p]);
            }
            c.args(["barmansrv", "pg", n]).arg(dest);
            c
        })
    };
    rows.push(("barman-wal-restore".into(), bwr(None)));
    rows.push(("barman-wal-restore --parallel 4".into(), bwr(Some("4"))));

    // pgclone's spools: it trusts a spool only under directories no other
    // user controls, and the scratch directory is postgres's, not root's.
    let spools = tempfile::tempdir().unwrap();
    // pgclone wal-restore at several prefetch depths (a fresh spool each).
    for depth in ["0", "4", "16", "32"] {
        let spool = spools.path().join(format!("pgclone-spool-{depth}"));
        let _ = std::fs::remove_dir_all(&spool);
        let rate = restore_all(&names, &out_dir, |n, dest| {
            let mut c = Command::new(exe);
            c.args(["-f"])
                .arg(&empty)
                .args(["wal-restore", "-c", &cfg, "-p", depth, "--spool-dir"])
                .arg(&spool);
            c.args(["barmansrv", "pg", n]).arg(dest);
            c
        });
        rows.push((format!("pgclone wal-restore -p {depth}"), rate));
    }

    // The physical limit over ssh: one tar stream of the same files.
    let tar_dir = sc.mkdir("tar-out");
    let list: Vec<String> = names
        .iter()
        .map(|n| format!("{}/{n}", &first[..16]))
        .collect();
    let t = Instant::now();
    let script = format!(
        "ssh barmansrv tar cf - -C {} {} | tar xf - -C {}",
        barman.home.join("pg/wals").display(),
        list.join(" "),
        tar_dir.display()
    );
    run_ok(Command::new("sh").arg("-c").arg(&script));
    rows.push((
        "tar over one ssh stream".into(),
        count as f64 / t.elapsed().as_secs_f64(),
    ));
    let _ = std::fs::remove_dir_all(&tar_dir);

    // A plain local copy.
    let cp_dir = sc.mkdir("cp-out");
    let t = Instant::now();
    for n in &names {
        std::fs::copy(wals.join(n), cp_dir.join(n)).unwrap();
    }
    rows.push(("local cp".into(), count as f64 / t.elapsed().as_secs_f64()));
    let _ = std::fs::remove_dir_all(&cp_dir);

    // Spool hits: wait until the next segment is spooled, then time the whole process.
    let spool = spools.path().join("pgclone-spool-hits");
    let hit_names = &names[..names.len().min(60)];
    let mut hits = Vec::new();
    let dest = out_dir.join("RECOVERYXLOG");
    for (i, n) in hit_names.iter().enumerate() {
        if i > 0 {
            let start = Instant::now();
            // Each source has its own directory in the spool.
            let spooled = || {
                std::fs::read_dir(&spool)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|d| d.path().join(n).exists())
            };
            while !spooled() && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let t = Instant::now();
        let out = run(Command::new(exe)
            .args(["-f"])
            .arg(&empty)
            .args(["wal-restore", "-c", &cfg, "-p", "32", "--spool-dir"])
            .arg(&spool)
            .args(["barmansrv", "pg", n])
            .arg(&dest));
        let d = t.elapsed();
        assert!(out.status.success());
        std::fs::remove_file(&dest).unwrap();
        if i > 0 {
            hits.push(d);
        }
    }

    let get = |label: &str| rows.iter().find(|(l, _)| l == label).unwrap().1;
    println!("WAL restore of {count} segments of 16 MiB from Barman over ssh on loopback (one process per segment, as PostgreSQL calls it)");
    for (l, r) in &rows {
        println!("  {l:<36} {r:8.2} segments/s");
    }
    let best = ["0", "4", "16", "32"]
        .iter()
        .map(|d| get(&format!("pgclone wal-restore -p {d}")))
        .fold(0.0, f64::max);
    println!(
        "  best pgclone / barman-wal-restore --parallel 4   {:6.1}x   (target >= 10)",
        best / get("barman-wal-restore --parallel 4")
    );
    println!(
        "  best pgclone / tar over one ssh stream           {:6.2}    (target >= 0.67)",
        best / get("tar over one ssh stream")
    );
    println!(
        "  spool hit, whole process: p50 {:.2} ms, p99 {:.2} ms over {} calls (target < 5 ms)",
        pct(hits.clone(), 0.5).as_secs_f64() * 1000.0,
        pct(hits.clone(), 0.99).as_secs_f64() * 1000.0,
        hits.len()
    );
}
