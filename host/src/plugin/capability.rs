//! Capabilities: what a plugin declares, what the operator grants, and the
//! check of both at every host call.

use std::fmt;
use std::str::FromStr;

/// One capability, host side. Written in `plugins.toml` grants as
/// `remote-run:TARGET:PROGRAM`, `local-run:PROGRAM` or `read-config:KEY`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    RemoteRun { target: String, program: String },
    LocalRun(String),
    ReadConfig(String),
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::RemoteRun { target, program } => {
                write!(f, "remote-run:{target}:{program}")
            }
            Capability::LocalRun(p) => write!(f, "local-run:{p}"),
            Capability::ReadConfig(k) => write!(f, "read-config:{k}"),
        }
    }
}

/// A grant string that is not a capability.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("\"{0}\" is not a capability (expected remote-run:TARGET:PROGRAM, local-run:PROGRAM or read-config:KEY)")]
pub struct BadCapability(pub String);

impl FromStr for Capability {
    type Err = BadCapability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCapability(s.to_string());
        let word = |w: &str| {
            !w.is_empty()
                && !w.starts_with('-')
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        };
        let mut parts = s.splitn(3, ':');
        let cap = match (parts.next(), parts.next(), parts.next()) {
            (Some("remote-run"), Some(t), Some(p)) if word(t) && word(p) => Capability::RemoteRun {
                target: t.into(),
                program: p.into(),
            },
            (Some("local-run"), Some(p), None) if word(p) => Capability::LocalRun(p.into()),
            (Some("read-config"), Some(k), None) if word(k) => Capability::ReadConfig(k.into()),
            _ => return Err(bad()),
        };
        Ok(cap)
    }
}

/// Why a capability was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The plugin did not declare it in `describe`.
    NotDeclared,
    /// The operator did not grant it.
    NotGranted,
}

/// The two locks: what the plugin declared and what the operator granted.
#[derive(Debug, Clone, Default)]
pub struct CapabilitySet {
    pub declared: Vec<Capability>,
    pub granted: Vec<Capability>,
}

impl CapabilitySet {
    /// Allows `cap` only when it is both declared and granted.
    pub fn check(&self, cap: &Capability) -> Result<(), Refusal> {
        if !self.declared.contains(cap) {
            return Err(Refusal::NotDeclared);
        }
        if !self.granted.contains(cap) {
            return Err(Refusal::NotGranted);
        }
        Ok(())
    }

    /// Declared capabilities the operator has not granted.
    pub fn ungranted(&self) -> Vec<&Capability> {
        self.declared
            .iter()
            .filter(|c| !self.granted.contains(c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_strings_round_trip() {
        for s in [
            "remote-run:barman:barman",
            "local-run:pg_basebackup",
            "read-config:barman_host",
        ] {
            assert_eq!(s.parse::<Capability>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn malformed_grants_are_refused() {
        for s in [
            "",
            "remote-run:barman",
            "local-run:",
            "local-run:/bin/sh",
            "local-run:-oProxyCommand",
            "local-run:a b",
            "read-config:a:b",
            "fly:away",
        ] {
            assert!(s.parse::<Capability>().is_err(), "{s:?} parsed");
        }
    }

    #[test]
    fn both_locks_must_open() {
        let a: Capability = "local-run:pg_basebackup".parse().unwrap();
        let b: Capability = "remote-run:barman:barman".parse().unwrap();
        let set = CapabilitySet {
            declared: vec![a.clone(), b.clone()],
            granted: vec![a.clone()],
        };
        assert_eq!(set.check(&a), Ok(()));
        assert_eq!(set.check(&b), Err(Refusal::NotGranted));
        let c: Capability = "local-run:rm".parse().unwrap();
        assert_eq!(set.check(&c), Err(Refusal::NotDeclared));
        assert_eq!(set.ungranted(), vec![&b]);
    }
}
