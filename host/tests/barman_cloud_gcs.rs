//! A standby cloned from a barman-cloud backup in Google Cloud Storage
//! through the real `pgclone` binary: barman-cloud 3.19.1 (google-cloud-storage)
//! writes a gzip backup in parts and archives WAL into fake-gcs-server, and
//! pgclone reads both with the first-party `barman-cloud` source. The server
//! is found as google-cloud-storage finds an emulator, through
//! STORAGE_EMULATOR_HOST in pgclone's environment (and, from an env file,
//! in its restore_command's).

use std::time::Duration;

use crate::support::cloud::{
    archive_to, archive_wal_now, barman_cloud_backup, gcs_emulator, sourcing, BackupOpts,
};
use crate::support::{clone_args, is_root, pgclone, stderr, stdout, Pg, Scratch};

const WAIT: Duration = Duration::from_secs(90);
const SERVER: &str = "pg";

/// gzip in 1 MB parts; then a row written after the backup reaches the
/// standby only through the bucket: the primary is stopped before the
/// standby starts, so nothing streams.
#[test]
fn gcs_gzip_parts_clone_replays_wal_from_the_bucket() {
    if !is_root() {
        eprintln!("skipped: needs root (servers run as postgres)");
        return;
    }
    let sc = Scratch::new("bc-gcs");
    let store = gcs_emulator().store("gcs_gzip_parts_clone");
    let mut primary = Pg::init(&sc, "primary");
    let env_file = archive_to(&primary, &sc, &store, SERVER, "--gzip");
    primary.start();
    primary.sql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 60000) g");
    let opts = BackupOpts {
        compression: "gzip",
        max_archive_size: Some("1MB"),
        name: None,
    };
    let id = barman_cloud_backup(&primary, &store, SERVER, &opts);
    let dir = format!("{SERVER}/base/{id}/");
    let parts: Vec<String> = store
        .list(&dir)
        .into_iter()
        .map(|(k, _)| k[dir.len()..].to_string())
        .filter(|n| n.starts_with("data") && n.ends_with(".tar.gz"))
        .collect();
    assert!(parts.len() >= 2, "-S 1MB made no parts: {parts:?}");

    primary.sql("CREATE TABLE after_backup AS SELECT 42 AS answer");
    let wal = archive_wal_now(&primary, &store, SERVER);

    // restore_command: barman-cloud-wal-restore's command line, one word
    // changed; the emulator's address from the env file barman-cloud's
    // archive_command sources.
    let spool = sc.mkdir("spool");
    let restore = sourcing(
        &env_file,
        &format!(
            "{} barman-cloud-wal-restore --spool-dir {} {} {SERVER} %f %p",
            env!("CARGO_BIN_EXE_pgclone"),
            spool.display(),
            store.url
        ),
    );
    assert!(!restore.contains('\''), "{restore}");
    // The provider and bucket from the gs:// URL alone.
    let conf = sc.write(
        "gcs.conf",
        &format!(
            "node_id=2\nnode_name=gcs-standby\nbackup_source=barman-cloud\n\
             barman_cloud_url='{}'\nbarman_cloud_server={SERVER}\n\
             wal_restore_spool_dir='{}'\nrestore_command='{restore}'\n",
            store.url,
            spool.display()
        ),
    );
    let target = sc.path("standby");
    let args = clone_args(&conf, &primary, &target, &[]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = store.pgclone(&sc, &refs, &[]);
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "clone failed:\n{}\n{err}",
        stdout(&out)
    );
    assert!(err.contains(&id), "the backup is not named: {err}");
    assert!(target.join("global/pg_control").exists(), "{err}");
    // The standby replays with the restore_command given, pgclone's.
    let auto = std::fs::read_to_string(target.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("barman-cloud-wal-restore --spool-dir"),
        "{auto}"
    );
    // The data archive's parts and nothing else, from the bucket.
    assert!(
        err.contains(&format!(
            "unpacking {} archives from store \"barman-cloud\" ({} at http://127.0.0.1:{})",
            parts.len(),
            store.url,
            gcs_emulator().port
        )),
        "{err}"
    );
    assert!(
        err.contains("NOTICE: standby clone (from barman-cloud) complete"),
        "{err}"
    );

    primary.stop();
    let mut standby = Pg::existing(&sc, target.clone());
    standby.start();
    standby.wait_for("SELECT count(*) FROM t", "60000", WAIT);
    standby.wait_for("SELECT answer FROM after_backup", "42", WAIT);
    let log = std::fs::read_to_string(&standby.log).unwrap();
    assert!(
        log.contains(&format!("restored log file \"{wal}\"")),
        "{wal} was not restored from the bucket:\n{log}"
    );
}

/// Wrong Google credentials. fake-gcs-server checks none (google-cloud-storage
/// and pgclone send none to an emulator), and the real service is not
/// reachable from the tests: what can be tested is the credential file
/// itself. One that does not exist, and one whose key is not a key, fail
/// before any request (status 2, a configuration error), naming the file
/// or what is wrong with it and where credentials are looked for, never
/// the key; nothing at %p.
#[test]
fn unusable_google_credentials_fail_before_any_request() {
    let sc = Scratch::new("bc-gcs-creds");
    let key_text = "c2VjcmV0LWtleS1tYXRlcmlhbC1wZ2Nsb25l";
    let bad_key = sc.write(
        "service-account.json",
        &format!(
            "{{\"type\": \"service_account\", \"client_email\": \"backup@p.iam.gserviceaccount.com\", \
             \"private_key_id\": \"k1\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{key_text}\\n-----END PRIVATE KEY-----\\n\"}}"
        ),
    );
    let missing = sc.path("no-such-file.json");
    let dest = sc.path("dest/RECOVERYXLOG");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let spool = sc.path("spool");
    for (case, file, want) in [
        ("missing file", &missing, "no-such-file.json"),
        ("not a key", &bad_key, "RSA key"),
    ] {
        let args = [
            "barman-cloud-wal-restore",
            "-p",
            "0",
            "--spool-dir",
            spool.to_str().unwrap(),
            "--cloud-provider",
            "google-cloud-storage",
            "gs://pgclone-backups/pg",
            SERVER,
            "000000010000000000000001",
            dest.to_str().unwrap(),
        ];
        let env = [("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap())];
        let out = pgclone(&sc, &args, &env);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        eprintln!("{case}:\n{all}");
        assert_eq!(out.status.code(), Some(2), "{case}: {all}");
        for w in [
            "cannot set up the Google Cloud Storage client for bucket \"pgclone-backups\"",
            want,
            "HINT: pgclone finds Google Cloud Storage credentials",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ] {
            assert!(all.contains(w), "{case}: no {w:?} in:\n{all}");
        }
        assert!(!all.contains(key_text), "{case}: the key is shown:\n{all}");
        assert!(!dest.exists(), "{case}: {all}");
    }
}
