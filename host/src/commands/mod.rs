//! One module per subcommand; [`Context`] finds and reads the configuration.

use std::path::{Path, PathBuf};

use clap::{Args, Id};

use pgclone::config::{ConfFile, PluginsConfig};
use pgclone::report::{self, Failure};

pub mod patroni;
pub mod plugin;
pub mod plugin_install;
pub mod standby;
pub mod wal_restore;

/// The ids of the options `T` defines, as clap knows them.
pub fn ids<T: Args>() -> Vec<Id> {
    T::augment_args(clap::Command::new("ids"))
        .get_arguments()
        .map(|a| a.get_id().clone())
        .collect()
}

/// Where configuration comes from, as the command line says.
pub struct Context {
    pub config_file: Option<PathBuf>,
    pub plugins_config: Option<PathBuf>,
    /// repmgr's --log-to-file (standby clone only).
    pub log_to_file: bool,
}

impl Context {
    /// The node's configuration: `-f`, `$PGCLONE_CONFIG`, `/etc/pgclone.conf`,
    /// `/etc/repmgr.conf`, or an empty one. Unknown keys are warned about.
    pub fn config(&self) -> anyhow::Result<ConfFile> {
        pgclone::invocation::set_config_file(self.config_file.as_deref());
        let explicit = self
            .config_file
            .clone()
            .or_else(|| std::env::var_os("PGCLONE_CONFIG").map(PathBuf::from));
        let path = match explicit {
            Some(p) => {
                if !p.exists() {
                    return Err(Failure::new(format!(
                        "configuration file \"{}\" not found",
                        p.display()
                    ))
                    .into());
                }
                p
            }
            None => match ["/etc/pgclone.conf", "/etc/repmgr.conf"]
                .iter()
                .map(Path::new)
                .find(|p| p.exists())
            {
                Some(p) => p.to_path_buf(),
                None => return Ok(ConfFile::default()),
            },
        };
        let conf = ConfFile::load(&path)?;
        // Keys that plugins were granted to read are theirs, not unknown; the
        // plugin configuration is only read when there is a key to excuse
        // (wal-restore runs once per WAL segment).
        if !conf.unknown_key_warnings(&[]).is_empty() {
            let plugin_keys: Vec<String> = self
                .plugins(&conf)
                .map(|p| p.granted_config_keys())
                .unwrap_or_default();
            for w in conf.unknown_key_warnings(&plugin_keys) {
                report::warning(&w, None);
            }
        }
        Ok(conf)
    }

    /// Where the plugin configuration is (or would be created): the command
    /// line, the plugins_config key, or /etc/pgclone/plugins.toml.
    /// Commands that hints suggest are given the same (see
    /// [`pgclone::invocation`]).
    pub fn plugins_path(&self, conf: &ConfFile) -> PathBuf {
        let path = self
            .plugins_config
            .clone()
            .or_else(|| conf.get("plugins_config").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(pgclone::invocation::DEFAULT_PLUGINS_CONFIG));
        pgclone::invocation::set_plugins_config(&path);
        path
    }

    /// The plugin configuration, or the defaults when there is none.
    pub fn plugins(&self, conf: &ConfFile) -> anyhow::Result<PluginsConfig> {
        let path = self.plugins_path(conf);
        let explicit = self.plugins_config.is_some() || conf.get("plugins_config").is_some();
        if explicit || path.exists() {
            PluginsConfig::load(&path)
        } else {
            Ok(PluginsConfig::default())
        }
    }
}
