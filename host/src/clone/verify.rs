//! Checks of the finished copy, before any recovery configuration is written.

use std::path::Path;

use crate::plugin::HostEnv;
use crate::report::{self, Failure};

/// The copy is a data directory.
pub fn verify_copy(dir: &Path) -> anyhow::Result<()> {
    for f in ["PG_VERSION", "global/pg_control"] {
        if !dir.join(f).is_file() {
            return Err(Failure::new("the copy is incomplete")
                .detail(format!("\"{}\" is missing", dir.join(f).display()))
                .into());
        }
    }
    Ok(())
}

/// The copy is not a PostgreSQL 17 incremental backup, which a source may
/// deliver as it is (its `backup_label` says `INCREMENTAL FROM LSN`):
/// PostgreSQL refuses to start one ("this is an incremental backup, not a
/// data directory"), so a clone that ends with one has failed.
pub fn verify_not_incremental(dir: &Path) -> anyhow::Result<()> {
    let label = dir.join("backup_label");
    let Ok(text) = std::fs::read_to_string(&label) else {
        return Ok(());
    };
    match text
        .lines()
        .find(|l| l.starts_with("INCREMENTAL FROM LSN:"))
    {
        Some(line) => Err(Failure::new("the copy is an incremental backup, not a data directory")
            .detail(format!(
                "\"{}\" says \"{}\": PostgreSQL would refuse to start it until it is combined with the backups it is based on",
                label.display(),
                report::escape(line.trim())
            ))
            .hint("combine the chain (the full backup and every incremental up to this one) with pg_combinebackup (PostgreSQL 17+) and clone from the result, or clone from a full backup")
            .into()),
        None => Ok(()),
    }
}

/// `pg_verifybackup` against the backup manifest (PostgreSQL 13+).
pub async fn verify_backup(env: &HostEnv, dir: &Path, version: u32) -> anyhow::Result<()> {
    if version < 130000 {
        report::warning(
            "--verify-backup needs PostgreSQL 13 or later; skipped",
            None,
        );
        return Ok(());
    }
    let prog = env.find_program("pg_verifybackup").ok_or_else(|| {
        Failure::new("program \"pg_verifybackup\" not found")
            .hint("set pg_bindir in the configuration file")
    })?;
    super::info("verifying the copy with pg_verifybackup");
    let mut cmd = tokio::process::Command::new(&prog);
    cmd.arg(dir);
    crate::report::running(cmd.as_std());
    let out = cmd.output().await?;
    if !out.status.success() {
        return Err(Failure::new("pg_verifybackup found problems in the copy")
            .detail(String::from_utf8_lossy(&out.stderr).trim().to_string())
            .into());
    }
    super::info("pg_verifybackup: backup successfully verified");
    Ok(())
}
