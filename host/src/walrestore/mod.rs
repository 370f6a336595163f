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
//! | 3 | the Barman host could not be reached, or barman failed (standby mode) |
//! | 4 | the archived file is damaged or of another cluster: not delivered (standby mode) |
//! | 128 | targeted recovery only: anything but 0 and 1, after retrying an unreachable or failing Barman for `--retry-for` seconds; recovery stops instead of promoting early |
//!
//! 128 because it is the lowest status PostgreSQL treats as fatal that it does
//! not report as something else: 126 and 127 read "command not executable" /
//! "command not found", and 128+N is what a shell returns for a death by
//! signal N (143, SIGTERM, is a shutdown to PostgreSQL, not an error).
//!
//! Speed: every process shares one ssh connection (ControlMaster); Barman's
//! WAL directory is read directly; a background prefetcher keeps the next
//! segments in the spool while PostgreSQL replays, and a spooled segment is
//! handed over by rename. Safety: the spool is trusted only if it is the
//! user's own, and everything in it is kept per source; every delivered file
//! is checked (size, long page header, system identifier of the data
//! directory); every ssh is bounded.

pub mod cluster;
pub mod guard;
pub mod names;
pub mod remote;
pub mod spool;
pub mod verify;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::report::Failure;
use cluster::Cluster;
use names::WalName;
use remote::{Remote, ServerInfo};
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
    pub remote: Remote,
    /// The spool's top directory (each source has its own directory in it).
    pub spool: PathBuf,
    /// Segments to keep ahead of PostgreSQL (0: no prefetch).
    pub prefetch: usize,
    pub partial: bool,
    pub test: bool,
    pub wal_name: String,
    pub wal_dest: PathBuf,
    /// Targeted recovery: seconds to retry an unreachable or failing Barman
    /// before stopping recovery.
    pub retry_for: u64,
}

/// Why a request could not be served: the standby-mode code and the message.
#[derive(Debug)]
struct Problem {
    code: u8,
    failure: Failure,
}

fn problem(code: u8, failure: Failure) -> Problem {
    Problem { code, failure }
}

fn log(level: &str, msg: &str) {
    eprintln!("{level}: pgclone wal-restore: {msg}");
}

/// The name of a source's directory in the spool: readable, and a hash of
/// everything that decides whose files they are.
pub fn source_key(remote: &Remote) -> String {
    use sha2::{Digest, Sha256};
    let readable: String = remote
        .server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(16)
        .collect();
    let h = hex::encode(&Sha256::digest(remote.source())[..8]);
    format!("barman-{readable}-{h}")
}

/// The source's spool and the remote whose control socket lives in it.
fn open_spool(o: &Options) -> Result<(Spool, Remote), Failure> {
    let spool = Spool::open(&o.spool, &source_key(&o.remote), &o.remote.source())?;
    let remote = Remote {
        control_path: spool.path("ssh"),
        ..o.remote.clone()
    };
    Ok((spool, remote))
}

/// Barman's WAL location, cached in the source's spool for a few minutes so
/// that a segment costs no Barman process.
fn server_info(remote: &Remote, spool: &Spool) -> Result<ServerInfo, remote::FetchError> {
    let fresh = std::fs::symlink_metadata(spool.path("server.info"))
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|a| a < Duration::from_secs(300));
    if let (true, Some(text)) = (fresh, spool.read("server.info")) {
        let mut lines = text.lines();
        if let (Some(dir), Some(comp)) = (lines.next(), lines.next()) {
            return Ok(ServerInfo {
                wals_directory: dir.to_string(),
                compression: (!comp.is_empty()).then(|| comp.to_string()),
            });
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
    let started = Instant::now();
    let result = (|| {
        let (spool, remote) = open_spool(o).map_err(|f| problem(exit::USAGE, f))?;
        if o.test {
            return test_connection(&remote);
        }
        let Some(kind) = names::parse(&o.wal_name) else {
            return Err(problem(
                exit::USAGE,
                Failure::new(format!("\"{}\" is not a WAL file name", o.wal_name)),
            ));
        };
        let deadline = started + Duration::from_secs(o.retry_for);
        loop {
            match restore(o, &spool, &remote, &cluster, kind, rewind) {
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
            "tried for {} s; make the Barman host reachable and start the server again: recovery \
             resumes where it stopped (--retry-for / wal_restore_retry_seconds sets how long to retry)",
            waited.as_secs()
        ),
        exit::DAMAGED => format!(
            "{} in Barman's archive is damaged or belongs to another cluster: repair the archive, \
             then start the server again",
            o.wal_name
        ),
        _ => "correct the restore_command, then start the server again".to_string(),
    };
    let f = Failure::new(format!("stopping recovery: {}", p.failure.message))
        .detail(detail)
        .hint(hint);
    log("ERROR", &f.to_string());
    exit::STOP_RECOVERY
}

fn test_connection(remote: &Remote) -> Result<u8, Problem> {
    match remote.server_info() {
        Ok(info) => {
            println!(
                "Ready to retrieve WAL files from the server {} (WAL directory {})",
                remote.server, info.wals_directory
            );
            Ok(exit::DELIVERED)
        }
        Err(e) => Err(problem(exit::UNREACHABLE, e.failure)),
    }
}

/// `op: failure` (the operation named, e.g. which file for which server).
fn during(op: &str, e: remote::FetchError) -> Failure {
    Failure {
        message: format!("{op}: {}", e.failure.message),
        ..e.failure
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
    remote: &Remote,
    cluster: &Cluster,
    kind: WalName,
    rewind: bool,
) -> Result<u8, Problem> {
    let segment = matches!(kind, WalName::Segment { .. });
    // The prefetcher may be fetching it right now: wait for it rather than fetch it twice.
    if segment
        && (take_from_spool(o, spool, cluster)
            || (!rewind
                && wait_for_inflight(spool, &o.wal_name)
                && take_from_spool(o, spool, cluster)))
    {
        after_delivery(o, spool, rewind);
        return Ok(exit::DELIVERED);
    }
    let op = format!(
        "fetching {} for Barman server \"{}\"",
        o.wal_name, remote.server
    );
    let info =
        server_info(remote, spool).map_err(|e| problem(exit::UNREACHABLE, during(&op, e)))?;
    let fetched = remote
        .fetch_many(&info, std::slice::from_ref(&o.wal_name))
        .map_err(|e| problem(exit::UNREACHABLE, during(&op, e)))?
        .into_iter()
        .find(|(n, _)| *n == o.wal_name)
        .map(|(_, b)| b);
    let bytes = match fetched {
        Some(b) if verify::check_segment(&o.wal_name, &b, cluster.sysid).is_ok() => b,
        // Compressed in a way the host does not read, or damaged: ask Barman.
        Some(_) | None => match remote.get_wal(&o.wal_name, false) {
            Ok(b) => b,
            Err(e) if o.partial && segment => match remote.get_wal(&o.wal_name, true) {
                Ok(b) => b,
                Err(_) => return not_found(&op, e),
            },
            Err(e) => return not_found(&op, e),
        },
    };
    if let Err(why) = verify::check_segment(&o.wal_name, &bytes, cluster.sysid) {
        return Err(problem(
            exit::DAMAGED,
            Failure::new(format!("not delivered: {why}")),
        ));
    }
    if let Err(e) = spool::deliver(&o.wal_dest, &bytes) {
        return Err(problem(
            exit::UNREACHABLE,
            Failure::new(format!("cannot write \"{}\"", o.wal_dest.display()))
                .detail(e.to_string()),
        ));
    }
    if segment {
        after_delivery(o, spool, rewind);
    }
    Ok(exit::DELIVERED)
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
            || !prefetcher_running(spool)
            || Instant::now() > deadline
        {
            return spool.has(name);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A failed fetch: not in the archive (1), or a failure.
fn not_found(op: &str, e: remote::FetchError) -> Result<u8, Problem> {
    if e.missing
        || e.failure
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("not found") || d.contains("No such"))
    {
        Ok(exit::NOT_FOUND)
    } else {
        Err(problem(exit::UNREACHABLE, during(op, e)))
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
        "--connect-timeout".into(),
        o.remote.connect_timeout.to_string(),
        "--timeout".into(),
        o.remote.timeout.to_string(),
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
        // As the caller was given it: the prefetcher finds the same user and
        // keys the same spool directory.
        o.remote.dest.clone(),
        o.remote.server.clone(),
        "-".into(),
        "-".into(),
    ]);
    v
}

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
    guard::install();
    let Ok((spool, remote)) = open_spool(o) else {
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
    let Ok(info) = server_info(&remote, &spool) else {
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
        let result = stream_into_spool(&remote, &info, &spool, &want);
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
    let _guard = guard::ChildGuard::register(child.id());
    // Killed when no file arrives for the operation's bound.
    let dog = guard::Watchdog::arm(child.id(), Duration::from_secs(r.timeout.max(1)));
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
    let entries = archive.entries()?;
    for entry in entries {
        dog.kick();
        let Ok(mut entry) = entry else {
            break;
        };
        let name = entry
            .path()?
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut data = Vec::with_capacity(entry.size() as usize);
        if entry.read_to_end(&mut data).is_err() {
            break;
        }
        if !names.contains(&name) {
            continue;
        }
        let Ok(data) = remote::decompress(info, data) else {
            continue;
        };
        // A damaged file is never spooled; the foreground path reports it.
        if verify::check_segment(&name, &data, None).is_ok() && tx.send((name, data)).is_err() {
            break;
        }
    }
    drop(tx);
    let count = writer.join().unwrap_or(0);
    drop(archive);
    let _ = dog.disarm();
    let _ = child.wait();
    Ok(count)
}

/// Where the spool goes by default (barman-wal-restore's default).
pub fn default_spool() -> PathBuf {
    PathBuf::from("/var/tmp/walrestore")
}

/// For tests: the spool layout is private, but its directory is not.
pub fn spool_dir(o: &Options) -> PathBuf {
    o.spool.join(source_key(&o.remote))
}
