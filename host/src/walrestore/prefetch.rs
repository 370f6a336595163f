//! The prefetcher: a detached process per source that keeps the segments
//! after each standby's last request in the spool while it replays (one
//! prefetcher serves every standby of the source on the host, each by its
//! cursor: see [`super::cursors`]). From a remote directory it streams each
//! batch in one `tar` and spools every entry as it arrives; with a fetch
//! program it runs a few at a time. A source located per file
//! (`locate-wal`) is not prefetched.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::archive::{Archive, Directory, Fetch};
use super::cursors::{Cursor, Owner, Standby};
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

/// A warm-up's batch while another standby is being served: small enough
/// that the other's window is refilled in between.
const SHARED_BATCH: usize = 32;

/// The pid of the prefetcher that holds this source's lock, if one does.
pub fn holder(spool: &Spool) -> Option<u32> {
    if !running(spool) {
        return None;
    }
    spool.read("prefetch.lock")?.trim().parse().ok()
}

/// Takes the source's lock (none: another prefetcher has it) and writes
/// this process's pid in it, for `holder`.
fn take_lock(spool: &Spool) -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let lock = lock_file(spool)?;
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return None;
    }
    let _ = lock.set_len(0);
    let _ = lock.write_at(format!("{}\n", std::process::id()).as_bytes(), 0);
    Some(lock)
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

/// What a warm-up started or joined.
struct Warmed {
    dir: PathBuf,
    pid: u32,
    cursor: PathBuf,
    joined: bool,
}

/// For a clone (run in its target directory): sets that standby's cursor
/// just before `first` (the backup's first segment), with a window of
/// `window` segments, and has the source's prefetcher fill it while the
/// copy runs: the one running (another standby's) is joined, else one is
/// started. Prints the spool directory, the prefetcher's pid, the cursor's
/// file, whether it joined, and the other standbys it serves. 0 when it
/// started; otherwise an ERROR says why not (the clone shows it as the
/// reason its warm-up was skipped) and what to do.
pub fn warm(o: &Options, first: &str, seg_size: u64, window: usize) -> u8 {
    match start_warm(o, first, seg_size, window) {
        Ok(w) => {
            println!(
                "spool={}\npid={}\ncursor={}\njoined={}",
                w.dir.display(),
                w.pid,
                w.cursor.display(),
                if w.joined { "yes" } else { "no" }
            );
            if let Ok(spool) = open_spool(o) {
                let mine = w
                    .cursor
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned());
                for c in spool.cursors() {
                    if Some(&c.key) != mine.as_ref() {
                        println!("shared={}", super::share::describe(&spool, &c));
                    }
                }
            }
            exit::DELIVERED
        }
        Err(p) => {
            log_error(&format!("no warm-up: {}", p.failure));
            p.code
        }
    }
}

fn start_warm(o: &Options, first: &str, seg_size: u64, window: usize) -> Result<Warmed, Problem> {
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
    // The clone runs this in the standby's data directory: the cursor its
    // restore_command moves once the standby starts.
    let path = spool
        .set_warm_cursor(&Standby::here(), &cursor, seg_size, window, Owner::parent())
        .map_err(|e| {
            usage(
                Failure::new(format!(
                    "could not write the cursor in \"{}\"",
                    spool.dir.display()
                ))
                .detail(e.to_string()),
            )
        })?;
    let (pid, joined) = join_or_start(o, &spool).map_err(|e| {
        let _ = std::fs::remove_file(&path);
        problem(
            exit::UNREACHABLE,
            Failure::new("could not start the prefetcher").detail(e.to_string()),
        )
    })?;
    Ok(Warmed {
        dir: spool.dir.clone(),
        pid,
        cursor: path,
        joined,
    })
}

/// The running prefetcher's pid (true: joined), else one started now,
/// once it holds the lock (it may lose it to one started meanwhile).
fn join_or_start(o: &Options, spool: &Spool) -> std::io::Result<(u32, bool)> {
    if let Some(pid) = holder(spool) {
        return Ok((pid, true));
    }
    let child = spawn(o)?;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        if let Some(pid) = holder(spool) {
            return Ok((pid, pid != child));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok((child, false))
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

/// The prefetcher's loop: keeps every standby's window (the segments after
/// its cursor) in the spool; exits when no standby asks any more.
pub fn daemon(o: &Options) -> u8 {
    guard::install();
    let Ok(spool) = open_spool(o) else {
        return exit::USAGE;
    };
    let Some(mut lock) = take_lock(&spool) else {
        return exit::DELIVERED;
    };
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
    let mut missing = Missing::default();
    let mut windows = Windows::default();
    loop {
        let cursors = spool.cursors();
        windows.follow(&cursors);
        if !cursors.iter().any(Cursor::awake) {
            match hand_back(&spool, lock) {
                Some(again) => {
                    lock = again;
                    continue;
                }
                None => return exit::DELIVERED,
            }
        }
        let spooled = clean_below(&spool, &cursors);
        match next_batch(&cursors, &spooled, &missing, &windows) {
            Some((want, seg_size)) => fetch_batch(&fetcher, &want, seg_size, &mut missing),
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Nobody asks: lets the lock go, then looks once more, since a standby
/// (or a warm-up) that found the lock held just before counts on this
/// prefetcher. Some(lock) when there is work again and the lock is still
/// free to take.
fn hand_back(spool: &Spool, lock: std::fs::File) -> Option<std::fs::File> {
    drop(lock);
    if spool.cursors().iter().any(Cursor::awake) {
        return take_lock(spool);
    }
    None
}

/// Removes what every cursor is past; the segments left, for the windows.
fn clean_below(spool: &Spool, cursors: &[Cursor]) -> HashSet<String> {
    let floor = cursors.first().map(|c| c.segment.as_str());
    spool.clean(floor).unwrap_or_default().into_iter().collect()
}

/// Segments found not archived yet, and until when not to ask again.
#[derive(Default)]
struct Missing(HashMap<String, Instant>);

impl Missing {
    fn blocks(&self, first: &str) -> bool {
        self.0.get(first).is_some_and(|t| Instant::now() < *t)
    }
}

/// The batch to fetch now, in one stream: the missing segments of every
/// window that is due, the standbys PostgreSQL replays for first (the
/// emptiest window first), then the warm-ups; and the segment size.
fn next_batch(
    cursors: &[Cursor],
    spooled: &HashSet<String>,
    missing: &Missing,
    windows: &Windows,
) -> Option<(Vec<String>, u64)> {
    let mut plans: Vec<(&Cursor, usize, Vec<String>)> = cursors
        .iter()
        .map(|c| {
            let mut ahead = c.window_segments();
            ahead.truncate(windows.depth(c));
            let ready = ahead.iter().filter(|n| spooled.contains(*n)).count();
            let want = ahead.into_iter().filter(|n| !spooled.contains(n)).collect();
            (c, ready, want)
        })
        .collect();
    plans.sort_by_key(|(c, ready, _)| (c.warm.is_some(), *ready));
    let replaying = cursors.iter().any(|c| c.warm.is_none() && c.awake());
    let mut batch: Vec<String> = Vec::new();
    let mut seg_size = None;
    for (c, ready, mut want) in plans {
        let warming = c.warm.is_some();
        let depth = windows.depth(c);
        if want.is_empty() || !due(ready, depth, warming) || missing.blocks(&want[0]) {
            continue;
        }
        // One source, one cluster: a cursor of another segment size is stale.
        if *seg_size.get_or_insert(c.seg_size) != c.seg_size {
            continue;
        }
        if warming && replaying {
            want.truncate(SHARED_BATCH);
        }
        for n in want {
            if !batch.contains(&n) {
                batch.push(n);
            }
        }
    }
    Some((batch, seg_size?)).filter(|(b, _)| !b.is_empty())
}

/// Whether a window with `ready` of its `window` segments spooled is worth
/// a batch: a clone's warm-up fills its whole window until PostgreSQL asks;
/// a replaying standby's is refilled once half of it is consumed (batches of
/// at least half a window).
fn due(ready: usize, window: usize, warming: bool) -> bool {
    if warming {
        ready < window
    } else {
        ready * 2 <= window
    }
}

/// Fetches one batch into the spool, saying which segments are in flight
/// (a request for one waits rather than fetching it twice).
fn fetch_batch(fetcher: &Fetcher, want: &[String], seg_size: u64, missing: &mut Missing) {
    let spool = fetcher.spool;
    let _ = spool.put_unsynced("inflight", want.join("\n").as_bytes());
    let result = fill(fetcher, want, seg_size);
    let _ = std::fs::remove_file(spool.path("inflight"));
    missing.0.retain(|_, t| Instant::now() < *t);
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
            missing
                .0
                .insert(want[0].clone(), Instant::now() + Duration::from_millis(500));
        }
        Ok(_) => {
            missing.0.remove(&want[0]);
        }
        Err(e) => {
            log("WARNING", &format!("prefetching {}: {e}", want[0]));
            std::thread::sleep(Duration::from_millis(500));
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

/// Each standby's [`Window`], by its cursor's key: opened when its cursor
/// first shows, deepened as its cursor moves, forgotten when it expires.
#[derive(Default)]
struct Windows(HashMap<String, (Window, String)>);

impl Windows {
    fn follow(&mut self, cursors: &[Cursor]) {
        self.0.retain(|k, _| cursors.iter().any(|c| &c.key == k));
        for c in cursors {
            let (w, last) = self
                .0
                .entry(c.key.clone())
                .or_insert_with(|| (Window::open(c.window, c.warm.is_some()), c.segment.clone()));
            w.max = c.window;
            w.depth = w.depth.min(w.max);
            if *last != c.segment {
                let before = Cursor {
                    segment: last.clone(),
                    window: w.depth,
                    ..c.clone()
                };
                w.consumed(&before.window_segments(), &c.segment);
                *last = c.segment.clone();
            }
        }
    }

    /// How many segments after `c` to keep now.
    fn depth(&self, c: &Cursor) -> usize {
        self.0.get(&c.key).map_or(c.window, |(w, _)| w.depth)
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
    fn a_batch_waits_for_half_a_window_and_starts_with_what_is_needed_first() {
        let c = Cursor {
            segment: names(1, 1)[0].clone(),
            seg_size: 16 << 20,
            window: 32,
            standby: PathBuf::from("/a"),
            warm: None,
            age: Duration::ZERO,
            key: "a".into(),
        };
        let mut windows = Windows::default();
        windows.follow(std::slice::from_ref(&c));
        let ahead = names(2, 32);
        // The window opens short: the first stream is its segments, in order.
        let none = HashSet::new();
        let (batch, _) = next_batch(
            std::slice::from_ref(&c),
            &none,
            &Missing::default(),
            &windows,
        )
        .unwrap();
        assert_eq!(batch, ahead[..FIRST_WINDOW].to_vec());
        // More than half of it spooled: no stream yet.
        let five: HashSet<String> = ahead[..5].iter().cloned().collect();
        assert!(next_batch(
            std::slice::from_ref(&c),
            &five,
            &Missing::default(),
            &windows
        )
        .is_none());
        // Half: the missing ones of the window.
        let four: HashSet<String> = ahead[..4].iter().cloned().collect();
        let (batch, _) = next_batch(
            std::slice::from_ref(&c),
            &four,
            &Missing::default(),
            &windows,
        )
        .unwrap();
        assert_eq!(batch, ahead[4..FIRST_WINDOW].to_vec());
        // PostgreSQL took three: the window is six deeper.
        let moved = Cursor {
            segment: ahead[2].clone(),
            ..c
        };
        windows.follow(std::slice::from_ref(&moved));
        assert_eq!(windows.depth(&moved), FIRST_WINDOW + 6);
    }
}
