//! Building a libpq keyword/value connection string.

use crate::pgclone::plugin::types::ConnParam;

/// Quotes a conninfo value as libpq's parser expects: bare when it is a plain
/// word, otherwise in single quotes with `\` and `'` escaped by a backslash.
pub fn quote_value(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && c != '\'' && c != '\\' && c != '=');
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

/// Sets `key` to `value`: replaces it in place when present, appends it otherwise.
pub fn set(params: &mut Vec<ConnParam>, key: &str, value: &str) {
    match params.iter_mut().find(|p| p.key == key) {
        Some(p) => p.value = value.to_string(),
        None => params.push(ConnParam {
            key: key.to_string(),
            value: value.to_string(),
        }),
    }
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
    fn set_replaces_in_place_or_appends() {
        let mut p = vec![
            ConnParam {
                key: "host".into(),
                value: "h".into(),
            },
            ConnParam {
                key: "user".into(),
                value: "u".into(),
            },
        ];
        set(&mut p, "user", "repl");
        set(&mut p, "application_name", "n2");
        assert_eq!(render(&p), "host=h user=repl application_name=n2");
    }
}
