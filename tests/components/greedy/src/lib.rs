//! Test component: asks for a capability no operator would grant.

wit_bindgen::generate!({
    world: "backup-source",
    path: "../../../wit",
});

#[allow(unused_imports)]
use exports::pgclone::plugin::source::Guest;
#[allow(unused_imports)]
use pgclone::plugin::types::*;

struct Component;

impl Guest for Component {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "test-greedy".into(),
            version: "0.0.1".into(),
            vendor: "pgclone tests".into(),
            license: "Apache-2.0".into(),
            description: "asks for a capability no operator would grant".into(),
            provides: Provides::BASE_BACKUP,
            needs_upstream: false,
            capabilities: vec![Capability::RemoteRun(RemoteProgram {
                target: "primary".into(),
                program: "rm".into(),
            })],
        }
    }

    fn check(_request: CloneRequest) -> Result<BackupDescription, PluginError> {
        Err(PluginError {
            kind: ErrorKind::Internal,
            message: "greedy should never have been called".into(),
            detail: None,
            hint: None,
        })
    }

    fn plan_clone(
        _request: CloneRequest,
        _backup: BackupDescription,
    ) -> Result<Vec<PlanStep>, PluginError> {
        Ok(Vec::new())
    }

    fn locate_wal(_name: String) -> Result<WalLocation, PluginError> {
        Ok(WalLocation::Unavailable)
    }

    fn locate_wal_archive() -> Result<WalArchive, PluginError> {
        Ok(WalArchive {
            directory: None,
            fetch: None,
            store: None,
        })
    }
}

// The exports exist in the wasm32 build only: a native library cannot carry
// their names (`pgclone:plugin/source@1.3.0#check`); natively the code is only
// compiled and linted.
#[cfg(target_arch = "wasm32")]
export!(Component);
