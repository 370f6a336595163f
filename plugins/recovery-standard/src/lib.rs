//! pgclone's standard recovery policy, as a WebAssembly component: the SDK's
//! [`standard`](pgclone_plugin_sdk::standard) policy (unit-tested there),
//! bound to the `recovery-policy` world.

use pgclone_plugin_sdk::policy::{Guest, RecoveryConfig, RecoveryFacts};
use pgclone_plugin_sdk::{PluginError, PluginInfo};

pgclone_plugin_sdk::manifest! {
    name: "recovery-standard",
    version: env!("CARGO_PKG_VERSION"),
    vendor: "pgclone",
    license: "Apache-2.0",
    description: "Standard standby configuration: recovery.conf (PostgreSQL 9.6-11) or standby.signal and postgresql.auto.conf (12+)",
    provides: [],
    needs_upstream: false,
    capabilities: [],
}

struct StandardPolicy;

impl Guest for StandardPolicy {
    fn describe() -> PluginInfo {
        pgclone_plugin_sdk::describe(MANIFEST)
    }

    fn recovery_settings(
        facts: RecoveryFacts,
        previous: RecoveryConfig,
    ) -> Result<RecoveryConfig, PluginError> {
        pgclone_plugin_sdk::standard::recovery_settings(&facts, previous)
    }
}

pgclone_plugin_sdk::export_policy!(StandardPolicy);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_describes_the_plugin() {
        let info = StandardPolicy::describe();
        assert_eq!(info.name, "recovery-standard");
        assert!(info.capabilities.is_empty());
    }
}
