//! Test component: a well-meaning vendor source that copies the upstream
//! with `pg_basebackup --incremental=MANIFEST` (PostgreSQL 17) and forgets
//! pg_combinebackup. Every step succeeds; the result is an incremental
//! backup, not a data directory. The host must not call that clone complete.
//!
//! Configuration: `incremental_manifest`, the `backup_manifest` of an earlier
//! backup of the upstream.

use pgclone_plugin_sdk::source::*;
use pgclone_plugin_sdk::{conninfo, host, testing, PluginInfo};

pgclone_plugin_sdk::manifest! {
    name: "test-forgetful",
    version: "0.0.1",
    vendor: "pgclone tests",
    license: "Apache-2.0",
    description: "incremental copies with pg_basebackup, never combined",
    provides: ["base-backup"],
    needs_upstream: true,
    capabilities: ["local-run:pg_basebackup", "read-config:incremental_manifest"],
}

struct Forgetful;

impl Guest for Forgetful {
    fn describe() -> PluginInfo {
        pgclone_plugin_sdk::describe(MANIFEST)
    }

    fn check(request: CloneRequest) -> Result<BackupDescription, PluginError> {
        let mut backup = testing::backup("live");
        backup.server_version = request.upstream_version.unwrap_or(0);
        backup.system_identifier = request.upstream_system_identifier.unwrap_or_default();
        Ok(backup)
    }

    fn plan_clone(
        request: CloneRequest,
        _backup: BackupDescription,
    ) -> Result<Vec<PlanStep>, PluginError> {
        let manifest = host::config_require("incremental_manifest")?;
        let params: Vec<ConnParam> = request
            .upstream
            .into_iter()
            .filter(|p| !matches!(p.key.as_str(), "dbname" | "password" | "replication"))
            .collect();
        Ok(vec![PlanStep::RunLocal(RunLocalStep {
            program: "pg_basebackup".into(),
            args: vec![
                "-D".into(),
                request.data_directory,
                "--dbname".into(),
                conninfo::render(&params),
                "--checkpoint=fast".into(),
                "--no-sync".into(),
                format!("--incremental={manifest}"),
            ],
            uses_upstream_password: true,
            description: "an incremental copy (never combined)".into(),
        })])
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

pgclone_plugin_sdk::export_source!(Forgetful);
