//! The one supervisor of a program pgclone runs: spawned with [`bound`]
//! (a process group of its own, the parent-death signal, registered with the
//! [`reaper`](super::reaper) when one runs), then watched by a [`Supervised`]
//! that kills the whole group — the program and whatever it forked (rsync's
//! ssh, pg_basebackup's WAL streamer, a ProxyCommand) — when it outlives its
//! time bound, when the caller stops waiting for it (drop: a failure
//! elsewhere, an interruption), or when [`stop_in_flight`] is called from a
//! signal handler (wal-restore's, on PostgreSQL's SIGTERM).
//!
//! A group is signalled only while its leader is unreaped, so its number
//! cannot belong to another process yet: the caller reaps the leader only
//! after [`Supervised::exited`] or [`Supervised::disarm`] stopped the
//! watchdog, and says so with [`Supervised::finished`].
//!
//! [`bound`]: super::bound

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Groups in flight that a signal handler stops: leaders' pids, 0 for free.
/// (A process runs a few at once; one beyond these only loses that help.)
static IN_FLIGHT: [AtomicI32; 32] = [const { AtomicI32::new(0) }; 32];

/// A child spawned after [`bound`](super::bound), supervised until it was
/// reaped. Dropped before [`finished`](Supervised::finished), it kills the
/// child's group.
pub struct Supervised {
    /// The leader's pid (its group's number); 0 once finished or unknown.
    pid: i32,
    dog: Option<Watchdog>,
    slot: Option<usize>,
}

impl Supervised {
    /// Supervises the child `pid`. With a `limit`, a watchdog kills its group
    /// once it runs that long after the start or the last [`kick`](Self::kick).
    pub fn new(pid: u32, limit: Option<Duration>) -> Supervised {
        let pid = pid as i32;
        let slot = (pid > 0)
            .then(|| {
                IN_FLIGHT.iter().position(|s| {
                    s.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                })
            })
            .flatten();
        Supervised {
            pid: pid.max(0),
            dog: limit.filter(|_| pid > 0).map(|l| Watchdog::arm(pid, l)),
            slot,
        }
    }

    /// A tokio child, without a time bound (one already reaped has no pid,
    /// and nothing is done for it).
    pub fn of(child: &tokio::process::Child) -> Supervised {
        Supervised::new(child.id().unwrap_or(0), None)
    }

    /// Progress: the time bound starts again.
    pub fn kick(&self) {
        if let Some(d) = &self.dog {
            d.kick();
        }
    }

    /// Kills the group now (the program is still to be reaped).
    pub fn kill(&self) {
        if self.pid > 0 {
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        }
    }

    /// Stops the watchdog; true when it had fired (and killed the group).
    pub fn disarm(&mut self) -> bool {
        self.dog.take().is_some_and(|d| d.stop())
    }

    /// Blocks until the leader has exited, leaving it to be reaped (a program
    /// may close its pipes and run on: the bound still applies until then),
    /// then stops the watchdog; true when it had fired.
    pub fn exited(&mut self) -> bool {
        if self.pid > 0 {
            wait_without_reaping(self.pid);
        }
        self.disarm()
    }

    /// The caller reaped the leader: its pid (and group number) may be
    /// reused from now on, so the group is left alone.
    pub fn finished(&mut self) {
        self.disarm();
        if self.pid > 0 {
            super::reaped(self.pid as u32);
        }
        self.release();
    }

    fn release(&mut self) {
        if let Some(i) = self.slot.take() {
            let _ = IN_FLIGHT[i].compare_exchange(self.pid, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
        self.pid = 0;
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.disarm();
        if self.pid > 0 {
            self.kill();
            super::reaped(self.pid as u32);
        }
        self.release();
    }
}

/// Stops every supervised group in flight: SIGTERM, up to a second for the
/// leader to go, then SIGKILL; reaped either way. For a signal handler:
/// async-signal-safe calls only.
pub fn stop_in_flight() {
    for slot in &IN_FLIGHT {
        let pid = slot.load(Ordering::SeqCst);
        if pid > 0 {
            stop_group(pid);
        }
    }
}

fn stop_group(pid: i32) {
    let pause = libc::timespec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    unsafe {
        libc::kill(-pid, libc::SIGTERM);
        for _ in 0..50 {
            match exited(pid, false) {
                // Already reaped by its owner: the number is not ours any more.
                Err(_) => return,
                Ok(true) => break,
                Ok(false) => libc::nanosleep(&pause, std::ptr::null_mut()),
            };
        }
        // The leader is unreaped until here: the group is still its own.
        libc::kill(-pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// Whether child `pid` has exited, leaving it to be reaped; with `block`,
/// waits for that. The errno when it is not a child to wait for (any more)
/// or the wait was interrupted. Async-signal-safe.
fn exited(pid: i32, block: bool) -> Result<bool, i32> {
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOWAIT | if block { 0 } else { libc::WNOHANG };
    if unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } != 0 {
        return Err(unsafe { *libc::__errno_location() });
    }
    Ok(unsafe { info.si_pid() } != 0)
}

/// Blocks until process `pid` has exited, leaving it to be reaped.
fn wait_without_reaping(pid: i32) {
    while exited(pid, true) == Err(libc::EINTR) {}
}

/// Kills group `pid` with SIGKILL when it outlives its bound.
struct Watchdog {
    kick: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<bool>>,
}

impl Watchdog {
    fn arm(pid: i32, limit: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || loop {
            match rx.recv_timeout(limit) {
                Ok(()) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                    return true;
                }
            }
        });
        Watchdog {
            kick: Some(tx),
            thread: Some(thread),
        }
    }

    fn kick(&self) {
        if let Some(k) = &self.kick {
            let _ = k.send(());
        }
    }

    fn stop(mut self) -> bool {
        self.halt()
    }

    fn halt(&mut self) -> bool {
        drop(self.kick.take());
        self.thread
            .take()
            .map(|t| t.join().unwrap_or(false))
            .unwrap_or(false)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A shell that forks a `sleep`, in its own group: what a program with a
    /// helper looks like (rsync and its ssh).
    fn with_grandchild() -> (std::process::Child, u32) {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped());
        let mut child = super::super::bound(&mut cmd).spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        (child, line.trim().parse().unwrap())
    }

    fn gone(pid: u32) -> bool {
        // Dead or a zombie (its parent, the shell, was killed too; init reaps it).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z ")
    }

    fn eventually(f: impl Fn() -> bool) -> bool {
        (0..250).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            f()
        })
    }

    #[test]
    fn past_its_bound_the_group_is_killed_and_not_before() {
        let (mut slow, grandchild) = with_grandchild();
        let mut s = Supervised::new(slow.id(), Some(Duration::from_millis(200)));
        assert!(s.exited());
        let status = slow.wait().unwrap();
        s.finished();
        assert!(!status.success());
        assert!(
            eventually(|| gone(grandchild)),
            "the sleep it forked lives on"
        );
        let mut quick = Command::new("true").spawn().unwrap();
        let mut s = Supervised::new(quick.id(), Some(Duration::from_secs(30)));
        assert!(!s.exited());
        assert!(quick.wait().unwrap().success());
        s.finished();
    }

    #[test]
    fn kicks_keep_it_alive() {
        let mut child = Command::new("sleep").arg("0.6").spawn().unwrap();
        let mut s = Supervised::new(child.id(), Some(Duration::from_millis(300)));
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(150));
            s.kick();
        }
        assert!(!s.exited());
        assert!(child.wait().unwrap().success());
        s.finished();
    }

    #[test]
    fn dropped_unfinished_it_kills_the_group() {
        let (mut child, grandchild) = with_grandchild();
        drop(Supervised::new(child.id(), None));
        assert!(!child.wait().unwrap().success());
        assert!(
            eventually(|| gone(grandchild)),
            "the sleep it forked lives on"
        );
    }

    #[test]
    fn a_signal_handler_stops_the_groups_in_flight() {
        let (mut child, grandchild) = with_grandchild();
        let mut s = Supervised::new(child.id(), None);
        let pid = child.id() as i32;
        assert!(IN_FLIGHT.iter().any(|x| x.load(Ordering::SeqCst) == pid));
        // What stop_in_flight does for each (calling it here would stop the
        // other tests' children too).
        stop_group(pid);
        // Reaped by stop_group, as a handler must.
        assert!(child.try_wait().is_err());
        s.finished();
        assert!(!IN_FLIGHT.iter().any(|x| x.load(Ordering::SeqCst) == pid));
        assert!(
            eventually(|| gone(grandchild)),
            "the sleep it forked lives on"
        );
    }
}
