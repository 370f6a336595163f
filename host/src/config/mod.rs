//! The operator's configuration: a repmgr.conf-compatible file for the node, and
//! `plugins.toml` for plugin pins and capability grants.

pub mod conf_file;
pub mod known_keys;
pub mod plugins_toml;

pub use conf_file::{ConfError, ConfFile};
pub use plugins_toml::PluginsConfig;

/// Parses a boolean the way PostgreSQL and repmgr do.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" | "y" => Some(true),
        "off" | "false" | "no" | "0" | "f" | "n" => Some(false),
        _ => None,
    }
}
