//! Who holds what in a shared spool, in words: the prefetcher's pid, and
//! each standby it serves with its position and how much of its window is
//! spooled (`wal-restore -v`, the clone's warm-up line).

use super::cursors::Cursor;
use super::spool::Spool;
use super::{open_spool, prefetch, Options};

/// One standby's cursor: `/data/b: at 0000000100000000000000A3, 12 of its
/// next 16 segments spooled` (a warm-up: `warm-up from ... for pgclone
/// pid N`).
pub fn describe(spool: &Spool, c: &Cursor) -> String {
    let window = c.window_segments();
    let spooled = window.iter().filter(|n| spool.has(n)).count();
    let position = match c.warm {
        Some(o) => format!(
            "warm-up from {} for pid {}{}",
            window.first().map(String::as_str).unwrap_or("?"),
            o.pid,
            if o.alive() { "" } else { " (ended)" }
        ),
        None => format!("at {}", c.segment),
    };
    let idle = if c.awake() {
        String::new()
    } else {
        format!(", idle for {} s", c.age.as_secs())
    };
    format!(
        "{}: {position}, {spooled} of its next {} segments spooled{idle}",
        c.standby.display(),
        c.window
    )
}

/// The spool's state: its holder, then one line per standby.
pub fn report(spool: &Spool) -> Vec<String> {
    let cursors = spool.cursors();
    let n = cursors.len();
    let standbys = if n == 1 { "standby" } else { "standbys" };
    let head = match prefetch::holder(spool) {
        Some(pid) => format!(
            "spool \"{}\": prefetcher pid {pid} serves {n} {standbys}",
            spool.dir.display()
        ),
        None => format!(
            "spool \"{}\": no prefetcher runs; {n} {standbys} with a cursor",
            spool.dir.display()
        ),
    };
    let mut lines = vec![head];
    lines.extend(cursors.iter().map(|c| format!("  {}", describe(spool, c))));
    lines
}

/// `-v`: the state of the spool `o` uses, as INFO lines on standard error
/// (PostgreSQL's log for a restore_command).
pub fn print(o: &Options) {
    let Ok(spool) = open_spool(o) else {
        return;
    };
    for line in report(&spool) {
        eprintln!("INFO: pgclone wal-restore: {line}");
    }
}
