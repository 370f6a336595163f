//! Phase 4: the plan's actions, in order. From here on things change: a
//! failure or a signal stops at once, and rollback undoes what this clone did.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::report::{self, Failure};

use super::leftover::Journal;
use super::outcome::{FileView, Outcome};
use super::plan::{Action, Plan};
use super::resolve::Context;
use super::rollback::Done;
use super::steps::{self, Step};
use super::{configure, external, interrupt, progress, rollback, target, upstream, verify};

/// Runs every action; on failure (or SIGINT/SIGTERM), rolls back and returns
/// the failure with what was undone in its hint. The staging directory goes
/// either way. Each action, its result and time, and the files written are
/// recorded in `out`.
pub async fn run(
    ctx: &Context<'_>,
    plan: &Plan,
    executing: &AtomicBool,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    let exec = exec_context(ctx, plan)?;
    let mut done = Done::default();
    executing.store(true, Ordering::SeqCst);
    let result = tokio::select! {
        r = run_actions(ctx, plan, &exec, &mut done, out) => r,
        sig = interrupt::wait() => Err(interrupt::failure(sig)),
    };
    if let Some(d) = &plan.source.staging {
        // Begun when the source's steps ended; if they did not, now.
        match done.staging_removal.take() {
            Some(removal) => {
                let _ = removal.await;
            }
            None => remove_staging(d),
        }
    }
    let result = match result {
        Ok(()) => Ok(()),
        Err(e) => Err(rollback::undo(ctx, plan, &done, e).await),
    };
    // Kept only when the rollback could not drop the slot: the rerun does.
    if let Some(j) = done.journal.take() {
        let slot_left = match (&done.created_slot, &ctx.up.client, &result) {
            (Some(slot), Some(c), Err(_)) => {
                !matches!(upstream::slot_state(c, slot).await, Ok(None))
            }
            _ => false,
        };
        if !slot_left {
            j.end();
        }
    }
    result
}

/// What the copy is said to be: a backup taken earlier is retrieved from its
/// source (`Barman`, `backup source "NAME"`).
fn retrieving(ctx: &Context<'_>) -> String {
    match ctx.source.as_deref() {
        Some(s) if ctx.from_backup => format!("retrieving backup from {}...", s.source_name()),
        _ => "starting the copy".into(),
    }
}

/// The shared connection the steps' own ssh goes through: the one to the
/// source's ssh target when it has one (a step names no connection, so a
/// source with several targets has its steps connect on their own).
fn shared_connection(ctx: &Context<'_>) -> Option<std::path::PathBuf> {
    match ctx.source.as_deref()?.ssh_targets()[..] {
        [t] => ctx.env.control_path(t).map(std::path::Path::to_path_buf),
        _ => None,
    }
}

/// What the source's steps run with.
fn exec_context(ctx: &Context<'_>, plan: &Plan) -> anyhow::Result<steps::ExecContext> {
    let (repl, s) = (&ctx.repl, &plan.source);
    Ok(steps::ExecContext {
        auth: steps::ChildAuth {
            password: if repl.password_source.as_deref() == Some("the connection string") {
                repl.password.clone()
            } else {
                None
            },
            passfile: ctx.node.passfile.clone(),
            service_file: repl.child_service_file(ctx.scratch.path())?,
        },
        jobs: ctx.node.jobs,
        ssh_options: ctx.env.ssh_options.clone(),
        scratch: ctx.scratch.path().to_path_buf(),
        control_path: shared_connection(ctx),
        show_progress: progress::live(),
        expected_bytes: s.size_bytes(),
        wal_span: s
            .backup
            .as_ref()
            .map_or(0, |b| crate::wal::lsn_span(&b.begin_lsn, &b.end_lsn)),
        roots: std::iter::once(ctx.target.real.clone())
            .chain(s.tablespaces.values().cloned())
            .chain(s.staging.iter().cloned())
            .chain(ctx.node.waldir.iter().cloned())
            .collect(),
    })
}

async fn run_actions(
    ctx: &Context<'_>,
    plan: &Plan,
    exec: &steps::ExecContext,
    done: &mut Done,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    for action in &plan.actions {
        let t = out.started(action.kind());
        let r = perform(ctx, plan, exec, done, action, out).await;
        out.ended(r.is_ok(), t);
        r?;
    }
    Ok(())
}

async fn perform(
    ctx: &Context<'_>,
    plan: &Plan,
    exec: &steps::ExecContext,
    done: &mut Done,
    action: &Action,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    let (target, s) = (&ctx.target, &plan.source);
    match action {
        Action::PrepareTarget { delta } => {
            repair(ctx, plan)?;
            match delta {
                true => target.prepare_for_delta()?,
                false => target.prepare()?,
            }
            let dirs: Vec<_> = s
                .tablespaces
                .values()
                .chain(ctx.node.waldir.iter())
                .cloned()
                .collect();
            done.journal = Journal::begin(&target.real, &dirs);
        }
        Action::LinkWaldir(w) => target::link_waldir(&target.real, w)?,
        Action::CreateStaging(d) => create_dir(d, false)?,
        Action::CreateTablespaceDirs(dirs) => {
            for d in dirs {
                create_dir(d, true)?;
            }
        }
        Action::CreateSlot(slot) => create_slot(ctx, plan, slot, done).await?,
        Action::WarmWal { restore_command } => {
            let backup = s.backup.as_ref().expect("planned for a backup");
            done.warm = super::warm_wal::start(
                restore_command,
                backup,
                &target.real,
                ctx.node.warm_segments,
            );
        }
        Action::RunSource => {
            report::notice(&retrieving(ctx));
            steps::execute(&s.steps, exec).await?;
            // What was staged is in the data directory now: it goes while
            // the copy is checked.
            if let Some(d) = s.staging.clone() {
                done.staging_removal =
                    Some(tokio::task::spawn_blocking(move || remove_staging(&d)));
            }
            if let Some(w) = &done.warm {
                let n = w.spooled();
                report::info(&format!(
                    "wal: {} since the backup {} already in restore_command's spool",
                    report::count(n, "segment", "segments"),
                    if n == 1 { "is" } else { "are" }
                ));
            }
        }
        Action::RemoveUnlisted => remove_unlisted(&target.real, &s.steps)?,
        Action::VerifyCopy => {
            // Whatever made the copy (and a delta copy's clean-up after it),
            // no link in it may lead out of it; nothing is written into it
            // before this (the recovery configuration, external files).
            super::links::check(&super::links::Layout {
                data_dir: &target.real,
                tablespaces: &s.tablespaces,
                waldir: ctx.node.waldir.as_deref(),
            })?;
            verify::verify_not_incremental(&target.real)?;
            verify::verify_copy(&target.real)?;
        }
        Action::VerifyManifest { unpacked: true } => {
            verify::verify_unpacked(&ctx.env, &target.real, plan.server_version, &s.tablespaces)
                .await?
        }
        Action::VerifyManifest { unpacked: false } => {
            verify::verify_backup(&ctx.env, &target.real, plan.server_version).await?
        }
        Action::CopyExternal(mode) => {
            let u = ctx
                .up
                .info
                .as_ref()
                .expect("planned with the upstream's settings");
            let local = ctx.up.is_local();
            let host = ctx.up.meta.params.get("host").unwrap_or("");
            let dest = external::ssh_dest(host, ctx.o.remote_user.as_deref(), local);
            external::copy(mode, u, &dest, local, &ctx.env.ssh_options, &target.real).await?
        }
        Action::ClearRecovery => {
            let r = configure::clear(ctx, plan)?;
            out.files.extend(FileView::of(&target.real, &r));
        }
        Action::WriteRecovery => {
            let r = configure::write(ctx, plan)?;
            out.files.extend(FileView::of(&target.real, &r));
        }
    }
    Ok(())
}

fn create_dir(d: &Path, recursive: bool) -> Result<(), Failure> {
    std::fs::DirBuilder::new()
        .recursive(recursive)
        .mode(0o700)
        .create(d)
        .map_err(|e| {
            Failure::new(format!("could not create directory \"{}\"", d.display()))
                .detail(e.to_string())
        })
}

/// What an interrupted clone left, before this one prepares the target: its
/// staging directory and journal go, and with `-F` the directories it filled
/// that this clone fills too (the target itself is emptied by `prepare`).
/// Checked before: without `-F` only a journal is left here.
fn repair(ctx: &Context<'_>, plan: &Plan) -> anyhow::Result<()> {
    let Some(l) = &plan.leftover else {
        return Ok(());
    };
    let mut said = l.remove()?;
    let populated = matches!(ctx.target.state, target::TargetState::Populated { .. });
    if ctx.o.force && l.journal.is_some() && populated && !plan.source.delta {
        said.push(format!(
            "the incomplete copy in \"{}\" left by {} is removed",
            ctx.node.data_dir.display(),
            l.who()
        ));
    }
    for d in l.dirs.iter().filter(|d| plan.refills(ctx, d) && d.is_dir()) {
        target::empty_dir(d).map_err(|e| {
            Failure::new(format!("could not empty \"{}\"", d.display())).detail(e.to_string())
        })?;
        said.push(format!(
            "\"{}\", which {} filled, was emptied",
            d.display(),
            l.who()
        ));
    }
    for s in said {
        report::info(&s);
    }
    Ok(())
}

/// Created only when it is still missing (a slot made since the plan is
/// used, not made twice); one this clone made is dropped on rollback. The
/// one an interrupted clone made (its journal names it) is dropped and made
/// again: it has been holding WAL since that clone for nothing, and a clone
/// makes its slot at this point, so a new one is exactly what an
/// uninterrupted clone would have left.
async fn create_slot(
    ctx: &Context<'_>,
    plan: &Plan,
    slot: &str,
    done: &mut Done,
) -> anyhow::Result<()> {
    let Some(c) = &ctx.up.client else {
        return Ok(());
    };
    let left = plan
        .leftover
        .as_ref()
        .filter(|l| l.slot.as_deref() == Some(slot));
    let mut repaired = None;
    match (upstream::slot_state(c, slot).await?, left) {
        (None, _) => {}
        (Some(false), Some(l)) => {
            let since = upstream::slot_restart_lsn(c, slot).await.ok().flatten();
            upstream::drop_slot(c, slot).await?;
            repaired =
                Some(format!(
                "replication slot \"{slot}\", left inactive by {}{}, was dropped and created again",
                l.who(),
                since.map(|l| format!(" and holding WAL since {l}")).unwrap_or_default()
            ));
        }
        (Some(true), Some(l)) => return Err(Failure::new(format!(
            "replication slot \"{slot}\" that {} made is in use",
            l.who()
        ))
        .hint(
            "another server streams through it: check that no other standby uses this node's slot",
        )
        .into()),
        // Made by someone else since the plan was printed: used as it is.
        (Some(_), None) => {
            report::notice(&format!(
                "replication slot \"{slot}\" was not created: it exists on the upstream already (made since the clone began); the standby uses it"
            ));
            return Ok(());
        }
    }
    if let Some(j) = &done.journal {
        // Before it exists: a kill right after creating it still names it.
        j.slot_created(slot);
    }
    upstream::create_slot(c, slot).await?;
    report::info(
        &repaired.unwrap_or_else(|| format!("replication slot \"{slot}\" created on the upstream")),
    );
    done.created_slot = Some(slot.to_string());
    Ok(())
}

/// A delta copy leaves what the backup no longer has: every file no step put
/// into the data directory (a copy-tree step copied, a write-file step
/// wrote) goes (pg_tblspc's and pg_wal's links stay).
fn remove_unlisted(datadir: &Path, plan: &[Step]) -> anyhow::Result<()> {
    let placed = steps::placed(plan, datadir);
    let removed = steps::remove_unlisted(datadir, &placed, &["pg_tblspc", "pg_wal"])?;
    report::info(&format!(
        "delta copy: {} not in the backup {} removed",
        report::count(removed, "file", "files"),
        if removed == 1 { "was" } else { "were" }
    ));
    Ok(())
}

/// Created by this clone: whatever happened, it goes.
fn remove_staging(d: &Path) {
    if let Err(e) = std::fs::remove_dir_all(d) {
        if e.kind() != std::io::ErrorKind::NotFound {
            report::warning(
                &format!("could not remove the staging directory \"{}\"", d.display()),
                Some(&e.to_string()),
            );
        }
    }
}
