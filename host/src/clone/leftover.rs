//! What a clone that ended without its rollback (SIGKILL, the OOM killer, a
//! crash, a power cut) left behind, and the journal that lets the next run
//! recognise it. A clone under way keeps `.NAME.pgclone-journal` beside its
//! target `NAME` (where the staging directory `.NAME.pgclone-staging` of an
//! incremental chain goes too): who runs it, the directories it fills and the
//! replication slot it made. A clean end, a failure and an interruption
//! remove it after their rollback; only a clone that never got to run its
//! rollback leaves it. The rerun reads it to say what is left and by whom,
//! and repairs it: `-F` removes the incomplete copy and the staging
//! directory; the slot that clone made is dropped and made again.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::report::Failure;

use super::safety;
use super::steps::staging_dir;

/// The journal of a clone into `datadir`: beside it, like the staging directory.
pub fn journal_path(datadir: &Path) -> PathBuf {
    super::steps::beside(datadir, "pgclone-journal")
}

/// The journal of the clone under way.
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// Written once the target is ready (its parent exists), before anything
    /// is put in it: which process clones, into which directories. `None`
    /// when it cannot be written (a parent directory pgclone may not write
    /// to): the clone goes on, a killed one is then only recognised by its
    /// staging directory's name.
    pub fn begin(datadir: &Path, dirs: &[PathBuf]) -> Option<Journal> {
        let path = journal_path(datadir);
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut text = format!(
            "pid={}\nstarted={started}\ntarget={}\n",
            std::process::id(),
            datadir.display()
        );
        for d in dirs {
            text.push_str(&format!("dir={}\n", d.display()));
        }
        let j = Journal { path };
        j.append(&text, true).ok()?;
        Some(j)
    }

    /// The clone made replication slot `slot`: a killed clone leaves it.
    pub fn slot_created(&self, slot: &str) {
        let _ = self.append(&format!("slot={slot}\n"), false);
    }

    /// Synced: a power cut must not lose a line that names a slot.
    fn append(&self, text: &str, create: bool) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create_new(create)
            .mode(0o600)
            .open(&self.path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    }

    /// The clone ended and its rollback (if any) is done: nothing to repair.
    pub fn end(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What an interrupted clone into a target left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftover {
    /// Its journal, when it has one (older pgclone versions wrote none).
    pub journal: Option<PathBuf>,
    pub pid: Option<i32>,
    /// Seconds since it started.
    pub age: Option<u64>,
    /// Directories it filled besides the target (tablespaces, --waldir).
    pub dirs: Vec<PathBuf>,
    /// The replication slot it made.
    pub slot: Option<String>,
    /// Its staging directory, when it is still there.
    pub staging: Option<PathBuf>,
}

/// What an interrupted clone into `datadir` left, if anything. Refuses when
/// the journal's clone is still running, and a staging directory that is
/// not a plain directory or holds a running server (never removed).
pub fn find(datadir: &Path) -> Result<Option<Leftover>, Failure> {
    let journal = journal_path(datadir);
    let staging = staging_dir(datadir);
    let staged = std::fs::symlink_metadata(&staging).ok();
    let text = std::fs::read_to_string(&journal).ok();
    if text.is_none() && staged.is_none() {
        return Ok(None);
    }
    let mut l = Leftover {
        journal: text.as_ref().map(|_| journal.clone()),
        ..Leftover::default()
    };
    for line in text.as_deref().unwrap_or("").lines() {
        match line.split_once('=') {
            Some(("pid", v)) => l.pid = v.parse().ok(),
            Some(("started", v)) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                l.age = v.parse::<u64>().ok().map(|s| now.saturating_sub(s));
            }
            Some(("dir", v)) => l.dirs.push(PathBuf::from(v)),
            Some(("slot", v)) => l.slot = Some(v.to_string()),
            _ => {}
        }
    }
    if let Some(pid) = l.pid.filter(|p| is_pgclone(*p)) {
        return Err(Failure::new(format!(
            "another pgclone (PID {pid}) is cloning into \"{}\"",
            datadir.display()
        ))
        .detail(format!("its journal is \"{}\"", journal.display()))
        .hint("wait for it to end, or stop it; it undoes what it did when it stops"));
    }
    if let Some(m) = staged {
        if !m.is_dir() {
            return Err(Failure::new(format!(
                "\"{}\" is in the way of the staging directory",
                staging.display()
            ))
            .detail("it is not a directory pgclone made (a symbolic link or a file)")
            .hint("remove it yourself; pgclone does not remove what it did not make"));
        }
        if let Some(pid) = server_below(&staging) {
            return Err(Failure::new(format!(
                "a PostgreSQL server (PID {pid}) runs inside the staging directory \"{}\"",
                staging.display()
            ))
            .hint("stop that server; pgclone never removes a running server's directory"));
        }
        l.staging = Some(staging);
    }
    Ok(Some(l))
}

/// A live process named pgclone (a dead clone's PID may have been reused).
fn is_pgclone(pid: i32) -> bool {
    pid > 0
        && pid as u32 != std::process::id()
        && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "pgclone")
}

/// The PID of a postmaster running in `dir` or up to two levels below it
/// (the staged backups and the combined output).
fn server_below(dir: &Path) -> Option<i32> {
    let mut level = vec![dir.to_path_buf()];
    for _ in 0..3 {
        let mut next = Vec::new();
        for d in &level {
            if let Some(p) = safety::live_pid_file(d) {
                return Some(p.pid);
            }
            let Ok(rd) = std::fs::read_dir(d) else {
                continue;
            };
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    next.push(e.path());
                }
            }
        }
        level = next;
    }
    None
}

impl Leftover {
    /// "the clone interrupted earlier (pgclone PID 123, started 4 min ago)".
    pub fn who(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.pid {
            parts.push(format!("pgclone PID {p}"));
        }
        if let Some(a) = self.age {
            parts.push(format!("started {} ago", human_age(a)));
        }
        if parts.is_empty() {
            "a clone interrupted earlier".into()
        } else {
            format!("the clone interrupted earlier ({})", parts.join(", "))
        }
    }

    /// Whether the interrupted clone filled `dir` (a tablespace, --waldir).
    pub fn filled(&self, dir: &Path) -> bool {
        let dir = safety::normalize(dir);
        self.dirs.iter().any(|d| safety::normalize(d) == dir)
    }

    /// Removes the staging directory and the journal (the target, the
    /// directories and the slot are the clone's own actions' to repair);
    /// says what was removed.
    pub fn remove(&self) -> Result<Vec<String>, Failure> {
        let mut done = Vec::new();
        if let Some(s) = &self.staging {
            std::fs::remove_dir_all(s).map_err(|e| {
                Failure::new(format!(
                    "could not remove the staging directory \"{}\"",
                    s.display()
                ))
                .detail(e.to_string())
            })?;
            done.push(format!(
                "the staging directory \"{}\" left by {} was removed",
                s.display(),
                self.who()
            ));
        }
        if let Some(j) = &self.journal {
            let _ = std::fs::remove_file(j);
        }
        Ok(done)
    }
}

fn human_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_names_what_a_killed_clone_left() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("main");
        assert_eq!(find(&data).unwrap(), None);
        let j = Journal::begin(&data, &[t.path().join("ts")]).unwrap();
        j.slot_created("repmgr_slot_2");
        // This process is alive but is the one asking: not "another pgclone".
        let l = find(&data).unwrap().unwrap();
        assert_eq!(l.pid, Some(std::process::id() as i32));
        assert_eq!(l.slot.as_deref(), Some("repmgr_slot_2"));
        assert!(l.filled(&t.path().join("ts/")));
        assert!(!l.filled(&t.path().join("other")));
        assert_eq!(l.staging, None);
        assert!(l
            .who()
            .starts_with("the clone interrupted earlier (pgclone PID"));
        j.end();
        assert_eq!(find(&data).unwrap(), None);
    }

    #[test]
    fn a_staging_directory_alone_is_recognised_and_removed() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("main");
        let staging = staging_dir(&data);
        std::fs::create_dir_all(staging.join("output/global")).unwrap();
        std::fs::write(staging.join("output/PG_VERSION"), "17\n").unwrap();
        let l = find(&data).unwrap().unwrap();
        assert_eq!(l.staging.as_deref(), Some(staging.as_path()));
        assert_eq!(l.journal, None);
        let said = l.remove().unwrap();
        assert!(
            said[0].contains("left by a clone interrupted earlier"),
            "{said:?}"
        );
        assert!(!staging.exists());
    }

    #[test]
    fn a_link_in_place_of_the_staging_directory_is_never_removed() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("main");
        let victim = t.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::os::unix::fs::symlink(&victim, staging_dir(&data)).unwrap();
        let e = find(&data).unwrap_err();
        assert!(
            e.to_string()
                .contains("in the way of the staging directory"),
            "{e}"
        );
        assert!(victim.exists());
    }
}
