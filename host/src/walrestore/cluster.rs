//! What PostgreSQL is restoring for: the data directory (PostgreSQL runs
//! restore_command with its data directory as the working directory, and
//! pg_rewind passes `<data directory>/pg_wal/<name>` as %p), the cluster's
//! system identifier, and whether this is a targeted recovery, where every
//! failing status up to 125 ends recovery and promotes.

use std::path::{Path, PathBuf};

/// The recovery a restore_command call serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    /// The data directory, when one was found.
    pub data_dir: Option<PathBuf>,
    /// The system identifier from its global/pg_control.
    pub sysid: Option<u64>,
    /// Its WAL segment size from global/pg_control: no file of its archive
    /// is larger.
    pub seg_size: Option<u64>,
    /// Archive recovery outside standby mode (PITR): a failure must not look
    /// like the end of the archive.
    pub targeted: bool,
}

impl Cluster {
    /// Looks at %p's data directory (`.../pg_wal/X`), else the working
    /// directory. `rewind`: pg_rewind's call, which is no recovery.
    pub fn detect(dest: &Path, rewind: bool) -> Cluster {
        let Some(dir) = data_dir_of(dest) else {
            return Cluster::default();
        };
        let (sysid, seg_size) = super::verify::control_facts(&dir);
        let targeted = !rewind && targeted_recovery(&dir);
        Cluster {
            data_dir: Some(dir),
            sysid,
            seg_size,
            targeted,
        }
    }

    /// The most bytes a file of this cluster's archive can have: its segment
    /// size, or the largest PostgreSQL allows when that is not known.
    pub fn file_bound(&self) -> u64 {
        self.seg_size.unwrap_or(crate::wal::MAX_SIZE)
    }
}

fn is_data_dir(dir: &Path) -> bool {
    dir.join("PG_VERSION").is_file()
}

fn data_dir_of(dest: &Path) -> Option<PathBuf> {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(wal_dir) = parent {
        if wal_dir
            .file_name()
            .is_some_and(|n| n == "pg_wal" || n == "pg_xlog")
        {
            let dir = match wal_dir.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if is_data_dir(&dir) {
                return Some(dir);
            }
        }
    }
    let cwd = PathBuf::from(".");
    is_data_dir(&cwd).then_some(cwd)
}

/// PostgreSQL 12+: recovery.signal without standby.signal. Up to 11:
/// recovery.conf without `standby_mode = on`.
fn targeted_recovery(dir: &Path) -> bool {
    let version = std::fs::read_to_string(dir.join("PG_VERSION")).unwrap_or_default();
    let major: u32 = version
        .trim()
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major >= 12 {
        return dir.join("recovery.signal").exists() && !dir.join("standby.signal").exists();
    }
    match std::fs::read_to_string(dir.join("recovery.conf")) {
        Ok(text) => !standby_mode_on(&text),
        Err(_) => false,
    }
}

/// `standby_mode = on` (or true, yes, 1, quoted or not) in a recovery.conf;
/// the last setting wins, as in PostgreSQL.
fn standby_mode_on(text: &str) -> bool {
    let mut on = false;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((k, v)) = line
            .split_once('=')
            .or_else(|| line.split_once(char::is_whitespace))
        else {
            continue;
        };
        if k.trim() != "standby_mode" {
            continue;
        }
        let v = v.trim().trim_matches('\'').to_ascii_lowercase();
        on = matches!(v.as_str(), "on" | "true" | "yes" | "1" | "t" | "y");
    }
    on
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir(version: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("PG_VERSION"), format!("{version}\n")).unwrap();
        std::fs::create_dir(t.path().join("pg_wal")).unwrap();
        for (f, text) in files {
            std::fs::write(t.path().join(f), text).unwrap();
        }
        t
    }

    fn detect(t: &tempfile::TempDir) -> Cluster {
        Cluster::detect(&t.path().join("pg_wal/RECOVERYXLOG"), false)
    }

    #[test]
    fn signal_files_tell_targeted_from_standby() {
        assert!(detect(&data_dir("15", &[("recovery.signal", "")])).targeted);
        let both = data_dir("15", &[("recovery.signal", ""), ("standby.signal", "")]);
        assert!(!detect(&both).targeted);
        assert!(!detect(&data_dir("15", &[("standby.signal", "")])).targeted);
        // pg_rewind's calls are no recovery.
        let t = data_dir("15", &[("recovery.signal", "")]);
        assert!(!Cluster::detect(&t.path().join("pg_wal/000000010000000000000003"), true).targeted);
    }

    #[test]
    fn recovery_conf_up_to_11() {
        let pitr = data_dir("11", &[("recovery.conf", "restore_command = 'x'\n")]);
        assert!(detect(&pitr).targeted);
        let standby = data_dir("11", &[("recovery.conf", "standby_mode = 'on'\n")]);
        assert!(!detect(&standby).targeted);
        let off = data_dir("10", &[("recovery.conf", "standby_mode=off # no\n")]);
        assert!(detect(&off).targeted);
        // recovery.conf means nothing to 12+.
        assert!(!detect(&data_dir("12", &[("recovery.conf", "")])).targeted);
    }

    #[test]
    fn system_identifier_from_pg_control() {
        let t = data_dir("15", &[]);
        std::fs::create_dir(t.path().join("global")).unwrap();
        let mut control = 7_123_456_789u64.to_le_bytes().to_vec();
        control.resize(8192, 0);
        std::fs::write(t.path().join("global/pg_control"), control).unwrap();
        assert_eq!(detect(&t).sysid, Some(7_123_456_789));
        // No floatFormat word: the size is not known, the bound is the largest.
        assert_eq!(detect(&t).seg_size, None);
        assert_eq!(detect(&t).file_bound(), 1 << 30);
        // A real pg_control of PostgreSQL 15 with 64 MiB segments (208: where
        // floatFormat is in 15's layout).
        let mut control = 7_123_456_789u64.to_le_bytes().to_vec();
        control.resize(8192, 0);
        control[208..216].copy_from_slice(&1234567.0f64.to_le_bytes());
        for (i, v) in [8192u32, 131072, 8192, 64 << 20].iter().enumerate() {
            control[216 + 4 * i..220 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        std::fs::write(t.path().join("global/pg_control"), control).unwrap();
        assert_eq!(detect(&t).seg_size, Some(64 << 20));
        // Not a data directory: nothing known.
        let other = tempfile::tempdir().unwrap();
        assert_eq!(
            Cluster::detect(&other.path().join("x/RECOVERYXLOG"), false),
            Cluster::default()
        );
    }
}
