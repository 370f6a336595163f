//! Where plugins come from: the first-party plugins embedded in the binary, and
//! the site and vendor plugins pinned in `plugins.toml`.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::config::PluginsConfig;
use crate::contract::capability::Capability;

/// Where host/build.rs built the embedded plugins (`pgclone_source_barman.wasm`, ...).
pub const GUEST_DIR: &str = env!("PGCLONE_GUEST_DIR");

macro_rules! guest {
    ($file:literal) => {
        include_bytes!(concat!(env!("PGCLONE_GUEST_DIR"), "/", $file))
    };
}

/// The first-party plugins, shipped inside the binary.
const EMBEDDED: &[(&str, &[u8])] = &[
    (
        "recovery-standard",
        guest!("pgclone_recovery_standard.wasm"),
    ),
    ("pg-basebackup", guest!("pgclone_source_pg_basebackup.wasm")),
    ("barman", guest!("pgclone_source_barman.wasm")),
    // Its default grants are what it declares: store-read:barman-cloud,
    // read-config:barman_cloud_server.
    ("barman-cloud", guest!("pgclone_source_barman_cloud.wasm")),
];

/// How messages name a first-party source (`Barman`); a site's or vendor's
/// is named by its plugin name (`backup source "pgbackrest"`).
pub fn display_name(name: &str) -> Option<&'static str> {
    match name {
        "barman" => Some("Barman"),
        "barman-cloud" => Some("barman-cloud"),
        "pg-basebackup" => Some("pg_basebackup"),
        _ => None,
    }
}

/// Where a plugin's component came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Shipped inside the `pgclone` binary.
    Embedded,
    /// A file named in `plugins.toml`.
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Embedded => f.write_str("built in"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A plugin the host knows about, before it is loaded.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The name it is known by (embedded name or `[plugin.NAME]`).
    pub name: String,
    pub origin: Origin,
    /// The pinned sha256 (embedded plugins are pinned by the binary itself).
    pub pinned: Option<String>,
    /// Operator grants; `None` means the defaults (for embedded plugins: what
    /// they declare; for others: nothing).
    pub grants: Option<Vec<Capability>>,
    pub timeout_ms: u64,
    pub memory_mib: u64,
    /// Named by plugins.toml: the file (and its directory) must be trusted
    /// (see [`crate::trust`]). A file given on the command line to be
    /// checked, tested or installed is judged by its contents alone.
    pub configured: bool,
    embedded: Option<&'static [u8]>,
}

/// Default guest time per call.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Default linear memory per plugin.
pub const DEFAULT_MEMORY_MIB: u64 = 64;

impl Candidate {
    /// A candidate for a component file, as `plugin check` and tests use it.
    pub fn from_file(name: &str, path: PathBuf, pinned: Option<String>) -> Self {
        Candidate {
            name: name.to_string(),
            origin: Origin::File(path),
            pinned,
            grants: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            memory_mib: DEFAULT_MEMORY_MIB,
            configured: false,
            embedded: None,
        }
    }

    /// The component's bytes.
    pub fn bytes(&self) -> std::io::Result<Cow<'static, [u8]>> {
        match (&self.origin, self.embedded) {
            (_, Some(b)) => Ok(Cow::Borrowed(b)),
            (Origin::File(p), None) => std::fs::read(p).map(Cow::Owned),
            (Origin::Embedded, None) => unreachable!("embedded plugin without bytes"),
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.origin == Origin::Embedded
    }
}

/// True for the name of a plugin shipped inside the binary.
pub fn is_builtin(name: &str) -> bool {
    EMBEDDED.iter().any(|(n, _)| *n == name)
}

/// The name a plugin is known by, for a name as given: a first-party
/// plugin's directory in the source tree names it too (`source-barman` is
/// `barman`, `source-pg-basebackup` is `pg-basebackup`).
pub fn canonical(name: &str) -> &str {
    match name.strip_prefix("source-") {
        Some(rest) if is_builtin(rest) => rest,
        _ => name,
    }
}

/// The hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every plugin the configuration knows: embedded ones first, then configured.
pub fn candidates(cfg: &PluginsConfig) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = EMBEDDED
        .iter()
        .map(|(name, bytes)| {
            let entry = cfg.plugin.get(*name);
            Candidate {
                name: name.to_string(),
                origin: Origin::Embedded,
                pinned: None,
                grants: cfg.grants_for(name),
                timeout_ms: entry
                    .and_then(|e| e.timeout_ms)
                    .unwrap_or(DEFAULT_TIMEOUT_MS),
                memory_mib: entry
                    .and_then(|e| e.memory_mib)
                    .unwrap_or(DEFAULT_MEMORY_MIB),
                configured: false,
                embedded: Some(bytes),
            }
        })
        .collect();
    let dir = cfg.plugin_dir();
    for (name, entry) in &cfg.plugin {
        let Some(file) = &entry.file else { continue };
        let path = match (&dir, file.is_absolute()) {
            (Some(d), false) => d.join(file),
            _ => file.clone(),
        };
        out.retain(|c| c.name != *name);
        out.push(Candidate {
            name: name.clone(),
            origin: Origin::File(path),
            pinned: entry.sha256.as_ref().map(|s| s.to_ascii_lowercase()),
            grants: cfg.grants_for(name),
            timeout_ms: entry.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            memory_mib: entry.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB),
            configured: true,
            embedded: None,
        });
    }
    out
}

/// `.wasm` files in the plugin directory that no `[plugin.*]` section names:
/// they are never loaded, but `plugin list` shows them.
pub fn unpinned_files(cfg: &PluginsConfig) -> Vec<PathBuf> {
    let Some(dir) = cfg.plugin_dir() else {
        return Vec::new();
    };
    let named: Vec<PathBuf> = candidates(cfg)
        .into_iter()
        .filter_map(|c| match c.origin {
            Origin::File(p) => Some(p),
            Origin::Embedded => None,
        })
        .collect();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && !named.contains(p))
        .collect();
    out.sort();
    out
}
