//! WAL while the copy runs: when the standby's restore_command is `pgclone
//! wal-restore`, the clone asks it (`--warm-from`) to start its prefetcher
//! at the backup's first segment before the copy begins, so that the WAL
//! written since the backup is in the spool PostgreSQL's restore_command
//! reads by the time the server starts, and replay begins from local files.
//!
//! The restore_command itself decides where: the same source, the same spool
//! directory, the same checks; the clone only names the first segment and
//! the segment size, and runs it in the target directory, as PostgreSQL
//! runs restore_command in its data directory: the warm-up's cursor is the
//! one the standby's requests move once it starts. Another standby of the
//! same source on the host shares the spool and its prefetcher, which then
//! serves both (the clone says so). Nothing here can fail the clone: a
//! clone run by another user than the data directory's owner (the spool
//! must be the standby's user's), or a warm-up that does not start
//! (prefetching turned off, a source that cannot be prefetched or reached)
//! only means PostgreSQL fetches the WAL itself, as without this; the plan
//! listed the warm-up, so a WARNING says why not.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::contract::source::Backup;
use crate::report::Failure;
use crate::wal;

/// A running warm-up: the spool directory it fills, its prefetcher, and
/// its cursor there.
pub struct Warm {
    pub spool: PathBuf,
    pub pid: Option<i32>,
    /// The backup's first segment.
    pub first: String,
    cursor: Option<PathBuf>,
    /// The prefetcher ran already (another standby's).
    pub joined: bool,
    /// The other standbys it serves, in the warm-up's words.
    pub shared: Vec<String>,
}

/// The `pgclone wal-restore` argv of `restore_command` with `--warm-from`
/// added, when it is pgclone's; none otherwise.
pub fn warm_argv(
    restore_command: &str,
    begin_wal: &str,
    seg_size: u64,
    window: usize,
) -> Option<Vec<String>> {
    let words = shell_words::split(restore_command).ok()?;
    let program = Path::new(words.first()?);
    let ours = program.file_name().is_some_and(|f| f == "pgclone")
        || std::env::current_exe()
            .ok()
            .zip(program.canonicalize().ok())
            .is_some_and(|(a, b)| a == b);
    let at = words
        .iter()
        .position(|w| w == "wal-restore" || w == "barman-cloud-wal-restore")?;
    if !ours || at == 0 {
        return None;
    }
    let mut argv: Vec<String> = words[1..=at].to_vec();
    argv.extend([
        "--warm-from".to_string(),
        begin_wal.to_string(),
        "--wal-segment-size".into(),
        seg_size.to_string(),
        "--warm-segments".into(),
        window.to_string(),
    ]);
    for w in &words[at + 1..] {
        argv.push(match w.as_str() {
            "%f" => begin_wal.to_string(),
            // Never written: a warm-up delivers nothing.
            "%p" => "-".to_string(),
            other => other.to_string(),
        });
    }
    Some(argv)
}

/// Starts the warm-up of `window` segments (`clone_wal_prefetch`; 0: none)
/// for a clone of `backup` into `data_dir` whose recovery configuration sets
/// `restore_command`; says what it did, and when the plan listed it but it
/// cannot start, a WARNING says why and what to do.
pub fn start(
    restore_command: &str,
    backup: &Backup,
    data_dir: &Path,
    window: usize,
) -> Option<Warm> {
    if window == 0 {
        return None;
    }
    match try_start(restore_command, backup, data_dir, window) {
        Ok(warm) => {
            crate::report::info(&format!(
                "fetching the WAL since the backup (from {}) into restore_command's spool while the copy runs{}",
                backup.begin_wal,
                warm.holder()
            ));
            Some(warm)
        }
        Err(why) => {
            skipped(&why);
            None
        }
    }
}

/// The WARNING for a warm-up the plan promised that does not run.
fn skipped(why: &Failure) {
    let consequence = "PostgreSQL fetches the WAL since the backup through restore_command once \
                       the standby starts, one request at a time: replay takes longer";
    let detail = match &why.detail {
        Some(d) => format!("{d}\n{consequence}"),
        None => consequence.to_string(),
    };
    crate::report::warning(
        &format!(
            "the WAL warm-up is skipped: {}\nDETAIL: {detail}",
            why.message
        ),
        why.hint.as_deref(),
    );
}

fn try_start(
    restore_command: &str,
    backup: &Backup,
    data_dir: &Path,
    window: usize,
) -> Result<Warm, Failure> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(data_dir)
        .map_err(|e| {
            Failure::new(format!("cannot read \"{}\"", data_dir.display())).detail(e.to_string())
        })?
        .uid();
    let me = unsafe { libc::geteuid() };
    if owner != me {
        return Err(Failure::new(format!(
            "the clone runs as {}, but \"{}\" belongs to {}, whose restore_command's spool it would fill",
            user_name(me),
            data_dir.display(),
            user_name(owner)
        ))
        .hint(format!(
            "run the clone as {} (the standby's user), e.g. with sudo -u {0}",
            user_name(owner)
        )));
    }
    let seg_size =
        wal::size_from_lsn(&backup.begin_lsn, &backup.begin_wal).unwrap_or(wal::DEFAULT_SIZE);
    let argv = warm_argv(restore_command, &backup.begin_wal, seg_size, window)
        .ok_or_else(|| Failure::new("restore_command is not pgclone's wal-restore"))?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new("cannot find pgclone's own program").detail(e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    // Its standard error says why it did not start; the prefetcher it
    // starts has no standard streams, so the pipes end with the starter.
    // In the target, as PostgreSQL runs restore_command: the same cursor.
    cmd.args(&argv).current_dir(data_dir).stdin(Stdio::null());
    // The prefetcher it leaves running is detached on purpose (it serves the
    // standby's restore_command afterwards); this starter dies with pgclone.
    crate::child::dies_with_parent(&mut cmd);
    crate::report::running(&cmd);
    let out = cmd.output().map_err(|e| {
        Failure::new("could not run restore_command's warm-up").detail(e.to_string())
    })?;
    if !out.status.success() {
        return Err(starter_failure(
            &String::from_utf8_lossy(&out.stderr),
            &out.status,
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
    };
    Ok(Warm {
        spool: PathBuf::from(
            field("spool=").ok_or_else(|| Failure::new("the warm-up named no spool directory"))?,
        ),
        pid: field("pid=").and_then(|p| p.parse().ok()),
        first: backup.begin_wal.clone(),
        cursor: field("cursor=").map(PathBuf::from),
        joined: field("joined=").as_deref() == Some("yes"),
        shared: text
            .lines()
            .filter_map(|l| l.strip_prefix("shared="))
            .map(str::to_string)
            .collect(),
    })
}

/// What the warm-up's `ERROR: pgclone wal-restore: no warm-up: ...` (with
/// its DETAIL and HINT) says, as a failure of the clone's own words.
fn starter_failure(stderr: &str, status: &std::process::ExitStatus) -> Failure {
    let mut f = Failure::new(format!(
        "restore_command's warm-up {}",
        crate::report::exit_text(status)
    ));
    for line in stderr.lines() {
        if let Some(m) = line.strip_prefix("ERROR: ") {
            let m = m.strip_prefix("pgclone wal-restore: ").unwrap_or(m);
            f.message = m.strip_prefix("no warm-up: ").unwrap_or(m).to_string();
        } else if let Some(d) = line.strip_prefix("DETAIL: ") {
            f.detail = Some(d.to_string());
        } else if let Some(h) = line.strip_prefix("HINT: ") {
            f.hint = Some(h.to_string());
        }
    }
    f
}

/// A user's name (its uid when it has none).
fn user_name(uid: u32) -> String {
    let pw = unsafe { libc::getpwuid(uid) };
    if pw.is_null() {
        return format!("uid {uid}");
    }
    let name = unsafe { std::ffi::CStr::from_ptr((*pw).pw_name) };
    name.to_string_lossy().into_owned()
}

impl Warm {
    /// Who fills the spool: ` (prefetcher pid N)`, or, shared with other
    /// standbys, which and where they are.
    fn holder(&self) -> String {
        let pid = self.pid.map(|p| format!("pid {p}")).unwrap_or_default();
        if self.shared.is_empty() {
            return format!(" (prefetcher {pid})");
        }
        let how = if self.joined { "joined" } else { "started" };
        format!(
            "; it {how} the prefetcher ({pid}) that also serves {}",
            self.shared.join("; ")
        )
    }

    /// Segments of this backup's WAL in the spool now (the spool may hold
    /// other standbys' earlier ones).
    pub fn spooled(&self) -> usize {
        std::fs::read_dir(&self.spool)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.len() == 24
                    && n.chars().all(|c| c.is_ascii_hexdigit())
                    && *n >= *self.first.as_str()
            })
            .count()
    }

    /// The clone failed: its WAL is not wanted. Its cursor goes; the
    /// prefetcher, which may serve other standbys, ends by itself when it
    /// serves nobody.
    pub fn stop(&self) {
        if let Some(c) = &self.cursor {
            let _ = std::fs::remove_file(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pgclone_restore_commands_are_warmed() {
        let seg = "000000010000000000000004";
        let argv = warm_argv(
            "/usr/bin/pgclone -f '/etc/my node.conf' wal-restore --spool-dir /s %f \"%p\"",
            seg,
            16 << 20,
            64,
        )
        .unwrap();
        assert_eq!(
            argv,
            [
                "-f",
                "/etc/my node.conf",
                "wal-restore",
                "--warm-from",
                seg,
                "--wal-segment-size",
                "16777216",
                "--warm-segments",
                "64",
                "--spool-dir",
                "/s",
                seg,
                "-"
            ]
        );
        let bwr = warm_argv("pgclone wal-restore barmansrv pg %f %p", seg, 16 << 20, 8).unwrap();
        assert_eq!(&bwr[7..], ["barmansrv", "pg", seg, "-"]);
        for other in [
            "barman-wal-restore barmansrv pg %f %p",
            "ssh barmansrv barman get-wal pg %f > %p",
            "/bin/false %f %p",
            "pgclone standby clone",
            "'unterminated",
        ] {
            assert_eq!(warm_argv(other, seg, 16 << 20, 8), None, "{other}");
        }
    }
}
