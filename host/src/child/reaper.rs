//! The reaper: what kills the process groups of a clone's programs when
//! pgclone dies without a word (SIGKILL, the OOM killer). The parent-death
//! signal reaches only pgclone's own children; the kernel clears it for
//! theirs, and some of those run on without their parent — pg_basebackup's
//! WAL streamer goes on streaming into `pg_wal` after pg_basebackup was
//! killed (it keeps its own end of the pipe that would tell it). So a clone
//! forks one small process first that outlives pgclone: each program
//! registers its process group with it (from the child, before exec), pgclone
//! unregisters a group once it reaped its leader, and when the reaper's socket
//! reads end of file — pgclone is gone, however it ended — it kills every
//! group still registered, and exits.
//!
//! The reaper is a bare `fork()` of a multi-threaded process, so between the
//! fork and its exit it makes only async-signal-safe system calls on stack
//! buffers: no allocation, no lock, no Rust runtime.

use std::sync::OnceLock;

/// The socket pgclone and its children write registrations to; -1 until
/// [`start`] ran (then programs are only bound by their parent-death signal).
static SOCKET: OnceLock<i32> = OnceLock::new();

/// Most process groups watched at once (a clone runs a few dozen programs
/// in all; the rest would only lose the reaper's help, not their signal).
const MAX_GROUPS: usize = 1024;

/// Starts the reaper of this process (once; later calls do nothing). Called
/// by a clone before it runs any program.
pub fn start() {
    SOCKET.get_or_init(|| fork_reaper().unwrap_or(-1));
}

/// The registration socket, when a reaper runs.
pub(super) fn socket() -> Option<i32> {
    SOCKET.get().copied().filter(|s| *s >= 0)
}

/// Registers the calling process's group (the child, between fork and exec:
/// async-signal-safe), which it leads: its pid is its group's number, whether
/// or not the group was set yet. `MSG_NOSIGNAL`: a reaper gone must not kill
/// the child with SIGPIPE.
pub(super) fn register_self(socket: i32) {
    send(socket, unsafe { libc::getpid() });
}

/// Watches the group `pgid` of a process pgclone did not fork itself (the
/// shared ssh connection, which daemonizes): killed with the clone's
/// programs; [`unregister`] it once it was stopped.
pub fn watch(pgid: i32) {
    if let Some(s) = socket() {
        if pgid > 1 {
            send(s, pgid);
        }
    }
}

/// The leader of group `pgid` was reaped: the group is no longer watched (its
/// number may be given to another process from now on).
pub fn unregister(pgid: i32) {
    if let Some(s) = socket() {
        send(s, -pgid);
    }
}

fn send(socket: i32, value: i32) {
    let bytes = value.to_ne_bytes();
    unsafe {
        libc::send(
            socket,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_NOSIGNAL,
        )
    };
}

/// Forks the reaper; returns pgclone's end of the socket pair.
fn fork_reaper() -> Option<i32> {
    let mut fds = [0i32; 2];
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return None;
    }
    let (ours, theirs) = (fds[0], fds[1]);
    match unsafe { libc::fork() } {
        -1 => {
            unsafe {
                libc::close(ours);
                libc::close(theirs);
            }
            None
        }
        0 => unsafe { reaper(theirs) },
        _ => {
            unsafe { libc::close(theirs) };
            Some(ours)
        }
    }
}

/// The reaper's whole life. Only async-signal-safe calls from here on.
unsafe fn reaper(socket: i32) -> ! {
    // Its own process group, deaf to the terminal's and the operator's
    // signals: it ends when pgclone ends, not before.
    libc::setpgid(0, 0);
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
    ] {
        libc::signal(sig, libc::SIG_IGN);
    }
    // Nothing of pgclone's stays open here (connections, pipes, its end of
    // the socket): the socket goes to 3, the standard streams to /dev/null.
    libc::dup2(socket, 3);
    if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
        for fd in 4..4096 {
            libc::close(fd);
        }
    }
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
    if null >= 0 {
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        if null > 3 {
            libc::close(null);
        }
    }
    let mut groups = [0i32; MAX_GROUPS];
    let mut buf = [0u8; 4096];
    let mut have = 0usize;
    loop {
        let n = libc::read(3, buf.as_mut_ptr().add(have).cast(), buf.len() - have);
        if n < 0 && *libc::__errno_location() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        have += n as usize;
        let whole = have - have % 4;
        for rec in buf[..whole].chunks_exact(4) {
            let v = i32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]);
            if v > 0 {
                if let Some(slot) = groups.iter_mut().find(|g| **g == 0) {
                    *slot = v;
                }
            } else if let Some(slot) = groups.iter_mut().find(|g| **g == -v) {
                *slot = 0;
            }
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
    for g in groups.iter().filter(|g| **g > 1) {
        libc::kill(-*g, libc::SIGKILL);
    }
    libc::_exit(0)
}
