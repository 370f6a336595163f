//! Standbys cloned and fed from barman-cloud backups through the real
//! `pgclone` binary: barman-cloud 3.19.1 writes real backups and real
//! archived WAL into moto (S3) and Azurite (Azure), and
//! `pgclone standby clone` / `wal-restore` / `barman-cloud-wal-restore` read
//! them with the first-party `barman-cloud` source. Credentials are only
//! ever in the environment (pgclone's and the standby's), never in a file
//! pgclone reads or on a command line.
//!
//! One S3 primary with five backups (every compression, parts, a tablespace)
//! is shared by the S3 tests ([`s3_lab`]); the timeline test and Azure have
//! a primary each. Google Cloud Storage has its own module
//! (`barman_cloud_gcs.rs`, against fake-gcs-server).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::support::cloud::{
    archive_to, archive_wal_now, azurite, barman_cloud_backup, barman_cloud_wal_restore, moto,
    promote, tablespace, BackupOpts, ObjectServer, Provider, Store,
};
use crate::support::{
    clone_args, is_root, pg_bindir, spooled, stderr, stdout, wait_spooled, Pg, Scratch,
};

const WAIT: Duration = Duration::from_secs(90);

fn pgclone_bin() -> &'static str {
    env!("CARGO_BIN_EXE_pgclone")
}

/// `pgclone ARGS` as the postgres user with `store`'s credentials in its
/// environment (not on its command line: `env K=V` would put them in argv).
fn pgclone(sc: &Scratch, store: &Store, args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(pgclone_bin());
    if is_root() {
        let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
        assert!(!pw.is_null(), "no postgres user");
        unsafe { c.uid((*pw).pw_uid).gid((*pw).pw_gid) };
    }
    c.env_clear()
        .env("HOME", &sc.dir)
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", pg_bindir().display()),
        )
        .env("PGCLONE_CACHE_DIR", sc.path("cache"))
        .envs(store.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .args(args)
        .output()
        .unwrap()
}

/// A primary archiving into a store with barman-cloud-wal-archive, and
/// what the tests need to configure clones of its backups.
struct Lab {
    primary: Pg,
    store: Store,
    /// The tablespace's directory on the primary: each clone `NAME` puts
    /// it in `tsp-NAME` (tablespace_mapping).
    ts: Option<PathBuf>,
    /// Last: dropped (removed) after the primary has stopped.
    sc: Scratch,
}

/// Server name the labs back up and archive as.
const SERVER: &str = "pg";

impl Lab {
    /// A primary in a new bucket of `server`, archiving with `compression`.
    fn new(server: &ObjectServer, test: &str, compression: &str) -> Lab {
        let sc = Scratch::new(&format!("bc-{test}"));
        let store = server.store(test);
        let mut primary = Pg::init(&sc, "primary");
        archive_to(&primary, &sc, &store, SERVER, compression);
        primary.start();
        primary
            .sql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 5000) g");
        Lab {
            sc,
            primary,
            store,
            ts: None,
        }
    }

    /// A node configuration `NAME.conf` for the barman-cloud source:
    /// restore_command is `pgclone -f THIS wal-restore %f %p` with its spool
    /// in `spool-NAME`; `extra` appended.
    fn conf(&self, name: &str, extra: &str) -> PathBuf {
        let path = self.sc.path(&format!("{name}.conf"));
        let restore = format!("{} -f {} wal-restore %f %p", pgclone_bin(), path.display());
        self.conf_restoring(name, &restore, extra)
    }

    /// The same with restore_command `restore`.
    fn conf_restoring(&self, name: &str, restore: &str, extra: &str) -> PathBuf {
        let mut text = format!(
            "node_id=2\nnode_name={name}\nbackup_source=barman-cloud\nbarman_cloud_url='{}'\n\
             barman_cloud_server={SERVER}\nbarman_cloud_provider={}\n\
             wal_restore_spool_dir='{}'\nrestore_command='{restore}'\n",
            self.store.url,
            self.store.provider.name(),
            self.sc.path(&format!("spool-{name}")).display(),
        );
        if let Some(e) = &self.store.endpoint_url {
            text.push_str(&format!("barman_cloud_endpoint_url='{e}'\n"));
        }
        if let Some(ts) = &self.ts {
            text.push_str(&format!(
                "tablespace_mapping='{}={}'\n",
                ts.display(),
                self.sc.path(&format!("tsp-{name}")).display()
            ));
        }
        text.push_str(extra);
        self.sc.write(&format!("{name}.conf"), &text)
    }

    /// `pgclone -f CONF standby clone` from `upstream` into `target`.
    fn clone_from(&self, upstream: &Pg, conf: &Path, target: &Path, extra: &[&str]) -> Output {
        let args = clone_args(conf, upstream, target, extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        pgclone(&self.sc, &self.store, &refs)
    }

    fn clone(&self, conf: &Path, target: &Path, extra: &[&str]) -> Output {
        self.clone_from(&self.primary, conf, target, extra)
    }

    /// The clone in `target` started with the store's credentials in its
    /// environment (its restore_command's).
    fn start(&self, target: &Path) -> Pg {
        let mut st = Pg::existing(&self.sc, target.to_path_buf());
        st.start_env(&self.store.env);
        st
    }

    /// The segments under `SERVER/wals/` of timeline `tli` (no suffix, no
    /// backup labels), sorted.
    fn archived(&self, tli: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .store
            .list(&format!("{SERVER}/wals/{tli}"))
            .into_iter()
            .filter_map(|(k, _)| {
                let name = k.rsplit('/').next()?.to_string();
                (name.len() >= 24 && !name.contains(".backup")).then(|| name[..24].to_string())
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Asserts that a clone succeeded and that `target` is a data directory.
fn assert_cloned(out: &Output, target: &Path) -> String {
    let err = stderr(out);
    assert!(
        out.status.success(),
        "clone failed:\n{}\n{err}",
        stdout(out)
    );
    assert!(target.join("global/pg_control").exists(), "{err}");
    assert!(target.join("PG_VERSION").exists(), "{err}");
    err
}

/// The shared S3 lab: a primary with tablespace `tsp`, archiving with
/// --gzip, and five backups of it: `nightly` (gzip, 1 MB parts), then
/// plain, bzip2, lz4 and snappy (the latest); rows written after them all
/// (`after_backup`) reach clones only through the archive or streaming.
struct S3Lab {
    lab: Lab,
    /// Backup ids by compression (`gzip` is `nightly`).
    ids: Vec<(&'static str, String)>,
}

fn s3_lab() -> &'static S3Lab {
    static LAB: OnceLock<S3Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let mut lab = Lab::new(moto(), "barman_cloud_clones", "--gzip");
        lab.ts = Some(tablespace(&lab.primary, &lab.sc, "tsp", 5000));
        let mut ids = Vec::new();
        for (compression, parts, name) in [
            ("gzip", Some("1MB"), Some("nightly".to_string())),
            ("", None, None),
            ("bzip2", None, None),
            ("lz4", None, None),
            ("snappy", None, None),
        ] {
            let opts = BackupOpts {
                compression,
                max_archive_size: parts,
                name,
            };
            ids.push((
                compression,
                barman_cloud_backup(&lab.primary, &lab.store, SERVER, &opts),
            ));
        }
        lab.primary
            .sql("CREATE TABLE after_backup AS SELECT 42 AS answer");
        archive_wal_now(&lab.primary, &lab.store, SERVER);
        stop_at_exit(&lab.primary);
        S3Lab { lab, ids }
    })
}

/// A shared lab lives in a static, which is never dropped: its primary is
/// stopped (and its scratch directory removed) when the test process exits.
fn stop_at_exit(pg: &Pg) {
    static DATA: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn stop_all() {
        if let Ok(dirs) = DATA.lock() {
            for d in dirs.iter() {
                let _ = crate::support::as_pg(pg_bindir().join("pg_ctl"))
                    .args(["-w", "-m", "immediate", "-D"])
                    .arg(d)
                    .arg("stop")
                    .output();
                if let Some(scratch) = d.parent() {
                    let _ = std::fs::remove_dir_all(scratch);
                }
            }
        }
    }
    DATA.lock().unwrap().push(pg.data.clone());
    ONCE.call_once(|| unsafe {
        libc::atexit(stop_all);
    });
}

macro_rules! needs_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (servers run as postgres)");
            return;
        }
    };
}

/// By name (`--backup-id nightly`): a gzip backup in parts with a
/// tablespace placed by tablespace_mapping. The clone starts restore_command's
/// prefetcher, so the WAL since the backup is in the spool when it ends;
/// the standby replays it from there, then streams.
#[test]
fn s3_gzip_parts_tablespace_by_name_with_the_wal_warmed() {
    needs_root!();
    let s3 = s3_lab();
    let lab = &s3.lab;
    let id = &s3.ids[0].1;
    let conf = lab.conf("nightly", "");
    let target = lab.sc.path("standby-nightly");
    let out = lab.clone(&conf, &target, &["--backup-id", "nightly"]);
    let err = assert_cloned(&out, &target);
    assert!(err.contains(id.as_str()), "backup {id} not named:\n{err}");
    assert!(
        err.contains("fetching the WAL since the backup"),
        "no warm-up:\n{err}"
    );
    // Every archived segment since the backup's first is in the spool.
    let begin = backup_begin_wal(&lab.store, id);
    let since: Vec<String> = lab
        .archived("00000001")
        .into_iter()
        .filter(|n| *n >= begin)
        .collect();
    assert!(since.len() >= 2, "{since:?}");
    wait_spooled(&lab.sc.path("spool-nightly"), &since);

    let ts_target = &lab.sc.path("tsp-nightly");
    let map = std::fs::read_to_string(target.join("tablespace_map")).unwrap();
    assert!(map.contains(&ts_target.display().to_string()), "{map}");
    assert!(std::fs::read_dir(ts_target).unwrap().next().is_some());

    let st = lab.start(&target);
    st.wait_for("SELECT answer FROM after_backup", "42", WAIT);
    assert_eq!(st.sql("SELECT count(*) FROM tsp_t"), "5000");
    assert_eq!(st.sql("SELECT count(*) FROM t"), "5000");
    let oid = st.sql("SELECT oid FROM pg_tablespace WHERE spcname = 'tsp'");
    assert_eq!(
        st.sql(&format!("SELECT pg_tablespace_location({oid})")),
        ts_target.display().to_string()
    );
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    let log = std::fs::read_to_string(&st.log).unwrap();
    for n in &since[1..] {
        assert!(
            log.contains(&format!("restored log file \"{n}\" from archive")),
            "{n} not replayed from the archive:\n{log}"
        );
    }
}

/// `begin_wal` of backup `id` as its backup.info says.
fn backup_begin_wal(store: &Store, id: &str) -> String {
    let info = String::from_utf8(store.get(&format!("{SERVER}/base/{id}/backup.info"))).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("begin_wal="))
        .unwrap_or_else(|| panic!("no begin_wal in backup.info:\n{info}"))
        .to_string()
}

/// The other compressions: plain, bzip2 and lz4 by id, snappy as `latest`;
/// each clone reaches consistency and replays the rows written after it.
#[test]
fn s3_plain_bzip2_lz4_by_id_and_snappy_as_latest() {
    needs_root!();
    let s3 = s3_lab();
    let lab = &s3.lab;
    for (compression, id) in &s3.ids[1..] {
        let which = if *compression == "snappy" {
            "latest"
        } else {
            id.as_str()
        };
        let name = format!(
            "c{}",
            if compression.is_empty() {
                "plain"
            } else {
                compression
            }
        );
        // The plain one's restore_command is the barman-cloud-wal-restore
        // drop-in: the clone warms its spool too.
        let dropin = lab.sc.path("spool-dropin-warm");
        let conf = if compression.is_empty() {
            let restore = format!(
                "{} barman-cloud-wal-restore --endpoint-url {} --spool-dir {} {} {SERVER} %f %p",
                pgclone_bin(),
                lab.store.endpoint_url.as_ref().unwrap(),
                dropin.display(),
                lab.store.url
            );
            lab.conf_restoring(&name, &restore, "")
        } else {
            lab.conf(&name, "")
        };
        let target = lab.sc.path(&format!("standby-{name}"));
        let out = lab.clone(&conf, &target, &["--backup-id", which]);
        let err = assert_cloned(&out, &target);
        if compression.is_empty() {
            assert!(err.contains("fetching the WAL since the backup"), "{err}");
            let begin = backup_begin_wal(&lab.store, id);
            let since: Vec<String> = lab
                .archived("00000001")
                .into_iter()
                .filter(|n| *n >= begin)
                .collect();
            wait_spooled(&dropin, &since);
        }
        assert!(
            err.contains(id.as_str()),
            "{compression}: {id} not named:\n{err}"
        );
        let mut st = lab.start(&target);
        st.wait_for("SELECT answer FROM after_backup", "42", WAIT);
        assert_eq!(
            st.sql("SELECT count(*) FROM tsp_t"),
            "5000",
            "{compression}"
        );
        assert_eq!(st.sql("SELECT pg_is_in_recovery()"), "t");
        st.stop();
        let _ = std::fs::remove_dir_all(&target);
        let _ = std::fs::remove_dir_all(lab.sc.path(&format!("tsp-{name}")));
    }
}

/// `--dry-run` shows the unpack steps (each part of the data archive, the
/// tablespace's) and writes nothing; a missing backup is a clear error that
/// leaves nothing of the target.
#[test]
fn s3_dry_run_shows_the_unpack_steps_and_a_missing_backup_leaves_nothing() {
    needs_root!();
    let s3 = s3_lab();
    let lab = &s3.lab;
    let id = &s3.ids[0].1;
    let conf = lab.conf("dry", "");
    let target = lab.sc.path("standby-dry");
    let out = lab.clone(&conf, &target, &["--backup-id", "nightly", "--dry-run"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}");
    let oid = lab
        .primary
        .sql("SELECT oid FROM pg_tablespace WHERE spcname = 'tsp'");
    for object in ["data.tar.gz", "data_0001.tar.gz", &format!("{oid}.tar.gz")] {
        assert!(
            text.contains(&format!("{id}/{object}")),
            "{object} not in the dry run:\n{text}"
        );
    }
    assert!(!target.exists(), "a dry run wrote {}", target.display());

    let out = lab.clone(&conf, &target, &["--backup-id", "latest", "--dry-run"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("{}/data.tar.snappy", s3.ids[4].1)),
        "{text}"
    );

    let out = lab.clone(&conf, &target, &["--backup-id", "20200101T000000"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("20200101T000000"), "{err}");
    assert!(!target.exists(), "{err}");
    let out = lab.clone(&conf, &target, &["--backup-id", "no-such-name"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no-such-name"), "{err}");
    assert!(!target.exists(), "{err}");
}

/// The drop-in: `pgclone barman-cloud-wal-restore [its options] URL SERVER
/// %f %p` delivers what barman-cloud-wal-restore delivers, exits 1 for a
/// segment not archived (nothing at %p), answers -t, and prefetches: the
/// next segment is in the spool and taken from there.
#[test]
fn s3_barman_cloud_wal_restore_drop_in() {
    needs_root!();
    let s3 = s3_lab();
    let lab = &s3.lab;
    let segments = lab.archived("00000001");
    assert!(segments.len() >= 3, "{segments:?}");
    let endpoint = lab.store.endpoint_url.clone().unwrap();
    let spool = lab.sc.path("spool-dropin");
    let spool_s = spool.display().to_string();
    let dir = lab.sc.mkdir("dropin");
    let run = |extra: &[&str], tail: &[&str]| {
        let mut args = vec![
            "barman-cloud-wal-restore",
            "--endpoint-url",
            endpoint.as_str(),
            "--spool-dir",
            spool_s.as_str(),
        ];
        args.extend(extra);
        args.extend([lab.store.url.as_str(), SERVER]);
        args.extend(tail);
        pgclone(&lab.sc, &lab.store, &args)
    };

    let (a, b) = (&segments[0], &segments[1]);
    let ours = dir.join("ours");
    let out = run(&["-p", "4"], &[a, ours.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let theirs = dir.join("theirs");
    let out = barman_cloud_wal_restore(&lab.store, SERVER, a, &theirs);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(&ours).unwrap().len(), 16 << 20);
    assert!(std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap());

    // The prefetcher brought the next one; asking for it takes it from the spool.
    wait_spooled(&spool, std::slice::from_ref(b));
    let next = dir.join("next");
    let out = run(&["-p", "4"], &[b, next.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !spooled(&spool).iter().any(|p| p.ends_with(b)),
        "{b} was not taken from the spool"
    );
    let theirs_b = dir.join("theirs-b");
    assert!(barman_cloud_wal_restore(&lab.store, SERVER, b, &theirs_b)
        .status
        .success());
    assert!(std::fs::read(&next).unwrap() == std::fs::read(&theirs_b).unwrap());

    // Not archived: exit 1, nothing at %p.
    let missing = dir.join("missing");
    let out = run(
        &["-p", "0"],
        &["00000001000000FF000000FE", missing.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!missing.exists());

    let out = run(&["-t"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Patroni's replica method with this source: `pgclone -f CONF
/// patroni-replica` run as Patroni runs it (its `--scope`, `--role`,
/// `--datadir`, `--connstring`), the backup from the store. Patroni writes
/// the recovery settings itself, so the test does what it would (standby.signal,
/// restore_command), and the member replays the WAL since the backup.
#[test]
fn s3_patroni_replica_from_barman_cloud() {
    needs_root!();
    let s3 = s3_lab();
    let lab = &s3.lab;
    let conf = lab.conf("patroni", "");
    let datadir = lab.sc.path("standby-patroni");
    let args = [
        "-f".to_string(),
        conf.display().to_string(),
        "patroni-replica".into(),
        "--scope=cloud".into(),
        "--role=replica".into(),
        format!("--datadir={}", datadir.display()),
        format!(
            "--connstring=dbname=postgres user=postgres host={} port={}",
            lab.primary.socket_dir.display(),
            lab.primary.port
        ),
    ];
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = pgclone(&lab.sc, &lab.store, &refs);
    let err = assert_cloned(&out, &datadir);
    assert!(
        err.contains(s3.ids[4].1.as_str()),
        "not the latest backup:\n{err}"
    );
    assert!(err.contains("no recovery configuration written"), "{err}");
    assert!(!datadir.join("standby.signal").exists());
    // What Patroni writes for a replica whose restore_command is pgclone's.
    std::fs::write(datadir.join("standby.signal"), "").unwrap();
    std::os::unix::fs::chown(datadir.join("standby.signal"), Some(postgres_uid()), None).unwrap();
    let pg = Pg::existing(&lab.sc, datadir.clone());
    pg.append_conf(&format!(
        "restore_command = '{} -f {} wal-restore %f %p'\n",
        pgclone_bin(),
        conf.display()
    ));
    let st = lab.start(&datadir);
    st.wait_for("SELECT answer FROM after_backup", "42", WAIT);
    assert!(std::fs::read_to_string(&st.log)
        .unwrap()
        .contains("restored log file"));
}

fn postgres_uid() -> u32 {
    let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    assert!(!pw.is_null(), "no postgres user");
    unsafe { (*pw).pw_uid }
}

/// WAL of two timelines through `pgclone -f CONF wal-restore`, archived
/// with --bzip2: a clone replays timeline 1 from the archive; promoted, it
/// archives timeline 2 (and 00000002.history) into the same server; a
/// second clone of the same backup follows the history file and replays
/// timeline 2's segments from the archive.
#[test]
fn s3_two_timelines_through_wal_restore() {
    needs_root!();
    let lab = Lab::new(moto(), "barman_cloud_timelines", "--bzip2");
    let id = barman_cloud_backup(&lab.primary, &lab.store, SERVER, &BackupOpts::default());
    lab.primary
        .sql("CREATE TABLE after_backup AS SELECT 42 AS answer");
    archive_wal_now(&lab.primary, &lab.store, SERVER);
    let bz = lab.store.list(&format!("{SERVER}/wals/"));
    assert!(bz.iter().all(|(k, _)| k.ends_with(".bz2")), "{bz:?}");

    let conf = lab.conf("one", "");
    let target = lab.sc.path("standby-one");
    assert_cloned(&lab.clone(&conf, &target, &["--backup-id", &id]), &target);
    let one = lab.start(&target);
    one.wait_for("SELECT answer FROM after_backup", "42", WAIT);
    promote(&one);
    one.sql("CREATE TABLE on_two AS SELECT 2 AS tli");
    let wal2 = archive_wal_now(&one, &lab.store, SERVER);
    assert!(wal2.starts_with("00000002"), "{wal2}");
    assert!(lab
        .store
        .list(&format!("{SERVER}/wals/00000002.history"))
        .iter()
        .any(|(k, _)| k.ends_with("00000002.history.bz2")));

    // Cloned from timeline 1's backup with the promoted node upstream.
    let conf = lab.conf("two", "");
    let target2 = lab.sc.path("standby-two");
    assert_cloned(
        &lab.clone_from(&one, &conf, &target2, &["--backup-id", &id]),
        &target2,
    );
    let two = lab.start(&target2);
    two.wait_for("SELECT tli FROM on_two", "2", WAIT);
    let log = std::fs::read_to_string(&two.log).unwrap();
    assert!(
        log.contains("restored log file \"00000002.history\" from archive"),
        "{log}"
    );
    assert!(
        log.contains(&format!("restored log file \"{wal2}\" from archive"))
            || log.contains("restored log file \"00000002"),
        "no timeline 2 segment from the archive:\n{log}"
    );
}

/// A plain backup with lz4 in a store of `server`: a clone whose
/// restore_command is pgclone's replays WAL archived after it, and the
/// drop-in delivers an archived segment as the primary wrote it.
fn clone_and_fetch(server: &ObjectServer, test: &str) {
    let lab = Lab::new(server, test, "");
    let opts = BackupOpts {
        compression: "lz4",
        ..Default::default()
    };
    let id = barman_cloud_backup(&lab.primary, &lab.store, SERVER, &opts);
    lab.primary
        .sql("CREATE TABLE after_backup AS SELECT 42 AS answer");
    let wal = archive_wal_now(&lab.primary, &lab.store, SERVER);

    let conf = lab.conf("standby", "");
    let target = lab.sc.path("standby");
    let err = assert_cloned(&lab.clone(&conf, &target, &[]), &target);
    assert!(err.contains(id.as_str()), "{err}");
    let st = lab.start(&target);
    st.wait_for("SELECT answer FROM after_backup", "42", WAIT);
    assert_eq!(st.sql("SELECT count(*) FROM t"), "5000");
    let log = std::fs::read_to_string(&st.log).unwrap();
    assert!(log.contains("restored log file"), "{log}");

    let dest = lab.sc.path("fetched");
    let spool = lab.sc.path("spool-dropin").display().to_string();
    let mut args = vec![
        "barman-cloud-wal-restore",
        "--cloud-provider",
        server.provider.name(),
    ];
    args.extend(["--spool-dir", spool.as_str(), "-p", "0"]);
    args.extend([
        lab.store.url.as_str(),
        SERVER,
        wal.as_str(),
        dest.to_str().unwrap(),
    ]);
    let out = pgclone(&lab.sc, &lab.store, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        std::fs::read(&dest).unwrap()
            == std::fs::read(lab.primary.data.join("pg_wal").join(&wal)).unwrap()
    );
}

/// Azure Blob Storage through Azurite, with the emulator's URL form
/// `http://127.0.0.1:PORT/devstoreaccount1/CONTAINER/PREFIX` and
/// AZURE_STORAGE_CONNECTION_STRING.
#[test]
fn azurite_clone_and_wal_fetch() {
    needs_root!();
    assert_eq!(azurite().provider, Provider::Azure);
    clone_and_fetch(azurite(), "barman_cloud_azure");
}
