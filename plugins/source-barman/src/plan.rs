//! The plans: a plain backup copied file by file (`copy-tree`), a
//! compressed one unpacked archive by archive (`unpack-archive`), an
//! incremental one copied backup by backup into the staging directory and
//! combined (`combine-backups`); then the directories Barman leaves out.

use pgclone_plugin_sdk::types::{
    ArchiveCompression, BackupDescription, CombineBackupsStep, CopyTreeStep, CreateDirStep,
    ErrorKind, LocalPath, PathRoot, PlanStep, PluginError, UnpackArchiveStep,
};

use super::{barman, err, parse, parse_shown, restore_command_name, show_backup, TARGET};

/// Directories a Barman backup leaves out (or empties) that PostgreSQL needs.
const SKELETON: &[&str] = &[
    "pg_wal",
    "pg_wal/archive_status",
    "pg_replslot",
    "pg_stat_tmp",
    "pg_logical",
    "pg_logical/snapshots",
    "pg_logical/mappings",
    "pg_notify",
    "pg_serial",
    "pg_snapshots",
    "pg_subtrans",
    "pg_dynshmem",
    "pg_twophase",
    "pg_commit_ts",
    "pg_tblspc",
    "pg_stat",
];

/// The chain of an incremental backup, oldest (the full backup) first, found
/// by following `Parent Backup` through `barman show-backup`. A parent Barman
/// no longer has, one that is not DONE, a compressed or tablespace-holding
/// chain are clear errors here, before anything is copied.
pub(crate) fn incremental_chain(
    server: &str,
    last: parse::ShownBackup,
) -> Result<Vec<parse::ShownBackup>, PluginError> {
    let mut chain = vec![last];
    while let Some(parent) = chain.last().and_then(|b| b.parent.clone()) {
        if chain.len() > 1000 || chain.iter().any(|b| b.id == parent) {
            return Err(err(
                ErrorKind::InvalidBackup,
                format!(
                    "the chain of backup {} loops at backup {parent}",
                    chain[0].id
                ),
                None,
                None,
            ));
        }
        let child = chain.last().map(|b| b.id.clone()).unwrap_or_default();
        let shown = match show_backup(server, &parent) {
            Ok(s) => s,
            Err(e) if e.kind == ErrorKind::NotFound => {
                return Err(err(
                    ErrorKind::NotFound,
                    format!(
                        "backup {} is an incremental backup whose chain is incomplete: Barman no longer has backup {parent}, the parent of {child}",
                        chain[0].id
                    ),
                    Some(format!(
                        "an incremental backup can only be restored with every backup it is based on; nothing was copied\n{}",
                        e.detail.unwrap_or(e.message)
                    )),
                    Some("choose a backup whose chain is complete with --backup-id (barman list-backups), or take a new full backup (barman backup SERVER)"),
                ))
            }
            Err(e) => return Err(e),
        };
        let b = parse_shown(&shown, &parent)?;
        if b.status != "DONE" {
            return Err(err(
                ErrorKind::InvalidBackup,
                format!(
                    "backup {parent} of the chain of backup {} has status {}, not DONE",
                    chain[0].id, b.status
                ),
                None,
                Some("choose another backup with --backup-id"),
            ));
        }
        chain.push(b);
    }
    chain.reverse();
    if chain[0].is_incremental() {
        return Err(err(
            ErrorKind::InvalidBackup,
            format!(
                "the chain of backup {} does not start with a full backup",
                chain[chain.len() - 1].id
            ),
            None,
            None,
        ));
    }
    if chain.iter().any(|b| !b.tablespaces.is_empty()) {
        return Err(err(
            ErrorKind::Unsupported,
            format!(
                "the incremental backup {} has tablespaces: pgclone cannot combine such a chain yet",
                chain[chain.len() - 1].id
            ),
            None,
            Some(&format!("restore it with {}, or clone from a full backup with --backup-id", restore_command_name())),
        ));
    }
    Ok(chain)
}

/// Where each backup of a chain is copied in the staging directory.
fn staging_path(i: usize, id: &str) -> LocalPath {
    LocalPath {
        root: PathRoot::Staging,
        path: format!("{i:02}-{id}"),
    }
}

/// A plain backup: its data directory and each tablespace copied with rsync.
pub(crate) fn copy_steps(tree: parse::Tree) -> Vec<PlanStep> {
    let mut steps = vec![PlanStep::CopyTree(CopyTreeStep {
        target: TARGET.into(),
        remote_path: tree.data_dir,
        local: LocalPath {
            root: PathRoot::DataDirectory,
            path: String::new(),
        },
        files: tree.data_files,
        exclude: Vec::new(),
    })];
    for (oid, remote, files) in tree.tablespaces {
        steps.push(PlanStep::CopyTree(CopyTreeStep {
            target: TARGET.into(),
            remote_path: remote,
            local: LocalPath {
                root: PathRoot::Tablespace(oid),
                path: String::new(),
            },
            files,
            exclude: Vec::new(),
        }));
    }
    steps
}

/// A tar-format backup (`backup_compression`): `base.tar.*` unpacked into the
/// data directory, `<oid>.tar.*` into each tablespace, and `backup_manifest`
/// copied next to them so that the host verifies the result against it.
pub(crate) fn archive_steps(
    backup: &BackupDescription,
    tree: &parse::Tree,
) -> Result<Vec<PlanStep>, PluginError> {
    archive_steps_into(&backup.id, &backup.tablespaces, tree, None)
}

/// The same, for backup `id` with `tablespaces`; into `into` (a staging
/// subdirectory, for a backup of an incremental chain) instead of the data
/// directory when given.
fn archive_steps_into(
    id: &str,
    tablespaces: &[pgclone_plugin_sdk::types::Tablespace],
    tree: &parse::Tree,
    into: Option<LocalPath>,
) -> Result<Vec<PlanStep>, PluginError> {
    let data = into.unwrap_or(LocalPath {
        root: PathRoot::DataDirectory,
        path: String::new(),
    });
    let (archives, manifest) = parse::tar_archives(&tree.data_files).map_err(|problem| {
        err(
            ErrorKind::InvalidBackup,
            format!("backup {id} is not a tar-format backup pgclone understands"),
            Some(problem),
            None,
        )
    })?;
    let mut steps = Vec::new();
    for a in archives {
        let local = match a.tablespace {
            None => data.clone(),
            Some(oid) if tablespaces.iter().any(|t| t.oid == oid) => LocalPath {
                root: PathRoot::Tablespace(oid),
                path: String::new(),
            },
            Some(oid) => {
                return Err(err(
                    ErrorKind::InvalidBackup,
                    format!(
                        "backup {id} has an archive of tablespace {oid}, which barman show-backup does not list"
                    ),
                    Some(a.file),
                    None,
                ))
            }
        };
        steps.push(PlanStep::UnpackArchive(UnpackArchiveStep {
            target: TARGET.into(),
            remote_path: format!("{}/{}", tree.data_dir, a.file),
            compression: a.compression.map(|c| match c {
                "gzip" => ArchiveCompression::Gzip,
                "lz4" => ArchiveCompression::Lz4,
                "zstd" => ArchiveCompression::Zstd,
                _ => ArchiveCompression::Bzip2,
            }),
            local,
            size_bytes: 0,
        }));
    }
    if manifest {
        steps.push(PlanStep::CopyTree(CopyTreeStep {
            target: TARGET.into(),
            remote_path: tree.data_dir.clone(),
            files: vec!["backup_manifest".into()],
            exclude: Vec::new(),
            local: data,
        }));
    }
    Ok(steps)
}

/// The directories of a Barman backup that PostgreSQL needs, in the data directory.
pub(crate) fn skeleton_steps() -> Vec<PlanStep> {
    SKELETON
        .iter()
        .map(|dir| {
            PlanStep::CreateDir(CreateDirStep {
                path: LocalPath {
                    root: PathRoot::DataDirectory,
                    path: dir.to_string(),
                },
                mode: 0o700,
            })
        })
        .collect()
}

/// An incremental backup: every backup of its chain copied into the staging
/// directory, combined into the data directory by the host (pg_combinebackup),
/// then the directories Barman leaves out.
pub(crate) fn incremental_plan(
    server: &str,
    last: parse::ShownBackup,
) -> Result<Vec<PlanStep>, PluginError> {
    let chain = incremental_chain(server, last)?;
    let mut steps = Vec::new();
    let mut backups = Vec::new();
    // Barman keeps a server's backups side by side (`.../<id>/data`): once a
    // listing has named that directory, an uncompressed backup of the chain
    // is copied as the whole tree there, listed by rsync as it is copied
    // (each barman call costs a Python start on the Barman host).
    let mut base_dir: Option<String> = None;
    for (i, b) in chain.iter().enumerate() {
        if let (Some(base), None, true) = (&base_dir, &b.compression, plain_id(&b.id)) {
            steps.push(PlanStep::CopyTree(CopyTreeStep {
                target: TARGET.into(),
                remote_path: format!("{base}/{}/data", b.id),
                local: staging_path(i, &b.id),
                files: Vec::new(),
                exclude: Vec::new(),
            }));
            steps.extend(staging_skeleton(i, &b.id));
            backups.push(staging_path(i, &b.id));
            continue;
        }
        let listing = barman(&["list-files", "--target", "data", server, &b.id])?;
        let tree = parse::list_files(&listing, &b.id, &[]).map_err(|problem| {
            err(
                ErrorKind::InvalidBackup,
                format!(
                    "backup {} of the chain of incremental backup {} has no usable files in Barman",
                    b.id,
                    chain[chain.len() - 1].id
                ),
                Some(format!("barman list-files: {problem}; nothing was copied")),
                Some("check the backups with barman check-backup, or choose a backup whose chain is complete with --backup-id"),
            )
        })?;
        // A compressed backup (backup_compression): its archives unpacked
        // into the staging subdirectory as they arrive.
        if parse::archive_format(&tree.data_files).is_some() {
            steps.extend(archive_steps_into(
                &b.id,
                &[],
                &tree,
                Some(staging_path(i, &b.id)),
            )?);
        } else if !tree.data_files.iter().any(|f| f == "backup_manifest") {
            return Err(err(
                ErrorKind::InvalidBackup,
                format!("backup {} of the chain has no backup_manifest", b.id),
                Some("pg_combinebackup needs the manifest of every backup of the chain".into()),
                None,
            ));
        } else {
            if plain_id(&b.id) {
                base_dir = tree
                    .data_dir
                    .strip_suffix(&format!("/{}/data", b.id))
                    .map(str::to_string);
            }
            steps.push(PlanStep::CopyTree(CopyTreeStep {
                target: TARGET.into(),
                remote_path: tree.data_dir,
                local: staging_path(i, &b.id),
                files: tree.data_files,
                exclude: Vec::new(),
            }));
        }
        steps.extend(staging_skeleton(i, &b.id));
        backups.push(staging_path(i, &b.id));
    }
    steps.push(PlanStep::CombineBackups(CombineBackupsStep { backups }));
    steps.extend(skeleton_steps());
    Ok(steps)
}

/// Barman leaves out empty directories pg_combinebackup reads (pg_tblspc):
/// each copy of the chain gets them (and so does the result).
fn staging_skeleton(i: usize, id: &str) -> Vec<PlanStep> {
    SKELETON
        .iter()
        .map(|dir| {
            let mut path = staging_path(i, id);
            path.path = format!("{}/{dir}", path.path);
            PlanStep::CreateDir(CreateDirStep { path, mode: 0o700 })
        })
        .collect()
}

/// A backup id that names one directory as it is (Barman's are
/// `20261208T021435`): only such a one is put into a path by hand.
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Barman's ids and names go into a path; anything that could leave
    /// the directory or needs escaping is listed by Barman instead.
    #[test]
    fn only_plain_ids_are_put_into_a_path() {
        for id in ["20261208T021435", "20261208T021435-x", "a_b.c"] {
            assert!(plain_id(id), "{id}");
        }
        for id in ["", ".", "..", "a/b", "../x", "a b", "x\n", "é"] {
            assert!(!plain_id(id), "{id:?}");
        }
    }
}
