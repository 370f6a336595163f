//! The released contract `pgclone:plugin@1.2.0` (`wit/1.2.0/`), frozen: its
//! bindings, and its values converted to and from the current contract's
//! types.
//!
//! 1.3.0 only added to it (object stores: the `store-read` capability,
//! `host.store-list` and `host.store-read`, the `unpack-objects` step, a
//! `wal-archive`'s `store`; `clone-request.placed-tablespaces`; the `snappy`
//! and `xz` compressions), so every 1.2.0 value has a current equivalent.
//! But records and variants grew, so its `types` are its own, converted here
//! (1.1.0 shares them: `v1_1.rs`). Its `host` imports are served by the
//! current host calls: the linker matches `@1.2.0` to `@1.3.0` by semver,
//! and the functions 1.2.0 knows take and return types 1.3.0 left alone.

use super::current::{policy_api as new_policy, types as new};
use super::Conv;

pub mod source {
    wasmtime::component::bindgen!({
        world: "backup-source",
        path: "../wit/1.2.0",
    });
}

pub mod policy {
    wasmtime::component::bindgen!({
        world: "recovery-policy",
        path: "../wit/1.2.0",
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

use policy_api as old_policy;
use types as old;

entry_points!();

/// Both directions.
macro_rules! both {
    ($kind:ident $t:ident { $($f:ident),* $(,)? }) => {
        $kind!(old::$t => new { $($f),* });
        $kind!(new::$t => old { $($f),* });
    };
}

both!(record ConnParam { key, value });
both!(record NodeIdentity { node_id, node_name });
both!(record Tablespace { oid, name, location });
both!(cases BackupFormat { Plain, Tar });
both!(record BackupDescription {
    id, system_identifier, server_version, timeline, begin_wal, end_wal,
    begin_lsn, end_lsn, size_bytes, tablespaces, format, compression,
});
both!(cases ErrorKind {
    InvalidConfig, Unreachable, AuthFailed, NotFound, InvalidBackup,
    Unsupported, Denied, Failed, Internal,
});
both!(record PluginError { kind, message, detail, hint });
// `placed-tablespaces` is new in 1.3.0: a 1.2.0 source reads
// `tablespace_mapping` itself.
record!(new::CloneRequest => old {
    node, data_directory, upstream, replication_user, upstream_version,
    upstream_system_identifier, upstream_tablespaces, backup_id,
    fast_checkpoint, slot_name, interactive,
});

impl Conv<new::Provides> for old::Provides {
    fn conv(self) -> new::Provides {
        let mut p = new::Provides::empty();
        if self.contains(old::Provides::BASE_BACKUP) {
            p |= new::Provides::BASE_BACKUP;
        }
        if self.contains(old::Provides::WAL) {
            p |= new::Provides::WAL;
        }
        p
    }
}

record!(old::RemoteProgram => new { target, program });

impl Conv<new::Capability> for old::Capability {
    fn conv(self) -> new::Capability {
        match self {
            old::Capability::RemoteRun(r) => new::Capability::RemoteRun(r.conv()),
            old::Capability::LocalRun(p) => new::Capability::LocalRun(p),
            old::Capability::ReadConfig(k) => new::Capability::ReadConfig(k),
        }
    }
}

record!(old::PluginInfo => new {
    name, version, vendor, license, description, provides, needs_upstream, capabilities,
});

impl Conv<new::PathRoot> for old::PathRoot {
    fn conv(self) -> new::PathRoot {
        match self {
            old::PathRoot::DataDirectory => new::PathRoot::DataDirectory,
            old::PathRoot::Tablespace(oid) => new::PathRoot::Tablespace(oid),
            old::PathRoot::Staging => new::PathRoot::Staging,
        }
    }
}

record!(old::LocalPath => new { root, path });
record!(old::RunLocalStep => new { program, args, uses_upstream_password, description });
record!(old::CopyTreeStep => new { target, remote_path, local, files, exclude });
record!(old::CreateDirStep => new { path, mode });
record!(old::WriteFileStep => new { path, contents, mode });
cases!(old::ArchiveCompression => new { Gzip, Lz4, Zstd, Bzip2 });
record!(old::UnpackArchiveStep => new { target, remote_path, compression, local, size_bytes });
record!(old::CombineBackupsStep => new { backups });

impl Conv<new::PlanStep> for old::PlanStep {
    fn conv(self) -> new::PlanStep {
        match self {
            old::PlanStep::RunLocal(s) => new::PlanStep::RunLocal(s.conv()),
            old::PlanStep::CopyTree(s) => new::PlanStep::CopyTree(s.conv()),
            old::PlanStep::CreateDir(s) => new::PlanStep::CreateDir(s.conv()),
            old::PlanStep::WriteFile(s) => new::PlanStep::WriteFile(s.conv()),
            old::PlanStep::UnpackArchive(s) => new::PlanStep::UnpackArchive(s.conv()),
            old::PlanStep::CombineBackups(s) => new::PlanStep::CombineBackups(s.conv()),
        }
    }
}

record!(old::RemoteWalFile => new { target, path, compression });
record!(old::RemoteWalCommand => new { target, argv });

impl Conv<new::WalLocation> for old::WalLocation {
    fn conv(self) -> new::WalLocation {
        match self {
            old::WalLocation::RemoteFile(f) => new::WalLocation::RemoteFile(f.conv()),
            old::WalLocation::RemoteCommand(c) => new::WalLocation::RemoteCommand(c.conv()),
            old::WalLocation::Unavailable => new::WalLocation::Unavailable,
        }
    }
}

cases!(old::WalLayout => new { Flat, ByLog });
record!(old::WalDirectory => new { target, path, layout });
record!(old::WalFetchCommand => new { target, argv, partial_argv, missing_status });

impl Conv<new::WalArchive> for old::WalArchive {
    fn conv(self) -> new::WalArchive {
        new::WalArchive {
            directory: self.directory.conv(),
            fetch: self.fetch.conv(),
            store: None,
        }
    }
}

// The policy types live in the policy interface's module; these name it.
macro_rules! cases_policy {
    (old :: $t:ident => new { $($c:ident),* }) => { cases!(old_policy::$t => new_policy { $($c),* }); };
    (new :: $t:ident => old { $($c:ident),* }) => { cases!(new_policy::$t => old_policy { $($c),* }); };
}
macro_rules! record_policy {
    (old :: $t:ident => new { $($f:ident),* }) => { record!(old_policy::$t => new_policy { $($f),* }); };
    (new :: $t:ident => old { $($f:ident),* }) => { record!(new_policy::$t => old_policy { $($f),* }); };
}

record!(new_policy::RecoveryFacts => old_policy {
    server_version, node_name, upstream, replication_user, slot_name, restore_command,
    recovery_min_apply_delay, archive_cleanup_command, passfile, password,
});
both!(cases_policy SettingsFile { RecoveryConf, PostgresqlAutoConf });
both!(cases_policy SignalFile { Standby, Recovery });
both!(record_policy Setting { name, value });
both!(record_policy RecoveryConfig { file, settings, signal_files });
