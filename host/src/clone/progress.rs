//! A live byte counter for the parallel rsync streams of a clone, shown on
//! one terminal line. Each stream reports through `--info=progress2`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Counters for one copy, and the line that shows them.
pub struct Progress {
    streams: Vec<AtomicU64>,
    /// Bytes already copied by earlier steps of the clone.
    base: u64,
    /// The backup's size, when the source knows it (0 otherwise).
    total: u64,
    start: Instant,
}

impl Progress {
    pub fn new(streams: usize, base: u64, total: u64) -> Arc<Progress> {
        Arc::new(Progress {
            streams: (0..streams).map(|_| AtomicU64::new(0)).collect(),
            base,
            total,
            start: Instant::now(),
        })
    }

    pub fn set(&self, stream: usize, bytes: u64) {
        if let Some(s) = self.streams.get(stream) {
            s.store(bytes, Ordering::Relaxed);
        }
    }

    fn done(&self) -> u64 {
        self.base
            + self
                .streams
                .iter()
                .map(|s| s.load(Ordering::Relaxed))
                .sum::<u64>()
    }

    /// The line as it is shown, e.g. `copied 512.0 MiB of 1068.3 MiB (47%), 201.3 MiB/s`.
    pub fn line(&self) -> String {
        let mib = |b: u64| b as f64 / 1048576.0;
        let done = self.done();
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let rate = mib(done.saturating_sub(self.base)) / secs;
        if self.total > 0 {
            format!(
                "copied {:.1} MiB of {:.1} MiB ({}%), {rate:.1} MiB/s",
                mib(done),
                mib(self.total),
                (done.min(self.total) * 100 / self.total)
            )
        } else {
            format!("copied {:.1} MiB, {rate:.1} MiB/s", mib(done))
        }
    }

    /// Redraws the line every quarter second until the task is aborted.
    pub fn show(self: &Arc<Self>) -> ShownProgress {
        let p = self.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[KINFO: {}", p.line());
                let _ = err.flush();
            }
        });
        ShownProgress(task)
    }
}

/// The running redraw; dropping it clears the line.
pub struct ShownProgress(tokio::task::JoinHandle<()>);

impl Drop for ShownProgress {
    fn drop(&mut self) {
        self.0.abort();
        let _ = write!(std::io::stderr(), "\r\x1b[K");
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
    fn line_adds_streams_to_earlier_steps() {
        let p = Progress::new(2, 1048576, 4 * 1048576);
        p.set(0, 1048576);
        p.set(1, 524288);
        p.set(7, 99); // no such stream: ignored
        let l = p.line();
        assert!(l.starts_with("copied 2.5 MiB of 4.0 MiB (62%), "), "{l}");
        let q = Progress::new(1, 0, 0);
        q.set(0, 2097152);
        assert!(q.line().starts_with("copied 2.0 MiB, "), "{}", q.line());
    }
}
