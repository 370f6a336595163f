//! Listing, small reads and lookups: one call each, bounded (a listing by
//! its entry count, a read by its size) and confined under the root.

use futures::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStoreExt};

use super::classify::{classify, Op};
use super::error::{StoreError, StoreErrorKind};
use super::keys;
use super::{Listing, ObjectMeta, Store};

/// `key` (already joined under the root) as the library's path.
pub(crate) fn path(full: &str, failed: impl FnOnce() -> String) -> Result<Path, StoreError> {
    Path::parse(full.trim_end_matches('/')).map_err(|e| {
        StoreError::invalid(format!("{}: not a key the client can use", failed()))
            .detail(e.to_string())
    })
}

impl Store {
    /// The objects whose keys start with `prefix` (relative to the root;
    /// `""` for all). With `delimited`, only those directly under the
    /// prefix's last `/`, and the "directories" one level down. More than
    /// `limit` entries is a `TooMany` error, never a cut.
    pub fn list(&self, prefix: &str, delimited: bool, limit: usize) -> Result<Listing, StoreError> {
        let full = keys::full_prefix(&self.root, prefix, &self.ctx.describe)?;
        let failed = || Op::List(prefix).failed(&self.ctx);
        // The library lists "directories": list the one holding the prefix
        // and keep the keys that start with it.
        let dir = match full.rfind('/') {
            Some(i) => &full[..i],
            None => "",
        };
        let rest = full[dir.len()..].trim_start_matches('/');
        let dir_path = (!dir.is_empty()).then(|| path(dir, failed)).transpose()?;
        // Keys after `full` minus its last character include every key
        // starting with `full` (servers list in byte order): start there.
        let offset = match rest.char_indices().last() {
            Some((i, _)) if i > 0 => Some(path(&full[..full.len() - rest.len() + i], failed)?),
            _ => None,
        };
        let client = self.client.clone();
        let ctx = self.ctx.clone();
        let root = self.root.clone();
        let prefix_owned = prefix.to_string();
        self.rt.run(async move {
            let op = Op::List(&prefix_owned);
            let too_many = || {
                StoreError::new(
                    StoreErrorKind::TooMany,
                    format!("{}: more than {limit} entries", op.failed(&ctx)),
                )
                .hint("List a narrower prefix.")
            };
            let mut listing = Listing::default();
            let rel = |k: &str| keys::relative(&root, k).map(str::to_string);
            if delimited {
                let r = client
                    .list_with_delimiter(dir_path.as_ref())
                    .await
                    .map_err(|e| classify(&e, &ctx, op))?;
                for o in r.objects {
                    if o.location.as_ref().starts_with(&full) {
                        if let Some(key) = rel(o.location.as_ref()) {
                            listing.objects.push(ObjectMeta { key, size: o.size });
                        }
                    }
                }
                for p in r.common_prefixes {
                    let p = format!("{p}/");
                    if p.starts_with(&full) {
                        if let Some(key) = rel(&p) {
                            listing.prefixes.push(key);
                        }
                    }
                }
                if listing.objects.len() + listing.prefixes.len() > limit {
                    return Err(too_many());
                }
            } else {
                let mut stream = match &offset {
                    Some(o) => client.list_with_offset(dir_path.as_ref(), o),
                    None => client.list(dir_path.as_ref()),
                };
                while let Some(item) = stream.next().await {
                    let o = item.map_err(|e| classify(&e, &ctx, op))?;
                    let k = o.location.as_ref();
                    if !k.starts_with(&full) {
                        if k > full.as_str() {
                            break;
                        }
                        continue;
                    }
                    if let Some(key) = rel(k) {
                        listing.objects.push(ObjectMeta { key, size: o.size });
                    }
                    if listing.objects.len() > limit {
                        return Err(too_many());
                    }
                }
            }
            listing.objects.sort();
            listing.prefixes.sort();
            Ok(listing)
        })
    }

    /// The whole of a small object. One larger than `max_bytes` is a
    /// `TooLarge` error, found from the answer's length before its body is
    /// read; a missing one is `NotFound`.
    pub fn read_small(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StoreError> {
        let full = keys::full_key(&self.root, key, &self.ctx.describe)?;
        let p = path(&full, || Op::Read(key).failed(&self.ctx))?;
        let client = self.client.clone();
        let ctx = self.ctx.clone();
        let key = key.to_string();
        self.rt.run(async move {
            let op = Op::Read(&key);
            let too_large = |size: u64| {
                StoreError::new(
                    StoreErrorKind::TooLarge,
                    format!(
                        "{}: {size} bytes, more than the {max_bytes} allowed",
                        op.failed(&ctx)
                    ),
                )
            };
            let got = match client.get_opts(&p, GetOptions::default()).await {
                Ok(got) => got,
                Err(e) => {
                    let e = classify(&e, &ctx, op);
                    if e.kind != StoreErrorKind::NotFound {
                        return Err(e);
                    }
                    // Some servers' 404 does not say what is missing.
                    return Err(bucket_missing(client.as_ref(), &p, &ctx, op)
                        .await
                        .unwrap_or(e));
                }
            };
            let size = got.meta.size;
            if size > max_bytes {
                return Err(too_large(size));
            }
            let mut body = Vec::with_capacity(size as usize);
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| classify(&e, &ctx, op))?;
                body.extend_from_slice(&chunk);
                if body.len() as u64 > size {
                    return Err(too_large(body.len() as u64));
                }
            }
            if (body.len() as u64) < size {
                return Err(StoreError::new(
                    StoreErrorKind::Corrupt,
                    format!(
                        "{}: the store sent {} of its {size} bytes",
                        op.failed(&ctx),
                        body.len()
                    ),
                ));
            }
            Ok(body)
        })
    }

    /// An object's size (a HEAD request); `None` when the store has no
    /// such object. A HEAD's 404 has no body to say whether the object or
    /// the whole bucket (container) is missing: then one listing asks, and
    /// a missing bucket is a `NoBucket` error (the store's configuration).
    pub fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let full = keys::full_key(&self.root, key, &self.ctx.describe)?;
        let p = path(&full, || Op::Head(key).failed(&self.ctx))?;
        let client = self.client.clone();
        let ctx = self.ctx.clone();
        let key = key.to_string();
        self.rt.run(async move {
            match client.head(&p).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => {
                    match bucket_missing(client.as_ref(), &p, &ctx, Op::Head(&key)).await {
                        Some(e) => Err(e),
                        None => Ok(None),
                    }
                }
                Err(e) => Err(classify(&e, &ctx, Op::Head(&key))),
            }
        })
    }
}

/// After a 404 for object `p` that did not say what was missing (a HEAD's
/// has no body; some servers' GET says only "Not Found"): the error for a
/// missing bucket (container), asked with the first page of a listing under
/// the key, or `None` when the bucket is there. Any other failure of this
/// second question (a grant that may read but not list) is `None` too.
async fn bucket_missing(
    client: &dyn object_store::ObjectStore,
    p: &Path,
    ctx: &super::Context,
    op: Op<'_>,
) -> Option<StoreError> {
    match client.list(Some(p)).next().await {
        Some(Err(e)) => Some(classify(&e, ctx, op)).filter(|e| e.kind == StoreErrorKind::NoBucket),
        _ => None,
    }
}
