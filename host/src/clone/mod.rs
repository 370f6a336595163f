//! `pgclone standby clone`: preflight, plan, copy, verify, configure.
//!
//! Order matters for safety: every check runs before anything is touched; `-F`
//! empties the target only after they all passed; the recovery configuration
//! is written last, after a verified copy, so a failed clone can never be
//! started as a standby by mistake.

pub mod checks;
pub mod external;
pub mod steps;
pub mod target;
pub mod upstream;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{parse_bool, ConfFile, PluginsConfig};
use crate::pg::client;
use crate::pg::libpq::{self, Resolved};
use crate::pg::ConnInfo;
use crate::plugin::bindings::policy_api::RecoveryFacts;
use crate::plugin::bindings::types::{CloneRequest, ConnParam, NodeIdentity, Tablespace};
use crate::plugin::{cache, catalog, HostEnv, Plugin, Runtime};
use crate::recovery::{self, render::render, write::read_existing};
use crate::report::{self, Failure};

use checks::Checks;
pub use external::ExternalConfig;

/// Everything `standby clone` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct CloneOptions {
    pub data_dir: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub user: Option<String>,
    pub dbname: Option<String>,
    pub force: bool,
    pub fast_checkpoint: bool,
    pub dry_run: bool,
    pub upstream_conninfo: Option<String>,
    pub upstream_node_id: Option<u32>,
    pub without_barman: bool,
    pub copy_external_config_files: Option<ExternalConfig>,
    pub replication_conf_only: bool,
    pub replication_user: Option<String>,
    pub superuser: Option<String>,
    pub verify_backup: bool,
}

fn info(msg: &str) {
    eprintln!("INFO: {msg}");
}

/// The upstream's connection parameters from -d/-h/-p/-U.
fn source_conninfo(o: &CloneOptions) -> anyhow::Result<ConnInfo> {
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
    if c.get("host").is_none()
        && c.get("service").is_none()
        && std::env::var_os("PGHOST").is_none()
        && std::env::var_os("PGSERVICE").is_none()
    {
        return Err(Failure::new("no upstream server given")
            .hint("name the server to clone from: pgclone standby clone -h PRIMARY -U USER -d DBNAME -D DATADIR")
            .into());
    }
    Ok(c)
}

fn params(c: &ConnInfo) -> Vec<ConnParam> {
    c.params()
        .iter()
        .map(|(k, v)| ConnParam {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// True when `host` names this machine (so paths on the upstream are ours too).
fn is_local(host: &str) -> bool {
    host.starts_with('/') || matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// The whole command.
pub async fn run(
    conf: &ConfFile,
    plugins_cfg: &PluginsConfig,
    o: &CloneOptions,
) -> anyhow::Result<()> {
    if unsafe { libc::geteuid() } == 0 {
        return Err(Failure::new("pgclone standby clone must not be run as root")
            .detail("PostgreSQL refuses to run as root, so a data directory cloned by root cannot be started")
            .hint("run it as the owner of the data directory, e.g. runuser -u postgres -- pgclone standby clone ...")
            .into());
    }
    // Barman mode, as repmgr decides it.
    let barman = (conf.get("barman_host"), conf.get("barman_server"));
    match barman {
        (Some(_), None) | (None, Some(_)) => {
            return Err(
                Failure::new("barman_host and barman_server must be set together")
                    .detail(format!(
                        "barman_host is {}, barman_server is {}",
                        if barman.0.is_some() { "set" } else { "not set" },
                        if barman.1.is_some() { "set" } else { "not set" }
                    ))
                    .hint("set both to clone from Barman, or neither")
                    .into(),
            )
        }
        (Some(_), Some(_)) if !o.without_barman && !o.replication_conf_only => {
            return Err(Failure::new(
                "cloning from Barman is not available in this version of pgclone",
            )
            .hint("use --without-barman to clone from the upstream with pg_basebackup")
            .into())
        }
        _ => {}
    }

    let data_dir = o
        .data_dir
        .clone()
        .or_else(|| conf.get("data_directory").map(PathBuf::from))
        .ok_or_else(|| {
            Failure::new("no data directory given")
                .hint("use -D/--pgdata, or set data_directory in the configuration file")
        })?;
    let data_dir = if data_dir.is_absolute() {
        data_dir
    } else {
        std::env::current_dir()?.join(data_dir)
    };
    report::notice(&format!(
        "destination directory \"{}\" provided",
        data_dir.display()
    ));

    let node_id: Option<u32> = match conf.get("node_id") {
        Some(v) => Some(v.parse().map_err(|_| {
            Failure::new(format!("invalid node_id \"{v}\" in the configuration file"))
                .hint("node_id is a positive integer")
        })?),
        None => None,
    };
    let node_name = conf
        .get("node_name")
        .map(str::to_string)
        .unwrap_or_else(|| {
            let n = node_id
                .map(|i| format!("node{i}"))
                .unwrap_or_else(|| "standby".into());
            report::notice(&format!(
                "node_name is not set; using \"{n}\" as application_name"
            ));
            n
        });
    let use_slots = match conf.get("use_replication_slots") {
        Some(v) => parse_bool(v).ok_or_else(|| {
            Failure::new(format!("invalid use_replication_slots \"{v}\"")).hint("use true or false")
        })?,
        None => false,
    };
    let slot_name = if use_slots {
        Some(match (conf.get("replication_slot_name"), node_id) {
            (Some(n), _) => n.to_string(),
            (None, Some(id)) => format!("repmgr_slot_{id}"),
            (None, None) => return Err(Failure::new(
                "use_replication_slots is on but the slot has no name",
            )
            .hint("set node_id (the slot is then repmgr_slot_<node_id>) or replication_slot_name")
            .into()),
        })
    } else {
        None
    };
    let passfile = conf.get("passfile").map(str::to_string);
    let include_password = conf
        .get("use_primary_conninfo_password")
        .and_then(parse_bool)
        .unwrap_or(false);

    // Where the standby streams from: --upstream-conninfo, else the source.
    let mut source = source_conninfo(o)?;
    if let Some(pf) = &passfile {
        source.set_default("passfile", pf);
    }
    let mut checks = Checks::default();
    let meta_conn = {
        let mut c = source.clone();
        if let Some(su) = &o.superuser {
            c.set("user", su);
        }
        libpq::resolve(&c, false)?
    };
    info(&format!(
        "connecting to upstream node ({})",
        client::describe(&meta_conn)
    ));
    let upstream_client = match client::connect(&meta_conn).await {
        Ok(c) => Some(c),
        Err(e) if o.replication_conf_only => {
            report::warning(&report::render(&e).replacen("ERROR: ", "", 1), None);
            None
        }
        Err(e) => return Err(e),
    };

    let mut replication_user = o
        .replication_user
        .clone()
        .or_else(|| conf.get("replication_user").map(str::to_string));
    let mut upstream_ci = match &o.upstream_conninfo {
        Some(s) => ConnInfo::parse(s).map_err(|e| {
            Failure::new(format!("invalid --upstream-conninfo \"{s}\"")).detail(e.to_string())
        })?,
        None => meta_conn.params.clone(),
    };
    if let (Some(id), Some(c)) = (o.upstream_node_id, &upstream_client) {
        let (ci, repluser) = repmgr_node(c, id).await?;
        info(&format!(
            "upstream node {id} from repmgr.nodes: {}",
            ci.without_password()
        ));
        if o.upstream_conninfo.is_none() {
            upstream_ci = ci;
        }
        if replication_user.is_none() {
            replication_user = repluser;
        }
    }
    upstream_ci.remove("password");
    upstream_ci.remove("passfile");

    let upstream = match &upstream_client {
        Some(c) => Some(upstream::inspect(c).await?),
        None => None,
    };
    if let Some(u) = &upstream {
        checks.ok(format!(
            "upstream is PostgreSQL {} ({}){}",
            u.version,
            client::describe(&meta_conn),
            if u.in_recovery {
                ", a standby: cascading"
            } else {
                ""
            }
        ));
        if u.version_num < 90600 {
            checks.fail(format!(
                "PostgreSQL {} is not supported (9.6 or later)",
                u.version
            ));
        }
        if !matches!(u.wal_level.as_str(), "replica" | "logical" | "hot_standby") {
            checks.fail_hint(
                format!("wal_level is \"{}\" on the upstream", u.wal_level),
                "set wal_level = replica on the upstream and restart it",
            );
        } else {
            checks.ok(format!("wal_level = {}", u.wal_level));
        }
        if !o.replication_conf_only {
            // pg_basebackup -X stream takes two walsenders while it runs.
            let free = u.max_wal_senders - u.walsenders_in_use;
            if free < 2 {
                checks.fail_hint(
                    format!(
                        "max_wal_senders = {}, {} in use: 2 are needed for the clone",
                        u.max_wal_senders, u.walsenders_in_use
                    ),
                    "raise max_wal_senders on the upstream and restart it",
                );
            } else {
                checks.ok(format!(
                    "max_wal_senders = {}, {} in use, 2 needed",
                    u.max_wal_senders, u.walsenders_in_use
                ));
            }
        }
        if let (Some(slot), Some(c)) = (&slot_name, &upstream_client) {
            match upstream::slot_state(c, slot).await? {
                Some(true) => checks.fail_hint(
                    format!("replication slot \"{slot}\" exists on the upstream and is active"),
                    "another standby uses it: set a different replication_slot_name or node_id",
                ),
                Some(false) => checks.ok(format!(
                    "replication slot \"{slot}\" exists and is inactive: it will be used"
                )),
                None if u.max_replication_slots - u.slots_in_use < 1 => checks.fail_hint(
                    format!(
                        "max_replication_slots = {}, {} in use: no slot free for \"{slot}\"",
                        u.max_replication_slots, u.slots_in_use
                    ),
                    "raise max_replication_slots on the upstream, or drop unused slots",
                ),
                None => checks.ok(format!("replication slot \"{slot}\" will be created")),
            }
        }
        if !u.hot_standby {
            checks.warn(
                "hot_standby is off on the upstream: the standby will not accept read-only queries"
                    .into(),
            );
        }
        if !u.data_checksums && !u.wal_log_hints {
            checks.warn(
                "neither data checksums nor wal_log_hints are on: pg_rewind will not be able to rejoin this node after a failover".into(),
            );
        }
    }

    // The replication connection, as the replication user: the pg_hba check.
    let mut repl_ci = source.clone();
    if let Some(u) = &replication_user {
        repl_ci.set("user", u);
    }
    let repl_conn: Resolved = libpq::resolve(&repl_ci, true)?;
    let env = Arc::new(HostEnv {
        config: conf.clone(),
        targets: plugins_cfg.targets.clone(),
        ssh_options: Vec::new(),
    });
    let identity = if upstream.is_some() {
        let psql = env.find_program("psql").ok_or_else(|| {
            Failure::new("program \"psql\" not found")
                .hint("install postgresql-client, or set pg_bindir")
        })?;
        match upstream::identify_system(&psql, &repl_conn, passfile.as_deref()).await {
            Ok(id) => {
                checks.ok(format!(
                    "replication connection as \"{}\" works (system identifier {}, timeline {})",
                    repl_conn.params.get("user").unwrap_or(""),
                    id.system_identifier,
                    id.timeline
                ));
                Some(id)
            }
            Err(e) => {
                checks.fail_error(&e);
                None
            }
        }
    } else {
        None
    };

    // The target directory.
    let upstream_host = meta_conn.params.get("host").unwrap_or("").to_string();
    let source_dir = upstream
        .as_ref()
        .and_then(|u| u.data_directory.clone())
        .filter(|_| is_local(&upstream_host));
    let target = target::inspect(&data_dir, source_dir.as_deref())?;
    let server_version: u32;
    if o.replication_conf_only {
        let pg_version = match &target.state {
            target::TargetState::Populated {
                pg_version: Some(v),
                ..
            } => v.clone(),
            _ => return Err(Failure::new(format!(
                "\"{}\" is not a PostgreSQL data directory",
                data_dir.display()
            ))
            .detail(
                "--replication-conf-only writes the configuration into an existing data directory",
            )
            .hint("restore the data directory first, or clone without --replication-conf-only")
            .into()),
        };
        if let Some(pid) = target::running_postmaster(&target.real) {
            report::warning(
                &format!(
                    "a server (PID {pid}) is running in \"{}\"",
                    data_dir.display()
                ),
                Some("the new configuration takes effect at its next start"),
            );
        }
        server_version = match &upstream {
            Some(u) => u.version_num,
            None => version_from_dir(&pg_version)?,
        };
        checks.ok(format!(
            "\"{}\" is a PostgreSQL {pg_version} data directory",
            data_dir.display()
        ));
    } else {
        match target.check_usable(o.force) {
            Ok(()) => checks.ok(match &target.state {
                target::TargetState::Missing => format!(
                    "\"{}\" does not exist: it will be created (mode 0700)",
                    data_dir.display()
                ),
                target::TargetState::Empty => format!("\"{}\" is empty", data_dir.display()),
                target::TargetState::Populated { .. } => format!(
                    "\"{}\" is not empty: -F given, it will be emptied",
                    data_dir.display()
                ),
            }),
            Err(e) => checks.fail_error(&e),
        }
        server_version = upstream.as_ref().map(|u| u.version_num).unwrap_or(0);
    }

    // The policy chain decides the recovery configuration.
    let rt = Runtime::new(cache::default_dir().as_deref())?;
    let candidates = catalog::candidates(plugins_cfg);
    let load = |name: &str| -> anyhow::Result<Plugin> {
        let cand = candidates.iter().find(|c| c.name == name).ok_or_else(|| {
            Failure::new(format!("plugin \"{name}\" is not configured"))
                .hint("add a [plugin.NAME] section with file and sha256 to plugins.toml")
        })?;
        Ok(Plugin::load(&rt, cand)?)
    };
    let mut policies = vec![load("recovery-standard")?];
    for p in &plugins_cfg.policies {
        policies.push(load(p)?);
    }
    let password = if include_password {
        match std::env::var("PGPASSWORD") {
            Ok(p) => Some(p),
            Err(_) => {
                report::warning(
                    "use_primary_conninfo_password is on but PGPASSWORD is not set",
                    Some("the password is only taken from PGPASSWORD, never from a password file"),
                );
                None
            }
        }
    } else {
        None
    };
    let mut facts = RecoveryFacts {
        server_version,
        node_name: node_name.clone(),
        upstream: params(&upstream_ci),
        replication_user: replication_user.clone(),
        slot_name: slot_name.clone(),
        restore_command: conf.get("restore_command").map(str::to_string),
        recovery_min_apply_delay: conf.get("recovery_min_apply_delay").map(str::to_string),
        archive_cleanup_command: conf.get("archive_cleanup_command").map(str::to_string),
        passfile: passfile.clone(),
        password: password.clone(),
    };
    if o.dry_run {
        // What is shown never contains the password itself.
        facts.password = password.as_ref().map(|_| "********".to_string());
    }
    let policy_refs: Vec<&Plugin> = policies.iter().collect();
    let recovery_config = match recovery::decide(&rt, env.clone(), &policy_refs, &facts) {
        Ok(c) => Some(c),
        Err(e) => {
            checks.fail(e.to_string());
            None
        }
    };

    // The source plugin's plan.
    let mut tablespace_dirs: BTreeMap<u32, PathBuf> = BTreeMap::new();
    let mut steps_planned = Vec::new();
    if !o.replication_conf_only {
        let source_plugin = load("pg-basebackup")?;
        source_plugin.ensure_granted()?;
        let mappings: BTreeMap<String, String> = conf
            .get_all("tablespace_mapping")
            .iter()
            .filter_map(|m| m.split_once('='))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let tablespaces: Vec<Tablespace> = upstream
            .as_ref()
            .map(|u| {
                u.tablespaces
                    .iter()
                    .map(|t| Tablespace {
                        oid: t.oid,
                        name: t.name.clone(),
                        location: t.location.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        for t in &tablespaces {
            let local = mappings.get(&t.location).cloned();
            match (&local, is_local(&upstream_host)) {
                (None, true) => checks.fail_hint(
                    format!(
                        "tablespace \"{}\" ({}) would be cloned onto itself",
                        t.name, t.location
                    ),
                    format!(
                        "map it elsewhere: tablespace_mapping='{}=/new/location'",
                        t.location
                    ),
                ),
                _ => {
                    let dir = PathBuf::from(local.unwrap_or_else(|| t.location.clone()));
                    let populated = std::fs::read_dir(&dir).is_ok_and(|mut rd| rd.next().is_some());
                    match populated {
                        true => checks.fail_hint(
                            format!("tablespace directory \"{}\" is not empty", dir.display()),
                            "empty it or map the tablespace elsewhere with tablespace_mapping",
                        ),
                        false => checks.ok(format!(
                            "tablespace \"{}\" goes to \"{}\"",
                            t.name,
                            dir.display()
                        )),
                    }
                    tablespace_dirs.insert(t.oid, dir);
                }
            }
        }
        let request = CloneRequest {
            node: NodeIdentity {
                node_id,
                node_name: node_name.clone(),
            },
            data_directory: target.real.to_string_lossy().into_owned(),
            upstream: params(&repl_conn.params.without_password()),
            replication_user: replication_user.clone(),
            upstream_version: upstream.as_ref().map(|u| u.version_num),
            upstream_system_identifier: identity.as_ref().map(|i| i.system_identifier.clone()),
            upstream_tablespaces: tablespaces,
            backup_id: None,
            fast_checkpoint: o.fast_checkpoint,
            slot_name: slot_name.clone(),
            interactive: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        };
        let mut session = source_plugin.session(&rt, env.clone())?;
        match session.check(&request) {
            Ok(backup) => match session.plan_clone(&request, &backup) {
                Ok(plan) => match steps::validate(
                    &source_plugin,
                    &env,
                    &plan,
                    &target.real,
                    &tablespace_dirs,
                ) {
                    Ok(s) => steps_planned = s,
                    Err(e) => checks.fail_error(&e),
                },
                Err(e) => checks.fail(e.to_string()),
            },
            Err(e) => checks.fail(e.to_string()),
        }
    }

    checks.print();
    if let Some(e) = checks.first_failure() {
        return Err(e.context_failure(checks.failures()));
    }

    let auth = steps::ChildAuth {
        password: if repl_conn.password_source.as_deref() == Some("the connection string") {
            repl_conn.password.clone()
        } else {
            None
        },
        passfile: passfile.clone(),
    };
    let recovery_config = recovery_config.expect("checked above");

    if o.dry_run {
        println!("plan:");
        if !target.real.exists() || o.force {
            println!("  prepare {}", target.real.display());
        }
        if let (Some(slot), Some(c)) = (&slot_name, &upstream_client) {
            if upstream::slot_state(c, slot).await?.is_none() {
                println!("  create replication slot \"{slot}\" on the upstream");
            }
        }
        for (i, s) in steps_planned.iter().enumerate() {
            println!("  {}. {s}", i + 1);
        }
        let existing = if o.replication_conf_only {
            read_existing(&target.real, "postgresql.auto.conf")?
        } else {
            None
        };
        let rendered = render(&recovery_config, existing.as_deref());
        println!("files written after the copy:");
        for (name, contents) in &rendered.files {
            println!("  {}/{name}:", target.real.display());
            for line in contents.lines() {
                println!("    {line}");
            }
        }
        for name in &rendered.remove {
            println!("  remove {}/{name} if present", target.real.display());
        }
        report::notice("dry run complete: nothing was changed");
        return Ok(());
    }

    // From here on, things change.
    let mut created_slot: Option<String> = None;
    let result: anyhow::Result<()> = async {
        if !o.replication_conf_only {
            target.prepare()?;
        }
        if let (Some(slot), Some(c)) = (&slot_name, &upstream_client) {
            if upstream::slot_state(c, slot).await?.is_none() {
                upstream::create_slot(c, slot).await?;
                info(&format!(
                    "replication slot \"{slot}\" created on the upstream"
                ));
                created_slot = Some(slot.clone());
            }
        }
        if !o.replication_conf_only {
            report::notice("starting the copy");
            steps::execute(&steps_planned, &auth).await?;
            verify_copy(&target.real)?;
            if o.verify_backup {
                verify_backup(&env, &target.real, server_version).await?;
            }
            if let (Some(mode), Some(u)) = (&o.copy_external_config_files, &upstream) {
                external::copy(mode, u, &upstream_host, &target.real).await?;
            }
        }
        let existing = read_existing(&target.real, "postgresql.auto.conf")?;
        let rendered = render(&recovery_config, existing.as_deref());
        recovery::apply(&target.real, &rendered)?;
        for (name, _) in &rendered.files {
            info(&format!("wrote \"{}/{name}\"", target.real.display()));
        }
        Ok(())
    }
    .await;

    if let Err(e) = result {
        let mut notes = Vec::new();
        if let (Some(slot), Some(c)) = (&created_slot, &upstream_client) {
            match upstream::drop_slot(c, slot).await {
                Ok(()) => notes.push(format!("replication slot \"{slot}\" was dropped again")),
                Err(d) => notes.push(format!(
                    "replication slot \"{slot}\" could not be dropped: {}",
                    report::render(&d)
                )),
            }
        }
        if !o.replication_conf_only && target.real.is_dir() {
            match target::empty_dir(&target.real) {
                Ok(()) => notes.push(format!(
                    "the incomplete copy in \"{}\" was removed",
                    data_dir.display()
                )),
                Err(d) => notes.push(format!(
                    "the incomplete copy in \"{}\" could not be removed: {d}",
                    data_dir.display()
                )),
            }
        }
        let mut f = match e.downcast::<Failure>() {
            Ok(f) => f,
            Err(e) => Failure::new(report::render(&e).replacen("ERROR: ", "", 1)),
        };
        let hint = [
            f.hint.take(),
            Some(format!(
                "{}; no recovery configuration was written",
                notes.join("; ")
            )),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
        return Err(f.hint(hint).into());
    }

    if o.replication_conf_only {
        report::notice(&format!(
            "replication configuration written to \"{}\"",
            data_dir.display()
        ));
    } else {
        report::notice("standby clone (using pg_basebackup) complete");
        report::notice("you can now start your PostgreSQL server");
        eprintln!("HINT: for example: pg_ctl -D {} start", data_dir.display());
    }
    if conf.get("restore_command").is_none() {
        tracing::debug!("no restore_command configured");
    }
    Ok(())
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

/// "15" → 150000, "9.6" → 90600.
fn version_from_dir(v: &str) -> anyhow::Result<u32> {
    let bad = || Failure::new(format!("cannot understand PG_VERSION \"{v}\""));
    Ok(match v.split_once('.') {
        Some((a, b)) => {
            a.parse::<u32>().map_err(|_| bad())? * 10000
                + b.parse::<u32>().map_err(|_| bad())? * 100
        }
        None => v.parse::<u32>().map_err(|_| bad())? * 10000,
    })
}

/// The copy is a data directory.
fn verify_copy(dir: &Path) -> anyhow::Result<()> {
    for f in ["PG_VERSION", "global/pg_control"] {
        if !dir.join(f).is_file() {
            return Err(Failure::new("the copy is incomplete")
                .detail(format!("\"{}\" is missing", dir.join(f).display()))
                .into());
        }
    }
    Ok(())
}

/// `pg_verifybackup` against the backup manifest (PostgreSQL 13+).
async fn verify_backup(env: &HostEnv, dir: &Path, version: u32) -> anyhow::Result<()> {
    if version < 130000 {
        report::warning(
            "--verify-backup needs PostgreSQL 13 or later; skipped",
            None,
        );
        return Ok(());
    }
    let prog = env.find_program("pg_verifybackup").ok_or_else(|| {
        Failure::new("program \"pg_verifybackup\" not found")
            .hint("set pg_bindir in the configuration file")
    })?;
    info("verifying the copy with pg_verifybackup");
    let out = tokio::process::Command::new(&prog)
        .arg(dir)
        .output()
        .await?;
    if !out.status.success() {
        return Err(Failure::new("pg_verifybackup found problems in the copy")
            .detail(String::from_utf8_lossy(&out.stderr).trim().to_string())
            .into());
    }
    info("pg_verifybackup: backup successfully verified");
    Ok(())
}
