//! How a clone's cost grows with the backup's size (issue 27, item 5): one
//! primary grown in steps (0.2, 1 and 4 GiB by default) with a new Barman
//! backup at each size; at each size a clone from Barman (ssh on loopback) vs
//! the raw copy of the same backup directory (tar over one ssh stream), and a
//! clone from the primary vs `pg_basebackup -X stream` alone. Prints MiB/s of
//! each and pgclone / raw (time); the goal is <= 1.25 at every size, and
//! pgclone's MiB/s not falling as the size grows.
//!
//! Data: one table of rows of 1,990 random bytes (four to a page, below the
//! TOAST threshold: stored as they are, no compression), cut from a 1 MiB
//! random pool at offsets that never repeat within a compressor's window, so
//! writing them costs no hashing per row. Each size is built once, on top of
//! the one before; after each new backup the older one is deleted (Barman
//! then drops the WAL before the new one), every copy is deleted right after
//! it is timed, and a size is skipped (said) when the disk has not three times
//! its size free plus 3 GiB.
//!
//! Needs root (sshd, the barman user).
//! `cargo bench -p pgclone --bench cost_growth`; PGCLONE_BENCH_SIZES (GiB,
//! comma-separated, default 0.2,1,4), PGCLONE_BENCH_ROUNDS (default 3),
//! PGCLONE_BENCH_JOBS (pgclone's -j from Barman, default its own 4). The whole
//! run takes about 10 minutes and needs 15 GiB free for the 4 GiB step.
//! PGCLONE_BENCH_HOLD=1 keeps the lab up at each size for a profile by hand
//! (the commands are in hold.sh in the scratch directory).

// Not every knob of common is used here.
#[allow(dead_code)]
mod common;
// A benchmark uses part of the tests' support.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{median, wipe};
use support::barman::{barman_34, Barman, Sshd};
use support::*;

const GIB: f64 = 1073741824.0;
/// Random bytes per row: a tuple of 2,026 bytes, four to an 8 KiB page and
/// under TOAST_TUPLE_THRESHOLD (2,032), so never compressed or moved out.
const PAD: u64 = 1990;
/// Rows per INSERT while growing (about 256 MiB of table).
const CHUNK_ROWS: u64 = 131072;

fn load() -> String {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let f: Vec<&str> = l.split_whitespace().take(3).collect();
    format!("load {}", f.join(" "))
}

/// The sizes to measure, GiB, ascending.
fn sizes() -> Vec<f64> {
    let text = std::env::var("PGCLONE_BENCH_SIZES").unwrap_or_else(|_| "0.2,1,4".into());
    let mut v: Vec<f64> = text
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("PGCLONE_BENCH_SIZES: {s:?} is not a number of GiB"))
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// Bytes free on the file system holding `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let out = run_ok(Command::new("df").args(["--output=avail", "-B1"]).arg(dir));
    out.lines().nth(1).unwrap().trim().parse().unwrap()
}

fn du_bytes(dir: &Path) -> u64 {
    let out = run_ok(Command::new("du").args(["-sb"]).arg(dir));
    out.split_whitespace().next().unwrap().parse().unwrap()
}

/// The table the data grows in, and the random pool its rows are cut from.
fn prepare(p: &Pg) {
    p.sql(
        "CREATE TABLE pool AS SELECT decode(string_agg(md5(random()::text), ''), 'hex') AS b \
         FROM generate_series(1, 65536); \
         CREATE TABLE filler(id bigint, pad bytea) WITH (autovacuum_enabled = off); \
         ALTER TABLE filler ALTER COLUMN pad SET STORAGE EXTERNAL",
    );
}

/// Adds rows until the databases hold about `bytes`.
fn grow_to(p: &Pg, bytes: u64) {
    let db = |p: &Pg| -> u64 {
        p.sql("SELECT sum(pg_database_size(datname)) FROM pg_database")
            .parse()
            .unwrap()
    };
    let now = db(p);
    if now >= bytes {
        return;
    }
    let mut rows = (bytes - now) / 2048;
    let mut next: u64 = p
        .sql("SELECT coalesce(max(id), 0) + 1 FROM filler")
        .parse()
        .unwrap();
    eprintln!(
        "growing from {:.2} to {:.2} GiB ({rows} rows) ...",
        now as f64 / GIB,
        bytes as f64 / GIB
    );
    while rows > 0 {
        let n = rows.min(CHUNK_ROWS);
        // 7919 is prime to the pool's span: each row starts elsewhere.
        p.sql(&format!(
            "INSERT INTO filler SELECT g, substr(pool.b, 1 + ((g::bigint * 7919) % (1048576 - {PAD}))::int, {PAD}) \
             FROM pool, generate_series({next}, {}) g",
            next + n - 1
        ));
        next += n;
        rows -= n;
    }
    p.sql("CHECKPOINT");
}

/// One measured copy: its time and the load when it ended.
type Figure = (Duration, String);

struct Row {
    label: String,
    bytes: u64,
    pgclone: Vec<Figure>,
    raw: Vec<Figure>,
    /// pgclone's phases and actions in its last run.
    breakdown: String,
}

fn mibs(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1048576.0 / d.as_secs_f64()
}

/// Runs `cmd`, timed, then deletes `target`; returns its standard output
/// too (pgclone's JSON document).
fn measure(label: &str, cmd: &mut Command, target: &Path) -> (Figure, String) {
    wipe(target);
    let t = std::time::Instant::now();
    let out = run(cmd);
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{label} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let l = load();
    wipe(target);
    eprintln!("  {label:<34} {:7.2} s  [{l}]", d.as_secs_f64());
    ((d, l), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where a pgclone run's time went, from its `--output json` document:
/// its phases, then the actions it performed that took 0.05 s or more.
fn breakdown(json: &str) -> String {
    let doc: serde_json::Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(_) => return "(no JSON document)".into(),
    };
    let items = |key: &str, name: &str, min: f64| -> Vec<String> {
        doc[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|x| x["seconds"].as_f64().unwrap_or(0.0) >= min)
                    .map(|x| {
                        format!(
                            "{} {:.2}",
                            x[name].as_str().unwrap_or("?"),
                            x["seconds"].as_f64().unwrap_or(0.0)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    format!(
        "phases: {}; actions: {}",
        items("phases", "phase", 0.0).join(", "),
        items("performed", "action", 0.05).join(", ")
    )
}

/// PGCLONE_BENCH_HOLD=1: keeps the lab up at each size for a profile by
/// hand; the commands are written to hold.sh, and the run goes on when the
/// file `hold` beside it is removed.
fn hold(sc: &Scratch, commands: &[&Command]) {
    if std::env::var("PGCLONE_BENCH_HOLD").as_deref() != Ok("1") {
        return;
    }
    let text: Vec<String> = commands.iter().map(|c| format!("{c:?}")).collect();
    let script = sc.write("hold.sh", &(text.join("\n") + "\n"));
    let flag = sc.write("hold", "");
    eprintln!(
        "holding: commands in {}; remove {} to go on",
        script.display(),
        flag.display()
    );
    while flag.exists() {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn main() {
    assert!(is_root(), "needs root: sshd, Barman and the servers' users");
    let sizes = sizes();
    let sc = Scratch::new("bench-growth");
    let mut p = Pg::init(&sc, "primary");
    p.append_conf(
        "shared_buffers = '256MB'\nmax_wal_size = '1GB'\nwal_keep_size = '0'\n\
         checkpoint_completion_target = 0.9\n",
    );
    p.start();
    let sshd = Sshd::start_for(&sc, "/usr/bin:/bin", true);
    let barman = Barman::setup(&sc, &p, barman_34());
    prepare(&p);

    let sock = sc.dir.display().to_string();
    let port = p.port.to_string();
    let target = sc.path("standby");
    let barman_conf = sc.write(
        "barman.conf",
        &format!(
            "node_id=2\nnode_name=node2\nbarman_host=barmansrv\nbarman_server=pg\nbarman_config='{}'\n\
             ssh_options='-F {}'\nrestore_command='/bin/false %f %p'\n",
            barman.config.display(),
            sshd.ssh_config.display()
        ),
    );
    let primary_conf = sc.write("primary.conf", "node_id=2\nnode_name=node2\n");
    let jobs = std::env::var("PGCLONE_BENCH_JOBS").ok();
    // -c (an immediate checkpoint, as pg_basebackup's -c fast) only for the
    // primary: a Barman backup has had its checkpoint.
    let pgclone = |conf: &Path, extra: &[&str]| {
        let mut c = as_pg("env");
        c.arg(format!("HOME={sock}"))
            .arg(format!("PGCLONE_CACHE_DIR={sock}/cache"))
            .arg(env!("CARGO_BIN_EXE_pgclone"))
            .arg("-f")
            .arg(conf)
            .args([
                "standby", "clone", "-h", &sock, "-p", &port, "-U", "postgres", "-d", "postgres",
                "--output", "json", "-D",
            ])
            .arg(&target)
            .args(extra);
        if let Some(j) = &jobs {
            c.args(["-j", j]);
        }
        c
    };
    let basebackup = || {
        let mut c = as_pg(pg_bindir().join("pg_basebackup"));
        c.arg("-D").arg(&target).args([
            "-h", &sock, "-p", &port, "-U", "postgres", "-X", "stream", "-c", "fast",
        ]);
        c
    };
    // The raw copy: the backup's directory as one tar stream over one ssh
    // connection, unpacked as it arrives.
    let tar_over_ssh = |dir: &Path| {
        let mut c = as_pg("sh");
        c.arg("-c").arg(format!(
            "mkdir -m 0700 {t} && ssh -F {cfg} barmansrv tar cf - -C {dir} . | tar xf - -C {t}",
            t = target.display(),
            cfg = sshd.ssh_config.display(),
            dir = dir.display()
        ));
        c
    };

    let mut rows: Vec<Row> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut previous: Option<String> = None;
    for &gib in &sizes {
        let need = ((3.0 * gib + 3.0) * GIB) as u64;
        let free = free_bytes(&sc.dir);
        if free < need {
            let why = format!(
                "{gib} GiB skipped: {:.1} GiB free on the disk, {:.1} GiB needed (the primary, the \
                 backup and one copy at once, plus 3 GiB)",
                free as f64 / GIB,
                need as f64 / GIB
            );
            eprintln!("{why}");
            skipped.push(why);
            break;
        }
        grow_to(&p, (gib * GIB) as u64);
        eprintln!("Barman backup at {gib} GiB ... [{}]", load());
        let id = barman.backup();
        if let Some(old) = previous.replace(id.clone()) {
            barman.ok(&["delete", "pg", &old]);
        }
        let data = barman.home.join("pg/base").join(&id).join("data");
        let backup_bytes = du_bytes(&data);
        let db_bytes: u64 = p
            .sql("SELECT sum(pg_database_size(datname)) FROM pg_database")
            .parse()
            .unwrap();
        hold(&sc, &[&pgclone(&barman_conf, &[]), &tar_over_ssh(&data)]);
        let rounds = common::rounds(3);
        eprintln!(
            "{gib} GiB: backup {id} of {:.2} GiB, primary {:.2} GiB, {rounds} round(s), {:.1} GiB free",
            backup_bytes as f64 / GIB,
            db_bytes as f64 / GIB,
            free_bytes(&sc.dir) as f64 / GIB
        );
        let mut from_barman = Row {
            label: format!("{gib} GiB from Barman"),
            bytes: backup_bytes,
            pgclone: Vec::new(),
            raw: Vec::new(),
            breakdown: String::new(),
        };
        let mut from_primary = Row {
            label: format!("{gib} GiB from the primary"),
            bytes: db_bytes,
            pgclone: Vec::new(),
            raw: Vec::new(),
            breakdown: String::new(),
        };
        for round in 0..rounds {
            // Alternating order: neither side always finds the caches warm.
            let mut order = [0, 1, 2, 3];
            order.rotate_left(round % 4);
            for i in order {
                match i {
                    0 => {
                        let (f, json) = measure(
                            "pgclone clone from Barman",
                            &mut pgclone(&barman_conf, &[]),
                            &target,
                        );
                        from_barman.pgclone.push(f);
                        from_barman.breakdown = breakdown(&json);
                    }
                    1 => from_barman.raw.push(
                        measure("tar over one ssh stream", &mut tar_over_ssh(&data), &target).0,
                    ),
                    2 => {
                        let (f, json) = measure(
                            "pgclone clone from the primary",
                            &mut pgclone(&primary_conf, &["-c"]),
                            &target,
                        );
                        from_primary.pgclone.push(f);
                        from_primary.breakdown = breakdown(&json);
                    }
                    _ => from_primary
                        .raw
                        .push(measure("pg_basebackup alone", &mut basebackup(), &target).0),
                }
            }
        }
        rows.push(from_barman);
        rows.push(from_primary);
    }

    println!(
        "cost growth: clones of a growing primary (random rows, ssh on loopback), medians; \
         load at each figure's end"
    );
    println!(
        "  {:<26} {:>9}  {:>10} {:>10}  {:>10} {:>10}  {:>7}",
        "", "GiB", "pgclone s", "MiB/s", "raw s", "MiB/s", "ratio"
    );
    for r in &rows {
        let a = median(r.pgclone.iter().map(|f| f.0).collect());
        let b = median(r.raw.iter().map(|f| f.0).collect());
        let ratio = a.as_secs_f64() / b.as_secs_f64();
        println!(
            "  {:<26} {:>9.2}  {:>10.2} {:>10.1}  {:>10.2} {:>10.1}  {:>6.2}x{}",
            r.label,
            r.bytes as f64 / GIB,
            a.as_secs_f64(),
            mibs(r.bytes, a),
            b.as_secs_f64(),
            mibs(r.bytes, b),
            ratio,
            if ratio <= 1.25 { "" } else { "  (over 1.25)" }
        );
        let loads: Vec<&str> = r
            .pgclone
            .iter()
            .chain(&r.raw)
            .map(|f| f.1.as_str())
            .collect();
        println!("  {:<26} [{}]", "", loads.join("; "));
        println!("  {:<26} pgclone's last run: {}", "", r.breakdown);
    }
    println!("  raw: tar over one ssh stream (Barman), pg_basebackup -X stream alone (primary); goal: ratio <= 1.25");
    for s in &skipped {
        println!("  {s}");
    }
    wipe(&target);
}
