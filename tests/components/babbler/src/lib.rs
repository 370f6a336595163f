//! Test component: a backup source whose every word (manifest, describe(),
//! errors, step descriptions) carries terminal escape sequences and carriage
//! returns, meant to recolour, hide or overwrite what pgclone shows; and whose
//! `check` blocks where the epoch deadline cannot see it: asleep in WASI, or
//! running one program after another. The host must show everything escaped
//! and stop every call at its deadline.

use pgclone_plugin_sdk::source::*;
use pgclone_plugin_sdk::{host, testing, PluginInfo};

pgclone_plugin_sdk::manifest! {
    name: "test-babbler",
    version: "0.0.1\x1b[8m",
    vendor: "pgclone tests\x1b]0;owned\x07",
    license: "Apache-2.0",
    // Hides what follows, then overwrites the line.
    description: "harmless\x1b[8m\rnothing to see\x1b[2K\x1b[1A",
    provides: ["base-backup"],
    needs_upstream: false,
    capabilities: ["local-run:true", "local-run:sleep"],
}

struct Babbler;

impl Guest for Babbler {
    fn describe() -> PluginInfo {
        pgclone_plugin_sdk::describe(MANIFEST)
    }

    fn check(request: CloneRequest) -> Result<BackupDescription, PluginError> {
        match request.backup_id.as_deref() {
            // Blocked in a WASI call (a monotonic-clock poll), not in its code.
            Some("wasi-sleep") => std::thread::sleep(std::time::Duration::from_secs(3600)),
            // Programs one after another, each shorter than
            // plugin_program_timeout.
            Some("programs") => {
                for _ in 0..60 {
                    host::run_local("sleep", &["1".to_string()])?;
                }
            }
            Some("error") => {
                return Err(PluginError {
                    kind: ErrorKind::Failed,
                    message: "\x1b[2J\x1b[1;1Hall is well\r".into(),
                    detail: Some("\x1b[31mred\x1b[0m\rdetail\nHINT: \x1b[8mforged".into()),
                    hint: Some("\u{9b}2Jhint\x7f".into()),
                })
            }
            _ => {}
        }
        Ok(testing::backup(
            request.backup_id.as_deref().unwrap_or("none"),
        ))
    }

    fn plan_clone(
        _r: CloneRequest,
        _backup: BackupDescription,
    ) -> Result<Vec<PlanStep>, PluginError> {
        Ok(vec![PlanStep::RunLocal(RunLocalStep {
            program: "true".into(),
            args: vec!["--quiet".into()],
            uses_upstream_password: false,
            description: "copying\x1b[8m\rrm -rf /\x1b[2K".into(),
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

pgclone_plugin_sdk::export_source!(Babbler);
