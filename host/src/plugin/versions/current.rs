//! The current contract, `pgclone:plugin@1.3.0` (`wit/`): its bindings for
//! both worlds, and the one place its types meet the host's own
//! (`crate::contract`): what the host asks is converted into them, what a
//! plugin answers out of them. Plugins of released versions are converted
//! to these types first (their own files beside this one).
//!
//! Both worlds import the same `types` and `host` interfaces: the policy
//! world reuses the source world's, so that one linker serves both.

use wasmtime::component::{HasSelf, Linker};

use super::super::state::PluginState;
use crate::contract::policy as hp;
use crate::contract::source as hs;
use crate::contract::{ErrorKind, PluginError};

pub mod source {
    wasmtime::component::bindgen!({
        world: "backup-source",
        path: "../wit",
    });
}

pub mod policy {
    wasmtime::component::bindgen!({
        world: "recovery-policy",
        path: "../wit",
        with: {
            "pgclone:plugin/types": super::source::pgclone::plugin::types,
            "pgclone:plugin/host": super::source::pgclone::plugin::host,
        },
    });
}

pub use policy::exports::pgclone::plugin::policy as policy_api;
pub use source::exports::pgclone::plugin::source as source_api;
pub use source::pgclone::plugin::host as host_api;
pub use source::pgclone::plugin::types;

use policy_api as wp;
use types as wt;

/// The host calls (`host_calls.rs`), for plugins of this version and of
/// every released one whose `host` interface the linker matches to it.
pub(super) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    source::BackupSource::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
}

entry_points!();

/// Host → contract.
pub trait ToWit<T> {
    fn to_wit(&self) -> T;
}

fn all<H: ToWit<W>, W>(v: &[H]) -> Vec<W> {
    v.iter().map(ToWit::to_wit).collect()
}

fn from_all<W, H: From<W>>(v: Vec<W>) -> Vec<H> {
    v.into_iter().map(H::from).collect()
}

impl ToWit<wt::ConnParam> for hs::ConnParam {
    fn to_wit(&self) -> wt::ConnParam {
        wt::ConnParam {
            key: self.key.clone(),
            value: self.value.clone(),
        }
    }
}

impl ToWit<wt::Tablespace> for hs::Tablespace {
    fn to_wit(&self) -> wt::Tablespace {
        wt::Tablespace {
            oid: self.oid,
            name: self.name.clone(),
            location: self.location.clone(),
        }
    }
}

impl From<wt::Tablespace> for hs::Tablespace {
    fn from(t: wt::Tablespace) -> Self {
        hs::Tablespace {
            oid: t.oid,
            name: t.name,
            location: t.location,
        }
    }
}

impl ToWit<wt::CloneRequest> for hs::CloneRequest {
    fn to_wit(&self) -> wt::CloneRequest {
        wt::CloneRequest {
            node: wt::NodeIdentity {
                node_id: self.node.node_id,
                node_name: self.node.node_name.clone(),
            },
            data_directory: self.data_directory.clone(),
            upstream: all(&self.upstream),
            replication_user: self.replication_user.clone(),
            upstream_version: self.upstream_version,
            upstream_system_identifier: self.upstream_system_identifier.clone(),
            upstream_tablespaces: all(&self.upstream_tablespaces),
            backup_id: self.backup_id.clone(),
            fast_checkpoint: self.fast_checkpoint,
            slot_name: self.slot_name.clone(),
            interactive: self.interactive,
            placed_tablespaces: self
                .placed_tablespaces
                .iter()
                .map(|t| wt::PlacedTablespace {
                    oid: t.oid,
                    location: t.location.clone(),
                })
                .collect(),
        }
    }
}

impl ToWit<wt::BackupDescription> for hs::Backup {
    fn to_wit(&self) -> wt::BackupDescription {
        wt::BackupDescription {
            id: self.id.clone(),
            system_identifier: self.system_identifier.clone(),
            server_version: self.server_version,
            timeline: self.timeline,
            begin_wal: self.begin_wal.clone(),
            end_wal: self.end_wal.clone(),
            begin_lsn: self.begin_lsn.clone(),
            end_lsn: self.end_lsn.clone(),
            size_bytes: self.size_bytes,
            tablespaces: all(&self.tablespaces),
            format: match self.format {
                hs::BackupFormat::Plain => wt::BackupFormat::Plain,
                hs::BackupFormat::Tar => wt::BackupFormat::Tar,
            },
            compression: self.compression.clone(),
        }
    }
}

impl From<wt::BackupDescription> for hs::Backup {
    fn from(b: wt::BackupDescription) -> Self {
        hs::Backup {
            id: b.id,
            system_identifier: b.system_identifier,
            server_version: b.server_version,
            timeline: b.timeline,
            begin_wal: b.begin_wal,
            end_wal: b.end_wal,
            begin_lsn: b.begin_lsn,
            end_lsn: b.end_lsn,
            size_bytes: b.size_bytes,
            tablespaces: from_all(b.tablespaces),
            format: match b.format {
                wt::BackupFormat::Plain => hs::BackupFormat::Plain,
                wt::BackupFormat::Tar => hs::BackupFormat::Tar,
            },
            compression: b.compression,
        }
    }
}

impl From<wt::LocalPath> for hs::LocalPath {
    fn from(p: wt::LocalPath) -> Self {
        hs::LocalPath {
            root: match p.root {
                wt::PathRoot::DataDirectory => hs::PathRoot::DataDirectory,
                wt::PathRoot::Tablespace(oid) => hs::PathRoot::Tablespace(oid),
                wt::PathRoot::Staging => hs::PathRoot::Staging,
            },
            path: p.path,
        }
    }
}

impl From<wt::ArchiveCompression> for hs::ArchiveCompression {
    fn from(c: wt::ArchiveCompression) -> Self {
        match c {
            wt::ArchiveCompression::Gzip => hs::ArchiveCompression::Gzip,
            wt::ArchiveCompression::Lz4 => hs::ArchiveCompression::Lz4,
            wt::ArchiveCompression::Zstd => hs::ArchiveCompression::Zstd,
            wt::ArchiveCompression::Bzip2 => hs::ArchiveCompression::Bzip2,
            wt::ArchiveCompression::Snappy => hs::ArchiveCompression::Snappy,
            wt::ArchiveCompression::Xz => hs::ArchiveCompression::Xz,
        }
    }
}

impl From<wt::PlanStep> for hs::PlanStep {
    fn from(s: wt::PlanStep) -> Self {
        match s {
            wt::PlanStep::RunLocal(r) => hs::PlanStep::RunLocal(hs::RunLocalStep {
                program: r.program,
                args: r.args,
                uses_upstream_password: r.uses_upstream_password,
                description: r.description,
            }),
            wt::PlanStep::CopyTree(c) => hs::PlanStep::CopyTree(hs::CopyTreeStep {
                target: c.target,
                remote_path: c.remote_path,
                local: c.local.into(),
                files: c.files,
                exclude: c.exclude,
            }),
            wt::PlanStep::CreateDir(d) => hs::PlanStep::CreateDir(hs::CreateDirStep {
                path: d.path.into(),
                mode: d.mode,
            }),
            wt::PlanStep::WriteFile(w) => hs::PlanStep::WriteFile(hs::WriteFileStep {
                path: w.path.into(),
                contents: w.contents,
                mode: w.mode,
            }),
            wt::PlanStep::UnpackArchive(u) => hs::PlanStep::UnpackArchive(hs::UnpackArchiveStep {
                target: u.target,
                remote_path: u.remote_path,
                compression: u.compression.map(Into::into),
                local: u.local.into(),
                size_bytes: u.size_bytes,
            }),
            wt::PlanStep::CombineBackups(c) => {
                hs::PlanStep::CombineBackups(hs::CombineBackupsStep {
                    backups: from_all(c.backups),
                })
            }
            wt::PlanStep::UnpackObjects(u) => hs::PlanStep::UnpackObjects(hs::UnpackObjectsStep {
                store: u.store,
                objects: u.objects,
                parts: match u.parts {
                    wt::ObjectParts::Separate => hs::ObjectParts::Separate,
                    wt::ObjectParts::Joined => hs::ObjectParts::Joined,
                },
                compression: u.compression.map(Into::into),
                local: u.local.into(),
                size_bytes: u.size_bytes,
            }),
        }
    }
}

impl From<wt::WalLocation> for hs::WalLocation {
    fn from(l: wt::WalLocation) -> Self {
        match l {
            wt::WalLocation::RemoteFile(f) => hs::WalLocation::RemoteFile(hs::RemoteWalFile {
                target: f.target,
                path: f.path,
                compression: f.compression,
            }),
            wt::WalLocation::RemoteCommand(c) => {
                hs::WalLocation::RemoteCommand(hs::RemoteWalCommand {
                    target: c.target,
                    argv: c.argv,
                })
            }
            wt::WalLocation::Unavailable => hs::WalLocation::Unavailable,
        }
    }
}

impl From<wt::WalLayout> for hs::WalLayout {
    fn from(l: wt::WalLayout) -> Self {
        match l {
            wt::WalLayout::Flat => hs::WalLayout::Flat,
            wt::WalLayout::ByLog => hs::WalLayout::ByLog,
        }
    }
}

impl From<wt::WalArchive> for hs::WalArchive {
    fn from(a: wt::WalArchive) -> Self {
        hs::WalArchive {
            directory: a.directory.map(|d| hs::WalDirectory {
                target: d.target,
                path: d.path,
                layout: d.layout.into(),
            }),
            store: a.store.map(|w| hs::WalStore {
                store: w.store,
                prefix: w.prefix,
                layout: w.layout.into(),
                suffixes: w
                    .suffixes
                    .into_iter()
                    .map(|x| (x.suffix, x.compression.map(Into::into)))
                    .collect(),
            }),
            fetch: a.fetch.map(|f| hs::WalFetchCommand {
                target: f.target,
                argv: f.argv,
                partial_argv: f.partial_argv,
                missing_status: f.missing_status,
            }),
        }
    }
}

impl From<wt::ErrorKind> for ErrorKind {
    fn from(k: wt::ErrorKind) -> Self {
        match k {
            wt::ErrorKind::InvalidConfig => ErrorKind::InvalidConfig,
            wt::ErrorKind::Unreachable => ErrorKind::Unreachable,
            wt::ErrorKind::AuthFailed => ErrorKind::AuthFailed,
            wt::ErrorKind::NotFound => ErrorKind::NotFound,
            wt::ErrorKind::InvalidBackup => ErrorKind::InvalidBackup,
            wt::ErrorKind::Unsupported => ErrorKind::Unsupported,
            wt::ErrorKind::Denied => ErrorKind::Denied,
            wt::ErrorKind::Failed => ErrorKind::Failed,
            wt::ErrorKind::Internal => ErrorKind::Internal,
        }
    }
}

impl From<wt::PluginError> for PluginError {
    fn from(e: wt::PluginError) -> Self {
        PluginError {
            kind: e.kind.into(),
            message: e.message,
            detail: e.detail,
            hint: e.hint,
        }
    }
}

impl ToWit<wp::RecoveryFacts> for hp::RecoveryFacts {
    fn to_wit(&self) -> wp::RecoveryFacts {
        wp::RecoveryFacts {
            server_version: self.server_version,
            node_name: self.node_name.clone(),
            upstream: all(&self.upstream),
            replication_user: self.replication_user.clone(),
            slot_name: self.slot_name.clone(),
            restore_command: self.restore_command.clone(),
            recovery_min_apply_delay: self.recovery_min_apply_delay.clone(),
            archive_cleanup_command: self.archive_cleanup_command.clone(),
            passfile: self.passfile.clone(),
            password: self.password.clone(),
        }
    }
}

impl ToWit<wp::RecoveryConfig> for hp::RecoveryConfig {
    fn to_wit(&self) -> wp::RecoveryConfig {
        wp::RecoveryConfig {
            file: match self.file {
                hp::SettingsFile::RecoveryConf => wp::SettingsFile::RecoveryConf,
                hp::SettingsFile::PostgresqlAutoConf => wp::SettingsFile::PostgresqlAutoConf,
            },
            settings: self
                .settings
                .iter()
                .map(|s| wp::Setting {
                    name: s.name.clone(),
                    value: s.value.clone(),
                })
                .collect(),
            signal_files: self
                .signal_files
                .iter()
                .map(|f| match f {
                    hp::SignalFile::Standby => wp::SignalFile::Standby,
                    hp::SignalFile::Recovery => wp::SignalFile::Recovery,
                })
                .collect(),
        }
    }
}

impl From<wp::RecoveryConfig> for hp::RecoveryConfig {
    fn from(c: wp::RecoveryConfig) -> Self {
        hp::RecoveryConfig {
            file: match c.file {
                wp::SettingsFile::RecoveryConf => hp::SettingsFile::RecoveryConf,
                wp::SettingsFile::PostgresqlAutoConf => hp::SettingsFile::PostgresqlAutoConf,
            },
            settings: c
                .settings
                .into_iter()
                .map(|s| hp::Setting {
                    name: s.name,
                    value: s.value,
                })
                .collect(),
            signal_files: c
                .signal_files
                .into_iter()
                .map(|f| match f {
                    wp::SignalFile::Standby => hp::SignalFile::Standby,
                    wp::SignalFile::Recovery => hp::SignalFile::Recovery,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What goes to a plugin and comes back is the same: no field is lost
    /// or swapped on the way.
    #[test]
    fn a_backup_and_a_recovery_configuration_survive_the_round_trip() {
        let backup = hs::Backup {
            id: "20260101T000000".into(),
            system_identifier: "7300000000000000001".into(),
            server_version: 170002,
            timeline: 3,
            begin_wal: "000000030000000000000010".into(),
            end_wal: "000000030000000000000011".into(),
            begin_lsn: "0/10000028".into(),
            end_lsn: "0/11000100".into(),
            size_bytes: 42,
            tablespaces: vec![hs::Tablespace {
                oid: 16400,
                name: "ts".into(),
                location: "/srv/ts".into(),
            }],
            format: hs::BackupFormat::Tar,
            compression: Some("gzip".into()),
        };
        assert_eq!(hs::Backup::from(backup.to_wit()), backup);
        let config = hp::RecoveryConfig {
            file: hp::SettingsFile::RecoveryConf,
            settings: vec![hp::Setting {
                name: "primary_conninfo".into(),
                value: "host=a".into(),
            }],
            signal_files: vec![hp::SignalFile::Recovery, hp::SignalFile::Standby],
        };
        assert_eq!(hp::RecoveryConfig::from(config.to_wit()), config);
    }
}
