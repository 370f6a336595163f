//! The `pgclone` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use pgclone::report;

mod commands;

/// Clone PostgreSQL standbys from Barman or with pg_basebackup, and feed them
/// WAL from Barman. Site- and vendor-specific parts are WebAssembly plugins that
/// run sandboxed, with only the capabilities the operator grants.
#[derive(Parser)]
#[command(name = "pgclone", version, propagate_version = true)]
#[command(
    after_help = "Configuration is read from -f, $PGCLONE_CONFIG, /etc/pgclone.conf or \
/etc/repmgr.conf (repmgr.conf syntax; existing repmgr.conf files work unchanged). Plugin pins \
and grants are read from --plugins-config, $PGCLONE_PLUGINS_CONFIG, the plugins_config key, or \
/etc/pgclone/plugins.toml."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,

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

    /// More output; repeat for debug output.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Clone a standby.
    #[command(subcommand)]
    Standby(Box<commands::standby::StandbyCommand>),
    /// Fetch a WAL file from Barman (restore_command; barman-wal-restore's flags).
    WalRestore(commands::wal_restore::WalRestoreArgs),
    /// List, inspect, install, verify and test plugins.
    #[command(subcommand)]
    Plugin(commands::plugin::PluginCommand),
}

fn is_wal_restore() -> bool {
    std::env::args().any(|a| a == "wal-restore")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // restore_command: in a targeted recovery a bad flag must not read as
        // the end of the archive (clap would exit 2).
        Err(e) if e.use_stderr() && std::env::args().nth(1).is_some() && is_wal_restore() => {
            let _ = e.print();
            let dest = std::env::args().next_back().unwrap_or_default();
            return ExitCode::from(pgclone::walrestore::refusal_code(std::path::Path::new(
                &dest,
            )));
        }
        Err(e) => e.exit(),
    };
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // wal-restore runs once per WAL segment and logs nothing through tracing:
    // its start-up is kept to the minimum.
    if !matches!(cli.command, Command::WalRestore(_)) {
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
    let ctx = commands::Context {
        config_file: cli.config_file,
        plugins_config: cli.plugins_config,
    };
    let result = match cli.command {
        Command::Standby(cmd) => commands::standby::run(&ctx, *cmd),
        Command::WalRestore(args) => commands::wal_restore::run(&ctx, args),
        Command::Plugin(cmd) => {
            // These print reports: `pgclone plugin list | head` ends quietly
            // when the reader goes away, as other command-line tools do.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            commands::plugin::run(&ctx, cmd)
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
