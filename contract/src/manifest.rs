//! A plugin's manifest: its identity and the capabilities it requests, as
//! the SDK's `manifest!` stores them in the component's `pgclone-plugin`
//! custom section, where `pgclone plugin install` reads them before anything
//! of the plugin runs. The host refuses a plugin whose `describe()` disagrees
//! with its manifest.
//!
//! The text is line based, one `key=value` per line after the first:
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

use crate::capability::Capability;

/// The first line of every manifest.
pub const HEADER: &str = "pgclone-plugin-manifest 1";

/// The name of the custom section that holds the manifest.
pub const SECTION: &str = "pgclone-plugin";

/// What a backup source may provide, as the manifest and the WIT name it.
pub const PROVIDES: &[&str] = &["base-backup", "wal"];

/// What a manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub vendor: String,
    pub license: String,
    pub description: String,
    /// Words of [`PROVIDES`], in the manifest's order.
    pub provides: Vec<String>,
    pub needs_upstream: bool,
    pub capabilities: Vec<Capability>,
}

/// A plugin name: 1 to 64 lower-case letters, digits and `-`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Parses a manifest's text; every key, `provides` word, boolean and
/// capability must be one this contract knows.
pub fn parse(text: &str) -> Result<Manifest, String> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("the manifest does not start with \"{HEADER}\""));
    }
    let mut m = Manifest::default();
    for line in lines.filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("manifest line \"{}\" has no \"=\"", line.escape_debug()))?;
        match key {
            "name" => m.name = value.into(),
            "version" => m.version = value.into(),
            "vendor" => m.vendor = value.into(),
            "license" => m.license = value.into(),
            "description" => m.description = value.into(),
            "provides" => {
                for p in value.split(',').filter(|p| !p.is_empty()) {
                    if !PROVIDES.contains(&p) {
                        return Err(format!("unknown provides \"{}\"", p.escape_debug()));
                    }
                    m.provides.push(p.to_string());
                }
            }
            "needs-upstream" => {
                m.needs_upstream = match value {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(format!(
                            "needs-upstream is \"{}\", not true or false",
                            other.escape_debug()
                        ))
                    }
                }
            }
            "capability" => m.capabilities.push(
                value
                    .parse()
                    .map_err(|e: crate::BadCapability| e.to_string())?,
            ),
            other => return Err(format!("unknown manifest key \"{}\"", other.escape_debug())),
        }
    }
    if m.name.is_empty() || m.version.is_empty() {
        return Err("the manifest has no name or version".into());
    }
    if !valid_name(&m.name) {
        return Err(format!(
            "\"{}\" is not a valid plugin name (lower-case letters, digits and -)",
            m.name.escape_debug()
        ));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_sdk_writes_and_refuses_the_rest() {
        let m = parse(
            "pgclone-plugin-manifest 1\nname=x\nversion=1.0.0\nvendor=V\nlicense=MIT\n\
             description=d = e\nprovides=base-backup,\nneeds-upstream=true\ncapability=local-run:pgbackrest\n",
        )
        .unwrap();
        assert_eq!(m.description, "d = e");
        assert_eq!(m.provides, vec!["base-backup"]);
        assert!(m.needs_upstream);
        assert_eq!(
            m.capabilities,
            vec![Capability::LocalRun("pgbackrest".into())]
        );
        for bad in [
            "name=x".to_string(),
            format!("{HEADER}\nname=x\nversion=1\ncolour=red"),
            format!("{HEADER}\nname=x\nversion=1\ncapability=run-anything"),
            format!("{HEADER}\nname=x\nversion=1\ncapability=local-run:/bin/sh"),
            format!("{HEADER}\nname=x\nversion=1\nneeds-upstream=maybe"),
            format!("{HEADER}\nname=x\nversion=1\nprovides=everything"),
            format!("{HEADER}\nname=X Y\nversion=1"),
            format!("{HEADER}\nversion=1"),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    const SAMPLE: &str = "pgclone-plugin-manifest 1\nname=source-barman\nversion=0.1.0\n\
        vendor=pgclone\nlicense=Apache-2.0\ndescription=Clone from Barman: plain, tar or incremental\n\
        provides=base-backup,wal,\nneeds-upstream=false\ncapability=remote-run:barman:barman\n\
        capability=remote-run:barman:rsync\ncapability=read-config:barman_server\n";

    /// A free-text value: one line, no `\r` (which `lines()` would eat at
    /// the end of a line).
    fn value() -> impl Strategy<Value = String> {
        "[^\r\n]{0,24}"
    }

    fn manifest() -> impl Strategy<Value = Manifest> {
        (
            "[a-z0-9-]{1,64}",
            "[^\r\n]{1,12}",
            (value(), value(), value()),
            proptest::sample::subsequence(PROVIDES, 0..=2),
            any::<bool>(),
            proptest::collection::vec("(local-run|read-config):[a-z_][a-z0-9_.-]{0,8}", 0..4),
        )
            .prop_map(
                |(
                    name,
                    version,
                    (vendor, license, description),
                    provides,
                    needs_upstream,
                    caps,
                )| Manifest {
                    name,
                    version,
                    vendor,
                    license,
                    description,
                    provides: provides.iter().map(|p| p.to_string()).collect(),
                    needs_upstream,
                    capabilities: caps.iter().map(|c| c.parse().unwrap()).collect(),
                },
            )
    }

    /// The manifest as the SDK's `manifest!` writes it.
    fn render(m: &Manifest) -> String {
        let mut s = format!(
            "{HEADER}\nname={}\nversion={}\nvendor={}\nlicense={}\ndescription={}\nprovides=",
            m.name, m.version, m.vendor, m.license, m.description
        );
        for p in &m.provides {
            s += &format!("{p},");
        }
        s += &format!("\nneeds-upstream={}\n", m.needs_upstream);
        for c in &m.capabilities {
            s += &format!("capability={c}\n");
        }
        s
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        /// What the SDK writes, the host reads back field for field.
        #[test]
        fn render_then_parse_is_identity(m in manifest()) {
            prop_assert_eq!(parse(&render(&m)), Ok(m));
        }

        /// A damaged or random section is a manifest with a valid name, or
        /// a clean error; never a panic.
        #[test]
        fn damaged_manifests_are_refused_cleanly(
            s in prop_oneof![fuzz::mutated(SAMPLE), fuzz::any_text()]
        ) {
            if let Ok(m) = parse(&s) {
                prop_assert!(valid_name(&m.name) && !m.version.is_empty());
                prop_assert!(m.provides.iter().all(|p| PROVIDES.contains(&p.as_str())));
            }
        }
    }
}
