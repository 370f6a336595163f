//! Errors and messages in the style of PostgreSQL's tools: `ERROR:` with an
//! optional `DETAIL:` and `HINT:`, on standard error.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

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
    format!("ERROR: {}", failure_of(err))
}

/// Any error as its three parts, as [`render`] shows them (unescaped): a
/// [`Failure`] as it is; an error caused by one, with that failure (and its
/// own DETAIL and HINT) as the DETAIL; any other, with its causes as the
/// DETAIL. `--output json` carries these parts.
pub fn failure_of(err: &anyhow::Error) -> Failure {
    if let Some(f) = err.downcast_ref::<Failure>() {
        return f.clone();
    }
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return Failure::new(err.to_string()).detail(f.to_string());
        }
    }
    let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
    let f = Failure::new(err.to_string());
    match causes.is_empty() {
        true => f,
        false => f.detail(causes.join(": ")),
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

/// `1 entry`, `2 entries`: a count with its noun in the right number.
pub fn count<N>(n: N, one: &str, many: &str) -> String
where
    N: TryInto<u64> + Copy + std::fmt::Display,
{
    let noun = if n.try_into().ok() == Some(1) {
        one
    } else {
        many
    };
    format!("{n} {noun}")
}

/// How much is said on standard error: repmgr's log levels (-L/--log-level,
/// -q, -v). Errors are always shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Notice = 2,
    Warning = 3,
    Error = 4,
}

impl std::str::FromStr for Level {
    type Err = String;

    /// repmgr's names, case-insensitively; ALERT, CRIT and EMERG show errors only.
    fn from_str(s: &str) -> Result<Level, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "DEBUG" => Level::Debug,
            "INFO" => Level::Info,
            "NOTICE" => Level::Notice,
            "WARNING" => Level::Warning,
            "ERROR" | "ALERT" | "CRIT" | "EMERG" => Level::Error,
            _ => {
                return Err(format!(
                    "invalid log level \"{s}\" (available values: DEBUG, INFO, NOTICE, WARNING, ERROR, ALERT, CRIT or EMERG)"
                ))
            }
        })
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static TERSE: AtomicBool = AtomicBool::new(false);

/// Sets the lowest level shown (default: INFO, everything but debug output).
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// repmgr's -t/--terse: no hints with notices and warnings. An error keeps its
/// DETAIL and HINT: they say what went wrong and what to do.
pub fn set_terse(terse: bool) {
    TERSE.store(terse, Ordering::Relaxed);
}

/// Whether messages of `level` are shown.
pub fn shown(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

/// With `-v`: `DEBUG: running ...` for each program pgclone starts, its argv
/// quoted as a shell would read it. Secrets never are on argv (passwords go
/// through the environment or files), so this shows nothing secret.
pub fn running(cmd: &std::process::Command) {
    if !shown(Level::Debug) {
        return;
    }
    let argv: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| shell_words::quote(&a.to_string_lossy()).into_owned())
        .collect();
    eprintln!("DEBUG: running {}", escape(&argv.join(" ")));
}

/// `INFO: ...` on standard error.
pub fn info(message: &str) {
    if shown(Level::Info) {
        eprintln!("INFO: {}", escape_text(message));
    }
}

/// `NOTICE: ...` on standard error.
pub fn notice(message: &str) {
    if shown(Level::Notice) {
        eprintln!("NOTICE: {}", escape_text(message));
    }
}

/// True the first time this process is to say `message`: a check run
/// again and again (`plugin test` calls a plugin dozens of times) says its
/// notice once, not once per call.
pub fn first_time(message: &str) -> bool {
    static SAID: std::sync::Mutex<std::collections::BTreeSet<String>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    SAID.lock()
        .map_or(true, |mut said| said.insert(message.to_string()))
}

/// [`notice`], once per process for the same message.
pub fn notice_once(message: &str) {
    if first_time(message) {
        notice(message);
    }
}

/// A `HINT: ...` after a notice (not with -t/--terse).
pub fn hint(message: &str) {
    if shown(Level::Notice) && !TERSE.load(Ordering::Relaxed) {
        eprintln!("HINT: {}", escape_text(message));
    }
}

/// `WARNING: ...` (and an optional hint) on standard error.
pub fn warning(message: &str, hint: Option<&str>) {
    if !shown(Level::Warning) {
        return;
    }
    eprintln!("WARNING: {}", escape_text(message));
    if let (Some(h), false) = (hint, TERSE.load(Ordering::Relaxed)) {
        eprintln!("HINT: {}", escape_text(h));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_say_one_entry_and_two_entries() {
        assert_eq!(count(1usize, "entry", "entries"), "1 entry");
        assert_eq!(count(0u32, "entry", "entries"), "0 entries");
        assert_eq!(count(2u64, "file", "files"), "2 files");
        assert_eq!(count(-1i64, "file", "files"), "-1 files");
    }

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
