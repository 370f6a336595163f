//! What a plugin's store holds: its sandbox (an empty WASI context), its limits,
//! its capabilities, and the bookkeeping that turns misbehaviour into errors.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::contract::capability::{Capability, CapabilitySet, Refusal};
use crate::environment::HostEnv;

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

/// The clock of the current call, shared with the thread that waits for the
/// call: the plugin's own time (its code, and its waits in WASI calls such as
/// a sleep) counts against its deadline; time in the programs it runs is
/// counted apart, against `plugin_program_timeout`.
#[derive(Debug)]
pub struct CallClock(Mutex<ClockState>);

#[derive(Debug, Clone, Copy)]
struct ClockState {
    started: Instant,
    in_programs: Duration,
    program_since: Option<Instant>,
}

impl Default for CallClock {
    fn default() -> Self {
        CallClock(Mutex::new(ClockState {
            started: Instant::now(),
            in_programs: Duration::ZERO,
            program_since: None,
        }))
    }
}

impl CallClock {
    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new call starts now.
    pub fn begin(&self) {
        *self.state() = ClockState {
            started: Instant::now(),
            in_programs: Duration::ZERO,
            program_since: None,
        };
    }

    /// Wall time since the call started.
    pub fn wall(&self) -> Duration {
        self.state().started.elapsed()
    }

    /// Time the programs of this call ran, the running one included.
    pub fn in_programs(&self) -> Duration {
        let s = *self.state();
        s.in_programs + s.program_since.map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// The plugin's own time: wall time less the time in programs.
    pub fn own(&self) -> Duration {
        self.wall().saturating_sub(self.in_programs())
    }

    pub fn program_started(&self) {
        self.state().program_since = Some(Instant::now());
    }

    pub fn program_ended(&self) {
        let mut s = self.state();
        if let Some(t) = s.program_since.take() {
            s.in_programs += t.elapsed();
        }
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
    /// The plugin's own time allowed per call (its code and its WASI waits).
    pub timeout: Duration,
    /// The current call's clock.
    pub clock: Arc<CallClock>,
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
            clock: Arc::new(CallClock::default()),
            // No preopened directories, no environment, no arguments, no
            // network: WASI is there only because Rust's std links against it.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        }
    }

    /// Resets the per-call bookkeeping before a call into the guest.
    pub fn begin_call(&mut self) {
        self.violation = None;
        self.clock.begin();
    }

    /// The plugin's own time used by the current call so far.
    pub fn guest_elapsed(&self) -> Duration {
        self.clock.own()
    }

    /// What programs may still use of this call's `plugin_program_timeout`.
    pub fn program_time_left(&self) -> Duration {
        self.program_budget()
            .saturating_sub(self.clock.in_programs())
    }

    /// The time all programs of one call may take together.
    pub fn program_budget(&self) -> Duration {
        self.env
            .program_timeout
            .unwrap_or(crate::environment::DEFAULT_PROGRAM_TIMEOUT)
    }

    /// Checks `cap` against both locks, recording a refusal.
    /// Like [`PluginState::require`], for reading `key` of `store` (covered
    /// by a declared and a granted `store-read`).
    pub fn require_key(
        &mut self,
        function: &'static str,
        store: &str,
        key: &str,
    ) -> Result<(), Refusal> {
        match self.caps.check_key(store, key) {
            Ok(()) => Ok(()),
            Err(refusal) => {
                if self.violation.is_none() {
                    self.violation = Some(Violation {
                        function,
                        capability: Capability::StoreRead {
                            store: store.to_string(),
                            prefix: key.escape_debug().to_string(),
                        },
                        refusal,
                    });
                }
                Err(refusal)
            }
        }
    }

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
