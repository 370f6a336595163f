//! `pgclone plugin test`: a conformance run a vendor uses before shipping.
//! Every export is called with valid and with hostile inputs, in the same
//! sandbox as in production but with every requested capability granted and
//! no program actually run; what a host would refuse is reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bindings::policy_api::RecoveryFacts;
use super::bindings::types::{
    BackupDescription, BackupFormat, CloneRequest, ConnParam, NodeIdentity, PlanStep, Tablespace,
    WalLocation,
};
use super::capability::Capability;
use super::catalog::{self, Candidate};
use super::contract::PluginKind;
use super::{HostEnv, Plugin, PluginFailure, Runtime};
use crate::clone::steps;
use crate::config::ConfFile;

/// The verdict on one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// As a host expects.
    Ok,
    /// Allowed, but worth the vendor's attention.
    Warn,
    /// A host would refuse this.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Finding {
    pub verdict: Verdict,
    pub case: String,
    pub what: String,
}

/// The whole report.
#[derive(Debug, Default)]
pub struct Report {
    pub plugin: String,
    pub findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, verdict: Verdict, case: impl Into<String>, what: impl Into<String>) {
        let mut what: String = what.into();
        if what.chars().count() > 300 {
            what = what.chars().take(300).collect::<String>() + "...";
        }
        self.findings.push(Finding {
            verdict,
            case: case.into(),
            what,
        });
    }

    pub fn failures(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.verdict == Verdict::Fail)
            .count()
    }
}

fn param(k: &str, v: &str) -> ConnParam {
    ConnParam {
        key: k.into(),
        value: v.into(),
    }
}

/// What a plugin call's failure means here: the plugin's own error is an
/// allowed answer (with a well-formed message); anything else is a failure.
fn judge<T>(report: &mut Report, case: &str, r: Result<T, PluginFailure>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(PluginFailure::Returned { error, .. }) => {
            if error.message.trim().is_empty() || error.message.contains('\n') {
                report.add(
                    Verdict::Fail,
                    case,
                    "returned an error whose message is empty or not one line",
                );
            } else {
                report.add(
                    Verdict::Ok,
                    case,
                    format!("returned an error ({:?}): {}", error.kind, error.message),
                );
            }
            None
        }
        Err(e) => {
            report.add(Verdict::Fail, case, e.to_string().replace('\n', " | "));
            None
        }
    }
}

/// Loads `file` (pinned to itself, every requested capability granted) and
/// runs every case. `config` is what the plugin's configuration reads see;
/// without one, every key it may read is set to `conformance-test`.
pub fn run(rt: &Runtime, file: &Path, config: Option<ConfFile>) -> anyhow::Result<Report> {
    let bytes = std::fs::read(file).map_err(|e| {
        crate::report::Failure::new(format!("could not read \"{}\"", file.display()))
            .detail(e.to_string())
    })?;
    let sha = catalog::sha256_hex(&bytes);
    let mut report = Report::default();
    match super::manifest::read(&bytes) {
        Ok(Some(_)) => report.add(Verdict::Ok, "manifest", "present: identity readable without running the plugin"),
        Ok(None) => report.add(Verdict::Warn, "manifest", "none: operators must run describe() to learn who the plugin is (use the SDK's manifest!)"),
        Err(e) => report.add(Verdict::Fail, "manifest", e),
    }
    let mut plugin =
        match Plugin::load(rt, &Candidate::from_file("", file.to_path_buf(), Some(sha))) {
            Ok(p) => p,
            Err(e) => {
                report.add(Verdict::Fail, "load", e.to_string().replace('\n', " | "));
                return Ok(report);
            }
        };
    report.plugin = plugin.name.clone();
    plugin.caps.granted = plugin.caps.declared.clone();
    report.add(
        Verdict::Ok,
        "load",
        format!(
            "{} {}, pgclone:plugin@{} {}, {} capabilities",
            plugin.name,
            plugin.info.version,
            plugin.contract.version,
            plugin.contract.kind,
            plugin.caps.declared.len()
        ),
    );
    check_identity(&mut report, &plugin);

    let config = match config {
        Some(c) => c,
        None => {
            let text: String = plugin
                .caps
                .declared
                .iter()
                .filter_map(|c| match c {
                    Capability::ReadConfig(k) => Some(format!("{k}='conformance-test'\n")),
                    _ => None,
                })
                .collect();
            ConfFile::parse(Path::new("(conformance test)"), &text)?
        }
    };
    let mut env = HostEnv {
        no_programs: true,
        config,
        ..Default::default()
    };
    for c in &plugin.caps.declared {
        if let Capability::RemoteRun { target, .. } = c {
            env.targets
                .insert(target.clone(), "conformance.invalid".into());
        }
    }
    let env = Arc::new(env);
    match plugin.contract.kind {
        PluginKind::Source => source_cases(rt, &env, &plugin, &mut report),
        PluginKind::Policy => policy_cases(rt, &env, &plugin, &mut report),
    }
    Ok(report)
}

fn check_identity(report: &mut Report, p: &Plugin) {
    let semver = {
        let core = p.info.version.split(['-', '+']).next().unwrap_or("");
        let parts: Vec<&str> = core.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|x| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit()))
    };
    let mut problems = Vec::new();
    if !semver {
        problems.push(format!(
            "version \"{}\" is not semver (MAJOR.MINOR.PATCH)",
            p.info.version
        ));
    }
    for (what, v) in [
        ("vendor", &p.info.vendor),
        ("license", &p.info.license),
        ("description", &p.info.description),
    ] {
        if v.trim().is_empty() {
            problems.push(format!("{what} is empty"));
        } else if v.contains('\n') {
            problems.push(format!("{what} is not one line"));
        }
    }
    if problems.is_empty() {
        report.add(
            Verdict::Ok,
            "describe",
            "name, version, vendor, license and description are well formed",
        );
    } else {
        report.add(Verdict::Fail, "describe", problems.join("; "));
    }
}

fn request(data_dir: &Path) -> CloneRequest {
    CloneRequest {
        node: NodeIdentity {
            node_id: Some(2),
            node_name: "node2".into(),
        },
        data_directory: data_dir.display().to_string(),
        upstream: vec![
            param("host", "primary.invalid"),
            param("port", "5432"),
            param("user", "repmgr"),
        ],
        replication_user: None,
        upstream_version: Some(150004),
        upstream_system_identifier: Some("7000000000000000001".into()),
        upstream_tablespaces: vec![Tablespace {
            oid: 16385,
            name: "ts".into(),
            location: "/srv/ts".into(),
        }],
        backup_id: None,
        fast_checkpoint: false,
        slot_name: Some("repmgr_slot_2".into()),
        interactive: false,
    }
}

fn hostile_request() -> CloneRequest {
    CloneRequest {
        node: NodeIdentity {
            node_id: None,
            node_name: "x'; DROP TABLE t; --\n".into(),
        },
        data_directory: "/tmp/../../etc".into(),
        upstream: vec![param("host", "$(touch /tmp/pwned)"), param("", "")],
        replication_user: Some("-oProxyCommand=touch /tmp/pwned".into()),
        upstream_version: Some(0),
        upstream_system_identifier: Some("not a number".into()),
        upstream_tablespaces: vec![Tablespace {
            oid: 0,
            name: "../..".into(),
            location: "relative/../../path".into(),
        }],
        backup_id: Some("../../../../etc/passwd".into()),
        fast_checkpoint: true,
        slot_name: Some("a'b".into()),
        interactive: true,
    }
}

fn backup(id: &str, tablespace_location: &str, oid: u32) -> BackupDescription {
    BackupDescription {
        id: id.into(),
        system_identifier: "7000000000000000001".into(),
        server_version: 150004,
        timeline: 1,
        begin_wal: "000000010000000000000004".into(),
        end_wal: "000000010000000000000004".into(),
        begin_lsn: "0/4000028".into(),
        end_lsn: "0/4000100".into(),
        size_bytes: 0,
        tablespaces: vec![Tablespace {
            oid,
            name: "ts".into(),
            location: tablespace_location.into(),
        }],
        format: BackupFormat::Plain,
        compression: None,
    }
}

fn source_cases(rt: &Runtime, env: &Arc<HostEnv>, p: &Plugin, report: &mut Report) {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let data = scratch.path().join("data");
    let tablespaces: BTreeMap<u32, PathBuf> = [
        (16385, scratch.path().join("ts")),
        (0, scratch.path().join("ts0")),
    ]
    .into();
    let session = |report: &mut Report, case: &str| match p.session(rt, env.clone()) {
        Ok(s) => Some(s),
        Err(e) => {
            report.add(Verdict::Fail, case, e.to_string());
            None
        }
    };

    for (case, req) in [
        ("check (valid request)", request(&data)),
        ("check (hostile request)", hostile_request()),
    ] {
        if let Some(mut s) = session(report, case) {
            if let Some(b) = judge(report, case, s.check(&req)) {
                let wal_ok =
                    b.begin_wal.len() == 24 && b.begin_wal.chars().all(|c| c.is_ascii_hexdigit());
                if b.system_identifier.parse::<u64>().is_err() || !wal_ok {
                    report.add(
                        Verdict::Fail,
                        case,
                        "the backup description's system identifier or begin WAL is malformed",
                    );
                } else {
                    report.add(Verdict::Ok, case, format!("described backup \"{}\"", b.id));
                }
            }
        }
    }

    let cases = [
        (
            "plan-clone (valid backup)",
            request(&data),
            backup("20260101T000000", "/srv/ts", 16385),
        ),
        (
            "plan-clone (hostile backup)",
            hostile_request(),
            backup("../../x", "/etc", 0),
        ),
    ];
    for (case, req, b) in cases {
        let Some(mut s) = session(report, case) else {
            continue;
        };
        if let Some(plan) = judge(report, case, s.plan_clone(&req, &b)) {
            judge_plan(report, case, p, env, &plan, &data, &tablespaces);
        }
    }

    let long = "A".repeat(4096);
    for name in [
        "000000010000000000000004",
        "00000002.history",
        "000000010000000000000004.partial",
        "../../../etc/passwd",
        "",
        long.as_str(),
        "000000010000000000000004;rm -rf /",
    ] {
        let case = format!(
            "locate-wal ({})",
            if name.len() > 40 {
                "4096 characters"
            } else {
                name
            }
        );
        let Some(mut s) = session(report, &case) else {
            continue;
        };
        if let Some(loc) = judge(report, &case, s.wal_location(name)) {
            match loc {
                WalLocation::Unavailable => report.add(Verdict::Ok, &case, "unavailable"),
                WalLocation::RemoteFile(f) => {
                    let plain = f.path.starts_with('/') && !f.path.split('/').any(|c| c == "..");
                    let declared = p.caps.declared.iter().any(|c| matches!(c, Capability::RemoteRun { target, .. } if *target == f.target));
                    if plain && declared {
                        report.add(Verdict::Ok, &case, format!("{}:{}", f.target, f.path));
                    } else {
                        report.add(Verdict::Fail, &case, format!("a host would refuse {}:{} (path not absolute and plain, or target not declared)", f.target, f.path));
                    }
                }
                WalLocation::RemoteCommand(c) => {
                    let cap = Capability::RemoteRun {
                        target: c.target.clone(),
                        program: c.argv.first().cloned().unwrap_or_default(),
                    };
                    if p.caps.declared.contains(&cap) {
                        report.add(Verdict::Ok, &case, format!("runs {cap}"));
                    } else {
                        report.add(
                            Verdict::Fail,
                            &case,
                            format!("a host would refuse it: {cap} is not declared"),
                        );
                    }
                }
            }
        }
    }
}

fn judge_plan(
    report: &mut Report,
    case: &str,
    p: &Plugin,
    env: &HostEnv,
    plan: &[PlanStep],
    data: &Path,
    tablespaces: &BTreeMap<u32, PathBuf>,
) {
    // Programs are resolved on this machine: one missing here is not the plugin's fault.
    let missing: Vec<&str> = plan
        .iter()
        .filter_map(|s| match s {
            PlanStep::RunLocal(r) if env.find_program(&r.program).is_none() => {
                Some(r.program.as_str())
            }
            _ => None,
        })
        .collect();
    match steps::validate(p, env, plan, data, tablespaces) {
        Ok(v) => report.add(
            Verdict::Ok,
            case,
            format!("a plan of {} steps, every one accepted", v.len()),
        ),
        Err(e) if !missing.is_empty() && crate::report::render(&e).contains("not found") => report
            .add(
                Verdict::Warn,
                case,
                format!(
                    "plans to run {} (not installed here; the rest was not checked)",
                    missing.join(", ")
                ),
            ),
        Err(e) => report.add(
            Verdict::Fail,
            case,
            format!(
                "a host would refuse this plan: {}",
                crate::report::render(&e)
                    .replacen("ERROR: ", "", 1)
                    .replace('\n', " | ")
            ),
        ),
    }
}

/// Valid facts with every optional one set, for node `node`: a policy that
/// adds a setting the standard policy already set is caught here.
fn full_facts(version: u32, node: &str) -> RecoveryFacts {
    RecoveryFacts {
        node_name: node.into(),
        replication_user: Some("repl".into()),
        restore_command: Some("pgclone wal-restore backup main %f %p".into()),
        recovery_min_apply_delay: Some("5min".into()),
        archive_cleanup_command: Some("pg_archivecleanup /srv/archive %r".into()),
        passfile: Some("/var/lib/postgresql/.pgpass".into()),
        password: Some("secret".into()),
        ..facts(version, false)
    }
}

fn facts(version: u32, hostile: bool) -> RecoveryFacts {
    if hostile {
        return RecoveryFacts {
            server_version: version,
            node_name: "n'\n; archive_command = 'rm -rf /'".into(),
            upstream: Vec::new(),
            replication_user: Some("\\'".into()),
            slot_name: Some("".into()),
            restore_command: Some("cp %f %p\nrecovery_target = 'immediate'".into()),
            recovery_min_apply_delay: Some("forever".into()),
            archive_cleanup_command: None,
            passfile: Some("../../etc/shadow".into()),
            password: Some("secret".into()),
        };
    }
    RecoveryFacts {
        server_version: version,
        node_name: "node2".into(),
        upstream: vec![
            param("host", "primary.example"),
            param("port", "5432"),
            param("user", "repmgr"),
            param("sslmode", "verify-full"),
        ],
        replication_user: None,
        slot_name: Some("repmgr_slot_2".into()),
        restore_command: None,
        recovery_min_apply_delay: None,
        archive_cleanup_command: None,
        passfile: None,
        password: None,
    }
}

fn policy_cases(rt: &Runtime, env: &Arc<HostEnv>, p: &Plugin, report: &mut Report) {
    // Chained after the standard policy, as in a clone.
    let standard = catalog::candidates(&Default::default())
        .into_iter()
        .find(|c| c.name == "recovery-standard")
        .and_then(|c| Plugin::load(rt, &c).ok());
    let mut cases: Vec<(String, RecoveryFacts)> = Vec::new();
    for version in [110000, 120000, 130000, 140000, 150004, 160000, 170000] {
        cases.push((
            format!("PostgreSQL {}", version / 10000),
            facts(version, false),
        ));
    }
    // Every optional fact set, and node names of the kinds policies match on.
    for node in ["node2", "dr-1", "report-1", "standby-east-1", "n"] {
        for version in [110000, 150004] {
            cases.push((
                format!("PostgreSQL {}, all facts, node {node}", version / 10000),
                full_facts(version, node),
            ));
        }
    }
    cases.push(("PostgreSQL 15, hostile facts".into(), facts(150004, true)));
    cases.push(("PostgreSQL 0, hostile facts".into(), facts(0, true)));
    for (label, f) in cases {
        let case = format!("recovery-settings ({label})");
        let mut chain: Vec<&Plugin> = standard.iter().collect();
        chain.push(p);
        // The standard policy may refuse hostile facts itself: then the plugin
        // is called on its own, with an empty configuration.
        let r = match crate::recovery::chain::decide(rt, env.clone(), &chain, &f) {
            Err(PluginFailure::Returned { plugin, .. }) if plugin != p.name => {
                crate::recovery::chain::decide(rt, env.clone(), &[p], &f)
            }
            other => other,
        };
        if let Some(c) = judge(report, &case, r) {
            report.add(
                Verdict::Ok,
                &case,
                format!("{} settings, accepted", c.settings.len()),
            );
        }
    }
}
