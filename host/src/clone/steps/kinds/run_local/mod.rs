//! `run-local`: a granted local program of the source's (pg_basebackup,
//! say), run without a shell; its progress drives the phase's line, the end
//! of its standard error explains a failure; a wait it reports (the
//! upstream's checkpoint) is said rather than taken for a slow copy.

mod waits;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::super::{Kind, Running, Validation};
use waits::Said;
use crate::child::Supervised;
use crate::clone::progress::{follow_records, Phase};
use crate::contract::source::RunLocalStep;
use crate::contract::Capability;
use crate::report::Failure;

#[derive(Debug, Clone)]
pub struct RunLocal {
    /// Found through `pg_bindir` or `PATH`.
    pub program: PathBuf,
    pub args: Vec<String>,
    /// What the source says it does (shown as it runs).
    pub description: String,
    /// It connects to the upstream: the password goes through its environment.
    pub uses_password: bool,
}

impl Kind for RunLocal {
    type Asked = RunLocalStep;

    fn check(r: &RunLocalStep, v: &Validation<'_>) -> Result<Self, Failure> {
        v.granted(
            &Capability::LocalRun(r.program.clone()),
            &format!("plans to run \"{}\", which it may not", r.program),
        )?;
        if let Some(a) = r.args.iter().find(|a| !super::super::validate::clean_name(a)) {
            return Err(v.malformed(format!(
                "argument \"{}\" contains a control character",
                a.escape_debug()
            )));
        }
        Ok(RunLocal {
            program: v.program(&r.program)?,
            args: r.args.clone(),
            description: r.description.clone(),
            uses_password: r.uses_upstream_password,
        })
    }

    fn describe(&self) -> Vec<String> {
        let mut line = format!("run {}", self.program.display());
        for a in &self.args {
            line.push(' ');
            line.push_str(&crate::remote::shell_quote(a));
        }
        vec![line, self.description.clone()]
    }

    async fn run(&self, r: &mut Running<'_>) -> anyhow::Result<()> {
        run_program(self, r.ctx).await
    }
}

async fn run_program(step: &RunLocal, ctx: &super::super::ExecContext) -> anyhow::Result<()> {
    let program = &step.program;
    crate::report::notice(&crate::report::escape(&step.description));
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&step.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    crate::child::bound(cmd.as_std_mut());
    if step.uses_password {
        let auth = &ctx.auth;
        if let Some(pw) = &auth.password {
            cmd.env("PGPASSWORD", pw);
        }
        if let Some(pf) = &auth.passfile {
            cmd.env("PGPASSFILE", pf);
        }
        if let Some(sf) = &auth.service_file {
            cmd.env("PGSERVICEFILE", sf).env("PGSERVICE", "pgclone");
        }
    }
    crate::report::running(cmd.as_std());
    let phase = Phase::with_display("copy", None, ctx.show_progress);
    let mut child = cmd.spawn().map_err(|e| {
        Failure::new(format!("could not run \"{}\"", program.display())).detail(e.to_string())
    })?;
    let mut group = Supervised::of(&child);
    // A wait that lasts is said, whether or not anything else arrives.
    let ticker = tokio::spawn({
        let phase = phase.clone();
        async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                phase.tick_wait();
            }
        }
    });
    let fast = waits::fast_checkpoint(&step.args);
    let tail = match child.stderr.take() {
        Some(err) => follow_stderr(err, &phase, ctx.show_progress, fast).await,
        None => Vec::new(),
    };
    ticker.abort();
    let status = child.wait().await?;
    group.finished();
    if !status.success() {
        return Err(failed(program, &status, &tail).into());
    }
    // Without --progress the summary counts what was written.
    if phase.done() == 0 {
        phase.set(super::super::tree_bytes(&ctx.roots));
    }
    phase.finish();
    Ok(())
}

/// The program's failure, with the last lines of its standard error.
fn failed(program: &Path, status: &std::process::ExitStatus, tail: &[u8]) -> Failure {
    let name = program
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let text = String::from_utf8_lossy(tail);
    let last: Vec<&str> = text
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let detail = last[last.len().saturating_sub(5)..].join("\n");
    let mut f = Failure::new(format!("{name} {}", crate::report::exit_text(status)));
    if !detail.is_empty() {
        f = f.detail(detail);
    }
    f
}

/// Reads a program's standard error to its end: progress records
/// (pg_basebackup --progress) move `phase`, a checkpoint wait is the
/// phase's wait, pg_basebackup's `--verbose` account is shown with -v, other
/// lines are shown above the live line. Returns the last 16 KiB, for an
/// error message.
async fn follow_stderr(
    err: tokio::process::ChildStderr,
    phase: &Phase,
    show: bool,
    fast: bool,
) -> Vec<u8> {
    let mut tail = Vec::new();
    let shown = |line: &str| {
        let said = waits::read(line);
        match said {
            Said::WaitsForCheckpoint => phase.wait(
                "the upstream's checkpoint",
                Some(waits::checkpoint_notice(fast)),
            ),
            Said::WaitsForArchiving => phase.wait(
                "the upstream's archive_command",
                Some(waits::archiving_notice()),
            ),
            Said::CheckpointDone | Said::ArchivingDone => phase.resume(),
            Said::Info | Said::Other => {}
        }
        let debug = crate::report::shown(crate::report::Level::Debug);
        if show && (said == Said::Other || debug) {
            phase.suspend(|| eprintln!("{}", crate::report::escape(line)));
        }
    };
    let kept = |bytes: &[u8]| {
        tail.extend_from_slice(bytes);
        if tail.len() > 16384 {
            tail.drain(..tail.len() - 16384);
        }
    };
    follow_records(err, phase, shown, kept).await;
    tail
}
