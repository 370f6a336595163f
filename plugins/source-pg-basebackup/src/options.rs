//! Understanding `pg_basebackup_options`, so that what the plan adds never
//! conflicts with what the operator wrote.

use pgclone_plugin_sdk::types::{ErrorKind, PluginError};

/// What the operator's options already decide.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The options, split into arguments.
    pub args: Vec<String>,
    /// `-X`/`--wal-method` given.
    pub wal_method: bool,
    /// `-S`/`--slot` given: its value.
    pub slot: Option<String>,
    /// `--no-slot` given.
    pub no_slot: bool,
    /// `-P`/`--progress` given.
    pub progress: bool,
}

/// Splits like a POSIX shell (quotes and backslashes), without expanding anything.
pub fn split(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn refuse(option: &str, why: &str) -> PluginError {
    PluginError {
        kind: ErrorKind::InvalidConfig,
        message: format!("pg_basebackup_options must not contain {option}"),
        detail: Some(why.into()),
        hint: Some("remove it from pg_basebackup_options in the configuration file".into()),
    }
}

/// Parses and checks the operator's options.
pub fn parse(s: &str) -> Result<Options, PluginError> {
    let args = split(s).map_err(|e| PluginError {
        kind: ErrorKind::InvalidConfig,
        message: "cannot parse pg_basebackup_options".into(),
        detail: Some(e),
        hint: None,
    })?;
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let takes_value = |short: &str, long: &str| a == short || a == long;
        if a == "-D" || a.starts_with("--pgdata") || (a.starts_with("-D") && a.len() > 2) {
            return Err(refuse(a, "pgclone passes the data directory (-D) itself"));
        }
        if a == "-R" || a == "--write-recovery-conf" {
            return Err(refuse(
                a,
                "pgclone writes the recovery configuration itself, after a verified copy",
            ));
        }
        if a == "-d"
            || a.starts_with("--dbname")
            || a == "-h"
            || a.starts_with("--host")
            || a == "-U"
            || a.starts_with("--username")
            || a == "-p"
            || a.starts_with("--port")
        {
            return Err(refuse(
                a,
                "the connection comes from the upstream's conninfo and replication_user",
            ));
        }
        if a == "-F" || a.starts_with("--format") || a.starts_with("-Ft") || a.starts_with("-Fp") {
            return Err(refuse(a, "a standby needs a plain data directory"));
        }
        if a.starts_with("-X") || a.starts_with("--wal-method") {
            o.wal_method = true;
        }
        if a == "-P" || a == "--progress" {
            o.progress = true;
        }
        if a == "--no-slot" {
            o.no_slot = true;
        }
        if takes_value("-S", "--slot") {
            o.slot = args.get(i + 1).cloned();
            i += 1;
        } else if let Some(v) = a.strip_prefix("--slot=") {
            o.slot = Some(v.to_string());
        } else if let Some(v) = a.strip_prefix("-S").filter(|v| !v.is_empty()) {
            o.slot = Some(v.to_string());
        }
        if a == "-X"
            || a == "--wal-method"
            || a == "--waldir"
            || a == "-T"
            || a == "--tablespace-mapping"
            || a == "-r"
            || a == "--max-rate"
            || a == "-l"
            || a == "--label"
        {
            i += 1;
        }
        i += 1;
    }
    o.args = args;
    Ok(o)
}

/// `old=new`, where `\=` is a literal `=` (as pg_basebackup's -T reads it).
pub fn split_mapping(m: &str) -> Option<(String, String)> {
    let mut old = String::new();
    let mut chars = m.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => old.push(chars.next()?),
            '=' => {
                let new: String = chars.collect();
                let new = new.replace("\\=", "=");
                if old.starts_with('/') && new.starts_with('/') {
                    return Some((old, new));
                }
                return None;
            }
            c => old.push(c),
        }
    }
    None
}

/// Quotes a conninfo value (bare when plain, single-quoted otherwise).
pub fn quote_conninfo(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| !c.is_whitespace() && c != '\'' && c != '\\')
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_honours_quotes() {
        assert_eq!(
            split(r#"--label 'my backup' -X fetch --waldir="/w a l" a\ b"#).unwrap(),
            vec![
                "--label",
                "my backup",
                "-X",
                "fetch",
                "--waldir=/w a l",
                "a b"
            ]
        );
        assert!(split("'open").is_err());
    }

    #[test]
    fn options_are_understood() {
        let o = parse("-X fetch --waldir /wal -P").unwrap();
        assert!(o.wal_method && o.progress && !o.no_slot);
        assert_eq!(o.slot, None);
        assert_eq!(parse("--slot=s1").unwrap().slot.as_deref(), Some("s1"));
        assert_eq!(parse("-S s2").unwrap().slot.as_deref(), Some("s2"));
        assert!(parse("--no-slot").unwrap().no_slot);
        assert!(parse("--wal-method=none").unwrap().wal_method);
    }

    #[test]
    fn options_that_conflict_are_refused() {
        for bad in [
            "-D /x",
            "-R",
            "--write-recovery-conf",
            "-h other",
            "-Ft",
            "--format=tar",
            "-d x",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidConfig, "{bad}");
        }
    }

    #[test]
    fn mappings_split_on_the_first_unescaped_equals() {
        assert_eq!(split_mapping("/a=/b"), Some(("/a".into(), "/b".into())));
        assert_eq!(
            split_mapping(r"/a\=x=/b"),
            Some(("/a=x".into(), "/b".into()))
        );
        assert_eq!(split_mapping("a=/b"), None);
        assert_eq!(split_mapping("/a"), None);
    }
}
