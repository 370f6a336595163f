//! A test harness for plugins, for plain `cargo test` on the build machine:
//! builders for the records pgclone passes in, the standard policy to chain
//! after, and a [`FakeHost`] that answers the [`host`](crate::host) calls with
//! configuration values and canned program outputs.
//!
//! ```ignore
//! use pgclone_plugin_sdk::testing::{self, FakeHost};
//!
//! #[test]
//! fn refuses_without_verify_full() {
//!     let facts = testing::facts(150000);
//!     let err = testing::chain(&facts, MyPolicy::recovery_settings).unwrap_err();
//!     assert!(err.message.contains("verify-full"));
//! }
//!
//! #[test]
//! fn finds_the_backup() {
//!     let host = FakeHost::new()
//!         .config("pgbackrest_stanza", "main")
//!         .program("pgbackrest", 0, include_str!("info.json"));
//!     let (result, host) = testing::with_host(host, || MySource::check(testing::clone_request("/d")));
//!     assert!(result.is_ok(), "{:?}", host.logged);
//! }
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;

#[cfg(not(target_arch = "wasm32"))]
use crate::error::ErrorExt;
use crate::policy::{RecoveryConfig, RecoveryFacts, SettingsFile};
use crate::types::{
    BackupDescription, BackupFormat, CloneRequest, ConnParam, LogLevel, NodeIdentity, PluginError,
};
#[cfg(not(target_arch = "wasm32"))]
use crate::types::{CommandOutput, ErrorKind};

/// What the host calls see in a native test.
#[derive(Debug, Default, Clone)]
pub struct FakeHost {
    config: BTreeMap<String, Vec<String>>,
    /// Canned results by program name: (exit status, stdout, stderr).
    programs: BTreeMap<String, (i32, String, String)>,
    /// Every program run, as (remote target or none, argv).
    pub ran: Vec<(Option<String>, Vec<String>)>,
    /// Every line logged.
    pub logged: Vec<(LogLevel, String)>,
}

impl FakeHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value of a configuration key (repeat for repeatable keys).
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.config
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
        self
    }

    /// What running `program` (locally or remotely) returns.
    pub fn program(mut self, program: &str, status: i32, stdout: &str) -> Self {
        self.programs.insert(
            program.to_string(),
            (status, stdout.to_string(), String::new()),
        );
        self
    }

    /// Like [`program`](Self::program), with standard error.
    pub fn program_fails(mut self, program: &str, status: i32, stderr: &str) -> Self {
        self.programs.insert(
            program.to_string(),
            (status, String::new(), stderr.to_string()),
        );
        self
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn config_values(&self, key: &str) -> Result<Vec<String>, PluginError> {
        Ok(self.config.get(key).cloned().unwrap_or_default())
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn run(
        &mut self,
        target: Option<&str>,
        argv: &[String],
    ) -> Result<CommandOutput, PluginError> {
        self.ran.push((target.map(str::to_string), argv.to_vec()));
        let program = argv.first().map(String::as_str).unwrap_or("");
        match self.programs.get(program) {
            Some((status, out, err)) => Ok(CommandOutput {
                status: Some(*status),
                stdout: out.clone().into_bytes(),
                stderr: err.clone().into_bytes(),
            }),
            None => Err(PluginError::new(
                ErrorKind::Denied,
                format!("the fake host has no program \"{program}\""),
            )
            .hint("give it one with FakeHost::program")),
        }
    }
}

thread_local! {
    static HOST: RefCell<Option<FakeHost>> = const { RefCell::new(None) };
}

/// Runs `f` with `host` answering the host calls; returns what `f` returned
/// and the host (with what was run and logged).
pub fn with_host<R>(host: FakeHost, f: impl FnOnce() -> R) -> (R, FakeHost) {
    HOST.with(|h| *h.borrow_mut() = Some(host));
    let result = f();
    let host = HOST.with(|h| h.borrow_mut().take()).unwrap_or_default();
    (result, host)
}

/// Used by [`host`](crate::host) in native builds. Outside [`with_host`],
/// every call sees an empty host.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn fake<R>(f: impl FnOnce(&mut FakeHost) -> R) -> R {
    HOST.with(|h| {
        let mut h = h.borrow_mut();
        f(h.get_or_insert_with(FakeHost::default))
    })
}

/// One connection parameter.
pub fn param(key: &str, value: &str) -> ConnParam {
    ConnParam {
        key: key.into(),
        value: value.into(),
    }
}

/// The facts pgclone passes for node `node2` cloned from `node1:5432` as user
/// `repmgr`, for a server of `version` (e.g. 150000).
pub fn facts(version: u32) -> RecoveryFacts {
    RecoveryFacts {
        server_version: version,
        node_name: "node2".into(),
        upstream: vec![
            param("host", "node1"),
            param("port", "5432"),
            param("user", "repmgr"),
        ],
        replication_user: None,
        slot_name: None,
        restore_command: None,
        recovery_min_apply_delay: None,
        archive_cleanup_command: None,
        passfile: None,
        password: None,
    }
}

/// The empty configuration the first policy of a chain receives.
pub fn empty_config(version: u32) -> RecoveryConfig {
    RecoveryConfig {
        file: if crate::version::uses_signal_files(version) {
            SettingsFile::PostgresqlAutoConf
        } else {
            SettingsFile::RecoveryConf
        },
        settings: Vec::new(),
        signal_files: Vec::new(),
    }
}

/// Runs the standard policy, then `policy`, as pgclone chains them.
pub fn chain(
    facts: &RecoveryFacts,
    policy: impl FnOnce(RecoveryFacts, RecoveryConfig) -> Result<RecoveryConfig, PluginError>,
) -> Result<RecoveryConfig, PluginError> {
    let standard = crate::standard::recovery_settings(facts, empty_config(facts.server_version))?;
    policy(facts.clone(), standard)
}

/// The value of setting `name`, if the configuration has it.
pub fn setting<'a>(config: &'a RecoveryConfig, name: &str) -> Option<&'a str> {
    crate::policy::get(config, name)
}

/// A clone request for node `node2` into `data_directory`, upstream
/// `node1:5432`, PostgreSQL 15.
pub fn clone_request(data_directory: &str) -> CloneRequest {
    CloneRequest {
        node: NodeIdentity {
            node_id: Some(2),
            node_name: "node2".into(),
        },
        data_directory: data_directory.into(),
        upstream: vec![param("host", "node1"), param("port", "5432")],
        replication_user: None,
        upstream_version: Some(150000),
        upstream_system_identifier: Some("7000000000000000001".into()),
        upstream_tablespaces: Vec::new(),
        backup_id: None,
        fast_checkpoint: false,
        slot_name: None,
        interactive: false,
    }
}

/// A plain backup of system `7000000000000000001`, PostgreSQL 15, timeline 1.
pub fn backup(id: &str) -> BackupDescription {
    BackupDescription {
        id: id.into(),
        system_identifier: "7000000000000000001".into(),
        server_version: 150000,
        timeline: 1,
        begin_wal: "000000010000000000000004".into(),
        end_wal: "000000010000000000000004".into(),
        begin_lsn: "0/4000028".into(),
        end_lsn: "0/4000100".into(),
        size_bytes: 0,
        tablespaces: Vec::new(),
        format: BackupFormat::Plain,
        compression: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host;

    #[test]
    fn the_fake_host_answers_and_records() {
        let fake = FakeHost::new()
            .config("stanza", "main")
            .config("tablespace_mapping", "/a=/b")
            .config("tablespace_mapping", "/c=/d")
            .program("pgbackrest", 0, "[]");
        let (out, fake) = with_host(fake, || {
            host::log(LogLevel::Info, "hello");
            assert_eq!(host::config_get("stanza").unwrap().as_deref(), Some("main"));
            assert_eq!(host::config_get("nothing").unwrap(), None);
            assert_eq!(host::config_get_all("tablespace_mapping").unwrap().len(), 2);
            assert!(host::run_local("rm", &["-rf".into()]).is_err());
            host::run_local_ok("pgbackrest", &["info".into()])
        });
        assert_eq!(out.unwrap(), "[]");
        assert_eq!(fake.ran.len(), 2);
        assert_eq!(fake.logged[0].1, "hello");
    }

    #[test]
    fn policy_set_replaces_instead_of_duplicating() {
        use crate::policy;
        let mut f = facts(150000);
        f.recovery_min_apply_delay = Some("5min".into());
        let mut c = chain(&f, |_, previous| Ok(previous)).unwrap();
        policy::set(&mut c, "recovery_min_apply_delay", "1h");
        policy::set(&mut c, "archive_cleanup_command", "true");
        let delays = c
            .settings
            .iter()
            .filter(|s| s.name == "recovery_min_apply_delay")
            .count();
        assert_eq!(delays, 1);
        assert_eq!(policy::get(&c, "recovery_min_apply_delay"), Some("1h"));
        assert!(policy::remove(&mut c, "archive_cleanup_command"));
        assert_eq!(policy::get(&c, "archive_cleanup_command"), None);
    }

    #[test]
    fn chain_runs_the_standard_policy_first() {
        let c = chain(&facts(150000), |_, previous| Ok(previous)).unwrap();
        assert!(setting(&c, "primary_conninfo")
            .unwrap()
            .contains("application_name=node2"));
        assert_eq!(empty_config(110000).file, SettingsFile::RecoveryConf);
    }
}
