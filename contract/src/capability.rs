//! Capabilities as plugins declare them and operators grant them in
//! `plugins.toml`: `remote-run:TARGET:PROGRAM`, `local-run:PROGRAM`,
//! `read-config:KEY`, `store-read:STORE[:PREFIX]`. Every part is one word of
//! letters, digits, `_`, `-` and `.`, not starting with `-`: no paths, no
//! options, nothing a shell or ssh would read twice. A store prefix is such
//! words joined by `/` (see [`is_key_prefix`]).

use std::fmt;
use std::str::FromStr;

/// One capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Run `program` on the remote host the operator maps to `target`.
    RemoteRun { target: String, program: String },
    /// Run a local program, named without a path.
    LocalRun(String),
    /// Read one configuration key.
    ReadConfig(String),
    /// List and read the objects of one object store whose keys start with
    /// `prefix` (relative to the store's root; empty for the whole store).
    StoreRead { store: String, prefix: String },
}

impl Capability {
    /// True when this is a `store-read` of `store` whose prefix `key` (a
    /// store key or key prefix) lies under. `key` must itself be a clean key
    /// ([`is_key`]): a key with `..` is under no prefix.
    pub fn covers_key(&self, store: &str, key: &str) -> bool {
        match self {
            Capability::StoreRead { store: s, prefix } => {
                s == store && is_key(key) && key.starts_with(prefix.as_str())
            }
            _ => false,
        }
    }
}

/// A store key (or a key prefix ending in `/`) as plugins may name it:
/// relative, `/`-separated segments of printable characters other than `\`,
/// none empty (but a final `/`), `.` or `..`; at most 1024 bytes. The empty
/// key is the store's root.
pub fn is_key(k: &str) -> bool {
    if k.is_empty() {
        return true;
    }
    if k.len() > 1024 || k.starts_with('/') {
        return false;
    }
    let body = k.strip_suffix('/').unwrap_or(k);
    body.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg.chars().all(|c| !c.is_control() && c != '\\')
    })
}

/// A prefix as a `store-read` grant writes it: empty, or words
/// ([`is_word`]) joined by `/`, ending in `/` or not.
pub fn is_key_prefix(p: &str) -> bool {
    p.is_empty() || (is_key(p) && p.strip_suffix('/').unwrap_or(p).split('/').all(is_word))
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::RemoteRun { target, program } => {
                write!(f, "remote-run:{target}:{program}")
            }
            Capability::LocalRun(p) => write!(f, "local-run:{p}"),
            Capability::ReadConfig(k) => write!(f, "read-config:{k}"),
            Capability::StoreRead { store, prefix } if prefix.is_empty() => {
                write!(f, "store-read:{store}")
            }
            Capability::StoreRead { store, prefix } => write!(f, "store-read:{store}:{prefix}"),
        }
    }
}

/// A text that is not a capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCapability(pub String);

impl fmt::Display for BadCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" is not a capability (expected remote-run:TARGET:PROGRAM, local-run:PROGRAM, read-config:KEY or store-read:STORE[:PREFIX])",
            self.0
        )
    }
}

impl std::error::Error for BadCapability {}

/// One part of a capability: a plain word.
pub fn is_word(w: &str) -> bool {
    !w.is_empty()
        && !w.starts_with('-')
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

impl FromStr for Capability {
    type Err = BadCapability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, ':');
        Ok(match (parts.next(), parts.next(), parts.next()) {
            (Some("remote-run"), Some(t), Some(p)) if is_word(t) && is_word(p) => {
                Capability::RemoteRun {
                    target: t.into(),
                    program: p.into(),
                }
            }
            (Some("local-run"), Some(p), None) if is_word(p) => Capability::LocalRun(p.into()),
            (Some("read-config"), Some(k), None) if is_word(k) => Capability::ReadConfig(k.into()),
            (Some("store-read"), Some(st), None) if is_word(st) => Capability::StoreRead {
                store: st.into(),
                prefix: String::new(),
            },
            (Some("store-read"), Some(st), Some(p))
                if is_word(st) && !p.is_empty() && is_key_prefix(p) =>
            {
                Capability::StoreRead {
                    store: st.into(),
                    prefix: p.into(),
                }
            }
            _ => return Err(BadCapability(s.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_round_trip_and_odd_words_are_refused() {
        for text in [
            "remote-run:barman:rsync",
            "local-run:pg_basebackup",
            "read-config:barman_server",
            "remote-run:backup-store:tar",
            "store-read:barman-cloud",
            "store-read:barman-cloud:pg-main/",
            "store-read:vendor:a/b.c/d",
        ] {
            let c: Capability = text.parse().unwrap();
            assert_eq!(c.to_string(), text);
        }
        for bad in [
            "local-run:/bin/sh",
            "local-run:-oProxyCommand=x",
            "remote-run:barman:rm -rf",
            "remote-run:barman",
            "read-config:",
            "run-anything",
            "local-run:a:b",
            "store-read:",
            "store-read:s:",
            "store-read:s:../other/",
            "store-read:s:/abs/",
            "store-read:s:a//b/",
            "store-read:s:a/./b",
            "store-read:s:a b/",
        ] {
            assert!(bad.parse::<Capability>().is_err(), "{bad}");
        }
    }

    #[test]
    fn store_keys_stay_under_the_granted_prefix() {
        let cap: Capability = "store-read:bc:pg-main/".parse().unwrap();
        assert!(cap.covers_key("bc", "pg-main/base/20250101T000000/backup.info"));
        assert!(cap.covers_key("bc", "pg-main/"));
        for k in [
            "pg-main/../other-cluster/base/x",
            "pg-main/./x",
            "pg-main//x",
            "pg-mainx/base",
            "/pg-main/base",
            "other/pg-main/",
            "pg-main/a\\..\\b",
        ] {
            assert!(!cap.covers_key("bc", k), "{k}");
        }
        assert!(!cap.covers_key("other-store", "pg-main/base"));
        let whole: Capability = "store-read:bc".parse().unwrap();
        assert!(whole.covers_key("bc", "anything/at/all"));
        assert!(whole.covers_key("bc", ""));
        assert!(!whole.covers_key("bc", "../up"));
        assert!(!"local-run:x"
            .parse::<Capability>()
            .unwrap()
            .covers_key("bc", "x"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    /// A word as `is_word` accepts it.
    fn word() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.][A-Za-z0-9_.-]{0,15}"
    }

    fn capability() -> impl Strategy<Value = Capability> {
        prop_oneof![
            (word(), word())
                .prop_map(|(target, program)| Capability::RemoteRun { target, program }),
            word().prop_map(Capability::LocalRun),
            word().prop_map(Capability::ReadConfig),
            (word(), prop::collection::vec(word(), 0..3), any::<bool>()).prop_map(
                |(store, segs, slash)| {
                    let mut prefix = segs.join("/");
                    if slash && !prefix.is_empty() {
                        prefix.push('/');
                    }
                    Capability::StoreRead { store, prefix }
                }
            ),
        ]
    }

    const SAMPLES: &[&str] = &[
        "remote-run:barman:rsync",
        "local-run:pg_basebackup",
        "read-config:barman_server",
        "store-read:barman-cloud:pg/",
    ];
    const VOCAB: &[&str] = &[
        "remote-run",
        "local-run",
        "read-config",
        "store-read",
        "..",
        ":",
        "barman",
        "-x",
        "/",
    ];

    proptest! {
        #![proptest_config(fuzz::config())]

        /// What the host grants is exactly what was written: display and
        /// parse are inverse.
        #[test]
        fn display_then_parse_is_identity(c in capability()) {
            prop_assert_eq!(c.to_string().parse::<Capability>(), Ok(c));
        }

        /// Any text is a capability in its one canonical spelling, every
        /// part a plain word, or a clean refusal; never a panic.
        #[test]
        fn any_text_parses_canonically_or_is_refused(
            s in prop_oneof![fuzz::any_text(), fuzz::words(VOCAB), fuzz::mutated_any(SAMPLES)]
        ) {
            if let Ok(c) = s.parse::<Capability>() {
                prop_assert_eq!(c.to_string(), s);
                let parts: Vec<&str> = match &c {
                    Capability::RemoteRun { target, program } => vec![target, program],
                    Capability::LocalRun(p) | Capability::ReadConfig(p) => vec![p],
                    Capability::StoreRead { store, prefix } => {
                        prop_assert!(is_key_prefix(prefix));
                        vec![store]
                    }
                };
                prop_assert!(parts.iter().all(|p| is_word(p)));
            }
        }
    }
}
