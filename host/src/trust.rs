//! Which files pgclone trusts to tell it what to run: `plugins.toml`, plugin
//! components and their directories, the compiled-component cache. Whoever can
//! write one of them decides what pgclone runs, so each must be owned by the
//! user running pgclone (or by root, as sshd's StrictModes allows) and writable
//! by nobody else.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::report::Failure;

/// Who may own a trusted file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The effective user only (the cache: it holds native code).
    Me,
    /// The effective user or root (configuration and plugins).
    MeOrRoot,
}

/// Why a file is not trusted.
#[derive(Debug)]
pub enum Untrusted {
    Unreadable(std::io::Error),
    /// A directory where a file was expected, or the reverse; or a symbolic
    /// link where a directory was expected.
    WrongType,
    OwnedBy(u32),
    Writable(u32),
}

/// Checks `path`, a directory when `want_dir`; a symbolic link is followed
/// only when `follow`.
pub fn check(path: &Path, want_dir: bool, owner: Owner, follow: bool) -> Result<(), Untrusted> {
    let meta = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    };
    let m = meta.map_err(Untrusted::Unreadable)?;
    if m.is_dir() != want_dir || (!want_dir && !m.is_file()) {
        return Err(Untrusted::WrongType);
    }
    let euid = unsafe { libc::geteuid() };
    let owner_ok = m.uid() == euid || (owner == Owner::MeOrRoot && m.uid() == 0);
    if !owner_ok {
        return Err(Untrusted::OwnedBy(m.uid()));
    }
    if m.mode() & 0o022 != 0 {
        return Err(Untrusted::Writable(m.mode() & 0o7777));
    }
    Ok(())
}

/// Refuses `path` (`what` it is, for the message) unless it and the
/// directory it is in are trusted ([`Owner::MeOrRoot`]); through a symbolic
/// link, the file it leads to and that file's directory.
pub fn require(path: &Path, what: &str) -> Result<(), Failure> {
    let real =
        std::fs::canonicalize(path).map_err(|e| refusal(path, what, Untrusted::Unreadable(e)))?;
    check(&real, false, Owner::MeOrRoot, true).map_err(|u| refusal(&real, what, u))?;
    let dir = real.parent().unwrap_or(Path::new("/"));
    check(dir, true, Owner::MeOrRoot, true)
        .map_err(|u| refusal(dir, &format!("directory of the {what}"), u))
}

fn refusal(path: &Path, what: &str, u: Untrusted) -> Failure {
    let shown = crate::remote::shell_quote(&path.to_string_lossy());
    let euid = unsafe { libc::geteuid() };
    let f = Failure::new(format!(
        "refusing to use the {what} \"{}\": another user could change it",
        path.display()
    ));
    match u {
        Untrusted::Unreadable(e) => {
            Failure::new(format!("could not read the {what} \"{}\"", path.display()))
                .detail(e.to_string())
        }
        Untrusted::WrongType => Failure::new(format!(
            "the {what} \"{}\" is not a regular file or directory",
            path.display()
        )),
        Untrusted::OwnedBy(uid) => f
            .detail(format!(
                "it is owned by uid {uid}, not by this user (uid {euid}) or root"
            ))
            .hint(format!(
                "if its contents are what you expect, make it yours or root's: chown root {shown}"
            )),
        Untrusted::Writable(mode) => f
            .detail(format!(
                "its mode is {mode:04o}: writable by its group or by others"
            ))
            .hint(format!(
                "if its contents are what you expect: chmod go-w {shown}"
            )),
    }
}
