//! pgclone's pg_basebackup source: a clone streamed from the live upstream.
//!
//! Describes itself and the capabilities it needs (running the local
//! `pg_basebackup`). Building the invocation arrives with the pg_basebackup
//! clone; until then `check` says so plainly.

wit_bindgen::generate!({
    world: "backup-source",
    path: "../../wit",
});

use exports::pgclone::plugin::source::Guest;
use pgclone::plugin::types::{
    BackupDescription, Capability, CloneRequest, ErrorKind, PlanStep, PluginError, PluginInfo,
    Provides, WalLocation,
};

struct PgBasebackup;

fn not_yet(what: &str) -> PluginError {
    PluginError {
        kind: ErrorKind::Unsupported,
        message: format!("the pg-basebackup source cannot {what} in this version of pgclone"),
        detail: None,
        hint: None,
    }
}

impl Guest for PgBasebackup {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "pg-basebackup".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            vendor: "pgclone".into(),
            license: "Apache-2.0".into(),
            description: "A base backup streamed from the upstream by pg_basebackup".into(),
            provides: Provides::BASE_BACKUP,
            needs_upstream: true,
            capabilities: vec![
                Capability::LocalRun("pg_basebackup".into()),
                Capability::ReadConfig("pg_basebackup_options".into()),
                Capability::ReadConfig("tablespace_mapping".into()),
            ],
        }
    }

    fn check(_request: CloneRequest) -> Result<BackupDescription, PluginError> {
        Err(not_yet("check the upstream"))
    }

    fn plan_clone(
        _request: CloneRequest,
        _backup: BackupDescription,
    ) -> Result<Vec<PlanStep>, PluginError> {
        Err(not_yet("plan a clone"))
    }

    fn locate_wal(_name: String) -> Result<WalLocation, PluginError> {
        Ok(WalLocation::Unavailable)
    }
}

export!(PgBasebackup);
