//! pgclone: clone PostgreSQL standbys from Barman or pg_basebackup, with the
//! site- and vendor-specific parts in sandboxed WebAssembly plugins.

pub mod child;
pub mod clone;
pub mod config;
pub mod conformance;
pub mod contract;
pub mod environment;
pub mod invocation;
#[cfg(test)]
mod layers;
pub mod output;
pub mod pg;
pub mod plugin;
pub mod recovery;
pub mod remote;
pub mod report;
pub mod store;
pub mod trust;
pub mod wal;
pub mod walrestore;

/// The property tests' configuration and mutations, shared with the contract
/// crate and the Barman plugin.
#[cfg(test)]
#[path = "../../contract/src/fuzz.rs"]
mod fuzz;
