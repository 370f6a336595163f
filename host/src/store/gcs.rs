//! A Google Cloud Storage client, with credentials found as the Google SDK
//! finds them for barman-cloud: `GOOGLE_APPLICATION_CREDENTIALS`, the
//! gcloud application-default file, the VM's metadata server (object_store's
//! chain). `STORAGE_EMULATOR_HOST`, which google-cloud-storage honours,
//! sends requests to an emulator without credentials.

use std::sync::Arc;

use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use super::env::Env;
use super::error::StoreError;
use super::secret::redact;
use super::Built;
use crate::report::escape;

pub(crate) const HINT: &str = "pgclone finds Google Cloud Storage credentials as barman-cloud \
does: GOOGLE_APPLICATION_CREDENTIALS, else gcloud's application-default credentials, else the VM's \
service account. Check that they may read the bucket.";

pub(crate) fn build(
    env: &dyn Env,
    bucket: &str,
    client: ClientOptions,
    retry: RetryConfig,
) -> Result<Built, StoreError> {
    let emulator = env
        .var("STORAGE_EMULATOR_HOST")
        .map(|h| {
            let h = if h.contains("://") {
                h
            } else {
                format!("http://{h}")
            };
            super::location::check_endpoint(&h)
                .map_err(|e| StoreError::invalid(format!("STORAGE_EMULATOR_HOST: {}", e.message)))
        })
        .transpose()?;
    let mut b = match &emulator {
        // An emulator takes no credentials: send none (and never ask a
        // metadata server for a token).
        Some(e) => GoogleCloudStorageBuilder::new()
            .with_base_url(e)
            .with_skip_signature(true)
            .with_client_options(client.with_allow_http(e.starts_with("http://"))),
        None => GoogleCloudStorageBuilder::from_env().with_client_options(client),
    };
    b = b.with_bucket_name(bucket).with_retry(retry);
    let store = b.build().map_err(|e| {
        StoreError::invalid(format!(
            "cannot set up the Google Cloud Storage client for bucket \"{}\"",
            escape(bucket)
        ))
        .detail(redact(&e.to_string(), &[]))
        .hint(HINT)
    })?;
    Ok(Built {
        store: Arc::new(store) as Arc<dyn ObjectStore>,
        custom_endpoint: emulator.is_some(),
        endpoint: emulator.unwrap_or_else(|| "https://storage.googleapis.com".into()),
        secrets: Vec::new(),
        auth_hint: HINT.into(),
    })
}
