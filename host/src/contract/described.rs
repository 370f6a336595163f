//! A loaded plugin as the host's phases see it before they call it: what its
//! manifest and `describe` said, and what the operator granted. The clone
//! decides from these facts (whose tablespaces must be mapped, whether the
//! upstream may be down, what a plan may run) and opens sessions through
//! [`super::source::SourcePlugin`] and [`super::policy::PolicyPlugin`], so a
//! test double stands in for a WebAssembly component ([`super::fake`]).

use super::capability::CapabilitySet;
use super::PluginFailure;

/// What the host knows of a loaded plugin without calling it.
pub trait Described {
    /// Its short unique name (`describe`'s, as configured).
    fn name(&self) -> &str;
    /// What it declared, and what the operator granted.
    fn capabilities(&self) -> &CapabilitySet;
    /// Shipped inside pgclone (a site's or vendor's plugin is not).
    fn is_builtin(&self) -> bool;
    /// Its backups are of the live upstream (false: restored from a backup
    /// taken earlier, and the upstream may be down).
    fn needs_upstream(&self) -> bool;
    /// The name a first-party source goes by in messages (`Barman`); none
    /// for a site's or vendor's, which its plugin name stands for.
    fn display_name(&self) -> Option<String> {
        None
    }
    /// How messages name it as a source: `Barman`, `backup source "NAME"`.
    fn source_name(&self) -> String {
        self.display_name()
            .unwrap_or_else(|| format!("backup source \"{}\"", self.name()))
    }
    /// The ssh targets its `remote-run:TARGET:PROGRAM` capabilities name, in
    /// the order declared, each once: the hosts a clone from it reaches.
    fn ssh_targets(&self) -> Vec<&str> {
        let mut targets: Vec<&str> = Vec::new();
        for c in &self.capabilities().declared {
            if let super::Capability::RemoteRun { target, .. } = c {
                if !targets.contains(&target.as_str()) {
                    targets.push(target);
                }
            }
        }
        targets
    }
    /// Refuses it when it declared a capability the operator did not grant:
    /// checked before any real work, not halfway through it.
    fn ensure_granted(&self) -> Result<(), PluginFailure> {
        let missing = self.capabilities().ungranted();
        if missing.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
        Err(PluginFailure::Refused {
            plugin: self.name().to_string(),
            reason: format!(
                "it requests capabilities that are not granted: {}",
                list.join(", ")
            ),
            detail: None,
            hint: Some(format!(
                "if you trust the plugin, grant them in plugins.toml: [plugin.{}] grants = [{}]",
                self.name(),
                list.iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeSource;
    use super::Described;

    #[test]
    fn a_source_s_ssh_targets_are_those_its_remote_run_capabilities_name() {
        let s = FakeSource::new(
            "vendor",
            &[
                "remote-run:repo:pgbackrest",
                "local-run:pgbackrest",
                "remote-run:repo:cat",
                "remote-run:vault:fetch",
                "read-config:repo_host",
            ],
            Vec::new(),
        );
        assert_eq!(s.ssh_targets(), ["repo", "vault"]);
        assert_eq!(s.source_name(), "backup source \"vendor\"");
        assert!(FakeSource::new("local", &["local-run:x"], Vec::new())
            .ssh_targets()
            .is_empty());
    }
}
