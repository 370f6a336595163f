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
    match parts.as_slice() {
        [major] if *major >= 10 => Some(major * 10000),
        [major, minor] if *major >= 10 => Some(major * 10000 + minor),
        [major, minor] => Some(major * 10000 + minor * 100),
        [major, minor, patch] if *major < 10 => Some(major * 10000 + minor * 100 + patch),
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
