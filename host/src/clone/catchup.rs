//! Can a standby cloned from a backup catch up without `restore_command`?
//!
//! A backup holds no WAL of its own (Barman's never does): a standby started
//! from it needs every WAL segment from the one the backup begins in. Without
//! `restore_command` the only place it can get them is the upstream, by
//! streaming — and a walsender cannot send what its server already removed
//! ("requested WAL segment ... has already been removed"). So before anything
//! is copied, the upstream is asked whether it still holds that segment.
//!
//! PostgreSQL removes (or recycles) old segments by segment number, whatever
//! the timeline in their names: the comparison is of log/segment numbers only,
//! so an upstream promoted to a later timeline since the backup is judged by
//! the same rule.

use tokio_postgres::Client;

use crate::config::ConfFile;
use crate::contract::policy::RecoveryConfig;
use crate::contract::source::Backup;
use crate::pg::client::error_text;
use crate::report::{self, Failure};
use crate::wal;

use super::checks::Checks;
use super::resolve::Context;

/// What the upstream said about the WAL a backup begins in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It still holds it: how that is known.
    Held(String),
    /// It no longer has it: the oldest segment it still has.
    Gone { oldest: String },
    /// It could not be determined: why.
    Unknown(String),
}

/// Where a backup begins, in the terms of the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin {
    /// The segment's file name, e.g. `000000010000000000000044`.
    pub wal: String,
    /// The LSN the backup started at (as given, `X/X`).
    pub lsn: String,
    pub timeline: u32,
}

/// The verdict from the names in the upstream's WAL directory: PostgreSQL
/// removes segments older than a cutoff by segment number, whatever their
/// timeline, so the oldest segment number present tells whether
/// `begin_seg` and all after it are still there. (Asking for the file
/// `pg_walfile_name(begin)` names would be wrong on an upstream promoted since
/// the backup: that name carries the upstream's timeline, not the one the
/// segment was written on.)
pub fn judge_listing(names: &[String], begin_seg: u64, seg_size: u64) -> Verdict {
    let oldest = names
        .iter()
        .filter_map(|n| wal::number_of(n, seg_size).map(|s| (s, n)))
        .min();
    match oldest {
        Some((s, name)) if s <= begin_seg => {
            Verdict::Held(format!("its WAL directory goes back to segment {name}"))
        }
        Some((_, name)) => Verdict::Gone {
            oldest: name.clone(),
        },
        None => Verdict::Unknown("the upstream's WAL directory lists no segment".into()),
    }
}

/// The upstream's WAL segment size in bytes (16 MiB when it cannot be read).
async fn seg_size(c: &Client) -> u64 {
    let row = c
        .query_opt(
            "SELECT setting::int8, coalesce(unit, '') FROM pg_settings WHERE name = 'wal_segment_size'",
            &[],
        )
        .await;
    let Ok(Some(row)) = row else {
        return wal::DEFAULT_SIZE;
    };
    wal::size_of_setting(row.get(0), &row.get::<_, String>(1))
}

/// Asks the upstream whether it still holds the WAL from `begin` on. `slot`
/// is the replication slot the standby will use, when it uses one. Every way
/// that works for the connecting user is tried: the standby's slot, the WAL
/// directory's listing (superuser, pg_monitor), any slot that retains it, the
/// last checkpoint.
pub async fn check(c: &Client, version: u32, slot: Option<&str>, begin: &Begin) -> Verdict {
    let seg_size = seg_size(c).await;
    let Some(begin_seg) = wal::number_of(&begin.wal, seg_size)
        .or_else(|| wal::parse_lsn(&begin.lsn).map(|l| l / seg_size))
    else {
        return Verdict::Unknown(format!(
            "the backup's begin WAL \"{}\" (LSN \"{}\") cannot be understood",
            begin.wal, begin.lsn
        ));
    };
    let seg_of = |lsn: &str| wal::parse_lsn(lsn).map(|l| l / seg_size);
    // Slots: (name, restart_lsn) of those that still reserve WAL (wal_status
    // is PostgreSQL 13+; `lost` and `unreserved` ones may lose it any time).
    let slots: Vec<(String, String)> = c
        .query(
            "SELECT slot_name::text, restart_lsn::text FROM pg_replication_slots s
              WHERE restart_lsn IS NOT NULL
                AND coalesce(to_jsonb(s)->>'wal_status', 'reserved') IN ('reserved', 'extended')
              ORDER BY restart_lsn",
            &[],
        )
        .await
        .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        .unwrap_or_default();
    if let Some(own) = slot {
        if let Some((_, lsn)) = slots
            .iter()
            .find(|(n, l)| n == own && seg_of(l).is_some_and(|s| s <= begin_seg))
        {
            return Verdict::Held(format!(
                "replication slot \"{own}\", which the standby will use, retains WAL from {lsn}"
            ));
        }
    }
    let listing = if version >= 100000 {
        "SELECT name FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'"
    } else {
        "SELECT f FROM pg_ls_dir('pg_xlog') f WHERE f ~ '^[0-9A-F]{24}$'"
    };
    let denied = match c.query(listing, &[]).await {
        Ok(rows) => {
            let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            return judge_listing(&names, begin_seg, seg_size);
        }
        Err(e) => error_text(&e),
    };
    if let Some((name, lsn)) = slots
        .iter()
        .find(|(_, l)| seg_of(l).is_some_and(|s| s <= begin_seg))
    {
        return Verdict::Held(format!(
            "replication slot \"{name}\" retains WAL from {lsn} (for now: the standby does not use that slot)"
        ));
    }
    // WAL after the last checkpoint's redo point is kept until the next one.
    if let Ok(row) = c
        .query_one("SELECT redo_lsn::text FROM pg_control_checkpoint()", &[])
        .await
    {
        let redo: String = row.get(0);
        if seg_of(&redo).is_some_and(|s| s <= begin_seg) {
            return Verdict::Held(format!(
                "it comes after the upstream's last checkpoint (redo at {redo}), whose WAL the upstream keeps until its next checkpoint"
            ));
        }
    }
    Verdict::Unknown(denied)
}

// What the clone phases ask of this module: whether the catch-up check
// applies, and the restore_command to suggest when it fails.

/// A clone from Barman without restore_command catches up by streaming only:
/// the upstream must still have the WAL from the backup's begin. Not for
/// Patroni: it writes restore_command from its own recovery_conf, which
/// pgclone cannot see, so a refusal here could be a false one.
pub fn needed(ctx: &Context<'_>, config: Option<&RecoveryConfig>) -> bool {
    ctx.node.barman_mode
        && !ctx.o.patroni
        && config.is_some_and(|c| {
            !c.settings
                .iter()
                .any(|s| s.name == "restore_command" && !s.value.trim().is_empty())
        })
}

/// The restore_command line that fetches WAL from the configured Barman:
/// with `-f` when the file holds settings wal-restore needs (barman_config,
/// ssh_options), else with the host and server on the command line.
fn suggested_restore_command(conf: &ConfFile) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "pgclone".into());
    let q = |s: &str| shell_words::quote(s).into_owned();
    let cmd = if conf.get("barman_config").is_some() || conf.get("ssh_options").is_some() {
        let path = std::path::absolute(&conf.path).unwrap_or_else(|_| conf.path.clone());
        format!(
            "{} -f {} wal-restore %f %p",
            q(&exe),
            q(&path.to_string_lossy())
        )
    } else {
        format!(
            "{} wal-restore {} {} %f %p",
            q(&exe),
            q(conf.get("barman_host").unwrap_or("HOST")),
            q(conf.get("barman_server").unwrap_or("SERVER"))
        )
    };
    format!("restore_command = '{}'", cmd.replace('\'', "\\'"))
}

pub fn warn_no_restore_command(conf: &ConfFile) {
    report::warning(
        "restore_command is not set: a Barman backup holds no WAL, so the standby can only catch up by streaming",
        Some(&format!(
            "add {} to \"{}\" and rerun with --replication-conf-only",
            suggested_restore_command(conf),
            conf.path.display()
        )),
    );
}

/// Asks the upstream whether it still has the WAL the backup begins in (see
/// [`catchup`]): a refusal when it does not, a warning when that cannot be told.
pub async fn check_catchup(checks: &mut Checks, ctx: &Context<'_>, b: &Backup) {
    let (conf, node, up) = (ctx.conf, &ctx.node, &ctx.up);
    let begin = Begin {
        wal: b.begin_wal.clone(),
        lsn: b.begin_lsn.clone(),
        timeline: b.timeline,
    };
    let verdict = match (&up.client, &up.info) {
        (Some(c), Some(u)) => check(c, u.version_num, node.slot_name.as_deref(), &begin).await,
        _ => Verdict::Unknown("the upstream could not be reached".into()),
    };
    let user = up.meta.params.get("user").unwrap_or("");
    match verdict {
        Verdict::Held(how) => checks.ok(format!(
            "the upstream still has the WAL from segment {}, where backup {} begins: {how}",
            b.begin_wal, b.id
        )),
        Verdict::Gone { oldest } => checks.fail_error(
            &Failure::new(format!(
                "the standby could not catch up: the upstream no longer has the WAL from the start of backup {}",
                b.id
            ))
            .detail(format!(
                "the backup begins in WAL segment {} (LSN {}, timeline {}); the oldest segment the upstream still has is {oldest}; \
                 restore_command is not set, so the standby could only get that WAL by streaming from the upstream",
                b.begin_wal, b.begin_lsn, b.timeline
            ))
            .hint(format!(
                "let the standby fetch the WAL from Barman: add this line to \"{}\"\n{}",
                conf.path.display(),
                suggested_restore_command(conf)
            ))
            .into(),
        ),
        Verdict::Unknown(why) => {
            let grant = if why.contains("permission denied") {
                format!(" (grant pg_monitor to \"{user}\", or connect as a superuser, to let pgclone check)")
            } else {
                String::new()
            };
            checks.warn(format!(
                "could not check whether the upstream still has WAL segment {}, where backup {} begins: {why}{grant}; \
                 without restore_command the standby cannot catch up if the upstream removed it",
                b.begin_wal, b.id
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_are_judged_by_segment_number_whatever_the_timeline() {
        let m16 = 16 << 20;
        let names = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Promoted since the backup (timeline 1, segment 3): the old timeline's
        // segments and the new one's.
        let promoted = names(&[
            "000000010000000000000002",
            "000000010000000000000003",
            "000000020000000000000005",
            "000000020000000000000006",
        ]);
        assert!(matches!(
            judge_listing(&promoted, 3, m16),
            Verdict::Held(h) if h.contains("000000010000000000000002")
        ));
        // Only the new timeline's files remain (the switch segment is copied
        // to it): still there from segment 5 on, not from 3.
        let later = names(&["000000020000000000000005", "000000020000000000000006"]);
        assert!(matches!(judge_listing(&later, 5, m16), Verdict::Held(_)));
        assert_eq!(
            judge_listing(&later, 3, m16),
            Verdict::Gone {
                oldest: "000000020000000000000005".into()
            }
        );
        // Recycled segments carry future names; history files do not count.
        let recycled = names(&["00000001000000000000000A", "00000002.history"]);
        assert!(matches!(
            judge_listing(&recycled, 3, m16),
            Verdict::Gone { .. }
        ));
        assert!(matches!(judge_listing(&[], 3, m16), Verdict::Unknown(_)));
    }
}

/// WAL names come from the upstream's directory listing.
#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(fuzz::config())]

        /// Any text, names with multibyte characters included: a verdict,
        /// never a panic.
        #[test]
        fn any_listing_is_judged(
            s in prop_oneof![fuzz::mutated("000000010000000000000044"), fuzz::any_text()],
            bits in 20u32..=30,
        ) {
            let _ = judge_listing(std::slice::from_ref(&s), 0x44, 1 << bits);
        }
    }
}
