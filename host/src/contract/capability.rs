//! Capabilities: what a plugin declares, what the operator grants, and the
//! check of both at every host call.

/// One capability, as the contract's shared rules read it
/// (`pgclone-contract`): written in `plugins.toml` grants as
/// `remote-run:TARGET:PROGRAM`, `local-run:PROGRAM` or `read-config:KEY`.
pub use pgclone_contract::capability::{BadCapability, Capability};

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

    /// Allows reading `key` (or listing under it) in `store` only when a
    /// declared and a granted `store-read` both cover it. A key that is not
    /// clean (`..`, a leading `/`) is covered by nothing.
    pub fn check_key(&self, store: &str, key: &str) -> Result<(), Refusal> {
        if !self.declared.iter().any(|c| c.covers_key(store, key)) {
            return Err(Refusal::NotDeclared);
        }
        if !self.granted.iter().any(|c| c.covers_key(store, key)) {
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

    #[test]
    fn a_store_key_needs_both_prefixes() {
        let set = CapabilitySet {
            declared: vec!["store-read:bc".parse().unwrap()],
            granted: vec!["store-read:bc:pg-main/".parse().unwrap()],
        };
        assert_eq!(set.check_key("bc", "pg-main/base/x"), Ok(()));
        assert_eq!(
            set.check_key("bc", "pg-other/base/x"),
            Err(Refusal::NotGranted)
        );
        assert_eq!(
            set.check_key("bc", "pg-main/../pg-other/x"),
            Err(Refusal::NotDeclared)
        );
        assert_eq!(
            set.check_key("elsewhere", "pg-main/x"),
            Err(Refusal::NotDeclared)
        );
    }
}
