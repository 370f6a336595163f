//! A store's own small tokio runtime. The store's callers are synchronous
//! (host calls, unpacking threads, wal-restore), some on a thread of another
//! runtime, where `Handle::block_on` would panic; so each call is spawned
//! here and waited for on a std channel, and the runtime is shut down
//! without blocking (dropping a runtime inside another one panics too).

use std::future::Future;

pub(crate) struct Runtime {
    rt: Option<tokio::runtime::Runtime>,
}

impl Runtime {
    pub fn new() -> std::io::Result<Runtime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pgclone-store")
            .enable_all()
            .build()?;
        Ok(Runtime { rt: Some(rt) })
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.rt.as_ref().expect("runtime lives until drop").handle()
    }

    /// Runs `fut` on this runtime and waits for its output on the calling
    /// thread, whatever runtime that thread belongs to.
    pub fn run<T, F>(&self, fut: F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = tx.send(fut.await);
        });
        match rx.recv() {
            Ok(out) => out,
            // The task panicked (its sender dropped unsent): surface the bug.
            Err(_) => panic!("an object-store task panicked"),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_from_a_plain_thread() {
        let rt = Runtime::new().unwrap();
        assert_eq!(rt.run(async { 6 * 7 }), 42);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn runs_and_drops_inside_another_runtime() {
        let rt = Runtime::new().unwrap();
        let v = rt.run(async {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            7
        });
        assert_eq!(v, 7);
        drop(rt);
    }
}
