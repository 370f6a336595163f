//! The host's own traits over a plugin session: a source session is a
//! [`BackupSource`], a policy session a [`RecoveryPolicy`]. The host's types
//! go in and come out through the current contract's conversions
//! (`versions/current.rs`); each call is made to whichever contract version
//! the plugin was built against (`versions/`). A [`Bound`] plugin (with the
//! runtime and environment its sessions need) is a [`SourcePlugin`] or a
//! [`PolicyPlugin`], as the clone takes them.

use std::borrow::Borrow;
use std::sync::Arc;

use super::loaded::{Plugin, Session};
use super::runtime::Runtime;
use super::versions::current::ToWit;
use super::versions::{Instance, Policy, Source};
use crate::contract::policy::{self as hp, PolicyPlugin, RecoveryPolicy};
use crate::contract::source::{self as hs, BackupSource, SourcePlugin};
use crate::contract::{CapabilitySet, Described, PluginFailure};
use crate::environment::HostEnv;

impl Described for Plugin {
    fn name(&self) -> &str {
        &self.name
    }
    fn capabilities(&self) -> &CapabilitySet {
        &self.caps
    }
    fn is_builtin(&self) -> bool {
        self.origin_is_builtin()
    }
    fn needs_upstream(&self) -> bool {
        Plugin::needs_upstream(self)
    }
    fn display_name(&self) -> Option<String> {
        super::catalog::display_name(&self.name)
            .filter(|_| self.origin_is_builtin())
            .map(str::to_string)
    }
    /// The loaded plugin's own refusal (it names where the plugin came from).
    fn ensure_granted(&self) -> Result<(), PluginFailure> {
        Plugin::ensure_granted(self)
    }
}

/// A loaded plugin with what its sessions need: the runtime and the host
/// calls' environment. Owned (`Bound<Plugin, Arc<Runtime>>`) in a clone's
/// context, borrowed where a command holds both already.
pub struct Bound<P, R> {
    pub plugin: P,
    pub rt: R,
    pub env: Arc<HostEnv>,
}

impl<P: Borrow<Plugin>, R: Borrow<Runtime>> Bound<P, R> {
    fn session(&self) -> Result<Session, PluginFailure> {
        self.plugin
            .borrow()
            .session(self.rt.borrow(), self.env.clone())
    }
}

impl<P: Borrow<Plugin>, R> Described for Bound<P, R> {
    fn name(&self) -> &str {
        &self.plugin.borrow().name
    }
    fn capabilities(&self) -> &CapabilitySet {
        &self.plugin.borrow().caps
    }
    fn is_builtin(&self) -> bool {
        self.plugin.borrow().origin_is_builtin()
    }
    fn needs_upstream(&self) -> bool {
        self.plugin.borrow().needs_upstream()
    }
    fn display_name(&self) -> Option<String> {
        Described::display_name(self.plugin.borrow())
    }
    fn ensure_granted(&self) -> Result<(), PluginFailure> {
        self.plugin.borrow().ensure_granted()
    }
}

impl<P: Borrow<Plugin>, R: Borrow<Runtime>> SourcePlugin for Bound<P, R> {
    fn open(&self) -> Result<Box<dyn BackupSource>, PluginFailure> {
        Ok(Box::new(self.session()?))
    }
}

impl<P: Borrow<Plugin>, R: Borrow<Runtime>> PolicyPlugin for Bound<P, R> {
    fn open(&self) -> Result<Box<dyn RecoveryPolicy>, PluginFailure> {
        Ok(Box::new(self.session()?))
    }
}

impl BackupSource for Session {
    fn check(&mut self, req: &hs::CloneRequest) -> Result<hs::Backup, PluginFailure> {
        let (s, req) = (self.source("check")?, req.to_wit());
        let r = self.call("check", move |store| s.check(store, req));
        self.returned("check", r).map(Into::into)
    }

    fn plan_clone(
        &mut self,
        req: &hs::CloneRequest,
        backup: &hs::Backup,
    ) -> Result<Vec<hs::PlanStep>, PluginFailure> {
        let (s, req, backup) = (self.source("plan-clone")?, req.to_wit(), backup.to_wit());
        let r = self.call("plan-clone", move |store| s.plan_clone(store, req, backup));
        let plan = self.returned("plan-clone", r)?;
        Ok(plan.into_iter().map(Into::into).collect())
    }

    fn wal_location(&mut self, name: &str) -> Result<hs::WalLocation, PluginFailure> {
        let (s, name) = (self.source("locate-wal")?, name.to_string());
        let r = self.call("locate-wal", move |store| s.locate_wal(store, name));
        self.returned("locate-wal", r).map(Into::into)
    }

    fn wal_archive(&mut self) -> Result<hs::WalArchive, PluginFailure> {
        let s = self.source("locate-wal-archive")?;
        let r = self.call("locate-wal-archive", move |store| {
            s.locate_wal_archive(store)
        });
        self.returned("locate-wal-archive", r).map(Into::into)
    }
}

impl RecoveryPolicy for Session {
    fn name(&self) -> &str {
        &self.plugin
    }

    fn recovery_settings(
        &mut self,
        facts: &hp::RecoveryFacts,
        previous: &hp::RecoveryConfig,
    ) -> Result<hp::RecoveryConfig, PluginFailure> {
        let p = self.policy("recovery-settings")?;
        let (facts, previous) = (facts.to_wit(), previous.to_wit());
        let r = self.call("recovery-settings", move |store| {
            p.recovery_settings(store, facts, previous)
        });
        self.returned("recovery-settings", r).map(Into::into)
    }
}

impl Session {
    /// The source interface, refused for a policy.
    fn source(&self, call: &'static str) -> Result<Source, PluginFailure> {
        match &self.instance {
            Some(Instance::Source(s)) => Ok(s.clone()),
            Some(Instance::Policy(_)) => {
                Err(self.not_a("a recovery policy, not a backup source", call))
            }
            None => Err(self.gone(call)),
        }
    }

    /// The policy interface, refused for a source.
    fn policy(&self, call: &'static str) -> Result<Policy, PluginFailure> {
        match &self.instance {
            Some(Instance::Policy(p)) => Ok(p.clone()),
            Some(Instance::Source(_)) => {
                Err(self.not_a("a backup source, not a recovery policy", call))
            }
            None => Err(self.gone(call)),
        }
    }

    fn not_a(&self, what: &str, call: &'static str) -> PluginFailure {
        PluginFailure::Refused {
            plugin: self.plugin.clone(),
            reason: format!("it is {what} ({call})"),
            detail: None,
            hint: None,
        }
    }
}
