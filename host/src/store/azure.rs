//! An Azure Blob Storage client, with credentials found as barman-cloud
//! finds them: `AZURE_STORAGE_CONNECTION_STRING` (whose endpoint then wins
//! over the URL's host, as the Azure SDK's `from_connection_string` does);
//! else `AZURE_STORAGE_SAS_TOKEN`; else `AZURE_STORAGE_KEY`; else
//! object_store's chain (service principal, workload or managed identity).
//! An emulator's URL needs a connection string, as in barman-cloud.

use std::fmt;
use std::sync::Arc;

use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use super::env::Env;
use super::error::StoreError;
use super::location::Place;
use super::secret::{redact, Secret};
use super::Built;
use crate::report::escape;

/// Azurite's documented development account key (public, not a secret).
const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The parts of a connection string pgclone uses.
#[derive(Default, Clone, PartialEq, Eq)]
pub(crate) struct ConnString {
    pub account: Option<String>,
    pub key: Option<Secret>,
    pub sas: Option<Secret>,
    pub blob_endpoint: Option<String>,
    pub protocol: Option<String>,
    pub suffix: Option<String>,
}

impl fmt::Debug for ConnString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnString")
            .field("account", &self.account)
            .field("key", &self.key)
            .field("sas", &self.sas)
            .field("blob_endpoint", &self.blob_endpoint)
            .finish_non_exhaustive()
    }
}

const CONN_VAR: &str = "AZURE_STORAGE_CONNECTION_STRING";

/// Parses `KEY=VALUE;...` (values may hold `=`). Errors never quote it.
pub(crate) fn parse_conn(s: &str) -> Result<ConnString, StoreError> {
    let mut c = ConnString::default();
    let mut dev = false;
    for (n, part) in s
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let Some((k, v)) = part.split_once('=') else {
            return Err(StoreError::invalid(format!(
                "{CONN_VAR}: its part {} has no `=`",
                n + 1
            )));
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "accountname" => c.account = Some(v.to_string()),
            "accountkey" => c.key = Some(Secret::new(v)),
            "sharedaccesssignature" => c.sas = Some(Secret::new(v.trim_start_matches('?'))),
            "blobendpoint" => c.blob_endpoint = Some(v.trim_end_matches('/').to_string()),
            "defaultendpointsprotocol" => c.protocol = Some(v.to_string()),
            "endpointsuffix" => c.suffix = Some(v.to_string()),
            "usedevelopmentstorage" => dev = v.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    if dev {
        // The SDKs' shorthand for Azurite on its default port.
        c.account.get_or_insert_with(|| "devstoreaccount1".into());
        c.key.get_or_insert_with(|| Secret::new(DEV_ACCOUNT_KEY));
        c.blob_endpoint
            .get_or_insert_with(|| "http://127.0.0.1:10000/devstoreaccount1".into());
    }
    Ok(c)
}

pub(crate) const HINT: &str = "pgclone finds Azure credentials as barman-cloud does: \
AZURE_STORAGE_CONNECTION_STRING, else AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_KEY (with the URL's \
account), else a service principal (AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID), workload \
identity or the VM's managed identity. Check that they may read the container.";

pub(crate) fn build(
    env: &dyn Env,
    place: &Place,
    client: ClientOptions,
    retry: RetryConfig,
) -> Result<Built, StoreError> {
    let Place::Azure {
        account,
        container,
        endpoint,
        emulated,
    } = place
    else {
        unreachable!("azure::build is given an Azure place")
    };
    let mut secrets = Vec::new();
    let mut account = account.clone();
    let mut endpoint = endpoint.clone();
    let (mut b, from) = if let Some(conn) = env.var(CONN_VAR) {
        let c = parse_conn(&conn)?;
        if let Some(a) = &c.account {
            account = a.clone();
        }
        endpoint = match &c.blob_endpoint {
            Some(e) => super::location::check_endpoint(e)
                .map_err(|e| StoreError::invalid(format!("{CONN_VAR}: {}", e.message)))?,
            None => format!(
                "{}://{account}.blob.{}",
                c.protocol.as_deref().unwrap_or("https"),
                c.suffix.as_deref().unwrap_or("core.windows.net")
            ),
        };
        let mut b = MicrosoftAzureBuilder::new();
        if let Some(k) = c.key {
            b = b.with_access_key(k.expose());
            secrets.push(k);
        } else if let Some(s) = c.sas {
            b = b.with_config(AzureConfigKey::SasKey, s.expose());
            secrets.push(s);
        } else {
            b = b.with_skip_signature(true);
        }
        (b, CONN_VAR)
    } else if *emulated {
        return Err(StoreError::invalid(format!(
            "the emulator URL's account \"{}\" needs {CONN_VAR}",
            escape(&account)
        ))
        .hint("barman-cloud takes an emulator's http://HOST:PORT/ACCOUNT/CONTAINER/PREFIX only with AZURE_STORAGE_CONNECTION_STRING; set it as for barman-cloud."));
    } else if let Some(sas) = env.var("AZURE_STORAGE_SAS_TOKEN") {
        let sas = Secret::new(sas.trim_start_matches('?'));
        let b = MicrosoftAzureBuilder::new().with_config(AzureConfigKey::SasKey, sas.expose());
        secrets.push(sas);
        (b, "AZURE_STORAGE_SAS_TOKEN")
    } else if let Some(key) = env.var("AZURE_STORAGE_KEY") {
        let key = Secret::new(key);
        let b = MicrosoftAzureBuilder::new().with_access_key(key.expose());
        secrets.push(key);
        (b, "AZURE_STORAGE_KEY")
    } else {
        (
            MicrosoftAzureBuilder::from_env(),
            "the Azure identity chain",
        )
    };
    b = b
        .with_account(&account)
        .with_container_name(container)
        .with_endpoint(endpoint.clone())
        // After the client options, which would reset it.
        .with_client_options(client)
        .with_allow_http(endpoint.starts_with("http://"))
        .with_retry(retry);
    let store = b.build().map_err(|e| {
        StoreError::invalid(format!(
            "cannot set up the Azure client for container \"{}\"",
            escape(container)
        ))
        .detail(redact(&e.to_string(), &secrets))
    })?;
    let url_endpoint = match place {
        Place::Azure { endpoint, .. } => endpoint,
        _ => unreachable!(),
    };
    Ok(Built {
        store: Arc::new(store) as Arc<dyn ObjectStore>,
        custom_endpoint: &endpoint != url_endpoint,
        endpoint,
        secrets,
        auth_hint: format!("{HINT} (Used: {from}.)"),
    })
}

#[cfg(test)]
mod tests {
    use super::super::env::fake::FakeEnv;
    use super::*;

    const CONN: &str = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
        AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;\
        BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;";

    #[test]
    fn connection_strings() {
        let c = parse_conn(CONN).unwrap();
        assert_eq!(c.account.as_deref(), Some("devstoreaccount1"));
        assert!(c.key.as_ref().unwrap().expose().ends_with("GMGw=="));
        assert_eq!(
            c.blob_endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("Eby8vdM"), "{dbg}");

        let c = parse_conn("AccountName=a;SharedAccessSignature=?sv=2022&sig=abc%2Bdef;EndpointSuffix=core.chinacloudapi.cn").unwrap();
        assert_eq!(c.sas.as_ref().unwrap().expose(), "sv=2022&sig=abc%2Bdef");
        assert!(!format!("{c:?}").contains("sig="));
        assert_eq!(c.suffix.as_deref(), Some("core.chinacloudapi.cn"));

        let c = parse_conn("UseDevelopmentStorage=true").unwrap();
        assert_eq!(c.account.as_deref(), Some("devstoreaccount1"));

        // An error never quotes the string (a key may be what is malformed).
        let e = parse_conn("AccountName=a;Eby8vdM02xNOcqFlsecretpart").unwrap_err();
        assert!(!e.to_string().contains("Eby8") && !format!("{e:?}").contains("Eby8"));
    }

    fn place(emulated: bool) -> Place {
        if emulated {
            super::super::location::parse("http://127.0.0.1:1/devstoreaccount1/c/p", None)
        } else {
            super::super::location::parse("https://acct.blob.core.windows.net/c/p", None)
        }
        .unwrap()
        .place
    }

    #[test]
    fn chain_and_secrets() {
        // The connection string's endpoint wins over the URL's host.
        let env = FakeEnv::default().with(CONN_VAR, CONN);
        let b = build(
            &env,
            &place(false),
            ClientOptions::new(),
            RetryConfig::default(),
        )
        .unwrap();
        assert_eq!(b.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        assert!(b.custom_endpoint);
        assert!(!format!("{b:?}").contains("Eby8vdM"));
        let b = build(
            &env,
            &place(true),
            ClientOptions::new(),
            RetryConfig::default(),
        )
        .unwrap();
        assert_eq!(b.secrets.len(), 1);

        // An emulator's URL needs a connection string.
        let e = build(
            &FakeEnv::default().with("AZURE_STORAGE_KEY", DEV_ACCOUNT_KEY),
            &place(true),
            ClientOptions::new(),
            RetryConfig::default(),
        )
        .unwrap_err();
        assert!(e.message.contains(CONN_VAR), "{}", e.message);

        // A malformed key is an error that does not show it.
        let env = FakeEnv::default().with("AZURE_STORAGE_KEY", "not*base64*secretvalue");
        let e = build(
            &env,
            &place(false),
            ClientOptions::new(),
            RetryConfig::default(),
        )
        .unwrap_err();
        assert!(!format!("{e:?}").contains("secretvalue"), "{e:?}");

        let env = FakeEnv::default().with("AZURE_STORAGE_SAS_TOKEN", "?sv=1&sig=topsecret");
        let b = build(
            &env,
            &place(false),
            ClientOptions::new(),
            RetryConfig::default(),
        )
        .unwrap();
        assert_eq!(b.endpoint, "https://acct.blob.core.windows.net");
        assert!(!b.custom_endpoint);
        // object_store's own Debug shows a SAS token: Built's never does.
        assert!(!format!("{b:?}").contains("topsecret"));
    }
}
