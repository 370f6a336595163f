//! The plan phase over a fake source (`contract::fake`): no component, no
//! server, no ssh; every test runs in milliseconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{decide, Ask, SourcePlan};
use crate::clone::checks::Checks;
use crate::clone::steps::{self, Step};
use crate::clone::target::{Target, TargetState};
use crate::contract::fake::{self, FakeSource};
use crate::contract::source::{
    CloneRequest, CombineBackupsStep, CopyTreeStep, CreateDirStep, LocalPath, NodeIdentity,
    PathRoot, PlanStep, Tablespace, WriteFileStep,
};
use crate::contract::ErrorKind;
use crate::environment::HostEnv;

/// A target directory (missing) in a scratch directory of its own.
struct Lab {
    dir: tempfile::TempDir,
    target: Target,
    env: HostEnv,
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("standby");
    Lab {
        target: Target {
            given: real.clone(),
            real,
            state: TargetState::Missing,
        },
        env: HostEnv {
            targets: [("repo".to_string(), "backup@repo.example".to_string())].into(),
            ..Default::default()
        },
        dir,
    }
}

impl Lab {
    fn ask(&self) -> Ask<'_> {
        Ask {
            request: CloneRequest {
                node: NodeIdentity {
                    node_id: Some(2),
                    node_name: "node2".into(),
                },
                data_directory: self.target.real.display().to_string(),
                upstream: Vec::new(),
                replication_user: None,
                upstream_version: None,
                upstream_system_identifier: None,
                upstream_tablespaces: Vec::new(),
                backup_id: None,
                fast_checkpoint: false,
                slot_name: None,
                interactive: false,
                placed_tablespaces: Vec::new(),
            },
            from_backup: true,
            force: false,
            target: &self.target,
            mappings: BTreeMap::new(),
            upstream_tablespaces: None,
            onto_itself: false,
            env: &self.env,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A data directory of the fake backup's system in the target.
    fn same_system(&mut self) {
        let global = self.target.real.join("global");
        std::fs::create_dir_all(&global).unwrap();
        let id: u64 = fake::backup().system_identifier.parse().unwrap();
        std::fs::write(global.join("pg_control"), id.to_ne_bytes()).unwrap();
        std::fs::write(self.target.real.join("PG_VERSION"), "16\n").unwrap();
        self.target.state = TargetState::Populated {
            pg_version: Some("16".into()),
            entries: 2,
        };
    }
}

/// Runs the plan phase: the plan, what passed, what failed.
fn run(ask: &Ask<'_>, source: &FakeSource) -> (SourcePlan, Vec<String>, Option<String>) {
    let mut checks = Checks::default();
    let mut session = source.clone();
    let planned = decide(ask, source, &mut session, &mut checks);
    let failed = checks.first_failure().map(|f| {
        let mut s = f.message;
        for part in [f.detail, f.hint].into_iter().flatten() {
            s.push('\n');
            s.push_str(&part);
        }
        s
    });
    (planned, checks.passed(), failed)
}

/// The validated plan makes directory `dir` (mode 0700).
fn makes_dir(steps: &[Step], dir: &Path) -> bool {
    steps
        .iter()
        .any(|s| matches!(s, Step::CreateDir(d) if d.path == dir && d.mode == 0o700))
}

fn local(root: PathRoot, path: &str) -> LocalPath {
    LocalPath {
        root,
        path: path.into(),
    }
}

fn create_dir(root: PathRoot, path: &str) -> PlanStep {
    PlanStep::CreateDir(CreateDirStep {
        path: local(root, path),
        mode: 0o700,
    })
}

fn write_file(path: &str) -> PlanStep {
    PlanStep::WriteFile(WriteFileStep {
        path: local(PathRoot::DataDirectory, path),
        contents: "16\n".into(),
        mode: 0o600,
    })
}

fn copy_tree() -> PlanStep {
    PlanStep::CopyTree(CopyTreeStep {
        target: "repo".into(),
        remote_path: "/srv/backups/base/data".into(),
        local: local(PathRoot::DataDirectory, ""),
        files: vec!["PG_VERSION".into(), "global/pg_control".into()],
        exclude: Vec::new(),
    })
}

/// A backup with tablespace 16385 at `location`.
fn with_tablespace(source: &mut FakeSource, location: &str) {
    let mut b = fake::backup();
    b.tablespaces.push(Tablespace {
        oid: 16385,
        name: "ts".into(),
        location: location.into(),
    });
    source.check = Ok(b);
}

#[test]
fn a_usable_backup_is_planned_into_the_target() {
    let lab = lab();
    let source = FakeSource::new(
        "vendor",
        &[],
        vec![
            create_dir(PathRoot::DataDirectory, "global"),
            write_file("PG_VERSION"),
        ],
    );
    let (planned, passed, failed) = run(&lab.ask(), &source);
    assert_eq!(failed, None);
    assert!(
        passed
            .iter()
            .any(|p| p.starts_with("\"vendor\" backup 20260101T000000 (PostgreSQL 16.4")),
        "{passed:?}"
    );
    assert!(makes_dir(&planned.steps, &lab.target.real.join("global")));
    assert!(matches!(&planned.steps[1],
        Step::WriteFile(w) if w.path == lab.target.real.join("PG_VERSION") && w.contents == "16\n" && w.mode == 0o600));
    assert_eq!(planned.steps.len(), 2);
    assert!(!planned.delta && planned.staging.is_none() && !planned.unpacks);
    assert_eq!(planned.backup, Some(fake::backup()));
    // Asked twice (check, plan-clone), for the real target directory.
    let asked = source.asked.lock().unwrap();
    assert_eq!(asked.len(), 2);
    assert_eq!(
        asked[0].data_directory,
        lab.target.real.display().to_string()
    );
}

#[test]
fn a_first_party_source_goes_by_its_display_name() {
    let lab = lab();
    let mut source = FakeSource::new("barman", &[], vec![write_file("PG_VERSION")]);
    source.builtin = true;
    source.display_name = Some("Barman".into());
    let (_, passed, failed) = run(&lab.ask(), &source);
    assert_eq!(failed, None);
    assert!(
        passed
            .iter()
            .any(|p| p.starts_with("Barman backup 20260101T000000 ")),
        "{passed:?}"
    );
}

#[test]
fn tablespaces_go_where_the_operator_maps_them() {
    let lab = lab();
    let mut source = FakeSource::new(
        "vendor",
        &[],
        vec![
            write_file("PG_VERSION"),
            create_dir(PathRoot::Tablespace(16385), "PG_16_202307071"),
        ],
    );
    with_tablespace(&mut source, "/srv/ts1");
    let mut ask = lab.ask();
    let mapped = lab.path("ts_standby");
    ask.mappings
        .insert("/srv/ts1".into(), mapped.display().to_string());
    ask.upstream_tablespaces = Some(vec![16385]);
    let (planned, passed, failed) = run(&ask, &source);
    assert_eq!(failed, None);
    assert_eq!(
        planned.tablespaces,
        BTreeMap::from([(16385, mapped.clone())])
    );
    assert!(
        passed.contains(&format!(
            "tablespace \"ts\" goes to \"{}\"",
            mapped.display()
        )),
        "{passed:?}"
    );
    assert!(makes_dir(&planned.steps, &mapped.join("PG_16_202307071")));
}

#[test]
fn a_vendor_s_tablespace_without_a_mapping_is_refused() {
    let lab = lab();
    let mut source = FakeSource::new("vendor", &[], vec![write_file("PG_VERSION")]);
    with_tablespace(&mut source, "/srv/ts1");
    let (planned, _, failed) = run(&lab.ask(), &source);
    let failed = failed.expect("refused");
    assert!(
        failed.starts_with(
            "tablespace \"ts\" (/srv/ts1) of plugin \"vendor\" has no tablespace_mapping"
        ),
        "{failed}"
    );
    assert!(
        failed.contains("tablespace_mapping='/srv/ts1=/new/location'"),
        "{failed}"
    );
    assert!(planned.tablespaces.is_empty());

    // A first-party source's stays where it was, unless that is the live
    // upstream's own directory on this host.
    source.builtin = true;
    let ts = lab.path("ts_same");
    with_tablespace(&mut source, ts.to_str().unwrap());
    let (planned, _, failed) = run(&lab.ask(), &source);
    assert_eq!(failed, None);
    assert_eq!(planned.tablespaces, BTreeMap::from([(16385, ts.clone())]));
    let mut ask = lab.ask();
    ask.onto_itself = true;
    let (_, _, failed) = run(&ask, &source);
    assert!(failed
        .expect("refused")
        .contains("would be cloned onto itself"));
}

#[test]
fn a_tablespace_location_must_be_plain_and_the_upstream_s() {
    let lab = lab();
    let mut source = FakeSource::new("vendor", &[], vec![write_file("PG_VERSION")]);
    with_tablespace(&mut source, "/srv/../etc");
    let (_, _, failed) = run(&lab.ask(), &source);
    assert!(failed
        .expect("refused")
        .contains("not a plain absolute path"));

    with_tablespace(&mut source, "/srv/ts1");
    let mut ask = lab.ask();
    ask.mappings
        .insert("/srv/ts1".into(), lab.path("ts").display().to_string());
    ask.upstream_tablespaces = Some(vec![99999]);
    let (_, _, failed) = run(&ask, &source);
    let failed = failed.expect("refused");
    assert!(
        failed.contains("which the upstream does not have"),
        "{failed}"
    );
}

#[test]
fn a_populated_tablespace_directory_is_refused() {
    let lab = lab();
    let mut source = FakeSource::new("vendor", &[], vec![write_file("PG_VERSION")]);
    with_tablespace(&mut source, "/srv/ts1");
    let dir = lab.path("ts_full");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("old"), "x").unwrap();
    let mut ask = lab.ask();
    ask.mappings
        .insert("/srv/ts1".into(), dir.display().to_string());
    let (_, _, failed) = run(&ask, &source);
    assert!(failed.expect("refused").contains("is not empty"));
}

#[test]
fn a_copy_into_a_kept_directory_of_the_same_system_is_a_delta_copy() {
    let mut lab = lab();
    lab.same_system();
    let caps = ["remote-run:repo:rsync"];
    let source = FakeSource::new(
        "vendor",
        &caps,
        vec![create_dir(PathRoot::DataDirectory, "pg_wal"), copy_tree()],
    );
    // -F over the backup's own system: only what changed is copied.
    let mut ask = lab.ask();
    ask.force = true;
    let (planned, passed, failed) = run(&ask, &source);
    assert_eq!(failed, None);
    assert!(planned.delta);
    assert!(
        passed.contains(&format!(
            "\"{}\" holds the same database system: only what changed will be copied",
            lab.target.given.display()
        )),
        "{passed:?}"
    );
    assert!(matches!(&planned.steps[1], Step::CopyTree(c) if c.dest == "backup@repo.example"));

    // Without -F it is no delta copy (the target's own check refuses it).
    let (planned, _, _) = run(&lab.ask(), &source);
    assert!(!planned.delta);

    // Nor when the plan runs a program of its own, which wants an empty
    // directory.
    let mut runs = source.clone();
    runs.caps = crate::contract::CapabilitySet::default();
    runs.plan = Ok(vec![PlanStep::RunLocal(
        crate::contract::source::RunLocalStep {
            program: "sh".into(),
            args: Vec::new(),
            uses_upstream_password: false,
            description: "restore".into(),
        },
    )]);
    let (planned, _, _) = run(&ask, &runs);
    assert!(!planned.delta);

    // Nor over another system's data directory.
    let mut other = source.clone();
    let mut b = fake::backup();
    b.system_identifier = "7000000000000000002".into();
    other.check = Ok(b);
    let (planned, _, _) = run(&ask, &other);
    assert!(!planned.delta);
}

/// A `pg_combinebackup` that says it is of PostgreSQL 17, in a `pg_bindir`.
fn combine_tool(lab: &mut Lab) {
    use std::os::unix::fs::PermissionsExt;
    let bin = lab.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("pg_combinebackup");
    std::fs::write(
        &tool,
        "#!/bin/sh\necho 'pg_combinebackup (PostgreSQL) 17.2'\n",
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    lab.env.config.set("pg_bindir", bin.to_str().unwrap());
}

#[test]
fn an_incremental_chain_is_combined_in_a_staging_directory_beside_the_target() {
    let mut lab = lab();
    combine_tool(&mut lab);
    let staged = |p: &str| local(PathRoot::Staging, p);
    let mut source = FakeSource::new(
        "vendor",
        &[],
        vec![
            create_dir(PathRoot::Staging, "full"),
            create_dir(PathRoot::Staging, "incr"),
            PlanStep::CombineBackups(CombineBackupsStep {
                backups: vec![staged("full"), staged("incr")],
            }),
        ],
    );
    let mut b = fake::backup();
    b.server_version = 170002;
    source.check = Ok(b);
    let (planned, passed, failed) = run(&lab.ask(), &source);
    assert_eq!(failed, None);
    let staging = steps::staging_dir(&lab.target.real);
    assert_eq!(staging, lab.path(".standby.pgclone-staging"));
    assert_eq!(planned.staging.as_deref(), Some(staging.as_path()));
    assert!(
        passed.contains(&format!(
            "the incremental backup chain is combined in \"{}\" (removed afterwards)",
            staging.display()
        )),
        "{passed:?}"
    );
    assert!(makes_dir(&planned.steps, &staging.join("incr")));

    // A chain of another major version than the tool's is refused.
    let mut b = fake::backup();
    b.server_version = 180000;
    source.check = Ok(b);
    let (_, _, failed) = run(&lab.ask(), &source);
    assert!(failed.expect("refused").contains("is of PostgreSQL 17"));
}

#[test]
fn a_source_that_answers_an_unusable_backup_is_refused_before_its_plan() {
    let lab = lab();
    let mut source = FakeSource::new("vendor", &[], vec![write_file("PG_VERSION")]);
    source.check = Err(fake::error(
        ErrorKind::InvalidBackup,
        "backup 7 belongs to another database system",
    ));
    let (planned, _, failed) = run(&lab.ask(), &source);
    assert_eq!(
        failed.as_deref(),
        Some("backup 7 belongs to another database system (plugin \"vendor\", check())")
    );
    assert!(planned.backup.is_none() && planned.steps.is_empty());
    // Never asked for a plan.
    assert_eq!(source.asked.lock().unwrap().len(), 1);
}

#[test]
fn a_plan_that_fails_or_reaches_outside_the_target_is_refused() {
    let lab = lab();
    let mut source = FakeSource::new("vendor", &[], Vec::new());
    source.plan = Err(fake::error(ErrorKind::Failed, "the repository is locked"));
    let (planned, _, failed) = run(&lab.ask(), &source);
    assert_eq!(
        failed.as_deref(),
        Some("the repository is locked (plugin \"vendor\", plan-clone())")
    );
    assert!(planned.steps.is_empty());

    for step in [
        write_file("../escape"),
        create_dir(PathRoot::DataDirectory, "/etc/cron.d"),
        create_dir(PathRoot::Tablespace(1), "x"),
        create_dir(PathRoot::Staging, "x"),
    ] {
        source.plan = Ok(vec![step.clone()]);
        let (planned, _, failed) = run(&lab.ask(), &source);
        let failed = failed.unwrap_or_else(|| panic!("{step:?} was accepted"));
        assert!(
            failed.starts_with("plugin \"vendor\" returned a plan the host refuses"),
            "{step:?}: {failed}"
        );
        assert!(planned.steps.is_empty(), "{step:?}");
    }

    // A copy it was not granted.
    source.plan = Ok(vec![copy_tree()]);
    let (_, _, failed) = run(&lab.ask(), &source);
    assert!(failed
        .expect("refused")
        .starts_with("plugin \"vendor\" plans an rsync copy it may not make"));
}

#[test]
fn the_request_names_the_target_and_what_was_asked() {
    let lab = lab();
    let source = FakeSource::new("vendor", &[], vec![write_file("PG_VERSION")]);
    let mut ask = lab.ask();
    ask.request.backup_id = Some("20260101T000000".into());
    run(&ask, &source);
    let asked = source.asked.lock().unwrap();
    assert!(asked.iter().all(|r| r == &ask.request), "{asked:?}");
    assert!(Path::new(&asked[0].data_directory).is_absolute());
}
