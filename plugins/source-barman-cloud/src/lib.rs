//! pgclone's barman-cloud backup source.
//!
//! It reads what barman-cloud-backup and barman-cloud-wal-archive wrote to an
//! object store, through the operator's store named `barman-cloud` (whose
//! root is the user's `barman_cloud_url`, e.g. `s3://bucket/prefix`: the host
//! resolves it, with the endpoint, provider and credentials; this plugin sees
//! none of them). It lists and reads only small metadata (`backup.info`);
//! the archives are unpacked by the host (`unpack-objects`) and WAL is
//! fetched by the host from `SERVER/wals/` (a `wal-store`).

pub mod choose;
pub mod info;
pub mod layout;
mod plan;

/// The property tests' configuration and mutations, shared with the host.
#[cfg(test)]
#[path = "../../../contract/src/fuzz.rs"]
mod fuzz;

use pgclone_plugin_sdk::host;
use pgclone_plugin_sdk::source::Guest;
use pgclone_plugin_sdk::types::{
    BackupDescription, BackupFormat, CloneRequest, ErrorKind, PlanStep, PluginError, PluginInfo,
    WalArchive, WalLayout, WalLocation, WalStore,
};

use choose::{err, Read};

/// The operator's store this plugin reads (`store-read:barman-cloud`).
pub const STORE: &str = "barman-cloud";

/// The bound on one `backup.info` (barman-cloud's are about 1.5 KiB).
const INFO_MAX: u32 = 64 * 1024;

pgclone_plugin_sdk::manifest! {
    name: "barman-cloud",
    version: env!("CARGO_PKG_VERSION"),
    vendor: "pgclone",
    license: "Apache-2.0",
    description: "Base backups and WAL that barman-cloud wrote to S3, Azure Blob Storage or Google Cloud Storage",
    provides: ["base-backup", "wal"],
    needs_upstream: false,
    capabilities: [
        "store-read:barman-cloud",
        "read-config:barman_cloud_server",
    ],
}

struct BarmanCloud;

/// `barman_cloud_server`: barman-cloud's SERVER_NAME, one word of the keys.
fn server() -> Result<String, PluginError> {
    let server = host::config_get("barman_cloud_server")?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            err(
                ErrorKind::InvalidConfig,
                "barman_cloud_server is not set".into(),
                None,
                Some("set barman_cloud_server to the SERVER_NAME given to barman-cloud-backup"),
            )
        })?;
    if !layout::is_name(&server) {
        return Err(err(
            ErrorKind::InvalidConfig,
            format!("barman_cloud_server \"{server}\" is not a server name barman-cloud writes"),
            None,
            Some("give the SERVER_NAME of barman-cloud-backup: letters, digits, _, - and ."),
        ));
    }
    Ok(server)
}

/// The backups of `server` in the store, sorted; a clear error when there
/// are none, naming the servers the store has.
fn backup_ids(server: &str) -> Result<Vec<String>, PluginError> {
    let base = layout::base_prefix(server);
    let listing = host::store_list(STORE, &base, true)?;
    let ids = layout::backup_ids(&base, &listing.prefixes);
    if !ids.is_empty() {
        return Ok(ids);
    }
    // Asked only now: what the store holds instead.
    let servers: Vec<String> = host::store_list(STORE, "", true)
        .map(|l| {
            l.prefixes
                .iter()
                .filter_map(|p| p.strip_suffix('/'))
                .filter(|p| layout::is_name(p))
                .take(20)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Err(err(
        ErrorKind::NotFound,
        format!("the barman-cloud store has no backup of server \"{server}\""),
        Some(if servers.is_empty() {
            "the store holds no server directory".into()
        } else {
            format!("server directories in the store: {}", servers.join(", "))
        }),
        Some("check barman_cloud_server (barman-cloud's SERVER_NAME) and barman_cloud_url, or take a backup with barman-cloud-backup"),
    ))
}

/// Reads and parses the `backup.info` of backup `id`. A missing file is
/// `Missing`; one that is too large or does not parse is `Unreadable`;
/// a store that cannot be reached is an error.
fn read_info(server: &str, id: &str) -> Result<Read, PluginError> {
    let key = format!("{}backup.info", layout::backup_prefix(server, id));
    match host::store_read(STORE, &key, INFO_MAX) {
        Ok(bytes) => Ok(match std::str::from_utf8(&bytes) {
            Err(_) => Read::Unreadable("backup.info is not UTF-8".into()),
            Ok(text) => match info::parse(id, text) {
                Ok(b) => Read::Found(Box::new(b)),
                Err(problem) => Read::Unreadable(problem),
            },
        }),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(Read::Missing),
        Err(e)
            if matches!(
                e.kind,
                ErrorKind::Failed | ErrorKind::InvalidBackup | ErrorKind::Internal
            ) =>
        {
            Ok(Read::Unreadable(e.message))
        }
        Err(e) => Err(e),
    }
}

/// The archives of backup `id` with tablespaces `oids`, from one listing of
/// its directory.
fn archives(server: &str, id: &str, oids: &[u32]) -> Result<Vec<layout::Archive>, PluginError> {
    let prefix = layout::backup_prefix(server, id);
    let listing = host::store_list(STORE, &prefix, true)?;
    layout::archives(&prefix, &listing.objects, oids).map_err(|problem| {
        err(
            ErrorKind::InvalidBackup,
            format!("backup {id} of server \"{server}\" is incomplete in the barman-cloud store"),
            Some(problem),
            Some("choose another backup with --backup-id"),
        )
    })
}

impl Guest for BarmanCloud {
    fn describe() -> PluginInfo {
        pgclone_plugin_sdk::describe(MANIFEST)
    }

    fn check(request: CloneRequest) -> Result<BackupDescription, PluginError> {
        let server = server()?;
        let wanted = choose::wanted(request.backup_id.as_deref())?;
        let ids = backup_ids(&server)?;
        let b = choose::choose(&server, &wanted, &ids, |id| read_info(&server, id))?;
        if b.snapshot {
            return Err(err(
                ErrorKind::Unsupported,
                format!("backup {} of server \"{server}\" is a snapshot backup: its data is in disk snapshots, not in the store", b.id),
                None,
                Some("restore it with barman-cloud-restore --snapshot-recovery-instance, or choose another backup with --backup-id"),
            ));
        }
        // complete() held for the chosen backup: every field below is set.
        let system_id = b.system_id.clone().unwrap_or_default();
        let version = b.version.unwrap_or(0);
        if let Some(sysid) = &request.upstream_system_identifier {
            if *sysid != system_id {
                return Err(err(
                    ErrorKind::InvalidBackup,
                    format!("backup {} belongs to another database system", b.id),
                    Some(format!(
                        "its system identifier is {system_id}, the upstream's is {sysid}"
                    )),
                    Some("check barman_cloud_server and barman_cloud_url: they must name this cluster's backups"),
                ));
            }
        }
        if let Some(v) = request.upstream_version {
            if v / 10000 != version / 10000 {
                return Err(err(
                    ErrorKind::InvalidBackup,
                    format!(
                        "backup {} is of PostgreSQL {}, the upstream runs {}",
                        b.id,
                        version / 10000,
                        v / 10000
                    ),
                    None,
                    None,
                ));
            }
        }
        let oids: Vec<u32> = b.tablespaces.iter().map(|t| t.oid).collect();
        let archives = archives(&server, &b.id, &oids)?;
        Ok(BackupDescription {
            id: b.id,
            system_identifier: system_id,
            server_version: version,
            timeline: b.timeline.unwrap_or(0),
            begin_wal: b.begin_wal.unwrap_or_default(),
            end_wal: b.end_wal.unwrap_or_default(),
            begin_lsn: b.begin_lsn.unwrap_or_default(),
            end_lsn: b.end_lsn.unwrap_or_default(),
            size_bytes: b.size_bytes,
            tablespaces: b.tablespaces,
            format: BackupFormat::Tar,
            compression: Some(layout::compression_name(archives[0].compression).into()),
        })
    }

    fn plan_clone(
        request: CloneRequest,
        backup: BackupDescription,
    ) -> Result<Vec<PlanStep>, PluginError> {
        let server = server()?;
        if !layout::is_name(&backup.id) {
            return Err(err(
                ErrorKind::Internal,
                format!("\"{}\" is not a backup this source described", backup.id),
                None,
                None,
            ));
        }
        let oids: Vec<u32> = backup.tablespaces.iter().map(|t| t.oid).collect();
        let archives = archives(&server, &backup.id, &oids)?;
        Ok(plan::steps(
            STORE,
            &backup,
            archives,
            &request.placed_tablespaces,
        ))
    }

    /// Every file is fetched by the host from the store (`locate-wal-archive`).
    fn locate_wal(_name: String) -> Result<WalLocation, PluginError> {
        Ok(WalLocation::Unavailable)
    }

    /// `SERVER/wals/` in Barman's by-log layout, each file plain or with the
    /// suffix of a compression barman-cloud-wal-archive writes.
    fn locate_wal_archive() -> Result<WalArchive, PluginError> {
        Ok(WalArchive {
            directory: None,
            fetch: None,
            store: Some(WalStore {
                store: STORE.into(),
                prefix: layout::wal_prefix(&server()?),
                layout: WalLayout::ByLog,
                suffixes: layout::wal_suffixes(),
            }),
        })
    }
}

pgclone_plugin_sdk::export_source!(BarmanCloud);

#[cfg(test)]
mod tests;
