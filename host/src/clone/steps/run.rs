//! Running a validated plan, step by step.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use super::{confined, ExecContext, Step};
use crate::child::Supervised;
use crate::clone::progress::{follow_records, Phase};
use crate::clone::steps::copy_tree::{self, CopyStats};
use crate::clone::steps::unpack::{self, Archive};
use crate::report::Failure;

/// Runs the steps in order; stops at the first failure. Returns what the
/// copy-tree steps moved.
pub async fn execute(steps: &[Step], ctx: &ExecContext) -> anyhow::Result<CopyStats> {
    let mut stats = CopyStats::default();
    // One phase for all copy-tree steps (the data directory and each
    // tablespace), against the backup's size.
    let mut copy_phase: Option<Arc<Phase>> = None;
    // Steps already run ahead of their turn (a manifest fetched before the
    // archives it describes).
    let mut ran = vec![false; steps.len()];
    let mut i = 0;
    while i < steps.len() {
        let step = &steps[i];
        i += 1;
        if ran[i - 1] {
            continue;
        }
        if !matches!(
            step,
            Step::CopyTree { .. } | Step::CreateDir { .. } | Step::WriteFile { .. }
        ) {
            if let Some(p) = copy_phase.take() {
                p.finish();
            }
        }
        match step {
            Step::Unpack(first) => {
                // This archive and the ones right after it, in parallel.
                let mut batch = vec![first.clone()];
                while let Some(Step::Unpack(a)) = steps.get(i) {
                    batch.push(a.clone());
                    i += 1;
                }
                let budget = manifests_first(&batch, &steps[i..], &mut ran[i..], ctx).await?;
                unpack_batch(&batch, ctx, &mut stats, budget).await?;
            }
            Step::CopyTree {
                dest,
                remote_path,
                local,
                files,
            } => {
                let phase = copy_phase.get_or_insert_with(|| {
                    let total = (ctx.expected_bytes > 0).then_some(ctx.expected_bytes);
                    Phase::with_display("copy", total, ctx.show_progress)
                });
                let s = copy_tree(dest, remote_path, local, files, ctx, phase).await?;
                stats.files += s.files;
                stats.total_bytes += s.total_bytes;
                stats.literal_bytes += s.literal_bytes;
            }
            Step::Run {
                program,
                args,
                description,
                uses_password,
            } => run_program(program, args, description, *uses_password, ctx).await?,
            Step::Combine {
                program,
                backups,
                output,
            } => combine(program, backups, output, ctx).await?,
            Step::CreateDir { path, mode } => create_dir(path, *mode, ctx)?,
            Step::WriteFile {
                path,
                contents,
                mode,
            } => write_file(path, contents, *mode, ctx)?,
        }
    }
    if let Some(p) = copy_phase.take() {
        p.finish();
    }
    Ok(stats)
}

fn create_local(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Failure::new(format!("could not create directory \"{}\"", dir.display()))
            .detail(e.to_string())
    })
}

/// The backup manifests a plan copies beside the archives of `batch` (later
/// in `rest`), copied now, before the archives: what they declare bounds
/// what unpacking may write, and a file system without room for it is
/// refused before anything is unpacked. Without a manifest the bound is the
/// size the source declares, when the archives are not compressed (a
/// compressed backup's size says nothing of what it expands to).
async fn manifests_first(
    batch: &[Archive],
    rest: &[Step],
    ran: &mut [bool],
    ctx: &ExecContext,
) -> anyhow::Result<Option<unpack::Budget>> {
    use crate::clone::steps::unpack::budget;
    let mut manifests = Vec::new();
    for (j, step) in rest.iter().enumerate() {
        let Step::CopyTree {
            dest,
            remote_path,
            local,
            files,
        } = step
        else {
            continue;
        };
        if files.len() != 1
            || files[0] != "backup_manifest"
            || !batch.iter().any(|a| a.local == *local)
        {
            continue;
        }
        let phase = Phase::with_display("copy", None, false);
        copy_tree(dest, remote_path, local, files, ctx, &phase).await?;
        phase.finish();
        ran[j] = true;
        manifests.push(local.join("backup_manifest"));
    }
    let (declared, what) = if !manifests.is_empty() {
        let mut total = 0u64;
        for m in &manifests {
            total = total.saturating_add(budget::manifest_total(m).map_err(|e| {
                Failure::new(format!("could not read \"{}\"", m.display())).detail(e.to_string())
            })?);
        }
        (total, "the backup's manifest declares")
    } else if ctx.expected_bytes > 0 && batch.iter().all(|a| a.compression.is_none()) {
        (ctx.expected_bytes, "the source declares")
    } else {
        return Ok(None);
    };
    let dirs: Vec<PathBuf> = batch.iter().map(|a| a.local.clone()).collect();
    let room = crate::clone::space::check_room(declared, &format!("what {what}"), &dirs)?;
    crate::report::info(&format!("unpacking: {room}"));
    let limit = declared.saturating_add(budget::margin(declared, ctx.wal_span));
    Ok(Some(unpack::Budget::new(
        limit,
        format!("{what} {declared} bytes of files"),
    )))
}

/// Archives in a row: streamed and unpacked in parallel, writing no more
/// than `budget` allows.
async fn unpack_batch(
    batch: &[Archive],
    ctx: &ExecContext,
    stats: &mut CopyStats,
    budget: Option<unpack::Budget>,
) -> anyhow::Result<()> {
    for a in batch {
        confined(&a.local, &ctx.roots)?;
        create_local(&a.local)?;
    }
    let one = batch.len() == 1;
    crate::report::notice(&format!(
        "unpacking {} archive{} from {} as {} arrive{}, {} at a time",
        batch.len(),
        if one { "" } else { "s" },
        batch[0].dest,
        if one { "it" } else { "they" },
        if one { "s" } else { "" },
        ctx.jobs.clamp(1, batch.len())
    ));
    // Counted in bytes read over ssh, against the archives' sizes (else the
    // backup's, which is about as much: it is compressed).
    let total = (ctx.expected_bytes > 0).then_some(ctx.expected_bytes);
    let phase = Phase::with_display("unpack", total, ctx.show_progress);
    let s = unpack::unpack_all(batch, ctx, &phase, budget).await?;
    phase.suspend(|| {
        crate::report::info(&format!(
            "{} entries, {:.1} MiB unpacked from {:.1} MiB read over ssh",
            s.entries,
            s.file_bytes as f64 / 1048576.0,
            s.wire_bytes as f64 / 1048576.0
        ))
    });
    phase.finish();
    stats.files += s.entries;
    stats.total_bytes += s.file_bytes;
    stats.literal_bytes += s.wire_bytes;
    stats.archives += batch.len();
    Ok(())
}

/// Files from a remote directory, over parallel rsync streams, counted in
/// the copy's one phase.
async fn copy_tree(
    dest: &str,
    remote_path: &str,
    local: &Path,
    files: &[String],
    ctx: &ExecContext,
    phase: &Arc<Phase>,
) -> anyhow::Result<CopyStats> {
    confined(local, &ctx.roots)?;
    create_local(local)?;
    phase.suspend(|| {
        crate::report::notice(&format!(
            "copying {} files from {dest}:{remote_path} with {} parallel rsync streams",
            files.len(),
            ctx.jobs.min(files.len()).max(1)
        ))
    });
    let s = copy_tree::copy(dest, remote_path, local, files, ctx, phase).await?;
    phase.suspend(|| {
        crate::report::info(&format!(
            "{} files, {:.1} MiB ({:.1} MiB sent over the wire)",
            s.files,
            s.total_bytes as f64 / 1048576.0,
            s.literal_bytes as f64 / 1048576.0
        ))
    });
    Ok(s)
}

/// A program of the plan's (pg_basebackup, say): its progress drives the
/// phase's line, the end of its standard error explains a failure.
async fn run_program(
    program: &Path,
    args: &[String],
    description: &str,
    uses_password: bool,
    ctx: &ExecContext,
) -> anyhow::Result<()> {
    crate::report::notice(&crate::report::escape(description));
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    crate::child::bound(cmd.as_std_mut());
    if uses_password {
        let auth = &ctx.auth;
        if let Some(pw) = &auth.password {
            cmd.env("PGPASSWORD", pw);
        }
        if let Some(pf) = &auth.passfile {
            cmd.env("PGPASSFILE", pf);
        }
        if let Some(sf) = &auth.service_file {
            cmd.env("PGSERVICEFILE", sf).env("PGSERVICE", "pgclone");
        }
    }
    crate::report::running(cmd.as_std());
    let phase = Phase::with_display("copy", None, ctx.show_progress);
    let mut child = cmd.spawn().map_err(|e| {
        Failure::new(format!("could not run \"{}\"", program.display())).detail(e.to_string())
    })?;
    let mut group = Supervised::of(&child);
    let tail = match child.stderr.take() {
        Some(err) => follow_stderr(err, &phase, ctx.show_progress).await,
        None => Vec::new(),
    };
    let status = child.wait().await?;
    group.finished();
    if !status.success() {
        let name = program
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = String::from_utf8_lossy(&tail);
        let last: Vec<&str> = text
            .split(['\n', '\r'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let detail = last[last.len().saturating_sub(5)..].join("\n");
        let mut f = Failure::new(format!("{name} {}", crate::report::exit_text(&status)));
        if !detail.is_empty() {
            f = f.detail(detail);
        }
        return Err(f.into());
    }
    // Without --progress the summary counts what was written.
    if phase.done() == 0 {
        phase.set(tree_bytes(&ctx.roots));
    }
    phase.finish();
    Ok(())
}

/// Reads a program's standard error to its end: progress records
/// (pg_basebackup --progress) move `phase`, other lines are shown above it.
/// Returns the last 16 KiB, for an error message.
async fn follow_stderr(err: tokio::process::ChildStderr, phase: &Phase, show: bool) -> Vec<u8> {
    let mut tail = Vec::new();
    let shown = |line: &str| {
        if show {
            phase.suspend(|| eprintln!("{}", crate::report::escape(line)));
        }
    };
    let kept = |bytes: &[u8]| {
        tail.extend_from_slice(bytes);
        if tail.len() > 16384 {
            tail.drain(..tail.len() - 16384);
        }
    };
    follow_records(err, phase, shown, kept).await;
    tail
}

/// `pg_combinebackup BACKUPS... -o OUTPUT`, after checking that every backup
/// of the chain has what it needs.
async fn combine(
    program: &Path,
    backups: &[PathBuf],
    output: &Path,
    ctx: &ExecContext,
) -> anyhow::Result<()> {
    confined(output, &ctx.roots)?;
    for b in backups {
        confined(b, &ctx.roots)?;
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
    cmd.args(backups)
        .arg("-o")
        .arg(output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    crate::child::bound(cmd.as_std_mut());
    crate::report::running(cmd.as_std());
    let child = cmd.spawn().map_err(|e| {
        Failure::new(format!("could not run \"{}\"", program.display())).detail(e.to_string())
    })?;
    let mut group = Supervised::of(&child);
    let out = child.wait_with_output().await?;
    group.finished();
    if out.status.success() {
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

fn create_dir(path: &Path, mode: u32, ctx: &ExecContext) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    confined(path, &ctx.roots)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| {
            Failure::new(format!("could not create directory \"{}\"", path.display()))
                .detail(e.to_string())
                .into()
        })
}

fn write_file(path: &Path, contents: &str, mode: u32, ctx: &ExecContext) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()
    };
    confined(path, &ctx.roots)?;
    // A delta copy may find the file from the previous clone.
    let _ = std::fs::remove_file(path);
    write().map_err(|e| {
        Failure::new(format!("could not write \"{}\"", path.display()))
            .detail(e.to_string())
            .into()
    })
}

/// The bytes of the regular files under `roots` (symbolic links not followed).
pub fn tree_bytes(roots: &[PathBuf]) -> u64 {
    let mut total = 0;
    let mut stack = roots.to_vec();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}
