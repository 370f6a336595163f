//! Conformance cases for a backup source: valid and hostile clone requests
//! and backups (plans validated as a clone's are), valid and malicious WAL
//! names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{judge, param, Report, Verdict};
use crate::clone::steps;
use crate::contract::capability::Capability;
use crate::contract::source::{
    Backup, BackupFormat, BackupSource, CloneRequest, NodeIdentity, PlanStep, Tablespace,
    WalArchive, WalLocation,
};
use crate::environment::HostEnv;
use crate::plugin::{Plugin, Runtime};

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
        placed_tablespaces: Vec::new(),
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
        placed_tablespaces: Vec::new(),
    }
}

fn backup(id: &str, tablespace_location: &str, oid: u32) -> Backup {
    Backup {
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

pub fn cases(rt: &Runtime, env: &Arc<HostEnv>, p: &Plugin, report: &mut Report) {
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

    if let Some(mut s) = session(report, "locate-wal-archive") {
        if let Some(answer) = judge(report, "locate-wal-archive", s.wal_archive()) {
            judge_wal_archive(report, p, answer);
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

/// `locate-wal-archive`: would a host accept the answer, were the plugin's
/// declared capabilities granted?
fn judge_wal_archive(report: &mut Report, p: &Plugin, answer: WalArchive) {
    let case = "locate-wal-archive";
    let caps = crate::contract::capability::CapabilitySet {
        declared: p.caps.declared.clone(),
        granted: p.caps.declared.clone(),
    };
    let wal = p.provides_wal();
    match crate::walrestore::archive::from_plugin(&p.name, &caps, answer) {
        Err(e) => report.add(
            Verdict::Fail,
            case,
            format!("a host would refuse it: {}", e.into_failure()),
        ),
        Ok(a) if !wal && !a.per_name => report.add(
            Verdict::Warn,
            case,
            "it describes WAL, but `provides` lacks wal: wal-restore refuses the plugin",
        ),
        Ok(a) => {
            let what = match (&a.directory, &a.fetch) {
                (Some(d), _) => format!("a directory on target {}: {}", d.target, d.path),
                (None, Some(f)) => format!("fetched with {}", f.argv[0]),
                (None, None) if wal => "asked per file (locate-wal)".to_string(),
                (None, None) => "no WAL".to_string(),
            };
            report.add(Verdict::Ok, case, what)
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
    let validation = steps::Validation {
        plugin: &p.name,
        caps: &p.caps,
        env,
        datadir: data,
        tablespaces,
        staging: None,
    };
    match validation.plan(plan) {
        Ok(v) => report.add(
            Verdict::Ok,
            case,
            format!(
                "a plan of {}, every one accepted",
                crate::report::count(v.len(), "step", "steps")
            ),
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
