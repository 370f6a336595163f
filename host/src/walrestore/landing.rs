//! Landing one file from an archive: untrusted bytes (a tar entry, a
//! program's output) streamed into a temporary file, decompressed on the way
//! when they are gzip or bzip2, and bounded by what the asking cluster says
//! about itself: never more than its WAL segment size on disk, never more
//! than a copy buffer in memory, however large the input claims or turns out
//! to be. Nothing is sized from the input.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::guard::TempFile;
use super::verify::{check_header, HEADER_LEN};

/// What compressed bytes may add to the file they hold: incompressible data
/// grows a little under gzip and bzip2, never by more than this share plus a
/// block.
pub fn compressed_bound(limit: u64) -> u64 {
    limit + limit / 64 + (64 << 10)
}

/// Why a file could not be landed.
#[derive(Debug)]
pub enum LandError {
    /// More bytes than the bound: not a file of this cluster's archive.
    TooLarge { limit: u64 },
    /// Compressed bytes that do not decompress.
    Corrupt(io::Error),
    /// Reading the input or writing the file failed.
    Io(io::Error),
}

impl std::fmt::Display for LandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LandError::TooLarge { limit } => write!(
                f,
                "it is larger than {limit} bytes, the WAL segment size of the cluster it is for"
            ),
            LandError::Corrupt(e) => write!(f, "it does not decompress: {e}"),
            LandError::Io(e) => e.fmt(f),
        }
    }
}

/// A file landed in a directory under a temporary name: removed when dropped
/// (and by the signal handler) unless it was moved to its place.
pub struct Landed {
    path: PathBuf,
    len: u64,
    file: File,
    _registered: TempFile,
}

impl Landed {
    /// Checks it as the file `name` (size, long page header, system
    /// identifier when `sysid` is known) from its first bytes.
    pub fn check(&self, name: &str, sysid: Option<u64>) -> Result<(), String> {
        let mut header = Vec::with_capacity(HEADER_LEN);
        let read = (&self.file)
            .take(HEADER_LEN as u64)
            .read_to_end(&mut header)
            .and_then(|_| {
                use std::io::Seek;
                (&self.file).seek(io::SeekFrom::Start(0))
            });
        if let Err(e) = read {
            return Err(format!("cannot read {name} back: {e}"));
        }
        check_header(name, &header, self.len, sysid)
    }

    /// Moves it to `dest` by rename (same file system). With `sync` the data
    /// is on disk before the name is.
    pub fn place(self, dest: &Path, sync: bool) -> io::Result<()> {
        if sync {
            self.file.sync_all()?;
        }
        std::fs::rename(&self.path, dest)
    }

    /// Delivers it at `dest`, atomically: by rename when `dest` is on the same
    /// file system, else by a streamed copy next to `dest`, renamed there.
    /// Never a partial file at `dest`.
    ///
    /// Not fsynced (a spooled segment is handed over the same way): PostgreSQL
    /// makes durable what it keeps. It replays `RECOVERYXLOG` and removes it,
    /// and after a crash removes any left over before it asks again from its
    /// last restartpoint; a segment it keeps in pg_wal it moves there with
    /// `durable_rename`, which fsyncs it; pg_rewind fsyncs the data directory
    /// when it is done. An fsync here would only wait for the disk (tens of
    /// milliseconds per 16 MiB) on every segment fetched.
    pub fn deliver(mut self, dest: &Path) -> io::Result<()> {
        match std::fs::rename(&self.path, dest) {
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                use std::io::Seek;
                self.file.seek(io::SeekFrom::Start(0))?;
                let copy = land_raw(dir_of(dest), &file_name(dest), &mut self.file, self.len)
                    .map_err(|e| match e {
                        LandError::Io(e) | LandError::Corrupt(e) => e,
                        LandError::TooLarge { .. } => io::Error::other(e.to_string()),
                    })?;
                copy.place(dest, false)
            }
            other => other,
        }
    }
}

impl Drop for Landed {
    fn drop(&mut self) {
        // After a rename there is nothing left at the path (pid-unique names).
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The directory a file is in (`.` for a bare name).
pub fn dir_of(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Lands `input` in `dir` as a temporary file for `name`, decompressing
/// gzip or bzip2 (told by their magic; a WAL page never starts with it), and
/// refusing more than `limit` bytes of file or more compressed bytes than
/// such a file can take.
pub fn land(dir: &Path, name: &str, input: impl Read, limit: u64) -> Result<Landed, LandError> {
    let mut input = Bounded::new(input, compressed_bound(limit));
    // Long enough for every format's magic; a WAL page header never starts
    // with any of them (its first two bytes are the page magic, 0xD0xx).
    let mut magic = [0u8; 10];
    let got = read_up_to(&mut input, &mut magic).map_err(|e| input.error(e))?;
    let head = &magic[..got];
    let whole = io::Cursor::new(head.to_vec()).chain(input);
    let mut decoder: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(whole))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::read::BzDecoder::new(whole))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        // barman-cloud-wal-archive --xz
        Box::new(liblzma::read::XzDecoder::new(whole))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        // --zstd
        Box::new(zstd::stream::read::Decoder::new(whole).map_err(LandError::Io)?)
    } else if head.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        // --lz4 (the frame format)
        Box::new(lz4_flex::frame::FrameDecoder::new(whole))
    } else if head.starts_with(b"\xff\x06\x00\x00sNaPpY") {
        // --snappy (the framing format's stream identifier)
        Box::new(snap::read::FrameDecoder::new(whole))
    } else {
        return land_raw(dir, name, &mut { whole }, limit);
    };
    land_raw(dir, name, &mut decoder, limit).map_err(corrupt_unless_bounded)
}

/// A decoder's error is the data's fault, unless the input ran past its bound.
fn corrupt_unless_bounded(e: LandError) -> LandError {
    match e {
        LandError::Io(e) if is_over_bound(&e) => LandError::TooLarge {
            limit: bound_of(&e),
        },
        LandError::Io(e) => LandError::Corrupt(e),
        other => other,
    }
}

/// Copies at most `limit` bytes of `input` into a new temporary file in `dir`.
fn land_raw(dir: &Path, name: &str, input: &mut dyn Read, limit: u64) -> Result<Landed, LandError> {
    let path = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let registered = TempFile::register(&path);
    // A stale file of a dead process with the same pid: never written through.
    let _ = std::fs::remove_file(&path);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(LandError::Io)?;
    let mut landed = Landed {
        path,
        len: 0,
        file,
        _registered: registered,
    };
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_over_bound(&e) => {
                return Err(LandError::TooLarge {
                    limit: bound_of(&e),
                })
            }
            Err(e) => return Err(LandError::Io(e)),
        };
        if landed.len + n as u64 > limit {
            return Err(LandError::TooLarge { limit });
        }
        landed.file.write_all(&buf[..n]).map_err(LandError::Io)?;
        landed.len += n as u64;
    }
    use std::io::Seek;
    landed
        .file
        .seek(io::SeekFrom::Start(0))
        .map_err(LandError::Io)?;
    Ok(landed)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A reader that fails once more than `limit` bytes were asked of it.
pub struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

/// The error a [`Bounded`] reader returns past its bound.
#[derive(Debug)]
struct OverBound(u64);

impl std::fmt::Display for OverBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes", self.0)
    }
}

impl std::error::Error for OverBound {}

fn is_over_bound(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<OverBound>())
}

fn bound_of(e: &io::Error) -> u64 {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<OverBound>())
        .map_or(0, |b| b.0)
}

impl<R: Read> Bounded<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        Bounded {
            inner,
            left: limit,
            limit,
        }
    }

    fn error(&self, e: io::Error) -> LandError {
        if is_over_bound(&e) {
            LandError::TooLarge { limit: self.limit }
        } else {
            LandError::Io(e)
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // One byte past the bound tells "exactly the bound" from "more".
        let want = buf
            .len()
            .min(self.left.saturating_add(1).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(io::Error::other(OverBound(self.limit)));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walrestore::verify::{fake_segment, FAKE_SYSID};

    const N: &str = "000000010000000000000003";

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn bzip(b: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn plain_gzip_and_bzip2_land_as_the_segment() {
        let t = tempfile::tempdir().unwrap();
        let seg = fake_segment(N, 1 << 20);
        for input in [seg.clone(), gzip(&seg), bzip(&seg)] {
            let l = land(t.path(), N, &input[..], 1 << 20).unwrap();
            assert_eq!(l.len, 1 << 20);
            l.check(N, Some(FAKE_SYSID)).unwrap();
            let dest = t.path().join("RECOVERYXLOG");
            l.deliver(&dest).unwrap();
            assert_eq!(std::fs::read(&dest).unwrap(), seg);
        }
        // Nothing left behind but what was delivered.
        let names: Vec<_> = std::fs::read_dir(t.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn more_than_the_bound_is_refused_and_leaves_no_file() {
        let t = tempfile::tempdir().unwrap();
        let big = vec![0u8; (1 << 20) + 1];
        // Plain, a decompression bomb (4 MiB of zeros from a few KiB), and an
        // endless stream.
        let bomb = gzip(&vec![0u8; 4 << 20]);
        assert!(bomb.len() < 64 << 10);
        for (what, r) in [
            ("plain", Box::new(&big[..]) as Box<dyn Read>),
            ("gzip bomb", Box::new(&bomb[..])),
            ("endless", Box::new(io::repeat(7))),
            (
                "endless gzip",
                Box::new(io::Cursor::new(vec![0x1f, 0x8b]).chain(io::repeat(0))),
            ),
        ] {
            match land(t.path(), N, r, 1 << 20) {
                Err(LandError::TooLarge { .. }) | Err(LandError::Corrupt(_)) => {}
                Err(e) => panic!("{what}: {e}"),
                Ok(_) => panic!("{what} landed"),
            }
            assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0, "{what}");
        }
        // Exactly the bound is fine.
        assert_eq!(
            land(t.path(), N, &big[..1 << 20], 1 << 20).unwrap().len,
            1 << 20
        );
    }

    #[test]
    fn damaged_compression_is_told_apart() {
        let t = tempfile::tempdir().unwrap();
        let mut gz = gzip(&fake_segment(N, 1 << 20));
        let mid = gz.len() / 2;
        gz[mid] ^= 0xff;
        gz.truncate(mid + 10);
        assert!(matches!(
            land(t.path(), N, &gz[..], 1 << 20),
            Err(LandError::Corrupt(_))
        ));
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]
        /// Whatever the bytes, landing ends in a file within the bound or a
        /// clean error, and never leaves a temporary file behind on error.
        #[test]
        fn any_bytes_land_within_the_bound_or_fail_cleanly(
            head in proptest::sample::select(vec![vec![], vec![0x1f, 0x8b], b"BZh".to_vec(), b"BZh9".to_vec()]),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..4096),
            limit in 0u64..5000,
        ) {
            let t = tempfile::tempdir().unwrap();
            let input: Vec<u8> = head.into_iter().chain(body).collect();
            match land(t.path(), N, &input[..], limit) {
                Ok(l) => {
                    proptest::prop_assert!(l.len <= limit);
                    let _ = l.check(N, None);
                }
                Err(_) => proptest::prop_assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0),
            }
        }
    }
}
