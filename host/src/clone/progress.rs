//! Progress of the long phases of a clone (the copy, the check of the copy,
//! and any step that moves bytes against a known total).
//!
//! A [`Phase`] counts bytes. On a terminal it is one line drawn by
//! `indicatif` — done, total, percent, rate and time left when the total is
//! known, done and rate otherwise — and when it ends that line is cleared
//! and its summary printed as a line of its own. When standard error is not a terminal nothing is drawn: the
//! summary line alone is printed (`INFO: copy: 174.4 MiB in 0.8 s, 231.8 MiB/s`).
//!
//! ```ignore
//! let phase = Phase::start("unpack", Some(archive_bytes));
//! phase.add(chunk.len() as u64);        // or phase.set(bytes_so_far)
//! phase.finish();                        // prints the summary
//! ```
//!
//! A phase dropped without [`Phase::finish`] (a failure) clears its line and
//! prints nothing: the error says what happened.
//!
//! [`Progress`] adds up the parallel rsync streams of a copy into a phase;
//! each stream reports through `--info=progress2`, read by [`last_record`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{self, Level};

/// The bytes a progress2 record reports done, e.g. from
/// `  1,234,567  45%   12.34MB/s    0:00:01 (xfr#3, to-chk=10/20)`.
pub fn parse_record(segment: &str) -> Option<u64> {
    let s = segment.trim();
    if !s.contains('%') {
        return None;
    }
    s.split_whitespace().next()?.replace(',', "").parse().ok()
}

/// The last progress record in a chunk of rsync's standard output. The
/// chunk's first piece is skipped unless a separator precedes it: it may be
/// the tail of a record cut by the read.
pub fn last_record(chunk: &str) -> Option<u64> {
    let whole_first = chunk.starts_with(['\r', '\n']);
    chunk
        .split(['\r', '\n'])
        .skip(usize::from(!whole_first))
        .filter_map(parse_record)
        .last()
}

/// Reads a program's output to its end as records ending in `\r` (a
/// terminal) or `\n`: a progress record (see [`parse_kb_record`]) moves
/// `phase`, any other non-empty one goes to `other`; `raw` sees every byte
/// read. Returns what followed the last record's end.
pub async fn follow_records<R: tokio::io::AsyncRead + Unpin>(
    mut r: R,
    phase: &Phase,
    mut other: impl FnMut(&str),
    mut raw: impl FnMut(&[u8]),
) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 8192];
    let mut pending = Vec::new();
    loop {
        let n = r.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return pending;
        }
        raw(&buf[..n]);
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|b| matches!(b, b'\r' | b'\n')) {
            let record: Vec<u8> = pending.drain(..=end).collect();
            let record = String::from_utf8_lossy(&record[..end]);
            match parse_kb_record(&record) {
                Some((done, total)) => {
                    phase.set_total(total);
                    phase.set(done);
                }
                None if !record.trim().is_empty() => other(record.trim_end()),
                None => {}
            }
        }
    }
}

/// (done, total) in bytes from a progress report of pg_basebackup or
/// pg_verifybackup: `12345/67890 kB (18%), 0/1 tablespace ...` or
/// `12345/67890 kB (18%) verified`.
pub fn parse_kb_record(line: &str) -> Option<(u64, u64)> {
    let line = line.trim();
    let (counts, rest) = line.split_once(" kB (")?;
    if !rest.split_once(')')?.0.ends_with('%') {
        return None;
    }
    let (done, total) = counts.trim().split_once('/')?;
    let bytes = |kb: &str| kb.trim().parse::<u64>().ok()?.checked_mul(1024);
    Some((bytes(done)?, bytes(total)?))
}

/// Whether a phase draws a live line: standard error is a terminal and
/// notices are shown (not with `-q`).
pub fn live() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr()) && report::shown(Level::Notice)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// The summary of a phase: `copy: 174.4 MiB in 0.8 s, 231.8 MiB/s`.
pub fn summary(name: &str, bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let time = duration(elapsed);
    format!(
        "{name}: {:.1} MiB in {time}, {:.1} MiB/s",
        mib(bytes),
        mib(bytes) / secs.max(0.001)
    )
}

/// `0.8 s`, `3m35s`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let s = secs.round() as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// The live line's layout, as wide as the terminal: with a total, `copy [===>  ] 512.00 MiB/1.04 GiB
/// (47%), 201.30 MiB/s, 3s left`; without, `copy 512.00 MiB, 201.30 MiB/s`.
fn style(known_total: bool) -> ProgressStyle {
    let template = if known_total {
        "{prefix} [{wide_bar}] {bytes}/{total_bytes} ({percent}%), {bytes_per_sec}, {eta} left"
    } else {
        "{prefix} {spinner} {bytes}, {bytes_per_sec}, {elapsed}"
    };
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
}

/// One phase of a clone: a byte counter, a live line on a terminal, a
/// summary at the end. Shared between threads and tasks (`Arc`).
pub struct Phase {
    name: String,
    done: AtomicU64,
    total: AtomicU64,
    start: Instant,
    bar: Option<ProgressBar>,
    finished: AtomicBool,
    /// What the phase waits for now, not moving bytes (see [`Phase::wait`]).
    waiting: std::sync::Mutex<Option<Wait>>,
    /// The longest of its waits, said in the summary: (what, how long).
    waited: std::sync::Mutex<Option<(String, Duration)>>,
}

/// A wait inside a phase: an upstream's checkpoint before its first byte.
struct Wait {
    what: String,
    since: Instant,
    /// Said once it lasts (a NOTICE, with how to avoid it).
    notice: Option<(String, Option<String>)>,
}

/// How long a wait lasts before its NOTICE is printed: a fast checkpoint
/// on a small server is over long before.
pub const WAIT_NOTICE_AFTER: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phase")
            .field("name", &self.name)
            .field("done", &self.done())
            .field("total", &self.total())
            .finish()
    }
}

impl Phase {
    /// Starts a phase; `total` is the bytes it will move, when known. Drawn
    /// when [`live`].
    pub fn start(name: &str, total: Option<u64>) -> Arc<Phase> {
        Phase::with_display(name, total, live())
    }

    /// Starts a phase that draws a live line only if `draw` (and standard
    /// error is a terminal that can redraw a line: not `TERM=dumb`).
    pub fn with_display(name: &str, total: Option<u64>, draw: bool) -> Arc<Phase> {
        let total = total.filter(|t| *t > 0);
        let bar = draw.then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            bar.set_style(style(total.is_some()));
            bar.set_prefix(name.to_string());
            // Redrawn while nothing moves too: the rate and time left change.
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Arc::new(Phase {
            name: name.to_string(),
            done: AtomicU64::new(0),
            total: AtomicU64::new(total.unwrap_or(0)),
            start: Instant::now(),
            bar,
            finished: AtomicBool::new(false),
            waiting: std::sync::Mutex::new(None),
            waited: std::sync::Mutex::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes done so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The total, 0 when unknown.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Sets the bytes done.
    pub fn set(&self, bytes: u64) {
        if bytes > 0 {
            self.resume();
        }
        self.done.store(bytes, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            // A total that was an estimate never reads over 100%.
            if b.length().is_some_and(|l| bytes > l) {
                b.set_length(bytes);
            }
            b.set_position(bytes);
        }
    }

    /// Adds to the bytes done.
    pub fn add(&self, bytes: u64) {
        if bytes > 0 {
            self.resume();
        }
        self.done.fetch_add(bytes, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }

    /// Sets (or corrects) the total, once it is learnt.
    pub fn set_total(&self, total: u64) {
        if total == 0 || self.total.swap(total, Ordering::Relaxed) == total {
            return;
        }
        if let Some(b) = &self.bar {
            b.set_length(total);
            b.set_style(style(true));
            b.tick();
        }
    }

    /// Prints a message without tearing the live line (it is drawn again
    /// below the message).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    /// The phase waits for `what` (e.g. "the upstream's checkpoint") before
    /// it moves bytes: the live line says so, and if it lasts
    /// [`WAIT_NOTICE_AFTER`], [`Phase::tick_wait`] prints `notice` (and its
    /// hint) once. Ends with [`Phase::resume`] or the first bytes.
    pub fn wait(&self, what: &str, notice: Option<(String, Option<String>)>) {
        if let Ok(mut w) = self.waiting.lock() {
            if w.as_ref().is_some_and(|w| w.what == what) {
                return;
            }
            *w = Some(Wait {
                what: what.to_string(),
                since: Instant::now(),
                notice,
            });
        }
        if let Some(b) = &self.bar {
            b.set_prefix(format!("{}: waiting for {what}", self.name));
        }
    }

    /// The wait is over: its time is kept for the summary.
    pub fn resume(&self) {
        let Some(w) = self.waiting.lock().ok().and_then(|mut w| w.take()) else {
            return;
        };
        let took = w.since.elapsed();
        if let Ok(mut longest) = self.waited.lock() {
            if longest.as_ref().is_none_or(|(_, d)| *d < took) {
                *longest = Some((w.what, took));
            }
        }
        if let Some(b) = &self.bar {
            b.set_prefix(self.name.clone());
        }
    }

    /// Called now and then while a phase runs: a wait that has lasted says
    /// what it waits for (once).
    pub fn tick_wait(&self) {
        let Ok(mut guard) = self.waiting.lock() else {
            return;
        };
        let Some(w) = guard.as_mut() else {
            return;
        };
        if w.since.elapsed() < WAIT_NOTICE_AFTER {
            return;
        }
        if let Some((message, hint)) = w.notice.take() {
            drop(guard);
            self.suspend(|| {
                report::notice(&message);
                if let Some(h) = &hint {
                    report::hint(h);
                }
            });
        }
    }

    /// The summary as it is printed: the rate leaves out a wait of more
    /// than a second, which is named with its time.
    pub fn summary(&self) -> String {
        let elapsed = self.start.elapsed();
        let waited = self
            .waited
            .lock()
            .ok()
            .and_then(|w| w.clone())
            .filter(|(_, d)| *d >= WAIT_NOTICE_AFTER);
        match waited {
            Some((what, d)) => format!(
                "{} (after {} waiting for {what})",
                summary(&self.name, self.done(), elapsed.saturating_sub(d)),
                duration(d)
            ),
            None => summary(&self.name, self.done(), elapsed),
        }
    }

    /// Ends the phase: the live line is replaced by the summary, which is
    /// printed in either case (`INFO:`).
    pub fn finish(&self) {
        if self.finished.swap(true, Ordering::Relaxed) {
            return;
        }
        self.resume();
        // The live line goes, and the summary is a line of its own: drawn
        // by the bar, it was padded to the terminal's width and left without
        // its newline.
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        report::info(&self.summary());
    }
}

impl Drop for Phase {
    /// A phase that did not finish (a failure) leaves no line behind.
    fn drop(&mut self) {
        if let (Some(b), false) = (&self.bar, self.finished.load(Ordering::Relaxed)) {
            b.finish_and_clear();
        }
    }
}

/// The parallel streams of one copy, added up into a phase that may already
/// hold the bytes of earlier copies (`base`).
pub struct Progress {
    streams: Vec<AtomicU64>,
    base: u64,
    phase: Arc<Phase>,
}

impl Progress {
    pub fn new(streams: usize, base: u64, phase: Arc<Phase>) -> Arc<Progress> {
        Arc::new(Progress {
            streams: (0..streams).map(|_| AtomicU64::new(0)).collect(),
            base,
            phase,
        })
    }

    /// Stream `stream` has copied `bytes`.
    pub fn set(&self, stream: usize, bytes: u64) {
        if let Some(s) = self.streams.get(stream) {
            s.store(bytes, Ordering::Relaxed);
            self.phase.set(self.done());
        }
    }

    pub fn done(&self) -> u64 {
        self.base
            + self
                .streams
                .iter()
                .map(|s| s.load(Ordering::Relaxed))
                .sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_progress2_records() {
        assert_eq!(
            parse_record("  1,234,567  45%   12.34MB/s    0:00:01 (xfr#3, to-chk=10/20)"),
            Some(1234567)
        );
        assert_eq!(parse_record("sending incremental file list"), None);
        assert_eq!(parse_record("Number of files: 3 (reg: 3)"), None);
        let chunk = "\r         32,768   0%    0.00kB/s    0:00:00\r      8,421,376  80%  100MB/s    0:00:00 (xfr#1, to-chk=1/3)\nNumber of files: 3\n";
        assert_eq!(last_record(chunk), Some(8421376));
        // The tail of a record cut by the previous read is not a record.
        assert_eq!(last_record("234,567  45%  1MB/s"), None);
    }

    #[test]
    fn reads_the_reports_of_pg_basebackup_and_pg_verifybackup() {
        assert_eq!(
            parse_kb_record("    0/22966 kB (0%), 0/1 tablespace (...ta/base/1/2600)"),
            Some((0, 22966 * 1024))
        );
        assert_eq!(
            parse_kb_record("22975/22975 kB (100%), 1/1 tablespace"),
            Some((22975 * 1024, 22975 * 1024))
        );
        assert_eq!(
            parse_kb_record("   1024/30000 kB (3%) verified"),
            Some((1024 * 1024, 30000 * 1024))
        );
        assert_eq!(parse_kb_record("waiting for checkpoint"), None);
        assert_eq!(
            parse_kb_record("pg_basebackup: write-ahead log end point: 0/2000100"),
            None
        );
    }

    #[test]
    fn streams_add_up_over_earlier_copies() {
        let phase = Phase::with_display("copy", Some(4 * 1048576), false);
        let p = Progress::new(2, 1048576, phase.clone());
        p.set(0, 1048576);
        p.set(1, 524288);
        p.set(7, 99); // no such stream: ignored
        assert_eq!(phase.done(), 2621440);
        assert_eq!(phase.total(), 4 * 1048576);
        let q = Phase::with_display("copy", None, false);
        assert_eq!(q.total(), 0);
        q.add(10);
        q.add(5);
        q.set_total(100);
        assert_eq!((q.done(), q.total()), (15, 100));
    }

    #[test]
    fn the_summary_has_bytes_time_and_rate() {
        assert_eq!(
            summary("copy", 174 * 1048576 + 419430, Duration::from_millis(750)),
            "copy: 174.4 MiB in 0.8 s, 232.5 MiB/s"
        );
        assert_eq!(
            summary("verify", 600 * 1048576, Duration::from_secs(125)),
            "verify: 600.0 MiB in 2m05s, 4.8 MiB/s"
        );
    }

    /// The live line as indicatif lays it out, drawn into an in-memory terminal.
    #[test]
    fn the_live_line_shows_total_percent_rate_and_time_left() {
        use indicatif::InMemoryTerm;
        let term = InMemoryTerm::new(4, 120);
        let bar = ProgressBar::with_draw_target(
            Some(1024 * 1048576),
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        bar.set_style(style(true));
        bar.set_prefix("copy");
        bar.set_position(512 * 1048576);
        bar.tick();
        let line = term.contents();
        assert!(line.starts_with("copy [="), "{line}");
        assert!(line.contains("512.00 MiB/1.00 GiB (50%), "), "{line}");
        assert!(line.contains("/s, ") && line.ends_with(" left"), "{line}");
        let term = InMemoryTerm::new(4, 120);
        let bar = ProgressBar::with_draw_target(
            None,
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        bar.set_style(style(false));
        bar.set_prefix("copy");
        bar.set_position(3 * 1048576);
        bar.tick();
        let line = term.contents();
        assert!(
            line.starts_with("copy ") && line.contains("3.00 MiB, "),
            "{line}"
        );
    }
}

/// Progress records come from rsync, pg_basebackup and pg_verifybackup,
/// which may run on a hostile upstream's data: any output is a count or
/// nothing, and a count is the one the record says.
#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    const RSYNC: &str = "\r      1,234,567  45%   12.34MB/s    0:00:01 (xfr#3, to-chk=10/20)\r      2,345,678  90%   12.34MB/s    0:00:02 (xfr#4, to-chk=5/20)\n";
    const BASEBACKUP: &str = "    0/23456 kB (0%), 0/1 tablespace (...ata/base/5/1249)\r23456/23456 kB (100%), 1/1 tablespace\n";

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn any_output_is_a_count_or_nothing(
            s in prop_oneof![fuzz::mutated(RSYNC), fuzz::mutated(BASEBACKUP), fuzz::any_text()]
        ) {
            let _ = last_record(&s);
            for line in s.split(['\r', '\n']) {
                let _ = parse_record(line);
                let _ = parse_kb_record(line);
            }
        }

        /// The bytes of a kB record are 1024 times its numbers, or none when
        /// that does not fit: never a wrapped count.
        #[test]
        fn kb_records_are_exact(
            done in prop_oneof![0u64..1 << 40, any::<u64>()],
            total in prop_oneof![0u64..1 << 40, any::<u64>()],
            pct in 0u32..=100,
        ) {
            let got = parse_kb_record(&format!("{done}/{total} kB ({pct}%), 0/1 tablespace"));
            let want = done.checked_mul(1024).zip(total.checked_mul(1024));
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn counts_too_large_for_bytes_are_not_records() {
        // Found by kb_records_are_exact: 2^54 kB wrapped to 0 bytes.
        assert_eq!(
            parse_kb_record("18014398509481984/18014398509481984 kB (100%) verified"),
            None
        );
        assert_eq!(parse_kb_record("1/2 kB (50%) verified"), Some((1024, 2048)));
    }
}
