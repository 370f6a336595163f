//! What a plugin's store holds: its sandbox (an empty WASI context), its limits,
//! its capabilities, and the bookkeeping that turns misbehaviour into errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::capability::{Capability, CapabilitySet, Refusal};
use super::host_env::HostEnv;

/// A capability refused during a call. The call fails with it even when the
/// plugin ignores the error it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub function: &'static str,
    pub capability: Capability,
    pub refusal: Refusal,
}

/// Caps linear memory; remembers when a plugin hit the cap so that the trap
/// that follows is reported as what it is.
#[derive(Debug)]
pub struct MemoryCap {
    pub max_bytes: usize,
    pub hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The data of one plugin's store.
pub struct PluginState {
    /// The plugin's name, for messages.
    pub plugin: String,
    pub caps: CapabilitySet,
    pub env: Arc<HostEnv>,
    pub memory: MemoryCap,
    /// The first refused capability of the current call.
    pub violation: Option<Violation>,
    /// Guest time allowed per call.
    pub timeout: Duration,
    /// When the current call started, and how much of it was spent in host calls
    /// (ssh, programs): that time does not count against the plugin.
    pub call_started: Instant,
    pub host_time: Duration,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl PluginState {
    pub fn new(
        plugin: String,
        caps: CapabilitySet,
        env: Arc<HostEnv>,
        memory_bytes: usize,
        timeout: Duration,
    ) -> Self {
        PluginState {
            plugin,
            caps,
            env,
            memory: MemoryCap {
                max_bytes: memory_bytes,
                hit: false,
            },
            violation: None,
            timeout,
            call_started: Instant::now(),
            host_time: Duration::ZERO,
            // No preopened directories, no environment, no arguments, no
            // network: WASI is there only because Rust's std links against it.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        }
    }

    /// Resets the per-call bookkeeping before a call into the guest.
    pub fn begin_call(&mut self) {
        self.violation = None;
        self.call_started = Instant::now();
        self.host_time = Duration::ZERO;
    }

    /// Guest time used by the current call so far.
    pub fn guest_elapsed(&self) -> Duration {
        self.call_started.elapsed().saturating_sub(self.host_time)
    }

    /// Checks `cap` against both locks, recording a refusal.
    pub fn require(&mut self, function: &'static str, cap: Capability) -> Result<(), Refusal> {
        match self.caps.check(&cap) {
            Ok(()) => Ok(()),
            Err(refusal) => {
                if self.violation.is_none() {
                    self.violation = Some(Violation {
                        function,
                        capability: cap,
                        refusal,
                    });
                }
                Err(refusal)
            }
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
