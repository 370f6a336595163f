//! The sandbox: loading, verifying, sandboxing and calling WebAssembly
//! components that implement the `pgclone:plugin` contract (`wit/`), as the
//! host's traits (`crate::contract`). The host calls a component may make
//! (`host_calls.rs`) see the world through `crate::environment`.

mod adapter;
pub mod cache;
pub mod catalog;
pub mod error;
mod host_calls;
pub mod loaded;
pub mod manifest;
pub mod runtime;
pub mod state;
pub mod version;
pub mod versions;

pub use adapter::Bound;
pub use catalog::{Candidate, Origin};
pub use loaded::{Plugin, Session};
pub use runtime::Runtime;
