//! Phase 1: everything the clone works from, learned once. The settings, the
//! plugins it uses, the upstream as it answers, and the target directory as
//! it is now. Later phases judge and act on this context; they do not change it.

use std::sync::Arc;

use crate::config::{ConfFile, PluginsConfig};
use crate::contract::{Described, PolicyPlugin, SourcePlugin};
use crate::environment::HostEnv;
use crate::pg::libpq::Resolved;
use crate::plugin::{cache, catalog, Bound, Plugin, Runtime};
use crate::report::{self, Failure};

use super::connect::{self, Replication, UpstreamSide};
use super::settings::NodeSettings;
use super::ssh_master::SshMaster;
use super::target::{self, Target};
use super::CloneOptions;

/// The clone's resolved context.
pub struct Context<'a> {
    pub conf: &'a ConfFile,
    pub plugins_cfg: &'a PluginsConfig,
    pub o: &'a CloneOptions,
    pub node: NodeSettings,
    /// The source restores a backup instead of copying the live upstream
    /// (its plugin does not need the upstream): the upstream may be down.
    pub from_backup: bool,
    /// The backup source (none with --replication-conf-only): a component
    /// bound to the runtime and this environment.
    pub source: Option<Box<dyn SourcePlugin>>,
    /// The recovery policies in the order they decide: the standard one, then
    /// the site's (none for Patroni, which writes its own configuration).
    pub policies: Vec<Box<dyn PolicyPlugin>>,
    /// What plugins and steps may use, with the shared ssh connection's path.
    pub env: Arc<HostEnv>,
    /// Held open for the clone's duration; closed when dropped, before the
    /// scratch directory that holds their sockets (fields drop in order:
    /// with the socket gone first, `-O exit` could not reach it).
    _ssh_masters: Vec<SshMaster>,
    /// A private directory for the clone's own files, removed at the end.
    pub scratch: tempfile::TempDir,
    pub up: UpstreamSide,
    /// The replication connection's parameters, and what it showed.
    pub repl: Resolved,
    pub replication: Replication,
    pub target: Target,
}

impl Context<'_> {
    /// The source plugin; only --replication-conf-only has none.
    pub fn source(&self) -> &dyn SourcePlugin {
        self.source
            .as_deref()
            .expect("a source is loaded unless --replication-conf-only")
    }
}

/// Resolves the context, in this order: who runs it, the node's settings,
/// the plugins (whether the source needs the upstream decides how much of its
/// absence is tolerated), the upstream, the target directory.
pub async fn context<'a>(
    conf: &'a ConfFile,
    plugins_cfg: &'a PluginsConfig,
    o: &'a CloneOptions,
) -> anyhow::Result<Context<'a>> {
    refuse_root()?;
    let node = NodeSettings::read(conf, o)?;
    announce(conf, o, &node);
    let rt = Runtime::new(cache::default_dir().as_deref())?;
    let loader = Loader::new(&rt, plugins_cfg);
    let source = if o.replication_conf_only {
        None
    } else {
        Some(loader.source(&node.source)?)
    };
    let from_backup = source.as_ref().is_some_and(|p| !p.needs_upstream());
    announce_source(o, source.as_ref());
    let policies = loader.policies(o)?;
    report::info(&plugins_used(
        plugins_cfg,
        &policies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
    ));
    let mut env = HostEnv::new(conf, plugins_cfg)?;
    let scratch = tempfile::Builder::new().prefix("pgclone-").tempdir()?;
    // Opened now, while the upstream is asked, so that the source's commands
    // that follow skip the handshake.
    let masters = source
        .as_ref()
        .map_or_else(Vec::new, |s| masters(s, &env, &scratch));
    let up = connect::upstream(o, &node, from_backup).await?;
    let repl = connect::replication(o, &node, &up)?;
    let replication = connect::identify(o, &node, &up, &repl, &env, scratch.path()).await?;
    let target = target::inspect(&node.data_dir, up.local.as_ref())?;
    env.control_paths = masters
        .iter()
        .filter_map(|(t, m)| Some((t.clone(), m.ready()?)))
        .collect();
    let (rt, env) = (Arc::new(rt), Arc::new(env));
    let bind = |plugin| Bound {
        plugin,
        rt: rt.clone(),
        env: env.clone(),
    };
    Ok(Context {
        conf,
        plugins_cfg,
        o,
        node,
        from_backup,
        source: source.map(|p| Box::new(bind(p)) as Box<dyn SourcePlugin>),
        policies: policies
            .into_iter()
            .map(|p| Box::new(bind(p)) as Box<dyn PolicyPlugin>)
            .collect(),
        env,
        scratch,
        up,
        repl,
        replication,
        target,
        _ssh_masters: masters.into_iter().map(|(_, m)| m).collect(),
    })
}

fn refuse_root() -> anyhow::Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    Err(Failure::new("pgclone standby clone must not be run as root")
        .detail("PostgreSQL refuses to run as root, so a data directory cloned by root cannot be started")
        .hint(format!("run it as the owner of the data directory, e.g. runuser -u postgres -- {}", crate::invocation::command("standby clone ...")))
        .into())
}

/// What the clone is about to do, as repmgr says it.
fn announce(conf: &ConfFile, o: &CloneOptions, node: &NodeSettings) {
    report::notice(&format!(
        "destination directory \"{}\" provided",
        node.data_dir.display()
    ));
    if o.replication_conf_only {
        return;
    }
    if !node.barman_mode && node.source != "pg-basebackup" {
        report::info(&format!("cloning with backup source \"{}\"", node.source));
    }
    if node.barman_mode {
        report::info(&format!(
            "cloning from Barman server \"{}\" on \"{}\"",
            conf.get("barman_server").unwrap_or(""),
            conf.get("barman_host").unwrap_or("")
        ));
    }
}

/// What the loaded source means for the options given: a backup taken
/// earlier has had its checkpoint.
fn announce_source(o: &CloneOptions, source: Option<&Plugin>) {
    match source {
        Some(s) if o.fast_checkpoint && !Described::needs_upstream(s) => report::notice(&format!(
            "-c/--fast-checkpoint does not apply to a clone from {}: its backup was taken already",
            s.source_name()
        )),
        _ => {}
    }
}

/// Loads configured plugins by name.
struct Loader<'a> {
    rt: &'a Runtime,
    cfg: &'a PluginsConfig,
    candidates: Vec<catalog::Candidate>,
}

impl<'a> Loader<'a> {
    fn new(rt: &'a Runtime, cfg: &'a PluginsConfig) -> Self {
        Loader {
            rt,
            cfg,
            candidates: catalog::candidates(cfg),
        }
    }

    fn load(&self, name: &str) -> anyhow::Result<Plugin> {
        let cand = self
            .candidates
            .iter()
            .find(|c| c.name == name || c.name == catalog::canonical(name))
            .ok_or_else(|| {
                Failure::new(format!("plugin \"{name}\" is not configured")).hint(format!(
                    "install it with `{}`, or check backup_source and policies",
                    crate::invocation::command("plugin install FILE.wasm")
                ))
            })?;
        Ok(Plugin::load(self.rt, cand)?)
    }

    fn source(&self, name: &str) -> anyhow::Result<Plugin> {
        let p = self.load(name)?;
        if !p.provides_base_backups() {
            return Err(
                Failure::new(format!("plugin \"{name}\" does not provide base backups"))
                    .hint(format!(
                        "set backup_source to a backup source plugin (see `{}`)",
                        crate::invocation::command("plugin list")
                    ))
                    .into(),
            );
        }
        Ok(p)
    }

    /// Patroni writes its own recovery configuration: no policy decides one.
    fn policies(&self, o: &CloneOptions) -> anyhow::Result<Vec<Plugin>> {
        if o.patroni {
            return Ok(Vec::new());
        }
        std::iter::once("recovery-standard")
            .chain(self.cfg.policies.iter().map(String::as_str))
            .map(|p| self.load(p))
            .collect()
    }
}

/// The shared ssh connections the source's commands go through: one to
/// each ssh target its `remote-run` capabilities name and the configuration
/// maps (none for a source that runs nothing remotely).
fn masters(
    source: &dyn Described,
    env: &HostEnv,
    scratch: &tempfile::TempDir,
) -> Vec<(String, SshMaster)> {
    source
        .ssh_targets()
        .into_iter()
        .filter_map(|t| {
            let dest = env.ssh_destination(t)?;
            let m = SshMaster::start(
                t,
                &dest,
                &env.ssh_options,
                scratch.path(),
                env.ssh_connect_timeout,
            )?;
            Some((t.to_string(), m))
        })
        .collect()
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
