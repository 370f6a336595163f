//! Checking a plan whole before anything runs: its length, then every step
//! by its kind ([`super::Kind::check`]) against what [`Validation`] knows —
//! the clone's directories (a path must stay inside the data directory, a
//! tablespace or the staging directory), the plugin's grants, the site's
//! programs and ssh destinations.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::{combines, Step};
use crate::contract::capability::CapabilitySet;
use crate::contract::source::{LocalPath, PathRoot, PlanStep};
use crate::contract::Capability;
use crate::environment::HostEnv;
use crate::report::Failure;

/// Plans longer than this are refused (a real one has a few dozen steps).
pub const MAX_STEPS: usize = 10_000;

/// What a plan is checked against: who asks (the plugin and its grants),
/// the site, and where the clone may write.
pub struct Validation<'a> {
    /// The plugin's name, for messages.
    pub plugin: &'a str,
    pub caps: &'a CapabilitySet,
    pub env: &'a HostEnv,
    pub datadir: &'a Path,
    /// Where each tablespace of the clone goes, by OID.
    pub tablespaces: &'a BTreeMap<u32, PathBuf>,
    /// The staging directory, for a plan that combines backups (a plan
    /// without a `combine-backups` step gets none).
    pub staging: Option<&'a Path>,
}

impl Validation<'_> {
    /// Checks every step of `plan`; the first refusal stops the check.
    pub fn plan(&self, plan: &[PlanStep]) -> anyhow::Result<Vec<Step>> {
        let v = Validation {
            staging: self.staging.filter(|_| combines(plan)),
            ..*self
        };
        if plan.is_empty() {
            return Err(v.malformed("the plan is empty").into());
        }
        if plan.len() > MAX_STEPS {
            return Err(v
                .malformed(format!(
                    "the plan has {} steps (at most {MAX_STEPS})",
                    plan.len()
                ))
                .into());
        }
        Ok(plan
            .iter()
            .map(|s| Step::check(s, &v))
            .collect::<Result<_, _>>()?)
    }

    /// A plan the host refuses as malformed: a bug in the plugin, or a hostile one.
    pub fn malformed(&self, problem: impl Into<String>) -> Failure {
        Failure::new(format!(
            "plugin \"{}\" returned a plan the host refuses",
            self.plugin
        ))
        .detail(problem.into())
        .hint("this is a bug in the plugin, or a hostile plugin; nothing was changed")
    }

    /// The plugin holds `cap` (declared and granted); else it is refused
    /// with `refused` ("plans to ...").
    pub fn granted(&self, cap: &Capability, refused: &str) -> Result<(), Failure> {
        self.caps.check(cap).map_err(|refusal| {
            let name = self.plugin;
            Failure::new(format!("plugin \"{name}\" {refused}"))
                .detail(format!("capability {cap}: {refusal:?}"))
                .hint(format!("grant it in plugins.toml if you trust the plugin: [plugin.{name}] grants = [\"{cap}\"]"))
        })
    }

    /// The plugin may read `key` of `store` (a declared and a granted
    /// `store-read` cover it); else it is refused with `refused`.
    pub fn granted_key(&self, store: &str, key: &str, refused: &str) -> Result<(), Failure> {
        self.caps.check_key(store, key).map_err(|refusal| {
            let name = self.plugin;
            let why = match refusal {
                crate::contract::capability::Refusal::NotDeclared => "the plugin did not declare it",
                crate::contract::capability::Refusal::NotGranted => "not granted",
            };
            Failure::new(format!("plugin \"{name}\" {refused}"))
                .detail(format!(
                    "key \"{}\" of store \"{store}\": {why}",
                    key.escape_debug()
                ))
                .hint(format!("a store-read grant covers only keys under its prefix, without \"..\": check [plugin.{name}] grants in plugins.toml"))
        })
    }

    /// The store the operator configured as `name`, opened.
    pub fn store(&self, name: &str) -> Result<std::sync::Arc<crate::store::Store>, Failure> {
        self.env.store(name)
    }

    /// A local program, found through `pg_bindir` or `PATH`.
    pub fn program(&self, name: &str) -> Result<PathBuf, Failure> {
        self.env.find_program(name).ok_or_else(|| {
            Failure::new(format!("program \"{name}\" not found"))
                .hint("set pg_bindir in the configuration file, or add its directory to PATH")
        })
    }

    /// The ssh destination the operator mapped `target` to.
    pub fn ssh_destination(&self, target: &str) -> Result<String, Failure> {
        let dest = self.env.ssh_destination(target).ok_or_else(|| {
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

    /// A plugin's path inside its root: relative, no `..`, no empty
    /// components, no control characters; the empty path is the root itself.
    pub fn resolve(&self, p: &LocalPath) -> Result<PathBuf, Failure> {
        let root = match p.root {
            PathRoot::DataDirectory => self.datadir.to_path_buf(),
            PathRoot::Staging => self.staging.map(Path::to_path_buf).ok_or_else(|| {
                self.malformed(
                    "a path in the staging directory, in a plan without a combine-backups step",
                )
            })?,
            PathRoot::Tablespace(oid) => self.tablespaces.get(&oid).cloned().ok_or_else(|| {
                self.malformed(format!(
                    "tablespace {oid} is not a tablespace of this clone"
                ))
            })?,
        };
        let rel = Path::new(&p.path);
        if !clean_name(&p.path) || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(self.malformed(format!(
                "path \"{}\" is not a plain relative path without control characters",
                p.path.escape_debug()
            )));
        }
        Ok(root.join(rel))
    }
}

/// True for a name a plan may use: no control character (a line break in a
/// name would split an rsync file list; an escape sequence would reach the
/// terminal).
pub fn clean_name(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// A relative path of plain names: no `..`, no root, no control characters.
pub fn plain_relative(s: &str) -> bool {
    clean_name(s)
        && !s.is_empty()
        && Path::new(s)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
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

/// A plan is untrusted: whatever its strings, the check accepts it with
/// every path inside a root and every name clean, or refuses it; it never
/// panics.
#[cfg(test)]
mod props {
    use super::*;
    use crate::clone::steps::kinds::unpack_archive::ArchiveFrom;
    use crate::clone::steps::Files;
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
            (target(), proptest::collection::vec(path(), 0..3), local()).prop_map(
                |(store, objects, local)| {
                    PlanStep::UnpackObjects(UnpackObjectsStep {
                        store,
                        objects,
                        parts: ObjectParts::Separate,
                        compression: Some(ArchiveCompression::Gzip),
                        local,
                        size_bytes: 0,
                    })
                }
            ),
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
        let steps = Validation {
            plugin: "p",
            caps: &caps,
            env: &env,
            datadir: Path::new("/d"),
            tablespaces: &BTreeMap::new(),
            staging: None,
        }
        .plan(&plan)
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
            let v = Validation {
                plugin: "hostile",
                caps: &caps,
                env: &env,
                datadir: data,
                tablespaces: &tablespaces,
                staging: Some(staging),
            };
            let Ok(steps) = v.plan(&plan) else {
                return Ok(());
            };
            let inside = |p: &Path| [data, ts, staging].iter().any(|r| below(p, r) || p == *r);
            for s in &steps {
                match s {
                    Step::RunLocal(r) => prop_assert!(r.args.iter().all(|a| clean(a))),
                    Step::CreateDir(d) => {
                        prop_assert!(inside(&d.path), "{:?}", d.path);
                        prop_assert!(d.mode <= 0o777);
                    }
                    Step::WriteFile(w) => {
                        prop_assert!(inside(&w.path), "{:?}", w.path);
                        prop_assert!(w.mode <= 0o777);
                    }
                    Step::UnpackArchive(a) => {
                        prop_assert!(inside(&a.local), "{:?}", a.local);
                        let ArchiveFrom::Ssh { dest, remote_path } = &a.from else {
                            panic!("an unpack-archive step reads over ssh");
                        };
                        prop_assert!(remote_path.starts_with('/') && clean(remote_path));
                        prop_assert_eq!(dest, "barman@backup1");
                    }
                    Step::UnpackObjects(o) => {
                        for a in &o.archives {
                            prop_assert!(inside(&a.local), "{:?}", a.local);
                        }
                    }
                    Step::CopyTree(c) => {
                        prop_assert!(inside(&c.local), "{:?}", c.local);
                        prop_assert!(c.remote_path.starts_with('/') && clean(&c.remote_path));
                        if let Files::Listed(files) = &c.files {
                            prop_assert!(files.iter().all(|f| below(&c.local.join(f), &c.local)), "{:?}", files);
                        }
                        prop_assert!(c.exclude.iter().all(|f| below(&c.local.join(f), &c.local)), "{:?}", c.exclude);
                        prop_assert_eq!(&c.dest, "barman@backup1");
                    }
                    Step::CombineBackups(c) => {
                        prop_assert!(c.backups.iter().all(|b| below(b, staging) && b != staging));
                        prop_assert_eq!(&c.output, data);
                    }
                }
            }
        }
    }
}
