//! Hostile backup sources: plans that try to leave the data directory, run
//! what they were not granted, inject options or exhaust the host; a manifest
//! that hides what describe() asks for. Each is refused with a clear error and
//! nothing is written outside what was granted. The plans come from a real
//! component (`tests/components/escaper`), validated by the host's own code.

use crate::support;
use pgclone::clone::steps::kinds::unpack_archive::ArchiveFrom;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use pgclone::clone::steps;
use pgclone::config::ConfFile;
use pgclone::conformance::{self, Verdict};
use pgclone::contract::source::BackupSource;
use pgclone::contract::{Capability, PluginFailure};
use pgclone::environment::HostEnv;
use pgclone::plugin::catalog::{sha256_hex, Candidate};
use pgclone::plugin::{Plugin, Runtime};
use pgclone::report::render;

fn guest(file: &str) -> PathBuf {
    support::component(file)
}

fn escaper(rt: &Runtime) -> Plugin {
    let path = guest("test_escaper");
    let sha = sha256_hex(&std::fs::read(&path).unwrap());
    let mut cand = Candidate::from_file("test-escaper", path, Some(sha));
    cand.grants = Some(vec![
        Capability::LocalRun("true".into()),
        Capability::LocalRun("sleep".into()),
        Capability::LocalRun("yes".into()),
        Capability::RemoteRun {
            target: "store".into(),
            program: "rsync".into(),
        },
        Capability::RemoteRun {
            target: "store".into(),
            program: "cat".into(),
        },
    ]);
    Plugin::load(rt, &cand).unwrap()
}

/// The plan the escaper returns for `case`, validated as a clone would.
fn validate(rt: &Runtime, case: &str) -> Result<Vec<steps::Step>, String> {
    let p = escaper(rt);
    let env = Arc::new(HostEnv {
        config: ConfFile::parse(std::path::Path::new("t.conf"), "store_host=backup@store\n")
            .unwrap(),
        ..Default::default()
    });
    let mut s = p.session(rt, env.clone()).unwrap();
    let mut req = support::plugin_request();
    req.backup_id = Some(case.into());
    let backup = s.check(&req).map_err(|e| e.to_string())?;
    let plan = s.plan_clone(&req, &backup).map_err(|e| e.to_string())?;
    let scratch = tempfile::tempdir().unwrap();
    let ts: BTreeMap<u32, PathBuf> = [(16385, scratch.path().join("ts"))].into();
    let staging = scratch.path().join("staging");
    steps::Validation {
        plugin: &p.name,
        caps: &p.caps,
        env: &env,
        datadir: &scratch.path().join("data"),
        tablespaces: &ts,
        staging: Some(&staging),
    }
    .plan(&plan)
    .map_err(|e| render(&e))
}

#[test]
fn every_escaping_plan_is_refused_with_what_was_wrong() {
    let rt = Runtime::new(None).unwrap();
    let _ = std::fs::remove_file("/tmp/pgclone-escaped");
    for (case, want) in [
        ("dotdot", "is not a plain relative path"),
        ("absolute", "is not a plain relative path"),
        (
            "other-tablespace",
            "tablespace 999 is not a tablespace of this clone",
        ),
        ("program-path", "may not"),
        (
            "undeclared-program",
            "plans to run \"rm\", which it may not",
        ),
        ("ungranted-target", "plans an rsync copy it may not make"),
        ("option-injection", "is not absolute"),
        ("dotdot-file", "is not a plain relative path"),
        ("empty", "the plan is empty"),
        ("huge-plan", "the plan has 20000 steps"),
        ("huge-file", "a write-file step of 8388608 bytes"),
        // A control character in any name of any step, before anything runs.
        ("cr-file", "base/1\\r../../etc/cron.d/x"),
        ("cr-exclude", "pg_wal\\u{85}x"),
        ("del-remote", "contains a control character"),
        ("newline-dir", "base\\nx"),
        ("tab-write", "tablespace_map\\t"),
        ("c1-local", "base\\u{9b}2J"),
        ("escape-arg", "contains a control character"),
        (
            "unpack-ungranted",
            "plans to read an archive it may not read",
        ),
        ("unpack-relative", "is not an absolute file path"),
        ("unpack-dotdot", "is not a plain relative path"),
        (
            "staging-without-combine",
            "a path in the staging directory, in a plan without a combine-backups step",
        ),
        ("staging-dotdot", "is not a plain relative path"),
        (
            "combine-outside",
            "combine-backups: backup \"b\" is not a subdirectory of the staging directory",
        ),
        (
            "combine-root",
            "is not a subdirectory of the staging directory",
        ),
        ("combine-one", "a combine-backups step of 1 backup ("),
        ("combine-twice", "combine-backups names \"a\" twice"),
        ("combine-escape", "is not a plain relative path"),
        // The escaper's clone has a tablespace.
        (
            "combine-ok",
            "plans to combine an incremental backup chain with tablespaces, which pgclone cannot do yet",
        ),
        (
            "unpack-tablespace",
            "tablespace 999 is not a tablespace of this clone",
        ),
    ] {
        let e = validate(&rt, case).expect_err(case);
        assert!(e.contains(want), "{case}: {e}");
        assert!(
            e.contains("test-escaper") || e.contains("not a capability"),
            "{case}: the plugin is not named: {e}"
        );
    }
    // Shell metacharacters in the arguments of a granted program are just
    // arguments: accepted, and never given to a shell.
    let plan = validate(&rt, "metacharacters").unwrap();
    assert!(matches!(&plan[0], steps::Step::RunLocal(r) if r.args[1] == "$(reboot)"));
    // A well-formed unpack-archive step is accepted as it was planned.
    let plan = validate(&rt, "unpack-ok").unwrap();
    assert!(
        matches!(&plan[0], steps::Step::UnpackArchive(a)
            if matches!(&a.from, ArchiveFrom::Ssh { remote_path, .. } if remote_path == "/srv/b/base.tar.gz")
            && a.compression == Some(pgclone::contract::source::ArchiveCompression::Gzip)),
        "{plan:?}"
    );
    assert!(!std::path::Path::new("/tmp/pgclone-escaped").exists());
}

#[test]
fn a_panicking_plugin_is_a_trap_named_with_its_call() {
    let rt = Runtime::new(None).unwrap();
    let e = validate(&rt, "panic").unwrap_err();
    assert!(
        e.contains("test-escaper") && e.contains("plan-clone"),
        "{e}"
    );
}

#[test]
fn a_manifest_that_hides_a_capability_is_refused() {
    let rt = Runtime::new(None).unwrap();
    let path = guest("test_liar");
    let sha = sha256_hex(&std::fs::read(&path).unwrap());
    let e = match Plugin::load(&rt, &Candidate::from_file("test-liar", path, Some(sha))) {
        Err(e @ PluginFailure::Refused { .. }) => e.to_string(),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a plugin whose describe() contradicts its manifest was loaded"),
    };
    assert!(e.contains("does not match the plugin's manifest"), "{e}");
    assert!(e.contains("read-config:conninfo"), "{e}");
}

#[test]
fn the_conformance_run_reports_what_a_host_refuses() {
    let rt = Runtime::new(None).unwrap();
    // The hostile source: its locate-wal answers are refused.
    let r = conformance::run(&rt, &guest("test_escaper"), None).unwrap();
    let fails: Vec<String> = r
        .findings
        .iter()
        .filter(|f| f.verdict == Verdict::Fail)
        .map(|f| format!("{}: {}", f.case, f.what))
        .collect();
    assert!(
        fails
            .iter()
            .any(|f| f.starts_with("locate-wal") && f.contains("elsewhere")),
        "{fails:#?}"
    );
    // The well-behaved examples pass.
    for ok in [
        "example_site_policy",
        "example_source_pgbackrest",
        "pgclone_source_barman",
    ] {
        let r = conformance::run(&rt, &guest(ok), None).unwrap();
        let summary: Vec<String> = r
            .findings
            .iter()
            .map(|f| format!("{:?} {}: {}", f.verdict, f.case, f.what))
            .collect();
        assert_eq!(r.failures(), 0, "{ok}: {summary:#?}");
        assert!(r.findings.len() >= 8, "{ok}: {summary:#?}");
    }
}

#[test]
fn a_hostile_source_installed_by_an_operator_changes_nothing() {
    use support::{pgclone, stderr, Scratch};
    let sc = Scratch::new("hostile");
    let wasm = sc.path("escaper.wasm");
    std::fs::copy(guest("test_escaper"), &wasm).unwrap();
    let cfg = sc.write(
        "pgclone.conf",
        &format!(
            "node_id=2\nnode_name=node2\nbackup_source=test-escaper\nplugins_config='{}'\n",
            sc.path("etc/plugins.toml").display()
        ),
    );
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let out = pgclone(
        &sc,
        &[
            "-f",
            &s(&cfg),
            "plugin",
            "install",
            &s(&wasm),
            "--grant-all",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let target = sc.path("standby");
    for (case, want) in [
        ("dotdot", "is not a plain relative path"),
        ("absolute", "is not a plain relative path"),
        ("huge-plan", "the plan has 20000 steps"),
        ("panic", "plan-clone"),
        ("program-path", "may not"),
        ("tablespace-grab", "has no tablespace_mapping"),
    ] {
        // No upstream at all: the source does not need one.
        let out = pgclone(
            &sc,
            &[
                "-f",
                &s(&cfg),
                "standby",
                "clone",
                "-h",
                "/nonexistent",
                "-D",
                &s(&target),
                "--backup-id",
                case,
            ],
            &[],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(
            err.contains(want) && err.contains("test-escaper"),
            "{case}: {err}"
        );
        assert!(!target.exists(), "{case}: {err}");
        assert!(!sc.path("escaped").exists(), "{case}: {err}");
        assert!(
            !std::path::Path::new("/tmp/pgclone-grabbed").exists(),
            "{case}: {err}"
        );
    }
}

#[test]
fn a_program_that_never_finishes_is_killed_at_its_limit() {
    let rt = Runtime::new(None).unwrap();
    let p = escaper(&rt);
    let env = Arc::new(HostEnv {
        program_timeout: Some(std::time::Duration::from_secs(1)),
        ..Default::default()
    });
    let mut req = support::plugin_request();
    req.backup_id = Some("hang".into());
    let started = std::time::Instant::now();
    let e = p
        .session(&rt, env)
        .unwrap()
        .check(&req)
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{e}"
    );
    assert!(
        e.contains("did not finish within 1 s and was killed"),
        "{e}"
    );
    assert!(e.contains("plugin_program_timeout"), "{e}");
}

#[test]
fn a_program_with_endless_output_is_cut_off() {
    let rt = Runtime::new(None).unwrap();
    let p = escaper(&rt);
    let mut req = support::plugin_request();
    req.backup_id = Some("flood".into());
    let e = p
        .session(&rt, Arc::new(HostEnv::default()))
        .unwrap()
        .check(&req)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("wrote more than 16 MiB to standard output"),
        "{e}"
    );
}

/// Everything a plugin says reaches the operator escaped: its manifest and
/// describe() (install, inspect, list, check, test), its errors, its step
/// descriptions in a dry run. A raw escape sequence or carriage return could
/// hide the capability lines and the grant question, or forge output.
#[test]
fn what_a_plugin_says_is_shown_escaped() {
    use support::{pgclone, pgclone_on_terminal_with_input, stderr, stdout, Scratch};
    let sc = Scratch::new("babbler");
    let wasm = sc.path("babbler.wasm");
    std::fs::copy(guest("test_babbler"), &wasm).unwrap();
    let cfg = sc.write(
        "pgclone.conf",
        &format!(
            "node_id=2\nnode_name=node2\nbackup_source=test-babbler\nplugins_config='{}'\n",
            sc.path("etc/plugins.toml").display()
        ),
    );
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (cfg, wasm, target) = (s(&cfg), s(&wasm), s(&sc.path("standby")));
    let clean = |what: &str, out: &std::process::Output| {
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !bytes
                    .iter()
                    .any(|b| *b == 0x1b || *b == b'\r' || *b == 0x7f),
                "{what}: raw control characters on {stream}: {text:?}"
            );
            assert!(!text.contains('\u{9b}'), "{what}: {text:?}");
        }
        format!("{}{}", stdout(out), stderr(out))
    };

    // On a terminal, answering the grant questions: the manifest cannot hide them.
    let out =
        pgclone_on_terminal_with_input(&sc, &["-f", &cfg, "plugin", "install", &wasm], "y\ny\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        !out.stdout.contains(&0x1b),
        "install on a terminal: {text:?}"
    );
    assert!(
        text.contains("harmless\\x1b[8m\\rnothing to see"),
        "{text:?}"
    );
    assert!(text.contains("grant local-run:sleep? [y/N]"), "{text:?}");

    let out = pgclone(
        &sc,
        &["-f", &cfg, "plugin", "install", &wasm, "--grant-all"],
        &[],
    );
    let text = clean("install", &out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("vendor:       pgclone tests\\x1b]0;owned\\x07"),
        "{text}"
    );

    for args in [
        vec!["plugin", "inspect", "test-babbler"],
        vec!["plugin", "list"],
        vec!["plugin", "check", &wasm],
    ] {
        let out = pgclone(&sc, &[&["-f", cfg.as_str()][..], &args].concat(), &[]);
        let text = clean(&args.join(" "), &out);
        assert!(out.status.success(), "{args:?}: {text}");
        assert!(text.contains("0.0.1\\x1b[8m"), "{args:?}: {text}");
    }
    let out = pgclone(&sc, &["plugin", "test", &wasm], &[]);
    let text = clean("plugin test", &out);
    assert!(text.contains("test-babbler"), "{text}");

    // A dry run shows the step's description escaped.
    let clone = |id: &str, extra: &[&str]| {
        let args = [
            &[
                "-f",
                cfg.as_str(),
                "standby",
                "clone",
                "-h",
                "/nonexistent",
                "-D",
            ][..],
            &[target.as_str(), "--backup-id", id],
            extra,
        ]
        .concat();
        pgclone(&sc, &args, &[])
    };
    let out = clone("fine", &["--dry-run"]);
    let text = clean("dry run", &out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("(copying\\x1b[8m\\rrm -rf /\\x1b[2K)"),
        "{text}"
    );
    // And its errors, message, detail and hint: none can forge a line.
    let out = clone("error", &[]);
    let text = clean("clone", &out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("\\x1b[2J\\x1b[1;1Hall is well\\r"), "{text}");
    assert!(text.contains("\\x9b2Jhint\\x7f"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("HINT: \\x1b[8mforged")),
        "{text}"
    );
    assert!(!std::path::Path::new(&target).exists(), "{text}");
    // Another run: the clone itself, with the step's NOTICE.
    let out = clone("fine", &[]);
    let text = clean("clone", &out);
    assert!(text.contains("copying\\x1b[8m"), "{text}");
}
