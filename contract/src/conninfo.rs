//! libpq connection strings (`host=db1 port=5432 user=repl` and
//! `postgresql://` URIs), read as libpq's `PQconninfoParse` reads them, so
//! that the host and every plugin agree with libpq and with each other on
//! what a `primary_conninfo` says.
//!
//! The rules, from libpq's `conninfo_parse` and `conninfo_uri_parse_options`
//! (src/interfaces/libpq/fe-connect.c):
//! - only C-locale `isspace` separates (space, `\t`, `\n`, `\v`, `\f`, `\r`);
//!   other Unicode whitespace is part of a word;
//! - a backslash escapes the next character; a backslash at the very end of
//!   an unquoted value is dropped, inside quotes it leaves the string
//!   unterminated;
//! - a keyword given twice keeps its first place and its last value;
//! - `requiressl` is read as `sslmode` (`1…` is `require`, else `prefer`),
//!   and in a URI `ssl=true` is `sslmode=require`;
//! - a URI's user and password end at the first `@` before any `/`, hosts
//!   and ports are comma-separated lists, a percent escape is exactly two hex
//!   digits and never `%00`, every query parameter is `key=value`.

use std::fmt;

/// Ordered connection parameters, one per libpq keyword.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnInfo {
    params: Vec<(String, String)>,
}

/// A conninfo string that libpq would reject too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfoError(pub String);

impl fmt::Display for ConnInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid connection string: {}", self.0)
    }
}

impl std::error::Error for ConnInfoError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ConnInfoError> {
    Err(ConnInfoError(msg.into()))
}

/// Every keyword libpq knows (PostgreSQL 9.6 to 18): libpq refuses any other
/// (`invalid connection option`), so pgclone does too, before it is written
/// into a `primary_conninfo` the standby could not use.
pub const KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslkeylogfile",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "min_protocol_version",
    "max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
    "scram_client_key",
    "scram_server_key",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
    "authtype",
    "tty",
];

/// Keywords whose values are never shown.
const SECRET: &[&str] = &["password", "sslpassword"];

/// C's `isspace` in the C locale: what libpq splits on.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

impl ConnInfo {
    /// Parses a keyword/value string or a `postgresql://`/`postgres://` URI,
    /// refusing keywords libpq does not know.
    pub fn parse(s: &str) -> Result<ConnInfo, ConnInfoError> {
        let mut c = ConnInfo::default();
        match s
            .strip_prefix("postgresql://")
            .or_else(|| s.strip_prefix("postgres://"))
        {
            Some(rest) => parse_uri(rest, &mut c)?,
            None => parse_kv(s, &mut c)?,
        }
        Ok(c)
    }

    /// Parameters as given, unchecked (a plugin's own list).
    pub fn from_pairs(params: Vec<(String, String)>) -> ConnInfo {
        ConnInfo { params }
    }

    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.params
    }

    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The value of `key`: the last one when it is repeated, as libpq reads it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` in place of its first occurrence (any later one is removed,
    /// so it cannot override the new value), appended otherwise.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.params.iter().position(|(k, _)| k == key) {
            Some(i) => {
                self.params[i].1 = value.to_string();
                let mut seen = false;
                self.params.retain(|(k, _)| {
                    let later = k == key && seen;
                    seen |= k == key;
                    !later
                });
            }
            None => self.params.push((key.to_string(), value.to_string())),
        }
    }

    /// Sets `key` only when it is not set.
    pub fn set_default(&mut self, key: &str, value: &str) {
        if self.get(key).is_none() {
            self.set(key, value);
        }
    }

    /// Removes every `key`; true when there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.params.len();
        self.params.retain(|(k, _)| k != key);
        self.params.len() != before
    }

    /// The same parameters without `password`: what may be shown or logged.
    pub fn without_password(&self) -> ConnInfo {
        let mut c = self.clone();
        c.remove("password");
        c
    }

    /// Renders as `key=value ...` including any password: only for a child's
    /// environment or a file, never for argv or messages.
    pub fn to_secret_string(&self) -> String {
        render(self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Stores one parsed parameter as libpq's `conninfo_storeval` does.
    fn store(&mut self, key: &str, value: &str) -> Result<(), ConnInfoError> {
        let (key, value) = match key {
            "requiressl" if value.starts_with('1') => ("sslmode", "require"),
            "requiressl" => ("sslmode", "prefer"),
            _ => (key, value),
        };
        if !KEYWORDS.contains(&key) {
            return err(format!(
                "invalid connection option \"{}\" (not a libpq keyword)",
                key.escape_debug()
            ));
        }
        self.set(key, value);
        Ok(())
    }
}

/// Quotes a value as libpq's parser expects: bare when it is a plain word,
/// otherwise in single quotes with `\` and `'` escaped by a backslash.
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| is_space(c) || matches!(c, '\'' | '\\' | '='));
    if plain {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Joins parameters into `key=value key=value`, values quoted as needed.
pub fn render<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    params
        .into_iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for ConnInfo {
    /// Renders as `key=value ...`; a password is shown as `********`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.params.iter().map(|(k, v)| {
            let v = if SECRET.contains(&k.as_str()) {
                "********"
            } else {
                v.as_str()
            };
            (k.as_str(), v)
        });
        f.write_str(&render(shown))
    }
}

fn parse_kv(s: &str, c: &mut ConnInfo) -> Result<(), ConnInfoError> {
    let mut chars = s.chars().peekable();
    let skip_spaces = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        while chars.next_if(|&ch| is_space(ch)).is_some() {}
    };
    loop {
        skip_spaces(&mut chars);
        if chars.peek().is_none() {
            return Ok(());
        }
        let mut key = String::new();
        while let Some(ch) = chars.next_if(|&ch| ch != '=' && !is_space(ch)) {
            key.push(ch);
        }
        skip_spaces(&mut chars);
        if chars.next() != Some('=') {
            return err(format!("missing \"=\" after \"{}\"", key.escape_debug()));
        }
        skip_spaces(&mut chars);
        let value = if chars.next_if_eq(&'\'').is_some() {
            quoted(&mut chars).ok_or_else(|| {
                ConnInfoError(format!(
                    "unterminated quoted string for \"{}\"",
                    key.escape_debug()
                ))
            })?
        } else {
            unquoted(&mut chars)
        };
        c.store(&key, &value)?;
    }
}

/// A quoted value after its opening quote; `None` when it never closes.
fn quoted(chars: &mut impl Iterator<Item = char>) -> Option<String> {
    let mut value = String::new();
    loop {
        match chars.next()? {
            '\\' => value.push(chars.next()?),
            '\'' => return Some(value),
            ch => value.push(ch),
        }
    }
}

/// An unquoted value, up to the next space.
fn unquoted(chars: &mut impl Iterator<Item = char>) -> String {
    let mut value = String::new();
    while let Some(ch) = chars.next() {
        if is_space(ch) {
            break;
        }
        if ch == '\\' {
            // At the very end, libpq drops the backslash.
            value.extend(chars.next());
        } else {
            value.push(ch);
        }
    }
    value
}

/// `%XX` escapes decoded; `%00`, a bad escape or bytes that are not UTF-8
/// are errors.
fn percent_decode(s: &str) -> Result<String, ConnInfoError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        // Two hex digits: from_str_radix alone would take "+1" too.
        let byte = s
            .get(i + 1..i + 3)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match byte {
            None => return err(format!("invalid percent-encoding in \"{s}\"")),
            Some(0) => return err(format!("forbidden %00 in \"{s}\"")),
            Some(x) => out.push(x),
        }
        i += 3;
    }
    String::from_utf8(out).map_err(|_| ConnInfoError(format!("invalid UTF-8 in \"{s}\"")))
}

/// `rest` is the URI after its `postgresql://` prefix.
fn parse_uri(rest: &str, c: &mut ConnInfo) -> Result<(), ConnInfoError> {
    let mut p = rest;
    // Credentials end at the first '@' seen before any '/'.
    if let Some(at) = p.find(['@', '/']).filter(|&i| p.as_bytes()[i] == b'@') {
        let (user, password) = match p[..at].split_once(':') {
            Some((u, pw)) => (u, pw),
            None => (&p[..at], ""),
        };
        if !user.is_empty() {
            c.store("user", &percent_decode(user)?)?;
        }
        if !password.is_empty() {
            c.store("password", &percent_decode(password)?)?;
        }
        p = &p[at + 1..];
    }
    let (mut hosts, mut ports) = (String::new(), String::new());
    let mut end = loop {
        let after = if let Some(r) = p.strip_prefix('[') {
            let close = r
                .find(']')
                .ok_or_else(|| ConnInfoError("unterminated [ in host".into()))?;
            if close == 0 {
                return err("empty IPv6 host address in URI");
            }
            let after = &r[close + 1..];
            if let Some(x) = after.chars().next().filter(|x| !":/?,".contains(*x)) {
                return err(format!("unexpected \"{x}\" after IPv6 host address"));
            }
            hosts.push_str(&r[..close]);
            after
        } else {
            let e = p.find([':', '/', '?', ',']).unwrap_or(p.len());
            hosts.push_str(&p[..e]);
            &p[e..]
        };
        p = after;
        if let Some(port) = p.strip_prefix(':') {
            let e = port.find(['/', '?', ',']).unwrap_or(port.len());
            ports.push_str(&port[..e]);
            p = &port[e..];
        }
        match p.strip_prefix(',') {
            Some(next) => {
                p = next;
                hosts.push(',');
                ports.push(',');
            }
            None => break p.chars().next(),
        }
    };
    if !hosts.is_empty() {
        c.store("host", &percent_decode(&hosts)?)?;
    }
    if !ports.is_empty() {
        c.store("port", &percent_decode(&ports)?)?;
    }
    if end == Some('/') {
        let path = &p[1..];
        let e = path.find('?').unwrap_or(path.len());
        if e > 0 {
            c.store("dbname", &percent_decode(&path[..e])?)?;
        }
        p = &path[e..];
        end = p.chars().next();
    }
    if end == Some('?') {
        parse_query(&p[1..], c)?;
    }
    Ok(())
}

fn parse_query(mut q: &str, c: &mut ConnInfo) -> Result<(), ConnInfoError> {
    while !q.is_empty() {
        let (pair, rest) = q.split_once('&').unwrap_or((q, ""));
        q = rest;
        let Some((k, v)) = pair.split_once('=') else {
            return err(format!("missing \"=\" in URI parameter \"{pair}\""));
        };
        if v.contains('=') {
            return err(format!("extra \"=\" in URI parameter \"{pair}\""));
        }
        let (k, v) = (percent_decode(k)?, percent_decode(v)?);
        // JDBC's spelling, which libpq accepts.
        if k == "ssl" && v == "true" {
            c.store("sslmode", "require")?;
        } else {
            c.store(&k, &v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
