//! The node's settings for a clone, read once from the configuration file and
//! the command line, with errors that name the key.

use std::path::{Path, PathBuf};

use crate::config::{parse_bool, ConfFile};
use crate::report::{self, Failure};

use super::CloneOptions;

/// Everything about the node being cloned.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub data_dir: PathBuf,
    pub node_id: Option<u32>,
    pub node_name: String,
    pub slot_name: Option<String>,
    pub passfile: Option<String>,
    pub include_password: bool,
    pub replication_user: Option<String>,
    /// Clone from Barman (the source is the barman plugin).
    pub barman_mode: bool,
    /// The source plugin: `backup_source`, else `barman` when barman_host and
    /// barman_server are set (and no --without-barman), else `pg-basebackup`.
    pub source: String,
    pub jobs: usize,
    /// Segments fetched into restore_command's spool while the copy runs
    /// (`clone_wal_prefetch`; 0: none).
    pub warm_segments: usize,
    /// `--waldir` from `pg_basebackup_options`: pg_wal becomes a symbolic link
    /// to it (pg_basebackup makes it; for a Barman clone pgclone does).
    pub waldir: Option<PathBuf>,
}

/// The `--waldir` in `pg_basebackup_options`, which must be absolute.
fn waldir_option(conf: &ConfFile) -> anyhow::Result<Option<PathBuf>> {
    let Some(opts) = conf.get("pg_basebackup_options") else {
        return Ok(None);
    };
    let args = shell_words::split(opts).map_err(|e| {
        Failure::new(format!("invalid pg_basebackup_options \"{opts}\""))
            .detail(e.to_string())
            .hint("quote values that contain spaces, e.g. --label='my backup'")
    })?;
    // getopt_long accepts any unambiguous prefix (`--wald`), and 9.6's name.
    let is_waldir = |name: &str| {
        (name.len() >= 4 && "waldir".starts_with(name))
            || (name.len() >= 5 && "xlogdir".starts_with(name))
    };
    let mut dir = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(body) = a.strip_prefix("--") else {
            continue;
        };
        match body.split_once('=') {
            Some((name, v)) if is_waldir(name) => dir = Some(v.to_string()),
            None if is_waldir(body) => dir = it.next().cloned(),
            _ => {}
        }
    }
    match dir.map(PathBuf::from) {
        Some(d) if !d.is_absolute() => Err(Failure::new(format!(
            "--waldir \"{}\" in pg_basebackup_options is not an absolute path",
            d.display()
        ))
        .hint("give the WAL directory as an absolute path, e.g. --waldir=/srv/wal/standby")
        .into()),
        d => Ok(d),
    }
}

impl NodeSettings {
    pub fn read(conf: &ConfFile, o: &CloneOptions) -> anyhow::Result<NodeSettings> {
        let barman = (conf.get("barman_host"), conf.get("barman_server"));
        if barman.0.is_some() != barman.1.is_some() {
            let state = |v: Option<&str>| if v.is_some() { "set" } else { "not set" };
            return Err(
                Failure::new("barman_host and barman_server must be set together")
                    .detail(format!(
                        "barman_host is {}, barman_server is {}",
                        state(barman.0),
                        state(barman.1)
                    ))
                    .hint("set both to clone from Barman, or neither")
                    .into(),
            );
        }
        let source = match conf
            .get("backup_source")
            .map(crate::plugin::catalog::canonical)
        {
            Some(s) if s != "barman" || !o.without_barman => s.to_string(),
            _ if barman.0.is_some() && !o.without_barman => "barman".to_string(),
            _ => "pg-basebackup".to_string(),
        };
        let data_dir = o
            .data_dir
            .clone()
            .or_else(|| conf.get("data_directory").map(PathBuf::from))
            .ok_or_else(|| {
                Failure::new("no data directory given")
                    .hint("use -D/--pgdata, or set data_directory in the configuration file")
            })?;
        let data_dir = if data_dir.is_absolute() {
            data_dir
        } else {
            std::env::current_dir()?.join(data_dir)
        };
        // repmgr ignores -D when the configuration file sets data_directory;
        // here -D wins, and a difference is said.
        if let (Some(_), Some(configured)) = (&o.data_dir, conf.get("data_directory")) {
            if Path::new(configured) != data_dir {
                report::warning(
                    &format!(
                        "-D/--pgdata \"{}\" is used instead of data_directory \"{configured}\" from \"{}\" (repmgr would ignore -D)",
                        data_dir.display(),
                        conf.path.display()
                    ),
                    Some(&format!(
                        "set data_directory to \"{}\" in \"{}\", so that repmgr (standby register, repmgrd) finds this node's data",
                        data_dir.display(),
                        conf.path.display()
                    )),
                );
            }
        }
        let node_id: Option<u32> = match conf.get("node_id") {
            Some(v) => Some(v.parse().map_err(|_| {
                Failure::new(format!("invalid node_id \"{v}\" in the configuration file"))
                    .hint("node_id is a positive integer")
            })?),
            None => None,
        };
        let node_name = match conf.get("node_name") {
            Some(n) => n.to_string(),
            None => {
                let n = node_id
                    .map(|i| format!("node{i}"))
                    .unwrap_or_else(|| "standby".into());
                // Patroni names the member in the configuration it writes.
                if !o.patroni {
                    report::notice(&format!(
                        "node_name is not set; using \"{n}\" as application_name"
                    ));
                }
                n
            }
        };
        let bool_key = |key: &str| -> anyhow::Result<bool> {
            match conf.get(key) {
                Some(v) => parse_bool(v).ok_or_else(|| {
                    Failure::new(format!("invalid {key} \"{v}\" in the configuration file"))
                        .hint("use true or false")
                        .into()
                }),
                None => Ok(false),
            }
        };
        // Patroni manages its replication slots itself.
        let slot_name = if !o.patroni && bool_key("use_replication_slots")? {
            Some(match (conf.get("replication_slot_name"), node_id) {
                (Some(n), _) => n.to_string(),
                (None, Some(id)) => format!("repmgr_slot_{id}"),
                (None, None) => return Err(Failure::new(
                    "use_replication_slots is on but the slot has no name",
                )
                .hint(
                    "set node_id (the slot is then repmgr_slot_<node_id>) or replication_slot_name",
                )
                .into()),
            })
        } else {
            None
        };
        let jobs = match o.jobs {
            Some(j) => j,
            None => match conf.get("clone_jobs") {
                Some(j) => j.parse().map_err(|_| {
                    Failure::new(format!("invalid clone_jobs \"{j}\""))
                        .hint("clone_jobs is a number of rsync streams, e.g. 4")
                })?,
                None => 4,
            },
        };
        let warm_segments = match conf.get("clone_wal_prefetch") {
            Some(w) => w
                .parse::<usize>()
                .ok()
                .filter(|w| *w <= 1024)
                .ok_or_else(|| {
                    Failure::new(format!("invalid clone_wal_prefetch \"{w}\""))
                        .hint("a number of WAL segments from 0 (off) to 1024, e.g. 128")
                })?,
            None => crate::walrestore::prefetch::WARM_WINDOW,
        };
        Ok(NodeSettings {
            warm_segments,
            data_dir,
            node_id,
            node_name,
            slot_name,
            // Patroni names its password file with PGPASSFILE, for the user
            // of the connection string it gives.
            passfile: conf
                .get("passfile")
                .filter(|_| !o.patroni || std::env::var_os("PGPASSFILE").is_none())
                .map(str::to_string),
            include_password: bool_key("use_primary_conninfo_password")?,
            replication_user: o.replication_user.clone().or_else(|| {
                conf.get("replication_user")
                    .filter(|_| !o.patroni)
                    .map(str::to_string)
            }),
            barman_mode: source == "barman",
            source,
            jobs: jobs.clamp(1, 32),
            waldir: waldir_option(conf)?,
        })
    }
}
