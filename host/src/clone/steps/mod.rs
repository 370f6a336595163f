//! A source plugin's plan: validated whole before any step runs
//! ([`validate`]), then executed by the host with every exit status checked
//! ([`run`]); every write is confined to the clone's directories
//! ([`confine`]).

mod confine;
pub mod copy_tree;
mod run;
pub mod unpack;
mod validate;

use std::path::PathBuf;

pub use confine::confined;
pub use run::{execute, tree_bytes};
pub use validate::{
    beside, check_combine_tool, combines, staging_dir, validate, validate_with_staging, MAX_STEPS,
    MAX_WRITE_FILE,
};

/// A step the host has checked, ready to run.
#[derive(Debug, Clone)]
pub enum Step {
    Run {
        program: PathBuf,
        args: Vec<String>,
        description: String,
        uses_password: bool,
    },
    CopyTree {
        dest: String,
        remote_path: String,
        local: PathBuf,
        files: Vec<String>,
    },
    CreateDir {
        path: PathBuf,
        mode: u32,
    },
    WriteFile {
        path: PathBuf,
        contents: String,
        mode: u32,
    },
    /// Stream a remote tar archive and unpack it (steps in a row run in parallel).
    Unpack(unpack::Archive),
    /// `pg_combinebackup BACKUPS... -o OUTPUT` (an incremental backup chain,
    /// oldest first, combined into the data directory).
    Combine {
        program: PathBuf,
        backups: Vec<PathBuf>,
        output: PathBuf,
    },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Run { program, args, .. } => {
                write!(f, "run {}", program.display())?;
                for a in args {
                    write!(f, " {}", crate::remote::shell_quote(a))?;
                }
                Ok(())
            }
            Step::CopyTree {
                dest,
                remote_path,
                local,
                files,
            } => write!(
                f,
                "copy {} files from {dest}:{remote_path} to {} (parallel rsync over ssh)",
                files.len(),
                local.display()
            ),
            Step::CreateDir { path, mode } => {
                write!(f, "create directory {} (mode {mode:o})", path.display())
            }
            Step::Combine {
                program,
                backups,
                output,
            } => {
                write!(
                    f,
                    "combine {} backups (the full one, then each incremental) into {} with {}, then verify it with pg_verifybackup:",
                    backups.len(),
                    output.display(),
                    program.display()
                )?;
                for b in backups {
                    write!(f, " {}", b.display())?;
                }
                Ok(())
            }
            Step::Unpack(a) => write!(
                f,
                "unpack {}:{} ({}{}) into {} (streamed over ssh)",
                a.dest,
                a.remote_path,
                a.compression
                    .map_or("tar".to_string(), |c| format!("tar, {c}")),
                if a.size_bytes > 0 {
                    format!(", {:.1} MiB", a.size_bytes as f64 / 1048576.0)
                } else {
                    String::new()
                },
                a.local.display()
            ),
            Step::WriteFile {
                path,
                mode,
                contents,
            } => {
                write!(
                    f,
                    "write {} ({} bytes, mode {mode:o})",
                    path.display(),
                    contents.len()
                )
            }
        }
    }
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
