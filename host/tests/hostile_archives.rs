//! Hostile backups served by a real Barman 3.4 over a real sshd: archives of
//! a compressed backup rewritten with links that lead out of the target
//! (the `dot -> .` chain, an absolute link, a hard link, a file written
//! through a link the archive planted) or with a gzip bomb; a plain
//! backup's directory with a planted link that rsync copies as a link; a
//! target whose file system has no room for the backup. Each clone fails
//! with its reason, exits 1, writes nothing outside the target and leaves
//! the target and the tablespace directory empty.

use crate::support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::barman::{barman_34, Barman, Sshd};
use support::*;

/// A primary with a tablespace, Barman 3.4 with a plain server (`pg`) and a
/// gzip one (`pgz`), both backed up.
struct Lab {
    sc: Scratch,
    primary: Pg,
    sshd: Sshd,
    barman: Barman,
}

fn lab(name: &str, compressed: bool) -> (Lab, String) {
    let sc = Scratch::new(name);
    let mut primary = Pg::init(&sc, "primary");
    primary.start();
    let ts = sc.mkdir("ts_primary");
    primary.sql(&format!("CREATE TABLESPACE ts LOCATION '{}'", ts.display()));
    primary.sql("CREATE TABLE t(i int); INSERT INTO t SELECT generate_series(1, 1000)");
    primary
        .sql("CREATE TABLE tt(i int) TABLESPACE ts; INSERT INTO tt SELECT generate_series(1, 300)");
    let bin = barman_34();
    let path = format!("{}:/usr/bin:/bin", bin.parent().unwrap().display());
    let sshd = Sshd::start(&sc, &path);
    let barman = Barman::setup(&sc, &primary, bin);
    let server = if compressed {
        barman.add_server("pgz", "backup_compression = gzip");
        "pgz"
    } else {
        "pg"
    };
    let id = barman.backup_of(server);
    (
        Lab {
            sc,
            primary,
            sshd,
            barman,
        },
        id,
    )
}

impl Lab {
    /// Clones `server` into `target`, the tablespace into `ts`.
    fn clone(&self, server: &str, target: &Path, ts: &Path) -> std::process::Output {
        self.clone_with(server, target, ts, &[])
    }

    fn clone_with(
        &self,
        server: &str,
        target: &Path,
        ts: &Path,
        extra: &[&str],
    ) -> std::process::Output {
        let cfg = self.sc.write(
            "pgclone.conf",
            &format!(
                "node_id=2\nnode_name=node2\nbarman_host=barmansrv\nbarman_server={server}\nbarman_config='{}'\n\
                 ssh_options='-F {}'\ntablespace_mapping='{}={}'\n\
                 restore_command='ssh -F {} barmansrv barman -c {} get-wal {server} %f > %p'\n",
                self.barman.config.display(),
                self.sshd.ssh_config.display(),
                self.sc.path("ts_primary").display(),
                ts.display(),
                self.sshd.ssh_config.display(),
                self.barman.config.display(),
            ),
        );
        standby_clone(&self.sc, &cfg, &self.primary, target, extra, &[])
    }

    fn backup_data(&self, server: &str, id: &str) -> PathBuf {
        self.barman
            .home
            .join(server)
            .join("base")
            .join(id)
            .join("data")
    }

    /// A directory the clone's user may write: an escape would land there.
    fn outside(&self) -> PathBuf {
        self.sc.mkdir("outside")
    }
}

/// The clone failed with every one of `wants`, exited 1, and left nothing:
/// `outside` and the tablespace directory (when given) empty, the target
/// empty or absent.
fn failed_cleanly(
    out: &std::process::Output,
    wants: &[&str],
    target: &Path,
    ts: Option<&Path>,
    outside: &Path,
) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in wants {
        assert!(err.contains(w), "missing {w:?} in:\n{err}");
    }
    assert!(
        err.contains("no recovery configuration was written")
            || err.contains("nothing was changed"),
        "{err}"
    );
    assert!(
        !err.contains("standby clone (from Barman) complete"),
        "{err}"
    );
    let empty = |d: &Path| std::fs::read_dir(d).map_or(true, |mut r| r.next().is_none());
    assert!(empty(target), "{} not empty:\n{err}", target.display());
    if let Some(ts) = ts {
        assert!(empty(ts), "{} not empty:\n{err}", ts.display());
    }
    assert!(empty(outside), "written outside the target:\n{err}");
}

fn chown_barman(p: &Path) {
    run_ok(Command::new("chown").arg("barman:barman").arg(p));
}

/// The archive `original` (gzip) with `extra` entries added after its own.
fn rewrite(original: &[u8], extra: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(original)
        .read_to_end(&mut raw)
        .unwrap();
    let mut a = tar::Archive::new(&raw[..]);
    let mut b = tar::Builder::new(Vec::new());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        b.append(&h, &data[..]).unwrap();
    }
    extra(&mut b);
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, to: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o777);
    h.set_size(0);
    b.append_link(&mut h, name, to).unwrap();
}

fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o600);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, name, data).unwrap();
}

#[test]
fn archives_cannot_link_or_write_out_of_the_target_nor_expand_past_the_backup() {
    let (lab, id) = lab("hostilearch", true);
    let archive = lab.backup_data("pgz", &id).join("base.tar.gz");
    let original = std::fs::read(&archive).unwrap();
    let outside = lab.outside();
    let victim = outside.join("victim");
    let above = lab
        .sc
        .dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    type Extra = Box<dyn Fn(&mut tar::Builder<Vec<u8>>)>;
    let (v, a) = (victim.display().to_string(), above.clone());
    let cases: Vec<(&str, Extra, Vec<&str>)> = vec![
        (
            // Issue 23: each link's text stays inside; together they lead out.
            "dot chain",
            Box::new(move |b| {
                link(b, tar::EntryType::Symlink, "pg_wal/dot", ".");
                link(
                    b,
                    tar::EntryType::Symlink,
                    "pg_wal/up",
                    "dot/dot/dot/../../..",
                );
                file(b, &format!("pg_wal/up/{a}/outside/victim"), b"x");
            }),
            vec!["\"pg_wal/dot\" is a symbolic link to \".\""],
        ),
        (
            "absolute link",
            Box::new({
                let v = v.clone();
                move |b| {
                    link(
                        b,
                        tar::EntryType::Symlink,
                        "pg_wal/000000010000000000000009",
                        &v,
                    )
                }
            }),
            vec![
                "is a symbolic link to",
                "which a base backup's archive does not hold",
            ],
        ),
        (
            "hard link",
            Box::new({
                let v = v.clone();
                move |b| link(b, tar::EntryType::Link, "global/evil", &v)
            }),
            vec!["\"global/evil\" is a hard link to"],
        ),
        (
            // A link where PostgreSQL's layout has one, then a file through it.
            "write through a planted link",
            Box::new({
                let o = outside.display().to_string();
                move |b| {
                    link(b, tar::EntryType::Symlink, "pg_tblspc/99999", &o);
                    file(b, "pg_tblspc/99999/victim", b"x");
                }
            }),
            vec!["\"pg_tblspc/99999\" is a symbolic link"],
        ),
    ];
    for (what, extra, wants) in cases {
        std::fs::write(&archive, rewrite(&original, extra)).unwrap();
        chown_barman(&archive);
        let target = lab.sc.path(&format!("standby_{}", what.replace(' ', "_")));
        let ts = lab.sc.path(&format!("ts_{}", what.replace(' ', "_")));
        let out = lab.clone("pgz", &target, &ts);
        let mut all = vec!["holds an entry pgclone refuses to unpack"];
        all.extend(wants);
        eprintln!("case {what}:\n{}", stderr(&out));
        failed_cleanly(&out, &all, &target, Some(&ts), &outside);
        assert!(!victim.exists());
    }

    // A gzip bomb: 1 GiB of zeros in a few MB, in a backup whose manifest
    // declares some tens of MiB. The target is on a 300 MiB file system:
    // unpacking stops at the bound, long before it is full.
    std::fs::write(
        &archive,
        rewrite(&original, |b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o600);
            h.set_size(1 << 30);
            b.append_data(&mut h, "base/1/99999", std::io::repeat(0).take(1 << 30))
                .unwrap();
        }),
    )
    .unwrap();
    chown_barman(&archive);
    let fs = lab.sc.mkdir("bombfs");
    let _mount = Tmpfs::mount(&fs, "300m");
    let target = fs.join("standby");
    let ts = lab.sc.path("ts_bomb");
    let out = lab.clone("pgz", &target, &ts);
    std::fs::write(&archive, &original).unwrap();
    chown_barman(&archive);
    let err = stderr(&out);
    eprintln!("bomb:\n{err}");
    failed_cleanly(
        &out,
        &[
            "unpacks to more than the backup declares",
            "the backup's manifest declares",
            "unpacking stopped there",
        ],
        &target,
        Some(&ts),
        &outside,
    );
    assert!(!err.contains("No space left"), "{err}");
    // The real archive still clones (the bound is not in its way).
    let target = lab.sc.path("standby_ok");
    let ts = lab.sc.path("ts_ok");
    let out = lab.clone("pgz", &target, &ts);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("unpacking: what the backup's manifest declares is"),
        "{err}"
    );
}

#[test]
fn a_planted_link_in_a_plain_backup_and_a_full_file_system_are_refused() {
    let (lab, id) = lab("hostileplain", false);
    let outside = lab.outside();
    // rsync copies a link planted in the backup directory as a link; from
    // the target it leads to `outside` (it dangles, and PostgreSQL would
    // create the file there when it writes this segment).
    let planted = lab
        .backup_data("pg", &id)
        .join("pg_wal/000000010000000000000099");
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("../../outside/victim", &planted).unwrap();
    run_ok(
        Command::new("chown")
            .arg("-h")
            .arg("barman:barman")
            .arg(&planted),
    );
    let target = lab.sc.path("standby_planted");
    let ts = lab.sc.path("ts_planted");
    let out = lab.clone("pg", &target, &ts);
    std::fs::remove_file(&planted).unwrap();
    eprintln!("planted:\n{}", stderr(&out));
    failed_cleanly(
        &out,
        &[
            "refusing the copy: link",
            "pg_wal/000000010000000000000099\" points to \"../../outside/victim\"",
            &format!("leading to \"{}\"", outside.join("victim").display()),
            "the incomplete copy in",
        ],
        &target,
        Some(&ts),
        &outside,
    );

    // A file system smaller than the backup: refused before anything is
    // copied, with the numbers.
    let fs = lab.sc.mkdir("smallfs");
    let _mount = Tmpfs::mount(&fs, "8m");
    // The tablespace too: how a backup splits over file systems is not
    // declared, so only a shortfall of all of them together is certain.
    let target = fs.join("standby");
    let ts = fs.join("ts");
    let out = lab.clone("pg", &target, &ts);
    let err = stderr(&out);
    eprintln!("small:\n{err}");
    failed_cleanly(
        &out,
        &[
            "not enough free space for the backup: the backup as the source declares it is",
            "8.0 MiB (8388608 bytes) are free",
            "8.0 MiB free on the file system of",
            "nothing was changed",
        ],
        &target,
        Some(&ts),
        &outside,
    );
    assert!(!target.exists(), "{err}");
    // The same clone with room succeeds (the check is not in its way).
    let target = lab.sc.path("standby_ok");
    let ts = lab.sc.path("ts_ok");
    let out = lab.clone("pg", &target, &ts);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("the backup as the source declares it is"),
        "{err}"
    );

    // A delta re-clone keeps pg_tblspc's links: one left in the old copy
    // that leads out is found after the copy all the same.
    let left = target.join("pg_tblspc/99999");
    std::os::unix::fs::symlink(&outside, &left).unwrap();
    run_ok(
        Command::new("chown")
            .arg("-h")
            .arg("postgres:postgres")
            .arg(&left),
    );
    let out = lab.clone_with("pg", &target, &ts, &["-F"]);
    let err = stderr(&out);
    eprintln!("delta:\n{err}");
    assert!(err.contains("only what changed will be copied"), "{err}");
    failed_cleanly(
        &out,
        &[
            "refusing the copy: link",
            &format!("pg_tblspc/99999\" points to \"{}\"", outside.display()),
        ],
        &target,
        // A failed delta copy keeps the tablespace's files (rollback empties
        // only what this clone found empty); the data directory goes.
        None,
        &outside,
    );
}

/// A tmpfs of `size` on `dir` (owned by postgres, as the clone runs), unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={size},mode=0755"))
                .arg("tmpfs")
                .arg(dir),
        );
        run_ok(Command::new("chown").arg("postgres:postgres").arg(dir));
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
