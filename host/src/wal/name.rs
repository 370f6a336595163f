//! WAL file names: `TTTTTTTTXXXXXXXXYYYYYYYY` segments, `TTTTTTTT.history`
//! timeline files, `.partial` segments and `.backup` history files. A name
//! that is none of these is never used: it would be a path or an option in
//! some program's argv.

/// What kind of file PostgreSQL asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalName {
    /// A segment: timeline, log, seg.
    Segment { tli: u32, log: u32, seg: u32 },
    /// A timeline history file.
    History { tli: u32 },
    /// A segment's `.partial` file (the last segment of a timeline).
    Partial,
    /// A backup history file (`<segment>.<offset>.backup`).
    BackupHistory,
}

/// Eight hex digits. Checked as ASCII before any slicing: a multibyte
/// character never reaches a byte index.
fn hex8(s: &str) -> Option<u32> {
    (s.len() == 8 && s.bytes().all(|c| c.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(s, 16).ok())?
}

/// A segment name's three fields.
pub(super) fn fields(name: &str) -> Option<(u32, u32, u32)> {
    if name.len() != 24 || !name.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some((hex8(&name[..8])?, hex8(&name[8..16])?, hex8(&name[16..])?))
}

/// Classifies `name`; `None` for anything PostgreSQL never asks for (paths,
/// options, other files).
pub fn parse(name: &str) -> Option<WalName> {
    if let Some((tli, log, seg)) = fields(name) {
        return Some(WalName::Segment { tli, log, seg });
    }
    if let Some(tli) = name.strip_suffix(".history").and_then(hex8) {
        return Some(WalName::History { tli });
    }
    if name.strip_suffix(".partial").and_then(fields).is_some() {
        return Some(WalName::Partial);
    }
    let backup = name
        .strip_suffix(".backup")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(seg, offset)| fields(seg).is_some() && hex8(offset).is_some());
    backup.then_some(WalName::BackupHistory)
}

/// The log directory a name is under in a by-log layout (Barman's): the
/// segment's first 16 characters; `None` for history files, which are at the
/// top.
pub fn log_dir(name: &str) -> Option<&str> {
    match parse(name)? {
        WalName::History { .. } => None,
        _ => name.get(..16),
    }
}

/// The segment's name.
pub fn segment_name(tli: u32, log: u32, seg: u32) -> String {
    format!("{tli:08X}{log:08X}{seg:08X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified() {
        assert_eq!(
            parse("000000010000000A000000FF"),
            Some(WalName::Segment {
                tli: 1,
                log: 10,
                seg: 255
            })
        );
        assert_eq!(parse("00000002.history"), Some(WalName::History { tli: 2 }));
        assert_eq!(
            parse("000000010000000000000002.00000028.backup"),
            Some(WalName::BackupHistory)
        );
        assert_eq!(
            parse("000000010000000000000002.partial"),
            Some(WalName::Partial)
        );
        for bad in [
            "../etc/passwd",
            "",
            "--version",
            "-rf",
            ".hidden",
            "a b",
            "x;y",
            "0000000100000000/00000003",
            "00000001000000000000000G",
            "000000000000000é00000000",
            "0000000é0000000000000000",
            "000000000000000é0000000000",
            "00000002.history/..",
            "000000010000000000000002.backup",
            "RECOVERYXLOG",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(
            log_dir("000000010000000A000000FF"),
            Some("000000010000000A")
        );
        assert_eq!(log_dir("00000002.history"), None);
        assert_eq!(log_dir("é"), None);
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]
        /// Any string is classified or refused, never a panic; a name it
        /// accepts has no path, option or space in it.
        #[test]
        fn any_name_is_classified_or_refused(name in "\\PC{0,40}") {
            if parse(&name).is_some() {
                proptest::prop_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'));
                proptest::prop_assert!(!name.starts_with(['.', '-']));
            }
            let _ = log_dir(&name);
        }

        /// Mutations of real names: one byte replaced by any character.
        #[test]
        fn mutated_names_never_panic(at in 0usize..40, c in proptest::char::any(), which in 0usize..4) {
            let base = ["000000010000000A000000FF", "00000002.history",
                "000000010000000000000003.partial", "000000010000000000000002.00000028.backup"][which];
            let mut chars: Vec<char> = base.chars().collect();
            let at = at % chars.len();
            chars[at] = c;
            let name: String = chars.into_iter().collect();
            let _ = parse(&name);
            let _ = log_dir(&name);
        }

        /// Names made from fields parse back to the same fields.
        #[test]
        fn segment_names_round_trip(tli in proptest::num::u32::ANY, log in proptest::num::u32::ANY, seg in 0u32..256) {
            proptest::prop_assert_eq!(parse(&segment_name(tli, log, seg)), Some(WalName::Segment { tli, log, seg }));
        }
    }
}
