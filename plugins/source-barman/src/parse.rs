//! Reading what barman prints: `show-backup` (console form, which carries the
//! system identifier in every version) and `list-files`.

use pgclone_plugin_sdk::types::Tablespace;

/// The fields of `barman show-backup` pgclone needs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ShownBackup {
    pub id: String,
    pub status: String,
    pub system_id: String,
    pub version: u32,
    pub timeline: u32,
    pub begin_wal: String,
    pub end_wal: String,
    pub begin_lsn: String,
    pub end_lsn: String,
    pub compression: Option<String>,
    pub tablespaces: Vec<Tablespace>,
    /// The backup's size as Barman shows it under "Base backup information"
    /// ("Disk usage" up to 3.10, "Backup Size" since; without WALs), 0 when
    /// not shown. Approximate (one decimal): the copy's total, the room a
    /// clone needs.
    pub size_bytes: u64,
    /// `barman backup --name` (Barman 3.3+).
    pub name: Option<String>,
    /// `full`, `incremental`, ... (Barman 3.11+; absent before).
    pub backup_type: Option<String>,
    /// The backup an incremental one is based on (Barman 3.11+).
    pub parent: Option<String>,
}

/// Bytes from Barman's human size, e.g. `22.1 MiB` (binary units).
pub fn human_size(value: &str) -> Option<u64> {
    let mut words = value.split_whitespace();
    let number: f64 = words.next()?.parse().ok()?;
    let unit = match words.next()? {
        "B" => 1u64,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "PiB" => 1 << 50,
        _ => return None,
    };
    // `as` would read NaN and negatives as 0 and saturate what is too big:
    // a size the text does not say. Those are no size at all.
    let bytes = number * unit as f64;
    (bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

impl ShownBackup {
    /// A PostgreSQL 17 block-level incremental backup: not a data directory
    /// until combined with its parents (pg_combinebackup).
    pub fn is_incremental(&self) -> bool {
        self.backup_type.as_deref() == Some("incremental") || self.parent.is_some()
    }
}

/// Barman's way of saying "none" in show-backup.
fn none(value: &str) -> bool {
    matches!(value, "" | "None" | "none" | "-") || value.starts_with("- ")
}

/// Parses `barman show-backup SERVER ID` output.
pub fn show_backup(text: &str) -> Result<ShownBackup, String> {
    let mut b = ShownBackup::default();
    let mut in_tablespaces = false;
    // The section a `key: value` row is in: "Disk usage" is both the base
    // backup's size and, under "WAL information", the WAL kept after it.
    let mut section = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Backup ") {
            b.id = rest.trim().trim_end_matches(':').to_string();
            continue;
        }
        let trimmed = line.trim();
        if trimmed.starts_with("Tablespaces") {
            in_tablespaces = true;
            continue;
        }
        if in_tablespaces {
            // "name: /location (oid: 16385)"
            if let (Some((name, rest)), true) = (trimmed.split_once(": "), trimmed.ends_with(')')) {
                if let Some((loc, oid)) = rest.rsplit_once(" (oid: ") {
                    let oid = oid
                        .trim_end_matches(')')
                        .parse()
                        .map_err(|_| format!("bad tablespace line \"{trimmed}\""))?;
                    b.tablespaces.push(Tablespace {
                        oid,
                        name: name.to_string(),
                        location: loc.to_string(),
                    });
                    continue;
                }
            }
            in_tablespaces = false;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if value.is_empty() {
            section = key.to_string();
            continue;
        }
        match key {
            "Status" => b.status = value.to_string(),
            "System Id" => b.system_id = value.to_string(),
            "PostgreSQL Version" => {
                b.version = value
                    .parse()
                    .map_err(|_| format!("bad version \"{value}\""))?
            }
            "Timeline" => b.timeline = value.parse().unwrap_or(0),
            // Barman 3.4 says "Disk usage", newer ones "Backup Size".
            "Disk usage" | "Backup Size" if section == "Base backup information" => {
                b.size_bytes = human_size(value).unwrap_or(0)
            }
            "Begin WAL" => b.begin_wal = value.to_string(),
            "End WAL" => b.end_wal = value.to_string(),
            "Begin LSN" => b.begin_lsn = value.to_string(),
            "End LSN" => b.end_lsn = value.to_string(),
            "Compression" | "Backup compression" | "Backup Compression" if !none(value) => {
                b.compression = Some(value.to_string());
            }
            "Backup Name" if !none(value) => b.name = Some(value.to_string()),
            "Backup Type" if !none(value) => b.backup_type = Some(value.to_string()),
            "Parent Backup" if !none(value) => b.parent = Some(value.to_string()),
            _ => {}
        }
    }
    if b.id.is_empty() || b.status.is_empty() || b.system_id.is_empty() || b.version == 0 {
        return Err(format!(
            "missing fields in:\n{}",
            text.lines().take(8).collect::<Vec<_>>().join("\n")
        ));
    }
    Ok(b)
}

/// `wals_directory` from `barman show-server` (`  wals_directory: /path`):
/// where Barman keeps the server's archived WAL.
pub fn wals_directory(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.trim().split_once(':')?;
        let v = v.trim();
        (k.trim() == "wals_directory" && v.starts_with('/')).then(|| v.to_string())
    })
}

/// The version of `barman --version` ("3.19.1 Barman by EnterpriseDB ...")
/// as (major, minor).
pub fn barman_version(text: &str) -> Option<(u32, u32)> {
    let v = text.split_whitespace().next()?;
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()
        .map(|m| {
            m.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    Some((major, minor))
}

/// The archive format of a backup whose data directory is stored as tar
/// files (`base.tar.gz`, `16385.tar`, ...), e.g. `gzip` or `tar`; none for a
/// plain copy (one that has `PG_VERSION`).
pub fn archive_format(data_files: &[String]) -> Option<String> {
    if data_files.iter().any(|f| f == "PG_VERSION") {
        return None;
    }
    data_files.iter().find_map(|f| {
        let rest = f.strip_prefix("base.tar")?;
        Some(
            match rest {
                "" => "tar",
                ".gz" => "gzip",
                ".bz2" => "bzip2",
                ".lz4" => "lz4",
                ".zst" => "zstd",
                other => other.trim_start_matches('.'),
            }
            .to_string(),
        )
    })
}

/// One archive of a tar-format (compressed) backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarArchive {
    /// Its name in the backup's `data` directory, e.g. `base.tar.gz`.
    pub file: String,
    /// None for `base.tar.*` (the data directory), the OID for `<oid>.tar.*`.
    pub tablespace: Option<u32>,
    /// `gzip`, `lz4`, `zstd`, `bzip2`; none for a plain `.tar`.
    pub compression: Option<&'static str>,
}

/// The archives of a tar-format backup's `data` directory (`base.tar.gz`,
/// `16385.tar.gz`, `backup_manifest`) and whether it has a manifest. Any other
/// file, or archives of mixed compression, is an error.
pub fn tar_archives(data_files: &[String]) -> Result<(Vec<TarArchive>, bool), String> {
    let mut out = Vec::new();
    let mut manifest = false;
    for f in data_files {
        if f == "backup_manifest" {
            manifest = true;
            continue;
        }
        let Some((stem, rest)) = f.split_once(".tar") else {
            return Err(format!("unexpected file \"{f}\" in a tar-format backup"));
        };
        let compression = match rest {
            "" => None,
            ".gz" => Some("gzip"),
            ".lz4" => Some("lz4"),
            ".zst" => Some("zstd"),
            ".bz2" => Some("bzip2"),
            _ => {
                return Err(format!(
                    "archive \"{f}\" has a compression pgclone does not know"
                ))
            }
        };
        let tablespace = match stem {
            "base" => None,
            oid => Some(
                oid.parse::<u32>()
                    .map_err(|_| format!("unexpected file \"{f}\" in a tar-format backup"))?,
            ),
        };
        out.push(TarArchive {
            file: f.clone(),
            tablespace,
            compression,
        });
    }
    if !out.iter().any(|a| a.tablespace.is_none()) {
        return Err("the backup has no base.tar archive".into());
    }
    if out.iter().any(|a| a.compression != out[0].compression) {
        return Err("the backup's archives are not all compressed alike".into());
    }
    // The data directory first.
    out.sort_by_key(|a| a.tablespace);
    Ok((out, manifest))
}

/// The files of a backup, split into the data directory and each tablespace.
#[derive(Debug, Default, PartialEq)]
pub struct Tree {
    /// `<backup>/data`, absolute on the Barman host.
    pub data_dir: String,
    /// Paths relative to `data_dir`.
    pub data_files: Vec<String>,
    /// `(oid, remote directory, relative files)`.
    pub tablespaces: Vec<(u32, String, Vec<String>)>,
}

/// Parses `barman list-files --target data SERVER ID`: absolute paths under
/// `.../<id>/data/` and `.../<id>/<oid>/` (and the catalogue's backup.info,
/// wherever the Barman version keeps it, which is skipped).
pub fn list_files(text: &str, id: &str, tablespaces: &[Tablespace]) -> Result<Tree, String> {
    let mut tree = Tree::default();
    let mut spaces: Vec<(u32, String, Vec<String>)> = Vec::new();
    let data_marker = format!("/{id}/data/");
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(pos) = line.find(&data_marker) {
            let base = &line[..pos + data_marker.len() - 1];
            if tree.data_dir.is_empty() {
                tree.data_dir = base.to_string();
            } else if tree.data_dir != base {
                return Err(format!(
                    "files from two backup directories: {} and {base}",
                    tree.data_dir
                ));
            }
            tree.data_files
                .push(line[pos + data_marker.len()..].to_string());
            continue;
        }
        let mut matched = false;
        for t in tablespaces {
            let marker = format!("/{id}/{}/", t.oid);
            if let Some(pos) = line.find(&marker) {
                let base = line[..pos + marker.len() - 1].to_string();
                let rel = line[pos + marker.len()..].to_string();
                match spaces.iter_mut().find(|(oid, _, _)| *oid == t.oid) {
                    Some(s) => s.2.push(rel),
                    None => spaces.push((t.oid, base, vec![rel])),
                }
                matched = true;
                break;
            }
        }
        if !matched && !line.ends_with("backup.info") {
            return Err(format!("unexpected file in the listing: {line}"));
        }
    }
    if tree.data_files.is_empty() {
        return Err("the listing has no data directory files".into());
    }
    for f in tree
        .data_files
        .iter()
        .chain(spaces.iter().flat_map(|s| s.2.iter()))
    {
        if f.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(format!("suspicious path in the listing: {f}"));
        }
    }
    tree.tablespaces = spaces;
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wals_directory_is_read_from_show_server() {
        let shown = "Server pg:\n\tactive: True\n\twal_level: replica\n\twals_directory: /var/lib/barman/pg/wals\n\tcompression: gzip\n";
        assert_eq!(
            wals_directory(shown).as_deref(),
            Some("/var/lib/barman/pg/wals")
        );
        assert_eq!(
            wals_directory("Server pg:\n\twals_directory: relative\n"),
            None
        );
        assert_eq!(wals_directory("Server pg:\n"), None);
    }

    const SHOWN: &str = "Backup 20261124T210749:
  Server Name            : pg
  System Id              : 7711844596137977720
  Status                 : DONE
  PostgreSQL Version     : 150018
  PGDATA directory       : /tmp/pgt/primary

  Tablespaces:
    ts1: /srv/ts1 (oid: 16390)
    ts two: /srv/ts 2 (oid: 16391)

  Base backup information:
    Disk usage           : 1.0 GiB (1.1 GiB with WALs)
    Timeline             : 1
    Begin WAL            : 000000010000000000000044
    End WAL              : 000000010000000000000045
    Begin LSN            : 0/44000028
    End LSN              : 0/45000000

  WAL information:
    No of files          : 0
    Disk usage           : 0 B
    Last available       : 000000010000000000000045
";

    const SHOWN_INCREMENTAL: &str = "Backup 20261126T101006:
  Backup Name            : incr1
  Server Name            : pg
  System Id              : 7712420261172115520
  Status                 : DONE
  PostgreSQL Version     : 170011
  PGDATA directory       : /tmp/pg17

  Server information:
    Checksums            : off
    WAL summarizer       : on

  Base backup information:
    Backup Method        : postgres
    Backup Type          : incremental
    Backup Size          : 3.2 MiB (19.2 MiB with WALs)
    WAL Size             : 16.0 MiB
    Timeline             : 1
    Begin WAL            : 000000010000000000000008
    Begin LSN            : 0/8000028
    End LSN              : 0/9000000

  Catalog information:
    Retention Policy     : not enforced
    Previous Backup      : 20261126T100953
    Next Backup          : - (this is the latest base backup)
    Root Backup          : 20261126T100953
    Parent Backup        : 20261126T100953
    Backup chain size    : 2

  WAL information:
    No of files          : 1
    Disk usage           : 16.0 MiB
";

    #[test]
    fn names_types_and_parents() {
        let b = show_backup(SHOWN_INCREMENTAL).unwrap();
        assert_eq!(b.name.as_deref(), Some("incr1"));
        assert_eq!(b.backup_type.as_deref(), Some("incremental"));
        assert_eq!(b.parent.as_deref(), Some("20261126T100953"));
        assert!(b.is_incremental());
        // The base backup's size, not the WAL kept after it.
        assert_eq!(b.size_bytes, human_size("3.2 MiB").unwrap());
        let full = SHOWN_INCREMENTAL
            .replace("incremental", "full")
            .replace("    Parent Backup        : 20261126T100953\n", "");
        let b = show_backup(&full).unwrap();
        assert!(!b.is_incremental(), "{b:?}");
        // Barman 3.4: no name, type or parent.
        let b = show_backup(SHOWN).unwrap();
        assert_eq!((b.name, b.backup_type, b.parent), (None, None, None));
        assert_eq!(
            barman_version("3.19.1 Barman by EnterpriseDB (www.enterprisedb.com)\n"),
            Some((3, 19))
        );
        assert_eq!(barman_version("3.4.0 Barman"), Some((3, 4)));
        assert_eq!(barman_version(""), None);
    }

    #[test]
    fn tar_backups_are_recognised() {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            archive_format(&v(&["base.tar.gz", "16385.tar.gz", "backup_manifest"])),
            Some("gzip".into())
        );
        assert_eq!(archive_format(&v(&["base.tar"])), Some("tar".into()));
        assert_eq!(
            archive_format(&v(&["PG_VERSION", "base/1/1259", "base.tar.gz"])),
            None
        );
        assert_eq!(
            archive_format(&v(&["PG_VERSION", "global/pg_control"])),
            None
        );
    }

    #[test]
    fn tar_archives_are_listed() {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (a, m) =
            tar_archives(&v(&["16385.tar.lz4", "backup_manifest", "base.tar.lz4"])).unwrap();
        assert!(m);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].file, "base.tar.lz4");
        assert_eq!(a[0].tablespace, None);
        assert_eq!(a[1].tablespace, Some(16385));
        assert_eq!(a[1].compression, Some("lz4"));
        let (a, m) = tar_archives(&v(&["base.tar"])).unwrap();
        assert!(!m);
        assert_eq!(a[0].compression, None);
        assert!(tar_archives(&v(&["base.tar.gz", "16385.tar.zst"])).is_err());
        assert!(tar_archives(&v(&["16385.tar.gz"])).is_err());
        assert!(tar_archives(&v(&["base.tar.gz", "evil.tar.gz"])).is_err());
        assert!(tar_archives(&v(&["base.tar.gz", "PG_VERSION"])).is_err());
        assert!(tar_archives(&v(&["base.tar.xz"])).is_err());
    }

    #[test]
    fn show_backup_is_understood() {
        let b = show_backup(SHOWN).unwrap();
        assert_eq!(b.id, "20261124T210749");
        assert_eq!(b.status, "DONE");
        assert_eq!(b.system_id, "7711844596137977720");
        assert_eq!(b.version, 150018);
        assert_eq!(b.timeline, 1);
        assert_eq!(b.begin_wal, "000000010000000000000044");
        assert_eq!(b.end_lsn, "0/45000000");
        assert_eq!(b.compression, None);
        assert_eq!(b.size_bytes, 1 << 30);
        assert_eq!(human_size("22.1 MiB (22.1 MiB with WALs)"), Some(23173529));
        assert_eq!(human_size("512 B"), Some(512));
        assert_eq!(human_size("n/a"), None);
        assert_eq!(b.tablespaces.len(), 2);
        assert_eq!(b.tablespaces[1].name, "ts two");
        assert_eq!(b.tablespaces[1].location, "/srv/ts 2");
        assert_eq!(b.tablespaces[1].oid, 16391);
        assert!(show_backup("garbage").is_err());
    }

    #[test]
    fn list_files_splits_data_and_tablespaces_in_both_layouts() {
        let ts = show_backup(SHOWN).unwrap().tablespaces;
        for info in [
            "/b/pg/base/20261124T210749/backup.info",
            "/b/pg/meta/20261124T210749-backup.info",
        ] {
            let text = format!(
                "{info}\n/b/pg/base/20261124T210749/data/PG_VERSION\n/b/pg/base/20261124T210749/data/base/1/112\n\
                 /b/pg/base/20261124T210749/16390/PG_15_202209061/5/16400\n"
            );
            let t = list_files(&text, "20261124T210749", &ts).unwrap();
            assert_eq!(t.data_dir, "/b/pg/base/20261124T210749/data");
            assert_eq!(t.data_files, vec!["PG_VERSION", "base/1/112"]);
            assert_eq!(
                t.tablespaces,
                vec![(
                    16390,
                    "/b/pg/base/20261124T210749/16390".into(),
                    vec!["PG_15_202209061/5/16400".into()]
                )]
            );
        }
    }

    #[test]
    fn list_files_refuses_surprises() {
        assert!(list_files("/etc/passwd\n", "X", &[]).is_err());
        assert!(list_files("", "X", &[]).is_err());
        assert!(list_files("/b/X/data/../../etc/passwd\n", "X", &[]).is_err());
    }
}

/// Barman's answers are untrusted: a damaged, truncated or hostile one is a
/// clean error, never a panic (a panic in a plugin is a trap the host must
/// turn into an error, and it hides what Barman said).
#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    // Real outputs (Barman 3.4 and 3.19, as in `tests` above).
    const SHOWN_34: &str = "Backup 20261124T210749:
  Server Name            : pg
  System Id              : 7711844596137977720
  Status                 : DONE
  PostgreSQL Version     : 150018
  PGDATA directory       : /tmp/pgt/primary

  Tablespaces:
    ts1: /srv/ts1 (oid: 16390)
    ts two: /srv/ts 2 (oid: 16391)

  Base backup information:
    Disk usage           : 1.0 GiB (1.1 GiB with WALs)
    Incremental size     : 1.0 GiB (-0.00%)
    Timeline             : 1
    Begin WAL            : 000000010000000000000044
    End WAL              : 000000010000000000000045
    WAL number           : 2
    WAL compression ratio: 99.90%
    Begin time           : 2026-11-24 21:07:49.839213+00:00
    End time             : 2026-11-24 21:07:52.316563+00:00
    Copy time            : 2 seconds
    Estimated throughput : 512.0 MiB/s
    Begin Offset         : 40
    End Offset           : 0
    Begin LSN            : 0/44000028
    End LSN              : 0/45000000

  WAL information:
    No of files          : 0
    Disk usage           : 0 B
    Last available       : 000000010000000000000045

  Catalog information:
    Retention Policy     : not enforced
    Previous Backup      : - (this is the oldest base backup)
    Next Backup          : - (this is the latest base backup)
";
    const SHOWN_319: &str = "Backup 20261126T101006:
  Backup Name            : incr1
  Server Name            : pg
  System Id              : 7712420261172115520
  Status                 : DONE
  PostgreSQL Version     : 170011
  PGDATA directory       : /tmp/pg17

  Server information:
    Checksums            : off
    WAL summarizer       : on

  Base backup information:
    Backup Method        : postgres
    Backup Type          : incremental
    Backup Compression   : gzip
    Timeline             : 1
    Begin WAL            : 000000010000000000000008
    Begin LSN            : 0/8000028
    End LSN              : 0/9000000

  Catalog information:
    Retention Policy     : not enforced
    Previous Backup      : 20261126T100953
    Next Backup          : - (this is the latest base backup)
    Root Backup          : 20261126T100953
    Parent Backup        : 20261126T100953
    Backup chain size    : 2
";
    const SHOW_SERVER: &str = "Server pg:
\tactive: True
\tarchiver: False
\tbackup_directory: /var/lib/barman/pg
\tbackup_method: postgres
\tbasebackups_directory: /var/lib/barman/pg/base
\tcompression: gzip
\tconninfo: host=127.0.0.1 port=5432 user=barman dbname=postgres
\tincoming_wals_directory: /var/lib/barman/pg/incoming
\tstreaming_wals_directory: /var/lib/barman/pg/streaming
\twal_level: replica
\twals_directory: /var/lib/barman/pg/wals
";
    const LISTING: &str = "/b/pg/meta/20261124T210749-backup.info
/b/pg/base/20261124T210749/data/PG_VERSION
/b/pg/base/20261124T210749/data/backup_label
/b/pg/base/20261124T210749/data/global/pg_control
/b/pg/base/20261124T210749/data/base/1/112
/b/pg/base/20261124T210749/data/base/5/16384_vm
/b/pg/base/20261124T210749/16390/PG_15_202209061/5/16400
/b/pg/base/20261124T210749/16391/PG_15_202209061/5/16401
";
    const TAR_LISTING: &str = "/b/pg/base/20261126T101006/backup.info
/b/pg/base/20261126T101006/data/base.tar.gz
/b/pg/base/20261126T101006/data/16390.tar.gz
/b/pg/base/20261126T101006/data/backup_manifest
";
    const ID: &str = "20261124T210749";

    fn tablespaces() -> Vec<Tablespace> {
        show_backup(SHOWN_34).unwrap().tablespaces
    }

    /// A value as Barman prints one: no line break, nothing to trim.
    fn value() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_./+-][A-Za-z0-9_./+: -]{0,20}[A-Za-z0-9_./+-]"
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        /// Any output of show-backup: a backup with the fields pgclone
        /// relies on, or an error.
        #[test]
        fn show_backup_is_complete_or_an_error(
            text in prop_oneof![fuzz::mutated_any(&[SHOWN_34, SHOWN_319]), fuzz::any_text()]
        ) {
            if let Ok(b) = show_backup(&text) {
                prop_assert!(!b.id.is_empty() && !b.status.is_empty() && !b.system_id.is_empty());
                prop_assert!(b.version != 0);
            }
        }

        /// What Barman prints is read back field for field.
        #[test]
        fn show_backup_reads_what_barman_prints(
            id in "[0-9]{8}T[0-9]{6}",
            status in "DONE|FAILED|WAITING_FOR_WALS",
            system_id in "[0-9]{1,20}",
            version in 90600u32..200000,
            timeline in any::<u32>(),
            (begin_wal, end_wal, begin_lsn, end_lsn) in (value(), value(), value(), value()),
            compression in proptest::option::of("gzip|lz4|zstd|bzip2"),
            // Barman prints "- ..." for none: a name cannot start so.
            name in proptest::option::of("[A-Za-z0-9_.][A-Za-z0-9_./: -]{0,20}[A-Za-z0-9_.]"),
            parent in proptest::option::of("[0-9]{8}T[0-9]{6}"),
            spaces in proptest::collection::vec(
                ("[a-z_][a-z0-9_]{0,10}( [a-z0-9_]{1,5})?", "/[a-z0-9_ /]{0,20}[a-z0-9_]", any::<u32>()),
                0..4,
            ),
        ) {
            let mut text = format!("Backup {id}:\n");
            if let Some(n) = &name {
                text += &format!("  Backup Name            : {n}\n");
            }
            text += &format!(
                "  Server Name            : pg\n  System Id              : {system_id}\n  Status                 : {status}\n  PostgreSQL Version     : {version}\n  PGDATA directory       : /srv/pg\n\n"
            );
            if !spaces.is_empty() {
                text += "  Tablespaces:\n";
                for (n, l, o) in &spaces {
                    text += &format!("    {n}: {l} (oid: {o})\n");
                }
                text += "\n";
            }
            text += &format!(
                "  Base backup information:\n    Timeline             : {timeline}\n    Begin WAL            : {begin_wal}\n    End WAL              : {end_wal}\n    Begin LSN            : {begin_lsn}\n    End LSN              : {end_lsn}\n"
            );
            if let Some(c) = &compression {
                text += &format!("    Backup Compression   : {c}\n");
            }
            if let Some(p) = &parent {
                text += &format!("\n  Catalog information:\n    Parent Backup        : {p}\n");
            }
            let b = show_backup(&text).map_err(TestCaseError::fail)?;
            prop_assert_eq!(
                (b.id, b.status, b.system_id, b.version, b.timeline),
                (id, status, system_id, version, timeline)
            );
            prop_assert_eq!((b.begin_wal, b.end_wal, b.begin_lsn, b.end_lsn), (begin_wal, end_wal, begin_lsn, end_lsn));
            prop_assert_eq!((b.compression, b.name, b.parent), (compression, name, parent));
            let got: Vec<_> = b.tablespaces.into_iter().map(|t| (t.name, t.location, t.oid)).collect();
            prop_assert_eq!(got, spaces);
        }

        /// A size is a number of bytes the text says, or none: never a
        /// wrapped, saturated or negative one.
        #[test]
        fn human_size_is_what_the_text_says_or_none(
            text in prop_oneof![
                (any::<f64>(), proptest::sample::select(&["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"][..]))
                    .prop_map(|(n, u)| format!("{n} {u}")),
                (0u64..1 << 40, proptest::sample::select(&["B", "KiB", "MiB"][..]))
                    .prop_map(|(n, u)| format!("{n} {u} ({n} {u} with WALs)")),
                fuzz::words(&["1", "0.5", "-", "e", "9", " ", "B", "GiB", "inf", "NaN"]),
                fuzz::any_text(),
            ]
        ) {
            if let Some(bytes) = human_size(&text) {
                let mut w = text.split_whitespace();
                let n: f64 = w.next().unwrap().parse().unwrap();
                let unit = match w.next().unwrap() {
                    "B" => 1.0,
                    "KiB" => 1024.0,
                    "MiB" => 1048576.0,
                    "GiB" => 1073741824.0,
                    "TiB" => 1099511627776.0,
                    _ => 1125899906842624.0,
                };
                prop_assert!(n.is_finite() && n >= 0.0 && n * unit < 18446744073709551616.0, "{text:?} → {bytes}");
                prop_assert_eq!(bytes, (n * unit) as u64);
            }
        }

        /// The WAL directory from show-server is an absolute path or none.
        #[test]
        fn wals_directory_is_absolute_or_none(
            text in prop_oneof![fuzz::mutated(SHOW_SERVER), fuzz::any_text()]
        ) {
            if let Some(d) = wals_directory(&text) {
                prop_assert!(d.starts_with('/') && !d.contains('\n'));
            }
        }

        /// `barman --version`: the major and minor version it printed.
        #[test]
        fn barman_version_reads_major_and_minor(
            (a, b, c) in (any::<u32>(), any::<u32>(), any::<u32>()),
            junk in fuzz::any_text(),
        ) {
            let text = format!("{a}.{b}.{c} Barman by EnterpriseDB (www.enterprisedb.com)\n");
            prop_assert_eq!(barman_version(&text), Some((a, b)));
            let _ = barman_version(&junk);
        }

        /// A listing: files under the backup's directories only, each a
        /// plain relative path, or an error.
        #[test]
        fn list_files_yields_plain_paths_or_an_error(
            text in prop_oneof![fuzz::mutated_any(&[LISTING, TAR_LISTING]), fuzz::any_text()],
            id in prop_oneof![Just(ID.to_string()), Just("20261126T101006".to_string()), "[^\n]{0,12}"],
        ) {
            let Ok(tree) = list_files(&text, &id, &tablespaces()) else {
                return Ok(());
            };
            let data_end = format!("/{id}/data");
            prop_assert!(tree.data_dir.ends_with(&data_end));
            let plain = |f: &String| f.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
            prop_assert!(!tree.data_files.is_empty() && tree.data_files.iter().all(plain));
            for (oid, dir, files) in &tree.tablespaces {
                let end = format!("/{id}/{oid}");
                prop_assert!(dir.ends_with(&end));
                prop_assert!(files.iter().all(plain));
            }
            // Whatever the tar reading makes of the data files: no panic.
            let _ = archive_format(&tree.data_files);
            if let Ok((archives, _)) = tar_archives(&tree.data_files) {
                prop_assert!(archives[0].tablespace.is_none());
                prop_assert!(archives.iter().all(|a| a.compression == archives[0].compression));
            }
        }

        /// A listing Barman would print is read back as it was written.
        #[test]
        fn list_files_reads_what_barman_lists(
            root in "(/[a-z0-9_.-]{1,8}){1,4}",
            files in proptest::collection::vec("[a-zA-Z0-9_.-]{0,6}[a-zA-Z0-9_-](/[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,6}){0,3}", 1..20),
        ) {
            let files: Vec<String> = files.into_iter().filter(|f| !f.split('/').any(|c| c == "." || c == "..")).collect();
            prop_assume!(!files.is_empty());
            let text: String = files.iter().map(|f| format!("{root}/{ID}/data/{f}\n")).collect();
            let tree = list_files(&text, ID, &[]).map_err(TestCaseError::fail)?;
            prop_assert_eq!(tree.data_dir, format!("{root}/{ID}/data"));
            prop_assert_eq!(tree.data_files, files);
        }

        /// Names of a tar-format backup's data directory, random or mixed:
        /// archives (the data directory's first, one compression) or an error.
        #[test]
        fn tar_archives_are_consistent_or_an_error(
            names in proptest::collection::vec(
                prop_oneof![
                    "(base|[0-9]{1,6}|16390|x)\\.tar(\\.(gz|lz4|zst|bz2|xz))?",
                    Just("backup_manifest".to_string()),
                    Just("PG_VERSION".to_string()),
                    fuzz::any_text(),
                ],
                0..6,
            )
        ) {
            let _ = archive_format(&names);
            if let Ok((archives, _)) = tar_archives(&names) {
                prop_assert!(archives[0].tablespace.is_none());
                prop_assert!(archives.iter().all(|a| a.compression == archives[0].compression && names.contains(&a.file)));
            }
        }
    }

    #[test]
    fn sizes_that_are_not_sizes_are_none() {
        // Found by human_size_is_what_the_text_says_or_none: a negative
        // size was read as 0 bytes (and NaN too, and inf as 16 EiB).
        assert_eq!(human_size("-0.00000001 B"), None);
        assert_eq!(human_size("-1.0 GiB"), None);
        assert_eq!(human_size("NaN MiB"), None);
        assert_eq!(human_size("inf B"), None);
        assert_eq!(human_size("16384.0 PiB"), None);
        assert_eq!(human_size("0 B"), Some(0));
        assert_eq!(human_size("2.5 PiB"), Some(2814749767106560));
    }
}
