//! A backup source and a recovery policy without WebAssembly, for unit tests
//! of the phases that take the contract's traits: each answers what the test
//! set, and remembers what it was asked.

use std::sync::{Arc, Mutex};

use super::capability::{Capability, CapabilitySet};
use super::failure::{ErrorKind, PluginError, PluginFailure};
use super::policy::{PolicyPlugin, RecoveryConfig, RecoveryFacts, RecoveryPolicy};
use super::source::{
    Backup, BackupFormat, BackupSource, CloneRequest, PlanStep, SourcePlugin, WalArchive,
    WalLocation,
};
use super::Described;

/// A plugin error of `kind`, as a source would return it.
pub fn error(kind: ErrorKind, message: &str) -> PluginError {
    PluginError {
        kind,
        message: message.into(),
        detail: None,
        hint: None,
    }
}

/// A full plain backup of system `7000000000000000001`, PostgreSQL 16.
pub fn backup() -> Backup {
    Backup {
        id: "20260101T000000".into(),
        system_identifier: "7000000000000000001".into(),
        server_version: 160004,
        timeline: 1,
        begin_wal: "000000010000000000000004".into(),
        end_wal: "000000010000000000000004".into(),
        begin_lsn: "0/4000028".into(),
        end_lsn: "0/4000138".into(),
        size_bytes: 0,
        tablespaces: Vec::new(),
        format: BackupFormat::Plain,
        compression: None,
    }
}

/// A source whose answers are set by the test.
#[derive(Clone)]
pub struct FakeSource {
    pub name: String,
    pub builtin: bool,
    pub needs_upstream: bool,
    pub display_name: Option<String>,
    pub caps: CapabilitySet,
    /// `check`'s answer.
    pub check: Result<Backup, PluginError>,
    /// `plan-clone`'s answer.
    pub plan: Result<Vec<PlanStep>, PluginError>,
    /// `locate-wal-archive`'s answer.
    pub wal_archive: WalArchive,
    /// The requests it was asked, shared by its sessions.
    pub asked: Arc<Mutex<Vec<CloneRequest>>>,
}

impl FakeSource {
    /// A vendor's source (not built in) that declares and is granted `caps`,
    /// restoring [`backup`] with `plan`.
    pub fn new(name: &str, caps: &[&str], plan: Vec<PlanStep>) -> FakeSource {
        let caps: Vec<Capability> = caps.iter().map(|c| c.parse().unwrap()).collect();
        FakeSource {
            name: name.into(),
            builtin: false,
            needs_upstream: false,
            display_name: None,
            caps: CapabilitySet {
                declared: caps.clone(),
                granted: caps,
            },
            check: Ok(backup()),
            plan: Ok(plan),
            wal_archive: WalArchive::default(),
            asked: Arc::default(),
        }
    }

    fn returned<T>(
        &self,
        call: &'static str,
        r: &Result<T, PluginError>,
    ) -> Result<T, PluginFailure>
    where
        T: Clone,
    {
        r.clone().map_err(|error| PluginFailure::Returned {
            plugin: self.name.clone(),
            call,
            error,
        })
    }
}

impl Described for FakeSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn capabilities(&self) -> &CapabilitySet {
        &self.caps
    }
    fn is_builtin(&self) -> bool {
        self.builtin
    }
    fn needs_upstream(&self) -> bool {
        self.needs_upstream
    }
    fn display_name(&self) -> Option<String> {
        self.display_name.clone()
    }
}

impl BackupSource for FakeSource {
    fn check(&mut self, req: &CloneRequest) -> Result<Backup, PluginFailure> {
        self.asked.lock().unwrap().push(req.clone());
        self.returned("check", &self.check)
    }

    fn plan_clone(
        &mut self,
        req: &CloneRequest,
        _backup: &Backup,
    ) -> Result<Vec<PlanStep>, PluginFailure> {
        self.asked.lock().unwrap().push(req.clone());
        self.returned("plan-clone", &self.plan)
    }

    fn wal_archive(&mut self) -> Result<WalArchive, PluginFailure> {
        Ok(self.wal_archive.clone())
    }

    fn wal_location(&mut self, _name: &str) -> Result<WalLocation, PluginFailure> {
        Ok(WalLocation::Unavailable)
    }
}

impl SourcePlugin for FakeSource {
    fn open(&self) -> Result<Box<dyn BackupSource>, PluginFailure> {
        Ok(Box::new(self.clone()))
    }
}

/// A policy that sets one setting, or fails.
#[derive(Clone)]
pub struct FakePolicy {
    pub name: String,
    pub builtin: bool,
    pub caps: CapabilitySet,
    /// The setting it adds to what the policies before it decided.
    pub sets: Result<(String, String), PluginError>,
}

impl FakePolicy {
    /// A site's policy (not built in) that sets `name = value`.
    pub fn setting(policy: &str, name: &str, value: &str) -> FakePolicy {
        FakePolicy {
            name: policy.into(),
            builtin: false,
            caps: CapabilitySet::default(),
            sets: Ok((name.into(), value.into())),
        }
    }
}

impl Described for FakePolicy {
    fn name(&self) -> &str {
        &self.name
    }
    fn capabilities(&self) -> &CapabilitySet {
        &self.caps
    }
    fn is_builtin(&self) -> bool {
        self.builtin
    }
    fn needs_upstream(&self) -> bool {
        false
    }
}

impl RecoveryPolicy for FakePolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn recovery_settings(
        &mut self,
        _facts: &RecoveryFacts,
        previous: &RecoveryConfig,
    ) -> Result<RecoveryConfig, PluginFailure> {
        let (name, value) = self.sets.clone().map_err(|error| PluginFailure::Returned {
            plugin: self.name.clone(),
            call: "recovery-settings",
            error,
        })?;
        let mut config = previous.clone();
        config.settings.push(super::policy::Setting { name, value });
        Ok(config)
    }
}

impl PolicyPlugin for FakePolicy {
    fn open(&self) -> Result<Box<dyn RecoveryPolicy>, PluginFailure> {
        Ok(Box::new(self.clone()))
    }
}
