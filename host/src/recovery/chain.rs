//! Running the recovery policies in order (the standard one first, then site
//! policies) and checking what each one returns.

use std::collections::BTreeSet;

use crate::contract::policy::{PolicyPlugin, RecoveryConfig, RecoveryFacts, SettingsFile};
use crate::contract::PluginFailure;

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
    policies: &[&dyn PolicyPlugin],
    facts: &Facts,
) -> Result<RecoveryConfig, PluginFailure> {
    let mut config = RecoveryConfig {
        file: settings_file(facts.server_version),
        settings: Vec::new(),
        signal_files: Vec::new(),
    };
    for policy in policies {
        policy.ensure_granted()?;
        let mut session = policy.open()?;
        let before = command_settings(&config);
        config = session.recovery_settings(facts, &config)?;
        validate(&config, facts.server_version).map_err(|problem| PluginFailure::Malformed {
            plugin: policy.name().to_string(),
            call: "recovery-settings",
            problem,
        })?;
        // What a site or vendor policy makes PostgreSQL run is said plainly.
        if !policy.is_builtin() {
            for (name, value) in command_settings(&config) {
                if !before.contains(&(name.clone(), value.clone())) {
                    crate::report::notice_once(&format!(
                        "recovery policy \"{}\" sets {name} = '{value}': PostgreSQL will run this command as its own operating-system user",
                        policy.name()
                    ));
                }
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::fake::{self, FakePolicy};
    use crate::contract::ErrorKind;

    fn facts(version: u32) -> Facts {
        Facts {
            server_version: version,
            node_name: "node2".into(),
            upstream: Vec::new(),
            replication_user: None,
            slot_name: None,
            restore_command: None,
            recovery_min_apply_delay: None,
            archive_cleanup_command: None,
            passfile: None,
            password: None,
        }
    }

    #[test]
    fn policies_decide_in_order_each_from_the_one_before() {
        let standard = FakePolicy::setting("standard", "primary_conninfo", "host=up");
        let site = FakePolicy::setting("site", "recovery_min_apply_delay", "5min");
        let config = decide(&[&standard, &site], &facts(160000)).unwrap();
        assert_eq!(config.file, SettingsFile::PostgresqlAutoConf);
        let names: Vec<&str> = config.settings.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["primary_conninfo", "recovery_min_apply_delay"]);
        // recovery.conf before PostgreSQL 12.
        let config = decide(&[&standard], &facts(110000)).unwrap();
        assert_eq!(config.file, SettingsFile::RecoveryConf);
    }

    #[test]
    fn a_policy_that_fails_or_answers_what_postgresql_refuses_stops_the_chain() {
        let mut failing = FakePolicy::setting("site", "x", "y");
        failing.sets = Err(fake::error(ErrorKind::InvalidConfig, "no rule for node2"));
        let e = decide(&[&failing], &facts(160000)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no rule for node2 (plugin \"site\", recovery-settings())"
        );

        let unknown = FakePolicy::setting("site", "no_such_setting", "1");
        let e = decide(&[&unknown], &facts(160000)).unwrap_err();
        assert!(
            matches!(&e, PluginFailure::Malformed { plugin, .. } if plugin == "site"),
            "{e}"
        );
        // Set twice along the chain.
        let again = FakePolicy::setting("again", "recovery_min_apply_delay", "1min");
        let once = FakePolicy::setting("site", "recovery_min_apply_delay", "5min");
        let e = decide(&[&once, &again], &facts(160000)).unwrap_err();
        assert!(e.to_string().contains("is set twice"), "{e}");
    }

    #[test]
    fn a_policy_with_ungranted_capabilities_is_refused_before_it_is_asked() {
        let mut p = FakePolicy::setting("site", "recovery_min_apply_delay", "5min");
        p.caps.declared.push("read-config:secret".parse().unwrap());
        let e = decide(&[&p], &facts(160000)).unwrap_err();
        assert!(
            e.to_string()
                .contains("it requests capabilities that are not granted: read-config:secret"),
            "{e}"
        );
    }
}
