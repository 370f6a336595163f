//! The prefetcher: a detached process per source that keeps the segments
//! after PostgreSQL's last request in the spool while it replays. From a
//! remote directory it streams each batch in one `tar` and spools every
//! entry as it arrives; with a fetch program it runs a few at a time. A
//! source located per file (`locate-wal`) is not prefetched.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::archive::{Archive, Directory, Fetch};
use super::fetch::{Fetcher, Landing};
use super::landing::Landed;
use super::spool::Spool;
use super::{exit, guard, log, open_spool, problem, Options, Problem};
use crate::report::Failure;
use crate::wal::{self, WalName};

/// Fetch programs run at once for one batch.
const PARALLEL_PROGRAMS: usize = 4;

/// Segments a clone's warm-up keeps in the spool before the standby starts
/// (`clone_wal_prefetch`): 2 GiB of 16 MiB segments.
pub const WARM_WINDOW: usize = 128;

fn lock_file(spool: &Spool) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(spool.path("prefetch.lock"))
        .ok()
}

/// True while a prefetcher holds this source's lock.
pub fn running(spool: &Spool) -> bool {
    let Some(f) = lock_file(spool) else {
        return false;
    };
    use std::os::fd::AsRawFd;
    let free = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if free {
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
    }
    !free
}

/// Starts the prefetcher unless one runs: a detached process, so that
/// PostgreSQL goes on replaying meanwhile.
pub fn ensure_running(o: &Options, spool: &Spool) {
    if running(spool) {
        return;
    }
    if let Err(e) = spawn(o) {
        log("WARNING", &format!("could not start the prefetcher: {e}"));
    }
}

/// Starts a detached prefetcher (its own session, no terminal, no pipes).
fn spawn(o: &Options) -> std::io::Result<u32> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("pgclone"));
    let mut cmd = std::process::Command::new(exe);
    cmd.args(daemon_argv(o));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn().map(|c| c.id())
}

/// For a clone: points the source's cursor just before `first` (the
/// backup's first segment) and starts a prefetcher that fills `window`
/// segments from there while the copy runs; prints the spool directory and
/// the prefetcher's pid for the clone. 0 when it started; otherwise an
/// ERROR says why not (the clone shows it as the reason its warm-up was
/// skipped) and what to do.
pub fn warm(o: &Options, first: &str, seg_size: u64, window: usize) -> u8 {
    match start_warm(o, first, seg_size, window) {
        Ok((dir, pid)) => {
            println!("spool={}\npid={pid}", dir.display());
            exit::DELIVERED
        }
        Err(p) => {
            log_error(&format!("no warm-up: {}", p.failure));
            p.code
        }
    }
}

fn start_warm(
    o: &Options,
    first: &str,
    seg_size: u64,
    window: usize,
) -> Result<(PathBuf, u32), Problem> {
    let usage = |f: Failure| problem(exit::USAGE, f);
    let Some(WalName::Segment { tli, log, seg }) = wal::parse_name(first) else {
        return Err(usage(Failure::new(format!(
            "\"{first}\" is not a WAL segment name"
        ))));
    };
    if !wal::valid_size(seg_size) {
        return Err(usage(Failure::new(format!(
            "{seg_size} is not a WAL segment size"
        ))));
    }
    let spool = open_spool(o).map_err(usage)?;
    if window == 0 || o.prefetch == 0 {
        return Err(usage(
            Failure::new("prefetching is turned off")
                .detail(if o.prefetch == 0 {
                    "this restore_command prefetches no segments (-p/--parallel 0, or wal_restore_prefetch = 0)"
                } else {
                    "--warm-segments 0 asks for none"
                })
                .hint(
                    "for the clone to fetch the WAL since the backup while it copies, remove -p 0 from \
                     restore_command (or set wal_restore_prefetch above 0); clone_wal_prefetch = 0 turns \
                     the warm-up off without a word",
                ),
        ));
    }
    if running(&spool) {
        return Err(usage(
            Failure::new(format!(
                "a prefetcher is already filling the spool directory \"{}\"",
                spool.dir.display()
            ))
            .detail(
                "another standby of this host reads the same source through the same spool (or an \
                 earlier warm-up still runs); that prefetcher follows its own standby's requests, not \
                 this backup's WAL",
            )
            .hint(
                "give each standby its own spool directory (--spool-dir in restore_command, or \
                 wal_restore_spool_dir), or start again once that prefetcher has ended (30 s after its \
                 last request)",
            ),
        ));
    }
    // The prefetcher reads the answer cached here; a source it cannot
    // prefetch from, or cannot reach, is said now rather than by its silence.
    let archive = o.source.archive(&spool, false).map_err(|p| {
        problem(
            p.code,
            Failure {
                message: format!("{}: {}", o.source.describe(), p.failure.message),
                ..p.failure
            },
        )
    })?;
    if archive.per_name {
        return Err(usage(Failure::new(format!(
            "{} locates its WAL one file at a time (locate-wal): it is fetched when PostgreSQL asks, never ahead",
            o.source.describe()
        ))));
    }
    let Some(cursor) = wal::preceding(tli, log, seg, seg_size) else {
        return Err(usage(Failure::new(format!(
            "{first} is the first segment there is: nothing precedes it to start after"
        ))));
    };
    spool.set_cursor(&cursor, seg_size).map_err(|e| {
        usage(
            Failure::new(format!(
                "could not write the cursor in \"{}\"",
                spool.dir.display()
            ))
            .detail(e.to_string()),
        )
    })?;
    let o = Options {
        prefetch: o.prefetch.max(window).min(1024),
        warm: true,
        ..o.clone()
    };
    let pid = spawn(&o).map_err(|e| {
        problem(
            exit::UNREACHABLE,
            Failure::new("could not start the prefetcher").detail(e.to_string()),
        )
    })?;
    Ok((spool.dir.clone(), pid))
}

fn log_error(msg: &str) {
    log("ERROR", msg);
}

/// The prefetcher's command line: the same source, so that it fills the
/// same spool directory.
fn daemon_argv(o: &Options) -> Vec<String> {
    let s = &o.source;
    let mut v = Vec::new();
    if s.barman.is_none() {
        if !s.config.path.as_os_str().is_empty() && s.config.path.exists() {
            v.extend(["-f".into(), s.config.path.display().to_string()]);
        }
        if let Some(p) = &s.plugins.source {
            v.extend(["--plugins-config".into(), p.display().to_string()]);
        }
    }
    // A drop-in's configuration is its command line: the prefetcher gets it.
    let relaunch = o.relaunch.as_deref().filter(|r| !r.is_empty());
    if let Some(words) = relaunch {
        v.extend([
            words[0].clone(),
            "--prefetch-daemon".into(),
            "--spool-dir".into(),
            o.spool.display().to_string(),
            "--parallel".into(),
            o.prefetch.to_string(),
        ]);
        if o.warm {
            v.push("--warm".into());
        }
        v.extend(words[1..].iter().cloned());
        v.extend(["-".into(), "-".into()]);
        return v;
    }
    v.extend([
        "wal-restore".to_string(),
        "--prefetch-daemon".into(),
        "--spool-dir".into(),
        o.spool.display().to_string(),
        "--parallel".into(),
        o.prefetch.to_string(),
        "--connect-timeout".into(),
        s.connect_timeout.to_string(),
        "--timeout".into(),
        s.timeout.to_string(),
    ]);
    if o.warm {
        v.push("--warm".into());
    }
    for opt in &s.ssh_options {
        v.push(format!("--ssh-option={opt}"));
    }
    match &s.barman {
        Some(b) => {
            if let Some(p) = &b.port {
                v.extend(["--port".into(), p.clone()]);
            }
            if let Some(c) = &b.config {
                v.extend(["--config".into(), c.clone()]);
            }
            // As the caller was given it: the prefetcher finds the same user
            // and keys the same spool directory.
            v.extend([b.dest.clone(), b.server.clone()]);
        }
        None => v.extend(["--source".into(), s.plugin.clone()]),
    }
    v.extend(["-".into(), "-".into()]);
    v
}

/// The prefetcher's loop: keeps up to `prefetch` segments after the cursor
/// in the spool; exits when nothing was asked for a while.
pub fn daemon(o: &Options) -> u8 {
    guard::install();
    let Ok(spool) = open_spool(o) else {
        return exit::USAGE;
    };
    let Some(lock) = lock_file(&spool) else {
        return exit::USAGE;
    };
    use std::os::fd::AsRawFd;
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return exit::DELIVERED;
    }
    // Background work: PostgreSQL's replay and the foreground restore
    // processes come first (ssh inherits this).
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    let Ok(archive) = o.source.archive(&spool, false) else {
        return exit::UNREACHABLE;
    };
    if archive.per_name {
        return exit::DELIVERED;
    }
    let fetcher = Fetcher {
        source: &o.source,
        spool: &spool,
        archive,
    };
    let mut last_cursor = String::new();
    let mut last_ahead: Vec<String> = Vec::new();
    let mut window = Window::open(o.prefetch, o.warm);
    let mut first_cursor: Option<String> = None;
    let mut idle_since = Instant::now();
    let mut missing_until: Option<(String, Instant)> = None;
    loop {
        let Some((cursor, seg_size)) = spool.cursor() else {
            return exit::DELIVERED;
        };
        if cursor != last_cursor {
            window.consumed(&last_ahead, &cursor);
            last_cursor = cursor.clone();
            idle_since = Instant::now();
        } else if idle_since.elapsed() > Duration::from_secs(30) {
            return exit::DELIVERED;
        }
        // A clone's warm-up fills the whole window until PostgreSQL asks;
        // then batches of at least half a window, as always.
        let warming = o.warm && first_cursor.get_or_insert_with(|| cursor.clone()) == &cursor;
        let ready = spool.clean(&cursor).unwrap_or(0);
        let Some(WalName::Segment {
            tli,
            log: xlog,
            seg,
        }) = wal::parse_name(&cursor)
        else {
            return exit::USAGE;
        };
        let ahead = wal::following(tli, xlog, seg, seg_size, o.prefetch);
        let want = window.batch(&ahead, ready, warming, |n| spool.has(n));
        last_ahead = ahead;
        let blocked = missing_until
            .as_ref()
            .is_some_and(|(n, t)| want.first() == Some(n) && Instant::now() < *t);
        if want.is_empty() || blocked {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let _ = spool.put_unsynced("inflight", want.join("\n").as_bytes());
        let result = fill(&fetcher, &want, seg_size);
        let _ = std::fs::remove_file(spool.path("inflight"));
        match result {
            Ok(0) => {
                log(
                    "DEBUG",
                    &format!(
                        "none of {} .. {} is archived yet",
                        want[0],
                        want[want.len() - 1]
                    ),
                );
                // Not archived yet: look again a little later.
                missing_until =
                    Some((want[0].clone(), Instant::now() + Duration::from_millis(500)));
            }
            Ok(_) => {
                missing_until = None;
                // Spooling is progress: not idle while a warm-up fills.
                idle_since = Instant::now();
            }
            Err(e) => {
                log("WARNING", &format!("prefetching {}: {e}", want[0]));
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// How deep the prefetcher's window is when it opens at PostgreSQL's first
/// request: the first stream starts at once and is short, so the first
/// segments come fast; PostgreSQL's consumption then deepens it.
pub const FIRST_WINDOW: usize = 8;

/// The batching policy: how many segments after the cursor the prefetcher
/// keeps (the window), and which to fetch in one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Segments after the cursor to keep now.
    pub depth: usize,
    /// The most (`-p`).
    pub max: usize,
}

impl Window {
    /// Opens at the first request: [`FIRST_WINDOW`] deep (no deeper than
    /// `max`), or whole for a clone's warm-up, which fills it before
    /// PostgreSQL asks.
    pub fn open(max: usize, warm: bool) -> Window {
        let depth = if warm { max } else { FIRST_WINDOW.min(max) };
        Window { depth, max }
    }

    /// The cursor moved from where `previous_ahead` was counted to `cursor`:
    /// two more segments deep for each consumed (it doubles per window
    /// PostgreSQL replays), never more than `max`. A jump (another
    /// timeline, a segment outside the window) counts as one.
    pub fn consumed(&mut self, previous_ahead: &[String], cursor: &str) {
        let n = previous_ahead
            .iter()
            .position(|a| a == cursor)
            .map_or(1, |i| i + 1);
        self.depth = (self.depth + 2 * n).min(self.max);
    }

    /// The segments to stream now, in order: those of the window (the first
    /// `depth` of `ahead`, the segments after the cursor) the spool lacks.
    /// None while at least half the window is spooled (`ready`), so that
    /// streams are few and long; a warm-up fills the whole window first.
    /// The batch starts with the segment PostgreSQL needs first: a request
    /// never waits behind one it does not need yet.
    pub fn batch(
        &self,
        ahead: &[String],
        ready: usize,
        warming: bool,
        spooled: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let full = if warming {
            ready >= self.depth
        } else {
            ready * 2 > self.depth
        };
        if full {
            return Vec::new();
        }
        ahead
            .iter()
            .take(self.depth)
            .filter(|n| !spooled(n))
            .cloned()
            .collect()
    }
}

/// Spools what it can of `want`; how many it spooled. Files land in the
/// spool bounded by the cursor's segment size, are checked, and only then
/// take their names.
fn fill(f: &Fetcher, want: &[String], seg_size: u64) -> std::io::Result<usize> {
    let into = Landing {
        dir: &f.spool.dir,
        limit: seg_size,
    };
    match &f.archive {
        Archive { store: Some(w), .. } => {
            let mut count = 0;
            f.stream_store(w, want, into, &mut |name, landed| {
                if landed.is_ok_and(|l| spool_landed(f.spool, &name, l)) {
                    count += 1;
                }
            })
            .map_err(|p| std::io::Error::other(p.failure.to_string()))?;
            Ok(count)
        }
        Archive {
            directory: Some(dir),
            ..
        } => stream_into_spool(f, dir, want, into),
        Archive {
            fetch: Some(fetch), ..
        } => Ok(run_into_spool(f, fetch, want, into)),
        _ => Ok(0),
    }
}

/// Checks a landed segment and gives it its name in the spool; a damaged
/// file is never spooled (the foreground path reports it).
fn spool_landed(spool: &Spool, name: &str, landed: Landed) -> bool {
    landed.check(name, None).is_ok() && landed.place(&spool.path(name), false).is_ok()
}

/// Fetches `names` in one remote `tar` and spools each checked segment as
/// soon as it has arrived.
fn stream_into_spool(
    f: &Fetcher,
    dir: &Directory,
    names: &[String],
    into: Landing,
) -> std::io::Result<usize> {
    let mut count = 0;
    f.stream_directory(dir, names, into, &mut |name, landed| {
        if landed.is_ok_and(|l| spool_landed(f.spool, &name, l)) {
            count += 1;
        }
    })
    .map_err(|p| std::io::Error::other(p.failure.to_string()))?;
    Ok(count)
}

/// Runs the fetch program for the first of `names`, a few at a time, and
/// spools each checked segment; stops at the first the archive lacks.
fn run_into_spool(f: &Fetcher, fetch: &Fetch, names: &[String], into: Landing) -> usize {
    let mut count = 0;
    for batch in names.chunks(PARALLEL_PROGRAMS) {
        let results: Vec<Option<Landed>> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|n| s.spawn(move || f.with_command(fetch, n, false, into).ok().flatten()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().ok().flatten())
                .collect()
        });
        for (name, got) in batch.iter().zip(results) {
            if !got.is_some_and(|l| spool_landed(f.spool, name, l)) {
                return count;
            }
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(from: u32, n: usize) -> Vec<String> {
        wal::following(1, 0, from, 16 << 20, n)
    }

    #[test]
    fn the_window_opens_short_and_deepens_as_postgresql_consumes() {
        let mut w = Window::open(32, false);
        assert_eq!(w.depth, FIRST_WINDOW);
        // Nothing spooled: the first stream is the first window, in order.
        let ahead = names(2, 32);
        let batch = w.batch(&ahead, 0, false, |_| false);
        assert_eq!(batch, ahead[..FIRST_WINDOW].to_vec());
        // PostgreSQL took three: six deeper.
        w.consumed(&ahead, &ahead[2]);
        assert_eq!(w.depth, FIRST_WINDOW + 6);
        // A jump counts as one.
        w.consumed(&ahead, "000000020000000000000040");
        assert_eq!(w.depth, FIRST_WINDOW + 8);
        // Never deeper than -p.
        for _ in 0..40 {
            w.consumed(&ahead, &ahead[0]);
        }
        assert_eq!(w.depth, 32);
        // -p below the first window: that is the window.
        assert_eq!(Window::open(4, false).depth, 4);
        // A warm-up opens it whole.
        assert_eq!(Window::open(128, true).depth, 128);
    }

    #[test]
    fn a_batch_waits_for_half_a_window_and_skips_what_is_spooled() {
        let w = Window { depth: 8, max: 32 };
        let ahead = names(2, 32);
        // More than half spooled: no stream yet.
        assert!(w.batch(&ahead, 5, false, |_| true).is_empty());
        // Half: the missing ones of the window, the first needed first.
        let spooled = |n: &str| ahead[..4].iter().any(|a| a == n);
        let batch = w.batch(&ahead, 4, false, spooled);
        assert_eq!(batch, ahead[4..8].to_vec());
        // A warm-up fills it whole before PostgreSQL asks.
        assert!(!w.batch(&ahead, 5, true, |_| false).is_empty());
        assert!(w.batch(&ahead, 8, true, |_| false).is_empty());
    }
}
