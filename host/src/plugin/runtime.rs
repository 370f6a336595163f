//! The WebAssembly engine: one per process, with epoch interruption for
//! deadlines, one linker that serves both worlds of every contract version
//! (`versions`), and the compiled-component cache.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::cache::ComponentCache;
use super::state::PluginState;
use super::versions;

/// How often the epoch advances; the granularity of plugin deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The engine, the linker and the cache.
pub struct Runtime {
    pub engine: Engine,
    pub linker: Linker<PluginState>,
    cache: Option<ComponentCache>,
    /// Components compiled (not found in the cache) by this runtime.
    compiled: AtomicUsize,
}

impl Runtime {
    /// Creates the engine; `cache_dir` enables the compiled-component cache.
    pub fn new(cache_dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(1 << 20);
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("could not create the WebAssembly engine")?;

        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("pgclone-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                    match ticker.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => break,
                    }
                }
            })
            .context("could not start the plugin deadline timer")?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        versions::add_to_linker(&mut linker)?;

        let cache = cache_dir.and_then(|d| ComponentCache::open(d, &engine));
        Ok(Runtime {
            engine,
            linker,
            cache,
            compiled: AtomicUsize::new(0),
        })
    }

    /// The compiled component with content `bytes` (whose sha256 is given):
    /// from the cache when there, otherwise compiled and cached.
    pub fn component(&self, bytes: &[u8], sha256: &str) -> anyhow::Result<Component> {
        if let Some(c) = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&self.engine, sha256))
        {
            return Ok(c);
        }
        let component = Component::new(&self.engine, bytes)?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        if let Some(cache) = &self.cache {
            cache.put(sha256, &component);
        }
        Ok(component)
    }

    /// How many components this runtime had to compile (0 on a warm start).
    pub fn compiled_count(&self) -> usize {
        self.compiled.load(Ordering::Relaxed)
    }
}
