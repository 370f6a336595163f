//! The check at the moment of writing: a path must lead, through whatever
//! exists of it now, into one of the clone's directories.

use std::path::{Path, PathBuf};

use crate::report::Failure;

/// Refuses `path` when what exists of it leads outside `roots` — through a
/// symbolic link that an earlier step (an rsync'ed tree, say) put there — or
/// when it cannot be resolved fully (a dangling link, a loop, a chain of links
/// whose real path is longer than PATH_MAX): a path that cannot be checked is
/// never used as given. Paths were checked lexically when the plan was
/// validated; this is the check at the moment of writing. The roots exist by
/// then (the clone creates them before the first step).
pub fn confined(path: &Path, roots: &[PathBuf]) -> Result<(), Failure> {
    let unresolved = |at: &Path, e: std::io::Error| {
        Failure::new(format!(
            "refusing to write \"{}\": it cannot be resolved to a real path",
            path.display()
        ))
        .detail(format!("\"{}\": {e}", at.display()))
        .hint("a symbolic link in the copy leads somewhere that cannot be checked; nothing was written there")
    };
    let mut existing = path.to_path_buf();
    loop {
        match std::fs::symlink_metadata(&existing) {
            Ok(_) => break,
            // Only what does not exist yet is skipped: any other error (a name
            // too long, a loop, no permission) leaves the path unchecked.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && existing.pop() => {}
            Err(e) => return Err(unresolved(&existing, e)),
        }
    }
    let real = std::fs::canonicalize(&existing).map_err(|e| unresolved(&existing, e))?;
    let inside = roots
        .iter()
        .any(|r| std::fs::canonicalize(r).is_ok_and(|r| real.starts_with(r)));
    if inside {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "refusing to write \"{}\": it leads to \"{}\", outside the data directory and tablespaces",
            path.display(),
            real.display()
        ))
        .hint("a symbolic link in the copy points outside it; nothing was written there"))
    }
}
