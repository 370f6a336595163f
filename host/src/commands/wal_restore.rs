//! `pgclone wal-restore`: barman-wal-restore's command line, so that swapping
//! it into restore_command is one word.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use pgclone::walrestore::source::{BarmanArgs, WalSource};
use pgclone::walrestore::{self, exit, Options};

use super::Context;

/// Fetch a WAL file from Barman, or from any backup source plugin that
/// supplies WAL, for PostgreSQL's restore_command.
///
///   restore_command = 'pgclone wal-restore barmansrv pg %f %p'
///   restore_command = 'pgclone -f /etc/repmgr.conf wal-restore %f %p'   (host and server from the file)
///   restore_command = 'pgclone -f /etc/pgclone.conf wal-restore --source pgbackrest %f %p'
///
/// With BARMAN_HOST and SERVER (barman-wal-restore's command line) the WAL
/// comes from Barman. With %f %p alone it comes from --source, else the
/// configuration's backup_source, else Barman (barman_host, barman_server).
/// A file already prefetched into the spool is delivered at once; the source
/// plugin is asked where its WAL is only when a file must be fetched.
///
/// Options after `wal-restore` are barman-wal-restore's, not repmgr's: -p is
/// --parallel, -U the user on the Barman host, -c Barman's configuration file,
/// -t --test. Before `wal-restore` only -f and --plugins-config apply.
///
/// Exit codes: 0 the checked file is at %p; 1 not in the archive (normal at
/// its end); 2 invalid arguments, configuration or spool; 3 Barman unreachable
/// or failing; 4 the archived file is damaged or of another cluster and was not
/// delivered. In a targeted recovery (recovery.signal without standby.signal),
/// where PostgreSQL would take 2-4 as the end of the archive and promote early,
/// they become 128 (after retrying an unreachable Barman for --retry-for
/// seconds), which makes PostgreSQL stop recovery instead.
#[derive(Args)]
pub struct WalRestoreArgs {
    /// BARMAN_HOST SERVER WAL_NAME WAL_DEST, or WAL_NAME WAL_DEST with the
    /// source (--source, backup_source, or barman_host and barman_server)
    /// taken from the configuration file.
    #[arg(num_args = 2..=4, value_name = "ARGS", required_unless_present = "test")]
    args: Vec<String>,
    /// The backup source plugin that supplies the WAL (e.g. pgbackrest; see
    /// `pgclone plugin list`). Default: backup_source from the configuration
    /// file, else barman. Not with BARMAN_HOST SERVER.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// The user on the Barman host. Default: the User your ssh configuration
    /// sets for BARMAN_HOST (as `ssh -G` shows it), else barman, as with
    /// barman-wal-restore; the clone uses the same rule. Ignored when
    /// BARMAN_HOST is user@host.
    #[arg(short = 'U', long, value_name = "USER")]
    user: Option<String>,
    /// The ssh port of the Barman host.
    #[arg(long, value_name = "PORT")]
    port: Option<String>,
    /// Segments to prefetch while PostgreSQL replays (default: wal_restore_prefetch, else 16; 0 disables).
    #[arg(short = 'p', long = "parallel", value_name = "N")]
    parallel: Option<usize>,
    /// Where prefetched segments wait (outside PGDATA; same filesystem for a rename).
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// Also deliver .partial files (the WAL Barman is still receiving).
    #[arg(short = 'P', long)]
    partial: bool,
    /// Accepted for compatibility: compression in transit does not apply to direct reads.
    #[arg(short = 'z', long)]
    gzip: bool,
    /// Accepted for compatibility (see --gzip).
    #[arg(short = 'j', long)]
    bzip2: bool,
    /// Accepted for compatibility: files are always delivered uncompressed, as PostgreSQL needs them.
    #[arg(long)]
    keep_compression: bool,
    /// Barman's configuration file on the Barman host.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    barman_config: Option<String>,
    /// Seconds to sleep between retries (accepted for compatibility).
    #[arg(short = 's', long, value_name = "SECONDS")]
    sleep: Option<u64>,
    /// Check the connection to Barman and exit.
    #[arg(short = 't', long)]
    test: bool,
    /// Extra ssh option (repeatable; default: ssh_options from the configuration).
    #[arg(long = "ssh-option", value_name = "OPT", allow_hyphen_values = true)]
    ssh_option: Vec<String>,
    /// Seconds ssh may take to connect to the Barman host (default: ssh_connect_timeout, else 10).
    #[arg(long, value_name = "SECONDS")]
    connect_timeout: Option<u64>,
    /// Seconds one remote operation may take before it is stopped (default: wal_restore_timeout, else 120).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Targeted recovery: seconds to retry an unreachable or failing Barman before stopping
    /// recovery (default: wal_restore_retry_seconds, else 60).
    #[arg(long, value_name = "SECONDS")]
    retry_for: Option<u64>,
    #[command(flatten)]
    warm: WarmArgs,
}

/// The hidden options the prefetcher and the clone's warm-up run a
/// restore_command's own command line with (both drop-ins take them).
#[derive(Args)]
pub struct WarmArgs {
    #[arg(long, hide = true)]
    prefetch_daemon: bool,
    /// For `standby clone`: start the prefetcher at this segment (the
    /// backup's first) and return; prints the spool directory and its pid.
    #[arg(long, hide = true, value_name = "SEGMENT")]
    warm_from: Option<String>,
    /// The segment size for --warm-from.
    #[arg(long, hide = true, value_name = "BYTES", default_value_t = 16 << 20)]
    wal_segment_size: u64,
    /// How many segments --warm-from fills (the clone's clone_wal_prefetch).
    #[arg(long, hide = true, value_name = "N", default_value_t = walrestore::prefetch::WARM_WINDOW)]
    warm_segments: usize,
    /// The prefetcher fills its whole window before PostgreSQL's first request.
    #[arg(long, hide = true)]
    pub warm: bool,
}

impl WarmArgs {
    /// Runs `o` as these options say: a warm-up, the prefetcher, or a
    /// restore_command; `verbose`: then says who holds the spool.
    pub fn run(&self, o: &Options, verbose: bool) -> u8 {
        let code = match (&self.warm_from, self.prefetch_daemon) {
            (Some(first), _) => {
                walrestore::prefetch::warm(o, first, self.wal_segment_size, self.warm_segments)
            }
            (None, true) => return walrestore::prefetch::daemon(o),
            (None, false) => walrestore::run(o),
        };
        if verbose {
            walrestore::share::print(o);
        }
        code
    }
}

/// In a targeted recovery even an invalid command line must not read as the
/// end of the archive: [`walrestore::refusal_code`] says which status.
/// `verbose` (-v): also say who holds the spool.
pub fn run(ctx: &Context, a: WalRestoreArgs, verbose: bool) -> anyhow::Result<ExitCode> {
    walrestore::timing::mark("args");
    let dest = a.args.last().cloned().unwrap_or_default();
    guarded(&dest, || run_inner(ctx, a, verbose))
}

/// Runs a restore_command whose file goes to `dest`. A panic is a bug, but
/// as a restore_command it must still end in a status PostgreSQL reads as
/// "not available" (or, in a targeted recovery, "stop"), never in a death
/// by signal that shuts the server down.
pub fn guarded(dest: &str, body: impl FnOnce() -> anyhow::Result<u8>) -> anyhow::Result<ExitCode> {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    let code = match caught {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            eprintln!("{}", pgclone::report::render(&e));
            exit::USAGE
        }
        Err(_) => {
            eprintln!(
                "ERROR: pgclone wal-restore: internal error (the panic above); the file was not delivered\n\
                 HINT: please report it with the lines above"
            );
            exit::USAGE
        }
    };
    if code == exit::USAGE {
        return Ok(ExitCode::from(walrestore::refusal_code(
            std::path::Path::new(dest),
        )));
    }
    Ok(ExitCode::from(code))
}

/// The spool directory (`--spool-dir`, else `wal_restore_spool_dir`, else
/// the default) and how many segments to prefetch (`-p`, else
/// `wal_restore_prefetch`, else 16; at most 256), for both drop-ins.
pub fn spool_and_prefetch(
    spool_dir: Option<PathBuf>,
    parallel: Option<usize>,
    conf: &pgclone::config::ConfFile,
) -> (PathBuf, usize) {
    let spool = spool_dir
        .or_else(|| conf.get("wal_restore_spool_dir").map(PathBuf::from))
        .unwrap_or_else(walrestore::default_spool);
    let prefetch = parallel
        .or_else(|| {
            conf.get("wal_restore_prefetch")
                .and_then(|p| p.parse().ok())
        })
        .unwrap_or(16)
        .min(256);
    (spool, prefetch)
}

/// A number of seconds from a flag, else a configuration key, else a default.
pub fn seconds(
    flag: Option<u64>,
    conf: &pgclone::config::ConfFile,
    key: &str,
    default: u64,
) -> anyhow::Result<u64> {
    if let Some(v) = flag {
        return Ok(v);
    }
    match conf.get(key) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            pgclone::report::Failure::new(format!("invalid value for {key}: \"{v}\""))
                .hint("give a whole number of seconds")
                .into()
        }),
    }
}

/// Which source the arguments select, and the WAL name and destination.
enum Selected {
    Barman { host: String, server: String },
    Plugin(String),
}

fn select(
    a: &WalRestoreArgs,
    conf: &pgclone::config::ConfFile,
) -> Result<(Selected, String, String), String> {
    let from_conf = || -> Result<Selected, String> {
        let name = a
            .source
            .clone()
            .or_else(|| conf.get("backup_source").map(str::to_string))
            .map(|s| pgclone::plugin::catalog::canonical(&s).to_string())
            .filter(|s| !s.is_empty());
        match name {
            Some(n) if n != "barman" => Ok(Selected::Plugin(n)),
            _ => match (conf.get("barman_host"), conf.get("barman_server")) {
                (Some(h), Some(s)) if !h.is_empty() && !s.is_empty() => Ok(Selected::Barman {
                    host: h.to_string(),
                    server: s.to_string(),
                }),
                _ => Err(
                    "give BARMAN_HOST SERVER %f %p, set barman_host and barman_server, \
                          or name the source with --source or backup_source"
                        .to_string(),
                ),
            },
        }
    };
    let barman = |h: &String, s: &String| Selected::Barman {
        host: h.clone(),
        server: s.clone(),
    };
    if a.source.is_some() && (a.args.len() == 4 || (a.test && a.args.len() == 2)) {
        return Err("--source is not used with BARMAN_HOST SERVER: give %f %p alone".into());
    }
    Ok(match a.args.as_slice() {
        [h, s, n, d] => (barman(h, s), n.clone(), d.clone()),
        [h, s] if a.test => (barman(h, s), String::new(), String::new()),
        [n, d] => (from_conf()?, n.clone(), d.clone()),
        [] if a.test => (from_conf()?, String::new(), String::new()),
        _ => {
            return Err(
                "expected BARMAN_HOST SERVER WAL_NAME WAL_DEST, or WAL_NAME WAL_DEST".into(),
            )
        }
    })
}

fn run_inner(ctx: &Context, a: WalRestoreArgs, verbose: bool) -> anyhow::Result<u8> {
    let conf = ctx.config()?;
    let (selected, name, dest) = match select(&a, &conf) {
        Ok(s) => s,
        Err(why) => {
            eprintln!("ERROR: pgclone wal-restore: {why}");
            return Ok(exit::USAGE);
        }
    };
    let ssh_options = if a.ssh_option.is_empty() {
        match conf.get("ssh_options") {
            Some(o) => shell_words::split(o).unwrap_or_default(),
            None => Vec::new(),
        }
    } else {
        a.ssh_option.clone()
    };
    let (plugin, barman) = match selected {
        Selected::Barman { host, server } => {
            // With neither user@host nor -U the user is found when ssh is
            // first needed (SshHost::target), as the clone finds it.
            let dest = match &a.user {
                Some(u) if !host.contains('@') => format!("{u}@{host}"),
                _ => host,
            };
            let config = a
                .barman_config
                .clone()
                .or_else(|| conf.get("barman_config").map(str::to_string));
            let b = BarmanArgs {
                dest,
                port: a.port.clone(),
                server,
                config,
            };
            ("barman".to_string(), Some(b))
        }
        Selected::Plugin(p) => (p, None),
    };
    let (spool, prefetch) = spool_and_prefetch(a.spool_dir.clone(), a.parallel, &conf);
    let plugins = ctx.plugins(&conf)?;
    let o = Options {
        source: WalSource {
            plugin,
            barman,
            ssh_options,
            connect_timeout: seconds(a.connect_timeout, &conf, "ssh_connect_timeout", 10)?,
            timeout: seconds(a.timeout, &conf, "wal_restore_timeout", 120)?,
            config: conf.clone(),
            plugins,
            env: Default::default(),
        },
        spool,
        prefetch,
        partial: a.partial,
        test: a.test,
        wal_name: name,
        wal_dest: PathBuf::from(dest),
        retry_for: seconds(a.retry_for, &conf, "wal_restore_retry_seconds", 60)?,
        warm: a.warm.warm,
        relaunch: None,
    };
    let _ = (a.gzip, a.bzip2, a.keep_compression, a.sleep);
    walrestore::timing::mark("config");
    Ok(a.warm.run(&o, verbose))
}
