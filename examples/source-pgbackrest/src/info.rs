//! `pgbackrest info --output=json`: the fields a clone needs, and the
//! stanza's status turned into errors that say what pgBackRest said.
//! (`info` exits 0 even for a missing stanza: the status is in the JSON.)

use pgclone_plugin_sdk::{ErrorExt, ErrorKind, PluginError};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Stanza {
    pub name: String,
    pub status: Status,
    #[serde(default)]
    pub db: Vec<Database>,
    #[serde(default)]
    pub backup: Vec<Backup>,
}

#[derive(Debug, Deserialize)]
pub struct Status {
    pub code: i64,
    pub message: String,
}

#[derive(Debug, Deserialize)]
pub struct Database {
    pub id: u64,
    #[serde(rename = "system-id")]
    pub system_id: u64,
    pub version: String,
}

#[derive(Debug, Deserialize)]
pub struct Backup {
    pub label: String,
    pub archive: Range,
    pub lsn: Range,
    pub database: DatabaseRef,
    pub info: Sizes,
    #[serde(default)]
    pub error: bool,
    /// Only with `--set`.
    pub tablespace: Option<Vec<TablespaceInfo>>,
}

#[derive(Debug, Deserialize)]
pub struct Range {
    pub start: String,
    pub stop: String,
}

#[derive(Debug, Deserialize)]
pub struct DatabaseRef {
    pub id: u64,
}

#[derive(Debug, Deserialize)]
pub struct Sizes {
    pub size: u64,
}

#[derive(Debug, Deserialize)]
pub struct TablespaceInfo {
    pub destination: String,
    pub name: String,
    pub oid: u32,
}

/// The one stanza in the output of `info --stanza=...`.
pub fn parse(json: &str) -> Result<Stanza, PluginError> {
    let mut all: Vec<Stanza> = serde_json::from_str(json).map_err(|e| {
        PluginError::new(
            ErrorKind::Failed,
            "cannot understand pgbackrest info --output=json",
        )
        .detail(e.to_string())
    })?;
    let stanza = all.pop().ok_or_else(|| {
        PluginError::new(ErrorKind::NotFound, "pgbackrest info returned no stanza")
    })?;
    match stanza.status.code {
        0 => Ok(stanza),
        1 | 3 => Err(PluginError::new(ErrorKind::NotFound, format!("pgBackRest has no stanza \"{}\"", stanza.name))
            .detail(format!("pgbackrest info: {}", stanza.status.message))
            .hint("check pgbackrest_stanza and pgbackrest_config (and that the repository is readable by this user)")),
        2 => Err(PluginError::new(ErrorKind::NotFound, format!("pgBackRest has no backup of stanza \"{}\"", stanza.name))
            .detail(format!("pgbackrest info: {}", stanza.status.message))
            .hint(format!("take one: pgbackrest --stanza={} backup --type=full", stanza.name))),
        6 => Err(PluginError::new(ErrorKind::NotFound, format!("pgBackRest has no such backup set in stanza \"{}\"", stanza.name))
            .detail(format!("pgbackrest info: {}", stanza.status.message))
            .hint(format!("list the backup sets with: pgbackrest --stanza={} info", stanza.name))),
        _ => Err(PluginError::new(ErrorKind::Failed, format!("pgBackRest cannot read the repository of stanza \"{}\"", stanza.name))
            .detail(format!("pgbackrest info: {} (status {})", stanza.status.message, stanza.status.code))),
    }
}

impl Stanza {
    /// The newest usable backup set (the list is oldest first).
    pub fn latest(&self) -> Result<&Backup, PluginError> {
        self.backup.iter().rev().find(|b| !b.error).ok_or_else(|| {
            PluginError::new(
                ErrorKind::NotFound,
                format!(
                    "pgBackRest has no usable backup of stanza \"{}\"",
                    self.name
                ),
            )
        })
    }

    pub fn database_of(&self, b: &Backup) -> Result<&Database, PluginError> {
        self.db
            .iter()
            .find(|d| d.id == b.database.id)
            .ok_or_else(|| {
                PluginError::new(
                    ErrorKind::InvalidBackup,
                    format!(
                        "backup {} names database {}, which the stanza does not list",
                        b.label, b.database.id
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"00000001000000000000000B","min":"000000010000000000000001"}],"backup":[{"archive":{"start":"00000001000000000000000A","stop":"00000001000000000000000B"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":180025081,"repository":{"delta":21714959,"size":21714959},"size":180025081},"label":"20261124-232507F","lsn":{"start":"0/A000028","stop":"0/B000050"},"prior":null,"reference":null,"timestamp":{"start":1795562707,"stop":1795562710},"type":"full","tablespace":[{"destination":"/srv/ts1","name":"ts1","oid":16384}]}],"cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7711883089059069068,"version":"15"}],"name":"demo","repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]"#;

    #[test]
    fn reads_a_real_info_output() {
        let s = parse(ONE).unwrap();
        let b = s.latest().unwrap();
        assert_eq!(b.label, "20261124-232507F");
        // Too large for a double: read exactly.
        assert_eq!(s.database_of(b).unwrap().system_id, 7711883089059069068);
        assert_eq!(b.tablespace.as_ref().unwrap()[0].oid, 16384);
    }

    #[test]
    fn statuses_become_errors_that_say_what_to_do() {
        let missing = r#"[{"backup":[],"db":[],"name":"nope","status":{"code":1,"message":"missing stanza path"}}]"#;
        let e = parse(missing).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.message.contains("no stanza \"nope\""));
        let empty = r#"[{"backup":[],"db":[],"name":"demo","status":{"code":2,"message":"no valid backups"}}]"#;
        assert!(parse(empty)
            .unwrap_err()
            .hint
            .unwrap()
            .contains("backup --type=full"));
        assert!(parse("not json").is_err());
    }
}
