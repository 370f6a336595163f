//! libpq connection strings: `key=value` pairs and `postgresql://` URIs.

use std::fmt;

/// Ordered connection parameters. Keys are libpq keywords.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnInfo {
    params: Vec<(String, String)>,
}

/// A conninfo string that libpq would reject too.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid connection string: {0}")]
pub struct ConnInfoError(pub String);

/// Every keyword libpq knows (PostgreSQL 9.6 to 18): libpq refuses any other
/// (`invalid connection option`), so pgclone does too, before it is written
/// into a `primary_conninfo` the standby could not use.
const KEYWORDS: &[&str] = &[
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

impl ConnInfo {
    /// Parses a keyword/value string or a `postgresql://`/`postgres://` URI.
    pub fn parse(s: &str) -> Result<ConnInfo, ConnInfoError> {
        let t = s.trim();
        let c = if t.starts_with("postgresql://") || t.starts_with("postgres://") {
            parse_uri(t)?
        } else {
            parse_kv(t)?
        };
        if let Some((k, _)) = c
            .params
            .iter()
            .find(|(k, _)| !KEYWORDS.contains(&k.as_str()))
        {
            return Err(ConnInfoError(format!(
                "invalid connection option \"{}\" (not a libpq keyword)",
                k.escape_debug()
            )));
        }
        Ok(c)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key`, replacing it in place or appending it.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.params.iter_mut().find(|(k, _)| k == key) {
            Some(p) => p.1 = value.to_string(),
            None => self.params.push((key.to_string(), value.to_string())),
        }
    }

    /// Sets `key` only when it is not set.
    pub fn set_default(&mut self, key: &str, value: &str) {
        if self.get(key).is_none() {
            self.set(key, value);
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.params.retain(|(k, _)| k != key);
    }

    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The same parameters without `password`: what may be shown or logged.
    pub fn without_password(&self) -> ConnInfo {
        let mut c = self.clone();
        c.remove("password");
        c
    }
}

/// Quotes a value for a keyword/value conninfo string.
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && c != '\'' && c != '\\' && c != '=');
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

impl fmt::Display for ConnInfo {
    /// Renders as `key=value ...`; a password is shown as `********`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| {
                if k == "password" || k == "sslpassword" {
                    format!("{k}=********")
                } else {
                    format!("{k}={}", quote(v))
                }
            })
            .collect();
        f.write_str(&parts.join(" "))
    }
}

impl ConnInfo {
    /// Renders as `key=value ...` including any password: only for a child's
    /// environment or a file, never for argv or messages.
    pub fn to_secret_string(&self) -> String {
        self.params
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn parse_kv(s: &str) -> Result<ConnInfo, ConnInfoError> {
    let mut params = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(ConnInfoError(format!("missing \"=\" after \"{key}\"")));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(ConnInfoError(format!(
                    "unterminated quoted string for \"{key}\""
                )));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        if key.is_empty() {
            return Err(ConnInfoError("missing keyword before \"=\"".into()));
        }
        params.push((key, value));
    }
    Ok(ConnInfo { params })
}

fn percent_decode(s: &str) -> Result<String, ConnInfoError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            // Two hex digits: from_str_radix alone would take "+1" too.
            let hex = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ConnInfoError(format!("invalid percent-encoding in \"{s}\"")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ConnInfoError(format!("invalid UTF-8 in \"{s}\"")))
}

fn parse_uri(s: &str) -> Result<ConnInfo, ConnInfoError> {
    let rest = s.split_once("://").map(|x| x.1).unwrap_or("");
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = main.split_once('/').unwrap_or((main, ""));
    let mut c = ConnInfo::default();
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            if !user.is_empty() {
                c.set("user", &percent_decode(user)?);
            }
            if !password.is_empty() {
                c.set("password", &percent_decode(password)?);
            }
            hp
        }
        None => authority,
    };
    if !hostport.is_empty() {
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, p) = h
                .split_once(']')
                .ok_or_else(|| ConnInfoError("unterminated [ in host".into()))?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (hostport.to_string(), ""),
            }
        };
        if !host.is_empty() {
            c.set("host", &percent_decode(&host)?);
        }
        if !port.is_empty() {
            c.set("port", port);
        }
    }
    if !path.is_empty() {
        c.set("dbname", &percent_decode(path)?);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| ConnInfoError(format!("missing \"=\" in URI parameter \"{pair}\"")))?;
        c.set(&percent_decode(k)?, &percent_decode(v)?);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_libpq_does_not_know_are_refused_in_every_spelling() {
        for bad in [
            "host=a sslmod=require",
            "postgresql://a/db?sslmod=require",
            "postgresql://a/db?ssl%6dode%3D=require",
            "postgresql://a/db?application%20name=x",
        ] {
            let e = ConnInfo::parse(bad).unwrap_err();
            assert!(
                e.to_string().contains("invalid connection option"),
                "{bad}: {e}"
            );
        }
        // A percent-encoded keyword that decodes to a real one is fine, as in libpq.
        let c = ConnInfo::parse("postgresql://a/db?ssl%6dode=require").unwrap();
        assert_eq!(c.get("sslmode"), Some("require"));
    }

    #[test]
    fn keyword_value_strings() {
        let c =
            ConnInfo::parse("host=node1 port = 5433 user='rep mgr' password='a\\'b' dbname=repmgr")
                .unwrap();
        assert_eq!(c.get("host"), Some("node1"));
        assert_eq!(c.get("port"), Some("5433"));
        assert_eq!(c.get("user"), Some("rep mgr"));
        assert_eq!(c.get("password"), Some("a'b"));
        assert_eq!(
            c.to_string(),
            "host=node1 port=5433 user='rep mgr' password=******** dbname=repmgr"
        );
        assert_eq!(ConnInfo::parse(&c.to_secret_string()).unwrap(), c);
    }

    #[test]
    fn uris() {
        let c = ConnInfo::parse(
            "postgresql://rep%40l:s3cr%3At@[::1]:5433/app?sslmode=require&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(c.get("user"), Some("rep@l"));
        assert_eq!(c.get("password"), Some("s3cr:t"));
        assert_eq!(c.get("host"), Some("::1"));
        assert_eq!(c.get("port"), Some("5433"));
        assert_eq!(c.get("dbname"), Some("app"));
        assert_eq!(c.get("sslmode"), Some("require"));
        let c = ConnInfo::parse("postgres://node1/db").unwrap();
        assert_eq!(c.get("host"), Some("node1"));
        assert_eq!(c.get("port"), None);
    }

    #[test]
    fn malformed_strings_are_errors() {
        assert!(ConnInfo::parse("host").is_err());
        assert!(ConnInfo::parse("host='x").is_err());
        assert!(ConnInfo::parse("=x").is_err());
        assert!(ConnInfo::parse("postgresql://h/?a").is_err());
    }
}

/// Conninfo comes from the command line, configuration files and plugins:
/// any text is a connection string or a clean error, and what pgclone writes
/// reads back as it was.
#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    const SAMPLES: &[&str] = &[
        "host=node1 port=5432 user=repmgr dbname=repmgr connect_timeout=2",
        "host=node2 user='rep mgr' password='a\\'b' sslmode=verify-full sslrootcert=/etc/ssl/root.crt application_name=node2",
        "postgresql://rep%40l:s3cr%3At@[::1]:5433/app?sslmode=require&connect_timeout=5",
        "postgres://node1:5432/postgres?application_name=n%20one",
    ];

    fn params() -> impl Strategy<Value = Vec<(&'static str, String)>> {
        proptest::collection::vec(
            (
                proptest::sample::select(KEYWORDS),
                prop_oneof![
                    any::<String>(),
                    fuzz::words(&["a", "'", "\\", "=", " ", "\t"])
                ],
            ),
            0..6,
        )
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn any_text_is_a_conninfo_of_known_keywords_or_an_error(
            s in prop_oneof![fuzz::mutated_any(SAMPLES), fuzz::any_text(), fuzz::words(&["host", "=", "'", "\\", " ", "postgresql://", "%", "@", "[", "]", ":", "/", "?", "&"])]
        ) {
            if let Ok(c) = ConnInfo::parse(&s) {
                prop_assert!(c.params().iter().all(|(k, _)| KEYWORDS.contains(&k.as_str())));
                // What pgclone then writes reads back the same.
                prop_assert_eq!(ConnInfo::parse(&c.to_secret_string()), Ok(c));
            }
        }

        /// Quoting then parsing gives back every value, whatever it holds.
        #[test]
        fn quote_then_parse_is_identity(params in params()) {
            let mut c = ConnInfo::default();
            for (k, v) in &params {
                c.set(k, v);
            }
            prop_assert_eq!(ConnInfo::parse(&c.to_secret_string()), Ok(c));
        }

        /// A percent escape is `%` and two hexadecimal digits, nothing else
        /// (libpq: "invalid percent-encoded token").
        #[test]
        fn percent_escapes_are_two_hex_digits(a in any::<char>(), b in any::<char>()) {
            let uri = format!("postgresql://h/db?application_name=%{a}{b}");
            let hex = a.is_ascii_hexdigit() && b.is_ascii_hexdigit();
            match ConnInfo::parse(&uri) {
                Ok(c) => {
                    prop_assert!(hex, "{:?} accepted as {:?}", uri, c.get("application_name"));
                }
                Err(_) => {
                    // Refused: not hex, or a byte that is not UTF-8 alone.
                    let byte = u8::from_str_radix(&[a, b].iter().collect::<String>(), 16);
                    prop_assert!(!hex || byte.is_ok_and(|x| x >= 0x80));
                }
            }
        }
    }

    #[test]
    fn a_sign_is_not_a_hex_digit() {
        // Found by percent_escapes_are_two_hex_digits: "%+1" decoded as
        // byte 1 (from_str_radix accepts a sign).
        assert!(ConnInfo::parse("postgresql://h/db?application_name=%+1").is_err());
        assert!(ConnInfo::parse("postgresql://h/db?application_name=%-1").is_err());
        let c = ConnInfo::parse("postgresql://h/db?application_name=%41%62").unwrap();
        assert_eq!(c.get("application_name"), Some("Ab"));
    }
}
