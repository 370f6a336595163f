//! LSNs as PostgreSQL prints them: `X/X`, two 32-bit halves in hexadecimal.

/// `"0/44000028"` → 0x44000028: one to eight hex digits on each side of
/// the `/` (surrounding whitespace ignored), nothing else.
pub fn parse(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    let half = |h: &str| {
        (!h.is_empty() && h.len() <= 8 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(h, 16).ok())?
    };
    Some((u64::from(half(hi)?) << 32) | u64::from(half(lo)?))
}

/// The bytes `end - begin` of two LSNs (0 when either is unreadable).
pub fn span(begin: &str, end: &str) -> u64 {
    match (parse(begin), parse(end)) {
        (Some(b), Some(e)) => e.saturating_sub(b),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    #[test]
    fn lsns() {
        assert_eq!(parse("0/44000028"), Some(0x4400_0028));
        assert_eq!(parse("1/0"), Some(1 << 32));
        assert_eq!(parse(" FFFFFFFF/FFFFFFFF\n"), Some(u64::MAX));
        for bad in ["x", "", "/0", "0/", "+1/0", "1/-0", "100000000/0", "0/é"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(span("0/2000028", "0/3000100"), 0x10000d8);
        assert_eq!(span("1/0", "2/0"), 1 << 32);
        assert_eq!(span("junk", "2/0"), 0);
        assert_eq!(span("2/0", "1/0"), 0);
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn lsn_text_reads_back(hi in any::<u32>(), lo in any::<u32>()) {
            let lsn = (u64::from(hi) << 32) | u64::from(lo);
            prop_assert_eq!(parse(&format!("{hi:X}/{lo:X}")), Some(lsn));
            prop_assert_eq!(parse(&format!("{hi:08x}/{lo:08x}")), Some(lsn));
        }

        /// Any text is an LSN or none, never a panic.
        #[test]
        fn any_text_is_an_lsn_or_none(s in prop_oneof![fuzz::mutated("0/44000028"), fuzz::any_text()]) {
            if parse(&s).is_some() {
                prop_assert!(s.trim().bytes().all(|b| b.is_ascii_hexdigit() || b == b'/'));
            }
        }
    }
}
