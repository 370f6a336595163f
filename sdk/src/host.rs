//! What a plugin may ask of the host. Every call except [`log`] needs a
//! capability the plugin declares in its manifest *and* the operator grants;
//! a refused call returns an error of kind `denied`.
//!
//! In a wasm build these call pgclone; in a native build (`cargo test`) they
//! are answered by the [`FakeHost`](crate::testing::FakeHost) installed with
//! [`testing::with_host`](crate::testing::with_host).

use crate::types::{CommandOutput, LogLevel, PluginError, StoreListing};

#[cfg(target_arch = "wasm32")]
use crate::bindings::source::pgclone::plugin::host as imported;

/// Writes a line to pgclone's log (standard error). Always allowed.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    imported::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::fake(|h| h.logged.push((level, message.to_string())));
}

/// Runs `argv[0]` on the remote host the operator maps to `target`, over ssh;
/// each argument arrives as one literal argument. Needs
/// `remote-run:TARGET:PROGRAM`.
pub fn run_remote(target: &str, argv: &[String]) -> Result<CommandOutput, PluginError> {
    #[cfg(target_arch = "wasm32")]
    return imported::run_remote(target, argv);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::fake(|h| h.run(Some(target), argv))
}

/// Runs a local program (found through `pg_bindir` or `PATH`), without a
/// shell. Needs `local-run:PROGRAM`.
pub fn run_local(program: &str, args: &[String]) -> Result<CommandOutput, PluginError> {
    #[cfg(target_arch = "wasm32")]
    return imported::run_local(program, args);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::fake(|h| {
        let argv: Vec<String> = std::iter::once(program.to_string())
            .chain(args.iter().cloned())
            .collect();
        h.run(None, &argv)
    })
}

/// The value of a configuration key (the last one when repeated). Needs
/// `read-config:KEY`.
pub fn config_get(key: &str) -> Result<Option<String>, PluginError> {
    #[cfg(target_arch = "wasm32")]
    return imported::config_get(key);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::fake(|h| h.config_values(key).map(|v| v.last().cloned()))
}

/// Every value of a repeatable key (e.g. `tablespace_mapping`), in file
/// order. Needs `read-config:KEY`.
pub fn config_get_all(key: &str) -> Result<Vec<String>, PluginError> {
    #[cfg(target_arch = "wasm32")]
    return imported::config_get_all(key);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::fake(|h| h.config_values(key))
}

/// The objects of `store` whose keys (relative to the store's root) start
/// with `prefix`, in key order; with `delimited`, only those directly under
/// `prefix` and the "directories" one level below it (ending in `/`). More
/// than 10,000 objects is an error. Needs `store-read:STORE[:P]` with
/// `prefix` under `P`.
pub fn store_list(store: &str, prefix: &str, delimited: bool) -> Result<StoreListing, PluginError> {
    #[cfg(target_arch = "wasm32")]
    return imported::store_list(store, prefix, delimited);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::fake(|h| h.list(store, prefix, delimited))
}

/// The whole content of one small object of `store` (at most `max_bytes`
/// and 1 MiB: a larger object is an error, never a cut); a missing object is
/// a `not-found` error. Needs `store-read:STORE[:P]` with `key` under `P`.
pub fn store_read(store: &str, key: &str, max_bytes: u32) -> Result<Vec<u8>, PluginError> {
    #[cfg(target_arch = "wasm32")]
    return imported::store_read(store, key, max_bytes);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::fake(|h| h.read(store, key, max_bytes))
}

/// A configuration key that must be set: an `invalid-config` error naming it
/// otherwise.
pub fn config_require(key: &str) -> Result<String, PluginError> {
    use crate::error::ErrorExt;
    config_get(key)?.filter(|v| !v.is_empty()).ok_or_else(|| {
        PluginError::new(
            crate::types::ErrorKind::InvalidConfig,
            format!("{key} is not set"),
        )
        .hint(format!("set {key} in pgclone's configuration file"))
    })
}

/// Runs a local program and returns its standard output as text when it
/// exits with status 0; otherwise a `failed` error carrying its stderr.
pub fn run_local_ok(program: &str, args: &[String]) -> Result<String, PluginError> {
    use crate::error::ErrorExt;
    let out = run_local(program, args)?;
    if out.status == Some(0) {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let how = match out.status {
        Some(s) => format!("exited with status {s}"),
        None => "was killed by a signal".into(),
    };
    Err(
        PluginError::new(crate::types::ErrorKind::Failed, format!("{program} {how}"))
            .detail(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    )
}
