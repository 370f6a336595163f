//! Host-side bindings of the WIT contract (`wit/`), one module per world. Both
//! worlds import the same `types` and `host` interfaces; the policy world reuses
//! the source world's so that one linker serves both.

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
