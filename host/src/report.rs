//! Errors and messages in the style of PostgreSQL's tools: `ERROR:` with an
//! optional `DETAIL:` and `HINT:`, on standard error.

use std::borrow::Cow;
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

/// True for what a terminal may act on instead of showing: C0 and C1 control
/// characters, DEL, and the bidirectional overrides that reorder a line.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_keeping<'a>(s: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !s.chars().any(|c| is_unsafe(c) && !keep.contains(&c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if keep.contains(&c) || !is_unsafe(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// Text from a plugin (or another untrusted source) made safe to show on one
/// line: every control character is escaped (`\x1b`, `\r`, `\n`), so what it
/// says cannot recolour, move the cursor, erase or forge lines.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_keeping(s, &[])
}

/// Like [`escape`] for text of several lines: line breaks are kept.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    escape_keeping(s, &['\n'])
}

/// Like [`escape`] for text of several lines from an untrusted source: each
/// line is escaped, and the lines after the first are indented, so that none
/// can pass for a `DETAIL:` or `HINT:` line of pgclone's own.
pub fn escape_block(s: &str) -> String {
    s.lines()
        .map(|l| escape(l))
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// Renders any error for standard error: a [`Failure`] keeps its DETAIL and
/// HINT; for other errors the causes become the DETAIL. Control characters
/// (but line breaks) are escaped, whatever the error quotes.
pub fn render(err: &anyhow::Error) -> String {
    escape_text(&render_raw(err)).into_owned()
}

fn render_raw(err: &anyhow::Error) -> String {
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
    eprintln!("NOTICE: {}", escape_text(message));
}

/// `WARNING: ...` (and an optional hint) on standard error.
pub fn warning(message: &str, hint: Option<&str>) {
    eprintln!("WARNING: {}", escape_text(message));
    if let Some(h) = hint {
        eprintln!("HINT: {}", escape_text(h));
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
    fn control_characters_are_escaped() {
        assert_eq!(escape("plain"), "plain");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\x1b[2Jb\rc\nd\te\x7f\u{9b}f\u{202e}"),
            "a\\x1b[2Jb\\rc\\nd\\te\\x7f\\x9bf\\u{202e}"
        );
        assert_eq!(escape_text("a\nb\x1b"), "a\nb\\x1b");
        assert_eq!(escape_block("a\x1b\nHINT: b\r"), "a\\x1b\n  HINT: b\\r");
        let e = anyhow::Error::new(Failure::new("x\x1b]0;t\x07").detail("1\n2\r"));
        assert_eq!(render(&e), "ERROR: x\\x1b]0;t\\x07\nDETAIL: 1\n2\\r");
    }

    #[test]
    fn plain_errors_put_causes_in_detail() {
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render(&e), "ERROR: outer\nDETAIL: inner");
    }
}
