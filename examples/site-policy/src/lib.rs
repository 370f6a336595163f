//! A site recovery policy, chained after pgclone's standard one: standbys
//! must reach their primary over TLS with `sslmode=verify-full`, never keep a
//! password in `primary_conninfo`, DR nodes (`dr-*`) replay 4 hours behind,
//! and every standby cleans the WAL archive it restores from.
//!
//! Setting (in the node's configuration file, read through the
//! `read-config:site_policy_wal_archive` grant): `site_policy_wal_archive`,
//! the WAL archive `archive_cleanup_command` cleans (default
//! `/srv/wal_archive`).

use pgclone_plugin_sdk::policy::{self, Guest, RecoveryConfig, RecoveryFacts};
use pgclone_plugin_sdk::{conninfo, pattern, ErrorExt, ErrorKind, PluginError, PluginInfo};

pgclone_plugin_sdk::manifest! {
    name: "site-policy",
    version: env!("CARGO_PKG_VERSION"),
    vendor: "Example Corp DBA team",
    license: "Apache-2.0",
    description: "verify-full TLS, no stored passwords, 4h delay on dr-* nodes, archive cleanup",
    provides: [],
    needs_upstream: false,
    capabilities: ["read-config:site_policy_wal_archive"],
}

const DELAYED_NODES: &str = "dr-*";
const DELAY: &str = "4h";
/// The configuration key that names the WAL archive to clean.
pub const ARCHIVE_KEY: &str = "site_policy_wal_archive";
/// The archive when the key is not set.
pub const DEFAULT_ARCHIVE: &str = "/srv/wal_archive";

/// A word for the shell PostgreSQL runs archive_cleanup_command with: as it
/// is when it is plain, else in single quotes.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// archive_cleanup_command for the archive named by `site_policy_wal_archive`.
fn cleanup_command() -> Result<String, PluginError> {
    let archive = pgclone_plugin_sdk::host::config_get(ARCHIVE_KEY)?
        .unwrap_or_else(|| DEFAULT_ARCHIVE.to_string());
    if archive.trim().is_empty() || archive.chars().any(char::is_control) {
        return Err(PluginError::new(
            ErrorKind::InvalidConfig,
            format!("site policy: {ARCHIVE_KEY} must name the WAL archive"),
        )
        .detail(format!("{ARCHIVE_KEY} is {archive:?}"))
        .hint(format!(
            "set {ARCHIVE_KEY} to the archive's directory, or remove it for {DEFAULT_ARCHIVE}"
        )));
    }
    Ok(format!("pg_archivecleanup {} %r", shell_word(&archive)))
}

pub struct SitePolicy;

impl Guest for SitePolicy {
    fn describe() -> PluginInfo {
        pgclone_plugin_sdk::describe(MANIFEST)
    }

    fn recovery_settings(
        facts: RecoveryFacts,
        mut config: RecoveryConfig,
    ) -> Result<RecoveryConfig, PluginError> {
        for s in config
            .settings
            .iter_mut()
            .filter(|s| s.name == "primary_conninfo")
        {
            let mut params = conninfo::parse(&s.value).map_err(|e| {
                PluginError::new(ErrorKind::InvalidConfig, "cannot read primary_conninfo").detail(e)
            })?;
            if conninfo::get(&params, "sslmode") != Some("verify-full") {
                return Err(PluginError::new(
                    ErrorKind::InvalidConfig,
                    "site policy: the standby must connect with sslmode=verify-full",
                )
                .detail(format!(
                    "primary_conninfo has sslmode={}",
                    conninfo::get(&params, "sslmode").unwrap_or("(not set)")
                ))
                .hint(
                    "clone with --upstream-conninfo 'host=... sslmode=verify-full sslrootcert=...'",
                ));
            }
            conninfo::remove(&mut params, "password");
            s.value = conninfo::render(&params);
        }
        if pattern::matches(DELAYED_NODES, &facts.node_name) {
            policy::set(&mut config, "recovery_min_apply_delay", DELAY);
        }
        policy::set(&mut config, "archive_cleanup_command", &cleanup_command()?);
        Ok(config)
    }
}

pgclone_plugin_sdk::export_policy!(SitePolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use pgclone_plugin_sdk::testing::{self, param, FakeHost};

    const CLEANUP: &str = "pg_archivecleanup /srv/wal_archive %r";

    fn facts(node: &str, sslmode: Option<&str>) -> RecoveryFacts {
        let mut f = testing::facts(150000);
        f.node_name = node.into();
        f.password = Some("secret".into());
        if let Some(m) = sslmode {
            f.upstream.push(param("sslmode", m));
        }
        f
    }

    #[test]
    fn refuses_anything_but_verify_full() {
        for mode in [None, Some("require"), Some("verify-ca")] {
            let e =
                testing::chain(&facts("node2", mode), SitePolicy::recovery_settings).unwrap_err();
            assert!(e.message.contains("verify-full"), "{e:?}");
        }
    }

    #[test]
    fn strips_the_password_and_delays_dr_nodes_only() {
        let c = testing::chain(
            &facts("dr-1", Some("verify-full")),
            SitePolicy::recovery_settings,
        )
        .unwrap();
        let pc = testing::setting(&c, "primary_conninfo").unwrap();
        assert!(
            pc.contains("sslmode=verify-full") && !pc.contains("secret"),
            "{pc}"
        );
        assert_eq!(
            testing::setting(&c, "recovery_min_apply_delay"),
            Some(DELAY)
        );
        assert_eq!(
            testing::setting(&c, "archive_cleanup_command"),
            Some(CLEANUP)
        );
        let c = testing::chain(
            &facts("node2", Some("verify-full")),
            SitePolicy::recovery_settings,
        )
        .unwrap();
        assert_eq!(testing::setting(&c, "recovery_min_apply_delay"), None);
    }

    #[test]
    fn an_operator_delay_is_replaced_not_set_twice() {
        let mut f = facts("dr-1", Some("verify-full"));
        f.recovery_min_apply_delay = Some("5min".into());
        f.archive_cleanup_command = Some("true".into());
        let c = testing::chain(&f, SitePolicy::recovery_settings).unwrap();
        for name in ["recovery_min_apply_delay", "archive_cleanup_command"] {
            assert_eq!(
                c.settings.iter().filter(|s| s.name == name).count(),
                1,
                "{name}"
            );
        }
        assert_eq!(
            testing::setting(&c, "recovery_min_apply_delay"),
            Some(DELAY)
        );
    }

    #[test]
    fn the_archive_to_clean_is_a_setting() {
        let f = facts("node2", Some("verify-full"));
        let run = |host: FakeHost| {
            testing::with_host(host, || {
                testing::chain(&f, SitePolicy::recovery_settings)
                    .map(|c| testing::setting(&c, "archive_cleanup_command").map(str::to_string))
            })
            .0
        };
        assert_eq!(
            run(FakeHost::new()).unwrap().as_deref(),
            Some("pg_archivecleanup /srv/wal_archive %r")
        );
        assert_eq!(
            run(FakeHost::new().config(ARCHIVE_KEY, "/mnt/nfs/wal"))
                .unwrap()
                .as_deref(),
            Some("pg_archivecleanup /mnt/nfs/wal %r")
        );
        // A word the shell would split or expand is quoted.
        assert_eq!(
            run(FakeHost::new().config(ARCHIVE_KEY, "/srv/it's wal"))
                .unwrap()
                .as_deref(),
            Some("pg_archivecleanup '/srv/it'\\''s wal' %r")
        );
        let e = run(FakeHost::new().config(ARCHIVE_KEY, " ")).unwrap_err();
        assert!(e.message.contains(ARCHIVE_KEY), "{e:?}");
    }

    #[test]
    fn the_manifest_describes_it() {
        assert_eq!(SitePolicy::describe().name, "site-policy");
    }
}
