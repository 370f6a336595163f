//! pgclone's Barman backup source.
//!
//! Everything it learns comes from `barman` commands run over ssh on the Barman
//! host (never from Barman's catalogue files, whose layout changed in Barman
//! 3.13.2); the copy itself is a plan of `copy-tree` steps the host runs with
//! parallel rsync streams, or for a compressed (tar-format) backup a plan of
//! `unpack-archive` steps the host streams and unpacks in parallel.

pub mod parse;
mod plan;

/// The property tests' configuration and mutations, shared with the host.
#[cfg(test)]
#[path = "../../../contract/src/fuzz.rs"]
mod fuzz;

use std::cell::RefCell;

use pgclone_plugin_sdk::host;
use pgclone_plugin_sdk::source::Guest;
use pgclone_plugin_sdk::types::{
    BackupDescription, BackupFormat, CloneRequest, ErrorKind, LocalPath, LogLevel, PathRoot,
    PlanStep, PluginError, PluginInfo, RemoteWalCommand, WalArchive, WalDirectory, WalFetchCommand,
    WalLayout, WalLocation, WriteFileStep,
};

/// The logical remote target the operator maps to `barman_host`.
const TARGET: &str = "barman";

pgclone_plugin_sdk::manifest! {
    name: "barman",
    version: env!("CARGO_PKG_VERSION"),
    vendor: "pgclone",
    license: "Apache-2.0",
    description: "Base backups and WAL from a Barman server, over ssh",
    provides: ["base-backup", "wal"],
    needs_upstream: false,
    capabilities: [
        "remote-run:barman:barman",
        "remote-run:barman:rsync",
        "remote-run:barman:cat",
        "remote-run:barman:tar",
        "read-config:barman_host",
        "read-config:barman_server",
        "read-config:barman_config",
        "read-config:tablespace_mapping",
    ],
}

struct Barman;

fn err(
    kind: ErrorKind,
    message: String,
    detail: Option<String>,
    hint: Option<&str>,
) -> PluginError {
    PluginError {
        kind,
        message,
        detail,
        hint: hint.map(str::to_string),
    }
}

fn setting(key: &str) -> Result<String, PluginError> {
    host::config_get(key)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            err(
                ErrorKind::InvalidConfig,
                format!("{key} is not set"),
                None,
                Some("set barman_host and barman_server in the configuration file"),
            )
        })
}

/// Runs `barman [--config FILE] ARGS...` on the Barman host, turning failures
/// into distinct errors that show what ssh or barman said.
fn barman(args: &[&str]) -> Result<String, PluginError> {
    let mut argv = barman_argv()?;
    argv.extend(args.iter().map(|a| a.to_string()));
    let out = host::run_remote(TARGET, &argv)?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let barman_host = host::config_get("barman_host")?.unwrap_or_default();
    match out.status {
        Some(0) => Ok(stdout),
        None => Err(err(
            ErrorKind::Failed,
            "ssh to the Barman host was killed".into(),
            Some(stderr),
            None,
        )),
        Some(255) => {
            let (kind, hint) = if stderr.contains("Permission denied")
                || stderr.contains("Host key verification")
            {
                (
                    ErrorKind::AuthFailed,
                    format!("check the ssh key of this user for the Barman host (ssh -o BatchMode=yes {barman_host} true)"),
                )
            } else {
                (
                    ErrorKind::Unreachable,
                    "check barman_host, and the Host block for it in ~/.ssh/config (port, user)"
                        .to_string(),
                )
            };
            Err(err(
                kind,
                format!("could not connect to the Barman host \"{barman_host}\" over ssh"),
                Some(stderr),
                Some(&hint),
            ))
        }
        Some(127) => Err(err(
            ErrorKind::NotFound,
            format!("barman is not installed on \"{barman_host}\""),
            Some(stderr),
            Some("barman_host must name the host where Barman runs"),
        )),
        Some(code) => {
            let text = if stderr.is_empty() {
                stdout.trim().to_string()
            } else {
                stderr
            };
            if text.contains("Unknown server") {
                Err(err(
                    ErrorKind::NotFound,
                    format!("Barman on \"{barman_host}\" has no server \"{}\"", args.get(2).or(args.get(1)).unwrap_or(&"")),
                    Some(text),
                    Some("barman_server must match a server section in Barman's configuration (barman list-servers)"),
                ))
            } else if text.contains("Unknown backup") {
                Err(err(
                    ErrorKind::NotFound,
                    "no such backup in Barman".into(),
                    Some(text),
                    Some("list them with barman list-backups SERVER"),
                ))
            } else if text.contains("Multiple backups found matching name") {
                Err(err(
                    ErrorKind::InvalidConfig,
                    format!(
                        "backup name \"{}\" is not unique in Barman",
                        args.get(2).unwrap_or(&"")
                    ),
                    Some(text),
                    Some("give --backup-id one of the backup ids Barman lists"),
                ))
            } else {
                Err(err(
                    ErrorKind::Failed,
                    format!(
                        "barman {} failed with status {code}",
                        args.first().unwrap_or(&"")
                    ),
                    Some(text),
                    None,
                ))
            }
        }
    }
}

thread_local! {
    /// `barman show-backup` outputs this instance has read, by server and
    /// backup: the host calls `check` and `plan-clone` on one instance, and
    /// each barman call costs a Python start on the Barman host.
    static SHOWN: RefCell<Vec<(String, String, String)>> = const { RefCell::new(Vec::new()) };
}

/// `barman show-backup SERVER ID`, read once per instance.
fn show_backup(server: &str, id: &str) -> Result<String, PluginError> {
    let known = SHOWN.with(|s| {
        s.borrow()
            .iter()
            .find(|(sv, i, _)| sv == server && i == id)
            .map(|(_, _, text)| text.clone())
    });
    if let Some(text) = known {
        return Ok(text);
    }
    let text = barman(&["show-backup", server, id])?;
    remember_shown(server, id, &text);
    Ok(text)
}

/// Keeps `text` as what `show-backup` says of `id` (also under the id a
/// name or shortcut resolved to).
fn remember_shown(server: &str, id: &str, text: &str) {
    SHOWN.with(|s| s.borrow_mut().push((server.into(), id.into(), text.into())));
}

/// Parses what `show-backup` said of `id`.
fn parse_shown(text: &str, id: &str) -> Result<parse::ShownBackup, PluginError> {
    parse::show_backup(text).map_err(|problem| {
        err(
            ErrorKind::InvalidBackup,
            format!("cannot understand barman show-backup for \"{id}\""),
            Some(problem),
            None,
        )
    })
}

/// How the user's Barman names the command that restores a backup: `barman
/// recover`, renamed `barman restore` in Barman 3.12 (asked only for a
/// message: each barman call costs a Python start).
fn restore_command_name() -> String {
    match barman(&["--version"])
        .ok()
        .as_deref()
        .and_then(parse::barman_version)
    {
        Some(v) if v >= (3, 12) => "barman restore".into(),
        Some(_) => "barman recover".into(),
        None => "barman restore (barman recover before Barman 3.12)".into(),
    }
}

/// A backup id, name or shortcut Barman does not know: what it has instead.
fn unknown_backup(server: &str, wanted: &str, barman_said: String) -> PluginError {
    let listing = barman(&["list-backups", server]).unwrap_or_default();
    let listing = listing.trim();
    let detail = if listing.is_empty() {
        format!("{barman_said}\nBarman has no backup of server \"{server}\"")
    } else {
        format!("{barman_said}\nbackups of server \"{server}\" (id, 'name', F full / I incremental):\n{listing}")
    };
    err(
        ErrorKind::NotFound,
        format!("Barman has no backup \"{wanted}\" of server \"{server}\""),
        Some(detail),
        Some("give --backup-id a backup id or name from this list, or latest or oldest"),
    )
}

impl Guest for Barman {
    fn describe() -> PluginInfo {
        pgclone_plugin_sdk::describe(MANIFEST)
    }

    fn check(request: CloneRequest) -> Result<BackupDescription, PluginError> {
        let server = setting("barman_server")?;
        setting("barman_host")?;
        let id = request.backup_id.clone().unwrap_or_else(|| "latest".into());
        // An empty catalogue answers "Unknown backup 'latest'": only then ask
        // for the list, to say what it means (each barman call costs a Python start).
        // Barman resolves ids, names (`barman backup --name`) and shortcuts
        // (latest, oldest, ...) itself.
        let shown = match show_backup(&server, &id) {
            Ok(s) => s,
            Err(e) if e.kind == ErrorKind::NotFound && request.backup_id.is_none() => {
                let list = barman(&["list-backups", "--minimal", &server])?;
                if list.trim().is_empty() {
                    return Err(err(
                        ErrorKind::NotFound,
                        format!("Barman has no backup of server \"{server}\""),
                        None,
                        Some("take one with barman backup SERVER, or clone with --without-barman"),
                    ));
                }
                return Err(e);
            }
            Err(e) if e.kind == ErrorKind::NotFound && e.message == "no such backup in Barman" => {
                return Err(unknown_backup(&server, &id, e.detail.unwrap_or_default()));
            }
            Err(e) => return Err(e),
        };
        let b = parse_shown(&shown, &id)?;
        if b.id != id {
            remember_shown(&server, &b.id, &shown);
        }
        if b.status != "DONE" {
            return Err(err(
                ErrorKind::InvalidBackup,
                format!(
                    "backup {} of server \"{server}\" has status {}, not DONE",
                    b.id, b.status
                ),
                None,
                Some("choose a completed backup with --backup-id"),
            ));
        }
        if let Some(sysid) = &request.upstream_system_identifier {
            if *sysid != b.system_id {
                return Err(err(
                    ErrorKind::InvalidBackup,
                    format!("backup {} belongs to another database system", b.id),
                    Some(format!(
                        "its system identifier is {}, the upstream's is {sysid}",
                        b.system_id
                    )),
                    Some("check barman_server: it must be the Barman server of this cluster"),
                ));
            }
        }
        if let Some(v) = request.upstream_version {
            if v / 10000 != b.version / 10000 {
                return Err(err(
                    ErrorKind::InvalidBackup,
                    format!(
                        "backup {} is of PostgreSQL {}, the upstream runs {}",
                        b.id,
                        b.version / 10000,
                        v / 10000
                    ),
                    None,
                    None,
                ));
            }
        }
        // An incremental backup's clone copies its whole chain: that is its
        // size (the copy's total, the room the check asks for).
        let mut size_bytes = b.size_bytes;
        if b.is_incremental() {
            let chain = plan::incremental_chain(&server, b.clone())?;
            size_bytes = chain.iter().map(|b| b.size_bytes).sum();
            let ids: Vec<&str> = chain.iter().map(|b| b.id.as_str()).collect();
            host::log(
                LogLevel::Notice,
                &format!(
                    "backup {} is an incremental backup: its chain ({}) is combined with pg_combinebackup",
                    b.id,
                    ids.join(" <- ")
                ),
            );
        }
        Ok(BackupDescription {
            id: b.id,
            system_identifier: b.system_id,
            server_version: b.version,
            timeline: b.timeline,
            begin_wal: b.begin_wal,
            end_wal: b.end_wal,
            begin_lsn: b.begin_lsn,
            end_lsn: b.end_lsn,
            size_bytes,
            tablespaces: b.tablespaces,
            // Barman 3.4 does not say it: plan-clone reads it from the files.
            format: if b.compression.is_some() {
                BackupFormat::Tar
            } else {
                BackupFormat::Plain
            },
            compression: b.compression,
        })
    }

    fn plan_clone(
        _request: CloneRequest,
        backup: BackupDescription,
    ) -> Result<Vec<PlanStep>, PluginError> {
        let server = setting("barman_server")?;
        let shown = show_backup(&server, &backup.id)?;
        let this = parse_shown(&shown, &backup.id)?;
        if this.is_incremental() {
            return plan::incremental_plan(&server, this);
        }
        let listing = barman(&["list-files", "--target", "data", &server, &backup.id])?;
        let tree =
            parse::list_files(&listing, &backup.id, &backup.tablespaces).map_err(|problem| {
                err(
                    ErrorKind::InvalidBackup,
                    "cannot understand barman list-files".into(),
                    Some(problem),
                    None,
                )
            })?;
        // Barman 3.4's show-backup does not say that a backup is compressed;
        // its files do: tar archives instead of a data directory.
        let mut steps = if parse::archive_format(&tree.data_files).is_some() {
            plan::archive_steps(&backup, &tree)?
        } else {
            plan::copy_steps(tree)
        };
        steps.extend(plan::skeleton_steps());
        if !backup.tablespaces.is_empty() {
            // PostgreSQL creates pg_tblspc links from this file when it starts
            // from the backup label: the mapped locations.
            let mappings: Vec<(String, String)> = host::config_get_all("tablespace_mapping")?
                .iter()
                .filter_map(|m| {
                    m.split_once('=')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                })
                .collect();
            let contents: String = backup
                .tablespaces
                .iter()
                .map(|t| {
                    let loc = mappings
                        .iter()
                        .find(|(old, _)| *old == t.location)
                        .map(|(_, new)| new.clone())
                        .unwrap_or_else(|| t.location.clone());
                    format!("{} {}\n", t.oid, loc)
                })
                .collect();
            steps.push(PlanStep::WriteFile(WriteFileStep {
                path: LocalPath {
                    root: PathRoot::DataDirectory,
                    path: "tablespace_map".into(),
                },
                contents,
                mode: 0o600,
            }));
        }
        Ok(steps)
    }

    fn locate_wal(name: String) -> Result<WalLocation, PluginError> {
        let mut argv = barman_argv()?;
        argv.extend(["get-wal".into(), setting("barman_server")?, name]);
        Ok(WalLocation::RemoteCommand(RemoteWalCommand {
            target: TARGET.into(),
            argv,
        }))
    }

    /// Barman's WAL directory, read directly by the host (one `tar` per
    /// batch, no Barman process per segment), and `barman get-wal` for what
    /// the host cannot read there (`.partial` files, compressions it does not
    /// know).
    fn locate_wal_archive() -> Result<WalArchive, PluginError> {
        let server = setting("barman_server")?;
        let shown = barman(&["show-server", &server])?;
        let path = parse::wals_directory(&shown).ok_or_else(|| {
            err(
                ErrorKind::Failed,
                format!("barman show-server {server} did not name the WAL directory"),
                Some(shown.trim().chars().take(500).collect()),
                Some("check barman_server: it must be a server of this Barman host"),
            )
        })?;
        let get_wal = |partial: bool| -> Result<Vec<String>, PluginError> {
            let mut argv = barman_argv()?;
            argv.push("get-wal".into());
            if partial {
                argv.push("--partial".into());
            }
            argv.extend([server.clone(), "%f".into()]);
            Ok(argv)
        };
        Ok(WalArchive {
            directory: Some(WalDirectory {
                target: TARGET.into(),
                path,
                layout: WalLayout::ByLog,
            }),
            fetch: Some(WalFetchCommand {
                target: Some(TARGET.into()),
                argv: get_wal(false)?,
                partial_argv: Some(get_wal(true)?),
                // barman get-wal's status for a file it does not have.
                missing_status: Some(1),
            }),
            store: None,
        })
    }
}

/// `barman`, with `--config FILE` when `barman_config` is set.
fn barman_argv() -> Result<Vec<String>, PluginError> {
    let mut argv = vec!["barman".to_string()];
    if let Some(cfg) = host::config_get("barman_config")?.filter(|c| !c.is_empty()) {
        argv.push("--config".into());
        argv.push(cfg);
    }
    Ok(argv)
}

pgclone_plugin_sdk::export_source!(Barman);
