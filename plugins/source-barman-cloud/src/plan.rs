//! The plan of a clone from a barman-cloud backup, as barman-cloud-restore
//! makes a data directory: each archive (with its parts) unpacked by the
//! host straight from the store, the data directory's into the data
//! directory and each tablespace's into its placed location; `pg_wal`
//! created when the archive did not hold it; and, instead of the
//! `pg_tblspc` links barman-cloud-restore makes, a `tablespace_map` naming
//! where the host placed each tablespace (PostgreSQL makes the links from it
//! when it starts from the backup label, which the data archive holds).

use pgclone_plugin_sdk::types::{
    BackupDescription, CreateDirStep, LocalPath, ObjectParts, PathRoot, PlacedTablespace, PlanStep,
    UnpackObjectsStep, WriteFileStep,
};

use crate::layout::Archive;

/// Directories of a data directory that barman-cloud-restore recreates when
/// the archive lacks them (`pg_wal` was a link on the primary, or left out).
const CREATED: &[&str] = &["pg_wal", "pg_wal/archive_status"];

/// The steps for `backup`, whose archives (data first) are `archives`, of
/// store `store`; `placed`: where the host puts each tablespace.
pub fn steps(
    store: &str,
    backup: &BackupDescription,
    archives: Vec<Archive>,
    placed: &[PlacedTablespace],
) -> Vec<PlanStep> {
    let mut steps: Vec<PlanStep> = archives
        .into_iter()
        .map(|a| {
            PlanStep::UnpackObjects(UnpackObjectsStep {
                store: store.into(),
                objects: a.objects,
                // Each part is a whole tar archive (a new one is opened when
                // the last passed --max-archive-size).
                parts: ObjectParts::Separate,
                compression: a.compression,
                local: LocalPath {
                    root: match a.tablespace {
                        None => PathRoot::DataDirectory,
                        Some(oid) => PathRoot::Tablespace(oid),
                    },
                    path: String::new(),
                },
                size_bytes: a.size_bytes,
            })
        })
        .collect();
    steps.extend(CREATED.iter().map(|dir| {
        PlanStep::CreateDir(CreateDirStep {
            path: LocalPath {
                root: PathRoot::DataDirectory,
                path: dir.to_string(),
            },
            mode: 0o700,
        })
    }));
    if !backup.tablespaces.is_empty() {
        let contents: String = backup
            .tablespaces
            .iter()
            .map(|t| {
                let location = placed
                    .iter()
                    .find(|p| p.oid == t.oid)
                    .map_or(t.location.as_str(), |p| p.location.as_str());
                format!("{} {}\n", t.oid, escape(location))
            })
            .collect();
        steps.push(PlanStep::WriteFile(WriteFileStep {
            path: LocalPath {
                root: PathRoot::DataDirectory,
                path: "tablespace_map".into(),
            },
            contents,
            mode: 0o600,
        }));
    }
    steps
}

/// A location as PostgreSQL writes it in `tablespace_map`: a backslash
/// before each line break, carriage return and backslash.
fn escape(location: &str) -> String {
    let mut out = String::with_capacity(location.len());
    for c in location.chars() {
        if matches!(c, '\n' | '\r' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgclone_plugin_sdk::types::{ArchiveCompression, Tablespace};

    #[test]
    fn archives_links_and_directories() {
        let mut backup = pgclone_plugin_sdk::testing::backup("20261207T192455");
        backup.tablespaces = vec![
            Tablespace {
                oid: 16384,
                name: "ts1".into(),
                location: "/old/ts1".into(),
            },
            Tablespace {
                oid: 16390,
                name: "ts2".into(),
                location: "/old/ts\\2".into(),
            },
        ];
        let archives = vec![
            Archive {
                tablespace: None,
                objects: vec![
                    "m/base/i/data.tar.gz".into(),
                    "m/base/i/data_0001.tar.gz".into(),
                ],
                size_bytes: 30,
                compression: Some(ArchiveCompression::Gzip),
            },
            Archive {
                tablespace: Some(16384),
                objects: vec!["m/base/i/16384.tar.gz".into()],
                size_bytes: 5,
                compression: Some(ArchiveCompression::Gzip),
            },
        ];
        let placed = [PlacedTablespace {
            oid: 16384,
            location: "/new/ts\n1".into(),
        }];
        let steps = steps("barman-cloud", &backup, archives, &placed);
        let PlanStep::UnpackObjects(u) = &steps[0] else {
            panic!("{steps:?}")
        };
        assert_eq!(u.store, "barman-cloud");
        assert_eq!(u.objects.len(), 2);
        assert_eq!(u.parts, ObjectParts::Separate);
        assert_eq!(u.local.root, PathRoot::DataDirectory);
        assert_eq!(u.size_bytes, 30);
        let PlanStep::UnpackObjects(u) = &steps[1] else {
            panic!()
        };
        assert_eq!(u.local.root, PathRoot::Tablespace(16384));
        assert!(matches!(&steps[2], PlanStep::CreateDir(d) if d.path.path == "pg_wal"));
        let PlanStep::WriteFile(w) = steps.last().unwrap() else {
            panic!()
        };
        assert_eq!(w.path.path, "tablespace_map");
        // The placed location where the host placed one, the backup's otherwise.
        assert_eq!(w.contents, "16384 /new/ts\\\n1\n16390 /old/ts\\\\2\n");
        // No tablespaces: no map.
        backup.tablespaces.clear();
        let steps = super::steps("s", &backup, Vec::new(), &[]);
        assert!(!steps.iter().any(|s| matches!(s, PlanStep::WriteFile(_))));
    }
}
