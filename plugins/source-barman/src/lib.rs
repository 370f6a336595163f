//! pgclone's Barman backup source.
//!
//! Describes itself and the capabilities it needs: running `barman` and `rsync`
//! on the Barman host. Finding and planning a clone from Barman arrives with the
//! Barman clone; until then `check` says so plainly.

wit_bindgen::generate!({
    world: "backup-source",
    path: "../../wit",
});

use exports::pgclone::plugin::source::Guest;
use pgclone::plugin::types::{
    BackupDescription, Capability, CloneRequest, ErrorKind, PlanStep, PluginError, PluginInfo,
    Provides, RemoteProgram, WalLocation,
};

/// The logical remote target the operator maps to `barman_host`.
const TARGET: &str = "barman";

struct Barman;

fn not_yet(what: &str) -> PluginError {
    PluginError {
        kind: ErrorKind::Unsupported,
        message: format!("the barman source cannot {what} in this version of pgclone"),
        detail: None,
        hint: Some("use --without-barman to clone with pg_basebackup".into()),
    }
}

impl Guest for Barman {
    fn describe() -> PluginInfo {
        let remote = |program: &str| {
            Capability::RemoteRun(RemoteProgram {
                target: TARGET.into(),
                program: program.into(),
            })
        };
        PluginInfo {
            name: "barman".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            vendor: "pgclone".into(),
            license: "Apache-2.0".into(),
            description: "Base backups and WAL from a Barman server, over ssh".into(),
            provides: Provides::BASE_BACKUP | Provides::WAL,
            needs_upstream: false,
            capabilities: vec![
                remote("barman"),
                remote("rsync"),
                Capability::ReadConfig("barman_host".into()),
                Capability::ReadConfig("barman_server".into()),
                Capability::ReadConfig("barman_config".into()),
            ],
        }
    }

    fn check(_request: CloneRequest) -> Result<BackupDescription, PluginError> {
        Err(not_yet("check a backup"))
    }

    fn plan_clone(
        _request: CloneRequest,
        _backup: BackupDescription,
    ) -> Result<Vec<PlanStep>, PluginError> {
        Err(not_yet("plan a clone"))
    }

    fn locate_wal(_name: String) -> Result<WalLocation, PluginError> {
        Err(not_yet("locate WAL"))
    }
}

export!(Barman);
