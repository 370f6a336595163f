//! One module per subcommand; [`Context`] finds and reads the configuration.

use std::path::{Path, PathBuf};

use clap::{Args, Id};

use pgclone::config::{ConfFile, PluginsConfig};
use pgclone::report::{self, Failure};

pub mod barman_cloud_wal_restore;
pub mod generate;
pub mod patroni;
pub mod plugin;
pub mod plugin_install;
pub mod repmgr_options;
pub mod standby;
pub mod wal_restore;

/// The ids of the options `T` defines, as clap knows them.
pub fn ids<T: Args>() -> Vec<Id> {
    T::augment_args(clap::Command::new("ids"))
        .get_arguments()
        .map(|a| a.get_id().clone())
        .collect()
}

/// Where the node's configuration is looked for without `-f` or `$PGCLONE_CONFIG`.
const DEFAULT_CONFIG_FILES: [&str; 2] = ["/etc/pgclone.conf", "/etc/repmgr.conf"];

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
            None => match DEFAULT_CONFIG_FILES
                .iter()
                .map(Path::new)
                .find(|p| p.exists())
            {
                Some(p) => p.to_path_buf(),
                None => return Ok(ConfFile::default()),
            },
        };
        tracing::debug!("reading configuration file \"{}\"", path.display());
        let conf = ConfFile::load(&path)?;
        // Keys that plugins were granted to read are theirs, not unknown; the
        // plugin configuration is only read when there is a key to excuse
        // (wal-restore runs once per WAL segment).
        if !conf.unknown_key_warnings(&[]).is_empty() {
            let plugin_keys: Vec<String> = self
                .plugins(&conf)
                .map(|p| p.granted_config_keys())
                .unwrap_or_default();
            for (warning, hint) in conf.unknown_keys(&plugin_keys) {
                report::warning(&warning, hint.as_deref());
            }
        }
        Ok(conf)
    }

    /// For the commands that clone: a NOTICE when no configuration file was
    /// found, naming the files looked for, so that settings the operator
    /// believes are read (data_directory, barman_host) are not silently absent.
    pub fn notice_if_no_config(conf: &ConfFile) {
        if !conf.path.as_os_str().is_empty() {
            return;
        }
        let looked: Vec<String> = DEFAULT_CONFIG_FILES
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect();
        report::notice(&format!(
            "no configuration file found (looked for {})",
            looked.join(" and ")
        ));
        report::hint("give one with -f/--config-file or $PGCLONE_CONFIG; without one, only the command line is used");
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
