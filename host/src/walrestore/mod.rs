//! `pgclone wal-restore`: a drop-in for barman-wal-restore as PostgreSQL's
//! restore_command.
//!
//! Exit codes (PostgreSQL treats every non-zero status up to 125 as "not
//! available" and goes on, e.g. to streaming; pgclone never returns more):
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | the complete, checked file is at %p |
//! | 1 | the file is not in the archive (normal at the end of the archive) |
//! | 2 | invalid arguments or configuration |
//! | 3 | the Barman host could not be reached, or barman failed |
//! | 4 | the archived file is damaged (wrong size or header): not delivered |
//!
//! Speed: every process shares one ssh connection (ControlMaster); Barman's
//! WAL directory is read directly; a background prefetcher keeps the next
//! segments in the spool while PostgreSQL replays, and a spooled segment is
//! handed over by rename.

pub mod names;
pub mod remote;
pub mod spool;
pub mod verify;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use names::WalName;
use remote::{Remote, ServerInfo};
use spool::Spool;

/// The documented exit codes.
pub mod exit {
    pub const DELIVERED: u8 = 0;
    pub const NOT_FOUND: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const DAMAGED: u8 = 4;
}

/// What one invocation was asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub remote: Remote,
    pub spool: PathBuf,
    /// Segments to keep ahead of PostgreSQL (0: no prefetch).
    pub prefetch: usize,
    pub partial: bool,
    pub test: bool,
    pub wal_name: String,
    pub wal_dest: PathBuf,
}

fn log(level: &str, msg: &str) {
    eprintln!("{level}: pgclone wal-restore: {msg}");
}

/// Barman's WAL location, cached in the spool for a few minutes so that a
/// segment costs no Barman process.
fn server_info(remote: &Remote, spool: &Spool) -> Result<ServerInfo, remote::FetchError> {
    let cache = spool.path("server.info");
    if let Ok(meta) = std::fs::metadata(&cache) {
        let fresh = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|a| a < Duration::from_secs(300));
        if let (true, Ok(text)) = (fresh, std::fs::read_to_string(&cache)) {
            let mut lines = text.lines();
            if let (Some(dir), Some(comp)) = (lines.next(), lines.next()) {
                return Ok(ServerInfo {
                    wals_directory: dir.to_string(),
                    compression: (!comp.is_empty()).then(|| comp.to_string()),
                });
            }
        }
    }
    let info = remote.server_info()?;
    let _ = spool.put(
        "server.info",
        format!(
            "{}\n{}\n",
            info.wals_directory,
            info.compression.clone().unwrap_or_default()
        )
        .as_bytes(),
    );
    Ok(info)
}

/// Runs one restore_command invocation and returns its exit code.
pub fn run(o: &Options) -> u8 {
    let spool = match Spool::open(&o.spool) {
        Ok(s) => s,
        Err(e) => {
            log(
                "ERROR",
                &format!("cannot use spool directory \"{}\": {e}", o.spool.display()),
            );
            return exit::USAGE;
        }
    };
    if o.test {
        return match o.remote.server_info() {
            Ok(info) => {
                println!(
                    "Ready to retrieve WAL files from the server {} (WAL directory {})",
                    o.remote.server, info.wals_directory
                );
                exit::DELIVERED
            }
            Err(e) => {
                eprintln!("ERROR: {}", e.failure);
                exit::UNREACHABLE
            }
        };
    }
    let Some(kind) = names::parse(&o.wal_name) else {
        log(
            "ERROR",
            &format!("\"{}\" is not a WAL file name", o.wal_name),
        );
        return exit::USAGE;
    };
    // pg_rewind asks for pg_wal/<name> itself: exactly that file, no prefetch.
    let rewind = o
        .wal_dest
        .file_name()
        .is_some_and(|f| f == o.wal_name.as_str());
    let dest = &o.wal_dest;

    if let WalName::Segment { .. } = kind {
        match spool.take(&o.wal_name, dest) {
            Ok(true) => {
                after_delivery(o, &spool, rewind);
                return exit::DELIVERED;
            }
            Ok(false) => {}
            Err(e) => log("WARNING", &format!("spool: {e}")),
        }
    }
    // The prefetcher is fetching it right now: wait for it rather than fetch it twice.
    if let (WalName::Segment { .. }, false) = (kind, rewind) {
        if wait_for_inflight(&spool, &o.wal_name) {
            if let Ok(true) = spool.take(&o.wal_name, dest) {
                after_delivery(o, &spool, rewind);
                return exit::DELIVERED;
            }
        }
    }
    let info = match server_info(&o.remote, &spool) {
        Ok(i) => i,
        Err(e) => {
            log("ERROR", &e.failure.to_string());
            return exit::UNREACHABLE;
        }
    };
    let fetched = match o
        .remote
        .fetch_many(&info, std::slice::from_ref(&o.wal_name))
    {
        Ok(v) => v
            .into_iter()
            .find(|(n, _)| *n == o.wal_name)
            .map(|(_, b)| b),
        Err(e) => {
            log("ERROR", &e.failure.to_string());
            return exit::UNREACHABLE;
        }
    };
    let bytes = match fetched {
        Some(b) if verify::check_segment(&o.wal_name, &b).is_ok() => b,
        // Compressed in a way the host does not read, or damaged: ask Barman.
        Some(_) | None => match o.remote.get_wal(&o.wal_name, false) {
            Ok(b) => b,
            Err(e) if o.partial && matches!(kind, WalName::Segment { .. }) => {
                match o.remote.get_wal(&o.wal_name, true) {
                    Ok(b) => b,
                    Err(_) => return not_found(&e),
                }
            }
            Err(e) => return not_found(&e),
        },
    };
    if let Err(problem) = verify::check_segment(&o.wal_name, &bytes) {
        log("ERROR", &format!("not delivered: {problem}"));
        return exit::DAMAGED;
    }
    if let Err(e) = spool::deliver(dest, &bytes) {
        log(
            "ERROR",
            &format!("cannot write \"{}\": {e}", dest.display()),
        );
        return exit::UNREACHABLE;
    }
    if let WalName::Segment { .. } = kind {
        after_delivery(o, &spool, rewind);
    }
    exit::DELIVERED
}

/// True when `name` arrived in the spool while a running prefetcher was
/// fetching it; false at once when no prefetcher has it in flight.
fn wait_for_inflight(spool: &Spool, name: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if spool.has(name) {
            return true;
        }
        let inflight = std::fs::read_to_string(spool.path("inflight")).unwrap_or_default();
        if !inflight.lines().any(|l| l == name)
            || !prefetcher_running(spool)
            || Instant::now() > deadline
        {
            return spool.has(name);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn not_found(e: &remote::FetchError) -> u8 {
    if e.missing
        || e.failure
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("not found") || d.contains("No such"))
    {
        exit::NOT_FOUND
    } else {
        log("ERROR", &e.failure.to_string());
        exit::UNREACHABLE
    }
}

/// Moves the cursor and makes sure a prefetcher is filling the spool.
fn after_delivery(o: &Options, spool: &Spool, rewind: bool) {
    if rewind || o.prefetch == 0 {
        return;
    }
    let seg_size = std::fs::File::open(&o.wal_dest)
        .ok()
        .and_then(|mut f| {
            use std::io::{Read, Seek, SeekFrom};
            let mut b = [0u8; 4];
            f.seek(SeekFrom::Start(32)).ok()?;
            f.read_exact(&mut b).ok()?;
            Some(u32::from_le_bytes(b) as u64)
        })
        .unwrap_or(16 << 20);
    let _ = spool.set_cursor(&o.wal_name, seg_size);
    if prefetcher_running(spool) {
        return;
    }
    // A detached process, so that PostgreSQL goes on replaying meanwhile.
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("pgclone"));
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("wal-restore")
        .arg("--prefetch-daemon")
        .args(daemon_args(o));
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
    if let Err(e) = cmd.spawn() {
        log("WARNING", &format!("could not start the prefetcher: {e}"));
    }
}

fn daemon_args(o: &Options) -> Vec<String> {
    let mut v = vec![
        "--spool-dir".to_string(),
        o.spool.display().to_string(),
        "--parallel".into(),
        o.prefetch.to_string(),
    ];
    if let Some(p) = &o.remote.port {
        v.extend(["--port".into(), p.clone()]);
    }
    if let Some(c) = &o.remote.barman_config {
        v.extend(["--config".into(), c.clone()]);
    }
    for s in &o.remote.ssh_options {
        v.push(format!("--ssh-option={s}"));
    }
    v.extend([
        o.remote.dest.clone(),
        o.remote.server.clone(),
        "-".into(),
        "-".into(),
    ]);
    v
}

fn lock_file(spool: &Spool) -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(spool.path("prefetch.lock"))
        .ok()
}

fn prefetcher_running(spool: &Spool) -> bool {
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

/// The prefetcher: keeps up to `prefetch` segments after the cursor in the
/// spool, one tar stream per batch written to the spool as entries arrive;
/// exits when nothing was asked for a while.
pub fn prefetch_daemon(o: &Options) -> u8 {
    let Ok(spool) = Spool::open(&o.spool) else {
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
    let Ok(info) = server_info(&o.remote, &spool) else {
        return exit::UNREACHABLE;
    };
    let mut last_cursor = String::new();
    let mut idle_since = Instant::now();
    let mut missing_until: Option<(String, Instant)> = None;
    loop {
        let Some((cursor, seg_size)) = spool.cursor() else {
            return exit::DELIVERED;
        };
        if cursor != last_cursor {
            last_cursor = cursor.clone();
            idle_since = Instant::now();
        } else if idle_since.elapsed() > Duration::from_secs(30) {
            return exit::DELIVERED;
        }
        let ready = spool.clean(&cursor).unwrap_or(0);
        let Some(WalName::Segment {
            tli,
            log: xlog,
            seg,
        }) = names::parse(&cursor)
        else {
            return exit::USAGE;
        };
        let ahead = names::following(tli, xlog, seg, seg_size, o.prefetch);
        let want: Vec<String> = ahead.into_iter().filter(|n| !spool.has(n)).collect();
        let blocked = missing_until
            .as_ref()
            .is_some_and(|(n, t)| want.first() == Some(n) && Instant::now() < *t);
        if want.is_empty() || ready * 2 > o.prefetch || blocked {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let _ = spool.put_unsynced("inflight", want.join("\n").as_bytes());
        let result = stream_into_spool(&o.remote, &info, &spool, &want);
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
            Ok(_) => missing_until = None,
            Err(e) => {
                log("WARNING", &format!("prefetching {}: {e}", want[0]));
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// Fetches `names` in one remote `tar` and writes each checked segment to the
/// spool as soon as it has arrived. Returns how many were spooled.
fn stream_into_spool(
    r: &Remote,
    info: &ServerInfo,
    spool: &Spool,
    names: &[String],
) -> std::io::Result<usize> {
    use std::io::Read;
    let argv = remote::tar_argv(info, names);
    r.ensure_master()
        .map_err(|e| std::io::Error::other(e.failure.to_string()))?;
    let mut cmd = r.ssh();
    cmd.args(argv.iter().map(|a| crate::remote::shell_quote(a)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().unwrap();
    // Writing (and fsyncing) happens on another thread, so the stream from
    // the Barman host never waits for the disk.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(String, Vec<u8>)>(2);
    let writer_spool = spool.clone();
    let writer = std::thread::spawn(move || {
        let mut count = 0;
        for (name, data) in rx {
            if writer_spool.put(&name, &data).is_ok() {
                count += 1;
            }
        }
        count
    });
    let mut archive = tar::Archive::new(stdout);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry
            .path()?
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data)?;
        if !names.contains(&name) {
            continue;
        }
        let Ok(data) = remote::decompress(info, data) else {
            continue;
        };
        // A damaged file is never spooled; the foreground path reports it.
        if verify::check_segment(&name, &data).is_ok() && tx.send((name, data)).is_err() {
            break;
        }
    }
    drop(tx);
    let count = writer.join().unwrap_or(0);
    let _ = child.wait();
    Ok(count)
}

/// Where the spool goes by default (barman-wal-restore's default).
pub fn default_spool() -> PathBuf {
    PathBuf::from("/var/tmp/walrestore")
}

/// For tests: the spool layout is private, but its directory is not.
pub fn spool_dir(o: &Options) -> &Path {
    &o.spool
}
