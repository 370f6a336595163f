//! The `host` interface as plugins see it. Every call is checked against both
//! capability locks; a refusal is returned to the plugin as a `denied` error and
//! recorded, so the call fails even if the plugin ignores it.

use std::io::Read;
use std::process::{Command, Stdio};

use super::state::PluginState;
use super::versions::current::host_api;
use super::versions::current::types::{
    self, CommandOutput, ErrorKind, LogLevel, ObjectMeta, PluginError, StoreListing,
};
use crate::contract::capability::{Capability, Refusal};
use crate::remote::SshCommand;

/// Standard output a plugin may receive from one program.
const MAX_STDOUT: usize = 16 << 20;
/// Standard error kept from one program.
const MAX_STDERR: usize = 1 << 20;
/// Longest log line a plugin may write.
const MAX_LOG: usize = 4096;
/// Entries one `store-list` may return.
const MAX_LISTING: usize = 10_000;
/// Largest object `store-read` returns.
const MAX_OBJECT: u32 = 1 << 20;

impl types::Host for PluginState {}

fn denied(plugin: &str, cap: &Capability, refusal: Refusal) -> PluginError {
    let (message, hint) = match refusal {
        Refusal::NotDeclared => (
            format!("plugin \"{plugin}\" did not declare capability {cap}"),
            "a plugin must list every capability it uses in describe()".to_string(),
        ),
        Refusal::NotGranted => (
            format!("capability {cap} is not granted to plugin \"{plugin}\""),
            format!("grant it in plugins.toml: [plugin.{plugin}] grants = [\"{cap}\"]"),
        ),
    };
    PluginError {
        kind: ErrorKind::Denied,
        message,
        detail: None,
        hint: Some(hint),
    }
}

/// What a plugin gets for a program during `pgclone plugin test`.
fn not_run(cap: &Capability) -> PluginError {
    PluginError {
        kind: ErrorKind::Unreachable,
        message: format!("{cap}: programs are not run during a conformance test"),
        detail: None,
        hint: None,
    }
}

fn error(kind: ErrorKind, message: String, detail: Option<String>) -> PluginError {
    PluginError {
        kind,
        message,
        detail,
        hint: None,
    }
}

/// Strips control characters so a plugin cannot forge lines or escape codes.
fn clean(s: &str) -> String {
    s.chars()
        .take(MAX_LOG)
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect()
}

/// A store's error as the plugin sees it: its class, and the host's words
/// (which name the store and its host, never a credential).
fn store_error(e: crate::store::StoreError) -> PluginError {
    use crate::store::StoreErrorKind as K;
    let kind = match e.kind {
        // A missing bucket is the store's configuration, not a missing file.
        K::InvalidConfig | K::NoBucket => ErrorKind::InvalidConfig,
        K::Unreachable | K::Timeout => ErrorKind::Unreachable,
        K::AuthFailed => ErrorKind::AuthFailed,
        K::NotFound => ErrorKind::NotFound,
        K::TooLarge | K::TooMany | K::Corrupt => ErrorKind::InvalidBackup,
        _ => ErrorKind::Failed,
    };
    PluginError {
        kind,
        message: e.to_string(),
        detail: e.detail.clone(),
        hint: e.hint.clone(),
    }
}

impl PluginState {
    /// The store `name`, for a call already allowed.
    fn store(&self, name: &str) -> Result<std::sync::Arc<crate::store::Store>, PluginError> {
        if self.env.no_programs {
            return Err(PluginError {
                kind: ErrorKind::Unreachable,
                message: format!("store \"{name}\": stores are not read during a conformance test"),
                detail: None,
                hint: None,
            });
        }
        self.env.store(name).map_err(|f| PluginError {
            kind: ErrorKind::InvalidConfig,
            message: f.message.clone(),
            detail: f.detail.clone(),
            hint: f.hint.clone(),
        })
    }

    /// Runs `cmd`, bounding its output, and its time by what is left of the
    /// call's `plugin_program_timeout` (shared by all programs of one call, so
    /// that a plugin cannot stretch a call by running programs one after
    /// another). That time does not count against the plugin's deadline.
    fn run(&mut self, mut cmd: Command, what: &str) -> Result<CommandOutput, PluginError> {
        let limit = self.program_time_left();
        if limit.is_zero() {
            return Err(error(
                ErrorKind::Failed,
                format!(
                    "{what} was not run: the programs of this call used up plugin_program_timeout ({} s)",
                    self.program_budget().as_secs_f64()
                ),
                None,
            ));
        }
        self.clock.program_started();
        let result = run_bounded(&mut cmd, what, limit);
        self.clock.program_ended();
        result
    }
}

/// Runs `cmd` with its output bounded and its time limited to `limit` (a
/// watchdog kills it; a hung ssh or program must not hang pgclone).
fn run_bounded(
    cmd: &mut Command,
    what: &str,
    limit: std::time::Duration,
) -> Result<CommandOutput, PluginError> {
    // A process group of its own: the watchdog kills the program and whatever
    // it started (a grandchild holding the pipes would otherwise keep us
    // reading).
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The call's thread waits for the program before it returns (see crate::child).
    crate::child::bound(cmd);
    crate::report::running(cmd);
    let mut child = cmd.spawn().map_err(|e| {
        error(
            ErrorKind::NotFound,
            format!("could not run {what}"),
            Some(e.to_string()),
        )
    })?;
    // The watchdog kills the program's group past the limit.
    let mut supervisor = crate::child::Supervised::new(child.id(), Some(limit));
    let too_slow = || {
        error(
            ErrorKind::Failed,
            format!(
                "{what} did not finish within {} s and was killed",
                limit.as_secs_f64()
            ),
            Some("plugin_program_timeout in the configuration sets the limit, in seconds, for all the programs of one plugin call together".into()),
        )
    };
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut stderr).take(MAX_STDERR as u64).read_to_end(&mut buf);
        // Drain the rest so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        buf
    });
    let mut stdout = Vec::new();
    let read = child
        .stdout
        .take()
        .unwrap()
        .take(MAX_STDOUT as u64 + 1)
        .read_to_end(&mut stdout);
    if stdout.len() > MAX_STDOUT {
        supervisor.kill();
        let _ = err_reader.join();
        let timed_out = supervisor.exited();
        let _ = child.wait();
        supervisor.finished();
        if timed_out {
            return Err(too_slow());
        }
        return Err(error(
            ErrorKind::Failed,
            format!(
                "{what} wrote more than {} MiB to standard output",
                MAX_STDOUT >> 20
            ),
            None,
        ));
    }
    let stderr = err_reader.join().unwrap_or_default();
    // The bound applies until the program exits, even after it closed its
    // pipes; it is reaped only then.
    let timed_out = supervisor.exited();
    let status = child.wait();
    supervisor.finished();
    if timed_out {
        return Err(too_slow());
    }
    let status = status.map_err(|e| {
        error(
            ErrorKind::Failed,
            format!("{what} failed"),
            Some(e.to_string()),
        )
    })?;
    read.map_err(|e| {
        error(
            ErrorKind::Failed,
            format!("reading from {what} failed"),
            Some(e.to_string()),
        )
    })?;
    Ok(CommandOutput {
        status: status.code(),
        stdout,
        stderr,
    })
}

impl host_api::Host for PluginState {
    fn log(&mut self, level: LogLevel, message: String) {
        let line = format!("[{}] {}", self.plugin, clean(&message));
        // Called again and again (a conformance run), a plugin says a
        // notice or warning once.
        if matches!(level, LogLevel::Notice | LogLevel::Warning)
            && !crate::report::first_time(&line)
        {
            return;
        }
        match level {
            LogLevel::Debug => tracing::debug!("{line}"),
            LogLevel::Info => tracing::info!("{line}"),
            LogLevel::Notice => crate::report::notice(&line),
            LogLevel::Warning => crate::report::warning(&line, None),
        }
    }

    fn run_remote(
        &mut self,
        target: String,
        argv: Vec<String>,
    ) -> Result<CommandOutput, PluginError> {
        let Some(program) = argv.first().cloned() else {
            return Err(error(
                ErrorKind::Internal,
                "run-remote called with an empty argv".into(),
                None,
            ));
        };
        let cap = Capability::RemoteRun {
            target: target.clone(),
            program,
        };
        if let Err(r) = self.require("run-remote", cap.clone()) {
            return Err(denied(&self.plugin, &cap, r));
        }
        if self.env.no_programs {
            return Err(not_run(&cap));
        }
        let Some(dest) = self.env.ssh_destination(&target) else {
            return Err(PluginError {
                kind: ErrorKind::InvalidConfig,
                message: format!("no ssh destination is configured for target \"{target}\""),
                detail: None,
                hint: Some(format!(
                    "set {}_host in the configuration file, or [targets] {target} in plugins.toml",
                    target.replace('-', "_")
                )),
            });
        };
        if dest.starts_with('-') {
            return Err(error(
                ErrorKind::InvalidConfig,
                format!("ssh destination \"{dest}\" for target \"{target}\" starts with '-'"),
                None,
            ));
        }
        // The connect timeout and keepalives come with `ssh_options`. No
        // preferred cipher: a plugin's output is read into memory, not a bulk
        // transfer (and through the shared connection its cipher is used).
        let cmd = SshCommand::new(&dest)
            .control_path(self.env.control_path(&target))
            .options(&self.env.ssh_options)
            .remote(&argv)
            .command();
        self.run(cmd, &format!("ssh to \"{dest}\""))
    }

    fn run_local(
        &mut self,
        program: String,
        args: Vec<String>,
    ) -> Result<CommandOutput, PluginError> {
        let cap = Capability::LocalRun(program.clone());
        if let Err(r) = self.require("run-local", cap.clone()) {
            return Err(denied(&self.plugin, &cap, r));
        }
        if self.env.no_programs {
            return Err(not_run(&cap));
        }
        let Some(path) = self.env.find_program(&program) else {
            return Err(PluginError {
                kind: ErrorKind::NotFound,
                message: format!("program \"{program}\" not found"),
                detail: None,
                hint: Some(
                    "set pg_bindir in the configuration file, or add its directory to PATH".into(),
                ),
            });
        };
        let mut cmd = Command::new(&path);
        cmd.args(&args);
        self.run(cmd, &format!("\"{}\"", path.display()))
    }

    fn config_get(&mut self, key: String) -> Result<Option<String>, PluginError> {
        let cap = Capability::ReadConfig(key.clone());
        if let Err(r) = self.require("config-get", cap.clone()) {
            return Err(denied(&self.plugin, &cap, r));
        }
        Ok(self.env.config.get(&key).map(str::to_string))
    }

    fn store_list(
        &mut self,
        store: String,
        prefix: String,
        delimited: bool,
    ) -> Result<StoreListing, PluginError> {
        if let Err(r) = self.require_key("store-list", &store, &prefix) {
            let cap = Capability::StoreRead {
                store: store.clone(),
                prefix: prefix.escape_debug().to_string(),
            };
            return Err(denied(&self.plugin, &cap, r));
        }
        let s = self.store(&store)?;
        let listing = s
            .list(&prefix, delimited, MAX_LISTING)
            .map_err(store_error)?;
        Ok(StoreListing {
            objects: listing
                .objects
                .into_iter()
                .map(|o| ObjectMeta {
                    key: o.key,
                    size: o.size,
                })
                .collect(),
            prefixes: listing.prefixes,
        })
    }

    fn store_read(
        &mut self,
        store: String,
        key: String,
        max_bytes: u32,
    ) -> Result<Vec<u8>, PluginError> {
        if let Err(r) = self.require_key("store-read", &store, &key) {
            let cap = Capability::StoreRead {
                store: store.clone(),
                prefix: key.escape_debug().to_string(),
            };
            return Err(denied(&self.plugin, &cap, r));
        }
        let s = self.store(&store)?;
        s.read_small(&key, u64::from(max_bytes.min(MAX_OBJECT)))
            .map_err(store_error)
    }

    fn config_get_all(&mut self, key: String) -> Result<Vec<String>, PluginError> {
        let cap = Capability::ReadConfig(key.clone());
        if let Err(r) = self.require("config-get-all", cap.clone()) {
            return Err(denied(&self.plugin, &cap, r));
        }
        Ok(self
            .env
            .config
            .get_all(&key)
            .into_iter()
            .map(str::to_string)
            .collect())
    }
}
