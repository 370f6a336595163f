//! Checks of the finished copy, before any recovery configuration is written.

use std::path::Path;

use tokio::io::AsyncReadExt;

use super::progress::{follow_records, Phase};
use crate::environment::HostEnv;
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
    // Read as bytes: a label (`pg_basebackup -l`) need not be UTF-8, and
    // read_to_string would then take the file for absent.
    let Ok(bytes) = std::fs::read(&label) else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&bytes);
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
    crate::report::info("verifying the copy with pg_verifybackup");
    // --progress is in pg_verifybackup 16 and later.
    let mut help = tokio::process::Command::new(&prog);
    help.arg("--help");
    crate::child::dies_with_parent(help.as_std_mut());
    let progress = help
        .output()
        .await
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--progress"));
    let mut cmd = tokio::process::Command::new(&prog);
    if progress {
        cmd.arg("--progress");
    }
    cmd.arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    crate::child::bound(cmd.as_std_mut());
    crate::report::running(cmd.as_std());
    let mut child = cmd.spawn().map_err(|e| {
        Failure::new(format!("could not run \"{}\"", prog.display())).detail(e.to_string())
    })?;
    let phase = Phase::start("verify", None);
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let mut out = Vec::new();
    let mut errors = String::new();
    let read_err = async {
        let add = |line: &str| {
            errors.push_str(line);
            errors.push('\n');
        };
        let rest = follow_records(stderr, &phase, add, |_| {}).await;
        errors.push_str(String::from_utf8_lossy(&rest).trim_end());
    };
    let (_, _) = tokio::join!(read_err, stdout.read_to_end(&mut out));
    let pid = child.id();
    let status = child.wait().await?;
    if let Some(p) = pid {
        crate::child::reaped(p);
    }
    if !status.success() {
        return Err(Failure::new("pg_verifybackup found problems in the copy")
            .detail(errors.trim().to_string())
            .into());
    }
    if phase.done() == 0 {
        phase.set(super::steps::tree_bytes(&[dir.to_path_buf()]));
    }
    phase.finish();
    crate::report::info("pg_verifybackup: backup successfully verified");
    Ok(())
}

/// Checks unpacked archives against the backup's `backup_manifest`, when it
/// has one, with PostgreSQL's own `pg_verifybackup`: it knows every manifest
/// version and checksum algorithm, and checks each file's size and checksum
/// and that none is missing or extra. `-n`: a Barman backup holds no WAL (the
/// standby gets it through restore_command or streaming).
/// `-i tablespace_map`: the plan rewrites it with the mapped locations. The
/// tablespaces are reached through `pg_tblspc/OID` links made here (the server
/// makes them again from `tablespace_map` when it starts).
pub async fn verify_unpacked(
    env: &HostEnv,
    dir: &Path,
    version: u32,
    tablespaces: &std::collections::BTreeMap<u32, std::path::PathBuf>,
) -> anyhow::Result<()> {
    if !dir.join("backup_manifest").is_file() {
        report::notice(
            "the backup has no backup_manifest: the unpacked files cannot be checked against it",
        );
        return Ok(());
    }
    let prog = env.find_program("pg_verifybackup").ok_or_else(|| {
        Failure::new("program \"pg_verifybackup\" not found")
            .detail("the unpacked backup must be checked against its backup_manifest before it is configured as a standby")
            .hint("set pg_bindir in the configuration file to the PostgreSQL binaries of the backup's version")
    })?;
    for (oid, loc) in tablespaces {
        let link = dir.join("pg_tblspc").join(oid.to_string());
        if std::fs::symlink_metadata(&link).is_err() {
            std::fs::create_dir_all(dir.join("pg_tblspc"))?;
            std::os::unix::fs::symlink(loc, &link).map_err(|e| {
                Failure::new(format!("could not create link \"{}\"", link.display()))
                    .detail(e.to_string())
            })?;
        }
    }
    crate::report::info(&format!(
        "verifying the unpacked backup against its backup_manifest with pg_verifybackup (PostgreSQL {})",
        version / 10000
    ));
    let mut cmd = tokio::process::Command::new(&prog);
    cmd.args(["--no-parse-wal", "--ignore", "tablespace_map", "--quiet"])
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    crate::child::bound(cmd.as_std_mut());
    crate::report::running(cmd.as_std());
    let could_not = |e: std::io::Error| {
        Failure::new(format!("could not run \"{}\"", prog.display())).detail(e.to_string())
    };
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(could_not)?;
    let pid = child.id();
    let out = child.wait_with_output().await.map_err(could_not)?;
    if let Some(p) = pid {
        crate::child::reaped(p);
    }
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut detail = lines[..lines.len().min(10)].join("\n");
        if lines.len() > 10 {
            detail.push_str(&format!("\n... and {} more lines", lines.len() - 10));
        }
        return Err(Failure::new(
            "the unpacked backup does not match its backup_manifest",
        )
        .detail(detail)
        .hint("the backup is damaged or pg_bindir's pg_verifybackup is of another PostgreSQL version; check the backup on the Barman host (barman check-backup)")
        .into());
    }
    crate::report::info("pg_verifybackup: backup successfully verified");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_that_is_not_utf8_is_still_checked() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("backup_label"),
            b"START WAL LOCATION: 0/8000028 (file 000000010000000000000008)\nLABEL: caf\xe9\nINCREMENTAL FROM LSN: 0/6000028\n",
        )
        .unwrap();
        assert!(verify_not_incremental(t.path()).is_err());
        std::fs::write(t.path().join("backup_label"), b"LABEL: caf\xe9\n").unwrap();
        assert!(verify_not_incremental(t.path()).is_ok());
    }
}
