//! pgclone's standard recovery policy: `recovery.conf` with `standby_mode`
//! (PostgreSQL 9.6 to 11) or `standby.signal` and `postgresql.auto.conf`
//! (12 and later), `primary_conninfo` built from the upstream. The
//! `recovery-standard` plugin is this function; a site policy's tests can
//! chain after it natively.

use crate::conninfo;
use crate::policy::{RecoveryConfig, RecoveryFacts, Setting, SettingsFile, SignalFile};
use crate::types::{ConnParam, ErrorKind, PluginError};

/// The oldest server this policy knows how to configure (9.6).
pub const MIN_VERSION: u32 = 90600;
/// The first version that reads recovery settings from postgresql.conf (12).
pub const SIGNAL_FILE_VERSION: u32 = 120000;

/// Keys of the upstream's conninfo that never reach `primary_conninfo`: the
/// walreceiver chooses its own database and replication mode, and passwords only
/// come from `facts.password`.
const DROPPED_KEYS: &[&str] = &["dbname", "replication", "password"];

/// Builds `primary_conninfo` for a standby of `facts.upstream`.
pub fn primary_conninfo(facts: &RecoveryFacts) -> String {
    let mut params: Vec<ConnParam> = facts
        .upstream
        .iter()
        .filter(|p| !DROPPED_KEYS.contains(&p.key.as_str()))
        .cloned()
        .collect();
    if let Some(user) = &facts.replication_user {
        conninfo::set(&mut params, "user", user);
    }
    if let Some(passfile) = &facts.passfile {
        conninfo::set(&mut params, "passfile", passfile);
    }
    if let Some(password) = &facts.password {
        conninfo::set(&mut params, "password", password);
    }
    conninfo::set(&mut params, "application_name", &facts.node_name);
    conninfo::render(&params)
}

/// The standard configuration, merged over `previous`: settings this policy
/// decides replace those of the same name; any others are kept in order.
pub fn recovery_settings(
    facts: &RecoveryFacts,
    previous: RecoveryConfig,
) -> Result<RecoveryConfig, PluginError> {
    if facts.server_version < MIN_VERSION {
        return Err(PluginError {
            kind: ErrorKind::Unsupported,
            message: format!(
                "PostgreSQL {} is not supported",
                crate::version::major_text(facts.server_version)
            ),
            detail: None,
            hint: Some("pgclone configures standbys of PostgreSQL 9.6 and later".into()),
        });
    }
    if facts.upstream.is_empty() {
        return Err(PluginError {
            kind: ErrorKind::InvalidConfig,
            message: "no upstream connection parameters to build primary_conninfo from".into(),
            detail: None,
            hint: Some("set conninfo of the upstream with -h/-p/-U or --upstream-conninfo".into()),
        });
    }
    let modern = facts.server_version >= SIGNAL_FILE_VERSION;

    let mut ours: Vec<(&str, String)> = Vec::new();
    if !modern {
        ours.push(("standby_mode", "on".into()));
    }
    ours.push(("primary_conninfo", primary_conninfo(facts)));
    ours.push(("recovery_target_timeline", "latest".into()));
    if let Some(slot) = &facts.slot_name {
        ours.push(("primary_slot_name", slot.clone()));
    }
    if let Some(cmd) = &facts.restore_command {
        ours.push(("restore_command", cmd.clone()));
    }
    if let Some(cmd) = &facts.archive_cleanup_command {
        ours.push(("archive_cleanup_command", cmd.clone()));
    }
    if let Some(delay) = &facts.recovery_min_apply_delay {
        ours.push(("recovery_min_apply_delay", delay.clone()));
    }

    let mut settings: Vec<Setting> = ours
        .iter()
        .map(|(name, value)| Setting {
            name: name.to_string(),
            value: value.clone(),
        })
        .collect();
    for kept in previous.settings {
        if !settings.iter().any(|s| s.name == kept.name) {
            settings.push(kept);
        }
    }

    let (file, signal_files) = if modern {
        (SettingsFile::PostgresqlAutoConf, vec![SignalFile::Standby])
    } else {
        (SettingsFile::RecoveryConf, Vec::new())
    };
    Ok(RecoveryConfig {
        file,
        settings,
        signal_files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::policy::get;
    use crate::testing::param;

    /// The harness's facts, with a `dbname` that must not reach primary_conninfo.
    fn facts(version: u32) -> RecoveryFacts {
        let mut f = crate::testing::facts(version);
        f.upstream.push(param("dbname", "repmgr"));
        f
    }

    fn empty(file: SettingsFile) -> RecoveryConfig {
        RecoveryConfig {
            file,
            settings: Vec::new(),
            signal_files: Vec::new(),
        }
    }

    fn names(c: &RecoveryConfig) -> Vec<&str> {
        c.settings.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn modern_servers_get_auto_conf_and_standby_signal() {
        for v in [120000, 130010, 150004, 180000] {
            let c = recovery_settings(&facts(v), empty(SettingsFile::PostgresqlAutoConf)).unwrap();
            assert_eq!(c.file, SettingsFile::PostgresqlAutoConf);
            assert_eq!(c.signal_files, vec![SignalFile::Standby]);
            assert_eq!(get(&c, "standby_mode"), None);
            assert_eq!(
                names(&c),
                vec!["primary_conninfo", "recovery_target_timeline"]
            );
            assert_eq!(get(&c, "recovery_target_timeline"), Some("latest"));
        }
    }

    #[test]
    fn old_servers_get_recovery_conf_with_standby_mode() {
        for v in [90600, 90624, 100000, 110022] {
            let c = recovery_settings(&facts(v), empty(SettingsFile::RecoveryConf)).unwrap();
            assert_eq!(c.file, SettingsFile::RecoveryConf);
            assert!(c.signal_files.is_empty());
            assert_eq!(get(&c, "standby_mode"), Some("on"));
            assert_eq!(names(&c)[0], "standby_mode");
        }
    }

    #[test]
    fn servers_older_than_9_6_are_refused() {
        let e = recovery_settings(&facts(90500), empty(SettingsFile::RecoveryConf)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported);
        assert!(e.message.contains("9.5"), "{}", e.message);
    }

    #[test]
    fn missing_upstream_is_a_config_error() {
        let mut f = facts(150000);
        f.upstream.clear();
        let e = recovery_settings(&f, empty(SettingsFile::PostgresqlAutoConf)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidConfig);
    }

    #[test]
    fn conninfo_drops_dbname_and_names_the_node() {
        assert_eq!(
            primary_conninfo(&facts(150000)),
            "host=node1 port=5432 user=repmgr application_name=node2"
        );
    }

    #[test]
    fn conninfo_drops_replication_and_any_configured_password() {
        let mut f = facts(150000);
        f.upstream.push(param("replication", "true"));
        f.upstream.push(param("password", "secret"));
        let ci = primary_conninfo(&f);
        assert!(!ci.contains("replication"), "{ci}");
        assert!(!ci.contains("secret"), "{ci}");
    }

    #[test]
    fn conninfo_uses_the_replication_user() {
        let mut f = facts(150000);
        f.replication_user = Some("repluser".into());
        assert_eq!(
            primary_conninfo(&f),
            "host=node1 port=5432 user=repluser application_name=node2"
        );
    }

    #[test]
    fn conninfo_adds_the_replication_user_when_upstream_has_none() {
        let mut f = facts(150000);
        f.upstream.retain(|p| p.key != "user");
        f.replication_user = Some("repluser".into());
        assert!(primary_conninfo(&f).contains("user=repluser"));
    }

    #[test]
    fn conninfo_carries_passfile_and_the_given_password() {
        let mut f = facts(150000);
        f.passfile = Some("/var/lib/postgresql/.pgpass".into());
        f.password = Some("it's a secret".into());
        let ci = primary_conninfo(&f);
        assert!(ci.contains("passfile=/var/lib/postgresql/.pgpass"), "{ci}");
        assert!(ci.contains(r"password='it\'s a secret'"), "{ci}");
    }

    #[test]
    fn conninfo_keeps_other_libpq_keys() {
        let mut f = facts(150000);
        f.upstream.push(param("sslmode", "verify-full"));
        f.upstream.push(param("connect_timeout", "2"));
        let ci = primary_conninfo(&f);
        assert!(ci.contains("sslmode=verify-full"), "{ci}");
        assert!(ci.contains("connect_timeout=2"), "{ci}");
    }

    #[test]
    fn conninfo_replaces_an_application_name_from_the_upstream() {
        let mut f = facts(150000);
        f.upstream.push(param("application_name", "psql"));
        let ci = primary_conninfo(&f);
        assert!(ci.ends_with("application_name=node2"), "{ci}");
        assert!(!ci.contains("psql"), "{ci}");
    }

    #[test]
    fn every_option_becomes_a_setting() {
        for (v, file) in [
            (110000, SettingsFile::RecoveryConf),
            (150000, SettingsFile::PostgresqlAutoConf),
        ] {
            let mut f = facts(v);
            f.slot_name = Some("repmgr_slot_2".into());
            f.restore_command = Some("pgclone wal-restore barmansrv pg %f %p".into());
            f.archive_cleanup_command = Some("pg_archivecleanup /arch %r".into());
            f.recovery_min_apply_delay = Some("5min".into());
            let c = recovery_settings(&f, empty(file)).unwrap();
            assert_eq!(get(&c, "primary_slot_name"), Some("repmgr_slot_2"));
            assert_eq!(
                get(&c, "restore_command"),
                Some("pgclone wal-restore barmansrv pg %f %p")
            );
            assert_eq!(
                get(&c, "archive_cleanup_command"),
                Some("pg_archivecleanup /arch %r")
            );
            assert_eq!(get(&c, "recovery_min_apply_delay"), Some("5min"));
        }
    }

    #[test]
    fn previous_settings_are_kept_unless_decided_here() {
        let mut prev = empty(SettingsFile::PostgresqlAutoConf);
        prev.settings.push(Setting {
            name: "primary_conninfo".into(),
            value: "host=stale".into(),
        });
        prev.settings.push(Setting {
            name: "hot_standby_feedback".into(),
            value: "on".into(),
        });
        let c = recovery_settings(&facts(150000), prev).unwrap();
        assert_ne!(get(&c, "primary_conninfo"), Some("host=stale"));
        assert_eq!(get(&c, "hot_standby_feedback"), Some("on"));
        assert_eq!(names(&c).last(), Some(&"hot_standby_feedback"));
    }
}
