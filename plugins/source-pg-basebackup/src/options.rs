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
    /// `-v`/`--verbose` given.
    pub verbose: bool,
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

/// Whether an option takes a value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    No,
    Required,
}

/// pg_basebackup's options (10 to 18; `xlog*` are 9.6's names): its short
/// letter (if any), long name and whether it takes a value. Parsing uses
/// getopt_long's rules, as pg_basebackup does: short options may be bundled
/// (`-vP`) and take their value attached (`-p5432`) or as the next argument;
/// long options may be abbreviated to any unambiguous prefix (`--ho=x`).
const OPTIONS: &[(Option<char>, &str, Arg)] = &[
    (Some('?'), "help", Arg::No),
    (Some('V'), "version", Arg::No),
    (Some('D'), "pgdata", Arg::Required),
    (Some('F'), "format", Arg::Required),
    (Some('i'), "incremental", Arg::Required),
    (Some('c'), "checkpoint", Arg::Required),
    (Some('C'), "create-slot", Arg::No),
    (Some('r'), "max-rate", Arg::Required),
    (Some('R'), "write-recovery-conf", Arg::No),
    (Some('S'), "slot", Arg::Required),
    (Some('t'), "target", Arg::Required),
    (Some('T'), "tablespace-mapping", Arg::Required),
    (Some('X'), "wal-method", Arg::Required),
    (None, "xlog-method", Arg::Required),
    (Some('z'), "gzip", Arg::No),
    (Some('Z'), "compress", Arg::Required),
    (Some('l'), "label", Arg::Required),
    (Some('n'), "no-clean", Arg::No),
    (Some('N'), "no-sync", Arg::No),
    (Some('d'), "dbname", Arg::Required),
    (Some('h'), "host", Arg::Required),
    (Some('p'), "port", Arg::Required),
    (Some('U'), "username", Arg::Required),
    (Some('w'), "no-password", Arg::No),
    (Some('W'), "password", Arg::No),
    (Some('s'), "status-interval", Arg::Required),
    (Some('v'), "verbose", Arg::No),
    (Some('P'), "progress", Arg::No),
    (None, "waldir", Arg::Required),
    (None, "xlogdir", Arg::Required),
    (None, "no-slot", Arg::No),
    (None, "no-verify-checksums", Arg::No),
    (None, "no-estimate-size", Arg::No),
    (None, "no-manifest", Arg::No),
    (None, "manifest-force-encode", Arg::No),
    (None, "manifest-checksums", Arg::Required),
    (None, "sync-method", Arg::Required),
];

fn invalid(message: String, hint: &str) -> PluginError {
    PluginError {
        kind: ErrorKind::InvalidConfig,
        message,
        detail: None,
        hint: Some(hint.into()),
    }
}

/// The long option `name` stands for: an exact name, or a prefix of exactly one.
fn long_option(name: &str) -> Result<(&'static str, Arg), PluginError> {
    if let Some(&(_, long, arg)) = OPTIONS.iter().find(|(_, l, _)| *l == name) {
        return Ok((long, arg));
    }
    let matches: Vec<_> = OPTIONS
        .iter()
        .filter(|(_, l, _)| l.starts_with(name))
        .collect();
    match matches.as_slice() {
        [(_, long, arg)] => Ok((long, *arg)),
        [] => Err(invalid(
            format!("pg_basebackup_options: unknown option \"--{name}\""),
            "check the option against pg_basebackup --help",
        )),
        _ => Err(invalid(
            format!("pg_basebackup_options: option \"--{name}\" is ambiguous"),
            "spell the option out in full",
        )),
    }
}

/// Splits `args` into `(long name, value)` pairs the way pg_basebackup's
/// getopt_long reads them.
fn options(args: &[String]) -> Result<Vec<(&'static str, Option<String>)>, PluginError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        if let Some(body) = a.strip_prefix("--") {
            if body.is_empty() {
                return Err(invalid(
                    "pg_basebackup_options must not contain \"--\"".into(),
                    "pg_basebackup takes no positional arguments",
                ));
            }
            let (name, attached) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let (long, arg) = long_option(name)?;
            let value = match (arg, attached) {
                (Arg::No, Some(_)) => {
                    return Err(invalid(
                        format!("pg_basebackup_options: option \"--{long}\" takes no value"),
                        "remove the value",
                    ))
                }
                (Arg::No, None) => None,
                (Arg::Required, Some(v)) => Some(v),
                (Arg::Required, None) => Some(next_value(args, &mut i, long)?),
            };
            out.push((long, value));
        } else if let Some(cluster) = a.strip_prefix('-').filter(|c| !c.is_empty()) {
            for (pos, c) in cluster.char_indices() {
                let Some(&(_, long, arg)) = OPTIONS.iter().find(|(s, _, _)| *s == Some(c)) else {
                    return Err(invalid(
                        format!("pg_basebackup_options: unknown option \"-{c}\""),
                        "check the option against pg_basebackup --help",
                    ));
                };
                if arg == Arg::No {
                    out.push((long, None));
                    continue;
                }
                let rest = &cluster[pos + c.len_utf8()..];
                let value = if rest.is_empty() {
                    next_value(args, &mut i, long)?
                } else {
                    rest.to_string()
                };
                out.push((long, Some(value)));
                break;
            }
        } else {
            return Err(invalid(
                format!("pg_basebackup_options: unexpected argument \"{a}\""),
                "pg_basebackup takes no positional arguments; quote values that contain spaces",
            ));
        }
    }
    Ok(out)
}

fn next_value(args: &[String], i: &mut usize, long: &str) -> Result<String, PluginError> {
    let v = args.get(*i).cloned().ok_or_else(|| {
        invalid(
            format!("pg_basebackup_options: option \"--{long}\" needs a value"),
            "give the value after the option",
        )
    })?;
    *i += 1;
    Ok(v)
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
    for (long, value) in options(&args)? {
        let shown = match &value {
            Some(v) => format!("--{long}={v}"),
            None => format!("--{long}"),
        };
        match long {
            "pgdata" => return Err(refuse(&shown, "pgclone passes the data directory (-D) itself")),
            "write-recovery-conf" => {
                return Err(refuse(
                    &shown,
                    "pgclone writes the recovery configuration itself, after a verified copy",
                ))
            }
            "dbname" | "host" | "port" | "username" => {
                return Err(refuse(
                    &shown,
                    "the connection comes from the upstream's conninfo and replication_user",
                ))
            }
            "format" if !matches!(value.as_deref(), Some("p" | "plain")) => {
                return Err(refuse(&shown, "a standby needs a plain data directory"))
            }
            "target" => return Err(refuse(&shown, "the copy must arrive in the standby's data directory")),
            "incremental" => {
                return Err(refuse(
                    &shown,
                    "an incremental copy cannot be started without pg_combinebackup",
                ))
            }
            "password" => {
                return Err(refuse(
                    &shown,
                    "pg_basebackup would wait for a password on the terminal; use a passfile or ~/.pgpass",
                ))
            }
            "help" | "version" => return Err(refuse(&shown, "pg_basebackup would print it and copy nothing")),
            "wal-method" | "xlog-method" => o.wal_method = true,
            "progress" => o.progress = true,
            "verbose" => o.verbose = true,
            "no-slot" => o.no_slot = true,
            "slot" => o.slot = value,
            _ => {}
        }
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
        // Bundled and attached forms, and abbreviations, as getopt_long reads them.
        let o = parse("-vPXfetch -Sslot1 -cfast --no-sl -Fp --label 'x y'").unwrap();
        assert!(o.wal_method && o.progress && o.no_slot);
        assert_eq!(o.slot.as_deref(), Some("slot1"));
        // A value that looks like an option is still a value.
        assert_eq!(parse("--label -h").unwrap().slot, None);
        assert!(parse("--prog").unwrap().progress);
    }

    #[test]
    fn options_that_conflict_are_refused() {
        for bad in [
            "-D /x",
            "-D/x",
            "-R",
            "-vR",
            "--write-recovery-conf",
            "--write",
            "-h other",
            "-hother",
            "-Ph other",
            "--ho=other",
            "--host other",
            "-p55499",
            "-p 55499",
            "--po=55499",
            "-Urepl",
            "--user=x",
            "-dx",
            "-d x",
            "--db=x",
            "-Ft",
            "-F t",
            "--format=tar",
            "--form=t",
            "-t server:/x",
            "--target=blackhole",
            "-i /m",
            "-W",
            "-?",
            "--vers",
            "--no-such-option",
            "-k",
            "stray",
            "--no-sl=x",
            "--waldir",
            "--",
            "--no",
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

/// `pg_basebackup_options` is the operator's text: any text is options or a
/// clean refusal.
#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    /// Quoted for a POSIX shell: single quotes, `'` as `'\''`.
    fn sh_quote(a: &str) -> String {
        format!("'{}'", a.replace('\'', "'\\''"))
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn any_text_is_options_or_an_error(
            s in prop_oneof![
                fuzz::mutated("--max-rate=100M -c fast --label='pgclone clone' -Xstream -S repmgr_slot_2 -vP"),
                fuzz::words(&["-", "--", "X", "S", "=", " ", "'", "\"", "\\", "ma", "slot", "no-slot", "é"]),
                fuzz::any_text(),
            ]
        ) {
            let _ = parse(&s);
        }

        /// Arguments quoted as a shell would split back as they were.
        #[test]
        fn quoted_arguments_split_back(args in proptest::collection::vec(any::<String>(), 0..6)) {
            let text = args.iter().map(|a| sh_quote(a)).collect::<Vec<_>>().join(" ");
            prop_assert_eq!(split(&text), Ok(args));
        }
    }
}
