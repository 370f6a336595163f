//! The object-storage harness against the real servers: barman-cloud 3.19.1
//! writes backups and WAL into moto (S3), Azurite and fake-gcs-server, and
//! its own restore tools bring a standby back from them. What the
//! barman-cloud source is tested against is proven here first.

use std::time::Duration;

use crate::support::cloud::{
    archive_to, archive_wal_now, azurite, barman_cloud_backup, barman_cloud_restore,
    barman_cloud_wal_restore, gcs_emulator, make_cloud_standby, moto, promote, restore_standby,
    tablespace, BackupOpts, ObjectServer, Store,
};
use crate::support::{is_root, stderr, Pg, Scratch};

/// The file names of the objects of backup `id` of `server`.
fn backup_objects(store: &Store, server: &str, id: &str) -> Vec<String> {
    let dir = format!("{server}/base/{id}/");
    store
        .list(&dir)
        .into_iter()
        .map(|(k, _)| k[dir.len()..].to_string())
        .collect()
}

/// The archive `base`'s parts among `names`, in order: `base.tar.EXT`, then
/// `base_0001.tar.EXT`, `base_0002.tar.EXT`, ... with none missing.
fn parts(names: &[String], base: &str, ext: &str) -> Vec<String> {
    let first = format!("{base}{ext}");
    assert!(names.contains(&first), "no {first} in {names:?}");
    let mut v = vec![first];
    let more = names
        .iter()
        .filter(|n| n.starts_with(&format!("{base}_")))
        .count();
    for i in 1..=more {
        let n = format!("{base}_{i:04}{ext}");
        assert!(names.contains(&n), "{n} missing from {names:?}");
        v.push(n);
    }
    v
}

/// A segment restored by barman-cloud-wal-restore is the primary's own.
fn assert_wal_round_trip(store: &Store, server: &str, wal: &str, primary: &Pg, s: &Scratch) {
    let dest = s.path(&format!("fetched-{server}-{wal}"));
    let out = barman_cloud_wal_restore(store, server, wal, &dest);
    assert!(out.status.success(), "wal-restore {wal}: {}", stderr(&out));
    let fetched = std::fs::read(&dest).unwrap();
    let original = std::fs::read(primary.data.join("pg_wal").join(wal)).unwrap();
    assert_eq!(fetched.len(), 16 << 20);
    assert!(fetched == original, "{wal} came back different");
}

/// S3: a gzip backup in parts with a tablespace, WAL archived with --gzip,
/// a standby restored by barman-cloud that replays WAL from the store, and
/// its promotion writing timeline 2's WAL beside timeline 1's.
#[test]
fn s3_gzip_parts_tablespace_standby_and_timeline_two() {
    if !is_root() {
        eprintln!("skipped: needs root (servers run as postgres)");
        return;
    }
    let sc = Scratch::new("bc-env-s3");
    let store = moto().store("s3_gzip_parts_tablespace");
    let mut primary = Pg::init(&sc, "primary");
    let env = archive_to(&primary, &sc, &store, "pg", "--gzip");
    primary.start();
    let ts = tablespace(&primary, &sc, "tsp", 60_000);
    primary.sql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 60000) g");
    let oid = primary.sql("SELECT oid FROM pg_tablespace WHERE spcname = 'tsp'");

    // WAL: PREFIX/SERVER/wals/TTTTTTTTXXXXXXXX/NAME.gz, the segment gzipped.
    let wal = archive_wal_now(&primary, &store, "pg");
    let key = format!("pg/wals/{}/{wal}.gz", &wal[..16]);
    let gz = store.get(&key);
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "{key} is not gzip");
    assert!(gz.len() < 16 << 20);
    assert_wal_round_trip(&store, "pg", &wal, &primary, &sc);

    let opts = BackupOpts {
        compression: "gzip",
        max_archive_size: Some("1MB"),
        name: Some("nightly".into()),
    };
    let id = barman_cloud_backup(&primary, &store, "pg", &opts);
    let listing = store.backup_list("pg");
    let row = listing.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(row.contains("nightly"), "name not listed: {listing}");

    // PREFIX/SERVER/base/ID/: backup.info, data.tar.gz, data_0001.tar.gz, ...
    // and OID.tar.gz (OID_0001.tar.gz, ...) for the tablespace; nothing else.
    let names = backup_objects(&store, "pg", &id);
    let data = parts(&names, "data", ".tar.gz");
    let tsp = parts(&names, &oid, ".tar.gz");
    assert!(data.len() >= 2, "-S 1MB made no parts: {names:?}");
    assert_eq!(names.len(), 1 + data.len() + tsp.len(), "{names:?}");
    assert!(names.contains(&"backup.info".to_string()));
    for part in data.iter().chain(&tsp) {
        assert_eq!(
            &store.get(&format!("pg/base/{id}/{part}"))[..2],
            &[0x1f, 0x8b]
        );
    }
    let info = String::from_utf8(store.get(&format!("pg/base/{id}/backup.info"))).unwrap();
    for line in [
        "backup_name=nightly".to_string(),
        "status=DONE".into(),
        format!("tablespaces=[('tsp', {oid}, '{}')]", ts.display()),
        format!(
            "systemid={}",
            primary.sql("SELECT system_identifier FROM pg_control_system()")
        ),
        "timeline=1".into(),
    ] {
        assert!(
            info.lines().any(|l| l == line),
            "no {line:?} in backup.info:\n{info}"
        );
    }

    // Rows after the backup reach the standby only through the archive.
    primary.sql("CREATE TABLE after_backup AS SELECT 42 AS answer");
    archive_wal_now(&primary, &store, "pg");

    // Restored by name, the tablespace moved.
    let dest = sc.path("standby");
    let new_ts = sc.mkdir("tsp-restored");
    let out = barman_cloud_restore(&store, "pg", "nightly", &dest, &[("tsp", new_ts.as_path())]);
    assert!(
        out.status.success(),
        "barman-cloud-restore: {}",
        stderr(&out)
    );
    make_cloud_standby(&dest, &store, &env, "pg");
    let mut standby = Pg::existing(&sc, dest.clone());
    // pg_ctl -w returns once a hot standby accepts connections: consistency.
    standby.start();
    assert_eq!(standby.sql("SELECT pg_is_in_recovery()"), "t");
    let log = std::fs::read_to_string(&standby.log).unwrap();
    assert!(log.contains("consistent recovery state reached"), "{log}");
    assert!(
        log.contains("restored log file"),
        "nothing from the archive:\n{log}"
    );
    assert_eq!(standby.sql("SELECT count(*) FROM tsp_t"), "60000");
    assert_eq!(
        standby.sql(&format!("SELECT pg_tablespace_location({oid})")),
        new_ts.display().to_string()
    );
    standby.wait_for(
        "SELECT answer FROM after_backup",
        "42",
        Duration::from_secs(60),
    );

    // Promoted, it archives timeline 2 (its archive_command came with the
    // backup) into the same server: 00000002.history.gz in wals/ itself.
    promote(&standby);
    let wal2 = archive_wal_now(&standby, &store, "pg");
    assert!(wal2.starts_with("00000002"), "{wal2}");
    assert!(
        store
            .list("pg/wals/00000002.history")
            .iter()
            .any(|(k, _)| k == "pg/wals/00000002.history.gz"),
        "{:?}",
        store.list("pg/wals/")
    );
    let timelines: Vec<String> = store
        .list("pg/wals/")
        .into_iter()
        .filter_map(|(k, _)| {
            let rest = k.strip_prefix("pg/wals/")?;
            let (dir, _) = rest.split_once('/')?;
            Some(dir[..8].to_string())
        })
        .collect();
    assert!(timelines.iter().any(|t| t == "00000001"));
    assert!(timelines.iter().any(|t| t == "00000002"));
    assert_wal_round_trip(&store, "pg", &wal2, &standby, &sc);
}

/// S3: each compression barman-cloud 3.19.1 offers, with the suffix it
/// writes: backups bzip2, lz4 and snappy (gzip above, plain below),
/// restorable; WAL plain, gzip, bzip2, xz, snappy and lz4 (and zstd when the
/// venv has its module), each fetched back intact.
#[test]
fn s3_every_compression() {
    if !is_root() {
        eprintln!("skipped: needs root (servers run as postgres)");
        return;
    }
    let sc = Scratch::new("bc-env-s3-comp");
    let store = moto().store("s3_every_compression");
    let mut primary = Pg::init(&sc, "primary");
    primary.start();
    primary.sql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 20000) g");

    // A finished segment, archived by hand (as archive_command would) once per
    // compression, each into a server of its own.
    primary.sql("SELECT txid_current()");
    let wal = primary.sql("SELECT pg_walfile_name(pg_switch_wal())");
    let segment = primary.data.join("pg_wal").join(&wal);
    let mut keys = Vec::new();
    for (option, suffix, magic) in [
        ("", "", &b""[..]),
        ("--gzip", ".gz", &[0x1f, 0x8b][..]),
        ("--bzip2", ".bz2", &b"BZh"[..]),
        ("--xz", ".xz", &[0xfd, b'7', b'z', b'X', b'Z', 0][..]),
        ("--snappy", ".snappy", &b"\xff\x06\x00\x00sNaPpY"[..]),
        ("--lz4", ".lz4", &[0x04, 0x22, 0x4d, 0x18][..]),
    ] {
        let server = format!("wal{}", option.trim_start_matches('-'));
        let mut args = Vec::new();
        if !option.is_empty() {
            args.push(option.to_string());
        }
        args.extend([
            store.url.clone(),
            server.clone(),
            segment.display().to_string(),
        ]);
        store.tool_ok("barman-cloud-wal-archive", &args);
        let key = format!("{server}/wals/{}/{wal}{suffix}", &wal[..16]);
        assert!(store.get(&key).starts_with(magic), "{key}: wrong format");
        assert_wal_round_trip(&store, &server, &wal, &primary, &sc);
        keys.push(key);
    }
    // --zstd needs the zstandard module, which scripts/test-deps.sh does not
    // install: refused then, with nothing written; `.zst` when it is there.
    let out = store.tool_run(
        "barman-cloud-wal-archive",
        &[
            "--zstd".into(),
            store.url.clone(),
            "walzstd".into(),
            segment.display().to_string(),
        ],
    );
    if out.status.success() {
        let key = format!("walzstd/wals/{}/{wal}.zst", &wal[..16]);
        assert!(store.get(&key).starts_with(&[0x28, 0xb5, 0x2f, 0xfd]));
        assert_wal_round_trip(&store, "walzstd", &wal, &primary, &sc);
        keys.push(key);
    } else {
        assert!(stderr(&out).contains("zstandard"), "{}", stderr(&out));
    }
    // Those objects and no others.
    let listed: Vec<String> = store.list("").into_iter().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(listed, keys);

    // Plain tar is the Azure and GCS tests'.
    for (compression, ext) in [
        ("bzip2", ".tar.bz2"),
        ("lz4", ".tar.lz4"),
        ("snappy", ".tar.snappy"),
    ] {
        let server = format!("b{compression}");
        let opts = BackupOpts {
            compression,
            ..Default::default()
        };
        let id = barman_cloud_backup(&primary, &store, &server, &opts);
        let names = backup_objects(&store, &server, &id);
        assert_eq!(names, ["backup.info".to_string(), format!("data{ext}")]);
        let dest = sc.path(&format!("restored-{server}"));
        let out = barman_cloud_restore(&store, &server, &id, &dest, &[]);
        assert!(out.status.success(), "{server}: {}", stderr(&out));
        assert!(dest.join("global/pg_control").exists());
        assert!(dest.join("backup_label").exists());
        assert_eq!(
            std::fs::read_to_string(dest.join("PG_VERSION")).unwrap(),
            std::fs::read_to_string(primary.data.join("PG_VERSION")).unwrap()
        );
    }
}

/// A plain backup into `server`'s store, listed, restored by id into a
/// standby that reaches consistency and replays a later row from WAL that
/// barman-cloud-wal-archive put there.
fn plain_backup_round_trip(server: &ObjectServer, test: &str) {
    if !is_root() {
        eprintln!("skipped: needs root (servers run as postgres)");
        return;
    }
    let sc = Scratch::new(&format!("bc-env-{test}"));
    let store = server.store(test);
    let mut primary = Pg::init(&sc, "primary");
    let env = archive_to(&primary, &sc, &store, "pg", "");
    primary.start();
    primary.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g");
    let id = barman_cloud_backup(&primary, &store, "pg", &BackupOpts::default());
    assert_eq!(store.backup_ids("pg"), std::slice::from_ref(&id));
    assert_eq!(
        backup_objects(&store, "pg", &id),
        ["backup.info", "data.tar"]
    );
    primary.sql("CREATE TABLE after_backup AS SELECT 42 AS answer");
    let wal = archive_wal_now(&primary, &store, "pg");
    // Plain WAL: the segment itself, under its timeline and log directory.
    let key = format!("pg/wals/{}/{wal}", &wal[..16]);
    assert!(
        store
            .list(&key)
            .iter()
            .any(|(k, n)| *k == key && *n == 16 << 20),
        "{key} missing"
    );

    let mut standby = restore_standby(&sc, "standby", &store, &env, "pg", &id, &[]);
    standby.start();
    assert_eq!(standby.sql("SELECT count(*) FROM t"), "1000");
    standby.wait_for(
        "SELECT answer FROM after_backup",
        "42",
        Duration::from_secs(60),
    );
    assert!(std::fs::read_to_string(&standby.log)
        .unwrap()
        .contains("restored log file"));
    // The URL users give barman-cloud for this store.
    match server.provider {
        crate::support::cloud::Provider::Azure => assert!(store.url.starts_with(&format!(
            "http://127.0.0.1:{}/devstoreaccount1/",
            server.port
        ))),
        crate::support::cloud::Provider::Gcs => assert!(store.url.starts_with("gs://")),
        crate::support::cloud::Provider::S3 => assert!(store.url.starts_with("s3://")),
    }
}

/// Azure Blob Storage (Azurite): a plain backup, listed and restorable.
#[test]
fn azurite_plain_backup_round_trip() {
    plain_backup_round_trip(azurite(), "azurite_plain");
}

/// Google Cloud Storage (fake-gcs-server): a plain backup, listed and restorable.
#[test]
fn gcs_plain_backup_round_trip() {
    plain_backup_round_trip(gcs_emulator(), "gcs_plain");
}
