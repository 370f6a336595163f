//! The WebAssembly plugin host: loading, verifying, sandboxing and calling
//! plugins that implement the `pgclone:plugin` contract (`wit/`).

mod adapter;
pub mod bindings;
pub mod cache;
pub mod capability;
pub mod catalog;
pub mod compat;
pub mod conformance;
pub mod contract;
pub mod convert;
pub mod error;
mod host_calls;
pub mod host_env;
pub mod loaded;
pub mod manifest;
pub mod runtime;
pub mod state;
pub mod trust;

pub use capability::Capability;
pub use catalog::{Candidate, Origin};
pub use error::PluginFailure;
pub use host_env::HostEnv;
pub use loaded::{Plugin, Session};
pub use runtime::Runtime;
