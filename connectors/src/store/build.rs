//! Building object_store clients with typed builders, one per cloud.
//!
//! Why not `object_store::parse_url_opts`: it silently drops option keys it does not know (a typo
//! like `secret_acess_key` would fall back to ambient credentials) and cannot take a retry
//! policy. Here every key must parse as the backend's config key, and [`RetryConfig`] comes from
//! the plan's `retry` settings.
//!
//! Credentials come from the plan unless the store says `credentials: ambient`: builders start
//! from `new()`, which reads no `AWS_*`/`AZURE_*`/`GOOGLE_*` variable, and validation made sure
//! the options hold a complete set of credentials (or ask for anonymous access), so object_store
//! never reaches its last resort, the instance metadata endpoint. Only `ambient` starts from
//! `from_env()` and lets the cloud's own chain (variables, files, metadata) find them.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};
use object_store::azure::{AzureConfigKey, AzureCredential, MicrosoftAzureBuilder};
use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{BackoffConfig, ObjectStore, RetryConfig, StaticCredentialProvider};
use url::Url;

use plans::{Cloud, Credentials};

use super::{Redactor, StoreError};

/// What a builder needs besides the URL; `probe` asks for a client that gives up quickly.
pub(crate) struct BuildInput<'a> {
    pub(crate) store: &'a str,
    pub(crate) display_url: &'a str,
    pub(crate) url: &'a Url,
    pub(crate) options: &'a [(String, String)],
    pub(crate) retry: RetryConfig,
    pub(crate) redactor: &'a Redactor,
    pub(crate) credentials: Credentials,
}

/// The pre-flight check must answer in seconds, not after the transfer's retry budget.
pub(crate) fn probe_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 1,
        retry_timeout: Duration::from_secs(10),
    }
}

/// Connect timeout of the probe client unless the plan sets `connect_timeout` itself.
const PROBE_CONNECT_TIMEOUT: &str = "5s";

macro_rules! build_with {
    ($builder:ty, $key:ty, $cloud:expr, $input:expr, $probe:expr, $anonymous:expr) => {{
        let input: &BuildInput<'_> = $input;
        let start = match input.credentials {
            Credentials::Ambient => <$builder>::from_env(),
            Credentials::Options => <$builder>::new(),
        };
        let mut builder = start
            .with_url(input.url.as_str())
            .with_retry(input.retry.clone());
        for (key, value) in input.options {
            let parsed = <$key>::from_str(&key.to_ascii_lowercase()).map_err(|_| {
                StoreError::UnknownOption {
                    store: input.store.to_owned(),
                    key: key.clone(),
                    backend: $cloud.name(),
                }
            })?;
            builder = builder.with_config(parsed, value.clone());
        }
        if without_credential_keys($cloud, input) {
            // Anonymous access (`skip_signature`, the Azure emulator): a fixed empty
            // credential, so no fallback chain is even built, let alone asked.
            builder = builder.with_credentials(Arc::new(StaticCredentialProvider::new($anonymous)));
        }
        if $probe && !has_key(input.options, "connect_timeout") {
            builder = builder.with_config(
                <$key>::from_str("connect_timeout").map_err(|e| build_error(input, &e))?,
                PROBE_CONNECT_TIMEOUT,
            );
        }
        builder.build().map_err(|e| build_error(input, &e))?
    }};
}

/// An S3 client used only to presign requests object_store makes no call for (a `HEAD`
/// asking for the stored checksum): same URL, options and credentials as the store's.
pub(crate) fn s3_signer(
    input: &BuildInput<'_>,
) -> Result<Arc<dyn object_store::signer::Signer>, StoreError> {
    Ok(Arc::new(build_with!(
        AmazonS3Builder,
        AmazonS3ConfigKey,
        Cloud::S3,
        input,
        false,
        aws_anonymous()
    )))
}

/// Build the client for `cloud`; with `probe`, one that fails fast for the pre-flight check.
pub(crate) fn build_cloud(
    cloud: Cloud,
    input: &BuildInput<'_>,
    probe: bool,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    Ok(match cloud {
        Cloud::S3 if !has_key(input.options, "checksum_algorithm") => {
            // Send `x-amz-checksum-sha256` with every upload unless the plan says
            // otherwise, so a body corrupted in transit is refused by the server itself.
            let mut options = input.options.to_vec();
            options.push(("checksum_algorithm".to_owned(), "sha256".to_owned()));
            let input = BuildInput {
                options: &options,
                retry: input.retry.clone(),
                ..*input
            };
            Arc::new(build_with!(
                AmazonS3Builder,
                AmazonS3ConfigKey,
                cloud,
                &input,
                probe,
                aws_anonymous()
            ))
        }
        Cloud::S3 => Arc::new(build_with!(
            AmazonS3Builder,
            AmazonS3ConfigKey,
            cloud,
            input,
            probe,
            aws_anonymous()
        )),
        Cloud::Azure => Arc::new(build_with!(
            MicrosoftAzureBuilder,
            AzureConfigKey,
            cloud,
            input,
            probe,
            AzureCredential::BearerToken(String::new())
        )),
        Cloud::Gcs => Arc::new(build_with!(
            GoogleCloudStorageBuilder,
            GoogleConfigKey,
            cloud,
            input,
            probe,
            GcpCredential {
                bearer: String::new()
            }
        )),
    })
}

fn aws_anonymous() -> AwsCredential {
    AwsCredential {
        key_id: String::new(),
        secret_key: String::new(),
        token: None,
    }
}

/// A store whose credentials come from its options but which names none (validation allows
/// that only with `skip_signature` or `use_emulator`): anonymous.
fn without_credential_keys(cloud: Cloud, input: &BuildInput<'_>) -> bool {
    input.credentials == Credentials::Options
        && !input
            .options
            .iter()
            .any(|(k, _)| plans::store_options::is_credential_option(cloud, k))
}

/// Whether the plan sets `key` itself, with or without the backend's prefix (`aws_`, …).
fn has_key(options: &[(String, String)], key: &str) -> bool {
    options.iter().any(|(k, _)| {
        let k = k.to_ascii_lowercase();
        k == key
            || ["aws_", "azure_", "google_"]
                .iter()
                .any(|p| k == format!("{p}{key}"))
    })
}

fn build_error(input: &BuildInput<'_>, error: &object_store::Error) -> StoreError {
    StoreError::Build {
        store: input.store.to_owned(),
        url: input.display_url.to_owned(),
        reason: input.redactor.redact(&error.to_string()),
    }
}
