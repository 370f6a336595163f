//! `pgclone patroni-replica`: a replica method for Patroni
//! (`postgresql.create_replica_methods`).
//!
//! Patroni runs the method's `command` with `--scope=NAME --role=replica
//! --datadir=DIR --connstring=CONNINFO` appended, plus `--KEY=VALUE` for every
//! other key of the method's section (unless `no_params`). Exit status 0 means
//! the replica is ready; anything else makes Patroni try its next method. On
//! cancel it sends SIGTERM and, 10 s later, SIGKILL. The password is not in
//! the connection string: Patroni writes it into the file PGPASSFILE names.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use pgclone::clone::{self, target, CloneOptions};
use pgclone::config::parse_bool;
use pgclone::report::{self, Failure, Level};

use super::Context;

/// What `pgclone patroni-replica --help` explains (after the options).
const AFTER_HELP: &str = "In patroni.yml (the node's pgclone configuration, -f, names the Barman
host and server, or the backup source, plugins and grants):

  postgresql:
    create_replica_methods: [pgclone]
    pgclone:
      command: /usr/bin/pgclone -f /etc/pgclone/node.conf patroni-replica
      keep_data: true
    recovery_conf:
      restore_command: /usr/bin/pgclone -f /etc/pgclone/node.conf wal-restore %f %p

Patroni appends --scope, --role=replica, --datadir and --connstring, and
--KEY=VALUE for every other key of the method's section. The clone runs
every check of `standby clone` first, copies from Barman (or the source the
configuration names) and writes no recovery configuration: Patroni writes
its own; signal files and recovery settings the copy brought along are
removed. No replication slot is made. The password comes from PGPASSFILE,
never from the command line. A failed or interrupted clone (SIGTERM, SIGINT)
leaves the data directory empty, so Patroni's next method can start afresh.

Exit status: 0 the replica is ready to start; 1 the clone failed; 2 the
arguments could not be understood.

Keys of the method's section (each arrives as --KEY=VALUE):
  keep_data=BOOL       keep the data directory: a copy of the same database system
                       is updated in place (only what changed is copied), anything
                       else is replaced (as standby clone -F)
  jobs=N               parallel rsync streams from Barman (default: clone_jobs, else 4)
  backup_id=ID         the Barman backup to clone (default: the latest)
  verify_backup=BOOL   check the copy with pg_verifybackup (PostgreSQL 13+)
  checkpoint=fast      a copy from the leader (pg_basebackup) asks it for an immediate
                       checkpoint instead of waiting for a spread one (as Patroni's
                       basebackup method spells it; fast_checkpoint=BOOL too)
  config_file=FILE     the node's pgclone configuration, instead of -f
  plugins_config=FILE  the plugin configuration, instead of --plugins-config
Any other key (command, no_params, no_leader, ...) is accepted and ignored; -v names it.";

/// Patroni's arguments, read by [`parse`].
#[derive(Args)]
#[command(
    override_usage = "pgclone [-f FILE] [-v] patroni-replica --scope=NAME --role=replica --datadir=DIR --connstring=CONNINFO [--KEY=VALUE]...",
    after_help = AFTER_HELP
)]
pub struct PatroniArgs {
    /// --KEY=VALUE arguments as Patroni passes them.
    #[arg(
        value_name = "--KEY=VALUE",
        num_args = 0..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

/// What Patroni asked for.
#[derive(Debug, Default, PartialEq)]
pub struct Request {
    pub scope: Option<String>,
    pub datadir: PathBuf,
    pub connstring: String,
    pub keep_data: bool,
    pub jobs: Option<usize>,
    pub backup_id: Option<String>,
    pub verify_backup: bool,
    /// `checkpoint=fast` (pg_basebackup's spelling, as in Patroni's own
    /// basebackup method) or `fast_checkpoint=true`: repmgr's -c.
    pub fast_checkpoint: bool,
    pub config_file: Option<PathBuf>,
    pub plugins_config: Option<PathBuf>,
    /// Keys accepted but not used, by name (values may be secrets).
    pub ignored: Vec<String>,
}

fn usage(message: String) -> Failure {
    Failure::new(message).hint(
        "Patroni runs the method's command with --scope=NAME --role=replica --datadir=DIR \
--connstring=CONNINFO and --KEY=VALUE for each key of the method's section; pgclone's own \
options (-f, -v) go before patroni-replica; see pgclone patroni-replica --help",
    )
}

fn bool_value(key: &str, value: &str) -> Result<bool, Failure> {
    parse_bool(value).ok_or_else(|| {
        usage(format!(
            "invalid value \"{value}\" for --{key}: expected a boolean (true or false)"
        ))
    })
}

/// Reads Patroni's arguments.
pub fn parse(args: &[String]) -> Result<Request, Failure> {
    let mut r = Request::default();
    let mut datadir = None;
    let mut connstring = None;
    let mut role = None;
    for a in args {
        let Some((key, value)) = a.strip_prefix("--").and_then(|b| b.split_once('=')) else {
            let shown = if a.starts_with("--") {
                // No value: the name is all there is to show.
                a.clone()
            } else {
                format!("{a:?}")
            };
            return Err(usage(format!(
                "patroni-replica cannot understand the argument {shown}"
            ))
            .detail("every argument after patroni-replica must be --KEY=VALUE"));
        };
        let valid = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(usage(format!(
                "patroni-replica cannot understand the argument --{}=...",
                key.escape_debug()
            ))
            .detail("a key is made of letters, digits, _ and -"));
        }
        let k = key.replace('-', "_").to_ascii_lowercase();
        match k.as_str() {
            "scope" => r.scope = Some(value.to_string()),
            "role" => role = Some(value.to_string()),
            "datadir" => datadir = Some(value.to_string()),
            "connstring" => connstring = Some(value.to_string()),
            "keep_data" => r.keep_data = bool_value(key, value)?,
            "verify_backup" => r.verify_backup = bool_value(key, value)?,
            "fast_checkpoint" => r.fast_checkpoint = bool_value(key, value)?,
            "checkpoint" => {
                r.fast_checkpoint = match value.to_ascii_lowercase().as_str() {
                    "fast" => true,
                    "spread" => false,
                    _ => {
                        return Err(usage(format!(
                            "invalid value \"{value}\" for --{key}: expected fast or spread"
                        )))
                    }
                }
            }
            "jobs" => {
                r.jobs = Some(value.parse().ok().filter(|j| *j > 0).ok_or_else(|| {
                    usage(format!(
                        "invalid value \"{value}\" for --{key}: expected a number of rsync streams"
                    ))
                })?)
            }
            "backup_id" => r.backup_id = Some(value.to_string()).filter(|v| !v.is_empty()),
            "config_file" => r.config_file = Some(PathBuf::from(value)),
            "plugins_config" => r.plugins_config = Some(PathBuf::from(value)),
            _ => r.ignored.push(key.to_string()),
        }
    }
    match role.as_deref() {
        Some("replica") | None => {}
        Some(other) => {
            return Err(usage(format!(
                "patroni-replica creates replicas, not --role={other}"
            )))
        }
    }
    let Some(datadir) = datadir.filter(|d| !d.is_empty()) else {
        return Err(usage("patroni-replica needs --datadir=DIR".into()));
    };
    r.datadir = PathBuf::from(datadir);
    if !r.datadir.is_absolute() {
        return Err(usage(format!(
            "--datadir \"{}\" is not an absolute path",
            r.datadir.display()
        )));
    }
    r.connstring = match connstring {
        Some(c) if !c.trim().is_empty() => c,
        Some(_) => {
            return Err(Failure::new("Patroni gave no connection string: there is no leader to clone from")
                .detail("Patroni passes an empty --connstring when it has no member to clone from (no_leader)")
                .hint("pgclone clones from Barman for a cluster that has a leader; let Patroni bootstrap the leader"))
        }
        None => return Err(usage("patroni-replica needs --connstring=CONNINFO".into())),
    };
    Ok(r)
}

fn debug(message: &str) {
    if report::shown(Level::Debug) {
        eprintln!("DEBUG: {}", report::escape(message));
    }
}

/// `pgclone patroni-replica ...`; `help` prints this command's help.
pub fn run(ctx: &Context, args: PatroniArgs, help: impl Fn()) -> anyhow::Result<ExitCode> {
    if args.args.iter().any(|a| a == "--help" || a == "-?") {
        help();
        return Ok(ExitCode::SUCCESS);
    }
    let r = match parse(&args.args) {
        Ok(r) => r,
        Err(f) => {
            eprintln!("{}", report::render(&f.into()));
            return Ok(ExitCode::from(2));
        }
    };
    for key in &r.ignored {
        debug(&format!("ignoring --{key} from Patroni"));
    }
    let ctx = Context {
        config_file: r.config_file.clone().or(ctx.config_file.clone()),
        plugins_config: r.plugins_config.clone().or(ctx.plugins_config.clone()),
        log_to_file: false,
    };
    let populated = target::inspect(&r.datadir, None)
        .is_ok_and(|t| matches!(t.state, target::TargetState::Populated { .. }));
    report::notice(&format!(
        "creating a replica for Patroni{} in \"{}\"{}",
        r.scope
            .as_deref()
            .map(|s| format!(" (scope \"{s}\")"))
            .unwrap_or_default(),
        r.datadir.display(),
        if r.keep_data && populated {
            " (keep_data: only what changed is copied when it holds this database system)"
        } else {
            ""
        }
    ));
    // A directory that was empty (or missing) holds only what pgclone made;
    // one Patroni kept (keep_data) was handed over to be replaced. Anything
    // else pgclone refused to touch, and leaves alone after a failure.
    let ours = r.keep_data || !populated;
    match clone_replica(&ctx, &r) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            let mut f = match e.downcast::<Failure>() {
                Ok(f) => f,
                Err(e) => Failure::new(report::render(&e).replacen("ERROR: ", "", 1)),
            };
            if let Some(note) = ours.then(|| leave_empty(&r.datadir)).flatten() {
                f.hint = Some(match f.hint.take() {
                    Some(h) if !h.is_empty() => format!("{h}\n{note}"),
                    _ => note,
                });
            }
            Err(f.into())
        }
    }
}

fn clone_replica(ctx: &Context, r: &Request) -> anyhow::Result<()> {
    let conf = ctx.config()?;
    if let Some(path) = &ctx.config_file {
        report::notice(&format!("using configuration file \"{}\"", path.display()));
    }
    Context::notice_if_no_config(&conf);
    let plugins = ctx.plugins(&conf)?;
    let opts = CloneOptions {
        data_dir: Some(r.datadir.clone()),
        // The whole connection string: host, port, user, dbname, TLS.
        dbname: Some(r.connstring.clone()),
        force: r.keep_data,
        verify_backup: r.verify_backup,
        fast_checkpoint: r.fast_checkpoint,
        backup_id: r.backup_id.clone(),
        jobs: r.jobs,
        patroni: true,
        ..CloneOptions::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Patroni reads the exit status and the log: no JSON document.
    let result = rt.block_on(clone::run(
        &conf,
        &plugins,
        &opts,
        &mut clone::Outcome::default(),
    ));
    rt.shutdown_background();
    result
}

/// After a failure: Patroni's next method (or its next attempt) needs an empty
/// data directory. A directory pgclone may clone into is emptied; one it must
/// not touch (a running server's, a system directory) is left alone.
fn leave_empty(dir: &Path) -> Option<String> {
    let t = target::inspect(dir, None).ok()?;
    if !matches!(t.state, target::TargetState::Populated { .. }) || t.check_usable(true).is_err() {
        return None;
    }
    Some(match target::empty_dir(&t.real) {
        Ok(()) => format!(
            "the data directory \"{}\" was emptied for Patroni's next replica method",
            dir.display()
        ),
        Err(e) => format!(
            "the data directory \"{}\" could not be emptied: {e}",
            dir.display()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn patroni_arguments_are_read() {
        let r = parse(&args(&[
            "--keep_data=True",
            "--no_params=False",
            "--jobs=8",
            "--checkpoint=fast",
            "--something_new=x",
            "--scope=demo",
            "--role=replica",
            "--datadir=/srv/pg/data",
            "--connstring=dbname=postgres user=replicator host=10.0.0.1 port=5432",
        ]))
        .unwrap();
        assert_eq!(r.scope.as_deref(), Some("demo"));
        assert_eq!(r.datadir, PathBuf::from("/srv/pg/data"));
        assert!(r.connstring.contains("host=10.0.0.1"));
        assert!(r.keep_data);
        assert_eq!(r.jobs, Some(8));
        assert!(r.fast_checkpoint);
        assert_eq!(r.ignored, vec!["no_params", "something_new"]);
    }

    #[test]
    fn malformed_arguments_are_refused() {
        let base = ["--datadir=/d", "--connstring=host=h"];
        for bad in ["stray", "--keep_data", "--=x", "--a b=c", "-v"] {
            let mut a = args(&base);
            a.push(bad.into());
            assert!(parse(&a).is_err(), "{bad}");
        }
        assert!(parse(&args(&["--datadir=/d"])).is_err());
        assert!(parse(&args(&["--connstring=host=h"])).is_err());
        assert!(parse(&args(&["--datadir=rel", "--connstring=host=h"])).is_err());
        assert!(parse(&args(&["--datadir=/d", "--connstring="])).is_err());
        assert!(parse(&args(&[
            "--datadir=/d",
            "--connstring=host=h",
            "--role=master"
        ]))
        .is_err());
        assert!(parse(&args(&[
            "--datadir=/d",
            "--connstring=host=h",
            "--keep_data=maybe"
        ]))
        .is_err());
    }
}

/// Patroni's argv: any arguments are a request or a usage error.
#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    fn arg() -> impl Strategy<Value = String> {
        prop_oneof![
            fuzz::mutated_any(&[
                "--datadir=/srv/pg/data",
                "--connstring=dbname=postgres user=replicator host=10.0.0.1 port=5432",
                "--role=replica",
                "--keep_data=True",
                "--jobs=8",
                "--scope=demo",
                "--backup-id=latest",
            ]),
            fuzz::any_text(),
        ]
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn any_arguments_are_a_request_or_a_usage_error(args in proptest::collection::vec(arg(), 0..8)) {
            if let Ok(r) = parse(&args) {
                prop_assert!(r.datadir.is_absolute());
                prop_assert!(r.jobs.is_none_or(|j| j > 0));
            }
        }
    }
}
