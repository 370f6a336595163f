//! The plugin contract as the host's own code sees it, without WebAssembly:
//! the traits a backup source and a recovery policy implement, the types they
//! are asked and answer in, the capabilities they use, and how they fail.
//!
//! `plugin/` implements the traits for sandboxed components of every contract
//! version; the clone, wal-restore and the recovery chain take them as trait
//! objects, so each runs, and is unit-tested, without a component
//! ([`fake`] is the test double).

pub mod capability;
pub mod described;
pub mod failure;
#[cfg(test)]
pub mod fake;
pub mod policy;
pub mod source;

pub use capability::{Capability, CapabilitySet, Refusal};
pub use described::Described;
pub use failure::{ErrorKind, PluginError, PluginFailure};
pub use policy::{PolicyPlugin, RecoveryPolicy};
pub use source::{BackupSource, SourcePlugin};
