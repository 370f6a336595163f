//! Ctrl-C, `kill` and a closed terminal end a clone the way a failure does:
//! what it started is stopped, what it made is removed, and the scratch
//! directory goes with it.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::signal::unix::{signal, SignalKind};

use crate::report::Failure;

/// Waits for SIGINT, SIGTERM or SIGHUP and returns its name. From the first
/// call on, these signals no longer end the process by themselves.
pub async fn wait() -> &'static str {
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

/// Like [`wait`], but never returns while `busy` is set: then the phase
/// that set it handles the signal itself (and cleans up).
pub async fn wait_unless(busy: &AtomicBool) -> &'static str {
    let sig = wait().await;
    if busy.load(Ordering::SeqCst) {
        return std::future::pending().await;
    }
    sig
}

/// The error an interrupted clone ends with.
pub fn failure(sig: &str) -> anyhow::Error {
    Failure::new(format!("interrupted by {sig}")).into()
}
