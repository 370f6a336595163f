//! A store's errors: what kind of failure, the message the operator reads
//! (naming the store and, for a key, the key), what was seen and what to do.
//! Never a credential: texts from the client library pass through
//! [`super::redact`] first.

use std::fmt;

use crate::report::Failure;

/// What went wrong, for callers that act on it (a missing object is "not in
/// the archive"; the rest fail the operation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The store's configuration cannot work (URL, provider, profile, key).
    InvalidConfig,
    /// The store's host cannot be reached (DNS, refused, reset).
    Unreachable,
    /// The store refused the credentials (HTTP 401/403) or none were found.
    AuthFailed,
    /// The object does not exist (in a bucket or container that does).
    NotFound,
    /// The bucket or container does not exist: the store's configuration
    /// is wrong, which is not the same as an object not (yet) archived.
    NoBucket,
    /// An object is larger than the caller allows.
    TooLarge,
    /// A listing has more entries than the caller allows.
    TooMany,
    /// The store's host sent nothing for as long as the read timeout.
    Timeout,
    /// The store answered something inconsistent (a short body).
    Corrupt,
    /// Anything else the store answered.
    Other,
}

/// An error of an object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    pub kind: StoreErrorKind,
    /// One line naming the store (and the key), no trailing period.
    pub message: String,
    /// What was seen (the server's answer, redacted).
    pub detail: Option<String>,
    /// What the operator can do.
    pub hint: Option<String>,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        StoreError::new(StoreErrorKind::InvalidConfig, message)
    }
}

/// The message alone: an `io::Error` wrapping this shows it; [`Failure`]
/// adds the detail and hint.
impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure {
            message: e.message,
            detail: e.detail,
            hint: e.hint,
        }
    }
}

impl From<StoreError> for std::io::Error {
    fn from(e: StoreError) -> std::io::Error {
        let kind = match e.kind {
            StoreErrorKind::NotFound | StoreErrorKind::NoBucket => std::io::ErrorKind::NotFound,
            StoreErrorKind::Timeout => std::io::ErrorKind::TimedOut,
            StoreErrorKind::AuthFailed => std::io::ErrorKind::PermissionDenied,
            StoreErrorKind::Unreachable => std::io::ErrorKind::ConnectionRefused,
            StoreErrorKind::Corrupt => std::io::ErrorKind::UnexpectedEof,
            StoreErrorKind::InvalidConfig => std::io::ErrorKind::InvalidInput,
            StoreErrorKind::TooLarge | StoreErrorKind::TooMany | StoreErrorKind::Other => {
                std::io::ErrorKind::Other
            }
        };
        std::io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_shows_the_message_and_downcasts() {
        let e = StoreError::new(
            StoreErrorKind::Corrupt,
            "cannot read \"k\" from store \"s\"",
        )
        .detail("d");
        let io: std::io::Error = e.clone().into();
        assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(io.to_string(), "cannot read \"k\" from store \"s\"");
        let back = io.get_ref().unwrap().downcast_ref::<StoreError>().unwrap();
        assert_eq!(back, &e);
        let f: Failure = e.into();
        assert_eq!(f.detail.as_deref(), Some("d"));
    }
}
