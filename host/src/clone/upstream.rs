//! The upstream server: what it is and whether a standby can be cloned from it.

use std::path::PathBuf;
use std::process::Stdio;

use tokio_postgres::Client;

use crate::pg::client::{self, error_text};
use crate::pg::libpq::Resolved;
use crate::pg::ConnInfo;
use crate::report::Failure;

/// One tablespace of the upstream.
#[derive(Debug, Clone)]
pub struct Tablespace {
    pub oid: u32,
    pub name: String,
    pub location: String,
}

/// What pgclone learned from the upstream.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub version_num: u32,
    pub version: String,
    pub in_recovery: bool,
    pub wal_level: String,
    pub max_wal_senders: i32,
    pub walsenders_in_use: i32,
    pub max_replication_slots: i32,
    pub slots_in_use: i32,
    pub hot_standby: bool,
    pub data_checksums: bool,
    pub wal_log_hints: bool,
    /// The port it listens on.
    pub port: i32,
    /// Only visible to superusers and pg_read_all_settings.
    pub data_directory: Option<PathBuf>,
    pub config_files: Vec<PathBuf>,
    pub tablespaces: Vec<Tablespace>,
}

fn on(v: &str) -> bool {
    matches!(v, "on" | "true" | "yes" | "1")
}

/// Reads everything the checks need in a few queries.
pub async fn inspect(c: &Client) -> anyhow::Result<Upstream> {
    let q = |e: tokio_postgres::Error| {
        Failure::new("could not query the upstream").detail(error_text(&e))
    };
    let row = c
        .query_one(
            "SELECT current_setting('server_version_num')::int,
                    current_setting('server_version'),
                    pg_is_in_recovery(),
                    current_setting('wal_level'),
                    current_setting('max_wal_senders')::int,
                    (SELECT count(*) FROM pg_stat_replication)::int,
                    current_setting('max_replication_slots')::int,
                    (SELECT count(*) FROM pg_replication_slots)::int,
                    current_setting('hot_standby'),
                    current_setting('data_checksums'),
                    current_setting('wal_log_hints'),
                    current_setting('port')::int",
            &[],
        )
        .await
        .map_err(q)?;
    let version_num: i32 = row.get(0);
    let hot_standby: String = row.get(8);
    let checksums: String = row.get(9);
    let hints: String = row.get(10);
    // Only superusers (and pg_read_all_settings) see file locations.
    let (data_directory, config_files) = match c
        .query(
            "SELECT current_setting('data_directory'), s.f FROM (
                 SELECT DISTINCT sourcefile AS f FROM pg_settings WHERE sourcefile IS NOT NULL
                 UNION SELECT current_setting('hba_file') UNION SELECT current_setting('ident_file')
             ) s",
            &[],
        )
        .await
    {
        Ok(rows) if !rows.is_empty() => (
            Some(PathBuf::from(rows[0].get::<_, String>(0))),
            rows.iter()
                .map(|r| PathBuf::from(r.get::<_, String>(1)))
                .collect(),
        ),
        _ => (None, Vec::new()),
    };
    let tablespaces = c
        .query(
            "SELECT oid::int8, spcname::text, pg_tablespace_location(oid)
               FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid",
            &[],
        )
        .await
        .map_err(q)?
        .iter()
        .map(|r| Tablespace {
            oid: r.get::<_, i64>(0) as u32,
            name: r.get(1),
            location: r.get(2),
        })
        .collect();
    Ok(Upstream {
        port: row.get(11),
        version_num: version_num as u32,
        version: row.get(1),
        in_recovery: row.get(2),
        wal_level: row.get(3),
        max_wal_senders: row.get(4),
        walsenders_in_use: row.get(5),
        max_replication_slots: row.get(6),
        slots_in_use: row.get(7),
        hot_standby: on(&hot_standby),
        data_checksums: on(&checksums),
        wal_log_hints: on(&hints),
        data_directory,
        config_files,
        tablespaces,
    })
}

/// Whether slot `name` exists on the upstream, and whether it is in use.
pub async fn slot_state(c: &Client, name: &str) -> anyhow::Result<Option<bool>> {
    let rows = c
        .query(
            "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .map_err(|e| Failure::new("could not query replication slots").detail(error_text(&e)))?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// Where slot `name` holds WAL from (`restart_lsn`), if it exists and holds any.
pub async fn slot_restart_lsn(c: &Client, name: &str) -> anyhow::Result<Option<String>> {
    let rows = c
        .query(
            "SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .map_err(|e| Failure::new("could not query replication slots").detail(error_text(&e)))?;
    Ok(rows.first().and_then(|r| r.get(0)))
}

/// Creates physical slot `name`, reserving WAL from now on.
pub async fn create_slot(c: &Client, name: &str) -> anyhow::Result<()> {
    c.execute(
        "SELECT pg_create_physical_replication_slot($1, true)",
        &[&name],
    )
    .await
    .map_err(|e| {
        Failure::new(format!(
            "could not create replication slot \"{name}\" on the upstream"
        ))
        .detail(error_text(&e))
        .hint("the connecting user needs the REPLICATION attribute or superuser")
    })?;
    Ok(())
}

/// Drops slot `name` (after a failed clone).
/// A copy that was just stopped may still hold the slot for a moment (its
/// walsender ends when it notices the closed connection): an active slot is
/// tried again for up to ten seconds.
pub async fn drop_slot(c: &Client, name: &str) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    let deadline = start + std::time::Duration::from_secs(10);
    let mut said = false;
    loop {
        match c
            .execute("SELECT pg_drop_replication_slot($1)", &[&name])
            .await
        {
            Ok(_) => return Ok(()),
            Err(e)
                if error_text(&e).contains("is active") && std::time::Instant::now() < deadline =>
            {
                if !said && start.elapsed() > std::time::Duration::from_secs(1) {
                    said = true;
                    crate::report::notice(&format!(
                        "waiting for the stopped copy's connection to release replication slot \"{name}\" (up to 10 s)"
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(
                    Failure::new(format!("could not drop replication slot \"{name}\""))
                        .detail(error_text(&e))
                        .into(),
                )
            }
        }
    }
}

/// The pg_hba.conf line that lets `user` in, for the address the server
/// names in its refusal (`no pg_hba.conf entry for replication connection
/// from host "10.0.0.7", ...`, `pg_hba.conf rejects replication connection
/// for host "10.0.0.7", ...`): what it saw is what the line must match.
fn hba_hint(refusal: &str, user: &str) -> String {
    let seen = refusal
        .split_once(" host \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(h, _)| h);
    let user = if user.is_empty() { "all" } else { user };
    match seen {
        Some("[local]") => format!(
            "allow it in the upstream's pg_hba.conf: local replication {user} peer (or the method its other local lines use)"
        ),
        Some(ip) if ip.contains(':') => format!(
            "allow it in the upstream's pg_hba.conf: host replication {user} {ip}/128 scram-sha-256"
        ),
        Some(ip) => format!(
            "allow it in the upstream's pg_hba.conf: host replication {user} {ip}/32 scram-sha-256"
        ),
        None => format!(
            "allow it in the upstream's pg_hba.conf: host replication {user} ADDRESS/32 scram-sha-256, \
             with the address this host connects from"
        ),
    }
}

/// The result of a replication connection: `IDENTIFY_SYSTEM`'s answer.
#[derive(Debug, Clone)]
pub struct Identity {
    pub system_identifier: String,
    pub timeline: u32,
}

/// Opens a real replication connection as the replication user, through libpq
/// (psql), exactly as pg_basebackup and the standby will: this is the pg_hba
/// check. The password, if any, travels in the child's environment.
pub async fn identify_system(
    psql: &std::path::Path,
    repl: &Resolved,
    passfile: Option<&str>,
    scratch: &std::path::Path,
) -> anyhow::Result<Identity> {
    let mut ci: ConnInfo = repl.params.clone();
    ci.set("replication", "true");
    ci.set("dbname", "replication");
    ci.set_default("application_name", "pgclone");
    // libpq's default is to wait forever for a host that does not answer.
    ci.set_default("connect_timeout", "10");
    let mut cmd = tokio::process::Command::new(psql);
    cmd.args([
        "-X",
        "-w",
        "-A",
        "-t",
        "-F",
        "|",
        "-c",
        "IDENTIFY_SYSTEM",
        "-d",
    ])
    .arg(ci.to_secret_string())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    crate::child::dies_with_parent(cmd.as_std_mut());
    if let Some(pw) = &repl.password {
        cmd.env("PGPASSWORD", pw);
    }
    if let Some(pf) = passfile {
        cmd.env("PGPASSFILE", pf);
    }
    if let Some(sf) = repl.child_service_file(scratch)? {
        cmd.env("PGSERVICEFILE", sf).env("PGSERVICE", "pgclone");
    }
    crate::report::running(cmd.as_std());
    let out = cmd.output().await.map_err(|e| {
        Failure::new(format!("could not run \"{}\"", psql.display())).detail(e.to_string())
    })?;
    let target = client::describe(repl);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let mut f = Failure::new(format!("a replication connection to {target} failed"))
            .detail(stderr.clone());
        f = if stderr.contains("pg_hba.conf") {
            f.hint(hba_hint(&stderr, repl.params.get("user").unwrap_or("")))
        } else if let Some((detail, hint)) = repl.password_problem(&stderr, true) {
            f.detail(format!("{stderr}\n{detail}")).hint(hint)
        } else {
            f.hint("check that the upstream is running and accepts connections")
        };
        return Err(f.into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.trim().split('|').collect();
    if fields.len() < 2 {
        return Err(Failure::new("unexpected answer to IDENTIFY_SYSTEM")
            .detail(text.to_string())
            .into());
    }
    Ok(Identity {
        system_identifier: fields[0].to_string(),
        timeline: fields[1].parse().unwrap_or(0),
    })
}

/// The upstream's postmaster, when it runs on this machine: found by what the
/// server is (its backend's parent process, its port and start time, its
/// `postmaster.pid`), never by how its host was spelled (`127.1`, a name, a
/// socket path, `::ffff:127.0.0.1` all reach the same server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalServer {
    pub pid: i32,
    /// Its data directory, symbolic links resolved.
    pub data_dir: PathBuf,
}

/// Looks for the upstream's postmaster among this machine's processes.
pub async fn find_local(
    c: &Client,
    data_directory: Option<&std::path::Path>,
) -> Option<LocalServer> {
    let row = c
        .query_one(
            "SELECT pg_backend_pid(), current_setting('port')::int,
                    extract(epoch FROM pg_postmaster_start_time())::int8",
            &[],
        )
        .await
        .ok()?;
    let backend: i32 = row.get(0);
    let port: i32 = row.get(1);
    let started: i64 = row.get(2);
    let postmaster = parent_pid(backend)?;
    // The postmaster works in its data directory.
    let cwd = std::fs::read_link(format!("/proc/{postmaster}/cwd")).ok();
    for dir in cwd.iter().map(|p| p.as_path()).chain(data_directory) {
        let Some(pf) = super::safety::live_pid_file(dir) else {
            continue;
        };
        let same = pf.pid == postmaster
            && pf.port == Some(port as u16)
            && pf.start.is_some_and(|s| (s - started).abs() <= 5);
        if same {
            return Some(LocalServer {
                pid: postmaster,
                data_dir: std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
            });
        }
    }
    None
}

/// The parent of process `pid` on this machine (field 4 of /proc/PID/stat,
/// after the command name in parentheses, which may itself hold any byte).
fn parent_pid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}
