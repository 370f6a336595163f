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

use crate::config::{ConfFile, PluginsConfig};
use crate::report;

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

/// The whole command. A signal before anything was changed ends it at once
/// (the scratch directory is removed); one during the copy ends the copy and
/// runs the same clean-up as a failure.
pub async fn run(
    conf: &ConfFile,
    plugins_cfg: &PluginsConfig,
    o: &CloneOptions,
) -> anyhow::Result<()> {
    // Before any program runs: what kills their process groups if pgclone
    // is killed (see crate::child).
    crate::child::reaper::start();
    let executing = AtomicBool::new(false);
    tokio::select! {
        biased;
        r = clone(conf, plugins_cfg, o, &executing) => r,
        sig = interrupt::wait_unless(&executing) => Err(interrupt::failure(sig)),
    }
}

/// The phases, in order.
async fn clone(
    conf: &ConfFile,
    plugins_cfg: &PluginsConfig,
    o: &CloneOptions,
    executing: &AtomicBool,
) -> anyhow::Result<()> {
    let ctx = resolve::context(conf, plugins_cfg, o).await?;
    let mut checks = Checks::default();
    preflight::check(&ctx, &mut checks).await?;
    let decided = plan::decide(&ctx, &mut checks).await?;
    checks.print();
    if let Some(e) = checks.first_failure() {
        return Err(e.context_failure(checks.failures()));
    }
    let plan = plan::Plan::new(&ctx, decided).await?;
    if o.dry_run {
        plan.print(&ctx)?;
        if plan.no_restore_command {
            catchup::warn_no_restore_command(conf);
        }
        report::notice("dry run complete: nothing was changed");
        return Ok(());
    }
    execute::run(&ctx, &plan, executing).await?;
    configure::announce(&ctx, &plan);
    Ok(())
}
