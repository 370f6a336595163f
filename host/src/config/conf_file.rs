//! A parser for repmgr.conf syntax: `key=value`, `key = 'quoted value'`,
//! `#` comments, repeated keys (e.g. `tablespace_mapping`).

use std::path::{Path, PathBuf};

use super::known_keys;

/// A configuration file, parsed.
#[derive(Debug, Clone, Default)]
pub struct ConfFile {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    entries: Vec<Entry>,
}

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
    /// The file it is in (an included file, or the configuration file).
    pub file: PathBuf,
}

/// A syntax error, with the file and line it is in.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("syntax error in \"{path}\" line {line}: {message}")]
pub struct ConfError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl ConfFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            crate::report::Failure::new(format!(
                "could not read configuration file \"{}\"",
                path.display()
            ))
            .detail(e.to_string())
        })?;
        Ok(Self::parse(path, &text)?)
    }

    /// Parses `text` (the contents of `path`). `include`, `include_if_exists`
    /// and `include_dir` are followed as PostgreSQL and repmgr follow them:
    /// relative to the including file, a directory's `*.conf` files in name
    /// order, at most 10 levels deep.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfError> {
        let mut entries = Vec::new();
        parse_into(path, text, 0, &mut entries)?;
        Ok(ConfFile {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The value of `key`: the last one when it is repeated.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    }

    /// Every value of `key`, in file order.
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.key == key)
            .map(|e| e.value.as_str())
            .collect()
    }

    /// Sets (or adds) `key`, as a command-line flag overriding the file would.
    pub fn set(&mut self, key: &str, value: &str) {
        self.entries.retain(|e| e.key != key);
        self.entries.push(Entry {
            key: key.to_string(),
            value: value.to_string(),
            line: 0,
            file: self.path.clone(),
        });
    }

    /// All entries, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Warnings for keys neither repmgr nor pgclone knows, with their lines.
    /// `plugin_keys` are keys plugins were granted to read (their own keys).
    pub fn unknown_key_warnings(&self, plugin_keys: &[String]) -> Vec<String> {
        self.unknown_keys(plugin_keys)
            .into_iter()
            .map(|(warning, _)| warning)
            .collect()
    }

    /// [`Self::unknown_key_warnings`], each with a hint naming the known key
    /// it is probably a typo of (`did you mean "use_replication_slots"?`).
    pub fn unknown_keys(&self, plugin_keys: &[String]) -> Vec<(String, Option<String>)> {
        self.entries
            .iter()
            .filter(|e| {
                e.line > 0 && !known_keys::is_known(&e.key) && !plugin_keys.contains(&e.key)
            })
            .map(|e| {
                let warning = format!(
                    "unknown configuration key \"{}\" in \"{}\" line {} is ignored",
                    e.key,
                    e.file.display(),
                    e.line
                );
                let hint = known_keys::closest(&e.key, plugin_keys)
                    .map(|k| format!("did you mean \"{k}\"?"));
                (warning, hint)
            })
            .collect()
    }
}

/// How deep includes may nest (PostgreSQL's limit).
const MAX_INCLUDE_DEPTH: usize = 10;

fn parse_into(
    path: &Path,
    text: &str,
    depth: usize,
    entries: &mut Vec<Entry>,
) -> Result<(), ConfError> {
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| ConfError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let Some((key, value)) = parse_line(raw).map_err(err)? else {
            continue;
        };
        match key.as_str() {
            "include" | "include_if_exists" | "include_dir" => {
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(err(format!(
                        "\"{value}\": includes nested more than {MAX_INCLUDE_DEPTH} deep"
                    )));
                }
                let dir = path.parent().unwrap_or(Path::new("/"));
                let target = dir.join(&value);
                let files = if key == "include_dir" {
                    conf_files_in(&target).map_err(|e| {
                        err(format!(
                            "cannot read include_dir \"{}\": {e}",
                            target.display()
                        ))
                    })?
                } else {
                    vec![target]
                };
                for file in files {
                    match std::fs::read_to_string(&file) {
                        Ok(text) => parse_into(&file, &text, depth + 1, entries)?,
                        Err(e)
                            if key == "include_if_exists"
                                && e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(err(format!(
                                "cannot read included file \"{}\": {e}",
                                file.display()
                            )))
                        }
                    }
                }
            }
            _ => entries.push(Entry {
                key,
                value,
                line,
                file: path.to_path_buf(),
            }),
        }
    }
    Ok(())
}

/// The `*.conf` files of `dir` (not hidden), in name order.
fn conf_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            !name.starts_with('.') && name.ends_with(".conf") && p.is_file()
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Parses one line into `(key, value)`, `None` for blank and comment lines.
fn parse_line(raw: &str) -> Result<Option<(String, String)>, String> {
    let s = raw.trim_start();
    if s.is_empty() || s.starts_with('#') {
        return Ok(None);
    }
    let key_len = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'))
        .unwrap_or(s.len());
    if key_len == 0 {
        return Err(format!(
            "expected a key, found \"{}\"",
            s.chars().next().unwrap()
        ));
    }
    let key = s[..key_len].to_ascii_lowercase();
    let rest = s[key_len..].trim_start();
    // Like postgresql.conf, the `=` is optional between key and value.
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    let (value, after) = if let Some(quoted) = rest.strip_prefix('\'') {
        parse_quoted(quoted)?
    } else {
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '#')
            .unwrap_or(rest.len());
        (rest[..end].to_string(), &rest[end..])
    };
    let after = after.trim_start();
    if !after.is_empty() && !after.starts_with('#') {
        return Err(format!(
            "unexpected \"{after}\" after the value of \"{key}\" (quote values that contain spaces)"
        ));
    }
    if value.is_empty() && !rest.starts_with('\'') {
        return Err(format!("missing value for \"{key}\""));
    }
    Ok(Some((key, value)))
}

/// Parses the inside of a single-quoted value; `''` and `\'` are a quote, `\\`
/// a backslash. Returns the value and what follows the closing quote.
fn parse_quoted(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => {
                if let Some((_, '\'')) = chars.peek() {
                    chars.next();
                    out.push('\'');
                } else {
                    return Ok((out, &s[i + 1..]));
                }
            }
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, other)) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated quoted value".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfFile, ConfError> {
        ConfFile::parse(Path::new("/etc/repmgr.conf"), text)
    }

    #[test]
    fn includes_are_followed_like_postgresql_follows_them() {
        let t = tempfile::tempdir().unwrap();
        let main = t.path().join("repmgr.conf");
        std::fs::create_dir(t.path().join("conf.d")).unwrap();
        std::fs::write(t.path().join("conf.d/b.conf"), "node_name=b\n").unwrap();
        std::fs::write(t.path().join("conf.d/a.conf"), "node_name=a\nnode_id=7\n").unwrap();
        std::fs::write(t.path().join("conf.d/.hidden.conf"), "node_id=99\n").unwrap();
        std::fs::write(
            t.path().join("extra.conf"),
            "barman_server=pg\nbogus_key=1\n",
        )
        .unwrap();
        std::fs::write(
            &main,
            "node_id=1\ninclude 'extra.conf'\ninclude_dir = 'conf.d'\ninclude_if_exists '/nonexistent/x.conf'\n",
        )
        .unwrap();
        let c = ConfFile::load(&main).unwrap();
        assert_eq!(c.get("barman_server"), Some("pg"));
        assert_eq!(c.get("node_id"), Some("7"));
        assert_eq!(c.get("node_name"), Some("b"));
        // Warnings name the file the key is in.
        let w = c.unknown_key_warnings(&[]);
        assert!(w[0].contains("extra.conf\" line 2"), "{w:?}");
        // A missing include is an error naming the line that asked for it.
        std::fs::write(&main, "node_id=1\ninclude 'missing.conf'\n").unwrap();
        let e = ConfFile::load(&main).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("missing.conf"), "{e}");
        // An include of itself ends at the depth limit instead of looping.
        std::fs::write(&main, "include 'repmgr.conf'\n").unwrap();
        assert!(ConfFile::load(&main)
            .unwrap_err()
            .to_string()
            .contains("nested"));
    }

    #[test]
    fn both_spellings_and_comments() {
        let c = parse(
            "# a comment\n\nnode_id=2\nnode_name = 'node2'   # trailing\n\
             conninfo='host=node2 user=repmgr dbname=repmgr'\ndata_directory = /var/lib/pg\n",
        )
        .unwrap();
        assert_eq!(c.get("node_id"), Some("2"));
        assert_eq!(c.get("node_name"), Some("node2"));
        assert_eq!(
            c.get("conninfo"),
            Some("host=node2 user=repmgr dbname=repmgr")
        );
        assert_eq!(c.get("data_directory"), Some("/var/lib/pg"));
        assert_eq!(c.get("missing"), None);
    }

    #[test]
    fn repeated_keys_keep_every_value_and_get_takes_the_last() {
        let c = parse("tablespace_mapping='/a=/b'\ntablespace_mapping='/c=/d'\n").unwrap();
        assert_eq!(c.get_all("tablespace_mapping"), vec!["/a=/b", "/c=/d"]);
        assert_eq!(c.get("tablespace_mapping"), Some("/c=/d"));
    }

    #[test]
    fn quotes_and_escapes() {
        let c = parse("a='it''s'\nb='it\\'s'\nc='back\\\\slash'\nd=''\ne='has # hash'\n").unwrap();
        assert_eq!(c.get("a"), Some("it's"));
        assert_eq!(c.get("b"), Some("it's"));
        assert_eq!(c.get("c"), Some("back\\slash"));
        assert_eq!(c.get("d"), Some(""));
        assert_eq!(c.get("e"), Some("has # hash"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("node_id=1\nnode_name='unterminated\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("/etc/repmgr.conf\" line 2"), "{e}");
        assert!(e.to_string().contains("unterminated"), "{e}");

        let e = parse("a=b c\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("quote values"), "{}", e.message);

        let e = parse("\n\n=value\n").unwrap_err();
        assert_eq!(e.line, 3);

        let e = parse("node_name=\n").unwrap_err();
        assert!(e.message.contains("missing value"), "{}", e.message);
    }

    #[test]
    fn unknown_keys_are_warned_with_their_line() {
        let c = parse("node_id=1\nbarman_sever=pg\n").unwrap();
        let w = c.unknown_key_warnings(&[]);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("barman_sever") && w[0].contains("line 2"),
            "{}",
            w[0]
        );
        let u = c.unknown_keys(&[]);
        assert_eq!(u[0].1.as_deref(), Some("did you mean \"barman_server\"?"));
    }
}

/// repmgr.conf is the operator's, but pgclone reads it as libpq and
/// PostgreSQL tools would: any text is entries or an error naming a line.
#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    const SAMPLE: &str = "node_id=2
node_name='node2'
conninfo='host=node2 user=repmgr dbname=repmgr connect_timeout=2'
data_directory='/var/lib/postgresql/15/main'
pg_bindir='/usr/lib/postgresql/15/bin'
use_replication_slots=yes
barman_host='barman@backup1'   # the Barman host
barman_server = 'pg'
restore_command = '/usr/bin/pgclone wal-restore barmansrv pg %f %p'
tablespace_mapping='/srv/ts1=/srv/ts1-standby'
tablespace_mapping='/srv/ts 2=/srv/ts2-standby'
recovery_min_apply_delay=5min
ssh_options='-q -o ConnectTimeout=10'
passfile='/var/lib/postgresql/.pgpass'
# a comment
";

    /// A path whose includes cannot be found: included files are not read.
    fn path() -> &'static Path {
        Path::new("/nonexistent/pgclone-props/repmgr.conf")
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn any_text_is_entries_or_an_error_with_a_line(
            text in prop_oneof![fuzz::mutated(SAMPLE), fuzz::any_text()]
        ) {
            match ConfFile::parse(path(), &text) {
                Ok(c) => prop_assert!(c.entries().iter().all(|e| !e.key.is_empty() && e.line > 0)),
                Err(e) => prop_assert!(e.line >= 1 && e.line <= text.lines().count().max(1)),
            }
        }

        /// A value quoted as repmgr's docs say reads back as it was.
        #[test]
        fn quoted_values_read_back(
            entries in proptest::collection::vec(("[a-z_][a-z0-9_]{0,15}", "[^\r\n]{0,24}"), 1..8)
        ) {
            let entries: Vec<_> = entries.into_iter().filter(|(k, _)| !k.starts_with("include")).collect();
            let text: String = entries
                .iter()
                .map(|(k, v)| format!("{k} = '{}'\n", v.replace('\\', "\\\\").replace('\'', "''")))
                .collect();
            let c = ConfFile::parse(path(), &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let got: Vec<_> = c.entries().iter().map(|e| (e.key.clone(), e.value.clone())).collect();
            prop_assert_eq!(got, entries);
        }
    }
}
