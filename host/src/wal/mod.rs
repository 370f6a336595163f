//! WAL arithmetic in one place: file names (segments, timeline histories,
//! `.partial` and `.backup` files), LSNs, segment numbers and the segment
//! sizes PostgreSQL allows. Pure functions of their arguments, used by the
//! clone (catch-up check, warm-up, unpack budget), wal-restore and the
//! recovery settings.

mod lsn;
mod name;
mod segment;

pub use lsn::{parse as parse_lsn, span as lsn_span};
pub use name::{log_dir, parse as parse_name, segment_name, WalName};
pub use segment::{
    following, name_of, number_of, preceding, size_from_lsn, size_of_setting, start_lsn,
    valid_size, DEFAULT_SIZE, MAX_SIZE,
};
