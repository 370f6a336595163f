//! WAL file names: `TTTTTTTTXXXXXXXXYYYYYYYY` segments, `TTTTTTTT.history`
//! timeline files, and `.partial` segments.

/// What kind of file PostgreSQL asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalName {
    /// A segment: timeline, log, seg.
    Segment { tli: u32, log: u32, seg: u32 },
    /// A timeline history file.
    History { tli: u32 },
    /// Anything else PostgreSQL may ask for (backup history files, ...).
    Other,
}

fn hex8(s: &str) -> Option<u32> {
    (s.len() == 8 && s.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(s, 16).ok())?
}

/// Classifies `name`; `None` for names that could escape a directory.
pub fn parse(name: &str) -> Option<WalName> {
    if name.is_empty() || name.contains('/') || name.contains('\0') || name.starts_with('.') {
        return None;
    }
    if name.len() == 24 {
        if let (Some(tli), Some(log), Some(seg)) =
            (hex8(&name[..8]), hex8(&name[8..16]), hex8(&name[16..]))
        {
            return Some(WalName::Segment { tli, log, seg });
        }
    }
    if let Some(t) = name.strip_suffix(".history").and_then(hex8) {
        return Some(WalName::History { tli: t });
    }
    Some(WalName::Other)
}

/// The segment's name.
pub fn segment_name(tli: u32, log: u32, seg: u32) -> String {
    format!("{tli:08X}{log:08X}{seg:08X}")
}

/// The `n` segments after `(tli, log, seg)` for a segment size.
pub fn following(tli: u32, log: u32, seg: u32, seg_size: u64, n: usize) -> Vec<String> {
    let per_log = (0x1_0000_0000u64 / seg_size) as u32;
    let (mut log, mut seg) = (log, seg);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        seg += 1;
        if seg >= per_log {
            seg = 0;
            log += 1;
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
    let per_log = (0x1_0000_0000u64 / seg_size) as u32;
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
            Some(WalName::Other)
        );
        assert_eq!(parse("../etc/passwd"), None);
        assert_eq!(parse(""), None);
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
}
