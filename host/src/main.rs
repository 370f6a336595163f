//! The `pgclone` command line.
//!
//! repmgr's command lines work verbatim: its options go before or after
//! `standby clone` (`-h` is the upstream's host everywhere, help is `-?` or
//! `--help`); anything unknown is an error. After `wal-restore` the options
//! are barman-wal-restore's, whose letters mean other things.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use pgclone::report::{self, Level};

mod commands;

use commands::standby::{CloneOpts, StandbyArgs};

/// Clone PostgreSQL standbys from Barman or with pg_basebackup, and feed them
/// WAL from Barman. Site- and vendor-specific parts are WebAssembly plugins that
/// run sandboxed, with only the capabilities the operator grants.
#[derive(Parser)]
#[command(
    name = "pgclone",
    version,
    propagate_version = true,
    disable_help_flag = true,
    override_usage = "pgclone [OPTIONS] standby clone [OPTIONS] [HOST]
       pgclone [OPTIONS] wal-restore [OPTIONS] BARMAN_HOST SERVER %f %p
       pgclone [OPTIONS] plugin COMMAND [OPTIONS]
       pgclone [OPTIONS] patroni-replica --scope=NAME --role=replica --datadir=DIR --connstring=CONNINFO [--KEY=VALUE]..."
)]
#[command(
    after_help = "Options of `standby clone` (pgclone standby clone -?) work in any position, before \
or after `standby clone`, with repmgr's meanings, so repmgr's command lines work verbatim: \
pgclone -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone --dry-run. -h is always \
the upstream's host; help is -? or --help. After `wal-restore` the options are barman-wal-restore's \
(-p is --parallel, -U the Barman host's user, -c Barman's configuration, -t --test); before it only \
-f and --plugins-config apply. An option that means nothing to a command is an error.

Patroni: `patroni-replica` is a postgresql.create_replica_methods command (Patroni appends \
--scope, --role, --datadir, --connstring and the method's keys as --KEY=VALUE) and `wal-restore` \
its recovery_conf restore_command; see pgclone patroni-replica --help.

Configuration is read from -f, $PGCLONE_CONFIG, /etc/pgclone.conf or /etc/repmgr.conf \
(repmgr.conf syntax; existing repmgr.conf files work unchanged). Plugin pins and grants are read \
from --plugins-config, $PGCLONE_PLUGINS_CONFIG, the plugins_config key, or \
/etc/pgclone/plugins.toml."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    general: General,
    /// repmgr's options given before the command (hidden in help here).
    #[command(flatten)]
    clone: CloneOpts,
}

/// Options for every command, in any position.
#[derive(Args)]
struct General {
    /// The node's configuration file (repmgr.conf syntax).
    #[arg(short = 'f', long = "config-file", global = true, value_name = "FILE")]
    config_file: Option<PathBuf>,

    /// The plugin configuration: pins (sha256), grants, the policy chain.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "PGCLONE_PLUGINS_CONFIG"
    )]
    plugins_config: Option<PathBuf>,

    /// More output; repeat for debug output (not for wal-restore).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,

    /// Lowest level shown: DEBUG, INFO (default), NOTICE, WARNING, ERROR (not
    /// for wal-restore).
    #[arg(short = 'L', long, global = true, value_name = "LEVEL")]
    log_level: Option<Level>,

    /// Errors only (not for wal-restore).
    #[arg(short, long, global = true)]
    quiet: bool,

    /// standby clone only: write messages to log_file from the configuration.
    #[arg(long, global = true)]
    log_to_file: bool,

    /// Print the version as a number (repmgr's --version-number).
    #[arg(long, global = true)]
    version_number: bool,

    /// Print help (-h is the upstream's host, as in repmgr).
    #[arg(short = '?', long, action = ArgAction::Help, global = true)]
    help: Option<bool>,
}

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Clone a standby: `standby clone` (repmgr's options, in any position).
    #[command(
        override_usage = "pgclone [OPTIONS] standby [OPTIONS] clone [OPTIONS] [HOST]",
        after_help = "Every option of `standby clone` may also come before `standby` \
or between `standby` and `clone`."
    )]
    Standby(Box<StandbyArgs>),
    /// Fetch a WAL file from Barman (restore_command; barman-wal-restore's options).
    WalRestore(commands::wal_restore::WalRestoreArgs),
    /// List, inspect, install, verify and test plugins.
    #[command(subcommand)]
    Plugin(commands::plugin::PluginCommand),
    /// Create a replica for Patroni (a postgresql.create_replica_methods command).
    PatroniReplica(commands::patroni::PatroniArgs),
}

fn is_wal_restore() -> bool {
    std::env::args().any(|a| a == "wal-restore")
}

/// Ends with a usage error. For wal-restore, PostgreSQL's restore_command,
/// a bad option in a targeted recovery must not read as the end of the
/// archive (clap's status 2): there it stops recovery instead.
fn exit_usage(e: clap::Error) -> ! {
    if e.use_stderr() && is_wal_restore() {
        let _ = e.print();
        let dest = std::env::args().next_back().unwrap_or_default();
        std::process::exit(pgclone::walrestore::refusal_code(std::path::Path::new(&dest)) as i32);
    }
    e.exit()
}

/// The command line's definition: repmgr's options are hidden from the help of
/// `pgclone` and `pgclone standby`, where they are accepted but documented
/// with `standby clone`.
fn definition() -> clap::Command {
    let probe = CloneOpts::augment_args(clap::Command::new("probe"));
    let ids: Vec<clap::Id> = probe.get_arguments().map(|a| a.get_id().clone()).collect();
    let hide = |mut c: clap::Command| {
        for id in &ids {
            c = c.mut_arg(id, |a| a.hide(true));
        }
        c
    };
    hide(Cli::command()).mut_subcommand("standby", hide)
}

/// A usage error in clap's form (usage on stderr, exit status 2).
fn usage_error(path: &[&str], kind: ErrorKind, message: String) -> ! {
    let mut cmd = definition();
    cmd.build();
    let mut sub = &mut cmd;
    for name in path {
        sub = sub.find_subcommand_mut(name).expect("known subcommand");
    }
    exit_usage(sub.error(kind, message))
}

/// Refuses options that mean nothing to `command`.
fn refuse_meaningless(command: &str, flags: &[&'static str]) {
    if !flags.is_empty() {
        let also = match command {
            "wal-restore" => {
                "before wal-restore only -f and --plugins-config apply; \
barman-wal-restore's options come after it"
            }
            "patroni-replica" => {
                "pgclone's -f, --plugins-config, -v, -L and -q go before patroni-replica; \
Patroni's --KEY=VALUE arguments after it"
            }
            _ => "these are options of standby clone",
        };
        usage_error(
            &[command],
            ErrorKind::ArgumentConflict,
            format!("{command} takes no {} ({also})", flags.join(", ")),
        );
    }
}

fn init_logging(g: &General) {
    let level = g.log_level.unwrap_or(if g.quiet {
        Level::Error
    } else if g.verbose > 0 {
        Level::Debug
    } else {
        Level::Info
    });
    report::set_level(level);
    let filter = match level {
        // pgclone's own tracing only: -vv must not drown the operator in
        // wasmtime's and cranelift's internals (PGCLONE_LOG can ask for them).
        Level::Debug if g.verbose == 1 && g.log_level.is_none() => "warn,pgclone=info",
        Level::Debug => "warn,pgclone=debug",
        Level::Info if g.log_level.is_some() => "warn,pgclone=info",
        Level::Info | Level::Notice | Level::Warning => "warn",
        Level::Error => "error",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PGCLONE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let matches = definition()
        .try_get_matches()
        .unwrap_or_else(|e| exit_usage(e));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| exit_usage(e));
    if cli.general.version_number {
        let v = |s: &str| s.parse::<u32>().unwrap_or(0);
        println!(
            "{}",
            v(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
                + v(env!("CARGO_PKG_VERSION_MINOR")) * 100
                + v(env!("CARGO_PKG_VERSION_PATCH"))
        );
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        usage_error(
            &[],
            ErrorKind::MissingSubcommand,
            "no command given: standby clone, wal-restore, plugin or patroni-replica".into(),
        );
    };
    let g = &cli.general;
    let ctx = commands::Context {
        config_file: g.config_file.clone(),
        plugins_config: g.plugins_config.clone(),
        log_to_file: g.log_to_file,
    };
    let result = match command {
        Command::Standby(s) => {
            if s.command.is_none() {
                usage_error(
                    &["standby"],
                    ErrorKind::MissingSubcommand,
                    "no action given for \"standby\": pgclone implements \"standby clone\"".into(),
                );
            }
            init_logging(g);
            commands::standby::run(&ctx, cli.clone, *s)
        }
        Command::WalRestore(args) => {
            // It runs once per WAL segment and logs nothing through tracing:
            // its start-up is kept to the minimum.
            let mut flags = cli.clone.given();
            for (given, flag) in [
                (g.verbose > 0, "-v/--verbose"),
                (g.log_level.is_some(), "-L/--log-level"),
                (g.quiet, "-q/--quiet"),
                (g.log_to_file, "--log-to-file"),
            ] {
                if given {
                    flags.push(flag);
                }
            }
            refuse_meaningless("wal-restore", &flags);
            commands::wal_restore::run(&ctx, args)
        }
        Command::Plugin(cmd) => {
            let mut flags = cli.clone.given();
            if g.log_to_file {
                flags.push("--log-to-file");
            }
            refuse_meaningless("plugin", &flags);
            init_logging(g);
            // These print reports: `pgclone plugin list | head` ends quietly
            // when the reader goes away, as other command-line tools do.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            commands::plugin::run(&ctx, cmd)
        }
        Command::PatroniReplica(args) => {
            let mut flags = cli.clone.given();
            if g.log_to_file {
                flags.push("--log-to-file");
            }
            refuse_meaningless("patroni-replica", &flags);
            init_logging(g);
            let help = || {
                let mut cmd = definition();
                cmd.build();
                if let Some(sub) = cmd.find_subcommand_mut("patroni-replica") {
                    let _ = sub.print_long_help();
                }
            };
            commands::patroni::run(&ctx, args, help)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", report::render(&e));
            ExitCode::FAILURE
        }
    }
}

/// The property tests' configuration and mutations, shared with the library.
#[cfg(test)]
#[path = "../../contract/src/fuzz.rs"]
mod fuzz;

/// Command lines come from scripts, Patroni and PostgreSQL's restore_command:
/// any argv is a command or a usage error, never a panic.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => proptest::sample::select(&[
                "standby", "clone", "wal-restore", "plugin", "patroni-replica", "-h", "-p", "-U", "-d",
                "-D", "-f", "-F", "-c", "--dry-run", "--upstream-conninfo", "--upstream-node-id",
                "--without-barman", "--replication-user", "-P", "-z", "-j", "--spool-dir", "-t", "--",
                "=", "node1", "5432", "000000010000000000000044", "pg_wal/RECOVERYXLOG", "-?", "-vP",
            ][..]).prop_map(str::to_string),
            1 => crate::fuzz::any_text(),
        ]
    }

    proptest! {
        #![proptest_config(crate::fuzz::config())]

        #[test]
        fn any_command_line_is_parsed_or_a_usage_error(args in proptest::collection::vec(word(), 0..8)) {
            let argv = std::iter::once("pgclone".to_string()).chain(args);
            if let Ok(m) = definition().try_get_matches_from(argv) {
                let _ = Cli::from_arg_matches(&m);
            }
        }
    }
}
