//! Real object-store servers on loopback — moto's S3 server, Azurite (Azure
//! Blob Storage) and fake-gcs-server (Google Cloud Storage) — and
//! Barman's own cloud tools (barman-cloud 3.19.1) writing real backups and WAL
//! into them. The servers run as the postgres user, one of each per test
//! binary, shared by the tests: each test gets a bucket (container) of its
//! own. They die with the test process (see [`spawn_server`]).
//!
//! The layout barman-cloud 3.19.1 writes (seen here; URL = `.../BUCKET/PREFIX`):
//! - `PREFIX/SERVER/base/BACKUP_ID/backup.info`: `key=value` lines, values in
//!   Python's repr (`backup_label='START WAL LOCATION: ...\n...'`,
//!   `tablespaces=[('tsp', 16384, '/path')]` or `None`, `backup_name=NAME` or
//!   `None`, `status=DONE`, `begin_wal`, `end_wal`, `timeline`, `systemid`,
//!   `version=150018`, `xlog_segment_size`, `begin_xlog`, `end_xlog`, ...).
//!   `compression=None` whatever the compression (it is read from the
//!   suffixes) and `server_name=cloud` whatever SERVER is. BACKUP_ID is the
//!   start time, `YYYYMMDDTHHMMSS`.
//! - `data.tar[.gz|.bz2|.lz4|.snappy]`, then, each time a part grew past
//!   `--max-archive-size` (checked between files, so a part overshoots by up
//!   to one file), `data_0001.tar.gz`, `data_0002.tar.gz`, ...: each part is
//!   a whole tar stream, compressed on its own. Members are relative to
//!   PGDATA (`.`, `base/5/1259`, `pg_wal` and `pg_tblspc` as empty
//!   directories: barman-cloud-restore makes the tablespace links from
//!   backup.info); `global/pg_control` and `backup_label` are in the last
//!   part. Tablespaces: `OID.tar[...]`, `OID_0001.tar[...]`, members
//!   `PG_15_202209061/...` relative to the tablespace's directory. lz4 is the
//!   lz4 frame format (`04 22 4d 18`), snappy the framing format
//!   (`ff 06 00 00 sNaPpY`).
//! - `PREFIX/SERVER/wals/TTTTTTTTXXXXXXXX/NAME[.gz|.bz2|.xz|.snappy|.lz4|.zst]`
//!   (`-z`, `-j`, `--xz`, `--snappy`, `--lz4`, `--zstd`; `--zstd` needs the
//!   `zstandard` module, not in the test venv), the directory being the
//!   segment name's first 16 characters; backup labels
//!   `NAME.XXXXXXXX.backup[.gz]` beside their segment; history files
//!   `TTTTTTTT.history[.gz]` in `wals/` itself.

#![allow(dead_code)] // the benchmarks share the support module and use parts of it

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{is_root, Pg, Scratch};

/// The bin directory of the venv with barman-cloud 3.19.1, moto and the
/// cloud SDKs, installed by scripts/test-deps.sh (`PGCLONE_TEST_BARMAN_CLOUD_BIN`).
pub fn barman_cloud_bin() -> PathBuf {
    dep(
        "PGCLONE_TEST_BARMAN_CLOUD_BIN",
        "barmancloud/bin",
        "barman-cloud-backup",
    )
}

fn azurite_bin() -> PathBuf {
    dep(
        "PGCLONE_TEST_AZURITE",
        "azurite/node_modules/.bin/azurite-blob",
        "",
    )
}

fn fake_gcs_server_bin() -> PathBuf {
    dep(
        "PGCLONE_TEST_FAKE_GCS_SERVER",
        "fakegcs/bin/fake-gcs-server",
        "",
    )
}

/// `var`, else `target/test-deps/DEFAULT`; `probe` is a file in it that must exist.
fn dep(var: &str, default: &str, probe: &str) -> PathBuf {
    let p = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/test-deps")
            .join(default)
    });
    let check = if probe.is_empty() {
        p.clone()
    } else {
        p.join(probe)
    };
    assert!(
        check.exists(),
        "{} not found: run scripts/test-deps.sh, which installs it (or set {var})",
        check.display()
    );
    p
}

/// The postgres user's uid and gid.
fn postgres_ids() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
        assert!(!pw.is_null(), "no postgres user");
        unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
    })
}

/// `program` run as the postgres user (when we are root) with nothing of our
/// environment but a PATH. Environment, not `env K=V` arguments: the
/// credentials never reach a command line.
fn as_postgres(program: impl AsRef<std::ffi::OsStr>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(program);
    if is_root() {
        let (uid, gid) = postgres_ids();
        c.uid(uid).gid(gid);
    }
    c.env_clear()
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", super::pg_bindir().display()),
        )
        .env("HOME", "/nonexistent")
        .current_dir("/");
    c
}

/// What a command printed, for failure messages. The command is named by its
/// program and arguments only: its environment holds credentials.
fn describe(program: &str, args: &[String], out: &Output) -> String {
    format!(
        "{program} {} ({}):\n{}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Which protocol a server speaks, named as barman-cloud's `--cloud-provider`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    S3,
    Azure,
    Gcs,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::S3 => "aws-s3",
            Provider::Azure => "azure-blob-storage",
            Provider::Gcs => "google-cloud-storage",
        }
    }
}

/// Azurite's account and its key, published in Azure's documentation for the
/// emulators (not a secret; still kept out of argv and logs like a real one).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// One object-store server, running until the test process ends.
pub struct ObjectServer {
    pub provider: Provider,
    pub port: u16,
    /// The access key and secret of a server that checks them (see
    /// [`strict_moto`]); `None` for a server that takes any.
    creds: Option<(String, String)>,
    /// Bucket names handed out, to keep tests apart.
    taken: Mutex<Vec<String>>,
}

/// The S3 server (moto), started by the first test that asks.
pub fn moto() -> &'static ObjectServer {
    static S: OnceLock<ObjectServer> = OnceLock::new();
    S.get_or_init(|| {
        let port = super::free_port();
        let bin = barman_cloud_bin().join("moto_server");
        let mut c = as_postgres(&bin);
        c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        spawn_server("moto", c, port);
        ObjectServer::new(Provider::S3, port)
    })
}

/// Makes moto's IAM user `pgclone-test` with an access key and a policy
/// allowing every S3 action; prints `KEY_ID SECRET`. Its three requests are
/// the free ones (INITIAL_NO_AUTH_ACTION_COUNT) of [`strict_moto`].
const MOTO_IAM_USER: &str = r#"
import json, os, boto3
iam = boto3.client("iam", endpoint_url=os.environ["PGCLONE_TEST_S3_ENDPOINT"], region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="pgclone-test")
k = iam.create_access_key(UserName="pgclone-test")["AccessKey"]
iam.put_user_policy(UserName="pgclone-test", PolicyName="s3", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
print(k["AccessKeyId"], k["SecretAccessKey"])
"#;

/// A second moto that checks signatures and keys as S3 does (its IAM
/// emulation, on for the whole server once its first three requests, which
/// make the user, are spent): for the tests of wrong credentials, which
/// share it. The shared [`moto`] takes any keys. Its stores carry the IAM
/// user's real key.
pub fn strict_moto() -> &'static ObjectServer {
    static S: OnceLock<ObjectServer> = OnceLock::new();
    S.get_or_init(|| {
        let port = super::free_port();
        let mut c = as_postgres(barman_cloud_bin().join("moto_server"));
        c.env("INITIAL_NO_AUTH_ACTION_COUNT", "3").args([
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]);
        spawn_server("moto-strict", c, port);
        let out = as_postgres(barman_cloud_bin().join("python"))
            .arg("-c")
            .arg(MOTO_IAM_USER)
            .env(
                "PGCLONE_TEST_S3_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "moto IAM user: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (id, secret) = text.trim().split_once(' ').expect("KEY_ID SECRET");
        let mut s = ObjectServer::new(Provider::S3, port);
        s.creds = Some((id.to_string(), secret.to_string()));
        s
    })
}

/// Azurite's blob service, started by the first test that asks. In memory;
/// `--skipApiVersionCheck` because the Azure SDK in the venv is newer than the
/// API versions Azurite knows; no telemetry (it would call out to Azure).
pub fn azurite() -> &'static ObjectServer {
    static S: OnceLock<ObjectServer> = OnceLock::new();
    S.get_or_init(|| {
        let port = super::free_port();
        let mut c = as_postgres(azurite_bin());
        // node is found on the PATH as the script's `#!/usr/bin/env node`
        // asks; Azurite writes its debug log nowhere and its data in memory.
        c.args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ]);
        spawn_server("azurite", c, port);
        ObjectServer::new(Provider::Azure, port)
    })
}

/// fake-gcs-server (Google Cloud Storage), in memory, started by the first
/// test that asks. Both clients reach it: google-cloud-storage (barman-cloud)
/// through STORAGE_EMULATOR_HOST with the JSON API, object_store (pgclone)
/// with the XML API, which it serves to requests whose Host is
/// `-public-host` (hence the same address there).
pub fn gcs_emulator() -> &'static ObjectServer {
    static S: OnceLock<ObjectServer> = OnceLock::new();
    S.get_or_init(|| {
        let port = super::free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut c = as_postgres(fake_gcs_server_bin());
        c.args([
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            &port.to_string(),
            "-backend",
            "memory",
            "-public-host",
            &addr,
            "-external-url",
            &format!("http://{addr}"),
            "-log-level",
            "warn",
        ]);
        spawn_server("fake-gcs-server", c, port);
        ObjectServer::new(Provider::Gcs, port)
    })
}

/// Starts a server for the rest of the test process and waits until it
/// accepts connections. It is spawned from a thread of its own that lives as
/// long as the process, with the parent-death signal set to SIGKILL (after
/// the switch to postgres, which clears it): the kernel kills it when the
/// process ends, however it ends (a failed test, an abort, SIGKILL). Its
/// output goes to a log in the temporary directory, shown if it does not
/// start, removed when the process exits.
fn spawn_server(name: &str, mut cmd: Command, port: u16) {
    use std::os::unix::process::CommandExt;
    let log_path =
        std::env::temp_dir().join(format!("pgclone-test-{}-{name}.log", std::process::id()));
    remove_at_exit(log_path.clone());
    let log = std::fs::File::create(&log_path).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let ended: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let (tx, rx) = std::sync::mpsc::channel();
    let ended_in_thread = ended.clone();
    let label = name.to_string();
    std::thread::Builder::new()
        .name(format!("{name}-server"))
        .spawn(move || match cmd.spawn() {
            Ok(mut child) => {
                tx.send(Ok(())).unwrap();
                // Waits for as long as the server lives; this thread must
                // outlive it (the parent-death signal follows the thread).
                let status = child.wait();
                *ended_in_thread.lock().unwrap() = Some(format!("{status:?}"));
            }
            Err(e) => tx.send(Err(format!("cannot start {label}: {e}"))).unwrap(),
        })
        .unwrap();
    if let Err(e) = rx.recv().unwrap() {
        panic!("{e}");
    }
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let gone = ended.lock().unwrap().clone();
        if gone.is_some() || start.elapsed() > Duration::from_secs(60) {
            panic!(
                "{name} did not start on port {port} ({}):\n{}",
                gone.unwrap_or_else(|| "still running after 60 s".into()),
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes `path` when the test process exits normally.
fn remove_at_exit(path: PathBuf) {
    static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    extern "C" fn remove_all() {
        if let Ok(paths) = PATHS.lock() {
            for p in paths.iter() {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    PATHS.lock().unwrap().push(path);
    REGISTERED.call_once(|| unsafe {
        libc::atexit(remove_all);
    });
}

impl ObjectServer {
    fn new(provider: Provider, port: u16) -> ObjectServer {
        ObjectServer {
            provider,
            port,
            creds: None,
            taken: Mutex::new(Vec::new()),
        }
    }

    /// A new, empty bucket (container) named after `test` (made a valid
    /// bucket name), created with the provider's Python SDK, and a store in it
    /// at prefix `backups/pgclone`. Each test asks for its own.
    pub fn store(&self, test: &str) -> Store {
        let bucket = bucket_name(test);
        {
            let mut taken = self.taken.lock().unwrap();
            assert!(
                !taken.contains(&bucket),
                "bucket {bucket} is another test's: give each test its own name"
            );
            taken.push(bucket.clone());
        }
        let prefix = "backups/pgclone".to_string();
        let base = format!("http://127.0.0.1:{}", self.port);
        // The shared moto takes any keys; these stand for the operator's.
        let (key_id, secret) = self.creds.clone().unwrap_or_else(|| {
            (
                "pgclone-test-key".to_string(),
                "pgclone-test-secret".to_string(),
            )
        });
        let (url, endpoint_url, env) = match self.provider {
            Provider::S3 => (
                format!("s3://{bucket}/{prefix}"),
                Some(base),
                vec![
                    ("AWS_ACCESS_KEY_ID".to_string(), key_id),
                    ("AWS_SECRET_ACCESS_KEY".to_string(), secret),
                    ("AWS_DEFAULT_REGION".to_string(), "us-east-1".to_string()),
                    // No instance-metadata lookups from a test.
                    ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
                ],
            ),
            Provider::Azure => (
                format!("{base}/{AZURITE_ACCOUNT}/{bucket}/{prefix}"),
                None,
                vec![(
                    "AZURE_STORAGE_CONNECTION_STRING".to_string(),
                    format!(
                        "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};\
                         AccountKey={AZURITE_KEY};BlobEndpoint={base}/{AZURITE_ACCOUNT};"
                    ),
                )],
            ),
            Provider::Gcs => (
                format!("gs://{bucket}/{prefix}"),
                None,
                vec![("STORAGE_EMULATOR_HOST".to_string(), base)],
            ),
        };
        let store = Store {
            provider: self.provider,
            bucket,
            prefix,
            url,
            endpoint_url,
            env,
        };
        store.sdk(&["create"]);
        store
    }
}

/// `test` as a bucket and container name valid for S3, Azure and GCS: 3 to 63
/// lowercase letters, digits and single hyphens.
fn bucket_name(test: &str) -> String {
    let mut b = String::new();
    for ch in test.chars() {
        let ch = ch.to_ascii_lowercase();
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            b.push(ch);
        } else if !b.is_empty() && !b.ends_with('-') {
            b.push('-');
        }
    }
    let mut b: String = b.chars().take(63).collect();
    while b.ends_with('-') {
        b.pop();
    }
    while b.len() < 3 {
        b.push('0');
    }
    b
}

/// A bucket (container) and prefix in one of the servers: what a user gives
/// barman-cloud, and the credentials its tools get. No Debug: `env` holds them.
pub struct Store {
    pub provider: Provider,
    pub bucket: String,
    /// The prefix in the bucket, without a trailing slash.
    pub prefix: String,
    /// The URL given to barman-cloud: `s3://BUCKET/PREFIX`,
    /// `http://127.0.0.1:PORT/devstoreaccount1/CONTAINER/PREFIX` (Azurite),
    /// `gs://BUCKET/PREFIX`.
    pub url: String,
    /// S3's `--endpoint-url` (moto's address).
    pub endpoint_url: Option<String>,
    /// Credentials and endpoints for child processes' environments:
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_DEFAULT_REGION`,
    /// `AZURE_STORAGE_CONNECTION_STRING`, `STORAGE_EMULATOR_HOST`.
    pub env: Vec<(String, String)>,
}

/// Lists, reads and creates buckets with the providers' Python SDKs (the
/// venv's), as a third party sees the store. argv: provider op bucket [arg].
const SDK: &str = r#"
import os, sys
provider, op, bucket = sys.argv[1:4]
arg = sys.argv[4] if len(sys.argv) > 4 else ""
if provider == "aws-s3":
    import boto3, botocore
    c = boto3.client("s3", endpoint_url=os.environ["PGCLONE_TEST_S3_ENDPOINT"])
    if op == "create":
        try:
            c.head_bucket(Bucket=bucket)
            sys.exit("bucket %s exists already" % bucket)
        except botocore.exceptions.ClientError:
            pass
        c.create_bucket(Bucket=bucket)
    elif op == "list":
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=arg):
            for o in page.get("Contents", []):
                print("%s\t%d" % (o["Key"], o["Size"]))
    elif op == "get":
        sys.stdout.buffer.write(c.get_object(Bucket=bucket, Key=arg)["Body"].read())
    elif op == "put":
        c.put_object(Bucket=bucket, Key=arg, Body=sys.stdin.buffer.read())
elif provider == "azure-blob-storage":
    from azure.storage.blob import BlobServiceClient
    s = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    c = s.get_container_client(bucket)
    if op == "create":
        c.create_container()
    elif op == "list":
        for b in c.list_blobs(name_starts_with=arg):
            print("%s\t%d" % (b.name, b.size))
    elif op == "get":
        sys.stdout.buffer.write(c.download_blob(arg).readall())
    elif op == "put":
        c.upload_blob(arg, sys.stdin.buffer.read(), overwrite=True)
elif provider == "google-cloud-storage":
    from google.cloud import storage
    from google.auth.credentials import AnonymousCredentials
    c = storage.Client(project="pgclone-test", credentials=AnonymousCredentials())
    if op == "create":
        c.create_bucket(bucket)
    elif op == "list":
        for b in c.list_blobs(bucket, prefix=arg):
            print("%s\t%d" % (b.name, b.size))
    elif op == "get":
        sys.stdout.buffer.write(c.bucket(bucket).blob(arg).download_as_bytes())
    elif op == "put":
        c.bucket(bucket).blob(arg).upload_from_string(sys.stdin.buffer.read())
else:
    sys.exit("unknown provider " + provider)
"#;

impl Store {
    /// barman-cloud's options for this store: `--cloud-provider P`
    /// [`--endpoint-url URL`].
    pub fn cloud_args(&self) -> Vec<String> {
        let mut v = vec!["--cloud-provider".to_string(), self.provider.name().into()];
        if let Some(e) = &self.endpoint_url {
            v.push("--endpoint-url".into());
            v.push(e.clone());
        }
        v
    }

    /// The environment as `(&str, &str)` pairs (e.g. for [`super::pgclone`]).
    pub fn env_refs(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// A command of the barman-cloud venv (`barman-cloud-backup`, ...) as
    /// postgres with this store's environment.
    pub fn tool(&self, name: &str) -> Command {
        let mut c = as_postgres(barman_cloud_bin().join(name));
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs `tool` with this store's options then `args`; must succeed.
    pub fn tool_ok(&self, tool: &str, args: &[String]) -> String {
        let out = self.tool_run(tool, args);
        let mut argv = self.cloud_args();
        argv.extend(args.iter().cloned());
        assert!(out.status.success(), "{}", describe(tool, &argv, &out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `tool` with this store's options then `args`.
    pub fn tool_run(&self, tool: &str, args: &[String]) -> Output {
        self.tool(tool)
            .args(self.cloud_args())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"))
    }

    fn sdk(&self, args: &[&str]) -> Vec<u8> {
        self.sdk_with(args, b"")
    }

    /// [`Store::sdk`] with `stdin` as the script's input.
    fn sdk_with(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut c = self.tool("python");
        c.arg("-c")
            .arg(SDK)
            .arg(self.provider.name())
            .arg(args[0])
            .arg(&self.bucket)
            .args(&args[1..]);
        if let Some(e) = &self.endpoint_url {
            c.env("PGCLONE_TEST_S3_ENDPOINT", e);
        }
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        assert!(
            out.status.success(),
            "{}",
            describe(
                &format!("SDK ({}) on {}", self.provider.name(), self.bucket),
                &argv,
                &out
            )
        );
        out.stdout
    }

    /// Every object under `PREFIX/under` with its size, keys relative to
    /// PREFIX (`SERVER/base/ID/backup.info`), sorted.
    pub fn list(&self, under: &str) -> Vec<(String, u64)> {
        let full = format!("{}/{under}", self.prefix);
        let out = String::from_utf8(self.sdk(&["list", &full])).unwrap();
        let mut v: Vec<(String, u64)> = out
            .lines()
            .map(|l| {
                let (k, n) = l.rsplit_once('\t').unwrap();
                (
                    k.strip_prefix(&format!("{}/", self.prefix))
                        .unwrap()
                        .to_string(),
                    n.parse().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// Writes `body` as object `PREFIX/key`, with the provider's SDK.
    pub fn put(&self, key: &str, body: &[u8]) {
        self.sdk_with(&["put", &format!("{}/{key}", self.prefix)], body);
    }

    /// The bytes of object `PREFIX/key`.
    pub fn get(&self, key: &str) -> Vec<u8> {
        self.sdk(&["get", &format!("{}/{key}", self.prefix)])
    }

    /// An env file for `sh`'s `.` with this store's environment (mode 0600,
    /// the postgres user's): what archive and restore commands source, so
    /// that credentials are in neither postgresql.conf nor a command line.
    pub fn env_file(&self, s: &Scratch, name: &str) -> PathBuf {
        let text: String = self
            .env
            .iter()
            .map(|(k, v)| format!("export {k}={}\n", shell_words::quote(v)))
            .collect();
        s.write(name, &text)
    }

    /// An `archive_command` running barman-cloud-wal-archive with
    /// `compression` (`""`, `-z`, `-j`, `--xz`, `--snappy`, `--lz4`) for
    /// `server`, credentials from `env_file`.
    pub fn archive_command(&self, env_file: &Path, server: &str, compression: &str) -> String {
        self.shell_command(
            env_file,
            "barman-cloud-wal-archive",
            compression,
            &[server, "%p"],
        )
    }

    /// A `restore_command` running barman-cloud-wal-restore for `server`.
    pub fn restore_command(&self, env_file: &Path, server: &str) -> String {
        self.shell_command(
            env_file,
            "barman-cloud-wal-restore",
            "",
            &[server, "%f", "%p"],
        )
    }

    fn shell_command(&self, env_file: &Path, tool: &str, option: &str, tail: &[&str]) -> String {
        let mut words = vec![barman_cloud_bin().join(tool).display().to_string()];
        words.extend(self.cloud_args());
        if !option.is_empty() {
            words.push(option.to_string());
        }
        words.push(self.url.clone());
        let quoted: Vec<String> = words
            .iter()
            .map(|w| shell_words::quote(w).into_owned())
            .chain(tail.iter().map(|t| t.to_string()))
            .collect();
        sourcing(env_file, &quoted.join(" "))
    }

    /// pgclone run as [`super::pgclone`] runs it (postgres, HOME the
    /// scratch directory, no inherited variables), with this store's
    /// environment and `env` given as environment, not as `env K=V`
    /// arguments: the credentials stay off its command line.
    pub fn pgclone(&self, s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = as_postgres(env!("CARGO_BIN_EXE_pgclone"));
        c.env("HOME", &s.dir)
            .env("PGCLONE_CACHE_DIR", s.path("cache"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().copied())
            .args(args);
        c.output().unwrap_or_else(|e| panic!("pgclone: {e}"))
    }

    /// The ids of `server`'s backups as barman-cloud-backup-list shows them.
    pub fn backup_ids(&self, server: &str) -> Vec<String> {
        self.backup_list(server)
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    }

    /// barman-cloud-backup-list's table for `server`.
    pub fn backup_list(&self, server: &str) -> String {
        self.tool_ok(
            "barman-cloud-backup-list",
            &[self.url.clone(), server.to_string()],
        )
    }
}

/// A shell command line (archive_command, restore_command) that sources
/// `env_file` (see [`Store::env_file`]) and then runs `command`, e.g.
/// `pgclone barman-cloud-wal-restore ... %f %p`.
pub fn sourcing(env_file: &Path, command: &str) -> String {
    format!(
        ". {} && exec {command}",
        shell_words::quote(&env_file.display().to_string())
    )
}

/// Options of [`barman_cloud_backup`].
#[derive(Default, Clone, Debug)]
pub struct BackupOpts {
    /// `""` (plain tar), `"gzip"`, `"bzip2"`, `"lz4"` or `"snappy"`.
    pub compression: &'static str,
    /// `-S/--max-archive-size`, e.g. `"1MB"`: the archives split into parts.
    pub max_archive_size: Option<&'static str>,
    /// `-n NAME`.
    pub name: Option<String>,
}

/// barman-cloud-backup of `primary` (run as postgres on its host: it reads
/// the data directory) into `store` as `server`, with an immediate checkpoint
/// (a spread one takes minutes); returns the new backup's id.
pub fn barman_cloud_backup(primary: &Pg, store: &Store, server: &str, opts: &BackupOpts) -> String {
    let before = store.backup_ids(server);
    let mut args: Vec<String> = [
        "-h",
        primary.socket_dir.to_str().unwrap(),
        "-p",
        &primary.port.to_string(),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "--immediate-checkpoint",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match opts.compression {
        "" => {}
        "gzip" => args.push("--gzip".into()),
        "bzip2" => args.push("--bzip2".into()),
        "lz4" => args.push("--lz4".into()),
        "snappy" => args.push("--snappy".into()),
        other => panic!("barman-cloud-backup has no compression {other:?}"),
    }
    if let Some(size) = opts.max_archive_size {
        args.extend(["--max-archive-size".to_string(), size.to_string()]);
    }
    if let Some(name) = &opts.name {
        args.extend(["-n".to_string(), name.clone()]);
    }
    args.extend([store.url.clone(), server.to_string()]);
    store.tool_ok("barman-cloud-backup", &args);
    let after = store.backup_ids(server);
    let new: Vec<&String> = after.iter().filter(|id| !before.contains(id)).collect();
    assert_eq!(new.len(), 1, "not one new backup of {server}: {after:?}");
    new[0].clone()
}

/// barman-cloud-restore of `backup` (an id, a name or `latest`) of `server`
/// into `dest`, each `(name, dir)` of `tablespaces` relocated (`--tablespace`).
pub fn barman_cloud_restore(
    store: &Store,
    server: &str,
    backup: &str,
    dest: &Path,
    tablespaces: &[(&str, &Path)],
) -> Output {
    let mut args = Vec::new();
    for (name, dir) in tablespaces {
        args.push("--tablespace".to_string());
        args.push(format!("{name}:{}", dir.display()));
    }
    args.extend([
        store.url.clone(),
        server.to_string(),
        backup.to_string(),
        dest.display().to_string(),
    ]);
    store.tool_run("barman-cloud-restore", &args)
}

/// barman-cloud-wal-restore of `wal` (a segment, history or backup-label
/// name) of `server` into `dest`, as restore_command runs it.
pub fn barman_cloud_wal_restore(store: &Store, server: &str, wal: &str, dest: &Path) -> Output {
    store.tool_run(
        "barman-cloud-wal-restore",
        &[
            store.url.clone(),
            server.to_string(),
            wal.to_string(),
            dest.display().to_string(),
        ],
    )
}

/// Sets `pg`'s archive_command to barman-cloud-wal-archive into `store` as
/// `server` with `compression` (see [`Store::archive_command`]), credentials
/// in an env file in `s`. archive_mode takes effect at the next start: call
/// this before starting `pg`. Returns the env file (a restore_command can
/// source it too).
pub fn archive_to(pg: &Pg, s: &Scratch, store: &Store, server: &str, compression: &str) -> PathBuf {
    let env = store.env_file(s, &format!("{server}-cloud.env"));
    let cmd = store.archive_command(&env, server, compression);
    pg.append_conf(&format!(
        "archive_mode = on\narchive_command = '{}'\n",
        cmd.replace('\'', "''")
    ));
    env
}

/// Closes `pg`'s current WAL segment (pg_switch_wal) and waits until its
/// archive_command has put it into `store` (pg_stat_archiver, then the
/// store's listing); returns the segment's name. On a standby just promoted
/// this is the new timeline's.
pub fn archive_wal_now(pg: &Pg, store: &Store, server: &str) -> String {
    // Something to switch from: an idle server's switch is a no-op.
    pg.sql("SELECT txid_current()");
    let name = pg.sql("SELECT pg_walfile_name(pg_switch_wal())");
    let start = Instant::now();
    loop {
        let st = pg.sql("SELECT coalesce(last_archived_wal, ''), failed_count, coalesce(last_failed_wal, '') FROM pg_stat_archiver");
        let mut f = st.split('|');
        let (last, failed, last_failed) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        // Names of one timeline order as their positions; a .history or
        // .backup name sorts with its segment.
        if last.len() >= 24 && last[..24] >= name[..] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name} not archived after 60 s: last archived {last:?}, {failed} failures \
             (last {last_failed:?})\nlog:\n{}",
            std::fs::read_to_string(&pg.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = format!("{server}/wals/{}/", &name[..16]);
    let listed = store.list(&dir);
    assert!(
        listed
            .iter()
            .any(|(k, _)| k[dir.len()..].starts_with(&name)),
        "{name} archived but not in the store under {dir}: {listed:?}"
    );
    name
}

/// A tablespace `name` in a new directory of `s`, with a table `name_t` of
/// `rows` rows in it; returns the directory.
pub fn tablespace(pg: &Pg, s: &Scratch, name: &str, rows: u32) -> PathBuf {
    let dir = s.mkdir(&format!("{name}-dir"));
    pg.sql(&format!(
        "CREATE TABLESPACE {name} LOCATION '{}'",
        dir.display()
    ));
    pg.sql(&format!(
        "CREATE TABLE {name}_t TABLESPACE {name} AS SELECT g, md5(g::text) AS h FROM generate_series(1, {rows}) g"
    ));
    dir
}

/// Makes the data directory `dir` (restored from a backup) a standby whose
/// restore_command is barman-cloud-wal-restore from `store`/`server`, with
/// credentials from `env_file`.
pub fn make_cloud_standby(dir: &Path, store: &Store, env_file: &Path, server: &str) {
    use std::io::Write;
    let cmd = store.restore_command(env_file, server);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("postgresql.conf"))
        .unwrap();
    writeln!(f, "restore_command = '{}'", cmd.replace('\'', "''")).unwrap();
    std::fs::write(dir.join("standby.signal"), "").unwrap();
    if is_root() {
        super::run_ok(
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.join("standby.signal")),
        );
    }
}

/// A standby (not started) in `s`'s `name`, restored by barman-cloud-restore
/// from `backup` of `server`, each `(tablespace, dir)` relocated, replaying
/// WAL with barman-cloud-wal-restore (credentials from `env_file`).
pub fn restore_standby(
    s: &Scratch,
    name: &str,
    store: &Store,
    env_file: &Path,
    server: &str,
    backup: &str,
    tablespaces: &[(&str, &Path)],
) -> Pg {
    let dest = s.path(name);
    let out = barman_cloud_restore(store, server, backup, &dest, tablespaces);
    assert!(
        out.status.success(),
        "barman-cloud-restore of {backup} into {}: {}",
        dest.display(),
        super::stderr(&out)
    );
    make_cloud_standby(&dest, store, env_file, server);
    Pg::existing(s, dest)
}

/// Promotes the standby `pg` (a new timeline) and waits until it is a primary.
pub fn promote(pg: &Pg) {
    assert_eq!(
        pg.sql("SELECT pg_promote(true, 60)"),
        "t",
        "promotion failed"
    );
    pg.wait_for("SELECT pg_is_in_recovery()", "f", Duration::from_secs(60));
}
