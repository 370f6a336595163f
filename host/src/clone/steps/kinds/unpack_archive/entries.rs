//! The entries of one archive, written as they arrive: each checked before
//! it is written (no absolute path, no `..`, no link leading out of its
//! root, no device), every write confined to the clone's roots.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::Ordering;

use super::{Fault, Shared, UnpackStats};

/// A plain relative path (leading `./` dropped): none for an absolute path or
/// one with `..`.
fn relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            _ => return None,
        }
    }
    Some(out)
}

pub(super) fn extract<R: Read>(
    archive: &mut tar::Archive<R>,
    root: &Path,
    roots: &[PathBuf],
    shared: &Shared,
    stats: &mut UnpackStats,
) -> Result<(), Fault> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    use tar::EntryType as T;
    // Directories already checked to lead inside the roots (every write goes
    // through one); a link the archive makes is checked where it is made.
    let mut confined_dirs: HashSet<PathBuf> = HashSet::new();
    let mut check_dir = |dir: &Path| -> Result<(), Fault> {
        if confined_dirs.contains(dir) {
            return Ok(());
        }
        crate::clone::steps::confined(dir, roots).map_err(|f| {
            Fault::Refused(format!(
                "{}{}",
                f.message,
                f.detail.map(|d| format!(": {d}")).unwrap_or_default()
            ))
        })?;
        confined_dirs.insert(dir.to_path_buf());
        Ok(())
    };
    let mut buf = vec![0u8; 256 << 10];
    for entry in archive.entries().map_err(Fault::Stream)? {
        if shared.cancel.load(Ordering::Relaxed) {
            return Err(Fault::Stream(std::io::Error::other("cancelled")));
        }
        let mut entry = entry.map_err(Fault::Stream)?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
        ) {
            continue;
        }
        let raw = entry.path().map_err(Fault::Stream)?.into_owned();
        let shown = raw.display().to_string().escape_debug().to_string();
        let rel = relative(&raw).ok_or_else(|| {
            Fault::Refused(format!("entry \"{shown}\" is absolute or contains \"..\""))
        })?;
        let mode = entry.header().mode().map_err(Fault::Stream)? & 0o777;
        let dst = root.join(&rel);
        let parent = dst.parent().unwrap_or(root).to_path_buf();
        match kind {
            T::Directory => {
                if rel.as_os_str().is_empty() {
                    continue;
                }
                check_dir(&parent)?;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(mode | 0o700)
                    .create(&dst)
                    .map_err(|e| Fault::Local(dst.clone(), e))?;
                // An existing link (pg_wal to --waldir) must lead into a root.
                check_dir(&dst)?;
            }
            T::Regular | T::Continuous => {
                if rel.as_os_str().is_empty() {
                    return Err(Fault::Refused(format!(
                        "file entry \"{shown}\" has no name"
                    )));
                }
                check_dir(&parent)?;
                // A new file only: never through a link or over a file.
                let create = || {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(mode | 0o600)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&dst)
                };
                let mut f = match create() {
                    // The parts of a split backup are unpacked in parallel:
                    // a file's directory may come in an earlier part, not
                    // unpacked yet. Made here (checked above); its own entry
                    // finds it made.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        std::fs::DirBuilder::new()
                            .recursive(true)
                            .mode(0o700)
                            .create(&parent)
                            .map_err(|e| Fault::Local(parent.clone(), e))?;
                        create()
                    }
                    r => r,
                }
                .map_err(|e| Fault::Local(dst.clone(), e))?;
                loop {
                    let k = entry.read(&mut buf).map_err(Fault::Stream)?;
                    if k == 0 {
                        break;
                    }
                    // Charged before it is written: a bomb stops at the bound.
                    shared.charge(k as u64)?;
                    f.write_all(&buf[..k])
                        .map_err(|e| Fault::Local(dst.clone(), e))?;
                    stats.file_bytes += k as u64;
                }
            }
            T::Symlink => {
                // A base backup's archive holds no symbolic link: pg_tblspc's
                // links are made by pgclone from the placed tablespaces, and
                // pg_wal is a link only to --waldir, made by pgclone. A link
                // the archive makes could lead anywhere through links made
                // before it (`dot -> .`, then `up -> dot/dot/../..`); one
                // refused as it arrives cannot.
                let target = entry
                    .link_name()
                    .map_err(Fault::Stream)?
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                return Err(Fault::Refused(format!(
                    "entry \"{shown}\" is a symbolic link to \"{}\", which a base backup's archive does not hold",
                    target.escape_debug()
                )));
            }
            T::Link => {
                return Err(Fault::Refused(format!(
                    "entry \"{shown}\" is a hard link to \"{}\", which a base backup does not hold",
                    entry
                        .link_name()
                        .ok()
                        .flatten()
                        .map(|t| t.display().to_string().escape_debug().to_string())
                        .unwrap_or_default()
                )))
            }
            T::Char | T::Block | T::Fifo => {
                return Err(Fault::Refused(format!(
                    "entry \"{shown}\" is a device or FIFO"
                )))
            }
            other => {
                return Err(Fault::Refused(format!(
                    "entry \"{shown}\" has tar type {:?}, which pgclone does not unpack",
                    other.as_byte() as char
                )))
            }
        }
        stats.entries += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        assert_eq!(relative(Path::new("./base/1")), Some("base/1".into()));
        assert_eq!(relative(Path::new("/etc/passwd")), None);
        assert_eq!(relative(Path::new("base/../../x")), None);
        assert_eq!(relative(Path::new("./")), Some(PathBuf::new()));
    }

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    }

    fn run(bytes: &[u8], root: &Path) -> Result<UnpackStats, String> {
        let shared = Shared::default();
        let mut stats = UnpackStats::default();
        let mut a = tar::Archive::new(bytes);
        extract(&mut a, root, &[root.to_path_buf()], &shared, &mut stats)
            .map(|_| stats)
            .map_err(|f| match f {
                Fault::Refused(s) => s,
                Fault::Stream(e) => format!("stream: {e}"),
                Fault::Local(p, e) => format!("local {}: {e}", p.display()),
                Fault::TooLarge => "too large".into(),
            })
    }

    #[test]
    fn a_plain_archive_unpacks() {
        let t = tempfile::tempdir().unwrap();
        let bytes = tar_with(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o700);
            h.set_size(0);
            b.append_data(&mut h, "base/", &[][..]).unwrap();
            file(b, "base/1", b"hello");
            file(b, "PG_VERSION", b"15\n");
        });
        let s = run(&bytes, t.path()).unwrap();
        assert_eq!(s.entries, 3);
        assert_eq!(s.file_bytes, 8);
        assert_eq!(std::fs::read(t.path().join("base/1")).unwrap(), b"hello");
    }

    /// A later part of a split backup holds files of directories that an
    /// earlier part, unpacked at the same time, creates.
    #[test]
    fn files_come_before_their_directories() {
        let t = tempfile::tempdir().unwrap();
        let later = tar_with(|b| file(b, "base/1/2685", b"x"));
        run(&later, t.path()).unwrap();
        let earlier = tar_with(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o700);
            h.set_size(0);
            b.append_data(&mut h, "base/1/", &[][..]).unwrap();
            file(b, "base/1/112", b"y");
        });
        run(&earlier, t.path()).unwrap();
        assert_eq!(std::fs::read(t.path().join("base/1/2685")).unwrap(), b"x");
        assert_eq!(std::fs::read(t.path().join("base/1/112")).unwrap(), b"y");
    }

    #[test]
    fn hostile_entries_are_refused() {
        // The tar crate refuses to write `..` and absolute names; raw headers
        // carry them as an attacker would.
        let raw = |name: &str, kind: tar::EntryType, link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(kind);
            h.set_mode(0o600);
            h.set_size(0);
            if let Some(l) = link {
                h.as_gnu_mut().unwrap().linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            let mut v = h.as_bytes().to_vec();
            v.extend_from_slice(&[0u8; 1024]);
            v
        };
        let t = tempfile::tempdir().unwrap();
        for (name, kind, link, want) in [
            ("../evil", tar::EntryType::Regular, None, "contains \"..\""),
            ("/etc/evil", tar::EntryType::Regular, None, "absolute"),
            ("dev", tar::EntryType::Char, None, "device"),
            ("fifo", tar::EntryType::Fifo, None, "FIFO"),
            ("ln", tar::EntryType::Symlink, Some("/etc"), "symbolic link"),
            (
                "ln",
                tar::EntryType::Symlink,
                Some("../.."),
                "symbolic link",
            ),
            // Inside by its text: refused all the same (see the chain below).
            (
                "pg_wal/dot",
                tar::EntryType::Symlink,
                Some("."),
                "symbolic link",
            ),
            (
                "hard",
                tar::EntryType::Link,
                Some("/etc/passwd"),
                "hard link to \"/etc/passwd\"",
            ),
        ] {
            let e = run(&raw(name, kind, link), t.path()).unwrap_err();
            assert!(e.contains(want), "{name}: {e}");
        }
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
        // A link inside, then a write through a link that leaves the root
        // (made by something else) is refused at the write.
        std::os::unix::fs::symlink("/tmp", t.path().join("out")).unwrap();
        let bytes = tar_with(|b| file(b, "out/x", b"x"));
        let e = run(&bytes, t.path()).unwrap_err();
        assert!(e.contains("outside"), "{e}");
    }

    /// The chain of issue 23: `dot -> .` then `up -> dot/dot/dot/../../..`
    /// then a file through it. Refused at the first link; nothing is made
    /// outside the root (its parent stays as it was).
    #[test]
    fn a_chain_of_links_is_refused_at_its_first_link() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("data");
        std::fs::create_dir(&root).unwrap();
        let bytes = tar_with(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            b.append_link(&mut h, "pg_wal/dot", ".").unwrap();
            b.append_link(&mut h, "pg_wal/up", "dot/dot/dot/../../..")
                .unwrap();
            file(b, "pg_wal/up/outside/victim", b"x");
        });
        let e = run(&bytes, &root).unwrap_err();
        assert!(e.contains("\"pg_wal/dot\" is a symbolic link"), "{e}");
        let names: Vec<_> = std::fs::read_dir(t.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(std::fs::read_dir(root.join("pg_wal"))
            .map(|d| d.count() == 0)
            .unwrap_or(true));
    }

    /// The budget: writing stops before the byte that would pass it.
    #[test]
    fn writing_stops_at_the_budget() {
        let t = tempfile::tempdir().unwrap();
        let bytes = tar_with(|b| file(b, "big", &vec![0u8; 1 << 20]));
        let shared = Shared {
            budget: Some(super::super::Budget::new(100_000, "test".into())),
            ..Default::default()
        };
        let mut stats = UnpackStats::default();
        let mut a = tar::Archive::new(&bytes[..]);
        let r = extract(
            &mut a,
            t.path(),
            &[t.path().to_path_buf()],
            &shared,
            &mut stats,
        );
        assert!(matches!(r, Err(Fault::TooLarge)));
        assert!(std::fs::metadata(t.path().join("big")).unwrap().len() <= 100_000);
    }
}
