//! The spool: prefetched segments outside PGDATA, written atomically, handed
//! over by rename, bounded, and cleaned of stale entries.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::cursors::Serving;
use super::guard::TempFile;
use super::verify::{check_header, HEADER_LEN};
use crate::report::Failure;

/// What [`Spool::take`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    Delivered,
    Absent,
    /// The spooled file failed its checks and was removed: why.
    Rejected(String),
}

/// One source's spool directory (`<spool>/<source key>/`).
#[derive(Debug, Clone)]
pub struct Spool {
    pub dir: PathBuf,
    /// The standby a restore_command serves (see [`Spool::serving`]).
    pub serving: Option<Serving>,
}

/// Files of the single-directory layout of earlier versions, removed when a
/// source's directory is made: nothing would ever clean them up.
const OLD_LAYOUT: &[&str] = &[
    "cursor",
    "inflight",
    "server.info",
    "prefetch.lock",
    "boot_id",
];

impl Spool {
    /// Opens the spool of one source: `top/key/`, made 0700 where missing.
    /// Both directories must be trusted ([`trusted_dir`]); `source` says in
    /// words whose data the directory holds (written once, for people).
    pub fn open(top: &Path, key: &str, source: &str) -> Result<Spool, Failure> {
        let top = absolute(top);
        if let Some(parent) = top.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        make_dir(&top)?;
        trusted_dir(&top)?;
        let dir = top.join(key);
        let created = make_dir(&dir)?;
        trusted_dir(&dir)?;
        let spool = Spool { dir, serving: None };
        if created {
            let _ = spool.put("source", format!("{source}\n").as_bytes());
            remove_old_layout(&top);
        }
        spool.forget_other_boots().map_err(|e| {
            Failure::new(format!(
                "cannot use the spool directory \"{}\"",
                spool.dir.display()
            ))
            .detail(e.to_string())
        })?;
        Ok(spool)
    }

    /// Spooled segments are not fsynced (that would make every prefetched
    /// segment cost a disk flush): after a machine crash they may be torn, so
    /// a spool written before the last boot is emptied.
    fn forget_other_boots(&self) -> std::io::Result<()> {
        let Ok(boot) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") else {
            return Ok(());
        };
        if self.read("boot_id").is_some_and(|b| b == boot) {
            return Ok(());
        }
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if is_segment_name(&name) || name == "cursor" {
                let _ = std::fs::remove_file(e.path());
            }
        }
        self.forget_cursors();
        write_atomic(&self.dir, "boot_id", boot.as_bytes(), true)
    }

    /// A small file of the spool as text, never through a symlink.
    pub fn read(&self, name: &str) -> Option<String> {
        use std::io::Read;
        let mut f = open_nofollow(&self.path(name)).ok()?;
        let mut text = String::new();
        f.read_to_string(&mut text).ok()?;
        Some(text)
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

    /// Moves a spooled `name` to `dest` by rename after checking it (size,
    /// long page header, system identifier when `sysid` is known); a spooled
    /// file that fails is removed and reported as `Rejected`.
    pub fn take(&self, name: &str, dest: &Path, sysid: Option<u64>) -> std::io::Result<Taken> {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        let path = self.path(name);
        let mut f = match open_nofollow(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Taken::Absent),
            Err(e) => return Ok(self.reject(name, format!("cannot open it: {e}"))),
        };
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Ok(self.reject(name, "it is not a regular file".into()));
        }
        let mut header = Vec::with_capacity(HEADER_LEN);
        (&mut f).take(HEADER_LEN as u64).read_to_end(&mut header)?;
        if let Err(why) = check_header(name, &header, meta.len(), sysid) {
            return Ok(self.reject(name, why));
        }
        // Another standby of this spool still needs it: a copy (never a
        // hard link: PostgreSQL recycles restored files and writes into them).
        let shared = self.needed_by_others(name);
        let renamed = if shared {
            Err(std::io::Error::from_raw_os_error(libc::EXDEV))
        } else {
            std::fs::rename(&path, dest)
        };
        match renamed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Taken::Absent),
            // Another file system: copy the checked file over atomically
            // instead, streamed (a segment may be up to 1 GiB).
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                use std::io::Seek;
                f.seek(std::io::SeekFrom::Start(0))?;
                let copy = super::landing::land(super::landing::dir_of(dest), name, f, meta.len())
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                if let Err(why) = copy.check(name, sysid) {
                    return Ok(self.reject(name, why));
                }
                if shared {
                    // As unsynced as the spooled file a rename hands over.
                    copy.place(dest, false)?;
                    return Ok(Taken::Delivered);
                }
                copy.deliver(dest)?;
                let _ = std::fs::remove_file(&path);
                return Ok(Taken::Delivered);
            }
            Err(e) => return Err(e),
        }
        // What was renamed must be the file that was checked.
        let moved = std::fs::symlink_metadata(dest)?;
        if (moved.dev(), moved.ino()) != (meta.dev(), meta.ino()) {
            let _ = std::fs::remove_file(dest);
            return Ok(Taken::Rejected(format!(
                "{name} changed while it was checked"
            )));
        }
        Ok(Taken::Delivered)
    }

    fn reject(&self, name: &str, why: String) -> Taken {
        let _ = std::fs::remove_file(self.path(name));
        Taken::Rejected(why)
    }

    pub fn has(&self, name: &str) -> bool {
        std::fs::symlink_metadata(self.path(name)).is_ok_and(|m| m.is_file())
    }

    /// Removes the segments every standby's cursor is past (`floor`: the
    /// lowest cursor; none: nothing is removed), the single cursor of
    /// earlier versions, and temporary files left by processes that died;
    /// returns the segments that remain, in order.
    pub fn clean(&self, floor: Option<&str>) -> std::io::Result<Vec<String>> {
        let mut ready = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if is_segment_name(&name) {
                if floor.is_some_and(|f| name.as_str() <= f) {
                    let _ = std::fs::remove_file(e.path());
                } else {
                    ready.push(name);
                }
            } else if name == "cursor" {
                let _ = std::fs::remove_file(e.path());
            } else if name.starts_with('.') && name.contains(".tmp.") {
                let pid: Option<i32> = name.rsplit('.').next().and_then(|p| p.parse().ok());
                let alive = pid.is_some_and(|p| unsafe { libc::kill(p, 0) } == 0);
                if !alive {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        ready.sort();
        Ok(ready)
    }
}

fn is_segment_name(name: &str) -> bool {
    name.len() == 24 && name.chars().all(|c| c.is_ascii_hexdigit())
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let _registered = TempFile::register(&tmp);
    let result = (|| {
        // A stale file of a dead process with the same pid: never written through.
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
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

fn open_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    std::env::current_dir()
        .map(|c| c.join(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

/// Makes `dir` (mode 0700); true when it did not exist.
fn make_dir(dir: &Path) -> Result<bool, Failure> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Failure::new(format!(
            "cannot create the spool directory \"{}\"",
            dir.display()
        ))
        .detail(e.to_string())
        .hint("choose another directory with --spool-dir (or wal_restore_spool_dir)")),
    }
}

/// A spool is trusted only if nobody but the invoking user can put a file in
/// it: the directory itself (not a symlink) is owned by the effective user and
/// not writable by group or others, and no directory above it can be changed
/// by another user (owned by root or the user; writable by others only when
/// sticky, like /tmp).
pub fn trusted_dir(dir: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt;
    let euid = unsafe { libc::geteuid() };
    let refuse = |detail: String| {
        Failure::new(format!(
            "refusing to use the spool directory \"{}\": another user could put files in it",
            dir.display()
        ))
        .detail(detail)
        .hint(format!(
            "remove it or choose another with --spool-dir (or wal_restore_spool_dir); \
             it must belong to the user running wal-restore (uid {euid}) and be writable by nobody else"
        ))
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|e| refuse(e.to_string()))?;
    if meta.file_type().is_symlink() {
        return Err(refuse(format!("\"{}\" is a symbolic link", dir.display())));
    }
    if !meta.is_dir() {
        return Err(refuse(format!("\"{}\" is not a directory", dir.display())));
    }
    if meta.uid() != euid {
        return Err(refuse(format!("it is owned by uid {}", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "its mode is {:o}: writable by group or others",
            meta.mode() & 0o7777
        )));
    }
    for a in dir.ancestors().skip(1) {
        if a.as_os_str().is_empty() {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(a) else {
            continue;
        };
        let m = if m.file_type().is_symlink() && (m.uid() == 0 || m.uid() == euid) {
            std::fs::metadata(a).unwrap_or(m)
        } else {
            m
        };
        let writable_by_others = m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0;
        if (m.uid() != 0 && m.uid() != euid) || writable_by_others {
            return Err(refuse(format!(
                "\"{}\" above it is owned by uid {} with mode {:o}",
                a.display(),
                m.uid(),
                m.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// Removes what the single-directory layout left at the top of the spool.
fn remove_old_layout(top: &Path) {
    let Ok(rd) = std::fs::read_dir(top) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let old_log = name.starts_with("ssh-") && name.ends_with(".log");
        let old = is_segment_name(&name) || OLD_LAYOUT.contains(&name.as_str()) || old_log;
        if old && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walrestore::verify::{fake_segment, FAKE_SYSID};

    const N3: &str = "000000010000000000000003";
    const N5: &str = "000000010000000000000005";

    fn open(top: &Path) -> Spool {
        Spool::open(top, "barman-pg-0123", "test").unwrap()
    }

    #[test]
    fn put_take_and_clean() {
        let t = tempfile::tempdir().unwrap();
        let s = open(&t.path().join("spool"));
        s.put(N5, &fake_segment(N5, 1 << 20)).unwrap();
        s.put(N3, &fake_segment(N3, 1 << 20)).unwrap();
        std::fs::write(s.path(".x.tmp.999999999"), b"dead").unwrap();
        assert_eq!(
            s.clean(Some("000000010000000000000004")).unwrap(),
            [N5.to_string()]
        );
        assert!(!s.has(N3));
        assert!(!s.path(".x.tmp.999999999").exists());
        let dest = t.path().join("RECOVERYXLOG");
        assert_eq!(
            s.take(N5, &dest, Some(FAKE_SYSID)).unwrap(),
            Taken::Delivered
        );
        assert_eq!(std::fs::read(&dest).unwrap(), fake_segment(N5, 1 << 20));
        assert_eq!(s.take(N5, &dest, None).unwrap(), Taken::Absent);
    }

    #[test]
    fn a_segment_another_standby_needs_is_delivered_as_a_copy() {
        use crate::walrestore::cursors::Standby;
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let sa = open(&t.path().join("spool")).serving(Standby::at(&a), 16);
        let sb = open(&t.path().join("spool")).serving(Standby::at(&b), 16);
        sa.set_cursor(N3, 1 << 20).unwrap();
        sb.set_cursor(N3, 1 << 20).unwrap();
        sa.put(N5, &fake_segment(N5, 1 << 20)).unwrap();
        // a takes it: b's cursor is before it, so it stays.
        assert_eq!(sa.take(N5, &a.join("X"), None).unwrap(), Taken::Delivered);
        assert!(sa.has(N5));
        sa.set_cursor(N5, 1 << 20).unwrap();
        // The clean-up keeps what b needs.
        let floor = sa.cursors().first().map(|c| c.segment.clone());
        assert_eq!(sa.clean(floor.as_deref()).unwrap(), [N5.to_string()]);
        // b takes it: nobody else needs it, so it moves.
        assert_eq!(sb.take(N5, &b.join("X"), None).unwrap(), Taken::Delivered);
        assert!(!sb.has(N5));
        assert_eq!(
            std::fs::read(a.join("X")).unwrap(),
            std::fs::read(b.join("X")).unwrap()
        );
    }

    #[test]
    fn spooled_files_that_fail_their_checks_are_removed_not_delivered() {
        let t = tempfile::tempdir().unwrap();
        let s = open(&t.path().join("spool"));
        let dest = t.path().join("RECOVERYXLOG");
        s.put(N5, b"five").unwrap();
        assert!(matches!(
            s.take(N5, &dest, None).unwrap(),
            Taken::Rejected(_)
        ));
        s.put(N5, &fake_segment(N5, 1 << 20)).unwrap();
        let other = s.take(N5, &dest, Some(FAKE_SYSID + 1)).unwrap();
        assert!(matches!(other, Taken::Rejected(w) if w.contains("database system")));
        // A symlink is never followed.
        let target = t.path().join("elsewhere");
        std::fs::write(&target, fake_segment(N5, 1 << 20)).unwrap();
        std::os::unix::fs::symlink(&target, s.path(N5)).unwrap();
        assert!(matches!(
            s.take(N5, &dest, None).unwrap(),
            Taken::Rejected(_)
        ));
        assert!(!dest.exists());
        assert!(target.exists());
    }

    #[test]
    fn untrusted_spools_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let open_mode = t.path().join("shared");
        std::fs::create_dir(&open_mode).unwrap();
        std::fs::set_permissions(&open_mode, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = Spool::open(&open_mode, "k", "test").unwrap_err();
        assert!(e.to_string().contains("writable by group or others"), "{e}");
        assert!(e.hint.unwrap().contains("--spool-dir"));
        let link = t.path().join("link");
        std::fs::create_dir(t.path().join("real")).unwrap();
        std::os::unix::fs::symlink(t.path().join("real"), &link).unwrap();
        assert!(Spool::open(&link, "k", "test").is_err());
        // The source's directory is checked too.
        let top = t.path().join("top");
        std::fs::create_dir(&top).unwrap();
        std::fs::create_dir(top.join("k")).unwrap();
        std::fs::set_permissions(top.join("k"), std::fs::Permissions::from_mode(0o775)).unwrap();
        assert!(Spool::open(&top, "k", "test").is_err());
        // Made where missing, 0700.
        let fresh = open(&t.path().join("fresh"));
        let mode = std::fs::metadata(&fresh.dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_spool_from_before_the_last_boot_is_emptied() {
        let t = tempfile::tempdir().unwrap();
        let s = open(t.path());
        s.put("000000010000000000000007", b"seven").unwrap();
        let s = open(t.path()).serving(crate::walrestore::cursors::Standby::here(), 4);
        s.set_cursor(N3, 16 << 20).unwrap();
        // Reopened in the same boot: kept.
        let s = open(t.path());
        assert_eq!(s.cursors().len(), 1);
        assert!(s.has("000000010000000000000007"));
        // Written in another boot: possibly torn, so gone.
        std::fs::write(s.path("boot_id"), "another boot\n").unwrap();
        let s = open(t.path());
        assert!(!s.has("000000010000000000000007"));
        assert!(s.cursors().is_empty());
    }
}
