//! The process environment and files that credential chains read, behind a
//! trait so the chains are tested without touching the real ones.

use std::path::{Path, PathBuf};

pub(crate) trait Env {
    /// An environment variable, `None` when unset or empty.
    fn var(&self, key: &str) -> Option<String>;
    /// A file's text, `None` when it cannot be read.
    fn read(&self, path: &Path) -> Option<String>;
    fn home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }
}

/// The real environment.
pub(crate) struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }

    fn read(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

/// Given variables instead of the process's; files read as usual.
pub(crate) struct VarsEnv(pub std::collections::HashMap<String, String>);

impl Env for VarsEnv {
    fn var(&self, key: &str) -> Option<String> {
        self.0.get(key).filter(|v| !v.is_empty()).cloned()
    }

    fn read(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::collections::HashMap;

    /// An environment made of given variables and files.
    #[derive(Default)]
    pub(crate) struct FakeEnv {
        pub vars: HashMap<String, String>,
        pub files: HashMap<PathBuf, String>,
    }

    impl FakeEnv {
        pub fn with(mut self, k: &str, v: &str) -> Self {
            self.vars.insert(k.into(), v.into());
            self
        }

        pub fn file(mut self, p: &str, text: &str) -> Self {
            self.files.insert(p.into(), text.into());
            self
        }
    }

    impl Env for FakeEnv {
        fn var(&self, key: &str) -> Option<String> {
            self.vars.get(key).filter(|v| !v.is_empty()).cloned()
        }

        fn read(&self, path: &Path) -> Option<String> {
            self.files.get(path).cloned()
        }
    }
}
