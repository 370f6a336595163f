//! A recovery policy as the host sees it: the facts it decides from and the
//! configuration it returns, in the host's own types
//! (`plugin/versions/current.rs` converts them to and from the WebAssembly
//! contract's).

pub use crate::contract::source::ConnParam;
use crate::contract::{Described, PluginFailure};

/// A loaded recovery policy: its facts, and sessions that call it.
pub trait PolicyPlugin: Described {
    /// A fresh session, with the host calls' environment the clone made.
    fn open(&self) -> Result<Box<dyn RecoveryPolicy>, PluginFailure>;
}

/// What a recovery policy does for the host.
pub trait RecoveryPolicy {
    /// Its name, for what it is said to have decided.
    fn name(&self) -> &str;
    /// The configuration after this policy: `previous` is what the policies
    /// before it decided.
    fn recovery_settings(
        &mut self,
        facts: &RecoveryFacts,
        previous: &RecoveryConfig,
    ) -> Result<RecoveryConfig, PluginFailure>;
}

/// Everything a policy may base its decision on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryFacts {
    pub server_version: u32,
    pub node_name: String,
    /// The upstream's connection parameters, without any password.
    pub upstream: Vec<ConnParam>,
    pub replication_user: Option<String>,
    pub slot_name: Option<String>,
    pub restore_command: Option<String>,
    pub recovery_min_apply_delay: Option<String>,
    pub archive_cleanup_command: Option<String>,
    pub passfile: Option<String>,
    /// From PGPASSWORD, only with use_primary_conninfo_password.
    pub password: Option<String>,
}

/// The file recovery settings go into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsFile {
    /// PostgreSQL 11 and older.
    RecoveryConf,
    /// PostgreSQL 12 and later.
    PostgresqlAutoConf,
}

/// A signal file (PostgreSQL 12 and later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalFile {
    Standby,
    Recovery,
}

/// One recovery setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    pub value: String,
}

/// A recovery configuration: where it goes, the settings, the signal files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryConfig {
    pub file: SettingsFile,
    pub settings: Vec<Setting>,
    pub signal_files: Vec<SignalFile>,
}
