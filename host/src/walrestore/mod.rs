//! `pgclone wal-restore`: a drop-in for barman-wal-restore as PostgreSQL's
//! restore_command.
//!
//! Exit codes. PostgreSQL takes every status from 1 to 125 as "not
//! available": in standby mode it goes on (to streaming, or asks again), but
//! in a targeted recovery (recovery.signal without standby.signal, or a
//! recovery.conf without standby_mode) it takes it as the end of the archive,
//! ends recovery and promotes. A status above 125 makes it stop recovery.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | the complete, checked file is at %p |
//! | 1 | the file is not in the archive (normal at the end of the archive) |
//! | 2 | invalid arguments, configuration or spool directory (standby mode) |
//! | 3 | the source could not be reached, or its fetch program failed (standby mode) |
//! | 4 | the archived file is damaged or of another cluster: not delivered (standby mode) |
//! | 128 | targeted recovery only: anything but 0 and 1, after retrying an unreachable or failing source for `--retry-for` seconds; recovery stops instead of promoting early |
//!
//! 128 because it is the lowest status PostgreSQL treats as fatal that it does
//! not report as something else: 126 and 127 read "command not executable" /
//! "command not found", and 128+N is what a shell returns for a death by
//! signal N (143, SIGTERM, is a shutdown to PostgreSQL, not an error).
//!
//! Sources: the WAL comes from a backup source plugin (barman-wal-restore's
//! command line selects the Barman one), which describes once where its WAL
//! is (`locate-wal-archive`, contract 1.2.0): a remote directory, a program that
//! fetches one file, or neither (then it is asked per file, `locate-wal`).
//! The host does every fetch itself; no WAL passes through the plugin.
//!
//! Speed: a segment in the spool is delivered without loading the plugin;
//! the plugin's answer is cached in the spool; every process shares one ssh
//! connection per host (ControlMaster); a remote directory is read directly
//! (no Barman process per segment); a background prefetcher keeps the next
//! segments in the spool while PostgreSQL replays, and a spooled segment is
//! handed over by rename. Safety: the spool is trusted only if it is the
//! user's own, and everything in it is kept per source; every delivered file
//! is checked (size, long page header, system identifier of the data
//! directory); every ssh and every fetch program is bounded.

pub mod archive;
pub mod cluster;
pub mod cursors;
pub mod fetch;
pub mod guard;
pub mod landing;
mod objects;
pub mod prefetch;
pub mod share;
pub mod source;
pub mod spool;
pub mod ssh;
pub mod timing;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::report::Failure;
use crate::wal::WalName;
use cluster::Cluster;
use fetch::Fetcher;
use source::WalSource;
use spool::{Spool, Taken};

/// The documented exit codes.
pub mod exit {
    pub const DELIVERED: u8 = 0;
    pub const NOT_FOUND: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const DAMAGED: u8 = 4;
    /// Targeted recovery only: PostgreSQL stops recovery (see the module).
    pub const STOP_RECOVERY: u8 = 128;
}

/// What one invocation was asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub source: WalSource,
    /// The spool's top directory (each source has its own directory in it).
    pub spool: PathBuf,
    /// Segments to keep ahead of PostgreSQL (0: no prefetch).
    pub prefetch: usize,
    pub partial: bool,
    pub test: bool,
    pub wal_name: String,
    pub wal_dest: PathBuf,
    /// Targeted recovery: seconds to retry an unreachable or failing source
    /// before stopping recovery.
    pub retry_for: u64,
    /// The prefetcher fills its whole window before PostgreSQL's first
    /// request (started by a clone, see [`prefetch::warm`]).
    pub warm: bool,
    /// The command that reopens this source when it is not `wal-restore`'s
    /// own: the subcommand, its options and arguments before `%f %p`
    /// (`barman-cloud-wal-restore --endpoint-url URL SOURCE_URL SERVER`),
    /// which hold the source's configuration; the prefetcher runs it.
    pub relaunch: Option<Vec<String>>,
}

/// Why a request could not be served: the standby-mode code and the message.
#[derive(Debug)]
pub struct Problem {
    pub code: u8,
    pub failure: Failure,
}

pub fn problem(code: u8, failure: Failure) -> Problem {
    Problem { code, failure }
}

fn log(level: &str, msg: &str) {
    eprintln!("{level}: pgclone wal-restore: {msg}");
}

/// The source's spool.
fn open_spool(o: &Options) -> Result<Spool, Failure> {
    Spool::open(&o.spool, &o.source.key(), &o.source.identity())
}

/// Runs one restore_command invocation and returns its exit code.
pub fn run(o: &Options) -> u8 {
    let code = run_timed(o);
    timing::finish();
    code
}

fn run_timed(o: &Options) -> u8 {
    guard::install();
    // pg_rewind asks for pg_wal/<name> itself: exactly that file, no prefetch.
    let rewind = o
        .wal_dest
        .file_name()
        .is_some_and(|f| f == o.wal_name.as_str());
    let cluster = if o.test {
        Cluster::default()
    } else {
        Cluster::detect(&o.wal_dest, rewind)
    };
    timing::mark("cluster");
    let started = Instant::now();
    let result = (|| {
        let spool = open_spool(o)
            .map_err(|f| problem(exit::USAGE, f))?
            .serving(cursors::Standby::of(&cluster), o.prefetch);
        timing::mark("spool");
        if o.test {
            return test_connection(o, &spool);
        }
        let kind = fetch::require_wal_name(&o.wal_name)?;
        let deadline = started + Duration::from_secs(o.retry_for);
        loop {
            match restore(o, &spool, &cluster, kind, rewind) {
                Err(p)
                    if cluster.targeted
                        && p.code == exit::UNREACHABLE
                        && Instant::now() < deadline =>
                {
                    let left = deadline.saturating_duration_since(Instant::now());
                    log(
                        "WARNING",
                        &format!(
                            "{}; retrying (recovery stops in {} s if this goes on)",
                            p.failure.message,
                            left.as_secs()
                        ),
                    );
                    std::thread::sleep(left.min(Duration::from_secs(2)));
                }
                other => return other,
            }
        }
    })();
    match result {
        Ok(code) => code,
        Err(p) if cluster.targeted => stop_recovery(o, p, started.elapsed()),
        Err(p) => {
            log("ERROR", &p.failure.to_string());
            p.code
        }
    }
}

/// The status for a call refused before it could start (invalid arguments or
/// configuration; `dest` is %p if it is known): 2, or in a targeted recovery
/// the status that stops recovery rather than promoting early.
pub fn refusal_code(dest: &Path) -> u8 {
    if Cluster::detect(dest, false).targeted {
        log(
            "ERROR",
            "stopping recovery: this is a targeted recovery, where an invalid restore_command would \
             otherwise end recovery early and promote\nHINT: correct the restore_command, then start the server again",
        );
        exit::STOP_RECOVERY
    } else {
        exit::USAGE
    }
}

/// Targeted recovery: any status up to 125 would end recovery here and
/// promote before the target, so the status makes PostgreSQL stop instead.
fn stop_recovery(o: &Options, p: Problem, waited: Duration) -> u8 {
    let why = "this is a targeted recovery (recovery.signal without standby.signal): \
               a \"not available\" status would end recovery here and promote before the recovery target";
    let detail = match p.failure.detail.as_deref() {
        Some(d) if !d.is_empty() => format!("{d}\n{why}"),
        _ => why.to_string(),
    };
    let hint = match p.code {
        exit::UNREACHABLE => format!(
            "tried for {} s; make {} reachable and start the server again: recovery \
             resumes where it stopped (--retry-for / wal_restore_retry_seconds sets how long to retry)",
            waited.as_secs(),
            o.source.describe()
        ),
        exit::DAMAGED => format!(
            "{} in the archive of {} is damaged or belongs to another cluster: repair the archive, \
             then start the server again",
            o.wal_name,
            o.source.describe()
        ),
        _ => "correct the restore_command, then start the server again".to_string(),
    };
    let f = Failure::new(format!("stopping recovery: {}", p.failure.message))
        .detail(detail)
        .hint(hint);
    log("ERROR", &f.to_string());
    exit::STOP_RECOVERY
}

/// `-t`: the source answers where its WAL is, and its host is reachable.
fn test_connection(o: &Options, spool: &Spool) -> Result<u8, Problem> {
    let archive = o.source.archive(spool, true)?;
    let fetcher = Fetcher {
        source: &o.source,
        spool,
        archive,
    };
    let place = match (&fetcher.archive.directory, &fetcher.archive.fetch) {
        _ if fetcher.archive.store.is_some() => {
            let w = fetcher.archive.store.as_ref().expect("checked");
            let store = fetcher.open_store(w)?;
            store
                .list(&w.prefix, true, 10_000)
                .map_err(|e| objects::store_problem(&e))?;
            format!("{} under {}", store.describe(), w.prefix)
        }
        (Some(dir), _) => {
            let host = fetcher.directory_host(dir)?;
            host.run_ok(&["test".into(), "-d".into(), dir.path.clone()])
                .map_err(|f| problem(exit::UNREACHABLE, f))?;
            format!("WAL directory {}", dir.path)
        }
        (None, Some(f)) => format!("fetched with {}", f.argv[0]),
        (None, None) => "located per file by the plugin".to_string(),
    };
    let whom = match &o.source.barman {
        Some(b) => format!("the server {}", b.server),
        None => o.source.describe(),
    };
    println!("Ready to retrieve WAL files from {whom} ({place})");
    Ok(exit::DELIVERED)
}

/// `op: failure` (the operation named, e.g. which file for which source).
fn during(op: &str, p: Problem) -> Problem {
    Problem {
        code: p.code,
        failure: Failure {
            message: format!("{op}: {}", p.failure.message),
            ..p.failure
        },
    }
}

/// Hands over a spooled segment after checking it; false when there is none
/// (or it failed its checks and was discarded).
fn take_from_spool(o: &Options, spool: &Spool, cluster: &Cluster) -> bool {
    match spool.take(&o.wal_name, &o.wal_dest, cluster.sysid) {
        Ok(Taken::Delivered) => true,
        Ok(Taken::Absent) => false,
        Ok(Taken::Rejected(why)) => {
            log(
                "WARNING",
                &format!("discarded the spooled {}: {why}", o.wal_name),
            );
            false
        }
        Err(e) => {
            log("WARNING", &format!("spool: {e}"));
            false
        }
    }
}

/// One try at delivering the file: Ok(0) delivered, Ok(1) not in the archive.
fn restore(
    o: &Options,
    spool: &Spool,
    cluster: &Cluster,
    kind: WalName,
    rewind: bool,
) -> Result<u8, Problem> {
    let segment = matches!(kind, WalName::Segment { .. });
    if segment && take_from_spool(o, spool, cluster) {
        timing::mark("take");
        timing::outcome("hit");
        after_delivery(o, spool, cluster, rewind);
        return Ok(exit::DELIVERED);
    }
    timing::mark("take");
    // The prefetcher may be fetching it right now: wait for it rather than fetch it twice.
    if segment
        && !rewind
        && wait_for_inflight(spool, &o.wal_name)
        && take_from_spool(o, spool, cluster)
    {
        timing::mark("wait");
        timing::outcome("waited");
        after_delivery(o, spool, cluster, rewind);
        return Ok(exit::DELIVERED);
    }
    timing::mark("wait");
    let op = format!("fetching {} for {}", o.wal_name, o.source.describe());
    let archive = o.source.archive(spool, false).map_err(|p| during(&op, p))?;
    let fetcher = Fetcher {
        source: &o.source,
        spool,
        archive,
    };
    if segment {
        open_window(o, spool, cluster, &fetcher, rewind);
        timing::mark("window");
    }
    let Some(landed) = fetch_one(o, &fetcher, segment, cluster).map_err(|p| during(&op, p))? else {
        timing::mark("fetch");
        timing::outcome("missing");
        return Ok(exit::NOT_FOUND);
    };
    if let Err(why) = landed.check(&o.wal_name, cluster.sysid) {
        return Err(problem(
            exit::DAMAGED,
            Failure::new(format!("not delivered: {why}")),
        ));
    }
    if let Err(e) = landed.deliver(&o.wal_dest) {
        return Err(problem(
            exit::UNREACHABLE,
            Failure::new(format!("cannot write \"{}\"", o.wal_dest.display()))
                .detail(e.to_string()),
        ));
    }
    timing::mark("fetch");
    timing::outcome("fetched");
    if segment {
        after_delivery(o, spool, cluster, rewind);
    }
    Ok(exit::DELIVERED)
}

/// The requested file as the source's archive describes it, landed in the
/// spool and bounded by the cluster's segment size; `None` when the archive
/// does not have it. A directory answers for what it holds; what it lacks,
/// or holds in a form the host cannot read, is asked of the source's fetch
/// program when it has one: a source may hold segments it has received but
/// not yet archived (Barman's `incoming/` and `streaming/`, which `barman
/// get-wal` serves), and recovery must get every segment the source has.
/// With `--partial`, a segment nobody has is asked for as `.partial`.
/// (barman-cloud-wal-restore's drop-in sets it unless `--no-partial`.)
fn fetch_one(
    o: &Options,
    f: &Fetcher,
    segment: bool,
    cluster: &Cluster,
) -> Result<Option<landing::Landed>, Problem> {
    let name = o.wal_name.as_str();
    let into = fetch::Landing {
        dir: &f.spool.dir,
        limit: cluster.file_bound(),
    };
    if f.archive.per_name {
        return f.located(name, into);
    }
    let fetch = f.archive.fetch.as_ref();
    if let Some(w) = &f.archive.store {
        // A segment the archive has only as `.partial` (the last one of a
        // timeline, archived at a promotion), when allowed, as it is.
        let found = match f.read_store(w, name, name, into)? {
            None if o.partial && segment => {
                f.read_store(w, &format!("{name}.partial"), name, into)?
            }
            found => found,
        };
        match found {
            Some(Ok(l)) if fetch.is_none() || l.check(name, cluster.sysid).is_ok() => {
                return Ok(Some(l));
            }
            Some(Err(e)) if fetch.is_none() => return Err(fetch::damaged(name, &e)),
            Some(_) | None => {}
        }
    } else if let Some(dir) = &f.archive.directory {
        match f.read_directory(dir, name, into)? {
            // What the host reads (the caller checks it), or no program to
            // ask instead.
            Some(Ok(l)) if fetch.is_none() || l.check(name, cluster.sysid).is_ok() => {
                return Ok(Some(l));
            }
            Some(Err(e)) if fetch.is_none() => return Err(fetch::damaged(name, &e)),
            // There but unreadable or damaged, or not archived (yet): the
            // program may do better.
            Some(_) | None => {}
        }
    }
    let Some(fetch) = fetch else {
        return Ok(None);
    };
    match f.with_command(fetch, name, false, into)? {
        Some(l) => Ok(Some(l)),
        None if o.partial && segment && fetch.partial_argv.is_some() => {
            f.with_command(fetch, name, true, into)
        }
        None => Ok(None),
    }
}

/// A segment the spool could not serve opens the prefetcher's window there:
/// the cursor moves to it and the prefetcher streams the segments after it
/// while this process fetches it, not only once it has. The ssh connection
/// both use is made first, here, so that two processes never race to make
/// it. The segment size is the cluster's, else the usual 16 MiB until the
/// delivered segment's header says (see [`after_delivery`]).
fn open_window(o: &Options, spool: &Spool, cluster: &Cluster, f: &Fetcher, rewind: bool) {
    if rewind || o.prefetch == 0 || f.archive.per_name {
        return;
    }
    let target = match (&f.archive.directory, &f.archive.fetch) {
        _ if f.archive.store.is_some() => None,
        (Some(dir), _) => Some(&dir.target),
        (None, Some(fetch)) => fetch.target.as_ref(),
        (None, None) => return,
    };
    if let Some(t) = target {
        let connected = f
            .source
            .host(t, spool)
            .is_ok_and(|h| h.ensure_master().is_ok());
        if !connected {
            // The fetch says why.
            return;
        }
    }
    let seg_size = cluster.seg_size.unwrap_or(16 << 20);
    if spool.set_cursor(&o.wal_name, seg_size).is_ok() {
        prefetch::ensure_running(o, spool);
    }
}

/// True when `name` arrived in the spool while a running prefetcher was
/// fetching it; false at once when no prefetcher has it in flight.
fn wait_for_inflight(spool: &Spool, name: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if spool.has(name) {
            return true;
        }
        let inflight = spool.read("inflight").unwrap_or_default();
        if !inflight.lines().any(|l| l == name)
            || !prefetch::running(spool)
            || Instant::now() > deadline
        {
            return spool.has(name);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Moves the cursor and makes sure a prefetcher is filling the spool. The
/// segment size is the cluster's (pg_control), else what the delivered
/// segment's checked header says.
fn after_delivery(o: &Options, spool: &Spool, cluster: &Cluster, rewind: bool) {
    if rewind || o.prefetch == 0 {
        return;
    }
    let seg_size = cluster
        .seg_size
        .or_else(|| {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = std::fs::File::open(&o.wal_dest).ok()?;
            let mut b = [0u8; 4];
            f.seek(SeekFrom::Start(32)).ok()?;
            f.read_exact(&mut b).ok()?;
            Some(u32::from_le_bytes(b) as u64)
        })
        .unwrap_or(16 << 20);
    let _ = spool.set_cursor(&o.wal_name, seg_size);
    timing::mark("cursor");
    prefetch::ensure_running(o, spool);
    timing::mark("prefetcher");
}

/// Where the spool goes by default (barman-wal-restore's default).
pub fn default_spool() -> PathBuf {
    PathBuf::from("/var/tmp/walrestore")
}

/// For tests: the spool layout is private, but its directory is not.
pub fn spool_dir(o: &Options) -> PathBuf {
    o.spool.join(o.source.key())
}
