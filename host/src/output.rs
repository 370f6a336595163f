//! What goes to standard output with `--output json`: one JSON document per
//! run, for Ansible and other tools that drive pgclone. Commands put the
//! values their text is printed from into the document ([`put`]); the
//! command line writes it once, at the end, with the result and the error
//! ([`finish`]), so stdout holds that document and nothing else, whatever
//! happened. Messages for people stay on standard error.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::report::{self, Failure};

/// The output formats of `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text for people (the default).
    Text,
    /// One JSON document on standard output.
    Json,
}

static JSON: AtomicBool = AtomicBool::new(false);

/// The document: its schema and the fields commands put into it.
static DOC: Mutex<Option<(String, Map<String, Value>)>> = Mutex::new(None);

fn doc() -> std::sync::MutexGuard<'static, Option<(String, Map<String, Value>)>> {
    DOC.lock().unwrap_or_else(|e| e.into_inner())
}

/// Chooses the format for this run; `schema` names the document of the
/// command that runs (`pgclone/standby-clone@1`).
pub fn set(format: Format, schema: &str) {
    JSON.store(format == Format::Json, Ordering::Relaxed);
    *doc() = Some((schema.to_string(), Map::new()));
}

/// True when standard output is the JSON document: text reports are not
/// printed there.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Sets a field of the document (the last value put wins).
pub fn put(key: &str, value: impl Serialize) {
    if !json() {
        return;
    }
    let value = serde_json::to_value(value).expect("plain data serializes");
    if let Some((_, fields)) = doc().as_mut() {
        fields.insert(key.to_string(), value);
    }
}

/// Sets every field of `value` (a struct) in the document.
pub fn put_fields(value: impl Serialize) {
    if !json() {
        return;
    }
    if let Value::Object(m) = serde_json::to_value(value).expect("plain data serializes") {
        if let Some((_, fields)) = doc().as_mut() {
            fields.extend(m);
        }
    }
}

/// An error as the document carries it: the parts `ERROR:`, `DETAIL:` and
/// `HINT:` show on standard error.
#[derive(Serialize)]
struct ErrorParts {
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

/// The document for a run that ended with `result`, or `None` in text mode.
pub fn document(result: &anyhow::Result<ExitCode>) -> Option<Value> {
    if !json() {
        return None;
    }
    let (schema, fields) = doc().take()?;
    let (ok, error) = match result {
        Ok(code) => (*code == ExitCode::SUCCESS, None),
        Err(e) => {
            let f: Failure = report::failure_of(e);
            (
                false,
                Some(ErrorParts {
                    message: f.message,
                    detail: f.detail,
                    hint: f.hint,
                }),
            )
        }
    };
    let mut out = Map::new();
    out.insert("schema".into(), schema.into());
    out.insert("result".into(), if ok { "ok" } else { "failed" }.into());
    out.extend(fields);
    out.insert(
        "error".into(),
        serde_json::to_value(error).expect("plain data serializes"),
    );
    Some(Value::Object(out))
}

/// Writes the document for `result` on standard output (JSON mode only).
pub fn finish(result: &anyhow::Result<ExitCode>) {
    if let Some(d) = document(result) {
        println!(
            "{}",
            serde_json::to_string_pretty(&d).expect("a JSON value serializes")
        );
    }
}

/// A usage error (clap's) as the document of `schema`, for a command line
/// that asked for JSON: the same exit status, and stdout still one document.
/// clap's message is the message, its tip the hint (its usage is left to
/// standard error).
pub fn usage_error(schema: &str, clap_message: &str) {
    JSON.store(true, Ordering::Relaxed);
    *doc() = Some((schema.to_string(), Map::new()));
    let mut message = Vec::new();
    let mut hint = None;
    for line in clap_message
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
    {
        match line.trim_start().strip_prefix("tip: ") {
            Some(t) => hint = Some(t.to_string()),
            None if !line.trim().is_empty() => message.push(line.trim_start_matches("error: ")),
            None => {}
        }
    }
    let f = Failure {
        message: message.join("\n"),
        detail: None,
        hint,
    };
    finish(&Err(f.into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test: the format and the document are the process's.
    #[test]
    fn the_document_carries_the_result_the_fields_and_the_error() {
        set(Format::Text, "pgclone/test@1");
        put("ignored", 1);
        assert!(document(&Ok(ExitCode::SUCCESS)).is_none());

        set(Format::Json, "pgclone/test@1");
        put("checks", vec!["a", "b"]);
        let d = document(&Ok(ExitCode::SUCCESS)).unwrap();
        assert_eq!(d["schema"], "pgclone/test@1");
        assert_eq!(d["result"], "ok");
        assert_eq!(d["checks"][1], "b");
        assert!(d["error"].is_null());

        set(Format::Json, "pgclone/test@1");
        assert_eq!(
            document(&Ok(ExitCode::FAILURE)).unwrap()["result"],
            "failed"
        );

        set(Format::Json, "pgclone/test@1");
        let e = anyhow::Error::new(Failure::new("boom").detail("seen").hint("do this"));
        let d = document(&Err(e)).unwrap();
        assert_eq!(d["result"], "failed");
        assert_eq!(d["error"]["message"], "boom");
        assert_eq!(d["error"]["detail"], "seen");
        assert_eq!(d["error"]["hint"], "do this");
        JSON.store(false, Ordering::Relaxed);
    }
}
