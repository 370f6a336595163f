//! The source against the SDK's fake host holding the real bucket: the keys
//! barman-cloud-backup 3.19.1 and barman-cloud-wal-archive wrote to moto's S3
//! (`fixtures/listing.txt`) and their real `backup.info` files.

use super::*;
use pgclone_plugin_sdk::testing::{self, with_host, FakeHost};
use pgclone_plugin_sdk::types::{ArchiveCompression, ObjectParts, PathRoot, PlacedTablespace};

const NEWEST: &str = "20261207T192617";
const PLAINPARTS: &str = "20261207T192613";

fn info_fixture(id: &str) -> Option<&'static str> {
    Some(match id {
        "20261207T192455" => include_str!("../fixtures/20261207T192455.backup.info"),
        "20261207T192524" => include_str!("../fixtures/20261207T192524.backup.info"),
        "20261207T192528" => include_str!("../fixtures/20261207T192528.backup.info"),
        "20261207T192532" => include_str!("../fixtures/20261207T192532.backup.info"),
        "20261207T192536" => include_str!("../fixtures/20261207T192536.backup.info"),
        "20261207T192613" => include_str!("../fixtures/20261207T192613.backup.info"),
        "20261207T192617" => include_str!("../fixtures/20261207T192617.backup.info"),
        _ => return None,
    })
}

/// The real bucket: each backup.info with its content, every other object
/// with a few bytes (its size does not matter here).
fn bucket() -> FakeHost {
    let mut host = FakeHost::new()
        .manifest(MANIFEST)
        .config("barman_cloud_server", "main");
    for o in layout::tests::real_listing() {
        let id = o.key.split('/').nth(2).unwrap_or("");
        host = match info_fixture(id) {
            Some(text) if o.key.ends_with("/backup.info") => host.object(STORE, &o.key, text),
            _ => host.object(STORE, &o.key, vec![1u8; 3]),
        };
    }
    host
}

fn request(backup_id: Option<&str>) -> CloneRequest {
    let mut r = testing::clone_request("/d");
    r.backup_id = backup_id.map(str::to_string);
    r.upstream_system_identifier = Some("7716645311110654719".into());
    r
}

#[test]
fn describes_what_the_manifest_says() {
    let info = BarmanCloud::describe();
    assert_eq!(info.name, "barman-cloud");
    assert!(!info.needs_upstream);
    assert_eq!(info.capabilities.len(), 2);
}

#[test]
fn latest_is_the_newest_done_backup_read_once() {
    let (d, host) = with_host(bucket(), || BarmanCloud::check(request(None)));
    let d = d.unwrap();
    assert_eq!(d.id, NEWEST);
    assert_eq!(d.system_identifier, "7716645311110654719");
    assert_eq!(d.server_version, 150018);
    assert_eq!(d.timeline, 1);
    assert_eq!(d.begin_wal, "000000010000000000000014");
    assert_eq!(d.end_wal, "000000010000000000000014");
    assert_eq!(d.begin_lsn, "0/14000028");
    assert_eq!(d.end_lsn, "0/14000100");
    assert_eq!(d.size_bytes, 38289097);
    assert_eq!(d.format, BackupFormat::Tar);
    assert_eq!(d.compression.as_deref(), Some("lz4"));
    assert_eq!(d.tablespaces.len(), 1);
    assert_eq!(d.tablespaces[0].oid, 16384);
    assert_eq!(d.tablespaces[0].name, "ts1");
    // One listing of the server, one backup.info, one listing of the backup.
    assert_eq!(host.read.len(), 1);
    assert_eq!(host.listed.len(), 2);
}

#[test]
fn ids_names_and_every_compression() {
    for (wanted, id, compression) in [
        ("20261207T192455", "20261207T192455", "gzip"),
        ("gzparts", "20261207T192455", "gzip"),
        ("20261207T192524", "20261207T192524", "none"),
        ("20261207T192528", "20261207T192528", "bzip2"),
        ("20261207T192532", "20261207T192532", "lz4"),
        ("snap", "20261207T192536", "snappy"),
        ("plainparts", PLAINPARTS, "none"),
        ("oldest", "20261207T192455", "gzip"),
    ] {
        let (d, host) = with_host(bucket(), || BarmanCloud::check(request(Some(wanted))));
        let d = d.unwrap_or_else(|e| panic!("{wanted}: {e:?}"));
        assert_eq!(
            (d.id.as_str(), d.compression.as_deref()),
            (id, Some(compression))
        );
        if layout::is_backup_id(wanted) {
            assert_eq!(host.read.len(), 1, "{wanted}");
        }
    }
}

#[test]
fn a_missing_backup_names_the_ones_there() {
    let (e, _) = with_host(bucket(), || BarmanCloud::check(request(Some("nosuch"))));
    let e = e.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    let detail = e.detail.unwrap();
    assert!(detail.contains("20261207T192455 'gzparts'"), "{detail}");
    assert!(detail.contains(NEWEST), "{detail}");
    assert!(e.hint.unwrap().contains("--backup-id"));
}

#[test]
fn a_failed_backup_is_refused_and_skipped() {
    let key = format!("main/base/{NEWEST}/backup.info");
    let failed = info_fixture(NEWEST)
        .unwrap()
        .replace("status=DONE", "status=FAILED")
        .replace("error=None", "error=failure uploading data");
    let (e, _) = with_host(bucket().object(STORE, &key, failed.as_str()), || {
        BarmanCloud::check(request(Some(NEWEST)))
    });
    let e = e.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidBackup);
    assert!(e.message.contains("status FAILED"), "{}", e.message);
    let (d, host) = with_host(bucket().object(STORE, &key, failed.as_str()), || {
        BarmanCloud::check(request(None))
    });
    assert_eq!(d.unwrap().id, PLAINPARTS);
    assert!(host
        .logged
        .iter()
        .any(|(_, l)| l.contains(NEWEST) && l.contains("FAILED")));
}

#[test]
fn a_missing_server_names_the_servers_there() {
    let host = bucket().config("barman_cloud_server", "nope");
    let (e, _) = with_host(host, || BarmanCloud::check(request(None)));
    let e = e.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("\"nope\""));
    assert_eq!(
        e.detail.as_deref(),
        Some("server directories in the store: main")
    );
    // A server name that would climb out of the store's keys is refused.
    let host = bucket().config("barman_cloud_server", "../main");
    let (e, host) = with_host(host, || BarmanCloud::check(request(None)));
    assert_eq!(e.unwrap_err().kind, ErrorKind::InvalidConfig);
    assert!(host.listed.is_empty());
}

#[test]
fn another_system_is_refused() {
    let mut r = request(None);
    r.upstream_system_identifier = Some("1".into());
    let (e, _) = with_host(bucket(), || BarmanCloud::check(r));
    assert_eq!(e.unwrap_err().kind, ErrorKind::InvalidBackup);
}

#[test]
fn without_the_grant_nothing_is_read() {
    let host = FakeHost::new()
        .config("barman_cloud_server", "main")
        .object(
            STORE,
            "main/base/20261207T192455/backup.info",
            "status=DONE",
        );
    let (e, _) = with_host(host, || BarmanCloud::check(request(None)));
    assert_eq!(e.unwrap_err().kind, ErrorKind::Denied);
}

/// check, then plan-clone with what check described, as the host calls them.
fn plan(host: FakeHost, id: &str, placed: Vec<PlacedTablespace>) -> (Vec<PlanStep>, FakeHost) {
    let (steps, host) = with_host(host, || {
        let d = BarmanCloud::check(request(Some(id)))?;
        let mut r = request(Some(id));
        r.placed_tablespaces = placed;
        BarmanCloud::plan_clone(r, d)
    });
    (steps.unwrap(), host)
}

fn unpacks(steps: &[PlanStep]) -> Vec<&pgclone_plugin_sdk::types::UnpackObjectsStep> {
    steps
        .iter()
        .filter_map(|s| match s {
            PlanStep::UnpackObjects(u) => Some(u),
            _ => None,
        })
        .collect()
}

#[test]
fn parts_in_numeric_order_and_the_tablespace() {
    let placed = vec![PlacedTablespace {
        oid: 16384,
        location: "/srv/new ts".into(),
    }];
    let (steps, _) = plan(bucket(), PLAINPARTS, placed);
    let u = unpacks(&steps);
    assert_eq!(u.len(), 2);
    let p = format!("main/base/{PLAINPARTS}/");
    assert_eq!(u[0].local.root, PathRoot::DataDirectory);
    assert_eq!(u[0].store, STORE);
    assert_eq!(u[0].parts, ObjectParts::Separate);
    assert_eq!(u[0].compression, None);
    assert_eq!(u[0].objects.len(), 22);
    assert_eq!(u[0].objects[0], format!("{p}data.tar"));
    assert_eq!(u[0].objects[9], format!("{p}data_0009.tar"));
    assert_eq!(u[0].objects[10], format!("{p}data_0010.tar"));
    assert_eq!(u[0].size_bytes, 22 * 3);
    assert_eq!(u[1].local.root, PathRoot::Tablespace(16384));
    assert_eq!(u[1].objects.len(), 3);
    assert!(steps
        .iter()
        .any(|s| matches!(s, PlanStep::CreateDir(d) if d.path.path == "pg_wal")));
    let map = steps.iter().find_map(|s| match s {
        PlanStep::WriteFile(w) if w.path.path == "tablespace_map" => Some(w.contents.as_str()),
        _ => None,
    });
    assert_eq!(map, Some("16384 /srv/new ts\n"));
}

#[test]
fn each_compression_is_planned_from_the_suffix() {
    for (id, c) in [
        ("20261207T192455", Some(ArchiveCompression::Gzip)),
        ("20261207T192524", None),
        ("20261207T192528", Some(ArchiveCompression::Bzip2)),
        ("20261207T192532", Some(ArchiveCompression::Lz4)),
        ("20261207T192536", Some(ArchiveCompression::Snappy)),
    ] {
        let (steps, _) = plan(bucket(), id, Vec::new());
        let u = unpacks(&steps);
        assert!(u.len() == 2 && u.iter().all(|u| u.compression == c), "{id}");
    }
}

#[test]
fn a_hostile_listing_plans_nothing_outside_the_backup() {
    let p = format!("main/base/{PLAINPARTS}/");
    let host = bucket()
        .object(STORE, &format!("{p}../../other/data_0022.tar"), "x")
        .object(STORE, &format!("{p}sub/data_0022.tar"), "x")
        .object(STORE, "main/base/../evil/backup.info", "status=DONE")
        .object(STORE, "other/base/x/data_0022.tar", "x");
    let (steps, _) = plan(host, PLAINPARTS, Vec::new());
    for u in unpacks(&steps) {
        for o in &u.objects {
            assert!(o.starts_with(&p) && !o[p.len()..].contains('/'), "{o}");
        }
    }
    assert_eq!(unpacks(&steps)[0].objects.len(), 22);
    // The `..` directory is no backup: latest is still the real newest one.
    let (d, _) = with_host(
        bucket().object(STORE, "main/base/../backup.info", "status=DONE"),
        || BarmanCloud::check(request(None)),
    );
    assert_eq!(d.unwrap().id, NEWEST);
    // A missing part is refused before anything is planned.
    let mut host = FakeHost::new()
        .manifest(MANIFEST)
        .config("barman_cloud_server", "main");
    for o in layout::tests::real_listing() {
        if o.key.contains(PLAINPARTS) && !o.key.ends_with("data_0005.tar") {
            host = host.object(
                STORE,
                &o.key,
                info_fixture(PLAINPARTS)
                    .filter(|_| o.key.ends_with("backup.info"))
                    .unwrap_or("x"),
            );
        }
    }
    let (e, _) = with_host(host, || BarmanCloud::check(request(Some(PLAINPARTS))));
    let e = e.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidBackup);
    assert!(e.detail.unwrap().contains("part 0005"));
}

#[test]
fn wal_comes_from_the_store() {
    let (a, _) = with_host(bucket(), BarmanCloud::locate_wal_archive);
    let a = a.unwrap();
    assert!(a.directory.is_none() && a.fetch.is_none());
    let s = a.store.unwrap();
    assert_eq!(s.store, STORE);
    assert_eq!(s.prefix, "main/wals/");
    assert_eq!(s.layout, WalLayout::ByLog);
    let suffixes: Vec<&str> = s.suffixes.iter().map(|x| x.suffix.as_str()).collect();
    assert_eq!(
        suffixes,
        ["", ".gz", ".bz2", ".xz", ".snappy", ".zst", ".lz4"]
    );
    assert_eq!(
        BarmanCloud::locate_wal("000000010000000000000001".into()).unwrap(),
        WalLocation::Unavailable
    );
    let (e, _) = with_host(FakeHost::new(), BarmanCloud::locate_wal_archive);
    assert_eq!(e.unwrap_err().kind, ErrorKind::InvalidConfig);
}
