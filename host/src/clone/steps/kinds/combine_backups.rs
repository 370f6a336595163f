//! `combine-backups`: a PostgreSQL 17+ incremental backup chain, copied by
//! earlier steps into subdirectories of the staging directory, combined into
//! the data directory with `pg_combinebackup` of the backup's major version.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::super::validate::beside;
use super::super::{confined, Kind, Running, Step, Validation};
use crate::child::Supervised;
use crate::contract::source::{CombineBackupsStep, PathRoot, PlanStep};
use crate::report::Failure;

#[derive(Debug, Clone)]
pub struct CombineBackups {
    /// `pg_combinebackup`, found through `pg_bindir` or `PATH`.
    pub program: PathBuf,
    /// The chain, oldest (the full backup) first, in the staging directory.
    pub backups: Vec<PathBuf>,
    /// The data directory.
    pub output: PathBuf,
}

/// True when the plan combines an incremental backup chain: the clone then
/// gets a staging directory.
pub fn combines(plan: &[PlanStep]) -> bool {
    plan.iter()
        .any(|s| matches!(s, PlanStep::CombineBackups(_)))
}

/// The staging directory of a clone into `datadir`: beside it, on the same
/// file system.
pub fn staging_dir(datadir: &Path) -> PathBuf {
    beside(datadir, "pgclone-staging")
}

impl Kind for CombineBackups {
    type Asked = CombineBackupsStep;

    fn check(c: &CombineBackupsStep, v: &Validation<'_>) -> Result<Self, Failure> {
        if c.backups.len() < 2 {
            return Err(v.malformed(format!("a combine-backups step of {} (a chain has a full backup and at least one incremental)", crate::report::count(c.backups.len(), "backup", "backups"))));
        }
        let mut backups = Vec::new();
        for b in &c.backups {
            if !matches!(b.root, PathRoot::Staging) || b.path.is_empty() {
                return Err(v.malformed(format!("combine-backups: backup \"{}\" is not a subdirectory of the staging directory", b.path.escape_debug())));
            }
            let p = v.resolve(b)?;
            if backups.contains(&p) {
                return Err(v.malformed(format!(
                    "combine-backups names \"{}\" twice",
                    b.path.escape_debug()
                )));
            }
            backups.push(p);
        }
        if !v.tablespaces.is_empty() {
            return Err(Failure::new(format!("plugin \"{}\" plans to combine an incremental backup chain with tablespaces, which pgclone cannot do yet", v.plugin))
                .detail(format!("tablespaces {}", v.tablespaces.keys().map(u32::to_string).collect::<Vec<_>>().join(", ")))
                .hint("clone from a full backup (--backup-id), or restore this chain with the backup tool"));
        }
        let program = v.env.find_program("pg_combinebackup").ok_or_else(|| {
            Failure::new("program \"pg_combinebackup\" not found")
                .detail("the backup is an incremental one: it must be combined with the backups it is based on")
                .hint("set pg_bindir in the configuration file to the binaries of PostgreSQL 17 or later, of the backup's version")
        })?;
        Ok(CombineBackups {
            program,
            backups,
            output: v.datadir.to_path_buf(),
        })
    }

    fn describe(&self) -> Vec<String> {
        let mut line = format!(
            "combine {} backups (the full one, then each incremental) into {} with {}, then verify it with pg_verifybackup:",
            self.backups.len(),
            self.output.display(),
            self.program.display()
        );
        for b in &self.backups {
            line.push_str(&format!(" {}", b.display()));
        }
        vec![line]
    }

    async fn run(&self, r: &mut Running<'_>) -> anyhow::Result<()> {
        combine(self, &r.ctx.roots).await
    }
}

/// `pg_combinebackup BACKUPS... -o OUTPUT`, after checking that every backup
/// of the chain has what it needs.
async fn combine(c: &CombineBackups, roots: &[PathBuf]) -> anyhow::Result<()> {
    let (program, backups, output) = (&c.program, &c.backups, &c.output);
    confined(output, roots)?;
    for b in backups {
        confined(b, roots)?;
        if !b.join("backup_manifest").is_file() || !b.join("backup_label").is_file() {
            return Err(Failure::new(format!(
                "backup \"{}\" of the chain has no backup_manifest or backup_label",
                b.display()
            ))
            .detail("pg_combinebackup needs both in every backup of the chain")
            .into());
        }
    }
    crate::report::notice(&format!(
        "combining {} backups into \"{}\" with pg_combinebackup",
        backups.len(),
        output.display()
    ));
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(options(backups, output))
        .args(backups)
        .arg("-o")
        .arg(output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    crate::child::bound(cmd.as_std_mut());
    crate::report::running(cmd.as_std());
    let started = std::time::Instant::now();
    let child = cmd.spawn().map_err(|e| {
        Failure::new(format!("could not run \"{}\"", program.display())).detail(e.to_string())
    })?;
    let mut group = Supervised::of(&child);
    let out = child.wait_with_output().await?;
    group.finished();
    if out.status.success() {
        crate::report::info(&crate::clone::progress::summary(
            "combine",
            super::super::tree_bytes(std::slice::from_ref(output)),
            started.elapsed(),
        ));
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let detail = lines[lines.len().saturating_sub(8)..].join("\n");
    Err(Failure::new(format!(
        "pg_combinebackup {}: the backup chain could not be combined",
        crate::report::exit_text(&out.status)
    ))
    .detail(crate::report::escape_block(&detail))
    .hint("check the chain on the backup server (a backup missing or damaged, or one not based on the one before it)")
    .into())
}

/// pg_combinebackup's options for this clone.
///
/// `--no-sync`: the combined directory is not fsynced file by file (most of
/// the combine's time). No copy of a clone is (rsync, unpacked archives):
/// PostgreSQL fsyncs the whole data directory when it starts from a backup
/// (its pg_control says the cluster was running, so the startup process
/// syncs everything before it replays), and the recovery configuration,
/// written last, is fsynced.
///
/// `--copy-file-range` when the chain and the output are on one file
/// system: the files a backup holds whole are copied by the kernel (a
/// reflink on XFS or Btrfs: no bytes copied, no room taken twice); across
/// file systems copy_file_range may fail, so a plain copy.
fn options(backups: &[PathBuf], output: &Path) -> Vec<&'static str> {
    let mut v = vec!["--no-sync"];
    if one_file_system(backups, output) {
        v.push("--copy-file-range");
    }
    v
}

/// True when every path is on the file system of `output`.
fn one_file_system(paths: &[PathBuf], output: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).ok().map(|m| m.dev());
    let Some(out) = dev(output) else {
        return false;
    };
    paths.iter().all(|p| dev(p) == Some(out))
}

/// The major version of a PostgreSQL tool, from `TOOL --version`
/// (`pg_combinebackup (PostgreSQL) 17.6`).
fn tool_major(program: &Path) -> Result<u32, Failure> {
    let mut cmd = std::process::Command::new(program);
    cmd.arg("--version").stdin(Stdio::null());
    let out = crate::child::dies_with_parent(&mut cmd)
        .output()
        .map_err(|e| {
            Failure::new(format!("could not run \"{}\"", program.display())).detail(e.to_string())
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .last()
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|m| m.parse().ok())
        .filter(|_| out.status.success())
        .ok_or_else(|| {
            Failure::new(format!(
                "cannot tell the version of \"{}\"",
                program.display()
            ))
            .detail(format!(
                "--version printed \"{}\"",
                crate::report::escape(text.trim())
            ))
        })
}

/// A plan's `pg_combinebackup` is of the backup's major version (17 or later):
/// checked before anything is copied.
pub fn check_combine_tool(steps: &[Step], backup_version: u32) -> Result<(), Failure> {
    for s in steps {
        if let Step::CombineBackups(c) = s {
            let major = tool_major(&c.program)?;
            let want = backup_version / 10000;
            if major < 17 || major != want {
                return Err(Failure::new(format!(
                    "\"{}\" is of PostgreSQL {major}; the incremental backup chain needs pg_combinebackup of PostgreSQL {want}",
                    c.program.display()
                ))
                .detail(if major < 17 {
                    "pg_combinebackup first came with PostgreSQL 17".to_string()
                } else {
                    "pg_combinebackup combines backups of its own major version only".to_string()
                })
                .hint(format!("set pg_bindir in the configuration file to the binaries of PostgreSQL {want}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// --no-sync always; --copy-file-range only when the chain and the
    /// output are on one file system (a path that cannot be read is taken
    /// for another one).
    #[test]
    fn copy_file_range_only_within_one_file_system() {
        let t = tempfile::tempdir().unwrap();
        let (a, out) = (t.path().join("00"), t.path().join("out"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&out).unwrap();
        assert_eq!(
            options(std::slice::from_ref(&a), &out),
            ["--no-sync", "--copy-file-range"]
        );
        assert_eq!(
            options(&[a.clone(), t.path().join("missing")], &out),
            ["--no-sync"]
        );
        assert_eq!(options(&[a], Path::new("/proc")), ["--no-sync"]);
    }
}
