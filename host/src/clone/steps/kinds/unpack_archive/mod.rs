//! `unpack-archive`: remote tar archives (a compressed Barman backup), each
//! read with `cat` over ssh, decompressed in this process as it arrives and
//! unpacked entry by entry; no copy of the archive is ever staged. The same
//! engine unpacks `unpack-objects` (archives in an object store, read as a
//! stream the host opens itself: [`ArchiveFrom::Stream`]). Archives
//! in a row run in parallel, and the backup manifests the plan copies beside
//! them are fetched first: what they declare bounds what unpacking may write
//! ([`budget`]). Every entry is checked before it is written (no absolute
//! path, no `..`, no link leading out of its root, no device), every write is
//! confined to the clone's roots, and the stream must end as a whole archive
//! does: a truncated or corrupt archive, a failing ssh or `cat`, or a tar
//! error fails the step.

use std::collections::VecDeque;
use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::super::{confined, ExecContext, Files, Kind, Running, Step, Validation};
use crate::clone::progress::Phase;
use crate::contract::source::{ArchiveCompression, UnpackArchiveStep};
use crate::contract::Capability;
use crate::report::Failure;

pub mod budget;
mod entries;

pub use budget::Budget;
use entries::extract;

/// Opens the byte stream of an archive the host reads itself.
pub type OpenStream = Arc<dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Send + Sync>;

/// Where an archive's bytes come from.
#[derive(Clone)]
pub enum ArchiveFrom {
    /// `cat` of a file on a remote host, over ssh.
    Ssh {
        /// The ssh destination.
        dest: String,
        /// The archive's absolute path there.
        remote_path: String,
    },
    /// A stream the host opens itself (the objects of a store).
    Stream {
        /// What messages call it, e.g. `s3://bucket/prefix/pg/base/ID/data.tar.gz`.
        label: String,
        /// Where it comes from, for the notice (the store).
        origin: String,
        open: OpenStream,
    },
}

impl ArchiveFrom {
    /// The archive, as messages name it.
    pub fn label(&self) -> String {
        match self {
            ArchiveFrom::Ssh { dest, remote_path } => format!("{dest}:{remote_path}"),
            ArchiveFrom::Stream { label, .. } => label.clone(),
        }
    }

    fn origin(&self) -> &str {
        match self {
            ArchiveFrom::Ssh { dest, .. } => dest,
            ArchiveFrom::Stream { origin, .. } => origin,
        }
    }
}

impl std::fmt::Debug for ArchiveFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

impl PartialEq for ArchiveFrom {
    fn eq(&self, other: &Self) -> bool {
        self.label() == other.label()
    }
}

impl Eq for ArchiveFrom {}

/// An error of a stream's source (a store that timed out, refused the
/// credentials, lost an object), as opposed to a damaged archive: a
/// [`ArchiveFrom::Stream`] returns it inside an `io::Error` so that the
/// message says what went wrong where.
#[derive(Debug)]
pub struct SourceError {
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SourceError {}

/// One archive to unpack, as a validated plan step describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackArchive {
    /// Where its bytes come from.
    pub from: ArchiveFrom,
    pub compression: Option<ArchiveCompression>,
    /// The directory it is unpacked into.
    pub local: PathBuf,
    /// Its size as the source reported it (0 when unknown).
    pub size_bytes: u64,
}

/// The name of a compression, as messages use it.
pub fn name(c: ArchiveCompression) -> &'static str {
    match c {
        ArchiveCompression::Gzip => "gzip",
        ArchiveCompression::Lz4 => "lz4",
        ArchiveCompression::Zstd => "zstd",
        ArchiveCompression::Bzip2 => "bzip2",
        ArchiveCompression::Snappy => "snappy",
        ArchiveCompression::Xz => "xz",
    }
}

impl Kind for UnpackArchive {
    type Asked = UnpackArchiveStep;

    fn check(u: &UnpackArchiveStep, v: &Validation<'_>) -> Result<Self, Failure> {
        let cap = Capability::RemoteRun {
            target: u.target.clone(),
            program: "cat".into(),
        };
        v.granted(&cap, "plans to read an archive it may not read")?;
        let dest = v.ssh_destination(&u.target)?;
        let p = &u.remote_path;
        if !p.starts_with('/') || !super::super::validate::clean_name(p) || p.ends_with('/') {
            return Err(v.malformed(format!("archive path \"{}\" is not an absolute file path without control characters", p.escape_debug())));
        }
        Ok(UnpackArchive {
            from: ArchiveFrom::Ssh {
                dest,
                remote_path: p.clone(),
            },
            compression: u.compression,
            local: v.resolve(&u.local)?,
            size_bytes: u.size_bytes,
        })
    }

    fn describe(&self) -> Vec<String> {
        let how = match self.from {
            ArchiveFrom::Ssh { .. } => "streamed over ssh",
            ArchiveFrom::Stream { .. } => "streamed from the store",
        };
        vec![format!(
            "unpack {} ({}{}) into {} ({how})",
            self.from.label(),
            self.compression
                .map_or("tar".to_string(), |c| format!("tar, {}", name(c))),
            if self.size_bytes > 0 {
                format!(", {:.1} MiB", self.size_bytes as f64 / 1048576.0)
            } else {
                String::new()
            },
            self.local.display()
        )]
    }

    /// This archive and the ones right after it, in parallel.
    async fn run(&self, r: &mut Running<'_>) -> anyhow::Result<()> {
        run_batch(vec![self.clone()], r).await
    }
}

/// Unpacks `first` and the archives of the `unpack-archive` and
/// `unpack-objects` steps right after it, in parallel.
pub async fn run_batch(first: Vec<UnpackArchive>, r: &mut Running<'_>) -> anyhow::Result<()> {
    let mut batch = first;
    batch.extend(
        r.take_following(|s| match s {
            Step::UnpackArchive(a) => Some(vec![a.clone()]),
            Step::UnpackObjects(o) => Some(o.archives.clone()),
            _ => None,
        })
        .into_iter()
        .flatten(),
    );
    let budget = manifests_first(&batch, r).await?;
    unpack_batch(&batch, r, budget).await
}

/// The backup manifests a plan copies beside the archives of `batch` (later
/// in the plan), copied now, before the archives: what they declare bounds
/// what unpacking may write, and a file system without room for it is
/// refused before anything is unpacked. Without a manifest the bound is the
/// size the source declares, when the archives are not compressed (a
/// compressed backup's size says nothing of what it expands to).
async fn manifests_first(
    batch: &[UnpackArchive],
    r: &mut Running<'_>,
) -> anyhow::Result<Option<Budget>> {
    let ctx = r.ctx;
    let mut manifests = Vec::new();
    let later: Vec<(usize, &Step)> = r.later().collect();
    for (j, step) in later {
        let Step::CopyTree(c) = step else {
            continue;
        };
        let only_manifest = matches!(&c.files, Files::Listed(f) if f.len() == 1 && f[0] == "backup_manifest");
        if !only_manifest || !batch.iter().any(|a| a.local == c.local) {
            continue;
        }
        let phase = Phase::with_display("copy", None, false);
        c.copy(ctx, &phase).await?;
        phase.finish();
        r.ran_ahead(j);
        manifests.push(c.local.join("backup_manifest"));
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
    Ok(Some(Budget::new(
        limit,
        format!("{what} {declared} bytes of files"),
    )))
}

/// Archives in a row: streamed and unpacked in parallel, writing no more
/// than `budget` allows.
async fn unpack_batch(
    batch: &[UnpackArchive],
    r: &mut Running<'_>,
    budget: Option<Budget>,
) -> anyhow::Result<()> {
    let ctx = r.ctx;
    for a in batch {
        confined(&a.local, &ctx.roots)?;
        super::super::run::create_local(&a.local)?;
    }
    let one = batch.len() == 1;
    crate::report::notice(&format!(
        "unpacking {} archive{} from {} as {} arrive{}, {} at a time",
        batch.len(),
        if one { "" } else { "s" },
        batch[0].from.origin(),
        if one { "it" } else { "they" },
        if one { "s" } else { "" },
        ctx.jobs.clamp(1, batch.len())
    ));
    // Counted in bytes read (over ssh or from the store), against the archives' sizes (else the
    // backup's, which is about as much: it is compressed).
    let total = (ctx.expected_bytes > 0).then_some(ctx.expected_bytes);
    let phase = Phase::with_display("unpack", total, ctx.show_progress);
    let s = unpack_all(batch, ctx, &phase, budget).await?;
    phase.suspend(|| {
        crate::report::info(&format!(
            "{}, {:.1} MiB unpacked from {:.1} MiB read",
            crate::report::count(s.entries, "entry", "entries"),
            s.file_bytes as f64 / 1048576.0,
            s.wire_bytes as f64 / 1048576.0
        ))
    });
    phase.finish();
    r.stats.files += s.entries;
    r.stats.total_bytes += s.file_bytes;
    r.stats.literal_bytes += s.wire_bytes;
    r.stats.archives += batch.len();
    Ok(())
}

/// What unpacking moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries unpacked (files, directories, links).
    pub entries: usize,
    /// Bytes of the files written.
    pub file_bytes: u64,
    /// Bytes read over ssh or from the store (the compressed stream).
    pub wire_bytes: u64,
}

/// What stops the workers: a failure of one archive or the clone being
/// abandoned (an interruption drops the future).
#[derive(Default)]
struct Shared {
    cancel: AtomicBool,
    /// Process groups of the running ssh commands.
    groups: Mutex<Vec<i32>>,
    /// The bytes all archives of the batch may write together.
    budget: Option<Budget>,
}

impl Shared {
    /// Counts `n` bytes about to be written; refuses them when they would
    /// pass the budget (nothing of them is written then).
    fn charge(&self, n: u64) -> Result<(), Fault> {
        match &self.budget {
            Some(b) if !b.take(n) => Err(Fault::TooLarge),
            _ => Ok(()),
        }
    }

    fn stop(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        for pid in self.groups.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            unsafe { libc::kill(-*pid, libc::SIGKILL) };
        }
    }
}

/// Stops the workers and waits for them when dropped, so that nothing writes
/// into the clone's directories once the caller removes what was unpacked.
struct Workers {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Unpacks `archives` with up to `ctx.jobs` in parallel. `phase` counts the
/// bytes read over ssh, against the archives' sizes when all are known.
async fn unpack_all(
    archives: &[UnpackArchive],
    ctx: &ExecContext,
    phase: &Arc<Phase>,
    budget: Option<Budget>,
) -> anyhow::Result<UnpackStats> {
    let before = phase.done();
    if archives.iter().all(|a| a.size_bytes > 0) {
        phase.set_total(before + archives.iter().map(|a| a.size_bytes).sum::<u64>());
    }
    let progress = crate::clone::progress::Progress::new(archives.len(), before, phase.clone());
    let shared = Arc::new(Shared {
        budget,
        ..Default::default()
    });
    let queue: Arc<Mutex<VecDeque<(usize, UnpackArchive)>>> =
        Arc::new(Mutex::new(archives.iter().cloned().enumerate().collect()));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = Workers {
        shared: shared.clone(),
        threads: Vec::new(),
    };
    let ssh = RemoteCat {
        options: ctx.ssh_options.clone(),
        control_path: ctx.control_path.clone(),
    };
    let roots = Arc::new(ctx.roots.clone());
    for w in 0..ctx.jobs.max(1).min(archives.len()) {
        let (queue, shared, done_tx, progress) = (
            queue.clone(),
            shared.clone(),
            done_tx.clone(),
            progress.clone(),
        );
        let (ssh, roots) = (ssh.clone(), roots.clone());
        let t = std::thread::Builder::new()
            .name(format!("pgclone-unpack-{w}"))
            .spawn(move || loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                let Some((i, a)) = next else { break };
                if shared.cancel.load(Ordering::SeqCst) {
                    break;
                }
                let r = unpack_one(&a, &ssh, &roots, &shared, &|n| progress.set(i, n));
                if done_tx.send((i, r)).is_err() {
                    break;
                }
            })?;
        workers.threads.push(t);
    }
    drop(done_tx);
    let mut stats = UnpackStats::default();
    let mut failure: Option<(usize, Failure)> = None;
    while let Some((i, r)) = done_rx.recv().await {
        match r {
            Ok(s) => {
                stats.entries += s.entries;
                stats.file_bytes += s.file_bytes;
                stats.wire_bytes += s.wire_bytes;
            }
            Err(Outcome::Failed(f)) => {
                if failure.is_none() {
                    // The others stop: the clone has failed.
                    shared.stop();
                    failure = Some((i, f));
                }
            }
            Err(Outcome::Cancelled) => {}
        }
    }
    drop(workers);
    if let Some((i, f)) = failure {
        let f = if archives.len() > 1 {
            let extra = format!("archive {} of {}", i + 1, archives.len());
            let detail = match f.detail.clone() {
                Some(d) => format!("{d}\n({extra})"),
                None => extra,
            };
            f.detail(detail)
        } else {
            f
        };
        return Err(f.into());
    }
    phase.set(before + stats.wire_bytes);
    Ok(stats)
}

#[derive(Clone)]
struct RemoteCat {
    options: Vec<String>,
    control_path: Option<PathBuf>,
}

impl RemoteCat {
    /// `ssh DEST cat -- PATH`, through the clone's shared connection when
    /// there is one; the path is quoted for the remote shell.
    fn cat(&self, dest: &str, path: &str) -> std::process::Command {
        crate::remote::SshCommand::new(dest)
            .control_path(self.control_path.as_deref())
            .fast_cipher()
            .options(&self.options)
            .remote(&["cat", "--", path])
            .command()
    }
}

enum Outcome {
    Failed(Failure),
    Cancelled,
}

impl From<Failure> for Outcome {
    fn from(f: Failure) -> Self {
        Outcome::Failed(f)
    }
}

/// Counts the bytes read from ssh (for progress and the size check) and stops
/// reading when the clone is abandoned.
struct Counted<'a, R> {
    inner: R,
    n: u64,
    shared: &'a Shared,
    report: &'a dyn Fn(u64),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.shared.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("cancelled"));
        }
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        (self.report)(self.n);
        Ok(k)
    }
}

/// Where an unpacking error comes from: the stream (the archive is bad or was
/// cut), the local side (a write failed), or the archive's content (refused).
enum Fault {
    Stream(std::io::Error),
    Local(PathBuf, std::io::Error),
    Refused(String),
    /// Writing more would pass the bytes the backup declares.
    TooLarge,
}

fn decoder<'a, R: Read + 'a>(c: Option<ArchiveCompression>, r: R) -> std::io::Result<Box<dyn Read + 'a>> {
    // Buffered reads from the pipe: decoders ask for small pieces.
    let r = std::io::BufReader::with_capacity(256 << 10, r);
    Ok(match c {
        None => Box::new(r),
        Some(ArchiveCompression::Gzip) => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Some(ArchiveCompression::Lz4) => Box::new(lz4_flex::frame::FrameDecoder::new(r)),
        Some(ArchiveCompression::Zstd) => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Some(ArchiveCompression::Bzip2) => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
        Some(ArchiveCompression::Snappy) => Box::new(snap::read::FrameDecoder::new(r)),
        Some(ArchiveCompression::Xz) => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(r)),
    })
}

fn unpack_one(
    a: &UnpackArchive,
    ssh: &RemoteCat,
    roots: &[PathBuf],
    shared: &Shared,
    report: &dyn Fn(u64),
) -> Result<UnpackStats, Outcome> {
    match &a.from {
        ArchiveFrom::Ssh { dest, remote_path } => {
            unpack_over_ssh(a, dest, remote_path, ssh, roots, shared, report)
        }
        ArchiveFrom::Stream { open, .. } => unpack_stream(a, open, roots, shared, report),
    }
}

/// Unpacks an archive the host reads itself: no process, so the stream's
/// own errors (a [`SourceError`] inside them) say what failed.
fn unpack_stream(
    a: &UnpackArchive,
    open: &OpenStream,
    roots: &[PathBuf],
    shared: &Shared,
    report: &dyn Fn(u64),
) -> Result<UnpackStats, Outcome> {
    let source = a.from.label();
    if shared.cancel.load(Ordering::SeqCst) {
        return Err(Outcome::Cancelled);
    }
    let stream = open().map_err(|e| source_failure(&source, &e))?;
    let mut counted = Counted {
        inner: stream,
        n: 0,
        shared,
        report,
    };
    let mut stats = UnpackStats::default();
    let result = read_archive(a, &mut counted, roots, shared, &mut stats);
    stats.wire_bytes = counted.n;
    if shared.cancel.load(Ordering::SeqCst)
        && matches!(result, Err(Fault::Stream(_)))
    {
        return Err(Outcome::Cancelled);
    }
    if let Err(Fault::Stream(e)) = &result {
        if e.get_ref().is_some_and(|x| x.is::<SourceError>()) {
            return Err(source_failure(&source, e).into());
        }
    }
    use std::os::unix::process::ExitStatusExt;
    let ok = std::process::ExitStatus::from_raw(0);
    judge(a, &source, result, &ok, String::new(), counted.n, shared.budget.as_ref()).map(|()| stats)
}

/// The failure of a stream's source (not of the archive in it).
fn source_failure(source: &str, e: &std::io::Error) -> Failure {
    match e.get_ref().and_then(|x| x.downcast_ref::<SourceError>()) {
        Some(s) => {
            let mut f = Failure::new(format!("could not read archive \"{source}\": {}", s.message));
            if let Some(d) = &s.detail {
                f = f.detail(d.clone());
            }
            if let Some(h) = &s.hint {
                f = f.hint(h.clone());
            }
            f
        }
        None => Failure::new(format!("could not read archive \"{source}\"")).detail(e.to_string()),
    }
}

fn unpack_over_ssh(
    a: &UnpackArchive,
    dest: &str,
    remote_path: &str,
    ssh: &RemoteCat,
    roots: &[PathBuf],
    shared: &Shared,
    report: &dyn Fn(u64),
) -> Result<UnpackStats, Outcome> {
    let source = a.from.label();
    let mut cmd = ssh.cat(dest, remote_path);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // This worker thread waits for its ssh before it ends (see crate::child).
    crate::child::bound(&mut cmd);
    crate::report::running(&cmd);
    let mut child = {
        // Registered under the lock, so that a stop either sees it or came first.
        let mut groups = shared.groups.lock().unwrap_or_else(|p| p.into_inner());
        if shared.cancel.load(Ordering::SeqCst) {
            return Err(Outcome::Cancelled);
        }
        let child = cmd.spawn().map_err(|e| {
            Failure::new("could not run ssh")
                .detail(e.to_string())
                .hint("install the OpenSSH client on this host")
        })?;
        groups.push(child.id() as i32);
        child
    };
    let pid = child.id() as i32;
    let stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.take(64 << 10).read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let stdout = child.stdout.take().expect("piped");
    let mut counted = Counted {
        inner: stdout,
        n: 0,
        shared,
        report,
    };
    let mut stats = UnpackStats::default();
    let result = read_archive(a, &mut counted, roots, shared, &mut stats);
    // Whatever happened, ssh is finished with: kill it if it still sends.
    if result.is_err() {
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    drop(counted.inner);
    let status = child.wait();
    crate::child::reaped(pid as u32);
    shared
        .groups
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|g| *g != pid);
    let err_text = err_reader.join().unwrap_or_default();
    let tail = {
        let lines: Vec<&str> = err_text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    };
    stats.wire_bytes = counted.n;
    if shared.cancel.load(Ordering::SeqCst) && result.is_err() {
        // Another archive failed (or the clone was abandoned): its error is
        // the one to report.
        if !matches!(
            result,
            Err(Fault::Refused(_)) | Err(Fault::Local(..)) | Err(Fault::TooLarge)
        ) {
            return Err(Outcome::Cancelled);
        }
    }
    let status =
        status.map_err(|e| Failure::new("could not wait for ssh").detail(e.to_string()))?;
    judge(
        a,
        &source,
        result,
        &status,
        tail,
        counted.n,
        shared.budget.as_ref(),
    )
    .map(|()| stats)
}

/// Unpacks the archive from `stream` and reads it to its end: the stream
/// must end as an archive ends, a second zero block after the one that ended
/// the entries (so an archive cut between two entries is noticed even when
/// it is not compressed), then nothing but zeros; and reading to its end
/// makes the decompressor check its trailer.
fn read_archive<R: Read>(
    a: &UnpackArchive,
    stream: R,
    roots: &[PathBuf],
    shared: &Shared,
    stats: &mut UnpackStats,
) -> Result<(), Fault> {
    let stream = decoder(a.compression, stream).map_err(Fault::Stream)?;
    let mut archive = tar::Archive::new(stream);
    extract(&mut archive, &a.local, roots, shared, stats)?;
    let mut rest = archive.into_inner();
    let mut buf = vec![0u8; 64 << 10];
    let mut trailing = 0u64;
    loop {
        let k = rest.read(&mut buf).map_err(Fault::Stream)?;
        if k == 0 {
            break;
        }
        if buf[..k].iter().any(|b| *b != 0) {
            return Err(Fault::Stream(std::io::Error::other(
                "data follows the end of the tar archive",
            )));
        }
        trailing += k as u64;
    }
    if trailing < 512 {
        return Err(Fault::Stream(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the tar archive ends without its end-of-archive blocks",
        )));
    }
    Ok(())
}

/// What an unpacked archive comes to, once ssh ended with `status` (the end
/// of its standard error in `tail`) after `read` bytes: ssh's (or cat's) own
/// failure is the cause when there is one; then a short or damaged stream,
/// a local write, an entry refused.
fn judge(
    a: &UnpackArchive,
    source: &str,
    result: Result<(), Fault>,
    status: &std::process::ExitStatus,
    tail: String,
    read: u64,
    budget: Option<&Budget>,
) -> Result<(), Outcome> {
    // ssh's (or cat's) own failure is the cause when there is one.
    // (A stream error with ssh killed by a signal is ours: we killed it.)
    let ssh_failed = match &result {
        Ok(()) => !status.success(),
        Err(Fault::Stream(_)) => status.code().is_some_and(|c| c != 0),
        Err(_) => false,
    };
    if ssh_failed {
        let how = crate::report::exit_text(status);
        let hint = match (&a.from, status.code()) {
            (ArchiveFrom::Ssh { dest, .. }, Some(255)) => format!(
                "check that this host reaches the backup host with ssh (ssh -o BatchMode=yes {} true)",
                crate::remote::shell_quote(dest)
            ),
            _ => "check that the archive exists and is readable by the ssh user on the backup host"
                .to_string(),
        };
        return Err(
            Failure::new(format!("could not read archive \"{source}\": ssh {how}"))
                .detail(if tail.is_empty() {
                    "no message".into()
                } else {
                    tail
                })
                .hint(hint)
                .into(),
        );
    }
    match result {
        Ok(()) => {
            if a.size_bytes > 0 && read != a.size_bytes {
                return Err(Failure::new(format!("archive \"{source}\" is incomplete"))
                    .detail(format!(
                        "{} bytes were read, the backup source reported {}",
                        read, a.size_bytes
                    ))
                    .into());
            }
            Ok(())
        }
        Err(Fault::Stream(e)) => {
            let what = match a.compression {
                Some(c) => format!("{}-compressed tar archive", name(c)),
                None => "tar archive".to_string(),
            };
            Err(Failure::new(format!(
                "archive \"{source}\" is corrupt or truncated"
            ))
            .detail(format!(
                "reading it as a {what} failed after {} bytes: {e}",
                read
            ))
            .hint(match a.from {
                ArchiveFrom::Ssh { .. } => "the backup is damaged: check it on the backup host (barman check-backup), or clone from another backup with --backup-id",
                ArchiveFrom::Stream { .. } => "the object in the store is damaged or was cut: list the backups (barman-cloud-backup-list) and clone another with --backup-id",
            })
            .into())
        }
        Err(Fault::Local(path, e)) => Err(Failure::new(format!(
            "could not write \"{}\"",
            path.display()
        ))
        .detail(format!("while unpacking \"{source}\": {e}"))
        .into()),
        Err(Fault::TooLarge) => Err(budget
            .map(|b| b.exceeded(source))
            .unwrap_or_else(|| Failure::new("unpacking exceeded its budget"))
            .into()),
        Err(Fault::Refused(why)) => Err(Failure::new(format!(
            "archive \"{source}\" holds an entry pgclone refuses to unpack"
        ))
        .detail(why)
        .hint("a PostgreSQL base backup's archive holds only files and directories (pgclone makes the tablespace and WAL directory links itself); this archive is not one as the source describes it")
        .into()),
    }
}
