//! Reaching the Barman host for WAL: one multiplexed ssh connection shared by
//! every `wal-restore` process (ControlMaster, kept for a minute after the
//! last use), Barman's WAL directory read directly (no Barman process per
//! segment), and `barman get-wal` only where that is not possible.
//!
//! Every ssh is bounded: `ConnectTimeout` (connection, banner and key
//! exchange), `ServerAlive*` (a connection that stops answering), and a
//! watchdog that kills the ssh after the operation's bound.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use super::guard::{ChildGuard, Watchdog};

use crate::remote::shell_quote;
use crate::report::Failure;

/// How to reach Barman.
#[derive(Debug, Clone)]
pub struct Remote {
    /// `user@host`, or a host whose user is found when ssh first needs it
    /// (`ssh -G`, see [`crate::remote::barman_destination`]): a segment
    /// already in the spool costs no ssh at all.
    pub dest: String,
    /// The destination with its user, once found.
    pub resolved: std::sync::OnceLock<String>,
    pub port: Option<String>,
    pub ssh_options: Vec<String>,
    /// The ssh control socket (in the source's spool directory).
    pub control_path: PathBuf,
    /// Barman's configuration file on its host (`-c`).
    pub barman_config: Option<String>,
    pub server: String,
    /// Seconds ssh may take to connect (TCP, banner, key exchange).
    pub connect_timeout: u64,
    /// Seconds one remote operation may take before its ssh is killed.
    pub timeout: u64,
}

/// What `barman show-server` says about where WAL lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    pub wals_directory: String,
    /// Barman's `compression` for archived WAL (none, gzip, bzip2, ...).
    pub compression: Option<String>,
}

/// A remote command failed: `missing` when it failed because the file does
/// not exist.
#[derive(Debug)]
pub struct FetchError {
    pub missing: bool,
    pub failure: Failure,
}

impl Remote {
    /// The source, for the spool's key and for people: everything that
    /// decides which files a request gets.
    pub fn source(&self) -> String {
        format!(
            "barman host={} port={} server={} config={} ssh_options={:?}",
            self.dest,
            self.port.as_deref().unwrap_or(""),
            self.server,
            self.barman_config.as_deref().unwrap_or(""),
            self.ssh_options
        )
    }

    /// Where ssh goes: `user@host` (the same user a clone uses).
    pub fn target(&self) -> &str {
        self.resolved.get_or_init(|| {
            crate::remote::barman_destination(
                &self.dest,
                None,
                self.port.as_deref(),
                &self.ssh_options,
            )
        })
    }

    /// The Barman host as messages name it.
    pub fn host(&self) -> String {
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

    fn failure(&self, missing: bool, f: Failure) -> FetchError {
        FetchError {
            missing,
            failure: f,
        }
    }

    /// Starts the shared connection if there is none: `ssh -fN` in the
    /// background, stdio detached (a master holding a caller's pipe open would
    /// make every caller wait for it), kept for a minute after the last use.
    pub fn ensure_master(&self) -> Result<(), FetchError> {
        if self.control_path.exists() {
            return Ok(());
        }
        let log = self.control_path.with_extension("log");
        let err_file = std::fs::File::create(&log).map_err(|e| {
            self.failure(
                false,
                Failure::new("cannot write to the spool directory").detail(e.to_string()),
            )
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
        let mut child = c.spawn().map_err(|e| {
            self.failure(
                false,
                Failure::new("could not run ssh").detail(e.to_string()),
            )
        })?;
        let _guard = ChildGuard::register(child.id());
        let dog = Watchdog::arm(child.id(), self.master_bound());
        // `ssh -f` returns once logged in; the master lives on in its own session.
        let status = child.wait();
        let timed_out = dog.disarm();
        let detail = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .trim()
            .to_string();
        if timed_out {
            return Err(self.failure(
                false,
                Failure::new(format!(
                    "connecting to the Barman host {} timed out after {} s",
                    self.host(),
                    self.master_bound().as_secs()
                ))
                .detail(detail)
                .hint("check that the host is up and reachable, or raise ssh_connect_timeout"),
            ));
        }
        match status {
            Ok(s) if s.success() => Ok(()),
            _ => Err(self.failure(
                false,
                Failure::new(format!(
                    "could not connect to the Barman host {} over ssh",
                    self.host()
                ))
                .detail(detail),
            )),
        }
    }

    /// An ssh command through the shared connection (direct if it is gone).
    pub fn ssh(&self) -> std::process::Command {
        let mut c = std::process::Command::new("ssh");
        c.args(["-o", "BatchMode=yes", "-o", "ControlMaster=no"])
            .args(self.bounds())
            .args(crate::remote::FAST_CIPHER)
            .arg("-o")
            .arg(format!("ControlPath={}", self.control_path.display()));
        if let Some(p) = &self.port {
            c.args(["-p", p]);
        }
        c.args(&self.ssh_options).arg("--").arg(self.target());
        c.stdin(Stdio::null());
        c
    }

    /// Runs `argv` remotely (each argument quoted for the remote shell),
    /// killed after the operation's bound.
    pub fn run(&self, argv: &[&str]) -> Result<Vec<u8>, FetchError> {
        self.ensure_master()?;
        let (status, stdout, stderr, timed_out) = self.run_bounded(argv).map_err(|e| {
            self.failure(
                false,
                Failure::new("could not run ssh").detail(e.to_string()),
            )
        })?;
        let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
        if timed_out {
            return Err(self.failure(
                false,
                Failure::new(format!(
                    "{} on the Barman host {} did not finish within {} s and was stopped",
                    argv[0],
                    self.host(),
                    self.timeout
                ))
                .detail(stderr)
                .hint("check the Barman host and the network, or raise wal_restore_timeout"),
            ));
        }
        if status.success() {
            return Ok(stdout);
        }
        let missing = stderr.contains("No such file")
            || stderr.contains("not found in archive")
            || stderr.contains("WAL file not found");
        let f = match status.code() {
            Some(255) => Failure::new(format!(
                "could not connect to the Barman host {} over ssh",
                self.host()
            )),
            Some(c) => Failure::new(format!(
                "{} on {} failed with status {c}",
                argv[0],
                self.host()
            )),
            None => Failure::new(format!("ssh to {} was killed", self.host())),
        };
        Err(self.failure(missing, f.detail(stderr)))
    }

    /// Runs the ssh, reading both of its outputs, under a watchdog.
    fn run_bounded(
        &self,
        argv: &[&str],
    ) -> std::io::Result<(std::process::ExitStatus, Vec<u8>, Vec<u8>, bool)> {
        use std::io::Read;
        let mut child = self
            .ssh()
            .args(argv.iter().map(|a| shell_quote(a)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let _guard = ChildGuard::register(child.id());
        let dog = Watchdog::arm(child.id(), Duration::from_secs(self.timeout.max(1)));
        let mut err_pipe = child.stderr.take().unwrap();
        let (err_tx, err_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = err_pipe.read_to_end(&mut b);
            let _ = err_tx.send(b);
        });
        let mut out = Vec::new();
        let _ = child.stdout.take().unwrap().read_to_end(&mut out);
        // Disarmed before the child is reaped: the pid cannot have been reused.
        let timed_out = dog.disarm();
        let status = child.wait()?;
        // A ProxyCommand outliving a killed ssh may hold stderr open: do not wait on it.
        let err = err_rx
            .recv_timeout(Duration::from_secs(2))
            .unwrap_or_default();
        Ok((status, out, err, timed_out))
    }

    fn barman_argv<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["barman"];
        if let Some(c) = &self.barman_config {
            v.extend(["--config", c.as_str()]);
        }
        v.extend(args);
        v
    }

    /// Asks Barman where this server's WAL is.
    pub fn server_info(&self) -> Result<ServerInfo, FetchError> {
        let out = self.run(&self.barman_argv(&["show-server", &self.server]))?;
        let text = String::from_utf8_lossy(&out);
        let get = |key: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.trim().split_once(':')?;
                (k.trim() == key).then(|| v.trim().to_string())
            })
        };
        let wals_directory = get("wals_directory").ok_or_else(|| FetchError {
            missing: false,
            failure: Failure::new(format!(
                "barman show-server {} did not name the WAL directory",
                self.server
            )),
        })?;
        let compression =
            get("compression").filter(|c| !matches!(c.as_str(), "" | "None" | "none"));
        Ok(ServerInfo {
            wals_directory,
            compression,
        })
    }

    /// `barman get-wal` (the fallback: compressions the host does not read,
    /// `.partial` files).
    pub fn get_wal(&self, name: &str, partial: bool) -> Result<Vec<u8>, FetchError> {
        let mut args = vec!["get-wal"];
        if partial {
            args.push("--partial");
        }
        args.extend([self.server.as_str(), name]);
        self.run(&self.barman_argv(&args))
    }

    /// Reads archived files directly: one `tar` stream for all of `names`
    /// (missing ones are skipped), so a batch costs one remote process.
    pub fn fetch_many(
        &self,
        info: &ServerInfo,
        names: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>, FetchError> {
        let argv = tar_argv(info, names);
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = match self.run(&refs) {
            Ok(o) => o,
            // GNU tar exits 2 after skipping missing files; its output is still whole.
            Err(e) if e.failure.message.contains("status 2") => {
                return self.fetch_many_tolerant(info, names);
            }
            Err(e) => return Err(e),
        };
        read_tar(&out, info)
    }

    fn fetch_many_tolerant(
        &self,
        info: &ServerInfo,
        names: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>, FetchError> {
        // Ask again for the files that exist, found with a listing.
        let dirs: std::collections::BTreeSet<String> = names
            .iter()
            .map(|n| n[..16.min(n.len())].to_string())
            .collect();
        let mut present = Vec::new();
        for d in dirs {
            if let Ok(out) = self.run(&["ls", "-1", &format!("{}/{d}", info.wals_directory)]) {
                let listing = String::from_utf8_lossy(&out);
                present.extend(
                    names
                        .iter()
                        .filter(|n| listing.lines().any(|l| l.trim() == n.as_str()))
                        .cloned(),
                );
            }
        }
        if present.is_empty() {
            return Ok(Vec::new());
        }
        let mut argv: Vec<String> = vec![
            "tar".into(),
            "-cf".into(),
            "-".into(),
            "-C".into(),
            info.wals_directory.clone(),
        ];
        argv.extend(present.iter().map(|n| archive_path(n)));
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        read_tar(&self.run(&refs)?, info)
    }
}

/// The remote command that streams `names` from Barman's WAL directory as
/// one tar archive, skipping the ones that are not there.
pub fn tar_argv(info: &ServerInfo, names: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = [
        "tar",
        "--ignore-failed-read",
        "--warning=no-failed-read",
        "-cf",
        "-",
        "-C",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    argv.push(info.wals_directory.clone());
    argv.extend(names.iter().map(|n| archive_path(n)));
    argv
}

/// `0000000100000000/000000010000000000000003`: Barman's hashed layout.
pub fn archive_path(name: &str) -> String {
    if name.len() >= 24 && !name.ends_with(".history") {
        format!("{}/{name}", &name[..16])
    } else {
        name.to_string()
    }
}

fn read_tar(bytes: &[u8], info: &ServerInfo) -> Result<Vec<(String, Vec<u8>)>, FetchError> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(bytes);
    let entries = archive.entries().map_err(|e| FetchError {
        missing: false,
        failure: Failure::new("unreadable tar stream from the Barman host").detail(e.to_string()),
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|e| FetchError {
            missing: false,
            failure: Failure::new("unreadable tar stream from the Barman host")
                .detail(e.to_string()),
        })?;
        let name = entry
            .path()
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data).map_err(|e| FetchError {
            missing: false,
            failure: Failure::new("reading from the Barman host failed").detail(e.to_string()),
        })?;
        out.push((name, decompress(info, data)?));
    }
    Ok(out)
}

/// Decompresses what Barman compressed at rest (gzip, bzip2), detected by magic.
pub fn decompress(info: &ServerInfo, data: Vec<u8>) -> Result<Vec<u8>, FetchError> {
    use std::io::Read;
    let err = |e: std::io::Error| FetchError {
        missing: false,
        failure: Failure::new("could not decompress a WAL file from Barman").detail(e.to_string()),
    };
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(16 << 20);
        flate2::read::GzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .map_err(err)?;
        return Ok(out);
    }
    if data.starts_with(b"BZh") {
        let mut out = Vec::with_capacity(16 << 20);
        bzip2::read::BzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .map_err(err)?;
        return Ok(out);
    }
    let _ = info;
    Ok(data)
}
