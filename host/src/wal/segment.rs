//! Segment arithmetic: the sizes PostgreSQL allows, segment numbers, the
//! segments before and after one, where one starts.

use super::lsn;
use super::name::{fields, parse, segment_name, WalName};

/// PostgreSQL's default segment size, assumed when a size cannot be known.
pub const DEFAULT_SIZE: u64 = 16 << 20;

/// The largest segment PostgreSQL can be built or initialised with.
pub const MAX_SIZE: u64 = 1 << 30;

/// A segment size PostgreSQL allows: a power of two from 1 MiB to 1 GiB.
pub fn valid_size(size: u64) -> bool {
    size.is_power_of_two() && (1 << 20..=MAX_SIZE).contains(&size)
}

/// Segments per log file (per 4 GiB of LSNs) for a size PostgreSQL allows;
/// `None` for any other size.
fn per_log(size: u64) -> Option<u32> {
    valid_size(size).then(|| (0x1_0000_0000u64 / size) as u32)
}

/// The segment number of a segment's name (`TTTTTTTTLLLLLLLLSSSSSSSS`), the
/// timeline left out; `None` for anything else or a `seg` beyond the log.
pub fn number_of(name: &str, size: u64) -> Option<u64> {
    let (_, log, seg) = fields(name)?;
    let per_log = per_log(size)?;
    (seg < per_log).then_some(u64::from(log) * u64::from(per_log) + u64::from(seg))
}

/// The name of segment number `segno` on `timeline` (a size PostgreSQL
/// does not allow is read as the default).
pub fn name_of(timeline: u32, segno: u64, size: u64) -> String {
    let per_log = u64::from(per_log(size).unwrap_or(256));
    segment_name(timeline, (segno / per_log) as u32, (segno % per_log) as u32)
}

/// The `n` segments after `(tli, log, seg)` for a segment size.
pub fn following(tli: u32, log: u32, seg: u32, size: u64, n: usize) -> Vec<String> {
    let Some(per_log) = per_log(size) else {
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
pub fn start_lsn(log: u32, seg: u32, size: u64) -> u64 {
    ((log as u64) << 32) + seg as u64 * size
}

/// The segment before `(log, seg)`: the spool's cursor for a prefetch that
/// starts at `(log, seg)`.
pub fn preceding(tli: u32, log: u32, seg: u32, size: u64) -> Option<String> {
    let per_log = per_log(size)?;
    match (log, seg) {
        (0, 0) => None,
        (l, 0) => Some(segment_name(tli, l - 1, per_log - 1)),
        (l, s) => Some(segment_name(tli, l, s - 1)),
    }
}

/// The segment size a server used, from an LSN (`X/Y`) and the name of the
/// segment it is in: the allowed size that puts the LSN in that segment.
/// None when the two cannot tell (the LSN in the first segment of its log
/// fits every size).
pub fn size_from_lsn(lsn: &str, segment: &str) -> Option<u64> {
    let lsn = lsn::parse(lsn)?;
    let (hi, lo) = (lsn >> 32, lsn & 0xFFFF_FFFF);
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

/// The segment size from pg_settings' `wal_segment_size` (`setting` and
/// `unit`): an allowed size, else the default (an overflowing product is not
/// wrapped into a valid size).
pub fn size_of_setting(n: i64, unit: &str) -> u64 {
    let mult: i64 = match unit {
        "B" | "" => 1,
        "kB" => 1024,
        "8kB" => 8192,
        "MB" => 1 << 20,
        _ => return DEFAULT_SIZE,
    };
    match n.checked_mul(mult).and_then(|s| u64::try_from(s).ok()) {
        Some(s) if valid_size(s) => s,
        _ => DEFAULT_SIZE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    #[test]
    fn segment_sizes_are_told_from_an_lsn_and_its_segment() {
        assert_eq!(
            size_from_lsn("0/44000028", "000000010000000000000044"),
            Some(16 << 20)
        );
        assert_eq!(
            size_from_lsn("0/44000028", "000000010000000000000011"),
            Some(64 << 20)
        );
        assert_eq!(
            size_from_lsn("0/00000028", "000000010000000000000000"),
            None
        );
        assert_eq!(
            size_from_lsn("1/44000028", "000000010000000000000044"),
            None
        );
        assert_eq!(size_from_lsn("junk", "000000010000000000000044"), None);
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

    #[test]
    fn segment_numbers_and_names() {
        let m16 = 16 << 20;
        assert_eq!(number_of("000000010000000000000044", m16), Some(0x44));
        // The timeline does not count: a later timeline's file of the same segment.
        assert_eq!(number_of("000000030000000100000002", m16), Some(256 + 2));
        assert_eq!(number_of("000000010000000000000100", m16), None);
        assert_eq!(number_of("00000001000000000000004", m16), None);
        assert_eq!(name_of(1, 256 + 2, m16), "000000010000000100000002");
        // 64 MiB segments: 64 per log file.
        let m64 = 64 << 20;
        assert_eq!(number_of("00000001000000010000003F", m64), Some(64 + 63));
        assert_eq!(name_of(2, 64 + 63, m64), "00000002000000010000003F");
        assert_eq!(lsn::parse("1/FC000000").unwrap() / m64, 64 + 63);
    }

    #[test]
    fn an_overflowing_segment_size_is_not_wrapped() {
        // (2^54 + 2^10) kB wrapped to exactly 1 MiB before.
        assert_eq!(size_of_setting((1 << 54) + (1 << 10), "kB"), 16 << 20);
        assert_eq!(size_of_setting(16384, "kB"), 16 << 20);
        assert_eq!(size_of_setting(64, "MB"), 64 << 20);
        assert_eq!(size_of_setting(-(16 << 20), "B"), 16 << 20);
    }

    fn size() -> impl Strategy<Value = u64> {
        (20u32..=30).prop_map(|b| 1u64 << b)
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        /// Whatever the server says, a size WAL names can be computed with.
        #[test]
        fn seg_size_is_always_valid(
            n in prop_oneof![any::<i64>(), (0u32..63).prop_map(|b| (1i64 << b) + (1i64 << 62))],
            unit in proptest::sample::select(&["B", "", "kB", "8kB", "MB", "GB"][..]),
        ) {
            let s = size_of_setting(n, unit);
            prop_assert!(s.is_power_of_two() && (1 << 20..=1 << 30).contains(&s));
            let want = if unit == "kB" { n.checked_mul(1024) } else { Some(n) };
            if s != 16 << 20 && unit != "8kB" && unit != "MB" {
                prop_assert_eq!(want, Some(s as i64));
            }
        }

        #[test]
        fn wal_names_read_back(tli in any::<u32>(), log in any::<u32>(), size in size(), seg in any::<u64>()) {
            let segno = u64::from(log) * (0x1_0000_0000 / size) + seg % (0x1_0000_0000 / size);
            let name = name_of(tli, segno, size);
            prop_assert_eq!(number_of(&name, size), Some(segno));
        }

        /// Any text, names with multibyte characters included: a value or
        /// none, never a panic.
        #[test]
        fn any_text_is_a_segment_or_none(
            s in prop_oneof![fuzz::mutated("000000010000000000000044"), fuzz::any_text()],
            size in size(),
        ) {
            if let Some(n) = number_of(&s, size) {
                prop_assert_eq!(&name_of(u32::from_str_radix(&s[..8], 16).unwrap(), n, size), &s.to_ascii_uppercase());
            }
        }

        /// The walk forward never panics at the end of the address space.
        #[test]
        fn walks_never_panic(tli in any::<u32>(), log in any::<u32>(), seg in 0u32..256, bits in 0u32..40, n in 0usize..300) {
            let size = 1u64 << bits;
            let _ = following(tli, log, seg, size, n);
            let _ = preceding(tli, log, seg, size);
        }
    }
}
