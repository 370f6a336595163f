//! Reaching the upstream: pgclone's own connection (as the metadata user),
//! the conninfo the standby will stream with, and a real replication
//! connection as the replication user.

use std::path::Path;

use tokio_postgres::Client;

use crate::environment::HostEnv;
use crate::pg::client;
use crate::pg::libpq::{self, Resolved};
use crate::pg::ConnInfo;
use crate::report::{self, Failure};

use super::settings::NodeSettings;
use super::upstream::{self, Identity};
use super::CloneOptions;

/// The upstream's connection parameters from -d/-h/-p/-U.
pub fn source_conninfo(o: &CloneOptions) -> anyhow::Result<ConnInfo> {
    let mut c = match &o.dbname {
        Some(d) if d.contains('=') || d.contains("://") => ConnInfo::parse(d).map_err(|e| {
            Failure::new(format!("invalid -d/--dbname \"{d}\"")).detail(e.to_string())
        })?,
        Some(d) => {
            let mut c = ConnInfo::default();
            c.set("dbname", d);
            c
        }
        None => ConnInfo::default(),
    };
    if let Some(h) = &o.host {
        c.set("host", h);
    }
    if let Some(p) = &o.port {
        c.set("port", p);
    }
    if let Some(u) = &o.user {
        c.set("user", u);
    }
    if let Some(s) = &o.upstream_conninfo {
        // The site's TLS rule for the standby binds the copy and pgclone's
        // own connections too: pg_basebackup must not escape it.
        if let Ok(up) = ConnInfo::parse(s) {
            inherit_tls(&mut c, &up);
        }
    }
    // hostaddr alone names the server too, as in libpq.
    let from_env = ["PGHOST", "PGHOSTADDR", "PGSERVICE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if ["host", "hostaddr", "service"]
        .iter()
        .all(|k| c.get(k).is_none())
        && !from_env
    {
        return Err(Failure::new("no upstream server given")
            .hint(format!(
                "name the server to clone from: {}",
                crate::invocation::command("standby clone -h PRIMARY -U USER -d DBNAME -D DATADIR")
            ))
            .into());
    }
    Ok(c)
}

/// Fills `to`'s unset TLS parameters from `from`, and raises its sslmode to
/// `from`'s when that is stricter.
pub fn inherit_tls(to: &mut ConnInfo, from: &ConnInfo) {
    const RANK: &[&str] = &[
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    ];
    let rank = |m: Option<&str>| RANK.iter().position(|r| Some(*r) == m.or(Some("prefer")));
    if from.get("sslmode").is_some() && rank(from.get("sslmode")) > rank(to.get("sslmode")) {
        to.set("sslmode", from.get("sslmode").unwrap_or("prefer"));
    }
    for (k, v) in from.params() {
        if k.starts_with("ssl") {
            to.set_default(k, v);
        }
    }
}

impl UpstreamSide {
    /// True when the upstream runs on this machine, so that its paths are
    /// ours too: its postmaster was found here, or it was reached through a
    /// Unix socket (always local, even when its process cannot be seen).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
            || self
                .meta
                .params
                .get("host")
                .is_some_and(|h| h.starts_with('/'))
    }
}

/// The upstream as pgclone sees it.
pub struct UpstreamSide {
    /// pgclone's own connection parameters (metadata user).
    pub meta: Resolved,
    pub client: Option<Client>,
    pub info: Option<upstream::Upstream>,
    /// What primary_conninfo is built from (no password).
    pub primary_conninfo: ConnInfo,
    pub replication_user: Option<String>,
    /// The upstream's postmaster when it runs on this machine.
    pub local: Option<upstream::LocalServer>,
}

/// Connects to the upstream and learns what the checks need. A failure is
/// fatal unless the clone can do without the upstream (Barman, conf-only).
/// `from_backup`: the source restores a backup, so the clone can do without
/// the upstream.
pub async fn upstream(
    o: &CloneOptions,
    node: &NodeSettings,
    from_backup: bool,
) -> anyhow::Result<UpstreamSide> {
    let mut source = source_conninfo(o)?;
    if let Some(pf) = &node.passfile {
        source.set_default("passfile", pf);
    }
    let mut meta_ci = source.clone();
    if let Some(su) = &o.superuser {
        meta_ci.set("user", su);
    }
    let mut meta = libpq::resolve(&meta_ci, false)?;
    // The replication connection as the configuration names it: a missing
    // password's hint covers it too.
    let repl = libpq::resolve(
        &replication_conninfo(o, node, &meta.params, node.replication_user.as_deref())?,
        true,
    )?;
    if repl.password.is_none() {
        meta.others_without_password.push(repl.password_key(true));
    }
    report::info(&format!(
        "connecting to upstream node ({})",
        client::describe(&meta)
    ));
    let client = match client::connect(&meta).await {
        Ok(c) => Some(c),
        // For Patroni, the replication connection below must work: it shows
        // that the leader is there and of the backup's database system.
        Err(e) if o.replication_conf_only || from_backup => {
            report::warning(&report::render(&e).replacen("ERROR: ", "", 1), None);
            None
        }
        Err(e) => return Err(e),
    };
    let mut replication_user = node.replication_user.clone();
    let mut primary_conninfo = match &o.upstream_conninfo {
        Some(s) => ConnInfo::parse(s).map_err(|e| {
            Failure::new(format!("invalid --upstream-conninfo \"{s}\"")).detail(e.to_string())
        })?,
        None => {
            let mut c = source.clone();
            c.remove("service");
            for (k, v) in meta.params.params() {
                if k != "user" || o.superuser.is_none() {
                    c.set_default(k, v);
                }
            }
            c
        }
    };
    if let (Some(id), Some(c)) = (o.upstream_node_id, &client) {
        let (ci, repluser) = repmgr_node(c, id).await?;
        report::info(&format!(
            "upstream node {id} from repmgr.nodes: {}",
            ci.without_password()
        ));
        if o.upstream_conninfo.is_none() {
            primary_conninfo = ci;
        }
        if replication_user.is_none() {
            replication_user = repluser;
        }
    }
    // The standby is held to the TLS settings pgclone connected with.
    inherit_tls(&mut primary_conninfo, &meta.params);
    primary_conninfo.remove("password");
    primary_conninfo.remove("passfile");
    let info = match &client {
        Some(c) => Some(upstream::inspect(c).await?),
        None => None,
    };
    let local = match (&client, &info) {
        (Some(c), Some(u)) => upstream::find_local(c, u.data_directory.as_deref()).await,
        _ => None,
    };
    Ok(UpstreamSide {
        meta,
        client,
        info,
        primary_conninfo,
        replication_user,
        local,
    })
}

/// `repmgr.nodes`' conninfo and replication user for node `id`.
async fn repmgr_node(
    c: &tokio_postgres::Client,
    id: u32,
) -> anyhow::Result<(ConnInfo, Option<String>)> {
    let row = c
        .query_opt("SELECT conninfo, repluser FROM repmgr.nodes WHERE node_id = $1", &[&(id as i32)])
        .await
        .map_err(|e| {
            Failure::new("could not read repmgr's metadata (repmgr.nodes) on the upstream")
                .detail(client::error_text(&e))
                .hint("--upstream-node-id needs a repmgr-managed cluster; use --upstream-conninfo otherwise")
        })?
        .ok_or_else(|| {
            Failure::new(format!("node {id} is not registered in repmgr.nodes"))
                .hint("check the node id with `repmgr cluster show`")
        })?;
    let ci: String = row.get(0);
    let ci = ConnInfo::parse(&ci).map_err(|e| {
        Failure::new(format!("node {id}'s conninfo is invalid")).detail(e.to_string())
    })?;
    let repluser: Option<String> = row.get(1);
    Ok((ci, repluser.filter(|u| !u.is_empty())))
}

/// The replication connection's parameters: pgclone's own, as the
/// replication user (with `-S`, the -d/-h/-p/-U ones, not the superuser's).
pub fn replication(
    o: &CloneOptions,
    node: &NodeSettings,
    up: &UpstreamSide,
) -> anyhow::Result<Resolved> {
    let ci = replication_conninfo(o, node, &up.meta.params, up.replication_user.as_deref())?;
    let mut repl = libpq::resolve(&ci, true)?;
    // pgclone's own connection found no password either (it did without
    // the upstream): the hint covers it too.
    if up.client.is_none() && up.meta.password.is_none() {
        repl.others_without_password
            .push(up.meta.password_key(false));
    }
    // Resolving took the key's passphrase out of the parameters.
    if repl.sslpassword.is_none() {
        repl.sslpassword = up.meta.sslpassword.clone();
    }
    Ok(repl)
}

/// The replication connection's parameters as `user` (pgclone's own
/// otherwise; with `-S`, the -d/-h/-p/-U ones).
fn replication_conninfo(
    o: &CloneOptions,
    node: &NodeSettings,
    meta: &ConnInfo,
    user: Option<&str>,
) -> anyhow::Result<ConnInfo> {
    let mut ci = meta.clone();
    if o.superuser.is_some() {
        ci = source_conninfo(o)?;
        if let Some(pf) = &node.passfile {
            ci.set_default("passfile", pf);
        }
    }
    if let Some(u) = user {
        ci.set("user", u);
    }
    Ok(ci)
}

/// What a replication connection (IDENTIFY_SYSTEM) to the upstream showed.
pub enum Replication {
    /// Not tried: the upstream could not be reached at all.
    NotTried,
    Works(Identity),
    Fails(anyhow::Error),
}

impl Replication {
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Replication::Works(id) => Some(id),
            _ => None,
        }
    }
}

/// Opens a replication connection as the replication user. Patroni names the
/// leader to clone from, so it is tried even when pgclone's own connection
/// failed.
pub async fn identify(
    o: &CloneOptions,
    node: &NodeSettings,
    up: &UpstreamSide,
    repl: &Resolved,
    env: &HostEnv,
    scratch: &Path,
) -> anyhow::Result<Replication> {
    if up.info.is_none() && !o.patroni {
        return Ok(Replication::NotTried);
    }
    let psql = env.find_program("psql").ok_or_else(|| {
        Failure::new("program \"psql\" not found")
            .hint("install postgresql-client, or set pg_bindir")
    })?;
    Ok(
        match upstream::identify_system(&psql, repl, node.passfile.as_deref(), scratch).await {
            Ok(id) => Replication::Works(id),
            Err(e) => Replication::Fails(e),
        },
    )
}
