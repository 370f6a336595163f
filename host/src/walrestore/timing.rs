//! Where one `wal-restore` request's time goes, for the benchmark: with
//! `PGCLONE_TIMING=FILE` every request appends one line to FILE,
//!
//!   `main_at_us=<unix µs at main> outcome=<hit|waited|fetched|missing|failed> <phase>=<µs> ... total=<µs>`
//!
//! (phases in the order they ran; `main_at_us` lets the caller tell process
//! start-up, before `main`, from the rest). Without the variable nothing is
//! measured but one `getenv` at start-up.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

struct Clock {
    file: std::path::PathBuf,
    main_at_us: u128,
    started: Instant,
    last: Instant,
    phases: Vec<(&'static str, u128)>,
    outcome: &'static str,
}

static CLOCK: Mutex<Option<Clock>> = Mutex::new(None);

/// Starts the clock at `main` when PGCLONE_TIMING names a file.
pub fn start() {
    let Some(file) = std::env::var_os("PGCLONE_TIMING") else {
        return;
    };
    let now = Instant::now();
    let main_at_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    *CLOCK.lock().unwrap_or_else(|e| e.into_inner()) = Some(Clock {
        file: file.into(),
        main_at_us,
        started: now,
        last: now,
        phases: Vec::new(),
        outcome: "failed",
    });
}

/// Charges the time since the last mark to `phase`.
pub fn mark(phase: &'static str) {
    let mut clock = CLOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = clock.as_mut() else {
        return;
    };
    let now = Instant::now();
    let us = now.duration_since(c.last).as_micros();
    c.last = now;
    match c.phases.iter_mut().find(|(p, _)| *p == phase) {
        Some((_, t)) => *t += us,
        None => c.phases.push((phase, us)),
    }
}

/// What became of the request.
pub fn outcome(what: &'static str) {
    if let Some(c) = CLOCK.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        c.outcome = what;
    }
}

/// Appends the request's line (one `write` with O_APPEND: lines of
/// concurrent requests do not mix).
pub fn finish() {
    let mut clock = CLOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = clock.take() else {
        return;
    };
    let mut line = format!("main_at_us={} outcome={}", c.main_at_us, c.outcome);
    for (p, us) in &c.phases {
        line.push_str(&format!(" {p}={us}"));
    }
    line.push_str(&format!(" total={}\n", c.started.elapsed().as_micros()));
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&c.file)
    {
        let _ = f.write_all(line.as_bytes());
    }
}
