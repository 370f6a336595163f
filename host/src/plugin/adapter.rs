//! The host's own traits over a plugin session: a source session is a
//! [`BackupSource`], a policy session a [`RecoveryPolicy`]. Each call is made
//! to whichever contract version the plugin was built against; the host's
//! types go in and come out through `convert.rs` (and `compat.rs` for 1.0.0).
//! A [`Bound`] plugin (with the runtime and environment its sessions need)
//! is a [`SourcePlugin`] or a [`PolicyPlugin`], as the clone takes them.

use std::borrow::Borrow;
use std::sync::Arc;

use super::bindings as wb;
use super::bindings::{policy_api as wp, types as wt};
use super::compat::Conv;
use super::convert::ToWit;
use super::loaded::{Instance, Plugin, Session};
use super::runtime::Runtime;
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
    /// `source.check`.
    fn check(&mut self, req: &hs::CloneRequest) -> Result<hs::Backup, PluginFailure> {
        let req: wt::CloneRequest = req.to_wit();
        let r = match self.source("check")? {
            Source::Current(s) => self.call("check", move |store| s.call_check(store, &req)),
            Source::V1_1(s) => self.call("check", move |store| s.call_check(store, &req)),
            Source::V1_0(s) => self.call("check", move |store| {
                s.call_check(store, &req.conv()).map(Conv::conv)
            }),
        };
        self.returned("check", r).map(Into::into)
    }

    /// `source.plan-clone`.
    fn plan_clone(
        &mut self,
        req: &hs::CloneRequest,
        backup: &hs::Backup,
    ) -> Result<Vec<hs::PlanStep>, PluginFailure> {
        let (req, backup): (wt::CloneRequest, wt::BackupDescription) =
            (req.to_wit(), backup.to_wit());
        let r = match self.source("plan-clone")? {
            Source::Current(s) => self.call("plan-clone", move |store| {
                s.call_plan_clone(store, &req, &backup)
            }),
            Source::V1_1(s) => self.call("plan-clone", move |store| {
                s.call_plan_clone(store, &req, &backup)
            }),
            Source::V1_0(s) => self.call("plan-clone", move |store| {
                s.call_plan_clone(store, &req.conv(), &backup.conv())
                    .map(Conv::conv)
            }),
        };
        let plan = self.returned("plan-clone", r)?;
        Ok(plan.into_iter().map(Into::into).collect())
    }

    /// `source.locate-wal`.
    fn wal_location(&mut self, name: &str) -> Result<hs::WalLocation, PluginFailure> {
        let name = name.to_string();
        let r = match self.source("locate-wal")? {
            Source::Current(s) => {
                self.call("locate-wal", move |store| s.call_locate_wal(store, &name))
            }
            Source::V1_1(s) => {
                self.call("locate-wal", move |store| s.call_locate_wal(store, &name))
            }
            Source::V1_0(s) => self.call("locate-wal", move |store| {
                s.call_locate_wal(store, &name).map(Conv::conv)
            }),
        };
        self.returned("locate-wal", r).map(Into::into)
    }

    /// `source.locate-wal-archive`; a plugin of a contract before 1.2.0 has none and
    /// is asked per file (`locate-wal`), as an empty answer says.
    fn wal_archive(&mut self) -> Result<hs::WalArchive, PluginFailure> {
        let r = match self.source("locate-wal-archive")? {
            Source::Current(s) => self.call("locate-wal-archive", move |store| {
                s.call_locate_wal_archive(store)
            }),
            Source::V1_1(_) | Source::V1_0(_) => Ok(Ok(wt::WalArchive {
                directory: None,
                fetch: None,
            })),
        };
        self.returned("locate-wal-archive", r).map(Into::into)
    }
}

impl RecoveryPolicy for Session {
    fn name(&self) -> &str {
        &self.plugin
    }

    /// `policy.recovery-settings`.
    fn recovery_settings(
        &mut self,
        facts: &hp::RecoveryFacts,
        previous: &hp::RecoveryConfig,
    ) -> Result<hp::RecoveryConfig, PluginFailure> {
        let (facts, previous): (wp::RecoveryFacts, wp::RecoveryConfig) =
            (facts.to_wit(), previous.to_wit());
        let r = match &self.instance {
            Some(Instance::Policy(p)) => {
                let p = p.pgclone_plugin_policy().clone();
                self.call("recovery-settings", move |store| {
                    p.call_recovery_settings(store, &facts, &previous)
                })
            }
            Some(Instance::PolicyV1_0(p)) => {
                let p = p.pgclone_plugin_policy().clone();
                self.call("recovery-settings", move |store| {
                    p.call_recovery_settings(store, &facts.conv(), &previous.conv())
                        .map(Conv::conv)
                })
            }
            Some(Instance::PolicyV1_1(p)) => {
                let p = p.pgclone_plugin_policy().clone();
                self.call("recovery-settings", move |store| {
                    p.call_recovery_settings(store, &facts.conv(), &previous.conv())
                        .map(Conv::conv)
                })
            }
            Some(Instance::Source(_) | Instance::SourceV1_0(_) | Instance::SourceV1_1(_)) => {
                return Err(PluginFailure::Refused {
                    plugin: self.plugin.clone(),
                    reason: "it is a backup source, not a recovery policy (recovery-settings)"
                        .into(),
                    detail: None,
                    hint: None,
                })
            }
            None => return Err(self.gone("recovery-settings")),
        };
        self.returned("recovery-settings", r).map(Into::into)
    }
}

impl Session {
    fn source(&self, call: &'static str) -> Result<Source, PluginFailure> {
        match &self.instance {
            Some(Instance::Source(s)) => Ok(Source::Current(s.pgclone_plugin_source().clone())),
            Some(Instance::SourceV1_0(s)) => Ok(Source::V1_0(s.pgclone_plugin_source().clone())),
            Some(Instance::SourceV1_1(s)) => Ok(Source::V1_1(s.pgclone_plugin_source().clone())),
            Some(Instance::Policy(_) | Instance::PolicyV1_0(_) | Instance::PolicyV1_1(_)) => {
                Err(PluginFailure::Refused {
                    plugin: self.plugin.clone(),
                    reason: format!("it is a recovery policy, not a backup source ({call})"),
                    detail: None,
                    hint: None,
                })
            }
            None => Err(self.gone(call)),
        }
    }
}

/// The source interface of any supported contract version.
enum Source {
    Current(wb::source_api::Guest),
    V1_1(wb::v1_1::source_api::Guest),
    V1_0(wb::v1_0::source_api::Guest),
}
