//! The configuration keys pgclone understands: repmgr.conf's, so existing files
//! work unchanged, plus pgclone's own.

/// repmgr.conf keys (repmgr 5.x). Keys pgclone does not act on are still
/// accepted silently, because the same file configures repmgr itself.
const REPMGR_KEYS: &[&str] = &[
    "node_id",
    "node_name",
    "conninfo",
    "data_directory",
    "config_directory",
    "replication_user",
    "replication_type",
    "location",
    "use_replication_slots",
    "repmgr_bindir",
    "pg_bindir",
    "log_level",
    "log_facility",
    "log_file",
    "log_status_interval",
    "event_notification_command",
    "event_notifications",
    "use_primary_conninfo_password",
    "passfile",
    "ssh_options",
    "pg_basebackup_options",
    "restore_command",
    "tablespace_mapping",
    "recovery_min_apply_delay",
    "archive_cleanup_command",
    "archive_ready_warning",
    "archive_ready_critical",
    "replication_lag_warning",
    "replication_lag_critical",
    "barman_host",
    "barman_server",
    "barman_config",
    "standby_disconnect_on_failover",
    "primary_visibility_consensus",
    "failover",
    "priority",
    "connection_check_type",
    "reconnect_attempts",
    "reconnect_interval",
    "promote_command",
    "follow_command",
    "primary_notification_timeout",
    "repmgrd_standby_startup_timeout",
    "monitoring_history",
    "monitor_interval_secs",
    "degraded_monitoring_timeout",
    "async_query_timeout",
    "repmgrd_pid_file",
    "repmgrd_exit_on_inactive_node",
    "standby_reconnect_timeout",
    "node_rejoin_timeout",
    "sibling_nodes_disconnect_timeout",
    "election_rerun_interval",
    "child_nodes_check_interval",
    "child_nodes_disconnect_min_count",
    "child_nodes_connected_min_count",
    "child_nodes_connected_include_witness",
    "child_nodes_disconnect_timeout",
    "child_nodes_disconnect_command",
    "service_start_command",
    "service_stop_command",
    "service_restart_command",
    "service_reload_command",
    "service_promote_command",
    "pg_ctl_options",
    "shutdown_check_timeout",
    "standby_reconnect_timeout",
    "wal_receive_check_timeout",
    "promote_check_timeout",
    "promote_check_interval",
    "primary_follow_timeout",
    "standby_follow_timeout",
    "standby_follow_restart",
    "always_promote",
    "use_primary_conninfo",
    "witness_sync_interval",
    "bdr_local_monitoring_only",
    "bdr_recovery_timeout",
    "ssh_check",
    "archive_command",
    "failover_validation_command",
    "repmgrd_service_start_command",
    "repmgrd_service_stop_command",
    "sync_standby_check_interval",
    "upstream_node_id",
    "pg_rewind_options",
    "include",
    "include_dir",
    "include_if_exists",
];

/// pgclone's own keys.
const PGCLONE_KEYS: &[&str] = &[
    "backup_source",
    "clone_jobs",
    "plugin_program_timeout",
    "ssh_connect_timeout",
    "plugins_config",
    "replication_slot_name",
    "wal_restore_spool_dir",
    "wal_restore_prefetch",
    "wal_restore_retry_seconds",
    "wal_restore_timeout",
    "clone_wal_prefetch",
    "ssh_connect_timeout",
    // The barman-cloud source and its store (`X_url` ... of store `barman-cloud`).
    "barman_cloud_url",
    "barman_cloud_server",
    "barman_cloud_endpoint_url",
    "barman_cloud_provider",
    "barman_cloud_aws_profile",
    "barman_cloud_read_timeout",
];

/// True when `key` is a key repmgr or pgclone knows.
pub fn is_known(key: &str) -> bool {
    REPMGR_KEYS.contains(&key) || PGCLONE_KEYS.contains(&key)
}

/// The known key (or one of `extra`, plugins' keys) closest to `key`, when it
/// is close enough to be a typo of it: a missing `s`, a swapped or wrong letter.
pub fn closest<'a>(key: &str, extra: &'a [String]) -> Option<&'a str> {
    // Short keys would match anything at distance 2; a third of the key's
    // length, at most 3, keeps suggestions to what reads as the same word.
    let limit = (key.chars().count() / 3).clamp(1, 3);
    REPMGR_KEYS
        .iter()
        .chain(PGCLONE_KEYS)
        .copied()
        .chain(extra.iter().map(String::as_str))
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance (insertions, deletions, substitutions), by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_key_they_mistype() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            closest("use_replication_slot", &[]),
            Some("use_replication_slots")
        );
        assert_eq!(closest("barman_sever", &[]), Some("barman_server"));
        assert_eq!(closest("node_idd", &[]), Some("node_id"));
        let plugin = vec!["pgbackrest_stanza".to_string()];
        assert_eq!(
            closest("pgbackrest_stanz", &plugin),
            Some("pgbackrest_stanza")
        );
        // Nothing is suggested for a key that resembles none.
        assert_eq!(closest("completely_different", &[]), None);
        assert_eq!(closest("xy", &[]), None);
    }
}
