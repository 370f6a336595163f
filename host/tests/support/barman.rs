//! A real sshd on loopback and a real Barman server for tests. Both need root
//! (sshd runs as root; Barman runs as the `barman` user).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use super::{is_root, run, run_ok, Pg, Scratch};

/// Barman 3.19.1 (new catalogue layout), installed by scripts/test.sh in a venv.
pub fn barman_319() -> PathBuf {
    let p = std::env::var_os("PGCLONE_TEST_BARMAN319")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/test-deps/barman319/bin/barman")
        });
    assert!(
        p.exists(),
        "Barman 3.19.1 not found at {}: run scripts/test.sh, which installs it",
        p.display()
    );
    p
}

/// Debian's Barman 3.4.
pub fn barman_34() -> PathBuf {
    PathBuf::from("/usr/bin/barman")
}

fn chown(p: &Path, owner: &str) {
    run_ok(Command::new("chown").arg("-R").arg(owner).arg(p));
}

/// sshd on 127.0.0.1 at a free port, letting the postgres user's test key log
/// in as `barman`; `ssh_config` has a `Host barmansrv` block for it.
pub struct Sshd {
    pub port: u16,
    /// The client configuration (`ssh -F`), owned by postgres.
    pub ssh_config: PathBuf,
    child: Child,
    config: PathBuf,
    log: PathBuf,
}

impl Sshd {
    /// `path` is the PATH remote commands get (to choose a Barman version).
    pub fn start(s: &Scratch, path: &str) -> Sshd {
        Self::start_for(s, path, false)
    }

    /// With `postgres_login`, the barman user may also log in as postgres
    /// with `ssh/barman_key` (what `barman recover --remote-ssh-command` needs).
    pub fn start_for(s: &Scratch, path: &str, postgres_login: bool) -> Sshd {
        assert!(is_root(), "the Barman tests run sshd and need root");
        let dir = s.mkdir("ssh");
        std::fs::create_dir_all("/run/sshd").unwrap();
        let host_key = dir.join("host_key");
        if !host_key.exists() {
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(&host_key),
            );
            chown(&host_key, "root:root");
        }
        let client_key = dir.join("client_key");
        if !client_key.exists() {
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(&client_key),
            );
        }
        let authorized = dir.join("authorized_keys");
        let mut keys = std::fs::read_to_string(dir.join("client_key.pub")).unwrap();
        let mut users = "barman".to_string();
        if postgres_login {
            let barman_key = dir.join("barman_key");
            if !barman_key.exists() {
                run_ok(
                    Command::new("ssh-keygen")
                        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                        .arg(&barman_key),
                );
            }
            keys.push_str(&std::fs::read_to_string(dir.join("barman_key.pub")).unwrap());
            users.push_str(" postgres");
            run_ok(Command::new("usermod").args(["-p", "*", "postgres"]));
        }
        std::fs::write(&authorized, keys).unwrap();
        // With UsePAM no, sshd refuses an account whose password is locked.
        run_ok(Command::new("usermod").args(["-p", "*", "barman"]));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join(format!("sshd_config_{port}"));
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nUsePAM no\nStrictModes no\n\
                 AuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 AllowUsers {users}\nSetEnv PATH={path}\nLogLevel ERROR\nMaxStartups 100:30:200\nMaxSessions 100\n",
                host_key.display(),
                dir.join(format!("sshd_{port}.pid")).display(),
                authorized.display()
            ),
        )
        .unwrap();
        let log = dir.join(format!("sshd_{port}.log"));
        let child = spawn_sshd(&config, &log, port);
        let ssh_config = dir.join(format!("ssh_config_{port}"));
        std::fs::write(
            &ssh_config,
            format!(
                "Host barmansrv\n  HostName 127.0.0.1\n  Port {port}\n  User barman\n  IdentityFile {}\n  \
                 StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n\
                 Host wrongport\n  HostName 127.0.0.1\n  Port 1\n  User barman\n  IdentityFile {}\n  \
                 StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
                client_key.display(),
                client_key.display()
            ),
        )
        .unwrap();
        chown(&dir, "postgres:postgres");
        chown(&host_key, "root:root");
        if postgres_login {
            chown(&dir.join("barman_key"), "barman:barman");
        }
        Sshd {
            port,
            ssh_config,
            child,
            config,
            log,
        }
    }

    /// Stops sshd and every connection it serves (each is a process of its
    /// own, which outlives the listener): the Barman host is gone.
    pub fn stop(&mut self) {
        let mut pids = vec![self.child.id() as i32];
        let mut i = 0;
        while i < pids.len() {
            pids.extend(children_of(pids[i]));
            i += 1;
        }
        for pid in pids {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }

    /// Starts sshd again on the same port with the same configuration.
    pub fn restart(&mut self) {
        self.child = spawn_sshd(&self.config, &self.log, self.port);
    }
}

fn spawn_sshd(config: &Path, log: &Path, port: u16) -> Child {
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-f"])
        .arg(config)
        .arg("-E")
        .arg(log)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// The processes whose parent is `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces.
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = &s[s.rfind(')')? + 2..];
                    rest.split(' ').nth(1)?.parse::<i32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Barman server for `pg` (server name `pg`), streaming WAL.
pub struct Barman {
    pub bin: PathBuf,
    pub config: PathBuf,
    pub home: PathBuf,
    conninfo: String,
    /// The PostgreSQL client tools Barman runs (`path_prefix`).
    bindir: PathBuf,
    /// The servers whose WAL receivers run.
    servers: std::sync::Mutex<Vec<String>>,
}

impl Barman {
    pub fn setup(s: &Scratch, pg: &Pg, bin: PathBuf) -> Barman {
        Self::setup_with(s, pg, bin, &super::pg_bindir())
    }

    /// The same with the PostgreSQL client tools (Barman's `path_prefix`:
    /// pg_basebackup, pg_receivewal) in `bindir`.
    pub fn setup_with(s: &Scratch, pg: &Pg, bin: PathBuf, bindir: &Path) -> Barman {
        let dir = s.path("barman");
        std::fs::create_dir_all(dir.join("home")).unwrap();
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        let config = dir.join("barman.conf");
        let conninfo = format!(
            "host={} port={} user=postgres",
            pg.socket_dir.display(),
            pg.port
        );
        std::fs::write(
            &config,
            format!(
                "[barman]\nbarman_user = barman\nbarman_home = {home}\nlog_file = {dir}/barman.log\nlog_level = INFO\n\
                 configuration_files_directory = {dir}/conf.d\n\n\
                 [pg]\ndescription = test primary\nconninfo = {conninfo} dbname=postgres\n\
                 streaming_conninfo = {conninfo}\nbackup_method = postgres\nimmediate_checkpoint = true\nstreaming_archiver = on\n\
                 slot_name = barman\ncreate_slot = auto\npath_prefix = {bindir}\n\n\
                 [empty]\ndescription = a server without backups\nconninfo = {conninfo} dbname=postgres\n\
                 streaming_conninfo = {conninfo}\nbackup_method = postgres\nimmediate_checkpoint = true\nstreaming_archiver = on\n\
                 slot_name = barman_empty\npath_prefix = {bindir}\n",
                home = dir.join("home").display(),
                dir = dir.display(),
                bindir = bindir.display(),
            ),
        )
        .unwrap();
        chown(&dir, "barman:barman");
        let b = Barman {
            bin,
            config,
            home: dir.join("home"),
            conninfo,
            bindir: bindir.to_path_buf(),
            servers: std::sync::Mutex::new(vec!["pg".into()]),
        };
        b.start_archiving("pg");
        b
    }

    /// Starts the streaming archiver of `server` and waits until it archived
    /// a WAL file.
    pub fn start_archiving(&self, server: &str) {
        // A slot made beforehand (e.g. a permanent slot of Patroni) is used.
        let out = self.run(&["receive-wal", "--create-slot", server]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() || text.contains("already exists"),
            "barman receive-wal --create-slot {server} failed:\n{text}"
        );
        self.ok(&["cron"]);
        // Wait for the streaming archiver, then close the current segment.
        let start = Instant::now();
        loop {
            let out = self.run(&[
                "switch-wal",
                "--force",
                "--archive",
                "--archive-timeout",
                "20",
                server,
            ]);
            if out.status.success() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "barman never archived a WAL file of {server}"
            );
            self.ok(&["cron"]);
        }
    }

    /// Adds a server for the same primary, with its own slot and `settings`
    /// (e.g. `backup_compression = gzip`), archiving.
    pub fn add_server(&self, name: &str, settings: &str) {
        let conf_d = self.config.parent().unwrap().join("conf.d");
        std::fs::write(
            conf_d.join(format!("{name}.conf")),
            format!(
                "[{name}]\ndescription = {name}\nconninfo = {c} dbname=postgres\nstreaming_conninfo = {c}\n\
                 backup_method = postgres\nimmediate_checkpoint = true\nstreaming_archiver = on\nslot_name = barman_{name}\ncreate_slot = auto\n\
                 path_prefix = {bindir}\n{settings}\n",
                c = self.conninfo,
                bindir = self.bindir.display(),
            ),
        )
        .unwrap();
        chown(&conf_d, "barman:barman");
        self.servers.lock().unwrap().push(name.into());
        self.start_archiving(name);
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(Command::new("runuser")
            .args(["-u", "barman", "--"])
            .arg(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args))
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "barman {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Takes a backup and returns its id.
    pub fn backup(&self) -> String {
        self.backup_of("pg")
    }

    /// Takes a backup of `server` and returns its id.
    pub fn backup_of(&self, server: &str) -> String {
        self.ok(&["backup", "--wait", server]);
        self.ok(&["list-backups", "--minimal", server])
            .lines()
            .next()
            .unwrap()
            .trim()
            .to_string()
    }

    /// Takes a backup of `server` with `barman backup --wait ARGS` (e.g.
    /// `--name N`, `--incremental latest`) and returns its id.
    pub fn backup_with(&self, server: &str, args: &[&str]) -> String {
        let before = self.ok(&["list-backups", "--minimal", server]);
        if args.contains(&"--incremental") {
            // Barman's backup ids are start times to the second: an
            // incremental started in its parent's second gets the parent's id
            // (and pg_basebackup then looks for the parent's manifest in its
            // own, empty directory). The parent has finished: one second on,
            // the ids differ.
            std::thread::sleep(Duration::from_millis(1100));
        }
        let mut argv = vec!["backup", "--wait"];
        argv.extend(args);
        argv.push(server);
        self.ok(&argv);
        let after = self.ok(&["list-backups", "--minimal", server]);
        let id = after.lines().next().unwrap().trim().to_string();
        assert!(
            !before.lines().any(|l| l.trim() == id),
            "no new backup of {server}:\n{after}"
        );
        id
    }

    /// Makes the primary's current WAL reach Barman's archive.
    pub fn archive_now(&self) {
        self.ok(&[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "60",
            "pg",
        ]);
    }
}

impl Drop for Barman {
    fn drop(&mut self) {
        for server in self.servers.lock().unwrap().iter() {
            let _ = self.run(&["receive-wal", "--stop", server]);
        }
    }
}

/// A Host block put into a user's ~/.ssh/config for the length of a
/// benchmark (repmgr and barman-wal-restore read nothing else); what was
/// there is restored on drop.
#[allow(dead_code)] // the benchmarks' (they share this module)
pub struct HomeSshConfig {
    path: PathBuf,
    saved: Option<Vec<u8>>,
}

#[allow(dead_code)]
impl HomeSshConfig {
    /// `user`'s home comes from the password database.
    pub fn install(user: &str, contents: &str) -> Self {
        let home = run_ok(
            Command::new("sh")
                .arg("-c")
                .arg(format!("getent passwd {user} | cut -d: -f6")),
        );
        let dir = PathBuf::from(home.trim()).join(".ssh");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        let saved = std::fs::read(&path).ok();
        std::fs::write(&path, contents).unwrap();
        chown(&dir, &format!("{user}:"));
        HomeSshConfig { path, saved }
    }
}

impl Drop for HomeSshConfig {
    fn drop(&mut self) {
        match &self.saved {
            Some(b) => drop(std::fs::write(&self.path, b)),
            None => drop(std::fs::remove_file(&self.path)),
        }
    }
}

/// A PostgreSQL 17 primary with `summarize_wal = on` backed up by Barman 3.19
/// (`backup_method = postgres`, PostgreSQL 17's tools): a full backup and
/// incremental backups on top of it (`barman backup --incremental`), each
/// after more rows. sshd's remote commands find Barman 3.19 and PostgreSQL
/// 17's tools (pg_combinebackup) first.
pub struct IncrementalLab {
    pub sc: Scratch,
    pub primary: Pg,
    pub sshd: Sshd,
    pub barman: Barman,
    /// The full backup's id (named `base-full`).
    pub full: String,
    /// The incremental backups' ids, oldest first (named `incr-1`, `incr-2`, ...),
    /// each based on the one before it.
    pub incrementals: Vec<String>,
    /// The rows of table `t` in each backup: `rows[0]` in the full one,
    /// `rows[i]` in `incrementals[i - 1]`.
    pub rows: Vec<u32>,
}

impl IncrementalLab {
    /// Built in Scratch `name` with `incrementals` incremental backups.
    pub fn new(name: &str, incrementals: usize) -> IncrementalLab {
        let sc = Scratch::new(name);
        let bindir = super::pg17_bindir();
        let mut primary = Pg::init_with(&sc, "primary", &bindir, &[]);
        primary.append_conf("summarize_wal = on\nwal_keep_size = '256MB'\n");
        primary.start();
        let barman_bin = barman_319();
        let path = format!(
            "{}:{}:/usr/bin:/bin",
            barman_bin.parent().unwrap().display(),
            bindir.display()
        );
        let sshd = Sshd::start(&sc, &path);
        let barman = Barman::setup_with(&sc, &primary, barman_bin, &bindir);
        primary.sql("CREATE TABLE t(i int); INSERT INTO t SELECT generate_series(1, 1000)");
        let mut rows = vec![1000];
        let full = barman.backup_with("pg", &["--name", "base-full"]);
        let mut ids = Vec::new();
        for n in 1..=incrementals {
            let from = rows.last().unwrap() + 1;
            let to = from + 999;
            primary.sql(&format!(
                "INSERT INTO t SELECT generate_series({from}, {to})"
            ));
            rows.push(to);
            let name = format!("incr-{n}");
            ids.push(barman.backup_with("pg", &["--incremental", "latest", "--name", &name]));
        }
        IncrementalLab {
            sc,
            primary,
            sshd,
            barman,
            full,
            incrementals: ids,
            rows,
        }
    }

    /// A pgclone configuration for node 2 cloning from this Barman with
    /// PostgreSQL 17's tools (`pg_bindir`), plus `extra`.
    pub fn conf(&self, extra: &str) -> PathBuf {
        self.sc.write(
            "pgclone.conf",
            &format!(
                "node_id=2\nnode_name=node2\nbarman_host=barmansrv\nbarman_server=pg\nbarman_config='{}'\n\
                 ssh_options='-F {}'\npg_bindir='{}'\n{extra}",
                self.barman.config.display(),
                self.sshd.ssh_config.display(),
                super::pg17_bindir().display()
            ),
        )
    }
}
