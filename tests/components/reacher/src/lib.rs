//! Test component: a barman-cloud-like source granted only
//! `store-read:barman-cloud:pg/` that reaches outside it. `check` makes the
//! store call its `--backup-id` names (`list-dotdot`, `read-absolute`, ...)
//! and passes the host's answer on; `plan-clone` plans an `unpack-objects`
//! step of a key outside the grant; `locate-wal-archive` names a WAL prefix
//! outside it. The host must refuse every one before any request.

use pgclone_plugin_sdk::source::*;
use pgclone_plugin_sdk::{host, testing, PluginInfo};

pgclone_plugin_sdk::manifest! {
    name: "test-reacher",
    version: "0.0.1",
    vendor: "pgclone tests",
    license: "Apache-2.0",
    description: "store calls outside the granted prefix",
    provides: ["base-backup", "wal"],
    needs_upstream: false,
    capabilities: ["store-read:barman-cloud:pg/"],
}

struct Reacher;

const STORE: &str = "barman-cloud";

fn listed(l: StoreListing) -> String {
    format!("{} objects, {} prefixes", l.objects.len(), l.prefixes.len())
}

/// The store call `case` names; what it returned, for the positive cases.
fn reach(case: &str) -> Result<String, PluginError> {
    Ok(match case {
        // Inside the grant: answered.
        "list-ok" => listed(host::store_list(STORE, "pg/", true)?),
        "read-ok" => format!(
            "{} bytes",
            host::store_read(STORE, "pg/marker", 1024)?.len()
        ),
        // Outside it.
        "list-dotdot" => listed(host::store_list(STORE, "pg/../other/", true)?),
        "list-other" => listed(host::store_list(STORE, "other/", true)?),
        "list-root" => listed(host::store_list(STORE, "", true)?),
        "list-sibling" => listed(host::store_list(STORE, "pg-other/", false)?),
        "read-dotdot" => format!(
            "{} bytes",
            host::store_read(STORE, "pg/../other/marker", 1024)?.len()
        ),
        "read-absolute" => format!(
            "{} bytes",
            host::store_read(STORE, "/pg/marker", 1024)?.len()
        ),
        "read-other" => format!(
            "{} bytes",
            host::store_read(STORE, "other/marker", 1024)?.len()
        ),
        "other-store" => listed(host::store_list("other-store", "pg/", true)?),
        _ => String::new(),
    })
}

impl Guest for Reacher {
    fn describe() -> PluginInfo {
        pgclone_plugin_sdk::describe(MANIFEST)
    }

    fn check(request: CloneRequest) -> Result<BackupDescription, PluginError> {
        let case = request.backup_id.unwrap_or_default();
        let got = reach(&case)?;
        let mut b = testing::backup(&case);
        // What an allowed call returned, for the test to see.
        b.end_wal = got;
        Ok(b)
    }

    fn plan_clone(
        _r: CloneRequest,
        backup: BackupDescription,
    ) -> Result<Vec<PlanStep>, PluginError> {
        let key = match backup.id.as_str() {
            "unpack-dotdot" => "pg/../other/base/1/data.tar.gz",
            "unpack-other" => "other/base/1/data.tar.gz",
            // Inside the grant (a dry run reads no more than its size).
            _ => "pg/marker",
        };
        Ok(vec![PlanStep::UnpackObjects(UnpackObjectsStep {
            store: STORE.into(),
            objects: vec![key.into()],
            parts: ObjectParts::Separate,
            compression: Some(ArchiveCompression::Gzip),
            local: LocalPath {
                root: PathRoot::DataDirectory,
                path: String::new(),
            },
            size_bytes: 0,
        })])
    }

    fn locate_wal(_name: String) -> Result<WalLocation, PluginError> {
        Ok(WalLocation::Unavailable)
    }

    /// Another cluster's WAL, outside the grant.
    fn locate_wal_archive() -> Result<WalArchive, PluginError> {
        Ok(WalArchive {
            directory: None,
            fetch: None,
            store: Some(WalStore {
                store: STORE.into(),
                prefix: "other/wals/".into(),
                layout: WalLayout::ByLog,
                suffixes: vec![WalSuffix {
                    suffix: String::new(),
                    compression: None,
                }],
            }),
        })
    }
}

pgclone_plugin_sdk::export_source!(Reacher);
