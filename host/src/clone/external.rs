//! `--copy-external-config-files`: configuration files that live outside the
//! upstream's data directory (Debian keeps them in /etc/postgresql), copied
//! over ssh from the upstream host (or locally when the upstream is local).

use std::path::{Path, PathBuf};

use super::upstream::Upstream;
use crate::remote::SshCommand;
use crate::report::Failure;

/// Where external files go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExternalConfig {
    /// The same path as on the upstream.
    Samepath,
    /// Into the new data directory (repmgr also calls it data_directory).
    #[value(alias = "data_directory")]
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

/// Where ssh goes for the upstream `host`: `-R/--remote-user`@host, unless
/// the host already names a user.
/// `local`: the upstream runs on this machine (see `UpstreamSide::is_local`).
pub fn ssh_dest(host: &str, remote_user: Option<&str>, local: bool) -> String {
    match remote_user {
        Some(u) if !host.contains('@') && !local => format!("{u}@{host}"),
        _ => host.to_string(),
    }
}

fn destination(mode: &ExternalConfig, file: &Path, datadir: &Path) -> PathBuf {
    match mode {
        ExternalConfig::Samepath => file.to_path_buf(),
        ExternalConfig::Pgdata => datadir.join(file.file_name().unwrap_or_default()),
    }
}

/// `--dry-run`'s lines for --copy-external-config-files.
pub fn plan(
    mode: &ExternalConfig,
    u: &Upstream,
    host: &str,
    local: bool,
    datadir: &Path,
) -> Vec<String> {
    if u.data_directory.is_none() {
        return vec!["copy external configuration files: their locations are unknown (needs a superuser, see --superuser)".into()];
    }
    let from = if local {
        "this host".to_string()
    } else {
        format!("{host} over ssh")
    };
    let files = external_files(u);
    if files.is_empty() {
        return vec![
            "copy external configuration files: none (all are in the data directory)".into(),
        ];
    }
    files
        .iter()
        .map(|f| {
            format!(
                "copy external configuration file {} from {from} to {} (--copy-external-config-files)",
                f.display(),
                destination(mode, f, datadir).display()
            )
        })
        .collect()
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
        let dest = destination(mode, &file, datadir);
        let bytes = if local {
            std::fs::read(&file).map_err(|e| {
                Failure::new(format!("could not read \"{}\"", file.display())).detail(e.to_string())
            })?
        } else {
            // A few small files from the upstream (not the Barman host): no
            // shared connection, ssh's own ciphers.
            let path = file.to_string_lossy();
            let mut cmd = SshCommand::new(host)
                .options(ssh_options)
                .remote(&["cat", "--", &*path])
                .tokio_command();
            // In pgclone's process group still: ssh may ask on the terminal.
            crate::child::dies_with_parent(cmd.as_std_mut());
            crate::report::running(cmd.as_std());
            let out = cmd.output().await?;
            if !out.status.success() {
                return Err(Failure::new(format!("could not copy \"{}\" from {host} over ssh", file.display()))
                    .detail(String::from_utf8_lossy(&out.stderr).trim().to_string())
                    .hint("pgclone needs key-based ssh access to the upstream host for --copy-external-config-files")
                    .into());
            }
            out.stdout
        };
        if local && dest == file {
            crate::report::info(&format!(
                "\"{}\" is already in place (same host, same path)",
                file.display()
            ));
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
        crate::report::info(&format!(
            "copied \"{}\" to \"{}\"",
            file.display(),
            dest.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_user_goes_to_a_remote_upstream_only() {
        assert_eq!(ssh_dest("node1", Some("postgres"), false), "postgres@node1");
        assert_eq!(
            ssh_dest("admin@node1", Some("postgres"), false),
            "admin@node1"
        );
        assert_eq!(ssh_dest("node1", None, false), "node1");
        // An upstream on this machine is read locally, however it is named.
        assert_eq!(ssh_dest("node1", Some("postgres"), true), "node1");
    }
}
