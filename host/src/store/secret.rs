//! Credentials held so that no `Debug`, `Display` or error text shows them:
//! [`Secret`] prints as `<redacted>`, and [`redact`] scrubs texts that come
//! back from the client library (whose URLs may carry a SAS token).

use std::fmt;

/// A credential's value.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `text` with every secret's value (and its URL-encoded form) replaced,
/// and every URL query cut (`?sig=…`), on one line.
pub(crate) fn redact(text: &str, secrets: &[Secret]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        let v = s.expose();
        // Short values (an empty token) would scrub ordinary words.
        if v.len() >= 6 {
            out = out.replace(v, "<redacted>");
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            out = out.replace(&enc, "<redacted>");
        }
    }
    cut_queries(&out)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Cuts the query of every `http(s)://` URL in `text`.
fn cut_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '>' || c == ')')
            .unwrap_or(tail.len());
        let url = &tail[..end];
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?<query redacted>");
            }
            None => out.push_str(url),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("Eby8vdM02xNOcqFl+q/==");
        assert_eq!(format!("{s:?}"), "<redacted>");
        let text = "GET http://h/a/b?sv=2020&sig=Eby8vdM02xNOcqFl%2Bq%2F%3D%3D failed: key Eby8vdM02xNOcqFl+q/== bad\nnext";
        let r = redact(text, &[s]);
        assert!(!r.contains("Eby8"), "{r}");
        assert!(!r.contains("sig="), "{r}");
        assert!(!r.contains('\n'));
        assert!(r.contains("http://h/a/b?<query redacted>"), "{r}");
    }
}
