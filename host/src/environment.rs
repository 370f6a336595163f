//! What host calls see of the outside world: the configuration and where
//! remote targets and local programs are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::ConfFile;
use crate::report::Failure;
use crate::store::{Provider, Store, StoreSpec};

/// The environment plugin host calls run in.
#[derive(Debug, Clone, Default)]
pub struct HostEnv {
    /// The node's configuration (repmgr.conf syntax).
    pub config: ConfFile,
    /// Logical ssh targets from `plugins.toml` `[targets]`.
    pub targets: BTreeMap<String, String>,
    /// Extra ssh options (`ssh_options` in the configuration), already split,
    /// followed by pgclone's connect timeout and liveness options.
    pub ssh_options: Vec<String>,
    /// The shared ssh connections (ControlPath) by logical target: remote
    /// calls to a target go through its own when it exists; without one
    /// they connect directly.
    pub control_paths: BTreeMap<String, PathBuf>,
    /// Answer run-local and run-remote with an `unreachable` error instead of
    /// running anything (`pgclone plugin test`).
    pub no_programs: bool,
    /// How long a program a plugin runs may take before it is killed
    /// (`plugin_program_timeout`, seconds; default [`DEFAULT_PROGRAM_TIMEOUT`]).
    pub program_timeout: Option<Duration>,
    /// Seconds an ssh connection may take to be established.
    pub ssh_connect_timeout: u32,
    /// The object stores plugins may name.
    pub stores: Stores,
}

/// The operator's object stores, by the names plugins use: `[stores.NAME]`
/// in `plugins.toml`, else the configuration keys `NAME_url`,
/// `NAME_endpoint_url`, `NAME_provider`, `NAME_aws_profile` and
/// `NAME_read_timeout` (a `-` in the name written `_`; for the
/// `barman-cloud` store, `barman_cloud_url` and so on). Each is opened once,
/// when first used.
#[derive(Debug, Clone, Default)]
pub struct Stores {
    /// From `plugins.toml`.
    pub configured: BTreeMap<String, crate::config::plugins_toml::StoreEntry>,
    opened: Arc<Mutex<BTreeMap<String, Arc<Store>>>>,
}

/// Seconds a store may be silent (no answer, no bytes of a body) when the
/// configuration says nothing
/// (barman-cloud's `--read-timeout` default).
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(60);

/// Seconds an ssh connection may take to be established (`ssh_connect_timeout`).
pub const DEFAULT_SSH_CONNECT_TIMEOUT: u32 = 10;

/// A program run for a plugin (ssh included) is killed after this long.
pub const DEFAULT_PROGRAM_TIMEOUT: Duration = Duration::from_secs(600);

impl HostEnv {
    /// The environment for `config` and the plugin configuration; splits
    /// `ssh_options` as a shell would (repmgr passes it to ssh the same way).
    pub fn new(
        config: &ConfFile,
        plugins: &crate::config::PluginsConfig,
    ) -> anyhow::Result<HostEnv> {
        let ssh_options = match config.get("ssh_options") {
            Some(o) => shell_words::split(o).map_err(|e| {
                crate::report::Failure::new(format!("invalid ssh_options \"{o}\""))
                    .detail(e.to_string())
            })?,
            None => Vec::new(),
        };
        // Every ssh of a clone gives up on a host that does not answer (a
        // dropped SYN, a server stuck before its banner) within the connect
        // timeout, and on one that stops answering within a minute. After
        // the operator's own options, so that theirs take precedence.
        let connect_timeout = match config.get("ssh_connect_timeout") {
            Some(v) => v.parse::<u32>().ok().filter(|t| *t > 0).ok_or_else(|| {
                crate::report::Failure::new(format!("invalid ssh_connect_timeout \"{v}\""))
                    .hint("a number of seconds greater than 0, e.g. 10")
            })?,
            None => DEFAULT_SSH_CONNECT_TIMEOUT,
        };
        // Every target's TARGET_host is reached as wal-restore reaches it,
        // with the target's customary user (remote::destination); resolved
        // here, once, for the targets that have one (asking `ssh -G`); a
        // [targets] entry is used as written.
        let mut targets = plugins.targets.clone();
        for &(target, _) in crate::remote::CUSTOMARY_USERS {
            let Some(h) = config.get(&host_key(target)).filter(|h| !h.is_empty()) else {
                continue;
            };
            if !targets.contains_key(target) {
                let dest = crate::remote::destination(target, h, None, None, &ssh_options);
                targets.insert(target.into(), dest);
            }
        }
        let mut ssh_options = ssh_options;
        ssh_options.extend(crate::remote::liveness_options(connect_timeout));
        let program_timeout = match config.get("plugin_program_timeout") {
            Some(v) => Some(Duration::from_secs(v.parse().map_err(|_| {
                crate::report::Failure::new(format!("invalid plugin_program_timeout \"{v}\""))
                    .hint("a number of seconds, e.g. 600")
            })?)),
            None => None,
        };
        Ok(HostEnv {
            program_timeout,
            ssh_connect_timeout: connect_timeout,
            config: config.clone(),
            targets,
            ssh_options,
            control_paths: BTreeMap::new(),
            no_programs: false,
            stores: Stores {
                configured: plugins.stores.clone(),
                ..Default::default()
            },
        })
    }

    /// What the operator configured as store `name`, or why it cannot be used.
    pub fn store_spec(&self, name: &str) -> Result<StoreSpec, Failure> {
        // One reading for both places: plugins.toml's section wins.
        let entry = self.stores.configured.get(name);
        let key = |k: &str| match entry {
            Some(_) => format!("[stores.{name}] {k}"),
            None => format!("{}_{k}", name.replace('-', "_")),
        };
        let get = |k: &str| -> Option<String> {
            match entry {
                Some(e) => match k {
                    "url" => Some(e.url.clone()),
                    "endpoint_url" => e.endpoint_url.clone(),
                    "provider" => e.provider.clone(),
                    "aws_profile" => e.aws_profile.clone(),
                    "read_timeout" => e.read_timeout.map(|t| t.to_string()),
                    _ => None,
                },
                None => self.config.get(&key(k)).map(str::to_string),
            }
            .filter(|v| !v.is_empty())
        };
        let Some(url) = get("url") else {
            return Err(Failure::new(format!("no object store is configured as \"{name}\""))
                .hint(format!(
                    "set {} in the configuration file (the URL you give barman-cloud, e.g. s3://bucket/prefix), or add [stores.{name}] to plugins.toml",
                    key("url")
                )));
        };
        let provider = match get("provider") {
            Some(p) => Some(p.parse::<Provider>().map_err(|_| {
                Failure::new(format!("invalid {} \"{p}\"", key("provider")))
                    .hint("one of aws-s3, azure-blob-storage, google-cloud-storage (as barman-cloud names them)")
            })?),
            None => None,
        };
        let timeout = match get("read_timeout") {
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|t| *t > 0)
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    Failure::new(format!("invalid {} \"{v}\"", key("read_timeout")))
                        .hint("a number of seconds greater than 0, e.g. 60")
                })?,
            None => DEFAULT_STORE_TIMEOUT,
        };
        Ok(StoreSpec {
            name: name.to_string(),
            url,
            endpoint_url: get("endpoint_url"),
            provider,
            profile: get("aws_profile"),
            timeout,
        })
    }

    /// Store `name`, opened once (its credentials found as the provider's
    /// tools find them) and shared by every later use.
    pub fn store(&self, name: &str) -> Result<Arc<Store>, Failure> {
        let mut opened = self.stores.opened.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = opened.get(name) {
            return Ok(s.clone());
        }
        let spec = self.store_spec(name)?;
        let store = Arc::new(Store::open(&spec).map_err(|e| {
            let mut f = Failure::new(e.to_string());
            if let Some(d) = &e.detail {
                f = f.detail(d.clone());
            }
            if let Some(h) = &e.hint {
                f = f.hint(h.clone());
            }
            f
        })?);
        opened.insert(name.to_string(), store.clone());
        Ok(store)
    }

    /// The ssh destination of a logical target: `[targets]` first, then the
    /// `TARGET_host` configuration key (so `barman` is `barman_host`).
    pub fn ssh_destination(&self, target: &str) -> Option<String> {
        self.targets
            .get(target)
            .cloned()
            .or_else(|| self.config.get(&host_key(target)).map(str::to_string))
            .filter(|d| !d.is_empty())
    }

    /// The shared connection to `target`, when the clone opened one.
    pub fn control_path(&self, target: &str) -> Option<&Path> {
        self.control_paths.get(target).map(PathBuf::as_path)
    }

    /// Finds a local program: in `pg_bindir` first, then on `PATH`.
    pub fn find_program(&self, program: &str) -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(bindir) = self.config.get("pg_bindir") {
            dirs.push(PathBuf::from(bindir));
        }
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        dirs.into_iter()
            .map(|d| d.join(program))
            .find(|p| is_executable(p))
    }
}

/// The configuration key that names a logical target's host:
/// `TARGET_host`, a `-` in the target's name written `_`.
pub fn host_key(target: &str) -> String {
    format!("{}_host", target.replace('-', "_"))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_plugins_toml_then_config() {
        let mut env = HostEnv {
            config: ConfFile::parse(Path::new("c"), "barman_host=barmansrv\n").unwrap(),
            ..Default::default()
        };
        assert_eq!(env.ssh_destination("barman").as_deref(), Some("barmansrv"));
        assert_eq!(env.ssh_destination("other"), None);
        env.targets.insert("barman".into(), "b@x".into());
        assert_eq!(env.ssh_destination("barman").as_deref(), Some("b@x"));
    }

    #[test]
    fn every_target_has_its_host_key_and_its_own_shared_connection() {
        let mut env = HostEnv {
            config: ConfFile::parse(Path::new("c"), "pgbackrest_repo_host=repo1\n").unwrap(),
            ..Default::default()
        };
        assert_eq!(host_key("pgbackrest-repo"), "pgbackrest_repo_host");
        assert_eq!(
            env.ssh_destination("pgbackrest-repo").as_deref(),
            Some("repo1")
        );
        env.control_paths
            .insert("pgbackrest-repo".into(), PathBuf::from("/s/ssh-master-x"));
        assert_eq!(
            env.control_path("pgbackrest-repo"),
            Some(Path::new("/s/ssh-master-x"))
        );
        assert_eq!(env.control_path("barman"), None);
    }

    #[test]
    fn programs_are_found_on_path() {
        let env = HostEnv::default();
        assert!(env.find_program("sh").is_some());
        assert!(env.find_program("no-such-program-pgclone").is_none());
    }
}
