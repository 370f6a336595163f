//! libpq keyword/value connection strings (`host=db1 port=5432 user=repl`):
//! parsing, quoting and editing, as `primary_conninfo` needs them.

use crate::types::ConnParam;

/// Quotes a value as libpq's parser expects: bare when it is a plain word,
/// otherwise in single quotes with `\` and `'` escaped by a backslash.
pub fn quote_value(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_ascii_whitespace() && c != '\'' && c != '\\' && c != '=');
    if plain {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Joins parameters into `key=value key=value`.
pub fn render(params: &[ConnParam]) -> String {
    params
        .iter()
        .map(|p| format!("{}={}", p.key, quote_value(&p.value)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses a keyword/value connection string (not a `postgresql://` URI).
pub fn parse(text: &str) -> Result<Vec<ConnParam>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_ascii_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("missing \"=\" after \"{key}\""));
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.push(chars.next().ok_or("unterminated quoted value")?),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("unterminated quoted value for \"{key}\"")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_ascii_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    // libpq keeps a trailing backslash as it is.
                    value.push(chars.next().unwrap_or('\\'));
                } else {
                    value.push(c);
                }
            }
        }
        if key.is_empty() {
            return Err("empty keyword".into());
        }
        out.push(ConnParam { key, value });
    }
}

/// The value of `key`, if present: the last one when it is repeated, as
/// libpq reads it.
pub fn get<'a>(params: &'a [ConnParam], key: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

/// Sets `key` to `value`: in place of its first occurrence (later ones are
/// removed, so no repeated key can override it), appended otherwise.
pub fn set(params: &mut Vec<ConnParam>, key: &str, value: &str) {
    match params.iter().position(|p| p.key == key) {
        Some(i) => {
            params[i].value = value.to_string();
            let mut seen = 0;
            params.retain(|p| {
                if p.key != key {
                    return true;
                }
                seen += 1;
                seen == 1
            });
        }
        None => params.push(ConnParam {
            key: key.to_string(),
            value: value.to_string(),
        }),
    }
}

/// Removes every `key`; true when there was one.
pub fn remove(params: &mut Vec<ConnParam>, key: &str) -> bool {
    let before = params.len();
    params.retain(|p| p.key != key);
    params.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_stay_bare() {
        assert_eq!(quote_value("node1"), "node1");
        assert_eq!(quote_value("5432"), "5432");
    }

    #[test]
    fn awkward_values_are_quoted_and_escaped() {
        assert_eq!(quote_value(""), "''");
        assert_eq!(quote_value("a b"), "'a b'");
        assert_eq!(quote_value("it's"), r"'it\'s'");
        assert_eq!(quote_value(r"c:\x"), r"'c:\\x'");
        assert_eq!(quote_value("a=b"), "'a=b'");
    }

    #[test]
    fn parse_round_trips_render() {
        let text = r"host=h port = 5432 password='it\'s a secret' application_name=n\ 2";
        let p = parse(text).unwrap();
        assert_eq!(get(&p, "port"), Some("5432"));
        assert_eq!(get(&p, "password"), Some("it's a secret"));
        assert_eq!(get(&p, "application_name"), Some("n 2"));
        assert_eq!(parse(&render(&p)).unwrap(), p);
        assert!(parse("host").is_err());
        assert!(parse("host='x").is_err());
    }

    #[test]
    fn a_repeated_key_reads_as_libpq_reads_it() {
        let mut p = parse("sslmode=verify-full host=h sslmode=disable").unwrap();
        assert_eq!(get(&p, "sslmode"), Some("disable"));
        set(&mut p, "sslmode", "verify-full");
        assert_eq!(render(&p), "sslmode=verify-full host=h");
        // Only ASCII whitespace separates; a trailing backslash is kept.
        let p = parse("application_name=a\u{a0}b passfile=c:\\").unwrap();
        assert_eq!(get(&p, "application_name"), Some("a\u{a0}b"));
        assert_eq!(get(&p, "passfile"), Some("c:\\"));
    }

    #[test]
    fn set_and_remove_edit_in_place() {
        let mut p = parse("host=h user=u password=x").unwrap();
        set(&mut p, "user", "repl");
        set(&mut p, "application_name", "n2");
        assert!(remove(&mut p, "password"));
        assert!(!remove(&mut p, "password"));
        assert_eq!(render(&p), "host=h user=repl application_name=n2");
    }
}

/// A plugin reads the upstream's conninfo and edits it: any text is
/// parameters or an error, and what it renders reads back the same.
#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    const SAMPLE: &str = "host=node2 user='rep mgr' password='a\\'b' sslmode=verify-full application_name=n\\ 2 passfile=c:\\";

    fn params() -> impl Strategy<Value = Vec<ConnParam>> {
        proptest::collection::vec(
            (
                "[a-z_]{1,12}",
                prop_oneof![
                    any::<String>(),
                    fuzz::words(&["a", "'", "\\", "=", " ", "\t"])
                ],
            )
                .prop_map(|(key, value)| ConnParam { key, value }),
            0..6,
        )
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn any_text_is_parameters_or_an_error(
            s in prop_oneof![fuzz::mutated(SAMPLE), fuzz::any_text()]
        ) {
            if let Ok(p) = parse(&s) {
                prop_assert!(p.iter().all(|c| !c.key.is_empty()));
                prop_assert_eq!(parse(&render(&p)), Ok(p));
            }
        }

        /// Rendering then parsing gives back every value, whatever it holds.
        #[test]
        fn render_then_parse_is_identity(p in params()) {
            prop_assert_eq!(parse(&render(&p)), Ok(p));
        }
    }
}
