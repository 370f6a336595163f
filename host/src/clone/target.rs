//! The target data directory: what it is now, whether it may be used, and
//! making it ready — only after every other check has passed.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::safety::{self, normalize, Role};
use super::upstream::LocalServer;
use crate::report::Failure;

/// What the target directory is before the clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetState {
    /// Does not exist: it will be created with mode 0700.
    Missing,
    /// Exists and is empty.
    Empty,
    /// Exists with content; `pg_version` when it is a data directory.
    Populated {
        pg_version: Option<String>,
        entries: usize,
    },
}

/// The target, resolved.
#[derive(Debug, Clone)]
pub struct Target {
    /// As given (absolute).
    pub given: PathBuf,
    /// With symlinks resolved when it exists: the directory actually written.
    pub real: PathBuf,
    pub state: TargetState,
}

impl Target {
    /// The PG_VERSION of the data directory it holds, if it holds one.
    pub fn pg_version(&self) -> Option<&str> {
        match &self.state {
            TargetState::Populated {
                pg_version: Some(v),
                ..
            } => Some(v),
            _ => None,
        }
    }
}

/// The PID of a live postmaster that owns `dir`, if there is one.
pub fn running_postmaster(dir: &Path) -> Option<i32> {
    safety::live_pid_file(dir).map(|p| p.pid)
}

/// True when `dir` is configured as a standby (PostgreSQL 12+'s signal
/// file, or an older server's recovery.conf).
pub fn is_standby(dir: &Path) -> bool {
    dir.join("standby.signal").exists() || dir.join("recovery.conf").exists()
}

/// Inspects `dir` without changing anything. Refuses what may never be a
/// target, whatever `-F` says.
pub fn inspect(dir: &Path, upstream: Option<&LocalServer>) -> anyhow::Result<Target> {
    if !dir.is_absolute() {
        return Err(Failure::new(format!(
            "data directory \"{}\" is not an absolute path",
            dir.display()
        ))
        .hint("give -D an absolute path")
        .into());
    }
    let given = normalize(dir);
    let real = std::fs::canonicalize(&given).unwrap_or_else(|_| given.clone());
    safety::check_location(&given, Role::DataDirectory)?;
    if let Some(up) = upstream.filter(|u| u.data_dir == real) {
        return Err(
            Failure::new(format!("refusing to clone into \"{}\"", dir.display()))
                .detail(format!(
                    "it is the data directory of the server being cloned (PID {} on this machine)",
                    up.pid
                ))
                .hint("give the standby its own data directory with -D or data_directory")
                .into(),
        );
    }
    let state = match std::fs::metadata(&real) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => TargetState::Missing,
        Err(e) => {
            return Err(Failure::new(format!(
                "cannot access data directory \"{}\"",
                dir.display()
            ))
            .detail(e.to_string())
            .into())
        }
        Ok(m) if !m.is_dir() => {
            return Err(Failure::new(format!(
                "\"{}\" exists and is not a directory",
                dir.display()
            ))
            .into())
        }
        Ok(_) => {
            let entries = std::fs::read_dir(&real)
                .map_err(|e| {
                    Failure::new(format!("cannot read data directory \"{}\"", dir.display()))
                        .detail(e.to_string())
                })?
                .count();
            if entries == 0 {
                TargetState::Empty
            } else {
                let pg_version = std::fs::read_to_string(real.join("PG_VERSION"))
                    .ok()
                    .map(|v| v.trim().to_string());
                TargetState::Populated {
                    pg_version,
                    entries,
                }
            }
        }
    };
    Ok(Target { given, real, state })
}

impl Target {
    /// Refuses a populated directory without `force`, and a running server always.
    pub fn check_usable(&self, force: bool) -> anyhow::Result<()> {
        if let Some(pid) = running_postmaster(&self.real) {
            return Err(Failure::new(format!(
                "a PostgreSQL server (PID {pid}) is running in \"{}\"",
                self.given.display()
            ))
            .hint("stop it first; -F never overwrites a running server")
            .into());
        }
        if let TargetState::Populated {
            pg_version,
            entries,
        } = &self.state
        {
            if !force {
                let what = match pg_version {
                    Some(v) => format!("it is a PostgreSQL {v} data directory"),
                    None => format!(
                        "it is not empty ({})",
                        crate::report::count(*entries, "entry", "entries")
                    ),
                };
                return Err(Failure::new(format!(
                    "destination directory \"{}\" cannot be used",
                    self.given.display()
                ))
                .detail(what)
                .hint("use -F/--force to overwrite it; its contents will be deleted")
                .into());
            }
        }
        Ok(())
    }

    /// Makes the directory ready: created (0700) or emptied (with `-F`), mode fixed.
    /// Call only after every check has passed.
    pub fn prepare(&self) -> anyhow::Result<()> {
        let ctx = |what: &str, e: std::io::Error| {
            Failure::new(format!("could not {what} \"{}\"", self.given.display()))
                .detail(e.to_string())
        };
        match &self.state {
            TargetState::Missing => std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.real)
                .map_err(|e| ctx("create directory", e))?,
            TargetState::Empty => {}
            TargetState::Populated { .. } => {
                empty_dir(&self.real).map_err(|e| ctx("empty directory", e))?
            }
        }
        let meta = std::fs::metadata(&self.real).map_err(|e| ctx("access", e))?;
        if meta.mode() & 0o777 != 0o700 {
            std::fs::set_permissions(&self.real, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| ctx("set permissions on", e))?;
        }
        Ok(())
    }
}

/// Deletes everything inside `dir` (not `dir` itself). Symlinks (pg_wal,
/// tablespaces) are removed as links; what they point to is not touched.
pub fn empty_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// The database system identifier in `dir/global/pg_control`: the control
/// file starts with it (a native-endian u64).
pub fn system_identifier(dir: &Path) -> Option<String> {
    use std::io::Read;
    let mut buf = [0u8; 8];
    std::fs::File::open(dir.join("global/pg_control"))
        .ok()?
        .read_exact(&mut buf)
        .ok()?;
    Some(u64::from_ne_bytes(buf).to_string())
}

impl Target {
    /// Readies a data directory of the same system for a delta copy: WAL and
    /// server state files go (they belong to the old standby), data files stay
    /// for rsync to compare.
    pub fn prepare_for_delta(&self) -> anyhow::Result<()> {
        for sub in ["pg_wal", "pg_replslot", "pg_stat_tmp"] {
            let d = self.real.join(sub);
            if d.is_dir() && !d.is_symlink() {
                empty_dir(&d).map_err(|e| {
                    Failure::new(format!("could not empty \"{}\"", d.display()))
                        .detail(e.to_string())
                })?;
            }
        }
        for f in [
            "postmaster.pid",
            "postmaster.opts",
            "standby.signal",
            "recovery.signal",
            "recovery.conf",
            "backup_label.old",
        ] {
            let _ = std::fs::remove_file(self.real.join(f));
        }
        Ok(())
    }
}

/// Whether `waldir` (`--waldir`) can take the standby's WAL: outside the data
/// directory, and missing or empty, unless a delta copy finds pg_wal already
/// linked to it. Returns what the check saw, for the list of checks.
pub fn check_waldir(waldir: &Path, target: &Target, delta: bool) -> Result<String, Failure> {
    let abs = normalize(waldir);
    safety::check_writable_root(waldir, Role::WalDir)?;
    if abs.starts_with(&target.real) || abs.starts_with(&target.given) {
        return Err(Failure::new(format!(
            "--waldir \"{}\" is inside the data directory",
            waldir.display()
        ))
        .hint("put the WAL directory outside the data directory, or drop --waldir"));
    }
    match std::fs::read_dir(waldir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(format!(
            "WAL directory \"{}\" will be created; pg_wal links to it",
            waldir.display()
        )),
        Err(e) => Err(
            Failure::new(format!("cannot use WAL directory \"{}\"", waldir.display()))
                .detail(e.to_string()),
        ),
        Ok(mut rd) => {
            let linked =
                std::fs::read_link(target.real.join("pg_wal")).is_ok_and(|l| normalize(&l) == abs);
            if rd.next().is_none() || (delta && linked) {
                Ok(format!(
                    "WAL directory \"{}\" is usable; pg_wal links to it",
                    waldir.display()
                ))
            } else {
                Err(Failure::new(format!(
                    "WAL directory \"{}\" is not empty",
                    waldir.display()
                ))
                .hint("empty it, or choose another --waldir in pg_basebackup_options"))
            }
        }
    }
}

/// Makes `dir/pg_wal` a symbolic link to `waldir` (created 0700, emptied:
/// WAL left there by an earlier standby must not be replayed by this one).
pub fn link_waldir(dir: &Path, waldir: &Path) -> anyhow::Result<()> {
    let ctx = |what: String, e: std::io::Error| Failure::new(what).detail(e.to_string());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(waldir)
        .map_err(|e| {
            ctx(
                format!("could not create directory \"{}\"", waldir.display()),
                e,
            )
        })?;
    empty_dir(waldir).map_err(|e| ctx(format!("could not empty \"{}\"", waldir.display()), e))?;
    let link = dir.join("pg_wal");
    match std::fs::symlink_metadata(&link) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&link),
        Ok(_) => std::fs::remove_file(&link),
        Err(_) => Ok(()),
    }
    .map_err(|e| ctx(format!("could not remove \"{}\"", link.display()), e))?;
    std::os::unix::fs::symlink(waldir, &link).map_err(|e| {
        ctx(
            format!("could not create symbolic link \"{}\"", link.display()),
            e,
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_directories_and_relative_paths_are_refused() {
        for d in ["/", "/etc", "/etc/", "/usr/../etc", "/var/lib"] {
            let e = inspect(Path::new(d), None).unwrap_err();
            assert!(
                crate::report::render(&e).contains("system directory"),
                "{d}: {e}"
            );
        }
        assert!(inspect(Path::new("data"), None).is_err());
    }

    #[test]
    fn a_symlink_to_a_system_directory_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let link = t.path().join("pgdata");
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        assert!(inspect(&link, None).is_err());
    }

    #[test]
    fn states_and_force() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("data");
        let target = inspect(&d, None).unwrap();
        assert_eq!(target.state, TargetState::Missing);
        target.prepare().unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        assert_eq!(inspect(&d, None).unwrap().state, TargetState::Empty);

        std::fs::write(d.join("PG_VERSION"), "15\n").unwrap();
        std::fs::create_dir(d.join("base")).unwrap();
        let target = inspect(&d, None).unwrap();
        assert_eq!(
            target.state,
            TargetState::Populated {
                pg_version: Some("15".into()),
                entries: 2
            }
        );
        let e = target.check_usable(false).unwrap_err();
        assert!(crate::report::render(&e).contains("PostgreSQL 15 data directory"));
        target.check_usable(true).unwrap();
        target.prepare().unwrap();
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
    }

    #[test]
    fn emptying_does_not_follow_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "x").unwrap();
        let d = t.path().join("data");
        std::fs::create_dir(&d).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.join("pg_wal")).unwrap();
        empty_dir(&d).unwrap();
        assert!(outside.path().join("keep").exists());
    }

    #[test]
    fn a_running_postmaster_is_refused_even_with_force() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("data");
        std::fs::create_dir(&d).unwrap();
        // Our own PID stands in for the postmaster's: a live process.
        std::fs::write(
            d.join("postmaster.pid"),
            format!("{}\n/x\n", std::process::id()),
        )
        .unwrap();
        let target = inspect(&d, None).unwrap();
        let e = target.check_usable(true).unwrap_err();
        assert!(crate::report::render(&e).contains("is running"), "{e}");
        // A stale pid file is not a running server.
        std::fs::write(d.join("postmaster.pid"), "999999999\n").unwrap();
        target.check_usable(true).unwrap();
    }
}
