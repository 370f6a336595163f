//! The released contract `pgclone:plugin@1.1.0` (`wit/1.1.0/`), frozen.
//!
//! 1.2.0 only added to it (`source.locate-wal-archive` and the types of its
//! answer), so a 1.1.0 plugin's `types` *are* 1.2.0's (`with` below; they
//! are converted to the current ones in `v1_2.rs`) and its imports are
//! served by the current `host` (the linker matches `@1.1.0` to `@1.3.0` by
//! semver). Only its exports, which lack `locate-wal-archive`, need bindings
//! of their own, and only the types its `policy` interface defines are its
//! own, converted below.

use super::current::policy_api as new_policy;

pub mod source {
    wasmtime::component::bindgen!({
        world: "backup-source",
        path: "../wit/1.1.0",
        with: {
            "pgclone:plugin/types": crate::plugin::versions::v1_2::types,
            "pgclone:plugin/host": crate::plugin::versions::v1_2::host_api,
        },
    });
}

pub mod policy {
    wasmtime::component::bindgen!({
        world: "recovery-policy",
        path: "../wit/1.1.0",
        with: {
            "pgclone:plugin/types": crate::plugin::versions::v1_2::types,
            "pgclone:plugin/host": crate::plugin::versions::v1_2::host_api,
        },
    });
}

pub use policy::exports::pgclone::plugin::policy as policy_api;
pub use source::exports::pgclone::plugin::source as source_api;

entry_points!();

use policy_api as old_policy;

// The policy interface's own types: the same as today's.
record!(new_policy::RecoveryFacts => old_policy {
    server_version, node_name, upstream, replication_user, slot_name, restore_command,
    recovery_min_apply_delay, archive_cleanup_command, passfile, password,
});
cases!(old_policy::SettingsFile => new_policy { RecoveryConf, PostgresqlAutoConf });
cases!(new_policy::SettingsFile => old_policy { RecoveryConf, PostgresqlAutoConf });
cases!(old_policy::SignalFile => new_policy { Standby, Recovery });
cases!(new_policy::SignalFile => old_policy { Standby, Recovery });
record!(old_policy::Setting => new_policy { name, value });
record!(new_policy::Setting => old_policy { name, value });
record!(old_policy::RecoveryConfig => new_policy { file, settings, signal_files });
record!(new_policy::RecoveryConfig => old_policy { file, settings, signal_files });
