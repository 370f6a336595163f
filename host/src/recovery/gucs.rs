//! The parameters a recovery policy may set, per settings file and version.

/// Parameters accepted in `postgresql.auto.conf` (PostgreSQL 12+): recovery and
/// standby parameters only; anything else is the DBA's, not a policy's.
const AUTO_CONF: &[&str] = &[
    "primary_conninfo",
    "primary_slot_name",
    "restore_command",
    "archive_cleanup_command",
    "recovery_end_command",
    "recovery_min_apply_delay",
    "recovery_target",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_xid",
    "recovery_target_lsn",
    "recovery_target_inclusive",
    "recovery_target_timeline",
    "recovery_target_action",
    "promote_trigger_file",
    "hot_standby",
    "hot_standby_feedback",
    "max_standby_archive_delay",
    "max_standby_streaming_delay",
    "wal_receiver_create_temp_slot",
    "wal_receiver_status_interval",
    "wal_receiver_timeout",
    "wal_retrieve_retry_interval",
    "recovery_prefetch",
];

/// Parameters `recovery.conf` understands (PostgreSQL 9.6–11).
const RECOVERY_CONF: &[&str] = &[
    "standby_mode",
    "primary_conninfo",
    "primary_slot_name",
    "restore_command",
    "archive_cleanup_command",
    "recovery_end_command",
    "recovery_min_apply_delay",
    "recovery_target",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_xid",
    "recovery_target_lsn",
    "recovery_target_inclusive",
    "recovery_target_timeline",
    "recovery_target_action",
    "trigger_file",
];

/// Keys that belong to the recovery configuration: when pgclone rewrites
/// `postgresql.auto.conf`, old values of these are removed (a stale
/// `recovery_target*` copied from the primary would make a standby promote).
pub fn owned_by_recovery(name: &str) -> bool {
    name.starts_with("recovery_target")
        || matches!(
            name,
            "standby_mode"
                | "primary_conninfo"
                | "primary_slot_name"
                | "restore_command"
                | "archive_cleanup_command"
                | "recovery_end_command"
                | "recovery_min_apply_delay"
                | "promote_trigger_file"
        )
}

/// Why `name` cannot be set for a server of `version` in the given file.
pub fn check(name: &str, version: u32, recovery_conf: bool) -> Result<(), String> {
    let list = if recovery_conf {
        RECOVERY_CONF
    } else {
        AUTO_CONF
    };
    if !list.contains(&name) {
        let file = if recovery_conf {
            "recovery.conf"
        } else {
            "postgresql.auto.conf"
        };
        return Err(format!(
            "\"{name}\" is not a recovery or standby parameter that can go into {file}"
        ));
    }
    let removed_in_16 = name == "promote_trigger_file" && version >= 160000;
    let too_new = (name == "wal_receiver_create_temp_slot" && version < 130000)
        || (name == "recovery_prefetch" && version < 150000);
    if removed_in_16 || too_new {
        return Err(format!(
            "\"{name}\" does not exist in PostgreSQL {}",
            version / 10000
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_per_file_and_version() {
        assert!(check("primary_conninfo", 150000, false).is_ok());
        assert!(check("standby_mode", 150000, false).is_err());
        assert!(check("standby_mode", 110000, true).is_ok());
        assert!(check("hot_standby_feedback", 110000, true).is_err());
        assert!(check("shared_buffers", 150000, false).is_err());
        assert!(check("promote_trigger_file", 150000, false).is_ok());
        assert!(check("promote_trigger_file", 160000, false).is_err());
        assert!(check("recovery_prefetch", 140000, false).is_err());
    }

    #[test]
    fn recovery_keys_are_owned() {
        assert!(owned_by_recovery("recovery_target_time"));
        assert!(owned_by_recovery("standby_mode"));
        assert!(!owned_by_recovery("shared_buffers"));
        assert!(!owned_by_recovery("hot_standby_feedback"));
    }
}
