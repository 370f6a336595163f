//! A loaded plugin: verified, compiled, described; and sessions that call it
//! under its deadline and memory limit.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Store, UpdateDeadline};

use super::bindings::policy::RecoveryPolicy;
use super::bindings::policy_api::{RecoveryConfig, RecoveryFacts};
use super::bindings::source::BackupSource;
use super::bindings::types::{
    BackupDescription, CloneRequest, PlanStep, PluginError, PluginInfo, WalLocation,
};
use super::capability::{Capability, CapabilitySet};
use super::catalog::{sha256_hex, Candidate, Origin};
use super::contract::{self, Contract, PluginKind};
use super::error::{DeadlineExceeded, PluginFailure};
use super::host_env::HostEnv;
use super::runtime::Runtime;
use super::state::PluginState;

/// Runs a guest call on a thread of its own when the caller is inside a tokio
/// runtime (`standby clone` is): WASI's synchronous host functions (a guest
/// writing its panic message to stderr, say) drive futures with a runtime of
/// their own, which tokio refuses to start inside another. Elsewhere the
/// call runs in place.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A plugin that passed every load-time check.
pub struct Plugin {
    pub name: String,
    pub origin: Origin,
    pub sha256: String,
    pub contract: Contract,
    pub info: PluginInfo,
    pub caps: CapabilitySet,
    /// What the component's `pgclone-plugin` section says, when it has one.
    pub manifest: Option<super::manifest::Manifest>,
    timeout: Duration,
    memory_bytes: usize,
    component: Component,
}

fn refused(plugin: &str, reason: impl Into<String>) -> PluginFailure {
    PluginFailure::Refused {
        plugin: plugin.to_string(),
        reason: reason.into(),
        detail: None,
        hint: None,
    }
}

/// True for a name of lower-case letters, digits and `-`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Converts a declared capability, refusing ones that could not be granted
/// safely (paths, option-like or empty names).
fn host_capability(c: &super::bindings::types::Capability) -> Result<Capability, String> {
    use super::bindings::types::Capability as W;
    let text = match c {
        W::RemoteRun(r) => format!("remote-run:{}:{}", r.target, r.program),
        W::LocalRun(p) => format!("local-run:{p}"),
        W::ReadConfig(k) => format!("read-config:{k}"),
    };
    text.parse::<Capability>().map_err(|e| e.to_string())
}

impl Plugin {
    /// Verifies the pin, compiles (or loads from the cache), checks the contract
    /// version, and calls `describe`. A candidate with an empty name takes the
    /// name the plugin gives itself (for `plugin check`).
    pub fn load(rt: &Runtime, cand: &Candidate) -> Result<Plugin, PluginFailure> {
        let name = cand.name.as_str();
        let bytes = cand.bytes().map_err(|e| PluginFailure::Refused {
            plugin: name.into(),
            reason: format!("cannot read {}", cand.origin),
            detail: Some(e.to_string()),
            hint: None,
        })?;
        let sha256 = sha256_hex(&bytes);
        if !cand.is_embedded() {
            match &cand.pinned {
                None => {
                    return Err(PluginFailure::Refused {
                        plugin: name.into(),
                        reason: format!("{} is not pinned", cand.origin),
                        detail: Some(format!("its sha256 is {sha256}")),
                        hint: Some(format!(
                            "after reviewing the plugin, pin it in plugins.toml: [plugin.{name}] sha256 = \"{sha256}\""
                        )),
                    })
                }
                Some(pin) if *pin != sha256 => {
                    return Err(PluginFailure::Refused {
                        plugin: name.into(),
                        reason: format!("{} changed since it was pinned", cand.origin),
                        detail: Some(format!("pinned sha256 {pin}, file has {sha256}")),
                        hint: Some(
                            "restore the pinned file, or review the new one and update sha256 in plugins.toml"
                                .into(),
                        ),
                    })
                }
                Some(_) => {}
            }
        }
        let component = rt
            .component(&bytes, &sha256)
            .map_err(|e| PluginFailure::Refused {
                plugin: name.into(),
                reason: format!("{} is not a valid WebAssembly component", cand.origin),
                detail: Some(format!("{e:#}")),
                hint: Some("build plugins for the wasm32-wasip2 target".into()),
            })?;
        let manifest = super::manifest::read(&bytes).map_err(|problem| PluginFailure::Refused {
            plugin: name.into(),
            reason: format!("{} has an invalid manifest", cand.origin),
            detail: Some(problem),
            hint: Some("rebuild the plugin with the pgclone plugin SDK's manifest!".into()),
        })?;
        let contract = contract::inspect(&rt.engine, &component).map_err(|e| {
            let hint = match &e {
                contract::ContractError::Unsupported(_) => Some(
                    "use a version of the plugin built for this pgclone's contract, or upgrade pgclone"
                        .into(),
                ),
                _ => None,
            };
            PluginFailure::Refused {
                plugin: name.into(),
                reason: e.to_string(),
                detail: Some(format!("component: {}", cand.origin)),
                hint,
            }
        })?;
        let mut plugin = Plugin {
            name: name.into(),
            origin: cand.origin.clone(),
            sha256,
            contract,
            info: PluginInfo {
                name: name.into(),
                version: String::new(),
                vendor: String::new(),
                license: String::new(),
                description: String::new(),
                provides: super::bindings::types::Provides::empty(),
                needs_upstream: false,
                capabilities: Vec::new(),
            },
            caps: CapabilitySet::default(),
            manifest,
            timeout: Duration::from_millis(cand.timeout_ms),
            memory_bytes: (cand.memory_mib as usize) << 20,
            component,
        };
        // describe() runs with no capabilities at all.
        let info = plugin
            .session(rt, Arc::new(HostEnv::default()))?
            .describe()?;
        if !valid_name(&info.name) {
            return Err(PluginFailure::Malformed {
                plugin: name.into(),
                call: "describe",
                problem: format!(
                    "\"{}\" is not a valid plugin name",
                    info.name.escape_debug()
                ),
            });
        }
        if !name.is_empty() && info.name != name {
            return Err(refused(
                name,
                format!(
                    "{} describes itself as \"{}\", not \"{name}\"",
                    cand.origin, info.name
                ),
            ));
        }
        let declared = info
            .capabilities
            .iter()
            .map(host_capability)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|problem| PluginFailure::Malformed {
                plugin: name.into(),
                call: "describe",
                problem,
            })?;
        if let Some(m) = &plugin.manifest {
            let diff = m.differences(&info, &declared);
            if !diff.is_empty() {
                return Err(PluginFailure::Refused {
                    plugin: name.into(),
                    reason: format!(
                        "{}: describe() does not match the plugin's manifest",
                        cand.origin
                    ),
                    detail: Some(diff.join("\n")),
                    hint: Some(
                        "a plugin must describe itself as its manifest says; report this to its vendor".into(),
                    ),
                });
            }
        }
        let granted = match &cand.grants {
            Some(g) => g.clone(),
            None if cand.is_embedded() => declared.clone(),
            None => Vec::new(),
        };
        plugin.caps = CapabilitySet { declared, granted };
        plugin.name = info.name.clone();
        plugin.info = info;
        Ok(plugin)
    }

    /// True for a plugin shipped inside the binary.
    pub fn origin_is_builtin(&self) -> bool {
        self.origin == Origin::Embedded
    }

    /// Refuses the plugin when it requests a capability the operator has not
    /// granted: checked before any real work, not halfway through it.
    pub fn ensure_granted(&self) -> Result<(), PluginFailure> {
        let missing = self.caps.ungranted();
        if missing.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
        Err(PluginFailure::Refused {
            plugin: self.name.clone(),
            reason: format!(
                "it requests capabilities that are not granted: {}",
                list.join(", ")
            ),
            detail: Some(format!("plugin source: {}", self.origin)),
            hint: Some(format!(
                "if you trust the plugin, grant them in plugins.toml: [plugin.{}] grants = [{}]",
                self.name,
                list.iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        })
    }

    /// A fresh instance in a fresh store, with this plugin's limits.
    pub fn session(&self, rt: &Runtime, env: Arc<HostEnv>) -> Result<Session, PluginFailure> {
        let state = PluginState::new(
            self.name.clone(),
            self.caps.clone(),
            env,
            self.memory_bytes,
            self.timeout,
        );
        let mut store = Store::new(&rt.engine, state);
        store.limiter(|s| &mut s.memory);
        store.epoch_deadline_callback(|ctx| {
            let s = ctx.data();
            if s.guest_elapsed() > s.timeout {
                Err(DeadlineExceeded.into())
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        store.set_epoch_deadline(1);
        store.data_mut().begin_call();
        let instance = match self.contract.kind {
            PluginKind::Source => {
                off_runtime(|| BackupSource::instantiate(&mut store, &self.component, &rt.linker))
                    .map(Instance::Source)
            }
            PluginKind::Policy => {
                off_runtime(|| RecoveryPolicy::instantiate(&mut store, &self.component, &rt.linker))
                    .map(Instance::Policy)
            }
        };
        let mut session = Session {
            plugin: self.name.clone(),
            store,
            instance: None,
        };
        let instance = session.outcome("instantiate", instance)?;
        session.instance = Some(instance);
        Ok(session)
    }
}

enum Instance {
    Source(BackupSource),
    Policy(RecoveryPolicy),
}

/// One instance of a plugin. After any failure the instance is not used again.
pub struct Session {
    plugin: String,
    store: Store<PluginState>,
    instance: Option<Instance>,
}

impl Session {
    /// Turns the result of a call into the error the operator should see.
    fn outcome<T>(
        &mut self,
        call: &'static str,
        result: wasmtime::Result<T>,
    ) -> Result<T, PluginFailure> {
        let plugin = self.plugin.clone();
        let state = self.store.data();
        if let Some(v) = &state.violation {
            self.instance = None;
            return Err(PluginFailure::Denied {
                plugin,
                call,
                function: v.function,
                capability: v.capability.clone(),
                refusal: v.refusal,
            });
        }
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                self.instance = None;
                Err(if e.is::<DeadlineExceeded>() {
                    PluginFailure::Timeout {
                        plugin,
                        call,
                        limit_ms: state.timeout.as_millis(),
                    }
                } else if state.memory.hit {
                    PluginFailure::Memory {
                        plugin,
                        call,
                        limit_mib: state.memory.max_bytes >> 20,
                    }
                } else {
                    PluginFailure::Trap {
                        plugin,
                        call,
                        trap: format!("{e:#}"),
                    }
                })
            }
        }
    }

    fn returned<T>(
        &mut self,
        call: &'static str,
        r: Result<Result<T, PluginError>, PluginFailure>,
    ) -> Result<T, PluginFailure> {
        r?.map_err(|error| PluginFailure::Returned {
            plugin: self.plugin.clone(),
            call,
            error,
        })
    }

    fn gone(&self, call: &'static str) -> PluginFailure {
        PluginFailure::Trap {
            plugin: self.plugin.clone(),
            call,
            trap: "the plugin instance failed earlier and cannot be called again".into(),
        }
    }

    fn begin(&mut self) {
        self.store.data_mut().begin_call();
        self.store.set_epoch_deadline(1);
    }

    /// `describe`, for either kind of plugin.
    pub fn describe(&mut self) -> Result<PluginInfo, PluginFailure> {
        self.begin();
        let r = match &self.instance {
            Some(Instance::Source(s)) => {
                let f = s.pgclone_plugin_source().clone();
                off_runtime(|| f.call_describe(&mut self.store))
            }
            Some(Instance::Policy(p)) => {
                let f = p.pgclone_plugin_policy().clone();
                off_runtime(|| f.call_describe(&mut self.store))
            }
            None => return Err(self.gone("describe")),
        };
        self.outcome("describe", r)
    }

    fn source(&self, call: &'static str) -> Result<&BackupSource, PluginFailure> {
        match &self.instance {
            Some(Instance::Source(s)) => Ok(s),
            Some(Instance::Policy(_)) => Err(PluginFailure::Refused {
                plugin: self.plugin.clone(),
                reason: format!("it is a recovery policy, not a backup source ({call})"),
                detail: None,
                hint: None,
            }),
            None => Err(self.gone(call)),
        }
    }

    /// `source.check`.
    pub fn check(&mut self, req: &CloneRequest) -> Result<BackupDescription, PluginFailure> {
        self.begin();
        let s = self.source("check")?.pgclone_plugin_source().clone();
        let r = off_runtime(|| s.call_check(&mut self.store, req));
        let r = self.outcome("check", r);
        self.returned("check", r)
    }

    /// `source.plan-clone`.
    pub fn plan_clone(
        &mut self,
        req: &CloneRequest,
        backup: &BackupDescription,
    ) -> Result<Vec<PlanStep>, PluginFailure> {
        self.begin();
        let s = self.source("plan-clone")?.pgclone_plugin_source().clone();
        let r = off_runtime(|| s.call_plan_clone(&mut self.store, req, backup));
        let r = self.outcome("plan-clone", r);
        self.returned("plan-clone", r)
    }

    /// `source.locate-wal`.
    pub fn wal_location(&mut self, name: &str) -> Result<WalLocation, PluginFailure> {
        self.begin();
        let s = self.source("locate-wal")?.pgclone_plugin_source().clone();
        let r = off_runtime(|| s.call_locate_wal(&mut self.store, name));
        let r = self.outcome("locate-wal", r);
        self.returned("locate-wal", r)
    }

    /// `policy.recovery-settings`.
    pub fn recovery_settings(
        &mut self,
        facts: &RecoveryFacts,
        previous: &RecoveryConfig,
    ) -> Result<RecoveryConfig, PluginFailure> {
        self.begin();
        let p = match &self.instance {
            Some(Instance::Policy(p)) => p.pgclone_plugin_policy().clone(),
            Some(Instance::Source(_)) => {
                return Err(refused(
                    &self.plugin,
                    "it is a backup source, not a recovery policy (recovery-settings)",
                ))
            }
            None => return Err(self.gone("recovery-settings")),
        };
        let r = off_runtime(|| p.call_recovery_settings(&mut self.store, facts, previous));
        let r = self.outcome("recovery-settings", r);
        self.returned("recovery-settings", r)
    }
}
