//! The shared ssh connections (ControlMaster) of a clone from a source that
//! runs programs over ssh (Barman, a pgBackRest repository host, a vendor's
//! backup server): one per ssh target the source declares, opened while the
//! upstream is checked, so that the source's commands and the first rsync
//! stream skip the handshake; closed when the clone ends.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A shared ssh connection to one target of the source, for one clone,
/// closed when the clone ends.
pub struct SshMaster {
    child: std::sync::Mutex<std::process::Child>,
    path: PathBuf,
    /// Where it connects, for the notice of a slow login.
    dest: String,
    ssh_options: Vec<String>,
    /// How long the connection may take before it is given up.
    bound: Duration,
    started: Instant,
    /// The master's pid once it runs, watched by the reaper.
    pid: std::sync::Mutex<Option<i32>>,
}

impl SshMaster {
    /// `connect_timeout` is ssh's own (in `ssh_options`); the master is given
    /// up a little after it, whatever ssh does. Its socket in `dir` is named
    /// after the logical `target` (a capability name: no `/`).
    pub fn start(
        target: &str,
        dest: &str,
        ssh_options: &[String],
        dir: &Path,
        connect_timeout: u32,
    ) -> Option<SshMaster> {
        let path = dir.join(format!("ssh-master-{target}"));
        let log = std::fs::File::create(dir.join(format!("ssh-master-{target}.log"))).ok()?;
        let mut cmd = crate::remote::master_command(dest, None, ssh_options, &path, 30, log);
        // Until it has logged in and gone to the background (`-f`), it dies
        // with pgclone; left in pgclone's process group (it may ask on the
        // terminal). The master itself is a fork ssh makes, in a session of
        // its own, without this signal: once it runs, its group is the
        // reaper's (see `ready`).
        crate::child::dies_with_parent(&mut cmd);
        crate::report::running(&cmd);
        let child = cmd.spawn().ok()?;
        Some(SshMaster {
            child: std::sync::Mutex::new(child),
            path,
            dest: dest.to_string(),
            ssh_options: ssh_options.to_vec(),
            bound: Duration::from_secs(connect_timeout as u64 + 5),
            started: Instant::now(),
            pid: std::sync::Mutex::new(None),
        })
    }

    /// The control path once the connection is up; `None` if it failed (the
    /// commands then connect on their own and report what ssh says).
    pub fn ready(&self) -> Option<PathBuf> {
        let mut child = self.child.lock().ok()?;
        let mut said = false;
        let ok = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.success(),
                Ok(None) if self.started.elapsed() < self.bound => {
                    // A login that takes its time (a slow host, a key
                    // agent asking) is said, not taken for a hang.
                    if !said && self.started.elapsed() > Duration::from_secs(2) {
                        said = true;
                        crate::report::notice(&format!(
                            "waiting for ssh to log in to {} (given up after {} s; ssh_connect_timeout sets it)",
                            self.dest,
                            self.bound.as_secs()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(20))
                }
                // Hung (a host that swallows packets): the commands that
                // follow connect on their own, under the same timeout, and
                // report what ssh says.
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break false;
                }
            }
        };
        if !(ok && self.path.exists()) {
            return None;
        }
        self.watch_master();
        Some(self.path.clone())
    }

    /// Hands the master's process group to the reaper: it ends with the
    /// clone, however the clone ends. Left alone, a killed clone's master
    /// outlived it for good whenever a remote program it carried was still
    /// writing (`cat` of an archive being unpacked: it never reads its input,
    /// so it never sees the client go), holding that program on the backup
    /// host with it.
    fn watch_master(&self) {
        let mut check = crate::remote::SshCommand::new("pgclone-master")
            .check_master(&self.path)
            .options(&self.ssh_options)
            .command();
        let Ok(out) = crate::child::dies_with_parent(&mut check)
            .stdin(std::process::Stdio::null())
            .output()
        else {
            return;
        };
        if let Some(pid) = master_pid(&String::from_utf8_lossy(&out.stderr)) {
            // `ssh -f` daemonizes into a session of its own: its pid is its
            // group's number.
            crate::child::reaper::watch(pid);
            if let Ok(mut slot) = self.pid.lock() {
                *slot = Some(pid);
            }
        }
    }
}

/// The pid in `-O check`'s "Master running (pid=N)".
fn master_pid(text: &str) -> Option<i32> {
    let at = text.find("(pid=")? + 5;
    let rest = &text[at..];
    rest[..rest.find(')')?].parse().ok()
}

impl Drop for SshMaster {
    fn drop(&mut self) {
        if self.path.exists() {
            // The control path is literal (no %h): any destination names it.
            let mut stop = crate::remote::SshCommand::new("pgclone-master")
                .stop_master(&self.path)
                .options(&self.ssh_options)
                .command();
            let _ = crate::child::dies_with_parent(&mut stop)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        // Stopped: its pid may be another process's from now on.
        if let Some(pid) = self.pid.lock().ok().and_then(|p| *p) {
            crate::child::reaper::unregister(pid);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_master_s_pid_is_read_from_its_check() {
        assert_eq!(
            super::master_pid("Master running (pid=4242)\r\n"),
            Some(4242)
        );
        assert_eq!(
            super::master_pid("Control socket connect(/x): No such file"),
            None
        );
        assert_eq!(super::master_pid("(pid=)"), None);
        assert_eq!(super::master_pid("(pid=12"), None);
    }
}
