//! A plugin's manifest: its identity and requested capabilities, stored by the
//! SDK's `manifest!` in the component's `pgclone-plugin` custom section, so
//! that an operator can read it before anything of the plugin runs. The host
//! refuses a plugin whose `describe()` disagrees with its manifest.

use super::bindings::types::{PluginInfo, Provides};
use super::capability::Capability;

/// The custom section's name.
pub const SECTION: &str = "pgclone-plugin";
const HEADER: &str = "pgclone-plugin-manifest 1";

/// What a manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub vendor: String,
    pub license: String,
    pub description: String,
    pub provides: Vec<String>,
    pub needs_upstream: bool,
    pub capabilities: Vec<Capability>,
}

/// The manifest of a component, if it has one. Nested core modules are
/// searched too (that is where a guest's custom sections end up).
pub fn read(bytes: &[u8]) -> Result<Option<Manifest>, String> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("not a WebAssembly file: {e}"))?;
        if let wasmparser::Payload::CustomSection(reader) = payload {
            if reader.name() == SECTION {
                let text = std::str::from_utf8(reader.data())
                    .map_err(|_| "the manifest is not UTF-8".to_string())?;
                return parse(text).map(Some);
            }
        }
    }
    Ok(None)
}

/// Parses the manifest text (format: see the SDK's `manifest` module).
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
                m.provides = value
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "needs-upstream" => m.needs_upstream = value == "true",
            "capability" => m.capabilities.push(
                value
                    .parse()
                    .map_err(|e: super::capability::BadCapability| e.to_string())?,
            ),
            other => return Err(format!("unknown manifest key \"{}\"", other.escape_debug())),
        }
    }
    if m.name.is_empty() || m.version.is_empty() {
        return Err("the manifest has no name or version".into());
    }
    Ok(m)
}

fn provides_list(p: Provides) -> Vec<String> {
    let mut v = Vec::new();
    if p.contains(Provides::BASE_BACKUP) {
        v.push("base-backup".to_string());
    }
    if p.contains(Provides::WAL) {
        v.push("wal".to_string());
    }
    v
}

impl Manifest {
    /// Where `describe()` (and the capabilities it declared) differ from the
    /// manifest; empty when they agree.
    pub fn differences(&self, info: &PluginInfo, declared: &[Capability]) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |what: &str, manifest: &str, described: &str| {
            if manifest != described {
                out.push(format!(
                    "{what}: manifest \"{manifest}\", describe() \"{described}\""
                ));
            }
        };
        field("name", &self.name, &info.name);
        field("version", &self.version, &info.version);
        field("vendor", &self.vendor, &info.vendor);
        field("license", &self.license, &info.license);
        field(
            "provides",
            &self.provides.join(","),
            &provides_list(info.provides).join(","),
        );
        field(
            "needs-upstream",
            &self.needs_upstream.to_string(),
            &info.needs_upstream.to_string(),
        );
        let mut a = self.capabilities.clone();
        let mut b = declared.to_vec();
        a.sort();
        b.sort();
        if a != b {
            let show = |v: &[Capability]| {
                v.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(format!(
                "capabilities: manifest [{}], describe() [{}]",
                show(&a),
                show(&b)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_sdk_writes() {
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
        assert!(parse("name=x").is_err());
        assert!(parse(
            "pgclone-plugin-manifest 1\nname=x\nversion=1\ncapability=local-run:/bin/sh"
        )
        .is_err());
    }
}
