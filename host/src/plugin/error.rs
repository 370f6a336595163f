//! The sandbox's own errors.

/// Raised by the epoch callback when a call used up its guest time.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
pub struct DeadlineExceeded;
