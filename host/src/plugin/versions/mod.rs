//! Every contract version this host loads, one file each, and the one place
//! that tells them apart.
//!
//! [`current`] is the contract in `wit/` (1.3.0): its bindings, and the
//! conversions of its types to and from the host's own (`crate::contract`).
//! Each released version has a file of its own ([`v1_2`], [`v1_1`], [`v1_0`]) with its
//! frozen bindings (`wit/1.x.0/`) and the conversions of its types into the
//! current ones, sharing the current types and host calls (`with`) where the
//! interfaces are identical. The enums below hold a plugin's exports, one case
//! per version; each call has one arm per version, and speaks the current
//! types. A new minor version is one new file for the version it freezes
//! (`wit/1.N.0/` and conversions into `current`) and one arm per call here
//! (see the plugin guide's "For maintainers").

use wasmtime::component::{InstancePre, Linker};
use wasmtime::Store;

use super::state::PluginState;
use super::version::{Contract, PluginKind};

/// A conversion between two contract versions' types (a trait of its own:
/// `From` cannot be implemented for `Vec`, `Option` and `Result` of them).
pub trait Conv<T> {
    fn conv(self) -> T;
}

/// Types that are the same in every version.
macro_rules! same {
    ($($t:ty),*) => { $(impl $crate::plugin::versions::Conv<$t> for $t { fn conv(self) -> $t { self } })* };
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

/// A record with the same fields in two versions, in one direction.
macro_rules! record {
    ($from:ident :: $t:ident => $to:ident { $($f:ident),* $(,)? }) => {
        impl $crate::plugin::versions::Conv<$to::$t> for $from::$t {
            fn conv(self) -> $to::$t {
                $to::$t { $($f: $crate::plugin::versions::Conv::conv(self.$f)),* }
            }
        }
    };
}

/// An enum with the same cases in two versions, in one direction.
macro_rules! cases {
    ($from:ident :: $t:ident => $to:ident { $($c:ident),* $(,)? }) => {
        impl $crate::plugin::versions::Conv<$to::$t> for $from::$t {
            fn conv(self) -> $to::$t {
                match self { $($from::$t::$c => $to::$t::$c),* }
            }
        }
    };
}

/// A version file's two entry points, `source` and `policy`: its worlds'
/// bindings (the modules `source` and `policy` it declares with `bindgen!`)
/// instantiated from a linked component.
macro_rules! entry_points {
    () => {
        pub(super) fn source(
            store: &mut wasmtime::Store<$crate::plugin::state::PluginState>,
            pre: wasmtime::component::InstancePre<$crate::plugin::state::PluginState>,
        ) -> wasmtime::Result<source_api::Guest> {
            let instance = source::BackupSourcePre::new(pre)?.instantiate(store)?;
            Ok(instance.pgclone_plugin_source().clone())
        }

        pub(super) fn policy(
            store: &mut wasmtime::Store<$crate::plugin::state::PluginState>,
            pre: wasmtime::component::InstancePre<$crate::plugin::state::PluginState>,
        ) -> wasmtime::Result<policy_api::Guest> {
            let instance = policy::RecoveryPolicyPre::new(pre)?.instantiate(store)?;
            Ok(instance.pgclone_plugin_policy().clone())
        }
    };
}

pub mod current;
mod v1_0;
mod v1_1;
mod v1_2;

use current::{policy_api as wp, types as wt};

/// The host calls of every version: the current ones, and those of a version
/// whose `host` or `types` interface a plugin imports by its exact name.
pub(super) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    current::add_to_linker(linker)?;
    v1_0::add_to_linker(linker)
}

/// A plugin's exports, of either world.
#[derive(Clone)]
pub(super) enum Instance {
    Source(Source),
    Policy(Policy),
}

/// A backup source's interface, of the contract version it was built against.
#[derive(Clone)]
pub(super) enum Source {
    Current(current::source_api::Guest),
    V1_2(v1_2::source_api::Guest),
    V1_1(v1_1::source_api::Guest),
    V1_0(v1_0::source_api::Guest),
}

/// A recovery policy's interface, of the contract version it was built against.
#[derive(Clone)]
pub(super) enum Policy {
    Current(current::policy_api::Guest),
    V1_2(v1_2::policy_api::Guest),
    V1_1(v1_1::policy_api::Guest),
    V1_0(v1_0::policy_api::Guest),
}

/// Instantiates a component of `contract` (its kind and version, read from
/// its export names by [`super::version::inspect`]).
pub(super) fn instantiate(
    store: &mut Store<PluginState>,
    pre: InstancePre<PluginState>,
    contract: Contract,
) -> wasmtime::Result<Instance> {
    use PluginKind::{Policy as P, Source as S};
    Ok(match (contract.kind, contract.version.minor) {
        (S, 0) => Instance::Source(Source::V1_0(v1_0::source(store, pre)?)),
        (P, 0) => Instance::Policy(Policy::V1_0(v1_0::policy(store, pre)?)),
        (S, 1) => Instance::Source(Source::V1_1(v1_1::source(store, pre)?)),
        (P, 1) => Instance::Policy(Policy::V1_1(v1_1::policy(store, pre)?)),
        (S, 2) => Instance::Source(Source::V1_2(v1_2::source(store, pre)?)),
        (P, 2) => Instance::Policy(Policy::V1_2(v1_2::policy(store, pre)?)),
        (S, _) => Instance::Source(Source::Current(current::source(store, pre)?)),
        (P, _) => Instance::Policy(Policy::Current(current::policy(store, pre)?)),
    })
}

/// What a call into the guest returns: a trap, or the plugin's own answer.
type Answer<T> = wasmtime::Result<Result<T, wt::PluginError>>;

impl Instance {
    /// `describe`, for either kind of plugin.
    pub(super) fn describe(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<wt::PluginInfo> {
        match self {
            Instance::Source(Source::Current(s)) => s.call_describe(store),
            Instance::Source(Source::V1_2(s)) => s.call_describe(store).map(Conv::conv),
            Instance::Source(Source::V1_1(s)) => s.call_describe(store).map(Conv::conv),
            Instance::Source(Source::V1_0(s)) => s.call_describe(store).map(Conv::conv),
            Instance::Policy(Policy::Current(p)) => p.call_describe(store),
            Instance::Policy(Policy::V1_2(p)) => p.call_describe(store).map(Conv::conv),
            Instance::Policy(Policy::V1_1(p)) => p.call_describe(store).map(Conv::conv),
            Instance::Policy(Policy::V1_0(p)) => p.call_describe(store).map(Conv::conv),
        }
    }
}

impl Source {
    /// `source.check`.
    pub(super) fn check(
        &self,
        store: &mut Store<PluginState>,
        req: wt::CloneRequest,
    ) -> Answer<wt::BackupDescription> {
        match self {
            Source::Current(s) => s.call_check(store, &req),
            Source::V1_2(s) => s.call_check(store, &req.conv()).map(Conv::conv),
            Source::V1_1(s) => s.call_check(store, &req.conv()).map(Conv::conv),
            Source::V1_0(s) => s.call_check(store, &req.conv()).map(Conv::conv),
        }
    }

    /// `source.plan-clone`.
    pub(super) fn plan_clone(
        &self,
        store: &mut Store<PluginState>,
        req: wt::CloneRequest,
        backup: wt::BackupDescription,
    ) -> Answer<Vec<wt::PlanStep>> {
        match self {
            Source::Current(s) => s.call_plan_clone(store, &req, &backup),
            Source::V1_2(s) => s
                .call_plan_clone(store, &req.conv(), &backup.conv())
                .map(Conv::conv),
            Source::V1_1(s) => s
                .call_plan_clone(store, &req.conv(), &backup.conv())
                .map(Conv::conv),
            Source::V1_0(s) => s
                .call_plan_clone(store, &req.conv(), &backup.conv())
                .map(Conv::conv),
        }
    }

    /// `source.locate-wal`.
    pub(super) fn locate_wal(
        &self,
        store: &mut Store<PluginState>,
        name: String,
    ) -> Answer<wt::WalLocation> {
        match self {
            Source::Current(s) => s.call_locate_wal(store, &name),
            Source::V1_2(s) => s.call_locate_wal(store, &name).map(Conv::conv),
            Source::V1_1(s) => s.call_locate_wal(store, &name).map(Conv::conv),
            Source::V1_0(s) => s.call_locate_wal(store, &name).map(Conv::conv),
        }
    }

    /// `source.locate-wal-archive` (since 1.2.0). A plugin of an older
    /// contract has none: its answer names neither a directory nor a
    /// command, so it is asked per file (`locate-wal`).
    pub(super) fn locate_wal_archive(
        &self,
        store: &mut Store<PluginState>,
    ) -> Answer<wt::WalArchive> {
        match self {
            Source::Current(s) => s.call_locate_wal_archive(store),
            Source::V1_2(s) => s.call_locate_wal_archive(store).map(Conv::conv),
            Source::V1_1(_) | Source::V1_0(_) => Ok(Ok(wt::WalArchive {
                directory: None,
                fetch: None,
                store: None,
            })),
        }
    }
}

impl Policy {
    /// `policy.recovery-settings`.
    pub(super) fn recovery_settings(
        &self,
        store: &mut Store<PluginState>,
        facts: wp::RecoveryFacts,
        previous: wp::RecoveryConfig,
    ) -> Answer<wp::RecoveryConfig> {
        match self {
            Policy::Current(p) => p.call_recovery_settings(store, &facts, &previous),
            Policy::V1_2(p) => p
                .call_recovery_settings(store, &facts.conv(), &previous.conv())
                .map(Conv::conv),
            Policy::V1_1(p) => p
                .call_recovery_settings(store, &facts.conv(), &previous.conv())
                .map(Conv::conv),
            Policy::V1_0(p) => p
                .call_recovery_settings(store, &facts.conv(), &previous.conv())
                .map(Conv::conv),
        }
    }
}
