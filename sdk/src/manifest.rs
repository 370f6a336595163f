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
//! `remote-run:TARGET:PROGRAM`, `local-run:PROGRAM`, `read-config:KEY`,
//! `store-read:STORE[:PREFIX]`.

use crate::types::{Capability, PluginInfo, Provides, RemoteProgram, StoreGrant};

pub use pgclone_contract::manifest::{HEADER, SECTION};

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

/// Parses one capability as operators write it, with the host's own rules
/// (`pgclone-contract`): what the SDK accepts, the host accepts.
pub fn parse_capability(text: &str) -> Result<Capability, String> {
    Ok(
        match text
            .parse()
            .map_err(|e: pgclone_contract::BadCapability| e.to_string())?
        {
            pgclone_contract::Capability::RemoteRun { target, program } => {
                Capability::RemoteRun(RemoteProgram { target, program })
            }
            pgclone_contract::Capability::LocalRun(p) => Capability::LocalRun(p),
            pgclone_contract::Capability::ReadConfig(k) => Capability::ReadConfig(k),
            pgclone_contract::Capability::StoreRead { store, prefix } => {
                Capability::StoreRead(StoreGrant { store, prefix })
            }
        },
    )
}

/// Parses a manifest (with the host's rules, `pgclone-contract`) into the
/// `plugin-info` that `describe()` returns.
pub fn parse(text: &str) -> Result<PluginInfo, String> {
    let m = pgclone_contract::manifest::parse(text)?;
    let mut provides = Provides::empty();
    for p in &m.provides {
        provides = provides
            | match p.as_str() {
                "base-backup" => Provides::BASE_BACKUP,
                _ => Provides::WAL,
            };
    }
    Ok(PluginInfo {
        name: m.name,
        version: m.version,
        vendor: m.vendor,
        license: m.license,
        description: m.description,
        provides,
        needs_upstream: m.needs_upstream,
        capabilities: m
            .capabilities
            .iter()
            .map(|c| parse_capability(&c.to_string()))
            .collect::<Result<_, _>>()?,
    })
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
        capabilities: [
            "local-run:pgbackrest",
            "remote-run:backup-store:tar",
            "read-config:node_name",
            "store-read:cloud:pg-main/",
        ],
    }

    #[test]
    fn the_macro_and_the_parser_agree() {
        let info = describe(MANIFEST);
        assert_eq!(info.name, "demo");
        assert_eq!(info.description, "A demo; with = signs");
        assert_eq!(info.provides, Provides::BASE_BACKUP | Provides::WAL);
        assert!(!info.needs_upstream);
        assert_eq!(info.capabilities.len(), 4);
        assert_eq!(
            info.capabilities[3],
            Capability::StoreRead(StoreGrant {
                store: "cloud".into(),
                prefix: "pg-main/".into()
            })
        );
        assert_eq!(
            info.capabilities[0],
            Capability::LocalRun("pgbackrest".into())
        );
        assert_eq!(to_array::<4>("abcd"), *b"abcd");
        // The macro writes the contract's header.
        assert!(MANIFEST.starts_with(&format!("{HEADER}\n")));
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
        // What the host refuses, the SDK refuses.
        assert!(parse_capability("local-run:/bin/sh").is_err());
        assert!(parse_capability("remote-run:barman:-oProxyCommand=x").is_err());
    }
}
