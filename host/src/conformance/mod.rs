//! `pgclone plugin test`: a conformance run a vendor uses before shipping.
//! Every export is called with valid and with hostile inputs, in the same
//! sandbox as in production but with every requested capability granted and
//! no program actually run; what a host would refuse is reported.

mod policy;
mod source;

use std::path::Path;
use std::sync::Arc;

use crate::config::ConfFile;
use crate::contract::source::ConnParam;
use crate::contract::Capability;
use crate::contract::PluginFailure;
use crate::environment::HostEnv;
use crate::plugin::catalog::{self, Candidate};
use crate::plugin::version::PluginKind;
use crate::plugin::{Plugin, Runtime};

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
    match crate::plugin::manifest::read(&bytes) {
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
            "{} {}, pgclone:plugin@{} {}, {}",
            plugin.name,
            plugin.info.version,
            plugin.contract.version,
            plugin.contract.kind,
            crate::report::count(plugin.caps.declared.len(), "capability", "capabilities")
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
        PluginKind::Source => source::cases(rt, &env, &plugin, &mut report),
        PluginKind::Policy => policy::cases(rt, &env, &plugin, &mut report),
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
