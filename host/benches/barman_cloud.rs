//! pgclone against barman-cloud's own tools, on the same backup and WAL in
//! moto's S3 server on loopback, in the same run (DESIGN.md's Targets):
//!
//! 1. clone: `pgclone standby clone` from a gzip backup in parts to a ready
//!    data directory vs `barman-cloud-restore` of the same backup plus the
//!    recovery configuration (standby.signal, restore_command, primary_conninfo);
//! 2. WAL, one process per segment, in order, as PostgreSQL calls
//!    restore_command: `pgclone barman-cloud-wal-restore` (its prefetcher on,
//!    as a standby runs it) vs `barman-cloud-wal-restore` (default and `-p 4`);
//!    and what a spool hit costs against a bare process start;
//! 3. from "clone" to a standby streaming from the primary with the WAL since
//!    the backup replayed: pgclone (restore_command = pgclone
//!    barman-cloud-wal-restore) vs barman-cloud-restore + PostgreSQL with
//!    barman-cloud-wal-restore (the faster of its settings in 2).
//!
//! The data compresses about as production data does (2–3x with gzip, not
//! pgbench's 17x): rows of random hex and a window of a fixed text, in
//! several tables (relation files). Every figure is printed with the load
//! average at the time. Needs root (the servers run as postgres).
//!
//! `cargo bench -p pgclone --bench barman_cloud [-- --quick]`. Knobs:
//! PGCLONE_BENCH_MB (data, default 640; quick 64), PGCLONE_BENCH_PART_SIZE
//! (`--max-archive-size`, default 100MB; quick 16MB), PGCLONE_BENCH_TABLES
//! (default 8), PGCLONE_BENCH_HEX (random hex characters per 32 characters of
//! text in a row: the compressibility, default 96), PGCLONE_BENCH_SEGMENTS
//! (WAL segments written since the backup, default 40; quick 8),
//! PGCLONE_BENCH_ROUNDS (default 3; quick 1), PGCLONE_BENCH_ONLY
//! (`clone,wal,stream`: which parts run), PGCLONE_BENCH_QUICK=1 (= --quick),
//! PGCLONE_BENCH_HOLD=1 (keep the lab up after the setup, for a profile by
//! hand: the commands are in hold.sh).

#[allow(dead_code)] // the pgbench scale knob: this bench sizes its data in MiB
mod common;
// A benchmark uses part of the tests' support.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{median, wipe};
use support::cloud::{archive_to, archive_wal_now, barman_cloud_backup, barman_cloud_bin, moto};
use support::cloud::{BackupOpts, Store};
use support::*;

/// The server name the backup and WAL are archived under.
const SERVER: &str = "pg";

/// The load averages, as `uptime` prints them.
fn load() -> String {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let f: Vec<&str> = l.split_whitespace().take(3).collect();
    format!("load {}", f.join(" "))
}

fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(mut v: Vec<Duration>, q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Calls `cmd(name, dest)` for every segment in order, each delivered file
/// checked and consumed before the next call (as PostgreSQL does); returns
/// the time of each call.
fn restore_all(
    names: &[String],
    dest_dir: &Path,
    mut cmd: impl FnMut(&str, &Path) -> Command,
) -> Vec<Duration> {
    let dest = dest_dir.join("RECOVERYXLOG");
    names
        .iter()
        .map(|n| {
            let t = Instant::now();
            let out = run(&mut cmd(n, &dest));
            let d = t.elapsed();
            assert!(
                out.status.success(),
                "{n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(std::fs::metadata(&dest).unwrap().len(), 16 << 20);
            std::fs::remove_file(&dest).unwrap();
            d
        })
        .collect()
}

/// Starts the standby in `dir` and returns how long until its WAL receiver
/// streams and it has replayed up to `lsn` (the end of the WAL written since
/// the backup), as benches/ready_to_stream.rs measures it.
fn until_streaming(sc: &Scratch, dir: &Path, lsn: &str) -> Duration {
    let t = Instant::now();
    let mut st = Pg::existing(sc, dir.to_path_buf());
    let _ = std::fs::remove_file(&st.log);
    st.start_nowait();
    let ready = format!(
        "SELECT status = 'streaming' AND pg_last_wal_replay_lsn() >= '{lsn}' FROM pg_stat_wal_receiver"
    );
    loop {
        let out = run(as_pg(pg_bindir().join("psql"))
            .args(["-h", &sc.dir.display().to_string(), "-p"])
            .arg(st.port.to_string())
            .args(["-d", "postgres", "-XAtqc", &ready]));
        if String::from_utf8_lossy(&out.stdout).trim() == "t" {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(900),
            "the standby never caught up: {}",
            std::fs::read_to_string(&st.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let d = t.elapsed();
    st.stop();
    let log = std::fs::read_to_string(&st.log).unwrap_or_default();
    eprintln!(
        "  ready in {:.2} s, {} files restored from the archive ({})",
        d.as_secs_f64(),
        log.matches("restored log file").count(),
        load()
    );
    d
}

/// The rows: an id, `hex` random hex characters and a 32-character window
/// of a fixed text (gzip finds it again: nearly free), about 170 bytes with
/// the tuple's header at the default 96.
fn row_sql(hex: usize) -> String {
    let md5s = hex.div_ceil(32).max(1);
    let random: Vec<&str> = vec!["md5(random()::text)"; md5s];
    format!(
        "g, left({}, {hex}), substr('{}', 1 + ((g::bigint * 7919) % 400)::int, 32)",
        random.join(" || "),
        LOREM
    )
}

const LOREM: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor \
incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco \
laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit \
esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa \
qui officia deserunt mollit anim id est laborum. Sed ut perspiciatis unde omnis iste natus error sit.";

/// `install -d -o postgres -m 0700 dir`, emptied first.
fn fresh_dir(dir: &Path) {
    wipe(dir);
    run_ok(
        Command::new("install")
            .args(["-d", "-o", "postgres", "-g", "postgres", "-m", "0700"])
            .arg(dir),
    );
}

/// The backup's objects (names under `base/ID/`) and their total size.
fn backup_objects(store: &Store, id: &str) -> (Vec<String>, u64) {
    let dir = format!("{SERVER}/base/{id}/");
    let list = store.list(&dir);
    let total = list.iter().map(|(_, n)| n).sum();
    (
        list.into_iter()
            .map(|(k, _)| k[dir.len()..].to_string())
            .collect(),
        total,
    )
}

/// One measured figure: its time and the load when it was taken.
type Figure = (Duration, String);

fn summary(label: &str, figures: &[Figure]) -> Duration {
    let m = median(figures.iter().map(|f| f.0).collect());
    let loads: Vec<&str> = figures.iter().map(|f| f.1.as_str()).collect();
    println!(
        "  {label:<58} {:8.2} s   [{}]",
        m.as_secs_f64(),
        loads.join("; ")
    );
    m
}

fn main() {
    assert!(is_root(), "needs root: the servers run as postgres");
    let quick = std::env::args().any(|a| a == "--quick") || knob("PGCLONE_BENCH_QUICK", 0) == 1;
    let mb: u64 = knob("PGCLONE_BENCH_MB", if quick { 64 } else { 640 });
    let part: String = knob(
        "PGCLONE_BENCH_PART_SIZE",
        if quick { "16MB" } else { "100MB" }.to_string(),
    );
    let tables: u64 = knob("PGCLONE_BENCH_TABLES", 8);
    let hex: usize = knob("PGCLONE_BENCH_HEX", 96);
    let segments: u64 = knob("PGCLONE_BENCH_SEGMENTS", if quick { 8 } else { 40 });
    let rounds = common::rounds(if quick { 1 } else { 3 });
    let only: String = knob("PGCLONE_BENCH_ONLY", "clone,wal,stream".to_string());
    let runs = |part: &str| only.split(',').any(|p| p.trim() == part);

    let sc = Scratch::new("bench-cloud");
    let store = moto().store("bench-cloud");
    // Every child (pgclone, barman-cloud, PostgreSQL and its
    // restore_command) finds the credentials where the operator's tools do:
    // in its environment.
    for (k, v) in &store.env {
        std::env::set_var(k, v);
    }
    let endpoint = store.endpoint_url.clone().unwrap();
    let mut p = Pg::init(&sc, "primary");
    p.append_conf("shared_buffers = '256MB'\nmax_wal_size = '4GB'\nwal_keep_size = '4GB'\n");
    p.start();
    let row_bytes = 24 + 4 + 4 + hex as u64 + 1 + 33 + 4;
    let rows = mb * 1048576 / tables / row_bytes;
    eprintln!("writing {tables} tables of {rows} rows ({mb} MiB) ...");
    for i in 0..tables {
        p.sql(&format!(
            "CREATE TABLE data_{i}(id int, h text, t text); \
             INSERT INTO data_{i} SELECT {} FROM generate_series(1, {rows}) g",
            row_sql(hex)
        ));
    }
    p.sql("CHECKPOINT");
    let db_bytes: u64 = p
        .sql("SELECT sum(pg_database_size(datname)) FROM pg_database")
        .parse()
        .unwrap();
    // Archiving from now on (the data above would only slow the setup).
    archive_to(&p, &sc, &store, SERVER, "-z");
    p.stop();
    p.start();
    archive_wal_now(&p, &store, SERVER);
    eprintln!("barman-cloud-backup --gzip --max-archive-size {part} ...");
    let t = Instant::now();
    let id = barman_cloud_backup(
        &p,
        &store,
        SERVER,
        &BackupOpts {
            compression: "gzip",
            max_archive_size: Some(Box::leak(part.clone().into_boxed_str())),
            name: None,
        },
    );
    eprintln!("  backup {id} in {:.1} s", t.elapsed().as_secs_f64());
    let (objects, archive_bytes) = backup_objects(&store, &id);

    // WAL since the backup: real rows (compressing as the data does).
    let lsn_segment = |p: &Pg| -> u64 {
        p.sql("SELECT floor((pg_current_wal_lsn() - '0/0') / 16777216)::bigint")
            .parse()
            .unwrap()
    };
    let first = p.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    let from = lsn_segment(&p);
    eprintln!("writing {segments} segments of WAL since the backup ...");
    p.sql("CREATE TABLE since(id int, h text, t text)");
    let per_segment = (14 << 20) / row_bytes;
    while lsn_segment(&p) < from + segments {
        p.sql(&format!(
            "INSERT INTO since SELECT {} FROM generate_series(1, {per_segment}) g",
            row_sql(hex)
        ));
    }
    let last = archive_wal_now(&p, &store, SERVER);
    // Replayed up to here, a standby has all the WAL written since the backup.
    let end_lsn = p.sql("SELECT pg_current_wal_lsn()");
    let wal_dir = format!("{SERVER}/wals/{}/", &first[..16]);
    let archived = store.list(&wal_dir);
    // Every archived segment up to the last; those written since the backup.
    let all_names: Vec<String> = archived
        .iter()
        .map(|(k, _)| k[wal_dir.len()..].to_string())
        .filter(|n| n.len() > 24 && n.ends_with(".gz") && !n.contains(".backup"))
        .map(|n| n[..24].to_string())
        .filter(|n| *n <= last)
        .collect();
    let names: Vec<String> = all_names.iter().filter(|n| **n >= first).cloned().collect();
    let wal_gz: u64 = archived
        .iter()
        .filter(|(k, _)| {
            let n = &k[wal_dir.len()..];
            n.len() >= 24 && names.iter().any(|s| n.starts_with(s.as_str()))
        })
        .map(|(_, n)| n)
        .sum();
    println!(
        "barman-cloud to moto S3 on loopback: {:.0} MiB of data in {tables} tables, gzip backup {id} of {:.0} MiB \
         in {} objects ({:.2}x), {} WAL segments since ({:.2}x with gzip)",
        db_bytes as f64 / 1048576.0,
        archive_bytes as f64 / 1048576.0,
        objects.len(),
        db_bytes as f64 / archive_bytes as f64,
        names.len(),
        (names.len() as u64 * 16 * 1048576) as f64 / wal_gz.max(1) as f64
    );

    let exe = env!("CARGO_BIN_EXE_pgclone");
    let bcwr = barman_cloud_bin().join("barman-cloud-wal-restore");
    let cloud_opts = format!("--cloud-provider aws-s3 --endpoint-url {endpoint}");
    let sock = sc.dir.display().to_string();
    let port = p.port.to_string();
    let target = sc.path("standby");
    let pgclone_spool = sc.path("pgclone-spool");
    let bcwr_spool = sc.path("bcwr-spool");
    let pgclone_rc = format!(
        "{exe} barman-cloud-wal-restore {cloud_opts} --spool-dir {} {} {SERVER} %f %p",
        pgclone_spool.display(),
        store.url
    );
    let conf_text = |rc: &str, extra: &str| {
        format!(
            "node_id=2\nnode_name=node2\nbackup_source=barman-cloud\nbarman_cloud_url='{}'\n\
             barman_cloud_server={SERVER}\nbarman_cloud_endpoint_url='{endpoint}'\n\
             barman_cloud_provider=aws-s3\nrestore_command='{rc}'\n{extra}",
            store.url
        )
    };
    // `pgclone -f CONF standby clone` as the postgres user, with the
    // credentials in its environment.
    let pgclone = |conf: &Path| {
        let mut c = as_pg("env");
        c.arg(format!("HOME={sock}"))
            .arg(format!("PGCLONE_CACHE_DIR={sock}/cache"))
            .arg(format!(
                "PATH={}:/usr/local/bin:/usr/bin:/bin",
                pg_bindir().display()
            ))
            .arg(exe)
            .arg("-f")
            .arg(conf)
            .args([
                "standby", "clone", "-h", &sock, "-p", &port, "-U", "postgres", "-d", "postgres",
                "-D",
            ])
            .arg(&target);
        c
    };
    // barman-cloud-restore, then what makes its directory a standby.
    let barman_restore = |rc: &str| -> Duration {
        let t = Instant::now();
        let out = store.tool_run(
            "barman-cloud-restore",
            &[
                store.url.clone(),
                SERVER.to_string(),
                id.clone(),
                target.display().to_string(),
            ],
        );
        assert!(
            out.status.success(),
            "barman-cloud-restore: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = format!(
            "restore_command = '{rc}'\nprimary_conninfo = 'host={sock} port={port} user=postgres'\n"
        );
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(target.join("postgresql.auto.conf"))
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        std::fs::write(target.join("standby.signal"), "").unwrap();
        run_ok(
            Command::new("chown")
                .arg("postgres:postgres")
                .arg(target.join("standby.signal")),
        );
        t.elapsed()
    };
    let ready = |what: &str| {
        assert!(
            target.join("PG_VERSION").exists()
                && target.join("global/pg_control").exists()
                && target.join("standby.signal").exists(),
            "{what} left no standby in {}",
            target.display()
        );
    };

    // PGCLONE_BENCH_HOLD=1: keep the lab up for a profile by hand. The
    // commands of part 1 are written to hold.sh; the run goes on when the
    // file `hold` beside it is removed.
    if knob("PGCLONE_BENCH_HOLD", 0) == 1 {
        let conf = sc.write(
            "hold.conf",
            &conf_text(&pgclone_rc, "clone_wal_prefetch=0\n"),
        );
        let env: Vec<String> = store
            .env
            .iter()
            .map(|(k, v)| format!("export {k}='{v}'"))
            .collect();
        let script = format!(
            "{}\n# pgclone, as postgres, into {}:\n{:?}\n# barman-cloud-restore:\n{} {cloud_opts} {} {SERVER} {id} {}\n",
            env.join("\n"),
            target.display(),
            pgclone(&conf),
            barman_cloud_bin().join("barman-cloud-restore").display(),
            store.url,
            target.display()
        );
        let hold = sc.write("hold", "");
        sc.write("hold.sh", &script);
        eprintln!(
            "holding: {} (remove {} to go on)",
            sc.path("hold.sh").display(),
            hold.display()
        );
        while hold.exists() {
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    // 1. The clone alone (no WAL fetched while it runs: clone_wal_prefetch=0).
    if runs("clone") {
        let conf = sc.write(
            "clone.conf",
            &conf_text(&pgclone_rc, "clone_wal_prefetch=0\n"),
        );
        let plain_rc = format!(
            "{} {cloud_opts} {} {SERVER} %f %p",
            bcwr.display(),
            store.url
        );
        let labels = [
            "pgclone standby clone",
            "barman-cloud-restore + recovery configuration",
        ];
        let mut figs: Vec<Vec<Figure>> = vec![Vec::new(); 2];
        for round in 0..rounds {
            for i in [round % 2, 1 - round % 2] {
                wipe(&target);
                let l = load();
                let d = if i == 0 {
                    timed(labels[0], &mut pgclone(&conf))
                } else {
                    barman_restore(&plain_rc)
                };
                ready(labels[i]);
                eprintln!(
                    "round {}: {:<50} {:7.2} s ({l})",
                    round + 1,
                    labels[i],
                    d.as_secs_f64()
                );
                figs[i].push((d, l));
            }
        }
        println!(
            "1. clone from the gzip backup ({} parts of --max-archive-size {part}) to a ready standby directory, median of {rounds}",
            objects.iter().filter(|o| o.starts_with("data")).count()
        );
        let a = summary(labels[0], &figs[0]);
        let b = summary(labels[1], &figs[1]);
        println!(
            "  barman-cloud-restore / pgclone {:6.2}x   (target >= 2)   [{}]",
            b.as_secs_f64() / a.as_secs_f64(),
            load()
        );
        wipe(&target);
    }

    // 2. WAL, one process per segment.
    let mut bcwr_best: Option<&str> = None;
    if runs("wal") {
        let out_dir = sc.mkdir("restored");
        let spools = tempfile::tempdir().unwrap();
        let mut rows: Vec<(String, Vec<Duration>, String)> = Vec::new();
        for parallel in [None, Some("4")] {
            let spool = spools
                .path()
                .join(format!("bcwr-{}", parallel.unwrap_or("0")));
            let l = load();
            let times = restore_all(&names, &out_dir, |n, dest| {
                let mut c = Command::new(&bcwr);
                c.args(["--cloud-provider", "aws-s3", "--endpoint-url", &endpoint]);
                if let Some(p) = parallel {
                    c.args(["-p", p]).arg("--spool-dir").arg(&spool);
                }
                c.args([store.url.as_str(), SERVER, n]).arg(dest);
                c
            });
            let label = match parallel {
                None => "barman-cloud-wal-restore".to_string(),
                Some(p) => format!("barman-cloud-wal-restore -p {p}"),
            };
            eprintln!(
                "  {label}: {:.1} ms/segment ({l})",
                ms(times.iter().sum::<Duration>()) / times.len() as f64
            );
            rows.push((label, times, l));
        }
        let spool = spools.path().join("pgclone");
        let l = load();
        let times = restore_all(&names, &out_dir, |n, dest| {
            let mut c = Command::new(exe);
            c.arg("barman-cloud-wal-restore")
                .args(["--cloud-provider", "aws-s3", "--endpoint-url", &endpoint])
                .arg("--spool-dir")
                .arg(&spool)
                .args([store.url.as_str(), SERVER, n])
                .arg(dest);
            c
        });
        rows.push((
            "pgclone barman-cloud-wal-restore (prefetch 16)".into(),
            times,
            l,
        ));

        // A spool hit: wait until the next segment is spooled, then time
        // the whole process; against a bare start of the same binary.
        let spool = spools.path().join("pgclone-hits");
        let hit_names = &names[..names.len().min(30)];
        let dest = out_dir.join("RECOVERYXLOG");
        let mut hits = Vec::new();
        let hits_load = load();
        for (i, n) in hit_names.iter().enumerate() {
            if i > 0 {
                let start = Instant::now();
                let spooled = || {
                    std::fs::read_dir(&spool)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .any(|d| d.path().join(n).exists())
                };
                while !spooled() && start.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            let t = Instant::now();
            let out = run(Command::new(exe)
                .arg("barman-cloud-wal-restore")
                .args(["--cloud-provider", "aws-s3", "--endpoint-url", &endpoint])
                .arg("--spool-dir")
                .arg(&spool)
                .args([store.url.as_str(), SERVER, n])
                .arg(&dest));
            let d = t.elapsed();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::remove_file(&dest).unwrap();
            if i > 0 {
                hits.push(d);
            }
        }
        let starts: Vec<Duration> = (0..30)
            .map(|_| {
                let t = Instant::now();
                run_ok(Command::new(exe).arg("--version"));
                t.elapsed()
            })
            .collect();

        println!(
            "2. WAL restore of {} segments of 16 MiB (gzip) from S3, one process per segment as PostgreSQL calls it",
            names.len()
        );
        let per = |t: &[Duration]| ms(t.iter().sum::<Duration>()) / t.len() as f64;
        for (label, times, l) in &rows {
            println!(
                "  {label:<48} {:8.1} ms/segment (p50 {:.1}, p99 {:.1})   [{l}]",
                per(times),
                ms(pct(times.clone(), 0.5)),
                ms(pct(times.clone(), 0.99))
            );
        }
        let (best, best_ms) = rows[..2]
            .iter()
            .map(|(l, t, _)| (l.clone(), per(t)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        bcwr_best = Some(if best.ends_with("-p 4") { "4" } else { "0" });
        println!(
            "  {best} / pgclone {:6.1}x   (target >= 10)   [{}]",
            best_ms / per(&rows[2].1),
            load()
        );
        println!(
            "  spool hit, whole process: p50 {:.2} ms, p99 {:.2} ms over {} calls; bare process start (pgclone --version) p50 {:.2} ms   [{hits_load}]",
            ms(pct(hits.clone(), 0.5)),
            ms(pct(hits.clone(), 0.99)),
            hits.len(),
            ms(pct(starts, 0.5))
        );
        let _ = std::fs::remove_dir_all(&out_dir);
    }

    // 3. From "clone" to a streaming standby with the WAL since the backup.
    if runs("stream") {
        let conf = sc.write("stream.conf", &conf_text(&pgclone_rc, ""));
        let parallel = bcwr_best.unwrap_or("0");
        let barman_rc = if parallel == "0" {
            format!(
                "{} {cloud_opts} {} {SERVER} %f %p",
                bcwr.display(),
                store.url
            )
        } else {
            format!(
                "{} {cloud_opts} -p {parallel} --spool-dir {} {} {SERVER} %f %p",
                bcwr.display(),
                bcwr_spool.display(),
                store.url
            )
        };
        let labels = [
            "pgclone (clone + replay until streaming)".to_string(),
            format!(
                "barman-cloud-restore + barman-cloud-wal-restore{}",
                if parallel == "0" {
                    String::new()
                } else {
                    format!(" -p {parallel}")
                }
            ),
        ];
        // The floor: PostgreSQL's own start and replay of the same WAL
        // from local disk (restore_command = cp), after a clone that takes
        // no WAL; no tool's "clone to streaming" is below clone + this.
        let local_wal = sc.mkdir("local-wal");
        // The spool must be the running user's (root here), not postgres's.
        let fill_spool = tempfile::tempdir().unwrap();
        // All of them: recovery starts at the backup's own first segment.
        for n in &all_names {
            run_ok(
                Command::new(exe)
                    .arg("barman-cloud-wal-restore")
                    .args(["--cloud-provider", "aws-s3", "--endpoint-url", &endpoint])
                    .arg("--spool-dir")
                    .arg(fill_spool.path())
                    .args([store.url.as_str(), SERVER, n])
                    .arg(local_wal.join(n)),
            );
        }
        run_ok(
            Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(&local_wal),
        );
        let floor_conf = sc.write(
            "floor.conf",
            &conf_text(
                &format!("cp {}/%f %p", local_wal.display()),
                "clone_wal_prefetch=0\n",
            ),
        );
        let mut floors = Vec::new();
        let mut figs: Vec<Vec<Figure>> = vec![Vec::new(); 2];
        let (mut copies, mut replays): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            wipe(&target);
            timed(
                "pgclone standby clone (for the floor)",
                &mut pgclone(&floor_conf),
            );
            floors.push(until_streaming(&sc, &target, &end_lsn));
            for i in [round % 2, 1 - round % 2] {
                wipe(&target);
                let l = load();
                let d = if i == 0 {
                    fresh_dir(&pgclone_spool);
                    let copy = timed(&labels[0], &mut pgclone(&conf));
                    let replay = until_streaming(&sc, &target, &end_lsn);
                    copies.push(copy);
                    replays.push(replay);
                    copy + replay
                } else {
                    fresh_dir(&bcwr_spool);
                    let copy = barman_restore(&barman_rc);
                    copy + until_streaming(&sc, &target, &end_lsn)
                };
                eprintln!(
                    "round {}: {:<50} {:7.2} s ({l})",
                    round + 1,
                    labels[i],
                    d.as_secs_f64()
                );
                figs[i].push((d, l));
            }
        }
        println!(
            "3. from \"clone\" to a standby streaming from the primary, {} segments since the backup replayed, median of {rounds}",
            names.len()
        );
        let a = summary(&labels[0], &figs[0]);
        let b = summary(&labels[1], &figs[1]);
        println!(
            "  pgclone breakdown: clone {:.2} s, start and replay until streaming {:.2} s",
            median(copies).as_secs_f64(),
            median(replays).as_secs_f64()
        );
        let floor = median(floors);
        println!(
            "  floor: PostgreSQL start and replay until streaming, the WAL on local disk (cp): {:.2} s",
            floor.as_secs_f64()
        );
        println!(
            "  barman-cloud / pgclone {:6.2}x   (target >= 5; a clone taking no time at all would give {:.2}x)   [{}]",
            b.as_secs_f64() / a.as_secs_f64(),
            b.as_secs_f64() / floor.as_secs_f64(),
            load()
        );
        wipe(&target);
    }
}
