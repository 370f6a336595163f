//! Plugin start-up costs: loading the first-party plugins cold (compiling) and
//! warm (from the compiled cache), and a whole `pgclone` process from start to
//! the answer of its first plugin call. Run with
//! `cargo bench -p pgclone --bench plugin_start`.

use std::process::Command;
use std::time::{Duration, Instant};

use pgclone::plugin::catalog;
use pgclone::plugin::{Plugin, Runtime};

fn stats(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (p(0.0), p(0.5), p(0.95))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let cands = catalog::candidates(&Default::default());
    let cache = tempfile::tempdir().unwrap();
    const ROUNDS: usize = 10;

    let mut cold = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let rt = Runtime::new(None).unwrap();
        for c in &cands {
            Plugin::load(&rt, c).unwrap();
        }
        cold.push(t.elapsed());
    }
    // Fill the cache once, then measure warm loads.
    let rt = Runtime::new(Some(cache.path())).unwrap();
    for c in &cands {
        Plugin::load(&rt, c).unwrap();
    }
    let mut warm = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let rt = Runtime::new(Some(cache.path())).unwrap();
        for c in &cands {
            Plugin::load(&rt, c).unwrap();
        }
        assert_eq!(rt.compiled_count(), 0);
        warm.push(t.elapsed());
    }

    // A whole process: exec, configuration, engine, cached component,
    // instantiate, describe(), print.
    let exe = env!("CARGO_BIN_EXE_pgclone");
    let conf = cache.path().join("empty.conf");
    std::fs::write(&conf, "").unwrap();
    let run = || {
        let t = Instant::now();
        let out = Command::new(exe)
            .args(["plugin", "inspect", "recovery-standard"])
            .env("PGCLONE_CACHE_DIR", cache.path())
            .env("PGCLONE_CONFIG", &conf)
            .env("PGCLONE_PLUGINS_CONFIG", &conf)
            .output()
            .unwrap();
        assert!(out.status.success());
        t.elapsed()
    };
    run();
    let process: Vec<Duration> = (0..50).map(|_| run()).collect();
    let baseline: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            Command::new("true").output().unwrap();
            t.elapsed()
        })
        .collect();

    let (cmin, cmed, cp95) = stats(cold);
    let (wmin, wmed, wp95) = stats(warm);
    let (pmin, pmed, pp95) = stats(process);
    let (_, bmed, _) = stats(baseline);
    println!("plugin start-up, {} first-party plugins", cands.len());
    println!(
        "  cold load (compile)      min {:7.2} ms  median {:7.2} ms  p95 {:7.2} ms",
        ms(cmin),
        ms(cmed),
        ms(cp95)
    );
    println!(
        "  warm load (cached)       min {:7.2} ms  median {:7.2} ms  p95 {:7.2} ms",
        ms(wmin),
        ms(wmed),
        ms(wp95)
    );
    println!(
        "  cold / warm (median)     {:.1}x",
        cmed.as_secs_f64() / wmed.as_secs_f64()
    );
    println!("  process start to first plugin call (warm, `pgclone plugin inspect`)");
    println!("                           min {:7.2} ms  median {:7.2} ms  p95 {:7.2} ms  (target < 10 ms)", ms(pmin), ms(pmed), ms(pp95));
    println!(
        "  for scale: `true` as a process  median {:7.2} ms",
        ms(bmed)
    );
}
