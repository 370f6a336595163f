//! `unpack-objects` (contract 1.3.0): tar archives in an object store
//! (barman-cloud's `data.tar.gz` and its parts, a tablespace's `OID.tar`),
//! downloaded by the host with parallel ranged requests and unpacked as they
//! arrive by the same engine as `unpack-archive`
//! ([`super::unpack_archive`]): the same entry checks, confinement, budget
//! and parallelism across archives. Every key is checked against the
//! plugin's `store-read` grants before anything is requested.

use std::io::Read;
use std::sync::Arc;

use super::super::{Kind, Running, Validation};
use super::unpack_archive::{self, ArchiveFrom, SourceError, UnpackArchive};
use crate::contract::source::{ObjectParts, UnpackObjectsStep};
use crate::report::Failure;
use crate::store::{Store, StoreError};

/// Ranged requests in flight for an object read alone. Objects read side by
/// side (a backup's parts) are one streamed GET each: as many connections,
/// and a server reads each object once.
const REQUESTS_FOR_ONE: usize = 4;

/// A validated `unpack-objects` step: the archives it comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackObjects {
    /// One per object (`separate`), or one for all of them (`joined`).
    pub archives: Vec<UnpackArchive>,
}

impl Kind for UnpackObjects {
    type Asked = UnpackObjectsStep;

    fn check(u: &UnpackObjectsStep, v: &Validation<'_>) -> Result<Self, Failure> {
        if u.objects.is_empty() {
            return Err(v.malformed("an unpack-objects step names no object"));
        }
        for key in &u.objects {
            if key.is_empty() || key.ends_with('/') {
                return Err(v.malformed(format!(
                    "\"{}\" is not the key of an object",
                    key.escape_debug()
                )));
            }
            v.granted_key(&u.store, key, "plans to read an object it may not read")?;
        }
        let store = v.store(&u.store)?;
        let local = v.resolve(&u.local)?;
        // Each object's size, asked now: a missing object is refused before
        // anything is written, and a short download is noticed.
        let mut sizes = Vec::with_capacity(u.objects.len());
        for key in &u.objects {
            match store.size(key) {
                Ok(Some(n)) => sizes.push(n),
                Ok(None) => {
                    return Err(Failure::new(format!(
                        "object \"{key}\" is not in {}",
                        store.describe()
                    ))
                    .hint("the backup is incomplete or was deleted: list the backups (barman-cloud-backup-list) and clone another with --backup-id"))
                }
                Err(e) => return Err(store_failure(&e)),
            }
        }
        let side_by_side = u.parts == ObjectParts::Separate && u.objects.len() > 1;
        let requests = if side_by_side { 1 } else { REQUESTS_FOR_ONE };
        let archive = |keys: Vec<String>, size_bytes: u64| UnpackArchive {
            from: stream(&store, keys, requests),
            compression: u.compression,
            local: local.clone(),
            size_bytes,
        };
        let archives = match u.parts {
            ObjectParts::Separate => u
                .objects
                .iter()
                .zip(&sizes)
                .map(|(k, n)| archive(vec![k.clone()], *n))
                .collect(),
            ObjectParts::Joined => vec![archive(u.objects.clone(), sizes.iter().sum())],
        };
        Ok(UnpackObjects { archives })
    }

    fn describe(&self) -> Vec<String> {
        self.archives.iter().flat_map(|a| a.describe()).collect()
    }

    /// These archives and those of the unpack steps right after, in parallel.
    async fn run(&self, r: &mut Running<'_>) -> anyhow::Result<()> {
        unpack_archive::run_batch(self.archives.clone(), r).await
    }
}

/// The objects `keys` of `store`, read in order as one stream with
/// `requests` in flight.
fn stream(store: &Arc<Store>, keys: Vec<String>, requests: usize) -> ArchiveFrom {
    let label = match keys.as_slice() {
        [one] => store.url_of(one),
        [first, .., last] => format!("{} .. {last}", store.url_of(first)),
        [] => store.describe(),
    };
    let store = store.clone();
    ArchiveFrom::Stream {
        label,
        origin: store.describe(),
        open: Arc::new(move || {
            let reader = store
                .reader(&keys, requests)
                .map_err(|e| std::io::Error::other(source_error(&e)))?;
            Ok(Box::new(StoreStream(reader)) as Box<dyn Read + Send>)
        }),
    }
}

/// A store's reader whose failures say they are the store's, not the archive's.
struct StoreStream<R>(R);

impl<R: Read> Read for StoreStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            match e.get_ref().and_then(|x| x.downcast_ref::<StoreError>()) {
                Some(s) => std::io::Error::other(source_error(s)),
                None => e,
            }
        })
    }
}

fn source_error(e: &StoreError) -> SourceError {
    SourceError {
        message: e.to_string(),
        detail: e.detail.clone(),
        hint: e.hint.clone(),
    }
}

fn store_failure(e: &StoreError) -> Failure {
    let mut f = Failure::new(e.to_string());
    if let Some(d) = &e.detail {
        f = f.detail(d.clone());
    }
    if let Some(h) = &e.hint {
        f = f.hint(h.clone());
    }
    f
}
