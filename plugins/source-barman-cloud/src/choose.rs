//! Which backup `--backup-id` means, as barman-cloud-restore reads its
//! BACKUP_ID: a backup id (`YYYYMMDDTHHMMSS`), a shortcut (`latest`/`last`,
//! `oldest`/`first`) or a backup name (`barman-cloud-backup -n`). Unlike
//! barman-cloud, whose `latest` may be a FAILED backup, the shortcuts skip
//! what is not DONE: a clone can only start from a completed backup.

use pgclone_plugin_sdk::types::{ErrorKind, LogLevel, PluginError};

use crate::info::{BackupInfo, DONE};
use crate::layout::is_backup_id;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    Id(String),
    Latest,
    Oldest,
    Name(String),
}

/// Reads `--backup-id` (none: the latest backup).
pub fn wanted(backup_id: Option<&str>) -> Result<Wanted, PluginError> {
    Ok(match backup_id {
        None | Some("latest" | "last" | "auto") => Wanted::Latest,
        Some("oldest" | "first") => Wanted::Oldest,
        Some(s @ ("last-failed" | "latest-full" | "last-full")) => {
            return Err(err(
                ErrorKind::InvalidConfig,
                format!("--backup-id {s} is not a backup pgclone can clone from"),
                None,
                Some("give a backup id or name, latest or oldest"),
            ))
        }
        Some(id) if is_backup_id(id) => Wanted::Id(id.to_string()),
        Some(name) => Wanted::Name(name.to_string()),
    })
}

/// What reading one backup's `backup.info` gave.
pub enum Read {
    /// The backup directory has no `backup.info` (barman-cloud ignores it).
    Missing,
    /// It does not read; why (barman-cloud skips it with a warning).
    Unreadable(String),
    Found(Box<BackupInfo>),
}

pub(crate) fn err(
    kind: ErrorKind,
    message: String,
    detail: Option<String>,
    hint: Option<&str>,
) -> PluginError {
    PluginError {
        kind,
        message,
        detail,
        hint: hint.map(str::to_string),
    }
}

const HINT: &str = "give --backup-id a backup id or name from this list, or latest or oldest (barman-cloud-backup-list shows them)";

/// A backup that is not there, with the ids that are.
fn not_found(
    server: &str,
    wanted: &str,
    ids: &[String],
    names: &[(String, String)],
) -> PluginError {
    let list: Vec<String> = ids
        .iter()
        .map(|id| match names.iter().find(|(i, _)| i == id) {
            Some((_, n)) => format!("{id} '{n}'"),
            None => id.clone(),
        })
        .collect();
    err(
        ErrorKind::NotFound,
        format!("barman-cloud has no backup \"{wanted}\" of server \"{server}\""),
        Some(format!(
            "backups of server \"{server}\": {}",
            list.join(", ")
        )),
        Some(HINT),
    )
}

/// The backup `wanted` names among `ids` (sorted), reading as few
/// `backup.info` files as it can with `read`: one for an id, from the newest
/// (or oldest) down to the first DONE one for a shortcut, all of them for a
/// name. A backup that is not DONE is refused with its status.
pub fn choose(
    server: &str,
    wanted: &Wanted,
    ids: &[String],
    mut read: impl FnMut(&str) -> Result<Read, PluginError>,
) -> Result<BackupInfo, PluginError> {
    let mut skipped: Vec<String> = Vec::new();
    let note = |id: &str, why: String, skipped: &mut Vec<String>| {
        pgclone_plugin_sdk::host::log(
            LogLevel::Warning,
            &format!("skipping backup {id} of server \"{server}\": {why}"),
        );
        skipped.push(format!("{id}: {why}"));
    };
    let chosen = match wanted {
        Wanted::Id(id) => {
            if !ids.contains(id) {
                return Err(not_found(server, id, ids, &[]));
            }
            match read(id)? {
                Read::Found(b) => *b,
                Read::Missing => return Err(not_found(server, id, ids, &[])),
                Read::Unreadable(why) => {
                    return Err(err(
                        ErrorKind::InvalidBackup,
                        format!(
                            "cannot read the backup.info of backup {id} of server \"{server}\""
                        ),
                        Some(why),
                        None,
                    ))
                }
            }
        }
        Wanted::Latest | Wanted::Oldest => {
            let order: Box<dyn Iterator<Item = &String>> = if *wanted == Wanted::Latest {
                Box::new(ids.iter().rev())
            } else {
                Box::new(ids.iter())
            };
            let mut chosen = None;
            for id in order {
                match read(id)? {
                    Read::Found(b) if b.status == DONE => {
                        chosen = Some(*b);
                        break;
                    }
                    Read::Found(b) => note(id, format!("status {}", b.status), &mut skipped),
                    Read::Missing => note(id, "no backup.info".into(), &mut skipped),
                    Read::Unreadable(why) => note(id, why, &mut skipped),
                }
            }
            chosen.ok_or_else(|| {
                err(
                    ErrorKind::NotFound,
                    format!("barman-cloud has no completed (DONE) backup of server \"{server}\""),
                    Some(skipped.join("\n")),
                    Some("take one with barman-cloud-backup"),
                )
            })?
        }
        Wanted::Name(name) => {
            let mut found = Vec::new();
            let mut names = Vec::new();
            for id in ids {
                match read(id)? {
                    Read::Found(b) => {
                        if let Some(n) = &b.name {
                            names.push((id.clone(), n.clone()));
                        }
                        if b.name.as_deref() == Some(name) {
                            found.push(*b);
                        }
                    }
                    Read::Missing => {}
                    Read::Unreadable(why) => note(id, why, &mut skipped),
                }
            }
            if found.len() > 1 {
                let ids: Vec<&str> = found.iter().map(|b| b.id.as_str()).collect();
                return Err(err(
                    ErrorKind::InvalidConfig,
                    format!("backup name \"{name}\" is not unique in server \"{server}\""),
                    Some(format!("backups named so: {}", ids.join(", "))),
                    Some("give --backup-id one of these backup ids"),
                ));
            }
            found
                .pop()
                .ok_or_else(|| not_found(server, name, ids, &names))?
        }
    };
    if chosen.status != DONE {
        return Err(err(
            ErrorKind::InvalidBackup,
            format!(
                "backup {} of server \"{server}\" has status {}, not DONE",
                chosen.id, chosen.status
            ),
            chosen.error.clone(),
            Some("choose a completed backup with --backup-id"),
        ));
    }
    chosen.complete().map_err(|problem| {
        err(
            ErrorKind::InvalidBackup,
            format!(
                "the backup.info of backup {} of server \"{server}\" is incomplete",
                chosen.id
            ),
            Some(problem),
            None,
        )
    })?;
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::info;

    fn fixtures() -> Vec<(String, String)> {
        [
            (
                "20261207T192455",
                include_str!("../fixtures/20261207T192455.backup.info"),
            ),
            (
                "20261207T192524",
                include_str!("../fixtures/20261207T192524.backup.info"),
            ),
            (
                "20261207T192536",
                include_str!("../fixtures/20261207T192536.backup.info"),
            ),
            (
                "20261207T192613",
                include_str!("../fixtures/20261207T192613.backup.info"),
            ),
        ]
        .iter()
        .map(|(i, t)| (i.to_string(), t.to_string()))
        .collect()
    }

    fn pick(
        w: Option<&str>,
        files: &[(String, String)],
    ) -> (Result<BackupInfo, PluginError>, Vec<String>) {
        let ids: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
        let mut reads = Vec::new();
        let r = wanted(w).and_then(|w| {
            choose("main", &w, &ids, |id| {
                reads.push(id.to_string());
                let text = &files.iter().find(|f| f.0 == id).unwrap().1;
                Ok(if text.is_empty() {
                    Read::Missing
                } else {
                    match info::parse(id, text) {
                        Ok(b) => Read::Found(Box::new(b)),
                        Err(e) => Read::Unreadable(e),
                    }
                })
            })
        });
        (r, reads)
    }

    #[test]
    fn ids_names_and_shortcuts() {
        let f = fixtures();
        let (b, reads) = pick(Some("20261207T192524"), &f);
        assert_eq!(b.unwrap().id, "20261207T192524");
        assert_eq!(reads, ["20261207T192524"]);
        let (b, reads) = pick(None, &f);
        assert_eq!(b.unwrap().id, "20261207T192613");
        assert_eq!(reads.len(), 1);
        let (b, _) = pick(Some("oldest"), &f);
        assert_eq!(b.unwrap().id, "20261207T192455");
        let (b, reads) = pick(Some("snap"), &f);
        assert_eq!(b.unwrap().id, "20261207T192536");
        assert_eq!(reads.len(), 4);
        let e = pick(Some("nosuch"), &f).0.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let detail = e.detail.unwrap();
        assert!(
            detail.contains("20261207T192455 'gzparts'") && detail.contains("20261207T192524,"),
            "{detail}"
        );
        let e = pick(Some("20200101T000000"), &f).0.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.message.contains("20200101T000000"));
        assert!(pick(Some("last-failed"), &f).0.is_err());
    }

    #[test]
    fn not_done_is_refused_or_skipped() {
        let mut f = fixtures();
        // As barman-cloud-backup leaves a backup whose upload failed.
        f[3].1 = f[3].1.replace("status=DONE", "status=FAILED").replace(
            "error=None",
            "error=failure uploading data (connection reset)",
        );
        f[0].1 = f[0].1.replace("status=DONE", "status=STARTED");
        let e = pick(Some("20261207T192613"), &f).0.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidBackup);
        assert!(e.message.contains("status FAILED"), "{}", e.message);
        assert_eq!(
            e.detail.as_deref(),
            Some("failure uploading data (connection reset)")
        );
        let e = pick(Some("plainparts"), &f).0.unwrap_err();
        assert!(e.message.contains("status FAILED"));
        // latest: the newest DONE one; oldest likewise.
        let (b, reads) = pick(Some("latest"), &f);
        assert_eq!(b.unwrap().id, "20261207T192536");
        assert_eq!(reads.len(), 2);
        assert_eq!(pick(Some("first"), &f).0.unwrap().id, "20261207T192524");
        // Nothing DONE: said with what was found.
        for x in f.iter_mut() {
            x.1 = x.1.replace("status=DONE", "status=STARTED");
        }
        f[2].1 = String::new();
        let e = pick(None, &f).0.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.detail.as_deref().unwrap().contains("no backup.info"));
    }

    #[test]
    fn names_must_be_unique_and_files_readable() {
        let mut f = fixtures();
        f[1].1 = f[0].1.clone();
        let e = pick(Some("gzparts"), &f).0.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidConfig);
        assert!(e.detail.unwrap().contains("20261207T192524"));
        f[1].1 = "garbage".into();
        assert_eq!(pick(Some("gzparts"), &f).0.unwrap().id, "20261207T192455");
        let e = pick(Some("20261207T192524"), &f).0.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidBackup);
        // A DONE backup without the fields a clone needs.
        f[1].1 = "status=DONE\nsystemid=1\n".into();
        let e = pick(Some("20261207T192524"), &f).0.unwrap_err();
        assert!(e.detail.unwrap().contains("version"));
    }
}
