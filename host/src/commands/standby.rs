//! `pgclone standby clone`, with repmgr's flags.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use pgclone::clone::{self, CloneOptions, ExternalConfig};

use super::Context;

#[derive(Subcommand)]
pub enum StandbyCommand {
    /// Clone a standby from the upstream (pg_basebackup), from Barman or from
    /// another backup source, and write its recovery configuration.
    ///
    /// Every check runs before anything is touched; -F empties the target only
    /// after all of them passed; the recovery configuration is written last,
    /// after a verified copy. Accepts `repmgr standby clone`'s flags.
    ///
    /// The source: Barman when barman_host and barman_server are set (unless
    /// --without-barman), else pg_basebackup; or any installed backup source
    /// plugin named by backup_source (e.g. backup_source=pgbackrest).
    ///
    /// Example: pgclone -f /etc/repmgr.conf standby clone -h node1 -U repmgr -d repmgr
    #[command(disable_help_flag = true)]
    Clone(CloneArgs),
}

#[derive(Args)]
pub struct CloneArgs {
    /// The upstream's host name or socket directory.
    #[arg(short = 'h', long = "host", value_name = "HOST")]
    host: Option<String>,
    /// The upstream's port.
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: Option<String>,
    /// The user for pgclone's own connection to the upstream (checks, slots).
    #[arg(short = 'U', long = "username", value_name = "USER")]
    user: Option<String>,
    /// A database name, or a whole conninfo string / URI for the upstream.
    #[arg(short = 'd', long = "dbname", value_name = "DBNAME|CONNINFO")]
    dbname: Option<String>,
    /// The new standby's data directory (default: data_directory).
    #[arg(
        short = 'D',
        long = "pgdata",
        visible_alias = "data-dir",
        value_name = "DIR"
    )]
    pgdata: Option<PathBuf>,
    /// Overwrite a populated target directory (never a running server's).
    #[arg(short = 'F', long)]
    force: bool,
    /// Ask the upstream for a fast checkpoint (pg_basebackup -c fast).
    #[arg(short = 'c', long)]
    fast_checkpoint: bool,
    /// Run every check and show the plan and the files to be written; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// primary_conninfo for the standby, when it differs from -h/-p/-U/-d.
    #[arg(long, value_name = "CONNINFO")]
    upstream_conninfo: Option<String>,
    /// Take the upstream's conninfo and replication user from repmgr.nodes.
    #[arg(long, value_name = "ID")]
    upstream_node_id: Option<u32>,
    /// Clone with pg_basebackup even when barman_host/barman_server are set.
    #[arg(long)]
    without_barman: bool,
    /// Also copy configuration files that live outside the upstream's data
    /// directory (over ssh): to the same path, or into the new data directory.
    #[arg(long, value_name = "WHERE", num_args = 0..=1, default_missing_value = "samepath")]
    copy_external_config_files: Option<ExternalConfig>,
    /// Only write the recovery configuration into an existing data directory.
    #[arg(long, visible_alias = "recovery-conf-only")]
    replication_conf_only: bool,
    /// The user for replication connections and primary_conninfo.
    #[arg(long, value_name = "USER")]
    replication_user: Option<String>,
    /// A superuser for checks that need one (file locations).
    #[arg(short = 'S', long, value_name = "USER")]
    superuser: Option<String>,
    /// Check the copy with pg_verifybackup (PostgreSQL 13+).
    #[arg(long)]
    verify_backup: bool,
    /// From Barman: the backup to clone (default: the latest).
    #[arg(long, value_name = "ID")]
    backup_id: Option<String>,
    /// From Barman: parallel rsync streams (default: clone_jobs, else 4).
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// Print help (-h is the upstream's host, as in repmgr).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

pub fn run(ctx: &Context, cmd: StandbyCommand) -> anyhow::Result<ExitCode> {
    let StandbyCommand::Clone(a) = cmd;
    let conf = ctx.config()?;
    if let Some(path) = &ctx.config_file {
        pgclone::report::notice(&format!("using configuration file \"{}\"", path.display()));
    }
    let plugins = ctx.plugins(&conf)?;
    let opts = CloneOptions {
        data_dir: a.pgdata,
        host: a.host,
        port: a.port,
        user: a.user,
        dbname: a.dbname,
        force: a.force,
        fast_checkpoint: a.fast_checkpoint,
        dry_run: a.dry_run,
        upstream_conninfo: a.upstream_conninfo,
        upstream_node_id: a.upstream_node_id,
        without_barman: a.without_barman,
        copy_external_config_files: a.copy_external_config_files,
        replication_conf_only: a.replication_conf_only,
        replication_user: a.replication_user,
        superuser: a.superuser,
        verify_backup: a.verify_backup,
        backup_id: a.backup_id,
        jobs: a.jobs,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(clone::run(&conf, &plugins, &opts));
    // An interrupted plugin call may still be running on a blocking thread:
    // do not wait for it.
    rt.shutdown_background();
    result?;
    Ok(ExitCode::SUCCESS)
}
