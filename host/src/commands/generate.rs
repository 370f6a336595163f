//! `pgclone generate-man DIR` and `pgclone generate-completions SHELL`: the
//! man pages and shell completions the package ships, made from the very
//! definition `--help` prints (no second copy of the help to drift). Hidden:
//! they are for scripts/package.sh, not for operators, and are not part of
//! that definition, so no page or completion mentions them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgMatches, Args, FromArgMatches};
use clap_complete::Shell;

const MAN: &str = "generate-man";
const COMPLETIONS: &str = "generate-completions";

/// Writes a man page for `pgclone` and for each of its commands.
#[derive(Args)]
struct ManArgs {
    /// Where the pages go (created if missing): pgclone.1, pgclone-standby-clone.1, ...
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// Prints a completion script for a shell on standard output.
#[derive(Args)]
struct CompletionsArgs {
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

/// `def` with the hidden generators, for parsing only.
pub fn with_generators(def: clap::Command) -> clap::Command {
    def.subcommand(ManArgs::augment_args(clap::Command::new(MAN).hide(true)))
        .subcommand(CompletionsArgs::augment_args(
            clap::Command::new(COMPLETIONS).hide(true),
        ))
}

/// Runs a generator when `matches` names one; `def` is the documented
/// definition (without the generators).
pub fn run(def: clap::Command, matches: &ArgMatches) -> Option<anyhow::Result<ExitCode>> {
    match matches.subcommand() {
        Some((MAN, m)) => Some(
            ManArgs::from_arg_matches(m)
                .map_err(Into::into)
                .and_then(|a| man(def, a)),
        ),
        Some((COMPLETIONS, m)) => Some(
            CompletionsArgs::from_arg_matches(m)
                .map_err(Into::into)
                .and_then(|a| completions(def, a)),
        ),
        _ => None,
    }
}

fn man(def: clap::Command, args: ManArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("could not create \"{}\"", args.dir.display()))?;
    // One page per command at every level (hidden ones and `help` skipped),
    // named by clap's display name: pgclone-plugin-verify.1.
    clap_mangen::generate_to(def, &args.dir).with_context(|| {
        format!(
            "could not write the man pages to \"{}\"",
            args.dir.display()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

fn completions(mut def: clap::Command, args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut def, "pgclone", &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("could not write the completion script")?;
    Ok(ExitCode::SUCCESS)
}
