//! A plugin's manifest: its identity and requested capabilities, stored by the
//! SDK's `manifest!` in the component's `pgclone-plugin` custom section, so
//! that an operator can read it before anything of the plugin runs. The host
//! refuses a plugin whose `describe()` disagrees with its manifest.

use super::bindings::types::{PluginInfo, Provides};
use super::capability::Capability;

/// The manifest's format and rules are the contract's, shared with the SDK
/// that writes it (`pgclone-contract`).
pub use pgclone_contract::manifest::{parse, valid_name, Manifest, SECTION};

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

/// Where `describe()` (and the capabilities it declared) differ from the
/// manifest `m`; empty when they agree.
pub fn differences(m: &Manifest, info: &PluginInfo, declared: &[Capability]) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |what: &str, manifest: &str, described: &str| {
        if manifest != described {
            out.push(format!(
                "{what}: manifest \"{manifest}\", describe() \"{described}\""
            ));
        }
    };
    field("name", &m.name, &info.name);
    field("version", &m.version, &info.version);
    field("vendor", &m.vendor, &info.vendor);
    field("license", &m.license, &info.license);
    field(
        "provides",
        &m.provides.join(","),
        &provides_list(info.provides).join(","),
    );
    field(
        "needs-upstream",
        &m.needs_upstream.to_string(),
        &info.needs_upstream.to_string(),
    );
    let mut a = m.capabilities.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_must_agree_with_the_manifest() {
        let m = parse(
            "pgclone-plugin-manifest 1\nname=x\nversion=1.0.0\nvendor=V\nlicense=MIT\n\
             description=d\nprovides=wal\nneeds-upstream=false\ncapability=local-run:pgbackrest\n",
        )
        .unwrap();
        let mut info = PluginInfo {
            name: "x".into(),
            version: "1.0.0".into(),
            vendor: "V".into(),
            license: "MIT".into(),
            description: "d".into(),
            provides: Provides::WAL,
            needs_upstream: false,
            capabilities: Vec::new(),
        };
        let declared = vec![Capability::LocalRun("pgbackrest".into())];
        assert!(differences(&m, &info, &declared).is_empty());
        info.provides = Provides::WAL | Provides::BASE_BACKUP;
        let d = differences(&m, &info, &[Capability::ReadConfig("node_name".into())]);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("provides"), "{d:?}");
        assert!(d[1].contains("read-config:node_name"), "{d:?}");
    }
}
