//! A store's URL, read as barman-cloud reads it (barman/cloud_providers):
//! `s3://BUCKET/PREFIX`; `gs://BUCKET/PREFIX` or the console's
//! `https://console.cloud.google.com/storage/browser/BUCKET/PREFIX`;
//! `http(s)://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX`, or an
//! emulator's `http://HOST:PORT/ACCOUNT/CONTAINER/PREFIX`. The prefix is the
//! store's root, without its outer slashes.

use super::error::StoreError;
use super::keys::is_key;
use super::Provider;
use crate::report::escape;

const AZURE_DOMAIN: &str = ".blob.core.windows.net";
const GCS_CONSOLE: &str = "https://console.cloud.google.com/storage/browser/";

/// Where a store's objects are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    S3 {
        bucket: String,
    },
    Azure {
        account: String,
        container: String,
        /// `scheme://host[:port]` for an `ACCOUNT.blob.core.windows.net`
        /// URL; `scheme://host:port/ACCOUNT` for an emulator's.
        endpoint: String,
        /// The emulator's form, which barman-cloud takes only with a
        /// connection string.
        emulated: bool,
    },
    Gcs {
        bucket: String,
    },
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub provider: Provider,
    pub place: Place,
    /// The root prefix: a clean key without a final `/`, or empty.
    pub root: String,
}

impl Location {
    /// The bucket's (container's) name, for messages.
    pub fn bucket(&self) -> &str {
        match &self.place {
            Place::S3 { bucket } | Place::Gcs { bucket } => bucket,
            Place::Azure { container, .. } => container,
        }
    }
}

/// Parses `url` for `provider` (inferred from the URL when `None`).
pub(crate) fn parse(url: &str, provider: Option<Provider>) -> Result<Location, StoreError> {
    let bad = |why: &str| {
        StoreError::invalid(format!(
            "invalid store URL \"{}\": {why}",
            escape(&shown(url))
        ))
        .hint(
            "Give the URL as barman-cloud takes it: s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, \
             https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX, or an Azure emulator's \
             http://HOST:PORT/ACCOUNT/CONTAINER/PREFIX.",
        )
    };
    if url.contains(['?', '#']) || url.chars().any(char::is_control) {
        // A query could carry a SAS token; barman-cloud's URLs never have one.
        return Err(bad(
            "it has a query or fragment (credentials belong in the environment)",
        ));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(bad("no bucket or host"));
    }
    if authority.contains('@') {
        return Err(bad(
            "it names a user (credentials belong in the environment)",
        ));
    }
    let inferred = match scheme {
        "s3" => Provider::AwsS3,
        "gs" => Provider::GoogleCloudStorage,
        "http" | "https" if url.starts_with(GCS_CONSOLE) => Provider::GoogleCloudStorage,
        "http" | "https" => Provider::AzureBlobStorage,
        "azure" | "az" | "abfs" | "abfss" => {
            return Err(bad("barman-cloud does not take this form for Azure; use \
                 https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX"))
        }
        _ => return Err(bad("unknown scheme")),
    };
    let provider = provider.unwrap_or(inferred);
    if provider != inferred {
        return Err(bad(&format!(
            "this URL is for {inferred}, but the store's provider is {provider}"
        )));
    }
    let root = |p: &str| -> Result<String, StoreError> {
        let p = p.trim_matches('/');
        if is_key(p) {
            Ok(p.to_string())
        } else {
            Err(bad(
                "its prefix is not a clean path (empty, `.` or `..` segments)",
            ))
        }
    };
    let (place, root) = match (provider, scheme) {
        (Provider::AwsS3, _) => (
            Place::S3 {
                bucket: authority.to_string(),
            },
            root(path)?,
        ),
        (Provider::GoogleCloudStorage, "gs") => (
            Place::Gcs {
                bucket: authority.to_string(),
            },
            root(path)?,
        ),
        (Provider::GoogleCloudStorage, _) => {
            let rest = &url[GCS_CONSOLE.len()..];
            let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket"));
            }
            (
                Place::Gcs {
                    bucket: bucket.to_string(),
                },
                root(path)?,
            )
        }
        (Provider::AzureBlobStorage, _) => {
            let host = authority.split(':').next().unwrap_or(authority);
            let mut segs = path.splitn(2, '/');
            if let Some(account) = host.strip_suffix(AZURE_DOMAIN) {
                let container = segs.next().unwrap_or("");
                if account.is_empty() || container.is_empty() {
                    return Err(bad("no account or container"));
                }
                (
                    Place::Azure {
                        account: account.to_string(),
                        container: container.to_string(),
                        endpoint: format!("{scheme}://{authority}"),
                        emulated: false,
                    },
                    root(segs.next().unwrap_or(""))?,
                )
            } else {
                let account = segs.next().unwrap_or("");
                let rest = segs.next().unwrap_or("");
                let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if account.is_empty() || container.is_empty() {
                    return Err(bad(
                        "an emulator's URL is http://HOST:PORT/ACCOUNT/CONTAINER/PREFIX",
                    ));
                }
                (
                    Place::Azure {
                        account: account.to_string(),
                        container: container.to_string(),
                        endpoint: format!("{scheme}://{authority}/{account}"),
                        emulated: true,
                    },
                    root(prefix)?,
                )
            }
        }
    };
    Ok(Location {
        provider,
        place,
        root,
    })
}

/// An endpoint URL (`--endpoint-url`): `http(s)://HOST[:PORT][/PATH]`,
/// without credentials or a query. Returns it without a final `/`.
pub(crate) fn check_endpoint(endpoint: &str) -> Result<String, StoreError> {
    let bad = |why: &str| {
        StoreError::invalid(format!(
            "invalid store endpoint URL \"{}\": {why}",
            escape(&shown(endpoint))
        ))
        .hint("Give it as barman-cloud's --endpoint-url takes it, e.g. https://minio.example.com:9000.")
    };
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| bad("not an http:// or https:// URL"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if authority.contains('@') || endpoint.contains(['?', '#']) {
        return Err(bad(
            "it has a user or a query (credentials belong in the environment)",
        ));
    }
    if endpoint
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(bad("it has spaces or control characters"));
    }
    Ok(endpoint.trim_end_matches('/').to_string())
}

/// `url` without what could be a credential (a query, a fragment, a user
/// and password), for messages.
fn shown(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            let slash = if rest.contains('/') { "/" } else { "" };
            format!("{scheme}://{host}{slash}{path}")
        }
        None => url.to_string(),
    }
}

/// `host[:port]` of an `http(s)://` URL, for messages.
pub(crate) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> Location {
        parse(url, None).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn barman_cloud_urls() {
        let l = ok("s3://bucket/pg/prefix/");
        assert_eq!(l.provider, Provider::AwsS3);
        assert_eq!(
            l.place,
            Place::S3 {
                bucket: "bucket".into()
            }
        );
        assert_eq!(l.root, "pg/prefix");
        assert_eq!(ok("s3://bucket").root, "");
        assert_eq!(ok("s3://bucket/").root, "");

        let l = ok("gs://b/x");
        assert_eq!(l.provider, Provider::GoogleCloudStorage);
        assert_eq!((l.bucket(), l.root.as_str()), ("b", "x"));
        let l = ok("https://console.cloud.google.com/storage/browser/b/x/y");
        assert_eq!(l.provider, Provider::GoogleCloudStorage);
        assert_eq!((l.bucket(), l.root.as_str()), ("b", "x/y"));

        let l = ok("https://acct.blob.core.windows.net/cont/a/b");
        assert_eq!(
            l.place,
            Place::Azure {
                account: "acct".into(),
                container: "cont".into(),
                endpoint: "https://acct.blob.core.windows.net".into(),
                emulated: false,
            }
        );
        assert_eq!(l.root, "a/b");
        let l = ok("http://127.0.0.1:10000/devstoreaccount1/cont/pfx");
        assert_eq!(
            l.place,
            Place::Azure {
                account: "devstoreaccount1".into(),
                container: "cont".into(),
                endpoint: "http://127.0.0.1:10000/devstoreaccount1".into(),
                emulated: true,
            }
        );
        assert_eq!(l.root, "pfx");
        assert_eq!(ok("http://127.0.0.1:10000/devstoreaccount1/cont").root, "");
    }

    #[test]
    fn refused_urls() {
        for (url, provider) in [
            ("s3://", None),
            ("s3:///x", None),
            ("bucket/x", None),
            ("ftp://h/x", None),
            ("azure://cont/x", None),
            ("s3://b/x?sig=secret", None),
            (
                "https://acct.blob.core.windows.net/c/p?sv=2020&sig=abc",
                None,
            ),
            ("https://user:pw@acct.blob.core.windows.net/c/p", None),
            ("s3://b/../x", None),
            ("s3://b/a//c", None),
            ("http://127.0.0.1:10000/devstoreaccount1", None),
            ("https://acct.blob.core.windows.net/", None),
            ("s3://b/x", Some(Provider::AzureBlobStorage)),
            ("http://127.0.0.1:9000/b/x", Some(Provider::AwsS3)),
        ] {
            let e = parse(url, provider).unwrap_err();
            assert_eq!(e.kind, super::super::StoreErrorKind::InvalidConfig, "{url}");
            assert!(
                !e.message.contains("sig=") && !e.message.contains("pw@"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            check_endpoint("http://127.0.0.1:9000/").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert!(check_endpoint("127.0.0.1:9000").is_err());
        let e = check_endpoint("https://key:secret@h").unwrap_err();
        assert!(!e.message.contains("secret"), "{}", e.message);
        assert!(check_endpoint("https://h/?x=1").is_err());
        assert_eq!(host_of("http://127.0.0.1:9000/a"), "127.0.0.1:9000");
        assert_eq!(
            host_of("https://acct.blob.core.windows.net"),
            "acct.blob.core.windows.net"
        );
    }
}
