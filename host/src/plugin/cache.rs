//! Precompiled components on disk, keyed by the component's sha256 and the
//! engine's compilation settings, so that a warm start compiles nothing.
//!
//! A precompiled artifact is native code: it is only loaded from a directory
//! owned by the current user and writable by nobody else.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::Engine;

/// The cache directory: `$PGCLONE_CACHE_DIR`, `$XDG_CACHE_HOME/pgclone` or
/// `~/.cache/pgclone`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PGCLONE_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("pgclone"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("pgclone"))
}

/// Compiled components, in memory-mapped files.
pub struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

impl ComponentCache {
    /// A cache in `dir` for `engine`; `None` when the directory cannot be made
    /// safe (then components are compiled in memory every time).
    pub fn open(dir: &Path, engine: &Engine) -> Option<Self> {
        let dir = dir.join("components");
        if let Err(e) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
        {
            tracing::debug!("component cache disabled: {}: {e}", dir.display());
            return None;
        }
        if !trusted(&dir, true) {
            tracing::debug!(
                "component cache disabled: {} is not owned by this user or is writable by others",
                dir.display()
            );
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        Some(ComponentCache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The compiled component for `sha256`, if cached and usable.
    pub fn get(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        if !trusted(&path, false) {
            return None;
        }
        // SAFETY: the file is in a directory only this user can write, was
        // written by `put` below from `Component::serialize`, and wasmtime checks
        // its header against the engine before using it.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::debug!("ignoring cached {}: {e:#}", path.display());
                None
            }
        }
    }

    /// Stores a compiled component; failures only cost the next start a compile.
    pub fn put(&self, sha256: &str, component: &Component) {
        let write = || -> anyhow::Result<()> {
            let bytes = component.serialize()?;
            let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
            tmp.write_all(&bytes)?;
            tmp.as_file().sync_all()?;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))?;
            tmp.persist(self.path(sha256))?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::debug!("could not cache compiled component: {e:#}");
        }
    }
}

/// Owned by the effective user and not writable by group or others (the rule
/// of [`crate::trust`], without root: the cache is the user's own).
fn trusted(path: &Path, want_dir: bool) -> bool {
    crate::trust::check(path, want_dir, crate::trust::Owner::Me, false).is_ok()
}
