//! A plugin's manifest: its identity and requested capabilities, stored by the
//! SDK's `manifest!` in the component's `pgclone-plugin` custom section, so
//! that an operator can read it before anything of the plugin runs. The host
//! refuses a plugin whose `describe()` disagrees with its manifest.

use super::versions::current::types::{PluginInfo, Provides};
use crate::contract::capability::Capability;

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

/// `pgclone plugin install` reads the manifest of a file nobody vouched for
/// yet: any bytes are a manifest, none, or an error.
#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    const MANIFEST: &str = "pgclone-plugin-manifest 1\nname=site-policy\nversion=0.1.0\n\
        vendor=Example Corp\nlicense=Apache-2.0\ndescription=Our standby rules\nprovides=\n\
        needs-upstream=false\ncapability=read-config:node_name\n";

    /// LEB128, as the binary format writes sizes.
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    /// A component holding one custom section `name` with `data`.
    fn component(name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        leb(name.len(), &mut body);
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(data);
        let mut out = b"\0asm\x0d\0\x01\0".to_vec();
        out.push(0);
        leb(body.len(), &mut out);
        out.extend(body);
        out
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        /// A section the SDK wrote reads back as the contract parses it;
        /// a damaged one as the same parse of the damaged text.
        #[test]
        fn a_manifest_section_is_read_as_written(text in fuzz::mutated(MANIFEST)) {
            let got = read(&component(SECTION, text.as_bytes()));
            prop_assert_eq!(got, parse(&text).map(Some));
        }

        /// Random and damaged files: no panic.
        #[test]
        fn any_bytes_are_a_manifest_none_or_an_error(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..512),
                (proptest::collection::vec(any::<u8>(), 0..64), any::<proptest::sample::Index>(), any::<u8>())
                    .prop_map(|(junk, i, b)| {
                        let mut c = component(SECTION, MANIFEST.as_bytes());
                        let at = i.index(c.len());
                        c[at] = b;
                        c.extend(junk);
                        c
                    }),
            ]
        ) {
            let _ = read(&bytes);
        }
    }
}
