//! Conformance cases for a recovery policy, chained after the standard one:
//! PostgreSQL 11 to 17, every optional fact for several node names, and
//! malicious facts.

use std::sync::Arc;

use super::{judge, param, Report, Verdict};
use crate::contract::policy::{PolicyPlugin, RecoveryFacts};
use crate::contract::PluginFailure;
use crate::environment::HostEnv;
use crate::plugin::catalog;
use crate::plugin::{Bound, Plugin, Runtime};

/// Valid facts with every optional one set, for node `node`: a policy that
/// adds a setting the standard policy already set is caught here.
fn full_facts(version: u32, node: &str) -> RecoveryFacts {
    RecoveryFacts {
        node_name: node.into(),
        replication_user: Some("repl".into()),
        restore_command: Some("pgclone wal-restore backup main %f %p".into()),
        recovery_min_apply_delay: Some("5min".into()),
        archive_cleanup_command: Some("pg_archivecleanup /srv/archive %r".into()),
        passfile: Some("/var/lib/postgresql/.pgpass".into()),
        password: Some("secret".into()),
        ..facts(version, false)
    }
}

fn facts(version: u32, hostile: bool) -> RecoveryFacts {
    if hostile {
        return RecoveryFacts {
            server_version: version,
            node_name: "n'\n; archive_command = 'rm -rf /'".into(),
            upstream: Vec::new(),
            replication_user: Some("\\'".into()),
            slot_name: Some("".into()),
            restore_command: Some("cp %f %p\nrecovery_target = 'immediate'".into()),
            recovery_min_apply_delay: Some("forever".into()),
            archive_cleanup_command: None,
            passfile: Some("../../etc/shadow".into()),
            password: Some("secret".into()),
        };
    }
    RecoveryFacts {
        server_version: version,
        node_name: "node2".into(),
        upstream: vec![
            param("host", "primary.example"),
            param("port", "5432"),
            param("user", "repmgr"),
            param("sslmode", "verify-full"),
        ],
        replication_user: None,
        slot_name: Some("repmgr_slot_2".into()),
        restore_command: None,
        recovery_min_apply_delay: None,
        archive_cleanup_command: None,
        passfile: None,
        password: None,
    }
}

pub fn cases(rt: &Runtime, env: &Arc<HostEnv>, p: &Plugin, report: &mut Report) {
    // Chained after the standard policy, as in a clone.
    let standard = catalog::candidates(&Default::default())
        .into_iter()
        .find(|c| c.name == "recovery-standard")
        .and_then(|c| Plugin::load(rt, &c).ok());
    let mut cases: Vec<(String, RecoveryFacts)> = Vec::new();
    for version in [110000, 120000, 130000, 140000, 150004, 160000, 170000] {
        cases.push((
            format!("PostgreSQL {}", version / 10000),
            facts(version, false),
        ));
    }
    // Every optional fact set, and node names of the kinds policies match on.
    for node in ["node2", "dr-1", "report-1", "standby-east-1", "n"] {
        for version in [110000, 150004] {
            cases.push((
                format!("PostgreSQL {}, all facts, node {node}", version / 10000),
                full_facts(version, node),
            ));
        }
    }
    cases.push(("PostgreSQL 15, hostile facts".into(), facts(150004, true)));
    cases.push(("PostgreSQL 0, hostile facts".into(), facts(0, true)));
    for (label, f) in cases {
        let case = format!("recovery-settings ({label})");
        let bind = |plugin| Bound {
            plugin,
            rt,
            env: env.clone(),
        };
        let (standard, tested) = (standard.as_ref().map(bind), bind(p));
        let mut chain: Vec<&dyn PolicyPlugin> = standard.iter().map(|b| b as _).collect();
        chain.push(&tested);
        // The standard policy may refuse hostile facts itself: then the plugin
        // is called on its own, with an empty configuration.
        let r = match crate::recovery::chain::decide(&chain, &f) {
            Err(PluginFailure::Returned { plugin, .. }) if plugin != p.name => {
                crate::recovery::chain::decide(&[&tested], &f)
            }
            other => other,
        };
        if let Some(c) = judge(report, &case, r) {
            report.add(
                Verdict::Ok,
                &case,
                format!(
                    "{}, accepted",
                    crate::report::count(c.settings.len(), "setting", "settings")
                ),
            );
        }
    }
}
