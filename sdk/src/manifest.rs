//! A plugin's identity, written once with [`manifest!`](crate::manifest):
//! stored in the component's `pgclone-plugin` custom section, where
//! `pgclone plugin install` reads it without running the plugin, and returned
//! by `describe()` through [`describe`]. The host refuses a plugin whose
//! `describe()` disagrees with its manifest.
//!
//! The stored text is line based, one `key=value` per line after the first:
//!
//! ```text
//! pgclone-plugin-manifest 1
//! name=site-policy
//! version=0.1.0
//! vendor=Example Corp
//! license=Apache-2.0
//! description=Our standby rules
//! provides=base-backup,wal
//! needs-upstream=false
//! capability=read-config:node_name
//! ```
//!
//! Capabilities are written as operators grant them in `plugins.toml`:
//! `remote-run:TARGET:PROGRAM`, `local-run:PROGRAM`, `read-config:KEY`.

use crate::types::{Capability, PluginInfo, Provides, RemoteProgram};

/// The first line of every manifest.
pub const HEADER: &str = "pgclone-plugin-manifest 1";

/// The name of the custom section that holds the manifest.
pub const SECTION: &str = "pgclone-plugin";

/// Declares the plugin's identity: defines `pub const MANIFEST: &str` and, in
/// a wasm build, stores it in the component's `pgclone-plugin` section.
/// Every value must be a string literal (or `env!(...)`), so that the section
/// is built at compile time.
#[macro_export]
macro_rules! manifest {
    (
        name: $name:expr,
        version: $version:expr,
        vendor: $vendor:expr,
        license: $license:expr,
        description: $description:expr,
        provides: [$($provides:expr),* $(,)?],
        needs_upstream: $needs:expr,
        capabilities: [$($cap:expr),* $(,)?] $(,)?
    ) => {
        /// This plugin's manifest (see `pgclone_plugin_sdk::manifest`).
        pub const MANIFEST: &str = concat!(
            "pgclone-plugin-manifest 1\n",
            "name=", $name, "\n",
            "version=", $version, "\n",
            "vendor=", $vendor, "\n",
            "license=", $license, "\n",
            "description=", $description, "\n",
            "provides=", $($provides, ",",)* "\n",
            "needs-upstream=", $needs, "\n",
            $("capability=", $cap, "\n",)*
        );
        #[cfg(target_arch = "wasm32")]
        #[link_section = "pgclone-plugin"]
        #[used]
        static __PGCLONE_PLUGIN_MANIFEST: [u8; MANIFEST.len()] =
            $crate::manifest::to_array::<{ MANIFEST.len() }>(MANIFEST);
    };
}

/// `text` as a byte array of length `N` (for the custom section).
pub const fn to_array<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Parses one capability as operators write it.
pub fn parse_capability(text: &str) -> Result<Capability, String> {
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("remote-run"), Some(t), Some(p)) if !t.is_empty() && !p.is_empty() => {
            Ok(Capability::RemoteRun(RemoteProgram {
                target: t.into(),
                program: p.into(),
            }))
        }
        (Some("local-run"), Some(p), None) if !p.is_empty() => Ok(Capability::LocalRun(p.into())),
        (Some("read-config"), Some(k), None) if !k.is_empty() => {
            Ok(Capability::ReadConfig(k.into()))
        }
        _ => Err(format!(
            "\"{text}\" is not a capability (remote-run:TARGET:PROGRAM, local-run:PROGRAM or read-config:KEY)"
        )),
    }
}

/// Parses a manifest into the `plugin-info` that `describe()` returns.
pub fn parse(text: &str) -> Result<PluginInfo, String> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("the manifest does not start with \"{HEADER}\""));
    }
    let mut info = PluginInfo {
        name: String::new(),
        version: String::new(),
        vendor: String::new(),
        license: String::new(),
        description: String::new(),
        provides: Provides::empty(),
        needs_upstream: false,
        capabilities: Vec::new(),
    };
    for line in lines.filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("manifest line \"{line}\" has no \"=\""))?;
        match key {
            "name" => info.name = value.into(),
            "version" => info.version = value.into(),
            "vendor" => info.vendor = value.into(),
            "license" => info.license = value.into(),
            "description" => info.description = value.into(),
            "provides" => {
                for p in value.split(',').filter(|p| !p.is_empty()) {
                    let flag = match p {
                        "base-backup" => Provides::BASE_BACKUP,
                        "wal" => Provides::WAL,
                        other => return Err(format!("unknown provides \"{other}\"")),
                    };
                    info.provides = info.provides | flag;
                }
            }
            "needs-upstream" => {
                info.needs_upstream = match value {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(format!("needs-upstream is \"{other}\", not true or false"))
                    }
                }
            }
            "capability" => info.capabilities.push(parse_capability(value)?),
            other => return Err(format!("unknown manifest key \"{other}\"")),
        }
    }
    if info.name.is_empty() || info.version.is_empty() {
        return Err("the manifest has no name or version".into());
    }
    Ok(info)
}

/// What `describe()` returns: the parsed manifest. A manifest that does not
/// parse is a bug found by the first native test (see `testing`).
pub fn describe(manifest: &str) -> PluginInfo {
    match parse(manifest) {
        Ok(info) => info,
        Err(e) => panic!("invalid plugin manifest: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::manifest! {
        name: "demo",
        version: "1.2.3",
        vendor: "Example Corp",
        license: "MIT",
        description: "A demo; with = signs",
        provides: ["base-backup", "wal"],
        needs_upstream: false,
        capabilities: ["local-run:pgbackrest", "remote-run:backup-store:tar", "read-config:node_name"],
    }

    #[test]
    fn the_macro_and_the_parser_agree() {
        let info = describe(MANIFEST);
        assert_eq!(info.name, "demo");
        assert_eq!(info.description, "A demo; with = signs");
        assert_eq!(info.provides, Provides::BASE_BACKUP | Provides::WAL);
        assert!(!info.needs_upstream);
        assert_eq!(info.capabilities.len(), 3);
        assert_eq!(
            info.capabilities[0],
            Capability::LocalRun("pgbackrest".into())
        );
        assert_eq!(to_array::<4>("abcd"), *b"abcd");
    }

    #[test]
    fn bad_manifests_are_refused() {
        assert!(parse("name=x").is_err());
        assert!(parse(&format!("{HEADER}\nname=x\nversion=1\ncolour=red")).is_err());
        assert!(parse(&format!(
            "{HEADER}\nname=x\nversion=1\ncapability=run-anything"
        ))
        .is_err());
        assert!(parse(&format!(
            "{HEADER}\nname=x\nversion=1\nneeds-upstream=maybe"
        ))
        .is_err());
    }
}
