//! PostgreSQL server versions as `server_version_num` gives them
//! (`150004` is 15.4, `90624` is 9.6.24).

/// The major version as PostgreSQL names it: `15`, or `9.6` before 10.
pub fn major_text(num: u32) -> String {
    if num >= 100000 {
        format!("{}", num / 10000)
    } else {
        format!("{}.{}", num / 10000, (num / 100) % 100)
    }
}

/// The full version: `15.4`, `9.6.24`.
pub fn text(num: u32) -> String {
    if num >= 100000 {
        format!("{}.{}", num / 10000, num % 10000)
    } else {
        format!("{}.{}.{}", num / 10000, (num / 100) % 100, num % 100)
    }
}

/// Parses `15`, `15.4`, `9.6` or `9.6.24` (as `PG_VERSION`, `SHOW
/// server_version` or a tool's `--version` word say it) into a version number.
pub fn parse(text: &str) -> Option<u32> {
    let parts: Vec<u32> = text
        .trim()
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    // Each part must fit its digits of the number: `9.100` is not 10.0,
    // `15.10000` is not 16.0, and a huge major version is not wrapped.
    let major = |m: u32| m.checked_mul(10000);
    match *parts.as_slice() {
        [m] if m >= 10 => major(m),
        [m, minor] if m >= 10 && minor < 10000 => major(m)?.checked_add(minor),
        [m, minor] if m < 10 && minor < 100 => Some(m * 10000 + minor * 100),
        [m, minor, patch] if m < 10 && minor < 100 && patch < 100 => {
            Some(m * 10000 + minor * 100 + patch)
        }
        _ => None,
    }
}

/// The same major version (what a physical standby requires).
pub fn same_major(a: u32, b: u32) -> bool {
    let major = |n: u32| if n >= 100000 { n / 10000 } else { n / 100 };
    major(a) == major(b)
}

/// True from PostgreSQL 12 on: recovery settings live in postgresql.conf and
/// a signal file, not in recovery.conf.
pub fn uses_signal_files(num: u32) -> bool {
    num >= 120000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip() {
        assert_eq!(major_text(150004), "15");
        assert_eq!(major_text(90624), "9.6");
        assert_eq!(text(150004), "15.4");
        assert_eq!(text(90624), "9.6.24");
        assert_eq!(parse("15"), Some(150000));
        assert_eq!(parse("15.4"), Some(150004));
        assert_eq!(parse("9.6"), Some(90600));
        assert_eq!(parse("9.6.24"), Some(90624));
        assert_eq!(parse("fifteen"), None);
        assert_eq!(parse("9"), None);
        assert!(same_major(150004, 150018));
        assert!(!same_major(150004, 160000));
        assert!(same_major(90624, 90600) && !same_major(90624, 90500));
        assert!(uses_signal_files(120000) && !uses_signal_files(110022));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(fuzz::config())]

        /// Every version a server can report reads back as itself.
        #[test]
        fn text_then_parse_is_identity(
            n in prop_oneof![(10u32..100, 0u32..10000).prop_map(|(m, n)| m * 10000 + n),
                             (7u32..10, 0u32..10, 0u32..100).prop_map(|(a, b, c)| a * 10000 + b * 100 + c)]
        ) {
            prop_assert_eq!(parse(&text(n)), Some(n));
        }

        /// A version that parses has the major version the text says: a
        /// huge or overlong part is refused, never wrapped or carried into
        /// the major version (`9.100` is not 10, `15.99999` is not 24).
        #[test]
        fn parsed_versions_keep_their_major(
            parts in proptest::collection::vec(prop_oneof![0u64..30, 0u64..200_000, any::<u64>()], 1..4)
        ) {
            let s = parts.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
            if let Some(v) = parse(&s) {
                if parts[0] >= 10 {
                    prop_assert_eq!(u64::from(v / 10000), parts[0]);
                } else {
                    prop_assert_eq!((u64::from(v / 10000), u64::from(v / 100 % 100)), (parts[0], parts[1]));
                }
                prop_assert_eq!(parse(&text(v)), Some(v));
            }
        }

        /// Any text: a version or None, no panic.
        #[test]
        fn any_text_is_a_version_or_none(s in prop_oneof![fuzz::any_text(), fuzz::words(&["1", "15", "9", ".", "0", "4294967295"])]) {
            let _ = parse(&s);
        }
    }

    #[test]
    fn oversized_parts_are_refused() {
        // Found by parsed_versions_keep_their_major ("0.100" read as 1.0):
        // a part too large for its digits carried into the next, or wrapped.
        assert_eq!(parse("0.100"), None);
        assert_eq!(parse("9.100"), None);
        assert_eq!(parse("9.6.100"), None);
        assert_eq!(parse("15.10000"), None);
        assert_eq!(parse("429497"), None);
    }
}
