//! pgclone's pg_basebackup source: a clone streamed from the live upstream.
//!
//! `check` validates the configuration against the upstream the host connected
//! to; `plan-clone` returns one step: the pg_basebackup invocation, which the
//! host runs (found through `pg_bindir` or `PATH`) and checks.

pub mod options;

use pgclone_plugin_sdk::host;
use pgclone_plugin_sdk::source::Guest;
use pgclone_plugin_sdk::types::{
    BackupDescription, BackupFormat, CloneRequest, ErrorKind, PlanStep, PluginError, PluginInfo,
    RunLocalStep, WalArchive, WalLocation,
};

pgclone_plugin_sdk::manifest! {
    name: "pg-basebackup",
    version: env!("CARGO_PKG_VERSION"),
    vendor: "pgclone",
    license: "Apache-2.0",
    description: "A base backup streamed from the upstream by pg_basebackup",
    provides: ["base-backup"],
    needs_upstream: true,
    capabilities: [
        "local-run:pg_basebackup",
        "read-config:pg_basebackup_options",
        "read-config:tablespace_mapping",
    ],
}

struct PgBasebackup;

fn config_error(message: String, hint: &str) -> PluginError {
    PluginError {
        kind: ErrorKind::InvalidConfig,
        message,
        detail: None,
        hint: Some(hint.into()),
    }
}

/// `tablespace_mapping` entries as `(old, new)`.
fn mappings() -> Result<Vec<(String, String)>, PluginError> {
    host::config_get_all("tablespace_mapping")?
        .iter()
        .map(|m| {
            options::split_mapping(m).ok_or_else(|| {
                config_error(
                    format!("invalid tablespace_mapping \"{m}\""),
                    "write it as tablespace_mapping='/old/location=/new/location' with absolute paths",
                )
            })
        })
        .collect()
}

impl Guest for PgBasebackup {
    fn describe() -> PluginInfo {
        pgclone_plugin_sdk::describe(MANIFEST)
    }

    fn check(request: CloneRequest) -> Result<BackupDescription, PluginError> {
        let Some(version) = request.upstream_version else {
            return Err(PluginError {
                kind: ErrorKind::Unreachable,
                message: "pg_basebackup needs a reachable upstream server".into(),
                detail: None,
                hint: Some(
                    "check the upstream connection (-h/-p/-U/-d or --upstream-conninfo)".into(),
                ),
            });
        };
        for (old, _) in mappings()? {
            if !request
                .upstream_tablespaces
                .iter()
                .any(|t| t.location == old)
            {
                let known: Vec<String> = request
                    .upstream_tablespaces
                    .iter()
                    .map(|t| format!("{} ({})", t.location, t.name))
                    .collect();
                return Err(PluginError {
                    kind: ErrorKind::NotFound,
                    message: format!(
                        "tablespace_mapping names \"{old}\", which is not a tablespace location on the upstream"
                    ),
                    detail: Some(if known.is_empty() {
                        "the upstream has no tablespaces".into()
                    } else {
                        format!("the upstream's tablespaces: {}", known.join(", "))
                    }),
                    hint: Some("fix or remove the tablespace_mapping line".into()),
                });
            }
        }
        // Validate the options now, so a mistake is reported before anything is touched.
        let opts = options::parse(&host::config_get("pg_basebackup_options")?.unwrap_or_default())?;
        if opts.slot.is_some() && request.slot_name.is_some() {
            return Err(config_error(
                "pg_basebackup_options sets a slot while use_replication_slots is on".into(),
                "remove -S/--slot from pg_basebackup_options: pgclone creates and names the slot (replication_slot_name)",
            ));
        }
        Ok(BackupDescription {
            id: "live".into(),
            system_identifier: request.upstream_system_identifier.unwrap_or_default(),
            server_version: version,
            timeline: 0,
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
        let opts = options::parse(&host::config_get("pg_basebackup_options")?.unwrap_or_default())?;
        let mut conn: Vec<(String, String)> = request
            .upstream
            .iter()
            .filter(|p| !matches!(p.key.as_str(), "dbname" | "password" | "replication"))
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        if let Some(user) = &request.replication_user {
            match conn.iter_mut().find(|(k, _)| k == "user") {
                Some(p) => p.1 = user.clone(),
                None => conn.push(("user".into(), user.clone())),
            }
        }
        let conninfo = conn
            .iter()
            .map(|(k, v)| format!("{k}={}", options::quote_conninfo(v)))
            .collect::<Vec<_>>()
            .join(" ");
        let mut args: Vec<String> = vec![
            "--pgdata".into(),
            request.data_directory.clone(),
            "--dbname".into(),
            conninfo,
            // Never prompt: a prompt would hang an unattended clone.
            "--no-password".into(),
        ];
        if !opts.wal_method {
            args.extend(["--wal-method".into(), "stream".into()]);
        }
        if request.fast_checkpoint {
            args.extend(["--checkpoint".into(), "fast".into()]);
        }
        if let (Some(slot), false) = (&request.slot_name, opts.no_slot) {
            args.extend(["--slot".into(), slot.clone()]);
        }
        for (old, new) in mappings()? {
            args.push(format!(
                "--tablespace-mapping={}={}",
                old.replace('=', "\\="),
                new.replace('=', "\\=")
            ));
        }
        // Progress costs a size estimate on the server: only when someone watches.
        if request.interactive && !opts.progress {
            args.push("--progress".into());
        }
        // Its account says when it waits for the upstream's checkpoint: the
        // host says so instead of showing a copy that does not move.
        if !opts.verbose {
            args.push("--verbose".into());
        }
        args.extend(opts.args);
        let host_name = request
            .upstream
            .iter()
            .find(|p| p.key == "host")
            .map(|p| p.value.clone())
            .unwrap_or_else(|| "the upstream".into());
        Ok(vec![PlanStep::RunLocal(RunLocalStep {
            program: "pg_basebackup".into(),
            args,
            uses_upstream_password: true,
            description: format!("copying the data directory from {host_name} with pg_basebackup"),
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

pgclone_plugin_sdk::export_source!(PgBasebackup);

/// The property tests' configuration and mutations, shared with the host.
#[cfg(test)]
#[path = "../../../contract/src/fuzz.rs"]
mod fuzz;
