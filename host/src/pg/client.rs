//! Connecting with tokio-postgres from resolved parameters, with errors that
//! say where and as whom.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::libpq::Resolved;
use crate::report::Failure;

/// Connects; the connection is driven by a background task.
pub async fn connect(r: &Resolved) -> anyhow::Result<Client> {
    let p = &r.params;
    let target = describe(r);
    match p.get("sslmode") {
        Some("require") | Some("verify-ca") | Some("verify-full") => {
            return Err(Failure::new(format!("cannot connect to {target}"))
                .detail(format!(
                    "sslmode={} needs TLS, which pgclone's own connections do not support yet",
                    p.get("sslmode").unwrap()
                ))
                .hint("use sslmode=prefer for the connection pgclone makes; primary_conninfo keeps your sslmode")
                .into());
        }
        _ => {}
    }
    let mut cfg = tokio_postgres::Config::new();
    let host = p.get("hostaddr").or(p.get("host")).unwrap_or("localhost");
    cfg.host(host);
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
    // tokio-postgres bounds only the TCP connection; libpq's connect_timeout
    // bounds the whole start-up, so a host that accepts and never answers
    // (a stuck proxy, a frozen server) is bounded here the same way.
    let connecting = tokio::time::timeout(Duration::from_secs(timeout), cfg.connect(NoTls));
    let connected = connecting.await.map_err(|_| {
        Failure::new(format!("could not connect to {target}"))
            .detail(format!("no answer within {timeout} s (connect_timeout)"))
            .hint("check that the host and port are right and reachable from here; connect_timeout in the conninfo (or PGCONNECT_TIMEOUT) sets the limit")
    })?;
    let (client, conn) = connected.map_err(|e| {
        let mut f = Failure::new(format!("could not connect to {target}")).detail(error_text(&e));
        if r.password.is_none() && error_text(&e).contains("password") {
            f = f
                .hint("put the password in ~/.pgpass (or the file named by passfile / PGPASSFILE)");
        }
        f
    })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("connection closed: {e}");
        }
    });
    Ok(client)
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
                s = format!("{s}: {c}");
                src = c.source();
            }
            s
        }
    }
}
