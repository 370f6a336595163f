//! `pgclone standby clone`, as a list of phases over one context:
//!
//! 1. [`resolve`]: settings, plugins, the upstream and the target, learned once;
//! 2. [`preflight`]: the checks that need no plan;
//! 3. [`plan`]: the source's plan ([`source_plan`]) and the recovery
//!    configuration ([`recovery_plan`]), checked, laid out as actions;
//! 4. [`execute`]: the actions in order, [`rollback`] on failure;
//! 5. [`configure`]: the recovery configuration, written last.
//!
//! Order matters for safety: every check runs before anything is touched; `-F`
//! empties the target only after they all passed; the recovery configuration
//! is written last, after a verified copy, so a failed clone can never be
//! started as a standby by mistake. `--dry-run` prints the plan's actions and
//! stops.

pub mod catchup;
pub mod checks;
pub mod configure;
pub mod connect;
pub mod execute;
pub mod external;
pub mod interrupt;
pub mod leftover;
pub mod links;
pub mod outcome;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod recovery_plan;
pub mod resolve;
pub mod rollback;
pub mod safety;
pub mod settings;
pub mod source_plan;
pub mod space;
pub mod ssh_master;
pub mod steps;
pub mod target;
pub mod upstream;
pub mod verify;
pub mod warm_wal;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::config::{ConfFile, PluginsConfig};
use crate::report;

use checks::Checks;
pub use external::ExternalConfig;
pub use outcome::Outcome;

/// Everything `standby clone` was asked to do: repmgr's options, defined once
/// here for the command line too (each field's comment is its `--help`). The
/// command line accepts them at every level (before `standby`, between
/// `standby` and `clone`, after `clone`); only `Option`s and flags, so that
/// the levels merge (the last one given wins).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CloneOptions {
    /// The upstream's host name or socket directory (-h is never help).
    #[arg(short = 'h', long = "host", value_name = "HOST")]
    pub host: Option<String>,
    /// The upstream's port.
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: Option<String>,
    /// The user for pgclone's own connection to the upstream (checks, slots).
    #[arg(short = 'U', long = "username", value_name = "USER")]
    pub user: Option<String>,
    /// A database name, or a whole conninfo string / URI for the upstream.
    #[arg(short = 'd', long = "dbname", value_name = "DBNAME|CONNINFO")]
    pub dbname: Option<String>,
    /// The new standby's data directory (default: data_directory). Unlike
    /// repmgr, which ignores -D when the configuration file sets
    /// data_directory, -D is used, with a warning when the two differ.
    #[arg(
        short = 'D',
        long = "pgdata",
        visible_alias = "data-dir",
        value_name = "DIR"
    )]
    pub data_dir: Option<PathBuf>,
    /// Overwrite a populated target directory (never a running server's).
    #[arg(short = 'F', long)]
    pub force: bool,
    /// Ask the upstream for a fast checkpoint (pg_basebackup -c fast).
    #[arg(short = 'c', long)]
    pub fast_checkpoint: bool,
    /// Run every check and show the plan and the files to be written; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// primary_conninfo for the standby, when it differs from -h/-p/-U/-d.
    #[arg(long, value_name = "CONNINFO")]
    pub upstream_conninfo: Option<String>,
    /// Take the upstream's conninfo and replication user from repmgr.nodes.
    #[arg(long, value_name = "ID")]
    pub upstream_node_id: Option<u32>,
    /// Clone with pg_basebackup even when barman_host/barman_server are set.
    #[arg(long)]
    pub without_barman: bool,
    /// Also copy configuration files that live outside the upstream's data
    /// directory (over ssh): to the same path (samepath, the default), or into
    /// the new data directory (pgdata). A value needs `=`, as in repmgr.
    #[arg(
        long,
        value_name = "WHERE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "samepath"
    )]
    pub copy_external_config_files: Option<ExternalConfig>,
    /// Only write the recovery configuration into an existing data directory.
    #[arg(long, visible_alias = "recovery-conf-only")]
    pub replication_conf_only: bool,
    /// The user for replication connections and primary_conninfo.
    #[arg(long, value_name = "USER")]
    pub replication_user: Option<String>,
    /// A superuser for checks that need one (file locations).
    #[arg(short = 'S', long, value_name = "USER")]
    pub superuser: Option<String>,
    /// The user for ssh to the upstream host (--copy-external-config-files).
    #[arg(short = 'R', long, value_name = "USER")]
    pub remote_user: Option<String>,
    /// Where the PostgreSQL programs are (overrides pg_bindir).
    #[arg(
        short = 'b',
        long = "pg_bindir",
        visible_alias = "pg-bindir",
        value_name = "DIR"
    )]
    pub pg_bindir: Option<PathBuf>,
    /// recovery_min_apply_delay for the standby (overrides the configuration).
    #[arg(long, value_name = "DELAY")]
    pub recovery_min_apply_delay: Option<String>,
    /// Check the copy with pg_verifybackup (PostgreSQL 13+).
    #[arg(long)]
    pub verify_backup: bool,
    /// Accepted for repmgr: no effect (a warning says so). pgclone connects to
    /// the upstream for its checks and, from Barman, goes on without it.
    #[arg(long)]
    pub no_upstream_connection: bool,
    /// From Barman: the backup to clone, by id, name or shortcut (latest,
    /// oldest; default: the latest).
    #[arg(long, value_name = "ID|NAME")]
    pub backup_id: Option<String>,
    /// From Barman: parallel rsync streams (default: clone_jobs, else 4).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// No hints with notices and warnings (errors keep theirs).
    #[arg(short = 't', long)]
    pub terse: bool,
    /// A replica for Patroni (`pgclone patroni-replica`): Patroni writes the
    /// recovery configuration, so none is written and any the copy brought
    /// along is removed; no replication slot is made (Patroni manages them);
    /// the connection's own user and PGPASSFILE are used.
    #[arg(skip)]
    pub patroni: bool,
}

impl CloneOptions {
    /// The options that override configuration keys, as in repmgr.
    pub fn override_conf(&self, conf: &mut ConfFile) {
        if let Some(b) = &self.pg_bindir {
            conf.set("pg_bindir", &b.to_string_lossy());
        }
        if let Some(d) = &self.recovery_min_apply_delay {
            conf.set("recovery_min_apply_delay", d);
        }
    }
}

/// The whole command. A signal before anything was changed ends it at once
/// (the scratch directory is removed); one during the copy ends the copy and
/// runs the same clean-up as a failure. What it checked, planned and did is
/// recorded in `out`, whatever happens.
pub async fn run(
    conf: &ConfFile,
    plugins_cfg: &PluginsConfig,
    o: &CloneOptions,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    // Before any program runs: what kills their process groups if pgclone
    // is killed (see crate::child).
    crate::child::reaper::start();
    let executing = AtomicBool::new(false);
    tokio::select! {
        biased;
        r = clone(conf, plugins_cfg, o, &executing, out) => r,
        sig = interrupt::wait_unless(&executing) => Err(interrupt::failure(sig)),
    }
}

/// The phases, in order.
async fn clone(
    conf: &ConfFile,
    plugins_cfg: &PluginsConfig,
    o: &CloneOptions,
    executing: &AtomicBool,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    out.dry_run = o.dry_run;
    let t = Instant::now();
    let ctx = resolve::context(conf, plugins_cfg, o).await?;
    out.phase("resolve", t);
    let t = Instant::now();
    let mut checks = Checks::default();
    let decided = async {
        preflight::check(&ctx, &mut checks).await?;
        plan::decide(&ctx, &mut checks).await
    }
    .await;
    // Recorded even when a phase of the checks ended in an error.
    out.checks = checks.views();
    let decided = decided?;
    out.phase("checks", t);
    checks.print();
    if let Some(e) = checks.first_failure() {
        return Err(e.context_failure(checks.failures()));
    }
    let t = Instant::now();
    let plan = plan::Plan::new(&ctx, decided).await?;
    out.actions = plan.views(&ctx)?;
    out.phase("plan", t);
    if o.dry_run {
        out.files = plan.files(&ctx)?;
        // With --output json the plan is in the document, not printed.
        if !crate::output::json() {
            plan::Plan::print(&out.actions);
        }
        if plan.no_restore_command {
            catchup::warn_no_restore_command(conf);
        }
        report::notice("dry run complete: nothing was changed");
        return Ok(());
    }
    let t = Instant::now();
    let result = execute::run(&ctx, &plan, executing, out).await;
    out.phase("execute", t);
    result?;
    configure::announce(&ctx, &plan);
    Ok(())
}
