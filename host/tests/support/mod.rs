//! Real PostgreSQL servers for tests. PostgreSQL refuses to run as root, so
//! when the tests run as root the servers (and pgclone, like a DBA would run
//! it) run as the `postgres` user through runuser. And the components the
//! tests load ([`component`]), built once per run.

pub mod barman;
pub mod cloud;
pub mod system_paths;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Where the server binaries are (`PGCLONE_TEST_PG_BINDIR` overrides).
pub fn pg_bindir() -> PathBuf {
    std::env::var_os("PGCLONE_TEST_PG_BINDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// PostgreSQL 17's server and client tools (pg_basebackup, pg_combinebackup),
/// fetched by scripts/test.sh (`PGCLONE_TEST_PG17_BINDIR` overrides).
pub fn pg17_bindir() -> PathBuf {
    let p = std::env::var_os("PGCLONE_TEST_PG17_BINDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-deps/pg17/bin")
        });
    assert!(
        p.join("postgres").exists() && p.join("pg_combinebackup").exists(),
        "PostgreSQL 17 not found in {}: run scripts/test.sh, which fetches it",
        p.display()
    );
    p
}

/// The components the tests load besides the embedded plugins, by crate: the
/// examples and the test components (`tests/components`). Building pgclone
/// builds only the embedded plugins (host/build.rs); these are built by
/// [`component`].
const TEST_COMPONENTS: &[&str] = &[
    "example-site-policy",
    "example-source-pgbackrest",
    "test-spin",
    "test-hog",
    "test-sneaky",
    "test-greedy",
    "test-echo",
    "test-escaper",
    "test-reacher",
    "test-liar",
    "test-babbler",
    "test-forgetful",
    "test-contract-1-0",
    "test-contract-1-0-policy",
    "test-contract-1-1",
    "test-contract-1-2",
];

/// The `.wasm` file of a component, by file name without `.wasm`: an example
/// or a test component (`example_site_policy`, `test_spin`) or an embedded
/// plugin (`pgclone_source_barman`). The first call builds every example and
/// test component, as host/build.rs builds the embedded plugins (for
/// wasm32-wasip2, profile `guest`) but in a target directory of their own,
/// `target/test-guests`; every later call, from any test, uses that build.
pub fn component(name: &str) -> PathBuf {
    if !TEST_COMPONENTS.iter().any(|c| c.replace('-', "_") == name) {
        let embedded = Path::new(pgclone::plugin::catalog::GUEST_DIR).join(format!("{name}.wasm"));
        assert!(
            embedded.exists(),
            "{name}: neither a test component nor an embedded plugin ({} is missing)",
            embedded.display()
        );
        return embedded;
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(build_test_components) {
        Ok(dir) => dir.join(format!("{name}.wasm")),
        Err(e) => panic!("{e}"),
    }
}

fn build_test_components() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // Not the outer cargo's target directory: it may be locked by the cargo
    // running these tests.
    let target_dir = root.join("target").join("test-guests");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "guest"])
        .arg("--target-dir")
        .arg(&target_dir);
    for krate in TEST_COMPONENTS {
        cmd.args(["-p", krate]);
    }
    // As host/build.rs: nothing of the outer cargo's own compilation leaks in.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run cargo to build the test components: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the test components failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = target_dir.join("wasm32-wasip2").join("guest");
    for krate in TEST_COMPONENTS {
        let file = dir.join(format!("{}.wasm", krate.replace('-', "_")));
        if !file.exists() {
            return Err(format!("{} was not built", file.display()));
        }
    }
    Ok(dir)
}

/// A command run as the postgres user when we are root, else as ourselves.
pub fn as_pg(program: impl AsRef<std::ffi::OsStr>) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    out
}

/// Runs `cmd`, which must succeed, and returns how long it took.
#[allow(dead_code)] // the benchmarks' (they share this module)
pub fn timed(label: &str, cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = run(cmd);
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{label} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A scratch directory the postgres user owns (removed at the end).
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let base = std::env::temp_dir().join(format!("pgclone-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        if is_root() {
            run_ok(Command::new("chown").args(["postgres:postgres"]).arg(&base));
        }
        Scratch { dir: base }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes a file owned by the postgres user, mode 0600.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(name);
        std::fs::write(&p, contents).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            run_ok(Command::new("chown").args(["postgres:postgres"]).arg(&p));
        }
        p
    }

    /// Makes a directory owned by the postgres user.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::create_dir_all(&p).unwrap();
        if is_root() {
            run_ok(Command::new("chown").args(["postgres:postgres"]).arg(&p));
        }
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One PostgreSQL server, stopped when dropped.
pub struct Pg {
    pub data: PathBuf,
    pub port: u16,
    pub socket_dir: PathBuf,
    pub log: PathBuf,
    bindir: PathBuf,
    running: bool,
}

impl Pg {
    /// initdb with trust over the socket and scram-sha-256 over TCP.
    pub fn init(s: &Scratch, name: &str) -> Pg {
        let pg = Self::init_with(s, name, &pg_bindir(), &[]);
        pg.append_conf("wal_keep_size = '256MB'\n");
        pg
    }

    pub fn init_with(s: &Scratch, name: &str, bindir: &Path, extra: &[&str]) -> Pg {
        let data = s.path(name);
        run_ok(
            as_pg(bindir.join("initdb"))
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-D",
                ])
                .arg(&data)
                .args(extra),
        );
        let pg = Pg {
            port: free_port(),
            socket_dir: s.dir.clone(),
            log: s.path(&format!("{name}.log")),
            data,
            bindir: bindir.to_path_buf(),
            running: false,
        };
        pg.append_conf("listen_addresses = '127.0.0.1'\nmax_wal_senders = 10\n");
        pg
    }

    /// A server for an existing data directory (a clone).
    pub fn existing(s: &Scratch, data: PathBuf) -> Pg {
        Self::existing_with(s, data, &pg_bindir())
    }

    /// The same, with the server binaries in `bindir`.
    pub fn existing_with(s: &Scratch, data: PathBuf, bindir: &Path) -> Pg {
        let name = data.file_name().unwrap().to_string_lossy().into_owned();
        Pg {
            port: free_port(),
            socket_dir: s.dir.clone(),
            log: s.path(&format!("{name}.log")),
            data,
            bindir: bindir.to_path_buf(),
            running: false,
        }
    }

    pub fn append_conf(&self, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    pub fn hba_prepend(&self, line: &str) {
        let p = self.data.join("pg_hba.conf");
        let old = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, format!("{line}\n{old}")).unwrap();
    }

    pub fn start(&mut self) {
        self.start_env(&[]);
    }

    /// Starts the server with `env` added to its environment (what its
    /// restore_command and archive_command inherit, e.g. object-store
    /// credentials, kept off every command line).
    pub fn start_env(&mut self, env: &[(String, String)]) {
        let opts = format!("-p {} -k {}", self.port, self.socket_dir.display());
        let out = run(as_pg(self.bindir.join("pg_ctl"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-o", &opts, "start"]));
        if !out.status.success() {
            panic!(
                "server in {} did not start:\n{}",
                self.data.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        self.running = true;
    }

    /// Starts the server without waiting for it to accept connections (a
    /// recovery that the test watches through the log).
    pub fn start_nowait(&mut self) {
        let opts = format!("-p {} -k {}", self.port, self.socket_dir.display());
        run_ok(
            as_pg(self.bindir.join("pg_ctl"))
                .args(["-W", "-D"])
                .arg(&self.data)
                .arg("-l")
                .arg(&self.log)
                .args(["-o", &opts, "start"]),
        );
        self.running = true;
    }

    pub fn reload(&self) {
        run_ok(
            as_pg(self.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("reload"),
        );
    }

    pub fn stop(&mut self) {
        if self.running {
            let _ = run(as_pg(self.bindir.join("pg_ctl"))
                .args(["-w", "-m", "fast", "-D"])
                .arg(&self.data)
                .arg("stop"));
            self.running = false;
        }
    }

    /// Registers this server as node 1 of a repmgr cluster with repmgr itself
    /// (`repmgr primary register`), reached over its socket; `conninfo_extra`
    /// is appended to its conninfo, `keys` to its repmgr.conf.
    pub fn register_with_repmgr(&self, s: &Scratch, conninfo_extra: &str, keys: &str) {
        let node1 = s.write(
            "node1.conf",
            &format!(
                "node_id=1\nnode_name=node1\nconninfo='host={} port={} user=postgres dbname=postgres{conninfo_extra}'\n\
                 data_directory='{}'\n{keys}",
                self.socket_dir.display(),
                self.port,
                self.data.display()
            ),
        );
        run_ok(
            as_pg("repmgr")
                .arg("-f")
                .arg(&node1)
                .args(["primary", "register"]),
        );
    }

    /// `pgbench -i` at `scale` (70 is about 1 GiB), then a checkpoint.
    #[allow(dead_code)] // the benchmarks'
    pub fn pgbench_init(&self, scale: &str) {
        eprintln!("initialising pgbench at scale {scale} ...");
        run_ok(
            as_pg(pg_bindir().join("pgbench"))
                .args(["-q", "-i", "-s", scale, "-h"])
                .arg(&self.socket_dir)
                .args(["-p", &self.port.to_string(), "-U", "postgres", "postgres"]),
        );
        self.sql("CHECKPOINT");
    }

    /// Runs SQL over the socket as postgres; returns unaligned tuples.
    pub fn sql(&self, query: &str) -> String {
        run_ok(
            as_pg("psql")
                .args([
                    "-X",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-U",
                    "postgres",
                    "-h",
                ])
                .arg(&self.socket_dir)
                .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", query]),
        )
        .trim()
        .to_string()
    }

    /// Waits until `query` returns `want`.
    pub fn wait_for(&self, query: &str, want: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            let out = run(as_pg("psql")
                .args(["-X", "-A", "-t", "-U", "postgres", "-h"])
                .arg(&self.socket_dir)
                .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", query]));
            let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if got == want {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "waited {timeout:?} for {query:?} = {want:?}, last {got:?}\nlog:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if self.running {
            let _ = run(as_pg(self.bindir.join("pg_ctl"))
                .args(["-w", "-m", "immediate", "-D"])
                .arg(&self.data)
                .arg("stop"));
        }
    }
}

/// `pgclone` run as a DBA would: as the postgres user, with HOME set to the
/// scratch directory (so ~/.pgpass is the test's) and no inherited PG* variables.
pub fn pgclone(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = as_pg("env");
    cmd.arg("-i")
        .arg(format!("HOME={}", s.dir.display()))
        .arg(format!(
            "PATH={}:/usr/local/bin:/usr/bin:/bin",
            pg_bindir().display()
        ))
        .arg(format!("PGCLONE_CACHE_DIR={}", s.path("cache").display()));
    for (k, v) in env {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.arg(env!("CARGO_BIN_EXE_pgclone")).args(args);
    run(&mut cmd)
}

/// The arguments of `pgclone -f CFG standby clone` from `upstream` over its
/// socket, as postgres, into `target`, followed by `extra`.
pub fn clone_args(cfg: &Path, upstream: &Pg, target: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "-f",
        cfg.to_str().unwrap(),
        "standby",
        "clone",
        "-h",
        upstream.socket_dir.to_str().unwrap(),
        "-p",
        &upstream.port.to_string(),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-D",
        target.to_str().unwrap(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    v.extend(extra.iter().map(|a| a.to_string()));
    v
}

/// Runs `pgclone` with [`clone_args`].
pub fn standby_clone(
    s: &Scratch,
    cfg: &Path,
    upstream: &Pg,
    target: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let args = clone_args(cfg, upstream, target, extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    pgclone(s, &refs, env)
}

/// `pgclone` as above with its standard streams on a terminal (a pty made
/// by `script`), as a person running it sees it; everything is in stdout.
/// The terminal can redraw a line (`TERM=xterm`), so live progress is drawn.
pub fn pgclone_on_terminal(s: &Scratch, args: &[&str]) -> Output {
    on_terminal(s, args, "", "xterm")
}

/// The same on a dumb terminal, with `input` typed on it.
pub fn pgclone_on_terminal_with_input(s: &Scratch, args: &[&str], input: &str) -> Output {
    on_terminal(s, args, input, "dumb")
}

fn on_terminal(s: &Scratch, args: &[&str], input: &str, term: &str) -> Output {
    let line = [
        "env".to_string(),
        "-i".into(),
        format!("HOME={}", s.dir.display()),
        format!(
            "PATH={}:/usr/local/bin:/usr/bin:/bin",
            pg_bindir().display()
        ),
        format!("PGCLONE_CACHE_DIR={}", s.path("cache").display()),
        format!("TERM={term}"),
        env!("CARGO_BIN_EXE_pgclone").into(),
    ]
    .into_iter()
    .chain(args.iter().map(|a| a.to_string()))
    .map(|a| shell_words::quote(&a).into_owned())
    .collect::<Vec<_>>()
    .join(" ");
    let mut child = as_pg("script")
        .args(["-qefc", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// `pgclone` as above, on another thread: for tests that kill something it
/// started while it runs.
pub fn pgclone_in_background(s: &Scratch, args: Vec<String>) -> std::thread::JoinHandle<Output> {
    pgclone_in_background_with_env(s, args, Vec::new())
}

/// The same, with environment variables.
pub fn pgclone_in_background_with_env(
    s: &Scratch,
    args: Vec<String>,
    env: Vec<(String, String)>,
) -> std::thread::JoinHandle<Output> {
    // The scratch directory outlives the thread: only its path is shared.
    let dir = s.dir.clone();
    std::thread::spawn(move || {
        let sc = std::mem::ManuallyDrop::new(Scratch { dir });
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pgclone(&sc, &refs, &env)
    })
}

/// A clone under way and slow enough to be killed or interrupted midway.
pub struct SlowClone {
    pub primary: Pg,
    pub target: PathBuf,
    pub handle: std::thread::JoinHandle<Output>,
}

/// Starts a primary with about 40 MB of data and clones it as node
/// `node_id` (with a slot) at 2 MB/s, in the background; returns once the
/// copy is under way.
pub fn slow_clone(sc: &Scratch, node_id: u32, env: Vec<(String, String)>) -> SlowClone {
    let mut primary = Pg::init(sc, "primary");
    primary.start();
    primary.sql(
        "CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 150000) g",
    );
    let cfg = sc.write(
        "pgclone.conf",
        &format!(
            "node_id={node_id}\nnode_name=node{node_id}\nuse_replication_slots=true\npg_basebackup_options='--max-rate=2M'\n"
        ),
    );
    let target = sc.path("standby");
    // A fast checkpoint: a spread one after writing 40 MB takes minutes.
    let args = clone_args(&cfg, &primary, &target, &["--fast-checkpoint"]);
    let handle = pgclone_in_background_with_env(sc, args, env);
    let started = Instant::now();
    while !target.join("base").exists() {
        if handle.is_finished() {
            let out = handle.join().unwrap();
            panic!(
                "pgclone ended before the copy was under way:\n{}",
                stderr(&out)
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the copy never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    SlowClone {
        primary,
        target,
        handle,
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every path under `dir` with its size and modification time: to prove that
/// nothing changed.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            out.push((
                e.path(),
                m.size(),
                m.mtime_nsec() + m.mtime() * 1_000_000_000,
            ));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// A clone request for node 2 into a directory that does not exist, with no
/// upstream: what a plugin sandbox test passes to `check`.
pub fn plugin_request() -> pgclone::contract::source::CloneRequest {
    use pgclone::contract::source::{CloneRequest, NodeIdentity};
    CloneRequest {
        node: NodeIdentity {
            node_id: Some(2),
            node_name: "node2".into(),
        },
        data_directory: "/nonexistent".into(),
        upstream: Vec::new(),
        replication_user: None,
        upstream_version: None,
        upstream_system_identifier: None,
        upstream_tablespaces: Vec::new(),
        placed_tablespaces: Vec::new(),
        backup_id: None,
        fast_checkpoint: false,
        slot_name: None,
        interactive: false,
    }
}

/// A TCP relay for ssh's ProxyCommand (`python3 SCRIPT HOST PORT RATE`) that
/// passes at most RATE bytes a second from the server: a transfer slow enough
/// to be interrupted or killed midway.
pub const SLOW_PROXY: &str = r#"
import socket, sys, threading, time, os
host, port, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port))
def up():
    while True:
        b = os.read(0, 65536)
        if not b:
            # Its ssh is gone: end, as ssh -W or nc would (a relay left
            # waiting on the server would hold the test's output open).
            os._exit(0)
        s.sendall(b)
threading.Thread(target=up, daemon=True).start()
while True:
    b = s.recv(16384)
    if not b:
        break
    os.write(1, b)
    time.sleep(len(b) / rate)
"#;

/// Every file in a wal-restore spool directory and its source directories.
#[allow(dead_code)] // the WAL tests'
pub fn spooled(top: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(top).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(
                std::fs::read_dir(e.path())
                    .unwrap()
                    .flatten()
                    .map(|f| f.path()),
            );
        } else {
            out.push(e.path());
        }
    }
    out
}

/// Waits (up to 60 s) until each of `names` is in the spool under `spool`.
#[allow(dead_code)] // the WAL tests'
pub fn wait_spooled(spool: &Path, names: &[String]) {
    let t0 = Instant::now();
    while !names
        .iter()
        .all(|n| spooled(spool).iter().any(|p| p.ends_with(n)))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{names:?} never reached the spool: {:?}",
            spooled(spool)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
