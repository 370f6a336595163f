//! `copy-tree`: files of a remote directory (a Barman backup) copied with
//! parallel rsync streams over ssh: every exit status checked, every listed
//! file checked on arrival, and the bytes counted against rsync's own totals.
//! Excluded paths are left out with everything below them; an empty file
//! list copies the whole tree, listed with rsync when the step runs and then
//! copied and checked as a listed one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::AsyncReadExt;

use super::super::validate::{clean_name, plain_relative};
use super::super::{confined, ExecContext, InPlace, Kind, Running, Step, Validation};
use crate::child::Supervised;
use crate::clone::progress::{Phase, Progress};
use crate::contract::source::CopyTreeStep;
use crate::contract::Capability;
use crate::report::Failure;

#[derive(Debug, Clone)]
pub struct CopyTree {
    /// The ssh destination.
    pub dest: String,
    /// The absolute directory there.
    pub remote_path: String,
    /// Where the tree goes.
    pub local: PathBuf,
    pub files: Files,
    /// Relative paths left out, each with everything below it.
    pub exclude: Vec<String>,
}

/// What a copy-tree step copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Files {
    /// These files, relative to the remote directory (the excluded ones
    /// already left out); each must arrive.
    Listed(Vec<String>),
    /// Everything in the remote directory but the excluded paths: files,
    /// links and directories, empty ones included, listed when the step
    /// runs.
    WholeTree,
}

/// What a copy moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
    pub files: usize,
    /// Bytes of the files copied (their full size).
    pub total_bytes: u64,
    /// Bytes that crossed the wire as literal data (less with a delta copy;
    /// the compressed stream of unpacked archives).
    pub literal_bytes: u64,
    /// Archives unpacked (unpack-archive steps).
    pub archives: usize,
}

/// True when `path` is one of `exclude` or below one (compared name by
/// name: `pg_wal/` is `pg_wal`, `pg_wal2` is not below it).
fn excluded(path: &str, exclude: &[String]) -> bool {
    exclude.iter().any(|e| Path::new(path).starts_with(e))
}

impl Kind for CopyTree {
    type Asked = CopyTreeStep;
    const COPY_PHASE: bool = true;

    fn check(c: &CopyTreeStep, v: &Validation<'_>) -> Result<Self, Failure> {
        let cap = Capability::RemoteRun {
            target: c.target.clone(),
            program: "rsync".into(),
        };
        v.granted(&cap, "plans an rsync copy it may not make")?;
        let dest = v.ssh_destination(&c.target)?;
        if !c.remote_path.starts_with('/') || !clean_name(&c.remote_path) {
            return Err(v.malformed(format!(
                "remote path \"{}\" is not absolute or contains a control character",
                c.remote_path.escape_debug()
            )));
        }
        if let Some(f) = c.files.iter().chain(&c.exclude).find(|f| !plain_relative(f)) {
            return Err(v.malformed(format!(
                "file \"{}\" is not a plain relative path (or contains a control character)",
                f.escape_debug()
            )));
        }
        let files = match c.files.is_empty() {
            true => Files::WholeTree,
            false => Files::Listed(
                c.files
                    .iter()
                    .filter(|f| !excluded(f, &c.exclude))
                    .cloned()
                    .collect(),
            ),
        };
        Ok(CopyTree {
            dest,
            remote_path: c.remote_path.clone(),
            local: v.resolve(&c.local)?,
            files,
            exclude: c.exclude.clone(),
        })
    }

    /// rsync compares what is there; a whole tree, whose files are known
    /// only when it runs, is copied into an empty directory.
    fn in_place(c: &CopyTreeStep) -> InPlace {
        match c.files.is_empty() {
            true => InPlace::NeedsEmpty,
            false => InPlace::Compares,
        }
    }

    fn describe(&self) -> Vec<String> {
        let (dest, remote, local) = (&self.dest, &self.remote_path, self.local.display());
        let mut lines = vec![match &self.files {
            Files::Listed(f) => format!(
                "copy {} from {dest}:{remote} to {local} (parallel rsync over ssh)",
                crate::report::count(f.len(), "file", "files")
            ),
            Files::WholeTree => format!(
                "copy the whole tree {dest}:{remote} to {local} (listed when the step runs; parallel rsync over ssh)"
            ),
        }];
        if !self.exclude.is_empty() {
            lines.push(format!("leaving out {}", self.exclude.join(", ")));
        }
        lines
    }

    fn places(&self, dir: &Path) -> Vec<PathBuf> {
        match &self.files {
            Files::Listed(files) if self.local.starts_with(dir) => {
                files.iter().map(|f| self.local.join(f)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Counted in the copy's one phase (the data directory and each
    /// tablespace, against the backup's size). The copies of the other
    /// backups of an incremental chain run with it ([`chain_after`]).
    async fn run(&self, r: &mut Running<'_>) -> anyhow::Result<()> {
        let phase = r.copy_phase();
        let mut copies = vec![self];
        // No more copies at once than streams (-j1 copies one by one).
        let others = r.ctx.jobs.saturating_sub(1);
        for (i, c) in chain_after(self, r.later()).into_iter().take(others) {
            r.ran_ahead(i);
            copies.push(c);
        }
        let s = copy_together(&copies, r.ctx, &phase).await?;
        r.stats.files += s.files;
        r.stats.total_bytes += s.total_bytes;
        r.stats.literal_bytes += s.literal_bytes;
        Ok(())
    }
}

/// The copies after `first` into the other backups of the incremental chain
/// a later combine-backups step reads with `first`'s: they run together, so
/// that the small incrementals (many files, few bytes: latency, not
/// bandwidth) are copied while the full backup is. Only from the run of
/// copy-tree and create-dir steps right after `first`, and none whose
/// directory a create-dir step before it makes (that step would then run
/// after the copy instead of before it).
fn chain_after<'a>(
    first: &CopyTree,
    later: impl Iterator<Item = (usize, &'a Step)>,
) -> Vec<(usize, &'a CopyTree)> {
    let later: Vec<(usize, &'a Step)> = later.collect();
    let Some(chain) = later.iter().find_map(|(_, s)| match s {
        Step::CombineBackups(c) if c.backups.contains(&first.local) => Some(&c.backups),
        _ => None,
    }) else {
        return Vec::new();
    };
    let mut taken = Vec::new();
    let mut made: Vec<&Path> = Vec::new();
    for (i, step) in later {
        match step {
            Step::CopyTree(c)
                if chain.contains(&c.local)
                    && c.local != first.local
                    && !made.iter().any(|d| d.starts_with(&c.local)) =>
            {
                taken.push((i, c))
            }
            Step::CopyTree(_) => {}
            Step::CreateDir(d) => made.push(&d.path),
            _ => break,
        }
    }
    taken
}

/// `jobs` streams shared by `copies` copies that run together: as even as
/// can be, the earlier ones (the full backup of a chain) getting the
/// remainder; at least one each.
pub fn share(jobs: usize, copies: usize) -> Vec<usize> {
    let jobs = jobs.max(copies).max(1);
    (0..copies)
        .map(|i| jobs / copies.max(1) + usize::from(i < jobs % copies.max(1)))
        .collect()
}

/// Runs `copies` at once, their streams shared out of the clone's and
/// counted together in `phase`; the first failure ends them all.
pub async fn copy_together(
    copies: &[&CopyTree],
    ctx: &ExecContext,
    phase: &Arc<Phase>,
) -> anyhow::Result<CopyStats> {
    // The backup's size bounds the streams of all the copies together.
    let budget = streams(ctx.jobs, usize::MAX, ctx.expected_bytes);
    let counts = share(budget, copies.len());
    let base = phase.done();
    let progress = Progress::new(counts.iter().sum(), base, phase.clone());
    let mut first = 0;
    let mut runs = Vec::new();
    for (c, count) in copies.iter().zip(counts) {
        runs.push(c.copy_streams(
            ctx,
            phase,
            Streams {
                count,
                by_size: budget < ctx.jobs,
                first,
                progress: progress.clone(),
            },
        ));
        first += count;
    }
    let mut total = CopyStats::default();
    for s in futures::future::try_join_all(runs).await? {
        total.files += s.files;
        total.total_bytes += s.total_bytes;
        total.literal_bytes += s.literal_bytes;
    }
    // Without a live line rsync reports no progress: the summary counts what arrived.
    phase.set(base + total.total_bytes);
    Ok(total)
}

/// The rsync streams of one copy among those that run together: how many,
/// and where they count in the shared progress.
struct Streams {
    count: usize,
    /// Fewer than `-j` in all because the backup is small ([`streams`]).
    by_size: bool,
    /// The index of its first stream among all.
    first: usize,
    progress: Arc<Progress>,
}

impl CopyTree {
    /// Copies the files (listing the whole tree first), counted in `phase`.
    pub async fn copy(&self, ctx: &ExecContext, phase: &Arc<Phase>) -> anyhow::Result<CopyStats> {
        copy_together(&[self], ctx, phase).await
    }

    /// The same, in `streams`.
    async fn copy_streams(
        &self,
        ctx: &ExecContext,
        phase: &Arc<Phase>,
        streams: Streams,
    ) -> anyhow::Result<CopyStats> {
        let (dest, remote_path) = (&self.dest, &self.remote_path);
        confined(&self.local, &ctx.roots)?;
        super::super::run::create_local(&self.local)?;
        let files = match &self.files {
            Files::Listed(f) => f.clone(),
            Files::WholeTree => self.list_tree(ctx).await?,
        };
        let n = streams.count.min(files.len()).max(1);
        // Fewer streams than -j only because the backup is small: said.
        let why = match streams.by_size && n < ctx.jobs.min(files.len()) {
            true => " (one per 512 MiB of the backup)",
            false => "",
        };
        phase.suspend(|| {
            crate::report::notice(&format!(
                "copying {} from {dest}:{remote_path} with {}{why}",
                crate::report::count(files.len(), "file", "files"),
                crate::report::count(n, "rsync stream", "parallel rsync streams")
            ))
        });
        let s = copy(dest, remote_path, &self.local, &files, ctx, &streams).await?;
        phase.suspend(|| {
            crate::report::info(&format!(
                "{}, {:.1} MiB ({:.1} MiB sent over the wire)",
                crate::report::count(s.files, "file", "files"),
                s.total_bytes as f64 / 1048576.0,
                s.literal_bytes as f64 / 1048576.0
            ))
        });
        Ok(s)
    }

    /// The remote tree as `rsync --list-only` shows it (rsync is what the
    /// plugin was granted there), less the excluded paths: every file, link
    /// and directory, by its path relative to the remote directory. A name
    /// that is not plain (control characters, which rsync shows escaped) or
    /// an entry that is neither a file, a link nor a directory is refused:
    /// the copy would not be what the listing says.
    async fn list_tree(&self, ctx: &ExecContext) -> Result<Vec<String>, Failure> {
        let source = format!("{}:{}", self.dest, self.remote_path);
        let mut cmd = tokio::process::Command::new("rsync");
        cmd.args(["-a", "--list-only", "-8", "--protect-args"]);
        // Pruned while listing when rsync reads them as they are (no
        // wildcard); left out below in any case.
        for e in self.exclude.iter().filter(|e| !e.contains(['*', '?', '[', '\\'])) {
            cmd.arg(format!("--exclude=/{e}"));
        }
        cmd.arg("-e")
            .arg(rsync_shell(ctx, ctx.control_path.as_deref()))
            .arg(format!("{}/", source.trim_end_matches('/')))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        crate::child::bound(cmd.as_std_mut());
        crate::report::running(cmd.as_std());
        let child = cmd.spawn().map_err(|e| {
            Failure::new("could not run rsync")
                .detail(e.to_string())
                .hint("install rsync on this host")
        })?;
        let mut group = Supervised::of(&child);
        let out = child.wait_with_output().await.map_err(|e| {
            Failure::new(format!("could not list \"{source}\"")).detail(e.to_string())
        })?;
        group.finished();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            return Err(Failure::new(format!(
                "could not list \"{source}\": rsync {}",
                crate::report::exit_text(&out.status)
            ))
            .detail(crate::report::escape_block(
                &tail[tail.len().saturating_sub(5)..].join("\n"),
            )));
        }
        let mut names = Vec::new();
        for line in out.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let entry = std::str::from_utf8(line)
                .map_err(|_| "a name that is not UTF-8".to_string())
                .and_then(listed);
            let name = entry.map_err(|problem| {
                Failure::new(format!("cannot copy the whole tree \"{source}\""))
                    .detail(format!(
                        "{problem}: {}",
                        crate::report::escape(&String::from_utf8_lossy(line))
                    ))
                    .hint("a backup's data directory holds only files, directories and links, with plain names")
            })?;
            if let Some(n) = name.filter(|n| !excluded(n, &self.exclude)) {
                names.push(n);
            }
        }
        Ok(names)
    }
}

/// The path of one line of `rsync --list-only -8`: `PERMS SIZE DATE TIME
/// NAME`, a link's NAME followed by ` -> TARGET` (its SIZE is TARGET's
/// length); none for the directory itself (`.`).
fn listed(line: &str) -> Result<Option<String>, String> {
    let mut rest = line;
    let mut fields = Vec::new();
    for _ in 0..4 {
        let t = rest.trim_start_matches(' ');
        let end = t.find(' ').ok_or("not a line of rsync's listing")?;
        fields.push(&t[..end]);
        rest = &t[end + 1..];
    }
    let size: usize = fields[1]
        .chars()
        .filter(|c| !matches!(c, ',' | '.'))
        .collect::<String>()
        .parse()
        .map_err(|_| "not a line of rsync's listing")?;
    let name = match fields[0].chars().next() {
        Some('-' | 'd') => rest,
        Some('l') => rest
            .len()
            .checked_sub(size)
            .filter(|&at| rest.is_char_boundary(at))
            .and_then(|at| rest[..at].strip_suffix(" -> "))
            .ok_or("a link whose target cannot be told from its name")?,
        _ => return Err("not a file, a directory or a link".into()),
    };
    if name == "." {
        return Ok(None);
    }
    if name.contains("\\#") || !plain_relative(name) {
        return Err("not a plain relative name".into());
    }
    Ok(Some(name.to_string()))
}

/// The `-e` of rsync: ssh through `control_path` when given.
fn rsync_shell(ctx: &ExecContext, control_path: Option<&Path>) -> String {
    crate::remote::SshCommand::transport()
        .control_path(control_path)
        .fast_cipher()
        .options(&ctx.ssh_options)
        .rsync_shell()
}

/// The least a further rsync stream should carry. Each stream costs an ssh
/// handshake and an rsync pair on both hosts, and a backup this small is
/// mostly one relation file, which one stream carries anyway: measured
/// (cost_growth bench, 0.2 GiB Barman backup, 2 cores, load 9), the copy took
/// 3.9 s with one stream and 6.3 s with four; at 4 GiB (four 1 GiB relation
/// segments) four streams took 0.5-0.8x the time of tar over one ssh stream.
const BYTES_PER_STREAM: u64 = 512 << 20;

/// How many rsync streams copy `files` files of a backup of
/// `expected_bytes` (0: unknown): `jobs`, no more than the files, and no
/// more than one per [`BYTES_PER_STREAM`] of the backup.
pub fn streams(jobs: usize, files: usize, expected_bytes: u64) -> usize {
    let by_size = match expected_bytes {
        0 => usize::MAX,
        b => usize::try_from(b.div_ceil(BYTES_PER_STREAM)).unwrap_or(usize::MAX),
    };
    jobs.min(files).min(by_size).max(1)
}

/// Splits `files` into `n` lists of similar size (round robin over the
/// sorted list: relation segments of one table land on different streams).
pub fn split(files: &[String], n: usize) -> Vec<Vec<String>> {
    let n = n.max(1).min(files.len().max(1));
    let mut sorted = files.to_vec();
    sorted.sort();
    let mut out = vec![Vec::new(); n];
    for (i, f) in sorted.into_iter().enumerate() {
        out[i % n].push(f);
    }
    out
}

fn stat_value(stats: &str, label: &str) -> Option<u64> {
    stats.lines().find_map(|l| {
        let rest = l.trim().strip_prefix(label)?;
        let digits: String = rest
            .trim()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .collect();
        digits.replace(',', "").parse().ok()
    })
}

/// Copies `files` (relative to `remote_path` on `dest`) into `local` with
/// `streams` parallel rsync streams, and checks that each arrived.
async fn copy(
    dest: &str,
    remote_path: &str,
    local: &Path,
    files: &[String],
    ctx: &ExecContext,
    streams: &Streams,
) -> anyhow::Result<CopyStats> {
    if files.is_empty() {
        return Ok(CopyStats::default());
    }
    let scratch = ctx.scratch.as_path();
    let lists = split(files, streams.count);
    // The first stream reuses the clone's shared connection (no handshake);
    // the others open their own, so that they encrypt in parallel.
    let (shared, own) = (
        rsync_shell(ctx, ctx.control_path.as_deref()),
        rsync_shell(ctx, None),
    );
    let mut children = Vec::new();
    for (i, list) in lists.iter().enumerate() {
        let list_file = scratch.join(format!("files-{}", streams.first + i));
        std::fs::write(&list_file, list.join("\n") + "\n")?;
        let mut cmd = tokio::process::Command::new("rsync");
        cmd.args(["-a", "--protect-args", "--stats"]);
        if ctx.show_progress {
            cmd.args(["--info=progress2", "--no-inc-recursive"]);
        }
        cmd.arg("--files-from")
            .arg(&list_file)
            .arg("-e")
            .arg(if i == 0 { &shared } else { &own })
            .arg(format!("{dest}:{}/", remote_path.trim_end_matches('/')))
            .arg(format!("{}/", local.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        crate::child::bound(cmd.as_std_mut());
        crate::report::running(cmd.as_std());
        let child = cmd.spawn().map_err(|e| {
            Failure::new("could not run rsync")
                .detail(e.to_string())
                .hint("install rsync on this host")
        })?;
        children.push(child);
    }
    let first = streams.first;
    // Wait for all; the first failure wins, and dropping the rest kills them.
    // The waits run as tasks, which outlive this future if it is dropped
    // (a failure elsewhere, an interruption): the guards stay here and kill
    // each stream's process group (rsync and its ssh) then.
    let mut guards: Vec<_> = children.iter().map(Supervised::of).collect();
    let mut futures = Vec::new();
    for (i, mut child) in children.into_iter().enumerate() {
        let progress = streams.progress.clone();
        futures.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut err = String::new();
            let mut so = child.stdout.take().unwrap();
            let mut se = child.stderr.take().unwrap();
            let read_out = async {
                let mut buf = [0u8; 8192];
                while let Ok(n) = so.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if let Some(b) =
                        crate::clone::progress::last_record(&String::from_utf8_lossy(&buf[..n]))
                    {
                        progress.set(first + i, b);
                    }
                    out.extend_from_slice(&buf[..n]);
                }
            };
            let (_, b) = tokio::join!(read_out, se.read_to_string(&mut err));
            let _ = b;
            let status = child.wait().await;
            // progress2 separates its records with carriage returns.
            let out = String::from_utf8_lossy(&out).replace('\r', "\n");
            (status, out, err)
        }));
    }
    let mut stats = CopyStats::default();
    let mut failure: Option<Failure> = None;
    for (i, f) in futures.into_iter().enumerate() {
        let (status, out, err) = f.await?;
        guards[i].finished();
        let status = status?;
        if !status.success() && failure.is_none() {
            let how = crate::report::exit_text(&status);
            let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            failure = Some(
                Failure::new(format!("rsync stream {} of {} {how}", i + 1, lists.len()))
                    .detail(tail[tail.len().saturating_sub(5)..].join("\n")),
            );
            continue;
        }
        stats.total_bytes += stat_value(&out, "Total file size:").unwrap_or(0);
        stats.literal_bytes += stat_value(&out, "Literal data:").unwrap_or(0);
    }
    if let Some(f) = failure {
        return Err(f.into());
    }
    // Every listed file arrived, and the bytes add up.
    let (mut local_bytes, mut arrived) = (0u64, 0usize);
    for f in files {
        let p = local.join(f);
        match std::fs::symlink_metadata(&p) {
            // rsync counts a link by the length of its target, as lstat
            // does: the link is judged after the copy (clone::links), not
            // mistaken here for a file that did not arrive.
            Ok(m) => {
                if m.is_file() || m.file_type().is_symlink() {
                    local_bytes += m.len();
                    arrived += 1;
                }
            }
            Err(_) => {
                return Err(Failure::new("the copy is incomplete")
                    .detail(format!(
                        "\"{}\" is listed by the source but did not arrive",
                        p.display()
                    ))
                    .into())
            }
        }
    }
    if local_bytes != stats.total_bytes {
        return Err(Failure::new("the copy is incomplete")
            .detail(format!(
                "rsync reported {} bytes, {} bytes arrived",
                stats.total_bytes, local_bytes
            ))
            .into());
    }
    stats.files = arrived;
    Ok(stats)
}

/// Removes what a delta re-clone must not keep: files under `local` that the
/// steps did not put there (`placed`: WAL, stale relation files, old
/// configuration).
pub fn remove_unlisted(
    local: &Path,
    placed: &[PathBuf],
    keep_dirs: &[&str],
) -> std::io::Result<usize> {
    let listed: std::collections::HashSet<&PathBuf> = placed.iter().collect();
    let mut removed = 0;
    let mut stack = vec![local.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let p = e.path();
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(p);
            } else if !listed.contains(&p) {
                let rel = p.strip_prefix(local).unwrap_or(&p);
                if keep_dirs.iter().any(|k| rel.starts_with(k)) && ft.is_symlink() {
                    continue;
                }
                std::fs::remove_file(&p)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_spreads_files_evenly() {
        let files: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
        let parts = split(&files, 3);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 10);
        assert!(parts.iter().all(|p| p.len() >= 3));
        assert_eq!(split(&files[..1], 4).len(), 1);
        assert_eq!(split(&[], 4).len(), 1);
    }

    /// One stream per 512 MiB of backup, within -j and the file count; an
    /// unknown size leaves -j alone.
    #[test]
    fn small_backups_get_fewer_streams() {
        const MIB: u64 = 1 << 20;
        assert_eq!(streams(4, 972, 205 * MIB), 1);
        assert_eq!(streams(4, 972, 512 * MIB), 1);
        assert_eq!(streams(4, 972, 1024 * MIB), 2);
        assert_eq!(streams(4, 972, 4096 * MIB), 4);
        assert_eq!(streams(4, 972, 0), 4);
        assert_eq!(streams(4, 2, 4096 * MIB), 2);
        assert_eq!(streams(1, 972, 4096 * MIB), 1);
        assert_eq!(streams(4, 0, 0), 1);
    }

    /// An excluded path leaves out itself and what is below it, nothing
    /// that merely begins with the same letters.
    #[test]
    fn an_excluded_path_covers_what_is_below_it() {
        let ex = vec!["pg_wal/".to_string(), "base/1/112".to_string()];
        assert!(excluded("pg_wal", &ex));
        assert!(excluded("pg_wal//archive_status/x", &ex));
        assert!(excluded("pg_wal/000000010000000000000003", &ex));
        assert!(excluded("base/1/112", &ex));
        assert!(!excluded("pg_wal2", &ex));
        assert!(!excluded("base/1/1120", &ex));
        assert!(!excluded("base/1", &ex));
        assert!(!excluded("PG_VERSION", &[]));
    }

    /// What `rsync -a --list-only -8` prints, read back as paths: the root
    /// skipped, spaces and arrows in names kept, a link's target dropped by
    /// its length; devices, escaped names and paths out of the tree refused.
    #[test]
    fn rsync_listings_are_read() {
        let ok = |l: &str| listed(l).unwrap();
        assert_eq!(ok("drwx------          4,096 2026/01/02 03:04:05 ."), None);
        assert_eq!(
            ok("-rw-------              3 2026/01/02 03:04:05 PG_VERSION"),
            Some("PG_VERSION".into())
        );
        assert_eq!(
            ok("-rw------- 1,073,741,824 2026/01/02 03:04:05 base/1/112"),
            Some("base/1/112".into())
        );
        assert_eq!(
            ok("drwx------          4,096 2026/01/02 03:04:05 pg_tblspc"),
            Some("pg_tblspc".into())
        );
        assert_eq!(
            ok("-rw-r--r--              2 2026/01/02 03:04:05  two  spaces"),
            Some(" two  spaces".into())
        );
        assert_eq!(
            ok("lrwxrwxrwx              5 2026/01/02 03:04:05 li -> nk -> a/b/f"),
            Some("li -> nk".into())
        );
        assert_eq!(
            ok("lrwxrwxrwx             11 2026/01/02 03:04:05 pg_tblspc/16385 -> /srv/ts/one"),
            Some("pg_tblspc/16385".into())
        );
        for bad in [
            "crw-rw-rw-          0 2026/01/02 03:04:05 null",
            "prw-------          0 2026/01/02 03:04:05 fifo",
            "-rw-------          3 2026/01/02 03:04:05 new\\#012line",
            "-rw-------          3 2026/01/02 03:04:05 ../up",
            "-rw-------          3 2026/01/02 03:04:05 /abs",
            "lrwxrwxrwx         99 2026/01/02 03:04:05 short -> x",
            "receiving incremental file list",
            "",
        ] {
            assert!(listed(bad).is_err(), "{bad:?}");
        }
    }

    /// A copy-tree step as the host reads it: an empty file list is the whole
    /// tree, excluded files are left out of a list, and a whole tree is never
    /// copied over a delta copy's populated directory.
    #[test]
    fn file_lists_and_exclusions_are_what_the_wit_says() {
        use crate::contract::capability::CapabilitySet;
        use crate::contract::source::{LocalPath, PathRoot};
        use crate::environment::HostEnv;
        let cap: Capability = "remote-run:store:rsync".parse().unwrap();
        let caps = CapabilitySet {
            declared: vec![cap.clone()],
            granted: vec![cap],
        };
        let env = HostEnv {
            targets: [("store".to_string(), "backup@store".to_string())].into(),
            ..HostEnv::default()
        };
        let v = Validation {
            plugin: "p",
            caps: &caps,
            env: &env,
            datadir: Path::new("/d"),
            tablespaces: &Default::default(),
            staging: None,
        };
        let step = |files: &[&str], exclude: &[&str]| CopyTreeStep {
            target: "store".into(),
            remote_path: "/b".into(),
            local: LocalPath {
                root: PathRoot::DataDirectory,
                path: String::new(),
            },
            files: files.iter().map(|f| f.to_string()).collect(),
            exclude: exclude.iter().map(|f| f.to_string()).collect(),
        };
        let listed = step(&["PG_VERSION", "pg_wal/1", "base/1/112"], &["pg_wal"]);
        let c = CopyTree::check(&listed, &v).unwrap();
        assert_eq!(
            c.files,
            Files::Listed(vec!["PG_VERSION".into(), "base/1/112".into()])
        );
        assert_eq!(CopyTree::in_place(&listed), InPlace::Compares);
        assert_eq!(c.describe()[1], "leaving out pg_wal");
        assert_eq!(
            c.places(Path::new("/d")),
            [PathBuf::from("/d/PG_VERSION"), PathBuf::from("/d/base/1/112")]
        );
        let whole = step(&[], &["pg_wal"]);
        let c = CopyTree::check(&whole, &v).unwrap();
        assert_eq!(c.files, Files::WholeTree);
        assert_eq!(CopyTree::in_place(&whole), InPlace::NeedsEmpty);
        assert!(c.describe()[0].starts_with("copy the whole tree backup@store:/b to /d"));
        assert!(c.places(Path::new("/d")).is_empty());
        // Everything excluded: nothing to copy, never the whole tree.
        let c = CopyTree::check(&step(&["pg_wal/1"], &["pg_wal"]), &v).unwrap();
        assert_eq!(c.files, Files::Listed(Vec::new()));
        assert!(CopyTree::check(&step(&[], &["../x"]), &v).is_err());
    }

    /// The clone's streams shared by copies that run together: all of
    /// them used, none idle, the earliest copy (a chain's full backup)
    /// getting what does not divide evenly.
    #[test]
    fn streams_are_shared_by_the_copies_that_run_together() {
        assert_eq!(share(4, 1), [4]);
        assert_eq!(share(4, 3), [2, 1, 1]);
        assert_eq!(share(4, 2), [2, 2]);
        assert_eq!(share(8, 3), [3, 3, 2]);
        assert_eq!(share(1, 1), [1]);
        assert_eq!(share(0, 1), [1]);
        assert_eq!(share(2, 3), [1, 1, 1]);
    }

    /// The copies of an incremental chain's backups, each followed by the
    /// directories made in it, run with the first; a copy the combine step
    /// does not read, a copy after a step of another kind, and a copy into a
    /// directory a create-dir step before it makes are left to their turn.
    #[test]
    fn the_copies_of_a_chain_run_together() {
        use super::super::combine_backups::CombineBackups;
        use super::super::create_dir::CreateDir;
        use super::super::write_file::WriteFile;
        let staging = Path::new("/s");
        let copy = |local: &str| CopyTree {
            dest: "b@h".into(),
            remote_path: "/r".into(),
            local: staging.join(local),
            files: Files::Listed(vec!["PG_VERSION".into()]),
            exclude: Vec::new(),
        };
        let mkdir = |path: &str| {
            Step::CreateDir(CreateDir {
                path: staging.join(path),
                mode: 0o700,
            })
        };
        let combine = |backups: &[&str]| {
            Step::CombineBackups(CombineBackups {
                program: "pg_combinebackup".into(),
                backups: backups.iter().map(|b| staging.join(b)).collect(),
                output: "/d".into(),
            })
        };
        let first = copy("00");
        let taken = |later: &[Step]| -> Vec<usize> {
            chain_after(&first, later.iter().enumerate())
                .into_iter()
                .map(|(i, _)| i)
                .collect()
        };
        let plan = [
            mkdir("00/pg_wal"),
            Step::CopyTree(copy("01")),
            mkdir("01/pg_wal"),
            Step::CopyTree(copy("02")),
            mkdir("02/pg_wal"),
            combine(&["00", "01", "02"]),
            mkdir("pg_wal"),
        ];
        assert_eq!(taken(&plan), [1, 3]);
        // Not read by the combine step with the first.
        let plan = [
            Step::CopyTree(copy("01")),
            Step::CopyTree(copy("09")),
            combine(&["00", "01"]),
        ];
        assert_eq!(taken(&plan), [0]);
        // No combine step reads the first: a plain copy runs alone.
        let plan = [Step::CopyTree(copy("01")), combine(&["01", "02"])];
        assert_eq!(taken(&plan), Vec::<usize>::new());
        // A step of another kind ends the run.
        let write = Step::WriteFile(WriteFile {
            path: staging.join("01/x"),
            contents: String::new(),
            mode: 0o600,
        });
        let plan = [
            Step::CopyTree(copy("01")),
            write,
            Step::CopyTree(copy("02")),
            combine(&["00", "01", "02"]),
        ];
        assert_eq!(taken(&plan), [0]);
        // A directory made in the copy's directory before the copy.
        let plan = [
            mkdir("01/pg_wal"),
            Step::CopyTree(copy("01")),
            Step::CopyTree(copy("02")),
            combine(&["00", "01", "02"]),
        ];
        assert_eq!(taken(&plan), [2]);
    }

    #[test]
    fn rsync_stats_are_read() {
        let s = "Number of files: 3\nTotal file size: 1,121,015,638 bytes\nLiteral data: 12,345 bytes\n";
        assert_eq!(stat_value(s, "Total file size:"), Some(1_121_015_638));
        assert_eq!(stat_value(s, "Literal data:"), Some(12_345));
        assert_eq!(stat_value(s, "Matched data:"), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    const STATS: &str = "Number of files: 1,234 (reg: 1,200, dir: 34)\nTotal file size: 1,121,015,638 bytes\nLiteral data: 12,345 bytes\nMatched data: 0 bytes\n";

    proptest! {
        #![proptest_config(fuzz::config())]

        /// rsync's --stats, damaged or random: a number or none.
        #[test]
        fn any_stats_are_a_number_or_none(s in prop_oneof![fuzz::mutated(STATS), fuzz::any_text()]) {
            for label in ["Total file size:", "Literal data:", "Matched data:"] {
                let _ = stat_value(&s, label);
            }
        }

        /// Whatever rsync's listing holds, a line is a plain relative path,
        /// nothing, or refused; never a panic.
        #[test]
        fn any_listing_line_is_a_plain_path_or_refused(
            s in prop_oneof![
                fuzz::mutated("lrwxrwxrwx              5 2026/01/02 03:04:05 li -> nk -> a/b/f"),
                fuzz::mutated("-rw-------          3 2026/01/02 03:04:05 base/1/112"),
                fuzz::any_text(),
            ]
        ) {
            if let Ok(Some(name)) = listed(&s) {
                prop_assert!(plain_relative(&name), "{:?}", name);
            }
        }

        #[test]
        fn stat_values_read_back(n in any::<u64>()) {
            let text = format!("Total file size: {} bytes\n", n.to_string().as_bytes().rchunks(3).rev().map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(","));
            prop_assert_eq!(stat_value(&text, "Total file size:"), Some(n));
        }
    }
}
