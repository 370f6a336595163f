//! Test component: a recovery policy built against the released contract
//! `pgclone:plugin@1.0.0` (the frozen `wit/1.0.0/`): it reads a granted key
//! through the 1.0.0 host interface, logs, and adds a setting to what the
//! policies before it produced.

wit_bindgen::generate!({
    world: "recovery-policy",
    path: "../../../wit/1.0.0",
});

use exports::pgclone::plugin::policy::{Guest, RecoveryConfig, RecoveryFacts, Setting};
use pgclone::plugin::types::*;

struct Component;

impl Guest for Component {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "contract-1-0-policy".into(),
            version: "1.0.0".into(),
            vendor: "pgclone tests".into(),
            license: "Apache-2.0".into(),
            description: "a recovery policy built against pgclone:plugin@1.0.0".into(),
            provides: Provides::empty(),
            needs_upstream: false,
            capabilities: vec![Capability::ReadConfig("recovery_min_apply_delay".into())],
        }
    }

    fn recovery_settings(
        facts: RecoveryFacts,
        mut previous: RecoveryConfig,
    ) -> Result<RecoveryConfig, PluginError> {
        let delay = pgclone::plugin::host::config_get("recovery_min_apply_delay")?
            .unwrap_or_else(|| "1min".into());
        pgclone::plugin::host::log(
            LogLevel::Info,
            &format!("contract-1-0-policy: {} gets {delay}", facts.node_name),
        );
        previous
            .settings
            .retain(|s| s.name != "recovery_min_apply_delay");
        previous.settings.push(Setting {
            name: "recovery_min_apply_delay".into(),
            value: delay,
        });
        Ok(previous)
    }
}

// The exports exist in the wasm32 build only: a native library cannot carry
// their names (`pgclone:plugin/source@1.2.0#check`); natively the code is only
// compiled and linted.
#[cfg(target_arch = "wasm32")]
export!(Component);
