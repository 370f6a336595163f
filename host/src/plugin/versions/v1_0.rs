//! The released contract `pgclone:plugin@1.0.0` (`wit/1.0.0/`), frozen: its
//! bindings, and its values converted to and from the current contract's
//! types, so that the rest of the host knows one set of types.
//!
//! Later versions only added to 1.0.0 (1.1.0: the `unpack-archive` and
//! `combine-backups` plan steps, `archive-compression`, the `staging` path
//! root; 1.2.0: `locate-wal-archive`), so every 1.0.0 value has a current
//! equivalent; the reverse direction is needed only for what the host passes
//! in (requests, facts, the previous configuration, results of host calls),
//! none of which holds a plan step. A 1.0.0 plugin imports `types` and `host`
//! by their exact names (`pgclone:plugin/host@1.0.0`): they are linked here,
//! served by the current host calls.

use wasmtime::component::{HasSelf, Linker};

use super::super::state::PluginState;
use super::current::{host_api as new_host, policy_api as new_policy, types as new};
use super::Conv;

pub mod source {
    wasmtime::component::bindgen!({
        world: "backup-source",
        path: "../wit/1.0.0",
    });
}

pub mod policy {
    wasmtime::component::bindgen!({
        world: "recovery-policy",
        path: "../wit/1.0.0",
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

pub(super) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    source::BackupSource::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
}

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
record!(new::CloneRequest => old {
    node, data_directory, upstream, replication_user, upstream_version,
    upstream_system_identifier, upstream_tablespaces, backup_id,
    fast_checkpoint, slot_name, interactive,
});
record!(new::CommandOutput => old { status, stdout, stderr });
cases!(old::LogLevel => new { Debug, Info, Notice, Warning });

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
        }
    }
}

record!(old::LocalPath => new { root, path });
record!(old::RunLocalStep => new { program, args, uses_upstream_password, description });
record!(old::CopyTreeStep => new { target, remote_path, local, files, exclude });
record!(old::CreateDirStep => new { path, mode });
record!(old::WriteFileStep => new { path, contents, mode });

impl Conv<new::PlanStep> for old::PlanStep {
    fn conv(self) -> new::PlanStep {
        match self {
            old::PlanStep::RunLocal(s) => new::PlanStep::RunLocal(s.conv()),
            old::PlanStep::CopyTree(s) => new::PlanStep::CopyTree(s.conv()),
            old::PlanStep::CreateDir(s) => new::PlanStep::CreateDir(s.conv()),
            old::PlanStep::WriteFile(s) => new::PlanStep::WriteFile(s.conv()),
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

// Its `types` and `host` imports, served by the current implementation.
impl old::Host for PluginState {}

impl host_api::Host for PluginState {
    fn log(&mut self, level: old::LogLevel, message: String) {
        new_host::Host::log(self, level.conv(), message)
    }

    fn run_remote(
        &mut self,
        target: String,
        argv: Vec<String>,
    ) -> Result<old::CommandOutput, old::PluginError> {
        new_host::Host::run_remote(self, target, argv).conv()
    }

    fn run_local(
        &mut self,
        program: String,
        args: Vec<String>,
    ) -> Result<old::CommandOutput, old::PluginError> {
        new_host::Host::run_local(self, program, args).conv()
    }

    fn config_get(&mut self, key: String) -> Result<Option<String>, old::PluginError> {
        new_host::Host::config_get(self, key).conv()
    }

    fn config_get_all(&mut self, key: String) -> Result<Vec<String>, old::PluginError> {
        new_host::Host::config_get_all(self, key).conv()
    }
}
