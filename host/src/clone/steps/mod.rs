//! A source plugin's plan, every kind of step in one place. A source asks for
//! steps in the contract's types (`crate::contract::source::PlanStep`); the
//! plan is checked whole before any step runs ([`validate`]), each step
//! becoming its kind's validated form; `--dry-run` shows each as its kind
//! describes it; then the host runs them in order with every exit status
//! checked ([`run`]), every write confined to the clone's directories
//! ([`confine`]).
//!
//! Everything the host knows about one kind (its validated form, its checks,
//! its description, how it runs) is in its own file under `kinds/`, behind
//! [`Kind`]. Adding a kind: the file, and one line in the `kinds!` list
//! below.

mod confine;
mod run;
mod validate;

use std::path::{Path, PathBuf};

use crate::contract::source::PlanStep;
use crate::report::Failure;

pub use confine::confined;
pub use kinds::combine_backups::{check_combine_tool, combines, staging_dir};
pub use kinds::copy_tree::{remove_unlisted, CopyStats, Files};
pub use run::{execute, tree_bytes, Running};
pub use validate::{beside, Validation, MAX_STEPS};

/// What every kind of plan step is, behind the one [`Step`] enum: each
/// kind's file under `kinds/` implements it for its validated form.
#[allow(async_fn_in_trait)] // called on the concrete kinds only (by [`Step`])
pub trait Kind: Sized {
    /// The step as a source asks for it (`crate::contract::source`).
    type Asked;

    /// Whether it runs in the copy's one progress phase, which ends before
    /// a step of another kind runs.
    const COPY_PHASE: bool = false;

    /// Checks what a source asked for, before any step of the plan runs:
    /// paths resolved into the clone's directories, names clean, what it
    /// runs declared, granted and found.
    fn check(asked: &Self::Asked, v: &Validation<'_>) -> Result<Self, Failure>;

    /// What it does over the populated data directory of a delta copy.
    fn in_place(_asked: &Self::Asked) -> InPlace {
        InPlace::NeedsEmpty
    }

    /// What `--dry-run` shows: one line, then any notes. The caller escapes
    /// them (they hold what the plugin said).
    fn describe(&self) -> Vec<String>;

    /// The files it puts into `dir`, which a delta copy keeps.
    fn places(&self, _dir: &Path) -> Vec<PathBuf> {
        Vec::new()
    }

    /// Runs it; it may take the steps after it that run together with it
    /// (archives in a row).
    async fn run(&self, r: &mut Running<'_>) -> anyhow::Result<()>;
}

/// What a step does over the populated data directory of a delta copy (`-F`
/// over a data directory of the backup's own system).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InPlace {
    /// Copies only what differs (rsync compares the files): what makes a
    /// delta copy worth it.
    Compares,
    /// Makes or rewrites what it names, whatever is there.
    Rewrites,
    /// Wants an empty directory (a program's, an archive unpacked whole).
    NeedsEmpty,
}

/// The kinds of step: `Name(file)`, one line each. Declares `kinds::file`,
/// the [`Step`] enum with a case `Name(kinds::file::Name)` each, and the
/// dispatch from a source's [`PlanStep`] of the same name.
macro_rules! kinds {
    ($($kind:ident($file:ident)),* $(,)?) => {
        pub mod kinds {
            $(pub mod $file;)*
        }

        /// A step the host has checked, ready to run.
        #[derive(Debug, Clone)]
        pub enum Step {
            $($kind(kinds::$file::$kind),)*
        }

        impl Step {
            fn check(asked: &PlanStep, v: &Validation<'_>) -> Result<Step, Failure> {
                match asked {
                    $(PlanStep::$kind(a) => Kind::check(a, v).map(Step::$kind),)*
                }
            }

            fn in_place(asked: &PlanStep) -> InPlace {
                match asked {
                    $(PlanStep::$kind(a) => kinds::$file::$kind::in_place(a),)*
                }
            }

            /// What `--dry-run` shows of it: a line, then any notes
            /// (unescaped: they hold what the plugin said).
            pub fn describe(&self) -> Vec<String> {
                match self {
                    $(Step::$kind(s) => s.describe(),)*
                }
            }

            fn copy_phase(&self) -> bool {
                match self {
                    $(Step::$kind(_) => kinds::$file::$kind::COPY_PHASE,)*
                }
            }

            fn places(&self, dir: &Path) -> Vec<PathBuf> {
                match self {
                    $(Step::$kind(s) => s.places(dir),)*
                }
            }

            async fn run(&self, r: &mut Running<'_>) -> anyhow::Result<()> {
                match self {
                    $(Step::$kind(s) => s.run(r).await,)*
                }
            }
        }
    };
}

kinds! {
    RunLocal(run_local),
    CopyTree(copy_tree),
    CreateDir(create_dir),
    WriteFile(write_file),
    UnpackArchive(unpack_archive),
    CombineBackups(combine_backups),
    UnpackObjects(unpack_objects),
}

/// True when a plan may run over the populated data directory of the
/// backup's own system and copy only what changed: it copies by comparison,
/// and every other step only makes what it names.
pub fn copies_in_place(plan: &[PlanStep]) -> bool {
    let ways: Vec<InPlace> = plan.iter().map(Step::in_place).collect();
    ways.contains(&InPlace::Compares) && !ways.contains(&InPlace::NeedsEmpty)
}

/// The files the steps put into `dir`: what a delta copy keeps there.
pub fn placed(steps: &[Step], dir: &Path) -> Vec<PathBuf> {
    steps.iter().flat_map(|s| s.places(dir)).collect()
}

/// What the children of a clone get for authentication, never on argv.
#[derive(Debug, Default, Clone)]
pub struct ChildAuth {
    /// Set as PGPASSWORD when the password came from the connection string.
    pub password: Option<String>,
    /// Set as PGPASSFILE (the `passfile` configuration key).
    pub passfile: Option<String>,
    /// Set as PGSERVICEFILE (with PGSERVICE=pgclone): `sslpassword`.
    pub service_file: Option<PathBuf>,
}

/// How steps run.
#[derive(Debug, Default, Clone)]
pub struct ExecContext {
    pub auth: ChildAuth,
    /// Parallel streams for copy-tree steps.
    pub jobs: usize,
    pub ssh_options: Vec<String>,
    /// A private directory for rsync file lists (outside the data directory).
    pub scratch: PathBuf,
    /// The clone's shared ssh connection, when there is one.
    pub control_path: Option<PathBuf>,
    /// Show a live byte counter (standard error is a terminal).
    pub show_progress: bool,
    /// The backup's size as the source declares it (0 when unknown): the
    /// counter's total, and the bound of uncompressed archives.
    pub expected_bytes: u64,
    /// The bytes of WAL the backup spans (its end LSN less its start): the
    /// margin for WAL an archive carries beside its manifest's files.
    pub wal_span: u64,
    /// Where steps may write: the data directory, the tablespaces, the WAL
    /// directory.
    pub roots: Vec<PathBuf>,
}

#[cfg(test)]
mod tests;
