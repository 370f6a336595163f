//! The finished copy holds no link out of it. Whatever made the copy
//! (unpacked archives, rsync from a backup directory, pg_basebackup,
//! pg_combinebackup, a delta re-clone over an old copy), a symbolic link in
//! it is followed later by PostgreSQL, which writes through it: a link that
//! leads outside the clone's directories is a write anywhere the standby's
//! user can. So once the copy is complete the clone walks its directories
//! once, resolves every link against what is on disk (links through links,
//! `..` after a link, a target that does not exist yet), and refuses any that
//! leads outside the directory it is in — except the ones PostgreSQL's own
//! layout has and pgclone placed: `pg_tblspc/OID` to that tablespace's mapped
//! directory and `pg_wal` to `--waldir`. `tablespace_map` is checked too:
//! PostgreSQL makes a `pg_tblspc` link from each of its lines when it starts.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::report::{self, Failure};

/// Links PostgreSQL may follow without limit in a chain (the kernel's own
/// bound, MAXSYMLINKS): more is a loop or a trap, never a backup.
const MAX_HOPS: usize = 40;

/// The clone's directories, as the walk judges links in them.
pub struct Layout<'a> {
    /// The data directory (links resolved).
    pub data_dir: &'a Path,
    /// Where each tablespace was placed, by OID.
    pub tablespaces: &'a BTreeMap<u32, PathBuf>,
    /// `--waldir`, when given.
    pub waldir: Option<&'a Path>,
}

/// Where a link leads, followed through everything on disk.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The real path it leads to (its tail may not exist yet).
    At(PathBuf),
    /// A loop or a chain too long to follow.
    Unresolvable(String),
}

/// Resolves `path` as the kernel would when opening it (every link on the
/// way followed, `..` applied to the real directory reached), tolerating a
/// tail that does not exist yet: PostgreSQL may create a file there, so the
/// place it would land is what counts.
pub fn resolve(path: &Path) -> Resolved {
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut at = PathBuf::from("/");
    let mut hops = 0;
    // `pending` is a stack: the next component is at its end.
    while let Some(c) = pending.pop() {
        if c == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&c);
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Resolved::Unresolvable(format!(
                        "more than {MAX_HOPS} links in a row (a loop)"
                    ));
                }
                let target = match std::fs::read_link(&next) {
                    Ok(t) => t,
                    Err(e) => return Resolved::Unresolvable(e.to_string()),
                };
                if target.is_absolute() {
                    at = PathBuf::from("/");
                }
                push_components(&mut pending, &target);
            }
            // A directory, a file, or nothing yet: the rest is lexical from
            // here only when nothing exists (no link can be on the way).
            _ => at = next,
        }
    }
    Resolved::At(at)
}

/// Pushes `p`'s components onto the stack so that the first pops first.
fn push_components(stack: &mut Vec<OsString>, p: &Path) {
    let parts: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

/// One link that leads out.
#[derive(Debug, PartialEq, Eq)]
pub struct Escape {
    pub link: PathBuf,
    pub points_to: PathBuf,
    pub leads_to: Option<PathBuf>,
    pub why: String,
}

/// Walks the clone's directories (links not followed) and returns the first
/// link that leads out of the directory it is in, if any. A hard link is a
/// way out too (a write to one name is a write to every other): a file with
/// more names than the walk finds has one outside the clone.
pub fn find_escape(layout: &Layout<'_>) -> std::io::Result<Option<Escape>> {
    use std::os::unix::fs::MetadataExt;
    let mut roots: Vec<PathBuf> = vec![layout.data_dir.to_path_buf()];
    roots.extend(layout.tablespaces.values().cloned());
    roots.extend(layout.waldir.map(Path::to_path_buf));
    // Files with several names: (device, inode) -> (names, names seen, one).
    let mut linked: HashMap<(u64, u64), (u64, u64, PathBuf)> = HashMap::new();
    for root in &roots {
        let real_root = std::fs::canonicalize(root)?;
        let mut stack = vec![real_root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for e in entries {
                let e = e?;
                let t = e.file_type()?;
                if t.is_dir() {
                    stack.push(e.path());
                } else if t.is_symlink() {
                    if let Some(x) = judge(&e.path(), &real_root, layout)? {
                        return Ok(Some(x));
                    }
                } else {
                    let m = e.metadata()?;
                    if m.nlink() > 1 {
                        let seen =
                            linked
                                .entry((m.dev(), m.ino()))
                                .or_insert((m.nlink(), 0, e.path()));
                        seen.1 += 1;
                    }
                }
            }
        }
    }
    let outside = linked.into_values().find(|(n, seen, _)| seen < n);
    Ok(outside.map(|(n, seen, path)| Escape {
        link: path.clone(),
        points_to: path,
        leads_to: None,
        why: format!("it is a hard link with {n} names, {seen} of them in the clone's directories"),
    }))
}

/// The link at `link` (under `root`): none when it stays inside `root` or is
/// one of the links pgclone placed.
fn judge(link: &Path, root: &Path, layout: &Layout<'_>) -> std::io::Result<Option<Escape>> {
    let points_to = std::fs::read_link(link)?;
    let escape = |leads_to: Option<PathBuf>, why: String| Escape {
        link: link.to_path_buf(),
        points_to: points_to.clone(),
        leads_to,
        why,
    };
    let leads_to = match resolve(link) {
        Resolved::At(p) => p,
        Resolved::Unresolvable(why) => {
            return Ok(Some(escape(None, format!("it cannot be resolved: {why}"))))
        }
    };
    if let Some(allowed) = placed_by_pgclone(link, layout) {
        let allowed = std::fs::canonicalize(&allowed).unwrap_or(allowed);
        if leads_to == allowed {
            return Ok(None);
        }
        return Ok(Some(escape(
            Some(leads_to),
            format!(
                "it should lead to \"{}\", where pgclone placed it",
                allowed.display()
            ),
        )));
    }
    if leads_to.starts_with(root) {
        return Ok(None);
    }
    Ok(Some(escape(
        Some(leads_to),
        format!("outside \"{}\"", root.display()),
    )))
}

/// Where a link of PostgreSQL's own layout must lead, when `link` is one.
fn placed_by_pgclone(link: &Path, layout: &Layout<'_>) -> Option<PathBuf> {
    let data = std::fs::canonicalize(layout.data_dir).ok()?;
    let rel = link.strip_prefix(&data).ok()?;
    let mut parts = rel.components();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Component::Normal(a)), None, None) if a == "pg_wal" => {
            layout.waldir.map(Path::to_path_buf)
        }
        (Some(Component::Normal(a)), Some(Component::Normal(oid)), None) if a == "pg_tblspc" => {
            let oid: u32 = oid.to_str()?.parse().ok()?;
            layout.tablespaces.get(&oid).cloned()
        }
        _ => None,
    }
}

/// `tablespace_map`'s lines (`OID PATH`; PostgreSQL escapes a backslash or a
/// line break in PATH with a backslash): each must name a placed tablespace
/// at the directory it was placed in.
pub fn check_tablespace_map(layout: &Layout<'_>) -> Result<(), Failure> {
    let file = layout.data_dir.join("tablespace_map");
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Ok(());
    };
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (oid, path) = line.split_once(' ').unwrap_or((line, ""));
        let path = unescape(path);
        let placed = oid
            .parse::<u32>()
            .ok()
            .and_then(|o| layout.tablespaces.get(&o));
        if placed.is_none_or(|p| Path::new(&path) != p) {
            return Err(Failure::new(format!(
                "refusing the copy: \"{}\" would make PostgreSQL link tablespace {} to \"{}\"",
                file.display(),
                report::escape(oid),
                report::escape(&path)
            ))
            .detail(match placed {
                Some(p) => format!("pgclone placed that tablespace in \"{}\"", p.display()),
                None => "the backup has no such tablespace".into(),
            })
            .hint("the backup has been tampered with or is not the one the source describes; the incomplete copy was removed"));
        }
    }
    Ok(())
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The check after the copy: an ERROR naming the link and where it leads.
pub fn check(layout: &Layout<'_>) -> Result<(), Failure> {
    let found = find_escape(layout)
        .map_err(|e| Failure::new("could not check the links in the copy").detail(e.to_string()))?;
    if let Some(x) = found {
        let leads = match &x.leads_to {
            Some(p) if *p != x.points_to => format!(" (leading to \"{}\")", p.display()),
            _ => String::new(),
        };
        let message = if x.points_to == x.link {
            format!(
                "refusing the copy: \"{}\" is also a file outside it",
                x.link.display()
            )
        } else {
            format!(
                "refusing the copy: link \"{}\" points to \"{}\"{leads}",
                x.link.display(),
                report::escape(&x.points_to.to_string_lossy()),
            )
        };
        return Err(Failure::new(message)
        .detail(format!(
            "{}: PostgreSQL would read and write through it",
            x.why
        ))
        .hint("a link in the copy leads out of the data directory; check the backup on its host (it may have been tampered with), or clone from another backup"));
    }
    check_tablespace_map(layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn real(p: &Path) -> PathBuf {
        std::fs::canonicalize(p).unwrap()
    }

    #[test]
    fn resolve_follows_chains_on_disk() {
        let t = tempfile::tempdir().unwrap();
        let root = real(t.path());
        let d = root.join("data");
        std::fs::create_dir_all(d.join("pg_wal")).unwrap();
        // The attack of issue 23: text alone says `up` stays inside.
        symlink(".", d.join("pg_wal/dot")).unwrap();
        symlink("dot/dot/dot/../../..", d.join("pg_wal/up")).unwrap();
        // pg_wal, pg_wal, pg_wal, then up three: the data directory's parent's parent.
        let top = root.parent().unwrap().to_path_buf();
        assert_eq!(resolve(&d.join("pg_wal/up")), Resolved::At(top.clone()));
        assert_eq!(
            resolve(&d.join("pg_wal/up/outside/victim")),
            Resolved::At(top.join("outside/victim"))
        );
        symlink("a", d.join("b")).unwrap();
        symlink("b", d.join("a")).unwrap();
        assert!(matches!(resolve(&d.join("a")), Resolved::Unresolvable(_)));
        symlink("/etc", d.join("abs")).unwrap();
        assert_eq!(
            resolve(&d.join("abs/passwd")),
            Resolved::At(PathBuf::from("/etc/passwd"))
        );
        symlink("../data/base", d.join("inside")).unwrap();
        assert_eq!(resolve(&d.join("inside/1")), Resolved::At(d.join("base/1")));
    }

    #[test]
    fn only_links_that_stay_inside_or_were_placed_pass() {
        let t = tempfile::tempdir().unwrap();
        let root = real(t.path());
        let (d, ts, wal) = (root.join("data"), root.join("ts"), root.join("wal"));
        for p in [d.join("pg_tblspc"), d.join("base"), ts.clone(), wal.clone()] {
            std::fs::create_dir_all(p).unwrap();
        }
        let tablespaces: BTreeMap<u32, PathBuf> = [(16385, ts.clone())].into();
        let layout = Layout {
            data_dir: &d,
            tablespaces: &tablespaces,
            waldir: Some(&wal),
        };
        symlink(&ts, d.join("pg_tblspc/16385")).unwrap();
        symlink(&wal, d.join("pg_wal")).unwrap();
        symlink("../base", d.join("base/rel")).unwrap();
        // A dangling link inside is harmless: what it makes lands inside.
        symlink("not-yet", d.join("base/later")).unwrap();
        assert_eq!(find_escape(&layout).unwrap(), None);
        check(&layout).unwrap();

        // A tablespace link to another place than where pgclone put it.
        symlink(&root, d.join("pg_tblspc/16386")).unwrap();
        let e = check(&layout).unwrap_err();
        assert!(e.message.contains("pg_tblspc/16386"), "{e:?}");
        std::fs::remove_file(d.join("pg_tblspc/16386")).unwrap();

        // A dangling link whose target would be created outside.
        symlink("../../outside/victim", d.join("base/victim")).unwrap();
        let x = find_escape(&layout).unwrap().unwrap();
        assert_eq!(x.link, d.join("base/victim"));
        assert_eq!(x.leads_to, Some(root.join("outside/victim")));
        std::fs::remove_file(d.join("base/victim")).unwrap();

        // In a tablespace directory too, and via a chain.
        symlink(".", ts.join("dot")).unwrap();
        symlink("dot/dot/..", ts.join("up")).unwrap();
        let x = find_escape(&layout).unwrap().unwrap();
        assert_eq!(x.link, ts.join("up"));
        assert_eq!(x.leads_to, Some(root.clone()));
    }

    #[test]
    fn a_hard_link_to_a_file_outside_is_found() {
        let t = tempfile::tempdir().unwrap();
        let root = real(t.path());
        let d = root.join("data");
        std::fs::create_dir_all(d.join("base")).unwrap();
        let tablespaces = BTreeMap::new();
        let layout = Layout {
            data_dir: &d,
            tablespaces: &tablespaces,
            waldir: None,
        };
        // Two names inside: harmless.
        std::fs::write(d.join("base/a"), "x").unwrap();
        std::fs::hard_link(d.join("base/a"), d.join("base/b")).unwrap();
        assert_eq!(find_escape(&layout).unwrap(), None);
        // One name outside.
        std::fs::write(root.join("victim"), "x").unwrap();
        std::fs::hard_link(root.join("victim"), d.join("base/v")).unwrap();
        let x = find_escape(&layout).unwrap().unwrap();
        assert_eq!(x.link, d.join("base/v"));
        assert!(x.why.contains("hard link with 2 names, 1 of them"), "{x:?}");
    }

    #[test]
    fn tablespace_map_must_name_the_placed_directories() {
        let t = tempfile::tempdir().unwrap();
        let root = real(t.path());
        let d = root.join("data");
        std::fs::create_dir_all(&d).unwrap();
        let tablespaces: BTreeMap<u32, PathBuf> = [(16385, root.join("my ts"))].into();
        let layout = Layout {
            data_dir: &d,
            tablespaces: &tablespaces,
            waldir: None,
        };
        let map = |s: &str| std::fs::write(d.join("tablespace_map"), s).unwrap();
        map(&format!("16385 {}/my ts\n", root.display()));
        check_tablespace_map(&layout).unwrap();
        map("16385 /etc\n");
        let e = check_tablespace_map(&layout).unwrap_err();
        assert!(e.message.contains("\"/etc\""), "{e:?}");
        map(&format!("16386 {}/my ts\n", root.display()));
        assert!(check_tablespace_map(&layout).is_err());
    }
}
