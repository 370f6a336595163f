//! One cursor per standby in a shared spool. Standbys of the same source on
//! one host (or a clone warming its WAL while another standby replays) share
//! the source's spool directory; each has its own cursor there,
//! `cursors/<key>`, keyed by its data directory (PostgreSQL runs
//! restore_command in it, and a clone's warm-up is started in its target).
//! The one prefetcher serves the union of the cursors' windows, and a
//! segment is removed only once every cursor is past it.
//!
//! A cursor expires when its standby has not asked for [`IDLE`] (it streams
//! now, or stopped); a clone's warm-up cursor lives while the clone runs,
//! then [`WARM_KEEP`] for the standby to start and take it over.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::cluster::Cluster;
use super::guard::TempFile;
use super::spool::Spool;
use crate::wal;

/// A standby that has not asked for this long is done with the spool.
pub const IDLE: Duration = Duration::from_secs(30);

/// How long a clone's warm-up is kept after the clone ended, for its
/// standby to start.
pub const WARM_KEEP: Duration = Duration::from_secs(600);

const DIR: &str = "cursors";

/// Which standby a process serves: its data directory, as the kernel names
/// it (symbolic links resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standby {
    pub dir: PathBuf,
}

impl Standby {
    pub fn at(dir: &Path) -> Standby {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        Standby { dir }
    }

    /// The working directory: PostgreSQL's data directory for a
    /// restore_command, the target for a clone's warm-up.
    pub fn here() -> Standby {
        Standby::at(Path::new("."))
    }

    /// The data directory of the recovery a request serves.
    pub fn of(cluster: &Cluster) -> Standby {
        match &cluster.data_dir {
            Some(d) => Standby::at(d),
            None => Standby::here(),
        }
    }

    /// The cursor's file name: a hash, since a path is no file name.
    pub fn key(&self) -> String {
        let h = Sha256::digest(self.dir.as_os_str().as_encoded_bytes());
        hex::encode(&h[..8])
    }
}

/// The process a warm-up cursor lives with (the clone), by pid and start
/// time, so that a reused pid is not taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    start: u64,
}

impl Owner {
    /// The process that started this one (the clone, for a warm-up).
    pub fn parent() -> Option<Owner> {
        let pid = unsafe { libc::getppid() };
        Some(Owner {
            pid,
            start: start_time(pid)?,
        })
    }

    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// A process's start time in clock ticks since boot (/proc/PID/stat, field 22).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Where one standby is: the last segment it asked for (or, for a warm-up,
/// the one before the backup's first), and how far ahead it wants the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub segment: String,
    pub seg_size: u64,
    pub window: usize,
    pub standby: PathBuf,
    /// A clone's warm-up, before its standby asked for anything.
    pub warm: Option<Owner>,
    /// Since it was written (or, for a warm-up, since its clone was last seen).
    pub age: Duration,
    pub key: String,
}

impl Cursor {
    /// Being served: its standby asks, or its clone runs.
    pub fn awake(&self) -> bool {
        self.age < IDLE || self.owner_alive()
    }

    fn owner_alive(&self) -> bool {
        self.warm.is_some_and(|o| o.alive())
    }

    pub fn expired(&self) -> bool {
        let keep = if self.warm.is_some() { WARM_KEEP } else { IDLE };
        self.age > keep && !self.owner_alive()
    }

    /// The segments of its window, in order.
    pub fn window_segments(&self) -> Vec<String> {
        match wal::parse_name(&self.segment) {
            Some(wal::WalName::Segment { tli, log, seg }) => {
                wal::following(tli, log, seg, self.seg_size, self.window)
            }
            _ => Vec::new(),
        }
    }

    fn text(&self) -> String {
        let mut t = format!("{} {} {}\n", self.segment, self.seg_size, self.window);
        if let Some(o) = self.warm {
            t.push_str(&format!("warm {} {}\n", o.pid, o.start));
        }
        // Last: a path is everything up to the final newline.
        t.push_str(&format!("standby {}\n", self.standby.display()));
        t
    }

    fn parse(key: &str, text: &str, age: Duration) -> Option<Cursor> {
        let (head, rest) = text.split_once('\n')?;
        let mut f = head.split(' ');
        let (segment, seg_size, window) = (f.next()?, f.next()?.parse().ok()?, f.next()?);
        let window: usize = window.parse().ok()?;
        let segment_ok = matches!(wal::parse_name(segment), Some(wal::WalName::Segment { .. }));
        if !segment_ok || !wal::valid_size(seg_size) {
            return None;
        }
        let (warm, rest) = match rest.strip_prefix("warm ") {
            Some(w) => {
                let (line, rest) = w.split_once('\n')?;
                let (pid, start) = line.split_once(' ')?;
                let owner = Owner {
                    pid: pid.parse().ok()?,
                    start: start.parse().ok()?,
                };
                (Some(owner), rest)
            }
            None => (None, rest),
        };
        let standby = rest.strip_prefix("standby ")?.strip_suffix('\n')?;
        Some(Cursor {
            segment: segment.to_string(),
            seg_size,
            window: window.min(1024),
            standby: PathBuf::from(standby),
            warm,
            age,
            key: key.to_string(),
        })
    }
}

/// Whom a restore_command process serves: its standby and its window.
#[derive(Debug, Clone)]
pub struct Serving {
    pub standby: Standby,
    pub window: usize,
}

impl Spool {
    /// This spool as used by `standby`'s restore_command with a window of
    /// `window` segments: its deliveries move that standby's cursor, and a
    /// segment another standby still needs is delivered as a copy.
    pub fn serving(mut self, standby: Standby, window: usize) -> Spool {
        self.serving = Some(Serving { standby, window });
        self
    }

    fn cursor_dir(&self) -> std::io::Result<PathBuf> {
        let dir = self.path(DIR);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // Inside the trusted spool, but never through a link.
        let meta = std::fs::symlink_metadata(&dir)?;
        if !meta.is_dir() {
            return Err(std::io::Error::other(format!(
                "\"{}\" is not a directory",
                dir.display()
            )));
        }
        Ok(dir)
    }

    /// Moves the cursor of the standby this process serves to `name` (a
    /// delivered segment). Without one (no standby known), nothing.
    pub fn set_cursor(&self, name: &str, seg_size: u64) -> std::io::Result<()> {
        let Some(s) = &self.serving else {
            return Ok(());
        };
        let c = Cursor {
            segment: name.to_string(),
            seg_size,
            window: s.window,
            standby: s.standby.dir.clone(),
            warm: None,
            age: Duration::ZERO,
            key: s.standby.key(),
        };
        self.write_cursor(&c)
    }

    /// A clone's warm-up: `standby`'s cursor just before the backup's first
    /// segment, kept while `owner` (the clone) runs. Returns the cursor's file.
    pub fn set_warm_cursor(
        &self,
        standby: &Standby,
        segment: &str,
        seg_size: u64,
        window: usize,
        owner: Option<Owner>,
    ) -> std::io::Result<PathBuf> {
        let c = Cursor {
            segment: segment.to_string(),
            seg_size,
            window: window.min(1024),
            standby: standby.dir.clone(),
            warm: owner,
            age: Duration::ZERO,
            key: standby.key(),
        };
        self.write_cursor(&c)?;
        Ok(self.path(DIR).join(&c.key))
    }

    /// Writes a cursor as a symbolic link whose target is its text,
    /// replaced by rename. Every request moves its standby's cursor, so it
    /// must cost nothing: ext4 (auto_da_alloc) writes a regular file's data
    /// out before a rename replaces another file with it, which made this
    /// one small write take 5-7 ms, and 50 ms at p99, while the prefetcher
    /// was writing segments; a link has no data to write out, and `readlink`
    /// reads it whole (never half of an old and half of a new cursor).
    fn write_cursor(&self, c: &Cursor) -> std::io::Result<()> {
        let dir = self.cursor_dir()?;
        let tmp = dir.join(format!(".{}.tmp.{}", c.key, std::process::id()));
        let _registered = TempFile::register(&tmp);
        // A stale one of a dead process with the same pid.
        let _ = std::fs::remove_file(&tmp);
        let result = std::os::unix::fs::symlink(c.text(), &tmp)
            .and_then(|()| std::fs::rename(&tmp, dir.join(&c.key)));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// The cursors that have not expired, lowest first. Expired ones are
    /// removed; a warm-up whose clone runs is marked as seen now.
    pub fn cursors(&self) -> Vec<Cursor> {
        let mut out: Vec<Cursor> = self
            .read_cursors(None)
            .into_iter()
            .filter(|c| !self.expire(c))
            .collect();
        out.sort_by(|a, b| a.segment.cmp(&b.segment));
        out
    }

    /// Removes an expired cursor (true), or refreshes a running clone's.
    fn expire(&self, c: &Cursor) -> bool {
        let path = self.path(DIR).join(&c.key);
        if c.expired() {
            // Written again meanwhile by its standby: kept.
            let fresh = std::fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m.elapsed().unwrap_or_default() < IDLE);
            if !fresh {
                let _ = std::fs::remove_file(&path);
                return true;
            }
        } else if c.warm.is_some() && c.age > Duration::from_secs(1) && c.owner_alive() {
            // Seen now: written again (a link's time is its creation's).
            let _ = self.write_cursor(c);
        }
        false
    }

    /// Every readable cursor but `except`'s, expired or not.
    fn read_cursors(&self, except: Option<&str>) -> Vec<Cursor> {
        let Ok(rd) = std::fs::read_dir(self.path(DIR)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let key = e.file_name().to_string_lossy().into_owned();
            if key.starts_with('.') || Some(key.as_str()) == except {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .unwrap_or_default();
            // Never followed: the link's target is the cursor's text.
            let text = match meta.file_type().is_symlink() {
                true => std::fs::read_link(e.path())
                    .ok()
                    .and_then(|t| t.into_os_string().into_string().ok()),
                false => None,
            };
            out.extend(text.and_then(|t| Cursor::parse(&key, &t, age)));
        }
        out
    }

    /// True when a standby other than the one served here still needs
    /// `name` (its cursor is before it): then it is delivered as a copy.
    pub fn needed_by_others(&self, name: &str) -> bool {
        let mine = self.serving.as_ref().map(|s| s.standby.key());
        // The common case, one standby: a directory read, no file read.
        let others = std::fs::read_dir(self.path(DIR))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let k = e.file_name();
                let k = k.to_string_lossy();
                !k.starts_with('.') && Some(k.as_ref()) != mine.as_deref()
            });
        others
            && self
                .read_cursors(mine.as_deref())
                .iter()
                .any(|c| !c.expired() && c.segment.as_str() < name)
    }

    /// The cursors of the standbys, to remove when the spool is emptied.
    pub(super) fn forget_cursors(&self) {
        if let Ok(rd) = std::fs::read_dir(self.path(DIR)) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    const N3: &str = "000000010000000000000003";
    const N5: &str = "000000010000000000000005";
    const N9: &str = "000000010000000000000009";

    fn spool(t: &Path) -> Spool {
        Spool::open(t, "barman-pg-0123", "test").unwrap()
    }

    #[test]
    fn each_standby_has_its_own_cursor() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a")).unwrap();
        std::fs::create_dir_all(t.path().join("b")).unwrap();
        let a = spool(t.path()).serving(Standby::at(&t.path().join("a")), 16);
        let b = spool(t.path()).serving(Standby::at(&t.path().join("b")), 8);
        a.set_cursor(N5, 16 << 20).unwrap();
        b.set_cursor(N3, 16 << 20).unwrap();
        let all = a.cursors();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].segment.as_str(), all[0].window), (N3, 8));
        assert_eq!(
            all[0].standby,
            std::fs::canonicalize(t.path().join("b")).unwrap()
        );
        assert_eq!((all[1].segment.as_str(), all[1].window), (N5, 16));
        assert!(all.iter().all(Cursor::awake));
        // b is at 3: a's delivery of 5 leaves a copy; b's of 9 needs none.
        assert!(a.needed_by_others(N9));
        assert!(a.needed_by_others(N5));
        assert!(!b.needed_by_others(N5));
        assert!(!a.needed_by_others(N3));
        // Moving its cursor replaces it.
        b.set_cursor(N9, 16 << 20).unwrap();
        assert_eq!(a.cursors().len(), 2);
        assert!(!a.needed_by_others(N5));
    }

    #[test]
    fn idle_cursors_expire_and_warm_ups_live_with_their_clone() {
        let t = tempfile::tempdir().unwrap();
        let s = spool(t.path());
        let me = Owner::parent();
        let path = s
            .set_warm_cursor(&Standby::at(t.path()), N3, 16 << 20, 128, me)
            .unwrap();
        let old = SystemTime::now() - WARM_KEEP - Duration::from_secs(5);
        set_link_time(&path, old);
        // Its owner (this test's parent) runs: kept, and marked seen.
        let c = s.cursors();
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].awake() && c[0].warm.is_some());
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .modified()
                .unwrap()
                > old
        );
        // A dead owner (a pid that cannot be) and an old file: gone.
        let dead = Owner {
            pid: i32::MAX,
            start: 1,
        };
        s.set_warm_cursor(&Standby::at(t.path()), N3, 16 << 20, 128, Some(dead))
            .unwrap();
        set_link_time(&path, SystemTime::now() - IDLE - Duration::from_secs(5));
        // Idle but kept for its standby to start.
        let c = s.cursors();
        assert_eq!(c.len(), 1);
        assert!(!c[0].awake());
        set_link_time(&path, old);
        assert!(s.cursors().is_empty());
        assert!(std::fs::symlink_metadata(&path).is_err());
    }

    /// Ages a cursor: the link's own time, not a target's.
    fn set_link_time(path: &Path, t: SystemTime) {
        use std::os::unix::ffi::OsStrExt;
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        let ts = libc::timespec {
            tv_sec: secs as libc::time_t,
            tv_nsec: 0,
        };
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        let rc = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                [ts, ts].as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    }

    #[test]
    fn the_cursor_is_a_link_replaced_whole() {
        let t = tempfile::tempdir().unwrap();
        let s = spool(t.path()).serving(Standby::at(t.path()), 4);
        s.set_cursor(N3, 16 << 20).unwrap();
        s.set_cursor(N5, 16 << 20).unwrap();
        let dir = s.path(DIR);
        let names: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        // One link, no temporary one left behind.
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(std::fs::symlink_metadata(&names[0])
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(s.cursors()[0].segment, N5);
    }

    #[test]
    fn damaged_cursor_files_are_ignored() {
        let t = tempfile::tempdir().unwrap();
        let s = spool(t.path());
        s.set_warm_cursor(&Standby::at(t.path()), N3, 16 << 20, 4, None)
            .unwrap();
        std::fs::write(s.path("cursors/x"), "garbage").unwrap();
        std::os::unix::fs::symlink(format!("{N5} 12345 4\nstandby /a\n"), s.path("cursors/y"))
            .unwrap();
        std::os::unix::fs::symlink("../../etc/passwd", s.path("cursors/z")).unwrap();
        let c = s.cursors();
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].window_segments(),
            [
                "000000010000000000000004",
                N5,
                "000000010000000000000006",
                "000000010000000000000007"
            ]
        );
    }
}
