//! `plugins.toml`: where site and vendor plugins are, their sha256 pins, the
//! capabilities the operator grants each plugin, and the policy chain.
//!
//! ```toml
//! plugin_dir = "/etc/pgclone/plugins"      # relative `file`s are found here
//! policies = ["site-policy"]              # run after recovery-standard, in order
//!
//! [targets]                               # logical ssh targets plugins may name
//! backup-store = "vendor@store.example"   # default for X: the `X_host` config key
//!
//! [stores.backups]                       # object stores plugins may name
//! url = "s3://bucket/prefix"              # as barman-cloud takes it
//! endpoint_url = "https://minio.example"  # optional, S3-compatible servers
//! provider = "aws-s3"                     # optional, else from the URL
//! aws_profile = "backups"                 # optional, ~/.aws/credentials
//! read_timeout = 60                       # seconds a silent store is waited for
//!                                         # default for X: the `X_url` ... keys
//!
//! [plugin.site-policy]
//! file = "site-policy.wasm"
//! sha256 = "9f2c..."                      # required: the file is refused if it changes
//! grants = ["read-config:node_name"]
//! timeout_ms = 5000                       # per call, guest time (default 10000)
//! memory_mib = 64                         # linear memory limit (default 64)
//! ```
//!
//! First-party plugins are embedded in the binary and come with the grants they
//! need; a `[plugin.NAME]` section with `grants` replaces those defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::contract::capability::Capability;
use crate::report::Failure;

/// The parsed `plugins.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Where plugin files named relatively are found.
    pub plugin_dir: Option<PathBuf>,
    /// Site policies chained after the standard one, in order.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Logical ssh targets → ssh destinations.
    #[serde(default)]
    pub targets: BTreeMap<String, String>,
    /// Object stores by name. No credential belongs here: the host finds
    /// them as the provider's own tools do.
    #[serde(default)]
    pub stores: BTreeMap<String, StoreEntry>,
    /// Per-plugin pins and grants.
    #[serde(default)]
    pub plugin: BTreeMap<String, PluginEntry>,
    /// The file this came from (for messages); not a TOML key.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// One `[stores.NAME]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreEntry {
    pub url: String,
    pub endpoint_url: Option<String>,
    pub provider: Option<String>,
    pub aws_profile: Option<String>,
    pub read_timeout: Option<u64>,
}

/// One `[plugin.NAME]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// The component file; relative paths are under `plugin_dir`.
    pub file: Option<PathBuf>,
    /// The pinned sha256 of the file, hex.
    pub sha256: Option<String>,
    /// Granted capabilities; `None` keeps a first-party plugin's defaults.
    pub grants: Option<Vec<String>>,
    /// Guest time allowed per call.
    pub timeout_ms: Option<u64>,
    /// Linear memory allowed.
    pub memory_mib: Option<u64>,
}

impl PluginsConfig {
    /// Reads and validates `path`; refuses it when another user could have
    /// changed it (it says which plugins run with which grants).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        if path.exists() {
            crate::trust::require(path, "plugin configuration")?;
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            let f = Failure::new(format!(
                "could not read plugin configuration \"{}\"",
                path.display()
            ))
            .detail(e.to_string());
            match e.kind() {
                std::io::ErrorKind::PermissionDenied => f.hint(
                    format!("make it readable by the user that runs pgclone (e.g. chmod 644), or run `{}` as that user", crate::invocation::command("plugin install")),
                ),
                std::io::ErrorKind::NotFound => f.hint(
                    format!("create it with `{}`, or fix --plugins-config / plugins_config", crate::invocation::command("plugin install FILE.wasm")),
                ),
                _ => f,
            }
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates `text`; `path` is for messages and relative paths.
    pub fn parse(path: &Path, text: &str) -> anyhow::Result<Self> {
        let mut cfg: PluginsConfig = toml::from_str(text).map_err(|e| {
            Failure::new(format!(
                "invalid plugin configuration \"{}\"",
                path.display()
            ))
            .detail(e.to_string().trim_end().to_string())
        })?;
        cfg.source = Some(path.to_path_buf());
        for (name, entry) in &cfg.plugin {
            for g in entry.grants.iter().flatten() {
                g.parse::<Capability>().map_err(|e| {
                    Failure::new(format!(
                        "invalid grant for plugin \"{name}\" in \"{}\"",
                        path.display()
                    ))
                    .detail(e.to_string())
                })?;
            }
            if let Some(sha) = &entry.sha256 {
                if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(Failure::new(format!(
                        "invalid sha256 for plugin \"{name}\" in \"{}\"",
                        path.display()
                    ))
                    .detail(format!("\"{sha}\" is not 64 hexadecimal digits"))
                    .into());
                }
            }
        }
        Ok(cfg)
    }

    /// The grants for `name`, if the file sets them.
    pub fn grants_for(&self, name: &str) -> Option<Vec<Capability>> {
        let grants = self.plugin.get(name)?.grants.as_ref()?;
        Some(grants.iter().filter_map(|g| g.parse().ok()).collect())
    }

    /// Every configuration key some plugin is granted to read.
    pub fn granted_config_keys(&self) -> Vec<String> {
        self.plugin
            .keys()
            .filter_map(|name| self.grants_for(name))
            .flatten()
            .filter_map(|c| match c {
                Capability::ReadConfig(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    /// The directory relative plugin files are resolved in.
    pub fn plugin_dir(&self) -> Option<PathBuf> {
        self.plugin_dir.clone().or_else(|| {
            self.source
                .as_ref()
                .and_then(|p| p.parent())
                .map(|d| d.join("plugins"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let cfg = PluginsConfig::parse(
            Path::new("/etc/pgclone/plugins.toml"),
            r#"
policies = ["site"]
[targets]
store = "me@store"
[plugin.site]
file = "site.wasm"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
grants = ["read-config:node_name"]
timeout_ms = 100
"#,
        )
        .unwrap();
        assert_eq!(cfg.policies, vec!["site"]);
        assert_eq!(cfg.targets["store"], "me@store");
        assert_eq!(
            cfg.grants_for("site").unwrap(),
            vec![Capability::ReadConfig("node_name".into())]
        );
        assert_eq!(cfg.plugin_dir().unwrap(), Path::new("/etc/pgclone/plugins"));
    }

    #[test]
    fn bad_grants_keys_and_pins_are_refused() {
        let p = Path::new("p.toml");
        let e = PluginsConfig::parse(p, "[plugin.x]\ngrants = [\"run:everything\"]\n").unwrap_err();
        assert!(
            crate::report::render(&e).contains("not a capability"),
            "{e}"
        );
        let e = PluginsConfig::parse(p, "[plugin.x]\ngrant = []\n").unwrap_err();
        assert!(crate::report::render(&e).contains("unknown field"), "{e}");
        let e = PluginsConfig::parse(p, "[plugin.x]\nsha256 = \"abc\"\n").unwrap_err();
        assert!(crate::report::render(&e).contains("64 hexadecimal"), "{e}");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    const SAMPLE: &str = r#"plugin_dir = "/etc/pgclone/plugins"
policies = ["site-policy"]

[targets]
backup-store = "vendor@store.example"

[plugin.site-policy]
file = "site-policy.wasm"
sha256 = "9f2c0000000000000000000000000000000000000000000000000000000000aa"
grants = ["read-config:node_name", "remote-run:backup-store:tar"]
timeout_ms = 5000
memory_mib = 64
"#;

    proptest! {
        #![proptest_config(fuzz::config())]

        /// Any text: a configuration whose grants and pins are all valid,
        /// or a clean error.
        #[test]
        fn any_text_is_a_valid_configuration_or_an_error(
            text in prop_oneof![fuzz::mutated(SAMPLE), fuzz::any_text()]
        ) {
            if let Ok(cfg) = PluginsConfig::parse(Path::new("/etc/pgclone/plugins.toml"), &text) {
                for (name, entry) in &cfg.plugin {
                    let grants = entry.grants.clone().unwrap_or_default();
                    prop_assert_eq!(cfg.grants_for(name).map_or(0, |g| g.len()), grants.len());
                    if let Some(sha) = &entry.sha256 {
                        prop_assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()));
                    }
                }
            }
        }
    }
}
