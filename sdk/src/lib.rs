//! The pgclone plugin SDK: everything a backup source or a recovery policy
//! needs, so that a plugin is a small crate that never copies the WIT.
//!
//! ```ignore
//! use pgclone_plugin_sdk::policy::{Guest, RecoveryConfig, RecoveryFacts};
//! use pgclone_plugin_sdk::{manifest, PluginError, PluginInfo};
//!
//! manifest! {
//!     name: "site-policy",
//!     version: env!("CARGO_PKG_VERSION"),
//!     vendor: "Example Corp",
//!     license: "Apache-2.0",
//!     description: "Our standby rules",
//!     provides: [],
//!     needs_upstream: false,
//!     capabilities: [],
//! }
//!
//! struct SitePolicy;
//! impl Guest for SitePolicy {
//!     fn describe() -> PluginInfo { pgclone_plugin_sdk::describe(MANIFEST) }
//!     fn recovery_settings(facts: RecoveryFacts, previous: RecoveryConfig)
//!         -> Result<RecoveryConfig, PluginError> { Ok(previous) }
//! }
//! pgclone_plugin_sdk::export_policy!(SitePolicy);
//! ```
//!
//! - [`source`] and [`policy`]: the two worlds' export traits and types;
//!   [`export_source!`] and [`export_policy!`] register an implementation.
//! - [`manifest!`]: the plugin's identity, stored in the component so that an
//!   operator can read it without running the plugin; [`describe`] returns it.
//! - [`host`]: the calls a plugin may make (each needs a granted capability);
//!   natively they are served by [`testing::FakeHost`].
//! - [`conninfo`], [`version`], [`error`]: helpers every plugin needs.
//! - [`standard`]: pgclone's standard recovery policy, so a site policy can
//!   test itself chained after it.
//! - [`testing`]: builders and a fake host for native `cargo test`.

// The generated bindings name the runtime through this crate's own path, so
// that plugins need no direct wit-bindgen dependency.
extern crate self as pgclone_plugin_sdk;

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

#[doc(hidden)]
pub mod bindings {
    pub mod source {
        wit_bindgen::generate!({
            world: "backup-source",
            path: "../wit",
            runtime_path: "::pgclone_plugin_sdk::__private::wit_bindgen::rt",
            pub_export_macro: true,
            export_macro_name: "export_source",
            default_bindings_module: "::pgclone_plugin_sdk::bindings::source",
            additional_derives: [PartialEq],
        });
    }
    pub mod policy {
        wit_bindgen::generate!({
            world: "recovery-policy",
            path: "../wit",
            runtime_path: "::pgclone_plugin_sdk::__private::wit_bindgen::rt",
            pub_export_macro: true,
            export_macro_name: "export_policy",
            default_bindings_module: "::pgclone_plugin_sdk::bindings::policy",
            additional_derives: [PartialEq],
            with: {
                "pgclone:plugin/types@1.3.0": crate::bindings::source::pgclone::plugin::types,
                "pgclone:plugin/host@1.3.0": crate::bindings::source::pgclone::plugin::host,
            },
        });
    }
}

/// The types shared by every plugin and the host (`pgclone:plugin/types`).
pub mod types {
    pub use crate::bindings::source::pgclone::plugin::types::*;
}

/// A backup source: implement [`source::Guest`] and register it with
/// [`export_source!`](crate::export_source).
pub mod source {
    pub use crate::bindings::source::exports::pgclone::plugin::source::Guest;
    pub use crate::types::*;
}

/// A recovery policy: implement [`policy::Guest`] and register it with
/// [`export_policy!`](crate::export_policy).
pub mod policy {
    pub use crate::bindings::policy::exports::pgclone::plugin::policy::{
        Guest, RecoveryConfig, RecoveryFacts, Setting, SettingsFile, SignalFile,
    };
    pub use crate::types::*;

    /// Sets `name` to `value`: replaces the setting when an earlier policy
    /// already set it (the standard policy sets `restore_command`,
    /// `archive_cleanup_command`, `recovery_min_apply_delay`,
    /// `primary_slot_name` from the configuration), appends it otherwise.
    /// A name set twice makes the host refuse the whole configuration.
    pub fn set(config: &mut RecoveryConfig, name: &str, value: &str) {
        match config.settings.iter_mut().find(|s| s.name == name) {
            Some(s) => s.value = value.to_string(),
            None => config.settings.push(Setting {
                name: name.to_string(),
                value: value.to_string(),
            }),
        }
    }

    /// The value of setting `name`, if set.
    pub fn get<'a>(config: &'a RecoveryConfig, name: &str) -> Option<&'a str> {
        config
            .settings
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value.as_str())
    }

    /// Removes setting `name`; true when it was set.
    pub fn remove(config: &mut RecoveryConfig, name: &str) -> bool {
        let before = config.settings.len();
        config.settings.retain(|s| s.name != name);
        config.settings.len() != before
    }
}

pub mod conninfo;
pub mod error;
pub mod host;
pub mod manifest;
pub mod pattern;
pub mod standard;
pub mod testing;
pub mod version;

/// Registers `Type`, an implementation of [`source::Guest`], as the component's
/// exports. The exports exist in a wasm32 build only: natively (unit tests, a
/// workspace build) there is no component, and a native library could not
/// carry the exports' names (`pgclone:plugin/source@1.3.0#check`: the system
/// linker's symbol list has no syntax for them).
#[macro_export]
macro_rules! export_source {
    ($ty:ident $($rest:tt)*) => {
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::source::export_source!($ty $($rest)*);
        // Natively only the tests call the implementation: name each export,
        // so that it and what it calls count as used.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::source::Guest>::describe;
            let _ = <$ty as $crate::source::Guest>::check;
            let _ = <$ty as $crate::source::Guest>::plan_clone;
            let _ = <$ty as $crate::source::Guest>::locate_wal;
            let _ = <$ty as $crate::source::Guest>::locate_wal_archive;
        };
    };
}

/// Registers `Type`, an implementation of [`policy::Guest`], as the
/// component's exports; in a wasm32 build only, as [`export_source!`].
#[macro_export]
macro_rules! export_policy {
    ($ty:ident $($rest:tt)*) => {
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::policy::export_policy!($ty $($rest)*);
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::policy::Guest>::describe;
            let _ = <$ty as $crate::policy::Guest>::recovery_settings;
        };
    };
}

pub use error::ErrorExt;
pub use manifest::describe;
pub use types::{ErrorKind, PluginError, PluginInfo};

/// The property tests' configuration and mutations, shared with the host.
#[cfg(test)]
#[path = "../../contract/src/fuzz.rs"]
mod fuzz;
