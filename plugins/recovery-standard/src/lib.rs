//! pgclone's standard recovery policy, as a WebAssembly component.
//!
//! The decisions live in [`policy`] (plain Rust, unit-tested natively); this file
//! only binds them to the `recovery-policy` world.

wit_bindgen::generate!({
    world: "recovery-policy",
    path: "../../wit",
});

pub mod conninfo;
pub mod policy;

use exports::pgclone::plugin::policy::{Guest, RecoveryConfig, RecoveryFacts};
use pgclone::plugin::types::{PluginError, PluginInfo, Provides};

struct StandardPolicy;

impl Guest for StandardPolicy {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "recovery-standard".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            vendor: "pgclone".into(),
            license: "Apache-2.0".into(),
            description: "Standard standby configuration: recovery.conf (PostgreSQL 9.6-11) \
                          or standby.signal and postgresql.auto.conf (12+)"
                .into(),
            provides: Provides::empty(),
            needs_upstream: false,
            capabilities: Vec::new(),
        }
    }

    fn recovery_settings(
        facts: RecoveryFacts,
        previous: RecoveryConfig,
    ) -> Result<RecoveryConfig, PluginError> {
        policy::recovery_settings(&facts, previous)
    }
}

export!(StandardPolicy);
