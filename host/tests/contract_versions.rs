//! Contract versions: a plugin built against the released contract
//! `pgclone:plugin@1.0.0` (the frozen `wit/1.0.0/`, test component
//! `tests/components/contract-1-0`) keeps loading on this 1.3.0 host, is shown
//! as a 1.0.0 plugin, and clones a real PostgreSQL 15 primary into a standby
//! that starts and streams; one built against 1.2.0 answers through the
//! current types; the built-in plugins target 1.3.0.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pgclone::config::ConfFile;
use pgclone::contract::policy::{RecoveryFacts, SettingsFile, SignalFile};
use pgclone::contract::Capability;
use pgclone::environment::HostEnv;
use pgclone::plugin::catalog::{self, sha256_hex};
use pgclone::plugin::{Candidate, Plugin, Runtime};
use support::*;

const WAIT: Duration = Duration::from_secs(90);

fn guest(name: &str) -> std::path::PathBuf {
    support::component(name)
}

#[test]
fn contract_versions_are_read_from_the_components() {
    let rt = Runtime::new(None).unwrap();
    let bytes = std::fs::read(guest("test_contract_1_0")).unwrap();
    let cand = Candidate::from_file(
        "contract-1-0",
        guest("test_contract_1_0"),
        Some(sha256_hex(&bytes)),
    );
    let p = Plugin::load(&rt, &cand).unwrap();
    assert_eq!(p.contract.version.to_string(), "1.0.0");
    assert_eq!(p.info.name, "contract-1-0");
    assert_eq!(p.caps.declared.len(), 1);
    for builtin in ["pgclone_source_barman", "pgclone_recovery_standard"] {
        let bytes = std::fs::read(guest(builtin)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("pgclone:plugin/types@1.3.0"), "{builtin}");
    }
}

/// A source built against the frozen 1.2.0 loads as one, its describe and
/// `locate-wal-archive` answers arrive converted (no `store`: 1.2.0 has
/// none), and its host calls are served by the current host.
#[test]
fn a_plugin_built_against_1_2_0_answers_through_the_current_types() {
    use pgclone::contract::source::{BackupSource, WalLayout};
    let rt = Runtime::new(None).unwrap();
    let bytes = std::fs::read(guest("test_contract_1_2")).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("pgclone:plugin/host@1.2.0"));
    let mut cand = Candidate::from_file(
        "contract-1-2",
        guest("test_contract_1_2"),
        Some(sha256_hex(&bytes)),
    );
    cand.grants = Some(vec![
        "remote-run:barman:tar".parse().unwrap(),
        "remote-run:barman:barman".parse().unwrap(),
        "read-config:contract_wals_directory".parse().unwrap(),
        "read-config:barman_server".parse().unwrap(),
    ]);
    let p = Plugin::load(&rt, &cand).unwrap();
    assert_eq!(p.contract.version.to_string(), "1.2.0");
    assert_eq!(p.info.name, "contract-1-2");
    assert_eq!(p.caps.declared.len(), 4);
    let env = HostEnv {
        config: ConfFile::parse(
            Path::new("c"),
            "contract_wals_directory=/var/lib/barman/pg/wals
barman_server=pg
",
        )
        .unwrap(),
        ..Default::default()
    };
    let mut session = p.session(&rt, Arc::new(env)).unwrap();
    let a = session.wal_archive().unwrap();
    let dir = a.directory.expect("a directory");
    assert_eq!(dir.path, "/var/lib/barman/pg/wals");
    assert_eq!(dir.layout, WalLayout::ByLog);
    assert_eq!(a.fetch.expect("a fetch command").argv[2], "pg");
    assert_eq!(a.store, None);
}

#[test]
fn a_plugin_built_against_1_0_0_still_clones() {
    let sc = Scratch::new("contract10");
    let mut primary = Pg::init(&sc, "primary");
    primary.start();
    primary.sql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i");

    let plugins = sc.path("plugins.toml");
    let cfg = sc.write(
        "pgclone.conf",
        &format!(
            "node_id=2\nnode_name=node2\nbackup_source=contract-1-0\nplugins_config='{}'\n",
            plugins.display()
        ),
    );
    let wasm = sc.path("contract-1-0.wasm");
    std::fs::copy(guest("test_contract_1_0"), &wasm).unwrap();
    let out = pgclone(
        &sc,
        &[
            "-f",
            cfg.to_str().unwrap(),
            "plugin",
            "install",
            wasm.to_str().unwrap(),
            "--grant-all",
        ],
        &[],
    );
    assert!(out.status.success(), "{}{}", stderr(&out), stdout(&out));
    let out = pgclone(&sc, &["-f", cfg.to_str().unwrap(), "plugin", "list"], &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    assert!(text.contains("contract-1-0"), "{text}");

    let target = sc.path("standby");
    let out = standby_clone(&sc, &cfg, &primary, &target, &[], &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("contract-1-0: cloning PostgreSQL 15"), "{err}");
    assert!(
        err.contains("standby clone (from backup source \"contract-1-0\") complete"),
        "{err}"
    );
    // Every step of the 1.0.0 plan ran.
    assert_eq!(
        std::fs::read_to_string(target.join("contract-1-0/made-by")).unwrap(),
        "a pgclone:plugin@1.0.0 plan\n"
    );
    assert!(target.join("standby.signal").exists());

    let mut st = Pg::existing(&sc, target);
    st.start();
    st.wait_for("SELECT count(*) FROM t", "1000", WAIT);
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    primary.sql("INSERT INTO t VALUES (1001)");
    st.wait_for("SELECT count(*) FROM t", "1001", WAIT);
}

/// A site policy built against 1.0.0 chained after the built-in (1.2.0)
/// standard policy: its host calls and its answer cross the conversion.
#[test]
fn a_policy_built_against_1_0_0_chains_after_the_standard_policy() {
    let rt = Runtime::new(None).unwrap();
    let path = guest("test_contract_1_0_policy");
    let bytes = std::fs::read(&path).unwrap();
    let mut cand = Candidate::from_file("contract-1-0-policy", path, Some(sha256_hex(&bytes)));
    cand.grants = Some(vec![Capability::ReadConfig(
        "recovery_min_apply_delay".into(),
    )]);
    let site = Plugin::load(&rt, &cand).unwrap();
    assert_eq!(site.contract.version.to_string(), "1.0.0");
    let standard = catalog::candidates(&Default::default())
        .into_iter()
        .find(|c| c.name == "recovery-standard")
        .unwrap();
    let standard = Plugin::load(&rt, &standard).unwrap();
    assert_eq!(standard.contract.version.to_string(), "1.3.0");
    let env = Arc::new(HostEnv {
        config: ConfFile::parse(Path::new("t.conf"), "recovery_min_apply_delay='5min'\n").unwrap(),
        ..Default::default()
    });
    let facts = RecoveryFacts {
        server_version: 150000,
        node_name: "node2".into(),
        upstream: vec![pgclone::contract::source::ConnParam {
            key: "host".into(),
            value: "primary".into(),
        }],
        replication_user: None,
        slot_name: None,
        restore_command: Some("pgclone wal-restore b pg %f %p".into()),
        recovery_min_apply_delay: None,
        archive_cleanup_command: None,
        passfile: None,
        password: None,
    };
    let bind = |plugin| pgclone::plugin::Bound {
        plugin,
        rt: &rt,
        env: env.clone(),
    };
    let (standard, site) = (bind(&standard), bind(&site));
    let config = pgclone::recovery::chain::decide(&[&standard, &site], &facts).unwrap();
    assert_eq!(config.file, SettingsFile::PostgresqlAutoConf);
    assert_eq!(config.signal_files, vec![SignalFile::Standby]);
    let get = |n: &str| {
        config
            .settings
            .iter()
            .find(|s| s.name == n)
            .map(|s| s.value.clone())
    };
    assert_eq!(get("recovery_min_apply_delay").as_deref(), Some("5min"));
    assert_eq!(
        get("restore_command").as_deref(),
        Some("pgclone wal-restore b pg %f %p")
    );
    assert!(get("primary_conninfo")
        .unwrap()
        .contains("application_name=node2"));
}
