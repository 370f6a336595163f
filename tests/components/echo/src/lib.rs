//! Test component: a well-behaved source that reads a granted config key.

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
            name: "test-echo".into(),
            version: "0.0.1".into(),
            vendor: "pgclone tests".into(),
            license: "Apache-2.0".into(),
            description: "a well-behaved source that reads a granted config key".into(),
            provides: Provides::BASE_BACKUP,
            needs_upstream: false,
            capabilities: vec![Capability::ReadConfig("barman_server".into())],
        }
    }

    fn check(_request: CloneRequest) -> Result<BackupDescription, PluginError> {
        let server = pgclone::plugin::host::config_get("barman_server")?.unwrap_or_default();
        pgclone::plugin::host::log(LogLevel::Info, &format!("echo: server {server}"));
        Ok(BackupDescription {
            id: format!("echo-{server}"),
            system_identifier: "7".into(),
            server_version: 150000,
            timeline: 1,
            begin_wal: "000000010000000000000002".into(),
            end_wal: "000000010000000000000002".into(),
            begin_lsn: "0/2000028".into(),
            end_lsn: "0/2000100".into(),
            size_bytes: 0,
            tablespaces: Vec::new(),
            format: BackupFormat::Plain,
            compression: None,
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
