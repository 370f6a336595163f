//! Programs pgclone starts die with it. Every child gets a process group of
//! its own (so that pgclone can stop it and whatever it forked as a whole,
//! and a Ctrl-C on the terminal reaches pgclone, which decides) and a
//! parent-death signal: when pgclone ends in any way — SIGKILL and the OOM
//! killer included, where no handler of ours runs — the kernel kills the
//! child. Without it a killed clone left pg_combinebackup, rsync or
//! pg_basebackup writing into the target.
//!
//! Linux ties the parent-death signal to the *thread* that forked the child,
//! not to the process: the child is killed when that thread ends. So a child
//! must be spawned by a thread that outlives it. In pgclone that holds: the
//! clone's async code runs on a current-thread runtime (the main thread; no
//! `spawn_blocking` spawns a program), the unpack workers and the plugin-call
//! threads wait for the child they spawned before they end, and the blocking
//! helpers (`output()`, `status()`) wait too.
//!
//! A grandchild does not inherit the signal (the kernel clears it on fork),
//! and some run on without their parent (pg_basebackup's WAL streamer): for
//! a clone, the [`reaper`] kills the process groups of its programs when
//! pgclone is gone. A program is registered with it from the child itself,
//! before exec; the caller unregisters it with [`reaped`] once it reaped the
//! program (its pid is free for reuse from then on). A program is then
//! watched by a [`Supervised`], the one place that kills its group: past a
//! time bound, when pgclone stops waiting for it, or from a signal handler.
//! The shared ssh connection (`ssh -f`) daemonizes:
//! its group is handed to the reaper once it runs, so that it ends with the
//! clone too (a remote `cat` it carries would otherwise hold it, and itself,
//! for good). The WAL warm-up prefetcher daemonizes on purpose: it writes only
//! into restore_command's spool and ends on its own (see README).

pub mod reaper;
mod supervise;

pub use supervise::{stop_in_flight, Supervised};

use std::os::unix::process::CommandExt;

/// Gives `cmd` a process group of its own and the parent-death signal
/// SIGKILL, and registers its group with the [`reaper`] when one runs (then
/// call [`reaped`] once the child was waited for). For
/// `tokio::process::Command`, pass `cmd.as_std_mut()`.
pub fn bound(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.process_group(0);
    dies_with_parent(cmd);
    if let Some(socket) = reaper::socket() {
        // SAFETY: one send(2) on a socket, async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                reaper::register_self(socket);
                Ok(())
            })
        };
    }
    cmd
}

/// A child made with [`bound`] was reaped (waited for): its group is no
/// longer the reaper's to kill.
pub fn reaped(pid: u32) {
    reaper::unregister(pid as i32);
}

/// The parent-death signal alone, for a child that must stay in pgclone's
/// process group.
pub fn dies_with_parent(cmd: &mut std::process::Command) -> &mut std::process::Command {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only makes system
    // calls that are async-signal-safe (prctl, getppid); its error is built
    // from a raw errno, without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // pgclone may have died between the fork and the prctl: the
            // child was then handed to another parent and no signal will
            // come. It must not run.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        })
    };
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// The signal is real and tied to the spawning thread: a `sleep` started
    /// by a thread that then ends is killed at once.
    #[test]
    fn a_child_dies_with_the_thread_that_started_it() {
        let mut child = std::thread::spawn(|| {
            let mut cmd = std::process::Command::new("sleep");
            cmd.arg("30");
            bound(&mut cmd).spawn().unwrap()
        })
        .join()
        .unwrap();
        let started = std::time::Instant::now();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    /// Without it (the control case), the same `sleep` outlives the thread.
    #[test]
    fn without_it_a_child_outlives_its_thread() {
        let mut child = std::thread::spawn(|| {
            std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap()
        })
        .join()
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn the_child_leads_its_own_process_group() {
        let mut cmd = std::process::Command::new("sh");
        // Fields 1 and 5 of /proc/PID/stat: the pid and the process group.
        cmd.args([
            "-c",
            "read -r pid comm state ppid pgrp rest < /proc/$$/stat; echo $pid $pgrp",
        ]);
        let out = bound(&mut cmd).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let ids: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(ids.len(), 2, "{text}");
        assert_eq!(ids[0], ids[1], "not a group leader: {text}");
    }
}
