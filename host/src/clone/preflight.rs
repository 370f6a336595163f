//! Phase 2: the checks on the upstream, the replication connection and the
//! target directory. Nothing is changed; every failure is collected so that
//! the operator sees them all at once.

use crate::pg::client;
use crate::report::{self, Failure};

use super::checks::Checks;
use super::connect::Replication;
use super::leftover::{self, Leftover};
use super::resolve::Context;
use super::target::{self, TargetState};
use super::upstream;

/// Runs the checks that need no plan.
pub async fn check(ctx: &Context<'_>, checks: &mut Checks) -> anyhow::Result<()> {
    checks.area("upstream");
    check_upstream(checks, ctx).await?;
    checks.area("replication");
    check_replication(checks, ctx);
    checks.area("target");
    if ctx.o.replication_conf_only {
        check_existing_standby(checks, ctx)
    } else {
        check_target(checks, ctx);
        Ok(())
    }
}

/// The server-side checks.
async fn check_upstream(checks: &mut Checks, ctx: &Context<'_>) -> anyhow::Result<()> {
    let (up, node, o) = (&ctx.up, &ctx.node, ctx.o);
    let Some(u) = &up.info else { return Ok(()) };
    checks.ok(format!(
        "upstream is PostgreSQL {} ({}){}",
        u.version,
        client::describe(&up.meta),
        if u.in_recovery {
            ", a standby: cascading"
        } else {
            ""
        }
    ));
    if u.version_num < 90600 {
        checks.fail(format!(
            "PostgreSQL {} is not supported (9.6 or later)",
            u.version
        ));
    }
    if !matches!(u.wal_level.as_str(), "replica" | "logical" | "hot_standby") {
        checks.fail_hint(
            format!("wal_level is \"{}\" on the upstream", u.wal_level),
            "set wal_level = replica on the upstream and restart it",
        );
    } else {
        checks.ok(format!("wal_level = {}", u.wal_level));
    }
    if !o.replication_conf_only {
        // pg_basebackup -X stream takes two walsenders while it runs; a clone
        // from Barman needs one, for the standby.
        let needed = if ctx.from_backup { 1 } else { 2 };
        let free = u.max_wal_senders - u.walsenders_in_use;
        let what = format!(
            "max_wal_senders = {}, {} in use, {needed} needed",
            u.max_wal_senders, u.walsenders_in_use
        );
        if free < needed {
            checks.fail_hint(what, "raise max_wal_senders on the upstream and restart it");
        } else {
            checks.ok(what);
        }
    }
    if let (Some(slot), Some(c)) = (&node.slot_name, &up.client) {
        match upstream::slot_state(c, slot).await? {
            Some(true) => checks.fail_hint(
                format!("replication slot \"{slot}\" exists on the upstream and is active"),
                "another standby uses it: set a different replication_slot_name or node_id",
            ),
            Some(false) if left_slot(ctx, slot) => checks.ok(format!(
                "replication slot \"{slot}\" was made by an interrupted clone and is inactive: it will be dropped and created again"
            )),
            Some(false) => checks.ok(format!(
                "replication slot \"{slot}\" exists and is inactive: it will be used"
            )),
            None if u.max_replication_slots - u.slots_in_use < 1 => checks.fail_hint(
                format!(
                    "max_replication_slots = {}, {} in use: no slot free for \"{slot}\"",
                    u.max_replication_slots, u.slots_in_use
                ),
                "raise max_replication_slots on the upstream, or drop unused slots",
            ),
            None => checks.ok(format!("replication slot \"{slot}\" will be created")),
        }
    }
    if !u.hot_standby {
        checks.warn(
            "hot_standby is off on the upstream: the standby will not accept read-only queries"
                .into(),
        );
    }
    if !u.data_checksums && !u.wal_log_hints {
        checks.warn(
            "neither data checksums nor wal_log_hints are on: pg_rewind will not be able to rejoin this node after a failover"
                .into(),
        );
    }
    Ok(())
}

/// A clone from a backup does without the replication connection (the
/// standby will need it); Patroni gave the leader to clone from: it must answer.
fn check_replication(checks: &mut Checks, ctx: &Context<'_>) {
    match &ctx.replication {
        Replication::NotTried => {}
        Replication::Works(id) => checks.ok(format!(
            "replication connection as \"{}\" works (system identifier {}, timeline {})",
            ctx.repl.params.get("user").unwrap_or(""),
            id.system_identifier,
            id.timeline
        )),
        Replication::Fails(e) if ctx.from_backup && !ctx.o.patroni => {
            let text = report::render(e).replacen("ERROR: ", "", 1);
            checks.warn(format!(
                "{} (the standby cannot stream until this is fixed)",
                text.lines().next().unwrap_or("")
            ));
        }
        Replication::Fails(e) => checks.fail_error(e),
    }
}

/// A new copy: the directory must be missing, empty, or given up with -F.
fn check_target(checks: &mut Checks, ctx: &Context<'_>) {
    let (target, dir) = (&ctx.target, ctx.node.data_dir.display());
    match leftover::find(&target.real) {
        Err(f) => return checks.fail_error_first(&f.into()),
        Ok(Some(l)) => match interrupted(ctx, &l) {
            Ok(said) => checks.ok(said),
            // -F repairs it: an ordinary failure, in its place.
            Err(f) => return checks.fail_error(&f.into()),
        },
        Ok(None) => {}
    }
    match target.check_usable(ctx.o.force) {
        Ok(()) => checks.ok(match &target.state {
            TargetState::Missing => {
                format!("\"{dir}\" does not exist: it will be created (mode 0700)")
            }
            TargetState::Empty => format!("\"{dir}\" is empty"),
            TargetState::Populated { .. } => format!("\"{dir}\" is not empty: -F given"),
        }),
        // A running server is refused whatever -F says; a populated
        // directory is an ordinary failure, in its place.
        Err(e) if target::running_postmaster(&target.real).is_some() => checks.fail_error_first(&e),
        Err(e) => checks.fail_error(&e),
    }
}

/// Whether `slot` is the one an interrupted clone into this target made.
fn left_slot(ctx: &Context<'_>, slot: &str) -> bool {
    !ctx.o.replication_conf_only
        && leftover::find(&ctx.target.real)
            .ok()
            .flatten()
            .is_some_and(|l| l.slot.as_deref() == Some(slot))
}

/// What an interrupted clone left: said, and refused without `-F` where it
/// holds data (the incomplete copy, the staging directory).
fn interrupted(ctx: &Context<'_>, l: &Leftover) -> Result<String, Failure> {
    let (target, dir) = (&ctx.target, ctx.node.data_dir.display());
    let copy = matches!(target.state, TargetState::Populated { .. }) && l.journal.is_some();
    let mut left = Vec::new();
    if copy {
        left.push(format!("an incomplete copy in \"{dir}\""));
    }
    if let Some(s) = &l.staging {
        left.push(format!("the staging directory \"{}\"", s.display()));
    }
    if let Some(slot) = &l.slot {
        left.push(format!("replication slot \"{slot}\" on the upstream"));
    }
    let what = if left.is_empty() {
        "nothing to remove".to_string()
    } else {
        left.join(", ")
    };
    if !ctx.o.force && (copy || l.staging.is_some()) {
        let subject = match &l.staging {
            Some(s) if !copy => format!(
                "the staging directory \"{}\" was left by {}",
                s.display(),
                l.who()
            ),
            _ => format!("\"{dir}\" holds what {} left", l.who()),
        };
        return Err(Failure::new(subject)
            .detail(format!("left: {what}"))
            .hint("run the clone again with -F: it removes what that clone left and makes its replication slot again"));
    }
    Ok(format!("{} left {what}: it will be repaired", l.who()))
}

/// --replication-conf-only: the directory must be a data directory of the
/// upstream's system, and not a running primary.
fn check_existing_standby(checks: &mut Checks, ctx: &Context<'_>) -> anyhow::Result<()> {
    let (target, data_dir) = (&ctx.target, &ctx.node.data_dir);
    let Some(v) = target.pg_version() else {
        return Err(Failure::new(format!(
            "\"{}\" is not a PostgreSQL data directory",
            data_dir.display()
        ))
        .detail("--replication-conf-only writes the configuration into an existing data directory")
        .hint("restore the data directory first, or clone without --replication-conf-only")
        .into());
    };
    if let Some(pid) = target::running_postmaster(&target.real) {
        // Reconfiguring a running standby is what --replication-conf-only
        // is for; making a running primary a standby at its next start is not.
        if !target::is_standby(&target.real) {
            return Err(Failure::new(format!(
                "refusing to write a standby configuration into \"{}\"",
                data_dir.display()
            ))
            .detail(format!(
                "a PostgreSQL server (PID {pid}) runs there and it is not a standby (no standby.signal or recovery.conf)"
            ))
            .hint("--replication-conf-only reconfigures a standby; check -D and data_directory")
            .into());
        }
        report::warning(
            &format!(
                "a standby (PID {pid}) is running in \"{}\"",
                data_dir.display()
            ),
            Some("the new configuration takes effect at its next start or reload"),
        );
    }
    if let (Some(id), Some(own)) = (
        ctx.replication.identity(),
        target::system_identifier(&target.real),
    ) {
        if id.system_identifier != own {
            checks.fail_hint(
                format!(
                    "\"{}\" belongs to another database system (system identifier {own}, the upstream's is {})",
                    data_dir.display(),
                    id.system_identifier
                ),
                "a standby must be a copy of its upstream: clone it again without --replication-conf-only",
            );
        }
    }
    checks.ok(format!(
        "\"{}\" is a PostgreSQL {v} data directory",
        data_dir.display()
    ));
    Ok(())
}
