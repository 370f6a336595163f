//! The spool: prefetched segments outside PGDATA, written atomically, handed
//! over by rename, bounded, and cleaned of stale entries.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    pub dir: PathBuf,
}

impl Spool {
    pub fn open(dir: &Path) -> std::io::Result<Spool> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let spool = Spool {
            dir: dir.to_path_buf(),
        };
        spool.forget_other_boots()?;
        Ok(spool)
    }

    /// Spooled segments are not fsynced (that would make every prefetched
    /// segment cost a disk flush): after a machine crash they may be torn, so
    /// a spool written before the last boot is emptied.
    fn forget_other_boots(&self) -> std::io::Result<()> {
        let Ok(boot) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") else {
            return Ok(());
        };
        if std::fs::read_to_string(self.path("boot_id")).is_ok_and(|b| b == boot) {
            return Ok(());
        }
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if is_segment_name(&name) || name == "cursor" {
                let _ = std::fs::remove_file(e.path());
            }
        }
        write_atomic(&self.dir, "boot_id", boot.as_bytes(), true)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `name` atomically (temp file, rename; no fsync: see
    /// `forget_other_boots`).
    pub fn put(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        write_atomic(&self.dir, name, bytes, false)
    }

    /// Writes a small bookkeeping file atomically, without fsync.
    pub fn put_unsynced(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        write_atomic(&self.dir, name, bytes, false)
    }

    /// Moves a spooled `name` to `dest` by rename; false when it is not there
    /// (or another process took it first).
    pub fn take(&self, name: &str, dest: &Path) -> std::io::Result<bool> {
        match std::fs::rename(self.path(name), dest) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            // Another filesystem: copy it over atomically instead.
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                let bytes = match std::fs::read(self.path(name)) {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                    Err(e) => return Err(e),
                };
                deliver(dest, &bytes)?;
                let _ = std::fs::remove_file(self.path(name));
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.path(name).is_file()
    }

    /// The last segment PostgreSQL asked for, and the segment size.
    pub fn cursor(&self) -> Option<(String, u64)> {
        let text = std::fs::read_to_string(self.path("cursor")).ok()?;
        let (name, size) = text.trim().split_once(' ')?;
        Some((name.to_string(), size.parse().ok()?))
    }

    pub fn set_cursor(&self, name: &str, seg_size: u64) -> std::io::Result<()> {
        write_atomic(
            &self.dir,
            "cursor",
            format!("{name} {seg_size}\n").as_bytes(),
            false,
        )
    }

    /// Removes segments older than `cursor` (never asked for again) and
    /// temporary files left by processes that died; returns how many remain.
    pub fn clean(&self, cursor: &str) -> std::io::Result<usize> {
        let mut ready = 0;
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if is_segment_name(&name) {
                if name.as_str() <= cursor {
                    let _ = std::fs::remove_file(e.path());
                } else {
                    ready += 1;
                }
            } else if name.starts_with('.') && name.contains(".tmp.") {
                let pid: Option<i32> = name.rsplit('.').next().and_then(|p| p.parse().ok());
                let alive = pid.is_some_and(|p| unsafe { libc::kill(p, 0) } == 0);
                if !alive {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(ready)
    }
}

fn is_segment_name(name: &str) -> bool {
    name.len() == 24 && name.chars().all(|c| c.is_ascii_hexdigit())
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` at `dest` atomically: never a partial file at `dest`.
pub fn deliver(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    write_atomic(&dir, &name, bytes, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_take_and_clean() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(&t.path().join("spool")).unwrap();
        s.put("000000010000000000000005", b"five").unwrap();
        s.put("000000010000000000000003", b"three").unwrap();
        std::fs::write(s.path(".x.tmp.999999999"), b"dead").unwrap();
        assert_eq!(s.clean("000000010000000000000004").unwrap(), 1);
        assert!(!s.has("000000010000000000000003"));
        assert!(!s.path(".x.tmp.999999999").exists());
        let dest = t.path().join("RECOVERYXLOG");
        assert!(s.take("000000010000000000000005", &dest).unwrap());
        assert_eq!(std::fs::read(&dest).unwrap(), b"five");
        assert!(!s.take("000000010000000000000005", &dest).unwrap());
        s.set_cursor("000000010000000000000005", 16 << 20).unwrap();
        assert_eq!(
            s.cursor(),
            Some(("000000010000000000000005".into(), 16 << 20))
        );
    }

    #[test]
    fn a_spool_from_before_the_last_boot_is_emptied() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        s.put("000000010000000000000007", b"seven").unwrap();
        // Reopened in the same boot: kept.
        let s = Spool::open(t.path()).unwrap();
        assert!(s.has("000000010000000000000007"));
        // Written in another boot: possibly torn, so gone.
        std::fs::write(s.path("boot_id"), "another boot\n").unwrap();
        let s = Spool::open(t.path()).unwrap();
        assert!(!s.has("000000010000000000000007"));
        assert!(s.cursor().is_none());
    }
}
