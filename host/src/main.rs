//! The `pgclone` command line.
//!
//! repmgr's command lines work verbatim: its options go before or after
//! `standby clone` (`-h` is the upstream's host everywhere, help is `-?` or
//! `--help`); anything unknown is an error. After `wal-restore` the options
//! are barman-wal-restore's, whose letters mean other things.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use pgclone::output::Format;
use pgclone::report::{self, Level};

mod commands;

use commands::ids;
use commands::standby::StandbyArgs;

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
    // `standby clone`'s options are added by `definition`.
}

/// Options for every command, in any position. A command other than `standby
/// clone` takes those of the groups [`takes`] names and refuses any other
/// given: a new option means nothing to it until it is said to.
#[derive(Args)]
struct General {
    #[command(flatten)]
    site: Site,
    #[command(flatten)]
    logging: Logging,
    #[command(flatten)]
    rendering: Rendering,

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

/// Where the configuration is: every command takes these.
#[derive(Args)]
struct Site {
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
}

/// What is shown: every command but wal-restore, which PostgreSQL runs and
/// whose output is its log.
#[derive(Args)]
struct Logging {
    /// More output: -v each program pgclone starts, -vv also debug lines
    /// (connections, plugin calls and their times); for wal-restore, -v
    /// says who holds its spool (the prefetcher, the standbys it serves).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,

    /// Lowest level shown: DEBUG, INFO (default), NOTICE, WARNING, ERROR (not
    /// for wal-restore).
    #[arg(short = 'L', long, global = true, value_name = "LEVEL")]
    log_level: Option<Level>,

    /// Errors only (not for wal-restore).
    #[arg(short, long, global = true)]
    quiet: bool,
}

/// How results are printed: the commands that have a JSON form.
#[derive(Args)]
struct Rendering {
    /// text (default) or json: one JSON document on standard output, for
    /// standby clone (with or without --dry-run), plugin list and plugin
    /// verify; messages stay on standard error (see the README's "Output
    /// for automation").
    #[arg(long, global = true, value_name = "FORMAT", value_enum)]
    output: Option<pgclone::output::Format>,
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
    /// Fetch a WAL file from a barman-cloud archive (restore_command;
    /// barman-cloud-wal-restore's options).
    BarmanCloudWalRestore(commands::barman_cloud_wal_restore::BarmanCloudWalRestoreArgs),
    /// List, inspect, install, verify and test plugins.
    #[command(subcommand)]
    Plugin(commands::plugin::PluginCommand),
    /// Create a replica for Patroni (a postgresql.create_replica_methods command).
    PatroniReplica(commands::patroni::PatroniArgs),
}

/// Whether the command line asks for JSON, read from argv itself: a usage
/// error may come before clap has parsed it.
fn wants_json() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--output=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--output" && w[1] == "json")
}

fn is_wal_restore() -> bool {
    std::env::args().any(|a| a == "wal-restore" || a == "barman-cloud-wal-restore")
}

/// Ends with a usage error. For wal-restore, PostgreSQL's restore_command,
/// a bad option in a targeted recovery must not read as the end of the
/// archive (clap's status 2): there it stops recovery instead.
fn exit_usage(e: clap::Error) -> ! {
    refuse_foreign(&e);
    if e.use_stderr() && wants_json() {
        pgclone::output::usage_error("pgclone/error@1", &e.to_string());
    }
    if e.use_stderr() && is_wal_restore() {
        let _ = e.print();
        let dest = std::env::args().next_back().unwrap_or_default();
        std::process::exit(pgclone::walrestore::refusal_code(std::path::Path::new(&dest)) as i32);
    }
    e.exit()
}

/// The command line's definition: repmgr's options at every level of
/// `standby clone`, hidden from the help of `pgclone` and `pgclone standby`,
/// where they are accepted but documented with `standby clone`; the help of
/// any other command lists only the options it takes.
fn definition() -> clap::Command {
    let root = commands::standby::with_options(Cli::command());
    let globals: Vec<clap::Arg> = root
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    let names: Vec<String> = root
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    // clap copies a global option into each command that has none of that
    // name: a command gets a hidden copy of each it does not take.
    names.iter().fold(root, |root, name| {
        let Some(taken) = takes_named(name) else {
            return root;
        };
        let refused = [ids::<Logging>(), vec![clap::Id::from("log_to_file")]].concat();
        let hidden: Vec<clap::Arg> = globals
            .iter()
            .filter(|a| refused.contains(a.get_id()) && !taken.contains(a.get_id()))
            .map(|a| a.clone().hide(true))
            .collect();
        root.mut_subcommand(name, |c| c.args(hidden))
    })
}

/// The command path of this process's command line (`wal-restore`,
/// `plugin list`), as far as `def` knows it.
fn command_path(def: &clap::Command) -> Vec<String> {
    let mut path = Vec::new();
    let mut at = def;
    for a in std::env::args().skip(1) {
        if let Some(sub) = at.find_subcommand(&a) {
            path.push(sub.get_name().to_string());
            at = sub;
        }
    }
    path
}

/// An option of `standby clone` given after another command: clap would
/// suggest `-- --upstream-node-id` (passing it as a value, which is never
/// what was meant); the error says which command takes it instead.
fn refuse_foreign(e: &clap::Error) {
    use clap::error::{ContextKind, ContextValue};
    if e.kind() != ErrorKind::UnknownArgument {
        return;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return;
    };
    let name = arg.split('=').next().unwrap_or(arg);
    let def = definition();
    let path = command_path(&def);
    let command = match path.as_slice() {
        [] => "pgclone".to_string(),
        p => p.join(" "),
    };
    let refs: Vec<&str> = path.iter().map(String::as_str).collect();
    if let Some(by) = commands::repmgr_options::taken_by(name) {
        usage_error(
            &refs,
            ErrorKind::ArgumentConflict,
            format!(
                "{command} takes no {name}: it is an option of other repmgr commands ({by}); \
                 pgclone implements standby clone (its options: pgclone standby clone -?)"
            ),
        );
    }
    let clone_ids = ids::<pgclone::clone::CloneOptions>();
    let found = def
        .get_arguments()
        .filter(|a| clone_ids.contains(a.get_id()))
        .find(|a| match name.strip_prefix("--") {
            Some(long) => {
                a.get_long() == Some(long)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&long))
            }
            None => name.len() == 2 && a.get_short() == name.chars().nth(1),
        });
    let (Some(found), Some(first)) = (found, path.first()) else {
        return;
    };
    if first == "standby" {
        return;
    }
    usage_error(
        &refs,
        ErrorKind::ArgumentConflict,
        format!(
            "{command} takes no {}: it is an option of standby clone (pgclone standby clone {} ...)",
            flag(found),
            name
        ),
    );
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

/// The options before the command that `command` takes: the others mean
/// nothing to it. `standby clone` takes them all.
fn takes(command: &Command) -> Option<Vec<clap::Id>> {
    takes_named(match command {
        Command::Standby(_) => "standby",
        Command::WalRestore(_) => "wal-restore",
        Command::BarmanCloudWalRestore(_) => "barman-cloud-wal-restore",
        Command::Plugin(_) => "plugin",
        Command::PatroniReplica(_) => "patroni-replica",
    })
}

/// [`takes`] by the command's name.
fn takes_named(name: &str) -> Option<Vec<clap::Id>> {
    match name {
        "standby" => None,
        // -v: who holds the spool.
        "wal-restore" => Some([ids::<Site>(), vec![clap::Id::from("verbose")]].concat()),
        // barman-cloud-wal-restore's -v and -q are its own: accepted.
        "plugin" => Some([ids::<Site>(), ids::<Logging>(), ids::<Rendering>()].concat()),
        _ => Some([ids::<Site>(), ids::<Logging>()].concat()),
    }
}

/// The options given on the command line (before the command, or global ones
/// anywhere) that `command` does not take, as `-x/--long`: repmgr's first,
/// then the global ones, each in the order of their definition.
fn meaningless(cli: &clap::Command, matches: &ArgMatches, command: &Command) -> Vec<String> {
    let Some(takes) = takes(command) else {
        return Vec::new();
    };
    let mut given: Vec<&clap::Arg> = cli
        .get_arguments()
        .filter(|a| !takes.contains(a.get_id()))
        .filter(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
        .collect();
    given.sort_by_key(|a| a.is_global_set());
    given.into_iter().map(flag).collect()
}

/// How an option is written in messages: `-x/--long`, `--long` or `-x`.
fn flag(a: &clap::Arg) -> String {
    match (a.get_short(), a.get_long()) {
        (Some(s), Some(l)) => format!("-{s}/--{l}"),
        (None, Some(l)) => format!("--{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, None) => a.get_id().to_string(),
    }
}

/// Refuses options that mean nothing to `command`.
fn refuse_meaningless(command: &str, flags: &[String]) {
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

/// Sets the output format, and the schema of the document `command` writes
/// in JSON; a command with no JSON form refuses `--output json`.
fn choose_output(format: Format, command: &Command, matches: &ArgMatches) {
    use commands::plugin::PluginCommand;
    let schema = match command {
        Command::Standby(_) => "pgclone/standby-clone@1",
        Command::Plugin(PluginCommand::List) => "pgclone/plugin-list@1",
        Command::Plugin(PluginCommand::Verify) => "pgclone/plugin-verify@1",
        Command::Plugin(_) if format == Format::Json => {
            let name = matches
                .subcommand_matches("plugin")
                .and_then(ArgMatches::subcommand_name)
                .unwrap_or_default();
            usage_error(
                &["plugin"],
                ErrorKind::ArgumentConflict,
                format!(
                    "plugin {name} has no JSON form (--output json works with standby clone, plugin list and plugin verify)"
                ),
            )
        }
        // Refused before (not an option of theirs).
        _ => "",
    };
    pgclone::output::set(format, schema);
}

/// tracing's lines as pgclone's other messages are (`DEBUG: ...`), with no
/// colour codes: they end up in files and PostgreSQL's log as often as on a
/// terminal.
struct Plain;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Plain
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::WARN => "WARNING",
            tracing::Level::ERROR => "ERROR",
            tracing::Level::INFO => "INFO",
            tracing::Level::DEBUG | tracing::Level::TRACE => "DEBUG",
        };
        write!(writer, "{level}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn init_logging(g: &Logging) {
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
        .event_format(Plain)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PGCLONE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    // PGCLONE_TIMING: wal-restore's per-request breakdown starts here.
    pgclone::walrestore::timing::start();
    let def = definition();
    let matches = commands::generate::with_generators(def.clone())
        .try_get_matches()
        .unwrap_or_else(|e| exit_usage(e));
    if let Some(result) = commands::generate::run(def.clone(), &matches) {
        return finish(result);
    }
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
        config_file: g.site.config_file.clone(),
        plugins_config: g.site.plugins_config.clone(),
        log_to_file: g.log_to_file,
    };
    if let Some(name) = matches.subcommand_name() {
        refuse_meaningless(name, &meaningless(&def, &matches, &command));
    }
    choose_output(
        g.rendering.output.unwrap_or(Format::Text),
        &command,
        &matches,
    );
    let result = match command {
        Command::Standby(s) => {
            if s.command.is_none() {
                usage_error(
                    &["standby"],
                    ErrorKind::MissingSubcommand,
                    "no action given for \"standby\": pgclone implements \"standby clone\"".into(),
                );
            }
            let opts = commands::standby::options(&matches).unwrap_or_else(|e| exit_usage(e));
            init_logging(&g.logging);
            commands::standby::run(&ctx, opts, *s)
        }
        Command::WalRestore(args) => {
            // It runs once per WAL segment and logs nothing through tracing:
            // its start-up is kept to the minimum.
            commands::wal_restore::run(&ctx, args, g.logging.verbose > 0)
        }
        Command::BarmanCloudWalRestore(args) => {
            commands::barman_cloud_wal_restore::run(&ctx, args, g.logging.verbose > 0)
        }
        Command::Plugin(cmd) => {
            init_logging(&g.logging);
            // These print reports: `pgclone plugin list | head` ends quietly
            // when the reader goes away, as other command-line tools do.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            commands::plugin::run(&ctx, cmd)
        }
        Command::PatroniReplica(args) => {
            init_logging(&g.logging);
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
    pgclone::output::finish(&result);
    finish(result)
}

/// The exit status of a command; its error, if any, on standard error.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
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

/// Each option is defined once (clap's definition); these walk clap's own list
/// of them, so a new option is covered without editing the tests.
#[cfg(test)]
mod tests {
    use super::*;
    use pgclone::clone::CloneOptions;

    /// `a` as given on a command line, with a value it accepts: one of its
    /// possible values, else a number or a level (-L), whichever it parses.
    fn given(a: &clap::Arg) -> String {
        let long = a.get_long().expect("every option has a long name");
        if !a.get_action().takes_values() {
            return format!("--{long}");
        }
        let candidates = a
            .get_possible_values()
            .into_iter()
            .map(|v| v.get_name().to_string());
        candidates
            .chain(["1".to_string(), "INFO".to_string()])
            .map(|v| format!("--{long}={v}"))
            .find(|g| {
                let alone = clap::Command::new("t").arg(a.clone().global(false));
                alone.try_get_matches_from(["t", g]).is_ok()
            })
            .unwrap_or_else(|| panic!("no value for --{long}"))
    }

    fn parse(argv: &[&str]) -> (ArgMatches, Command) {
        let m = definition()
            .try_get_matches_from(std::iter::once("pgclone").chain(argv.iter().copied()))
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let cli = Cli::from_arg_matches(&m).unwrap();
        (m, cli.command.expect("a command"))
    }

    fn refused(argv: &[&str]) -> Vec<String> {
        let (m, command) = parse(argv);
        meaningless(&definition(), &m, &command)
    }

    fn args_of<T: Args>() -> Vec<clap::Arg> {
        T::augment_args(clap::Command::new("t"))
            .get_arguments()
            .cloned()
            .collect()
    }

    const OTHERS: [&[&str]; 3] = [
        &["wal-restore", "h", "s", "f", "p"],
        &["plugin", "list"],
        &["patroni-replica", "--scope=x"],
    ];

    #[test]
    fn every_clone_option_before_another_command_is_refused() {
        let all = args_of::<CloneOptions>();
        assert!(all.len() > 20, "{}", all.len());
        for a in &all {
            let g = given(a);
            for tail in OTHERS {
                let argv: Vec<&str> = std::iter::once(g.as_str())
                    .chain(tail.iter().copied())
                    .collect();
                assert_eq!(refused(&argv), [flag(a)], "{argv:?}");
            }
        }
    }

    #[test]
    fn every_clone_option_reaches_the_clone_from_every_level() {
        let default = format!("{:?}", CloneOptions::default());
        for a in &args_of::<CloneOptions>() {
            let g = given(a);
            let g = g.as_str();
            for argv in [
                [g, "standby", "clone"],
                ["standby", g, "clone"],
                ["standby", "clone", g],
            ] {
                let (m, command) = parse(&argv);
                assert!(matches!(command, Command::Standby(_)));
                assert!(meaningless(&definition(), &m, &command).is_empty());
                let o = commands::standby::options(&m).unwrap();
                assert_ne!(
                    format!("{o:?}"),
                    default,
                    "{argv:?} left the options as they were"
                );
            }
        }
    }

    #[test]
    fn the_last_option_given_wins_and_a_flag_stays() {
        let (m, _) = parse(&["-h", "a", "-F", "standby", "-h", "b", "clone", "-p", "1"]);
        let o = commands::standby::options(&m).unwrap();
        assert_eq!(o.host.as_deref(), Some("b"));
        assert_eq!(o.port.as_deref(), Some("1"));
        assert!(o.force);
        assert!(!o.dry_run);
        let (m, _) = parse(&[
            "--copy-external-config-files=pgdata",
            "standby",
            "clone",
            "-j",
            "3",
        ]);
        let o = commands::standby::options(&m).unwrap();
        assert_eq!(
            o.copy_external_config_files,
            Some(pgclone::clone::ExternalConfig::Pgdata)
        );
        assert_eq!(o.jobs, Some(3));
    }

    #[test]
    fn general_options_are_refused_where_they_mean_nothing() {
        let site: Vec<clap::Id> = ids::<Site>();
        let logging: Vec<clap::Id> = ids::<Logging>();
        let rendering: Vec<clap::Id> = ids::<Rendering>();
        for a in args_of::<General>() {
            if matches!(a.get_action(), ArgAction::Help) {
                continue;
            }
            let g = given(&a);
            for tail in OTHERS {
                let argv: Vec<&str> = std::iter::once(g.as_str())
                    .chain(tail.iter().copied())
                    .collect();
                let takes = site.contains(a.get_id())
                    || (tail[0] != "wal-restore" && logging.contains(a.get_id()))
                    || (tail[0] == "wal-restore" && a.get_id() == "verbose")
                    || (tail[0] == "plugin" && rendering.contains(a.get_id()));
                let expected = if takes { vec![] } else { vec![flag(&a)] };
                assert_eq!(refused(&argv), expected, "{argv:?}");
            }
            let (m, command) = parse(&[g.as_str(), "standby", "clone"]);
            assert!(meaningless(&definition(), &m, &command).is_empty());
        }
    }
}
