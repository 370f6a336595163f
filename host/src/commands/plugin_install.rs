//! `pgclone plugin install` and `pgclone plugin verify`: pinning a plugin and
//! the operator's grants in plugins.toml, and checking every pin later.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pgclone::config::PluginsConfig;
use pgclone::contract::capability::Capability;
use pgclone::plugin::catalog::{self, Candidate, Origin};
use pgclone::plugin::manifest;
use pgclone::plugin::version::PluginKind;
use pgclone::plugin::{Plugin, Runtime};
use pgclone::report::{escape, Failure};
use serde::Serialize;

/// What `plugin install` was asked.
pub struct InstallOptions {
    pub file: PathBuf,
    pub grants: Vec<String>,
    pub grant_all: bool,
    pub chain: bool,
}

fn read_plugin(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Failure::new(format!("could not read \"{}\"", path.display()))
            .detail(e.to_string())
            .into()
    })
}

/// Shows the manifest, which is read without running anything of the plugin.
fn show_manifest(m: &manifest::Manifest, sha: &str) {
    // The manifest is the plugin's own text: escaped, so that it cannot hide
    // the lines below (or the grant questions) from the operator.
    println!("plugin:       {} {}", escape(&m.name), escape(&m.version));
    println!("vendor:       {}", escape(&m.vendor));
    println!("license:      {}", escape(&m.license));
    println!("description:  {}", escape(&m.description));
    println!("sha256:       {sha}");
    println!("requests:");
    if m.capabilities.is_empty() {
        println!("  nothing: it cannot run programs or read configuration");
    }
    for c in &m.capabilities {
        println!("  {:<36} {}", c.to_string(), explain(c));
    }
}

/// What a capability lets a plugin do, in words.
fn explain(c: &Capability) -> String {
    match c {
        Capability::RemoteRun { target, program } => {
            format!("run \"{program}\" over ssh on the host mapped to \"{target}\"")
        }
        Capability::LocalRun(p) => format!("run \"{p}\" on this host (no shell)"),
        Capability::ReadConfig(k) => format!("read the configuration key \"{k}\""),
        Capability::StoreRead { store, prefix } if prefix.is_empty() => {
            format!("list and read every object of the store \"{store}\" (never its credentials)")
        }
        Capability::StoreRead { store, prefix } => format!(
            "list and read the objects under \"{prefix}\" of the store \"{store}\" (never its credentials)"
        ),
    }
}

/// What a recovery policy can do without any capability, said before the
/// operator grants or chains it.
pub fn policy_power() -> String {
    format!(
        "NOTE: a recovery policy needs no capability to make PostgreSQL run commands: its \
         settings may include {} (run by the server as its operating-system user, e.g. \
         postgres). Review what it sets: `{}` shows the settings, \
         and a clone names each command a site or vendor policy sets.",
        pgclone::recovery::chain::COMMAND_SETTINGS.join(", "),
        pgclone::invocation::command("standby clone --dry-run")
    )
}

/// Asks on the terminal whether to grant `c`.
fn ask(c: &Capability) -> bool {
    eprint!("grant {c}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
}

/// The nearest existing directory at or above `p`.
fn existing_dir(p: &Path) -> PathBuf {
    p.ancestors()
        .find(|a| a.is_dir())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// Refuses an install that could not be written, before the review: the
/// plugins.toml (or the directory it would be created in) and the plugin
/// directory must be writable by this user.
fn check_writable(toml_path: &Path, plugin_dir: &Path) -> anyhow::Result<()> {
    let writable = |p: &Path| {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap_or_default();
        unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
    };
    let toml_target = if toml_path.exists() {
        toml_path.to_path_buf()
    } else {
        existing_dir(toml_path)
    };
    for (what, p) in [
        ("the plugin configuration", toml_target),
        ("the plugin directory", existing_dir(plugin_dir)),
    ] {
        if !writable(&p) {
            return Err(Failure::new(format!(
                "cannot install: {what} \"{}\" is not writable by this user",
                p.display()
            ))
            .detail(format!(
                "plugins.toml: {}; plugin directory: {}",
                toml_path.display(),
                plugin_dir.display()
            ))
            .hint(
                "run the install as the user who owns them (e.g. with sudo), or keep your own with --plugins-config FILE (its plugins go into a plugins directory beside it)",
            )
            .into());
        }
    }
    Ok(())
}

pub fn install(
    rt: &Runtime,
    cfg: &PluginsConfig,
    toml_path: &Path,
    o: &InstallOptions,
) -> anyhow::Result<ExitCode> {
    let plugin_dir = cfg
        .plugin_dir()
        .unwrap_or_else(|| toml_path.parent().unwrap_or(Path::new(".")).join("plugins"));
    check_writable(toml_path, &plugin_dir)?;
    let bytes = read_plugin(&o.file)?;
    let sha = catalog::sha256_hex(&bytes);
    match manifest::read(&bytes) {
        Ok(Some(m)) => show_manifest(&m, &sha),
        Ok(None) => println!(
            "{} has no manifest: its identity below comes from describe(), run in the sandbox with nothing granted",
            o.file.display()
        ),
        Err(e) => {
            return Err(Failure::new(format!("\"{}\" cannot be installed", o.file.display()))
                .detail(e)
                .into())
        }
    }
    // Compiles it, checks the contract version and that describe() agrees
    // with the manifest; nothing is granted while it runs.
    let plugin = Plugin::load(
        rt,
        &Candidate::from_file("", o.file.clone(), Some(sha.clone())),
    )?;
    let name = plugin.name.clone();
    let requested = plugin.caps.declared.clone();
    println!(
        "contract:     pgclone:plugin@{} ({}), accepted by this pgclone; describe() matches the manifest",
        plugin.contract.version, plugin.contract.kind
    );
    if plugin.contract.kind == PluginKind::Policy {
        println!("{}", policy_power());
    }
    if catalog::is_builtin(&name) {
        return Err(
            Failure::new(format!("\"{name}\" is the name of a built-in plugin"))
                .hint("a site or vendor plugin needs a name of its own")
                .into(),
        );
    }

    let mut granted: Vec<Capability> = Vec::new();
    for g in &o.grants {
        let c: Capability =
            g.parse()
                .map_err(|e: pgclone::contract::capability::BadCapability| {
                    Failure::new("invalid --grant").detail(e.to_string())
                })?;
        if !requested.contains(&c) {
            return Err(Failure::new(format!("\"{name}\" does not request {c}"))
                .hint("grant only what the plugin requests (listed above)")
                .into());
        }
        granted.push(c);
    }
    if o.grant_all {
        granted = requested.clone();
    } else if o.grants.is_empty() && !requested.is_empty() && std::io::stdin().is_terminal() {
        granted = requested.iter().filter(|c| ask(c)).cloned().collect();
    }

    let dir = plugin_dir;
    // A file name of its own per version: until plugins.toml names it, the
    // previous version's file and pin stay as they were, so a failure at any
    // point leaves the installed plugin working.
    let file_name = format!("{name}-{}.wasm", &sha[..12]);
    let dest = dir.join(&file_name);
    let (doc, previous) = new_config(
        toml_path,
        &name,
        Path::new(&file_name),
        &sha,
        &granted,
        o.chain && plugin.contract.kind == PluginKind::Policy,
    )?;
    copy_atomically(&bytes, &dest)?;
    persist_config(toml_path, &doc)?;
    if let Some(old) = previous.map(|f| dir.join(f)).filter(|f| *f != dest) {
        // Only a file of the plugin directory that this pin named.
        if old.parent() == Some(dir.as_path()) {
            let _ = std::fs::remove_file(old);
        }
    }

    println!(
        "installed:    {} (pinned in {})",
        dest.display(),
        toml_path.display()
    );
    let missing: Vec<&Capability> = requested.iter().filter(|c| !granted.contains(c)).collect();
    if missing.is_empty() {
        println!("granted:      everything it requests");
    } else {
        println!(
            "NOT granted:  {} (the plugin is refused until they are)",
            missing
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "HINT: grant them with: {}, or edit grants in {}",
            pgclone::invocation::command(&format!(
                "plugin install {} --grant-all",
                shell_words::quote(&o.file.to_string_lossy())
            )),
            toml_path.display()
        );
    }
    match plugin.contract.kind {
        PluginKind::Policy if o.chain => {
            println!("chained:      runs after recovery-standard (and the policies before it)")
        }
        PluginKind::Policy => println!(
            "HINT: add \"{name}\" to policies in {} (or reinstall with --chain) to use it",
            toml_path.display()
        ),
        PluginKind::Source => {
            println!("HINT: set backup_source={name} in pgclone's configuration to clone with it")
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn copy_atomically(bytes: &[u8], dest: &Path) -> anyhow::Result<()> {
    let fail = |what: &str, e: std::io::Error| -> anyhow::Error {
        Failure::new(format!("could not {what} \"{}\"", dest.display()))
            .detail(e.to_string())
            .into()
    };
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail("write", e))?;
    tmp.write_all(bytes).map_err(|e| fail("write", e))?;
    tmp.as_file().sync_all().map_err(|e| fail("write", e))?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644));
    tmp.persist(dest).map_err(|e| fail("write", e.error))?;
    Ok(())
}

/// plugins.toml with the pin and grants recorded, everything else in the file
/// kept (comments, other keys of the plugin's section such as timeout_ms),
/// checked to load; and the file the previous pin named.
fn new_config(
    toml_path: &Path,
    name: &str,
    file: &Path,
    sha: &str,
    grants: &[Capability],
    chain: bool,
) -> anyhow::Result<(toml_edit::DocumentMut, Option<String>)> {
    let text = match std::fs::read_to_string(toml_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(
                Failure::new(format!("could not read \"{}\"", toml_path.display()))
                    .detail(e.to_string())
                    .into(),
            )
        }
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        Failure::new(format!(
            "invalid plugin configuration \"{}\"",
            toml_path.display()
        ))
        .detail(e.to_string())
    })?;
    if chain {
        let policies = doc
            .entry("policies")
            .or_insert(toml_edit::value(toml_edit::Array::new()));
        if let Some(a) = policies.as_array_mut() {
            if !a.iter().any(|v| v.as_str() == Some(name)) {
                a.push(name);
            }
        }
    }
    let plugins = doc
        .entry("plugin")
        .or_insert(toml_edit::Item::Table(toml_edit::Table::new()));
    if let Some(t) = plugins.as_table_mut() {
        t.set_implicit(true);
    }
    if !plugins.get(name).is_some_and(|i| i.is_table()) {
        plugins[name] = toml_edit::Item::Table(toml_edit::Table::new());
    }
    let previous = plugins[name]
        .get("file")
        .and_then(|f| f.as_str())
        .map(str::to_string);
    let entry = &mut plugins[name];
    entry["file"] = toml_edit::value(file.display().to_string());
    entry["sha256"] = toml_edit::value(sha);
    let mut arr = toml_edit::Array::new();
    for g in grants {
        arr.push(g.to_string());
    }
    entry["grants"] = toml_edit::value(arr);
    // What is written must load.
    PluginsConfig::parse(toml_path, &doc.to_string())?;
    Ok((doc, previous))
}

/// Writes plugins.toml atomically, readable by the user that clones.
fn persist_config(toml_path: &Path, doc: &toml_edit::DocumentMut) -> anyhow::Result<()> {
    if let Some(dir) = toml_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let dir = toml_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(doc.to_string().as_bytes())?;
    tmp.as_file().sync_all()?;
    // No secrets in it, and the user that clones must read it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(toml_path).map_err(|e| {
        Failure::new(format!("could not write \"{}\"", toml_path.display()))
            .detail(e.error.to_string())
    })?;
    Ok(())
}

/// `plugin verify`: the values its text and its JSON are rendered from.
#[derive(Serialize)]
struct VerifyView {
    checks: Vec<Verified>,
    /// How many pinned plugins were checked.
    checked: usize,
    /// How many checks found a problem.
    problems: usize,
    /// The plugin configuration checked.
    config: Option<String>,
}

/// One check of `plugin verify`.
#[derive(Serialize)]
struct Verified {
    /// plugin (a pinned plugin would load), or policy (a policy of the chain
    /// is configured).
    check: &'static str,
    name: String,
    /// ok or refused.
    verdict: &'static str,
    origin: Option<String>,
    sha256: Option<String>,
    /// What is wrong.
    problem: Option<String>,
    /// What to do about it, when the text says.
    hint: Option<String>,
}

/// Checks every pinned plugin: the file is there and unchanged, this pgclone
/// supports its contract, describe() matches its manifest, and everything it
/// requests is granted.
pub fn verify(rt: &Runtime, cfg: &PluginsConfig) -> anyhow::Result<ExitCode> {
    let view = verify_view(rt, cfg);
    if pgclone::output::json() {
        pgclone::output::put_fields(&view);
    } else {
        print_verify(&view);
    }
    Ok(if view.problems > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn verify_view(rt: &Runtime, cfg: &PluginsConfig) -> VerifyView {
    let mut checks = Vec::new();
    let mut checked = 0;
    for cand in catalog::candidates(cfg)
        .into_iter()
        .filter(|c| !c.is_embedded())
    {
        checked += 1;
        let loaded = Plugin::load(rt, &cand).map_err(anyhow::Error::from);
        checks.push(
            match loaded.and_then(|p| p.ensure_granted().map(|_| p).map_err(Into::into)) {
                Ok(p) => Verified {
                    check: "plugin",
                    name: p.name.clone(),
                    verdict: "ok",
                    origin: Some(p.origin.to_string()),
                    sha256: Some(p.sha256.clone()),
                    problem: None,
                    hint: None,
                },
                Err(e) => {
                    // A changed or unpinned file: the command that reviews and pins it.
                    let text = e.to_string();
                    let hint = match (
                        &cand.origin,
                        text.contains("changed since it was pinned")
                            || text.contains("is not pinned"),
                    ) {
                        (Origin::File(file), true) => Some(format!(
                            "to review and pin this file: {}",
                            pgclone::invocation::command(&format!(
                                "plugin install {}",
                                shell_words::quote(&file.to_string_lossy())
                            ))
                        )),
                        _ => None,
                    };
                    Verified {
                        check: "plugin",
                        name: cand.name.clone(),
                        verdict: "refused",
                        origin: Some(cand.origin.to_string()),
                        sha256: None,
                        problem: Some(text),
                        hint,
                    }
                }
            },
        );
    }
    for p in &cfg.policies {
        if !catalog::candidates(cfg).iter().any(|c| &c.name == p) {
            checks.push(Verified {
                check: "policy",
                name: p.clone(),
                verdict: "refused",
                origin: None,
                sha256: None,
                problem: Some("named in policies but not configured".into()),
                hint: None,
            });
        }
    }
    let problems = checks.iter().filter(|c| c.verdict != "ok").count();
    VerifyView {
        checks,
        checked,
        problems,
        config: cfg
            .source
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned()),
    }
}

fn print_verify(view: &VerifyView) {
    let or_empty = |v: &Option<String>| v.clone().unwrap_or_default();
    for c in &view.checks {
        match (c.verdict, c.check) {
            ("ok", _) => println!(
                "ok       {:<20} {} {}",
                c.name,
                &or_empty(&c.sha256)[..12],
                or_empty(&c.origin)
            ),
            (_, "policy") => {
                println!("REFUSED  {:<20} {}", c.name, or_empty(&c.problem))
            }
            _ => {
                println!("REFUSED  {:<20} {}", c.name, or_empty(&c.origin));
                for line in or_empty(&c.problem).lines() {
                    println!("         {line}");
                }
                if let Some(h) = &c.hint {
                    println!("         {h}");
                }
            }
        }
    }
    println!(
        "{} checked, {}{}",
        pgclone::report::count(view.checked, "pinned plugin", "pinned plugins"),
        pgclone::report::count(view.problems, "problem", "problems"),
        view.config
            .as_ref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default()
    );
}
