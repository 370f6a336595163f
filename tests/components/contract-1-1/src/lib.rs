//! Test component: a WAL source built against the released contract
//! `pgclone:plugin@1.1.0` (the frozen `wit/1.1.0/`), as a vendor's plugin
//! built before 1.2.0 is. It has no `locate-wal-archive`, so a 1.2.0 host
//! serves its WAL per file: `locate-wal` names a Barman file to `cat` for a
//! segment, and `barman get-wal` for anything else.

wit_bindgen::generate!({
    world: "backup-source",
    path: "../../../wit/1.1.0",
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
            name: "contract-1-1".into(),
            version: "1.1.0".into(),
            vendor: "pgclone tests".into(),
            license: "Apache-2.0".into(),
            description: "WAL from Barman, per file, built against pgclone:plugin@1.1.0".into(),
            provides: Provides::WAL,
            needs_upstream: false,
            capabilities: vec![
                Capability::RemoteRun(RemoteProgram {
                    target: "barman".into(),
                    program: "cat".into(),
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

    fn locate_wal(name: String) -> Result<WalLocation, PluginError> {
        if name.len() == 24 {
            let dir = config("contract_wals_directory")?;
            return Ok(WalLocation::RemoteFile(RemoteWalFile {
                target: "barman".into(),
                path: format!("{dir}/{}/{name}", &name[..16]),
                compression: None,
            }));
        }
        Ok(WalLocation::RemoteCommand(RemoteWalCommand {
            target: "barman".into(),
            argv: vec![
                "barman".into(),
                "get-wal".into(),
                config("barman_server")?,
                name,
            ],
        }))
    }
}

// The exports exist in the wasm32 build only: a native library cannot carry
// their names (`pgclone:plugin/source@1.2.0#check`); natively the code is only
// compiled and linted.
#[cfg(target_arch = "wasm32")]
export!(Component);
