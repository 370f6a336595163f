//! Fetching WAL the way a source's [`Archive`] describes it: a batch of
//! files from a remote directory in one `tar` stream, one file with the
//! source's fetch program (over ssh, or on this host), or one file where the
//! plugin locates it. Every file is streamed into a [`Landed`] file, bounded
//! by the asking cluster's segment size (see [`landing`]); nothing here
//! judges its contents: the caller checks every file before it is spooled or
//! delivered.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::archive::{Archive, Directory, Fetch};
use super::guard::TempFile;
use super::landing::{self, land, Bounded, LandError, Landed};
use super::source::{Located, WalSource};
use super::spool::Spool;
use super::ssh::{read_capped, Ran, SshHost, MAX_STDERR};
use super::{exit, problem, Problem};
use crate::child::Supervised;
use crate::report::Failure;
use crate::wal;

/// Fetches for one source.
pub struct Fetcher<'a> {
    pub source: &'a WalSource,
    pub spool: &'a Spool,
    pub archive: Archive,
}

/// Where fetched files land, and how large one may be.
#[derive(Clone, Copy)]
pub struct Landing<'a> {
    pub dir: &'a Path,
    pub limit: u64,
}

/// What a directory stream hands over per file: its name and how it landed.
pub type Each<'e> = dyn FnMut(String, Result<Landed, LandError>) + 'e;

fn unreachable(f: Failure) -> Problem {
    problem(exit::UNREACHABLE, f)
}

fn no_ssh(e: std::io::Error) -> Problem {
    unreachable(Failure::new("could not run ssh").detail(e.to_string()))
}

/// A file the archive holds that cannot be what it is named.
pub fn damaged(name: &str, e: &LandError) -> Problem {
    problem(
        exit::DAMAGED,
        Failure::new(format!("not delivered: the archive's {name} is damaged"))
            .detail(e.to_string()),
    )
}

/// Only what PostgreSQL asks for (segments, `.history`, `.partial`,
/// `.backup`) reaches a program's arguments: never an option or a path.
pub fn require_wal_name(name: &str) -> Result<wal::WalName, Problem> {
    wal::parse_name(name).ok_or_else(|| {
        problem(
        exit::USAGE,
        Failure::new(format!("\"{}\" is not a WAL file name", name.escape_debug())).hint(
            "restore_command passes %f: a segment, history, backup history or .partial file name",
        ),
        )
    })
}

impl<'a> Fetcher<'a> {
    /// The ssh host of the archive's directory.
    pub fn directory_host(&self, dir: &Directory) -> Result<SshHost, Problem> {
        self.source
            .host(&dir.target, self.spool)
            .map_err(|f| problem(exit::USAGE, f))
    }

    /// One file as the directory holds it (landed, decompressed), `None` when
    /// the directory does not have it.
    pub fn read_directory(
        &self,
        dir: &Directory,
        name: &str,
        into: Landing,
    ) -> Result<Option<Result<Landed, LandError>>, Problem> {
        let mut found = None;
        self.stream_directory(dir, &[name.to_string()], into, &mut |n, l| {
            if n == name {
                found = Some(l);
            }
        })?;
        Ok(found)
    }

    /// Streams the files of `names` the directory holds in one remote `tar`
    /// (missing ones are skipped), handing each to `each` as soon as it has
    /// landed.
    pub fn stream_directory(
        &self,
        dir: &Directory,
        names: &[String],
        into: Landing,
        each: &mut Each,
    ) -> Result<(), Problem> {
        for n in names {
            require_wal_name(n)?;
        }
        let host = self.directory_host(dir)?;
        host.ensure_master().map_err(unreachable)?;
        let mut arrived = Vec::new();
        let (read, ran) = host
            .run_reading(&tar_argv(dir, names), |out, dog| {
                read_tar(out, names, into, dog, &mut |n, l| {
                    arrived.push(n.clone());
                    each(n, l)
                })
            })
            .map_err(no_ssh)?;
        let read = read?;
        match ran.status {
            // Stopped reading at a file it refused: tar's status is of a
            // closed pipe, not of the archive.
            _ if read == Stream::Refused => Ok(()),
            Some(0) if !ran.timed_out => Ok(()),
            // GNU tar exits 2 after skipping files it could not read; ask
            // again for the ones a listing shows.
            Some(2) if !ran.timed_out => {
                let rest: Vec<String> = names
                    .iter()
                    .filter(|n| !arrived.contains(n))
                    .cloned()
                    .collect();
                self.stream_listed(&host, dir, &rest, into, each)
            }
            _ => Err(unreachable(host.failed("tar", &ran))),
        }
    }

    fn stream_listed(
        &self,
        host: &SshHost,
        dir: &Directory,
        names: &[String],
        into: Landing,
        each: &mut Each,
    ) -> Result<(), Problem> {
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
            return Ok(());
        }
        let mut argv: Vec<String> = ["tar", "-cf", "-", "-C"].map(String::from).to_vec();
        argv.push(dir.path.clone());
        argv.push("--".into());
        argv.extend(present.iter().map(|n| archive_path(dir, n)));
        let (read, ran) = host
            .run_reading(&argv, |out, dog| read_tar(out, &present, into, dog, each))
            .map_err(no_ssh)?;
        if read? == Stream::Whole && (ran.status != Some(0) || ran.timed_out) {
            return Err(unreachable(host.failed("tar", &ran)));
        }
        Ok(())
    }

    /// One file with the source's fetch program: `None` when the program
    /// says the archive does not have it.
    pub fn with_command(
        &self,
        fetch: &Fetch,
        name: &str,
        partial: bool,
        into: Landing,
    ) -> Result<Option<Landed>, Problem> {
        require_wal_name(name)?;
        let (ran, landed, what) = match &fetch.target {
            Some(target) => {
                let host = self
                    .source
                    .host(target, self.spool)
                    .map_err(|f| problem(exit::USAGE, f))?;
                host.ensure_master().map_err(unreachable)?;
                let argv = fetch.argv_for(partial, name, None);
                let (landed, ran) = host
                    .run_reading(&argv, |out, _| land(into.dir, name, out, into.limit))
                    .map_err(no_ssh)?;
                if ran.timed_out || ran.status.is_none() || ran.status == Some(255) {
                    return Err(unreachable(host.failed(&argv[0], &ran)));
                }
                (ran, landed, format!("{} on {}", argv[0], host.describe()))
            }
            None => self.run_local(fetch, name, partial, into)?,
        };
        if let Err(e @ (LandError::TooLarge { .. } | LandError::Corrupt(_))) = &landed {
            // It sent more, or other, than a file of this archive: whatever
            // its status says after the pipe was closed on it.
            return Err(damaged(name, e));
        }
        match ran.status {
            Some(0) => landed.map(Some).map_err(|e| damaged(name, &e)),
            Some(c) if fetch.missing_status.is_some_and(|m| i32::from(m) == c) => Ok(None),
            Some(c) => Err(unreachable(
                Failure::new(format!("{what} failed with status {c}")).detail(ran.stderr),
            )),
            None => Err(unreachable(
                Failure::new(format!("{what} was killed")).detail(ran.stderr),
            )),
        }
    }

    /// Runs a local fetch program, bounded like a remote one; a program that
    /// writes the file (`%p`) writes it into the spool, where its output is
    /// removed whatever happens.
    fn run_local(
        &self,
        fetch: &Fetch,
        name: &str,
        partial: bool,
        into: Landing,
    ) -> Result<(Ran, Result<Landed, LandError>, String), Problem> {
        let program = &fetch.argv[0];
        let env = crate::environment::HostEnv {
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
        // Not the name a landed file takes: the program's own output.
        let tmp = self
            .spool
            .path(&format!(".{name}.out.tmp.{}", std::process::id()));
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
        crate::child::bound(&mut cmd);
        let result = (|| {
            let mut child = cmd.spawn().map_err(|e| {
                unreachable(Failure::new(format!("could not run {program}")).detail(e.to_string()))
            })?;
            let limit = Duration::from_secs(self.source.timeout.max(1));
            let mut supervisor = Supervised::new(child.id(), Some(limit));
            let err_pipe = child.stderr.take().unwrap();
            let errs = std::thread::spawn(move || read_capped(err_pipe, MAX_STDERR));
            let mut landed = child
                .stdout
                .take()
                .map(|o| land(into.dir, name, o, into.limit));
            // Bounded until it exits (one that writes its file itself too).
            let timed_out = supervisor.exited();
            let status = child.wait().map_err(|e| {
                unreachable(Failure::new(format!("{program} failed")).detail(e.to_string()))
            })?;
            supervisor.finished();
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
                let file = std::fs::File::open(&tmp).map_err(|e| {
                    unreachable(
                        Failure::new(format!("{program} exited 0 but wrote no file"))
                            .detail(e.to_string()),
                    )
                })?;
                landed = Some(land(into.dir, name, file, into.limit));
            }
            let landed =
                landed.unwrap_or_else(|| Err(LandError::Io(std::io::Error::other("no output"))));
            let ran = Ran {
                status: status.code(),
                stdout: Vec::new(),
                stderr,
                timed_out,
            };
            Ok((ran, landed, format!("{program} (local)")))
        })();
        let _ = std::fs::remove_file(&tmp);
        result
    }

    /// One file where the plugin locates it (`locate-wal`): `None` when the
    /// remote program exits 1, the usual "not there" of restore programs.
    pub fn located(&self, name: &str, into: Landing) -> Result<Option<Landed>, Problem> {
        require_wal_name(name)?;
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
                host.ensure_master().map_err(unreachable)?;
                let (landed, ran) = host
                    .run_reading(&argv, |out, _| land(into.dir, name, out, into.limit))
                    .map_err(no_ssh)?;
                if let Err(e @ (LandError::TooLarge { .. } | LandError::Corrupt(_))) = &landed {
                    return Err(damaged(name, e));
                }
                match ran.status {
                    Some(0) if !ran.timed_out => landed.map(Some).map_err(|e| damaged(name, &e)),
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
    match wal::log_dir(name) {
        Some(log) if dir.by_log => log.to_string(),
        _ => String::new(),
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
    // The names are checked WAL names; `--` keeps any from being an option even so.
    argv.push("--".into());
    argv.extend(names.iter().map(|n| archive_path(dir, n)));
    argv
}

/// Reads a tar stream of the files of `names`, landing each requested
/// regular file as it arrives. Raw entries: no extension header (GNU long
/// name, pax) is read into memory, and an entry that is not a requested
/// regular file is skipped. The whole stream is bounded by what the requested
/// files can take, and each file by the landing's limit; a header that claims
/// more is refused before a byte of its data is read.
pub fn read_tar(
    stream: &mut dyn std::io::Read,
    names: &[String],
    into: Landing,
    dog: &Supervised,
    each: &mut Each,
) -> Result<Stream, Problem> {
    let bad = |e: std::io::Error| {
        unreachable(
            Failure::new("unreadable tar stream from the WAL archive").detail(e.to_string()),
        )
    };
    let per_file = landing::compressed_bound(into.limit) + 2048;
    let total = (names.len() as u64 + 1).saturating_mul(per_file);
    let mut archive = tar::Archive::new(Bounded::new(stream, total));
    for entry in archive.entries().map_err(bad)?.raw(true) {
        dog.kick();
        let mut entry = entry.map_err(bad)?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            continue;
        }
        let Some(name) = requested(&entry.path_bytes(), names) else {
            continue;
        };
        if entry.size() > landing::compressed_bound(into.limit) {
            each(name, Err(LandError::TooLarge { limit: into.limit }));
            return Ok(Stream::Refused);
        }
        let landed = land(into.dir, &name, &mut entry, into.limit);
        let refused = matches!(landed, Err(LandError::TooLarge { .. }));
        each(name, landed);
        if refused {
            return Ok(Stream::Refused);
        }
    }
    Ok(Stream::Whole)
}

/// How far a tar stream was read.
#[derive(Debug, PartialEq, Eq)]
pub enum Stream {
    /// To its end.
    Whole,
    /// Up to a file refused for its size: the rest is not read.
    Refused,
}

/// The requested name an entry's path ends in, if any.
fn requested(path: &[u8], names: &[String]) -> Option<String> {
    let base = path.rsplit(|b| *b == b'/').next().unwrap_or_default();
    let base = std::str::from_utf8(base).ok()?;
    names.iter().find(|n| n.as_str() == base).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walrestore::verify::fake_segment;

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
        assert_eq!(argv[7], "--");
        assert_eq!(argv[8], "0000000100000000/000000010000000000000003");
    }

    #[test]
    fn only_wal_names_reach_a_program() {
        for good in [
            "000000010000000000000003",
            "00000002.history",
            "000000010000000000000003.partial",
            "000000010000000000000002.00000028.backup",
        ] {
            assert!(require_wal_name(good).is_ok(), "{good}");
        }
        for bad in [
            "-rf",
            "--version",
            ".hidden",
            "a b",
            "x;y",
            "a/b",
            "",
            "000000000000000é0000000000",
        ] {
            assert_eq!(
                require_wal_name(bad).unwrap_err().code,
                exit::USAGE,
                "{bad}"
            );
        }
    }

    const N: &str = "000000010000000000000003";

    /// A tar stream with one entry whose header says `size` and whose data is
    /// `data` (the header may lie).
    fn tar_with(name: &str, size: u64, data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(size);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
        out
    }

    fn read_all(stream: &[u8], limit: u64) -> (Result<(), Problem>, Vec<(String, bool)>) {
        let t = tempfile::tempdir().unwrap();
        // No real child: only kicked.
        let mut dog = Supervised::new(u32::MAX >> 1, Some(Duration::from_secs(3600)));
        let mut got = Vec::new();
        let names = vec![N.to_string()];
        let into = Landing {
            dir: t.path(),
            limit,
        };
        let r = read_tar(&mut &stream[..], &names, into, &dog, &mut |n, l| {
            got.push((n, l.is_ok()))
        });
        dog.finished();
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
        (r.map(|_| ()), got)
    }

    #[test]
    fn a_header_claiming_exabytes_is_refused_without_reading_or_allocating() {
        let seg = fake_segment(N, 1 << 20);
        let (r, got) = read_all(&tar_with(N, 1 << 62, &seg), 1 << 20);
        assert!(r.is_ok());
        assert_eq!(got, vec![(N.to_string(), false)]);
        // The same file, honestly sized, lands.
        let (r, got) = read_all(&tar_with(N, seg.len() as u64, &seg), 1 << 20);
        assert!(r.is_ok());
        assert_eq!(got, vec![(N.to_string(), true)]);
        // Entries with other names, or a GNU long name, are skipped unread.
        let (r, got) = read_all(
            &tar_with("0000000100000000/other", 10, b"0123456789"),
            1 << 20,
        );
        assert!(r.is_ok() && got.is_empty());
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]
        /// Random and mutated tar streams end in landed files within the
        /// bound or a clean error; never a panic.
        #[test]
        fn any_tar_stream_is_read_cleanly(
            size in proptest::num::u64::ANY,
            flips in proptest::collection::vec((0usize..1600, proptest::num::u8::ANY), 0..8),
            cut in 0usize..2000,
        ) {
            let mut stream = tar_with(N, size % (4 << 10), &[0xD1; 4 << 10]);
            for (at, b) in flips {
                if at < stream.len() {
                    stream[at] = b;
                }
            }
            stream.truncate(cut.max(1).min(stream.len()));
            let _ = read_all(&stream, 2048);
        }
    }
}
