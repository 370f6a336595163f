//! Phase 3: the plan. Decided from the resolved context once every check has
//! run, as a list of actions in the order they run. `--dry-run` prints this
//! list, and execution walks the very same list, so the two cannot disagree.

use std::path::PathBuf;

use crate::contract::policy::RecoveryConfig;
use crate::recovery::{render::render, write::read_existing};
use crate::report::{self, Failure};

use super::checks::Checks;
use super::external::{self, ExternalConfig};
use super::leftover::{self, Leftover};
use super::outcome::{ActionView, FileView};
use super::resolve::Context;
use super::source_plan::{self, SourcePlan};
use super::target::{self, TargetState};
use super::{catchup, recovery_plan, safety, upstream, warm_wal};

/// What the checks decided, before the actions are laid out.
pub struct Decided {
    pub source: SourcePlan,
    pub server_version: u32,
    /// `None` when a check failed.
    pub recovery: Option<RecoveryConfig>,
    /// The standby has no restore_command and must catch up by streaming.
    pub no_restore_command: bool,
}

/// Asks the source for its plan and the policies for the recovery
/// configuration, and runs the checks on both.
pub async fn decide(ctx: &Context<'_>, checks: &mut Checks) -> anyhow::Result<Decided> {
    let source = if ctx.o.replication_conf_only {
        SourcePlan::default()
    } else {
        checks.area("source");
        let s = source_plan::plan(ctx, checks)?;
        checks.area("space");
        check_room(ctx, &s, checks);
        checks.area("waldir");
        if let Some(w) = &ctx.node.waldir {
            // An interrupted clone's WAL there is given up with -F.
            let left = super::leftover::find(&ctx.target.real)
                .ok()
                .flatten()
                .is_some_and(|l| l.filled(w));
            match target::check_waldir(w, &ctx.target, s.delta) {
                Ok(m) => checks.ok(m),
                Err(_) if left && ctx.o.force && safety::check_writable_root(w, safety::Role::WalDir).is_ok() => {
                    checks.ok(format!(
                        "WAL directory \"{}\" holds an interrupted clone's files: -F given, it will be emptied",
                        w.display()
                    ))
                }
                Err(f) if left => checks.fail_error_first(
                    &f.hint("it holds the files of an interrupted clone: run the clone again with -F to empty it")
                        .into(),
                ),
                Err(f) => checks.fail_error_first(&f.into()),
            }
        }
        s
    };
    let server_version = server_version(ctx, &source)?;
    checks.area("recovery");
    let recovery = recovery_plan::decide(ctx, checks, server_version);
    let no_restore_command = catchup::needed(ctx, recovery.as_ref());
    if let (true, Some(b)) = (no_restore_command, &source.backup) {
        checks.area("catchup");
        catchup::check_catchup(checks, ctx, b).await;
    }
    Ok(Decided {
        source,
        server_version,
        recovery,
        no_restore_command,
    })
}

/// The target's file systems have room for the backup as the source declares
/// it (not checked when the size is unknown, nor for a delta copy, which
/// rewrites files the target already holds).
fn check_room(ctx: &Context<'_>, s: &SourcePlan, checks: &mut Checks) {
    let declared = s.size_bytes();
    if declared == 0 || s.delta {
        return;
    }
    let dirs: Vec<PathBuf> = std::iter::once(ctx.target.real.clone())
        .chain(s.tablespaces.values().cloned())
        .collect();
    match super::space::check_room(declared, "the backup as the source declares it", &dirs) {
        Ok(m) => checks.ok(m),
        Err(f) => checks.fail_error(&f.into()),
    }
}

/// The standby's PostgreSQL version: the upstream's when it answered, else
/// the data directory's (--replication-conf-only) or the backup's.
fn server_version(ctx: &Context<'_>, source: &SourcePlan) -> anyhow::Result<u32> {
    if let Some(u) = &ctx.up.info {
        return Ok(u.version_num);
    }
    if let (true, Some(v)) = (ctx.o.replication_conf_only, ctx.target.pg_version()) {
        return pgclone_contract::pg_version::parse(v)
            .ok_or_else(|| Failure::new(format!("cannot understand PG_VERSION \"{v}\"")).into());
    }
    Ok(source.backup.as_ref().map_or(0, |b| b.server_version))
}

/// One thing the clone does.
#[derive(Debug)]
pub enum Action {
    /// Create the data directory, empty it (-F), or keep it for a delta copy.
    PrepareTarget {
        delta: bool,
    },
    /// Make pg_wal a link to the --waldir of pg_basebackup_options (when
    /// pgclone places the files: pg_basebackup makes the link itself).
    LinkWaldir(PathBuf),
    /// The empty staging directory an incremental chain is combined in.
    CreateStaging(PathBuf),
    /// Every tablespace directory, so that writes can be checked against the
    /// real directories.
    CreateTablespaceDirs(Vec<PathBuf>),
    CreateSlot(String),
    /// Fetch the WAL since the backup into restore_command's spool while
    /// the copy runs.
    WarmWal {
        restore_command: String,
    },
    /// The source plugin's validated steps.
    RunSource,
    /// A delta copy: remove the files the backup does not have.
    RemoveUnlisted,
    /// A complete data directory, not an incremental backup, with no link
    /// out of the clone's directories (clone::links).
    VerifyCopy,
    /// Every file against the manifest: the backup's (archives unpacked, a
    /// chain combined) or pg_basebackup's (-v/--verify-backup).
    VerifyManifest {
        unpacked: bool,
    },
    CopyExternal(ExternalConfig),
    /// Patroni writes the recovery configuration: whatever the copy brought
    /// along is removed.
    ClearRecovery,
    WriteRecovery,
}

impl Action {
    /// The action's kind, as `--output json` names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::PrepareTarget { .. } => "prepare-target",
            Action::LinkWaldir(_) => "link-waldir",
            Action::CreateStaging(_) => "create-staging",
            Action::CreateTablespaceDirs(_) => "create-tablespace-dirs",
            Action::CreateSlot(_) => "create-slot",
            Action::WarmWal { .. } => "warm-wal",
            Action::RunSource => "run-source",
            Action::RemoveUnlisted => "remove-unlisted",
            Action::VerifyCopy => "verify-copy",
            Action::VerifyManifest { .. } => "verify-manifest",
            Action::CopyExternal(_) => "copy-external",
            Action::ClearRecovery => "clear-recovery",
            Action::WriteRecovery => "write-recovery",
        }
    }
}

/// The clone's plan.
pub struct Plan {
    pub source: SourcePlan,
    pub server_version: u32,
    pub recovery: RecoveryConfig,
    pub no_restore_command: bool,
    pub actions: Vec<Action>,
    /// What an interrupted clone into this target left (repaired on the way).
    pub leftover: Option<Leftover>,
}

impl Plan {
    /// Lays out the actions, in the order they run. Called once every check
    /// passed.
    pub async fn new(ctx: &Context<'_>, d: Decided) -> anyhow::Result<Plan> {
        let recovery = d.recovery.expect("the checks passed");
        let (o, node, s) = (ctx.o, &ctx.node, &d.source);
        let mut a = Vec::new();
        let copy = !o.replication_conf_only;
        let leftover = match copy {
            true => leftover::find(&ctx.target.real)?,
            false => None,
        };
        let link_waldir = node
            .waldir
            .clone()
            .filter(|_| copy && s.host_places_files());
        if copy {
            a.push(Action::PrepareTarget { delta: s.delta });
            // pg_combinebackup wants an empty data directory: linked after it.
            if let (Some(w), None) = (&link_waldir, &s.staging) {
                a.push(Action::LinkWaldir(w.clone()));
            }
            if let Some(d) = &s.staging {
                a.push(Action::CreateStaging(d.clone()));
            }
            if !s.tablespaces.is_empty() {
                a.push(Action::CreateTablespaceDirs(
                    s.tablespaces.values().cloned().collect(),
                ));
            }
        }
        if let (Some(slot), Some(c)) = (&node.slot_name, &ctx.up.client) {
            // The one an interrupted clone made is made again (see execute).
            let left = leftover.as_ref().and_then(|l| l.slot.as_deref()) == Some(slot);
            if left || upstream::slot_state(c, slot).await?.is_none() {
                a.push(Action::CreateSlot(slot.to_string()));
            }
        }
        if copy {
            if let Some(rc) = warm_restore_command(ctx, s, &recovery) {
                a.push(Action::WarmWal {
                    restore_command: rc,
                });
            }
            a.push(Action::RunSource);
            if let (Some(w), Some(_)) = (&link_waldir, &s.staging) {
                a.push(Action::LinkWaldir(w.clone()));
            }
            if s.delta {
                a.push(Action::RemoveUnlisted);
            }
            a.push(Action::VerifyCopy);
            if s.unpacks || s.staging.is_some() {
                a.push(Action::VerifyManifest { unpacked: true });
            } else if o.verify_backup {
                a.push(Action::VerifyManifest { unpacked: false });
            }
            if let (Some(mode), Some(_)) = (&o.copy_external_config_files, &ctx.up.info) {
                a.push(Action::CopyExternal(*mode));
            }
        }
        a.push(if o.patroni {
            Action::ClearRecovery
        } else {
            Action::WriteRecovery
        });
        Ok(Plan {
            source: d.source,
            server_version: d.server_version,
            recovery,
            no_restore_command: d.no_restore_command,
            actions: a,
            leftover,
        })
    }

    /// Whether `dir`, filled by an interrupted clone, is a tablespace or WAL
    /// directory of this clone too (then `-F` empties it first).
    pub fn refills(&self, ctx: &Context<'_>, dir: &std::path::Path) -> bool {
        let same = |d: &std::path::Path| safety::normalize(d) == safety::normalize(dir);
        ctx.o.force
            && !self.source.delta
            && (self.source.tablespaces.values().any(|d| same(d))
                || ctx.node.waldir.as_deref().is_some_and(same))
    }

    /// `--dry-run`'s account: every action, in order, with its lines; the
    /// source's steps numbered; the files the configuration writes.
    pub fn views(&self, ctx: &Context<'_>) -> anyhow::Result<Vec<ActionView>> {
        self.actions
            .iter()
            .map(|a| {
                Ok(ActionView {
                    action: a.kind(),
                    lines: self.describe(ctx, a)?,
                })
            })
            .collect()
    }

    /// Prints the dry run's account on standard output.
    pub fn print(views: &[ActionView]) {
        println!("plan:");
        for line in views.iter().flat_map(|v| &v.lines) {
            println!("  {line}");
        }
    }

    /// The files the recovery configuration would write and remove now.
    pub fn files(&self, ctx: &Context<'_>) -> anyhow::Result<Vec<FileView>> {
        if !self
            .actions
            .iter()
            .any(|a| matches!(a, Action::WriteRecovery))
        {
            return Ok(Vec::new());
        }
        Ok(FileView::of(&ctx.target.real, &self.rendered(ctx)?))
    }

    /// The recovery configuration as it would be written now.
    fn rendered(&self, ctx: &Context<'_>) -> anyhow::Result<crate::recovery::RenderedConfig> {
        let existing = if ctx.o.replication_conf_only {
            read_existing(&ctx.target.real, "postgresql.auto.conf")?
        } else {
            None
        };
        Ok(render(&self.recovery, existing.as_deref()))
    }

    /// What an action does, as lines.
    fn describe(&self, ctx: &Context<'_>, action: &Action) -> anyhow::Result<Vec<String>> {
        let dir = ctx.target.real.display();
        Ok(match action {
            Action::PrepareTarget { delta } => {
                let mut v = match (&ctx.target.state, delta) {
                    (TargetState::Missing, _) => vec![format!("create {dir} (mode 0700)")],
                    (TargetState::Populated { .. }, true) => vec![format!("keep {dir} for a delta copy")],
                    (TargetState::Populated { .. }, false) => vec![format!("empty {dir}")],
                    (TargetState::Empty, _) => vec![],
                };
                if let Some(l) = &self.leftover {
                    if let Some(s) = &l.staging {
                        v.push(format!("remove the staging directory {} that {} left", s.display(), l.who()));
                    }
                    for d in l.dirs.iter().filter(|d| self.refills(ctx, d)) {
                        v.push(format!("empty {} ({} filled it)", d.display(), l.who()));
                    }
                }
                v
            }
            Action::LinkWaldir(w) => vec![format!("link {dir}/pg_wal to {} (created 0700)", w.display())],
            Action::CreateStaging(d) => vec![format!(
                "create staging directory {} (mode 0700; removed after the clone)",
                d.display()
            )],
            Action::CreateTablespaceDirs(dirs) => dirs
                .iter()
                .map(|d| format!("create tablespace directory {} (mode 0700) if missing", d.display()))
                .collect(),
            Action::CreateSlot(slot) => match &self.leftover {
                Some(l) if l.slot.as_ref() == Some(slot) => vec![format!(
                    "drop replication slot \"{slot}\" that {} made, if it is still there, and create it again on the upstream",
                    l.who()
                )],
                _ => vec![format!("create replication slot \"{slot}\" on the upstream")],
            },
            Action::WarmWal { .. } => vec![format!(
                "fetch up to {} WAL segments since the backup into restore_command's spool while the copy runs",
                ctx.node.warm_segments
            )],
            Action::RunSource => self.source_lines(),
            Action::RemoveUnlisted => vec![format!("remove the files of {dir} the backup does not have (delta copy)")],
            Action::VerifyCopy => vec![format!("check that {dir} is a complete data directory, with no link that leads out of it, its tablespaces or its WAL directory")],
            Action::VerifyManifest { unpacked: true } => {
                vec!["verify every file against the backup's manifest".into()]
            }
            Action::VerifyManifest { unpacked: false } => {
                vec!["verify every file against pg_basebackup's manifest (pg_verifybackup)".into()]
            }
            Action::CopyExternal(mode) => {
                let u = ctx.up.info.as_ref().expect("planned with the upstream's settings");
                let host = ctx.up.meta.params.get("host").unwrap_or("");
                let dest = external::ssh_dest(host, ctx.o.remote_user.as_deref(), ctx.up.is_local());
                external::plan(mode, u, &dest, ctx.up.is_local(), &ctx.target.real)
            }
            Action::ClearRecovery => vec!["remove recovery settings the copy brought along (Patroni writes its own)".into()],
            Action::WriteRecovery => self.recovery_lines(ctx)?,
        })
    }

    /// The source's steps, numbered. Arguments, paths and descriptions come
    /// from the plugin: escaped.
    fn source_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, s) in self.source.steps.iter().enumerate() {
            for (j, line) in s.describe().iter().enumerate() {
                lines.push(match j {
                    0 => format!("{}. {}", i + 1, report::escape(line)),
                    _ => format!("   ({})", report::escape(line)),
                });
            }
        }
        lines
    }

    /// The recovery configuration's files, as they would be written now.
    fn recovery_lines(&self, ctx: &Context<'_>) -> anyhow::Result<Vec<String>> {
        let dir = ctx.target.real.display();
        let rendered = self.rendered(ctx)?;
        let mut lines =
            vec!["write the recovery configuration (last, after a verified copy):".to_string()];
        for (name, contents) in &rendered.files {
            lines.push(format!("  {dir}/{name}:"));
            lines.extend(contents.lines().map(|l| format!("    {l}")));
        }
        lines.extend(
            rendered
                .remove
                .iter()
                .map(|name| format!("  remove {dir}/{name} if present")),
        );
        Ok(lines)
    }
}

/// The restore_command to warm up for: the recovery configuration's, when it
/// is pgclone's own wal-restore and the clone restores a backup (not for
/// Patroni, whose restore_command pgclone does not write).
fn warm_restore_command(
    ctx: &Context<'_>,
    s: &SourcePlan,
    recovery: &RecoveryConfig,
) -> Option<String> {
    let b = s.backup.as_ref()?;
    let rc = recovery
        .settings
        .iter()
        .find(|s| s.name == "restore_command")
        .map(|s| s.value.as_str())
        .filter(|v| !v.trim().is_empty())?;
    let window = ctx.node.warm_segments;
    let usable = !ctx.o.patroni
        && window > 0
        && warm_wal::warm_argv(rc, &b.begin_wal, 16 << 20, window).is_some();
    usable.then(|| rc.to_string())
}
