//! `pgclone standby clone`: preflight, plan, copy, verify, configure.
//!
//! Order matters for safety: every check runs before anything is touched; `-F`
//! empties the target only after they all passed; the recovery configuration
//! is written last, after a verified copy, so a failed clone can never be
//! started as a standby by mistake.

pub mod catchup;
pub mod checks;
pub mod copy_tree;
pub mod external;
pub mod group;
pub mod interrupt;
pub mod progress;
pub mod safety;
pub mod settings;
pub mod ssh_master;
pub mod steps;
pub mod target;
pub mod unpack;
pub mod upstream;
pub mod verify;
pub mod warm_wal;

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_postgres::Client;

use crate::config::{ConfFile, PluginsConfig};
use crate::pg::client;
use crate::pg::libpq::{self, Resolved};
use crate::pg::ConnInfo;
use crate::plugin::bindings::policy_api::{RecoveryConfig, RecoveryFacts, SettingsFile};
use crate::plugin::bindings::types::{
    BackupDescription, CloneRequest, ConnParam, NodeIdentity, Provides, Tablespace,
};
use crate::plugin::{cache, catalog, HostEnv, Plugin, Runtime};
use crate::recovery::{self, render::render, write::read_existing, RenderedConfig};
use crate::report::{self, Failure};

use checks::Checks;
pub use external::ExternalConfig;
use settings::NodeSettings;
use ssh_master::SshMaster;
use target::{Target, TargetState};
use verify::{verify_backup, verify_copy, verify_not_incremental};

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
    /// The user for ssh to the upstream host (--copy-external-config-files).
    pub remote_user: Option<String>,
    pub verify_backup: bool,
    /// Barman mode: the backup to clone (default: the latest).
    pub backup_id: Option<String>,
    /// Barman mode: parallel rsync streams (default: `clone_jobs`, else 4).
    pub jobs: Option<usize>,
    /// A replica for Patroni (`pgclone patroni-replica`): Patroni writes the
    /// recovery configuration, so none is written and any the copy brought
    /// along is removed; no replication slot is made (Patroni manages them);
    /// the connection's own user and PGPASSFILE are used.
    pub patroni: bool,
}

fn info(msg: &str) {
    report::info(msg);
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
    if let Some(s) = &o.upstream_conninfo {
        // The site's TLS rule for the standby binds the copy and pgclone's
        // own connections too: pg_basebackup must not escape it.
        if let Ok(up) = ConnInfo::parse(s) {
            inherit_tls(&mut c, &up);
        }
    }
    let from_env = std::env::var_os("PGHOST").is_some() || std::env::var_os("PGSERVICE").is_some();
    if c.get("host").is_none() && c.get("service").is_none() && !from_env {
        return Err(Failure::new("no upstream server given")
            .hint("name the server to clone from: pgclone standby clone -h PRIMARY -U USER -d DBNAME -D DATADIR")
            .into());
    }
    Ok(c)
}

/// Fills `to`'s unset TLS parameters from `from`, and raises its sslmode to
/// `from`'s when that is stricter.
fn inherit_tls(to: &mut ConnInfo, from: &ConnInfo) {
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

fn params(c: &ConnInfo) -> Vec<ConnParam> {
    c.params()
        .iter()
        .map(|(k, v)| ConnParam {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

impl UpstreamSide {
    /// True when the upstream runs on this machine, so that its paths are
    /// ours too: its postmaster was found here, or it was reached through a
    /// Unix socket (always local, even when its process cannot be seen).
    fn is_local(&self) -> bool {
        self.local.is_some()
            || self
                .meta
                .params
                .get("host")
                .is_some_and(|h| h.starts_with('/'))
    }
}

/// The upstream as pgclone sees it.
struct UpstreamSide {
    /// pgclone's own connection parameters (metadata user).
    meta: Resolved,
    client: Option<Client>,
    info: Option<upstream::Upstream>,
    /// What primary_conninfo is built from (no password).
    primary_conninfo: ConnInfo,
    replication_user: Option<String>,
    /// The upstream's postmaster when it runs on this machine.
    local: Option<upstream::LocalServer>,
}

/// Connects to the upstream and learns what the checks need. A failure is
/// fatal unless the clone can do without the upstream (Barman, conf-only).
async fn connect_upstream(o: &CloneOptions, node: &NodeSettings) -> anyhow::Result<UpstreamSide> {
    let mut source = source_conninfo(o)?;
    if let Some(pf) = &node.passfile {
        source.set_default("passfile", pf);
    }
    let mut meta_ci = source.clone();
    if let Some(su) = &o.superuser {
        meta_ci.set("user", su);
    }
    let meta = libpq::resolve(&meta_ci, false)?;
    info(&format!(
        "connecting to upstream node ({})",
        client::describe(&meta)
    ));
    let client = match client::connect(&meta).await {
        Ok(c) => Some(c),
        // For Patroni, the replication connection below must work: it shows
        // that the leader is there and of the backup's database system.
        Err(e) if o.replication_conf_only || node.from_backup => {
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
        info(&format!(
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

/// The server-side checks.
async fn check_upstream(
    checks: &mut Checks,
    up: &UpstreamSide,
    node: &NodeSettings,
    o: &CloneOptions,
) -> anyhow::Result<()> {
    let Some(u) = &up.info else { return Ok(()) };
    checks.ok(format!(
        "upstream is PostgreSQL {} ({}){}",
        u.version,
        client::describe(&up.meta),
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
        // pg_basebackup -X stream takes two walsenders while it runs; a clone
        // from Barman needs one, for the standby.
        let needed = if node.from_backup { 1 } else { 2 };
        let free = u.max_wal_senders - u.walsenders_in_use;
        let what = format!(
            "max_wal_senders = {}, {} in use, {needed} needed",
            u.max_wal_senders, u.walsenders_in_use
        );
        if free < needed {
            checks.fail_hint(what, "raise max_wal_senders on the upstream and restart it");
        } else {
            checks.ok(what);
        }
    }
    if let (Some(slot), Some(c)) = (&node.slot_name, &up.client) {
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
            "neither data checksums nor wal_log_hints are on: pg_rewind will not be able to rejoin this node after a failover"
                .into(),
        );
    }
    Ok(())
}

/// The source plugin's checked plan.
#[derive(Default)]
struct Planned {
    steps: Vec<steps::Step>,
    /// `-F` over a data directory of the same system: copy only what changed.
    delta: bool,
    server_version: Option<u32>,
    /// The backup's size as the source reports it (0 when unknown).
    size_bytes: u64,
    /// Where each tablespace of the backup goes on this host.
    tablespace_dirs: Vec<PathBuf>,
    /// What the source said about the backup.
    backup: Option<BackupDescription>,
    /// The same, by OID.
    tablespace_map: BTreeMap<u32, PathBuf>,
    /// The plan unpacks archives: the result is checked against the backup's
    /// manifest.
    unpacks: bool,
    /// The plan combines an incremental backup chain in this staging
    /// directory (created empty beside the data directory, removed after the
    /// clone); the result is checked against pg_combinebackup's manifest.
    staging: Option<PathBuf>,
}

#[allow(clippy::too_many_arguments)]
fn plan_source(
    checks: &mut Checks,
    rt: &Runtime,
    env: &Arc<HostEnv>,
    source_plugin: &Plugin,
    conf: &ConfFile,
    node: &NodeSettings,
    up: &UpstreamSide,
    repl: &Resolved,
    identity: Option<&upstream::Identity>,
    target: &Target,
    o: &CloneOptions,
) -> anyhow::Result<Planned> {
    source_plugin.ensure_granted()?;
    let mappings: BTreeMap<String, String> = conf
        .get_all("tablespace_mapping")
        .iter()
        .filter_map(|m| m.split_once('='))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let tablespaces: Vec<Tablespace> = up
        .info
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
    let request = CloneRequest {
        node: NodeIdentity {
            node_id: node.node_id,
            node_name: node.node_name.clone(),
        },
        data_directory: target.real.to_string_lossy().into_owned(),
        upstream: params(&repl.params.without_password()),
        replication_user: up.replication_user.clone(),
        upstream_version: up.info.as_ref().map(|u| u.version_num),
        upstream_system_identifier: identity.map(|i| i.system_identifier.clone()),
        upstream_tablespaces: tablespaces,
        backup_id: o.backup_id.clone(),
        fast_checkpoint: o.fast_checkpoint,
        slot_name: node.slot_name.clone(),
        interactive: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let mut planned = Planned::default();
    let mut session = source_plugin.session(rt, env.clone())?;
    let backup = match session.check(&request) {
        Ok(b) => b,
        Err(e) => {
            checks.fail(e.to_string());
            return Ok(planned);
        }
    };
    planned.server_version = Some(backup.server_version);
    planned.size_bytes = backup.size_bytes;
    planned.backup = Some(backup.clone());
    if node.from_backup {
        checks.ok(format!(
            "{} backup {} (PostgreSQL {}, timeline {}, begins at WAL {}) is usable",
            if node.barman_mode {
                "Barman".to_string()
            } else {
                format!("\"{}\"", node.source)
            },
            backup.id,
            version_text(backup.server_version),
            backup.timeline,
            backup.begin_wal
        ));
    }
    // The plan, asked for now: whether it unpacks archives decides whether a
    // delta copy is possible. It is validated once the tablespaces are placed.
    let plan = session.plan_clone(&request, &backup);
    let unpacks = plan.as_ref().is_ok_and(|p| {
        p.iter().any(|s| {
            matches!(
                s,
                crate::plugin::bindings::types::PlanStep::UnpackArchive(_)
                    | crate::plugin::bindings::types::PlanStep::CombineBackups(_)
            )
        })
    });
    // A delta copy compares files with rsync: the Barman source's copy-tree.
    // Archives are unpacked whole, into an emptied directory.
    if node.barman_mode
        && o.force
        && matches!(target.state, TargetState::Populated { .. })
        && target::system_identifier(&target.real).as_deref()
            == Some(backup.system_identifier.as_str())
        && !unpacks
    {
        planned.delta = true;
        checks.ok(format!(
            "\"{}\" holds the same database system: only what changed will be copied",
            target.given.display()
        ));
    }
    // Where each tablespace goes on this host.
    let mut tablespace_dirs: BTreeMap<u32, PathBuf> = BTreeMap::new();
    for t in &backup.tablespaces {
        // Where files go is the operator's decision, not a plugin's: a
        // location must be a plain absolute path, of a tablespace the upstream
        // has (when it can be asked), and a site or vendor source's
        // tablespaces must be mapped explicitly.
        let loc = Path::new(&t.location);
        let plain = loc.is_absolute()
            && loc
                .components()
                .all(|c| !matches!(c, std::path::Component::ParentDir));
        if !plain {
            checks.fail(format!(
                "the backup's tablespace {} has location \"{}\", not a plain absolute path",
                t.oid,
                t.location.escape_debug()
            ));
            continue;
        }
        if let Some(u) = &up.info {
            if !u.tablespaces.iter().any(|ut| ut.oid == t.oid) {
                checks.fail_hint(
                    format!(
                        "the backup has tablespace {} (\"{}\"), which the upstream does not have",
                        t.oid, t.name
                    ),
                    "the backup and the upstream must be of the same database system",
                );
                continue;
            }
        }
        if !source_plugin.origin_is_builtin() && !mappings.contains_key(&t.location) {
            checks.fail_hint(
                format!(
                    "tablespace \"{}\" ({}) of plugin \"{}\" has no tablespace_mapping",
                    t.name, t.location, source_plugin.name
                ),
                format!(
                    "a site or vendor source does not choose where files go: tablespace_mapping='{}=/new/location'",
                    t.location
                ),
            );
            continue;
        }
        match (
            mappings.get(&t.location),
            up.is_local() && !node.from_backup,
        ) {
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
            (mapped, _) => {
                let dir = PathBuf::from(mapped.cloned().unwrap_or_else(|| t.location.clone()));
                if let Err(f) = safety::check_writable_root(&dir, safety::Role::Tablespace) {
                    checks.fail_error_first(&f.into());
                    continue;
                }
                let populated = std::fs::read_dir(&dir).is_ok_and(|mut rd| rd.next().is_some());
                if populated && !planned.delta {
                    checks.fail_hint(
                        format!("tablespace directory \"{}\" is not empty", dir.display()),
                        "empty it or map the tablespace elsewhere with tablespace_mapping",
                    );
                } else {
                    checks.ok(format!(
                        "tablespace \"{}\" goes to \"{}\"",
                        t.name,
                        dir.display()
                    ));
                }
                tablespace_dirs.insert(t.oid, dir);
            }
        }
    }
    planned.tablespace_dirs = tablespace_dirs.values().cloned().collect();
    planned.tablespace_map = tablespace_dirs.clone();
    match plan {
        Ok(plan) => {
            let staging = steps::combines(&plan).then(|| steps::staging_dir(&target.real));
            match steps::validate_with_staging(
                source_plugin,
                env,
                &plan,
                &target.real,
                &tablespace_dirs,
                staging.as_deref(),
            ) {
                Ok(s) => {
                    planned.unpacks = s.iter().any(|s| matches!(s, steps::Step::Unpack(_)));
                    if let Some(dir) = staging {
                        match steps::check_combine_tool(&s, backup.server_version).and_then(|()| {
                            safety::check_writable_root(&dir, safety::Role::DataDirectory)
                        }) {
                            Err(f) => checks.fail_error_first(&f.into()),
                            Ok(()) if std::fs::symlink_metadata(&dir).is_ok() => checks.fail_hint(
                                format!(
                                    "the staging directory \"{}\" already exists",
                                    dir.display()
                                ),
                                "it is left from an interrupted clone: remove it",
                            ),
                            Ok(()) => checks.ok(format!(
                                "the incremental backup chain is combined in \"{}\" (removed afterwards)",
                                dir.display()
                            )),
                        }
                        planned.staging = Some(dir);
                    }
                    planned.steps = s;
                }
                Err(e) => checks.fail_error(&e),
            }
        }
        Err(e) => checks.fail(e.to_string()),
    }
    Ok(planned)
}

/// The configuration's values that end up in the standby's settings, read
/// as PostgreSQL will read them: a standby that cannot start is a failed clone.
fn check_config_values(checks: &mut Checks, conf: &ConfFile, node: &NodeSettings, version: u32) {
    if version == 0 {
        return;
    }
    // (configuration key, the parameter it becomes, value)
    let mut values: Vec<(&str, &str, &str)> = [
        "recovery_min_apply_delay",
        "restore_command",
        "archive_cleanup_command",
    ]
    .into_iter()
    .filter_map(|k| conf.get(k).map(|v| (k, k, v)))
    .collect();
    if let Some(slot) = &node.slot_name {
        values.push((
            "replication_slot_name (or node_id)",
            "primary_slot_name",
            slot,
        ));
    }
    for (key, param, value) in values {
        if let Err(why) = recovery::gucs::check_value(param, value, version) {
            checks.fail_hint(
                format!("{why} (from \"{}\")", conf.path.display()),
                format!("fix {key} in the configuration file; PostgreSQL {} would not start the standby with it", version / 10000),
            );
        }
    }
}

/// Runs the recovery policies: the standard one, then the site's.
fn decide_recovery(
    checks: &mut Checks,
    rt: &Runtime,
    env: &Arc<HostEnv>,
    policies: &[Plugin],
    facts: &RecoveryFacts,
) -> Option<RecoveryConfig> {
    let refs: Vec<&Plugin> = policies.iter().collect();
    match recovery::decide(rt, env.clone(), &refs, facts) {
        Ok(c) => Some(c),
        Err(e) => {
            checks.fail(e.to_string());
            None
        }
    }
}

/// The whole command. A signal before anything was changed ends it at once
/// (the scratch directory is removed); one during the copy ends the copy and
/// runs the same clean-up as a failure.
pub async fn run(
    conf: &ConfFile,
    plugins_cfg: &PluginsConfig,
    o: &CloneOptions,
) -> anyhow::Result<()> {
    let executing = std::sync::atomic::AtomicBool::new(false);
    tokio::select! {
        biased;
        r = run_phases(conf, plugins_cfg, o, &executing) => r,
        sig = interrupt::wait_unless(&executing) => Err(interrupt::failure(sig)),
    }
}

async fn run_phases(
    conf: &ConfFile,
    plugins_cfg: &PluginsConfig,
    o: &CloneOptions,
    executing: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<()> {
    if unsafe { libc::geteuid() } == 0 {
        return Err(Failure::new("pgclone standby clone must not be run as root")
            .detail("PostgreSQL refuses to run as root, so a data directory cloned by root cannot be started")
            .hint("run it as the owner of the data directory, e.g. runuser -u postgres -- pgclone standby clone ...")
            .into());
    }
    let mut node = NodeSettings::read(conf, o)?;
    let data_dir = node.data_dir.clone();
    report::notice(&format!(
        "destination directory \"{}\" provided",
        data_dir.display()
    ));
    if !node.barman_mode && node.source != "pg-basebackup" && !o.replication_conf_only {
        info(&format!("cloning with backup source \"{}\"", node.source));
    }
    if node.barman_mode && o.fast_checkpoint && !o.replication_conf_only {
        report::notice(
            "-c/--fast-checkpoint does not apply to a clone from Barman: its backup was taken already",
        );
    }
    if node.barman_mode && !o.replication_conf_only {
        info(&format!(
            "cloning from Barman server \"{}\" on \"{}\"",
            conf.get("barman_server").unwrap_or(""),
            conf.get("barman_host").unwrap_or("")
        ));
    }
    // The source plugin first: whether it needs the upstream decides how
    // much of the upstream's absence is tolerated.
    let rt = Runtime::new(cache::default_dir().as_deref())?;
    let candidates = catalog::candidates(plugins_cfg);
    let load = |name: &str| -> anyhow::Result<Plugin> {
        let cand = candidates.iter().find(|c| c.name == name).ok_or_else(|| {
            Failure::new(format!("plugin \"{name}\" is not configured"))
                .hint("install it with `pgclone plugin install FILE.wasm`, or check backup_source and policies")
        })?;
        Ok(Plugin::load(&rt, cand)?)
    };
    let source_plugin = if o.replication_conf_only {
        None
    } else {
        let p = load(&node.source)?;
        if !p.info.provides.contains(Provides::BASE_BACKUP) {
            return Err(Failure::new(format!(
                "plugin \"{}\" does not provide base backups",
                node.source
            ))
            .hint("set backup_source to a backup source plugin (see `pgclone plugin list`)")
            .into());
        }
        node.from_backup = !p.info.needs_upstream;
        Some(p)
    };
    let mut host_env = HostEnv::new(conf, plugins_cfg)?;
    let scratch = tempfile::Builder::new().prefix("pgclone-").tempdir()?;
    // From Barman: open the shared ssh connection now, while the upstream is
    // checked, so the barman commands that follow skip the handshake.
    let master = match (
        node.barman_mode && !o.replication_conf_only,
        host_env.ssh_destination("barman"),
    ) {
        (true, Some(dest)) => SshMaster::start(
            &dest,
            &host_env.ssh_options,
            scratch.path(),
            host_env.ssh_connect_timeout,
        ),
        _ => None,
    };
    let mut checks = Checks::default();

    // The upstream, and a real replication connection as the replication user.
    let up = connect_upstream(o, &node).await?;
    check_upstream(&mut checks, &up, &node, o).await?;
    let mut repl_ci = up.meta.params.clone();
    if o.superuser.is_some() {
        repl_ci = source_conninfo(o)?;
        if let Some(pf) = &node.passfile {
            repl_ci.set_default("passfile", pf);
        }
    }
    if let Some(u) = &up.replication_user {
        repl_ci.set("user", u);
    }
    let mut repl = libpq::resolve(&repl_ci, true)?;
    // Resolving took the key's passphrase out of the parameters.
    if repl.sslpassword.is_none() {
        repl.sslpassword = up.meta.sslpassword.clone();
    }
    let identity = match (&up.info, o.patroni) {
        (None, false) => None,
        _ => {
            let psql = host_env.find_program("psql").ok_or_else(|| {
                Failure::new("program \"psql\" not found")
                    .hint("install postgresql-client, or set pg_bindir")
            })?;
            match upstream::identify_system(&psql, &repl, node.passfile.as_deref(), scratch.path())
                .await
            {
                Ok(id) => {
                    checks.ok(format!(
                        "replication connection as \"{}\" works (system identifier {}, timeline {})",
                        repl.params.get("user").unwrap_or(""),
                        id.system_identifier,
                        id.timeline
                    ));
                    Some(id)
                }
                // A clone from Barman does not need it; the standby will.
                // Patroni gave the leader to clone from: it must answer.
                Err(e) if node.from_backup && !o.patroni => {
                    let text = report::render(&e).replacen("ERROR: ", "", 1);
                    checks.warn(format!(
                        "{} (the standby cannot stream until this is fixed)",
                        text.lines().next().unwrap_or("")
                    ));
                    None
                }
                Err(e) => {
                    checks.fail_error(&e);
                    None
                }
            }
        }
    };

    // The target directory.
    let upstream_host = up.meta.params.get("host").unwrap_or("").to_string();
    let target = target::inspect(&data_dir, up.local.as_ref())?;
    let mut server_version = up.info.as_ref().map(|u| u.version_num);
    if o.replication_conf_only {
        let TargetState::Populated {
            pg_version: Some(v),
            ..
        } = &target.state
        else {
            return Err(Failure::new(format!(
                "\"{}\" is not a PostgreSQL data directory",
                data_dir.display()
            ))
            .detail(
                "--replication-conf-only writes the configuration into an existing data directory",
            )
            .hint("restore the data directory first, or clone without --replication-conf-only")
            .into());
        };
        if let Some(pid) = target::running_postmaster(&target.real) {
            // Reconfiguring a running standby is what --replication-conf-only
            // is for; making a running primary a standby at its next start is not.
            if !target::is_standby(&target.real) {
                return Err(Failure::new(format!(
                    "refusing to write a standby configuration into \"{}\"",
                    data_dir.display()
                ))
                .detail(format!(
                    "a PostgreSQL server (PID {pid}) runs there and it is not a standby (no standby.signal or recovery.conf)"
                ))
                .hint("--replication-conf-only reconfigures a standby; check -D and data_directory")
                .into());
            }
            report::warning(
                &format!(
                    "a standby (PID {pid}) is running in \"{}\"",
                    data_dir.display()
                ),
                Some("the new configuration takes effect at its next start or reload"),
            );
        }
        if let (Some(id), Some(own)) = (&identity, target::system_identifier(&target.real)) {
            if id.system_identifier != own {
                checks.fail_hint(
                    format!(
                        "\"{}\" belongs to another database system (system identifier {own}, the upstream's is {})",
                        data_dir.display(),
                        id.system_identifier
                    ),
                    "a standby must be a copy of its upstream: clone it again without --replication-conf-only",
                );
            }
        }
        if server_version.is_none() {
            server_version = Some(version_from_dir(v)?);
        }
        checks.ok(format!(
            "\"{}\" is a PostgreSQL {v} data directory",
            data_dir.display()
        ));
    } else {
        match target.check_usable(o.force) {
            Ok(()) => checks.ok(match &target.state {
                TargetState::Missing => format!(
                    "\"{}\" does not exist: it will be created (mode 0700)",
                    data_dir.display()
                ),
                TargetState::Empty => format!("\"{}\" is empty", data_dir.display()),
                TargetState::Populated { .. } => {
                    format!("\"{}\" is not empty: -F given", data_dir.display())
                }
            }),
            Err(e) => checks.fail_error_first(&e),
        }
    }

    // Plugins: the source's plan, then the recovery policies' configuration.
    if let Some(m) = &master {
        host_env.control_path = m.ready();
    }
    let env = Arc::new(host_env);
    let mut planned = Planned::default();
    if !o.replication_conf_only {
        let source_plugin = source_plugin.expect("loaded unless --replication-conf-only");
        planned = plan_source(
            &mut checks,
            &rt,
            &env,
            &source_plugin,
            conf,
            &node,
            &up,
            &repl,
            identity.as_ref(),
            &target,
            o,
        )?;
        if server_version.is_none() {
            server_version = planned.server_version;
        }
        if let Some(w) = &node.waldir {
            match target::check_waldir(w, &target, planned.delta) {
                Ok(m) => checks.ok(m),
                Err(f) => checks.fail_error_first(&f.into()),
            }
        }
    }
    // Patroni writes its own recovery configuration: no policy decides one.
    let mut policies = Vec::new();
    if !o.patroni {
        policies.push(load("recovery-standard")?);
        for p in &plugins_cfg.policies {
            policies.push(load(p)?);
        }
    }
    info(&plugins_used(
        plugins_cfg,
        &policies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
    ));
    let password = match (node.include_password, std::env::var("PGPASSWORD")) {
        (true, Ok(p)) => Some(p),
        (true, Err(_)) => {
            report::warning(
                "use_primary_conninfo_password is on but PGPASSWORD is not set",
                Some("the password is only taken from PGPASSWORD, never from a password file"),
            );
            None
        }
        (false, _) => None,
    };
    let mut facts = RecoveryFacts {
        server_version: server_version.unwrap_or(0),
        node_name: node.node_name.clone(),
        upstream: params(&up.primary_conninfo),
        replication_user: up.replication_user.clone(),
        slot_name: node.slot_name.clone(),
        restore_command: conf.get("restore_command").map(str::to_string),
        recovery_min_apply_delay: conf.get("recovery_min_apply_delay").map(str::to_string),
        archive_cleanup_command: conf.get("archive_cleanup_command").map(str::to_string),
        passfile: node.passfile.clone(),
        password: password.clone(),
    };
    if !o.patroni {
        check_config_values(&mut checks, conf, &node, facts.server_version);
    }
    if o.dry_run {
        // What is shown never contains the password itself.
        facts.password = password.as_ref().map(|_| "********".to_string());
        for p in facts.upstream.iter_mut().filter(|p| p.key == "sslpassword") {
            p.value = "********".into();
        }
    }
    let recovery_config = if facts.server_version == 0 {
        checks.fail(
            "the server version is unknown: neither the upstream nor a backup could be read".into(),
        );
        None
    } else if o.patroni {
        Some(RecoveryConfig {
            file: recovery::chain::settings_file(facts.server_version),
            settings: Vec::new(),
            signal_files: Vec::new(),
        })
    } else {
        decide_recovery(&mut checks, &rt, &env, &policies, &facts)
    };

    // A clone from Barman without restore_command catches up by streaming
    // only: the upstream must still have the WAL from the backup's begin.
    // Not for Patroni: it writes restore_command from its own recovery_conf,
    // which pgclone cannot see, so a refusal here could be a false one.
    let no_restore_command = node.barman_mode
        && !o.patroni
        && recovery_config.as_ref().is_some_and(|c| {
            !c.settings
                .iter()
                .any(|s| s.name == "restore_command" && !s.value.trim().is_empty())
        });
    if let (true, Some(b)) = (no_restore_command, &planned.backup) {
        check_catchup(&mut checks, conf, &node, &up, b).await;
    }

    checks.print();
    if let Some(e) = checks.first_failure() {
        return Err(e.context_failure(checks.failures()));
    }
    let recovery_config = recovery_config.expect("checked above");

    if o.dry_run {
        print_plan(o, &node, &up, &target, &planned, &recovery_config).await?;
        if no_restore_command {
            warn_no_restore_command(conf);
        }
        report::notice("dry run complete: nothing was changed");
        return Ok(());
    }

    // From here on, things change.
    let ctx = steps::ExecContext {
        auth: steps::ChildAuth {
            password: if repl.password_source.as_deref() == Some("the connection string") {
                repl.password.clone()
            } else {
                None
            },
            passfile: node.passfile.clone(),
            service_file: repl.child_service_file(scratch.path())?,
        },
        jobs: node.jobs,
        ssh_options: env.ssh_options.clone(),
        scratch: scratch.path().to_path_buf(),
        control_path: env.control_path.clone(),
        show_progress: progress::live(),
        expected_bytes: planned.size_bytes,
        roots: std::iter::once(target.real.clone())
            .chain(planned.tablespace_dirs.iter().cloned())
            .chain(planned.staging.iter().cloned())
            .chain(node.waldir.iter().cloned())
            .collect(),
    };
    let mut created_slot: Option<String> = None;
    let mut warm: Option<warm_wal::Warm> = None;
    executing.store(true, std::sync::atomic::Ordering::SeqCst);
    let result: anyhow::Result<()> = tokio::select! {
        r = async {
        if !o.replication_conf_only {
            if planned.delta {
                target.prepare_for_delta()?;
            } else {
                target.prepare()?;
            }
            // pg_basebackup makes the link itself; a Barman backup has no pg_wal.
            // pg_combinebackup wants an empty data directory: linked after it.
            if let (Some(w), true, None) = (&node.waldir, node.barman_mode, &planned.staging) {
                target::link_waldir(&target.real, w)?;
            }
            if let Some(d) = &planned.staging {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(d)
                    .map_err(|e| {
                        Failure::new(format!("could not create directory \"{}\"", d.display()))
                            .detail(e.to_string())
                    })?;
            }
            // Every place steps may write exists before the first step, so
            // that writes can be checked against the real directories.
            for d in &planned.tablespace_dirs {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(d)
                    .map_err(|e| {
                        Failure::new(format!("could not create directory \"{}\"", d.display()))
                            .detail(e.to_string())
                    })?;
            }
        }
        if let (Some(slot), Some(c)) = (&node.slot_name, &up.client) {
            if upstream::slot_state(c, slot).await?.is_none() {
                upstream::create_slot(c, slot).await?;
                info(&format!(
                    "replication slot \"{slot}\" created on the upstream"
                ));
                created_slot = Some(slot.clone());
            }
        }
        if !o.replication_conf_only {
            report::notice(if node.barman_mode {
                "retrieving backup from Barman..."
            } else {
                "starting the copy"
            });
            // The WAL since the backup comes while the copy runs, into the
            // spool the standby's restore_command reads.
            warm = match (&planned.backup, restore_command(&recovery_config), o.patroni) {
                (Some(b), Some(rc), false) => {
                    warm_wal::start(rc, b, &target.real, node.warm_segments)
                }
                _ => None,
            };
            steps::execute(&planned.steps, &ctx).await?;
            if let Some(w) = &warm {
                info(&format!(
                    "wal: {} segments since the backup are already in restore_command's spool",
                    w.spooled()
                ));
            }
            if let (Some(w), true, Some(_)) = (&node.waldir, node.barman_mode, &planned.staging) {
                target::link_waldir(&target.real, w)?;
            }
            if planned.delta {
                let listed: Vec<String> = planned
                    .steps
                    .iter()
                    .filter_map(|s| match s {
                        steps::Step::CopyTree { local, files, .. } if *local == target.real => {
                            Some(files.clone())
                        }
                        _ => None,
                    })
                    .flatten()
                    .collect();
                let removed =
                    copy_tree::remove_unlisted(&target.real, &listed, &["pg_tblspc", "pg_wal"])?;
                info(&format!(
                    "delta copy: {removed} files that are not in the backup were removed"
                ));
            }
            verify_not_incremental(&target.real)?;
            verify_copy(&target.real)?;
            if planned.unpacks || planned.staging.is_some() {
                verify::verify_unpacked(
                    &env,
                    &target.real,
                    facts.server_version,
                    &planned.tablespace_map,
                )
                .await?;
            } else if o.verify_backup {
                verify_backup(&env, &target.real, facts.server_version).await?;
            }
            if let (Some(mode), Some(u)) = (&o.copy_external_config_files, &up.info) {
                let local = up.is_local();
                let dest = external::ssh_dest(&upstream_host, o.remote_user.as_deref(), local);
                external::copy(mode, u, &dest, local, &env.ssh_options, &target.real).await?;
            }
        }
        let existing = read_existing(&target.real, "postgresql.auto.conf")?;
        if o.patroni {
            let rendered = cleared_recovery(facts.server_version, existing.as_deref());
            recovery::apply(&target.real, &rendered)?;
            if !rendered.files.is_empty() {
                info(&format!(
                    "recovery settings copied from the source were removed from \"{}/postgresql.auto.conf\"",
                    target.real.display()
                ));
            }
            info("no recovery configuration written: Patroni writes its own");
            return Ok(());
        }
        let rendered = render(&recovery_config, existing.as_deref());
        recovery::apply(&target.real, &rendered)?;
        for (name, _) in &rendered.files {
            info(&format!("wrote \"{}/{name}\"", target.real.display()));
        }
        Ok(())
        } => r,
        sig = interrupt::wait() => Err(interrupt::failure(sig)),
    };

    if let Some(d) = &planned.staging {
        // Created by this clone: whatever happened, it goes.
        if let Err(e) = std::fs::remove_dir_all(d) {
            if e.kind() != std::io::ErrorKind::NotFound {
                report::warning(
                    &format!("could not remove the staging directory \"{}\"", d.display()),
                    Some(&e.to_string()),
                );
            }
        }
    }
    if let Err(e) = result {
        if let Some(w) = &warm {
            w.stop();
        }
        let mut notes = Vec::new();
        if let (Some(slot), Some(c)) = (&created_slot, &up.client) {
            match upstream::drop_slot(c, slot).await {
                Ok(()) => notes.push(format!("replication slot \"{slot}\" was dropped again")),
                Err(d) => notes.push(format!(
                    "replication slot \"{slot}\" could not be dropped: {}",
                    report::render(&d)
                )),
            }
        }
        if let (Some(w), false) = (&node.waldir, o.replication_conf_only) {
            // It was empty (or held this node's old WAL) before the clone.
            let _ = target::empty_dir(w);
        }
        if !o.replication_conf_only && !planned.delta {
            // They were checked empty before the clone.
            for d in &planned.tablespace_dirs {
                let _ = target::empty_dir(d);
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
        if !o.patroni {
            notes.push("no recovery configuration was written".into());
        }
        let hint = [f.hint.take(), Some(notes.join("; "))]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        return Err(f.hint(hint).into());
    }

    if o.patroni {
        report::notice(&match node.source.as_str() {
            "barman" => "replica created from Barman".to_string(),
            "pg-basebackup" => "replica created with pg_basebackup".to_string(),
            other => format!("replica created from backup source \"{other}\""),
        });
        report::hint("Patroni writes the recovery configuration and starts the server");
        return Ok(());
    }
    if o.replication_conf_only {
        report::notice(&format!(
            "replication configuration written to \"{}\"",
            data_dir.display()
        ));
        if target::running_postmaster(&target.real).is_some() {
            report::hint(if facts.server_version >= 130000 {
                "the standby runs: a reload (pg_ctl reload) applies a new primary_conninfo or primary_slot_name; other changes need a restart"
            } else {
                "the standby runs: restart it (pg_ctl restart) to apply the new configuration"
            });
        }
    } else {
        report::notice(&match node.source.as_str() {
            "barman" => "standby clone (from Barman) complete".to_string(),
            "pg-basebackup" => "standby clone (using pg_basebackup) complete".to_string(),
            other => format!("standby clone (from backup source \"{other}\") complete"),
        });
        report::notice("you can now start your PostgreSQL server");
        report::hint(&format!(
            "for example: pg_ctl -D {} start",
            data_dir.display()
        ));
        // A repmgr configuration (it has repmgr's own conninfo key): the node
        // is not part of the repmgr cluster until it is registered.
        if conf.get("conninfo").is_some() {
            report::hint(
                "after starting the server, you need to register this standby with \"repmgr standby register\"",
            );
        }
    }
    if no_restore_command {
        warn_no_restore_command(conf);
    }
    Ok(())
}

/// The restore_command the recovery configuration sets, when it sets one.
fn restore_command(config: &RecoveryConfig) -> Option<&str> {
    config
        .settings
        .iter()
        .find(|s| s.name == "restore_command")
        .map(|s| s.value.as_str())
        .filter(|v| !v.trim().is_empty())
}

/// The restore_command line that fetches WAL from the configured Barman:
/// with `-f` when the file holds settings wal-restore needs (barman_config,
/// ssh_options), else with the host and server on the command line.
fn suggested_restore_command(conf: &ConfFile) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "pgclone".into());
    let q = |s: &str| shell_words::quote(s).into_owned();
    let cmd = if conf.get("barman_config").is_some() || conf.get("ssh_options").is_some() {
        let path = std::path::absolute(&conf.path).unwrap_or_else(|_| conf.path.clone());
        format!(
            "{} -f {} wal-restore %f %p",
            q(&exe),
            q(&path.to_string_lossy())
        )
    } else {
        format!(
            "{} wal-restore {} {} %f %p",
            q(&exe),
            q(conf.get("barman_host").unwrap_or("HOST")),
            q(conf.get("barman_server").unwrap_or("SERVER"))
        )
    };
    format!("restore_command = '{}'", cmd.replace('\'', "\\'"))
}

fn warn_no_restore_command(conf: &ConfFile) {
    report::warning(
        "restore_command is not set: a Barman backup holds no WAL, so the standby can only catch up by streaming",
        Some(&format!(
            "add {} to \"{}\" and rerun with --replication-conf-only",
            suggested_restore_command(conf),
            conf.path.display()
        )),
    );
}

/// Asks the upstream whether it still has the WAL the backup begins in (see
/// [`catchup`]): a refusal when it does not, a warning when that cannot be told.
async fn check_catchup(
    checks: &mut Checks,
    conf: &ConfFile,
    node: &NodeSettings,
    up: &UpstreamSide,
    b: &BackupDescription,
) {
    let begin = catchup::Begin {
        wal: b.begin_wal.clone(),
        lsn: b.begin_lsn.clone(),
        timeline: b.timeline,
    };
    let verdict = match (&up.client, &up.info) {
        (Some(c), Some(u)) => {
            catchup::check(c, u.version_num, node.slot_name.as_deref(), &begin).await
        }
        _ => catchup::Verdict::Unknown("the upstream could not be reached".into()),
    };
    let user = up.meta.params.get("user").unwrap_or("");
    match verdict {
        catchup::Verdict::Held(how) => checks.ok(format!(
            "the upstream still has the WAL from segment {}, where backup {} begins: {how}",
            b.begin_wal, b.id
        )),
        catchup::Verdict::Gone { oldest } => checks.fail_error(
            &Failure::new(format!(
                "the standby could not catch up: the upstream no longer has the WAL from the start of backup {}",
                b.id
            ))
            .detail(format!(
                "the backup begins in WAL segment {} (LSN {}, timeline {}); the oldest segment the upstream still has is {oldest}; \
                 restore_command is not set, so the standby could only get that WAL by streaming from the upstream",
                b.begin_wal, b.begin_lsn, b.timeline
            ))
            .hint(format!(
                "let the standby fetch the WAL from Barman: add this line to \"{}\"\n{}",
                conf.path.display(),
                suggested_restore_command(conf)
            ))
            .into(),
        ),
        catchup::Verdict::Unknown(why) => {
            let grant = if why.contains("permission denied") {
                format!(" (grant pg_monitor to \"{user}\", or connect as a superuser, to let pgclone check)")
            } else {
                String::new()
            };
            checks.warn(format!(
                "could not check whether the upstream still has WAL segment {}, where backup {} begins: {why}{grant}; \
                 without restore_command the standby cannot catch up if the upstream removed it",
                b.begin_wal, b.id
            ))
        }
    }
}

/// For Patroni, which writes its own recovery settings after the copy: none
/// are written, and whatever the copy brought along is removed (signal files,
/// recovery.conf, recovery settings the source set with ALTER SYSTEM such as
/// primary_conninfo or recovery_target_*), so nothing stale is left behind.
fn cleared_recovery(version: u32, existing_auto_conf: Option<&str>) -> RenderedConfig {
    let remove = ["recovery.conf", "standby.signal", "recovery.signal"]
        .map(String::from)
        .to_vec();
    let mut files = Vec::new();
    if let (Some(old), true) = (existing_auto_conf, version >= 120000) {
        let none = RecoveryConfig {
            file: SettingsFile::PostgresqlAutoConf,
            settings: Vec::new(),
            signal_files: Vec::new(),
        };
        let cleaned = render(&none, Some(old))
            .files
            .into_iter()
            .find(|(name, _)| name == "postgresql.auto.conf");
        if let Some((name, text)) = cleaned.filter(|(_, text)| text != old) {
            files.push((name, text));
        }
    }
    RenderedConfig { files, remove }
}

/// `--dry-run`'s account of what would happen.
async fn print_plan(
    o: &CloneOptions,
    node: &NodeSettings,
    up: &UpstreamSide,
    target: &Target,
    planned: &Planned,
    config: &RecoveryConfig,
) -> anyhow::Result<()> {
    println!("plan:");
    if !o.replication_conf_only {
        match (&target.state, planned.delta) {
            (TargetState::Missing, _) => println!("  create {} (mode 0700)", target.real.display()),
            (TargetState::Populated { .. }, true) => {
                println!("  keep {} for a delta copy", target.real.display())
            }
            (TargetState::Populated { .. }, false) => println!("  empty {}", target.real.display()),
            (TargetState::Empty, _) => {}
        }
    }
    if let (Some(slot), Some(c)) = (&node.slot_name, &up.client) {
        if upstream::slot_state(c, slot).await?.is_none() {
            println!("  create replication slot \"{slot}\" on the upstream");
        }
    }
    if let (Some(w), true, false) = (&node.waldir, node.barman_mode, o.replication_conf_only) {
        println!(
            "  link {}/pg_wal to {} (created 0700)",
            target.real.display(),
            w.display()
        );
    }
    if let (Some(d), false) = (&planned.staging, o.replication_conf_only) {
        println!(
            "  create staging directory {} (mode 0700; removed after the clone)",
            d.display()
        );
    }
    for (i, s) in planned.steps.iter().enumerate() {
        // Arguments, paths and descriptions come from the source plugin.
        println!("  {}. {}", i + 1, report::escape(&s.to_string()));
        if let steps::Step::Run { description, .. } = s {
            println!("     ({})", report::escape(description));
        }
    }
    if let (Some(mode), Some(u), false) = (
        &o.copy_external_config_files,
        &up.info,
        o.replication_conf_only,
    ) {
        let host = up.meta.params.get("host").unwrap_or("");
        let dest = external::ssh_dest(host, o.remote_user.as_deref(), up.is_local());
        for line in external::plan(mode, u, &dest, up.is_local(), &target.real) {
            println!("  {line}");
        }
    }
    let existing = if o.replication_conf_only {
        read_existing(&target.real, "postgresql.auto.conf")?
    } else {
        None
    };
    let rendered = render(config, existing.as_deref());
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

fn version_text(num: u32) -> String {
    pgclone_contract::pg_version::text(num)
}

/// "15" → 150000, "9.6" → 90600.
fn version_from_dir(v: &str) -> anyhow::Result<u32> {
    pgclone_contract::pg_version::parse(v)
        .ok_or_else(|| Failure::new(format!("cannot understand PG_VERSION \"{v}\"")).into())
}

/// Which plugin configuration a clone used and its chain of recovery
/// policies, e.g. `plugins from "/etc/pgclone/plugins.toml"; recovery
/// policies: recovery-standard, site-policy`.
/// (None under Patroni, which writes its own recovery configuration.)
fn plugins_used(cfg: &PluginsConfig, policies: &[&str]) -> String {
    let from = match &cfg.source {
        Some(p) => format!("plugins from \"{}\"", p.display()),
        // Only the default file may be missing: one that was named must exist.
        None => "no /etc/pgclone/plugins.toml: first-party plugins only".to_string(),
    };
    if policies.is_empty() {
        return format!(
            "{from}; recovery policies: none (Patroni writes the recovery configuration)"
        );
    }
    format!("{from}; recovery policies: {}", policies.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patroni_replicas_get_no_recovery_configuration_and_keep_nothing_stale() {
        let old = "# Do not edit this file manually!\n\
                   work_mem = '8MB'\n\
                   primary_conninfo = 'host=stale'\n\
                   recovery_target_time = '2020-01-01'\n";
        let r = cleared_recovery(150000, Some(old));
        assert_eq!(r.files.len(), 1);
        let (name, auto) = &r.files[0];
        assert_eq!(name, "postgresql.auto.conf");
        assert!(auto.contains("work_mem = '8MB'"), "{auto}");
        assert!(!auto.contains("primary_conninfo") && !auto.contains("recovery_target"));
        for f in ["standby.signal", "recovery.signal", "recovery.conf"] {
            assert!(r.remove.contains(&f.to_string()), "{f}");
        }
        // Nothing to clean: postgresql.auto.conf is left as it is.
        assert!(cleared_recovery(150000, Some("work_mem = '8MB'\n"))
            .files
            .is_empty());
        assert!(cleared_recovery(150000, None).files.is_empty());
        // Before 12 there is only recovery.conf to remove.
        assert!(cleared_recovery(110000, Some(old)).files.is_empty());
    }
}
