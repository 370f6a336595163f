//! Running the recovery policies in order (the standard one first, then site
//! policies) and checking what each one returns.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::contract::policy::{RecoveryConfig, RecoveryFacts, RecoveryPolicy, SettingsFile};
use crate::contract::PluginFailure;
use crate::environment::HostEnv;
use crate::plugin::{Plugin, Runtime};

use super::gucs;

/// The facts policies decide from (host side).
pub type Facts = RecoveryFacts;

/// The file a server of `version` reads recovery settings from.
pub fn settings_file(version: u32) -> SettingsFile {
    if version >= 120000 {
        SettingsFile::PostgresqlAutoConf
    } else {
        SettingsFile::RecoveryConf
    }
}

/// Settings that make PostgreSQL run a shell command as the server's user:
/// a policy that sets them decides what runs there.
pub const COMMAND_SETTINGS: &[&str] = &[
    "restore_command",
    "archive_cleanup_command",
    "recovery_end_command",
];

fn command_settings(config: &RecoveryConfig) -> Vec<(String, String)> {
    config
        .settings
        .iter()
        .filter(|s| COMMAND_SETTINGS.contains(&s.name.as_str()))
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect()
}

/// Checks a policy's answer: the right file for the version, known parameters,
/// each at most once, values that fit on one line.
pub fn validate(config: &RecoveryConfig, version: u32) -> Result<(), String> {
    let expected = settings_file(version);
    if config.file != expected {
        return Err(format!(
            "settings for PostgreSQL {} must go into {}",
            version / 10000,
            match expected {
                SettingsFile::RecoveryConf => "recovery.conf",
                SettingsFile::PostgresqlAutoConf => "postgresql.auto.conf",
            }
        ));
    }
    if expected == SettingsFile::RecoveryConf && !config.signal_files.is_empty() {
        return Err("signal files do not exist before PostgreSQL 12".into());
    }
    let mut seen = BTreeSet::new();
    for s in &config.settings {
        gucs::check(&s.name, version, expected == SettingsFile::RecoveryConf)?;
        if !seen.insert(s.name.as_str()) {
            return Err(format!("\"{}\" is set twice", s.name));
        }
        gucs::check_value(&s.name, &s.value, version)?;
    }
    Ok(())
}

/// Runs `policies` in order over `facts` and returns the final configuration.
pub fn decide(
    rt: &Runtime,
    env: Arc<HostEnv>,
    policies: &[&Plugin],
    facts: &Facts,
) -> Result<RecoveryConfig, PluginFailure> {
    let mut config = RecoveryConfig {
        file: settings_file(facts.server_version),
        settings: Vec::new(),
        signal_files: Vec::new(),
    };
    for policy in policies {
        policy.ensure_granted()?;
        let mut session = policy.session(rt, env.clone())?;
        let before = command_settings(&config);
        config = session.recovery_settings(facts, &config)?;
        validate(&config, facts.server_version).map_err(|problem| PluginFailure::Malformed {
            plugin: policy.name.clone(),
            call: "recovery-settings",
            problem,
        })?;
        // What a site or vendor policy makes PostgreSQL run is said plainly.
        if !policy.origin_is_builtin() {
            for (name, value) in command_settings(&config) {
                if !before.contains(&(name.clone(), value.clone())) {
                    crate::report::notice(&format!(
                        "recovery policy \"{}\" sets {name} = '{value}': PostgreSQL will run this command as its own operating-system user",
                        policy.name
                    ));
                }
            }
        }
    }
    Ok(config)
}
