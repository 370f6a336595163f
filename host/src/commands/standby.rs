//! `pgclone standby clone`, with repmgr's command line: every option works in
//! any position (before `standby`, between `standby` and `clone`, after
//! `clone`), with repmgr's meaning; the last one given wins, as with getopt.

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use pgclone::clone::{self, CloneOptions, ExternalConfig};
use pgclone::config::ConfFile;
use pgclone::report::{self, Failure};

use super::Context;

/// `pgclone [OPTIONS] standby [OPTIONS] clone [OPTIONS] [HOST]`.
#[derive(Args)]
pub struct StandbyArgs {
    #[command(subcommand)]
    pub command: Option<StandbyCommand>,
    #[command(flatten)]
    pub opts: CloneOpts,
}

#[derive(Subcommand)]
pub enum StandbyCommand {
    /// Clone a standby from the upstream (pg_basebackup), from Barman or from
    /// another backup source, and write its recovery configuration.
    ///
    /// Every check runs before anything is touched; -F empties the target only
    /// after all of them passed; the recovery configuration is written last,
    /// after a verified copy. Accepts `repmgr standby clone`'s options, in any
    /// position: before `standby clone` or after it.
    ///
    /// The source: Barman when barman_host and barman_server are set (unless
    /// --without-barman), else pg_basebackup; or any installed backup source
    /// plugin named by backup_source (e.g. backup_source=pgbackrest).
    ///
    /// Example (repmgr's quick start, verbatim):
    /// pgclone -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone --dry-run
    Clone(CloneArgs),
}

#[derive(Args)]
pub struct CloneArgs {
    /// The upstream's host, instead of -h (repmgr's `standby clone node1`).
    #[arg(value_name = "HOST")]
    upstream_host: Option<String>,
    #[command(flatten)]
    opts: CloneOpts,
}

/// repmgr's options for `standby clone`, accepted at every level of the
/// command line. Only `Option`s, flags and counts, so that the levels merge.
#[derive(Args, Default, Clone)]
pub struct CloneOpts {
    /// The upstream's host name or socket directory (-h is never help).
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
    /// The new standby's data directory (default: data_directory). Unlike
    /// repmgr, which ignores -D when the configuration file sets
    /// data_directory, -D is used, with a warning when the two differ.
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
    /// directory (over ssh): to the same path (samepath, the default), or into
    /// the new data directory (pgdata). A value needs `=`, as in repmgr.
    #[arg(
        long,
        value_name = "WHERE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "samepath"
    )]
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
    /// The user for ssh to the upstream host (--copy-external-config-files).
    #[arg(short = 'R', long, value_name = "USER")]
    remote_user: Option<String>,
    /// Where the PostgreSQL programs are (overrides pg_bindir).
    #[arg(
        short = 'b',
        long = "pg_bindir",
        visible_alias = "pg-bindir",
        value_name = "DIR"
    )]
    pg_bindir: Option<PathBuf>,
    /// recovery_min_apply_delay for the standby (overrides the configuration).
    #[arg(long, value_name = "DELAY")]
    recovery_min_apply_delay: Option<String>,
    /// Check the copy with pg_verifybackup (PostgreSQL 13+).
    #[arg(long)]
    verify_backup: bool,
    /// Accepted for repmgr: no effect (a warning says so). pgclone connects to
    /// the upstream for its checks and, from Barman, goes on without it.
    #[arg(long)]
    no_upstream_connection: bool,
    /// From Barman: the backup to clone, by id, name or shortcut (latest,
    /// oldest; default: the latest).
    #[arg(long, value_name = "ID|NAME")]
    backup_id: Option<String>,
    /// From Barman: parallel rsync streams (default: clone_jobs, else 4).
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// No hints with notices and warnings (errors keep theirs).
    #[arg(short = 't', long)]
    terse: bool,
}

impl CloneOpts {
    /// `later` given after `self` on the command line: its values win.
    fn then(self, later: CloneOpts) -> CloneOpts {
        CloneOpts {
            host: later.host.or(self.host),
            port: later.port.or(self.port),
            user: later.user.or(self.user),
            dbname: later.dbname.or(self.dbname),
            pgdata: later.pgdata.or(self.pgdata),
            force: later.force || self.force,
            fast_checkpoint: later.fast_checkpoint || self.fast_checkpoint,
            dry_run: later.dry_run || self.dry_run,
            upstream_conninfo: later.upstream_conninfo.or(self.upstream_conninfo),
            upstream_node_id: later.upstream_node_id.or(self.upstream_node_id),
            without_barman: later.without_barman || self.without_barman,
            copy_external_config_files: later
                .copy_external_config_files
                .or(self.copy_external_config_files),
            replication_conf_only: later.replication_conf_only || self.replication_conf_only,
            replication_user: later.replication_user.or(self.replication_user),
            superuser: later.superuser.or(self.superuser),
            remote_user: later.remote_user.or(self.remote_user),
            pg_bindir: later.pg_bindir.or(self.pg_bindir),
            recovery_min_apply_delay: later
                .recovery_min_apply_delay
                .or(self.recovery_min_apply_delay),
            verify_backup: later.verify_backup || self.verify_backup,
            no_upstream_connection: later.no_upstream_connection || self.no_upstream_connection,
            backup_id: later.backup_id.or(self.backup_id),
            jobs: later.jobs.or(self.jobs),
            terse: later.terse || self.terse,
        }
    }

    /// The options given, by their flag, for "meaningless here" errors.
    pub fn given(&self) -> Vec<&'static str> {
        let flags = [
            (self.host.is_some(), "-h/--host"),
            (self.port.is_some(), "-p/--port"),
            (self.user.is_some(), "-U/--username"),
            (self.dbname.is_some(), "-d/--dbname"),
            (self.pgdata.is_some(), "-D/--pgdata"),
            (self.force, "-F/--force"),
            (self.fast_checkpoint, "-c/--fast-checkpoint"),
            (self.dry_run, "--dry-run"),
            (self.upstream_conninfo.is_some(), "--upstream-conninfo"),
            (self.upstream_node_id.is_some(), "--upstream-node-id"),
            (self.without_barman, "--without-barman"),
            (
                self.copy_external_config_files.is_some(),
                "--copy-external-config-files",
            ),
            (self.replication_conf_only, "--replication-conf-only"),
            (self.replication_user.is_some(), "--replication-user"),
            (self.superuser.is_some(), "-S/--superuser"),
            (self.remote_user.is_some(), "-R/--remote-user"),
            (self.pg_bindir.is_some(), "-b/--pg_bindir"),
            (
                self.recovery_min_apply_delay.is_some(),
                "--recovery-min-apply-delay",
            ),
            (self.verify_backup, "--verify-backup"),
            (self.no_upstream_connection, "--no-upstream-connection"),
            (self.backup_id.is_some(), "--backup-id"),
            (self.jobs.is_some(), "-j/--jobs"),
            (self.terse, "-t/--terse"),
        ];
        flags.iter().filter(|(g, _)| *g).map(|(_, f)| *f).collect()
    }
}

/// `pgclone standby ...` with the options given before `standby` (`top`).
pub fn run(ctx: &Context, top: CloneOpts, standby: StandbyArgs) -> anyhow::Result<ExitCode> {
    let Some(StandbyCommand::Clone(leaf)) = standby.command else {
        return Err(Failure::new("no action given for command \"standby\"")
            .hint("pgclone implements \"standby clone\"; see pgclone standby clone --help")
            .into());
    };
    let mut o = top.then(standby.opts).then(leaf.opts);
    if let Some(h) = leaf.upstream_host {
        if o.host.is_some() {
            return Err(Failure::new(
                "host name provided both with -h/--host and as an extra parameter",
            )
            .detail(format!("extra parameter: \"{h}\""))
            .hint("give the upstream's host once")
            .into());
        }
        o.host = Some(h);
    }
    report::set_terse(o.terse);
    clone_standby(ctx, o)
}

fn clone_standby(ctx: &Context, a: CloneOpts) -> anyhow::Result<ExitCode> {
    let mut conf = ctx.config()?;
    if ctx.log_to_file {
        log_to_file(&conf)?;
    }
    if let Some(path) = &ctx.config_file {
        report::notice(&format!("using configuration file \"{}\"", path.display()));
    }
    if a.no_upstream_connection {
        report::warning(
            "--no-upstream-connection has no effect",
            Some("pgclone connects to the upstream for its checks; cloning from Barman, it goes on without it when it cannot"),
        );
    }
    override_conf(&mut conf, &a);
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
        remote_user: a.remote_user,
        verify_backup: a.verify_backup,
        backup_id: a.backup_id,
        jobs: a.jobs,
        patroni: false,
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

/// Command-line options that override configuration keys, as in repmgr.
fn override_conf(conf: &mut ConfFile, a: &CloneOpts) {
    if let Some(b) = &a.pg_bindir {
        conf.set("pg_bindir", &b.to_string_lossy());
    }
    if let Some(d) = &a.recovery_min_apply_delay {
        conf.set("recovery_min_apply_delay", d);
    }
}

/// repmgr's --log-to-file: everything pgclone says goes to `log_file`
/// (appended); without log_file it stays on standard error, as in repmgr.
fn log_to_file(conf: &ConfFile) -> anyhow::Result<()> {
    let Some(path) = conf.get("log_file") else {
        report::warning(
            "--log-to-file given but log_file is not set: logging to standard error",
            Some("set log_file in the configuration file"),
        );
        return Ok(());
    };
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| {
            Failure::new(format!("could not open log file \"{path}\""))
                .detail(e.to_string())
                .hint("check log_file in the configuration file, or run without --log-to-file")
        })?;
    // Standard error becomes the file: pgclone's messages and those of the
    // programs it runs (pg_basebackup, rsync) end up there together.
    if unsafe { libc::dup2(file.as_raw_fd(), 2) } < 0 {
        return Err(Failure::new(format!("could not log to \"{path}\""))
            .detail(std::io::Error::last_os_error().to_string())
            .into());
    }
    Ok(())
}
