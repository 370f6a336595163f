//! What every benchmark shares: its knobs (environment variables) and the
//! median it reports.

use std::path::Path;
use std::time::Duration;

/// The pgbench scale: PGCLONE_BENCH_SCALE, else `default`.
pub fn scale(default: &str) -> String {
    std::env::var("PGCLONE_BENCH_SCALE").unwrap_or_else(|_| default.into())
}

/// How many rounds: PGCLONE_BENCH_ROUNDS, else `default`.
pub fn rounds(default: usize) -> usize {
    std::env::var("PGCLONE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Removes a clone's directory between rounds (absent is fine).
#[allow(dead_code)] // not every benchmark wipes
pub fn wipe(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
