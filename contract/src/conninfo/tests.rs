use super::*;

fn get(s: &str, key: &str) -> Option<String> {
    ConnInfo::parse(s).unwrap().get(key).map(str::to_string)
}

#[test]
fn keywords_libpq_does_not_know_are_refused_in_every_spelling() {
    for bad in [
        "host=a sslmod=require",
        "=x",
        "postgresql://a/db?sslmod=require",
        "postgresql://a/db?ssl%6dode%3D=require",
        "postgresql://a/db?application%20name=x",
    ] {
        let e = ConnInfo::parse(bad).unwrap_err();
        assert!(
            e.to_string().contains("invalid connection option"),
            "{bad}: {e}"
        );
    }
    // A percent-encoded keyword that decodes to a real one is fine, as in libpq.
    let c = ConnInfo::parse("postgresql://a/db?ssl%6dode=require").unwrap();
    assert_eq!(c.get("sslmode"), Some("require"));
}

#[test]
fn keyword_value_strings() {
    let c = ConnInfo::parse("host=node1 port = 5433 user='rep mgr' password='a\\'b' dbname=repmgr")
        .unwrap();
    assert_eq!(c.get("host"), Some("node1"));
    assert_eq!(c.get("port"), Some("5433"));
    assert_eq!(c.get("user"), Some("rep mgr"));
    assert_eq!(c.get("password"), Some("a'b"));
    assert_eq!(
        c.to_string(),
        "host=node1 port=5433 user='rep mgr' password=******** dbname=repmgr"
    );
    assert_eq!(ConnInfo::parse(&c.to_secret_string()).unwrap(), c);
    // An escaped space is part of the value; a quoted value needs no space after it.
    assert_eq!(
        get(r"application_name=n\ 2", "application_name").unwrap(),
        "n 2"
    );
    let c = ConnInfo::parse("host='a b'port=5").unwrap();
    assert_eq!((c.get("host"), c.get("port")), (Some("a b"), Some("5")));
}

#[test]
fn uris() {
    let c = ConnInfo::parse(
        "postgresql://rep%40l:s3cr%3At@[::1]:5433/app?sslmode=require&connect_timeout=5",
    )
    .unwrap();
    assert_eq!(c.get("user"), Some("rep@l"));
    assert_eq!(c.get("password"), Some("s3cr:t"));
    assert_eq!(c.get("host"), Some("::1"));
    assert_eq!(c.get("port"), Some("5433"));
    assert_eq!(c.get("dbname"), Some("app"));
    assert_eq!(c.get("sslmode"), Some("require"));
    let c = ConnInfo::parse("postgres://node1/db").unwrap();
    assert_eq!(c.get("host"), Some("node1"));
    assert_eq!(c.get("port"), None);
}

#[test]
fn malformed_strings_are_errors() {
    assert!(ConnInfo::parse("host").is_err());
    assert!(ConnInfo::parse("host='x").is_err());
    assert!(ConnInfo::parse("host='x\\").is_err());
    assert!(ConnInfo::parse("=x").is_err());
    assert!(ConnInfo::parse("postgresql://h/?a").is_err());
}

// The drifts between the host's and the SDK's former parsers, each settled
// as libpq 15's PQconninfoParse answers (checked against the real library).

#[test]
fn only_c_locale_spaces_separate() {
    // The host's parser split on Unicode whitespace: a no-break space was a
    // separator there ("b" a keyword), and is part of the value in libpq.
    assert_eq!(
        get("application_name=a\u{a0}b", "application_name").unwrap(),
        "a\u{a0}b"
    );
    assert_eq!(get("host=a\u{2028}b", "host").unwrap(), "a\u{2028}b");
    // The SDK's did not split on a vertical tab, which C's isspace is.
    let c = ConnInfo::parse("host=a\u{b}port=5").unwrap();
    assert_eq!((c.get("host"), c.get("port")), (Some("a"), Some("5")));
    // Rendering quotes what libpq splits on, nothing else.
    assert_eq!(quote("a\u{a0}b"), "a\u{a0}b");
    assert_eq!(quote("a\u{b}b"), "'a\u{b}b'");
}

#[test]
fn a_trailing_backslash_is_dropped_as_libpq_drops_it() {
    // libpq's conninfo_parse skips the backslash and copies the next
    // character only if there is one: `passfile=c:\` is `c:`. (The SDK kept
    // the backslash, believing libpq did.)
    assert_eq!(get("passfile=c:\\", "passfile").unwrap(), "c:");
    assert_eq!(
        get("passfile=c:\\ host=h", "passfile").unwrap(),
        "c: host=h"
    );
    // Quoted, it is a value ending in a backslash, rendered so.
    let c = ConnInfo::parse("passfile='c:\\\\'").unwrap();
    assert_eq!(c.get("passfile"), Some("c:\\"));
    assert_eq!(c.to_secret_string(), "passfile='c:\\\\'");
}

#[test]
fn set_cannot_be_shadowed_by_a_later_duplicate() {
    // A repeated keyword is read once, first place, last value.
    let mut c = ConnInfo::parse("sslmode=verify-full host=h sslmode=disable").unwrap();
    assert_eq!(c.get("sslmode"), Some("disable"));
    c.set("sslmode", "verify-full");
    assert_eq!(c.to_secret_string(), "sslmode=verify-full host=h");
    // Even in a list given as is: the host's `set` changed the first one and
    // left the later `disable` to win.
    let mut c = ConnInfo::from_pairs(vec![
        ("sslmode".into(), "verify-full".into()),
        ("host".into(), "h".into()),
        ("sslmode".into(), "disable".into()),
    ]);
    c.set("sslmode", "verify-full");
    assert_eq!(c.get("sslmode"), Some("verify-full"));
    assert_eq!(c.to_secret_string(), "sslmode=verify-full host=h");
}

#[test]
fn uris_read_as_libpq_reads_them() {
    // No trimming: with a space in front it is a keyword/value string.
    assert!(ConnInfo::parse(" postgresql://h").is_err());
    // The user ends at the first '@' before any '/'.
    let c = ConnInfo::parse("postgresql://u@h?user=a@b").unwrap();
    assert_eq!((c.get("user"), c.get("host")), (Some("a@b"), Some("h")));
    // Several hosts, each with its port or none.
    let c = ConnInfo::parse("postgresql://a,b:5,[::1]:6/db").unwrap();
    assert_eq!(c.get("host"), Some("a,b,::1"));
    assert_eq!(c.get("port"), Some(",5,6"));
    assert_eq!(c.get("dbname"), Some("db"));
    assert!(ConnInfo::parse("postgresql://[]/db").is_err());
    assert!(ConnInfo::parse("postgresql://[::1]x/db").is_err());
    // Every query parameter is one key=value; a trailing '&' is fine.
    assert!(ConnInfo::parse("postgresql://h/db?a&&b").is_err());
    assert!(ConnInfo::parse("postgresql://h/db?sslmode=a=b").is_err());
    assert!(ConnInfo::parse("postgresql://h/db?sslmode=require&").is_ok());
    assert!(ConnInfo::parse("postgresql://h/db?").is_ok());
    // %00 is forbidden.
    assert!(ConnInfo::parse("postgresql://h/db?application_name=%00").is_err());
}

#[test]
fn old_spellings_of_sslmode_are_read_as_libpq_reads_them() {
    assert_eq!(get("requiressl=1", "sslmode").unwrap(), "require");
    assert_eq!(get("requiressl=0 host=h", "sslmode").unwrap(), "prefer");
    assert_eq!(get("requiressl=1", "requiressl"), None);
    assert_eq!(
        get("postgresql://h/db?ssl=true", "sslmode").unwrap(),
        "require"
    );
    assert!(ConnInfo::parse("postgresql://h/db?ssl=false").is_err());
}

#[test]
fn quoting() {
    assert_eq!(quote("node1"), "node1");
    assert_eq!(quote("5432"), "5432");
    assert_eq!(quote(""), "''");
    assert_eq!(quote("a b"), "'a b'");
    assert_eq!(quote("it's"), r"'it\'s'");
    assert_eq!(quote(r"c:\x"), r"'c:\\x'");
    assert_eq!(quote("a=b"), "'a=b'");
}

#[test]
fn set_and_remove_edit_in_place() {
    let mut c = ConnInfo::parse("host=h user=u password=x").unwrap();
    c.set("user", "repl");
    c.set("application_name", "n2");
    c.set_default("user", "other");
    assert!(c.remove("password"));
    assert!(!c.remove("password"));
    assert_eq!(c.to_secret_string(), "host=h user=repl application_name=n2");
}

#[test]
fn a_sign_is_not_a_hex_digit() {
    // Found by percent_escapes_are_two_hex_digits: "%+1" decoded as
    // byte 1 (from_str_radix accepts a sign).
    assert!(ConnInfo::parse("postgresql://h/db?application_name=%+1").is_err());
    assert!(ConnInfo::parse("postgresql://h/db?application_name=%-1").is_err());
    let c = ConnInfo::parse("postgresql://h/db?application_name=%41%62").unwrap();
    assert_eq!(c.get("application_name"), Some("Ab"));
}

/// Conninfo comes from the command line, configuration files and plugins:
/// any text is a connection string or a clean error, and what is rendered
/// reads back as it was.
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    const SAMPLES: &[&str] = &[
        "host=node1 port=5432 user=repmgr dbname=repmgr connect_timeout=2",
        "host=node2 user='rep mgr' password='a\\'b' sslmode=verify-full sslrootcert=/etc/ssl/root.crt application_name=n\\ 2 passfile=c:\\",
        "postgresql://rep%40l:s3cr%3At@[::1]:5433/app?sslmode=require&connect_timeout=5",
        "postgres://node1:5432,node2/postgres?application_name=n%20one",
    ];

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            fuzz::words(&["a", "'", "\\", "=", " ", "\t", "\u{b}"])
        ]
    }

    /// Distinct keywords with any values.
    fn params() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::btree_map(proptest::sample::select(KEYWORDS), value(), 0..6)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn any_text_is_a_conninfo_of_known_keywords_or_an_error(
            s in prop_oneof![fuzz::mutated_any(SAMPLES), fuzz::any_text(), fuzz::words(&["host", "=", "'", "\\", " ", "postgresql://", "%", "@", "[", "]", ":", "/", "?", "&", ","])]
        ) {
            if let Ok(c) = ConnInfo::parse(&s) {
                prop_assert!(c.params().iter().all(|(k, _)| KEYWORDS.contains(&k.as_str())));
                // One entry per keyword, as libpq keeps them.
                let mut keys: Vec<_> = c.params().iter().map(|(k, _)| k).collect();
                keys.sort();
                keys.dedup();
                prop_assert_eq!(keys.len(), c.params().len());
                // What is then rendered reads back the same.
                prop_assert_eq!(ConnInfo::parse(&c.to_secret_string()), Ok(c.clone()));
                // And what is shown parses too.
                prop_assert!(ConnInfo::parse(&c.to_string()).is_ok());
            }
        }

        /// Rendering then parsing gives back every parameter, whatever the
        /// values hold.
        #[test]
        fn render_then_parse_is_identity(params in params()) {
            let c = ConnInfo::from_pairs(params);
            prop_assert_eq!(ConnInfo::parse(&c.to_secret_string()), Ok(c));
        }

        /// Parsing then rendering then parsing again changes nothing: the
        /// rendered form is a fixed point.
        #[test]
        fn parse_render_is_a_fixed_point(s in fuzz::mutated_any(SAMPLES)) {
            if let Ok(c) = ConnInfo::parse(&s) {
                let once = c.to_secret_string();
                let again = ConnInfo::parse(&once).unwrap().to_secret_string();
                prop_assert_eq!(once, again);
            }
        }

        /// `set` then `get` gives the value set, whatever came before.
        #[test]
        fn set_then_get(params in proptest::collection::vec((proptest::sample::select(KEYWORDS), value()), 0..8), k in proptest::sample::select(KEYWORDS), v in value()) {
            let mut c = ConnInfo::from_pairs(params.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
            c.set(k, &v);
            prop_assert_eq!(c.get(k), Some(v.as_str()));
            prop_assert_eq!(c.params().iter().filter(|(x, _)| x == k).count(), 1);
        }

        /// A percent escape is `%` and two hexadecimal digits, nothing else
        /// (libpq: "invalid percent-encoded token").
        #[test]
        fn percent_escapes_are_two_hex_digits(a in any::<char>(), b in any::<char>()) {
            let uri = format!("postgresql://h/db?application_name=%{a}{b}");
            let hex = a.is_ascii_hexdigit() && b.is_ascii_hexdigit();
            match ConnInfo::parse(&uri) {
                Ok(c) => {
                    prop_assert!(hex, "{:?} accepted as {:?}", uri, c.get("application_name"));
                }
                Err(_) => {
                    // Refused: not hex, %00, or a byte that is not UTF-8 alone.
                    let byte = u8::from_str_radix(&[a, b].iter().collect::<String>(), 16);
                    prop_assert!(!hex || byte.is_ok_and(|x| x >= 0x80 || x == 0));
                }
            }
        }
    }
}
