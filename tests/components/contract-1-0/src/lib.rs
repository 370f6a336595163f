//! Test component: a backup source built against the released contract
//! `pgclone:plugin@1.0.0` (the frozen `wit/1.0.0/`), as a vendor's plugin
//! built before 1.1.0 is. It clones with `pg_basebackup` (a `run-local` step)
//! after creating a directory and writing a file (the other 1.0.0 steps), so
//! that a host of a later minor version must load it and run its plan.

wit_bindgen::generate!({
    world: "backup-source",
    path: "../../../wit/1.0.0",
});

use exports::pgclone::plugin::source::Guest;
use pgclone::plugin::types::*;

struct Component;

/// `key='value'` for a libpq connection string.
fn conninfo(params: &[ConnParam]) -> String {
    params
        .iter()
        .filter(|p| p.key != "dbname")
        .map(|p| {
            format!(
                "{}='{}'",
                p.key,
                p.value.replace('\\', "\\\\").replace('\'', "\\'")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Guest for Component {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "contract-1-0".into(),
            version: "1.0.0".into(),
            vendor: "pgclone tests".into(),
            license: "Apache-2.0".into(),
            description: "a pg_basebackup source built against pgclone:plugin@1.0.0".into(),
            provides: Provides::BASE_BACKUP,
            needs_upstream: true,
            capabilities: vec![Capability::LocalRun("pg_basebackup".into())],
        }
    }

    fn check(request: CloneRequest) -> Result<BackupDescription, PluginError> {
        let version = request.upstream_version.ok_or_else(|| PluginError {
            kind: ErrorKind::Unreachable,
            message: "the upstream could not be reached".into(),
            detail: None,
            hint: None,
        })?;
        pgclone::plugin::host::log(
            LogLevel::Notice,
            &format!(
                "contract-1-0: cloning PostgreSQL {version} for {}",
                request.node.node_name
            ),
        );
        Ok(BackupDescription {
            id: "live".into(),
            system_identifier: request.upstream_system_identifier.unwrap_or_default(),
            server_version: version,
            timeline: 1,
            begin_wal: String::new(),
            end_wal: String::new(),
            begin_lsn: String::new(),
            end_lsn: String::new(),
            size_bytes: 0,
            tablespaces: request.upstream_tablespaces,
            format: BackupFormat::Plain,
            compression: None,
        })
    }

    fn plan_clone(
        request: CloneRequest,
        _backup: BackupDescription,
    ) -> Result<Vec<PlanStep>, PluginError> {
        let mut args = vec![
            "-D".to_string(),
            request.data_directory.clone(),
            "-X".into(),
            "stream".into(),
            "-c".into(),
            "fast".into(),
            "-d".into(),
            conninfo(&request.upstream),
        ];
        if let Some(u) = &request.replication_user {
            args.extend(["-U".into(), u.clone()]);
        }
        Ok(vec![
            PlanStep::RunLocal(RunLocalStep {
                program: "pg_basebackup".into(),
                args,
                uses_upstream_password: true,
                description: "pg_basebackup (a 1.0.0 plugin's plan)".into(),
            }),
            PlanStep::CreateDir(CreateDirStep {
                path: LocalPath {
                    root: PathRoot::DataDirectory,
                    path: "contract-1-0".into(),
                },
                mode: 0o700,
            }),
            PlanStep::WriteFile(WriteFileStep {
                path: LocalPath {
                    root: PathRoot::DataDirectory,
                    path: "contract-1-0/made-by".into(),
                },
                contents: "a pgclone:plugin@1.0.0 plan\n".into(),
                mode: 0o600,
            }),
        ])
    }

    fn locate_wal(_name: String) -> Result<WalLocation, PluginError> {
        Ok(WalLocation::Unavailable)
    }
}

// The exports exist in the wasm32 build only: a native library cannot carry
// their names (`pgclone:plugin/source@1.2.0#check`); natively the code is only
// compiled and linted.
#[cfg(target_arch = "wasm32")]
export!(Component);
