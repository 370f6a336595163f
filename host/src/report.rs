//! Errors and messages in the style of PostgreSQL's tools: `ERROR:` with an
//! optional `DETAIL:` and `HINT:`, on standard error.

use std::fmt;

/// An error the operator reads: what went wrong, what was seen, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// One line, no trailing period.
    pub message: String,
    /// What was observed (a program's stderr, a path, a status).
    pub detail: Option<String>,
    /// What the operator can do.
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
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
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(d) = &self.detail {
            write!(f, "\nDETAIL: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\nHINT: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// Renders any error for standard error: a [`Failure`] keeps its DETAIL and
/// HINT; for other errors the causes become the DETAIL.
pub fn render(err: &anyhow::Error) -> String {
    if let Some(f) = err.downcast_ref::<Failure>() {
        return format!("ERROR: {f}");
    }
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return format!("ERROR: {err}\nDETAIL: {f}");
        }
    }
    let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
    if causes.is_empty() {
        format!("ERROR: {err}")
    } else {
        format!("ERROR: {err}\nDETAIL: {}", causes.join(": "))
    }
}

/// How a child process ended, for messages: "exited with status 23",
/// "was killed by signal 9".
pub fn exit_text(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "failed".into(),
    }
}

/// `NOTICE: ...` on standard error.
pub fn notice(message: &str) {
    eprintln!("NOTICE: {message}");
}

/// `WARNING: ...` (and an optional hint) on standard error.
pub fn warning(message: &str, hint: Option<&str>) {
    eprintln!("WARNING: {message}");
    if let Some(h) = hint {
        eprintln!("HINT: {h}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_renders_all_three_parts() {
        let e = anyhow::Error::new(Failure::new("boom").detail("seen").hint("do this"));
        assert_eq!(render(&e), "ERROR: boom\nDETAIL: seen\nHINT: do this");
    }

    #[test]
    fn plain_errors_put_causes_in_detail() {
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render(&e), "ERROR: outer\nDETAIL: inner");
    }
}
