//! `--output json`: a dry run, a clone, a refused clone, `plugin list` and
//! `plugin verify` as one JSON document on stdout, each checked against the
//! text the same command prints (its checks, verdicts, actions and plugins,
//! in the same order). One primary for the file.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use pgclone::plugin::catalog::sha256_hex;

use crate::support::*;

/// Standard output as one JSON document, with nothing before or after it.
fn document(out: &Output) -> Value {
    let text = stdout(out);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{text}\nstderr:\n{}",
            stderr(out)
        )
    })
}

fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn array(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

/// The checklist as the text shows it on stderr: (verdict, message, detail).
fn checklist(err: &str) -> Vec<(String, String, Option<String>)> {
    let mut out: Vec<(String, String, Option<String>)> = Vec::new();
    let mut lines = err.lines().skip_while(|l| *l != "INFO: preflight checks:");
    assert!(lines.next().is_some(), "no checklist:\n{err}");
    for l in lines.take_while(|l| l.starts_with("  ")) {
        if let Some(d) = l.strip_prefix("          ") {
            let last = out.last_mut().expect("a detail follows its check");
            last.2 = Some(match last.2.take() {
                Some(prev) => format!("{prev}\n{d}"),
                None => d.to_string(),
            });
            continue;
        }
        let verdict = match &l[2..6] {
            "ok  " => "ok",
            "warn" => "warn",
            "FAIL" => "fail",
            other => panic!("unknown verdict {other:?} in {l:?}"),
        };
        out.push((verdict.into(), l[8..].to_string(), None));
    }
    out
}

/// The document's checks as [`checklist`] reads the text; every one named.
fn checks_of(d: &Value) -> Vec<(String, String, Option<String>)> {
    array(&d["checks"])
        .iter()
        .map(|c| {
            assert!(!str_of(&c["name"]).is_empty(), "{c}");
            (
                str_of(&c["verdict"]),
                str_of(&c["message"]),
                // The text shows a failure's DETAIL only.
                opt_str(&c["detail"]).filter(|_| c["verdict"] == "fail"),
            )
        })
        .collect()
}

/// The dry run's plan as the text prints it on stdout.
fn plan_lines(out: &str) -> Vec<String> {
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("plan:"), "{out}");
    lines
        .map(|l| l.strip_prefix("  ").unwrap_or(l).to_string())
        .collect()
}

fn action_lines(d: &Value) -> Vec<String> {
    array(&d["actions"])
        .iter()
        .flat_map(|a| array(&a["lines"]).iter().map(str_of))
        .collect()
}

fn action_kinds(v: &Value) -> Vec<String> {
    array(v).iter().map(|a| str_of(&a["action"])).collect()
}

/// An error as stderr shows it: (message, detail, hint).
fn error_text(err: &str) -> (String, Option<String>, Option<String>) {
    let at = err
        .find("ERROR: ")
        .unwrap_or_else(|| panic!("no ERROR:\n{err}"));
    let e = err[at + 7..].trim_end();
    let (e, hint) = match e.split_once("\nHINT: ") {
        Some((e, h)) => (e, Some(h.to_string())),
        None => (e, None),
    };
    let (message, detail) = match e.split_once("\nDETAIL: ") {
        Some((m, d)) => (m.to_string(), Some(d.to_string())),
        None => (e.to_string(), None),
    };
    (message, detail, hint)
}

#[test]
fn a_dry_run_a_clone_and_a_refusal_in_json_match_their_text() {
    let sc = Scratch::new("json-clone");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let cfg = sc.write(
        "pgclone.conf",
        "node_id=2\nnode_name='node2'\nuse_replication_slots=yes\n",
    );
    let target = sc.path("standby");

    // The dry run: text, then JSON.
    let text = standby_clone(&sc, &cfg, &p, &target, &["--dry-run"], &[]);
    assert!(text.status.success(), "{}", stderr(&text));
    let out = standby_clone(
        &sc,
        &cfg,
        &p,
        &target,
        &["--dry-run", "--output", "json"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let d = document(&out);
    assert_eq!(d["schema"], "pgclone/standby-clone@1", "{d}");
    assert_eq!(d["result"], "ok");
    assert_eq!(d["dry_run"], true);
    assert!(d["error"].is_null(), "{d}");
    let checks = checks_of(&d);
    assert!(checks.len() >= 5, "{d}");
    assert_eq!(checks, checklist(&stderr(&text)));
    // The same run still tells people on stderr.
    assert_eq!(checks, checklist(&stderr(&out)));
    assert_eq!(action_lines(&d), plan_lines(&stdout(&text)));
    let kinds = action_kinds(&d["actions"]);
    assert_eq!(kinds.first().map(String::as_str), Some("prepare-target"));
    assert_eq!(kinds.last().map(String::as_str), Some("write-recovery"));
    for k in ["create-slot", "run-source", "verify-copy"] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing: {kinds:?}");
    }
    // The files that would be written, as the text's plan shows them.
    let plan = plan_lines(&stdout(&text));
    let files = array(&d["files"]);
    let written: Vec<&Value> = files.iter().filter(|f| f["operation"] == "write").collect();
    assert!(!written.is_empty(), "{d}");
    for f in &written {
        let header = format!("  {}:", str_of(&f["path"]));
        let at = plan
            .iter()
            .position(|l| *l == header)
            .unwrap_or_else(|| panic!("{header} not in the plan: {plan:#?}"));
        let shown: Vec<String> = plan[at + 1..]
            .iter()
            .take_while(|l| l.starts_with("    "))
            .map(|l| l[4..].to_string())
            .collect();
        let contents = str_of(&f["contents"]);
        assert_eq!(shown, contents.lines().collect::<Vec<_>>());
    }
    assert!(
        written
            .iter()
            .any(|f| str_of(&f["path"]).ends_with("/standby.signal")),
        "{d}"
    );
    assert!(!target.exists(), "the dry run changed nothing");

    // The clone, in JSON.
    let out = standby_clone(&sc, &cfg, &p, &target, &["--output=json"], &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let c = document(&out);
    assert_eq!(c["result"], "ok", "{c}");
    assert_eq!(c["dry_run"], false);
    assert_eq!(checks_of(&c), checklist(&err));
    assert_eq!(action_kinds(&c["actions"]), kinds);
    // Every action ran, in the plan's order.
    assert_eq!(action_kinds(&c["performed"]), kinds);
    for a in array(&c["performed"]) {
        assert_eq!(a["result"], "ok", "{a}");
        assert!(a["seconds"].as_f64().unwrap() >= 0.0, "{a}");
    }
    let phases: Vec<String> = array(&c["phases"])
        .iter()
        .map(|p| str_of(&p["phase"]))
        .collect();
    assert_eq!(phases, ["resolve", "checks", "plan", "execute"]);
    let total: f64 = array(&c["phases"])
        .iter()
        .map(|p| p["seconds"].as_f64().unwrap())
        .sum();
    assert!(total > 0.0, "{c}");
    // The files written are on disk as the document says, and stderr said so.
    let files = array(&c["files"]);
    assert!(files.iter().any(|f| f["operation"] == "write"), "{c}");
    for f in files.iter().filter(|f| f["operation"] == "write") {
        let path = str_of(&f["path"]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            str_of(&f["contents"]),
            "{path}"
        );
        assert!(err.contains(&format!("INFO: wrote \"{path}\"")), "{err}");
    }
    assert!(
        err.contains("NOTICE: standby clone (using pg_basebackup) complete"),
        "{err}"
    );

    // Again into the populated target without -F: refused, in both forms,
    // with the same status, checks and error.
    let text = standby_clone(&sc, &cfg, &p, &target, &[], &[]);
    let out = standby_clone(&sc, &cfg, &p, &target, &["--output", "json"], &[]);
    assert_eq!(text.status.code(), Some(1), "{}", stderr(&text));
    assert_eq!(out.status.code(), text.status.code());
    assert!(stdout(&text).is_empty(), "{}", stdout(&text));
    let r = document(&out);
    assert_eq!(r["result"], "failed", "{r}");
    assert_eq!(checks_of(&r), checklist(&stderr(&text)));
    assert!(
        array(&r["checks"])
            .iter()
            .any(|c| c["verdict"] == "fail" && c["name"] == "target"),
        "{r}"
    );
    assert!(array(&r["performed"]).is_empty(), "{r}");
    let e = &r["error"];
    assert_eq!(
        (
            str_of(&e["message"]),
            opt_str(&e["detail"]),
            opt_str(&e["hint"])
        ),
        error_text(&stderr(&text))
    );
}

/// An isolated plugin configuration: plugins.toml and its plugin directory.
struct Plugins {
    dir: tempfile::TempDir,
}

impl Plugins {
    fn new(toml: &str, files: &[(&str, &[u8])]) -> Plugins {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plugins.toml"), toml).unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join("plugins").join(name), bytes).unwrap();
        }
        Plugins { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(&self.dir.path().join("plugins.toml"), args)
    }

    fn run_with(&self, toml: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_pgclone"))
            .arg("--plugins-config")
            .arg(toml)
            .args(args)
            .env("HOME", self.dir.path())
            .env("PGCLONE_CONFIG", Path::new("/dev/null"))
            .env_remove("PGCLONE_PLUGINS_CONFIG")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("PGCLONE_CACHE_DIR")
            .output()
            .unwrap()
    }
}

fn echo() -> (Vec<u8>, String) {
    let bytes = std::fs::read(component("test_echo")).unwrap();
    let sha = sha256_hex(&bytes);
    (bytes, sha)
}

/// `plugin list`'s rows against its document: every plugin in order, its
/// columns, capabilities and problems.
fn list_matches(text: &str, d: &Value) {
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("NAME "), "{text}");
    let mut lines = lines.peekable();
    for p in array(&d["plugins"]) {
        let row = lines
            .next()
            .unwrap_or_else(|| panic!("{p} not listed:\n{text}"));
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(words[0], str_of(&p["name"]), "{row}");
        if p["status"] == "ok" {
            let sha = str_of(&p["sha256"]);
            assert_eq!(
                words[1..6],
                [
                    str_of(&p["version"]),
                    str_of(&p["contract"]),
                    str_of(&p["kind"]),
                    match array(&p["provides"])
                        .iter()
                        .map(str_of)
                        .collect::<Vec<_>>()
                        .join(",")
                    {
                        none if none.is_empty() => "-".to_string(),
                        some => some,
                    },
                    sha[..12].to_string()
                ],
                "{row}"
            );
            assert_eq!(words[6..].join(" "), str_of(&p["origin"]), "{row}");
            let caps: Vec<String> = array(&p["capabilities"])
                .iter()
                .map(|c| {
                    let state = if c["granted"] == true {
                        "granted"
                    } else {
                        "NOT GRANTED"
                    };
                    format!("{} ({state})", str_of(&c["capability"]))
                })
                .collect();
            let shown = lines.next().unwrap().trim().to_string();
            let want = if caps.is_empty() {
                "(none)".to_string()
            } else {
                caps.join(", ")
            };
            assert_eq!(shown, format!("capabilities: {want}"));
        } else {
            assert_eq!(p["status"], "refused");
            assert_eq!(words[1], "REFUSED", "{row}");
            assert_eq!(words[2..].join(" "), str_of(&p["origin"]), "{row}");
            for want in str_of(&p["problem"]).lines() {
                assert_eq!(lines.next().map(str::trim), Some(want.trim()));
            }
        }
    }
    assert_eq!(lines.next(), Some(""));
    let chain: Vec<String> = array(&d["policy_chain"]).iter().map(str_of).collect();
    assert_eq!(
        lines.next().unwrap(),
        format!("policy chain: {}", chain.join(" -> "))
    );
}

/// `plugin verify`'s lines against its document: each check in order, its
/// problem and hint, and the count.
fn verify_matches(text: &str, d: &Value) {
    let mut lines = text.lines();
    for c in array(&d["checks"]) {
        let row = lines
            .next()
            .unwrap_or_else(|| panic!("{c} not shown:\n{text}"));
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(words[1], str_of(&c["name"]), "{row}");
        match (str_of(&c["verdict"]).as_str(), str_of(&c["check"]).as_str()) {
            ("ok", _) => {
                assert_eq!(words[0], "ok", "{row}");
                assert_eq!(words[2], &str_of(&c["sha256"])[..12], "{row}");
                assert_eq!(words[3..].join(" "), str_of(&c["origin"]), "{row}");
            }
            ("refused", "policy") => {
                assert_eq!(words[0], "REFUSED", "{row}");
                assert_eq!(words[2..].join(" "), str_of(&c["problem"]), "{row}");
            }
            ("refused", "plugin") => {
                assert_eq!(words[0], "REFUSED", "{row}");
                assert_eq!(words[2..].join(" "), str_of(&c["origin"]), "{row}");
                let problem = str_of(&c["problem"]);
                let more = problem
                    .lines()
                    .map(str::to_string)
                    .chain(opt_str(&c["hint"]));
                for want in more {
                    assert_eq!(lines.next().map(str::trim), Some(want.trim()));
                }
            }
            other => panic!("unknown check {other:?}: {c}"),
        }
    }
    let summary = lines.next().unwrap();
    let (checked, problems) = (
        d["checked"].as_u64().unwrap(),
        d["problems"].as_u64().unwrap(),
    );
    assert!(
        summary.starts_with(&format!("{checked} pinned plugin")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(", {problems} problem")),
        "{summary}"
    );
    assert_eq!(lines.next(), None, "{text}");
}

#[test]
fn plugin_list_and_verify_in_json_match_their_text() {
    let (bytes, sha) = echo();
    // Pinned and granted: no problem.
    let good = Plugins::new(
        &format!(
            "[plugin.test-echo]\nfile = \"echo.wasm\"\nsha256 = \"{sha}\"\n\
             grants = [\"read-config:barman_server\"]\n"
        ),
        &[("echo.wasm", &bytes)],
    );
    for (args, schema) in [
        (["plugin", "list"], "pgclone/plugin-list@1"),
        (["plugin", "verify"], "pgclone/plugin-verify@1"),
    ] {
        let text = good.run(&args);
        let json = good.run(&[&["--output", "json"], &args[..]].concat());
        assert!(text.status.success(), "{}", stderr(&text));
        assert!(json.status.success(), "{}", stderr(&json));
        let d = document(&json);
        assert_eq!(d["schema"], schema, "{d}");
        assert_eq!(d["result"], "ok");
        assert!(d["error"].is_null());
        match args[1] {
            "list" => {
                list_matches(&stdout(&text), &d);
                let sources: Vec<(String, String)> = array(&d["plugins"])
                    .iter()
                    .map(|p| (str_of(&p["name"]), str_of(&p["source"])))
                    .collect();
                assert!(sources.contains(&("barman".into(), "first-party".into())));
                assert!(sources.contains(&("test-echo".into(), "installed".into())));
            }
            _ => {
                verify_matches(&stdout(&text), &d);
                assert_eq!(
                    (d["checked"].as_u64(), d["problems"].as_u64()),
                    (Some(1), Some(0))
                );
            }
        }
    }

    // Not granted, a file changed since it was pinned, a policy nowhere.
    let bad = Plugins::new(
        &format!(
            "policies = [\"nowhere\"]\n\n[plugin.test-echo]\nfile = \"echo.wasm\"\nsha256 = \"{sha}\"\n\n\
             [plugin.changed]\nfile = \"changed.wasm\"\nsha256 = \"{sha}\"\n"
        ),
        &[("echo.wasm", &bytes), ("changed.wasm", b"not the pinned file")],
    );
    for args in [["plugin", "list"], ["plugin", "verify"]] {
        let text = bad.run(&args);
        let json = bad.run(&[&args[..], &["--output=json"]].concat());
        assert_eq!(text.status.code(), Some(1), "{}", stderr(&text));
        assert_eq!(json.status.code(), Some(1), "{}", stderr(&json));
        let d = document(&json);
        assert_eq!(d["result"], "failed", "{d}");
        assert!(d["error"].is_null(), "a finding, not an error: {d}");
        match args[1] {
            "list" => {
                list_matches(&stdout(&text), &d);
                let echo = array(&d["plugins"])
                    .iter()
                    .find(|p| p["name"] == "test-echo")
                    .unwrap();
                assert_eq!(echo["capabilities"][0]["granted"], false, "{echo}");
                let changed = array(&d["plugins"])
                    .iter()
                    .find(|p| p["name"] == "changed")
                    .unwrap();
                assert_eq!(changed["status"], "refused", "{changed}");
            }
            _ => {
                verify_matches(&stdout(&text), &d);
                assert_eq!(
                    (d["checked"].as_u64(), d["problems"].as_u64()),
                    (Some(2), Some(3))
                );
                let verdicts: Vec<(String, String)> = array(&d["checks"])
                    .iter()
                    .map(|c| (str_of(&c["name"]), str_of(&c["verdict"])))
                    .collect();
                assert!(verdicts.iter().all(|(_, v)| v == "refused"), "{verdicts:?}");
                let changed = array(&d["checks"])
                    .iter()
                    .find(|c| c["name"] == "changed")
                    .unwrap();
                assert!(
                    str_of(&changed["hint"]).contains("plugin install"),
                    "{changed}"
                );
            }
        }
    }

    // An error is a document too, with the text's status, message, detail and hint.
    let missing = Path::new("/nonexistent/plugins.toml");
    let text = good.run_with(missing, &["plugin", "list"]);
    let json = good.run_with(missing, &["plugin", "list", "--output", "json"]);
    assert_eq!(text.status.code(), Some(1));
    assert_eq!(json.status.code(), Some(1));
    let d = document(&json);
    assert_eq!(d["schema"], "pgclone/plugin-list@1");
    assert_eq!(d["result"], "failed");
    let e = &d["error"];
    assert_eq!(
        (
            str_of(&e["message"]),
            opt_str(&e["detail"]),
            opt_str(&e["hint"])
        ),
        error_text(&stderr(&text))
    );
    // A command with no JSON form is a usage error, as a document.
    let out = good.run(&["--output", "json", "plugin", "inspect", "barman"]);
    assert_eq!(out.status.code(), Some(2));
    let d = document(&out);
    assert_eq!(d["schema"], "pgclone/error@1");
    assert!(
        str_of(&d["error"]["message"]).contains("no JSON form"),
        "{d}"
    );
}
