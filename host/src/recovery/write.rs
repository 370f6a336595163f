//! Writing rendered configuration into a data directory: each file through a
//! temporary file, fsync, rename and an fsync of the directory, owned like the
//! data directory, mode 0600. Everything happens through a capability handle on
//! the data directory, so no symlink can lead a write outside it.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::Context;
use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

use super::render::RenderedConfig;

/// Reads a file of the data directory, `None` when it does not exist.
pub fn read_existing(datadir: &Path, name: &str) -> anyhow::Result<Option<String>> {
    let dir = Dir::open_ambient_dir(datadir, ambient_authority())
        .with_context(|| format!("could not open data directory \"{}\"", datadir.display()))?;
    match dir.read_to_string(name) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => {
            Err(e).with_context(|| format!("could not read \"{}/{name}\"", datadir.display()))
        }
    }
}

/// Writes `rendered` into `datadir`.
pub fn apply(datadir: &Path, rendered: &RenderedConfig) -> anyhow::Result<()> {
    let meta = std::fs::metadata(datadir)
        .with_context(|| format!("could not access data directory \"{}\"", datadir.display()))?;
    let dir = Dir::open_ambient_dir(datadir, ambient_authority())
        .with_context(|| format!("could not open data directory \"{}\"", datadir.display()))?;
    for (name, contents) in &rendered.files {
        write_atomic(
            &dir,
            datadir,
            name,
            contents.as_bytes(),
            (meta.uid(), meta.gid()),
        )
        .with_context(|| format!("could not write \"{}/{name}\"", datadir.display()))?;
    }
    for name in &rendered.remove {
        match dir.remove_file(name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("could not remove \"{}/{name}\"", datadir.display()))
            }
        }
    }
    sync_dir(datadir).with_context(|| format!("could not fsync \"{}\"", datadir.display()))
}

fn write_atomic(
    dir: &Dir,
    path: &Path,
    name: &str,
    contents: &[u8],
    owner: (u32, u32),
) -> anyhow::Result<()> {
    let tmp = format!(".{name}.pgclone-tmp");
    let _ = dir.remove_file(&tmp);
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true).mode(0o600);
    let mut file = dir.open_with(&tmp, &opts)?;
    let result = (|| -> anyhow::Result<()> {
        file.write_all(contents)?;
        let euid = unsafe { libc::geteuid() };
        if euid == 0 {
            std::os::unix::fs::fchown(&file, Some(owner.0), Some(owner.1))?;
        }
        file.sync_all()?;
        dir.rename(&tmp, dir, name)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    result?;
    sync_dir(path)?;
    Ok(())
}

/// Makes a rename durable. cap-std's directory handle is an `O_PATH`
/// descriptor, which cannot be fsynced, so the directory is opened again.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_replace_and_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("postgresql.auto.conf"), "old\n").unwrap();
        std::fs::write(d.join("recovery.signal"), "").unwrap();
        let r = RenderedConfig {
            files: vec![
                ("postgresql.auto.conf".into(), "new\n".into()),
                ("standby.signal".into(), String::new()),
            ],
            remove: vec!["recovery.signal".into(), "recovery.conf".into()],
        };
        apply(d, &r).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("postgresql.auto.conf")).unwrap(),
            "new\n"
        );
        assert!(d.join("standby.signal").exists());
        assert!(!d.join("recovery.signal").exists());
        let mode = std::fs::metadata(d.join("postgresql.auto.conf"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("pgclone-tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_symlink_cannot_lead_the_write_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::os::unix::fs::symlink(outside.path().join("victim"), d.join("standby.signal"))
            .unwrap();
        std::fs::write(outside.path().join("victim"), "keep").unwrap();
        let r = RenderedConfig {
            files: vec![("standby.signal".into(), String::new())],
            remove: vec![],
        };
        apply(d, &r).unwrap();
        // The link itself was replaced; the file it pointed at is untouched.
        assert_eq!(
            std::fs::read_to_string(outside.path().join("victim")).unwrap(),
            "keep"
        );
        assert!(!std::fs::symlink_metadata(d.join("standby.signal"))
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
