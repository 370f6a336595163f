//! Object stores holding barman-cloud backups: S3 (and S3-compatible
//! servers), Azure Blob Storage and Google Cloud Storage, read through
//! `object_store`. A [`Store`] is opened from the operator's [`StoreSpec`]
//! (credentials come from the provider's usual chain, as barman-cloud finds
//! them, never from the spec); its synchronous methods confine every key
//! under the store's root, bound every request in time, and name the store
//! (and the key) in every error, never a credential.

mod aws;
mod aws_files;
mod azure;
mod classify;
mod env;
mod error;
mod gcs;
mod keys;
mod location;
mod ops;
mod reader;
mod runtime;
mod secret;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

pub use error::{StoreError, StoreErrorKind};
pub use reader::ObjectReader;

use crate::report::escape;
use location::Place;
use secret::Secret;

/// An object store provider, named as barman-cloud's `--cloud-provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    AwsS3,
    AzureBlobStorage,
    GoogleCloudStorage,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::AwsS3 => "aws-s3",
            Provider::AzureBlobStorage => "azure-blob-storage",
            Provider::GoogleCloudStorage => "google-cloud-storage",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Provider, StoreError> {
        match s {
            "aws-s3" => Ok(Provider::AwsS3),
            "azure-blob-storage" => Ok(Provider::AzureBlobStorage),
            "google-cloud-storage" => Ok(Provider::GoogleCloudStorage),
            _ => Err(StoreError::invalid(format!(
                "unknown object store provider \"{}\"",
                escape(s)
            ))
            .hint("The providers are barman-cloud's: aws-s3, azure-blob-storage, google-cloud-storage.")),
        }
    }
}

/// A store as the operator configured it. No secret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    /// The logical name plugins use, e.g. `barman-cloud`.
    pub name: String,
    /// The URL as barman-cloud takes it (see [`location`]).
    pub url: String,
    /// barman-cloud's `--endpoint-url` (S3-compatible servers).
    pub endpoint_url: Option<String>,
    /// Inferred from the URL when `None`.
    pub provider: Option<Provider>,
    /// The AWS profile (barman-cloud's `--aws-profile`).
    pub profile: Option<String>,
    /// How long a request may wait for an answer, or a body for its next
    /// bytes; connecting is limited to the smaller of this and 10 s.
    pub timeout: Duration,
}

/// A listing: objects and, for a delimited listing, the "directories" one
/// level down (ending in `/`); keys relative to the store's root, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<ObjectMeta>,
    pub prefixes: Vec<String>,
}

/// An object's key (relative to the store's root) and size.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
}

/// A client as a provider's module built it.
pub(crate) struct Built {
    pub store: Arc<dyn ObjectStore>,
    /// The endpoint requests go to, for messages (no credential in it).
    pub endpoint: String,
    /// Whether `endpoint` was configured (and so worth showing).
    pub custom_endpoint: bool,
    /// Values to scrub from texts the client library returns.
    pub secrets: Vec<Secret>,
    /// Where the credentials are looked for, for an authentication error.
    pub auth_hint: String,
}

/// The client's own `Debug` may show credentials: not used.
impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Built")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// What errors need to name and explain a failure; shared with the tasks.
#[derive(Debug)]
pub(crate) struct Context {
    /// `store "NAME" (URL[ at ENDPOINT])`.
    pub describe: String,
    /// `host[:port]` requests go to.
    pub host: String,
    pub provider: Provider,
    pub bucket: String,
    pub timeout: Duration,
    pub auth_hint: String,
    pub secrets: Vec<Secret>,
}

/// An opened object store: a client and its root prefix.
pub struct Store {
    ctx: Arc<Context>,
    root: String,
    /// The URL as the operator gave it (for messages).
    url: String,
    client: Arc<dyn ObjectStore>,
    rt: Arc<runtime::Runtime>,
}

/// Retries after the first attempt of a request.
const RETRIES: usize = 2;

impl Store {
    /// Opens `spec`: parses its URL, finds credentials through the
    /// provider's chain, builds the client. Sends no request.
    pub fn open(spec: &StoreSpec) -> Result<Store, StoreError> {
        Self::open_in(spec, &env::ProcessEnv)
    }

    /// As [`Store::open`], with these environment variables in place of
    /// the process's (credential files are read as usual; object_store's
    /// last-resort chains — web identity, managed identity, metadata
    /// servers — still read the process's). For a caller that keeps a
    /// store's environment apart from its own, and for tests.
    pub fn open_with_env(spec: &StoreSpec, vars: &[(&str, &str)]) -> Result<Store, StoreError> {
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::open_in(spec, &env::VarsEnv(vars))
    }

    fn open_in(spec: &StoreSpec, env: &dyn env::Env) -> Result<Store, StoreError> {
        let name = format!("store \"{}\"", escape(&spec.name));
        let in_store = |e: StoreError| StoreError {
            message: format!("{name}: {}", e.message),
            ..e
        };
        let loc = location::parse(&spec.url, spec.provider).map_err(in_store)?;
        if spec.timeout.is_zero() {
            return Err(in_store(StoreError::invalid("the request timeout is zero")));
        }
        if spec.endpoint_url.is_some() && loc.provider != Provider::AwsS3 {
            return Err(in_store(StoreError::invalid(
                "an endpoint URL is for S3-compatible servers (aws-s3) only",
            )));
        }
        // The limit is on silence (waiting for an answer, or between two
        // reads of a body), not on a whole request: a large object streamed
        // over a slow link is not cut, a store that stops answering is.
        let client = ClientOptions::new()
            .with_timeout_disabled()
            .with_read_timeout(spec.timeout)
            .with_connect_timeout(spec.timeout.min(Duration::from_secs(10)))
            .with_user_agent(object_store::HeaderValue::from_static(concat!(
                "pgclone/",
                env!("CARGO_PKG_VERSION")
            )));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.,
            },
            max_retries: RETRIES,
            // No retry starts after twice the request limit.
            retry_timeout: spec.timeout * 2,
        };
        let built = match &loc.place {
            Place::S3 { bucket } => aws::build(
                env,
                bucket,
                spec.endpoint_url.clone(),
                spec.profile.as_deref(),
                client,
                retry,
            ),
            Place::Azure { .. } => azure::build(env, &loc.place, client, retry),
            Place::Gcs { bucket } => gcs::build(env, bucket, client, retry),
        }
        .map_err(in_store)?;
        let mut describe = format!("{name} ({}", shown_url(&spec.url));
        if built.custom_endpoint {
            describe.push_str(&format!(" at {}", built.endpoint));
        }
        describe.push(')');
        let rt = runtime::Runtime::new().map_err(|e| {
            StoreError::new(
                StoreErrorKind::Other,
                format!("{describe}: cannot start its I/O threads"),
            )
            .detail(e.to_string())
        })?;
        Ok(Store {
            ctx: Arc::new(Context {
                describe,
                host: location::host_of(&built.endpoint).to_string(),
                provider: loc.provider,
                bucket: loc.bucket().to_string(),
                timeout: spec.timeout,
                auth_hint: built.auth_hint,
                secrets: built.secrets,
            }),
            root: loc.root,
            url: shown_url(&spec.url),
            client: built.store,
            rt: Arc::new(rt),
        })
    }

    /// Where `key` is, as the user's URL names it (`s3://bucket/prefix/KEY`),
    /// for messages.
    pub fn url_of(&self, key: &str) -> String {
        format!("{}/{}", self.url.trim_end_matches('/'), escape(key))
    }

    /// `store "NAME" (URL[ at ENDPOINT])`, for messages.
    pub fn describe(&self) -> String {
        self.ctx.describe.clone()
    }

    /// The provider.
    pub fn provider(&self) -> Provider {
        self.ctx.provider
    }
}

/// The URL for messages: parsing refused any with a query or a user, so
/// only control characters need escaping.
fn shown_url(url: &str) -> String {
    escape(url).into_owned()
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("store", &self.ctx.describe)
            .field("root", &self.root)
            .field("timeout", &self.ctx.timeout)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ctx.describe)
    }
}

#[cfg(test)]
mod tests {
    use super::env::fake::FakeEnv;
    use super::*;

    fn spec(url: &str) -> StoreSpec {
        StoreSpec {
            name: "barman-cloud".into(),
            url: url.into(),
            endpoint_url: None,
            provider: None,
            profile: None,
            timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn stores_and_readers_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Store>();
        send::<ObjectReader>();
        send_sync::<StoreError>();
    }

    #[test]
    fn providers_round_trip() {
        for p in [
            Provider::AwsS3,
            Provider::AzureBlobStorage,
            Provider::GoogleCloudStorage,
        ] {
            assert_eq!(p.to_string().parse::<Provider>().unwrap(), p);
        }
        assert!("s3".parse::<Provider>().is_err());
    }

    #[test]
    fn describe_names_the_store_and_endpoint() {
        let env = FakeEnv::default()
            .with("AWS_ACCESS_KEY_ID", "AKI")
            .with("AWS_SECRET_ACCESS_KEY", "very-secret-key");
        let mut s = spec("s3://bucket/prefix");
        s.endpoint_url = Some("http://127.0.0.1:9000".into());
        let store = Store::open_in(&s, &env).unwrap();
        assert_eq!(
            store.describe(),
            "store \"barman-cloud\" (s3://bucket/prefix at http://127.0.0.1:9000)"
        );
        assert_eq!(store.to_string(), store.describe());
        let dbg = format!("{store:?}");
        assert!(!dbg.contains("very-secret-key"), "{dbg}");
        s.endpoint_url = None;
        let store = Store::open_in(&s, &env).unwrap();
        assert_eq!(
            store.describe(),
            "store \"barman-cloud\" (s3://bucket/prefix)"
        );
        assert_eq!(store.ctx.host, "s3.us-east-1.amazonaws.com");
    }

    /// An emulator's http endpoint is requested (the request fails for
    /// want of a server, not as a scheme the client refuses).
    #[test]
    fn azure_emulators_are_reached_over_http() {
        let env = FakeEnv::default().with(
            "AZURE_STORAGE_CONNECTION_STRING",
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;\
             BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;",
        );
        let mut s = spec("http://127.0.0.1:1/devstoreaccount1/c/p");
        s.provider = Some(Provider::AzureBlobStorage);
        s.timeout = Duration::from_secs(2);
        let e = Store::open_in(&s, &env)
            .unwrap()
            .list("", true, 10)
            .unwrap_err();
        assert_eq!(e.kind, StoreErrorKind::Unreachable, "{e:?}");
    }

    #[test]
    fn bad_specs_name_the_store() {
        let env = FakeEnv::default();
        let e = Store::open_in(&spec("ftp://x/y"), &env).unwrap_err();
        assert!(
            e.message.starts_with("store \"barman-cloud\": "),
            "{}",
            e.message
        );
        let mut s = spec("gs://b/p");
        s.endpoint_url = Some("http://127.0.0.1:1".into());
        assert_eq!(
            Store::open_in(&s, &env).unwrap_err().kind,
            StoreErrorKind::InvalidConfig
        );
        let mut s = spec("s3://b/p");
        s.timeout = Duration::ZERO;
        assert!(Store::open_in(&s, &env).is_err());
    }
}
