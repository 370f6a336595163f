//! Programs a clone runs (pg_basebackup, rsync) in a process group of their
//! own, killed as a whole when the clone stops waiting for them: on a failure
//! elsewhere or an interruption. Killing only the program would leave its
//! children running — pg_basebackup forks a WAL streamer, rsync an ssh.

/// Kills the process group of a child (its pid) when dropped, unless the
/// child was seen to finish.
pub struct GroupGuard {
    pid: Option<i32>,
}

impl GroupGuard {
    /// For a child spawned with `process_group(0)`.
    pub fn new(child: &tokio::process::Child) -> GroupGuard {
        GroupGuard {
            pid: child.id().map(|p| p as i32),
        }
    }

    /// The child was reaped: its pid (and group id) may be reused, so the
    /// group is left alone from now on.
    pub fn finished(&mut self) {
        if let Some(pid) = self.pid.take() {
            crate::child::reaped(pid as u32);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.filter(|p| *p > 0) {
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            crate::child::reaped(pid as u32);
        }
    }
}
