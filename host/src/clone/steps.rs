//! A source plugin's plan: validated whole before any step runs, then executed
//! by the host with every exit status checked.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use crate::plugin::{Capability, HostEnv, Plugin};
use crate::report::Failure;
use crate::source::{ArchiveCompression, LocalPath, PathRoot, PlanStep};

/// A step the host has checked, ready to run.
#[derive(Debug, Clone)]
pub enum Step {
    Run {
        program: PathBuf,
        args: Vec<String>,
        description: String,
        uses_password: bool,
    },
    CopyTree {
        dest: String,
        remote_path: String,
        local: PathBuf,
        files: Vec<String>,
    },
    CreateDir {
        path: PathBuf,
        mode: u32,
    },
    WriteFile {
        path: PathBuf,
        contents: String,
        mode: u32,
    },
    /// Stream a remote tar archive and unpack it (steps in a row run in parallel).
    Unpack(super::unpack::Archive),
    /// `pg_combinebackup BACKUPS... -o OUTPUT` (an incremental backup chain,
    /// oldest first, combined into the data directory).
    Combine {
        program: PathBuf,
        backups: Vec<PathBuf>,
        output: PathBuf,
    },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Run { program, args, .. } => {
                write!(f, "run {}", program.display())?;
                for a in args {
                    write!(f, " {}", crate::remote::shell_quote(a))?;
                }
                Ok(())
            }
            Step::CopyTree {
                dest,
                remote_path,
                local,
                files,
            } => write!(
                f,
                "copy {} files from {dest}:{remote_path} to {} (parallel rsync over ssh)",
                files.len(),
                local.display()
            ),
            Step::CreateDir { path, mode } => {
                write!(f, "create directory {} (mode {mode:o})", path.display())
            }
            Step::Combine {
                program,
                backups,
                output,
            } => {
                write!(
                    f,
                    "combine {} backups (the full one, then each incremental) into {} with {}, then verify it with pg_verifybackup:",
                    backups.len(),
                    output.display(),
                    program.display()
                )?;
                for b in backups {
                    write!(f, " {}", b.display())?;
                }
                Ok(())
            }
            Step::Unpack(a) => write!(
                f,
                "unpack {}:{} ({}{}) into {} (streamed over ssh)",
                a.dest,
                a.remote_path,
                a.compression
                    .map_or("tar".to_string(), |c| format!("tar, {c}")),
                if a.size_bytes > 0 {
                    format!(", {:.1} MiB", a.size_bytes as f64 / 1048576.0)
                } else {
                    String::new()
                },
                a.local.display()
            ),
            Step::WriteFile {
                path,
                mode,
                contents,
            } => {
                write!(
                    f,
                    "write {} ({} bytes, mode {mode:o})",
                    path.display(),
                    contents.len()
                )
            }
        }
    }
}

fn malformed(plugin: &str, problem: String) -> Failure {
    Failure::new(format!(
        "plugin \"{plugin}\" returned a plan the host refuses"
    ))
    .detail(problem)
    .hint("this is a bug in the plugin, or a hostile plugin; nothing was changed")
}

/// Plans longer than this are refused (a real one has a few dozen steps).
pub const MAX_STEPS: usize = 10_000;
/// write-file steps are for small files such as tablespace_map.
pub const MAX_WRITE_FILE: usize = 1 << 20;

/// Refuses `path` when what exists of it leads outside `roots` — through a
/// symbolic link that an earlier step (an rsync'ed tree, say) put there — or
/// when it cannot be resolved fully (a dangling link, a loop, a chain of links
/// whose real path is longer than PATH_MAX): a path that cannot be checked is
/// never used as given. Paths were checked lexically when the plan was
/// validated; this is the check at the moment of writing. The roots exist by
/// then (the clone creates them before the first step).
pub fn confined(path: &Path, roots: &[PathBuf]) -> Result<(), Failure> {
    let unresolved = |at: &Path, e: std::io::Error| {
        Failure::new(format!(
            "refusing to write \"{}\": it cannot be resolved to a real path",
            path.display()
        ))
        .detail(format!("\"{}\": {e}", at.display()))
        .hint("a symbolic link in the copy leads somewhere that cannot be checked; nothing was written there")
    };
    let mut existing = path.to_path_buf();
    loop {
        match std::fs::symlink_metadata(&existing) {
            Ok(_) => break,
            // Only what does not exist yet is skipped: any other error (a name
            // too long, a loop, no permission) leaves the path unchecked.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && existing.pop() => {}
            Err(e) => return Err(unresolved(&existing, e)),
        }
    }
    let real = std::fs::canonicalize(&existing).map_err(|e| unresolved(&existing, e))?;
    let inside = roots
        .iter()
        .any(|r| std::fs::canonicalize(r).is_ok_and(|r| real.starts_with(r)));
    if inside {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "refusing to write \"{}\": it leads to \"{}\", outside the data directory and tablespaces",
            path.display(),
            real.display()
        ))
        .hint("a symbolic link in the copy points outside it; nothing was written there"))
    }
}

/// True for a name a plan may use: no control character (a line break in a
/// name would split an rsync file list; an escape sequence would reach the
/// terminal).
fn clean_name(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// A relative path of plain names: no `..`, no root, no control characters.
fn plain_relative(s: &str) -> bool {
    clean_name(s)
        && !s.is_empty()
        && Path::new(s)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// A plugin path inside its root: relative, no `..`, no empty components.
fn resolve(
    plugin: &str,
    p: &LocalPath,
    datadir: &Path,
    tablespaces: &BTreeMap<u32, PathBuf>,
    staging: Option<&Path>,
) -> Result<PathBuf, Failure> {
    let root = match p.root {
        PathRoot::DataDirectory => datadir.to_path_buf(),
        PathRoot::Staging => staging.map(Path::to_path_buf).ok_or_else(|| {
            malformed(
                plugin,
                "a path in the staging directory, in a plan without a combine-backups step".into(),
            )
        })?,
        PathRoot::Tablespace(oid) => tablespaces.get(&oid).cloned().ok_or_else(|| {
            malformed(
                plugin,
                format!("tablespace {oid} is not a tablespace of this clone"),
            )
        })?,
    };
    let rel = Path::new(&p.path);
    // The empty path is the root itself (a copy into the data directory).
    if !clean_name(&p.path) || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(malformed(
            plugin,
            format!(
                "path \"{}\" is not a plain relative path without control characters",
                p.path.escape_debug()
            ),
        ));
    }
    Ok(root.join(rel))
}

/// The ssh destination the operator mapped `target` to.
fn ssh_destination(env: &HostEnv, target: &str) -> Result<String, Failure> {
    let dest = env.ssh_destination(target).ok_or_else(|| {
        Failure::new(format!(
            "no ssh destination is configured for target \"{target}\""
        ))
        .hint(format!(
            "set {}_host in the configuration file",
            target.replace('-', "_")
        ))
    })?;
    if dest.starts_with('-') || dest.contains(char::is_whitespace) {
        return Err(Failure::new(format!("invalid ssh destination \"{dest}\"")));
    }
    Ok(dest)
}

/// Checks every step: programs declared and granted and found, paths inside the
/// data directory or a tablespace.
pub fn validate(
    plugin: &Plugin,
    env: &HostEnv,
    plan: &[PlanStep],
    datadir: &Path,
    tablespaces: &BTreeMap<u32, PathBuf>,
) -> anyhow::Result<Vec<Step>> {
    validate_with_staging(plugin, env, plan, datadir, tablespaces, None)
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
    let name = datadir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    datadir
        .parent()
        .unwrap_or(Path::new("/"))
        .join(format!(".{name}.pgclone-staging"))
}

/// [`validate`], with the staging directory of a plan that combines backups
/// (`staging` is only accepted when the plan has a `combine-backups` step).
pub fn validate_with_staging(
    plugin: &Plugin,
    env: &HostEnv,
    plan: &[PlanStep],
    datadir: &Path,
    tablespaces: &BTreeMap<u32, PathBuf>,
    staging: Option<&Path>,
) -> anyhow::Result<Vec<Step>> {
    let name = plugin.name.as_str();
    let staging = staging.filter(|_| combines(plan));
    if plan.is_empty() {
        return Err(malformed(name, "the plan is empty".into()).into());
    }
    if plan.len() > MAX_STEPS {
        return Err(malformed(
            name,
            format!("the plan has {} steps (at most {MAX_STEPS})", plan.len()),
        )
        .into());
    }
    let mut out = Vec::new();
    for step in plan {
        out.push(match step {
            PlanStep::RunLocal(r) => {
                let cap = Capability::LocalRun(r.program.clone());
                if let Err(refusal) = plugin.caps.check(&cap) {
                    return Err(Failure::new(format!("plugin \"{name}\" plans to run \"{}\", which it may not", r.program))
                        .detail(format!("capability {cap}: {refusal:?}"))
                        .hint(format!("grant it in plugins.toml if you trust the plugin: [plugin.{name}] grants = [\"{cap}\"]"))
                        .into());
                }
                if let Some(a) = r.args.iter().find(|a| !clean_name(a)) {
                    return Err(malformed(name, format!("argument \"{}\" contains a control character", a.escape_debug())).into());
                }
                let program = env.find_program(&r.program).ok_or_else(|| {
                    Failure::new(format!("program \"{}\" not found", r.program))
                        .hint("set pg_bindir in the configuration file, or add its directory to PATH")
                })?;
                Step::Run {
                    program,
                    args: r.args.clone(),
                    description: r.description.clone(),
                    uses_password: r.uses_upstream_password,
                }
            }
            PlanStep::CreateDir(d) => Step::CreateDir {
                path: resolve(name, &d.path, datadir, tablespaces, staging)?,
                mode: d.mode & 0o777,
            },
            PlanStep::WriteFile(w) if w.contents.len() > MAX_WRITE_FILE => {
                return Err(malformed(
                    name,
                    format!(
                        "a write-file step of {} bytes (at most {MAX_WRITE_FILE})",
                        w.contents.len()
                    ),
                )
                .into())
            }
            PlanStep::WriteFile(w) => Step::WriteFile {
                path: resolve(name, &w.path, datadir, tablespaces, staging)?,
                contents: w.contents.clone(),
                mode: w.mode & 0o777,
            },
            PlanStep::UnpackArchive(u) => {
                let cap = Capability::RemoteRun { target: u.target.clone(), program: "cat".into() };
                if let Err(refusal) = plugin.caps.check(&cap) {
                    return Err(Failure::new(format!("plugin \"{name}\" plans to read an archive it may not read"))
                        .detail(format!("capability {cap}: {refusal:?}"))
                        .hint(format!("grant it in plugins.toml if you trust the plugin: [plugin.{name}] grants = [\"{cap}\"]"))
                        .into());
                }
                let dest = ssh_destination(env, &u.target)?;
                if !u.remote_path.starts_with('/') || !clean_name(&u.remote_path) || u.remote_path.ends_with('/') {
                    return Err(malformed(name, format!("archive path \"{}\" is not an absolute file path without control characters", u.remote_path.escape_debug())).into());
                }
                Step::Unpack(super::unpack::Archive {
                    dest,
                    remote_path: u.remote_path.clone(),
                    compression: u.compression.map(|c| match c {
                        ArchiveCompression::Gzip => super::unpack::Compression::Gzip,
                        ArchiveCompression::Lz4 => super::unpack::Compression::Lz4,
                        ArchiveCompression::Zstd => super::unpack::Compression::Zstd,
                        ArchiveCompression::Bzip2 => super::unpack::Compression::Bzip2,
                    }),
                    local: resolve(name, &u.local, datadir, tablespaces, staging)?,
                    size_bytes: u.size_bytes,
                })
            }
            PlanStep::CombineBackups(c) => {
                if c.backups.len() < 2 {
                    return Err(malformed(name, format!("a combine-backups step of {} backups (a chain has a full backup and at least one incremental)", c.backups.len())).into());
                }
                let mut backups = Vec::new();
                for b in &c.backups {
                    if !matches!(b.root, PathRoot::Staging) || b.path.is_empty() {
                        return Err(malformed(name, format!("combine-backups: backup \"{}\" is not a subdirectory of the staging directory", b.path.escape_debug())).into());
                    }
                    let p = resolve(name, b, datadir, tablespaces, staging)?;
                    if backups.contains(&p) {
                        return Err(malformed(name, format!("combine-backups names \"{}\" twice", b.path.escape_debug())).into());
                    }
                    backups.push(p);
                }
                if !tablespaces.is_empty() {
                    return Err(Failure::new(format!("plugin \"{name}\" plans to combine an incremental backup chain with tablespaces, which pgclone cannot do yet"))
                        .detail(format!("tablespaces {}", tablespaces.keys().map(u32::to_string).collect::<Vec<_>>().join(", ")))
                        .hint("clone from a full backup (--backup-id), or restore this chain with the backup tool")
                        .into());
                }
                let program = env.find_program("pg_combinebackup").ok_or_else(|| {
                    Failure::new("program \"pg_combinebackup\" not found")
                        .detail("the backup is an incremental one: it must be combined with the backups it is based on")
                        .hint("set pg_bindir in the configuration file to the binaries of PostgreSQL 17 or later, of the backup's version")
                })?;
                Step::Combine {
                    program,
                    backups,
                    output: datadir.to_path_buf(),
                }
            }
            PlanStep::CopyTree(c) => {
                let cap = Capability::RemoteRun { target: c.target.clone(), program: "rsync".into() };
                if let Err(refusal) = plugin.caps.check(&cap) {
                    return Err(Failure::new(format!("plugin \"{name}\" plans an rsync copy it may not make"))
                        .detail(format!("capability {cap}: {refusal:?}"))
                        .into());
                }
                let dest = ssh_destination(env, &c.target)?;
                if !c.remote_path.starts_with('/') || !clean_name(&c.remote_path) {
                    return Err(malformed(name, format!("remote path \"{}\" is not absolute or contains a control character", c.remote_path.escape_debug())).into());
                }
                if let Some(f) = c.files.iter().chain(&c.exclude).find(|f| !plain_relative(f)) {
                    return Err(malformed(name, format!("file \"{}\" is not a plain relative path (or contains a control character)", f.escape_debug())).into());
                }
                if c.files.is_empty() {
                    return Err(malformed(name, "a copy-tree step without a file list".into()).into());
                }
                Step::CopyTree {
                    dest,
                    remote_path: c.remote_path.clone(),
                    local: resolve(name, &c.local, datadir, tablespaces, staging)?,
                    files: c.files.clone(),
                }
            }
        });
    }
    Ok(out)
}

/// The major version of a PostgreSQL tool, from `TOOL --version`
/// (`pg_combinebackup (PostgreSQL) 17.6`).
fn tool_major(program: &Path) -> Result<u32, Failure> {
    let out = std::process::Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
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
        if let Step::Combine { program, .. } = s {
            let major = tool_major(program)?;
            let want = backup_version / 10000;
            if major < 17 || major != want {
                return Err(Failure::new(format!(
                    "\"{}\" is of PostgreSQL {major}; the incremental backup chain needs pg_combinebackup of PostgreSQL {want}",
                    program.display()
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

/// What the children of a clone get for authentication, never on argv.
#[derive(Debug, Default, Clone)]
pub struct ChildAuth {
    /// Set as PGPASSWORD when the password came from the connection string.
    pub password: Option<String>,
    /// Set as PGPASSFILE (the `passfile` configuration key).
    pub passfile: Option<String>,
    /// Set as PGSERVICEFILE (with PGSERVICE=pgclone): `sslpassword`.
    pub service_file: Option<PathBuf>,
}

/// How steps run.
#[derive(Debug, Default, Clone)]
pub struct ExecContext {
    pub auth: ChildAuth,
    /// Parallel streams for copy-tree steps.
    pub jobs: usize,
    pub ssh_options: Vec<String>,
    /// A private directory for rsync file lists (outside the data directory).
    pub scratch: PathBuf,
    /// The clone's shared ssh connection, when there is one.
    pub control_path: Option<PathBuf>,
    /// Show a live byte counter (standard error is a terminal).
    pub show_progress: bool,
    /// The backup's size for the counter (0 when unknown).
    pub expected_bytes: u64,
    /// Where steps may write: the data directory, the tablespaces, the WAL
    /// directory.
    pub roots: Vec<PathBuf>,
}

/// Runs the steps in order; stops at the first failure. Returns what the
/// copy-tree steps moved.
pub async fn execute(
    steps: &[Step],
    ctx: &ExecContext,
) -> anyhow::Result<super::copy_tree::CopyStats> {
    use super::progress::{parse_kb_record, Phase};
    let auth = &ctx.auth;
    let mut stats = super::copy_tree::CopyStats::default();
    // One phase for all copy-tree steps (the data directory and each
    // tablespace), against the backup's size.
    let mut copy_phase: Option<std::sync::Arc<Phase>> = None;
    let mut i = 0;
    while i < steps.len() {
        let step = &steps[i];
        i += 1;
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
                for a in &batch {
                    confined(&a.local, &ctx.roots)?;
                    std::fs::create_dir_all(&a.local).map_err(|e| {
                        Failure::new(format!(
                            "could not create directory \"{}\"",
                            a.local.display()
                        ))
                        .detail(e.to_string())
                    })?;
                }
                crate::report::notice(&format!(
                    "unpacking {} archive{} from {} as {} arrive{}, {} at a time",
                    batch.len(),
                    if batch.len() == 1 { "" } else { "s" },
                    batch[0].dest,
                    if batch.len() == 1 { "it" } else { "they" },
                    if batch.len() == 1 { "s" } else { "" },
                    ctx.jobs.clamp(1, batch.len())
                ));
                // Counted in bytes read over ssh, against the archives' sizes
                // (else the backup's, which is about as much: it is compressed).
                let total = (ctx.expected_bytes > 0).then_some(ctx.expected_bytes);
                let phase = Phase::with_display("unpack", total, ctx.show_progress);
                let s = super::unpack::unpack_all(&batch, ctx, &phase).await?;
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
            }
            Step::CopyTree {
                dest,
                remote_path,
                local,
                files,
            } => {
                confined(local, &ctx.roots)?;
                std::fs::create_dir_all(local).map_err(|e| {
                    Failure::new(format!(
                        "could not create directory \"{}\"",
                        local.display()
                    ))
                    .detail(e.to_string())
                })?;
                let notice = format!(
                    "copying {} files from {dest}:{remote_path} with {} parallel rsync streams",
                    files.len(),
                    ctx.jobs.min(files.len()).max(1)
                );
                let phase = match &copy_phase {
                    Some(p) => {
                        p.suspend(|| crate::report::notice(&notice));
                        p.clone()
                    }
                    None => {
                        crate::report::notice(&notice);
                        let total = (ctx.expected_bytes > 0).then_some(ctx.expected_bytes);
                        copy_phase
                            .insert(Phase::with_display("copy", total, ctx.show_progress))
                            .clone()
                    }
                };
                let s =
                    super::copy_tree::copy(dest, remote_path, local, files, ctx, &phase).await?;
                phase.suspend(|| {
                    crate::report::info(&format!(
                        "{} files, {:.1} MiB ({:.1} MiB sent over the wire)",
                        s.files,
                        s.total_bytes as f64 / 1048576.0,
                        s.literal_bytes as f64 / 1048576.0
                    ))
                });
                stats.files += s.files;
                stats.total_bytes += s.total_bytes;
                stats.literal_bytes += s.literal_bytes;
            }
            Step::Run {
                program,
                args,
                description,
                uses_password,
            } => {
                crate::report::notice(&crate::report::escape(description));
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .process_group(0)
                    .kill_on_drop(true);
                if *uses_password {
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
                // Its progress reports (pg_basebackup --progress) drive the
                // phase's line; its other words are shown above it.
                cmd.stderr(Stdio::piped());
                crate::report::running(cmd.as_std());
                let phase = Phase::with_display("copy", None, ctx.show_progress);
                let mut child = cmd.spawn().map_err(|e| {
                    Failure::new(format!("could not run \"{}\"", program.display()))
                        .detail(e.to_string())
                })?;
                let mut group = super::group::GroupGuard::new(&child);
                // Keep the end of its stderr for the error message.
                let mut tail = Vec::new();
                if let Some(mut err) = child.stderr.take() {
                    let mut buf = [0u8; 8192];
                    let mut pending = Vec::new();
                    loop {
                        let n = err.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        tail.extend_from_slice(&buf[..n]);
                        if tail.len() > 16384 {
                            tail.drain(..tail.len() - 16384);
                        }
                        pending.extend_from_slice(&buf[..n]);
                        // Whole records only: they end in \r (a terminal) or \n.
                        while let Some(end) =
                            pending.iter().position(|b| matches!(b, b'\r' | b'\n'))
                        {
                            let record: Vec<u8> = pending.drain(..=end).collect();
                            let record = String::from_utf8_lossy(&record[..end]);
                            match parse_kb_record(&record) {
                                Some((done, total)) => {
                                    phase.set_total(total);
                                    phase.set(done);
                                }
                                None if ctx.show_progress && !record.trim().is_empty() => {
                                    phase.suspend(|| {
                                        eprintln!("{}", crate::report::escape(record.trim_end()))
                                    });
                                }
                                None => {}
                            }
                        }
                    }
                }
                let status = child.wait().await?;
                group.finished();
                if !status.success() {
                    let name = program
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned();
                    let how = crate::report::exit_text(&status);
                    let text = String::from_utf8_lossy(&tail);
                    let last: Vec<&str> = text
                        .split(['\n', '\r'])
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect();
                    let detail = last[last.len().saturating_sub(5)..].join("\n");
                    let mut f = Failure::new(format!("{name} {how}"));
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
            }
            Step::Combine {
                program,
                backups,
                output,
            } => {
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
                    .process_group(0)
                    .kill_on_drop(true);
                crate::report::running(cmd.as_std());
                let child = cmd.spawn().map_err(|e| {
                    Failure::new(format!("could not run \"{}\"", program.display()))
                        .detail(e.to_string())
                })?;
                let mut group = super::group::GroupGuard::new(&child);
                let out = child.wait_with_output().await?;
                group.finished();
                if !out.status.success() {
                    let text = String::from_utf8_lossy(&out.stderr);
                    let lines: Vec<&str> = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect();
                    let detail = lines[lines.len().saturating_sub(8)..].join("\n");
                    return Err(Failure::new(format!(
                        "pg_combinebackup {}: the backup chain could not be combined",
                        crate::report::exit_text(&out.status)
                    ))
                    .detail(crate::report::escape_block(&detail))
                    .hint("check the chain on the backup server (a backup missing or damaged, or one not based on the one before it)")
                    .into());
                }
            }
            Step::CreateDir { path, mode } => {
                use std::os::unix::fs::DirBuilderExt;
                confined(path, &ctx.roots)?;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(*mode)
                    .create(path)
                    .map_err(|e| {
                        Failure::new(format!("could not create directory \"{}\"", path.display()))
                            .detail(e.to_string())
                    })?;
            }
            Step::WriteFile {
                path,
                contents,
                mode,
            } => {
                use std::os::unix::fs::OpenOptionsExt;
                let write = || -> std::io::Result<()> {
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(*mode)
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
                })?;
            }
        }
    }
    if let Some(p) = copy_phase.take() {
        p.finish();
    }
    Ok(stats)
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

#[cfg(test)]
mod confinement_tests {
    use super::*;

    #[test]
    fn a_symlink_inside_the_copy_cannot_lead_outside() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, data.join("evil")).unwrap();
        let ts = t.path().join("ts");
        std::fs::create_dir_all(&ts).unwrap();
        let roots = vec![data.clone(), ts.clone()];
        assert!(confined(&data.join("base/1"), &roots).is_ok());
        assert!(confined(&ts.join("PG_15/16384"), &roots).is_ok());
        // A link to the root directory cannot reach an ancestor of a root.
        std::os::unix::fs::symlink("/", data.join("slash")).unwrap();
        assert!(confined(&data.join("slash/tmp/new-file"), &roots).is_err());
        assert!(confined(&t.path().join("elsewhere"), &roots).is_err());
        let e = confined(&data.join("evil/passwd"), &roots).unwrap_err();
        assert!(e.to_string().contains("outside the data directory"), "{e}");
        assert!(confined(&data.join("evil"), &roots).is_err());

        // And the steps themselves refuse to write through it.
        let ctx = ExecContext {
            roots,
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let step = Step::WriteFile {
            path: data.join("evil/passwd"),
            contents: "x".into(),
            mode: 0o600,
        };
        assert!(rt.block_on(execute(&[step], &ctx)).is_err());
        let step = Step::CreateDir {
            path: data.join("evil/sub"),
            mode: 0o700,
        };
        assert!(rt.block_on(execute(&[step], &ctx)).is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    /// A chain of links whose real path is longer than PATH_MAX: the kernel
    /// follows it, realpath() cannot resolve it. Such a path must be refused,
    /// not checked as given (which looks inside the data directory).
    #[test]
    fn a_path_that_cannot_be_resolved_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        let out = t.path().join("out");
        std::fs::create_dir_all(&data).unwrap();
        // 12 levels of 250-byte names, twice: over 6000 bytes when resolved.
        let deep: PathBuf = std::iter::repeat_n("a".repeat(250), 12).collect();
        std::fs::create_dir_all(out.join(&deep)).unwrap();
        std::os::unix::fs::symlink(&deep, out.join("s1")).unwrap();
        std::fs::create_dir_all(out.join("s1").join(&deep)).unwrap();
        std::os::unix::fs::symlink(&deep, out.join("s1/s2")).unwrap();
        std::os::unix::fs::symlink(out.join("s1/s2"), data.join("evil")).unwrap();
        // The kernel gets there; realpath() does not.
        assert!(std::fs::metadata(data.join("evil")).unwrap().is_dir());
        assert!(std::fs::canonicalize(data.join("evil")).is_err());
        // A dangling link cannot be checked either.
        std::os::unix::fs::symlink(t.path().join("nothing"), data.join("dangling")).unwrap();

        let roots = vec![data.clone()];
        let e = confined(&data.join("evil/authorized_keys"), &roots).unwrap_err();
        assert!(e.to_string().contains("cannot be resolved"), "{e}");
        assert!(e.hint.is_some() && e.detail.is_some(), "{e}");
        assert!(confined(&data.join("dangling/x"), &roots).is_err());
        assert!(confined(&data.join("base/1"), &roots).is_ok());

        let ctx = ExecContext {
            roots,
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for step in [
            Step::WriteFile {
                path: data.join("evil/authorized_keys"),
                contents: "ssh-ed25519 AAAA attacker".into(),
                mode: 0o600,
            },
            Step::CreateDir {
                path: data.join("evil/sub"),
                mode: 0o700,
            },
        ] {
            let e = rt.block_on(execute(&[step], &ctx)).unwrap_err();
            assert!(
                crate::report::render(&e).contains("cannot be resolved"),
                "{e}"
            );
        }
        let written = data.join("evil/authorized_keys");
        assert!(!written.exists() && !data.join("evil/sub").exists());
    }
}
