//! `pgclone wal-restore`: barman-wal-restore's command line, so that swapping
//! it into restore_command is one word.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use pgclone::walrestore::{self, exit, remote, Options};

use super::Context;

/// Fetch a WAL file from Barman for PostgreSQL's restore_command.
///
///   restore_command = 'pgclone wal-restore barmansrv pg %f %p'
///   restore_command = 'pgclone -f /etc/repmgr.conf wal-restore %f %p'   (host and server from the file)
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
    /// BARMAN_HOST SERVER WAL_NAME WAL_DEST, or WAL_NAME WAL_DEST with
    /// barman_host and barman_server taken from the configuration file.
    #[arg(num_args = 2..=4, value_name = "ARGS", required_unless_present = "test")]
    args: Vec<String>,
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
    #[arg(long, hide = true)]
    prefetch_daemon: bool,
}

/// In a targeted recovery even an invalid command line must not read as the
/// end of the archive: [`walrestore::refusal_code`] says which status.
pub fn run(ctx: &Context, a: WalRestoreArgs) -> anyhow::Result<ExitCode> {
    let dest = a.args.last().cloned().unwrap_or_default();
    let code = match run_inner(ctx, a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", pgclone::report::render(&e));
            exit::USAGE
        }
    };
    if code == exit::USAGE {
        return Ok(ExitCode::from(walrestore::refusal_code(
            std::path::Path::new(&dest),
        )));
    }
    Ok(ExitCode::from(code))
}

/// A number of seconds from a flag, else a configuration key, else a default.
fn seconds(
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

fn run_inner(ctx: &Context, a: WalRestoreArgs) -> anyhow::Result<u8> {
    let conf = ctx.config()?;
    let (host, server, name, dest) = match a.args.as_slice() {
        [h, s, n, d] => (h.clone(), s.clone(), n.clone(), d.clone()),
        [h, s] if a.test => (h.clone(), s.clone(), String::new(), String::new()),
        [n, d] => match (conf.get("barman_host"), conf.get("barman_server")) {
            (Some(h), Some(s)) => (h.to_string(), s.to_string(), n.clone(), d.clone()),
            _ => {
                eprintln!("ERROR: pgclone wal-restore: give BARMAN_HOST SERVER %f %p, or set barman_host and barman_server");
                return Ok(exit::USAGE);
            }
        },
        [] if a.test => match (conf.get("barman_host"), conf.get("barman_server")) {
            (Some(h), Some(s)) => (h.to_string(), s.to_string(), String::new(), String::new()),
            _ => return Ok(exit::USAGE),
        },
        _ => {
            eprintln!("ERROR: pgclone wal-restore: expected BARMAN_HOST SERVER WAL_NAME WAL_DEST");
            return Ok(exit::USAGE);
        }
    };
    let ssh_options = if a.ssh_option.is_empty() {
        match conf.get("ssh_options") {
            Some(o) => shell_words::split(o).unwrap_or_default(),
            None => Vec::new(),
        }
    } else {
        a.ssh_option
    };
    // With neither user@host nor -U the user is found when ssh is first
    // needed (Remote::target), as the clone finds it.
    let dest_host = match &a.user {
        Some(u) if !host.contains('@') => format!("{u}@{host}"),
        _ => host,
    };
    let spool = a
        .spool_dir
        .or_else(|| conf.get("wal_restore_spool_dir").map(PathBuf::from))
        .unwrap_or_else(walrestore::default_spool);
    let prefetch = a
        .parallel
        .or_else(|| {
            conf.get("wal_restore_prefetch")
                .and_then(|p| p.parse().ok())
        })
        .unwrap_or(16)
        .min(256);
    let barman_config = a
        .barman_config
        .or_else(|| conf.get("barman_config").map(str::to_string));
    let o = Options {
        remote: remote::Remote {
            // Set once the source's spool directory is known.
            control_path: PathBuf::new(),
            dest: dest_host,
            resolved: Default::default(),
            port: a.port,
            ssh_options,
            barman_config,
            server,
            connect_timeout: seconds(a.connect_timeout, &conf, "ssh_connect_timeout", 10)?,
            timeout: seconds(a.timeout, &conf, "wal_restore_timeout", 120)?,
        },
        spool,
        prefetch,
        partial: a.partial,
        test: a.test,
        wal_name: name,
        wal_dest: PathBuf::from(dest),
        retry_for: seconds(a.retry_for, &conf, "wal_restore_retry_seconds", 60)?,
    };
    let _ = (a.gzip, a.bzip2, a.keep_compression, a.sleep);
    Ok(if a.prefetch_daemon {
        walrestore::prefetch_daemon(&o)
    } else {
        walrestore::run(&o)
    })
}
