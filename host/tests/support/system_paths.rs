//! The machine's own pgclone paths (`/etc/pgclone`, `/usr/bin/pgclone`), which
//! the package test installs into and removes. Tests that depend on what is
//! there (pgclone's default plugin configuration, `/etc/pgclone/plugins.toml`)
//! hold [`reading`] while they run; the package test holds [`changing`] while
//! its package is installed. A file lock, so that it also keeps apart test
//! runs of other checkouts on the same machine.
#![allow(dead_code)] // the benchmarks share the support module and use none of it

use std::fs::File;
use std::os::unix::io::AsRawFd;

const LOCK: &str = "/tmp/pgclone-tests-system-paths.lock";

/// Held until dropped.
pub struct Guard(File);

fn lock(op: libc::c_int) -> Guard {
    let f = File::options()
        .create(true)
        .append(true)
        .open(LOCK)
        .unwrap_or_else(|e| panic!("{LOCK}: {e}"));
    // Anyone may take it: tests run as root, but a checkout may not.
    let _ = std::fs::set_permissions(LOCK, std::os::unix::fs::PermissionsExt::from_mode(0o666));
    // flock locks belong to the open file, so two threads of this process
    // exclude each other as two processes do.
    while unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
        let e = std::io::Error::last_os_error();
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::Interrupted,
            "flock {LOCK}: {e}"
        );
    }
    Guard(f)
}

/// Shared: what pgclone finds in /etc/pgclone stays as it is meanwhile.
pub fn reading() -> Guard {
    lock(libc::LOCK_SH)
}

/// Exclusive: no test that reads /etc/pgclone runs meanwhile.
pub fn changing() -> Guard {
    lock(libc::LOCK_EX)
}
