//! Test component: allocates without bound in check.

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
            name: "test-hog".into(),
            version: "0.0.1".into(),
            vendor: "pgclone tests".into(),
            license: "Apache-2.0".into(),
            description: "allocates without bound in check".into(),
            provides: Provides::BASE_BACKUP,
            needs_upstream: false,
            capabilities: vec![],
        }
    }

    fn check(_request: CloneRequest) -> Result<BackupDescription, PluginError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
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
