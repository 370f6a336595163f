//! One module per subcommand; [`Context`] finds and reads the configuration.

use std::path::{Path, PathBuf};

use pgclone::config::{ConfFile, PluginsConfig};
use pgclone::report::{self, Failure};

pub mod plugin;
pub mod standby;
pub mod wal_restore;

/// Where configuration comes from, as the command line says.
pub struct Context {
    pub config_file: Option<PathBuf>,
    pub plugins_config: Option<PathBuf>,
}

impl Context {
    /// The node's configuration: `-f`, `$PGCLONE_CONFIG`, `/etc/pgclone.conf`,
    /// `/etc/repmgr.conf`, or an empty one. Unknown keys are warned about.
    pub fn config(&self) -> anyhow::Result<ConfFile> {
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
        for w in conf.unknown_key_warnings() {
            report::warning(&w, None);
        }
        Ok(conf)
    }

    /// The plugin configuration, or the defaults when there is none.
    pub fn plugins(&self, conf: &ConfFile) -> anyhow::Result<PluginsConfig> {
        let path = self
            .plugins_config
            .clone()
            .or_else(|| conf.get("plugins_config").map(PathBuf::from))
            .or_else(|| {
                let p = Path::new("/etc/pgclone/plugins.toml");
                p.exists().then(|| p.to_path_buf())
            });
        match path {
            Some(p) => PluginsConfig::load(&p),
            None => Ok(PluginsConfig::default()),
        }
    }
}
