//! Room for the backup: a clone whose file systems lack the free space the
//! backup declares is refused before anything is copied, with the numbers.
//! A clone that fills a file system fails anyway, late; on a file system
//! shared with running clusters it takes them down first (PostgreSQL
//! PANICs when it cannot write WAL).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::report::Failure;

/// A file system the clone writes to: its device, its free bytes (for an
/// unprivileged user, as PostgreSQL's user sees them) and the directories
/// of the clone on it.
#[derive(Debug)]
pub struct FileSystem {
    pub dev: u64,
    pub free: u64,
    pub dirs: Vec<PathBuf>,
}

/// The nearest existing directory at or above `p` (a target may not exist
/// yet: it will be made on its parent's file system).
fn existing(p: &Path) -> PathBuf {
    let mut at = p.to_path_buf();
    while std::fs::metadata(&at).is_err() && at.pop() {}
    at
}

/// The free bytes of the file system holding `p` (or what exists of it).
pub fn free_bytes(p: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let at = existing(p);
    let c = std::ffi::CString::new(at.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let dev = std::fs::metadata(&at)?.dev();
    Ok((dev, (s.f_bavail as u64).saturating_mul(s.f_frsize as u64)))
}

/// The file systems of `dirs`, each once.
pub fn file_systems(dirs: &[PathBuf]) -> std::io::Result<Vec<FileSystem>> {
    let mut out: Vec<FileSystem> = Vec::new();
    for d in dirs {
        let (dev, free) = free_bytes(d)?;
        match out.iter_mut().find(|f| f.dev == dev) {
            Some(f) => f.dirs.push(d.clone()),
            None => out.push(FileSystem {
                dev,
                free,
                dirs: vec![d.clone()],
            }),
        }
    }
    Ok(out)
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1048576.0)
}

/// Refuses `declared` bytes (`what` says whose) when the file systems of
/// `dirs` have less free space together. How the backup splits over
/// tablespaces is not declared, so the file systems' space counts together:
/// a shortfall of all of them is certain, one of one is not.
pub fn check_room(declared: u64, what: &str, dirs: &[PathBuf]) -> Result<String, Failure> {
    let fs = file_systems(dirs).map_err(|e| {
        Failure::new("could not find the free space of the clone's file systems")
            .detail(e.to_string())
    })?;
    let free: u64 = fs.iter().map(|f| f.free).sum();
    let places = fs
        .iter()
        .map(|f| {
            format!(
                "{} free on the file system of {}",
                mib(f.free),
                f.dirs
                    .iter()
                    .map(|d| format!("\"{}\"", d.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if free < declared {
        return Err(Failure::new(format!(
            "not enough free space for the backup: {what} is {} ({declared} bytes), {} ({free} bytes) are free",
            mib(declared),
            mib(free)
        ))
        .detail(places)
        .hint("free space there, or clone to a file system with room for the backup; nothing was copied"));
    }
    Ok(format!("{what} is {}; {places}", mib(declared)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_counted_per_file_system() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("missing/target");
        let b = t.path().to_path_buf();
        let fs = file_systems(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(fs.len(), 1, "{fs:?}");
        assert_eq!(fs[0].dirs, vec![a.clone(), b]);
        assert!(check_room(0, "the backup", std::slice::from_ref(&a)).is_ok());
        let e = check_room(u64::MAX, "the backup", &[a]).unwrap_err();
        assert!(e.message.contains("not enough free space"), "{e:?}");
        assert!(e.message.contains(&u64::MAX.to_string()), "{e:?}");
    }
}
