//! `create-dir`: a directory (and missing parents) inside the clone's
//! directories, with the mode asked (permission bits only).

use std::path::PathBuf;

use super::super::{confined, InPlace, Kind, Running, Validation};
use crate::contract::source::CreateDirStep;
use crate::report::Failure;

#[derive(Debug, Clone)]
pub struct CreateDir {
    pub path: PathBuf,
    pub mode: u32,
}

impl Kind for CreateDir {
    type Asked = CreateDirStep;
    const COPY_PHASE: bool = true;

    fn check(d: &CreateDirStep, v: &Validation<'_>) -> Result<Self, Failure> {
        Ok(CreateDir {
            path: v.resolve(&d.path)?,
            mode: d.mode & 0o777,
        })
    }

    fn in_place(_: &CreateDirStep) -> InPlace {
        InPlace::Rewrites
    }

    fn describe(&self) -> Vec<String> {
        vec![format!(
            "create directory {} (mode {:o})",
            self.path.display(),
            self.mode
        )]
    }

    async fn run(&self, r: &mut Running<'_>) -> anyhow::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        confined(&self.path, &r.ctx.roots)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(self.mode)
            .create(&self.path)
            .map_err(|e| {
                Failure::new(format!(
                    "could not create directory \"{}\"",
                    self.path.display()
                ))
                .detail(e.to_string())
                .into()
            })
    }
}
