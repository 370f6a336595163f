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

/// How PostgreSQL reads a parameter's value.
enum Kind {
    /// An integer with a time unit, and its range in that unit.
    Time {
        unit_ms: f64,
        min: i64,
        max: i64,
    },
    Bool,
    Enum(&'static [&'static str]),
    Timeline,
    Lsn,
    Xid,
    SlotName,
    ConnInfo,
    /// Free text (a command, a name, a time).
    Text,
}

fn kind(name: &str) -> Kind {
    const INT_MAX: i64 = i32::MAX as i64;
    match name {
        "recovery_min_apply_delay" | "wal_receiver_timeout" => Kind::Time {
            unit_ms: 1.0,
            min: 0,
            max: INT_MAX,
        },
        "max_standby_archive_delay" | "max_standby_streaming_delay" => Kind::Time {
            unit_ms: 1.0,
            min: -1,
            max: INT_MAX,
        },
        "wal_retrieve_retry_interval" => Kind::Time {
            unit_ms: 1.0,
            min: 1,
            max: INT_MAX,
        },
        "wal_receiver_status_interval" => Kind::Time {
            unit_ms: 1000.0,
            min: 0,
            max: INT_MAX / 1000,
        },
        "hot_standby"
        | "hot_standby_feedback"
        | "recovery_target_inclusive"
        | "standby_mode"
        | "wal_receiver_create_temp_slot" => Kind::Bool,
        "recovery_target_action" => Kind::Enum(&["pause", "promote", "shutdown"]),
        "recovery_target" => Kind::Enum(&["immediate", ""]),
        "recovery_prefetch" => Kind::Enum(&["off", "on", "try"]),
        "recovery_target_timeline" => Kind::Timeline,
        "recovery_target_lsn" => Kind::Lsn,
        "recovery_target_xid" => Kind::Xid,
        "primary_slot_name" => Kind::SlotName,
        "primary_conninfo" => Kind::ConnInfo,
        _ => Kind::Text,
    }
}

/// PostgreSQL's boolean spellings (parse_bool: case-insensitive, unique prefixes).
fn parse_bool(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    !v.is_empty()
        && (["true", "false", "yes", "no"]
            .iter()
            .any(|w| w.starts_with(v.as_str()))
            || matches!(v.as_str(), "on" | "off" | "of" | "1" | "0"))
}

/// PostgreSQL's integer-with-unit syntax (parse_int): a number (a fraction
/// from PostgreSQL 12 on), optional spaces, an optional time unit; the result
/// in the parameter's unit must be within its range.
fn parse_time(v: &str, unit_ms: f64, min: i64, max: i64, version: u32) -> Result<(), String> {
    let v = v.trim();
    let num_end = v
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')) || *c == '.'))
        .map(|(i, _)| i)
        .unwrap_or(v.len());
    let (num, unit) = (&v[..num_end], v[num_end..].trim());
    if num.contains('.') && version < 120000 {
        return Err("a whole number is needed before PostgreSQL 12".into());
    }
    let n: f64 = num
        .parse()
        .map_err(|_| format!("\"{num}\" is not a number"))?;
    let factor_ms = match unit {
        "" => unit_ms,
        "us" if version >= 120000 => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        other => {
            return Err(format!(
                "\"{other}\" is not a time unit (valid units: {}ms, s, min, h, d)",
                if version >= 120000 { "us, " } else { "" }
            ))
        }
    };
    let in_unit = (n * factor_ms / unit_ms).round();
    if in_unit < min as f64 || in_unit > max as f64 {
        return Err(format!(
            "{v} is outside the valid range ({min} .. {max} {})",
            if unit_ms == 1.0 { "ms" } else { "s" }
        ));
    }
    Ok(())
}

/// Why PostgreSQL would refuse `value` for `name` (checked before anything is
/// written: a standby that cannot start is a failed clone).
pub fn check_value(name: &str, value: &str, version: u32) -> Result<(), String> {
    let bad = |why: String| {
        Err(format!(
            "invalid value for \"{name}\": \"{}\": {why}",
            value.escape_debug()
        ))
    };
    if value.chars().any(|c| c.is_control()) {
        return bad("it contains a control character".into());
    }
    match kind(name) {
        Kind::Time { unit_ms, min, max } => {
            parse_time(value, unit_ms, min, max, version).or_else(bad)
        }
        Kind::Bool if !parse_bool(value) => {
            bad("not a boolean (on, off, true, false, yes, no, 1, 0)".into())
        }
        Kind::Enum(allowed) if !allowed.contains(&value.trim().to_ascii_lowercase().as_str()) => {
            bad(format!(
                "valid values are: {}",
                allowed
                    .iter()
                    .filter(|a| !a.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
        Kind::Timeline => {
            let v = value.trim();
            if v == "latest" || v == "current" || v.parse::<u32>().is_ok_and(|t| t > 0) {
                Ok(())
            } else {
                bad("expected latest, current or a timeline number".into())
            }
        }
        Kind::Lsn => {
            if crate::wal::parse_lsn(value).is_some() {
                Ok(())
            } else {
                bad("expected an LSN such as 0/16B3748".into())
            }
        }
        Kind::Xid if value.trim().parse::<u64>().is_err() => {
            bad("expected a transaction id".into())
        }
        Kind::SlotName => {
            let ok = !value.is_empty()
                && value.len() < 64
                && value
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if ok {
                Ok(())
            } else {
                bad("a slot name is 1-63 characters of a-z, 0-9 and _".into())
            }
        }
        Kind::ConnInfo => crate::pg::ConnInfo::parse(value)
            .map(|_| ())
            .or_else(|e| bad(e.to_string())),
        _ => Ok(()),
    }
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
    fn values_are_read_as_postgresql_reads_them() {
        for ok in [
            "0", "5min", "5 min", "4h", "100", "1d", "1.5s", "30000ms", " 10s ",
        ] {
            check_value("recovery_min_apply_delay", ok, 150000)
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "5 minutes",
            "4H",
            "-1",
            "soon",
            "",
            "1.5s\n",
            "99999999999",
            "10 s x",
        ] {
            assert!(
                check_value("recovery_min_apply_delay", bad, 150000).is_err(),
                "{bad}"
            );
        }
        assert!(check_value("recovery_min_apply_delay", "1.5s", 110000).is_err());
        assert!(check_value("recovery_min_apply_delay", "500us", 110000).is_err());
        check_value("max_standby_streaming_delay", "-1", 150000).unwrap();
        check_value("hot_standby_feedback", "On", 150000).unwrap();
        assert!(check_value("hot_standby_feedback", "maybe", 150000).is_err());
        check_value("recovery_target_timeline", "latest", 150000).unwrap();
        assert!(check_value("recovery_target_timeline", "newest", 150000).is_err());
        check_value("recovery_target_lsn", "0/16B3748", 150000).unwrap();
        assert!(check_value("recovery_target_lsn", "16B3748", 150000).is_err());
        check_value("primary_slot_name", "repmgr_slot_2", 150000).unwrap();
        assert!(check_value("primary_slot_name", "Repmgr-Slot", 150000).is_err());
        check_value("primary_conninfo", "host=a user=b", 150000).unwrap();
        assert!(check_value("primary_conninfo", "host='a", 150000).is_err());
        assert!(check_value("restore_command", "cp x\n%p", 150000).is_err());
        check_value("recovery_target_action", "promote", 150000).unwrap();
    }

    #[test]
    fn recovery_keys_are_owned() {
        assert!(owned_by_recovery("recovery_target_time"));
        assert!(owned_by_recovery("standby_mode"));
        assert!(!owned_by_recovery("shared_buffers"));
        assert!(!owned_by_recovery("hot_standby_feedback"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(fuzz::config())]

        /// A policy's values, whatever they are: accepted or refused with a
        /// reason, never a panic; an accepted one has no control character.
        #[test]
        fn any_value_is_checked_cleanly(
            name in proptest::sample::select(&[
                "recovery_min_apply_delay", "max_standby_streaming_delay", "wal_receiver_timeout",
                "hot_standby", "recovery_target_action", "recovery_target_timeline",
                "recovery_target_lsn", "recovery_target_xid", "primary_slot_name", "primary_conninfo",
                "restore_command",
            ][..]),
            value in prop_oneof![
                fuzz::words(&["1", "0", ".", "-", "+", "5", "min", "ms", "us", " ", "s", "h", "d", "/", "A", "é", "99999999999999999999"]),
                fuzz::any_text(),
            ],
            version in prop_oneof![Just(110000u32), Just(150000u32)],
        ) {
            if check_value(name, &value, version).is_ok() {
                prop_assert!(!value.chars().any(char::is_control));
            }
        }
    }
}
