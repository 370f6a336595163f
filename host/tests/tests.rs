//! pgclone's integration tests: one test binary (wasmtime is linked once),
//! a module per area, each against the real things — PostgreSQL servers of
//! several versions, Barman, sshd and rsync on loopback, pgBackRest, Patroni
//! and etcd, a TLS-only server — started by the shared `support` module.
//!
//! Run one area with its module path, e.g.
//! `cargo test --release -p pgclone --test tests wal_restore::`.

mod support;

/// Standbys cloned and fed from barman-cloud backups in S3 and Azure.
mod barman_cloud;
/// The object-storage test servers (moto, Azurite, fake-gcs-server) written to by barman-cloud.
mod barman_cloud_env;
/// Faulty and hostile object stores: clones and wal-restore fail cleanly.
mod barman_cloud_faults;
/// A standby cloned from a barman-cloud backup in Google Cloud Storage (fake-gcs-server).
mod barman_cloud_gcs;
/// The CLI: repmgr's and barman-wal-restore's command lines, help, plugin commands.
mod cli;
/// Clones from Barman 3.4 and 3.19: plain, compressed, incremental, faults.
mod clone_barman;
/// The recovery.conf path: a PostgreSQL 11 primary.
mod clone_pg11;
/// Clones with pg_basebackup from PostgreSQL 15.
mod clone_pg_basebackup;
/// The example pgBackRest source: clones, and WAL through wal-restore.
mod clone_pgbackrest;
/// Plugins built against the released 1.0.0 contract.
mod contract_versions;
/// copy-tree steps over a real sshd: exclusions, whole trees.
mod copy_tree;
/// Hostile backups over a real sshd: links out of the target, gzip bombs, no room.
mod hostile_archives;
/// Plans that escape, lie or overreach, refused before anything is written.
mod hostile_plans;
/// `--output json`: dry run, clone, plugin list and verify, against their text.
mod json_output;
/// pgclone killed (SIGKILL) at each phase of a clone: nothing runs on, the rerun repairs.
mod killed_clone;
/// The object-store layer against moto (S3), Azurite and fake-gcs-server: listings, reads,
/// the parallel reader, refused credentials, silent servers.
mod object_store;
/// The Debian package (scripts/package.sh), installed with dpkg, used and purged.
mod package;
/// Patroni 3.0.2 and 4.1.5 clusters with members made by patroni-replica.
mod patroni;
/// The plugin guide's example, followed as a newcomer would.
mod plugin_guide;
/// Hostile components: loops, allocations, undeclared capabilities.
mod plugin_sandbox;
/// The standard recovery policy run through the host, and the files written.
mod recovery_policy;
/// Target safety, with real running servers as would-be victims.
mod safety;
/// The example site policy.
mod site_policy;
/// A TLS-only primary with client certificates.
mod tls;
/// PostgreSQL 12, 13, 14, 16, 17 and 18: clones that stream, WAL from Barman.
mod versions;
/// wal-restore against real Barman over a real sshd.
mod wal_restore;
