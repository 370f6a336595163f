//! An S3 client, with credentials found as boto3 finds them for
//! barman-cloud: a named profile (`--aws-profile`) from the shared files;
//! else `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`[/`AWS_SESSION_TOKEN`];
//! else `AWS_PROFILE` (or `default`) from the shared files; else
//! object_store's own chain (web identity, container, instance metadata).

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use super::aws_files::{self, Profile};
use super::env::Env;
use super::error::StoreError;
use super::secret::Secret;
use super::Built;
use crate::report::escape;

/// Where the credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AwsCreds {
    Static {
        key_id: Secret,
        secret: Secret,
        token: Option<Secret>,
        /// For hints: "the environment" or "profile \"x\" of FILE".
        from: String,
    },
    /// object_store's chain (web identity, container, instance metadata).
    Chain,
}

/// Credentials and region for `profile` (the store's `--aws-profile`).
pub(crate) fn resolve(
    env: &dyn Env,
    profile: Option<&str>,
) -> Result<(AwsCreds, Option<String>), StoreError> {
    let home = env.home().unwrap_or_default();
    let creds_path = env
        .var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/credentials"));
    let config_path = env
        .var("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/config"));
    let creds_text = env.read(&creds_path);
    let config_text = env.read(&config_path);
    let files = format!("{} and {}", creds_path.display(), config_path.display());
    let load = |name: &str| aws_files::profile(name, creds_text.as_deref(), config_text.as_deref());
    let env_region = env
        .var("AWS_REGION")
        .or_else(|| env.var("AWS_DEFAULT_REGION"));

    let from_profile = |name: &str, p: Profile| -> Result<(AwsCreds, Option<String>), StoreError> {
        let region = env_region.clone().or(p.region);
        match (p.access_key_id, p.secret_access_key) {
            (Some(key_id), Some(secret)) => Ok((
                AwsCreds::Static {
                    key_id,
                    secret,
                    token: p.session_token,
                    from: format!("profile \"{}\" of {files}", escape(name)),
                },
                region,
            )),
            _ if !p.indirect.is_empty() => Err(StoreError::invalid(format!(
                "AWS profile \"{}\" gets its credentials through {}, which pgclone does not follow",
                escape(name),
                p.indirect.join(", ")
            ))
            .hint("Give the profile aws_access_key_id and aws_secret_access_key, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (for example from `aws configure export-credentials`).")),
            _ => Err(StoreError::invalid(format!(
                "AWS profile \"{}\" in {files} has no aws_access_key_id and aws_secret_access_key",
                escape(name)
            ))),
        }
    };
    let missing = |name: &str| {
        StoreError::invalid(format!(
            "AWS profile \"{}\" is in neither {files}",
            escape(name)
        ))
        .hint("Check the store's profile (barman-cloud's --aws-profile) and AWS_PROFILE, or the files' locations (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE).")
    };

    if let Some(name) = profile {
        return match load(name) {
            Some(p) => from_profile(name, p),
            None => Err(missing(name)),
        };
    }
    if let (Some(key_id), Some(secret)) = (
        env.var("AWS_ACCESS_KEY_ID"),
        env.var("AWS_SECRET_ACCESS_KEY"),
    ) {
        let region = env_region.or_else(|| {
            let name = env.var("AWS_PROFILE").unwrap_or_else(|| "default".into());
            load(&name).and_then(|p| p.region)
        });
        return Ok((
            AwsCreds::Static {
                key_id: Secret::new(key_id),
                secret: Secret::new(secret),
                token: env.var("AWS_SESSION_TOKEN").map(Secret::new),
                from: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            },
            region,
        ));
    }
    let named = env
        .var("AWS_PROFILE")
        .or_else(|| env.var("AWS_DEFAULT_PROFILE"));
    let name = named.clone().unwrap_or_else(|| "default".into());
    match load(&name) {
        Some(p) => {
            let region = env_region.clone().or(p.region.clone());
            match from_profile(&name, p) {
                Ok(found) => Ok(found),
                // A default profile holding only a region leaves the chain.
                Err(_) if named.is_none() => Ok((AwsCreds::Chain, region)),
                Err(e) => Err(e),
            }
        }
        None if named.is_some() => Err(missing(&name)),
        None => Ok((AwsCreds::Chain, env_region)),
    }
}

/// Where credentials are looked for, for an authentication failure's hint.
pub(crate) const HINT: &str = "pgclone finds S3 credentials as barman-cloud (boto3) does: the store's \
profile, else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else AWS_PROFILE \
(or default) in ~/.aws/credentials and ~/.aws/config, else web identity (AWS_WEB_IDENTITY_TOKEN_FILE) \
and the instance's metadata. Check that they are the ones barman-cloud uses and that they may read the bucket.";

pub(crate) fn build(
    env: &dyn Env,
    bucket: &str,
    endpoint: Option<String>,
    profile: Option<&str>,
    client: ClientOptions,
    retry: RetryConfig,
) -> Result<Built, StoreError> {
    let (creds, region) = resolve(env, profile)?;
    let region = region.unwrap_or_else(|| "us-east-1".into());
    // boto3 honours these too when no --endpoint-url is given.
    let endpoint = endpoint
        .or_else(|| env.var("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env.var("AWS_ENDPOINT_URL"))
        .map(|e| super::location::check_endpoint(&e))
        .transpose()?;
    let mut secrets = Vec::new();
    let (mut b, from) = match creds {
        AwsCreds::Static {
            key_id,
            secret,
            token,
            from,
        } => {
            let mut b = AmazonS3Builder::new()
                .with_access_key_id(key_id.expose())
                .with_secret_access_key(secret.expose());
            if let Some(t) = &token {
                b = b.with_token(t.expose());
                secrets.push(t.clone());
            }
            secrets.push(secret);
            (b, from)
        }
        AwsCreds::Chain => {
            let indirect = [
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            ]
            .iter()
            .any(|v| env.var(v).is_some());
            // boto3 then stops without asking the metadata server; so does
            // pgclone, instead of a request that could only time out.
            if !indirect
                && env
                    .var("AWS_EC2_METADATA_DISABLED")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            {
                return Err(StoreError::new(
                    super::StoreErrorKind::AuthFailed,
                    format!("found no S3 credentials for bucket \"{}\" (AWS_EC2_METADATA_DISABLED is set)", escape(bucket)),
                )
                .hint(HINT));
            }
            (
                AmazonS3Builder::from_env(),
                "web identity or the instance's metadata".to_string(),
            )
        }
    };
    b = b
        .with_bucket_name(bucket)
        .with_region(&region)
        .with_client_options(client)
        .with_retry(retry);
    let shown_endpoint = match &endpoint {
        Some(e) => {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
            e.clone()
        }
        None => format!("https://s3.{region}.amazonaws.com"),
    };
    let store = b.build().map_err(|e| {
        StoreError::invalid(format!(
            "cannot set up the S3 client for bucket \"{}\"",
            escape(bucket)
        ))
        .detail(super::secret::redact(&e.to_string(), &secrets))
    })?;
    Ok(Built {
        store: Arc::new(store) as Arc<dyn ObjectStore>,
        endpoint: shown_endpoint,
        custom_endpoint: endpoint.is_some(),
        secrets,
        auth_hint: format!("{HINT} (Used: {from}.)"),
    })
}

#[cfg(test)]
mod tests {
    use super::super::env::fake::FakeEnv;
    use super::*;

    const CREDS: &str = "[default]\naws_access_key_id = AKIDEF\naws_secret_access_key = sdef\n\
                         [backup]\naws_access_key_id = AKIBAK\naws_secret_access_key = sbak\n";
    const CONFIG: &str =
        "[profile backup]\nregion = eu-central-1\n[profile sso]\nsso_session = x\n";

    fn key_of(c: &AwsCreds) -> &str {
        match c {
            AwsCreds::Static { key_id, .. } => key_id.expose(),
            AwsCreds::Chain => "chain",
        }
    }

    fn home() -> FakeEnv {
        FakeEnv::default()
            .with("HOME", "/h")
            .file("/h/.aws/credentials", CREDS)
            .file("/h/.aws/config", CONFIG)
    }

    #[test]
    fn chain_order() {
        // The environment's keys come before the shared files.
        let env = home()
            .with("AWS_ACCESS_KEY_ID", "AKIENV")
            .with("AWS_SECRET_ACCESS_KEY", "senv")
            .with("AWS_DEFAULT_REGION", "ap-south-1");
        let (c, r) = resolve(&env, None).unwrap();
        assert_eq!((key_of(&c), r.as_deref()), ("AKIENV", Some("ap-south-1")));
        // ... but not before an explicit profile (boto3 skips the
        // environment's keys then).
        let (c, r) = resolve(&env, Some("backup")).unwrap();
        assert_eq!((key_of(&c), r.as_deref()), ("AKIBAK", Some("ap-south-1")));
        let (c, r) = resolve(&home(), Some("backup")).unwrap();
        assert_eq!((key_of(&c), r.as_deref()), ("AKIBAK", Some("eu-central-1")));
        // AWS_PROFILE, then default.
        let (c, _) = resolve(&home().with("AWS_PROFILE", "backup"), None).unwrap();
        assert_eq!(key_of(&c), "AKIBAK");
        let (c, r) = resolve(&home(), None).unwrap();
        assert_eq!((key_of(&c), r), ("AKIDEF", None));
        // AWS_REGION before AWS_DEFAULT_REGION.
        let env = home()
            .with("AWS_REGION", "r1")
            .with("AWS_DEFAULT_REGION", "r2");
        assert_eq!(resolve(&env, None).unwrap().1.as_deref(), Some("r1"));
        // Another credentials file.
        let env = FakeEnv::default()
            .with("HOME", "/h")
            .with("AWS_SHARED_CREDENTIALS_FILE", "/etc/c")
            .file("/etc/c", CREDS);
        assert_eq!(key_of(&resolve(&env, None).unwrap().0), "AKIDEF");
        // Nothing at all: object_store's chain.
        let env = FakeEnv::default().with("HOME", "/empty");
        assert_eq!(resolve(&env, None).unwrap().0, AwsCreds::Chain);
    }

    #[test]
    fn no_credentials_and_no_metadata_server() {
        let env = FakeEnv::default()
            .with("HOME", "/empty")
            .with("AWS_EC2_METADATA_DISABLED", "true");
        let e = build(
            &env,
            "b",
            None,
            None,
            ClientOptions::new(),
            RetryConfig::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind, super::super::StoreErrorKind::AuthFailed);
        assert!(e.hint.unwrap().contains("AWS_ACCESS_KEY_ID"));
        let env = env.with("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token");
        assert!(build(
            &env,
            "b",
            None,
            None,
            ClientOptions::new(),
            RetryConfig::default()
        )
        .is_ok());
    }

    #[test]
    fn profile_errors() {
        let e = resolve(&home(), Some("nope")).unwrap_err();
        assert!(e.message.contains("\"nope\""), "{}", e.message);
        let e = resolve(&home().with("AWS_PROFILE", "nope"), None).unwrap_err();
        assert!(e.message.contains("\"nope\""), "{}", e.message);
        let e = resolve(&home(), Some("sso")).unwrap_err();
        assert!(e.message.contains("sso_session"), "{}", e.message);
    }

    #[test]
    fn errors_and_debug_never_show_keys() {
        let env = home()
            .with("AWS_ACCESS_KEY_ID", "AKIENV")
            .with("AWS_SECRET_ACCESS_KEY", "senv-very-secret");
        let (c, _) = resolve(&env, None).unwrap();
        assert!(!format!("{c:?}").contains("senv-very-secret"));
        let built = build(
            &env,
            "b",
            Some("http://127.0.0.1:9".into()),
            None,
            ClientOptions::new(),
            RetryConfig::default(),
        )
        .unwrap();
        assert!(!format!("{built:?}").contains("senv-very-secret"));
        assert!(!built.auth_hint.contains("senv-very-secret"));
    }
}
