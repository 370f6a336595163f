//! How a plugin's misbehaviour reaches the operator: one error that names the
//! plugin, the call and, where one was involved, the capability. It is the
//! error of the host's traits ([`super::BackupSource`],
//! [`super::RecoveryPolicy`]), so code that takes a trait object can fail the
//! way a real plugin does without WebAssembly (`plugin/error.rs` converts the
//! contract's `plugin-error` into [`PluginError`]).

use std::fmt;

use super::capability::{Capability, Refusal};

/// The class of an error a plugin returned; the host chooses its wording and
/// exit status from it (the contract's `error-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidConfig,
    Unreachable,
    AuthFailed,
    NotFound,
    InvalidBackup,
    Unsupported,
    Denied,
    Failed,
    Internal,
}

/// An error a plugin returned, in the style of PostgreSQL's tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub kind: ErrorKind,
    /// One line, no trailing period.
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

/// A plugin failed, misbehaved, or was refused.
#[derive(Debug)]
pub enum PluginFailure {
    /// The plugin cannot be used at all (not pinned, changed, wrong contract,
    /// not a component, not granted).
    Refused {
        plugin: String,
        reason: String,
        detail: Option<String>,
        hint: Option<String>,
    },
    /// A call ran out of its own time (code and WASI waits), wall clock.
    Timeout {
        plugin: String,
        call: &'static str,
        limit_ms: u128,
    },
    /// A call tried to grow memory past the limit.
    Memory {
        plugin: String,
        call: &'static str,
        limit_mib: usize,
    },
    /// A call trapped (panic, unreachable, stack overflow, ...).
    Trap {
        plugin: String,
        call: &'static str,
        trap: String,
    },
    /// A call used a capability that was not declared or not granted.
    Denied {
        plugin: String,
        call: &'static str,
        function: &'static str,
        capability: Capability,
        refusal: Refusal,
    },
    /// A call returned something the host cannot accept.
    Malformed {
        plugin: String,
        call: &'static str,
        problem: String,
    },
    /// The plugin returned an error of its own.
    Returned {
        plugin: String,
        call: &'static str,
        error: PluginError,
    },
}

impl PluginFailure {
    /// The failure as pgclone reports it (ERROR, DETAIL, HINT), with what
    /// the plugin said escaped.
    pub fn into_failure(self) -> crate::report::Failure {
        let (message, detail, hint) = self.parts();
        crate::report::Failure {
            message,
            detail,
            hint,
        }
    }

    /// True when the plugin could not reach what it asks: a host that does
    /// not answer or refuses the login, a program that failed, a call that
    /// ran out of time. (A wrong configuration or a refused plugin is not.)
    pub fn is_remote_failure(&self) -> bool {
        matches!(self, PluginFailure::Timeout { .. })
            || matches!(
                self.returned_kind(),
                Some(ErrorKind::Unreachable | ErrorKind::AuthFailed | ErrorKind::Failed)
            )
    }

    /// The plugin's own error kind, when it returned one.
    pub fn returned_kind(&self) -> Option<ErrorKind> {
        match self {
            PluginFailure::Returned { error, .. } => Some(error.kind),
            _ => None,
        }
    }

    /// The message, DETAIL and HINT, with what the plugin said escaped: a
    /// plugin's text never reaches a terminal raw, and cannot add lines that
    /// pass for pgclone's own (DETAIL and HINT keep their lines, indented).
    fn parts(&self) -> (String, Option<String>, Option<String>) {
        use crate::report::{escape, escape_block};
        let (message, detail, hint) = self.raw_parts();
        (
            escape(&message).into_owned(),
            detail.map(|d| escape_block(&d)),
            hint.map(|h| escape_block(&h)),
        )
    }

    fn raw_parts(&self) -> (String, Option<String>, Option<String>) {
        match self {
            PluginFailure::Refused {
                plugin,
                reason,
                detail,
                hint,
            } => (
                format!("plugin \"{plugin}\" was refused: {reason}"),
                detail.clone(),
                hint.clone(),
            ),
            PluginFailure::Timeout {
                plugin,
                call,
                limit_ms,
            } => (
                format!("plugin \"{plugin}\" exceeded its time limit of {limit_ms} ms in {call}()"),
                Some(
                    "the call was interrupted; its own time counts (its code and its waits, a sleep \
                     included); programs it runs are limited apart, by plugin_program_timeout"
                        .into(),
                ),
                Some(format!(
                    "raise timeout_ms in [plugin.{plugin}] of plugins.toml if the plugin needs more time"
                )),
            ),
            PluginFailure::Memory {
                plugin,
                call,
                limit_mib,
            } => (
                format!("plugin \"{plugin}\" exceeded its memory limit of {limit_mib} MiB in {call}()"),
                None,
                Some(format!(
                    "raise memory_mib in [plugin.{plugin}] of plugins.toml if the plugin needs more memory"
                )),
            ),
            PluginFailure::Trap { plugin, call, trap } => (
                format!("plugin \"{plugin}\" crashed in {call}()"),
                Some(trap.clone()),
                Some("this is a bug in the plugin; report it to its vendor".into()),
            ),
            PluginFailure::Denied {
                plugin,
                call,
                function,
                capability,
                refusal,
            } => match refusal {
                Refusal::NotDeclared => (
                    format!(
                        "plugin \"{plugin}\" used capability {capability} in {call}() without declaring it"
                    ),
                    Some(format!("host function {function} was refused")),
                    Some("the plugin is faulty or hostile: it must declare every capability it uses".into()),
                ),
                Refusal::NotGranted => (
                    format!("plugin \"{plugin}\" was denied capability {capability} in {call}()"),
                    Some(format!("host function {function} was refused: not granted")),
                    Some(format!(
                        "if you trust the plugin, grant it in plugins.toml: [plugin.{plugin}] grants = [\"{capability}\"]"
                    )),
                ),
            },
            PluginFailure::Malformed {
                plugin,
                call,
                problem,
            } => (
                format!("plugin \"{plugin}\" gave a malformed answer to {call}()"),
                Some(problem.clone()),
                Some("this is a bug in the plugin; report it to its vendor".into()),
            ),
            PluginFailure::Returned {
                plugin,
                call,
                error,
            } => (
                format!("{} (plugin \"{plugin}\", {call}())", error.message),
                error.detail.clone(),
                error.hint.clone(),
            ),
        }
    }
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (message, detail, hint) = self.parts();
        f.write_str(&message)?;
        if let Some(d) = detail {
            write!(f, "\nDETAIL: {d}")?;
        }
        if let Some(h) = hint {
            write!(f, "\nHINT: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PluginFailure {}
