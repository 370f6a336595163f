//! Where a clone may write. A directory pgclone creates, empties or writes
//! into (the data directory, a tablespace, `--waldir`) must not be, contain or
//! lie inside a PostgreSQL data directory — running or not — nor be a system
//! or home directory. The one data directory a clone may replace is its own
//! target, with `-F`, when no server runs in it.
//!
//! Everything here reads what is on disk and in `/proc`; how the operator
//! spelled a host or a path does not matter.

use std::ffi::CStr;
use std::path::{Component, Path, PathBuf};

use crate::report::Failure;

/// Trees that hold the operating system: nothing inside them is a data
/// directory.
const SYSTEM_TREES: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin",
    "/sys", "/usr",
];

/// Directories that hold other things: they may contain a data directory,
/// but are never one (nor is anything above them).
const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/home",
    "/media",
    "/mnt",
    "/opt",
    "/root",
    "/run",
    "/srv",
    "/tmp",
    "/var",
    "/var/backups",
    "/var/cache",
    "/var/lib",
    "/var/lib/postgresql",
    "/var/lib/pgsql",
    "/var/log",
    "/var/mail",
    "/var/spool",
    "/var/tmp",
];

/// What a directory is for in this clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The new standby's data directory (`-D`, `data_directory`).
    DataDirectory,
    /// Where a tablespace of the clone goes.
    Tablespace,
    /// `--waldir`: where `pg_wal` links to.
    WalDir,
}

impl Role {
    fn what(self) -> &'static str {
        match self {
            Role::DataDirectory => "data directory",
            Role::Tablespace => "tablespace directory",
            Role::WalDir => "WAL directory",
        }
    }
}

/// A PostgreSQL data directory found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDataDir {
    pub path: PathBuf,
    /// The PID of the live postmaster that owns it, if one runs.
    pub running: Option<i32>,
}

impl FoundDataDir {
    fn describe(&self) -> String {
        match self.running {
            Some(pid) => format!(
                "\"{}\" is the data directory of a running PostgreSQL server (PID {pid})",
                self.path.display()
            ),
            None => format!(
                "\"{}\" is a PostgreSQL data directory (no server running)",
                self.path.display()
            ),
        }
    }
}

/// True when `dir` looks like a data directory: `PG_VERSION` beside
/// `global/pg_control` (a database directory under `base/` has only the first).
pub fn is_data_dir(dir: &Path) -> bool {
    dir.join("PG_VERSION").is_file() && dir.join("global/pg_control").is_file()
}

/// The first lines of `dir/postmaster.pid` when its postmaster is alive:
/// (pid, data directory line, start time, port).
pub fn live_pid_file(dir: &Path) -> Option<PidFile> {
    let text = std::fs::read_to_string(dir.join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    let pid: i32 = lines.next()?.trim().parse().ok()?;
    if pid <= 0 || !process_alive(pid) {
        return None;
    }
    let _data_dir = lines.next();
    let start: Option<i64> = lines.next().and_then(|l| l.trim().parse().ok());
    let port: Option<u16> = lines.next().and_then(|l| l.trim().parse().ok());
    Some(PidFile { pid, start, port })
}

/// What a live `postmaster.pid` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidFile {
    pub pid: i32,
    /// Seconds since the epoch.
    pub start: Option<i64>,
    pub port: Option<u16>,
}

fn process_alive(pid: i32) -> bool {
    // Signal 0 checks for existence; EPERM still means it exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn found(dir: &Path) -> Option<FoundDataDir> {
    let running = live_pid_file(dir).map(|p| p.pid);
    (running.is_some() || is_data_dir(dir)).then(|| FoundDataDir {
        path: dir.to_path_buf(),
        running,
    })
}

/// Removes `.` and `..` lexically and trailing slashes.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c.as_os_str()),
        }
    }
    out
}

/// `p` with every symbolic link resolved, as far as it exists: the missing
/// tail is appended to the real path of its deepest existing ancestor.
pub fn resolve(p: &Path) -> PathBuf {
    let p = normalize(p);
    let mut existing = p.clone();
    let mut tail = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            for c in tail.iter().rev() {
                out.push(c);
            }
            return out;
        }
        match (
            existing.file_name().map(|f| f.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                tail.push(name);
                existing = parent.to_path_buf();
            }
            _ => return p,
        }
    }
}

/// Every user's home directory, from the password database.
pub fn home_dirs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    // getpwent walks the whole database (files, LDAP, ...); nothing else in
    // pgclone uses it, so its static state is not shared.
    unsafe {
        libc::setpwent();
        loop {
            let pw = libc::getpwent();
            if pw.is_null() {
                break;
            }
            let dir = CStr::from_ptr((*pw).pw_dir).to_string_lossy().into_owned();
            if dir.starts_with('/') {
                v.push(normalize(Path::new(&dir)));
            }
        }
        libc::endpwent();
    }
    if let Some(h) = std::env::var_os("HOME") {
        v.push(normalize(Path::new(&h)));
    }
    v.sort();
    v.dedup();
    v
}

fn refuse(dir: &Path, role: Role, detail: String, hint: &str) -> Failure {
    Failure::new(format!(
        "refusing to use \"{}\" as a {}",
        dir.display(),
        role.what()
    ))
    .detail(detail)
    .hint(hint)
}

/// Refuses `dir` as a system or home directory (the spelling as given and the
/// resolved path are both checked).
fn check_not_system(dir: &Path, real: &Path, role: Role, homes: &[PathBuf]) -> Result<(), Failure> {
    let hint = "give a dedicated directory, e.g. /var/lib/postgresql/15/main";
    for candidate in [&normalize(dir), real] {
        let s = candidate.to_string_lossy();
        if SYSTEM_DIRS.contains(&s.as_ref()) {
            return Err(refuse(
                dir,
                role,
                format!("\"{}\" is a system directory", candidate.display()),
                hint,
            ));
        }
        if let Some(tree) = SYSTEM_TREES
            .iter()
            .find(|t| candidate.starts_with(t) || Path::new(t).starts_with(candidate))
        {
            return Err(refuse(
                dir,
                role,
                format!(
                    "\"{}\" is a system directory (or in the system tree {tree})",
                    candidate.display()
                ),
                hint,
            ));
        }
        if let Some(home) = homes.iter().find(|h| h.starts_with(candidate)) {
            let what = if home == candidate {
                "is a home directory".to_string()
            } else {
                format!("contains the home directory \"{}\"", home.display())
            };
            return Err(refuse(
                dir,
                role,
                format!("\"{}\" {what}", candidate.display()),
                "give a dedicated directory; a home directory is never emptied or written by pgclone",
            ));
        }
    }
    Ok(())
}

/// The closest data directory `dir` lies inside, if any.
fn enclosing_data_dir(real: &Path) -> Option<FoundDataDir> {
    real.ancestors().skip(1).find_map(found)
}

/// The first data directory strictly below `dir` (symbolic links are not
/// followed: emptying removes them as links).
pub fn data_dir_below(dir: &Path) -> Option<FoundDataDir> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let p = e.path();
                if let Some(f) = found(&p) {
                    return Some(f);
                }
                stack.push(p);
            }
        }
    }
    None
}

/// Whether `dir` is a place pgclone may create, empty and fill for `role`,
/// whether or not a server runs there (see [`check_writable_root`]): not a
/// system or home directory, not inside a data directory, not above one, and
/// — unless it is the data directory itself, which `-F` may replace — not one.
pub fn check_location(dir: &Path, role: Role) -> Result<(), Failure> {
    let real = resolve(dir);
    check_not_system(dir, &real, role, &home_dirs())?;
    if let Some(outer) = enclosing_data_dir(&real) {
        return Err(refuse(
            dir,
            role,
            format!(
                "it lies inside another data directory: {}",
                outer.describe()
            ),
            "choose a directory outside every PostgreSQL data directory",
        ));
    }
    if role != Role::DataDirectory && (is_data_dir(&real) || live_pid_file(&real).is_some()) {
        return Err(refuse(
            dir,
            role,
            found(&real).map(|f| f.describe()).unwrap_or_default(),
            "choose an empty directory for it",
        ));
    }
    if let Some(inner) = data_dir_below(&real) {
        return Err(refuse(
            dir,
            role,
            format!("it contains another data directory: {}", inner.describe()),
            "give the exact directory to use, not a directory above a data directory",
        ));
    }
    Ok(())
}

/// [`check_location`], and no server may run in `dir` itself.
pub fn check_writable_root(dir: &Path, role: Role) -> Result<(), Failure> {
    check_location(dir, role)?;
    if let Some(pid) = live_pid_file(&resolve(dir)).map(|p| p.pid) {
        return Err(refuse(
            dir,
            role,
            format!("a PostgreSQL server (PID {pid}) is running in \"{}\"", resolve(dir).display()),
            "stop that server first, or choose another directory; pgclone never writes into a running server's directory",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_data_dir(p: &Path) {
        std::fs::create_dir_all(p.join("global")).unwrap();
        std::fs::write(p.join("PG_VERSION"), "15\n").unwrap();
        std::fs::write(p.join("global/pg_control"), [0u8; 16]).unwrap();
    }

    fn refused(dir: &Path, role: Role) -> String {
        check_writable_root(dir, role)
            .expect_err(&format!("{} was accepted", dir.display()))
            .to_string()
    }

    #[test]
    fn system_trees_and_directories_are_refused() {
        for d in [
            "/",
            "/etc",
            "/etc/postgresql/x",
            "/usr/../etc",
            "/var/lib",
            "/usr/local/pg",
            "/tmp",
        ] {
            assert!(
                refused(Path::new(d), Role::DataDirectory).contains("system directory"),
                "{d}"
            );
        }
    }

    #[test]
    fn home_directories_of_every_user_are_refused() {
        // root's home comes from the password database even when HOME is elsewhere.
        let homes = home_dirs();
        assert!(homes.iter().any(|h| h == Path::new("/root")) || unsafe { libc::geteuid() } != 0);
        for h in homes
            .iter()
            .filter(|h| h.is_dir() && h.components().count() > 2)
        {
            let e = refused(h, Role::DataDirectory);
            assert!(
                e.contains("home directory") || e.contains("system"),
                "{}: {e}",
                h.display()
            );
        }
    }

    #[test]
    fn data_directories_above_at_and_below() {
        let t = tempfile::tempdir().unwrap();
        let outer = t.path().join("outer");
        fake_data_dir(&outer);
        // Inside a data directory, running or not.
        assert!(refused(&outer.join("sub"), Role::DataDirectory)
            .contains("inside another data directory"));
        // Above one.
        assert!(refused(t.path(), Role::DataDirectory).contains("contains another data directory"));
        // At one: a stopped one may be replaced; a tablespace never goes there.
        check_writable_root(&outer, Role::DataDirectory).unwrap();
        assert!(refused(&outer, Role::Tablespace).contains("is a PostgreSQL data directory"));
        // A database directory (base/1/PG_VERSION) is not a data directory.
        std::fs::create_dir_all(outer.join("base/1")).unwrap();
        std::fs::write(outer.join("base/1/PG_VERSION"), "15\n").unwrap();
        check_writable_root(&outer, Role::DataDirectory).unwrap();
    }

    #[test]
    fn a_running_server_is_found_at_above_and_below() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("live");
        std::fs::create_dir_all(&d).unwrap();
        // Our own PID stands in for a postmaster's: a live process.
        std::fs::write(
            d.join("postmaster.pid"),
            format!("{}\n{}\n1\n5432\n", std::process::id(), d.display()),
        )
        .unwrap();
        let pid = std::process::id().to_string();
        assert!(refused(&d, Role::DataDirectory).contains(&pid));
        assert!(refused(t.path(), Role::DataDirectory).contains(&pid));
        assert!(refused(&d.join("x/y"), Role::WalDir).contains(&pid));
        // A stale pid file is not a running server (and without PG_VERSION no data directory).
        std::fs::write(d.join("postmaster.pid"), "999999999\n").unwrap();
        check_writable_root(&d, Role::DataDirectory).unwrap();
    }

    #[test]
    fn symlinks_are_resolved_for_the_checks() {
        let t = tempfile::tempdir().unwrap();
        let outer = t.path().join("outer");
        fake_data_dir(&outer);
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&outer, &link).unwrap();
        assert!(refused(&link.join("new"), Role::DataDirectory)
            .contains("inside another data directory"));
        let etc = t.path().join("etc-link");
        std::os::unix::fs::symlink("/etc", &etc).unwrap();
        assert!(refused(&etc, Role::DataDirectory).contains("system directory"));
    }
}
