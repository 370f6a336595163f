//! `pgclone standby clone`, with repmgr's command line: every option works in
//! any position (before `standby`, between `standby` and `clone`, after
//! `clone`), with repmgr's meaning; the last one given wins, as with getopt.

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches, Subcommand};

use pgclone::clone::{self, CloneOptions};
use pgclone::config::ConfFile;
use pgclone::report::{self, Failure};

use super::{ids, Context};

/// `pgclone [OPTIONS] standby [OPTIONS] clone [OPTIONS] [HOST]`; the options
/// ([`CloneOptions`]) are added at every level by [`with_options`].
#[derive(Args)]
pub struct StandbyArgs {
    #[command(subcommand)]
    pub command: Option<StandbyCommand>,
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
}

/// `root` (the whole command line) with [`CloneOptions`] at every level of
/// `standby clone`, hidden where they are accepted but documented with
/// `standby clone` only (the top level and `standby`).
pub fn with_options(root: clap::Command) -> clap::Command {
    let hidden = |c: clap::Command| {
        ids::<CloneOptions>()
            .iter()
            .fold(add_options(c), |c, id| c.mut_arg(id, |a| a.hide(true)))
    };
    hidden(root).mut_subcommand("standby", |s| {
        hidden(s).mut_subcommand("clone", add_options)
    })
}

/// `c` with [`CloneOptions`]' arguments; its description stays `c`'s (clap
/// would take the struct's doc comment, written for the library).
fn add_options(c: clap::Command) -> clap::Command {
    let about = c.get_about().cloned();
    let long_about = c.get_long_about().cloned();
    let mut c = CloneOptions::augment_args(c)
        .about(None::<&str>)
        .long_about(None::<&str>);
    if let Some(a) = about {
        c = c.about(a);
    }
    if let Some(a) = long_about {
        c = c.long_about(a);
    }
    c
}

/// The options given at each level of `standby clone`, in turn: the last one
/// given wins, as with getopt (a flag, once given, stays).
pub fn options(root: &ArgMatches) -> Result<CloneOptions, clap::Error> {
    // Defaults (none today) come from clap, like the values.
    let mut o = CloneOptions::from_arg_matches(root)?;
    let standby = root.subcommand_matches("standby");
    let clone = standby.and_then(|s| s.subcommand_matches("clone"));
    for level in [standby, clone].into_iter().flatten() {
        o.update_from_arg_matches(&given_only(level))?;
    }
    Ok(o)
}

/// `level` without the options it holds only as defaults, which must not
/// undo what an earlier level gave.
fn given_only(level: &ArgMatches) -> ArgMatches {
    let mut m = level.clone();
    for id in ids::<CloneOptions>() {
        if m.value_source(id.as_str())
            .is_none_or(|s| s == ValueSource::DefaultValue)
        {
            let _ = m.try_clear_id(id.as_str());
        }
    }
    m
}

/// `pgclone standby ...` with the options of every level merged (`o`, see
/// [`options`]).
pub fn run(ctx: &Context, mut o: CloneOptions, standby: StandbyArgs) -> anyhow::Result<ExitCode> {
    let Some(StandbyCommand::Clone(leaf)) = standby.command else {
        return Err(Failure::new("no action given for command \"standby\"")
            .hint("pgclone implements \"standby clone\"; see pgclone standby clone --help")
            .into());
    };
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

fn clone_standby(ctx: &Context, opts: CloneOptions) -> anyhow::Result<ExitCode> {
    let mut conf = ctx.config()?;
    if ctx.log_to_file {
        log_to_file(&conf)?;
    }
    if let Some(path) = &ctx.config_file {
        report::notice(&format!("using configuration file \"{}\"", path.display()));
    }
    Context::notice_if_no_config(&conf);
    if opts.no_upstream_connection {
        report::warning(
            "--no-upstream-connection has no effect",
            Some("pgclone connects to the upstream for its checks; cloning from Barman, it goes on without it when it cannot"),
        );
    }
    opts.override_conf(&mut conf);
    let plugins = ctx.plugins(&conf)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut outcome = clone::Outcome::default();
    let result = rt.block_on(clone::run(&conf, &plugins, &opts, &mut outcome));
    // An interrupted plugin call may still be running on a blocking thread:
    // do not wait for it.
    rt.shutdown_background();
    // Failed or not: the document says what was checked, planned and done.
    pgclone::output::put_fields(&outcome);
    result?;
    Ok(ExitCode::SUCCESS)
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
