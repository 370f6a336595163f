//! The recovery.conf path: a real PostgreSQL 11 primary (embedded-postgres
//! binaries, fetched by scripts/test.sh), cloned with Debian's pg_basebackup 15;
//! the standby starts from pgclone's recovery.conf and streams. The `versions`
//! module runs the same kind of checks on PostgreSQL 12 to 18.

use crate::support;

use std::path::PathBuf;
use std::time::Duration;

use support::*;

fn pg11_bindir() -> PathBuf {
    let dir = std::env::var_os("PGCLONE_TEST_PG11_BINDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/test-deps/pg11/package/native/bin")
        });
    assert!(
        dir.join("postgres").exists(),
        "PostgreSQL 11 binaries not found in {}: run scripts/test.sh, which fetches them",
        dir.display()
    );
    dir
}

#[test]
fn a_postgresql_11_standby_gets_recovery_conf_and_streams() {
    let bindir = pg11_bindir();
    let sc = Scratch::new("pg11");
    let mut p = Pg::init_with(&sc, "primary", &bindir, &[]);
    p.append_conf("wal_keep_segments = 32\nhot_standby = on\n");
    p.start();
    p.sql("CREATE TABLE t(i int); INSERT INTO t SELECT generate_series(1, 100)");
    let cfg = sc.write(
        "pgclone.conf",
        "node_id=2\nnode_name=node2\nuse_replication_slots=true\n",
    );
    let target = sc.path("standby");
    let out = standby_clone(&sc, &cfg, &p, &target, &["--fast-checkpoint"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("upstream is PostgreSQL 11.22"),
        "{}",
        stderr(&out)
    );
    let rc = std::fs::read_to_string(target.join("recovery.conf")).unwrap();
    assert!(rc.contains("standby_mode = 'on'"), "{rc}");
    assert!(rc.contains("application_name=node2"), "{rc}");
    assert!(rc.contains("primary_slot_name = 'repmgr_slot_2'"), "{rc}");
    assert!(rc.contains("recovery_target_timeline = 'latest'"), "{rc}");
    assert!(!target.join("standby.signal").exists());
    let auto = std::fs::read_to_string(target.join("postgresql.auto.conf")).unwrap_or_default();
    assert!(!auto.contains("primary_conninfo"), "{auto}");

    let mut st = Pg::existing_with(&sc, target, &bindir);
    st.start();
    st.wait_for(
        "SELECT status FROM pg_stat_wal_receiver",
        "streaming",
        Duration::from_secs(60),
    );
    p.sql("INSERT INTO t VALUES (101)");
    st.wait_for("SELECT count(*) FROM t", "101", Duration::from_secs(60));
}
