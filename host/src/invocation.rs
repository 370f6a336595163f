//! The pgclone command lines that hints suggest, in one place: they carry
//! the `-f` and `--plugins-config` this run used, so the suggested command
//! reads the same configuration (a bare `pgclone plugin verify` would check
//! /etc/pgclone/plugins.toml and find nothing wrong).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The plugin configuration used when none is named.
pub const DEFAULT_PLUGINS_CONFIG: &str = "/etc/pgclone/plugins.toml";

#[derive(Default)]
struct Site {
    config_file: Option<PathBuf>,
    plugins_config: Option<PathBuf>,
}

static SITE: Mutex<Site> = Mutex::new(Site {
    config_file: None,
    plugins_config: None,
});

fn site() -> std::sync::MutexGuard<'static, Site> {
    SITE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The node's configuration file this run reads (-f, or Patroni's config_file).
pub fn set_config_file(path: Option<&Path>) {
    site().config_file = path.map(Path::to_path_buf);
}

/// The plugin configuration this run reads, however it was found (the
/// command line, $PGCLONE_PLUGINS_CONFIG, the plugins_config key); the
/// default one needs no option.
pub fn set_plugins_config(path: &Path) {
    site().plugins_config = (path != Path::new(DEFAULT_PLUGINS_CONFIG)).then(|| path.to_path_buf());
}

/// `pgclone` with this run's configuration options, then `args` (a command
/// and its arguments, already quoted where needed). A `plugin` command reads
/// only the plugin configuration: with `--plugins-config` it needs no `-f`.
pub fn command(args: &str) -> String {
    let s = site();
    let quote = |p: &Path| shell_words::quote(&p.to_string_lossy()).into_owned();
    let mut line = String::from("pgclone");
    if let Some(p) = &s.plugins_config {
        line.push_str(&format!(" --plugins-config {}", quote(p)));
    }
    if let Some(f) = &s.config_file {
        if !(args.starts_with("plugin ") && s.plugins_config.is_some()) {
            line.push_str(&format!(" -f {}", quote(f)));
        }
    }
    format!("{line} {args}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test: the state is the process's.
    #[test]
    fn commands_carry_the_configuration_options() {
        set_config_file(None);
        set_plugins_config(Path::new(DEFAULT_PLUGINS_CONFIG));
        assert_eq!(command("plugin verify"), "pgclone plugin verify");
        set_config_file(Some(Path::new("/etc/my node.conf")));
        assert_eq!(
            command("standby clone --dry-run"),
            "pgclone -f '/etc/my node.conf' standby clone --dry-run"
        );
        assert_eq!(
            command("plugin verify"),
            "pgclone -f '/etc/my node.conf' plugin verify"
        );
        set_plugins_config(Path::new("/srv/plugins.toml"));
        assert_eq!(
            command("plugin verify"),
            "pgclone --plugins-config /srv/plugins.toml plugin verify"
        );
        assert_eq!(
            command("standby clone --dry-run"),
            "pgclone --plugins-config /srv/plugins.toml -f '/etc/my node.conf' standby clone --dry-run"
        );
        set_config_file(None);
        set_plugins_config(Path::new(DEFAULT_PLUGINS_CONFIG));
    }
}
