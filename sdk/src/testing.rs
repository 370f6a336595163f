//! A test harness for plugins, for plain `cargo test` on the build machine:
//! builders for the records pgclone passes in, the standard policy to chain
//! after, and a [`FakeHost`] that answers the [`host`](crate::host) calls with
//! configuration values, canned program outputs and in-memory object stores.
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
//!
//! #[test]
//! fn reads_the_store_it_declares() {
//!     // Store calls are checked against the manifest's `store-read`
//!     // capabilities with the host's rule (`Capability::covers_key`).
//!     let host = FakeHost::new()
//!         .manifest(MANIFEST)
//!         .object("backups", "pg/base/b1/backup.info", "status=DONE\n");
//!     let (result, host) = testing::with_host(host, || MySource::check(testing::clone_request("/d")));
//!     assert_eq!(host.read.len(), 1);
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
use crate::types::{CommandOutput, ErrorKind, ObjectMeta, StoreListing};
use pgclone_contract::Capability;

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
    /// Object stores: store -> key -> content.
    stores: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// The capabilities the plugin declares (and the fake grants): store
    /// calls are checked against them as the host checks its grants.
    capabilities: Vec<Capability>,
    /// Every `store-list` call, as (store, prefix, delimited).
    pub listed: Vec<(String, String, bool)>,
    /// Every `store-read` call, as (store, key).
    pub read: Vec<(String, String)>,
}

/// The host's bound on one `store-read`, whatever `max-bytes` says.
#[cfg(not(target_arch = "wasm32"))]
const STORE_READ_MAX: usize = 1 << 20;

/// The host's bound on one `store-list`.
#[cfg(not(target_arch = "wasm32"))]
const STORE_LIST_MAX: usize = 10_000;

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

    /// Grants every capability a manifest declares (the plugin's
    /// `MANIFEST`), as an operator who grants the plugin what it asks.
    pub fn manifest(mut self, manifest: &str) -> Self {
        let m = pgclone_contract::manifest::parse(manifest)
            .unwrap_or_else(|e| panic!("invalid plugin manifest: {e}"));
        self.capabilities.extend(m.capabilities);
        self
    }

    /// Grants one capability, written as in `plugins.toml`
    /// (`store-read:STORE[:PREFIX]`).
    pub fn grant(mut self, capability: &str) -> Self {
        let c = capability.parse().unwrap_or_else(|e| panic!("{e}"));
        self.capabilities.push(c);
        self
    }

    /// Makes `store` exist (empty until objects are added).
    pub fn store(mut self, store: &str) -> Self {
        self.stores.entry(store.to_string()).or_default();
        self
    }

    /// Adds an object to `store` (which then exists).
    pub fn object(mut self, store: &str, key: &str, content: impl Into<Vec<u8>>) -> Self {
        self.stores
            .entry(store.to_string())
            .or_default()
            .insert(key.to_string(), content.into());
        self
    }

    /// The store's objects when a declared `store-read` covers `key`, as the
    /// host checks: denied otherwise, an error when no such store exists.
    #[cfg(not(target_arch = "wasm32"))]
    fn granted_store(
        &self,
        store: &str,
        key: &str,
    ) -> Result<&BTreeMap<String, Vec<u8>>, PluginError> {
        if !self.capabilities.iter().any(|c| c.covers_key(store, key)) {
            return Err(PluginError::new(
                ErrorKind::Denied,
                format!("no store-read capability of store \"{store}\" covers \"{key}\""),
            )
            .hint("declare store-read:STORE[:PREFIX] and give the fake host the manifest with FakeHost::manifest"));
        }
        self.stores.get(store).ok_or_else(|| {
            PluginError::new(
                ErrorKind::InvalidConfig,
                format!("no store named \"{store}\" is configured"),
            )
            .hint("give the fake host one with FakeHost::store or FakeHost::object")
        })
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn list(
        &mut self,
        store: &str,
        prefix: &str,
        delimited: bool,
    ) -> Result<StoreListing, PluginError> {
        self.listed
            .push((store.to_string(), prefix.to_string(), delimited));
        let objects = self.granted_store(store, prefix)?;
        let mut listing = StoreListing {
            objects: Vec::new(),
            prefixes: Vec::new(),
        };
        for (key, content) in objects.range(prefix.to_string()..) {
            let Some(rest) = key.strip_prefix(prefix) else {
                break;
            };
            match rest.find('/') {
                Some(slash) if delimited => {
                    let dir = format!("{prefix}{}", &rest[..=slash]);
                    if listing.prefixes.last() != Some(&dir) {
                        listing.prefixes.push(dir);
                    }
                }
                _ => listing.objects.push(ObjectMeta {
                    key: key.clone(),
                    size: content.len() as u64,
                }),
            }
        }
        if listing.objects.len() > STORE_LIST_MAX {
            return Err(PluginError::new(
                ErrorKind::Failed,
                format!(
                    "more than {STORE_LIST_MAX} objects under \"{prefix}\" of store \"{store}\""
                ),
            ));
        }
        Ok(listing)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn read(
        &mut self,
        store: &str,
        key: &str,
        max_bytes: u32,
    ) -> Result<Vec<u8>, PluginError> {
        self.read.push((store.to_string(), key.to_string()));
        let content = self.granted_store(store, key)?.get(key).ok_or_else(|| {
            PluginError::new(
                ErrorKind::NotFound,
                format!("no object \"{key}\" in store \"{store}\""),
            )
        })?;
        let limit = STORE_READ_MAX.min(max_bytes as usize);
        if content.len() > limit {
            return Err(PluginError::new(
                ErrorKind::Failed,
                format!(
                    "object \"{key}\" of store \"{store}\" is {} bytes, more than {limit}",
                    content.len()
                ),
            ));
        }
        Ok(content.clone())
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
        placed_tablespaces: Vec::new(),
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
    fn the_fake_stores_list_read_and_check_grants() {
        let fake = FakeHost::new()
            .grant("store-read:cloud:pg/")
            .object("cloud", "pg/base/b1/backup.info", "status=DONE\n")
            .object("cloud", "pg/base/b1/data.tar", vec![0u8; 10])
            .object("cloud", "pg/base/b2/backup.info", "status=FAILED\n")
            .object("cloud", "pg/wals/x", "")
            .object("cloud", "other/secret", "no")
            .store("empty");
        let (_, fake) = with_host(fake, || {
            let l = host::store_list("cloud", "pg/base/", true).unwrap();
            assert!(l.objects.is_empty());
            assert_eq!(l.prefixes, ["pg/base/b1/", "pg/base/b2/"]);
            let l = host::store_list("cloud", "pg/base/b1/", false).unwrap();
            let keys: Vec<_> = l.objects.iter().map(|o| (o.key.as_str(), o.size)).collect();
            assert_eq!(
                keys,
                [("pg/base/b1/backup.info", 12), ("pg/base/b1/data.tar", 10)]
            );
            assert_eq!(
                host::store_read("cloud", "pg/base/b1/backup.info", 64).unwrap(),
                b"status=DONE\n"
            );
            let e = host::store_read("cloud", "pg/base/b1/data.tar", 5).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Failed);
            let e = host::store_read("cloud", "pg/base/b3/backup.info", 64).unwrap_err();
            assert_eq!(e.kind, ErrorKind::NotFound);
            // Outside the grant, or climbing out of it: denied.
            for key in ["other/secret", "pg/../other/secret", "/pg/x"] {
                let e = host::store_read("cloud", key, 64).unwrap_err();
                assert_eq!(e.kind, ErrorKind::Denied, "{key}");
            }
            let e = host::store_list("empty", "", false).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Denied);
        });
        assert_eq!(fake.listed.len(), 3);
        assert_eq!(fake.read.len(), 6);
        // A granted store that does not exist is a configuration error.
        let fake = FakeHost::new().grant("store-read:nowhere");
        let (e, _) = with_host(fake, || host::store_list("nowhere", "", true).unwrap_err());
        assert_eq!(e.kind, ErrorKind::InvalidConfig);
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
