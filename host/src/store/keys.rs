//! Keys confined under a store's root: every key or prefix a caller gives
//! is checked before any request, so `../other-cluster/x` never leaves the
//! root; keys the store lists come back relative to it.

use super::error::StoreError;
use crate::report::escape;

/// A store key (or a key prefix ending in `/`) as plugins may name it:
/// relative, `/`-separated segments of printable characters other than `\`,
/// none empty (but a final `/`), `.` or `..`; at most 1024 bytes; empty for
/// the root. The same rule as the contract's `capability::is_key` (1.3.0),
/// kept here so the store does not depend on the contract's version.
pub(crate) fn is_key(k: &str) -> bool {
    if k.is_empty() {
        return true;
    }
    if k.len() > 1024 || k.starts_with('/') {
        return false;
    }
    let body = k.strip_suffix('/').unwrap_or(k);
    body.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg.chars().all(|c| !c.is_control() && c != '\\')
    })
}

/// `root/prefix` for a prefix (`""` and `"a/"` and `"a/b"` alike); an
/// unclean prefix is refused.
pub(crate) fn full_prefix(root: &str, prefix: &str, store: &str) -> Result<String, StoreError> {
    if !is_key(prefix) {
        return Err(refused("prefix", prefix, store));
    }
    Ok(join(root, prefix))
}

/// `root/key` for an object's key: clean, not empty, not ending in `/`.
pub(crate) fn full_key(root: &str, key: &str, store: &str) -> Result<String, StoreError> {
    if key.is_empty() || key.ends_with('/') || !is_key(key) {
        return Err(refused("key", key, store));
    }
    Ok(join(root, key))
}

/// A listed key made relative to the root; `None` for a key the root does
/// not hold (a listing never yields one, but a store's answer is not
/// trusted).
pub(crate) fn relative<'a>(root: &str, full: &'a str) -> Option<&'a str> {
    if root.is_empty() {
        return Some(full);
    }
    full.strip_prefix(root)?.strip_prefix('/')
}

fn join(root: &str, rel: &str) -> String {
    match (root.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (false, true) => format!("{root}/"),
        (false, false) => format!("{root}/{rel}"),
    }
}

fn refused(what: &str, key: &str, store: &str) -> StoreError {
    StoreError::invalid(format!(
        "{store} refuses the {what} \"{}\": not a clean key relative to the store's root",
        escape(key)
    ))
    .hint("A key is `/`-separated names, none empty, `.` or `..`, without `\\` or control characters.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_under_the_root() {
        assert_eq!(
            full_key("pfx", "main/base/x", "s").unwrap(),
            "pfx/main/base/x"
        );
        assert_eq!(full_key("", "main/x", "s").unwrap(), "main/x");
        assert_eq!(full_prefix("pfx", "", "s").unwrap(), "pfx/");
        assert_eq!(full_prefix("", "", "s").unwrap(), "");
        assert_eq!(full_prefix("a/b", "main/", "s").unwrap(), "a/b/main/");
        assert_eq!(
            full_prefix("a", "main/base/2024", "s").unwrap(),
            "a/main/base/2024"
        );
        for bad in [
            "../other-cluster/x",
            "main/../../x",
            "/etc/passwd",
            "a//b",
            "./a",
            "a/./b",
            "a\\b",
            "a\nb",
            "a/\u{1b}[2J",
        ] {
            let e = full_key("pfx", bad, "store \"s\"").unwrap_err();
            assert_eq!(e.kind, super::super::StoreErrorKind::InvalidConfig, "{bad}");
            assert!(e.message.contains("store \"s\""), "{}", e.message);
            assert!(!e.message.contains('\n') && !e.message.contains('\u{1b}'));
            assert!(full_prefix("pfx", bad, "s").is_err(), "{bad}");
        }
        assert!(full_key("pfx", "", "s").is_err());
        assert!(full_key("pfx", "dir/", "s").is_err());
        assert!(full_key("pfx", &"a".repeat(1025), "s").is_err());
    }

    #[test]
    fn listed_keys_are_made_relative() {
        assert_eq!(relative("pfx", "pfx/a/b"), Some("a/b"));
        assert_eq!(relative("", "a/b"), Some("a/b"));
        assert_eq!(relative("pfx", "pfxother/a"), None);
        assert_eq!(relative("pfx", "other/a"), None);
    }
}
