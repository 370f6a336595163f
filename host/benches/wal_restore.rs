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
//!
//! Every pgclone call runs with PGCLONE_TIMING: the bench prints the median
//! of each phase of a request (process start before `main`, argument
//! parsing, configuration, the spool's checks, the hand-over, waiting for
//! the prefetcher, fetching, the cursor, the prefetcher's check, process
//! exit) and how the requests were served (spool hit, waited for the
//! prefetcher, fetched in the foreground).

// A benchmark uses part of the tests' support.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::barman::{barman_34, Barman, HomeSshConfig, Sshd};
use support::*;

/// The prefetch depths measured (`-p`).
const DEPTHS: [&str; 4] = ["0", "4", "16", "32"];

fn pct(mut v: Vec<Duration>, q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn unix_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// One call's process, from the caller's side: when it was spawned and
/// when it was reaped (µs since the epoch).
type Span = (u128, u128);

/// Calls `cmd(name, dest)` for every name in order, consuming each file;
/// returns segments per second and each call's span.
fn restore_all(
    names: &[String],
    dest_dir: &Path,
    mut cmd: impl FnMut(&str, &Path) -> Command,
) -> (f64, Vec<Span>) {
    let dest = dest_dir.join("RECOVERYXLOG");
    let mut spans = Vec::new();
    let t = Instant::now();
    for n in names {
        let mut c = cmd(n, &dest);
        let spawned = unix_us();
        let out = run(&mut c);
        spans.push((spawned, unix_us()));
        assert!(
            out.status.success(),
            "{n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), 16 << 20);
        std::fs::remove_file(&dest).unwrap();
    }
    (names.len() as f64 / t.elapsed().as_secs_f64(), spans)
}

/// The medians of a run's phases: `timing` is the PGCLONE_TIMING file its
/// calls wrote (a line each, in order), `spans` the calls as the caller saw
/// them. Process start is spawn to `main`; exit is the end of the request to
/// being reaped.
struct Breakdown {
    phases: Vec<(String, u128)>,
    outcomes: BTreeMap<String, usize>,
}

fn breakdown(timing: &Path, spans: &[Span]) -> Breakdown {
    let text = std::fs::read_to_string(timing).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), spans.len(), "one PGCLONE_TIMING line per call");
    let mut order: Vec<String> = vec!["start".into()];
    let mut values: BTreeMap<String, Vec<u128>> = BTreeMap::new();
    let mut outcomes = BTreeMap::new();
    for (line, (spawned, reaped)) in lines.iter().zip(spans) {
        let fields: BTreeMap<&str, &str> =
            line.split(' ').filter_map(|f| f.split_once('=')).collect();
        let num = |k: &str| fields[k].parse::<u128>().unwrap();
        let main_at = num("main_at_us");
        let total = num("total");
        *outcomes.entry(fields["outcome"].to_string()).or_insert(0) += 1;
        let mut add = |k: &str, v: u128| {
            if !order.iter().any(|o| o == k) {
                order.push(k.to_string());
            }
            values.entry(k.to_string()).or_default().push(v);
        };
        add("start", main_at.saturating_sub(*spawned));
        for f in line.split(' ') {
            let Some((k, v)) = f.split_once('=') else {
                continue;
            };
            if !matches!(k, "main_at_us" | "outcome" | "total") {
                add(k, v.parse().unwrap());
            }
        }
        add("exit", reaped.saturating_sub(main_at + total));
        add("whole", reaped - spawned);
    }
    let median = |mut v: Vec<u128>| {
        v.sort();
        v[v.len() / 2]
    };
    let phases = order
        .into_iter()
        .map(|k| {
            let v = values.remove(&k).unwrap_or_default();
            (k, median(v))
        })
        .collect();
    Breakdown { phases, outcomes }
}

fn print_breakdown(label: &str, b: &Breakdown) {
    let phases: Vec<String> = b
        .phases
        .iter()
        .map(|(k, us)| format!("{k} {:.2}", *us as f64 / 1000.0))
        .collect();
    let outcomes: Vec<String> = b.outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("  {label}: p50 ms per phase: {}", phases.join(", "));
    println!(
        "  {:width$}  requests: {}",
        "",
        outcomes.join(", "),
        width = label.len()
    );
}

fn main() {
    let count: usize = std::env::var("PGCLONE_BENCH_SEGMENTS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    // PGCLONE_BENCH_PEERS=0: pgclone alone, for a quick look (no ratios).
    let peers = std::env::var("PGCLONE_BENCH_PEERS").map_or(true, |v| v != "0");
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
    if peers {
        rows.push(("barman-wal-restore".into(), bwr(None).0));
        rows.push(("barman-wal-restore --parallel 4".into(), bwr(Some("4")).0));
    }

    // pgclone's spools: it trusts a spool only under directories no other
    // user controls, and the scratch directory is postgres's, not root's.
    let spools = tempfile::tempdir().unwrap();
    // pgclone wal-restore at several prefetch depths (a fresh spool each).
    let mut breakdowns = Vec::new();
    for depth in DEPTHS {
        let spool = spools.path().join(format!("pgclone-spool-{depth}"));
        let _ = std::fs::remove_dir_all(&spool);
        let timing = spools.path().join(format!("timing-{depth}"));
        let (rate, spans) = restore_all(&names, &out_dir, |n, dest| {
            let mut c = Command::new(exe);
            c.env("PGCLONE_TIMING", &timing)
                .args(["-f"])
                .arg(&empty)
                .args(["wal-restore", "-c", &cfg, "-p", depth, "--spool-dir"])
                .arg(&spool);
            c.args(["barmansrv", "pg", n]).arg(dest);
            c
        });
        rows.push((format!("pgclone wal-restore -p {depth}"), rate));
        breakdowns.push((
            format!("pgclone wal-restore -p {depth}"),
            breakdown(&timing, &spans),
        ));
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
    let mut hit_spans = Vec::new();
    let hit_timing = spools.path().join("timing-hits");
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
        let spawned = unix_us();
        let out = run(Command::new(exe)
            .env("PGCLONE_TIMING", &hit_timing)
            .args(["-f"])
            .arg(&empty)
            .args(["wal-restore", "-c", &cfg, "-p", "32", "--spool-dir"])
            .arg(&spool)
            .args(["barmansrv", "pg", n])
            .arg(&dest));
        let d = t.elapsed();
        hit_spans.push((spawned, unix_us()));
        assert!(out.status.success());
        std::fs::remove_file(&dest).unwrap();
        if i > 0 {
            hits.push(d);
        }
    }

    // What any pgclone process costs: the floor of a hit.
    let bare: Vec<Duration> = (0..hits.len())
        .map(|_| {
            let t = Instant::now();
            run_ok(Command::new(exe).arg("--version"));
            t.elapsed()
        })
        .collect();

    // The first call fetched (nothing was spooled yet): not a hit.
    let mut hit_lines: Vec<String> = std::fs::read_to_string(&hit_timing)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    hit_lines.remove(0);
    hit_spans.remove(0);
    std::fs::write(&hit_timing, hit_lines.join("\n") + "\n").unwrap();
    let hit_breakdown = breakdown(&hit_timing, &hit_spans);

    let get = |label: &str| rows.iter().find(|(l, _)| l == label).unwrap().1;
    println!("WAL restore of {count} segments of 16 MiB from Barman over ssh on loopback (one process per segment, as PostgreSQL calls it)");
    for (l, r) in &rows {
        println!("  {l:<36} {r:8.2} segments/s");
    }
    let best = DEPTHS
        .iter()
        .map(|d| get(&format!("pgclone wal-restore -p {d}")))
        .fold(0.0, f64::max);
    if peers {
        println!(
            "  best pgclone / barman-wal-restore --parallel 4   {:6.1}x   (target >= 15)",
            best / get("barman-wal-restore --parallel 4")
        );
    }
    println!(
        "  best pgclone / tar over one ssh stream           {:6.2}    (target >= 0.9)",
        best / get("tar over one ssh stream")
    );
    println!(
        "  spool hit, whole process: p50 {:.2} ms, p99 {:.2} ms over {} calls",
        pct(hits.clone(), 0.5).as_secs_f64() * 1000.0,
        pct(hits.clone(), 0.99).as_secs_f64() * 1000.0,
        hits.len()
    );
    println!(
        "  a bare process (pgclone --version): p50 {:.2} ms; a hit costs {:.2} ms more (target: one rename, < 1 ms)",
        pct(bare.clone(), 0.5).as_secs_f64() * 1000.0,
        (pct(hits.clone(), 0.5).as_secs_f64() - pct(bare.clone(), 0.5).as_secs_f64()) * 1000.0
    );
    println!("Where a request's time goes (PGCLONE_TIMING; start: spawn to main, exit: end of the request to reaped)");
    for (label, b) in &breakdowns {
        print_breakdown(label, b);
    }
    print_breakdown("spool hits", &hit_breakdown);
}
