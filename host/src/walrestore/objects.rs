//! Fetching WAL from an object store (contract 1.3.0's `wal-store`, e.g.
//! barman-cloud's `SERVER/wals/`): one listing finds the object a name is
//! stored under (its ending says nothing the bytes do not: the compression
//! is read from the data), then the object is downloaded and landed like
//! any other fetched file, bounded by the cluster's segment size.
//! Downloads of a prefetch batch run in parallel.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use super::archive::StoreWal;
use super::fetch::{Fetcher, Landing};
use super::landing::{land, LandError, Landed};
use super::{exit, problem, Problem};
use crate::report::Failure;
use crate::store::{Store, StoreError, StoreErrorKind};

/// Downloads in flight for a prefetch batch.
const PARALLEL_DOWNLOADS: usize = 4;

/// Objects one listing of a WAL "directory" may hold (a timeline and log
/// of 1 MiB segments holds 4096 of them, each in a few forms at most).
const MAX_LISTED: usize = 50_000;

/// A store's failure as wal-restore reports it: a configuration problem
/// (2: the store's settings, a missing bucket or container), or the store
/// unreachable, failing or refusing the credentials (3, retried in a
/// targeted recovery), as the Barman path reports an ssh login refused.
pub(super) fn store_problem(e: &StoreError) -> Problem {
    let code = match e.kind {
        StoreErrorKind::InvalidConfig | StoreErrorKind::NoBucket => exit::USAGE,
        _ => exit::UNREACHABLE,
    };
    let mut f = Failure::new(e.to_string());
    if let Some(d) = &e.detail {
        f = f.detail(d.clone());
    }
    if let Some(h) = &e.hint {
        f = f.hint(h.clone());
    }
    problem(code, f)
}

/// A landing that failed because the store did (not because of the bytes).
fn store_failure_in(e: &LandError) -> Option<&StoreError> {
    match e {
        LandError::Io(io) | LandError::Corrupt(io) => {
            io.get_ref().and_then(|x| x.downcast_ref::<StoreError>())
        }
        LandError::TooLarge { .. } => None,
    }
}

impl Fetcher<'_> {
    /// The store the archive names.
    pub fn open_store(&self, w: &StoreWal) -> Result<Arc<Store>, Problem> {
        self.source
            .store(&w.store)
            .map_err(|f| problem(exit::USAGE, f))
    }

    /// The keys under which the store holds each of `names` (the first
    /// ending of `w.suffixes` that exists), one listing per directory.
    pub fn find_objects(
        &self,
        store: &Store,
        w: &StoreWal,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, Problem> {
        let mut by_dir: BTreeMap<String, Vec<&String>> = BTreeMap::new();
        for n in names {
            super::fetch::require_wal_name(n)?;
            by_dir.entry(w.dir_of(n)).or_default().push(n);
        }
        let mut found = BTreeMap::new();
        for (dir, wanted) in by_dir {
            // One name: list only its own objects; several: the directory.
            let prefix = match wanted.as_slice() {
                [one] => format!("{dir}{one}"),
                _ => dir.clone(),
            };
            let listing = store
                .list(&prefix, false, MAX_LISTED)
                .map_err(|e| store_problem(&e))?;
            let keys: std::collections::BTreeSet<&str> =
                listing.objects.iter().map(|o| o.key.as_str()).collect();
            for n in wanted {
                let hit = w
                    .suffixes
                    .iter()
                    .map(|s| format!("{dir}{n}{s}"))
                    .find(|k| keys.contains(k.as_str()));
                if let Some(k) = hit {
                    found.insert(n.clone(), k);
                }
            }
        }
        Ok(found)
    }

    /// Downloads `key` and lands it as `name` (decompressed as its bytes
    /// say). A store that fails is a problem (unreachable); bytes that are
    /// not what they should be are the caller's to judge.
    pub fn download(
        &self,
        store: &Store,
        key: &str,
        name: &str,
        into: Landing,
    ) -> Result<Result<Landed, LandError>, Problem> {
        let reader = store
            .reader(&[key.to_string()], 1)
            .map_err(|e| store_problem(&e))?;
        match land(into.dir, name, reader, into.limit) {
            Err(e) => match store_failure_in(&e) {
                Some(s) => Err(store_problem(s)),
                None => Ok(Err(e)),
            },
            ok => Ok(ok),
        }
    }

    /// The file the store holds as `stored` (a name, or its `.partial`),
    /// landed as `name`; `None` when the store does not hold it.
    pub fn read_store(
        &self,
        w: &StoreWal,
        stored: &str,
        name: &str,
        into: Landing,
    ) -> Result<Option<Result<Landed, LandError>>, Problem> {
        let store = self.open_store(w)?;
        let found = self.find_objects(&store, w, &[stored.to_string()])?;
        match found.get(stored) {
            Some(key) => self.download(&store, key, name, into).map(Some),
            None => Ok(None),
        }
    }

    /// Downloads the files of `names` the store holds, up to
    /// [`PARALLEL_DOWNLOADS`] at a time, handing each to `each` in order as
    /// soon as it and those before it have landed (a sliding window: the
    /// next download starts when any ends, never waiting for a slower one
    /// of a batch); stops at the first the store does not hold (the end of
    /// the archive), and at the first failure after handing over those
    /// before it.
    pub fn stream_store(
        &self,
        w: &StoreWal,
        names: &[String],
        into: Landing,
        each: &mut dyn FnMut(String, Result<Landed, LandError>),
    ) -> Result<(), Problem> {
        let store = self.open_store(w)?;
        let found = self.find_objects(&store, w, names)?;
        let present: Vec<(&String, &String)> = names
            .iter()
            .map_while(|n| found.get(n).map(|k| (n, k)))
            .collect();
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel();
            for _ in 0..PARALLEL_DOWNLOADS.min(present.len()) {
                let tx = tx.clone();
                let (next, stop, present, store) = (&next, &stop, &present, &store);
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((name, key)) = present.get(i) else {
                            break;
                        };
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            self.download(store, key, name, into)
                        }))
                        .unwrap_or_else(|_| {
                            Err(problem(
                                exit::UNREACHABLE,
                                Failure::new("a download thread panicked"),
                            ))
                        });
                        if tx.send((i, r)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            // Results arrive as downloads end; they are handed on in order.
            let mut arrived = BTreeMap::new();
            let mut due = 0;
            for (i, r) in rx {
                arrived.insert(i, r);
                while let Some(r) = arrived.remove(&due) {
                    match r {
                        Ok(landed) => each(present[due].0.clone(), landed),
                        Err(p) => {
                            stop.store(true, Ordering::Relaxed);
                            return Err(p);
                        }
                    }
                    due += 1;
                }
            }
            Ok(())
        })
    }
}
