//! Clean-up for one wal-restore process: a SIGTERM/SIGINT handler that
//! removes this process's temporary files and stops its programs (ssh; see
//! [`crate::child::Supervised`], which also bounds them in time) before the
//! process dies of the signal (PostgreSQL sends SIGTERM at shutdown).

use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};

/// Paths of temporary files this process is writing (NUL-terminated,
/// leaked: the handler may read them at any time).
static TEMP_FILES: [AtomicPtr<libc::c_char>; 8] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; 8];

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe calls here: unlink, kill, signal, raise.
    for slot in &TEMP_FILES {
        let p = slot.load(Ordering::SeqCst);
        if !p.is_null() {
            unsafe { libc::unlink(p) };
        }
    }
    // The programs in flight (ssh and what it started) go with us.
    crate::child::stop_in_flight();
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
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
