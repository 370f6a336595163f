//! `--copy-external-config-files`: configuration files that live outside the
//! upstream's data directory (Debian keeps them in /etc/postgresql), copied
//! over ssh from the upstream host (or locally when the upstream is local).

use std::path::{Path, PathBuf};

use super::upstream::Upstream;
use crate::remote::shell_quote;
use crate::report::Failure;

/// Where external files go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExternalConfig {
    /// The same path as on the upstream.
    Samepath,
    /// Into the new data directory.
    Pgdata,
}

/// The files to copy: outside the upstream's data directory.
pub fn external_files(u: &Upstream) -> Vec<PathBuf> {
    let Some(dd) = &u.data_directory else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = u
        .config_files
        .iter()
        .filter(|f| !f.starts_with(dd))
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Copies them.
pub async fn copy(
    mode: &ExternalConfig,
    u: &Upstream,
    host: &str,
    local: bool,
    ssh_options: &[String],
    datadir: &Path,
) -> anyhow::Result<()> {
    if u.data_directory.is_none() {
        return Err(
            Failure::new("cannot find the upstream's configuration files")
                .detail("their locations are only visible to a superuser (or pg_read_all_settings)")
                .hint("connect as a superuser with --superuser, or copy the files yourself")
                .into(),
        );
    }
    for file in external_files(u) {
        let dest = match mode {
            ExternalConfig::Samepath => file.clone(),
            ExternalConfig::Pgdata => datadir.join(file.file_name().unwrap_or_default()),
        };
        let bytes = if local {
            std::fs::read(&file).map_err(|e| {
                Failure::new(format!("could not read \"{}\"", file.display())).detail(e.to_string())
            })?
        } else {
            let out = tokio::process::Command::new("ssh")
                .args(["-o", "BatchMode=yes"])
                .args(ssh_options)
                .args(["--", host, "cat", "--"])
                .arg(shell_quote(&file.to_string_lossy()))
                .output()
                .await?;
            if !out.status.success() {
                return Err(Failure::new(format!("could not copy \"{}\" from {host} over ssh", file.display()))
                    .detail(String::from_utf8_lossy(&out.stderr).trim().to_string())
                    .hint("pgclone needs key-based ssh access to the upstream host for --copy-external-config-files")
                    .into());
            }
            out.stdout
        };
        if local && dest == file {
            eprintln!(
                "INFO: \"{}\" is already in place (same host, same path)",
                file.display()
            );
            continue;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = dest.with_extension("pgclone-tmp");
        std::fs::write(&tmp, &bytes)
            .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|_| std::fs::rename(&tmp, &dest))
            .map_err(|e| {
                Failure::new(format!("could not write \"{}\"", dest.display()))
                    .detail(e.to_string())
            })?;
        eprintln!(
            "INFO: copied \"{}\" to \"{}\"",
            file.display(),
            dest.display()
        );
    }
    Ok(())
}
