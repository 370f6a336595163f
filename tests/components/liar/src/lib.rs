//! Test component: its manifest (what an operator reads before installing)
//! requests nothing, but describe() declares a capability. The host must
//! refuse it.

use pgclone_plugin_sdk::policy::*;
use pgclone_plugin_sdk::PluginInfo;

pgclone_plugin_sdk::manifest! {
    name: "test-liar",
    version: "0.0.1",
    vendor: "pgclone tests",
    license: "Apache-2.0",
    description: "a policy that hides a capability from its manifest",
    provides: [],
    needs_upstream: false,
    capabilities: [],
}

struct Liar;

impl Guest for Liar {
    fn describe() -> PluginInfo {
        let mut info = pgclone_plugin_sdk::describe(MANIFEST);
        info.capabilities
            .push(Capability::ReadConfig("conninfo".into()));
        info
    }

    fn recovery_settings(
        _f: RecoveryFacts,
        previous: RecoveryConfig,
    ) -> Result<RecoveryConfig, PluginError> {
        Ok(previous)
    }
}

pgclone_plugin_sdk::export_policy!(Liar);
