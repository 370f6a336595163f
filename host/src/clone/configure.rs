//! Phase 5: the recovery configuration, written last (after a verified
//! copy), and what the operator is told to do next.

use crate::contract::policy::{RecoveryConfig, SettingsFile};
use crate::recovery::{self, render::render, write::read_existing, RenderedConfig};
use crate::report;

use super::catchup;
use super::plan::Plan;
use super::resolve::Context;
use super::target;

/// Writes the policies' configuration over what the copy brought along;
/// returns what was written and removed.
pub fn write(ctx: &Context<'_>, plan: &Plan) -> anyhow::Result<RenderedConfig> {
    let dir = &ctx.target.real;
    let existing = read_existing(dir, "postgresql.auto.conf")?;
    let rendered = render(&plan.recovery, existing.as_deref());
    recovery::apply(dir, &rendered)?;
    for (name, _) in &rendered.files {
        report::info(&format!("wrote \"{}/{name}\"", dir.display()));
    }
    Ok(rendered)
}

/// Patroni writes its own configuration: the copy's is removed; returns what
/// was written and removed.
pub fn clear(ctx: &Context<'_>, plan: &Plan) -> anyhow::Result<RenderedConfig> {
    let dir = &ctx.target.real;
    let existing = read_existing(dir, "postgresql.auto.conf")?;
    let rendered = cleared_recovery(plan.server_version, existing.as_deref());
    recovery::apply(dir, &rendered)?;
    if !rendered.files.is_empty() {
        report::info(&format!(
            "recovery settings copied from the source were removed from \"{}/postgresql.auto.conf\"",
            dir.display()
        ));
    }
    report::info("no recovery configuration written: Patroni writes its own");
    Ok(rendered)
}

/// How the copy was made, worded from the source's name: `from Barman`,
/// `from backup source "NAME"`; a first-party source of the live upstream's
/// is a tool the clone used (`using pg_basebackup`; `tool` is the verb).
fn made(ctx: &Context<'_>, tool: &str) -> String {
    let Some(s) = ctx.source.as_deref() else {
        return format!("from backup source \"{}\"", ctx.node.source);
    };
    match s.display_name() {
        Some(n) if s.needs_upstream() => format!("{tool} {n}"),
        _ => format!("from {}", s.source_name()),
    }
}

/// What a successful clone tells the operator.
pub fn announce(ctx: &Context<'_>, plan: &Plan) {
    let (o, data_dir) = (ctx.o, &ctx.node.data_dir);
    if o.patroni {
        report::notice(&format!("replica created {}", made(ctx, "with")));
        report::hint("Patroni writes the recovery configuration and starts the server");
        return;
    }
    if o.replication_conf_only {
        report::notice(&format!(
            "replication configuration written to \"{}\"",
            data_dir.display()
        ));
        if target::running_postmaster(&ctx.target.real).is_some() {
            report::hint(if plan.server_version >= 130000 {
                "the standby runs: a reload (pg_ctl reload) applies a new primary_conninfo or primary_slot_name; other changes need a restart"
            } else {
                "the standby runs: restart it (pg_ctl restart) to apply the new configuration"
            });
        }
    } else {
        report::notice(&format!("standby clone ({}) complete", made(ctx, "using")));
        report::notice("you can now start your PostgreSQL server");
        match same_port(ctx, data_dir) {
            Some((port, free)) => report::warning(
                &format!(
                    "the copied configuration sets port {port}, where the upstream listens on this host: \
                     started as it is, the standby would fail (\"could not bind\" / \"lock file already exists\")"
                ),
                Some(&format!(
                    "give it a port of its own, for example: pg_ctl -D {} -o '-p {free}' start \
                     (port {free} is free now), or set port in \"{}\"",
                    data_dir.display(),
                    data_dir.join("postgresql.auto.conf").display()
                )),
            ),
            None => report::hint(&format!(
                "for example: pg_ctl -D {} start",
                data_dir.display()
            )),
        }
        // A repmgr configuration (it has repmgr's own conninfo key): the node
        // is not part of the repmgr cluster until it is registered.
        if ctx.conf.get("conninfo").is_some() {
            report::hint(
                "after starting the server, you need to register this standby with \"repmgr standby register\"",
            );
        }
    }
    if plan.no_restore_command {
        catchup::warn_no_restore_command(ctx.conf);
    }
}

/// When the upstream runs on this host and the copy's configuration sets
/// its port: that port, and a free one for the standby.
fn same_port(ctx: &Context<'_>, data_dir: &std::path::Path) -> Option<(i32, u16)> {
    let upstream = ctx.up.info.as_ref()?.port;
    if !ctx.up.is_local() || copied_port(data_dir)? != upstream {
        return None;
    }
    let free = (upstream as u16 + 1..u16::MAX)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())?;
    Some((upstream, free))
}

/// The port the copy's own configuration files set (postgresql.auto.conf
/// over postgresql.conf; 5432 when neither does); none without a
/// postgresql.conf (its configuration lives elsewhere, as on Debian).
fn copied_port(data_dir: &std::path::Path) -> Option<i32> {
    let set = |file: &str| -> Option<i32> {
        let text = std::fs::read_to_string(data_dir.join(file)).ok()?;
        text.lines()
            .filter_map(|l| {
                let l = l.split('#').next()?.trim();
                let (k, v) = l.split_once('=').or_else(|| l.split_once(' '))?;
                (k.trim() == "port").then(|| v.trim().trim_matches('\'').parse().ok())?
            })
            .next_back()
    };
    if !data_dir.join("postgresql.conf").is_file() {
        return None;
    }
    Some(
        set("postgresql.auto.conf")
            .or_else(|| set("postgresql.conf"))
            .unwrap_or(5432),
    )
}

/// For Patroni, which writes its own recovery settings after the copy: none
/// are written, and whatever the copy brought along is removed (signal files,
/// recovery.conf, recovery settings the source set with ALTER SYSTEM such as
/// primary_conninfo or recovery_target_*), so nothing stale is left behind.
fn cleared_recovery(version: u32, existing_auto_conf: Option<&str>) -> RenderedConfig {
    let remove = ["recovery.conf", "standby.signal", "recovery.signal"]
        .map(String::from)
        .to_vec();
    let mut files = Vec::new();
    if let (Some(old), true) = (existing_auto_conf, version >= 120000) {
        let none = RecoveryConfig {
            file: SettingsFile::PostgresqlAutoConf,
            settings: Vec::new(),
            signal_files: Vec::new(),
        };
        let cleaned = render(&none, Some(old))
            .files
            .into_iter()
            .find(|(name, _)| name == "postgresql.auto.conf");
        if let Some((name, text)) = cleaned.filter(|(_, text)| text != old) {
            files.push((name, text));
        }
    }
    RenderedConfig { files, remove }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patroni_replicas_get_no_recovery_configuration_and_keep_nothing_stale() {
        let old = "# Do not edit this file manually!\n\
                   work_mem = '8MB'\n\
                   primary_conninfo = 'host=stale'\n\
                   recovery_target_time = '2020-01-01'\n";
        let r = cleared_recovery(150000, Some(old));
        assert_eq!(r.files.len(), 1);
        let (name, auto) = &r.files[0];
        assert_eq!(name, "postgresql.auto.conf");
        assert!(auto.contains("work_mem = '8MB'"), "{auto}");
        assert!(!auto.contains("primary_conninfo") && !auto.contains("recovery_target"));
        for f in ["standby.signal", "recovery.signal", "recovery.conf"] {
            assert!(r.remove.contains(&f.to_string()), "{f}");
        }
        // Nothing to clean: postgresql.auto.conf is left as it is.
        assert!(cleared_recovery(150000, Some("work_mem = '8MB'\n"))
            .files
            .is_empty());
        assert!(cleared_recovery(150000, None).files.is_empty());
        // Before 12 there is only recovery.conf to remove.
        assert!(cleared_recovery(110000, Some(old)).files.is_empty());
    }

    #[test]
    fn the_copied_port_is_read_as_postgresql_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // No postgresql.conf: the configuration lives elsewhere.
        assert_eq!(copied_port(d), None);
        std::fs::write(
            d.join("postgresql.conf"),
            "#port = 5433\nmax_connections = 10\n",
        )
        .unwrap();
        assert_eq!(copied_port(d), Some(5432));
        std::fs::write(d.join("postgresql.conf"), "port = 5433 # here\nport=5434\n").unwrap();
        assert_eq!(copied_port(d), Some(5434));
        std::fs::write(d.join("postgresql.auto.conf"), "port = '6000'\n").unwrap();
        assert_eq!(copied_port(d), Some(6000));
    }
}
