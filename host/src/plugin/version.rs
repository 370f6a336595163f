//! The contract version a component targets, read from its import and export
//! names (`pgclone:plugin/source@1.0.0`), before anything of it runs.

use std::fmt;

use wasmtime::component::Component;
use wasmtime::Engine;

/// The contract this host implements.
pub const HOST_CONTRACT: Version = Version {
    major: 1,
    minor: 3,
    patch: 0,
};

/// A semver version of the WIT package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    fn parse(s: &str) -> Option<Version> {
        let mut it = s.split('.').map(|p| p.parse::<u64>().ok());
        let v = Version {
            major: it.next()??,
            minor: it.next()??,
            patch: it.next()??,
        };
        it.next().is_none().then_some(v)
    }

    /// A plugin built against `self` loads on this host: same major version,
    /// and no newer minor version than the host's.
    pub fn supported(self) -> bool {
        self.major == HOST_CONTRACT.major && self.minor <= HOST_CONTRACT.minor
    }
}

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    Source,
    Policy,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Source => "backup-source",
            PluginKind::Policy => "recovery-policy",
        })
    }
}

/// What a component says about the contract, without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contract {
    pub kind: PluginKind,
    pub version: Version,
}

/// Why a component cannot be a plugin of this host.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContractError {
    #[error("it exports no pgclone plugin interface (found: {found})")]
    NotAPlugin { found: String },
    #[error("it exports both a backup source and a recovery policy")]
    Ambiguous,
    #[error("it targets contract pgclone:plugin@{0}; this pgclone supports pgclone:plugin@{major}.0.0 to {HOST_CONTRACT}", major = HOST_CONTRACT.major)]
    Unsupported(Version),
}

/// Reads the contract a component targets and checks this host supports it.
pub fn inspect(engine: &Engine, component: &Component) -> Result<Contract, ContractError> {
    let ty = component.component_type();
    let mut found = Vec::new();
    let mut contract: Option<Contract> = None;
    for (name, _) in ty.exports(engine) {
        found.push(name.to_string());
        let Some(rest) = name.strip_prefix("pgclone:plugin/") else {
            continue;
        };
        let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
        let kind = match iface {
            "source" => PluginKind::Source,
            "policy" => PluginKind::Policy,
            _ => continue,
        };
        let version = Version::parse(version).unwrap_or(Version {
            major: 0,
            minor: 0,
            patch: 0,
        });
        if contract.is_some() {
            return Err(ContractError::Ambiguous);
        }
        contract = Some(Contract { kind, version });
    }
    let contract = contract.ok_or_else(|| ContractError::NotAPlugin {
        found: if found.is_empty() {
            "nothing".into()
        } else {
            found.join(", ")
        },
    })?;
    if !contract.version.supported() {
        return Err(ContractError::Unsupported(contract.version));
    }
    Ok(contract)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(
            Version::parse("1.2.3"),
            Some(Version {
                major: 1,
                minor: 2,
                patch: 3
            })
        );
        assert_eq!(Version::parse("1.2"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
        assert!(HOST_CONTRACT.supported());
        assert!(Version::parse("1.0.7").unwrap().supported());
        assert!(Version::parse("1.1.0").unwrap().supported());
        assert!(Version::parse("1.2.0").unwrap().supported());
        assert!(Version::parse("1.3.0").unwrap().supported());
        assert!(!Version::parse("2.0.0").unwrap().supported());
        assert!(!Version::parse("0.9.0").unwrap().supported());
        let newer = Version {
            minor: HOST_CONTRACT.minor + 1,
            ..HOST_CONTRACT
        };
        assert!(!newer.supported());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(fuzz::config())]

        /// The version in a component's export name is the plugin's word:
        /// any text is a version or none.
        #[test]
        fn version_text_reads_back_or_is_none(
            (major, minor, patch) in any::<(u64, u64, u64)>(),
            s in prop_oneof![fuzz::mutated("1.2.0"), fuzz::any_text()],
        ) {
            let v = Version { major, minor, patch };
            prop_assert_eq!(Version::parse(&v.to_string()), Some(v));
            let _ = Version::parse(&s);
        }
    }
}
