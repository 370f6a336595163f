//! Checking a plan whole before anything runs: programs declared, granted
//! and found; paths inside the data directory, a tablespace or the staging
//! directory; ssh destinations the plugin may reach.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;

use super::Step;
use crate::contract::capability::CapabilitySet;
use crate::contract::source::{ArchiveCompression, LocalPath, PathRoot, PlanStep};
use crate::contract::Capability;
use crate::contract::Described;
use crate::environment::HostEnv;
use crate::report::Failure;

fn malformed(plugin: &str, problem: String) -> Failure {
    Failure::new(format!(
        "plugin \"{plugin}\" returned a plan the host refuses"
    ))
    .detail(problem)
    .hint("this is a bug in the plugin, or a hostile plugin; nothing was changed")
}

/// Plans longer than this are refused (a real one has a few dozen steps).
pub const MAX_STEPS: usize = 10_000;
/// write-file steps are for small files such as tablespace_map.
pub const MAX_WRITE_FILE: usize = 1 << 20;

/// True for a name a plan may use: no control character (a line break in a
/// name would split an rsync file list; an escape sequence would reach the
/// terminal).
fn clean_name(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// A relative path of plain names: no `..`, no root, no control characters.
fn plain_relative(s: &str) -> bool {
    clean_name(s)
        && !s.is_empty()
        && Path::new(s)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// A plugin path inside its root: relative, no `..`, no empty components.
fn resolve(
    plugin: &str,
    p: &LocalPath,
    datadir: &Path,
    tablespaces: &BTreeMap<u32, PathBuf>,
    staging: Option<&Path>,
) -> Result<PathBuf, Failure> {
    let root = match p.root {
        PathRoot::DataDirectory => datadir.to_path_buf(),
        PathRoot::Staging => staging.map(Path::to_path_buf).ok_or_else(|| {
            malformed(
                plugin,
                "a path in the staging directory, in a plan without a combine-backups step".into(),
            )
        })?,
        PathRoot::Tablespace(oid) => tablespaces.get(&oid).cloned().ok_or_else(|| {
            malformed(
                plugin,
                format!("tablespace {oid} is not a tablespace of this clone"),
            )
        })?,
    };
    let rel = Path::new(&p.path);
    // The empty path is the root itself (a copy into the data directory).
    if !clean_name(&p.path) || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(malformed(
            plugin,
            format!(
                "path \"{}\" is not a plain relative path without control characters",
                p.path.escape_debug()
            ),
        ));
    }
    Ok(root.join(rel))
}

/// The ssh destination the operator mapped `target` to.
fn ssh_destination(env: &HostEnv, target: &str) -> Result<String, Failure> {
    let dest = env.ssh_destination(target).ok_or_else(|| {
        Failure::new(format!(
            "no ssh destination is configured for target \"{target}\""
        ))
        .hint(format!(
            "set {}_host in the configuration file",
            target.replace('-', "_")
        ))
    })?;
    if dest.starts_with('-') || dest.contains(char::is_whitespace) {
        return Err(Failure::new(format!("invalid ssh destination \"{dest}\"")));
    }
    Ok(dest)
}

/// Checks every step: programs declared and granted and found, paths inside the
/// data directory or a tablespace.
pub fn validate(
    plugin: &dyn Described,
    env: &HostEnv,
    plan: &[PlanStep],
    datadir: &Path,
    tablespaces: &BTreeMap<u32, PathBuf>,
) -> anyhow::Result<Vec<Step>> {
    validate_with_staging(plugin, env, plan, datadir, tablespaces, None)
}

/// True when the plan combines an incremental backup chain: the clone then
/// gets a staging directory.
pub fn combines(plan: &[PlanStep]) -> bool {
    plan.iter()
        .any(|s| matches!(s, PlanStep::CombineBackups(_)))
}

/// The staging directory of a clone into `datadir`: beside it, on the same
/// file system.
pub fn staging_dir(datadir: &Path) -> PathBuf {
    beside(datadir, "pgclone-staging")
}

/// `.NAME.SUFFIX` beside the data directory NAME (`data` for a root): where
/// a clone keeps what belongs to one target (its staging directory, its
/// journal).
pub fn beside(datadir: &Path, suffix: &str) -> PathBuf {
    let name = datadir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    datadir
        .parent()
        .unwrap_or(Path::new("/"))
        .join(format!(".{name}.{suffix}"))
}

/// [`validate`], with the staging directory of a plan that combines backups
/// (`staging` is only accepted when the plan has a `combine-backups` step).
pub fn validate_with_staging(
    plugin: &dyn Described,
    env: &HostEnv,
    plan: &[PlanStep],
    datadir: &Path,
    tablespaces: &BTreeMap<u32, PathBuf>,
    staging: Option<&Path>,
) -> anyhow::Result<Vec<Step>> {
    check_plan(
        plugin.name(),
        plugin.capabilities(),
        env,
        plan,
        datadir,
        tablespaces,
        staging,
    )
}

/// The checks of [`validate_with_staging`], for the plugin `name` holding `caps`.
fn check_plan(
    name: &str,
    caps: &CapabilitySet,
    env: &HostEnv,
    plan: &[PlanStep],
    datadir: &Path,
    tablespaces: &BTreeMap<u32, PathBuf>,
    staging: Option<&Path>,
) -> anyhow::Result<Vec<Step>> {
    let staging = staging.filter(|_| combines(plan));
    if plan.is_empty() {
        return Err(malformed(name, "the plan is empty".into()).into());
    }
    if plan.len() > MAX_STEPS {
        return Err(malformed(
            name,
            format!("the plan has {} steps (at most {MAX_STEPS})", plan.len()),
        )
        .into());
    }
    let mut out = Vec::new();
    for step in plan {
        out.push(match step {
            PlanStep::RunLocal(r) => {
                let cap = Capability::LocalRun(r.program.clone());
                if let Err(refusal) = caps.check(&cap) {
                    return Err(Failure::new(format!("plugin \"{name}\" plans to run \"{}\", which it may not", r.program))
                        .detail(format!("capability {cap}: {refusal:?}"))
                        .hint(format!("grant it in plugins.toml if you trust the plugin: [plugin.{name}] grants = [\"{cap}\"]"))
                        .into());
                }
                if let Some(a) = r.args.iter().find(|a| !clean_name(a)) {
                    return Err(malformed(name, format!("argument \"{}\" contains a control character", a.escape_debug())).into());
                }
                let program = env.find_program(&r.program).ok_or_else(|| {
                    Failure::new(format!("program \"{}\" not found", r.program))
                        .hint("set pg_bindir in the configuration file, or add its directory to PATH")
                })?;
                Step::Run {
                    program,
                    args: r.args.clone(),
                    description: r.description.clone(),
                    uses_password: r.uses_upstream_password,
                }
            }
            PlanStep::CreateDir(d) => Step::CreateDir {
                path: resolve(name, &d.path, datadir, tablespaces, staging)?,
                mode: d.mode & 0o777,
            },
            PlanStep::WriteFile(w) if w.contents.len() > MAX_WRITE_FILE => {
                return Err(malformed(
                    name,
                    format!(
                        "a write-file step of {} bytes (at most {MAX_WRITE_FILE})",
                        w.contents.len()
                    ),
                )
                .into())
            }
            PlanStep::WriteFile(w) => Step::WriteFile {
                path: resolve(name, &w.path, datadir, tablespaces, staging)?,
                contents: w.contents.clone(),
                mode: w.mode & 0o777,
            },
            PlanStep::UnpackArchive(u) => {
                let cap = Capability::RemoteRun { target: u.target.clone(), program: "cat".into() };
                if let Err(refusal) = caps.check(&cap) {
                    return Err(Failure::new(format!("plugin \"{name}\" plans to read an archive it may not read"))
                        .detail(format!("capability {cap}: {refusal:?}"))
                        .hint(format!("grant it in plugins.toml if you trust the plugin: [plugin.{name}] grants = [\"{cap}\"]"))
                        .into());
                }
                let dest = ssh_destination(env, &u.target)?;
                if !u.remote_path.starts_with('/') || !clean_name(&u.remote_path) || u.remote_path.ends_with('/') {
                    return Err(malformed(name, format!("archive path \"{}\" is not an absolute file path without control characters", u.remote_path.escape_debug())).into());
                }
                Step::Unpack(crate::clone::steps::unpack::Archive {
                    dest,
                    remote_path: u.remote_path.clone(),
                    compression: u.compression.map(|c| match c {
                        ArchiveCompression::Gzip => crate::clone::steps::unpack::Compression::Gzip,
                        ArchiveCompression::Lz4 => crate::clone::steps::unpack::Compression::Lz4,
                        ArchiveCompression::Zstd => crate::clone::steps::unpack::Compression::Zstd,
                        ArchiveCompression::Bzip2 => crate::clone::steps::unpack::Compression::Bzip2,
                    }),
                    local: resolve(name, &u.local, datadir, tablespaces, staging)?,
                    size_bytes: u.size_bytes,
                })
            }
            PlanStep::CombineBackups(c) => {
                if c.backups.len() < 2 {
                    return Err(malformed(name, format!("a combine-backups step of {} backups (a chain has a full backup and at least one incremental)", c.backups.len())).into());
                }
                let mut backups = Vec::new();
                for b in &c.backups {
                    if !matches!(b.root, PathRoot::Staging) || b.path.is_empty() {
                        return Err(malformed(name, format!("combine-backups: backup \"{}\" is not a subdirectory of the staging directory", b.path.escape_debug())).into());
                    }
                    let p = resolve(name, b, datadir, tablespaces, staging)?;
                    if backups.contains(&p) {
                        return Err(malformed(name, format!("combine-backups names \"{}\" twice", b.path.escape_debug())).into());
                    }
                    backups.push(p);
                }
                if !tablespaces.is_empty() {
                    return Err(Failure::new(format!("plugin \"{name}\" plans to combine an incremental backup chain with tablespaces, which pgclone cannot do yet"))
                        .detail(format!("tablespaces {}", tablespaces.keys().map(u32::to_string).collect::<Vec<_>>().join(", ")))
                        .hint("clone from a full backup (--backup-id), or restore this chain with the backup tool")
                        .into());
                }
                let program = env.find_program("pg_combinebackup").ok_or_else(|| {
                    Failure::new("program \"pg_combinebackup\" not found")
                        .detail("the backup is an incremental one: it must be combined with the backups it is based on")
                        .hint("set pg_bindir in the configuration file to the binaries of PostgreSQL 17 or later, of the backup's version")
                })?;
                Step::Combine {
                    program,
                    backups,
                    output: datadir.to_path_buf(),
                }
            }
            PlanStep::CopyTree(c) => {
                let cap = Capability::RemoteRun { target: c.target.clone(), program: "rsync".into() };
                if let Err(refusal) = caps.check(&cap) {
                    return Err(Failure::new(format!("plugin \"{name}\" plans an rsync copy it may not make"))
                        .detail(format!("capability {cap}: {refusal:?}"))
                        .into());
                }
                let dest = ssh_destination(env, &c.target)?;
                if !c.remote_path.starts_with('/') || !clean_name(&c.remote_path) {
                    return Err(malformed(name, format!("remote path \"{}\" is not absolute or contains a control character", c.remote_path.escape_debug())).into());
                }
                if let Some(f) = c.files.iter().chain(&c.exclude).find(|f| !plain_relative(f)) {
                    return Err(malformed(name, format!("file \"{}\" is not a plain relative path (or contains a control character)", f.escape_debug())).into());
                }
                if c.files.is_empty() {
                    return Err(malformed(name, "a copy-tree step without a file list".into()).into());
                }
                Step::CopyTree {
                    dest,
                    remote_path: c.remote_path.clone(),
                    local: resolve(name, &c.local, datadir, tablespaces, staging)?,
                    files: c.files.clone(),
                }
            }
        });
    }
    Ok(out)
}

/// The major version of a PostgreSQL tool, from `TOOL --version`
/// (`pg_combinebackup (PostgreSQL) 17.6`).
fn tool_major(program: &Path) -> Result<u32, Failure> {
    let mut cmd = std::process::Command::new(program);
    cmd.arg("--version").stdin(Stdio::null());
    let out = crate::child::dies_with_parent(&mut cmd)
        .output()
        .map_err(|e| {
            Failure::new(format!("could not run \"{}\"", program.display())).detail(e.to_string())
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .last()
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|m| m.parse().ok())
        .filter(|_| out.status.success())
        .ok_or_else(|| {
            Failure::new(format!(
                "cannot tell the version of \"{}\"",
                program.display()
            ))
            .detail(format!(
                "--version printed \"{}\"",
                crate::report::escape(text.trim())
            ))
        })
}

/// A plan's `pg_combinebackup` is of the backup's major version (17 or later):
/// checked before anything is copied.
pub fn check_combine_tool(steps: &[Step], backup_version: u32) -> Result<(), Failure> {
    for s in steps {
        if let Step::Combine { program, .. } = s {
            let major = tool_major(program)?;
            let want = backup_version / 10000;
            if major < 17 || major != want {
                return Err(Failure::new(format!(
                    "\"{}\" is of PostgreSQL {major}; the incremental backup chain needs pg_combinebackup of PostgreSQL {want}",
                    program.display()
                ))
                .detail(if major < 17 {
                    "pg_combinebackup first came with PostgreSQL 17".to_string()
                } else {
                    "pg_combinebackup combines backups of its own major version only".to_string()
                })
                .hint(format!("set pg_bindir in the configuration file to the binaries of PostgreSQL {want}")));
            }
        }
    }
    Ok(())
}

/// A plan is untrusted: whatever its strings, the check accepts it with
/// every path inside a root and every name clean, or refuses it; it never
/// panics.
#[cfg(test)]
mod props {
    use super::*;
    use crate::contract::source::*;
    use crate::fuzz;
    use proptest::prelude::*;

    /// Mostly plain paths (so that whole plans pass and their steps are
    /// checked), else what a hostile plugin would try, or random text.
    fn path() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "([a-z0-9_]{1,8}(/[a-z0-9_é]{1,8}){0,3})?",
            2 => fuzz::words(&["a", "/", "..", ".", "pg_wal", "//", "base/1", "é", "\n", "\u{1b}[2J"]),
            1 => fuzz::any_text(),
        ]
    }

    fn remote() -> impl Strategy<Value = String> {
        prop_oneof![3 => path().prop_map(|p| format!("/b/{p}")), 1 => path()]
    }

    fn local() -> impl Strategy<Value = LocalPath> {
        (
            prop_oneof![
                Just(PathRoot::DataDirectory),
                Just(PathRoot::Staging),
                Just(PathRoot::Tablespace(16390)),
                any::<u32>().prop_map(PathRoot::Tablespace),
            ],
            path(),
        )
            .prop_map(|(root, path)| LocalPath { root, path })
    }

    fn target() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => Just("barman".to_string()),
            1 => Just("nowhere".to_string()),
            1 => fuzz::any_text(),
        ]
    }

    fn step() -> impl Strategy<Value = PlanStep> {
        let strings = || proptest::collection::vec(path(), 0..3);
        prop_oneof![
            (
                prop_oneof![3 => Just("sh".to_string()), 1 => fuzz::any_text()],
                strings(),
                any::<bool>()
            )
                .prop_map(
                    |(program, args, uses_upstream_password)| PlanStep::RunLocal(RunLocalStep {
                        program,
                        args,
                        uses_upstream_password,
                        description: String::new(),
                    })
                ),
            (target(), remote(), local(), strings(), strings()).prop_map(
                |(target, remote_path, local, files, exclude)| PlanStep::CopyTree(CopyTreeStep {
                    target,
                    remote_path,
                    local,
                    files,
                    exclude,
                })
            ),
            (local(), any::<u32>())
                .prop_map(|(path, mode)| PlanStep::CreateDir(CreateDirStep { path, mode })),
            (local(), path(), any::<u32>()).prop_map(|(path, contents, mode)| PlanStep::WriteFile(
                WriteFileStep {
                    path,
                    contents,
                    mode
                }
            )),
            (target(), remote(), local(), any::<u64>()).prop_map(
                |(target, remote_path, local, size_bytes)| {
                    PlanStep::UnpackArchive(UnpackArchiveStep {
                        target,
                        remote_path,
                        compression: Some(ArchiveCompression::Gzip),
                        local,
                        size_bytes,
                    })
                }
            ),
            proptest::collection::vec(local(), 0..4)
                .prop_map(|backups| PlanStep::CombineBackups(CombineBackupsStep { backups })),
        ]
    }

    fn clean(s: &str) -> bool {
        !s.chars().any(char::is_control)
    }

    /// No `..`, no root, no `.`: only names below the root.
    fn below(p: &Path, root: &Path) -> bool {
        p.strip_prefix(root)
            .is_ok_and(|rel| rel.components().all(|c| matches!(c, Component::Normal(_))))
            && clean(&p.to_string_lossy())
    }

    /// A plugin that may run `sh`, and rsync and cat on the Barman host.
    fn harness() -> (CapabilitySet, HostEnv) {
        let caps: Vec<Capability> = [
            "remote-run:barman:rsync",
            "remote-run:barman:cat",
            "local-run:sh",
        ]
        .iter()
        .map(|c| c.parse().unwrap())
        .collect();
        let env = HostEnv {
            targets: [("barman".to_string(), "barman@backup1".to_string())].into(),
            ..HostEnv::default()
        };
        (
            CapabilitySet {
                declared: caps.clone(),
                granted: caps,
            },
            env,
        )
    }

    /// The harness accepts a plain plan: the property checks real steps.
    #[test]
    fn a_plain_plan_passes_the_harness() {
        let (caps, env) = harness();
        let local = |p: &str| LocalPath {
            root: PathRoot::DataDirectory,
            path: p.into(),
        };
        let plan = vec![
            PlanStep::CopyTree(CopyTreeStep {
                target: "barman".into(),
                remote_path: "/b/pg/base/1/data".into(),
                local: local(""),
                files: vec!["PG_VERSION".into(), "base/1/112".into()],
                exclude: vec![],
            }),
            PlanStep::CreateDir(CreateDirStep {
                path: local("pg_wal"),
                mode: 0o700,
            }),
            PlanStep::RunLocal(RunLocalStep {
                program: "sh".into(),
                args: vec!["-c".into(), "true".into()],
                uses_upstream_password: false,
                description: String::new(),
            }),
        ];
        let steps = check_plan(
            "p",
            &caps,
            &env,
            &plan,
            Path::new("/d"),
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        assert_eq!(steps.len(), 3);
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn plans_are_confined_or_refused(plan in proptest::collection::vec(step(), 0..4)) {
            let (caps, env) = harness();
            let (data, ts, staging) = (Path::new("/srv/pg/data"), Path::new("/srv/ts"), Path::new("/srv/pg/.data.pgclone-staging"));
            let tablespaces = BTreeMap::from([(16390, ts.to_path_buf())]);
            let Ok(steps) = check_plan("hostile", &caps, &env, &plan, data, &tablespaces, Some(staging)) else {
                return Ok(());
            };
            let inside = |p: &Path| [data, ts, staging].iter().any(|r| below(p, r) || p == *r);
            for s in &steps {
                match s {
                    Step::Run { args, .. } => prop_assert!(args.iter().all(|a| clean(a))),
                    Step::CreateDir { path, mode } | Step::WriteFile { path, mode, .. } => {
                        prop_assert!(inside(path), "{:?}", path);
                        prop_assert!(*mode <= 0o777);
                    }
                    Step::Unpack(a) => {
                        prop_assert!(inside(&a.local), "{:?}", a.local);
                        prop_assert!(a.remote_path.starts_with('/') && clean(&a.remote_path));
                        prop_assert_eq!(&a.dest, "barman@backup1");
                    }
                    Step::CopyTree { dest, remote_path, local, files } => {
                        prop_assert!(inside(local), "{:?}", local);
                        prop_assert!(remote_path.starts_with('/') && clean(remote_path));
                        prop_assert!(files.iter().all(|f| below(&local.join(f), local)), "{:?}", files);
                        prop_assert_eq!(dest, "barman@backup1");
                    }
                    Step::Combine { backups, output, .. } => {
                        prop_assert!(backups.iter().all(|b| below(b, staging) && b != staging));
                        prop_assert_eq!(output, data);
                    }
                }
            }
        }
    }
}
