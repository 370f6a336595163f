//! The rules of the pgclone plugin contract that both sides must read the
//! same way, in one place: the host (`pgclone`) and the plugin SDK
//! (`pgclone-plugin-sdk`, built for wasm32-wasip2) depend on this crate, so a
//! capability, a manifest or a version the SDK accepts is one the host
//! accepts. It has no dependencies and knows nothing of the WIT bindings;
//! each side converts to its own binding types.
//!
//! - [`conninfo`]: libpq connection strings, read as libpq reads them;
//! - [`capability`]: `remote-run:TARGET:PROGRAM`, `local-run:PROGRAM`,
//!   `read-config:KEY`, as plugins declare and operators grant them;
//! - [`manifest`]: the `pgclone-plugin` custom section's text;
//! - [`pg_version`]: PostgreSQL server versions (`server_version_num`).

pub mod capability;
pub mod conninfo;
pub mod manifest;
pub mod pg_version;

#[cfg(test)]
mod fuzz;

pub use capability::{BadCapability, Capability};
pub use conninfo::{ConnInfo, ConnInfoError};
pub use manifest::Manifest;
