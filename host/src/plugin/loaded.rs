//! A loaded plugin: verified, compiled, described; and sessions that call it
//! under its deadline and memory limit.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Store, UpdateDeadline};

use super::catalog::{sha256_hex, Candidate, Origin};
use super::error::DeadlineExceeded;
use super::runtime::Runtime;
use super::state::PluginState;
use super::version::{self, Contract};
use super::versions::current::types::{self as wt, PluginError, PluginInfo};
use super::versions::{self, Instance};
use crate::contract::capability::{Capability, CapabilitySet};
use crate::contract::PluginFailure;
use crate::environment::HostEnv;

/// How long past its deadline a call blocked outside its own code (in a WASI
/// wait) is given before it is abandoned; code that runs is stopped by the
/// epoch check within a tick.
const BLOCKED_GRACE: Duration = Duration::from_millis(100);

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

/// Converts a declared capability, refusing ones that could not be granted
/// safely (paths, option-like or empty names).
fn host_capability(c: &wt::Capability) -> Result<Capability, String> {
    use wt::Capability as W;
    let text = match c {
        W::RemoteRun(r) => format!("remote-run:{}:{}", r.target, r.program),
        W::LocalRun(p) => format!("local-run:{p}"),
        W::ReadConfig(k) => format!("read-config:{k}"),
        W::StoreRead(g) if g.prefix.is_empty() => format!("store-read:{}", g.store),
        W::StoreRead(g) => format!("store-read:{}:{}", g.store, g.prefix),
    };
    text.parse::<Capability>().map_err(|e| e.to_string())
}

impl Plugin {
    /// Verifies the pin, compiles (or loads from the cache), checks the contract
    /// version, and calls `describe`. A candidate with an empty name takes the
    /// name the plugin gives itself (for `plugin check`).
    pub fn load(rt: &Runtime, cand: &Candidate) -> Result<Plugin, PluginFailure> {
        let name = cand.name.as_str();
        // Until describe() names a file given by path, failures name its file.
        let label = match (&cand.origin, name) {
            (Origin::File(path), "") => path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            _ => name.to_string(),
        };
        let name = label.as_str();
        if let (Origin::File(path), true) = (&cand.origin, cand.configured) {
            // A component another user could replace is not run, pinned or not.
            crate::trust::require(path, "plugin file").map_err(|f| PluginFailure::Refused {
                plugin: name.into(),
                reason: f.message,
                detail: f.detail,
                hint: f.hint,
            })?;
        }
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
                        hint: Some(format!(
                            "restore the pinned file, or review the new one and pin it with `{}` (`{}` shows the command)",
                            crate::invocation::command("plugin install FILE"),
                            crate::invocation::command("plugin verify")
                        )),
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
        let contract = version::inspect(&rt.engine, &component).map_err(|e| {
            let hint = match &e {
                version::ContractError::Unsupported(_) => Some(
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
                provides: wt::Provides::empty(),
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
        if !super::manifest::valid_name(&info.name) {
            return Err(PluginFailure::Malformed {
                plugin: name.into(),
                call: "describe",
                problem: format!(
                    "\"{}\" is not a valid plugin name",
                    info.name.escape_debug()
                ),
            });
        }
        if !cand.name.is_empty() && info.name != cand.name {
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
            let diff = super::manifest::differences(m, &info, &declared);
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

    /// True when it serves base backups (a source plugin).
    pub fn provides_base_backups(&self) -> bool {
        self.info.provides.contains(wt::Provides::BASE_BACKUP)
    }

    /// What it provides, as the manifest says it: `base-backup,wal`, `-`.
    pub fn provides_text(&self) -> String {
        let parts = self.provides();
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(",")
        }
    }

    /// What a source provides (`base-backup`, `wal`); empty for a policy.
    pub fn provides(&self) -> Vec<&'static str> {
        use wt::Provides;
        let p = self.info.provides;
        let mut parts = Vec::new();
        if p.contains(Provides::BASE_BACKUP) {
            parts.push("base-backup");
        }
        if p.contains(Provides::WAL) {
            parts.push("wal");
        }
        parts
    }

    /// True when its backups are of the live upstream (pg_basebackup), false
    /// when it restores a backup taken earlier: then the upstream may be down.
    pub fn needs_upstream(&self) -> bool {
        self.info.needs_upstream
    }

    /// True when it serves WAL files.
    pub fn provides_wal(&self) -> bool {
        self.info.provides.contains(wt::Provides::WAL)
    }

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
        let mut session = Session {
            plugin: self.name.clone(),
            store: Some(store),
            instance: None,
        };
        let pre = rt
            .linker
            .instantiate_pre(&self.component)
            .map_err(|e| PluginFailure::Trap {
                plugin: self.name.clone(),
                call: "instantiate",
                trap: format!("{e:#}"),
            })?;
        // Bound as the contract version it was built against (`versions`).
        let contract = self.contract;
        let instance = session.call("instantiate", move |store| {
            versions::instantiate(store, pre, contract)
        })?;
        session.instance = Some(instance);
        Ok(session)
    }
}

/// One instance of a plugin. After any failure the instance is not used again.
pub struct Session {
    pub(super) plugin: String,
    /// `None` once a call was abandoned at its deadline (its thread keeps it).
    store: Option<Store<PluginState>>,
    pub(super) instance: Option<Instance>,
}

impl Session {
    /// Turns the result of a call into the error the operator should see.
    fn outcome<T>(
        &mut self,
        call: &'static str,
        result: wasmtime::Result<T>,
    ) -> Result<T, PluginFailure> {
        let plugin = self.plugin.clone();
        let Some(store) = &self.store else {
            return Err(self.gone(call));
        };
        let state = store.data();
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

    pub(super) fn returned<T>(
        &mut self,
        call: &'static str,
        r: Result<Result<T, PluginError>, PluginFailure>,
    ) -> Result<T, PluginFailure> {
        r?.map_err(|error| PluginFailure::Returned {
            plugin: self.plugin.clone(),
            call,
            error: error.into(),
        })
    }

    pub(super) fn gone(&self, call: &'static str) -> PluginFailure {
        PluginFailure::Trap {
            plugin: self.plugin.clone(),
            call,
            trap: "the plugin instance failed earlier and cannot be called again".into(),
        }
    }

    /// Runs `f` (a call into the guest) on a thread of its own and waits for
    /// it no longer than the plugin's deadline allows. Code that runs is
    /// stopped by the epoch check; a call blocked outside its code (a sleep in
    /// WASI) is abandoned with its store, so the wait is bounded by the
    /// deadline whatever the plugin does. Programs it runs are killed at what
    /// is left of `plugin_program_timeout`, so a call returns within
    /// `timeout_ms` + `plugin_program_timeout`. A thread of its own also keeps
    /// WASI's synchronous functions (which drive futures on a runtime of their
    /// own) out of the caller's tokio runtime.
    pub(super) fn call<R: Send + 'static>(
        &mut self,
        call: &'static str,
        f: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<R> + Send + 'static,
    ) -> Result<R, PluginFailure> {
        let Some(mut store) = self.store.take() else {
            return Err(self.gone(call));
        };
        store.data_mut().begin_call();
        store.set_epoch_deadline(1);
        let clock = store.data().clock.clone();
        let timeout = store.data().timeout;
        let backstop = timeout + store.data().program_budget() + BLOCKED_GRACE;
        let (done, finished) = std::sync::mpsc::channel();
        let worker = std::thread::Builder::new()
            .name(format!("pgclone-plugin-{call}"))
            .spawn(move || {
                let result = f(&mut store);
                let _ = done.send((store, result));
            });
        if let Err(e) = worker {
            self.instance = None;
            return Err(PluginFailure::Trap {
                plugin: self.plugin.clone(),
                call,
                trap: format!("could not start a thread for the call: {e}"),
            });
        }
        loop {
            let left = (timeout + BLOCKED_GRACE).saturating_sub(clock.own());
            let wait = left.clamp(Duration::from_millis(5), Duration::from_millis(100));
            match finished.recv_timeout(wait) {
                Ok((store, result)) => {
                    // -vv: where a clone's time goes between the host and its plugins.
                    tracing::debug!(
                        "plugin \"{}\": {call}() returned after {} ms ({} ms in programs it ran)",
                        self.plugin,
                        clock.wall().as_millis(),
                        clock.in_programs().as_millis()
                    );
                    self.store = Some(store);
                    return self.outcome(call, result);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if clock.own() > timeout + BLOCKED_GRACE || clock.wall() > backstop {
                        self.instance = None;
                        return Err(PluginFailure::Timeout {
                            plugin: self.plugin.clone(),
                            call,
                            limit_ms: timeout.as_millis(),
                        });
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    self.instance = None;
                    return Err(PluginFailure::Trap {
                        plugin: self.plugin.clone(),
                        call,
                        trap: "the call failed in the host".into(),
                    });
                }
            }
        }
    }

    /// `describe`, for either kind of plugin.
    pub fn describe(&mut self) -> Result<PluginInfo, PluginFailure> {
        let Some(instance) = self.instance.clone() else {
            return Err(self.gone("describe"));
        };
        self.call("describe", move |store| instance.describe(store))
    }
}
