//! Checking a WAL segment before it is delivered: its size, and the long page
//! header at its start (magic, the segment size it declares, and the address
//! it says it starts at, which must match its name).

use super::names::{self, WalName};

/// XLP_LONG_HEADER: the first page of a segment has the long header.
const XLP_LONG_HEADER: u16 = 0x0002;

/// Why a file is not the segment it claims to be.
pub fn check_segment(name: &str, bytes: &[u8]) -> Result<(), String> {
    let Some(WalName::Segment { tli, log, seg }) = names::parse(name) else {
        return Ok(());
    };
    if bytes.len() < 40 {
        return Err(format!(
            "{name} is {} bytes long, too short for a WAL segment",
            bytes.len()
        ));
    }
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
    if !seg_size.is_power_of_two() || !(1 << 20..=1 << 30).contains(&seg_size) {
        return Err(format!(
            "{name} declares an impossible segment size {seg_size}"
        ));
    }
    if bytes.len() as u64 != seg_size {
        return Err(format!(
            "{name} is {} bytes long, its header says {seg_size}",
            bytes.len()
        ));
    }
    let want = names::start_lsn(log, seg, seg_size);
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
    Ok(())
}

#[cfg(test)]
pub fn fake_segment(name: &str, seg_size: usize) -> Vec<u8> {
    let Some(WalName::Segment { tli, log, seg }) = names::parse(name) else {
        panic!()
    };
    let mut b = vec![0u8; seg_size];
    b[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
    b[2..4].copy_from_slice(&XLP_LONG_HEADER.to_le_bytes());
    b[4..8].copy_from_slice(&tli.to_le_bytes());
    b[8..16].copy_from_slice(&names::start_lsn(log, seg, seg_size as u64).to_le_bytes());
    b[32..36].copy_from_slice(&(seg_size as u32).to_le_bytes());
    b[36..40].copy_from_slice(&8192u32.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "000000010000000000000003";

    #[test]
    fn a_good_segment_passes() {
        check_segment(N, &fake_segment(N, 16 << 20)).unwrap();
    }

    #[test]
    fn truncated_corrupted_or_misnamed_segments_fail() {
        let good = fake_segment(N, 16 << 20);
        assert!(check_segment(N, &good[..1 << 20]).is_err());
        let mut bad = good.clone();
        bad[0] = 0;
        bad[1] = 0;
        assert!(check_segment(N, &bad).is_err());
        assert!(check_segment("000000010000000000000004", &good).is_err());
        assert!(check_segment(N, &[]).is_err());
    }

    #[test]
    fn history_files_are_not_segments() {
        check_segment("00000002.history", b"1\t0/3000000\tno recovery target\n").unwrap();
    }
}
