//! Which source one `wal-restore` serves: a backup source plugin, the
//! configuration its host calls read, the remote hosts it names, and the
//! spool directory its files are kept in.
//!
//! barman-wal-restore's command line (`BARMAN_HOST SERVER %f %p`) selects the
//! first-party Barman plugin and presents it `barman_host`, `barman_server`
//! and `barman_config` from the arguments; `--source NAME` or
//! `backup_source` in the configuration file select any other.

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::archive::{self, Archive};
use super::spool::Spool;
use super::ssh::SshHost;
use super::{exit, problem, Problem};
use crate::config::{ConfFile, PluginsConfig};
use crate::contract::source::{BackupSource, WalLocation};
use crate::environment::HostEnv;
use crate::plugin::{catalog, Plugin, Runtime};
use crate::report::Failure;

/// barman-wal-restore's arguments: where Barman is and which server.
#[derive(Debug, Clone)]
pub struct BarmanArgs {
    /// `user@host`, or a host whose user follows the clone's rule.
    pub dest: String,
    pub port: Option<String>,
    pub server: String,
    /// Barman's configuration file on its host (`-c`).
    pub config: Option<String>,
}

/// The source of one `wal-restore`.
#[derive(Debug, Clone)]
pub struct WalSource {
    /// The backup source plugin's name.
    pub plugin: String,
    /// The node's configuration (what the plugin's host calls read).
    pub config: ConfFile,
    pub plugins: PluginsConfig,
    /// Set for Barman, from the command line or barman_host/barman_server.
    pub barman: Option<BarmanArgs>,
    /// Extra ssh options (`--ssh-option`, else `ssh_options`).
    pub ssh_options: Vec<String>,
    pub connect_timeout: u64,
    /// Seconds one fetch may take before it is stopped.
    pub timeout: u64,
    /// The host calls' environment, made once (it may ask `ssh -G`).
    pub env: std::sync::OnceLock<HostEnv>,
}

/// A plugin failure as wal-restore reports it: the plugin could not reach
/// its host is "unreachable" (3, retried in a targeted recovery); any other
/// is a configuration problem (2).
fn plugin_failure(e: crate::contract::PluginFailure) -> Problem {
    let code = if e.is_remote_failure() {
        exit::UNREACHABLE
    } else {
        exit::USAGE
    };
    problem(code, e.into_failure())
}

fn usage(f: Failure) -> Problem {
    problem(exit::USAGE, f)
}

impl WalSource {
    /// Everything that decides whose files a request gets, in words: the
    /// spool's key is made of it, and its `source` file says it.
    pub fn identity(&self) -> String {
        match &self.barman {
            Some(b) => format!(
                "barman host={} port={} server={} config={} ssh_options={:?}",
                b.dest,
                b.port.as_deref().unwrap_or(""),
                b.server,
                b.config.as_deref().unwrap_or(""),
                self.ssh_options
            ),
            None => {
                // The configuration's values only as a hash: the identity is
                // written into the spool, and a value may be a secret.
                let mut values = Sha256::new();
                for e in self.config.entries() {
                    values.update(format!("{}={:?}\n", e.key, e.value));
                }
                let mut s = format!(
                    "source={} config={} (its entries' sha256 {})",
                    self.plugin,
                    self.config.path.display(),
                    hex::encode(values.finalize())
                );
                for (t, d) in &self.plugins.targets {
                    s.push_str(&format!(" target:{t}={d:?}"));
                }
                for (name, st) in &self.plugins.stores {
                    s.push_str(&format!(
                        " store:{name}={:?},{:?},{:?},{:?}",
                        st.url, st.endpoint_url, st.provider, st.aws_profile
                    ));
                }
                s.push_str(&format!(" ssh_options={:?}", self.ssh_options));
                s
            }
        }
    }

    /// The name of this source's directory in the spool: readable, and a
    /// hash of its identity.
    pub fn key(&self) -> String {
        let (kind, name) = match &self.barman {
            Some(b) => ("barman", b.server.as_str()),
            None => (self.plugin.as_str(), ""),
        };
        let readable: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(16)
            .collect();
        let h = hex::encode(&Sha256::digest(self.identity())[..8]);
        if readable.is_empty() {
            format!("{kind}-{h}")
        } else {
            format!("{kind}-{readable}-{h}")
        }
    }

    /// The source as messages name it.
    pub fn describe(&self) -> String {
        match &self.barman {
            Some(b) => format!("Barman server \"{}\"", b.server),
            None => format!("source \"{}\"", self.plugin),
        }
    }

    /// How ssh reaches the logical `target`, its shared connection in `spool`.
    pub fn host(&self, target: &str, spool: &Spool) -> Result<SshHost, Failure> {
        let (dest, port) = match (&self.barman, target) {
            (Some(b), "barman") => (b.dest.clone(), b.port.clone()),
            _ => {
                let env = self.host_env_for_targets()?;
                let dest = env.ssh_destination(target).ok_or_else(|| {
                    Failure::new(format!(
                        "no ssh destination is configured for target \"{target}\" of {}",
                        self.describe()
                    ))
                    .hint(format!(
                        "set {}_host in the configuration file, or [targets] {target} in plugins.toml",
                        target.replace('-', "_")
                    ))
                })?;
                (dest, None)
            }
        };
        if dest.starts_with('-') {
            return Err(Failure::new(format!(
                "ssh destination \"{dest}\" for target \"{target}\" starts with '-'"
            )));
        }
        Ok(SshHost {
            name: target.to_string(),
            dest,
            resolved: Default::default(),
            port,
            ssh_options: self.ssh_options.clone(),
            control_path: spool.path(&format!("ssh-{target}")),
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
        })
    }

    /// The object store `name`, as the source's configuration sets it.
    pub fn store(&self, name: &str) -> Result<Arc<crate::store::Store>, Failure> {
        self.host_env_for_targets()?.store(name)
    }

    fn host_env_for_targets(&self) -> Result<HostEnv, Failure> {
        if let Some(env) = self.env.get() {
            return Ok(env.clone());
        }
        let env = HostEnv::new(&self.config, &self.plugins).map_err(|e| {
            match e.downcast::<Failure>() {
                Ok(f) => f,
                Err(e) => Failure::new(format!("{e:#}")),
            }
        })?;
        Ok(self.env.get_or_init(|| env).clone())
    }

    /// The plugin's candidate: first-party, or pinned in plugins.toml.
    fn candidate(&self) -> Result<catalog::Candidate, Failure> {
        catalog::candidates(&self.plugins)
            .into_iter()
            .find(|c| c.name == self.plugin)
            .ok_or_else(|| {
                Failure::new(format!("plugin \"{}\" is not configured", self.plugin)).hint(format!(
                    "install it with `{}`, or check backup_source and --source",
                    crate::invocation::command("plugin install FILE.wasm")
                ))
            })
    }

    /// What a cached answer must match: the plugin (its sha256), its
    /// grants, and what it reads.
    pub fn tag(&self) -> Result<String, Failure> {
        let cand = self.candidate()?;
        let sha = match &cand.pinned {
            Some(p) if !cand.is_embedded() => p.clone(),
            _ => catalog::sha256_hex(&cand.bytes().map_err(|e| {
                Failure::new(format!("cannot read {}", cand.origin)).detail(e.to_string())
            })?),
        };
        let text = format!("{sha} {:?} {}", cand.grants, self.identity());
        Ok(hex::encode(&Sha256::digest(text)[..16]))
    }

    /// The plugin, loaded (compiled components come from the cache) and
    /// checked to be a source of WAL with its capabilities granted, with a
    /// session whose host calls see this source's configuration.
    pub fn open_plugin(&self, spool: &Spool) -> Result<(Plugin, crate::plugin::Session), Problem> {
        let rt = Runtime::new(crate::plugin::cache::default_dir().as_deref())
            .map_err(|e| usage(Failure::new(format!("{e:#}"))))?;
        let plugin =
            Plugin::load(&rt, &self.candidate().map_err(usage)?).map_err(plugin_failure)?;
        if !plugin.provides_wal() {
            return Err(usage(Failure::new(format!(
                "plugin \"{}\" does not supply WAL",
                self.plugin
            ))
            .detail("its plugin-info does not list \"wal\" among what it provides")
            .hint(
                format!("use a source that supplies WAL in restore_command (barman, or one `{}` shows with wal), or give --source", crate::invocation::command("plugin list")),
            )));
        }
        plugin.ensure_granted().map_err(plugin_failure)?;
        let env = self.plugin_env(spool).map_err(usage)?;
        let session = plugin.session(&rt, Arc::new(env)).map_err(plugin_failure)?;
        Ok((plugin, session))
    }

    /// The host calls' environment: the node's configuration, or for
    /// barman-wal-restore's command line one made of its arguments, with
    /// the shared connection when the source has one host.
    fn plugin_env(&self, spool: &Spool) -> Result<HostEnv, Failure> {
        let Some(b) = &self.barman else {
            return self.host_env_for_targets();
        };
        let mut config = ConfFile::default();
        config.path = PathBuf::from("(wal-restore arguments)");
        config.set("barman_host", &b.dest);
        config.set("barman_server", &b.server);
        if let Some(c) = &b.config {
            config.set("barman_config", c);
        }
        let host = self.host("barman", spool)?;
        let mut ssh_options = Vec::new();
        if let Some(p) = &b.port {
            ssh_options.extend(["-p".to_string(), p.clone()]);
        }
        ssh_options.extend(self.ssh_options.iter().cloned());
        let connect = u32::try_from(self.connect_timeout.max(1)).unwrap_or(u32::MAX);
        ssh_options.extend(crate::remote::liveness_options(connect));
        let control_paths = match host.ensure_master() {
            Ok(()) => [("barman".to_string(), host.control_path.clone())].into(),
            Err(_) => Default::default(),
        };
        Ok(HostEnv {
            config,
            targets: [("barman".to_string(), host.target().to_string())].into(),
            ssh_options,
            control_paths,
            no_programs: false,
            program_timeout: Some(std::time::Duration::from_secs(self.timeout.max(1))),
            ssh_connect_timeout: connect,
            stores: Default::default(),
        })
    }

    /// How this source's WAL is fetched: cached in the spool while fresh,
    /// else asked of the plugin (`locate-wal-archive`) and checked.
    pub fn archive(&self, spool: &Spool, fresh: bool) -> Result<Archive, Problem> {
        let tag = self.tag().map_err(usage)?;
        if !fresh {
            if let Some(a) = archive::cached(spool, &tag) {
                return Ok(a);
            }
        }
        let (plugin, mut session) = self.open_plugin(spool)?;
        let answer = session.wal_archive().map_err(plugin_failure)?;
        let a = archive::from_plugin(&plugin.name, &plugin.caps, answer).map_err(plugin_failure)?;
        archive::remember(spool, &tag, &a);
        Ok(a)
    }

    /// Asks the plugin where one file is (`locate-wal`), for a source that
    /// describes no rule.
    pub fn locate(&self, spool: &Spool, name: &str) -> Result<Located, Problem> {
        let (plugin, mut session) = self.open_plugin(spool)?;
        let where_ = session.wal_location(name).map_err(plugin_failure)?;
        let allow = |target: &str, program: &str| {
            let cap = crate::contract::Capability::RemoteRun {
                target: target.into(),
                program: program.into(),
            };
            plugin.caps.check(&cap).map_err(|refusal| {
                plugin_failure(crate::contract::PluginFailure::Denied {
                    plugin: plugin.name.clone(),
                    call: "locate-wal",
                    function: "locate-wal",
                    capability: cap,
                    refusal,
                })
            })
        };
        match where_ {
            WalLocation::RemoteFile(f) => {
                if !f.path.starts_with('/') || f.path.chars().any(char::is_control) {
                    return Err(usage(Failure::new(format!(
                        "plugin \"{}\" located {name} at \"{}\", not a plain absolute path",
                        plugin.name,
                        f.path.escape_debug()
                    ))));
                }
                allow(&f.target, "cat")?;
                Ok(Located::Remote {
                    target: f.target,
                    argv: vec!["cat".into(), f.path],
                })
            }
            WalLocation::RemoteCommand(c) => {
                let Some(program) = c.argv.first() else {
                    return Err(usage(Failure::new(format!(
                        "plugin \"{}\" located {name} with an empty command",
                        plugin.name
                    ))));
                };
                allow(&c.target, program)?;
                Ok(Located::Remote {
                    target: c.target,
                    argv: c.argv,
                })
            }
            WalLocation::Unavailable => Ok(Located::Nowhere),
        }
    }
}

/// Where `locate-wal` says one file is.
#[derive(Debug)]
pub enum Located {
    /// A remote program that writes it to its standard output (`cat PATH`
    /// for a file).
    Remote { target: String, argv: Vec<String> },
    /// The source has no WAL.
    Nowhere,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(conf: &str) -> WalSource {
        WalSource {
            plugin: "pgbackrest".into(),
            config: ConfFile::parse(std::path::Path::new("/etc/node.conf"), conf).unwrap(),
            plugins: PluginsConfig::default(),
            barman: None,
            ssh_options: Vec::new(),
            connect_timeout: 10,
            timeout: 120,
            env: Default::default(),
        }
    }

    #[test]
    fn a_source_s_key_follows_its_configuration_and_never_shows_its_values() {
        let a = source("pgbackrest_stanza=main\nconninfo='host=x password=s3cret'\n");
        let b = source("pgbackrest_stanza=other\nconninfo='host=x password=s3cret'\n");
        assert!(!a.identity().contains("s3cret"), "{}", a.identity());
        assert!(a.key().starts_with("pgbackrest-"), "{}", a.key());
        assert_ne!(a.key(), b.key());
        assert_eq!(
            a.key(),
            source("pgbackrest_stanza=main\nconninfo='host=x password=s3cret'\n").key()
        );
        assert_eq!(a.describe(), "source \"pgbackrest\"");
    }
}
