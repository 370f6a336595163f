//! `pgclone plugin`: list, inspect, check and test (the conformance run);
//! install and verify are in `plugin_install.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

use pgclone::config::PluginsConfig;
use pgclone::plugin::cache;
use pgclone::plugin::catalog::{self, Candidate};
use pgclone::plugin::{Plugin, Runtime};
use pgclone::report::{escape, escape_text, Failure};

use super::Context;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// List every plugin: built-in ones and those pinned in plugins.toml, with
    /// contract version, what they provide, capabilities and whether each is
    /// granted.
    List,
    /// Show everything about one plugin, by name or by file.
    Inspect {
        /// A plugin name (as in `plugin list`) or the path of a .wasm file.
        plugin: String,
    },
    /// Load a component file, call its describe() and report whether this
    /// pgclone would accept it (contract version, capabilities, grants).
    /// Nothing is installed or changed.
    Check {
        /// The component (.wasm) to check.
        path: PathBuf,
    },
    /// Install a site or vendor plugin: review it, pin it, record your grants.
    ///
    /// Shows who the plugin is and every capability it requests (read from
    /// its manifest, before anything of it runs), checks that this pgclone
    /// accepts it, copies it into the plugin directory
    /// (plugin_dir, by default plugins/ beside plugins.toml) as NAME-SHA.wasm,
    /// and pin its sha256 and your grants in plugins.toml. Installing again
    /// (a new version) replaces the file, the pin and the grants.
    ///
    /// Grants: --grant for each capability, --grant-all for everything it
    /// requests, or answer the questions on a terminal. Anything not granted
    /// makes pgclone refuse the plugin until it is.
    ///
    /// A recovery policy runs only once it is in the chain (--chain, or
    /// `policies` in plugins.toml); a backup source once `backup_source=NAME`
    /// is set in pgclone's configuration.
    Install {
        /// The component (.wasm) to install.
        file: PathBuf,
        /// Grant one capability, written as in plugins.toml (e.g.
        /// local-run:pgbackrest); repeat for more.
        #[arg(long = "grant", value_name = "CAPABILITY")]
        grants: Vec<String>,
        /// Grant every capability the plugin requests.
        #[arg(long, conflicts_with = "grants")]
        grant_all: bool,
        /// For a recovery policy: add it to the chain (`policies`), after the
        /// standard policy and the site policies already there.
        #[arg(long)]
        chain: bool,
    },
    /// Check every pinned plugin; exit status 1 when any would be refused.
    ///
    /// For each: file present and unchanged, contract supported, describe()
    /// matching its manifest, every requested capability granted. What is
    /// wrong is said with what to do.
    Verify,
    /// Conformance run for plugin authors: what would a host refuse?
    ///
    /// Loads the component as a clone would (contract version, manifest
    /// against describe()), grants it every capability it requests (no
    /// program is run: each such call gets an `unreachable` error) and calls
    /// every export with valid and hostile inputs. Prints one line per check
    /// (ok, WARN or FAIL) and a summary; the exit status is 1 when any check
    /// fails.
    ///
    /// A recovery policy is chained after the standard one for PostgreSQL 11
    /// to 17, with every optional fact set, for several node names, and with
    /// malicious facts. A backup source gets valid and hostile clone requests
    /// and backups (its plans are validated as a clone's are) and valid and
    /// malicious WAL names. An error the plugin returns is an allowed answer;
    /// a panic, a timeout, running out of memory, an undeclared capability or
    /// an answer the host cannot accept is a failure. plugins.toml is not
    /// read: the plugin is judged on its own.
    Test {
        /// The component (.wasm) to test.
        file: PathBuf,
        /// The configuration values the plugin sees (a file in repmgr.conf
        /// syntax). Without it, every key the plugin may read is
        /// `conformance-test`.
        #[arg(long, value_name = "FILE")]
        with_config: Option<PathBuf>,
    },
}

pub fn run(ctx: &Context, cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    let conf = ctx.config()?;
    let toml_path = ctx.plugins_path(&conf);
    // `install` creates the file when there is none yet; `test` judges a file
    // on its own.
    let plugins = match (&cmd, toml_path.exists()) {
        (PluginCommand::Install { .. }, false) => PluginsConfig {
            source: Some(toml_path.clone()),
            ..Default::default()
        },
        (PluginCommand::Test { .. }, _) => PluginsConfig::default(),
        _ => ctx.plugins(&conf)?,
    };
    let rt = Runtime::new(cache::default_dir().as_deref())?;
    match cmd {
        PluginCommand::List => list(&rt, &plugins),
        PluginCommand::Inspect { plugin } => inspect(&rt, &plugins, &plugin),
        PluginCommand::Check { path } => check(&rt, &plugins, path),
        PluginCommand::Install {
            file,
            grants,
            grant_all,
            chain,
        } => super::plugin_install::install(
            &rt,
            &plugins,
            &toml_path,
            &super::plugin_install::InstallOptions {
                file,
                grants,
                grant_all,
                chain,
            },
        ),
        PluginCommand::Verify => super::plugin_install::verify(&rt, &plugins),
        PluginCommand::Test { file, with_config } => conformance(&rt, &file, with_config),
    }
}

/// A capability a plugin requests, and whether it is granted.
#[derive(Serialize)]
pub struct CapabilityView {
    pub capability: String,
    pub granted: bool,
}

fn capabilities(p: &Plugin) -> Vec<CapabilityView> {
    p.caps
        .declared
        .iter()
        .map(|c| CapabilityView {
            capability: c.to_string(),
            granted: p.caps.granted.contains(c),
        })
        .collect()
}

fn capability_lines(caps: &[CapabilityView]) -> Vec<String> {
    if caps.is_empty() {
        return vec!["(none)".into()];
    }
    caps.iter()
        .map(|c| {
            let state = if c.granted { "granted" } else { "NOT GRANTED" };
            format!("{} ({state})", c.capability)
        })
        .collect()
}

/// `plugin list`: the values its text and its JSON are rendered from.
#[derive(Serialize)]
struct ListView {
    plugins: Vec<Listed>,
    /// The recovery policies, in the order they run.
    policy_chain: Vec<String>,
    /// Plugin files in the plugin directory that plugins.toml does not name.
    ignored: Vec<Ignored>,
}

/// One plugin of `plugin list`.
#[derive(Serialize)]
struct Listed {
    name: String,
    /// ok, or refused (a clone would not load it).
    status: &'static str,
    /// first-party (built into pgclone) or installed (named in plugins.toml).
    source: &'static str,
    /// "built in", or the file.
    origin: String,
    version: Option<String>,
    /// The contract version it was built against (1.3.0).
    contract: Option<String>,
    /// source or policy.
    kind: Option<String>,
    /// base-backup, wal (a source); empty for a policy or when refused.
    provides: Vec<&'static str>,
    sha256: Option<String>,
    capabilities: Vec<CapabilityView>,
    /// Why it is refused.
    problem: Option<String>,
}

#[derive(Serialize)]
struct Ignored {
    path: String,
    hint: String,
}

fn list_view(rt: &Runtime, cfg: &PluginsConfig) -> ListView {
    let plugins = catalog::candidates(cfg)
        .into_iter()
        .map(|cand| {
            let source = if cand.is_embedded() {
                "first-party"
            } else {
                "installed"
            };
            match Plugin::load(rt, &cand) {
                Ok(p) => Listed {
                    name: p.name.clone(),
                    status: "ok",
                    source,
                    origin: p.origin.to_string(),
                    version: Some(p.info.version.clone()),
                    contract: Some(p.contract.version.to_string()),
                    kind: Some(p.contract.kind.to_string()),
                    provides: p.provides(),
                    sha256: Some(p.sha256.clone()),
                    capabilities: capabilities(&p),
                    problem: None,
                },
                Err(e) => Listed {
                    name: cand.name.clone(),
                    status: "refused",
                    source,
                    origin: cand.origin.to_string(),
                    version: None,
                    contract: None,
                    kind: None,
                    provides: Vec::new(),
                    sha256: None,
                    capabilities: Vec::new(),
                    problem: Some(e.to_string()),
                },
            }
        })
        .collect();
    let policy_chain = std::iter::once("recovery-standard".to_string())
        .chain(cfg.policies.iter().cloned())
        .collect();
    let ignored = catalog::unpinned_files(cfg)
        .into_iter()
        .map(|path| Ignored {
            hint: format!(
                "not named in plugins.toml; see `{}`",
                pgclone::invocation::command(&format!(
                    "plugin check {}",
                    shell_words::quote(&path.to_string_lossy())
                ))
            ),
            path: path.to_string_lossy().into_owned(),
        })
        .collect();
    ListView {
        plugins,
        policy_chain,
        ignored,
    }
}

fn list(rt: &Runtime, cfg: &PluginsConfig) -> anyhow::Result<ExitCode> {
    let view = list_view(rt, cfg);
    let refused = view.plugins.iter().filter(|p| p.status != "ok").count();
    if pgclone::output::json() {
        pgclone::output::put_fields(&view);
    } else {
        print_list(&view);
    }
    Ok(if refused > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_list(view: &ListView) {
    println!(
        "{:<20} {:<8} {:<9} {:<16} {:<16} {:<12} ORIGIN",
        "NAME", "VERSION", "CONTRACT", "KIND", "PROVIDES", "SHA256"
    );
    let or_empty = |v: &Option<String>| v.clone().unwrap_or_default();
    for p in &view.plugins {
        match &p.problem {
            None => {
                println!(
                    "{:<20} {:<8} {:<9} {:<16} {:<16} {:<12} {}",
                    p.name,
                    escape(&or_empty(&p.version)),
                    or_empty(&p.contract),
                    or_empty(&p.kind),
                    if p.provides.is_empty() {
                        "-".to_string()
                    } else {
                        p.provides.join(",")
                    },
                    &or_empty(&p.sha256)[..12],
                    p.origin
                );
                println!(
                    "    capabilities: {}",
                    capability_lines(&p.capabilities).join(", ")
                );
            }
            Some(problem) => {
                println!("{:<20} REFUSED  {}", p.name, p.origin);
                for line in problem.lines() {
                    println!("    {line}");
                }
            }
        }
    }
    println!("\npolicy chain: {}", view.policy_chain.join(" -> "));
    for i in &view.ignored {
        println!("{:<20} IGNORED  {}", "-", i.path);
        println!("    {}", i.hint);
    }
}

fn show(p: &Plugin) {
    println!("name:         {}", p.name);
    // Everything but the name (checked to be a plain word) is the plugin's own
    // text.
    println!("version:      {}", escape(&p.info.version));
    println!("vendor:       {}", escape(&p.info.vendor));
    println!("license:      {}", escape(&p.info.license));
    println!("description:  {}", escape(&p.info.description));
    println!("kind:         {}", p.contract.kind);
    println!("contract:     pgclone:plugin@{}", p.contract.version);
    println!("provides:     {}", p.provides_text());
    println!(
        "upstream:     {}",
        if p.needs_upstream() {
            "needed"
        } else {
            "not needed"
        }
    );
    println!("origin:       {}", p.origin);
    println!("sha256:       {}", p.sha256);
    println!(
        "manifest:     {}",
        if p.manifest.is_some() {
            "yes (identity and capabilities readable without running the plugin)"
        } else {
            "none (built without the SDK's manifest!)"
        }
    );
    println!("capabilities:");
    for line in capability_lines(&capabilities(p)) {
        println!("  {line}");
    }
    if p.contract.kind == pgclone::plugin::version::PluginKind::Policy {
        println!("\n{}", super::plugin_install::policy_power());
    }
}

fn inspect(rt: &Runtime, cfg: &PluginsConfig, what: &str) -> anyhow::Result<ExitCode> {
    let cand = match catalog::candidates(cfg)
        .into_iter()
        .find(|c| c.name == what || c.name == catalog::canonical(what))
    {
        Some(c) => c,
        None if std::path::Path::new(what).exists() => {
            return check(rt, cfg, PathBuf::from(what));
        }
        None => {
            let names: Vec<String> = catalog::candidates(cfg)
                .into_iter()
                .map(|c| c.name)
                .collect();
            return Err(Failure::new(format!("no plugin named \"{what}\""))
                .detail(format!("known plugins: {}", names.join(", ")))
                .hint(format!(
                    "give a name from `{}` or the path of a .wasm file",
                    pgclone::invocation::command("plugin list")
                ))
                .into());
        }
    };
    let p = Plugin::load(rt, &cand)?;
    show(&p);
    Ok(ExitCode::SUCCESS)
}

fn check(rt: &Runtime, cfg: &PluginsConfig, path: PathBuf) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&path).map_err(|e| {
        Failure::new(format!("could not read \"{}\"", path.display())).detail(e.to_string())
    })?;
    let sha = catalog::sha256_hex(&bytes);
    // The file is checked against itself: `check` is how an operator learns
    // what a plugin is before pinning it. Its name comes from describe().
    let mut p = Plugin::load(rt, &Candidate::from_file("", path, Some(sha)))?;
    p.caps.granted = cfg.grants_for(&p.name).unwrap_or_default();
    show(&p);
    match p.ensure_granted() {
        Ok(()) => println!(
            "\nOK: this pgclone accepts the plugin, and every capability it requests is granted"
        ),
        Err(e) => println!(
            "\nOK: this pgclone can load the plugin, but it would be refused until granted:\n{e}"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn conformance(
    rt: &Runtime,
    file: &std::path::Path,
    with_config: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    use pgclone::conformance::{self, Verdict};
    let config = match with_config {
        Some(p) => Some(pgclone::config::ConfFile::load(&p)?),
        None => None,
    };
    let report = conformance::run(rt, file, config)?;
    for f in &report.findings {
        let v = match f.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        };
        println!("{v}  {:<44} {}", escape(&f.case), escape_text(&f.what));
    }
    let failed = report.failures();
    println!(
        "\n{}: {}, {failed} failed",
        if report.plugin.is_empty() {
            file.display().to_string()
        } else {
            escape(&report.plugin).into_owned()
        },
        pgclone::report::count(report.findings.len(), "check", "checks")
    );
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
