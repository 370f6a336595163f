//! wal-restore against hostile input over a real sshd: names that are not
//! WAL, archived files that expand or claim more than a segment, a WAL host
//! whose `tar` lies, and the segments Barman has received but not yet
//! archived. Whatever the input: a documented status (never a death by
//! signal, which would shut PostgreSQL down), nothing at %p unless it is the
//! checked segment, and a process that stays under 64 MiB.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use super::*;

/// The most memory any wal-restore process may use, whatever it is fed.
const PEAK_LIMIT_KIB: i64 = 64 << 10;

/// `pgclone` as postgres (as [`pgclone`] runs it) under GNU time, with the
/// peak resident memory of the largest process of the run: pgclone, or the
/// ssh that streams the WAL (time waits for both). Not wait4 from here: a
/// child forked by this test binary starts with the binary's own high-water
/// mark, which exec carries into the child's rusage; runuser and time are
/// exec'd fresh, so what time reports is the run's own.
fn pgclone_measured(sc: &Scratch, args: &[String]) -> (Output, i64) {
    let report = sc.path(&format!("peak-{}", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let out = run(as_pg("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .args(["env", "-i"])
        .arg(format!("HOME={}", sc.dir.display()))
        .arg("PATH=/usr/local/bin:/usr/bin:/bin")
        .arg(format!("PGCLONE_CACHE_DIR={}", sc.path("cache").display()))
        .arg(env!("CARGO_BIN_EXE_pgclone"))
        .args(args));
    // "Command exited with non-zero status N" or "Command terminated by
    // signal N" comes first; the last line is the peak in KiB.
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    assert!(
        !text.contains("terminated by signal"),
        "{text}\n{}",
        stderr(&out)
    );
    let peak = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak from time: {text:?}"));
    (out, peak)
}

/// What PostgreSQL would see: an exit status (never a signal), and for
/// anything but 0 nothing at %p and no temporary file next to it.
fn assert_clean_refusal(what: &str, out: &Output, dest: &Path, code: i32) {
    let err = stderr(out);
    assert_eq!(out.status.signal(), None, "{what}: died by a signal: {err}");
    assert_eq!(out.status.code(), Some(code), "{what}: {err}");
    if code != 0 {
        assert!(!dest.exists(), "{what}: a file at %p");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
}

impl Lab {
    /// %p as restore_command sees it in a data directory of the primary's
    /// cluster (its pg_control: system identifier and segment size).
    pub(super) fn primary_s_view(&self) -> PathBuf {
        fake_data_dir(
            &self.sc,
            "data",
            "15",
            &[],
            Some(&self.primary.data.join("global/pg_control")),
        )
    }

    /// `wal-restore` barman-wal-restore style through the sshd of `ssh_config`.
    fn wal_restore_args(
        &self,
        ssh_config: &Path,
        extra: &[&str],
        name: &str,
        dest: &Path,
    ) -> Vec<String> {
        let conf = self.sc.write("empty.conf", "");
        let mut args: Vec<String> = vec![
            "-f".into(),
            conf.display().to_string(),
            "wal-restore".into(),
        ];
        args.push(format!("--ssh-option=-F{}", ssh_config.display()));
        args.extend(["-c".into(), self.barman.config.display().to_string()]);
        args.extend([
            "--spool-dir".into(),
            self.sc.path("spool").display().to_string(),
        ]);
        args.extend(extra.iter().map(|e| e.to_string()));
        args.extend([
            "barmansrv".into(),
            "pg".into(),
            name.into(),
            dest.display().to_string(),
        ]);
        args
    }
}

/// Nothing that is not a WAL file name reaches a program: every spelling is
/// a usage error (2) before ssh runs — with the host unreachable, a program
/// run would show as "could not connect" (3) — through barman-wal-restore's
/// command line and through the configured source alike.
#[test]
fn names_that_are_not_wal_are_refused_before_any_program_runs() {
    let sc = Scratch::new("walnames");
    let dest = sc.mkdir("pg_wal").join("RECOVERYXLOG");
    let dest = dest.to_str().unwrap();
    let conf = sc.write(
        "node.conf",
        "node_id=2\nnode_name=n2\nbarman_host=127.0.0.1\nbarman_server=pg\nssh_options='-p 1'\n",
    );
    let spool = sc.path("spool");
    for name in [
        "--version",
        "-rf",
        "--to-command=touch /tmp/x",
        "../../../etc/passwd",
        "0000000100000000/000000010000000000000003",
        "000000000000000é0000000000",
        "0000000é0000000000000000",
        "00000001000000000000000G",
        "000000010000000000000003;touch x",
        ".history",
        "00000002.history.gz",
        "",
    ] {
        for (how, args) in [
            (
                "barman-wal-restore's line",
                vec![
                    "wal-restore",
                    "--port",
                    "1",
                    "--spool-dir",
                    spool.to_str().unwrap(),
                    "--",
                    "127.0.0.1",
                    "pg",
                    name,
                    dest,
                ],
            ),
            (
                "the configured source",
                vec![
                    "-f",
                    conf.to_str().unwrap(),
                    "wal-restore",
                    "--spool-dir",
                    spool.to_str().unwrap(),
                    "--",
                    name,
                    dest,
                ],
            ),
        ] {
            let out = pgclone(&sc, &args, &[]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{name:?} via {how}: {err}");
            assert!(
                err.contains("not a WAL file name") && !err.contains("connect"),
                "{name:?} via {how}: {err}"
            );
        }
    }
}

/// Archived files that are larger than the cluster's segment (told by its
/// pg_control) once read: a decompression bomb in Barman's directory, and a
/// plain file a page too long. Not delivered (4), in bounded memory, and no
/// more written than a segment.
#[test]
fn archived_files_that_expand_past_a_segment_are_refused_in_bounded_memory() {
    let lab = lab("walbomb");
    let name = lab.switch_segments(1).remove(0);
    let archived = lab.archived_file("pg", &name);
    let real = std::fs::read(&archived).unwrap();
    let dest = lab.primary_s_view();
    // A normal delivery first (the plugin compiled on the first, cached on
    // the second), for comparison.
    for run in ["first", "second"] {
        let args = lab.wal_restore_args(&lab.sshd.ssh_config, &["-p", "0"], &name, &dest);
        let (out, peak) = pgclone_measured(&lab.sc, &args);
        assert_clean_refusal("a normal delivery", &out, &dest, 0);
        assert!(peak < PEAK_LIMIT_KIB, "a normal delivery: peak {peak} KiB");
        eprintln!("a normal delivery ({run}): peak {peak} KiB");
        std::fs::remove_file(&dest).unwrap();
    }
    // 1 GiB of zeros in about 1 MiB of gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    let mut long = real.clone();
    long.extend_from_slice(&[0u8; 8192]);
    for (what, bytes) in [("a gzip bomb", bomb), ("a segment and a page", long)] {
        std::fs::write(&archived, &bytes).unwrap();
        let args = lab.wal_restore_args(&lab.sshd.ssh_config, &["-p", "0"], &name, &dest);
        let started = Instant::now();
        let (out, peak) = pgclone_measured(&lab.sc, &args);
        let err = stderr(&out);
        assert_clean_refusal(what, &out, &dest, 4);
        assert!(
            err.contains("larger than 16777216 bytes"),
            "{what}: the bound is the cluster's segment size: {err}"
        );
        assert!(peak < PEAK_LIMIT_KIB, "{what}: peak {peak} KiB");
        eprintln!(
            "{what}: refused in {:?}, peak {peak} KiB",
            started.elapsed()
        );
    }
    std::fs::write(&archived, &real).unwrap();
}

/// A WAL host whose `tar` lies (a compromised or broken host: the one fault
/// here that needs a program of the test's, on the remote PATH of a real
/// sshd): a header that claims 2^62 bytes, and a stream of entries that never
/// ends. No abort, no unbounded memory; the segment still comes, checked,
/// from `barman get-wal`, or the status says the host failed.
#[test]
fn a_wal_host_whose_tar_lies_never_takes_the_standby_down() {
    let lab = lab("walliar");
    let name = lab.switch_segments(1).remove(0);
    let real = std::fs::read(lab.archived_file("pg", &name)).unwrap();
    let bin = lab.sc.mkdir("liar-bin");
    let tar = bin.join("tar");
    let liar = Sshd::start(&lab.sc, &format!("{}:/usr/bin:/bin", bin.display()));
    let dest = lab.primary_s_view();
    // Each script writes to standard output what a lying tar would.
    let huge_header = format!(
        "import sys,tarfile\n\
         h=tarfile.TarInfo('{log}/{name}'); h.size=1<<62\n\
         sys.stdout.buffer.write(h.tobuf(format=tarfile.GNU_FORMAT))\n\
         z=bytes(1<<20)\n\
         while True: sys.stdout.buffer.write(z)\n",
        log = &name[..16]
    );
    let endless = "import sys,tarfile\n\
         z=bytes(1<<20)\n\
         i=0\n\
         while True:\n \
           h=tarfile.TarInfo('junk%d' % i); h.size=len(z); i+=1\n \
           sys.stdout.buffer.write(h.tobuf(format=tarfile.GNU_FORMAT)); sys.stdout.buffer.write(z)\n"
        .to_string();
    for (what, script, code) in [
        ("a header claiming 2^62 bytes", huge_header, 0),
        ("an endless stream of other entries", endless, 3),
    ] {
        std::fs::write(&tar, format!("#!/usr/bin/python3\n{script}")).unwrap();
        chmod(&tar, 0o755);
        let args = lab.wal_restore_args(
            &liar.ssh_config,
            &["-p", "0", "--timeout", "20"],
            &name,
            &dest,
        );
        let started = Instant::now();
        let (out, peak) = pgclone_measured(&lab.sc, &args);
        let took = started.elapsed();
        assert_clean_refusal(what, &out, &dest, code);
        assert!(peak < PEAK_LIMIT_KIB, "{what}: peak {peak} KiB");
        if code == 0 {
            assert!(
                std::fs::read(&dest).unwrap() == real,
                "{what}: not the archived segment"
            );
            std::fs::remove_file(&dest).unwrap();
        } else {
            assert!(
                stderr(&out).contains("tar stream"),
                "{what}: {}",
                stderr(&out)
            );
        }
        assert!(took < Duration::from_secs(20), "{what}: took {took:?}");
        eprintln!(
            "{what}: status {:?} in {took:?}, peak {peak} KiB",
            out.status.code()
        );
    }
}

/// A segment Barman has received (streaming/ via receive-wal, incoming/ via
/// archive_command) but whose cron has not yet archived it is delivered, as
/// `barman get-wal` and so barman-wal-restore deliver it: recovery never stops
/// earlier with pgclone. A segment Barman has nowhere is 1, quickly.
#[test]
fn segments_barman_received_but_has_not_archived_are_delivered() {
    let lab = lab("walreceived");
    let dest = lab.primary_s_view();
    let streaming_dir = lab.barman.home.join("pg/streaming");
    // Written and switched by the primary, received by pg_receivewal; no cron.
    lab.primary
        .sql("CREATE TABLE IF NOT EXISTS r(i int); INSERT INTO r VALUES (1)");
    let name = lab
        .primary
        .sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    lab.primary.sql("SELECT pg_switch_wal()");
    let received = streaming_dir.join(&name);
    let start = Instant::now();
    while !received.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Barman never received {name}: {:?}",
            snapshot(&streaming_dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!lab.archived_file("pg", &name).exists(), "already archived");
    let out = lab.wal_restore(&["-p", "0"], &name, &dest);
    assert_clean_refusal("received, not archived", &out, &dest, 0);
    assert!(std::fs::read(&dest).unwrap() == std::fs::read(&received).unwrap());
    std::fs::remove_file(&dest).unwrap();

    // The same through incoming/ (what an archive_command ships to Barman).
    let next = lab
        .primary
        .sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    lab.primary.sql("SELECT pg_switch_wal()");
    let start = Instant::now();
    while !streaming_dir.join(&next).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{next} never came"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let incoming = lab.barman.home.join("pg/incoming").join(&next);
    std::fs::create_dir_all(incoming.parent().unwrap()).unwrap();
    std::fs::rename(streaming_dir.join(&next), &incoming).unwrap();
    let out = lab.wal_restore(&["-p", "0"], &next, &dest);
    assert_clean_refusal("in incoming/", &out, &dest, 0);
    std::fs::remove_file(&dest).unwrap();

    // Nowhere at Barman: the end of the archive, answered quickly.
    let missing = "0000000100000000000000FE";
    let started = Instant::now();
    let out = lab.wal_restore(&["-p", "0"], missing, &dest);
    let took = started.elapsed();
    assert_clean_refusal("missing everywhere", &out, &dest, 1);
    eprintln!("end of archive answered in {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}
