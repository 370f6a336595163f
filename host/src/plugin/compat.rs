//! Plugins built against the released contracts `pgclone:plugin@1.0.0` and
//! `@1.1.0`: their values converted to and from the current contract's types,
//! so that the rest of the host knows one set of types. A 1.1.0 plugin shares
//! the current `types` (1.2.0 only added to them, see [`super::bindings`]);
//! only the types its `policy` interface defines are its own, converted at
//! the end of this file. 1.1.0 only added to 1.0.0 (the
//! `unpack-archive` plan step and its `archive-compression`), so every 1.0.0
//! value has a 1.1.0 equivalent; the reverse direction is needed only for what
//! the host passes in (requests, facts, the previous configuration, results of
//! host calls), none of which holds a plan step.

use super::bindings::v1_0::policy_api as old_policy;
use super::bindings::v1_0::types as old;
use super::bindings::{policy_api as new_policy, types as new};
use super::state::PluginState;

/// A conversion between the two contracts' types.
pub trait Conv<T> {
    fn conv(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => { $(impl Conv<$t> for $t { fn conv(self) -> $t { self } })* };
}
same!(String, u8, u32, u64, i32, bool);

impl<A: Conv<B>, B> Conv<Vec<B>> for Vec<A> {
    fn conv(self) -> Vec<B> {
        self.into_iter().map(Conv::conv).collect()
    }
}

impl<A: Conv<B>, B> Conv<Option<B>> for Option<A> {
    fn conv(self) -> Option<B> {
        self.map(Conv::conv)
    }
}

impl<A: Conv<B>, B, E: Conv<F>, F> Conv<Result<B, F>> for Result<A, E> {
    fn conv(self) -> Result<B, F> {
        self.map(Conv::conv).map_err(Conv::conv)
    }
}

/// A record with the same fields in both contracts, in one direction.
macro_rules! record {
    ($from:ident :: $t:ident => $to:ident { $($f:ident),* $(,)? }) => {
        impl Conv<$to::$t> for $from::$t {
            fn conv(self) -> $to::$t {
                $to::$t { $($f: self.$f.conv()),* }
            }
        }
    };
}

/// An enum with the same cases in both contracts, in one direction.
macro_rules! cases {
    ($from:ident :: $t:ident => $to:ident { $($c:ident),* $(,)? }) => {
        impl Conv<$to::$t> for $from::$t {
            fn conv(self) -> $to::$t {
                match self { $($from::$t::$c => $to::$t::$c),* }
            }
        }
    };
}

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

// A 1.0.0 plugin's `types` and `host` imports are served by the current
// implementation.
impl old::Host for PluginState {}

impl super::bindings::v1_0::host_api::Host for PluginState {
    fn log(&mut self, level: old::LogLevel, message: String) {
        super::bindings::host_api::Host::log(self, level.conv(), message)
    }

    fn run_remote(
        &mut self,
        target: String,
        argv: Vec<String>,
    ) -> Result<old::CommandOutput, old::PluginError> {
        super::bindings::host_api::Host::run_remote(self, target, argv).conv()
    }

    fn run_local(
        &mut self,
        program: String,
        args: Vec<String>,
    ) -> Result<old::CommandOutput, old::PluginError> {
        super::bindings::host_api::Host::run_local(self, program, args).conv()
    }

    fn config_get(&mut self, key: String) -> Result<Option<String>, old::PluginError> {
        super::bindings::host_api::Host::config_get(self, key).conv()
    }

    fn config_get_all(&mut self, key: String) -> Result<Vec<String>, old::PluginError> {
        super::bindings::host_api::Host::config_get_all(self, key).conv()
    }
}

// A 1.1.0 policy's own interface types: the same as today's.
use super::bindings::v1_1::policy_api as v11_policy;
same!(new::ConnParam, new::PluginError);
record!(new_policy::RecoveryFacts => v11_policy {
    server_version, node_name, upstream, replication_user, slot_name, restore_command,
    recovery_min_apply_delay, archive_cleanup_command, passfile, password,
});
cases!(v11_policy::SettingsFile => new_policy { RecoveryConf, PostgresqlAutoConf });
cases!(new_policy::SettingsFile => v11_policy { RecoveryConf, PostgresqlAutoConf });
cases!(v11_policy::SignalFile => new_policy { Standby, Recovery });
cases!(new_policy::SignalFile => v11_policy { Standby, Recovery });
record!(v11_policy::Setting => new_policy { name, value });
record!(new_policy::Setting => v11_policy { name, value });
record!(v11_policy::RecoveryConfig => new_policy { file, settings, signal_files });
record!(new_policy::RecoveryConfig => v11_policy { file, settings, signal_files });
