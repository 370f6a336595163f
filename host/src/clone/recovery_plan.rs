//! Phase 3b: the recovery configuration. The facts the policies decide from,
//! the configuration's own values read as PostgreSQL will read them, and the
//! policies' decision: the standard policy, then the site's.

use crate::contract::policy::{RecoveryConfig, RecoveryFacts};
use crate::recovery;
use crate::report;

use super::checks::Checks;
use super::resolve::Context;
use super::source_plan::params;

/// Decides the recovery configuration for a standby of `server_version`;
/// `None` when a check failed (recorded in `checks`).
pub fn decide(
    ctx: &Context<'_>,
    checks: &mut Checks,
    server_version: u32,
) -> Option<RecoveryConfig> {
    let facts = facts(ctx, server_version);
    if server_version == 0 {
        checks.fail(
            "the server version is unknown: neither the upstream nor a backup could be read".into(),
        );
        return None;
    }
    if ctx.o.patroni {
        // Patroni writes its own: nothing is decided.
        return Some(RecoveryConfig {
            file: recovery::chain::settings_file(server_version),
            settings: Vec::new(),
            signal_files: Vec::new(),
        });
    }
    check_config_values(checks, ctx, server_version);
    let policies: Vec<_> = ctx.policies.iter().map(|p| p.as_ref()).collect();
    match recovery::decide(&policies, &facts) {
        Ok(c) => Some(c),
        Err(e) => {
            checks.fail(e.to_string());
            None
        }
    }
}

/// What the policies decide from. A dry run shows what they decided, so it
/// gives them no secret to show: the password and the key's passphrase are
/// masked.
fn facts(ctx: &Context<'_>, server_version: u32) -> RecoveryFacts {
    let (conf, node) = (ctx.conf, &ctx.node);
    let password = match (node.include_password, std::env::var("PGPASSWORD")) {
        (true, Ok(p)) => Some(p),
        (true, Err(_)) => {
            report::warning(
                "use_primary_conninfo_password is on but PGPASSWORD is not set",
                Some("the password is only taken from PGPASSWORD, never from a password file"),
            );
            None
        }
        (false, _) => None,
    };
    let mut facts = RecoveryFacts {
        server_version,
        node_name: node.node_name.clone(),
        upstream: params(&ctx.up.primary_conninfo),
        replication_user: ctx.up.replication_user.clone(),
        slot_name: node.slot_name.clone(),
        restore_command: conf.get("restore_command").map(str::to_string),
        recovery_min_apply_delay: conf.get("recovery_min_apply_delay").map(str::to_string),
        archive_cleanup_command: conf.get("archive_cleanup_command").map(str::to_string),
        passfile: node.passfile.clone(),
        password,
    };
    if ctx.o.dry_run {
        facts.password = facts.password.map(|_| "********".to_string());
        for p in facts.upstream.iter_mut().filter(|p| p.key == "sslpassword") {
            p.value = "********".into();
        }
    }
    facts
}

/// The configuration's values that end up in the standby's settings, read
/// as PostgreSQL will read them: a standby that cannot start is a failed clone.
fn check_config_values(checks: &mut Checks, ctx: &Context<'_>, version: u32) {
    let conf = ctx.conf;
    // (configuration key, the parameter it becomes, value)
    let mut values: Vec<(&str, &str, &str)> = [
        "recovery_min_apply_delay",
        "restore_command",
        "archive_cleanup_command",
    ]
    .into_iter()
    .filter_map(|k| conf.get(k).map(|v| (k, k, v)))
    .collect();
    if let Some(slot) = &ctx.node.slot_name {
        values.push((
            "replication_slot_name (or node_id)",
            "primary_slot_name",
            slot,
        ));
    }
    for (key, param, value) in values {
        if let Err(why) = recovery::gucs::check_value(param, value, version) {
            checks.fail_hint(
                format!("{why} (from \"{}\")", conf.path.display()),
                format!("fix {key} in the configuration file; PostgreSQL {} would not start the standby with it", version / 10000),
            );
        }
    }
}
