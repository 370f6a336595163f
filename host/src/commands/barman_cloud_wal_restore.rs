//! `pgclone barman-cloud-wal-restore`: barman-cloud-wal-restore's own
//! command line, served by the first-party `barman-cloud` source, so that
//! switching a restore_command (CloudNativePG's, a Barman 3 site's) is one
//! word. The store, its server name and its options become the
//! configuration keys the source reads (`barman_cloud_url`, ...);
//! credentials are found as barman-cloud finds them (the environment, the
//! provider's files), never on the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use pgclone::walrestore::source::WalSource;
use pgclone::walrestore::{exit, Options};

use super::wal_restore::{guarded, seconds, spool_and_prefetch, WarmArgs};
use super::Context;

/// Fetch a WAL file from a barman-cloud archive in S3, Azure Blob Storage or
/// Google Cloud Storage, for PostgreSQL's restore_command: the command line
/// of barman-cloud-wal-restore.
///
///   restore_command = 'pgclone barman-cloud-wal-restore s3://bucket/prefix pg %f %p'
///   restore_command = 'pgclone barman-cloud-wal-restore --endpoint-url http://minio:9000 s3://bucket/prefix pg %f %p'
///   restore_command = 'pgclone barman-cloud-wal-restore --cloud-provider azure-blob-storage https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX pg %f %p'
///
/// Credentials come from where barman-cloud takes them: AWS_ACCESS_KEY_ID and
/// AWS_SECRET_ACCESS_KEY, AWS_PROFILE or --aws-profile with ~/.aws/credentials,
/// or the instance's role; AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT
/// with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or a managed identity;
/// GOOGLE_APPLICATION_CREDENTIALS. The segments after the requested one are
/// prefetched into the spool while PostgreSQL replays (-p, default 16), and a
/// prefetched segment is delivered with a rename.
///
/// Exit codes are wal-restore's: 0 the checked file is at %p; 1 not in the
/// archive (normal at its end); 2 invalid arguments or configuration; 3 the
/// store unreachable or failing; 4 the archived file is damaged or of another
/// cluster and was not delivered; 128 instead of 2-4 in a targeted recovery.
#[derive(Args)]
pub struct BarmanCloudWalRestoreArgs {
    /// SOURCE_URL SERVER_NAME WAL_NAME WAL_DEST (SOURCE_URL SERVER_NAME with -t).
    #[arg(num_args = 2..=4, value_name = "ARGS", required = true)]
    args: Vec<String>,
    /// The cloud provider (default: from the URL).
    #[arg(long, value_name = "PROVIDER", value_parser = ["aws-s3", "azure-blob-storage", "google-cloud-storage"])]
    cloud_provider: Option<String>,
    /// An S3-compatible server's URL (MinIO, Ceph, a test server).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// The AWS profile (a section of ~/.aws/credentials).
    #[arg(short = 'P', long, value_name = "AWS_PROFILE")]
    aws_profile: Option<String>,
    /// The AWS profile (deprecated spelling of --aws-profile).
    #[arg(long, value_name = "AWS_PROFILE", hide = true)]
    profile: Option<String>,
    /// Seconds a request to the store may take (default 60).
    #[arg(long, value_name = "SECONDS")]
    read_timeout: Option<u64>,
    /// Accepted for compatibility: requests use path-style addressing with
    /// --endpoint-url and the provider's default otherwise.
    #[arg(long, value_name = "STYLE", value_parser = ["auto", "virtual", "path"])]
    addressing_style: Option<String>,
    /// Accepted for compatibility: Azure credentials are taken from the
    /// environment, then the default flow (managed identity, the Azure CLI).
    #[arg(long, alias = "credential", value_name = "CREDENTIAL", value_parser = ["azure-cli", "managed-identity", "default"])]
    azure_credential: Option<String>,
    /// Never deliver a segment's .partial file (archived by a standby at its
    /// promotion) when the complete segment is not in the archive; without
    /// it, the .partial is delivered, as barman-cloud-wal-restore does.
    #[arg(long)]
    no_partial: bool,
    /// Segments to prefetch while PostgreSQL replays (default: wal_restore_prefetch, else 16; 0 disables).
    #[arg(short = 'p', long = "parallel", value_name = "N")]
    parallel: Option<usize>,
    /// Where prefetched segments wait (outside PGDATA; same filesystem for a rename).
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// Check that the store answers and the server's WAL is there, and exit.
    #[arg(short = 't', long)]
    test: bool,
    /// Targeted recovery: seconds to retry an unreachable store before
    /// stopping recovery (default: wal_restore_retry_seconds, else 60).
    #[arg(long, value_name = "SECONDS")]
    retry_for: Option<u64>,
    #[command(flatten)]
    warm: WarmArgs,
}

/// Like `wal-restore`: a panic or an invalid command line never reads as
/// the end of the archive in a targeted recovery.
/// `verbose` (its -v): also say who holds the spool.
pub fn run(ctx: &Context, a: BarmanCloudWalRestoreArgs, verbose: bool) -> anyhow::Result<ExitCode> {
    let dest = a.args.last().cloned().unwrap_or_default();
    guarded(&dest, || run_inner(ctx, a, verbose))
}

fn run_inner(ctx: &Context, a: BarmanCloudWalRestoreArgs, verbose: bool) -> anyhow::Result<u8> {
    let (url, server, name, dest) = match (a.args.as_slice(), a.test) {
        ([u, s, n, d], _) => (u.clone(), s.clone(), n.clone(), d.clone()),
        ([u, s], true) => (u.clone(), s.clone(), String::new(), String::new()),
        _ => {
            eprintln!(
                "ERROR: pgclone barman-cloud-wal-restore: expected SOURCE_URL SERVER_NAME WAL_NAME WAL_DEST"
            );
            return Ok(exit::USAGE);
        }
    };
    let mut conf = ctx.config()?;
    conf.set("backup_source", "barman-cloud");
    conf.set("barman_cloud_url", &url);
    conf.set("barman_cloud_server", &server);
    let optional = [
        ("barman_cloud_endpoint_url", a.endpoint_url.clone()),
        ("barman_cloud_provider", a.cloud_provider.clone()),
        (
            "barman_cloud_aws_profile",
            a.aws_profile.clone().or(a.profile.clone()),
        ),
        (
            "barman_cloud_read_timeout",
            a.read_timeout.map(|t| t.to_string()),
        ),
    ];
    // The prefetcher is started with this command line (the source's
    // configuration is in it, not in a file).
    let mut relaunch = vec!["barman-cloud-wal-restore".to_string()];
    for (key, value) in optional {
        if let Some(v) = value {
            let option = match key {
                "barman_cloud_endpoint_url" => "--endpoint-url",
                "barman_cloud_provider" => "--cloud-provider",
                "barman_cloud_aws_profile" => "--aws-profile",
                _ => "--read-timeout",
            };
            relaunch.extend([option.to_string(), v.clone()]);
            conf.set(key, &v);
        }
    }
    relaunch.extend([url.clone(), server.clone()]);
    let _ = (&a.addressing_style, &a.azure_credential);
    let (spool, prefetch) = spool_and_prefetch(a.spool_dir.clone(), a.parallel, &conf);
    let plugins = ctx.plugins(&conf)?;
    let timeout = a.read_timeout.unwrap_or(60).saturating_mul(2).max(120);
    let o = Options {
        source: WalSource {
            plugin: "barman-cloud".into(),
            barman: None,
            ssh_options: Vec::new(),
            connect_timeout: seconds(None, &conf, "ssh_connect_timeout", 10)?,
            timeout: seconds(None, &conf, "wal_restore_timeout", timeout)?,
            config: conf.clone(),
            plugins,
            env: Default::default(),
        },
        spool,
        prefetch,
        partial: !a.no_partial,
        test: a.test,
        wal_name: name,
        wal_dest: PathBuf::from(dest),
        retry_for: seconds(a.retry_for, &conf, "wal_restore_retry_seconds", 60)?,
        warm: a.warm.warm,
        relaunch: Some(relaunch),
    };
    Ok(a.warm.run(&o, verbose))
}
