//! Undoing a failed clone: what it made goes (the replication slot it
//! created, the copy, the tablespace and WAL directories it filled, the WAL
//! warm-up), and the failure says what was undone. Nothing of a failed
//! clone can be started as a standby: the recovery configuration is written
//! last.

use crate::report::{self, Failure};

use super::leftover::Journal;
use super::plan::Plan;
use super::resolve::Context;
use super::warm_wal::Warm;
use super::{target, upstream};

/// What this clone did that rollback must undo.
#[derive(Default)]
pub struct Done {
    pub created_slot: Option<String>,
    pub warm: Option<Warm>,
    /// Kept beside the target while the clone runs (see `leftover`).
    pub journal: Option<Journal>,
    /// The staging directory being removed, once the source's steps no
    /// longer need it.
    pub staging_removal: Option<tokio::task::JoinHandle<()>>,
}

/// Rolls back after `e`; returns `e` with what was done in its hint.
pub async fn undo(ctx: &Context<'_>, plan: &Plan, done: &Done, e: anyhow::Error) -> anyhow::Error {
    let (o, data_dir) = (ctx.o, &ctx.node.data_dir);
    if let Some(w) = &done.warm {
        w.stop();
    }
    let mut notes = Vec::new();
    if let (Some(slot), Some(c)) = (&done.created_slot, &ctx.up.client) {
        match upstream::drop_slot(c, slot).await {
            Ok(()) => notes.push(format!("replication slot \"{slot}\" was dropped again")),
            Err(d) => notes.push(format!(
                "replication slot \"{slot}\" could not be dropped: {}",
                report::render(&d)
            )),
        }
    }
    if !o.replication_conf_only {
        if let Some(w) = &ctx.node.waldir {
            // It was empty (or held this node's old WAL) before the clone.
            let _ = target::empty_dir(w);
        }
        if !plan.source.delta {
            // They were checked empty before the clone.
            for d in plan.source.tablespaces.values() {
                let _ = target::empty_dir(d);
            }
        }
        if ctx.target.real.is_dir() {
            notes.push(match target::empty_dir(&ctx.target.real) {
                Ok(()) => format!(
                    "the incomplete copy in \"{}\" was removed",
                    data_dir.display()
                ),
                Err(d) => format!(
                    "the incomplete copy in \"{}\" could not be removed: {d}",
                    data_dir.display()
                ),
            });
        }
    }
    let mut f = match e.downcast::<Failure>() {
        Ok(f) => f,
        Err(e) => Failure::new(report::render(&e).replacen("ERROR: ", "", 1)),
    };
    if !o.patroni {
        notes.push("no recovery configuration was written".into());
    }
    let hint = [f.hint.take(), Some(notes.join("; "))]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    f.hint(hint).into()
}
