//! Bounds and clean-up for one wal-restore process: a watchdog that kills a
//! child (ssh) that runs past its bound, and a SIGTERM/SIGINT handler that
//! removes this process's temporary files and stops its ssh before the
//! process dies of the signal (PostgreSQL sends SIGTERM at shutdown).

use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Kills a child with SIGKILL when it outlives its bound.
pub struct Watchdog {
    kick: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<bool>>,
}

impl Watchdog {
    /// Arms a watchdog over `pid`: it fires `limit` after arming or after the
    /// last [`Watchdog::kick`]. Disarm it before reaping the child, so that
    /// it never signals a reused pid.
    pub fn arm(pid: u32, limit: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || loop {
            match rx.recv_timeout(limit) {
                Ok(()) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                    return true;
                }
            }
        });
        Watchdog {
            kick: Some(tx),
            thread: Some(thread),
        }
    }

    /// Progress: the bound starts again.
    pub fn kick(&self) {
        if let Some(k) = &self.kick {
            let _ = k.send(());
        }
    }

    /// Stops the watchdog; true when it had fired.
    pub fn disarm(mut self) -> bool {
        self.stop()
    }

    fn stop(&mut self) -> bool {
        drop(self.kick.take());
        self.thread
            .take()
            .map(|t| t.join().unwrap_or(false))
            .unwrap_or(false)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Paths of temporary files this process is writing (NUL-terminated,
/// leaked: the handler may read them at any time).
static TEMP_FILES: [AtomicPtr<libc::c_char>; 8] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; 8];
/// The ssh child in flight, if any.
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe calls here: unlink, kill, signal, raise.
    for slot in &TEMP_FILES {
        let p = slot.load(Ordering::SeqCst);
        if !p.is_null() {
            unsafe { libc::unlink(p) };
        }
    }
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 {
        stop_child(child);
    }
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// SIGTERM, up to a second to go, then SIGKILL; reaped either way, so that
/// no ssh outlives this process (async-signal-safe calls only).
fn stop_child(child: i32) {
    unsafe {
        libc::kill(child, libc::SIGTERM);
        let pause = libc::timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        };
        for _ in 0..50 {
            if libc::waitpid(child, std::ptr::null_mut(), libc::WNOHANG) != 0 {
                return;
            }
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
}

/// Installs the handler for SIGTERM, SIGINT and SIGHUP.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        unsafe { libc::signal(sig, handler) };
    }
}

/// A temporary file removed by the handler if the process is interrupted
/// while it exists.
pub struct TempFile {
    slot: Option<usize>,
}

impl TempFile {
    pub fn register(path: &Path) -> TempFile {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
            return TempFile { slot: None };
        };
        let raw = c.into_raw();
        for (i, slot) in TEMP_FILES.iter().enumerate() {
            if slot
                .compare_exchange(
                    std::ptr::null_mut(),
                    raw,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
            {
                return TempFile { slot: Some(i) };
            }
        }
        // All slots taken (never with this program's few writers).
        drop(unsafe { CString::from_raw(raw) });
        TempFile { slot: None }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // The string is leaked, not freed: a handler running on another
        // thread may still be reading it.
        if let Some(i) = self.slot {
            TEMP_FILES[i].store(std::ptr::null_mut(), Ordering::SeqCst);
        }
    }
}

/// The ssh child in flight: stopped by the handler if the process is
/// interrupted.
pub struct ChildGuard(i32);

impl ChildGuard {
    pub fn register(pid: u32) -> ChildGuard {
        CHILD.store(pid as i32, Ordering::SeqCst);
        ChildGuard(pid as i32)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = CHILD.compare_exchange(self.0, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_kills_a_child_past_its_bound_and_not_before() {
        let mut slow = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let w = Watchdog::arm(slow.id(), Duration::from_millis(200));
        let status = slow.wait().unwrap();
        assert!(w.disarm());
        assert!(!status.success());
        let mut quick = std::process::Command::new("true").spawn().unwrap();
        let w = Watchdog::arm(quick.id(), Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!w.disarm());
        assert!(quick.wait().unwrap().success());
    }
}
