//! Objects read as one stream, in one of two ways:
//! - with one request in flight, each object is one GET whose body is
//!   passed on as it arrives: what the caller wants when it reads several
//!   objects side by side (a backup's parts), and the cheapest for a server;
//! - with more, each object's bytes come from ranged GETs of [`RANGE`] bytes
//!   (the first one's answer gives its size: no HEAD), up to `parallel` in
//!   flight, reassembled in order: one large object read at the speed of
//!   several connections. Memory stays near (`parallel` + 2) x [`RANGE`]:
//!   fetched ranges wait for the reader in a channel of one.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use tokio::sync::{mpsc, oneshot};

use super::classify::{classify, Op};
use super::error::{StoreError, StoreErrorKind};
use super::ops::path;
use super::runtime::Runtime;
use super::{keys, Context, Store};

/// The size of one ranged GET.
pub const RANGE: u64 = 8 << 20;

/// Body chunks of a streamed GET that wait for the reader (a few MiB).
const WHOLE_CHUNKS: usize = 32;

type Sender = mpsc::Sender<Result<Option<Bytes>, StoreError>>;

/// The concatenation of objects, in order (`std::io::Read`). An error (a
/// missing object, a short body, a timeout) is an `io::Error` whose message
/// names the store and the key, wrapping the [`StoreError`].
pub struct ObjectReader {
    rx: mpsc::Receiver<Result<Option<Bytes>, StoreError>>,
    current: Bytes,
    failed: Option<StoreError>,
    done: bool,
    task: tokio::task::JoinHandle<()>,
    // The producer runs there: the reader keeps it alive past its store.
    _rt: Arc<Runtime>,
}

struct Job {
    key: Arc<str>,
    path: Arc<Path>,
    start: u64,
    end: u64,
}

impl Store {
    /// A reader of the objects `keys` (relative to the root): with
    /// `parallel` 1, one streamed GET per object; with more, up to
    /// `parallel` ranged GETs in flight. Keys are checked here, before any
    /// request; fetching starts at once, in the background.
    pub fn reader(&self, keys: &[String], parallel: usize) -> Result<ObjectReader, StoreError> {
        let mut objects = Vec::with_capacity(keys.len());
        for k in keys {
            let full = keys::full_key(&self.root, k, &self.ctx.describe)?;
            let p = path(&full, || Op::Read(k).failed(&self.ctx))?;
            objects.push((Arc::<str>::from(k.as_str()), Arc::new(p)));
        }
        let (client, ctx) = (self.client.clone(), self.ctx.clone());
        let (rx, task) = if parallel <= 1 {
            // A body arrives in small chunks: room for a few hundred.
            let (tx, rx) = mpsc::channel(WHOLE_CHUNKS);
            (
                rx,
                self.rt
                    .handle()
                    .spawn(stream_whole(client, ctx, objects, tx)),
            )
        } else {
            let (tx, rx) = mpsc::channel(1);
            (
                rx,
                self.rt
                    .handle()
                    .spawn(produce(client, ctx, objects, parallel, tx)),
            )
        };
        Ok(ObjectReader {
            rx,
            current: Bytes::new(),
            failed: None,
            done: false,
            task,
            _rt: self.rt.clone(),
        })
    }
}

/// Aborts its task when dropped: fetches stop with the reader.
struct Fetch(tokio::task::JoinHandle<Result<Bytes, StoreError>>);

impl Drop for Fetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn produce(
    client: Arc<dyn ObjectStore>,
    ctx: Arc<Context>,
    objects: Vec<(Arc<str>, Arc<Path>)>,
    parallel: usize,
    tx: Sender,
) {
    // Fetches are tasks of their own, so they go on while this one waits
    // for a size or for the reader; they are collected in order.
    let mut in_flight: VecDeque<Fetch> = VecDeque::with_capacity(parallel);
    // Sends the oldest fetch's bytes; false when the reader is gone or the
    // fetch failed (then the error was sent and nothing more will be).
    async fn deliver(fetch: Fetch, tx: &Sender) -> bool {
        let r = match (&mut { fetch }.0).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::new(
                StoreErrorKind::Other,
                format!("an object fetch ended abnormally: {e}"),
            )),
        };
        let ok = r.is_ok();
        tx.send(r.map(Some)).await.is_ok() && ok
    }
    macro_rules! room {
        () => {
            if in_flight.len() >= parallel {
                let f = in_flight.pop_front().expect("parallel >= 1");
                if !deliver(f, &tx).await {
                    return;
                }
            }
        };
    }
    for (key, path) in objects {
        // The first range's answer tells the object's size (no HEAD): its
        // headers come back through `size_rx` while its body streams in.
        room!();
        let (size_tx, size_rx) = oneshot::channel();
        let (c, x, k, p) = (client.clone(), ctx.clone(), key.clone(), path.clone());
        in_flight.push_back(Fetch(tokio::spawn(async move {
            first(&*c, &x, &k, &p, size_tx).await
        })));
        let Ok(size) = size_rx.await else {
            // It failed: deliver what came before, then its error.
            while let Some(f) = in_flight.pop_front() {
                if !deliver(f, &tx).await {
                    return;
                }
            }
            return;
        };
        let mut start = RANGE.min(size);
        while start < size {
            let end = (start + RANGE).min(size);
            room!();
            let job = Job {
                key: key.clone(),
                path: path.clone(),
                start,
                end,
            };
            let (client, ctx) = (client.clone(), ctx.clone());
            in_flight.push_back(Fetch(tokio::spawn(async move {
                fetch(&*client, &ctx, job).await
            })));
            start = end;
        }
    }
    while let Some(f) = in_flight.pop_front() {
        if !deliver(f, &tx).await {
            return;
        }
    }
    let _ = tx.send(Ok(None)).await;
}

/// Each object with one GET, its body passed on as it arrives; a body
/// shorter or longer than the object's size is an error.
async fn stream_whole(
    client: Arc<dyn ObjectStore>,
    ctx: Arc<Context>,
    objects: Vec<(Arc<str>, Arc<Path>)>,
    tx: Sender,
) {
    for (key, path) in objects {
        let op = Op::Read(&key);
        let got = match client.get(&path).await {
            Ok(got) => got,
            Err(e) => {
                let _ = tx.send(Err(classify(&e, &ctx, op))).await;
                return;
            }
        };
        let size = got.meta.size;
        let mut body = got.into_stream();
        let mut seen = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(classify(&e, &ctx, op))).await;
                    return;
                }
            };
            seen += chunk.len() as u64;
            if seen > size {
                break;
            }
            if tx.send(Ok(Some(chunk))).await.is_err() {
                return;
            }
        }
        if seen != size {
            let _ = tx.send(Err(short_body(&ctx, op, 0, size, seen))).await;
            return;
        }
    }
    let _ = tx.send(Ok(None)).await;
}

/// An object's first range; sends its size on `size_tx` once known.
async fn first(
    client: &dyn ObjectStore,
    ctx: &Context,
    key: &str,
    path: &Path,
    size_tx: oneshot::Sender<u64>,
) -> Result<Bytes, StoreError> {
    let op = Op::Read(key);
    let opts = GetOptions {
        range: Some(GetRange::Bounded(0..RANGE)),
        ..GetOptions::default()
    };
    let got = match client.get_opts(path, opts).await {
        Ok(got) => got,
        Err(e) => {
            let err = classify(&e, ctx, op);
            // No range of an empty object exists (S3 answers 416): ask its
            // size before calling the answer an error.
            if matches!(err.kind, StoreErrorKind::Other | StoreErrorKind::Corrupt) {
                if let Ok(meta) = client.head(path).await {
                    if meta.size == 0 {
                        let _ = size_tx.send(0);
                        return Ok(Bytes::new());
                    }
                }
            }
            return Err(err);
        }
    };
    let want = got.range.end - got.range.start;
    let _ = size_tx.send(got.meta.size);
    let bytes = got.bytes().await.map_err(|e| classify(&e, ctx, op))?;
    check_length(ctx, op, 0, want, bytes)
}

async fn fetch(client: &dyn ObjectStore, ctx: &Context, job: Job) -> Result<Bytes, StoreError> {
    let op = Op::Read(&job.key);
    let bytes = client
        .get_range(&job.path, job.start..job.end)
        .await
        .map_err(|e| classify(&e, ctx, op))?;
    check_length(ctx, op, job.start, job.end - job.start, bytes)
}

fn check_length(
    ctx: &Context,
    op: Op,
    start: u64,
    want: u64,
    bytes: Bytes,
) -> Result<Bytes, StoreError> {
    if bytes.len() as u64 == want {
        return Ok(bytes);
    }
    Err(short_body(ctx, op, start, want, bytes.len() as u64))
}

fn short_body(ctx: &Context, op: Op, start: u64, want: u64, got: u64) -> StoreError {
    StoreError::new(
        StoreErrorKind::Corrupt,
        format!(
            "{}: the store sent {got} bytes at offset {start} where its size says {want}",
            op.failed(ctx),
        ),
    )
    .hint("The object changed while it was read, or the store is inconsistent.")
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.current.is_empty() {
                let n = buf.len().min(self.current.len());
                buf[..n].copy_from_slice(&self.current.split_to(n));
                return Ok(n);
            }
            if let Some(e) = &self.failed {
                return Err(e.clone().into());
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            // Not tokio's blocking_recv: that panics on a runtime's thread,
            // and callers may be on one.
            match futures::executor::block_on(self.rx.recv()) {
                Some(Ok(Some(b))) => self.current = b,
                Some(Ok(None)) => self.done = true,
                Some(Err(e)) => self.failed = Some(e),
                None => {
                    self.failed = Some(StoreError::new(
                        StoreErrorKind::Other,
                        "the object reader's task ended early",
                    ))
                }
            }
        }
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("done", &self.done)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
