//! Capabilities as plugins declare them and operators grant them in
//! `plugins.toml`: `remote-run:TARGET:PROGRAM`, `local-run:PROGRAM`,
//! `read-config:KEY`. Every part is one word of letters, digits, `_`, `-`
//! and `.`, not starting with `-`: no paths, no options, nothing a shell or
//! ssh would read twice.

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
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::RemoteRun { target, program } => {
                write!(f, "remote-run:{target}:{program}")
            }
            Capability::LocalRun(p) => write!(f, "local-run:{p}"),
            Capability::ReadConfig(k) => write!(f, "read-config:{k}"),
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
            "\"{}\" is not a capability (expected remote-run:TARGET:PROGRAM, local-run:PROGRAM or read-config:KEY)",
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
        ] {
            assert!(bad.parse::<Capability>().is_err(), "{bad}");
        }
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
        ]
    }

    const SAMPLES: &[&str] = &[
        "remote-run:barman:rsync",
        "local-run:pg_basebackup",
        "read-config:barman_server",
    ];
    const VOCAB: &[&str] = &[
        "remote-run",
        "local-run",
        "read-config",
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
                };
                prop_assert!(parts.iter().all(|p| is_word(p)));
            }
        }
    }
}
