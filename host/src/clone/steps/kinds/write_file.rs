//! `write-file`: a small file (`tablespace_map`, say) written whole inside
//! the clone's directories, with the mode asked (permission bits only).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::super::{confined, InPlace, Kind, Running, Validation};
use crate::contract::source::WriteFileStep;
use crate::report::Failure;

/// write-file steps are for small files such as tablespace_map.
pub const MAX_WRITE_FILE: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct WriteFile {
    pub path: PathBuf,
    pub contents: String,
    pub mode: u32,
}

impl Kind for WriteFile {
    type Asked = WriteFileStep;
    const COPY_PHASE: bool = true;

    fn check(w: &WriteFileStep, v: &Validation<'_>) -> Result<Self, Failure> {
        if w.contents.len() > MAX_WRITE_FILE {
            return Err(v.malformed(format!(
                "a write-file step of {} bytes (at most {MAX_WRITE_FILE})",
                w.contents.len()
            )));
        }
        Ok(WriteFile {
            path: v.resolve(&w.path)?,
            contents: w.contents.clone(),
            mode: w.mode & 0o777,
        })
    }

    fn in_place(_: &WriteFileStep) -> InPlace {
        InPlace::Rewrites
    }

    fn describe(&self) -> Vec<String> {
        vec![format!(
            "write {} ({}, mode {:o})",
            self.path.display(),
            crate::report::count(self.contents.len(), "byte", "bytes"),
            self.mode
        )]
    }

    fn places(&self, dir: &Path) -> Vec<PathBuf> {
        match self.path.starts_with(dir) {
            true => vec![self.path.clone()],
            false => Vec::new(),
        }
    }

    async fn run(&self, r: &mut Running<'_>) -> anyhow::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(self.mode)
                .open(&self.path)?;
            f.write_all(self.contents.as_bytes())?;
            f.sync_all()
        };
        confined(&self.path, &r.ctx.roots)?;
        // A delta copy may find the file from the previous clone.
        let _ = std::fs::remove_file(&self.path);
        write().map_err(|e| {
            Failure::new(format!("could not write \"{}\"", self.path.display()))
                .detail(e.to_string())
                .into()
        })
    }
}
