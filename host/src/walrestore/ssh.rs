//! Reaching a source's remote host for WAL: one multiplexed ssh connection
//! per host, shared by every `wal-restore` process (ControlMaster, its socket
//! in the source's spool directory, kept for a minute after the last use).
//!
//! Every ssh is bounded: `ConnectTimeout` (connection, banner and key
//! exchange), `ServerAlive*` (a connection that stops answering), and a
//! watchdog that kills the ssh after the operation's bound.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::child::Supervised;
use crate::remote::SshCommand;
use crate::report::Failure;

/// One remote host of a source, as ssh reaches it.
#[derive(Debug, Clone)]
pub struct SshHost {
    /// The logical target it is (`barman`, a plugin's own).
    pub name: String,
    /// `user@host`, or a host whose user is found when ssh first needs it
    /// (`ssh -G`, see [`crate::remote::destination`]): a segment already in
    /// the spool costs no ssh at all.
    pub dest: String,
    /// The destination with its user, once found.
    pub resolved: std::sync::OnceLock<String>,
    pub port: Option<String>,
    pub ssh_options: Vec<String>,
    /// The ssh control socket (in the source's spool directory).
    pub control_path: PathBuf,
    /// Seconds ssh may take to connect (TCP, banner, key exchange).
    pub connect_timeout: u64,
    /// Seconds one remote operation may take before its ssh is killed.
    pub timeout: u64,
}

/// The most a remote program's output may be when it is captured whole
/// (directory listings hold at most 4096 segment names of 25 bytes).
pub const MAX_OUTPUT: u64 = 4 << 20;

/// The most of a program's standard error kept for a message.
pub const MAX_STDERR: u64 = 64 << 10;

/// Up to `cap` bytes of `r`, the rest read and dropped (a writer is never
/// left blocked on a full pipe).
pub fn read_capped(mut r: impl std::io::Read, cap: u64) -> Vec<u8> {
    use std::io::Read;
    let mut kept = Vec::new();
    let _ = (&mut r).take(cap).read_to_end(&mut kept);
    let _ = std::io::copy(&mut r, &mut std::io::sink());
    kept
}

/// What a remote program did.
#[derive(Debug)]
pub struct Ran {
    /// Its exit status (255: ssh itself failed); none when it was killed.
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// Killed by the watchdog after the operation's bound.
    pub timed_out: bool,
}

impl SshHost {
    /// Where ssh goes: `user@host` (the same user a clone uses).
    pub fn target(&self) -> &str {
        self.resolved.get_or_init(|| {
            crate::remote::destination(
                &self.name,
                &self.dest,
                None,
                self.port.as_deref(),
                &self.ssh_options,
            )
        })
    }

    /// The host as messages name it.
    pub fn describe(&self) -> String {
        match &self.port {
            Some(p) => format!("\"{}\" (port {p})", self.target()),
            None => format!("\"{}\"", self.target()),
        }
    }

    /// Options every ssh gets: a connect timeout and a liveness bound
    /// (a silent connection is dropped after about the connect timeout).
    fn bounds(&self) -> Vec<String> {
        let alive = self.connect_timeout.div_ceil(3).max(1);
        vec![
            "-o".into(),
            format!("ConnectTimeout={}", self.connect_timeout.max(1)),
            "-o".into(),
            format!("ServerAliveInterval={alive}"),
            "-o".into(),
            "ServerAliveCountMax=3".into(),
        ]
    }

    /// How long starting the shared connection may take: the connect timeout
    /// plus time to log in.
    fn master_bound(&self) -> Duration {
        Duration::from_secs(self.connect_timeout.max(1) + 10)
    }

    /// Starts the shared connection if there is none: `ssh -fN` in the
    /// background, stdio detached (a master holding a caller's pipe open would
    /// make every caller wait for it), kept for a minute after the last use.
    pub fn ensure_master(&self) -> Result<(), Failure> {
        if self.control_path.exists() {
            return Ok(());
        }
        let log = self.control_path.with_extension("log");
        let err_file = std::fs::File::create(&log).map_err(|e| {
            Failure::new("cannot write to the spool directory").detail(e.to_string())
        })?;
        // The clone's master command, with wal-restore's bounds first (ssh
        // takes the first value of an option) and kept a minute.
        let options: Vec<String> = self
            .bounds()
            .into_iter()
            .chain(self.ssh_options.iter().cloned())
            .collect();
        let mut c = crate::remote::master_command(
            self.target(),
            self.port.as_deref(),
            &options,
            &self.control_path,
            60,
            err_file,
        );
        crate::child::bound(&mut c);
        let mut child = c
            .spawn()
            .map_err(|e| Failure::new("could not run ssh").detail(e.to_string()))?;
        let mut ssh = Supervised::new(child.id(), Some(self.master_bound()));
        // `ssh -f` returns once logged in; the master lives on in its own session.
        let timed_out = ssh.exited();
        let status = child.wait();
        ssh.finished();
        let detail = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .trim()
            .to_string();
        if timed_out {
            return Err(Failure::new(format!(
                "connecting to {} timed out after {} s",
                self.describe(),
                self.master_bound().as_secs()
            ))
            .detail(detail)
            .hint("check that the host is up and reachable, or raise ssh_connect_timeout"));
        }
        match status {
            Ok(s) if s.success() => Ok(()),
            _ => Err(
                Failure::new(format!("could not connect to {} over ssh", self.describe()))
                    .detail(detail),
            ),
        }
    }

    /// `argv` run remotely through the shared connection (direct if it is
    /// gone), each argument quoted for the remote shell. wal-restore's bounds
    /// come before the operator's options (ssh takes the first value of an
    /// option): a restore_command must not hang on a loose ServerAlive*.
    pub fn ssh(&self, argv: &[String]) -> std::process::Command {
        let mut c = SshCommand::new(self.target())
            .control_path(Some(&self.control_path))
            .fast_cipher()
            .port(self.port.as_deref())
            .options(&self.bounds())
            .options(&self.ssh_options)
            .remote(argv)
            .command();
        c.stdin(Stdio::null());
        c
    }

    /// Runs `argv` remotely (each argument quoted for the remote shell),
    /// killed after the operation's bound; the caller judges its status.
    pub fn run(&self, argv: &[String]) -> Result<Ran, Failure> {
        self.ensure_master()?;
        self.run_bounded(argv)
            .map_err(|e| Failure::new("could not run ssh").detail(e.to_string()))
    }

    /// Runs `argv` remotely and returns its output, or a failure that says
    /// what went wrong (no connection, a status, the bound).
    pub fn run_ok(&self, argv: &[String]) -> Result<Vec<u8>, Failure> {
        let ran = self.run(argv)?;
        if ran.status == Some(0) && !ran.timed_out {
            return Ok(ran.stdout);
        }
        Err(self.failed(&argv[0], &ran))
    }

    /// What a failed remote program means, in words.
    pub fn failed(&self, program: &str, ran: &Ran) -> Failure {
        if ran.timed_out {
            return Failure::new(format!(
                "{program} on {} did not finish within {} s and was stopped",
                self.describe(),
                self.timeout
            ))
            .detail(ran.stderr.clone())
            .hint("check the remote host and the network, or raise wal_restore_timeout");
        }
        let f = match ran.status {
            Some(255) => Failure::new(format!("could not connect to {} over ssh", self.describe())),
            Some(c) => Failure::new(format!(
                "{program} on {} failed with status {c}",
                self.describe()
            )),
            None => Failure::new(format!("ssh to {} was killed", self.describe())),
        };
        f.detail(ran.stderr.clone())
    }

    /// Runs the ssh under a watchdog, capturing at most [`MAX_OUTPUT`] of
    /// its standard output (listings, tests: never WAL, which is streamed).
    fn run_bounded(&self, argv: &[String]) -> std::io::Result<Ran> {
        use std::io::Read;
        let (out, mut ran) = self.run_reading(argv, |stdout, _| {
            let mut out = Vec::new();
            let read = stdout.take(MAX_OUTPUT + 1).read_to_end(&mut out);
            (read, out)
        })?;
        let (read, out) = out;
        read?;
        if out.len() as u64 > MAX_OUTPUT {
            return Err(std::io::Error::other(format!(
                "{} wrote more than {MAX_OUTPUT} bytes",
                argv[0]
            )));
        }
        ran.stdout = out;
        Ok(ran)
    }

    /// Runs `argv` remotely and hands its standard output to `read` as it
    /// arrives, with the watchdog (which `read` may kick on progress). When
    /// `read` returns, the pipe is closed: a remote program with more to say
    /// ends instead of holding the process. Standard error is kept up to
    /// [`MAX_STDERR`] and the rest drained.
    pub fn run_reading<T>(
        &self,
        argv: &[String],
        read: impl FnOnce(&mut dyn std::io::Read, &Supervised) -> T,
    ) -> std::io::Result<(T, Ran)> {
        let mut cmd = self.ssh(argv);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        crate::child::bound(&mut cmd);
        let mut child = cmd.spawn()?;
        let mut ssh = Supervised::new(child.id(), Some(Duration::from_secs(self.timeout.max(1))));
        let err_pipe = child.stderr.take().unwrap();
        let (err_tx, err_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = err_tx.send(read_capped(err_pipe, MAX_STDERR));
        });
        let mut stdout = child.stdout.take().unwrap();
        widen_pipe(&stdout);
        let result = read(&mut stdout, &ssh);
        drop(stdout);
        // Bounded until it exits, then reaped.
        let timed_out = ssh.exited();
        let status = child.wait()?;
        ssh.finished();
        // A ProxyCommand outliving a killed ssh may hold stderr open: do not wait on it.
        let err = err_rx
            .recv_timeout(Duration::from_secs(2))
            .unwrap_or_default();
        Ok((
            result,
            Ran {
                status: status.code(),
                stdout: Vec::new(),
                stderr: String::from_utf8_lossy(&err).trim().to_string(),
                timed_out,
            },
        ))
    }
}

/// A stream of segments through a 64 KiB pipe wakes its reader and the ssh
/// writing it a few hundred times per 16 MiB segment; 1 MiB (the most an
/// unprivileged process may ask, /proc/sys/fs/pipe-max-size) wakes them a
/// sixteenth as often. A pipe that stays small is only slower.
fn widen_pipe(pipe: &impl std::os::fd::AsRawFd) {
    unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
}
