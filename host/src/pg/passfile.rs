//! Password files (`~/.pgpass`, `PGPASSFILE`, the `passfile` keyword), read as
//! libpq reads them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Splits a `.pgpass` line into its five fields (`\` escapes `:` and `\`).
fn fields(line: &str) -> Option<[String; 5]> {
    let mut out: Vec<String> = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().unwrap().push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.try_into().ok()
}

/// The password for `(host, port, dbname, user)` in the file at `path`, if any.
/// Like libpq, a file readable by group or others is ignored (with a warning).
pub fn lookup(path: &Path, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        crate::report::warning(
            &format!(
                "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
                path.display()
            ),
            None,
        );
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(fields)
        .find(|f| {
            matches(&f[0], host)
                && matches(&f[1], port)
                && matches(&f[2], dbname)
                && matches(&f[3], user)
        })
        .map(|f| f[4].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    #[test]
    fn first_matching_line_wins_with_wildcards_and_escapes() {
        let f = file(
            "# comment\nnode1:5432:replication:repl:rpw\n*:*:*:repmgr:a\\:b\\\\c\n*:*:*:*:fallback\n",
            0o600,
        );
        assert_eq!(
            lookup(f.path(), "node1", "5432", "replication", "repl").as_deref(),
            Some("rpw")
        );
        assert_eq!(
            lookup(f.path(), "node2", "5432", "repmgr", "repmgr").as_deref(),
            Some("a:b\\c")
        );
        assert_eq!(
            lookup(f.path(), "x", "1", "y", "z").as_deref(),
            Some("fallback")
        );
    }

    #[test]
    fn an_open_file_is_ignored() {
        let f = file("*:*:*:*:pw\n", 0o644);
        assert_eq!(lookup(f.path(), "h", "5432", "d", "u"), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    /// A field as it is written in the file: `\` escapes `:` and `\`.
    fn escape(f: &str) -> String {
        f.replace('\\', "\\\\").replace(':', "\\:")
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        /// Any line: five fields or none, no panic.
        #[test]
        fn any_line_is_five_fields_or_none(
            line in prop_oneof![fuzz::mutated("node1:5432:replication:repl:s3cr\\:et\\\\x"), fuzz::any_text()]
        ) {
            let _ = fields(&line);
        }

        /// What a DBA escapes is read back as written, a password with `:`
        /// and `\` included.
        #[test]
        fn escaped_fields_read_back(f in proptest::array::uniform5("[^\n]{0,12}")) {
            let line = f.iter().map(|x| escape(x)).collect::<Vec<_>>().join(":");
            prop_assert_eq!(fields(&line), Some(f));
        }
    }
}
