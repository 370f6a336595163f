//! Reading barman-cloud's `backup.info`: one `key=value` per line, as
//! Barman's `FieldListFile` writes it (keys sorted, `None` for no value,
//! blank and `#` lines ignored, both sides trimmed), with the tablespaces as a
//! Python literal list of `(name, oid, location)` tuples.

use pgclone_plugin_sdk::types::Tablespace;

/// The fields of `backup.info` pgclone uses.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BackupInfo {
    /// The backup's id: the name of its directory under `SERVER/base/`.
    pub id: String,
    /// `status`: `DONE`, `FAILED`, `STARTED`, ... (Barman's default `EMPTY`
    /// when absent).
    pub status: String,
    /// `backup_name` (`barman-cloud-backup -n`).
    pub name: Option<String>,
    /// `systemid`.
    pub system_id: Option<String>,
    /// `version` (`server_version_num`, e.g. 150018).
    pub version: Option<u32>,
    /// `timeline`.
    pub timeline: Option<u32>,
    /// `begin_wal`, `end_wal`.
    pub begin_wal: Option<String>,
    pub end_wal: Option<String>,
    /// `begin_xlog`, `end_xlog`: the LSNs.
    pub begin_lsn: Option<String>,
    pub end_lsn: Option<String>,
    /// `cluster_size` (the data directory's size when it was copied; the
    /// `size` field is `None` in barman-cloud's backups), 0 when absent.
    pub size_bytes: u64,
    /// `tablespaces`.
    pub tablespaces: Vec<Tablespace>,
    /// `snapshots_info` is set: a snapshot backup, whose data is in disk
    /// snapshots, not in the store.
    pub snapshot: bool,
    /// `error`: why a backup failed.
    pub error: Option<String>,
}

/// Barman's status of a completed backup.
pub const DONE: &str = "DONE";

impl BackupInfo {
    /// The fields a DONE backup always has, or what is missing.
    pub fn complete(&self) -> Result<(), String> {
        let missing: Vec<&str> = [
            ("systemid", self.system_id.is_none()),
            ("version", self.version.is_none()),
            ("timeline", self.timeline.is_none()),
            ("begin_wal", self.begin_wal.is_none()),
            ("end_wal", self.end_wal.is_none()),
            ("begin_xlog", self.begin_lsn.is_none()),
            ("end_xlog", self.end_lsn.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(k, _)| *k)
        .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("backup.info has no {}", missing.join(", ")))
        }
    }
}

/// Parses the `backup.info` of backup `id`. A line that is not `key=value`
/// or a field pgclone uses that does not read is an error (Barman refuses
/// such a file too); fields pgclone does not use are skipped.
pub fn parse(id: &str, text: &str) -> Result<BackupInfo, String> {
    let mut b = BackupInfo {
        id: id.to_string(),
        status: "EMPTY".into(),
        ..BackupInfo::default()
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(format!("invalid line \"{}\"", shorten(trimmed)));
        };
        let (key, value) = (key.trim(), value.trim());
        let value = (value != "None").then_some(value);
        let text = || value.map(str::to_string);
        let number = |what: &str| -> Result<Option<u64>, String> {
            value
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{what} is not a number: \"{}\"", shorten(v)))
                })
                .transpose()
        };
        let small = |what: &str| -> Result<Option<u32>, String> {
            number(what)?
                .map(|n| u32::try_from(n).map_err(|_| format!("{what} is out of range: {n}")))
                .transpose()
        };
        match key {
            "status" => b.status = value.unwrap_or("EMPTY").to_string(),
            "backup_name" => b.name = text(),
            "systemid" => b.system_id = text(),
            "version" => b.version = small("version")?,
            "timeline" => b.timeline = small("timeline")?,
            "begin_wal" => b.begin_wal = text(),
            "end_wal" => b.end_wal = text(),
            "begin_xlog" => b.begin_lsn = text(),
            "end_xlog" => b.end_lsn = text(),
            "cluster_size" => b.size_bytes = number("cluster_size")?.unwrap_or(0),
            "tablespaces" => {
                b.tablespaces = value.map(tablespaces).transpose()?.unwrap_or_default()
            }
            "snapshots_info" => b.snapshot = value.is_some(),
            "error" => b.error = text(),
            _ => {}
        }
    }
    Ok(b)
}

/// At most 80 characters of `s`, for a message.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// `[('ts1', 16384, '/srv/ts1'), ...]`, as Python's `repr` writes a list
/// of tuples (strings in single quotes, or double quotes when they hold a
/// single quote and no double quote, with backslash escapes); `[]` is none.
pub fn tablespaces(text: &str) -> Result<Vec<Tablespace>, String> {
    let bad = |why: &str| format!("tablespaces: {why} in \"{}\"", shorten(text));
    let mut p = Literal { rest: text.trim() };
    let mut out = Vec::new();
    p.expect('[').map_err(|e| bad(&e))?;
    if p.eat(']') {
        return p.end().map(|_| out).map_err(|e| bad(&e));
    }
    loop {
        p.expect('(').map_err(|e| bad(&e))?;
        let name = p.string().map_err(|e| bad(&e))?;
        p.expect(',').map_err(|e| bad(&e))?;
        let oid = p.integer().map_err(|e| bad(&e))?;
        p.expect(',').map_err(|e| bad(&e))?;
        let location = p.string().map_err(|e| bad(&e))?;
        p.expect(')').map_err(|e| bad(&e))?;
        out.push(Tablespace {
            oid,
            name,
            location,
        });
        if p.eat(']') {
            break;
        }
        p.expect(',').map_err(|e| bad(&e))?;
    }
    p.end().map_err(|e| bad(&e))?;
    Ok(out)
}

/// A cursor over a Python literal.
struct Literal<'a> {
    rest: &'a str,
}

impl Literal<'_> {
    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }

    /// Consumes `c` (after spaces) when it comes next.
    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{c}'"))
        }
    }

    fn end(&mut self) -> Result<(), String> {
        self.skip_space();
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err("unexpected text after the list".into())
        }
    }

    fn integer(&mut self) -> Result<u32, String> {
        self.skip_space();
        let digits = self.rest.len()
            - self
                .rest
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        let n = self.rest[..digits]
            .parse()
            .map_err(|_| "expected an OID".to_string())?;
        self.rest = &self.rest[digits..];
        Ok(n)
    }

    /// A quoted string with Python's escapes.
    fn string(&mut self) -> Result<String, String> {
        self.skip_space();
        let mut chars = self.rest.char_indices();
        let quote = match chars.next() {
            Some((_, q @ ('\'' | '"'))) => q,
            _ => return Err("expected a quoted string".into()),
        };
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.rest = &self.rest[i + 1..];
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let escaped = match chars.next().map(|(_, e)| e) {
                Some('\\') => '\\',
                Some('\'') => '\'',
                Some('"') => '"',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('t') => '\t',
                Some(e @ ('x' | 'u' | 'U')) => {
                    let len = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = (0..len)
                        .filter_map(|_| chars.next().map(|(_, h)| h))
                        .collect();
                    u32::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == len)
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("bad escape \\{e}{hex}"))?
                }
                _ => return Err("unknown escape".into()),
            };
            out.push(escaped);
        }
        Err("unterminated string".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GZPARTS: &str = include_str!("../fixtures/20261207T192455.backup.info");

    #[test]
    fn reads_what_barman_cloud_backup_wrote() {
        let b = parse("20261207T192455", GZPARTS).unwrap();
        assert_eq!(b.status, "DONE");
        assert_eq!(b.name.as_deref(), Some("gzparts"));
        assert_eq!(b.system_id.as_deref(), Some("7716645311110654719"));
        assert_eq!(b.version, Some(150018));
        assert_eq!(b.timeline, Some(1));
        assert_eq!(b.begin_wal.as_deref(), Some("000000010000000000000003"));
        assert_eq!(b.end_wal.as_deref(), Some("000000010000000000000003"));
        assert_eq!(b.begin_lsn.as_deref(), Some("0/3000028"));
        assert_eq!(b.end_lsn.as_deref(), Some("0/3000298"));
        assert_eq!(b.size_bytes, 31354569);
        assert!(!b.snapshot);
        assert_eq!(b.error, None);
        assert_eq!(
            b.tablespaces,
            vec![Tablespace {
                oid: 16384,
                name: "ts1".into(),
                location: "/tmp/guest-lab/ts1".into()
            }]
        );
        assert!(b.complete().is_ok());
        // An unnamed backup has no backup_name line at all.
        let b = parse("x", include_str!("../fixtures/20261207T192524.backup.info")).unwrap();
        assert_eq!(b.name, None);
    }

    #[test]
    fn none_values_comments_and_missing_fields() {
        let b = parse(
            "x",
            "# comment\n\nstatus = FAILED\nerror=failure (connection refused)\nsystemid=None\n",
        )
        .unwrap();
        assert_eq!(b.status, "FAILED");
        assert_eq!(b.error.as_deref(), Some("failure (connection refused)"));
        assert_eq!(b.system_id, None);
        assert!(b.complete().unwrap_err().contains("systemid"));
        assert_eq!(parse("x", "").unwrap().status, "EMPTY");
        assert!(parse("x", "status DONE").is_err());
        assert!(parse("x", "version=fifteen").is_err());
        assert!(parse("x", "timeline=99999999999").is_err());
        assert!(
            parse("x", "snapshots_info={'provider': 'gcp'}")
                .unwrap()
                .snapshot
        );
    }

    #[test]
    fn tablespace_literals_as_python_writes_them() {
        let t = tablespaces(
            r#"[('ts1', 16384, '/srv/ts1'), ("it's", 16385, '/srv/a \'b\' \\ \xe9\u20ac')]"#,
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].name, "it's");
        assert_eq!(t[1].oid, 16385);
        assert_eq!(t[1].location, "/srv/a 'b' \\ é€");
        assert_eq!(tablespaces("[]").unwrap(), vec![]);
        for bad in [
            "",
            "[",
            "[('a', 1, '/x')",
            "[('a', -1, '/x')]",
            "[('a', 1, '/x'),]x",
            "[('a', 1)]",
            "[('a, 1, '/x')]",
            r"[('a', 1, '/x\q')]",
            r"[('a', 1, '/x\x4')]",
            "[('a', 99999999999, '/x')]",
        ] {
            assert!(tablespaces(bad).is_err(), "{bad}");
        }
    }
}

/// `backup.info` comes from a store others may write: a damaged or hostile
/// one is a clean error or a backup, never a panic.
#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn any_backup_info_parses_or_is_an_error(
            text in prop_oneof![
                fuzz::mutated_any(&[
                    include_str!("../fixtures/20261207T192455.backup.info"),
                    include_str!("../fixtures/20261207T192613.backup.info"),
                ]),
                fuzz::any_text(),
            ]
        ) {
            if let Ok(b) = parse("id", &text) {
                prop_assert_eq!(b.id, "id");
                prop_assert!(!b.status.is_empty() || text.contains("status"));
            }
        }

        /// Tablespaces as Python prints them are read back.
        #[test]
        fn tablespaces_read_back(
            spaces in proptest::collection::vec(("[a-z_ ']{1,10}", any::<u32>(), "/[a-zA-Z0-9_ '\"\\\\é/]{0,20}"), 0..4)
        ) {
            let repr = |s: &str| {
                let q = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
                let mut out = String::from(q);
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        c if c == q => { out.push('\\'); out.push(c) }
                        c => out.push(c),
                    }
                }
                out.push(q);
                out
            };
            let text = format!(
                "[{}]",
                spaces.iter().map(|(n, o, l)| format!("({}, {o}, {})", repr(n), repr(l))).collect::<Vec<_>>().join(", ")
            );
            let got = tablespaces(&text).map_err(TestCaseError::fail)?;
            let got: Vec<_> = got.into_iter().map(|t| (t.name, t.oid, t.location)).collect();
            prop_assert_eq!(got, spaces);
        }
    }
}
