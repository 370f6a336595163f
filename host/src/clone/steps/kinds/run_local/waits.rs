//! What pg_basebackup's messages say it waits for: the upstream's checkpoint
//! before the first byte, which without `-c fast` the upstream spreads over
//! minutes (a copy that seems to crawl). pgclone's plan runs it with
//! `--verbose` for this; the `--progress`-only form is read too.

/// One line of pg_basebackup's standard error.
#[derive(Debug, PartialEq, Eq)]
pub enum Said {
    /// The upstream is checkpointing; the copy starts after it.
    WaitsForCheckpoint,
    CheckpointDone,
    /// The upstream waits for its archive_command to archive the WAL the
    /// backup needs (`-X none`): the server's NOTICE after 5 s, its
    /// WARNING each minute.
    WaitsForArchiving,
    ArchivingDone,
    /// Its `--verbose` account of what it does (shown with -v).
    Info,
    /// Anything else (a warning, an error): shown as it is.
    Other,
}

/// The messages of `--verbose` (PostgreSQL 10 to 18) that report, not warn.
const INFO: &[&str] = &[
    "initiating base backup",
    "checkpoint completed",
    "write-ahead log start point",
    "write-ahead log end point",
    "transaction log start point",
    "transaction log end point",
    "starting background WAL receiver",
    "starting background write-ahead log receiver",
    "created temporary replication slot",
    "created replication slot",
    "waiting for background process to finish streaming",
    "syncing data to disk",
    "renaming backup_manifest",
    "base backup completed",
];

pub fn read(line: &str) -> Said {
    let line = line.trim();
    if line.contains("waiting for required WAL segments to be archived")
        || line.contains("still waiting for all required WAL segments to be archived")
    {
        return Said::WaitsForArchiving;
    }
    if line.contains("all required WAL segments have been archived") {
        return Said::ArchivingDone;
    }
    if line == "waiting for checkpoint" || line.ends_with("waiting for checkpoint to complete") {
        return Said::WaitsForCheckpoint;
    }
    let Some(text) = line.strip_prefix("pg_basebackup: ") else {
        return Said::Other;
    };
    if text == "checkpoint completed" {
        return Said::CheckpointDone;
    }
    match INFO.iter().any(|m| text.starts_with(m)) {
        true => Said::Info,
        false => Said::Other,
    }
}

/// Whether pg_basebackup's arguments ask for a fast checkpoint
/// (`-c fast`, `-cfast`, `--checkpoint fast`, `--checkpoint=fast`).
pub fn fast_checkpoint(args: &[String]) -> bool {
    let mut fast = false;
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let value = match a.as_str() {
            "-c" | "--checkpoint" => it.next().map(String::as_str),
            _ => a
                .strip_prefix("--checkpoint=")
                .or_else(|| a.strip_prefix("-c").filter(|v| !v.is_empty() && !a.starts_with("--"))),
        };
        if let Some(v) = value {
            fast = v == "fast";
        }
    }
    fast
}

/// The NOTICE (and hint) for a checkpoint wait that lasts.
pub fn checkpoint_notice(fast: bool) -> (String, Option<String>) {
    if fast {
        return (
            "waiting for the upstream's checkpoint (fast) before the copy starts".into(),
            None,
        );
    }
    (
        "waiting for the upstream's checkpoint before the copy starts: it is a spread checkpoint, \
         paced over checkpoint_completion_target of checkpoint_timeout"
            .into(),
        Some(
            "-c/--fast-checkpoint asks the upstream for an immediate checkpoint, at the cost of a \
             burst of writes there (patroni-replica: checkpoint: fast in the method's section)"
                .into(),
        ),
    )
}

/// The NOTICE (and hint) for an archiving wait that lasts.
pub fn archiving_notice() -> (String, Option<String>) {
    (
        "waiting for the upstream's archive_command to archive the WAL the backup needs".into(),
        Some(
            "pg_basebackup -X stream (pgclone's default, unless pg_basebackup_options sets -X) \
             copies that WAL itself; check the upstream's archive_command"
                .into(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pg_basebackup_s_messages() {
        assert_eq!(
            read("pg_basebackup: initiating base backup, waiting for checkpoint to complete"),
            Said::WaitsForCheckpoint
        );
        assert_eq!(read("waiting for checkpoint"), Said::WaitsForCheckpoint);
        assert_eq!(read("pg_basebackup: checkpoint completed"), Said::CheckpointDone);
        assert_eq!(
            read("pg_basebackup: write-ahead log start point: 0/2000028 on timeline 1"),
            Said::Info
        );
        assert_eq!(read("pg_basebackup: error: could not connect"), Said::Other);
        assert_eq!(
            read("NOTICE:  base backup done, waiting for required WAL segments to be archived"),
            Said::WaitsForArchiving
        );
        assert_eq!(
            read("WARNING:  still waiting for all required WAL segments to be archived (60 seconds elapsed)"),
            Said::WaitsForArchiving
        );
        assert_eq!(
            read("NOTICE:  all required WAL segments have been archived"),
            Said::ArchivingDone
        );
        assert_eq!(read("pg_basebackup: could not connect to server"), Said::Other);
    }

    #[test]
    fn finds_a_fast_checkpoint_in_any_spelling() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(fast_checkpoint(&v(&["--checkpoint", "fast"])));
        assert!(fast_checkpoint(&v(&["-c", "fast"])));
        assert!(fast_checkpoint(&v(&["-cfast"])));
        assert!(fast_checkpoint(&v(&["--checkpoint=fast"])));
        assert!(!fast_checkpoint(&v(&["--checkpoint=fast", "-c", "spread"])));
        assert!(!fast_checkpoint(&v(&["--pgdata", "/d"])));
    }
}
