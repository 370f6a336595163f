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
fn segment(name: &str) -> Option<(u32, u32, u32)> {
    if name.len() != 24 || !name.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some((hex8(&name[..8])?, hex8(&name[8..16])?, hex8(&name[16..])?))
}

/// Classifies `name`; `None` for anything PostgreSQL never asks for (paths,
/// options, other files).
pub fn parse(name: &str) -> Option<WalName> {
    if let Some((tli, log, seg)) = segment(name) {
        return Some(WalName::Segment { tli, log, seg });
    }
    if let Some(tli) = name.strip_suffix(".history").and_then(hex8) {
        return Some(WalName::History { tli });
    }
    if name.strip_suffix(".partial").and_then(segment).is_some() {
        return Some(WalName::Partial);
    }
    let backup = name
        .strip_suffix(".backup")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(seg, offset)| segment(seg).is_some() && hex8(offset).is_some());
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

/// Segments per log file for a segment size PostgreSQL allows (1 MiB to
/// 1 GiB, a power of two); `None` for any other size.
fn per_log(seg_size: u64) -> Option<u32> {
    (seg_size.is_power_of_two() && (1 << 20..=1 << 30).contains(&seg_size))
        .then(|| (0x1_0000_0000u64 / seg_size) as u32)
}

/// The `n` segments after `(tli, log, seg)` for a segment size.
pub fn following(tli: u32, log: u32, seg: u32, seg_size: u64, n: usize) -> Vec<String> {
    let Some(per_log) = per_log(seg_size) else {
        return Vec::new();
    };
    let (mut log, mut seg) = (log, seg);
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        seg = seg.saturating_add(1);
        if seg >= per_log {
            // The last log of the address space has no next one.
            let Some(next) = log.checked_add(1) else {
                break;
            };
            seg = 0;
            log = next;
        }
        out.push(segment_name(tli, log, seg));
    }
    out
}

/// The LSN a segment starts at.
pub fn start_lsn(log: u32, seg: u32, seg_size: u64) -> u64 {
    ((log as u64) << 32) + seg as u64 * seg_size
}

/// The segment before `(log, seg)`: the spool's cursor for a prefetch that
/// starts at `(log, seg)`.
pub fn preceding(tli: u32, log: u32, seg: u32, seg_size: u64) -> Option<String> {
    let per_log = per_log(seg_size)?;
    match (log, seg) {
        (0, 0) => None,
        (l, 0) => Some(segment_name(tli, l - 1, per_log - 1)),
        (l, s) => Some(segment_name(tli, l, s - 1)),
    }
}

/// The segment size a server used, from an LSN (`X/Y`) and the name of the
/// segment it is in: the power of two from 1 MiB to 1 GiB that puts the LSN
/// in that segment. None when the two cannot tell (the LSN in the first
/// segment of its log fits every size).
pub fn segment_size(lsn: &str, segment: &str) -> Option<u64> {
    let (hi, lo) = lsn.split_once('/')?;
    let (hi, lo) = (
        u64::from_str_radix(hi, 16).ok()?,
        u64::from_str_radix(lo, 16).ok()?,
    );
    let Some(WalName::Segment { log, seg, .. }) = parse(segment) else {
        return None;
    };
    if hi != log as u64 || seg == 0 {
        return None;
    }
    let fits: Vec<u64> = (20..=30)
        .map(|b| 1u64 << b)
        .filter(|size| lo / size == seg as u64)
        .collect();
    match fits.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_sizes_are_told_from_an_lsn_and_its_segment() {
        assert_eq!(
            segment_size("0/44000028", "000000010000000000000044"),
            Some(16 << 20)
        );
        assert_eq!(
            segment_size("0/44000028", "000000010000000000000011"),
            Some(64 << 20)
        );
        assert_eq!(segment_size("0/00000028", "000000010000000000000000"), None);
        assert_eq!(segment_size("1/44000028", "000000010000000000000044"), None);
        assert_eq!(segment_size("junk", "000000010000000000000044"), None);
        assert_eq!(
            preceding(1, 1, 0, 16 << 20).as_deref(),
            Some("0000000100000000000000FF")
        );
        assert_eq!(
            preceding(2, 0, 5, 16 << 20).as_deref(),
            Some("000000020000000000000004")
        );
        assert_eq!(preceding(1, 0, 0, 16 << 20), None);
    }

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

    #[test]
    fn following_segments_roll_over_the_log() {
        let seg16 = 16 << 20;
        assert_eq!(
            following(1, 0, 0xFE, seg16, 3),
            vec![
                "0000000100000000000000FF",
                "000000010000000100000000",
                "000000010000000100000001"
            ]
        );
        assert_eq!(start_lsn(1, 2, seg16), 0x1_0200_0000);
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

        /// Names made from fields parse back to the same fields; the walk
        /// forward never panics at the end of the address space.
        #[test]
        fn segment_names_round_trip(tli in proptest::num::u32::ANY, log in proptest::num::u32::ANY,
                                    seg in 0u32..256, bits in 0u32..40, n in 0usize..300) {
            proptest::prop_assert_eq!(parse(&segment_name(tli, log, seg)), Some(WalName::Segment { tli, log, seg }));
            let size = 1u64 << bits;
            let _ = following(tli, log, seg, size, n);
            let _ = preceding(tli, log, seg, size);
        }
    }
}
