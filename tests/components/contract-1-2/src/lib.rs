//! Test component: a WAL source built against the released contract
//! `pgclone:plugin@1.2.0` (the frozen `wit/1.2.0/`), as a vendor's plugin
//! built before 1.3.0 is. Its `locate-wal-archive` names Barman's WAL
//! directory and `barman get-wal`; a 1.3.0 host converts its answer (which
//! has no `store`) and serves its WAL from that directory.

wit_bindgen::generate!({
    world: "backup-source",
    path: "../../../wit/1.2.0",
});

use exports::pgclone::plugin::source::Guest;
use pgclone::plugin::types::*;

struct Component;

fn config(key: &str) -> Result<String, PluginError> {
    pgclone::plugin::host::config_get(key)?.ok_or_else(|| PluginError {
        kind: ErrorKind::InvalidConfig,
        message: format!("{key} is not set"),
        detail: None,
        hint: None,
    })
}

impl Guest for Component {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "contract-1-2".into(),
            version: "1.2.0".into(),
            vendor: "pgclone tests".into(),
            license: "Apache-2.0".into(),
            description: "WAL from Barman's directory, built against pgclone:plugin@1.2.0".into(),
            provides: Provides::WAL,
            needs_upstream: false,
            capabilities: vec![
                Capability::RemoteRun(RemoteProgram {
                    target: "barman".into(),
                    program: "tar".into(),
                }),
                Capability::RemoteRun(RemoteProgram {
                    target: "barman".into(),
                    program: "barman".into(),
                }),
                Capability::ReadConfig("contract_wals_directory".into()),
                Capability::ReadConfig("barman_server".into()),
            ],
        }
    }

    fn check(_request: CloneRequest) -> Result<BackupDescription, PluginError> {
        Err(PluginError {
            kind: ErrorKind::Unsupported,
            message: "this test source supplies WAL only".into(),
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
            directory: Some(WalDirectory {
                target: "barman".into(),
                path: config("contract_wals_directory")?,
                layout: WalLayout::ByLog,
            }),
            fetch: Some(WalFetchCommand {
                target: Some("barman".into()),
                argv: vec![
                    "barman".into(),
                    "get-wal".into(),
                    config("barman_server")?,
                    "%f".into(),
                ],
                partial_argv: None,
                missing_status: Some(1),
            }),
        })
    }
}

// The exports exist in the wasm32 build only: a native library cannot carry
// their names; natively the code is only compiled and linted.
#[cfg(target_arch = "wasm32")]
export!(Component);
