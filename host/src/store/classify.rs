//! `object_store` errors as [`StoreError`]s: what kind of failure (from the
//! error's variant, the HTTP error's kind, the status and the provider's
//! error code in the body), a message naming the store, the operation and
//! the host, and the library's text (redacted) as the detail.

use std::error::Error as _;
use std::time::Duration;

use object_store::client::{HttpError, HttpErrorKind};

use super::error::{StoreError, StoreErrorKind};
use super::secret::redact;
use super::{Context, Provider};
use crate::report::escape;

/// What was being done, with the key or prefix as the caller gave it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op<'a> {
    List(&'a str),
    Read(&'a str),
    Head(&'a str),
}

impl Op<'_> {
    /// `cannot read "KEY" from store "NAME" (URL)`.
    pub fn failed(self, ctx: &Context) -> String {
        match self {
            Op::List(p) => format!("cannot list \"{}\" in {}", escape(p), ctx.describe),
            Op::Read(k) => format!("cannot read \"{}\" from {}", escape(k), ctx.describe),
            Op::Head(k) => format!("cannot look up \"{}\" in {}", escape(k), ctx.describe),
        }
    }
}

/// A limit as people write it: `30 s`, `1.5 s`, `200 ms`.
pub(crate) fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The error's text with its causes, each once, redacted.
fn chain_text(err: &object_store::Error, ctx: &Context) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    let text = summarize_xml(&redact(&text, &ctx.secrets));
    // A server's HTML error page can be long; the start says what it is.
    match text.char_indices().nth(600) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

/// A provider's XML error body as `Code: Message` (S3, Azure and GCS all
/// answer `<Error><Code>..</Code><Message>..</Message>..</Error>`).
fn summarize_xml(text: &str) -> String {
    let Some(start) = text.find("<?xml").or_else(|| text.find("<Error>")) else {
        return text.to_string();
    };
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let i = text.find(&open)? + open.len();
        let j = text[i..].find(&format!("</{name}>"))?;
        Some(text[i..i + j].trim().to_string())
    };
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(msg)) => format!("{}{code}: {msg}", &text[..start]),
        (Some(code), None) => format!("{}{code}", &text[..start]),
        _ => text.to_string(),
    }
}

fn http_kind(err: &object_store::Error) -> Option<HttpErrorKind> {
    let mut source = err.source();
    let mut timed_out = false;
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<HttpError>() {
            return Some(h.kind());
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
        }
        source = s.source();
    }
    timed_out.then_some(HttpErrorKind::Timeout)
}

/// The HTTP status in the library's text (`status code: 404 Not Found`).
fn status(text: &str) -> Option<u16> {
    let i = text.find("status code: ")? + "status code: ".len();
    text.get(i..i + 3)?.parse().ok()
}

/// How many requests were made, from the library's `after N retries`.
fn attempts(text: &str) -> String {
    let n = text
        .match_indices("after ")
        .find_map(|(i, _)| text[i + 6..].split(' ').next()?.parse::<usize>().ok())
        .map_or(1, |retries| retries + 1);
    if n == 1 {
        "1 attempt".into()
    } else {
        format!("{n} attempts")
    }
}

/// The provider's error codes that say the bucket (container) is missing;
/// `no bucket named` is fake-gcs-server's (a 500 to a listing), the GCS
/// server users test against locally.
fn bucket_missing(text: &str) -> bool {
    [
        "NoSuchBucket",
        "ContainerNotFound",
        "bucket does not exist",
        "no bucket named",
    ]
    .iter()
    .any(|c| text.contains(c))
}

/// Texts of a credential chain that found nothing (instance metadata
/// unreachable off a cloud VM, a missing token file).
fn no_credentials(text: &str) -> bool {
    [
        "169.254.169.254",
        "metadata.google.internal",
        "Error getting token",
        "Error fetching credentials",
        "Could not find any credentials",
    ]
    .iter()
    .any(|c| text.contains(c))
}

pub(crate) fn classify(err: &object_store::Error, ctx: &Context, op: Op) -> StoreError {
    let text = chain_text(err, ctx);
    let failed = op.failed(ctx);
    let host = &ctx.host;
    let bucket_word = match ctx.provider {
        Provider::AzureBlobStorage => "container",
        _ => "bucket",
    };
    let code = status(&text);
    let kind = http_kind(err);
    let new = |kind: StoreErrorKind, problem: String| {
        StoreError::new(kind, format!("{failed}: {problem}")).detail(text.clone())
    };

    if no_credentials(&text) {
        return new(
            StoreErrorKind::AuthFailed,
            "found no credentials for it".into(),
        )
        .hint(ctx.auth_hint.clone());
    }
    if matches!(
        err,
        object_store::Error::Unauthenticated { .. } | object_store::Error::PermissionDenied { .. }
    ) || matches!(code, Some(401 | 403))
    {
        let code = code.map_or(String::new(), |c| format!(" (HTTP {c})"));
        return new(
            StoreErrorKind::AuthFailed,
            format!("{host} refused the credentials{code}"),
        )
        .hint(ctx.auth_hint.clone());
    }
    if bucket_missing(&text)
        || (matches!(op, Op::List(_))
            && (code == Some(404) || matches!(err, object_store::Error::NotFound { .. })))
    {
        return new(
            StoreErrorKind::NoBucket,
            format!(
                "{bucket_word} \"{}\" does not exist at {host}",
                escape(&ctx.bucket)
            ),
        )
        .hint(format!(
            "Check the store's URL: its {bucket_word} is the one barman-cloud writes to."
        ));
    }
    if matches!(err, object_store::Error::NotFound { .. }) || code == Some(404) {
        return new(StoreErrorKind::NotFound, "no such object".into());
    }
    if code == Some(416) {
        return new(
            StoreErrorKind::Corrupt,
            "the object is shorter than its listed size (it changed while being read?)".into(),
        );
    }
    match kind {
        Some(HttpErrorKind::Timeout) => {
            return new(
                StoreErrorKind::Timeout,
                format!(
                    "{host} sent nothing for {} ({})",
                    seconds(ctx.timeout),
                    attempts(&text)
                ),
            )
            .hint(format!(
                "Check that {host} is up and reachable from this host; the limit on a silent store is its read timeout (barman-cloud's --read-timeout)."
            ));
        }
        Some(HttpErrorKind::Connect) => {
            let why = if text.contains("dns error") || text.contains("failed to lookup") {
                format!("cannot resolve {host}")
            } else if text.contains("refused") {
                format!("{host} refused the connection")
            } else {
                format!("cannot connect to {host}")
            };
            return new(StoreErrorKind::Unreachable, why).hint(format!(
                "Check the store's URL{} and that {host} is reachable from this host.",
                if ctx.provider == Provider::AwsS3 {
                    " and endpoint"
                } else {
                    ""
                }
            ));
        }
        Some(HttpErrorKind::Request | HttpErrorKind::Interrupted) => {
            return new(
                StoreErrorKind::Unreachable,
                format!("the connection to {host} broke"),
            );
        }
        _ => {}
    }
    let problem = match code {
        Some(c) => format!("{host} answered HTTP {c}"),
        None => format!("the request to {host} failed"),
    };
    let e = new(StoreErrorKind::Other, problem);
    if ctx.provider == Provider::AwsS3
        && [
            "PermanentRedirect",
            "AuthorizationHeaderMalformed",
            "IllegalLocationConstraint",
        ]
        .iter()
        .any(|c| text.contains(c))
    {
        return e.hint(
            "The bucket is in another region: set AWS_REGION (or the profile's region) to it.",
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_limits() {
        assert_eq!(
            status("Server returned non-2xx status code: 403 Forbidden: <Error>"),
            Some(403)
        );
        assert_eq!(status("no status"), None);
        assert_eq!(seconds(Duration::from_secs(30)), "30 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(Duration::from_millis(200)), "200 ms");
        assert!(bucket_missing("<Code>NoSuchBucket</Code>"));
        assert_eq!(
            summarize_xml("403 Forbidden: <?xml version=\"1.0\"?> <Error><Code>InvalidAccessKeyId</Code><Message>No such key.</Message><HostId>x</HostId></Error>"),
            "403 Forbidden: InvalidAccessKeyId: No such key."
        );
        assert_eq!(summarize_xml("plain text"), "plain text");
        assert_eq!(
            attempts("GET x in 2.1s, after 1 retries, max_retries: 2"),
            "2 attempts"
        );
        assert_eq!(attempts("GET x in 1s - HTTP error"), "1 attempt");
        assert!(!bucket_missing("<Code>NoSuchKey</Code>"));
        // fake-gcs-server's answer to a listing of a missing bucket.
        assert!(bucket_missing(
            "Server returned non-2xx status code: 500 Internal Server Error: <errorResponse>\
             <Error><Code>500</Code><Message>no bucket named nob</Message></Error></errorResponse>"
        ));
    }
}
