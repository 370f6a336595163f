//! The shared ssh connection (ControlMaster) of a clone from Barman: opened
//! while the upstream is checked, so that the barman commands and the first
//! rsync stream skip the handshake; closed when the clone ends.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A shared ssh connection for the barman commands of one clone, closed when
/// the clone ends.
pub struct SshMaster {
    child: std::sync::Mutex<std::process::Child>,
    path: PathBuf,
    ssh_options: Vec<String>,
    /// How long the connection may take before it is given up.
    bound: Duration,
    started: Instant,
}

impl SshMaster {
    /// `connect_timeout` is ssh's own (in `ssh_options`); the master is given
    /// up a little after it, whatever ssh does.
    pub fn start(
        dest: &str,
        ssh_options: &[String],
        dir: &Path,
        connect_timeout: u32,
    ) -> Option<SshMaster> {
        let path = dir.join("ssh-master");
        let log = std::fs::File::create(dir.join("ssh-master.log")).ok()?;
        let mut cmd = crate::remote::master_command(dest, None, ssh_options, &path, 30, log);
        // Until it has logged in and gone to the background (`-f`), it dies
        // with pgclone; left in pgclone's process group (it may ask on the
        // terminal). The master itself is a fork ssh makes, in a session of
        // its own, without this signal: detached on purpose. It writes
        // nothing into a target, its clients all die with pgclone, and
        // ControlPersist ends it 30 s after the last one.
        crate::child::dies_with_parent(&mut cmd);
        crate::report::running(&cmd);
        let child = cmd.spawn().ok()?;
        Some(SshMaster {
            child: std::sync::Mutex::new(child),
            path,
            ssh_options: ssh_options.to_vec(),
            bound: Duration::from_secs(connect_timeout as u64 + 5),
            started: Instant::now(),
        })
    }

    /// The control path once the connection is up; `None` if it failed (the
    /// commands then connect on their own and report what ssh says).
    pub fn ready(&self) -> Option<PathBuf> {
        let mut child = self.child.lock().ok()?;
        let ok = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.success(),
                Ok(None) if self.started.elapsed() < self.bound => {
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
        (ok && self.path.exists()).then(|| self.path.clone())
    }
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
    }
}
