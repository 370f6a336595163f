//! Errors in the style of PostgreSQL's tools (ERROR, DETAIL, HINT), built in
//! one expression: `PluginError::new(ErrorKind::NotFound, "no backup").hint("...")`.

use crate::types::{ErrorKind, PluginError};

/// Builders for [`PluginError`].
pub trait ErrorExt: Sized {
    /// An error of `kind` with a one-line message (no trailing period).
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self;
    /// What was observed: a program's stderr, a path, a status.
    fn detail(self, detail: impl Into<String>) -> Self;
    /// What the operator can do about it.
    fn hint(self, hint: impl Into<String>) -> Self;
}

impl ErrorExt for PluginError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    fn detail(mut self, detail: impl Into<String>) -> Self {
        let d = detail.into();
        self.detail = (!d.trim().is_empty()).then(|| d.trim_end().to_string());
        self
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The error as pgclone shows it: the message, then DETAIL and HINT lines.
pub fn render(e: &PluginError) -> String {
    let mut out = e.message.clone();
    if let Some(d) = &e.detail {
        out.push_str(&format!("\nDETAIL: {d}"));
    }
    if let Some(h) = &e.hint {
        out.push_str(&format!("\nHINT: {h}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_in_one_expression() {
        let e = PluginError::new(ErrorKind::NotFound, "no backup")
            .detail("barman said: nothing\n")
            .hint("take one");
        assert_eq!(
            render(&e),
            "no backup\nDETAIL: barman said: nothing\nHINT: take one"
        );
        assert_eq!(
            PluginError::new(ErrorKind::Failed, "x").detail("  ").detail,
            None
        );
    }
}
