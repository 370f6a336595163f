//! copy-tree steps do what the contract says (`copy-tree-step` in
//! wit/types.wit), against real rsync over a real sshd: the excluded paths
//! are left out with everything below them, and an empty file list copies
//! the whole tree (empty directories and links included), checked on arrival
//! like a listed copy. The plans come from a real component
//! (`tests/components/escaper`, cases `listed:DIR` and `whole:DIR`),
//! validated and run by the host's own code.

use crate::support;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgclone::clone::steps::{self, CopyStats, ExecContext, Files, Step};
use pgclone::config::ConfFile;
use pgclone::contract::source::BackupSource;
use pgclone::contract::Capability;
use pgclone::environment::HostEnv;
use pgclone::plugin::catalog::{sha256_hex, Candidate};
use pgclone::plugin::{Plugin, Runtime};
use pgclone::report::render;
use support::barman::Sshd;
use support::Scratch;

/// A remote tree as a backup's data directory looks, with what the escaper
/// excludes (`pg_wal`, `postmaster.pid`, the name `we*rd`, `base/1/113` in a
/// directory a whole-tree copy lists) and what a
/// whole-tree copy must bring along too (empty directories, a link, a name
/// with spaces, `weXrd`, which the exclusion `we*rd` is not a pattern for).
fn remote_tree(sc: &Scratch) -> PathBuf {
    let root = sc.path("remote");
    for (file, contents) in [
        ("PG_VERSION", "17\n"),
        ("base/1/112", &"x".repeat(100_000)[..]),
        ("base/1/113", "y"),
        ("pg_wal/000000010000000000000001", "wal"),
        ("pg_wal/archive_status/000000010000000000000001.done", ""),
        ("postmaster.pid", "4242\n"),
        ("we*rd", "excluded by its name"),
        ("weXrd", "kept"),
        ("a name with spaces", "kept too"),
    ] {
        let p = root.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
    for dir in ["pg_tblspc", "pg_replslot", "pg_notify"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    symlink("base/1/112", root.join("latest")).unwrap();
    root
}

struct Lab {
    sc: Scratch,
    _sshd: Sshd,
    rt: Runtime,
    plugin: Plugin,
    env: Arc<HostEnv>,
}

fn lab(name: &str) -> Lab {
    let sc = Scratch::new(name);
    let sshd = Sshd::start(&sc, "/usr/bin:/bin");
    let rt = Runtime::new(None).unwrap();
    let path = support::component("test_escaper");
    let sha = sha256_hex(&std::fs::read(&path).unwrap());
    let mut cand = Candidate::from_file("test-escaper", path, Some(sha));
    cand.grants = Some(vec![Capability::RemoteRun {
        target: "store".into(),
        program: "rsync".into(),
    }]);
    let plugin = Plugin::load(&rt, &cand).unwrap();
    let env = Arc::new(HostEnv {
        config: ConfFile::parse(Path::new("t.conf"), "store_host=barmansrv\n").unwrap(),
        ssh_options: vec!["-F".into(), sshd.ssh_config.display().to_string()],
        ..Default::default()
    });
    Lab {
        sc,
        _sshd: sshd,
        rt,
        plugin,
        env,
    }
}

impl Lab {
    /// The escaper's plan for `case` of `remote`, validated as a clone would.
    fn plan(&self, case: &str, remote: &Path) -> Vec<Step> {
        let mut s = self.plugin.session(&self.rt, self.env.clone()).unwrap();
        let mut req = support::plugin_request();
        req.backup_id = Some(format!("{case}:{}", remote.display()));
        let backup = s.check(&req).unwrap();
        let plan = s.plan_clone(&req, &backup).unwrap();
        steps::Validation {
            plugin: &self.plugin.name,
            caps: &self.plugin.caps,
            env: &self.env,
            datadir: &self.sc.path("data"),
            tablespaces: &BTreeMap::new(),
            staging: None,
        }
        .plan(&plan)
        .map_err(|e| render(&e))
        .unwrap()
    }

    /// Runs `plan` into a fresh data directory, three rsync streams.
    fn run(&self, plan: &[Step]) -> Result<(PathBuf, CopyStats), String> {
        let data = self.sc.path("data");
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let ctx = ExecContext {
            jobs: 3,
            ssh_options: self.env.ssh_options.clone(),
            scratch: scratch.path().to_path_buf(),
            roots: vec![data.clone()],
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let stats = rt
            .block_on(steps::execute(plan, &ctx))
            .map_err(|e| render(&e))?;
        Ok((data, stats))
    }
}

/// Every path under `dir`, relative, `/` after a directory, `@` after a link.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let t = std::fs::symlink_metadata(&p).unwrap().file_type();
            if t.is_symlink() {
                out.push(format!("{rel}@"));
            } else if t.is_dir() {
                out.push(format!("{rel}/"));
                stack.push(p);
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn excluded_paths_are_not_copied() {
    let lab = lab("copy_exclude");
    let remote = remote_tree(&lab.sc);
    let plan = lab.plan("listed", &remote);
    // What the plan asks for, less what it excludes: the dry run says so.
    let Step::CopyTree(c) = &plan[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(
        c.files,
        Files::Listed(vec![
            "PG_VERSION".into(),
            "base/1/112".into(),
            "weXrd".into()
        ])
    );
    let shown = plan[0].describe();
    assert!(
        shown[0].starts_with("copy 3 files from barmansrv:"),
        "{shown:?}"
    );
    assert_eq!(
        shown[1],
        "leaving out pg_wal, postmaster.pid, we*rd, base/1/113"
    );

    let (data, stats) = lab.run(&plan).unwrap();
    assert_eq!(
        tree(&data),
        ["PG_VERSION", "base/", "base/1/", "base/1/112", "weXrd"]
    );
    assert_eq!(stats.files, 3);
    assert_eq!(stats.total_bytes, 3 + 100_000 + 4);
    assert_eq!(
        std::fs::read(data.join("base/1/112")).unwrap(),
        std::fs::read(remote.join("base/1/112")).unwrap()
    );
}

#[test]
fn an_empty_file_list_copies_the_whole_tree() {
    let lab = lab("copy_whole");
    let remote = remote_tree(&lab.sc);
    let plan = lab.plan("whole", &remote);
    let Step::CopyTree(c) = &plan[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(c.files, Files::WholeTree);
    let shown = plan[0].describe();
    assert!(
        shown[0].starts_with("copy the whole tree barmansrv:"),
        "{shown:?}"
    );

    let (data, stats) = lab.run(&plan).unwrap();
    // Everything but the excluded paths (and what is below them): empty
    // directories, the link as a link, names with spaces or a `*`-lookalike;
    // not base/1/113, though its directory is copied.
    assert_eq!(
        tree(&data),
        [
            "PG_VERSION",
            "a name with spaces",
            "base/",
            "base/1/",
            "base/1/112",
            "latest@",
            "pg_notify/",
            "pg_replslot/",
            "pg_tblspc/",
            "weXrd",
        ]
    );
    assert_eq!(
        std::fs::read_link(data.join("latest")).unwrap(),
        Path::new("base/1/112")
    );
    assert_eq!(
        std::fs::read(data.join("base/1/112")).unwrap(),
        std::fs::read(remote.join("base/1/112")).unwrap()
    );
    // Files and the link, checked on arrival and counted against rsync's
    // own total (a link by the length of its target).
    assert_eq!(stats.files, 5);
    assert_eq!(
        stats.total_bytes,
        3 + 8 + 100_000 + "base/1/112".len() as u64 + 4
    );
}

/// A whole tree holding what a data directory never does is refused before
/// anything of it is copied: a FIFO (rsync would make one as root), a name
/// with a line break (rsync can only show it escaped).
#[test]
fn a_whole_tree_that_is_not_plain_is_refused() {
    let lab = lab("copy_whole_hostile");
    let remote = remote_tree(&lab.sc);
    let plan = lab.plan("whole", &remote);

    let fifo = remote.join("base/1/fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let e = lab.run(&plan).unwrap_err();
    assert!(e.contains("cannot copy the whole tree"), "{e}");
    assert!(e.contains("not a file, a directory or a link"), "{e}");
    assert!(e.contains("base/1/fifo"), "{e}");
    assert!(tree(&lab.sc.path("data")).is_empty());
    std::fs::remove_file(&fifo).unwrap();

    std::fs::write(remote.join("base/1/new\nline"), "x").unwrap();
    let e = lab.run(&plan).unwrap_err();
    assert!(e.contains("not a plain relative name"), "{e}");
    assert!(tree(&lab.sc.path("data")).is_empty());
}
