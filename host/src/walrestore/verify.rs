//! Checking a WAL segment before it is delivered: its size, and the long page
//! header at its start (magic, the segment size it declares, and the address
//! it says it starts at, which must match its name).

use crate::wal::{self, WalName};

/// XLP_LONG_HEADER: the first page of a segment has the long header.
const XLP_LONG_HEADER: u16 = 0x0002;

/// Bytes of a segment's start that [`check_header`] reads: the long page
/// header up to xlp_xlog_blcksz.
pub const HEADER_LEN: usize = 40;

/// Why a file is not the segment it claims to be. `sysid` is the system
/// identifier of the cluster it is for, when known: a segment of another
/// cluster is never delivered.
pub fn check_segment(name: &str, bytes: &[u8], sysid: Option<u64>) -> Result<(), String> {
    check_header(
        name,
        &bytes[..bytes.len().min(HEADER_LEN)],
        bytes.len() as u64,
        sysid,
    )
}

/// The same check from the first [`HEADER_LEN`] bytes of a file of `len`
/// bytes (a spooled segment is checked without reading it whole).
pub fn check_header(name: &str, header: &[u8], len: u64, sysid: Option<u64>) -> Result<(), String> {
    let Some(WalName::Segment { tli, log, seg }) = wal::parse_name(name) else {
        return Ok(());
    };
    if header.len() < HEADER_LEN {
        return Err(format!(
            "{name} is {len} bytes long, too short for a WAL segment"
        ));
    }
    let bytes = header;
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    let magic = u16_at(0);
    if magic >> 8 != 0xD0 && magic >> 8 != 0xD1 {
        return Err(format!(
            "{name} does not start with a WAL page header (magic {magic:#06x})"
        ));
    }
    if u16_at(2) & XLP_LONG_HEADER == 0 {
        return Err(format!("{name} does not start with a long page header"));
    }
    let seg_size = u32_at(32) as u64;
    if !wal::valid_size(seg_size) {
        return Err(format!(
            "{name} declares an impossible segment size {seg_size}"
        ));
    }
    if len != seg_size {
        return Err(format!(
            "{name} is {len} bytes long, its header says {seg_size}"
        ));
    }
    let want = wal::start_lsn(log, seg, seg_size);
    let got = u64_at(8);
    if got != want {
        return Err(format!("{name} starts at {got:X}, its name says {want:X}"));
    }
    if u32_at(4) > tli {
        return Err(format!(
            "{name} is of timeline {}, later than its name's {tli}",
            u32_at(4)
        ));
    }
    // XLogLongPageHeaderData: the short header (xlp_magic u16, xlp_info u16,
    // xlp_tli u32, xlp_pageaddr u64, xlp_rem_len u32, 4 bytes of padding),
    // then xlp_sysid u64 at 24. With the same cluster the segment size is the
    // cluster's too (one cluster, one wal_segment_size).
    if let Some(want) = sysid {
        let got = u64_at(24);
        if got != want {
            return Err(format!(
                "{name} belongs to the database system {got}, not to this one ({want})"
            ));
        }
    }
    Ok(())
}

/// What a data directory's global/pg_control says about its cluster: the
/// system identifier (its first 8 bytes, in every version) and the WAL
/// segment size, from one read of its first
/// 512 bytes (PG_CONTROL_MAX_SAFE_SIZE, the part written atomically).
pub fn control_facts(data_dir: &std::path::Path) -> (Option<u64>, Option<u64>) {
    use std::io::Read;
    let mut head = Vec::with_capacity(512);
    let read = std::fs::File::open(data_dir.join("global/pg_control"))
        .and_then(|f| f.take(512).read_to_end(&mut head));
    if read.is_err() {
        return (None, None);
    }
    let sysid = head
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    (sysid, segment_size_in(&head))
}

/// The WAL segment size of the cluster in `data_dir`, from global/pg_control.
pub fn segment_size(data_dir: &std::path::Path) -> Option<u64> {
    control_facts(data_dir).1
}

/// The segment size in pg_control's first bytes: the word after the block
/// size, relation segment size and WAL block size that follow the
/// `floatFormat` check value (1234567.0), which every version since 8.x keeps
/// in that order; read where the layout moves between versions without a
/// table of offsets. None when they cannot tell.
fn segment_size_in(head: &[u8]) -> Option<u64> {
    let float_format = 1234567.0f64.to_le_bytes();
    let at = (0..head.len().saturating_sub(24))
        .step_by(8)
        .find(|&i| head[i..i + 8] == float_format)?;
    let size = u32::from_le_bytes(head[at + 20..at + 24].try_into().ok()?) as u64;
    wal::valid_size(size).then_some(size)
}

#[cfg(test)]
pub fn fake_segment(name: &str, seg_size: usize) -> Vec<u8> {
    let Some(WalName::Segment { tli, log, seg }) = wal::parse_name(name) else {
        panic!()
    };
    let mut b = vec![0u8; seg_size];
    b[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
    b[2..4].copy_from_slice(&XLP_LONG_HEADER.to_le_bytes());
    b[4..8].copy_from_slice(&tli.to_le_bytes());
    b[8..16].copy_from_slice(&wal::start_lsn(log, seg, seg_size as u64).to_le_bytes());
    b[32..36].copy_from_slice(&(seg_size as u32).to_le_bytes());
    b[24..32].copy_from_slice(&FAKE_SYSID.to_le_bytes());
    b[36..40].copy_from_slice(&8192u32.to_le_bytes());
    b
}

#[cfg(test)]
pub const FAKE_SYSID: u64 = 7_300_000_000_000_000_001;

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "000000010000000000000003";

    #[test]
    fn a_good_segment_passes() {
        check_segment(N, &fake_segment(N, 16 << 20), None).unwrap();
        check_segment(N, &fake_segment(N, 16 << 20), Some(FAKE_SYSID)).unwrap();
        let seg = fake_segment(N, 16 << 20);
        check_header(N, &seg[..HEADER_LEN], 16 << 20, Some(FAKE_SYSID)).unwrap();
    }

    #[test]
    fn a_segment_of_another_cluster_fails() {
        let seg = fake_segment(N, 16 << 20);
        let e = check_segment(N, &seg, Some(FAKE_SYSID + 1)).unwrap_err();
        assert!(e.contains("database system"), "{e}");
        assert!(check_header(N, &seg[..HEADER_LEN], 1 << 20, None).is_err());
    }

    #[test]
    fn truncated_corrupted_or_misnamed_segments_fail() {
        let good = fake_segment(N, 16 << 20);
        assert!(check_segment(N, &good[..1 << 20], None).is_err());
        let mut bad = good.clone();
        bad[0] = 0;
        bad[1] = 0;
        assert!(check_segment(N, &bad, None).is_err());
        assert!(check_segment("000000010000000000000004", &good, None).is_err());
        assert!(check_segment(N, &[], None).is_err());
    }

    #[test]
    fn history_files_are_not_segments() {
        check_segment(
            "00000002.history",
            b"1\t0/3000000\tno recovery target\n",
            Some(1),
        )
        .unwrap();
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]
        /// Any header bytes and length are judged without a panic; a header
        /// with a random byte changed passes only if it still names this
        /// segment of this cluster with its own size.
        #[test]
        fn any_header_is_judged_cleanly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                                        len in proptest::num::u64::ANY, sysid in proptest::option::of(proptest::num::u64::ANY)) {
            let _ = check_header(N, &bytes, len, sysid);
            let _ = check_header("00000002.history", &bytes, len, sysid);
        }

        #[test]
        fn a_mutated_header_is_refused_or_still_right(at in 0usize..HEADER_LEN, b in proptest::num::u8::ANY) {
            let mut seg = fake_segment(N, 1 << 20);
            seg[at] = b;
            if check_header(N, &seg[..HEADER_LEN], 1 << 20, Some(FAKE_SYSID)).is_ok() {
                proptest::prop_assert_eq!(u64::from_le_bytes(seg[24..32].try_into().unwrap()), FAKE_SYSID);
                proptest::prop_assert_eq!(u32::from_le_bytes(seg[32..36].try_into().unwrap()), 1 << 20);
            }
        }
    }

    #[test]
    fn segment_size_of_a_truncated_or_random_pg_control() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("global")).unwrap();
        for len in [0usize, 7, 24, 215, 230, 512, 8192] {
            std::fs::write(t.path().join("global/pg_control"), vec![0x3f; len]).unwrap();
            assert_eq!(segment_size(t.path()), None, "{len}");
        }
    }
}
