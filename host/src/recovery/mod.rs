//! Recovery configuration: the policy chain decides it, the host checks it,
//! renders it with correct quoting and writes it atomically.

pub mod chain;
pub mod gucs;
pub mod render;
pub mod write;

pub use chain::{decide, Facts};
pub use render::{render, RenderedConfig};
pub use write::apply;
