//! The host's object-store layer (`pgclone::store`) against real servers on
//! loopback: the suite's moto, Azurite and GCS emulator (`support::cloud`),
//! filled with boto3, azure-storage-blob and google-cloud-storage; a moto
//! that checks credentials; and servers that refuse or never answer.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use pgclone::report::Failure;
use pgclone::store::{Listing, ObjectMeta, Store, StoreError, StoreErrorKind, StoreSpec};

use crate::support::cloud::{self, ObjectServer};
use crate::support::{run_ok, Scratch};

const MIB: usize = 1 << 20;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Keys that stand for the operator's (moto takes any).
const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "testing-key-id"),
    ("AWS_SECRET_ACCESS_KEY", "testing-secret-key"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// Azurite's documented development account.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";

fn azure_conn(port: u16, key: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )
}

fn url_of(server: &ObjectServer) -> String {
    format!("http://127.0.0.1:{}", server.port)
}

/// A bucket of the suite's `server` for `test`, filled with `objects`
/// (keys from the bucket's root); the environment its SDK uses.
fn filled(
    server: &ObjectServer,
    test: &str,
    s: &Scratch,
    objects: &[(String, Vec<u8>)],
) -> (String, Vec<(String, String)>) {
    let store = server.store(test);
    let kind = match server.provider {
        cloud::Provider::S3 => "s3",
        cloud::Provider::Azure => "azure",
        cloud::Provider::Gcs => "gcs",
    };
    let env: Vec<(&str, &str)> = store.env_refs();
    upload(
        kind,
        &url_of(server),
        &store.bucket,
        &env,
        &write_fixture(s, objects),
    );
    (store.bucket.clone(), store.env.clone())
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Uploads `objects` (key, file) to a bucket (container) with the
/// provider's Python SDK, as barman-cloud would write them.
const UPLOAD: &str = r#"
import os, sys
kind, endpoint, bucket = sys.argv[1:4]
pairs = [a.split("=", 1) for a in sys.argv[4:]]
if kind == "s3":
    import boto3
    s3 = boto3.client("s3", endpoint_url=endpoint)
    for key, path in pairs:
        s3.upload_file(path, bucket, key)
elif kind == "gcs":
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    b = storage.Client(project="test", credentials=AnonymousCredentials()).bucket(bucket)
    for key, path in pairs:
        b.blob(key).upload_from_filename(path)
else:
    from azure.storage.blob import BlobServiceClient
    svc = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    c = svc.get_container_client(bucket)
    for key, path in pairs:
        with open(path, "rb") as f:
            c.upload_blob(key, f, overwrite=True)
"#;

fn upload(
    kind: &str,
    endpoint: &str,
    bucket: &str,
    env: &[(&str, &str)],
    objects: &[(String, PathBuf)],
) {
    let mut cmd = Command::new(cloud::barman_cloud_bin().join("python3"));
    cmd.args(["-c", UPLOAD, kind, endpoint, bucket]);
    for (k, p) in objects {
        cmd.arg(format!("{k}={}", p.display()));
    }
    cmd.envs(env.iter().copied());
    run_ok(&mut cmd);
}

/// Bytes that do not compress (xorshift), the same for the same seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

const BACKUP: &str = "main/base/20240101T000000";

/// The objects every store test starts from: a barman-cloud-like layout
/// under `cluster-a/`, and neighbours a listing of it must not show.
fn fixture() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            format!("cluster-a/{BACKUP}/backup.info"),
            b"backup_label='START WAL LOCATION'\nstatus=DONE\n".to_vec(),
        ),
        (format!("cluster-a/{BACKUP}/data.tar"), noise(40 * MIB, 1)),
        (format!("cluster-a/{BACKUP}/16384.tar"), Vec::new()),
        (
            format!("cluster-a/{BACKUP}/data_0001.tar"),
            noise(9 * MIB + 7, 2),
        ),
        (
            "cluster-a/main/base/20240202T000000/backup.info".into(),
            b"status=DONE\n".to_vec(),
        ),
        (
            "cluster-a/main/wals/0000000100000000/000000010000000000000001".into(),
            noise(1024, 3),
        ),
        (
            "cluster-a/main/wals/0000000100000000/000000010000000000000002".into(),
            noise(1024, 4),
        ),
        (
            "cluster-a/main/wals/00000002.history".into(),
            b"1\t0/3000000\tno recovery target\n".to_vec(),
        ),
        ("cluster-b/secret.txt".into(), b"not yours".to_vec()),
        ("cluster-a-other/x".into(), b"a sibling prefix".to_vec()),
    ]
}

fn write_fixture(s: &Scratch, objects: &[(String, Vec<u8>)]) -> Vec<(String, PathBuf)> {
    objects
        .iter()
        .enumerate()
        .map(|(i, (k, data))| {
            let p = s.path(&format!("object-{i}"));
            std::fs::write(&p, data).unwrap();
            (k.clone(), p)
        })
        .collect()
}

fn spec(url: &str, endpoint: Option<String>, timeout: Duration) -> StoreSpec {
    StoreSpec {
        name: "barman-cloud".into(),
        url: url.into(),
        endpoint_url: endpoint,
        provider: None,
        profile: None,
        timeout,
    }
}

fn keys(l: &Listing) -> Vec<&str> {
    l.objects.iter().map(|o| o.key.as_str()).collect()
}

fn data<'a>(objects: &'a [(String, Vec<u8>)], rel: &str) -> &'a [u8] {
    let full = format!("cluster-a/{rel}");
    &objects.iter().find(|(k, _)| *k == full).unwrap().1
}

/// The checks every provider passes: listings, small reads, sizes, the
/// reader, confinement, and a call from inside another runtime.
fn check_store(store: &Store, objects: &[(String, Vec<u8>)]) {
    let all = store.list("", false, 100).unwrap();
    let mut want: Vec<ObjectMeta> = objects
        .iter()
        .filter_map(|(k, d)| {
            k.strip_prefix("cluster-a/").map(|rel| ObjectMeta {
                key: rel.to_string(),
                size: d.len() as u64,
            })
        })
        .collect();
    want.sort();
    assert_eq!(all.objects, want, "the whole root, and nothing beside it");
    assert!(all.prefixes.is_empty());

    let top = store.list("main/", true, 100).unwrap();
    assert_eq!(top.prefixes, ["main/base/", "main/wals/"]);
    assert!(top.objects.is_empty());
    let backups = store.list("main/base/", true, 100).unwrap();
    assert_eq!(
        backups.prefixes,
        ["main/base/20240101T000000/", "main/base/20240202T000000/"]
    );
    // Prefixes are strings, not directories.
    let by_year = store.list("main/base/2024", true, 100).unwrap();
    assert_eq!(by_year.prefixes, backups.prefixes);
    let segs = store
        .list(
            "main/wals/0000000100000000/00000001000000000000000",
            false,
            100,
        )
        .unwrap();
    assert_eq!(
        keys(&segs),
        [
            "main/wals/0000000100000000/000000010000000000000001",
            "main/wals/0000000100000000/000000010000000000000002"
        ]
    );
    let wals = store.list("main/wals/", true, 100).unwrap();
    assert_eq!(keys(&wals), ["main/wals/00000002.history"]);
    assert_eq!(wals.prefixes, ["main/wals/0000000100000000/"]);
    assert!(store
        .list("main/nothing/", false, 100)
        .unwrap()
        .objects
        .is_empty());

    // More than the limit is an error, never a cut.
    let e = store.list("", false, 3).unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::TooMany, "{e:?}");
    assert!(e.message.contains("more than 3"), "{}", e.message);
    let e = store.list("main/base/", true, 1).unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::TooMany, "{e:?}");

    let info = format!("{BACKUP}/backup.info");
    assert_eq!(
        store.read_small(&info, 1 << 20).unwrap(),
        data(objects, &info)
    );
    assert_eq!(
        store
            .read_small(&format!("{BACKUP}/16384.tar"), 10)
            .unwrap(),
        b""
    );
    let big = format!("{BACKUP}/data.tar");
    let t = Instant::now();
    let e = store.read_small(&big, 1 << 20).unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::TooLarge, "{e:?}");
    assert!(
        e.message.contains(&big) && e.message.contains("barman-cloud"),
        "{}",
        e.message
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "refused before downloading it"
    );
    let e = store.read_small("main/missing", 100).unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::NotFound, "{e:?}");
    assert!(
        e.message.contains("\"main/missing\"") && e.message.contains("store \"barman-cloud\""),
        "{}",
        e.message
    );

    assert_eq!(
        store.size(&info).unwrap(),
        Some(data(objects, &info).len() as u64)
    );
    assert_eq!(store.size("main/missing").unwrap(), None);

    // The reader: several objects (one empty), the bytes in order, both
    // ways: one streamed GET per object (1) and ranged GETs in parallel (4).
    let parts = [
        big.clone(),
        format!("{BACKUP}/16384.tar"),
        format!("{BACKUP}/data_0001.tar"),
    ];
    let want: Vec<u8> = parts
        .iter()
        .flat_map(|k| data(objects, k).to_vec())
        .collect();
    for parallel in [1, 4] {
        let mut got = Vec::new();
        store
            .reader(&parts, parallel)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got.len(), want.len(), "parallel {parallel}");
        assert!(
            got == want,
            "the reader's bytes differ (parallel {parallel})"
        );
    }

    // A missing object: the bytes before it, then an error naming it.
    for parallel in [1, 2] {
        let mut r = store
            .reader(&[info.clone(), "main/missing".to_string()], parallel)
            .unwrap();
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(got, data(objects, &info), "parallel {parallel}");
        assert!(
            e.to_string().contains("\"main/missing\"") && e.to_string().contains("barman-cloud"),
            "{e}"
        );
        let inner = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<StoreError>())
            .unwrap();
        assert_eq!(inner.kind, StoreErrorKind::NotFound, "parallel {parallel}");
    }

    // Keys never leave the root, and are refused before any request.
    for bad in [
        "../cluster-b/secret.txt",
        "main/../../cluster-b/secret.txt",
        "/cluster-b/secret.txt",
    ] {
        assert_eq!(
            store.read_small(bad, 100).unwrap_err().kind,
            StoreErrorKind::InvalidConfig
        );
        assert_eq!(
            store.size(bad).unwrap_err().kind,
            StoreErrorKind::InvalidConfig
        );
        assert_eq!(
            store.list(bad, false, 10).unwrap_err().kind,
            StoreErrorKind::InvalidConfig
        );
        assert_eq!(
            store.reader(&[bad.to_string()], 1).unwrap_err().kind,
            StoreErrorKind::InvalidConfig
        );
    }

    // From a thread of another (current-thread) runtime, as host calls run.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listed = rt.block_on(async { store.list("main/", true, 10).unwrap() });
    assert_eq!(listed, top);
}

#[test]
fn s3_list_read_and_reader_on_moto() {
    let s = Scratch::new("store-s3");
    let server = cloud::moto();
    let objects = fixture();
    let (bucket, env) = filled(server, "store-s3-list-read", &s, &objects);
    let env = refs(&env);
    let url = format!("s3://{bucket}/cluster-a");
    let open = |url: &str| {
        Store::open_with_env(
            &spec(url, Some(url_of(server)), Duration::from_secs(20)),
            &env,
        )
    };
    let store = open(&url).unwrap();
    assert_eq!(
        store.describe(),
        format!("store \"barman-cloud\" ({url} at {})", url_of(server))
    );
    check_store(&store, &objects);

    // Opened and dropped inside a runtime's thread.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let inner = open(&url).unwrap();
        let history = "main/wals/00000002.history";
        let want = data(&objects, history).len() as u64;
        assert_eq!(inner.size(history).unwrap(), Some(want));
    });

    // Credentials from a profile of the shared files, as --aws-profile.
    let creds = s.write(
        "aws-credentials",
        "[default]\naws_access_key_id = a\naws_secret_access_key = b\n\
         [backup]\naws_access_key_id = k\naws_secret_access_key = s\n",
    );
    let config = s.write("aws-config", "[profile backup]\nregion = eu-central-1\n");
    let files = [
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
    ];
    let mut with_profile = spec(&url, Some(url_of(server)), Duration::from_secs(20));
    with_profile.profile = Some("backup".into());
    let store = Store::open_with_env(&with_profile, &files).unwrap();
    assert_eq!(store.list("main/", true, 10).unwrap().prefixes.len(), 2);
    with_profile.profile = Some("nobody".into());
    let e = Store::open_with_env(&with_profile, &files).unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::InvalidConfig);
    assert!(e.message.contains("\"nobody\""), "{}", e.message);

    // A missing bucket is named, and is not a missing object: a listing,
    // a read and a lookup (whose HEAD alone cannot tell) all say so.
    no_bucket(
        &open("s3://no-such-bucket/x").unwrap(),
        "bucket \"no-such-bucket\"",
    );
}

/// Every call on `store`, whose bucket (container) does not exist, is a
/// `NoBucket` error saying `named`, with a hint.
fn no_bucket(store: &Store, named: &str) {
    let errors = [
        store.list("", false, 10).unwrap_err(),
        store.list("", true, 10).unwrap_err(),
        store.read_small("k", 10).unwrap_err(),
        store.size("k").unwrap_err(),
    ];
    for e in errors {
        eprintln!("{}", Failure::from(e.clone()));
        assert_eq!(e.kind, StoreErrorKind::NoBucket, "{e:?}");
        assert!(e.message.contains(named), "{}", e.message);
        assert!(e.hint.is_some(), "{e:?}");
    }
}

#[test]
fn s3_refused_credentials_unreachable_and_silent_servers() {
    // The suite's moto that checks keys (the one of the other tests of
    // wrong credentials), with keys it does not know.
    let strict = cloud::strict_moto();
    let store = Store::open_with_env(
        &spec(
            "s3://pgbk/cluster-a",
            Some(url_of(strict)),
            Duration::from_secs(20),
        ),
        &AWS_ENV,
    )
    .unwrap();
    let e = store.list("", false, 10).unwrap_err();
    eprintln!("{}", Failure::from(e.clone()));
    assert_eq!(e.kind, StoreErrorKind::AuthFailed, "{e:?}");
    assert!(
        e.message.contains(&format!("127.0.0.1:{}", strict.port)),
        "{}",
        e.message
    );
    assert!(
        e.hint.as_deref().unwrap().contains("AWS_ACCESS_KEY_ID"),
        "{e:?}"
    );
    let all = format!("{e:?}");
    assert!(!all.contains("testing-secret-key"), "{all}");

    // Nothing listens.
    let dead = free_port();
    let store = Store::open_with_env(
        &spec(
            "s3://pgbk/x",
            Some(format!("http://127.0.0.1:{dead}")),
            Duration::from_secs(5),
        ),
        &AWS_ENV,
    )
    .unwrap();
    let e = store.read_small("a", 10).unwrap_err();
    eprintln!("{}", Failure::from(e.clone()));
    assert_eq!(e.kind, StoreErrorKind::Unreachable, "{e:?}");
    assert!(
        e.message.contains(&format!("127.0.0.1:{dead}")),
        "{}",
        e.message
    );
    // An escaping key is refused before any request (not Unreachable).
    assert_eq!(
        store.read_small("../other-cluster/x", 10).unwrap_err().kind,
        StoreErrorKind::InvalidConfig
    );

    // A server that accepts and never answers: bounded by the timeout
    // times the attempts, and named.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        silent.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok((c, _)) = silent.accept() {
                conns.push(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let timeout = Duration::from_secs(1);
    let store = local_s3(port, timeout);
    let read_all = |store: &Store, parallel: usize| {
        let mut out = Vec::new();
        let io = store
            .reader(&["k".into()], parallel)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        io.get_ref()
            .unwrap()
            .downcast_ref::<StoreError>()
            .unwrap()
            .clone()
    };
    for call in 0..4 {
        let t = Instant::now();
        let e = match call {
            0 => store.list("", false, 10).unwrap_err(),
            1 => store.size("k").unwrap_err(),
            2 => read_all(&store, 4),
            _ => read_all(&store, 1),
        };
        let took = t.elapsed();
        eprintln!("{took:?}: {}", Failure::from(e.clone()));
        assert_eq!(e.kind, StoreErrorKind::Timeout, "{e:?}");
        assert!(
            e.message.contains(&format!("127.0.0.1:{port}")) && e.message.contains("1 s"),
            "{}",
            e.message
        );
        // 3 attempts of 1 s at most, with backoff between them.
        assert!(
            took >= timeout && took < Duration::from_secs(5),
            "call {call} took {took:?}"
        );
    }
    drop(held);

    // A server that answers, sends part of the body and then goes silent:
    // a streamed GET has no limit on its whole length, only on silence.
    let stalling = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = stalling.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        use std::io::Write;
        let mut conns = Vec::new();
        stalling.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok((mut c, _)) = stalling.accept() {
                c.set_nonblocking(false).unwrap();
                let mut request = [0u8; 4096];
                let n = c.read(&mut request).unwrap_or(0);
                // A client resuming the body asks for the rest: answered as
                // S3 would (206 from that offset), and stalled again.
                let request = String::from_utf8_lossy(&request[..n]).to_ascii_lowercase();
                let from: u64 = request
                    .split("range: bytes=")
                    .nth(1)
                    .and_then(|r| r.split('-').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let head = if from == 0 {
                    "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n".to_string()
                } else {
                    format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\n\
                         Content-Range: bytes {from}-999/1000\r\n",
                        1000 - from
                    )
                };
                let _ = c.write_all(
                    format!(
                        "{head}ETag: \"e\"\r\nLast-Modified: Mon, 07 Dec 2026 00:00:00 GMT\r\n\r\n0123456789"
                    )
                    .as_bytes(),
                );
                conns.push(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let store = local_s3(port, timeout);
    let t = Instant::now();
    let e = read_all(&store, 1);
    let took = t.elapsed();
    eprintln!("{took:?}: {}", Failure::from(e.clone()));
    assert_eq!(e.kind, StoreErrorKind::Timeout, "{e:?}");
    assert!(
        e.message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        e.message
    );
    assert!(
        took >= timeout && took < Duration::from_secs(8),
        "a stalled body took {took:?}"
    );
    drop(held);
}

/// An S3 store at a local test server's `port`, with this read timeout.
fn local_s3(port: u16, timeout: Duration) -> Store {
    Store::open_with_env(
        &spec(
            "s3://pgbk/x",
            Some(format!("http://127.0.0.1:{port}")),
            timeout,
        ),
        &AWS_ENV,
    )
    .unwrap()
}

#[test]
fn azure_list_read_and_refusals_on_azurite() {
    let s = Scratch::new("store-azure");
    let server = cloud::azurite();
    let objects = fixture();
    let (container, env) = filled(server, "store-azure-list-read", &s, &objects);
    let env = refs(&env);
    let url = format!("{}/{AZURITE_ACCOUNT}/{container}/cluster-a", url_of(server));
    let store = Store::open_with_env(&spec(&url, None, Duration::from_secs(20)), &env).unwrap();
    assert_eq!(store.describe(), format!("store \"barman-cloud\" ({url})"));
    check_store(&store, &objects);

    // A wrong account key: refused, and never shown.
    let wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk=";
    let bad = azure_conn(server.port, wrong_key);
    let store = Store::open_with_env(
        &spec(&url, None, Duration::from_secs(20)),
        &[("AZURE_STORAGE_CONNECTION_STRING", bad.as_str())],
    )
    .unwrap();
    let e = store.list("", false, 10).unwrap_err();
    eprintln!("{}", Failure::from(e.clone()));
    assert_eq!(e.kind, StoreErrorKind::AuthFailed, "{e:?}");
    assert!(e
        .hint
        .as_deref()
        .unwrap()
        .contains("AZURE_STORAGE_CONNECTION_STRING"));
    assert!(!format!("{e:?}").contains(wrong_key), "{e:?}");

    // A missing container is named, and is not a missing object.
    let url = format!("{}/{AZURITE_ACCOUNT}/nocontainer/x", url_of(server));
    let store = Store::open_with_env(&spec(&url, None, Duration::from_secs(20)), &env).unwrap();
    no_bucket(&store, "container \"nocontainer\"");
}

/// Google Cloud Storage through STORAGE_EMULATOR_HOST, as
/// google-cloud-storage (barman-cloud) finds an emulator: every check the
/// other providers pass, against fake-gcs-server, and a missing bucket.
#[test]
fn gcs_list_read_and_reader_on_fake_gcs_server() {
    let s = Scratch::new("store-gcs");
    let server = cloud::gcs_emulator();
    let objects = fixture();
    let (bucket, env) = filled(server, "store-gcs-list-read", &s, &objects);
    let env = refs(&env);
    let url = format!("gs://{bucket}/cluster-a");
    let store = Store::open_with_env(&spec(&url, None, Duration::from_secs(20)), &env).unwrap();
    assert_eq!(
        store.describe(),
        format!("store \"barman-cloud\" ({url} at {})", url_of(server))
    );
    check_store(&store, &objects);

    // A missing bucket is named, in time, and is not a missing object.
    let nobucket = Store::open_with_env(
        &spec("gs://no-such-bucket/x", None, Duration::from_secs(20)),
        &env,
    )
    .unwrap();
    let t = Instant::now();
    no_bucket(&nobucket, "bucket \"no-such-bucket\"");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let e = nobucket.list("", true, 10).unwrap_err();
    assert!(
        e.message.contains(&format!("127.0.0.1:{}", server.port)),
        "{}",
        e.message
    );
}

/// The reader's throughput on moto, one range in flight against four (run
/// by hand: `cargo test --release -p pgclone --test tests -- --ignored
/// object_store::reader_throughput --nocapture`).
#[test]
#[ignore]
fn reader_throughput_on_moto() {
    let s = Scratch::new("store-s3-throughput");
    let server = cloud::moto();
    let object = noise(200 * MIB, 9);
    let (bucket, env) = filled(
        server,
        "store-s3-throughput",
        &s,
        &[("c/big".into(), object.clone())],
    );
    let store = Store::open_with_env(
        &spec(
            &format!("s3://{bucket}/c"),
            Some(url_of(server)),
            Duration::from_secs(60),
        ),
        &refs(&env),
    )
    .unwrap();
    for parallel in [1, 4, 1, 4] {
        let t = Instant::now();
        let mut got = Vec::with_capacity(object.len());
        store
            .reader(&["big".into()], parallel)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        let took = t.elapsed();
        assert!(got == object, "the reader's bytes differ");
        eprintln!(
            "parallel {parallel}: 200 MiB in {took:.2?}, {:.0} MiB/s",
            200.0 / took.as_secs_f64()
        );
    }
}
