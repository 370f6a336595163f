//! Running a validated plan, step by step: each step runs as its kind says
//! ([`super::Kind::run`]), with what [`Running`] holds for all of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{CopyStats, ExecContext, Step};
use crate::clone::progress::Phase;
use crate::report::Failure;

/// A plan being run: how steps run, what they moved so far, and where the
/// run is.
pub struct Running<'a> {
    pub ctx: &'a ExecContext,
    /// What the steps moved so far.
    pub stats: CopyStats,
    steps: &'a [Step],
    /// The next step to run.
    next: usize,
    /// Steps already run ahead of their turn (a manifest fetched before the
    /// archives it describes).
    ran: Vec<bool>,
    /// One phase for all copy-tree steps (the data directory and each
    /// tablespace), against the backup's size.
    copy_phase: Option<Arc<Phase>>,
}

impl<'a> Running<'a> {
    /// The copy's one progress phase, started by the first step that needs it.
    pub fn copy_phase(&mut self) -> Arc<Phase> {
        let ctx = self.ctx;
        self.copy_phase
            .get_or_insert_with(|| {
                let total = (ctx.expected_bytes > 0).then_some(ctx.expected_bytes);
                Phase::with_display("copy", total, ctx.show_progress)
            })
            .clone()
    }

    fn end_copy_phase(&mut self) {
        if let Some(p) = self.copy_phase.take() {
            p.finish();
        }
    }

    /// Takes the steps right after the current one for as long as `f`
    /// accepts them: they run now, with it.
    pub fn take_following<T>(&mut self, f: impl Fn(&'a Step) -> Option<T>) -> Vec<T> {
        let mut taken = Vec::new();
        while let Some(t) = self.steps.get(self.next).and_then(&f) {
            taken.push(t);
            self.next += 1;
        }
        taken
    }

    /// The steps after the current one (and those it took), by index.
    pub fn later(&self) -> impl Iterator<Item = (usize, &'a Step)> + use<'a> {
        let steps = self.steps;
        (self.next..steps.len()).map(move |i| (i, &steps[i]))
    }

    /// Step `i` (from [`Running::later`]) was run ahead of its turn.
    pub fn ran_ahead(&mut self, i: usize) {
        self.ran[i] = true;
    }
}

/// Runs the steps in order; stops at the first failure. Returns what the
/// copy-tree steps moved.
pub async fn execute(steps: &[Step], ctx: &ExecContext) -> anyhow::Result<CopyStats> {
    let mut r = Running {
        ctx,
        stats: CopyStats::default(),
        steps,
        next: 0,
        ran: vec![false; steps.len()],
        copy_phase: None,
    };
    while let Some(step) = steps.get(r.next) {
        r.next += 1;
        if r.ran[r.next - 1] {
            continue;
        }
        if !step.copy_phase() {
            r.end_copy_phase();
        }
        step.run(&mut r).await?;
    }
    r.end_copy_phase();
    Ok(r.stats)
}

/// Creates a directory steps write into (and its parents).
pub fn create_local(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Failure::new(format!("could not create directory \"{}\"", dir.display()))
            .detail(e.to_string())
    })
}

/// The bytes of the regular files under `roots` (symbolic links not followed).
pub fn tree_bytes(roots: &[PathBuf]) -> u64 {
    let mut total = 0;
    let mut stack = roots.to_vec();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}
