//! Host-side bindings of the WIT contract, one module per world and contract
//! version: `wit/` is the current contract (1.2.0), `wit/1.1.0/` and
//! `wit/1.0.0/` the released ones, frozen. Both worlds of one version import
//! the same `types` and `host` interfaces; the policy world reuses the source
//! world's so that one linker serves both. The rest of the host speaks the
//! current types only: what a 1.0.0 plugin returns is converted in
//! [`super::compat`]. 1.2.0 only added to 1.1.0, so a 1.1.0 plugin's types
//! *are* the current ones (`with` below) and its imports are served by the
//! current `host` (the linker matches `@1.1.0` to `@1.2.0` by semver); only
//! its exports, which lack `wal-archive`, need bindings of their own.

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

/// The released contract `pgclone:plugin@1.1.0` (`wit/1.1.0/`), for plugins
/// built against it: its own export bindings over the current types.
pub mod v1_1 {
    pub mod source {
        wasmtime::component::bindgen!({
            world: "backup-source",
            path: "../wit/1.1.0",
            with: {
                "pgclone:plugin/types": crate::plugin::bindings::source::pgclone::plugin::types,
                "pgclone:plugin/host": crate::plugin::bindings::source::pgclone::plugin::host,
            },
        });
    }

    pub mod policy {
        wasmtime::component::bindgen!({
            world: "recovery-policy",
            path: "../wit/1.1.0",
            with: {
                "pgclone:plugin/types": crate::plugin::bindings::source::pgclone::plugin::types,
                "pgclone:plugin/host": crate::plugin::bindings::source::pgclone::plugin::host,
            },
        });
    }

    pub use policy::exports::pgclone::plugin::policy as policy_api;
    pub use source::exports::pgclone::plugin::source as source_api;
}

/// The released contract `pgclone:plugin@1.0.0` (`wit/1.0.0/`), for plugins
/// built against it.
pub mod v1_0 {
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
}

pub use policy::exports::pgclone::plugin::policy as policy_api;
pub use source::exports::pgclone::plugin::source as source_api;
pub use source::pgclone::plugin::host as host_api;
pub use source::pgclone::plugin::types;
