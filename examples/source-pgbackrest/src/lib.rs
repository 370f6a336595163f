//! A pgBackRest backup source, written as a vendor would: with the pgclone
//! plugin SDK alone. `check` finds the backup set with `pgbackrest info
//! --output=json`; the plan is one `pgbackrest restore` into the new data
//! directory. The recovery configuration still comes from pgclone's
//! policies: the restore is asked to write none (`--type=preserve`). WAL comes
//! from the same repository: `pgclone wal-restore` runs `pgbackrest
//! archive-get` for each file it must fetch (see `wal_archive`).
//!
//! Configuration keys (in pgclone's configuration file):
//! - `pgbackrest_stanza` (required): the stanza of the primary;
//! - `pgbackrest_config`: pgBackRest's configuration file, when not the default;
//! - `tablespace_mapping`: `old=new`, as for the other sources;
//! - `clone_jobs`: parallel restore processes (`--process-max`, default 4);
//! - `pgbackrest_repo_host`: the repository host, when `pgbackrest info` is
//!   to run there (over ssh, as the logical target `pgbackrest-repo`, which
//!   pgclone maps to this key or to `[targets]` in plugins.toml); the
//!   restore still runs here, as pgBackRest's own configuration says.

mod info;

use pgclone_plugin_sdk::source::{
    BackupDescription, BackupFormat, CloneRequest, Guest, PlanStep, RunLocalStep, Tablespace,
    WalArchive, WalFetchCommand, WalLocation,
};
use pgclone_plugin_sdk::{host, version, ErrorExt, ErrorKind, PluginError, PluginInfo};

pgclone_plugin_sdk::manifest! {
    name: "pgbackrest",
    version: env!("CARGO_PKG_VERSION"),
    vendor: "Example Backup Vendor",
    license: "Apache-2.0",
    description: "Standbys restored from a pgBackRest repository (pgbackrest restore)",
    provides: ["base-backup", "wal"],
    needs_upstream: false,
    capabilities: [
        "local-run:pgbackrest",
        "read-config:pgbackrest_stanza",
        "read-config:pgbackrest_config",
        "read-config:tablespace_mapping",
        "read-config:clone_jobs",
        "read-config:pgbackrest_repo_host",
        "remote-run:pgbackrest-repo:pgbackrest",
    ],
}

struct PgBackRest;

/// `--config=...` (when configured) and `--stanza=...`: they go before the command.
fn common_args() -> Result<Vec<String>, PluginError> {
    let mut args = Vec::new();
    if let Some(c) = host::config_get("pgbackrest_config")? {
        args.push(format!("--config={c}"));
    }
    args.push(format!(
        "--stanza={}",
        host::config_require("pgbackrest_stanza")?
    ));
    Ok(args)
}

/// `pgbackrest info --output=json`, for one backup set when `set` is given.
fn info(set: Option<&str>) -> Result<info::Stanza, PluginError> {
    let mut args = common_args()?;
    args.extend(["info".into(), "--output=json".into()]);
    if let Some(s) = set {
        args.push(format!("--set={s}"));
    }
    let out = match host::config_get("pgbackrest_repo_host")? {
        Some(_) => run_on_repository(args)?,
        None => host::run_local_ok("pgbackrest", &args)?,
    };
    info::parse(&out)
}

/// `pgbackrest ARGS` on the repository host: its output when it exits with
/// status 0, else a `failed` error carrying its stderr.
fn run_on_repository(args: Vec<String>) -> Result<String, PluginError> {
    let argv: Vec<String> = std::iter::once("pgbackrest".to_string())
        .chain(args)
        .collect();
    let out = host::run_remote("pgbackrest-repo", &argv)?;
    if out.status == Some(0) {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(PluginError::new(
        ErrorKind::Failed,
        format!(
            "pgbackrest on the repository host failed (status {:?})",
            out.status
        ),
    )
    .detail(String::from_utf8_lossy(&out.stderr).trim().to_string()))
}

impl Guest for PgBackRest {
    fn describe() -> PluginInfo {
        pgclone_plugin_sdk::describe(MANIFEST)
    }

    fn check(request: CloneRequest) -> Result<BackupDescription, PluginError> {
        let label = match &request.backup_id {
            Some(id) => id.clone(),
            None => info(None)?.latest()?.label.clone(),
        };
        let stanza = info(Some(&label))?;
        let b = stanza.latest()?;
        let db = stanza.database_of(b)?;
        let server_version = version::parse(&db.version).ok_or_else(|| {
            PluginError::new(
                ErrorKind::InvalidBackup,
                format!("cannot read PostgreSQL version \"{}\"", db.version),
            )
        })?;
        if let Some(up) = request
            .upstream_version
            .filter(|v| !version::same_major(*v, server_version))
        {
            return Err(PluginError::new(
                ErrorKind::InvalidBackup,
                format!(
                    "backup {label} is of PostgreSQL {}, the upstream runs {}",
                    db.version,
                    version::major_text(up)
                ),
            )
            .hint("a standby must run the major version of its upstream"));
        }
        let system_identifier = db.system_id.to_string();
        if let Some(up) = request
            .upstream_system_identifier
            .filter(|s| *s != system_identifier)
        {
            return Err(PluginError::new(
                ErrorKind::InvalidBackup,
                format!("backup {label} belongs to another database system"),
            )
            .detail(format!(
                "backup system identifier {system_identifier}, upstream {up}"
            ))
            .hint("check pgbackrest_stanza: it must be the stanza of this upstream"));
        }
        let timeline = u32::from_str_radix(b.archive.start.get(..8).unwrap_or(""), 16).unwrap_or(0);
        Ok(BackupDescription {
            id: label,
            system_identifier,
            server_version,
            timeline,
            begin_wal: b.archive.start.clone(),
            end_wal: b.archive.stop.clone(),
            begin_lsn: b.lsn.start.clone(),
            end_lsn: b.lsn.stop.clone(),
            size_bytes: b.info.size,
            tablespaces: b
                .tablespace
                .iter()
                .flatten()
                .map(|t| Tablespace {
                    oid: t.oid,
                    name: t.name.clone(),
                    location: t.destination.clone(),
                })
                .collect(),
            format: BackupFormat::Plain,
            compression: None,
        })
    }

    fn plan_clone(
        request: CloneRequest,
        backup: BackupDescription,
    ) -> Result<Vec<PlanStep>, PluginError> {
        let mut args = common_args()?;
        let jobs = host::config_get("clone_jobs")?.unwrap_or_else(|| "4".into());
        args.extend([
            "restore".into(),
            format!("--pg1-path={}", request.data_directory),
            format!("--set={}", backup.id),
            // pgclone's policies write the recovery configuration.
            "--type=preserve".into(),
            format!("--process-max={jobs}"),
        ]);
        for m in host::config_get_all("tablespace_mapping")? {
            let Some((old, new)) = m.split_once('=') else {
                continue;
            };
            if let Some(t) = backup.tablespaces.iter().find(|t| t.location == old) {
                args.push(format!("--tablespace-map={}={new}", t.oid));
            }
        }
        Ok(vec![PlanStep::RunLocal(RunLocalStep {
            program: "pgbackrest".into(),
            args,
            uses_upstream_password: false,
            description: format!(
                "restoring pgBackRest backup {} with pgbackrest restore",
                backup.id
            ),
        })])
    }

    fn locate_wal(_name: String) -> Result<WalLocation, PluginError> {
        // Never asked: wal_archive describes every file.
        Ok(WalLocation::Unavailable)
    }

    /// WAL from the stanza's archive: `pgbackrest archive-get %f %p`, run by
    /// the host on this machine as the user running `pgclone wal-restore`,
    /// into its spool; the host checks the file and hands it to PostgreSQL.
    fn locate_wal_archive() -> Result<WalArchive, PluginError> {
        let mut argv = vec!["pgbackrest".to_string()];
        argv.extend(common_args()?);
        argv.extend(["archive-get".into(), "%f".into(), "%p".into()]);
        Ok(WalArchive {
            directory: None,
            fetch: Some(WalFetchCommand {
                target: None,
                argv,
                partial_argv: None,
                // archive-get's status for a file the archive does not have.
                missing_status: Some(1),
            }),
            store: None,
        })
    }
}

pgclone_plugin_sdk::export_source!(PgBackRest);
