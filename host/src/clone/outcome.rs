//! What a clone checked, planned, did and wrote, with its timings: the
//! values its text is printed from, kept for `--output json`.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::recovery::RenderedConfig;

use super::checks::CheckView;

/// The clone's record, filled as its phases run.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub dry_run: bool,
    /// The checks, in the order they are listed.
    pub checks: Vec<CheckView>,
    /// The plan's actions, in the order they run (as the dry run lists them).
    pub actions: Vec<ActionView>,
    /// A dry run: the files the recovery configuration would write or
    /// remove; a clone: those it wrote or removed.
    pub files: Vec<FileView>,
    /// A clone: the actions that ran, in order, each with its result.
    pub performed: Vec<Performed>,
    /// How long each phase took.
    pub phases: Vec<PhaseTime>,
}

/// One action of the plan, as the dry run lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ActionView {
    /// What kind of action (prepare-target, create-slot, run-source, ...).
    pub action: &'static str,
    /// Its lines in the dry run's text.
    pub lines: Vec<String>,
}

/// A file the recovery configuration writes or removes.
#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    pub path: String,
    /// write or remove.
    pub operation: &'static str,
    /// What is written (none for a removal).
    pub contents: Option<String>,
}

impl FileView {
    /// The files of `config` in the data directory `dir`: those written,
    /// then those removed (if present).
    pub fn of(dir: &Path, config: &RenderedConfig) -> Vec<FileView> {
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let written = config.files.iter().map(|(name, contents)| FileView {
            path: path(name),
            operation: "write",
            contents: Some(contents.clone()),
        });
        let removed = config.remove.iter().map(|name| FileView {
            path: path(name),
            operation: "remove",
            contents: None,
        });
        written.chain(removed).collect()
    }
}

/// One action that ran.
#[derive(Debug, Clone, Serialize)]
pub struct Performed {
    pub action: &'static str,
    /// ok, failed, or interrupted (a signal, or a failure elsewhere, ended it).
    pub result: &'static str,
    pub seconds: f64,
}

/// How long one phase took: resolve (settings, plugins, connections),
/// checks, plan, execute (the actions).
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTime {
    pub phase: &'static str,
    pub seconds: f64,
}

impl Outcome {
    /// Notes that `phase`, begun at `since`, is over.
    pub fn phase(&mut self, phase: &'static str, since: Instant) {
        self.phases.push(PhaseTime {
            phase,
            seconds: since.elapsed().as_secs_f64(),
        });
    }

    /// Notes that `action` starts; [`Outcome::ended`] says how it ended.
    pub fn started(&mut self, action: &'static str) -> Instant {
        self.performed.push(Performed {
            action,
            result: "interrupted",
            seconds: 0.0,
        });
        Instant::now()
    }

    /// Notes how the action last started ended.
    pub fn ended(&mut self, ok: bool, since: Instant) {
        if let Some(p) = self.performed.last_mut() {
            p.result = if ok { "ok" } else { "failed" };
            p.seconds = since.elapsed().as_secs_f64();
        }
    }
}
