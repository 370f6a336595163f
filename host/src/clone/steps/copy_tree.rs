//! Copying a remote tree (a backup on a source's host) with parallel rsync streams over
//! ssh: every exit status checked, every listed file checked on arrival, and
//! the bytes counted against rsync's own totals.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use crate::report::Failure;

/// What a copy moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
    pub files: usize,
    /// Bytes of the files copied (their full size).
    pub total_bytes: u64,
    /// Bytes that crossed the wire as literal data (less with a delta copy;
    /// the compressed stream of unpacked archives).
    pub literal_bytes: u64,
    /// Archives unpacked (unpack-archive steps).
    pub archives: usize,
}

/// Splits `files` into `n` lists of similar size (round robin over the
/// sorted list: relation segments of one table land on different streams).
pub fn split(files: &[String], n: usize) -> Vec<Vec<String>> {
    let n = n.max(1).min(files.len().max(1));
    let mut sorted = files.to_vec();
    sorted.sort();
    let mut out = vec![Vec::new(); n];
    for (i, f) in sorted.into_iter().enumerate() {
        out[i % n].push(f);
    }
    out
}

fn stat_value(stats: &str, label: &str) -> Option<u64> {
    stats.lines().find_map(|l| {
        let rest = l.trim().strip_prefix(label)?;
        let digits: String = rest
            .trim()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .collect();
        digits.replace(',', "").parse().ok()
    })
}

/// Copies `files` (relative to `remote_path` on `dest`) into `local` with
/// `ctx.jobs` parallel rsync streams.
pub async fn copy(
    dest: &str,
    remote_path: &str,
    local: &Path,
    files: &[String],
    ctx: &super::ExecContext,
    phase: &std::sync::Arc<crate::clone::progress::Phase>,
) -> anyhow::Result<CopyStats> {
    let (ssh_options, jobs, scratch) = (&ctx.ssh_options, ctx.jobs, ctx.scratch.as_path());
    let control_path = ctx.control_path.as_deref();
    let lists = split(files, jobs);
    // The first stream reuses the clone's shared connection (no handshake);
    // the others open their own, so that they encrypt in parallel.
    let shell = |control_path: Option<&Path>| {
        crate::remote::SshCommand::transport()
            .control_path(control_path)
            .fast_cipher()
            .options(ssh_options)
            .rsync_shell()
    };
    let (shared, own) = (shell(control_path), shell(None));
    let mut children = Vec::new();
    for (i, list) in lists.iter().enumerate() {
        let list_file = scratch.join(format!("files-{i}"));
        std::fs::write(&list_file, list.join("\n") + "\n")?;
        let mut cmd = tokio::process::Command::new("rsync");
        cmd.args(["-a", "--protect-args", "--stats"]);
        if ctx.show_progress {
            cmd.args(["--info=progress2", "--no-inc-recursive"]);
        }
        cmd.arg("--files-from")
            .arg(&list_file)
            .arg("-e")
            .arg(if i == 0 { &shared } else { &own })
            .arg(format!("{dest}:{}/", remote_path.trim_end_matches('/')))
            .arg(format!("{}/", local.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        crate::child::bound(cmd.as_std_mut());
        crate::report::running(cmd.as_std());
        let child = cmd.spawn().map_err(|e| {
            Failure::new("could not run rsync")
                .detail(e.to_string())
                .hint("install rsync on this host")
        })?;
        children.push(child);
    }
    let base = phase.done();
    let progress = crate::clone::progress::Progress::new(children.len(), base, phase.clone());
    // Wait for all; the first failure wins, and dropping the rest kills them.
    // The waits run as tasks, which outlive this future if it is dropped
    // (a failure elsewhere, an interruption): the guards stay here and kill
    // each stream's process group (rsync and its ssh) then.
    let mut guards: Vec<_> = children
        .iter()
        .map(crate::clone::group::GroupGuard::new)
        .collect();
    let mut futures = Vec::new();
    for (i, mut child) in children.into_iter().enumerate() {
        let progress = progress.clone();
        futures.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut err = String::new();
            let mut so = child.stdout.take().unwrap();
            let mut se = child.stderr.take().unwrap();
            let read_out = async {
                let mut buf = [0u8; 8192];
                while let Ok(n) = so.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if let Some(b) =
                        crate::clone::progress::last_record(&String::from_utf8_lossy(&buf[..n]))
                    {
                        progress.set(i, b);
                    }
                    out.extend_from_slice(&buf[..n]);
                }
            };
            let (_, b) = tokio::join!(read_out, se.read_to_string(&mut err));
            let _ = b;
            let status = child.wait().await;
            // progress2 separates its records with carriage returns.
            let out = String::from_utf8_lossy(&out).replace('\r', "\n");
            (status, out, err)
        }));
    }
    let mut stats = CopyStats::default();
    let mut failure: Option<Failure> = None;
    for (i, f) in futures.into_iter().enumerate() {
        let (status, out, err) = f.await?;
        guards[i].finished();
        let status = status?;
        if !status.success() && failure.is_none() {
            let how = crate::report::exit_text(&status);
            let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            failure = Some(
                Failure::new(format!("rsync stream {} of {} {how}", i + 1, lists.len()))
                    .detail(tail[tail.len().saturating_sub(5)..].join("\n")),
            );
            continue;
        }
        stats.total_bytes += stat_value(&out, "Total file size:").unwrap_or(0);
        stats.literal_bytes += stat_value(&out, "Literal data:").unwrap_or(0);
    }
    if let Some(f) = failure {
        return Err(f.into());
    }
    // Every listed file arrived, and the bytes add up.
    let mut local_bytes = 0u64;
    for f in files {
        let p = local.join(f);
        match std::fs::symlink_metadata(&p) {
            // rsync counts a link by the length of its target, as lstat
            // does: the link is judged after the copy (clone::links), not
            // mistaken here for a file that did not arrive.
            Ok(m) => {
                if m.is_file() || m.file_type().is_symlink() {
                    local_bytes += m.len();
                }
            }
            Err(_) => {
                return Err(Failure::new("the copy is incomplete")
                    .detail(format!(
                        "\"{}\" is listed in the source's plan but did not arrive",
                        p.display()
                    ))
                    .into())
            }
        }
    }
    if local_bytes != stats.total_bytes {
        return Err(Failure::new("the copy is incomplete")
            .detail(format!(
                "rsync reported {} bytes, {} bytes arrived",
                stats.total_bytes, local_bytes
            ))
            .into());
    }
    stats.files = files.len();
    // Without a live line rsync reports no progress: the summary counts what arrived.
    phase.set(base + stats.total_bytes);
    Ok(stats)
}

/// Removes what a delta re-clone must not keep: files under `local` that the
/// backup does not list (WAL, stale relation files, old configuration).
pub fn remove_unlisted(
    local: &Path,
    files: &[String],
    keep_dirs: &[&str],
) -> std::io::Result<usize> {
    let listed: std::collections::HashSet<PathBuf> = files.iter().map(|f| local.join(f)).collect();
    let mut removed = 0;
    let mut stack = vec![local.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let p = e.path();
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(p);
            } else if !listed.contains(&p) {
                let rel = p.strip_prefix(local).unwrap_or(&p);
                if keep_dirs.iter().any(|k| rel.starts_with(k)) && ft.is_symlink() {
                    continue;
                }
                std::fs::remove_file(&p)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_spreads_files_evenly() {
        let files: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
        let parts = split(&files, 3);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 10);
        assert!(parts.iter().all(|p| p.len() >= 3));
        assert_eq!(split(&files[..1], 4).len(), 1);
        assert_eq!(split(&[], 4).len(), 1);
    }

    #[test]
    fn rsync_stats_are_read() {
        let s = "Number of files: 3\nTotal file size: 1,121,015,638 bytes\nLiteral data: 12,345 bytes\n";
        assert_eq!(stat_value(s, "Total file size:"), Some(1_121_015_638));
        assert_eq!(stat_value(s, "Literal data:"), Some(12_345));
        assert_eq!(stat_value(s, "Matched data:"), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    const STATS: &str = "Number of files: 1,234 (reg: 1,200, dir: 34)\nTotal file size: 1,121,015,638 bytes\nLiteral data: 12,345 bytes\nMatched data: 0 bytes\n";

    proptest! {
        #![proptest_config(fuzz::config())]

        /// rsync's --stats, damaged or random: a number or none.
        #[test]
        fn any_stats_are_a_number_or_none(s in prop_oneof![fuzz::mutated(STATS), fuzz::any_text()]) {
            for label in ["Total file size:", "Literal data:", "Matched data:"] {
                let _ = stat_value(&s, label);
            }
        }

        #[test]
        fn stat_values_read_back(n in any::<u64>()) {
            let text = format!("Total file size: {} bytes\n", n.to_string().as_bytes().rchunks(3).rev().map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(","));
            prop_assert_eq!(stat_value(&text, "Total file size:"), Some(n));
        }
    }
}
