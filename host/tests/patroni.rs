//! pgclone as the replica method (`pgclone patroni-replica`) and the
//! restore_command (`pgclone wal-restore`) of a real Patroni cluster: Debian's
//! Patroni 3.0.2 and PyPI's 4.1.5 (a venv made by scripts/setup.sh), with
//! Debian's etcd 3.4 on loopback and Debian's Barman 3.4 reached through a
//! real sshd, PostgreSQL 15. Servers, Patroni and etcd run as the postgres
//! user; nothing falls back to pg_basebackup (only pgclone is configured), so
//! a failing pgclone is seen.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::barman::{barman_34, Barman, Sshd};
use support::*;

const WAIT: Duration = Duration::from_secs(60);
const SCOPE: &str = "pgclone-e2e";
const REPL_PASSWORD: &str = "Repl-s3cret-e2e";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The postgres user's uid and gid when the tests run as root.
fn postgres_ids() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let id = |flag: &str| -> u32 {
        run_ok(Command::new("id").args([flag, "postgres"]))
            .trim()
            .parse()
            .unwrap()
    };
    Some((id("-u"), id("-g")))
}

/// `program` as the postgres user with the clean environment a service
/// manager gives, its output appended to `log`.
fn service(sc: &Scratch, program: &str, log: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env("HOME", &sc.dir)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("PGCLONE_CACHE_DIR", sc.path("cache"));
    if let Some((u, g)) = postgres_ids() {
        c.uid(u).gid(g);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    c.stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    c
}

fn wait_port(port: u16, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < WAIT, "{what} did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `f` returns `Some`.
fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The HTTP status of GET `path` on Patroni's REST API, 0 when it does not answer.
fn http_status(port: u16, path: &str) -> u16 {
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(
        c,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return 0;
    }
    let mut text = String::new();
    let _ = c.read_to_string(&mut text);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// One etcd 3.4 member on loopback.
struct Etcd {
    child: Child,
    port: u16,
}

impl Etcd {
    fn start(sc: &Scratch) -> Etcd {
        let (port, peer) = (free_port(), free_port());
        let data = sc.mkdir("etcd");
        std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let client = format!("http://127.0.0.1:{port}");
        let peer = format!("http://127.0.0.1:{peer}");
        let child = service(sc, "etcd", &sc.path("etcd.log"))
            .args(["--name", "e2e", "--data-dir", s(&data)])
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("e2e={peer}")])
            .spawn()
            .expect("etcd (Debian's etcd-server) is installed by scripts/setup.sh");
        wait_port(port, "etcd");
        Etcd { child, port }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Patroni 4.1.5 from PyPI, in the venv scripts/test-deps.sh makes
/// (`PGCLONE_TEST_PATRONI4` overrides): its bin directory.
fn patroni_4() -> PathBuf {
    let dir = std::env::var_os("PGCLONE_TEST_PATRONI4")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-deps/patroni4/bin")
        });
    assert!(
        dir.join("patroni").exists(),
        "Patroni 4 not found in {}: run scripts/test-deps.sh, which installs it",
        dir.display()
    );
    dir
}

/// Where `Barman::setup` puts Barman's configuration.
fn barman_config(sc: &Scratch) -> PathBuf {
    sc.path("barman").join("barman.conf")
}

/// One Patroni member: its configuration, its pgclone configuration, its
/// PostgreSQL.
struct Member {
    name: String,
    /// Where patroni and patronictl are.
    bin: PathBuf,
    port: u16,
    rest: u16,
    data: PathBuf,
    yml: PathBuf,
    log: PathBuf,
    pg_log: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn new(sc: &Scratch, bin: &Path, etcd: &Etcd, sshd: &Sshd, name: &str) -> Member {
        let (port, rest) = (free_port(), free_port());
        let data = sc.path(name);
        let pg_logs = sc.mkdir(&format!("{name}-pglog"));
        // The node's pgclone configuration: where Barman is, and nothing
        // about recovery (Patroni writes that).
        let conf = sc.write(
            &format!("{name}.conf"),
            &format!(
                "node_name={name}\nbarman_host=barmansrv\nbarman_server=pg\nbarman_config='{}'\n\
                 ssh_options='-F {}'\nwal_restore_spool_dir='{}'\n",
                barman_config(sc).display(),
                sshd.ssh_config.display(),
                sc.path(&format!("{name}-spool")).display()
            ),
        );
        let pgclone = env!("CARGO_BIN_EXE_pgclone");
        let yml = sc.write(
            &format!("{name}.yml"),
            &format!(
                r#"scope: {SCOPE}
name: {name}
restapi:
  listen: 127.0.0.1:{rest}
  connect_address: 127.0.0.1:{rest}
etcd3:
  hosts: 127.0.0.1:{etcd}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 5
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_keep_size: 256MB
    slots:
      barman:
        type: physical
  initdb:
  - encoding: UTF8
  - auth-local: trust
  - auth-host: scram-sha-256
postgresql:
  listen: 127.0.0.1:{port}
  connect_address: 127.0.0.1:{port}
  data_dir: {data}
  bin_dir: {bindir}
  pgpass: {pgpass}
  authentication:
    superuser:
      username: postgres
      password: Super-s3cret-e2e
    replication:
      username: replicator
      password: {REPL_PASSWORD}
    rewind:
      username: rewinder
      password: Rewind-s3cret-e2e
  parameters:
    unix_socket_directories: '{sock}'
    logging_collector: 'on'
    log_directory: '{pg_logs}'
    log_filename: postgresql.log
  pg_hba:
  - local all all trust
  - local replication all trust
  - host replication replicator 127.0.0.1/32 scram-sha-256
  - host all all 127.0.0.1/32 scram-sha-256
  create_replica_methods:
  - pgclone
  pgclone:
    command: {pgclone} -f {conf} -v patroni-replica
    keep_data: true
    jobs: 2
    site_note: an unknown key pgclone ignores
  recovery_conf:
    restore_command: {pgclone} -f {conf} wal-restore %f %p
"#,
                etcd = etcd.port,
                data = data.display(),
                bindir = pg_bindir().display(),
                pgpass = sc.path(&format!("{name}.pgpass")).display(),
                sock = sc.dir.display(),
                pg_logs = pg_logs.display(),
                conf = conf.display(),
            ),
        );
        Member {
            name: name.into(),
            bin: bin.to_path_buf(),
            port,
            rest,
            data,
            yml,
            log: sc.path(&format!("{name}.patroni.log")),
            pg_log: pg_logs.join("postgresql.log"),
            child: None,
        }
    }

    fn start(&mut self, sc: &Scratch) {
        let child = service(sc, s(&self.bin.join("patroni")), &self.log)
            .arg(&self.yml)
            .spawn()
            .expect("Patroni (Debian's patroni) is installed by scripts/setup.sh");
        self.child = Some(child);
    }

    /// Stops Patroni (which stops its PostgreSQL) as a service manager does.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let start = Instant::now();
            while c.try_wait().unwrap().is_none() {
                if start.elapsed() > WAIT {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // Whatever Patroni left running.
        if self.data.join("postmaster.pid").exists() {
            let _ = run(as_pg(pg_bindir().join("pg_ctl"))
                .args(["-w", "-m", "immediate", "-D"])
                .arg(&self.data)
                .arg("stop"));
        }
    }

    /// Asks Patroni to stop without waiting (members stop side by side).
    fn ask_to_stop(&self) {
        if let Some(c) = &self.child {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
    }

    /// A handle on its PostgreSQL, over the socket (Patroni runs it).
    fn pg(&self, sc: &Scratch) -> Pg {
        let mut pg = Pg::existing(sc, self.data.clone());
        pg.port = self.port;
        pg.log = self.pg_log.clone();
        pg
    }

    fn patroni_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn created_by_pgclone(&self) -> usize {
        self.patroni_log()
            .matches("replica has been created using pgclone")
            .count()
    }

    fn wait_role(&self, path: &str) {
        let what = format!("{} to answer 200 on {path}", self.name);
        wait_until(&what, Duration::from_secs(90), || {
            (http_status(self.rest, path) == 200).then_some(())
        });
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop();
    }
}

fn patronictl(sc: &Scratch, m: &Member, args: &[&str]) -> String {
    let out = run(as_pg("env")
        .arg("-i")
        .arg(format!("HOME={}", sc.dir.display()))
        .arg("PATH=/usr/local/bin:/usr/bin:/bin")
        .arg("LANG=C.UTF-8")
        .arg(m.bin.join("patronictl"))
        .arg("-c")
        .arg(&m.yml)
        .args(args));
    assert!(
        out.status.success(),
        "patronictl {args:?}:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// The members streaming from `leader`, by name.
fn streaming_from(sc: &Scratch, leader: &Member) -> String {
    leader.pg(sc).sql(
        "SELECT coalesce(string_agg(application_name, ',' ORDER BY application_name), '') \
         FROM pg_stat_replication WHERE state = 'streaming' AND application_name LIKE 'm_'",
    )
}

fn wait_streaming(sc: &Scratch, leader: &Member, want: &str) {
    let what = format!("\"{want}\" streaming from {}", leader.name);
    wait_until(&what, WAIT, || {
        (streaming_from(sc, leader) == want).then_some(())
    });
}

fn assert_replica_streams(sc: &Scratch, m: &Member, rows: &str) {
    let pg = m.pg(sc);
    pg.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    pg.wait_for("SELECT count(*) FROM t", rows, WAIT);
}

/// Runs `pgclone patroni-replica` the way Patroni does: as postgres, with
/// the password in the file PGPASSFILE names.
fn patroni_replica(sc: &Scratch, conf: &Path, args: &[String]) -> std::process::Output {
    let pgpass = sc.write(
        "direct.pgpass",
        &format!("127.0.0.1:*:*:replicator:{REPL_PASSWORD}\n"),
    );
    let mut all = vec!["-f".to_string(), s(conf).into(), "patroni-replica".into()];
    all.extend(args.iter().cloned());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    pgclone(sc, &refs, &[("PGPASSFILE", s(&pgpass))])
}

fn patroni_args(datadir: &Path, port: u16, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
    v.extend([
        format!("--scope={SCOPE}"),
        "--role=replica".into(),
        format!("--datadir={}", datadir.display()),
        format!("--connstring=dbname=postgres user=replicator host=127.0.0.1 port={port}"),
    ]);
    v
}

fn is_empty_or_missing(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

/// The PID of the `pgclone patroni-replica` process cloning into `datadir`.
fn pgclone_pid(datadir: &Path) -> Option<i32> {
    let want = format!("--datadir={}", datadir.display());
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_pgclone = args.first()?.ends_with(b"/pgclone");
        (is_pgclone && args.contains(&want.as_bytes())).then_some(pid)
    })
}

#[test]
fn patroni_3_0_cluster_with_pgclone_replicas_from_barman() {
    cluster(Path::new("/usr/bin"), "3.0.2", true);
}

#[test]
fn patroni_4_cluster_with_pgclone_replicas_from_barman() {
    cluster(&patroni_4(), "4.1.5", false);
}

/// The scenario with the Patroni in `bin` (whose version must be `version`);
/// `direct` adds the runs of patroni-replica as Patroni runs it (bad input,
/// SIGTERM), which do not depend on Patroni's version.
fn cluster(bin: &Path, version: &str, direct: bool) {
    let t0 = Instant::now();
    let lap = |what: &str| eprintln!("[Patroni {version} {:>6.1?}] {what}", t0.elapsed());
    let v = run_ok(Command::new(bin.join("patroni")).arg("--version"));
    assert_eq!(v.trim(), format!("patroni {version}"));
    let sc = Scratch::new(&format!("patroni{version}"));
    let etcd = Etcd::start(&sc);
    let mut sshd = Sshd::start(&sc, "/usr/bin:/bin");

    // The leader: Patroni bootstraps it; its permanent slot is Barman's.
    let mut m1 = Member::new(&sc, bin, &etcd, &sshd, "m1");
    m1.start(&sc);
    m1.wait_role("/primary");
    let leader = m1.pg(&sc);
    wait_until("Patroni to create the permanent slot barman", WAIT, || {
        (leader.sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'barman'") == "1")
            .then_some(())
    });
    lap("leader m1 bootstrapped by Patroni");

    leader.sql("CREATE TABLE t(i int); INSERT INTO t SELECT generate_series(1, 1000)");
    // A recovery setting in the leader's postgresql.auto.conf travels with
    // its backup: pgclone must not leave it in a replica.
    leader.sql("ALTER SYSTEM SET primary_conninfo = 'host=stale.invalid'");
    let barman = Barman::setup(&sc, &leader, barman_34());
    let id = barman.backup();
    leader.sql("ALTER SYSTEM RESET primary_conninfo");
    leader.sql("SELECT pg_reload_conf()");
    // Written after the backup: the replicas get it through WAL.
    leader.sql("INSERT INTO t SELECT generate_series(1001, 3000)");
    barman.archive_now();
    lap(&format!("Barman backup {id} of m1"));

    // Two members created by pgclone from Barman.
    let mut m2 = Member::new(&sc, bin, &etcd, &sshd, "m2");
    let mut m3 = Member::new(&sc, bin, &etcd, &sshd, "m3");
    m2.start(&sc);
    m3.start(&sc);
    m2.wait_role("/replica");
    m3.wait_role("/replica");
    wait_streaming(&sc, &m1, "m2,m3");
    for m in [&m2, &m3] {
        assert_replica_streams(&sc, m, "3000");
        let log = m.patroni_log();
        assert_eq!(m.created_by_pgclone(), 1, "{log}");
        assert!(log.contains("NOTICE: replica created from Barman"), "{log}");
        assert!(log.contains(&format!("Barman backup {id}")), "{log}");
        assert!(!log.contains("basebackup"), "{log}");
        // -v shows every program pgclone starts (argv): never the password.
        assert!(log.contains("DEBUG: running "), "{log}");
        assert!(!log.contains(REPL_PASSWORD), "{log}");
        assert!(
            log.contains("DEBUG: ignoring --site_note from Patroni"),
            "{log}"
        );
        assert!(!log.contains("an unknown key pgclone ignores"), "{log}");
        // Patroni's restore_command is pgclone wal-restore, and it delivered.
        let pg = m.pg(&sc);
        assert!(pg
            .sql("SHOW restore_command")
            .contains(" wal-restore %f %p"));
        let pg_log = std::fs::read_to_string(&m.pg_log).unwrap();
        assert!(pg_log.contains("restored log file"), "{pg_log}");
        // Nothing stale from the backup: Patroni's settings rule.
        assert_eq!(
            pg.sql("SELECT count(*) FROM pg_settings WHERE name = 'primary_conninfo' AND setting LIKE '%stale%'"),
            "0"
        );
    }
    let log = m2.patroni_log();
    let start = log
        .find("NOTICE: creating a replica for Patroni")
        .unwrap_or(0);
    let end = log
        .find("replica has been created using pgclone")
        .unwrap_or(log.len());
    eprintln!("m2's Patroni log, pgclone's part:\n{}", &log[start..end]);
    lap("m2 and m3 created by pgclone from Barman, streaming");

    // A switchover; the old leader rejoins and streams.
    patronictl(
        &sc,
        &m1,
        &[
            "switchover",
            "--leader",
            "m1",
            "--candidate",
            "m2",
            "--force",
        ],
    );
    m2.wait_role("/primary");
    m1.wait_role("/replica");
    m2.pg(&sc)
        .sql("INSERT INTO t SELECT generate_series(3001, 4000)");
    wait_streaming(&sc, &m2, "m1,m3");
    assert_replica_streams(&sc, &m1, "4000");
    assert_replica_streams(&sc, &m3, "4000");
    lap("switchover to m2; m1 rejoined and streams");

    // A member whose data was deleted is created again by pgclone; while
    // Barman is down, Patroni sees pgclone fail (it has no other method)
    // and tries again until Barman is back.
    m3.stop();
    std::fs::remove_dir_all(&m3.data).unwrap();
    sshd.stop();
    m3.start(&sc);
    wait_until("Patroni to see pgclone fail", WAIT, || {
        m3.patroni_log()
            .contains("Error creating replica using method pgclone")
            .then_some(())
    });
    sshd.restart();
    let log = m3.patroni_log();
    assert!(
        log.contains("ERROR: could not connect to the Barman host \"barmansrv\""),
        "{log}"
    );
    assert!(!log.contains("basebackup"), "{log}");
    m3.wait_role("/replica");
    wait_streaming(&sc, &m2, "m1,m3");
    assert_replica_streams(&sc, &m3, "4000");
    assert_eq!(m3.created_by_pgclone(), 2, "{}", m3.patroni_log());
    lap("m3 with its data deleted: pgclone failed while Barman was down, then created it");

    // keep_data: a reinit of the old leader updates its data directory in
    // place (a delta copy from Barman).
    patronictl(&sc, &m1, &["reinit", SCOPE, "m1", "--force"]);
    wait_until("m1 to be created again", Duration::from_secs(90), || {
        (m1.created_by_pgclone() == 1).then_some(())
    });
    m1.wait_role("/replica");
    wait_streaming(&sc, &m2, "m1,m3");
    assert_replica_streams(&sc, &m1, "4000");
    let log = m1.patroni_log();
    assert!(log.contains("Leaving data directory uncleaned"), "{log}");
    assert!(log.contains("only what changed will be copied"), "{log}");
    lap("reinit of m1 with keep_data: a delta copy");

    if direct {
        patroni_replica_as_patroni_runs_it(&sc, &m2, &barman, &mut sshd);
        lap("patroni-replica run as Patroni runs it: nothing stale, bad input, SIGTERM");
    }
    drop(barman);
    for m in [&m1, &m2, &m3] {
        m.ask_to_stop();
    }
    drop(m1);
    drop(m2);
    drop(m3);
    drop(etcd);
    // With the connections it serves: wal-restore's shared ssh connections
    // end with them instead of lingering for their ControlPersist.
    sshd.stop();
    lap("done");
}

/// `pgclone patroni-replica` run directly as Patroni runs it, from `leader`.
fn patroni_replica_as_patroni_runs_it(
    sc: &Scratch,
    leader: &Member,
    barman: &Barman,
    sshd: &mut Sshd,
) {
    let t0 = Instant::now();
    let lap = |what: &str| eprintln!("[direct {:>6.1?}] {what}", t0.elapsed());
    // pgclone patroni-replica run as Patroni runs it: the copy keeps nothing
    // of the backup's recovery settings, writes none of its own.
    let direct = sc.path("direct");
    let out = patroni_replica(
        sc,
        &sc.path("m3.conf"),
        &patroni_args(
            &direct,
            leader.port,
            &["--keep_data=False", "--no_params=False"],
        ),
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("no recovery configuration written"), "{err}");
    assert!(!err.contains(REPL_PASSWORD), "{err}");
    let auto = std::fs::read_to_string(direct.join("postgresql.auto.conf")).unwrap();
    assert!(!auto.contains("primary_conninfo"), "{auto}");
    for f in ["standby.signal", "recovery.signal", "recovery.conf"] {
        assert!(!direct.join(f).exists(), "{f}");
    }
    assert!(direct.join("PG_VERSION").exists());
    assert!(
        leader
            .pg(sc)
            .sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'repmgr%'")
            == "0"
    );
    lap("a direct patroni-replica: no recovery configuration, nothing stale");

    // Bad input: non-zero, a clear message, the data directory left empty.
    let bad = sc.mkdir("bad");
    let mut args = patroni_args(&bad, leader.port, &[]);
    args.push("stray".into());
    let out = patroni_replica(sc, &sc.path("m3.conf"), &args);
    eprintln!("bad argv:\n{}", stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ERROR: patroni-replica cannot understand the argument \"stray\""),
        "{}",
        stderr(&out)
    );
    assert!(is_empty_or_missing(&bad));

    let dead = free_port();
    let out = patroni_replica(sc, &sc.path("m3.conf"), &patroni_args(&bad, dead, &[]));
    let err = stderr(&out);
    eprintln!("dead leader:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("port {dead}")), "{err}");
    assert!(err.contains("ERROR: "), "{err}");
    assert!(is_empty_or_missing(&bad), "{err}");

    // A populated directory Patroni did not hand over (no keep_data) is
    // refused and left as it is.
    let kept = sc.mkdir("kept");
    std::fs::write(kept.join("precious"), "keep").unwrap();
    let out = patroni_replica(
        sc,
        &sc.path("m3.conf"),
        &patroni_args(&kept, leader.port, &["--keep_data=False"]),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot be used"), "{err}");
    assert!(!err.contains("was emptied"), "{err}");
    assert_eq!(
        std::fs::read_to_string(kept.join("precious")).unwrap(),
        "keep"
    );

    // Barman down, with keep_data over an old directory: emptied for
    // Patroni's next method.
    std::fs::write(bad.join("leftover"), "old").unwrap();
    if is_root() {
        run_ok(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&bad),
        );
    }
    sshd.stop();
    let out = patroni_replica(
        sc,
        &sc.path("m3.conf"),
        &patroni_args(&bad, leader.port, &["--keep_data=True"]),
    );
    sshd.restart();
    let err = stderr(&out);
    eprintln!("Barman down:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("barmansrv"), "{err}");
    assert!(err.contains("was emptied"), "{err}");
    assert!(is_empty_or_missing(&bad), "{err}");
    lap("bad input: argv, dead leader, Barman down");

    // SIGTERM (Patroni cancelling) during a copy slowed to 1 MB/s: gone
    // within Patroni's 10 s, the data directory empty.
    let proxy = sc.write("slowproxy.py", SLOW_PROXY);
    let slow_conf = sc.write(
        "slow.conf",
        &format!(
            "barman_host=barmansrv\nbarman_server=pg\nbarman_config='{}'\n\
             ssh_options='-F {} \"-oProxyCommand=python3 {} 127.0.0.1 {} 1000000\"'\n",
            barman.config.display(),
            sshd.ssh_config.display(),
            proxy.display(),
            sshd.port
        ),
    );
    let slow = sc.path("slow");
    let pgpass = sc.path("direct.pgpass");
    let mut all = vec![
        "-f".to_string(),
        s(&slow_conf).into(),
        "patroni-replica".into(),
    ];
    all.extend(patroni_args(&slow, leader.port, &[]));
    let handle =
        pgclone_in_background_with_env(sc, all, vec![("PGPASSFILE".into(), s(&pgpass).into())]);
    wait_until("the slow copy to start", WAIT, || {
        slow.join("base").exists().then_some(())
    });
    let pid = pgclone_pid(&slow).expect("pgclone runs");
    let sent = Instant::now();
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = handle.join().unwrap();
    let took = sent.elapsed();
    let err = stderr(&out);
    eprintln!("SIGTERM:\n{err}");
    assert!(took < Duration::from_secs(10), "{took:?}\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert!(is_empty_or_missing(&slow), "{err}");
    lap(&format!(
        "SIGTERM mid-copy: ended in {took:?}, data directory empty"
    ));
}

/// Without Barman in the node's configuration, patroni-replica clones with
/// pg_basebackup from the leader Patroni names. The node's repmgr-style keys
/// about recovery, slots and users are repmgr's business, not Patroni's:
/// ignored.
#[test]
fn patroni_replica_with_pg_basebackup_ignores_repmgr_recovery_keys() {
    let sc = Scratch::new("patroni-basebackup");
    let mut leader = Pg::init(&sc, "leader");
    leader.start();
    leader.sql(&format!(
        "CREATE ROLE replicator REPLICATION LOGIN PASSWORD '{REPL_PASSWORD}'"
    ));
    leader.sql("CREATE TABLE t AS SELECT generate_series(1, 100) AS i");
    let conf = sc.write(
        "node.conf",
        "node_id=7\nnode_name=node7\nuse_replication_slots=true\nreplication_user=someone_else\n\
         passfile='/nonexistent/pgpass'\nrestore_command='false'\n",
    );
    let target = sc.path("replica");
    let out = patroni_replica(
        &sc,
        &conf,
        &patroni_args(&target, leader.port, &["--keep_data=False"]),
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("NOTICE: replica created with pg_basebackup"),
        "{err}"
    );
    assert!(!err.contains(REPL_PASSWORD), "{err}");
    assert_eq!(leader.sql("SELECT count(*) FROM pg_replication_slots"), "0");
    for f in ["standby.signal", "recovery.signal", "recovery.conf"] {
        assert!(!target.join(f).exists(), "{f}");
    }
    let auto = std::fs::read_to_string(target.join("postgresql.auto.conf")).unwrap_or_default();
    assert!(!auto.contains("primary_conninfo"), "{auto}");
    assert!(!auto.contains("restore_command"), "{auto}");
    assert!(target.join("PG_VERSION").exists());
    // The copy starts (as a primary of its own here: Patroni would make it a
    // standby with its own configuration) and has the leader's rows.
    let mut copy = Pg::existing(&sc, target);
    copy.start();
    assert_eq!(copy.sql("SELECT count(*) FROM t"), "100");
}
