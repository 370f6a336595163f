//! Phase 3a: the source plugin's plan. It is asked what backup it would
//! restore and how, where each tablespace goes on this host is decided (by
//! the operator's mappings, never by the plugin), and the plan is validated
//! whole before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::contract::source::{
    Backup, BackupSource, CloneRequest, ConnParam, NodeIdentity, PlacedTablespace, PlanStep,
    Tablespace,
};
use crate::contract::Described;
use crate::environment::HostEnv;
use crate::pg::ConnInfo;

use super::checks::Checks;
use super::resolve::Context;
use super::safety;
use super::steps::{self, Step};
use super::target::{self, Target, TargetState};

/// The source plugin's checked plan.
#[derive(Default)]
pub struct SourcePlan {
    pub steps: Vec<Step>,
    /// `-F` over a data directory of the same system: copy only what changed.
    pub delta: bool,
    /// What the source said about the backup.
    pub backup: Option<Backup>,
    /// Where each tablespace of the backup goes on this host, by OID.
    pub tablespaces: BTreeMap<u32, PathBuf>,
    /// The plan unpacks archives: the result is checked against the backup's
    /// manifest.
    pub unpacks: bool,
    /// The plan combines an incremental backup chain in this staging
    /// directory (created empty beside the data directory, removed after the
    /// clone); the result is checked against pg_combinebackup's manifest.
    pub staging: Option<PathBuf>,
}

impl SourcePlan {
    /// The backup's size as the source reports it (0 when unknown).
    pub fn size_bytes(&self) -> u64 {
        self.backup.as_ref().map_or(0, |b| b.size_bytes)
    }

    /// True when pgclone places the files itself (no program of the source's,
    /// such as pg_basebackup, makes the data directory).
    pub fn host_places_files(&self) -> bool {
        !self.steps.iter().any(|s| matches!(s, Step::RunLocal(_)))
    }
}

/// What the source is asked, and what its answers are judged by: taken from
/// the clone's context ([`Ask::of`]), or made whole by a test.
pub struct Ask<'a> {
    pub request: CloneRequest,
    /// The source restores a backup taken earlier (the upstream may be down).
    pub from_backup: bool,
    /// `-F`: a populated target may be emptied, or kept for a delta copy.
    pub force: bool,
    pub target: &'a Target,
    /// `tablespace_mapping`: a backup's location, and where it goes instead.
    pub mappings: BTreeMap<String, String>,
    /// The OIDs of the upstream's tablespaces, when it answered.
    pub upstream_tablespaces: Option<Vec<u32>>,
    /// The live upstream on this host is copied: a tablespace left where it
    /// is would be cloned onto itself.
    pub onto_itself: bool,
    /// Where the plan's ssh targets and programs are.
    pub env: &'a HostEnv,
}

impl<'a> Ask<'a> {
    /// What the clone's context says.
    pub fn of(ctx: &'a Context<'_>) -> Ask<'a> {
        Ask {
            request: request(ctx),
            from_backup: ctx.from_backup,
            force: ctx.o.force,
            target: &ctx.target,
            mappings: ctx
                .conf
                .get_all("tablespace_mapping")
                .iter()
                .filter_map(|m| m.split_once('='))
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            upstream_tablespaces: ctx
                .up
                .info
                .as_ref()
                .map(|u| u.tablespaces.iter().map(|t| t.oid).collect()),
            onto_itself: ctx.up.is_local() && !ctx.from_backup,
            env: &ctx.env,
        }
    }
}

/// Asks the context's source for its backup and plan and checks them; what
/// fails is recorded in `checks`. A source that is refused or cannot be
/// started ends the clone here.
pub fn plan(ctx: &Context<'_>, checks: &mut Checks) -> anyhow::Result<SourcePlan> {
    let source = ctx.source();
    source.ensure_granted()?;
    let mut session = source.open()?;
    Ok(decide(&Ask::of(ctx), source, session.as_mut(), checks))
}

/// The plan phase over any source: its backup, the delta decision, where
/// the tablespaces go, and its validated steps.
pub fn decide(
    ask: &Ask<'_>,
    source: &dyn Described,
    session: &mut dyn BackupSource,
    checks: &mut Checks,
) -> SourcePlan {
    let request = &ask.request;
    let mut planned = SourcePlan::default();
    let backup = match session.check(request) {
        Ok(b) => b,
        Err(e) => {
            checks.fail(e.to_string());
            return planned;
        }
    };
    if ask.from_backup {
        checks.ok(format!(
            "{} backup {} (PostgreSQL {}, timeline {}, begins at WAL {}) is usable",
            source
                .display_name()
                .unwrap_or_else(|| format!("\"{}\"", source.name())),
            backup.id,
            pgclone_contract::pg_version::text(backup.server_version),
            backup.timeline,
            backup.begin_wal
        ));
    }
    // Asked for now: what it does decides whether a delta copy is possible.
    // It is validated once the tablespaces are placed (checked there: here
    // the source only learns where they will be).
    let request = CloneRequest {
        placed_tablespaces: placed(ask, &backup),
        ..request.clone()
    };
    let plan = session.plan_clone(&request, &backup);
    planned.delta = delta_possible(ask, &backup, plan.as_ref().ok());
    if planned.delta {
        checks.ok(format!(
            "\"{}\" holds the same database system: only what changed will be copied",
            ask.target.given.display()
        ));
    }
    planned.tablespaces = place_tablespaces(ask, source, checks, &backup, planned.delta);
    planned.backup = Some(backup);
    match plan {
        Ok(plan) => validate(ask, source, checks, &plan, &mut planned),
        Err(e) => checks.fail(e.to_string()),
    }
    planned
}

/// What the source is asked for.
fn request(ctx: &Context<'_>) -> CloneRequest {
    let (up, node) = (&ctx.up, &ctx.node);
    let tablespaces = up.info.as_ref().map_or_else(Vec::new, |u| {
        u.tablespaces
            .iter()
            .map(|t| Tablespace {
                oid: t.oid,
                name: t.name.clone(),
                location: t.location.clone(),
            })
            .collect()
    });
    CloneRequest {
        node: NodeIdentity {
            node_id: node.node_id,
            node_name: node.node_name.clone(),
        },
        data_directory: ctx.target.real.to_string_lossy().into_owned(),
        upstream: params(&ctx.repl.params.without_password()),
        replication_user: up.replication_user.clone(),
        upstream_version: up.info.as_ref().map(|u| u.version_num),
        upstream_system_identifier: ctx
            .replication
            .identity()
            .map(|i| i.system_identifier.clone()),
        upstream_tablespaces: tablespaces,
        backup_id: ctx.o.backup_id.clone(),
        fast_checkpoint: ctx.o.fast_checkpoint,
        slot_name: node.slot_name.clone(),
        interactive: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        placed_tablespaces: Vec::new(),
    }
}

/// Where each tablespace of `backup` will live: its `tablespace_mapping`,
/// else its own location (what `place_tablespaces` then checks).
fn placed(ask: &Ask<'_>, backup: &Backup) -> Vec<PlacedTablespace> {
    backup
        .tablespaces
        .iter()
        .map(|t| PlacedTablespace {
            oid: t.oid,
            location: ask
                .mappings
                .get(&t.location)
                .cloned()
                .unwrap_or_else(|| t.location.clone()),
        })
        .collect()
}

/// The parameters as the contract passes them.
pub fn params(c: &ConnInfo) -> Vec<ConnParam> {
    c.params()
        .iter()
        .map(|(k, v)| ConnParam {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// `-F` over a data directory of the backup's own system, with a plan whose
/// steps copy in place (`steps::copies_in_place`: rsync compares the files,
/// the other steps make directories and small files): then only what changed
/// is copied. Archives are unpacked whole, and a program of the source's
/// wants an empty directory.
fn delta_possible(ask: &Ask<'_>, backup: &Backup, plan: Option<&Vec<PlanStep>>) -> bool {
    plan.is_some_and(|p| steps::copies_in_place(p))
        && ask.force
        && matches!(ask.target.state, TargetState::Populated { .. })
        && target::system_identifier(&ask.target.real).as_deref()
            == Some(backup.system_identifier.as_str())
}

/// Where each of the backup's tablespaces goes on this host. Where files go
/// is the operator's decision, not a plugin's: a location must be a plain
/// absolute path, of a tablespace the upstream has (when it can be asked),
/// and a site or vendor source's tablespaces must be mapped explicitly.
fn place_tablespaces(
    ask: &Ask<'_>,
    source: &dyn Described,
    checks: &mut Checks,
    backup: &Backup,
    delta: bool,
) -> BTreeMap<u32, PathBuf> {
    let mut dirs = BTreeMap::new();
    for t in &backup.tablespaces {
        let loc = Path::new(&t.location);
        let plain = loc.is_absolute()
            && loc
                .components()
                .all(|c| !matches!(c, std::path::Component::ParentDir));
        if !plain {
            checks.fail(format!(
                "the backup's tablespace {} has location \"{}\", not a plain absolute path",
                t.oid,
                t.location.escape_debug()
            ));
            continue;
        }
        if let Some(oids) = &ask.upstream_tablespaces {
            if !oids.contains(&t.oid) {
                checks.fail_hint(
                    format!(
                        "the backup has tablespace {} (\"{}\"), which the upstream does not have",
                        t.oid, t.name
                    ),
                    "the backup and the upstream must be of the same database system",
                );
                continue;
            }
        }
        let mapped = ask.mappings.get(&t.location);
        if !source.is_builtin() && mapped.is_none() {
            checks.fail_hint(
                format!(
                    "tablespace \"{}\" ({}) of plugin \"{}\" has no tablespace_mapping",
                    t.name,
                    t.location,
                    source.name()
                ),
                format!(
                    "a site or vendor source does not choose where files go: tablespace_mapping='{}=/new/location'",
                    t.location
                ),
            );
            continue;
        }
        if mapped.is_none() && ask.onto_itself {
            checks.fail_hint(
                format!(
                    "tablespace \"{}\" ({}) would be cloned onto itself",
                    t.name, t.location
                ),
                format!(
                    "map it elsewhere: tablespace_mapping='{}=/new/location'",
                    t.location
                ),
            );
            continue;
        }
        let dir = PathBuf::from(mapped.cloned().unwrap_or_else(|| t.location.clone()));
        if let Err(f) = safety::check_writable_root(&dir, safety::Role::Tablespace) {
            checks.fail_error_first(&f.into());
            continue;
        }
        let populated = std::fs::read_dir(&dir).is_ok_and(|mut rd| rd.next().is_some());
        // Filled by an interrupted clone (its journal says so): -F empties it.
        let left = populated && !delta && interrupted_filled(ask.target, &dir);
        if left && ask.force {
            checks.ok(format!(
                "tablespace directory \"{}\" holds an interrupted clone's files: -F given, it will be emptied",
                dir.display()
            ));
        } else if left {
            checks.fail_hint(
                format!(
                    "tablespace directory \"{}\" holds the files of an interrupted clone",
                    dir.display()
                ),
                "run the clone again with -F to empty it",
            );
        } else if populated && !delta {
            checks.fail_hint(
                format!("tablespace directory \"{}\" is not empty", dir.display()),
                "empty it or map the tablespace elsewhere with tablespace_mapping",
            );
        } else {
            checks.ok(format!(
                "tablespace \"{}\" goes to \"{}\"",
                t.name,
                dir.display()
            ));
        }
        dirs.insert(t.oid, dir);
    }
    dirs
}

/// Whether the journal of an interrupted clone into this target names `dir`.
fn interrupted_filled(target: &Target, dir: &Path) -> bool {
    super::leftover::find(&target.real)
        .ok()
        .flatten()
        .is_some_and(|l| l.filled(dir))
}

/// Validates the plan whole against the placed directories; a plan that
/// combines backups gets its staging directory, which must not exist yet.
fn validate(
    ask: &Ask<'_>,
    source: &dyn Described,
    checks: &mut Checks,
    plan: &[PlanStep],
    planned: &mut SourcePlan,
) {
    let staging = steps::combines(plan).then(|| steps::staging_dir(&ask.target.real));
    let validated = steps::Validation {
        plugin: source.name(),
        caps: source.capabilities(),
        env: ask.env,
        datadir: &ask.target.real,
        tablespaces: &planned.tablespaces,
        staging: staging.as_deref(),
    }
    .plan(plan);
    let s = match validated {
        Ok(s) => s,
        Err(e) => return checks.fail_error(&e),
    };
    planned.unpacks = s.iter().any(|s| matches!(s, Step::UnpackArchive(_)));
    if let Some(dir) = staging {
        let version = planned.backup.as_ref().map_or(0, |b| b.server_version);
        // One that exists was left by an interrupted clone: the target's
        // check says so, and -F removes it before this clone makes its own.
        let left = std::fs::symlink_metadata(&dir).is_ok();
        match steps::check_combine_tool(&s, version).and_then(|()| match left {
            true => Ok(()),
            false => safety::check_writable_root(&dir, safety::Role::DataDirectory),
        }) {
            Err(f) => checks.fail_error_first(&f.into()),
            Ok(()) if left && !ask.force => {}
            Ok(()) => checks.ok(format!(
                "the incremental backup chain is combined in \"{}\" (removed afterwards)",
                dir.display()
            )),
        }
        planned.staging = Some(dir);
    }
    planned.steps = s;
}

#[cfg(test)]
mod tests;
