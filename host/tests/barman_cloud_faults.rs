//! What goes wrong with a barman-cloud store, through the real `pgclone`
//! against the harness's real servers (moto's S3, Azurite) holding a real
//! barman-cloud-backup: wrong credentials, a missing bucket, server, backup
//! or part, a store that accepts connections and never answers, truncated,
//! corrupt and hostile objects, WAL that is not WAL or another cluster's.
//! Every case fails with its reason (the store, its host and the key named,
//! never a credential), the right status, and nothing left behind: the
//! target and the tablespace directory empty or absent after a clone,
//! nothing at %p after a wal-restore.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::cloud::{
    azurite, barman_cloud_backup, barman_cloud_wal_restore, moto, strict_moto, BackupOpts,
    Provider, Store,
};
use crate::support::{is_root, run_ok, standby_clone, stderr, stdout, Pg, Scratch};

/// The secret of the S3 stores the harness makes (moto takes any).
const S3_SECRET: &str = "pgclone-test-secret";

/// Objects put, copied and deleted with boto3 as a third party (or an
/// attacker with write access to the bucket) would. argv: bucket op args;
/// `put KEY` takes the body on stdin.
const S3_EDIT: &str = r#"
import os, sys, boto3
bucket, op = sys.argv[1:3]
c = boto3.client("s3", endpoint_url=os.environ["PGCLONE_TEST_S3_ENDPOINT"])
if op == "put":
    c.put_object(Bucket=bucket, Key=sys.argv[3], Body=sys.stdin.buffer.read())
elif op == "delete":
    c.delete_object(Bucket=bucket, Key=sys.argv[3])
elif op == "copy":
    src, dst = sys.argv[3:5]
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=src):
        for o in page.get("Contents", []):
            c.copy_object(Bucket=bucket, Key=dst + o["Key"][len(src):],
                          CopySource={"Bucket": bucket, "Key": o["Key"]})
else:
    sys.exit("unknown op " + op)
"#;

/// A gzip tar that tries to leave the directory it is unpacked into, made
/// with Python's tarfile as any tool could. argv: kind outside-dir; the
/// archive on stdout.
const HOSTILE_TAR: &str = r#"
import io, sys, tarfile
kind, outside = sys.argv[1:3]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz") as t:
    def add(name, data=b"escaped\n", **kw):
        i = tarfile.TarInfo(name)
        for k, v in kw.items():
            setattr(i, k, v)
        if i.type == tarfile.REGTYPE:
            i.size = len(data)
            t.addfile(i, io.BytesIO(data))
        else:
            t.addfile(i)
    add("PG_VERSION", b"15\n")
    if kind == "dotdot":
        add("../escape")
        add("base/../../escape")
    elif kind == "absolute":
        add(outside + "/absolute")
    elif kind == "symlink":
        add("link", type=tarfile.SYMTYPE, linkname=outside)
        add("link/through")
    else:
        sys.exit("unknown kind " + kind)
sys.stdout.buffer.write(buf.getvalue())
"#;

/// Runs [`S3_EDIT`] on `s`'s bucket with `args`, `stdin` its input.
fn edit(s: &Store, args: &[&str], stdin: &[u8]) {
    use std::io::Write;
    let mut c = s.tool("python");
    c.arg("-c")
        .arg(S3_EDIT)
        .arg(&s.bucket)
        .args(args)
        .env("PGCLONE_TEST_S3_ENDPOINT", s.endpoint_url.as_ref().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "edit {args:?}: {}", stderr(&out));
}

/// Puts `body` at `PREFIX/key`.
fn put(s: &Store, key: &str, body: &[u8]) {
    edit(s, &["put", &format!("{}/{key}", s.prefix)], body);
}

/// Deletes `PREFIX/key`.
fn delete(s: &Store, key: &str) {
    edit(s, &["delete", &format!("{}/{key}", s.prefix)], b"");
}

/// Copies every object under `PREFIX/from` to `PREFIX/to`.
fn copy_tree(s: &Store, from: &str, to: &str) {
    let p = &s.prefix;
    edit(
        s,
        &["copy", &format!("{p}/{from}"), &format!("{p}/{to}")],
        b"",
    );
}

/// A hostile archive of `kind` (see [`HOSTILE_TAR`]).
fn hostile_tar(store: &Store, kind: &str, outside: &Path) -> Vec<u8> {
    let out = store
        .tool("python")
        .arg("-c")
        .arg(HOSTILE_TAR)
        .arg(kind)
        .arg(outside)
        .output()
        .unwrap();
    assert!(out.status.success(), "tarfile {kind}: {}", stderr(&out));
    out.stdout
}

/// A primary with a tablespace, a gzip backup of it in parts in moto as
/// server `pg`, and where clones go.
struct Lab {
    sc: Scratch,
    primary: Pg,
    store: Store,
    id: String,
    ts_primary: PathBuf,
}

fn lab() -> Lab {
    let sc = Scratch::new("bc-faults");
    let store = moto().store("barman_cloud_faults");
    let mut primary = Pg::init(&sc, "primary");
    primary.start();
    let ts_primary = sc.mkdir("ts_primary");
    primary.sql(&format!(
        "CREATE TABLESPACE ts LOCATION '{}'",
        ts_primary.display()
    ));
    primary.sql("CREATE TABLE tt TABLESPACE ts AS SELECT g FROM generate_series(1, 300) g");
    let id = barman_cloud_backup(
        &primary,
        &store,
        "pg",
        &BackupOpts {
            compression: "gzip",
            max_archive_size: Some("1MB"),
            name: None,
        },
    );
    Lab {
        sc,
        primary,
        store,
        id,
        ts_primary,
    }
}

/// Store settings of a clone's configuration.
struct Conf<'a> {
    url: &'a str,
    endpoint: Option<&'a str>,
    provider: Provider,
    server: &'a str,
    read_timeout: u32,
}

impl Lab {
    fn conf(&self, name: &str, c: &Conf, ts: &Path) -> PathBuf {
        let mut text = format!(
            "node_id=2\nnode_name=node2\nbackup_source=barman-cloud\n\
             barman_cloud_url='{}'\nbarman_cloud_provider={}\nbarman_cloud_server={}\n\
             barman_cloud_read_timeout={}\ntablespace_mapping='{}={}'\n\
             restore_command='pgclone barman-cloud-wal-restore {} %f %p'\n",
            c.url,
            c.provider.name(),
            c.server,
            c.read_timeout,
            self.ts_primary.display(),
            ts.display(),
            c.url,
        );
        if let Some(e) = c.endpoint {
            text.push_str(&format!("barman_cloud_endpoint_url='{e}'\n"));
        }
        self.sc.write(name, &text)
    }

    /// The S3 settings of the lab's store, for `server`.
    fn s3<'a>(&'a self, server: &'a str) -> Conf<'a> {
        Conf {
            url: &self.store.url,
            endpoint: self.store.endpoint_url.as_deref(),
            provider: Provider::S3,
            server,
            read_timeout: 10,
        }
    }

    /// A clone with `c` into fresh `case-target` and `case-ts`, `env` its
    /// environment; returns its output, the target and the tablespace dir.
    fn clone(
        &self,
        case: &str,
        c: &Conf,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> (Output, PathBuf, PathBuf, Duration) {
        let target = self.sc.path(&format!("{case}-target"));
        let ts = self.sc.mkdir(&format!("{case}-ts"));
        let cfg = self.conf(&format!("{case}.conf"), c, &ts);
        let t = Instant::now();
        let out = standby_clone(&self.sc, &cfg, &self.primary, &target, extra, env);
        (out, target, ts, t.elapsed())
    }

    fn s3_env(&self) -> Vec<(&str, &str)> {
        self.store.env_refs()
    }
}

fn empty(d: &Path) -> bool {
    std::fs::read_dir(d).map_or(true, |mut r| r.next().is_none())
}

/// Both streams, for the secret check.
fn all_output(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// The clone failed with status 1 and every one of `wants`, no secret in
/// its output, the target and tablespace directory empty or absent.
fn failed_cleanly(
    case: &str,
    out: &Output,
    wants: &[&str],
    target: &Path,
    ts: &Path,
    secret: &str,
) {
    let all = all_output(out);
    // What the operator reads, shown with --nocapture.
    let said: Vec<&str> = all
        .lines()
        .filter(|l| ["ERROR", "DETAIL", "HINT"].iter().any(|p| l.starts_with(p)))
        .collect();
    eprintln!("{case}:\n  {}", said.join("\n  "));
    assert_eq!(out.status.code(), Some(1), "{case}: {all}");
    assert!(all.contains("ERROR"), "{case}: no ERROR in:\n{all}");
    for w in wants {
        assert!(all.contains(w), "{case}: missing {w:?} in:\n{all}");
    }
    assert!(
        !all.contains(secret),
        "{case}: the secret is in the output:\n{all}"
    );
    assert!(
        !all.contains(") complete"),
        "{case}: a failed clone says it completed:\n{all}"
    );
    assert!(
        empty(target),
        "{case}: {} not empty:\n{all}",
        target.display()
    );
    assert!(empty(ts), "{case}: {} not empty:\n{all}", ts.display());
}

/// A TCP server that accepts connections and never answers (a store stuck
/// behind a load balancer); its port. The connections stay open as long
/// as the test process.
fn silent_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().flatten() {
            held.push(c);
        }
    });
    port
}

/// Every clone fault against one primary and one backup, in turn (a clone
/// takes a moment; a primary and a backup take more).
#[test]
fn clones_from_a_faulty_store_fail_cleanly() {
    if !is_root() {
        eprintln!("skipped: needs root (servers run as postgres)");
        return;
    }
    let started = Instant::now();
    let lab = lab();
    let env = lab.s3_env();
    let host = format!("127.0.0.1:{}", moto().port);

    // A missing bucket: named, with its host.
    let url = lab
        .store
        .url
        .replace(&lab.store.bucket, "no-such-bucket-pgclone");
    let mut c = lab.s3("pg");
    c.url = &url;
    let (out, t, ts, _) = lab.clone("nobucket", &c, &env, &[]);
    failed_cleanly(
        "missing bucket",
        &out,
        &["bucket \"no-such-bucket-pgclone\" does not exist", &host],
        &t,
        &ts,
        S3_SECRET,
    );

    // A server the store has no backup of: the servers it has are listed.
    let (out, t, ts, _) = lab.clone("noserver", &lab.s3("other"), &env, &[]);
    failed_cleanly(
        "missing server",
        &out,
        &["no backup of server \"other\"", "pg"],
        &t,
        &ts,
        S3_SECRET,
    );

    // A backup id the server does not have: the ones it has are listed.
    let (out, t, ts, _) = lab.clone(
        "noid",
        &lab.s3("pg"),
        &env,
        &["--backup-id", "20000101T000000"],
    );
    failed_cleanly(
        "missing backup id",
        &out,
        &["20000101T000000", &lab.id],
        &t,
        &ts,
        S3_SECRET,
    );

    // A part deleted after barman-cloud wrote it.
    let base = format!("pg/base/{}/", lab.id);
    copy_tree(&lab.store, &base, &format!("gap/base/{}/", lab.id));
    delete(&lab.store, &format!("gap/base/{}/data_0001.tar.gz", lab.id));
    let (out, t, ts, _) = lab.clone("gap", &lab.s3("gap"), &env, &[]);
    failed_cleanly(
        "missing part",
        &out,
        &["part 0001 of \"data\" is missing"],
        &t,
        &ts,
        S3_SECRET,
    );

    // A truncated part and a corrupt one: the object named, nothing kept.
    let first = format!("{base}data.tar.gz");
    let original = lab.store.get(&first);
    assert!(
        original.len() > 64 << 10,
        "a part of {} bytes",
        original.len()
    );
    for (case, body) in [
        ("truncated", original[..original.len() / 2].to_vec()),
        ("corrupt", {
            let mut b = original.clone();
            let mid = b.len() / 2;
            for x in &mut b[mid..mid + 64] {
                *x ^= 0x5a;
            }
            b
        }),
    ] {
        copy_tree(&lab.store, &base, &format!("{case}/base/{}/", lab.id));
        let key = format!("{case}/base/{}/data.tar.gz", lab.id);
        put(&lab.store, &key, &body);
        let (out, t, ts, _) = lab.clone(case, &lab.s3(case), &env, &[]);
        failed_cleanly(
            case,
            &out,
            &["corrupt or truncated", &key],
            &t,
            &ts,
            S3_SECRET,
        );
    }

    // Hostile archives: refused, nothing written outside the target.
    let outside = lab.sc.mkdir("outside");
    for (kind, want) in [
        ("dotdot", "escape"),
        ("absolute", "absolute"),
        ("symlink", "link"),
    ] {
        let server = format!("hostile-{kind}");
        copy_tree(&lab.store, &base, &format!("{server}/base/{}/", lab.id));
        let names: Vec<String> = lab
            .store
            .list(&format!("{server}/base/{}/", lab.id))
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.contains("/data_"))
            .collect();
        for k in names {
            delete(&lab.store, &k);
        }
        put(
            &lab.store,
            &format!("{server}/base/{}/data.tar.gz", lab.id),
            &hostile_tar(&lab.store, kind, &outside),
        );
        let (out, t, ts, _) = lab.clone(&server, &lab.s3(&server), &env, &[]);
        failed_cleanly(kind, &out, &[want], &t, &ts, S3_SECRET);
        assert!(
            empty(&outside),
            "{kind}: written outside:\n{}",
            all_output(&out)
        );
        assert!(
            !lab.sc.path("escape").exists(),
            "{kind}: ../escape written:\n{}",
            all_output(&out)
        );
    }

    // A store that accepts connections and never answers: bounded, host named.
    let port = silent_server();
    let silent = format!("http://127.0.0.1:{port}");
    let mut c = lab.s3("pg");
    c.endpoint = Some(&silent);
    c.read_timeout = 1;
    let (out, t, ts, took) = lab.clone("silent", &c, &env, &[]);
    failed_cleanly(
        "silent store",
        &out,
        &[&format!("127.0.0.1:{port} sent nothing for 1 s")],
        &t,
        &ts,
        S3_SECRET,
    );
    assert!(took < Duration::from_secs(30), "the clone took {took:?}");

    // Wrong credentials, where the server checks them (moto takes any
    // keys unless its IAM emulation is switched on for the whole server;
    // Azurite checks the account key's signature): refused, with where
    // credentials are looked for, and the key never shown.
    let az = azurite().store("barman_cloud_faults_auth");
    let wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3Jvbmc=";
    let good = &az.env[0].1;
    let key_start = good.find("AccountKey=").unwrap() + "AccountKey=".len();
    let key_end = key_start + good[key_start..].find(';').unwrap();
    let real_key = good[key_start..key_end].to_string();
    let bad = format!("{}{wrong_key}{}", &good[..key_start], &good[key_end..]);
    let az_conf = Conf {
        url: &az.url,
        endpoint: None,
        provider: Provider::Azure,
        server: "pg",
        read_timeout: 10,
    };
    let az_host = format!("127.0.0.1:{}", azurite().port);
    let (out, t, ts, _) = lab.clone(
        "azauth",
        &az_conf,
        &[("AZURE_STORAGE_CONNECTION_STRING", &bad)],
        &[],
    );
    failed_cleanly(
        "wrong key",
        &out,
        &[
            &format!("{az_host} refused the credentials"),
            "AZURE_STORAGE",
        ],
        &t,
        &ts,
        wrong_key,
    );
    // A container that does not exist, with the right key.
    let url = az.url.replace(&az.bucket, "no-such-container");
    let mut c = az_conf;
    c.url = &url;
    let (out, t, ts, _) = lab.clone("nocontainer", &c, &az.env_refs(), &[]);
    failed_cleanly(
        "missing container",
        &out,
        &["container \"no-such-container\" does not exist", &az_host],
        &t,
        &ts,
        &real_key,
    );
    clones_with_wrong_s3_credentials_fail_cleanly(&lab);
    a_plugin_reaching_outside_its_grant_is_refused(&lab);
    eprintln!("clone faults: {:?}", started.elapsed());
}

/// The value of `name` in `env`.
fn env_value<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    &env.iter().find(|(k, _)| k == name).unwrap().1
}

/// `s`'s environment with `name` set to `value`.
fn env_with<'a>(s: &'a Store, name: &'a str, value: &'a str) -> Vec<(&'a str, &'a str)> {
    s.env_refs()
        .into_iter()
        .map(|(k, v)| if k == name { (k, value) } else { (k, v) })
        .collect()
}

/// A wrong secret and an unknown key id against the moto that checks them
/// (IAM emulation on): the lab's primary backed up into it, a dry run with
/// the right key passes (the store, backup and grant work), then each wrong
/// key fails with the host named, where credentials are looked for, and
/// neither secret shown.
fn clones_with_wrong_s3_credentials_fail_cleanly(lab: &Lab) {
    let store = strict_moto().store("barman_cloud_faults_s3auth");
    barman_cloud_backup(&lab.primary, &store, "pg", &BackupOpts::default());
    let conf = Conf {
        url: &store.url,
        endpoint: store.endpoint_url.as_deref(),
        provider: Provider::S3,
        server: "pg",
        read_timeout: 10,
    };
    let (out, _, _, _) = lab.clone("s3auth-ok", &conf, &store.env_refs(), &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let secret = env_value(&store.env, "AWS_SECRET_ACCESS_KEY");
    let host = format!("127.0.0.1:{}", strict_moto().port);
    let refused = format!("{host} refused the credentials");
    let wrong_secret = "pgclone-wrong-secret-0123456789abcdefghij";
    for (case, var, value, code) in [
        (
            "wrong secret",
            "AWS_SECRET_ACCESS_KEY",
            wrong_secret,
            "SignatureDoesNotMatch",
        ),
        (
            "unknown key id",
            "AWS_ACCESS_KEY_ID",
            "AKIAPGCLONEUNKNOWN00",
            "InvalidAccessKeyId",
        ),
    ] {
        let env = env_with(&store, var, value);
        let dir = case.replace(' ', "-");
        let (out, t, ts, _) = lab.clone(&dir, &conf, &env, &[]);
        let wants = [
            refused.as_str(),
            code,
            "AWS_ACCESS_KEY_ID",
            "Used: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ];
        failed_cleanly(case, &out, &wants, &t, &ts, secret);
        let all = all_output(&out);
        assert!(!all.contains(wrong_secret), "{case}: {all}");
    }
}

/// `tests/components/reacher`, granted `store-read:barman-cloud:pg/` only,
/// reaching for the rest of the store (where `other/marker` is, readable by
/// anyone granted it) and for a store it was not granted: each call refused
/// by name before any request; its plans and WAL answers the same.
fn a_plugin_reaching_outside_its_grant_is_refused(lab: &Lab) {
    put(&lab.store, "pg/marker", b"inside");
    put(&lab.store, "other/marker", b"outside");
    let plugins = lab.sc.path("etc/plugins.toml");
    let wasm = lab.sc.path("reacher.wasm");
    std::fs::copy(crate::support::component("test_reacher"), &wasm).unwrap();
    run_ok(Command::new("chown").args(["postgres:postgres"]).arg(&wasm));
    let ts = lab.sc.mkdir("reacher-ts");
    let cfg = lab.sc.write(
        "reacher.conf",
        &format!(
            "node_id=2\nnode_name=node2\nbackup_source=test-reacher\nplugins_config='{}'\n\
             barman_cloud_url='{}'\nbarman_cloud_endpoint_url='{}'\nbarman_cloud_read_timeout=10\n\
             tablespace_mapping='{}={}'\nrestore_command='false'\n",
            plugins.display(),
            lab.store.url,
            lab.store.endpoint_url.as_deref().unwrap(),
            lab.ts_primary.display(),
            ts.display(),
        ),
    );
    let s = |p: &Path| p.display().to_string();
    let out = crate::support::pgclone(
        &lab.sc,
        &[
            "-f",
            &s(&cfg),
            "plugin",
            "install",
            &s(&wasm),
            "--grant-all",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", all_output(&out));
    let env = lab.s3_env();
    let clone = |case: &str, extra: &[&str]| {
        let target = lab.sc.path(&format!("reacher-{case}"));
        let mut args = vec!["--backup-id", case];
        args.extend(extra);
        let out = standby_clone(&lab.sc, &cfg, &lab.primary, &target, &args, &env);
        (out, target)
    };

    // Inside the grant, the calls are answered: the store and grant work.
    for case in ["list-ok", "read-ok"] {
        let (out, _) = clone(case, &["--dry-run"]);
        let all = all_output(&out);
        assert_eq!(out.status.code(), Some(0), "{case}: {all}");
        assert!(!all.contains("refused"), "{case}: {all}");
    }
    for (case, call, key) in [
        (
            "list-dotdot",
            "store-list",
            "store-read:barman-cloud:pg/../other/ ",
        ),
        (
            "list-other",
            "store-list",
            "store-read:barman-cloud:other/ ",
        ),
        ("list-root", "store-list", "store-read:barman-cloud in "),
        (
            "list-sibling",
            "store-list",
            "store-read:barman-cloud:pg-other/ ",
        ),
        (
            "read-dotdot",
            "store-read",
            "store-read:barman-cloud:pg/../other/marker ",
        ),
        (
            "read-absolute",
            "store-read",
            "store-read:barman-cloud:/pg/marker ",
        ),
        (
            "read-other",
            "store-read",
            "store-read:barman-cloud:other/marker ",
        ),
        ("other-store", "store-list", "store-read:other-store:pg/ "),
    ] {
        let (out, target) = clone(case, &[]);
        let all = all_output(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {all}");
        let function = format!("host function {call} was refused");
        for w in [key, &function, "plugin \"test-reacher\""] {
            assert!(all.contains(w), "{case}: no {w:?} in:\n{all}");
        }
        assert!(!all.contains("bytes"), "{case}: something was read:\n{all}");
        assert!(empty(&target), "{case}: {all}");
        assert!(empty(&ts), "{case}: {all}");
    }
    // A plan that unpacks an object outside the grant: refused as a plan.
    for case in ["unpack-other", "unpack-dotdot"] {
        let (out, target) = clone(case, &[]);
        let all = all_output(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {all}");
        for w in [
            "plugin \"test-reacher\" plans to read an object it may not read",
            "of store \"barman-cloud\": the plugin did not declare it",
        ] {
            assert!(all.contains(w), "{case}: no {w:?} in:\n{all}");
        }
        assert!(empty(&target), "{case}: {all}");
    }
    // WAL from a prefix outside the grant: refused, nothing at %p.
    let dest = recovering(&lab.sc, &lab.primary, "reacher-standby", "standby.signal");
    let out = crate::support::pgclone(
        &lab.sc,
        &[
            "-f",
            &s(&cfg),
            "wal-restore",
            "--spool-dir",
            &s(&lab.sc.path("reacher-spool")),
            "000000010000000000000001",
            &s(&dest),
        ],
        &env,
    );
    let all = all_output(&out);
    assert!(
        matches!(out.status.code(), Some(2..=4)),
        "locate-wal-archive: {all}"
    );
    for w in ["locate-wal-archive", "store-read:barman-cloud:other/wals/"] {
        assert!(all.contains(w), "no {w:?} in:\n{all}");
    }
    assert!(!dest.exists(), "{all}");
}

/// A data directory for %p (`DIR/pg_wal/RECOVERYXLOG`) with the primary's
/// control file (the system identifier checked), in standby mode or a
/// targeted recovery; returns %p.
fn recovering(sc: &Scratch, primary: &Pg, name: &str, signal: &str) -> PathBuf {
    let dir = sc.mkdir(name);
    std::fs::create_dir_all(dir.join("pg_wal")).unwrap();
    std::fs::create_dir_all(dir.join("global")).unwrap();
    std::fs::copy(primary.data.join("PG_VERSION"), dir.join("PG_VERSION")).unwrap();
    std::fs::copy(
        primary.data.join("global/pg_control"),
        dir.join("global/pg_control"),
    )
    .unwrap();
    std::fs::write(dir.join(signal), "").unwrap();
    run_ok(
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir),
    );
    dir.join("pg_wal/RECOVERYXLOG")
}

/// `pgclone barman-cloud-wal-restore` for `wal` into `dest`.
fn wal_restore(
    sc: &Scratch,
    store: &Store,
    server: &str,
    wal: &str,
    dest: &Path,
    extra: &[&str],
) -> (Output, Duration) {
    let spool = sc.path("spool");
    let mut args: Vec<String> = vec!["barman-cloud-wal-restore".into()];
    args.extend(store.cloud_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([
        "--spool-dir".into(),
        spool.display().to_string(),
        store.url.clone(),
        server.into(),
        wal.into(),
        dest.display().to_string(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = Instant::now();
    // The credentials in its environment, not on any command line.
    let out = store.pgclone(sc, &refs, &[]);
    (out, t.elapsed())
}

/// `store` with its environment variable `name` set to `value`.
fn store_with(store: &Store, name: &str, value: &str) -> Store {
    Store {
        provider: store.provider,
        bucket: store.bucket.clone(),
        prefix: store.prefix.clone(),
        url: store.url.clone(),
        endpoint_url: store.endpoint_url.clone(),
        env: store
            .env
            .iter()
            .map(|(k, v)| (k.clone(), if k == name { value.into() } else { v.clone() }))
            .collect(),
    }
}

/// `store` at another bucket (container) of the same server.
fn store_in(store: &Store, bucket: &str) -> Store {
    Store {
        url: store.url.replace(&store.bucket, bucket),
        bucket: bucket.into(),
        ..store_with(store, "", "")
    }
}

/// A connection string's `AccountKey` replaced by `key`; and the old key.
fn with_account_key(conn: &str, key: &str) -> (String, String) {
    let start = conn.find("AccountKey=").unwrap() + "AccountKey=".len();
    let end = start + conn[start..].find(';').unwrap();
    (
        format!("{}{key}{}", &conn[..start], &conn[end..]),
        conn[start..end].to_string(),
    )
}

/// `segment` (`wal`) archived in the moto that checks credentials and in
/// Azurite: delivered with the right ones; with a wrong secret, an unknown
/// key id or a wrong account key, refused with status 3 (as the Barman
/// path's refused ssh login: retried, then 128 in a targeted recovery), the
/// host and where credentials are looked for named, no secret shown,
/// nothing at %p. Then, with the right credentials, a missing bucket or
/// container is a configuration error (2) that says so, unlike a segment
/// not archived (1), on S3 and Azure.
fn wal_restore_with_wrong_credentials_or_no_bucket(
    sc: &Scratch,
    primary: &Pg,
    moto_store: &Store,
    wal: &str,
    segment: &[u8],
) {
    let key = format!("pg/wals/{}/{wal}", &wal[..16]);
    let s3 = strict_moto().store("barman_cloud_faults_wal_s3auth");
    let az = azurite().store("barman_cloud_faults_wal_azauth");
    s3.put(&key, segment);
    az.put(&key, segment);
    let wrong_secret = "pgclone-wrong-secret-0123456789abcdefghij";
    let wrong_az_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3Jvbmc=";
    let conn = env_value(&az.env, "AZURE_STORAGE_CONNECTION_STRING");
    let (bad_conn, az_key) = with_account_key(conn, wrong_az_key);
    let s3_secret = env_value(&s3.env, "AWS_SECRET_ACCESS_KEY").to_string();
    let cases = [
        (
            "s3 wrong secret",
            store_with(&s3, "AWS_SECRET_ACCESS_KEY", wrong_secret),
            strict_moto().port,
            "Used: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        (
            "s3 unknown key id",
            store_with(&s3, "AWS_ACCESS_KEY_ID", "AKIAPGCLONEUNKNOWN00"),
            strict_moto().port,
            "Used: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        (
            "azure wrong key",
            store_with(&az, "AZURE_STORAGE_CONNECTION_STRING", &bad_conn),
            azurite().port,
            "AZURE_STORAGE_CONNECTION_STRING",
        ),
    ];
    let secrets = [wrong_secret, &s3_secret, wrong_az_key, &az_key];
    for store in [&s3, &az] {
        let dest = recovering(
            sc,
            primary,
            &format!("auth-ok-{}", store.bucket),
            "standby.signal",
        );
        let (out, _) = wal_restore(sc, store, "pg", wal, &dest, &["-p", "0"]);
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
        assert!(std::fs::read(&dest).unwrap() == segment);
    }
    for (case, store, port, used) in &cases {
        for (signal, code) in [("standby.signal", 3), ("recovery.signal", 128)] {
            let name = format!("{}-{signal}", case.replace(' ', "-"));
            let dest = recovering(sc, primary, &name, signal);
            let (out, _) = wal_restore(
                sc,
                store,
                "pg",
                wal,
                &dest,
                &["-p", "0", "--retry-for", "0"],
            );
            let all = all_output(&out);
            eprintln!("{case} ({signal}):\n{all}");
            assert_eq!(out.status.code(), Some(code), "{case}: {all}");
            let refused = format!("127.0.0.1:{port} refused the credentials");
            // Stopping a targeted recovery says how to resume instead.
            let hint = if code == 3 {
                *used
            } else {
                "start the server again"
            };
            for w in [refused.as_str(), "HINT", hint] {
                assert!(all.contains(w), "{case}: no {w:?} in:\n{all}");
            }
            for secret in secrets {
                assert!(!all.contains(secret), "{case}: a secret in:\n{all}");
            }
            assert!(!dest.exists(), "{case}: something at %p: {all}");
        }
    }

    // A missing bucket (container) against a segment not archived.
    for (store, word) in [(moto_store, "bucket"), (&az, "container")] {
        let dest = recovering(sc, primary, &format!("unarchived-{word}"), "standby.signal");
        let (out, _) = wal_restore(
            sc,
            store,
            "pg",
            "0000000100000000000000F0",
            &dest,
            &["-p", "0"],
        );
        let all = all_output(&out);
        eprintln!("not archived ({word}):\n{all}");
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(!all.contains("does not exist"), "{all}");
        assert!(!dest.exists(), "{all}");

        let missing = store_in(store, "no-such-bucket-pgclone");
        let dest = recovering(sc, primary, &format!("no-{word}"), "standby.signal");
        let (out, _) = wal_restore(sc, &missing, "pg", wal, &dest, &["-p", "0"]);
        let all = all_output(&out);
        eprintln!("missing {word}:\n{all}");
        assert_eq!(out.status.code(), Some(2), "{all}");
        let said = format!("{word} \"no-such-bucket-pgclone\" does not exist at 127.0.0.1:");
        for w in [said.as_str(), "HINT: Check the store's URL"] {
            assert!(all.contains(w), "missing {word}: no {w:?} in:\n{all}");
        }
        assert!(!dest.exists(), "{all}");
    }
}

/// WAL from a faulty store: nothing delivered, the status PostgreSQL needs.
#[test]
fn wal_restore_from_a_faulty_store_delivers_nothing() {
    if !is_root() {
        eprintln!("skipped: needs root (servers run as postgres)");
        return;
    }
    let started = Instant::now();
    let sc = Scratch::new("bc-faults-wal");
    let store = moto().store("barman_cloud_faults_wal");
    let mut primary = Pg::init(&sc, "primary");
    primary.start();
    primary.sql("SELECT txid_current()");
    let wal = primary.sql("SELECT pg_walfile_name(pg_switch_wal())");
    primary.sql("CHECKPOINT");
    let segment = std::fs::read(primary.data.join("pg_wal").join(&wal)).unwrap();
    assert_eq!(segment.len(), 16 << 20);
    let dir = format!("pg/wals/{}/", &wal[..16]);
    // The same position's segment in three stores' servers: the real one,
    // 16 MiB of noise, and the real one with another system identifier
    // (what another cluster's segment is: the long page header's xlp_sysid).
    let noise: Vec<u8> = {
        let mut v = vec![0u8; 16 << 20];
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut v)
            .unwrap();
        v
    };
    let mut other = segment.clone();
    for x in &mut other[24..32] {
        *x ^= 0xff;
    }
    put(&store, &format!("{dir}{wal}"), &segment);
    put(&store, &format!("noise/wals/{}/{wal}", &wal[..16]), &noise);
    put(&store, &format!("other/wals/{}/{wal}", &wal[..16]), &other);

    // The real one is delivered: the store and the command line work.
    let dest = recovering(&sc, &primary, "standby-ok", "standby.signal");
    let (out, _) = wal_restore(&sc, &store, "pg", &wal, &dest, &["-p", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(std::fs::read(&dest).unwrap() == segment);

    wal_restore_with_wrong_credentials_or_no_bucket(&sc, &primary, &store, &wal, &segment);

    // A segment archived only as `.partial` (a standby's last one at its
    // promotion): delivered as barman-cloud-wal-restore delivers it,
    // unless --no-partial.
    put(
        &store,
        &format!("partial/wals/{}/{wal}.partial", &wal[..16]),
        &segment,
    );
    let theirs = sc.path("partial-theirs");
    let out = barman_cloud_wal_restore(&store, "partial", &wal, &theirs);
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(std::fs::read(&theirs).unwrap() == segment);
    let dest = recovering(&sc, &primary, "standby-partial", "standby.signal");
    let (out, _) = wal_restore(&sc, &store, "partial", &wal, &dest, &["-p", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(std::fs::read(&dest).unwrap() == segment);
    let dest = recovering(&sc, &primary, "standby-no-partial", "standby.signal");
    let (out, _) = wal_restore(
        &sc,
        &store,
        "partial",
        &wal,
        &dest,
        &["-p", "0", "--no-partial"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert!(!dest.exists());

    for (server, want) in [
        ("noise", "WAL"),
        ("other", "belongs to the database system"),
    ] {
        let dest = recovering(
            &sc,
            &primary,
            &format!("standby-{server}"),
            "standby.signal",
        );
        let (out, _) = wal_restore(&sc, &store, server, &wal, &dest, &["-p", "0"]);
        let all = all_output(&out);
        assert_eq!(out.status.code(), Some(4), "{server}: {all}");
        assert!(all.contains(want), "{server}: no {want:?} in {all}");
        assert!(!all.contains(S3_SECRET), "{all}");
        assert!(!dest.exists(), "{server}: something at %p: {all}");
    }

    // A store that accepts and never answers: standby mode says 3 at once;
    // a targeted recovery retries, then stops recovery (128).
    let port = silent_server();
    let endpoint = format!("http://127.0.0.1:{port}");
    let silent = Store {
        provider: store.provider,
        bucket: store.bucket.clone(),
        prefix: store.prefix.clone(),
        url: store.url.clone(),
        endpoint_url: Some(endpoint),
        env: store.env.clone(),
    };
    for (signal, code, retry, bound) in [
        ("standby.signal", 3, "0", Duration::from_secs(20)),
        ("recovery.signal", 128, "3", Duration::from_secs(30)),
    ] {
        let dest = recovering(&sc, &primary, &format!("silent-{signal}"), signal);
        let (out, took) = wal_restore(
            &sc,
            &silent,
            "pg",
            &wal,
            &dest,
            &["-p", "0", "--read-timeout", "1", "--retry-for", retry],
        );
        let all = all_output(&out);
        assert_eq!(out.status.code(), Some(code), "{signal}: {all}");
        assert!(
            all.contains(&format!("127.0.0.1:{port}")),
            "{signal}: {all}"
        );
        assert!(!all.contains(S3_SECRET), "{all}");
        assert!(!dest.exists(), "{signal}: something at %p: {all}");
        assert!(took < bound, "{signal}: took {took:?}: {all}");
        if code == 128 {
            assert!(all.contains("retrying"), "{all}");
        }
    }
    eprintln!("wal-restore faults: {:?}", started.elapsed());
}
