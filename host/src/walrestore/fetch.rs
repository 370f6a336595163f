//! Fetching WAL the way a source's [`Archive`] describes it: a batch of
//! files from a remote directory in one `tar` stream, one file with the
//! source's fetch program (over ssh, or on this host), or one file where the
//! plugin locates it. Nothing here judges the bytes: the caller checks every
//! file before it is spooled or delivered.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use super::archive::{Archive, Directory, Fetch};
use super::guard::{ChildGuard, TempFile, Watchdog};
use super::source::{Located, WalSource};
use super::spool::Spool;
use super::ssh::SshHost;
use super::{exit, problem, Problem};
use crate::report::Failure;

/// Fetches for one source.
pub struct Fetcher<'a> {
    pub source: &'a WalSource,
    pub spool: &'a Spool,
    pub archive: Archive,
}

fn unreachable(f: Failure) -> Problem {
    problem(exit::UNREACHABLE, f)
}

/// A name the host puts into a program's arguments: only what PostgreSQL
/// asks for (hex, `.history`, `.partial`, `.backup`), never an option.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
}

impl<'a> Fetcher<'a> {
    /// The ssh host of the archive's directory.
    pub fn directory_host(&self, dir: &Directory) -> Result<SshHost, Problem> {
        self.source
            .host(&dir.target, self.spool)
            .map_err(|f| problem(exit::USAGE, f))
    }

    /// The files of `names` the directory holds, as they are stored (see
    /// [`decompress`]), in one remote `tar` (missing ones are skipped).
    pub fn read_directory(
        &self,
        dir: &Directory,
        names: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>, Problem> {
        let host = self.directory_host(dir)?;
        let argv = tar_argv(dir, names);
        let ran = host.run(&argv).map_err(unreachable)?;
        match ran.status {
            Some(0) if !ran.timed_out => read_tar(&ran.stdout),
            // GNU tar exits 2 after skipping files it could not read; ask
            // again for the ones a listing shows.
            Some(2) if !ran.timed_out => self.read_directory_listed(&host, dir, names),
            _ => Err(unreachable(host.failed("tar", &ran))),
        }
    }

    fn read_directory_listed(
        &self,
        host: &SshHost,
        dir: &Directory,
        names: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>, Problem> {
        let subdirs: std::collections::BTreeSet<String> =
            names.iter().map(|n| parent_of(dir, n)).collect();
        let mut present = Vec::new();
        for d in subdirs {
            let listed = host
                .run_ok(&["ls".into(), "-1".into(), format!("{}/{d}", dir.path)])
                .unwrap_or_default();
            let listing = String::from_utf8_lossy(&listed);
            present.extend(
                names
                    .iter()
                    .filter(|n| parent_of(dir, n) == d)
                    .filter(|n| listing.lines().any(|l| l.trim() == n.as_str()))
                    .cloned(),
            );
        }
        if present.is_empty() {
            return Ok(Vec::new());
        }
        let mut argv: Vec<String> = ["tar", "-cf", "-", "-C"].map(String::from).to_vec();
        argv.push(dir.path.clone());
        argv.extend(present.iter().map(|n| archive_path(dir, n)));
        read_tar(&host.run_ok(&argv).map_err(unreachable)?)
    }

    /// One file with the source's fetch program: `None` when the program
    /// says the archive does not have it.
    pub fn with_command(
        &self,
        fetch: &Fetch,
        name: &str,
        partial: bool,
    ) -> Result<Option<Vec<u8>>, Problem> {
        if !safe_name(name) {
            return Err(problem(
                exit::USAGE,
                Failure::new(format!("\"{name}\" is not a WAL file name")),
            ));
        }
        let (status, bytes, stderr, what) = match &fetch.target {
            Some(target) => {
                let host = self
                    .source
                    .host(target, self.spool)
                    .map_err(|f| problem(exit::USAGE, f))?;
                let argv = fetch.argv_for(partial, name, None);
                let ran = host.run(&argv).map_err(unreachable)?;
                if ran.timed_out || ran.status.is_none() || ran.status == Some(255) {
                    return Err(unreachable(host.failed(&argv[0], &ran)));
                }
                let what = format!("{} on {}", argv[0], host.describe());
                (ran.status, ran.stdout, ran.stderr, what)
            }
            None => self.run_local(fetch, name, partial)?,
        };
        match status {
            Some(0) => Ok(Some(bytes)),
            Some(c) if fetch.missing_status.is_some_and(|m| i32::from(m) == c) => Ok(None),
            Some(c) => Err(unreachable(
                Failure::new(format!("{what} failed with status {c}")).detail(stderr),
            )),
            None => Err(unreachable(
                Failure::new(format!("{what} was killed")).detail(stderr),
            )),
        }
    }

    /// Runs a local fetch program, bounded like a remote one; a program that
    /// writes the file (`%p`) writes it into the spool, where the temporary
    /// file is removed whatever happens.
    #[allow(clippy::type_complexity)]
    fn run_local(
        &self,
        fetch: &Fetch,
        name: &str,
        partial: bool,
    ) -> Result<(Option<i32>, Vec<u8>, String, String), Problem> {
        let program = &fetch.argv[0];
        let env = crate::plugin::HostEnv {
            config: self.source.config.clone(),
            ..Default::default()
        };
        let path = env.find_program(program).ok_or_else(|| {
            problem(
                exit::USAGE,
                Failure::new(format!("program \"{program}\" not found"))
                    .detail(format!("{} fetches WAL with it", self.source.describe()))
                    .hint("install it, or set pg_bindir / PATH so that wal-restore finds it"),
            )
        })?;
        let tmp = self
            .spool
            .path(&format!(".{name}.tmp.{}", std::process::id()));
        let _registered = TempFile::register(&tmp);
        let _ = std::fs::remove_file(&tmp);
        let writes = fetch.writes_file();
        let argv = fetch.argv_for(partial, name, Some(&tmp.to_string_lossy()));
        let mut cmd = std::process::Command::new(&path);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(if writes {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stderr(Stdio::piped());
        crate::report::running(&cmd);
        let what = format!("{program} (local)");
        let result = (|| {
            let mut child = cmd.spawn().map_err(|e| {
                unreachable(Failure::new(format!("could not run {program}")).detail(e.to_string()))
            })?;
            let _guard = ChildGuard::register(child.id());
            let dog = Watchdog::arm(child.id(), Duration::from_secs(self.source.timeout.max(1)));
            let mut err_pipe = child.stderr.take().unwrap();
            let errs = std::thread::spawn(move || {
                let mut b = Vec::new();
                let _ = err_pipe.read_to_end(&mut b);
                b
            });
            let mut out = Vec::new();
            if let Some(mut o) = child.stdout.take() {
                let _ = o.read_to_end(&mut out);
            }
            let timed_out = dog.disarm();
            let status = child.wait().map_err(|e| {
                unreachable(Failure::new(format!("{program} failed")).detail(e.to_string()))
            })?;
            let stderr = String::from_utf8_lossy(&errs.join().unwrap_or_default())
                .trim()
                .to_string();
            if timed_out {
                return Err(unreachable(
                    Failure::new(format!(
                        "{program} did not finish within {} s and was stopped",
                        self.source.timeout
                    ))
                    .detail(stderr)
                    .hint("check the archive, or raise wal_restore_timeout"),
                ));
            }
            if writes && status.success() {
                out = std::fs::read(&tmp).map_err(|e| {
                    unreachable(
                        Failure::new(format!("{program} exited 0 but wrote no file"))
                            .detail(e.to_string()),
                    )
                })?;
            }
            Ok((status.code(), out, stderr, what.clone()))
        })();
        let _ = std::fs::remove_file(&tmp);
        result
    }

    /// One file where the plugin locates it (`locate-wal`): `None` when the
    /// remote program exits 1, the usual "not there" of restore programs.
    pub fn located(&self, name: &str) -> Result<Option<Vec<u8>>, Problem> {
        if !safe_name(name) {
            return Err(problem(
                exit::USAGE,
                Failure::new(format!("\"{name}\" is not a WAL file name")),
            ));
        }
        match self.source.locate(self.spool, name)? {
            Located::Nowhere => Err(problem(
                exit::USAGE,
                Failure::new(format!("{} has no WAL", self.source.describe()))
                    .detail(format!(
                        "its locate-wal answered \"unavailable\" for {name}"
                    ))
                    .hint("use a source that supplies WAL in restore_command"),
            )),
            Located::Remote { target, argv } => {
                let host = self
                    .source
                    .host(&target, self.spool)
                    .map_err(|f| problem(exit::USAGE, f))?;
                let ran = host.run(&argv).map_err(unreachable)?;
                match ran.status {
                    Some(0) if !ran.timed_out => Ok(Some(decompress(ran.stdout)?)),
                    Some(1) if !ran.timed_out => Ok(None),
                    _ => Err(unreachable(host.failed(&argv[0], &ran))),
                }
            }
        }
    }
}

/// Where `name` is under the directory, relative to it.
pub fn archive_path(dir: &Directory, name: &str) -> String {
    let parent = parent_of(dir, name);
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// The subdirectory `name` is in (empty for the directory itself): Barman
/// keeps a segment under its first 16 characters.
fn parent_of(dir: &Directory, name: &str) -> String {
    if dir.by_log && name.len() >= 24 && !name.ends_with(".history") {
        name[..16].to_string()
    } else {
        String::new()
    }
}

/// The remote command that streams `names` from the directory as one tar
/// archive, skipping the ones that are not there.
pub fn tar_argv(dir: &Directory, names: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = [
        "tar",
        "--ignore-failed-read",
        "--warning=no-failed-read",
        "-cf",
        "-",
        "-C",
    ]
    .map(String::from)
    .to_vec();
    argv.push(dir.path.clone());
    argv.extend(names.iter().map(|n| archive_path(dir, n)));
    argv
}

fn read_tar(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, Problem> {
    let bad = |what: &str, e: std::io::Error| {
        unreachable(Failure::new(what.to_string()).detail(e.to_string()))
    };
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(bytes);
    let entries = archive
        .entries()
        .map_err(|e| bad("unreadable tar stream from the WAL archive", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad("unreadable tar stream from the WAL archive", e))?;
        let name = entry
            .path()
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| bad("reading from the WAL archive failed", e))?;
        out.push((name, data));
    }
    Ok(out)
}

/// Decompresses what an archive compressed at rest (gzip, bzip2), detected
/// by magic; anything else is returned as it is (and judged by the caller).
pub fn decompress(data: Vec<u8>) -> Result<Vec<u8>, Problem> {
    let err = |e: std::io::Error| {
        problem(
            exit::DAMAGED,
            Failure::new("could not decompress a WAL file from the archive").detail(e.to_string()),
        )
    };
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(16 << 20);
        flate2::read::GzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .map_err(err)?;
        return Ok(out);
    }
    if data.starts_with(b"BZh") {
        let mut out = Vec::with_capacity(16 << 20);
        bzip2::read::BzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .map_err(err)?;
        return Ok(out);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barman_layout_and_flat_layout() {
        let barman = Directory {
            target: "barman".into(),
            path: "/b/pg/wals".into(),
            by_log: true,
        };
        let flat = Directory {
            by_log: false,
            ..barman.clone()
        };
        let seg = "000000010000000000000003";
        assert_eq!(
            archive_path(&barman, seg),
            "0000000100000000/000000010000000000000003"
        );
        assert_eq!(
            archive_path(&barman, "00000002.history"),
            "00000002.history"
        );
        assert_eq!(archive_path(&flat, seg), seg);
        let argv = tar_argv(&barman, &[seg.to_string()]);
        assert_eq!(argv[6], "/b/pg/wals");
        assert_eq!(argv[7], "0000000100000000/000000010000000000000003");
    }

    #[test]
    fn only_wal_names_reach_a_program() {
        assert!(safe_name("000000010000000000000003"));
        assert!(safe_name("00000002.history"));
        assert!(safe_name("000000010000000000000003.partial"));
        for bad in ["-rf", ".hidden", "a b", "x;y", "a/b", ""] {
            assert!(!safe_name(bad), "{bad}");
        }
    }
}
