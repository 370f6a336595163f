//! libpq connection strings (`host=db1 port=5432 user=repl`, or a
//! `postgresql://` URI): parsing, quoting and editing, as `primary_conninfo`
//! needs them. The rules are the contract crate's ([`pgclone_contract::conninfo`]),
//! the same the host applies, read as libpq reads them; this module only
//! converts to and from the contract's [`ConnParam`] lists.

use crate::types::ConnParam;
use pgclone_contract::conninfo::{self as rules, ConnInfo};

fn to_rules(params: &[ConnParam]) -> ConnInfo {
    ConnInfo::from_pairs(
        params
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect(),
    )
}

fn from_rules(c: ConnInfo) -> Vec<ConnParam> {
    c.into_pairs()
        .into_iter()
        .map(|(key, value)| ConnParam { key, value })
        .collect()
}

/// Quotes a value as libpq's parser expects: bare when it is a plain word,
/// otherwise in single quotes with `\` and `'` escaped by a backslash.
pub fn quote_value(value: &str) -> String {
    rules::quote(value)
}

/// Joins parameters into `key=value key=value`.
pub fn render(params: &[ConnParam]) -> String {
    rules::render(params.iter().map(|p| (p.key.as_str(), p.value.as_str())))
}

/// Parses a connection string as libpq does: one parameter per keyword (a
/// repeated one keeps its first place and its last value), keywords libpq
/// does not know refused.
pub fn parse(text: &str) -> Result<Vec<ConnParam>, String> {
    ConnInfo::parse(text)
        .map(from_rules)
        .map_err(|e| e.to_string())
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
    let mut c = to_rules(params);
    c.set(key, value);
    *params = from_rules(c);
}

/// Removes every `key`; true when there was one.
pub fn remove(params: &mut Vec<ConnParam>, key: &str) -> bool {
    let mut c = to_rules(params);
    let removed = c.remove(key);
    *params = from_rules(c);
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(key: &str, value: &str) -> ConnParam {
        ConnParam {
            key: key.into(),
            value: value.into(),
        }
    }

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
        // Only C-locale whitespace separates. A trailing backslash is dropped,
        // as libpq drops it (this test said "kept" before: libpq 15's
        // PQconninfoParse reads `passfile=c:\` as `c:`).
        let p = parse("application_name=a\u{a0}b passfile=c:\\").unwrap();
        assert_eq!(get(&p, "application_name"), Some("a\u{a0}b"));
        assert_eq!(get(&p, "passfile"), Some("c:"));
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

    #[test]
    fn set_removes_later_duplicates_of_a_plugins_own_list() {
        let mut l = vec![
            p("sslmode", "verify-full"),
            p("x", "1"),
            p("sslmode", "disable"),
        ];
        set(&mut l, "sslmode", "require");
        assert_eq!(l, vec![p("sslmode", "require"), p("x", "1")]);
    }

    #[test]
    fn uris_are_read_too() {
        let p = parse("postgresql://repl@db1:5433/app?sslmode=require").unwrap();
        assert_eq!(
            render(&p),
            "user=repl host=db1 port=5433 dbname=app sslmode=require"
        );
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

    /// Distinct libpq keywords with any values: what `parse` can give.
    fn params() -> impl Strategy<Value = Vec<ConnParam>> {
        proptest::collection::btree_map(
            proptest::sample::select(pgclone_contract::conninfo::KEYWORDS),
            prop_oneof![
                any::<String>(),
                fuzz::words(&["a", "'", "\\", "=", " ", "\t"])
            ],
            0..6,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|(key, value)| ConnParam {
                    key: key.to_string(),
                    value,
                })
                .collect()
        })
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
