//! barman-cloud's object names, as barman-cloud-backup and
//! barman-cloud-wal-archive 3.19.1 write them under the store's root
//! (the user's `s3://BUCKET/PREFIX`):
//!
//! - `SERVER/base/ID/backup.info`, and one archive per directory:
//!   `data.tar[.gz|.bz2|.lz4|.snappy]` for the data directory and
//!   `OID.tar[...]` per tablespace; with `--max-archive-size` the next parts
//!   of an archive are `data_0001.tar.gz`, `data_0002.tar.gz`, ... (`_%04d`,
//!   more digits past 9999), each a whole tar archive;
//! - `SERVER/wals/TTTTTTTTLLLLLLLL/SEGMENT[.gz|.bz2|.xz|.snappy|.zst|.lz4]`,
//!   and history files directly in `SERVER/wals/`.
//!
//! Keys come from a store others may write: anything that is not one of
//! these names is ignored, and a name that is almost one is refused.

use pgclone_plugin_sdk::types::{ArchiveCompression, ObjectMeta, WalSuffix};

/// `SERVER/base/`: where the backups of `server` are.
pub fn base_prefix(server: &str) -> String {
    format!("{server}/base/")
}

/// `SERVER/base/ID/`: the objects of one backup.
pub fn backup_prefix(server: &str, id: &str) -> String {
    format!("{server}/base/{id}/")
}

/// `SERVER/wals/`: the archived WAL.
pub fn wal_prefix(server: &str) -> String {
    format!("{server}/wals/")
}

/// One segment of a key as barman-cloud writes them (a server name, a
/// backup id or an object's name): letters, digits, `_`, `-`, `.`, not `.`
/// or `..` and not starting with `-`.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// barman-cloud's backup id form (`barman.utils.is_backup_id`): `YYYYMMDDTHHMMSS`.
pub fn is_backup_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 15
        && b[8] == b'T'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
}

/// The backup directories of a delimited listing of `SERVER/base/`, in
/// order; other prefixes are ignored.
pub fn backup_ids(base: &str, prefixes: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = prefixes
        .iter()
        .filter_map(|p| p.strip_prefix(base)?.strip_suffix('/'))
        .filter(|id| is_name(id))
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// One archive of a backup (the data directory's or a tablespace's), with
/// its parts in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// None for `data`, the OID for a tablespace's.
    pub tablespace: Option<u32>,
    /// The keys: the main object, then `_0001`, `_0002`, ...
    pub objects: Vec<String>,
    /// The objects' total size.
    pub size_bytes: u64,
    /// Its compression (the same for every part); none for plain tar.
    pub compression: Option<ArchiveCompression>,
}

/// The compression of an archive from its extension, as barman-cloud names
/// them (`CloudBackupCatalog.get_backup_files`).
pub fn archive_compression(ext: &str) -> Option<Option<ArchiveCompression>> {
    Some(match ext {
        "tar" => None,
        "tar.gz" => Some(ArchiveCompression::Gzip),
        "tar.bz2" => Some(ArchiveCompression::Bzip2),
        "tar.lz4" => Some(ArchiveCompression::Lz4),
        "tar.snappy" => Some(ArchiveCompression::Snappy),
        _ => return None,
    })
}

/// How a compression is named in a backup's description.
pub fn compression_name(c: Option<ArchiveCompression>) -> &'static str {
    match c {
        None => "none",
        Some(ArchiveCompression::Gzip) => "gzip",
        Some(ArchiveCompression::Bzip2) => "bzip2",
        Some(ArchiveCompression::Lz4) => "lz4",
        Some(ArchiveCompression::Snappy) => "snappy",
        Some(ArchiveCompression::Zstd) => "zstd",
        Some(ArchiveCompression::Xz) => "xz",
    }
}

/// One object of a backup's directory, read from its name.
struct Piece {
    tablespace: Option<u32>,
    part: u32,
    compression: Option<ArchiveCompression>,
}

/// What an object's name says, for the archives `bases` names
/// (`data` and each tablespace's OID). None for an object that is no
/// archive of them (`backup.info`, `backup_label` of a snapshot backup,
/// `16385.tar` of a tablespace the backup does not have, an extension
/// barman-cloud does not know); an error for a part number barman-cloud
/// does not write.
fn piece(name: &str, oids: &[u32]) -> Result<Option<Piece>, String> {
    let (stem, ext) = match name.split_once('.') {
        Some(split) => split,
        None => (name, ""),
    };
    let (base, part) = match stem.split_once('_') {
        Some((base, n)) => (base, Some(n)),
        None => (stem, None),
    };
    let tablespace = if base == "data" {
        None
    } else {
        match base.parse::<u32>() {
            Ok(oid) if oids.contains(&oid) && oid.to_string() == base => Some(oid),
            _ => return Ok(None),
        }
    };
    // barman-cloud skips an extension it does not know: not an archive.
    let Some(compression) = archive_compression(ext) else {
        return Ok(None);
    };
    let part = match part {
        None => 0,
        Some(n) if n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()) => {
            n.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(|| {
                format!("\"{name}\" has a part number barman-cloud does not write")
            })?
        }
        Some(_) => return Err(format!("\"{name}\" is not a part barman-cloud writes")),
    };
    Ok(Some(Piece {
        tablespace,
        part,
        compression,
    }))
}

/// The archives of backup directory `prefix` (`SERVER/base/ID/`) from a
/// delimited listing of it: the data directory's first, then each of
/// `oids` in order. Objects outside the directory or not named as
/// barman-cloud names archives are ignored; a missing archive, a missing
/// part, a part twice or parts of mixed compression are errors.
pub fn archives(
    prefix: &str,
    objects: &[ObjectMeta],
    oids: &[u32],
) -> Result<Vec<Archive>, String> {
    // (tablespace, part number, key, size, compression)
    type Found = (Option<u32>, u32, String, u64, Option<ArchiveCompression>);
    let mut found: Vec<Found> = Vec::new();
    for o in objects {
        let Some(name) = o.key.strip_prefix(prefix) else {
            continue;
        };
        if !is_name(name) {
            continue;
        }
        let Some(p) = piece(name, oids)? else {
            continue;
        };
        if let Some(other) = found.iter().find(|f| f.0 == p.tablespace && f.1 == p.part) {
            return Err(format!(
                "two objects for one part: \"{}\" and \"{}\"",
                other.2, o.key
            ));
        }
        found.push((p.tablespace, p.part, o.key.clone(), o.size, p.compression));
    }
    let mut out = Vec::new();
    for tablespace in std::iter::once(None).chain(oids.iter().map(|&o| Some(o))) {
        let mut parts: Vec<_> = found.iter().filter(|f| f.0 == tablespace).collect();
        parts.sort_by_key(|f| f.1);
        let what = match tablespace {
            None => "data".to_string(),
            Some(oid) => oid.to_string(),
        };
        if parts.is_empty() {
            return Err(format!("no archive \"{prefix}{what}.tar*\""));
        }
        for (i, f) in parts.iter().enumerate() {
            if f.1 as usize != i {
                return Err(if i == 0 {
                    format!("parts of \"{what}\" without its first archive \"{prefix}{what}.tar*\"")
                } else {
                    format!("part {i:04} of \"{what}\" is missing (found \"{}\")", f.2)
                });
            }
        }
        let compression = parts[0].4;
        if let Some(odd) = parts.iter().find(|f| f.4 != compression) {
            return Err(format!(
                "the parts of \"{what}\" are not all compressed alike (\"{}\")",
                odd.2
            ));
        }
        out.push(Archive {
            tablespace,
            objects: parts.iter().map(|f| f.2.clone()).collect(),
            size_bytes: parts.iter().map(|f| f.3).sum(),
            compression,
        });
    }
    Ok(out)
}

/// The endings of archived WAL: plain first, then every compression
/// barman-cloud-wal-archive writes, in barman-cloud's own order
/// (`ALLOWED_COMPRESSIONS`).
pub fn wal_suffixes() -> Vec<WalSuffix> {
    [
        ("", None),
        (".gz", Some(ArchiveCompression::Gzip)),
        (".bz2", Some(ArchiveCompression::Bzip2)),
        (".xz", Some(ArchiveCompression::Xz)),
        (".snappy", Some(ArchiveCompression::Snappy)),
        (".zst", Some(ArchiveCompression::Zstd)),
        (".lz4", Some(ArchiveCompression::Lz4)),
    ]
    .into_iter()
    .map(|(suffix, compression)| WalSuffix {
        suffix: suffix.into(),
        compression,
    })
    .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The objects of the real bucket (`fixtures/listing.txt`: `KEY SIZE`,
    /// keys relative to the store's root).
    pub(crate) fn real_listing() -> Vec<ObjectMeta> {
        include_str!("../fixtures/listing.txt")
            .lines()
            .map(|l| {
                let (k, s) = l.rsplit_once(' ').unwrap();
                ObjectMeta {
                    key: k.into(),
                    size: s.parse().unwrap(),
                }
            })
            .collect()
    }

    fn under(prefix: &str) -> Vec<ObjectMeta> {
        real_listing()
            .into_iter()
            .filter(|o| o.key.starts_with(prefix) && !o.key[prefix.len()..].contains('/'))
            .collect()
    }

    #[test]
    fn ids_and_names() {
        assert!(is_backup_id("20261207T192455"));
        assert!(!is_backup_id("20261207X192455"));
        assert!(!is_backup_id("2026120T1924550"));
        assert!(!is_backup_id("gzparts"));
        let ids = backup_ids(
            "main/base/",
            &[
                "main/base/20261207T192524/".into(),
                "main/base/20261207T192455/".into(),
                "main/base/../".into(),
                "main/base/a/b/".into(),
                "other/base/20261207T192455/".into(),
                "main/base/-x/".into(),
            ],
        );
        assert_eq!(ids, ["20261207T192455", "20261207T192524"]);
    }

    #[test]
    fn real_parts_in_numeric_order() {
        let p = backup_prefix("main", "20261207T192613");
        let a = archives(&p, &under(&p), &[16384]).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].tablespace, None);
        assert_eq!(a[0].compression, None);
        assert_eq!(a[0].objects.len(), 22);
        assert_eq!(a[0].objects[0], format!("{p}data.tar"));
        assert_eq!(a[0].objects[9], format!("{p}data_0009.tar"));
        assert_eq!(a[0].objects[10], format!("{p}data_0010.tar"));
        assert_eq!(a[0].objects[21], format!("{p}data_0021.tar"));
        assert_eq!(a[1].tablespace, Some(16384));
        assert_eq!(
            a[1].objects,
            [
                format!("{p}16384.tar"),
                format!("{p}16384_0001.tar"),
                format!("{p}16384_0002.tar")
            ]
        );
        assert_eq!(a[1].size_bytes, 6840320 + 4116480 + 51200);
    }

    #[test]
    fn every_backup_compression() {
        for (id, c) in [
            ("20261207T192455", Some(ArchiveCompression::Gzip)),
            ("20261207T192524", None),
            ("20261207T192528", Some(ArchiveCompression::Bzip2)),
            ("20261207T192532", Some(ArchiveCompression::Lz4)),
            ("20261207T192536", Some(ArchiveCompression::Snappy)),
            ("20261207T192617", Some(ArchiveCompression::Lz4)),
        ] {
            let p = backup_prefix("main", id);
            let a = archives(&p, &under(&p), &[16384]).unwrap();
            assert!(a.iter().all(|a| a.compression == c), "{id}");
        }
    }

    #[test]
    fn numbers_past_9999_sort_as_numbers() {
        let p = "s/base/i/";
        let objs: Vec<ObjectMeta> = ["data.tar.gz", "data_10000.tar.gz"]
            .iter()
            .map(|n| n.to_string())
            .chain((1..10000).map(|i| format!("data_{i:04}.tar.gz")))
            .map(|n| ObjectMeta {
                key: format!("{p}{n}"),
                size: 1,
            })
            .collect();
        let a = archives(p, &objs, &[]).unwrap();
        assert_eq!(a[0].objects.len(), 10001);
        assert_eq!(a[0].objects[9999], format!("{p}data_9999.tar.gz"));
        assert_eq!(a[0].objects[10000], format!("{p}data_10000.tar.gz"));
    }

    fn objects(p: &str, names: &[&str]) -> Vec<ObjectMeta> {
        names
            .iter()
            .map(|n| ObjectMeta {
                key: format!("{p}{n}"),
                size: 10,
            })
            .collect()
    }

    #[test]
    fn broken_or_hostile_directories() {
        let p = "s/base/i/";
        let ok = |names: &[&str], oids: &[u32]| archives(p, &objects(p, names), oids);
        // Foreign objects are ignored.
        let a = ok(
            &[
                "backup.info",
                "data.tar",
                "16390.tar",
                "x.tar",
                "data",
                "data.tar.zip",
                "016384.tar",
                "16384.tar",
            ],
            &[16384],
        )
        .unwrap();
        assert_eq!(a[0].objects, ["s/base/i/data.tar"]);
        assert_eq!(a[1].objects, ["s/base/i/16384.tar"]);
        // Keys outside the directory or climbing out of it are never planned.
        let mut objs = objects(p, &["data.tar"]);
        objs.extend(objects(
            "",
            &["s/base/j/data_0001.tar", "s/base/i/../j/data_0001.tar"],
        ));
        objs.extend(objects(p, &["../data_0001.tar", "sub/data_0001.tar"]));
        assert_eq!(
            archives(p, &objs, &[]).unwrap()[0].objects,
            ["s/base/i/data.tar"]
        );
        for bad in [
            &["backup.info"][..],
            &["data_0001.tar"],
            &["data.tar", "data_0002.tar"],
            &["data.tar.gz", "data_0001.tar"],
            &["data.tar", "data.tar.gz"],
            &["data.tar", "data_1.tar"],
            &["data.tar", "data_x.tar"],
            &["data.tar", "data_0000.tar"],
            &["data.tar.zst"],
            &["data.tar", "16384.tar.gz", "16384_0001.tar"],
        ] {
            assert!(
                ok(bad, &[]).is_err() || ok(bad, &[16384]).is_err(),
                "{bad:?}"
            );
        }
        // A tablespace the backup has must have its archive.
        assert!(ok(&["data.tar"], &[16384]).unwrap_err().contains("16384"));
    }

    #[test]
    fn wal_suffixes_of_every_real_compression() {
        let s = wal_suffixes();
        assert_eq!(s[0].suffix, "");
        assert_eq!(s[0].compression, None);
        // Each real object of the archive ends in one of them.
        for o in real_listing()
            .iter()
            .filter(|o| o.key.starts_with("main/wals/"))
        {
            let name = o.key.rsplit('/').next().unwrap();
            let stem = name.split('.').next().unwrap();
            let ending = &name[stem.len()..];
            let ending = ending
                .strip_prefix(".history")
                .or(ending.strip_prefix(".00000028.backup"))
                .unwrap_or(ending);
            assert!(s.iter().any(|x| x.suffix == ending), "{name}");
        }
    }
}
