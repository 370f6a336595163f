//! Connecting with tokio-postgres from resolved parameters, with errors that
//! say where and as whom.

use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

use super::libpq::Resolved;
use super::tls::{self, Mode};
use crate::report::Failure;

/// Connects; the connection is driven by a background task. TLS follows
/// libpq's `sslmode` (see `tls`).
pub async fn connect(r: &Resolved) -> anyhow::Result<Client> {
    let p = &r.params;
    let target = describe(r);
    // libpq never uses TLS over a Unix socket, whatever sslmode says.
    let tls = if via_unix_socket(r) {
        tls::mode(p)?;
        tls::Tls::off()
    } else {
        tls::settings(p, r.sslpassword.as_deref())?
    };
    let (mut cfg, timeout) = config(r)?;
    tracing::debug!(
        "connecting to {target} (database \"{}\", connect_timeout {timeout} s)",
        p.get("dbname").unwrap_or("")
    );
    if tls.direct {
        cfg.ssl_negotiation(tokio_postgres::config::SslNegotiation::Direct);
    }
    let with_tls = |cfg: &mut tokio_postgres::Config, mode| {
        cfg.ssl_mode(mode);
        let c = tls.connector.clone().expect("TLS is on");
        attempt(cfg.clone(), c, timeout)
    };
    let outcome = match tls.mode {
        Mode::Disable => attempt(cfg.clone(), NoTls, timeout).await,
        // allow: plain first, TLS if the server refuses it.
        Mode::Allow => match attempt(cfg.clone(), NoTls, timeout).await {
            Err(Attempt::Failed(first)) => with_tls(&mut cfg, SslMode::Require)
                .await
                .map_err(|e| e.after(&first)),
            other => other,
        },
        // prefer: TLS when the server has it; plain if that fails (libpq too).
        Mode::Prefer => match with_tls(&mut cfg, SslMode::Prefer).await {
            Err(Attempt::Failed(first)) => {
                cfg.ssl_mode(SslMode::Disable);
                attempt(cfg.clone(), NoTls, timeout)
                    .await
                    .map_err(|e| e.after(&first))
            }
            other => other,
        },
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => {
            with_tls(&mut cfg, SslMode::Require).await
        }
    };
    outcome.map_err(|e| match e {
        Attempt::Timeout => Failure::new(format!("could not connect to {target}"))
            .detail(format!("no answer within {timeout} s (connect_timeout)"))
            .hint("check that the host and port are right and reachable from here; connect_timeout in the conninfo (or PGCONNECT_TIMEOUT) sets the limit")
            .into(),
        // The certificate's names were refused: libpq's words, and what the
        // certificate is valid for.
        Attempt::Failed(_) if tls.name_refusal().is_some() => {
            let n = tls.name_refusal().expect("checked");
            Failure::new(format!("could not connect to {target}"))
                .detail(n.message.clone())
                .hint(n.hint())
                .into()
        }
        Attempt::Failed(text) => failure(r, &target, &text),
    })
}

/// The failure of a connection, with a hint for a TLS or password problem.
fn failure(r: &Resolved, target: &str, text: &str) -> anyhow::Error {
    let mut f = Failure::new(format!("could not connect to {target}")).detail(text.to_string());
    if let Some(h) = tls::hint_for(text) {
        f = f.hint(h);
    } else if let Some((detail, hint)) = r.password_problem(text, false) {
        // tokio-postgres' own words ("invalid configuration: password
        // missing") say nothing to an operator.
        f = f.detail(detail).hint(hint);
    } else if let Some(h) = nobody_listening_hint(r, text) {
        f = f.hint(h);
    }
    f.into()
}

/// psql's hint when nothing listens where the connection went: a refused TCP
/// connection, or a Unix socket that is absent or refuses.
fn nobody_listening_hint(r: &Resolved, text: &str) -> Option<&'static str> {
    let unix = via_unix_socket(r);
    // Rust's io::Error texts (the C locale's strerror, whatever LANG says).
    let refused = text.contains("Connection refused");
    if unix && (refused || text.contains("No such file or directory")) {
        Some("Is the server running locally and accepting connections on that socket?")
    } else if !unix && refused {
        Some("Is the server running on that host and accepting TCP/IP connections?")
    } else {
        None
    }
}

/// Whether the connection goes to a Unix socket (a host that is a directory).
fn via_unix_socket(r: &Resolved) -> bool {
    let p = &r.params;
    p.get("hostaddr").is_none() && p.get("host").is_some_and(|h| h.starts_with('/'))
}

/// Why one connection attempt failed.
enum Attempt {
    Timeout,
    Failed(String),
}

impl Attempt {
    /// A second attempt's failure, after a first one (as libpq reports both).
    fn after(self, first: &str) -> Attempt {
        match self {
            Attempt::Failed(t) if t != first => Attempt::Failed(format!("{first}; then: {t}")),
            other => other,
        }
    }
}

/// One connection attempt, bounded as a whole: tokio-postgres bounds only the
/// TCP connection; libpq's connect_timeout bounds the whole start-up, so a
/// host that accepts and never answers (a stuck proxy, a frozen server) is
/// bounded here the same way.
async fn attempt<T>(cfg: tokio_postgres::Config, tls: T, timeout: u64) -> Result<Client, Attempt>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + 'static + Send,
    T::Stream: Send + 'static,
{
    let connecting = tokio::time::timeout(Duration::from_secs(timeout), cfg.connect(tls));
    let connected = connecting.await.map_err(|_| Attempt::Timeout)?;
    let (client, conn) = connected.map_err(|e| Attempt::Failed(error_text(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("connection closed: {e}");
        }
    });
    Ok(client)
}

/// tokio-postgres' configuration from libpq's parameters, and the timeout.
fn config(r: &Resolved) -> anyhow::Result<(tokio_postgres::Config, u64)> {
    let p = &r.params;
    let mut cfg = tokio_postgres::Config::new();
    // The host name stays the name TLS verifies; hostaddr, when given, is
    // where the connection goes (as in libpq).
    let host = p.get("host").unwrap_or("localhost");
    cfg.host(host);
    if let Some(a) = p.get("hostaddr") {
        let ip = a
            .parse()
            .map_err(|_| Failure::new(format!("invalid hostaddr \"{a}\"")))?;
        cfg.hostaddr(ip);
        if p.get("host").is_none() {
            cfg.host(a);
        }
    }
    let port: u16 =
        p.get("port").unwrap_or("5432").parse().map_err(|_| {
            Failure::new(format!("invalid port \"{}\"", p.get("port").unwrap_or("")))
        })?;
    cfg.port(port);
    cfg.user(p.get("user").unwrap_or("postgres"));
    cfg.dbname(p.get("dbname").unwrap_or("postgres"));
    cfg.application_name(p.get("application_name").unwrap_or("pgclone"));
    if let Some(o) = p.get("options") {
        cfg.options(o);
    }
    let timeout = p
        .get("connect_timeout")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(10);
    cfg.connect_timeout(Duration::from_secs(timeout));
    // A server that stops answering mid-query is noticed within about 30 s.
    cfg.keepalives(true)
        .keepalives_idle(Duration::from_secs(15))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3);
    if let Some(pw) = &r.password {
        cfg.password(pw.as_bytes());
    }
    Ok((cfg, timeout))
}

/// `server "host:port" as user "u"`, for messages.
pub fn describe(r: &Resolved) -> String {
    let p = &r.params;
    format!(
        "server \"{}:{}\" as user \"{}\"",
        p.get("host").unwrap_or(""),
        p.get("port").unwrap_or(""),
        p.get("user").unwrap_or("")
    )
}

/// The server's own message when there is one, else the client error.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(c) = src {
                // TLS errors repeat their cause in their own text.
                let t = c.to_string();
                if !s.contains(&t) {
                    s = format!("{s}: {t}");
                }
                src = c.source();
            }
            tls::tidy(&s)
        }
    }
}
