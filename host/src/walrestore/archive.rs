//! Where a source's WAL is: the answer of its plugin's `locate-wal-archive`
//! (contract 1.2.0; a store since 1.3.0), checked against the plugin's capabilities once, then
//! kept in the source's spool directory so that a process that must fetch
//! costs no plugin at all while the answer is fresh.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::spool::Spool;
use crate::contract::source as wit;
use crate::contract::{Capability, PluginFailure};

/// How long a cached answer is used before the plugin is asked again.
pub const FRESH_FOR: Duration = Duration::from_secs(300);

/// The spool file that holds the cached answer.
const CACHE_FILE: &str = "wal-archive.toml";

/// How the host fetches a source's WAL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archive {
    /// A remote directory read with `tar` (segments, history files).
    pub directory: Option<Directory>,
    /// A program that fetches one file.
    pub fetch: Option<Fetch>,
    /// A prefix of an object store (preferred to `directory`).
    #[serde(default)]
    pub store: Option<StoreWal>,
    /// None of the above: the plugin is asked per file (`locate-wal`).
    pub per_name: bool,
}

/// Archived WAL in an object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreWal {
    /// The store's name (the operator configures what it is).
    pub store: String,
    /// The archive's key prefix, ending in `/` (or empty).
    pub prefix: String,
    /// Segments under a subdirectory of their first 16 characters.
    pub by_log: bool,
    /// Endings to try, in order (the compression is read from the bytes).
    pub suffixes: Vec<String>,
}

impl StoreWal {
    /// The "directory" that holds `name`, a key prefix ending in `/`.
    pub fn dir_of(&self, name: &str) -> String {
        if self.by_log && name.len() >= 24 && !name.ends_with(".history") {
            format!("{}{}/", self.prefix, &name[..16])
        } else {
            self.prefix.clone()
        }
    }
}

/// A remote directory of archived WAL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// The logical target (its ssh host comes from the source).
    pub target: String,
    pub path: String,
    /// Segments under a subdirectory of their first 16 characters (Barman).
    pub by_log: bool,
}

/// A program that fetches one file: `%f` is the name, `%p` (local only) the
/// file it writes; without `%p` it writes to standard output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    /// None: a local program.
    pub target: Option<String>,
    pub argv: Vec<String>,
    pub partial_argv: Option<Vec<String>>,
    pub missing_status: Option<u8>,
}

impl Fetch {
    /// The argv for `name`, `%p` replaced by `dest` when given.
    pub fn argv_for(&self, partial: bool, name: &str, dest: Option<&str>) -> Vec<String> {
        let argv = match (&self.partial_argv, partial) {
            (Some(p), true) => p,
            _ => &self.argv,
        };
        argv.iter()
            .map(|a| {
                let a = a.replace("%f", name);
                match dest {
                    Some(d) => a.replace("%p", d),
                    None => a,
                }
            })
            .collect()
    }

    /// A local program that writes the file itself (`%p` in its arguments).
    pub fn writes_file(&self) -> bool {
        self.target.is_none() && self.argv.iter().any(|a| a.contains("%p"))
    }
}

/// The cache file: the answer and what it was given for.
#[derive(Serialize, Deserialize)]
struct Cached {
    /// Hash of the plugin, its grants and the configuration it read.
    tag: String,
    archive: Archive,
}

/// The answer cached in `spool` for `tag`, when fresh.
pub fn cached(spool: &Spool, tag: &str) -> Option<Archive> {
    let age = std::fs::symlink_metadata(spool.path(CACHE_FILE))
        .ok()?
        .modified()
        .ok()?
        .elapsed()
        .ok()?;
    if age > FRESH_FOR {
        return None;
    }
    let c: Cached = toml::from_str(&spool.read(CACHE_FILE)?).ok()?;
    (c.tag == tag).then_some(c.archive)
}

/// Keeps `archive` in `spool` for `tag` (best effort: a failure only costs a
/// plugin call later).
pub fn remember(spool: &Spool, tag: &str, archive: &Archive) {
    let c = Cached {
        tag: tag.to_string(),
        archive: archive.clone(),
    };
    if let Ok(text) = toml::to_string(&c) {
        let _ = spool.put_unsynced(CACHE_FILE, text.as_bytes());
    }
}

/// Checks the plugin's answer: every capability it implies declared and
/// granted, every path and argument plain text.
pub fn from_plugin(
    plugin: &str,
    caps: &crate::contract::capability::CapabilitySet,
    answer: wit::WalArchive,
) -> Result<Archive, PluginFailure> {
    let malformed = |problem: String| PluginFailure::Malformed {
        plugin: plugin.to_string(),
        call: "locate-wal-archive",
        problem,
    };
    let allow = |cap: Capability| -> Result<(), PluginFailure> {
        caps.check(&cap).map_err(|refusal| PluginFailure::Denied {
            plugin: plugin.to_string(),
            call: "locate-wal-archive",
            function: "locate-wal-archive",
            capability: cap,
            refusal,
        })
    };
    let directory = match answer.directory {
        None => None,
        Some(d) => {
            if !d.path.starts_with('/') || has_bad_text(&d.path) || d.path.contains("/../") {
                return Err(malformed(format!(
                    "WAL directory \"{}\" is not a plain absolute path",
                    d.path.escape_debug()
                )));
            }
            allow(Capability::RemoteRun {
                target: d.target.clone(),
                program: "tar".into(),
            })?;
            Some(Directory {
                target: d.target,
                path: d.path,
                by_log: matches!(d.layout, wit::WalLayout::ByLog),
            })
        }
    };
    let fetch = match answer.fetch {
        None => None,
        Some(f) => {
            for argv in std::iter::once(&f.argv).chain(f.partial_argv.iter()) {
                let Some(program) = argv.first() else {
                    return Err(malformed("a WAL fetch command with an empty argv".into()));
                };
                if program.is_empty() || program.contains('/') || program.starts_with('-') {
                    return Err(malformed(format!(
                        "WAL fetch program \"{}\" must be a name without a path",
                        program.escape_debug()
                    )));
                }
                if let Some(a) = argv.iter().find(|a| has_bad_text(a)) {
                    return Err(malformed(format!(
                        "WAL fetch argument \"{}\" holds a control character",
                        a.escape_debug()
                    )));
                }
                if f.target.is_some() && argv.iter().any(|a| a.contains("%p")) {
                    return Err(malformed(
                        "a remote WAL fetch command writes to its standard output: %p is for local programs".into(),
                    ));
                }
                allow(match &f.target {
                    Some(t) => Capability::RemoteRun {
                        target: t.clone(),
                        program: program.clone(),
                    },
                    None => Capability::LocalRun(program.clone()),
                })?;
            }
            Some(Fetch {
                target: f.target,
                argv: f.argv,
                partial_argv: f.partial_argv,
                missing_status: f.missing_status,
            })
        }
    };
    let store = match answer.store {
        None => None,
        Some(w) => {
            if !(w.prefix.is_empty() || w.prefix.ends_with('/'))
                || !pgclone_contract::capability::is_key(&w.prefix)
            {
                return Err(malformed(format!(
                    "WAL store prefix \"{}\" is not a key prefix ending in '/'",
                    w.prefix.escape_debug()
                )));
            }
            caps.check_key(&w.store, &w.prefix)
                .map_err(|refusal| PluginFailure::Denied {
                    plugin: plugin.to_string(),
                    call: "locate-wal-archive",
                    function: "locate-wal-archive",
                    capability: Capability::StoreRead {
                        store: w.store.clone(),
                        prefix: w.prefix.escape_debug().to_string(),
                    },
                    refusal,
                })?;
            if w.suffixes.is_empty() || w.suffixes.len() > 16 {
                return Err(malformed(
                    "a WAL store names between 1 and 16 file endings".into(),
                ));
            }
            for (suffix, _) in &w.suffixes {
                let plain = suffix.is_empty()
                    || (suffix.starts_with('.')
                        && suffix.len() <= 16
                        && suffix[1..].chars().all(|c| c.is_ascii_alphanumeric()));
                if !plain {
                    return Err(malformed(format!(
                        "WAL file ending \"{}\" is not '.' and letters or digits",
                        suffix.escape_debug()
                    )));
                }
            }
            Some(StoreWal {
                store: w.store,
                prefix: w.prefix,
                by_log: matches!(w.layout, wit::WalLayout::ByLog),
                suffixes: w.suffixes.into_iter().map(|(s, _)| s).collect(),
            })
        }
    };
    let per_name = directory.is_none() && fetch.is_none() && store.is_none();
    Ok(Archive {
        directory,
        fetch,
        store,
        per_name,
    })
}

fn has_bad_text(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch() -> Fetch {
        Fetch {
            target: None,
            argv: vec![
                "pgbackrest".into(),
                "--stanza=main".into(),
                "archive-get".into(),
                "%f".into(),
                "%p".into(),
            ],
            partial_argv: None,
            missing_status: Some(1),
        }
    }

    #[test]
    fn placeholders_are_replaced() {
        let f = fetch();
        assert!(f.writes_file());
        assert_eq!(
            f.argv_for(false, "00000002.history", Some("/spool/x.tmp")),
            [
                "pgbackrest",
                "--stanza=main",
                "archive-get",
                "00000002.history",
                "/spool/x.tmp"
            ]
        );
        // --partial without partial arguments: the plain ones.
        assert_eq!(f.argv_for(true, "N", None)[3], "N");
        let remote = Fetch {
            target: Some("barman".into()),
            argv: vec!["barman".into(), "get-wal".into(), "pg".into(), "%f".into()],
            partial_argv: Some(vec![
                "barman".into(),
                "get-wal".into(),
                "--partial".into(),
                "pg".into(),
                "%f".into(),
            ]),
            missing_status: Some(1),
        };
        assert!(!remote.writes_file());
        assert_eq!(remote.argv_for(true, "N", None)[2], "--partial");
    }

    fn caps(list: &[&str]) -> crate::contract::capability::CapabilitySet {
        let caps: Vec<Capability> = list.iter().map(|c| c.parse().unwrap()).collect();
        crate::contract::capability::CapabilitySet {
            declared: caps.clone(),
            granted: caps,
        }
    }

    fn answer(
        dir: Option<(&str, &str)>,
        fetch: Option<(Option<&str>, &[&str])>,
    ) -> wit::WalArchive {
        wit::WalArchive {
            directory: dir.map(|(target, path)| wit::WalDirectory {
                target: target.into(),
                path: path.into(),
                layout: wit::WalLayout::ByLog,
            }),
            fetch: fetch.map(|(target, argv)| wit::WalFetchCommand {
                target: target.map(str::to_string),
                argv: argv.iter().map(|a| a.to_string()).collect(),
                partial_argv: None,
                missing_status: Some(1),
            }),
            store: None,
        }
    }

    #[test]
    fn answers_are_checked_against_the_capabilities_and_the_rules() {
        let barman = caps(&[
            "remote-run:barman:tar",
            "remote-run:barman:barman",
            "local-run:pgbackrest",
        ]);
        let good = from_plugin(
            "p",
            &barman,
            answer(
                Some(("barman", "/var/lib/barman/pg/wals")),
                Some((Some("barman"), &["barman", "get-wal", "pg", "%f"])),
            ),
        )
        .unwrap();
        assert!(!good.per_name && good.directory.unwrap().by_log);
        assert!(
            from_plugin("p", &barman, answer(None, None))
                .unwrap()
                .per_name
        );
        let local = from_plugin(
            "p",
            &barman,
            answer(
                None,
                Some((None, &["pgbackrest", "archive-get", "%f", "%p"])),
            ),
        )
        .unwrap();
        assert!(local.fetch.unwrap().writes_file());

        let refused = |a: wit::WalArchive| {
            from_plugin("p", &barman, a)
                .err()
                .map(|e| e.into_failure().to_string())
                .expect("must be refused")
        };
        // Capabilities: a target, a program, a local program not granted.
        let e = refused(answer(Some(("elsewhere", "/w")), None));
        assert!(e.contains("remote-run:elsewhere:tar"), "{e}");
        let e = refused(answer(None, Some((Some("barman"), &["rm", "-rf", "/"]))));
        assert!(e.contains("remote-run:barman:rm"), "{e}");
        let e = refused(answer(None, Some((None, &["barman", "%f"]))));
        assert!(e.contains("local-run:barman"), "{e}");
        // Rules: plain absolute paths, bare program names, no control
        // characters, %p only locally, no empty command.
        for bad in [
            answer(Some(("barman", "relative/wals")), None),
            answer(Some(("barman", "/a/../etc")), None),
            answer(Some(("barman", "/w\nx")), None),
            answer(None, Some((Some("barman"), &["/usr/bin/barman", "%f"]))),
            answer(None, Some((Some("barman"), &["-oProxyCommand=x", "%f"]))),
            answer(None, Some((Some("barman"), &["barman", "get-wal\r", "%f"]))),
            answer(None, Some((Some("barman"), &["barman", "%f", "%p"]))),
            answer(None, Some((Some("barman"), &[]))),
        ] {
            let e = refused(bad);
            assert!(e.contains("plugin \"p\""), "{e}");
        }
    }

    #[test]
    fn the_cache_round_trips_and_knows_its_tag() {
        let t = tempfile::tempdir().unwrap();
        let spool = Spool::open(&t.path().join("spool"), "x-0", "test").unwrap();
        let a = Archive {
            directory: Some(Directory {
                target: "barman".into(),
                path: "/var/lib/barman/pg/wals".into(),
                by_log: true,
            }),
            fetch: Some(fetch()),
            store: None,
            per_name: false,
        };
        assert_eq!(cached(&spool, "t1"), None);
        remember(&spool, "t1", &a);
        assert_eq!(cached(&spool, "t1"), Some(a));
        assert_eq!(
            cached(&spool, "t2"),
            None,
            "another plugin or configuration"
        );
    }
}
