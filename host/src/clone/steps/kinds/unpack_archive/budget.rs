//! How many bytes unpacking may write: what the backup declares, plus a
//! small margin. An archive is only bytes from the backup host; a 4.5 MB
//! gzip stream can expand to any size. PostgreSQL's `backup_manifest`
//! lists every file of the backup with its size (the WAL a `-X fetch`
//! archive carries aside, which the backup's LSN range bounds): writing past
//! their sum means the archive is not the backup it claims to be, and it is
//! stopped there, before it can fill a file system other clusters share.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::report::Failure;

/// The bytes a batch of archives may write together.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    written: AtomicU64,
    /// Where the limit comes from, for the error.
    declared: String,
}

impl Budget {
    pub fn new(limit: u64, declared: String) -> Budget {
        Budget {
            limit,
            written: AtomicU64::new(0),
            declared,
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes `n` bytes; false (and nothing taken) when they do not fit.
    pub fn take(&self, n: u64) -> bool {
        self.written
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                w.checked_add(n).filter(|t| *t <= self.limit)
            })
            .is_ok()
    }

    /// The error once an archive wanted more.
    pub fn exceeded(&self, source: &str) -> Failure {
        Failure::new(format!(
            "archive \"{source}\" unpacks to more than the backup declares"
        ))
        .detail(format!(
            "{} bytes were written and more followed; {} (at most {} bytes with the margin): unpacking stopped there",
            self.written.load(Ordering::SeqCst),
            self.declared,
            self.limit
        ))
        .hint("the archive is not the backup its manifest describes (damaged or tampered with); check it on the backup host, or clone from another backup")
    }
}

/// The margin over the declared size: the WAL segments an archive made with
/// `-X fetch` carries (they are not in the manifest), bounded by the
/// backup's LSN range plus the segment it ends in (PostgreSQL's default
/// segment size), and 1% for what a manifest does not count.
pub fn margin(declared: u64, wal_span: u64) -> u64 {
    wal_span
        .saturating_add(crate::wal::DEFAULT_SIZE)
        .saturating_add(declared / 100)
}

/// The sum of the sizes a `backup_manifest` declares for its files. Read as
/// a stream (a manifest of a large cluster is large; nothing is kept but the
/// sum): every `"Size":` key followed by a number. In JSON a `"` inside a
/// string is escaped, so the key cannot be spelled by a file's name.
pub fn manifest_total(path: &Path) -> std::io::Result<u64> {
    const KEY: &[u8] = b"\"Size\":";
    let mut f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut buf = [0u8; 64 << 10];
    let (mut matched, mut in_number, mut value, mut total) = (0usize, false, 0u64, 0u64);
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        for &b in &buf[..k] {
            if matched == KEY.len() {
                if b.is_ascii_digit() {
                    in_number = true;
                    value = value.saturating_mul(10).saturating_add(u64::from(b - b'0'));
                    continue;
                }
                if b.is_ascii_whitespace() && !in_number {
                    continue;
                }
                total = total.saturating_add(value);
                (matched, in_number, value) = (0, false, 0);
            }
            // The key's only repeated byte is its first: on a mismatch the
            // match restarts at that byte or at nothing.
            matched = if b == KEY[matched] {
                matched + 1
            } else if b == KEY[0] {
                1
            } else {
                0
            };
        }
    }
    if matched == KEY.len() {
        total = total.saturating_add(value);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_never_passes_its_limit() {
        let b = Budget::new(10, "x".into());
        assert!(b.take(6));
        assert!(!b.take(5));
        assert!(b.take(4));
        assert!(!b.take(1));
        assert!(!b.take(u64::MAX));
    }

    #[test]
    fn manifest_sizes_are_summed() {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().join("backup_manifest");
        std::fs::write(
            &m,
            "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n\
             { \"Path\": \"backup_label\", \"Size\": 225, \"Last-Modified\": \"x\" },\n\
             { \"Path\": \"a \\\"Size\\\": 999\", \"Size\":7 },\n\
             { \"Path\": \"base/1/1\", \"Size\": 8192, \"Checksum\": \"ab\" }],\n\
             \"WAL-Ranges\": [ { \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" } ] }\n",
        )
        .unwrap();
        assert_eq!(manifest_total(&m).unwrap(), 225 + 7 + 8192);
        std::fs::write(&m, "\"\"Size\": 5").unwrap();
        assert_eq!(manifest_total(&m).unwrap(), 5);
    }

    #[test]
    fn the_margin_comes_from_the_backup() {
        assert_eq!(margin(100 << 20, 0), (16 << 20) + (1 << 20));
    }
}
