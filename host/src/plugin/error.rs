//! The sandbox's own errors, and the contract's `plugin-error` as the host's
//! [`crate::contract::PluginError`].

use super::bindings::types as wt;
use crate::contract::{ErrorKind, PluginError};

/// Raised by the epoch callback when a call used up its guest time.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
pub struct DeadlineExceeded;

impl From<wt::ErrorKind> for ErrorKind {
    fn from(k: wt::ErrorKind) -> Self {
        match k {
            wt::ErrorKind::InvalidConfig => ErrorKind::InvalidConfig,
            wt::ErrorKind::Unreachable => ErrorKind::Unreachable,
            wt::ErrorKind::AuthFailed => ErrorKind::AuthFailed,
            wt::ErrorKind::NotFound => ErrorKind::NotFound,
            wt::ErrorKind::InvalidBackup => ErrorKind::InvalidBackup,
            wt::ErrorKind::Unsupported => ErrorKind::Unsupported,
            wt::ErrorKind::Denied => ErrorKind::Denied,
            wt::ErrorKind::Failed => ErrorKind::Failed,
            wt::ErrorKind::Internal => ErrorKind::Internal,
        }
    }
}

impl From<wt::PluginError> for PluginError {
    fn from(e: wt::PluginError) -> Self {
        PluginError {
            kind: e.kind.into(),
            message: e.message,
            detail: e.detail,
            hint: e.hint,
        }
    }
}
