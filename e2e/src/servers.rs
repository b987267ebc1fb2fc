//! The real servers `scripts/servers.sh` starts, described by the environment it exports, and
//! fresh buckets or containers on them.
//!
//! Bucket creation goes around object_store on purpose: object_store has no "create bucket".
//! moto takes a plain `PUT /bucket`; s3s-fs serves the folders of its root directory, so a
//! bucket is a `mkdir`; Azurite wants a SharedKey-signed `PUT ?restype=container`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::hmac::hmac_sha256;

const HOW_TO_START: &str = "real-server tests need the servers: run scripts/test.sh (or `source scripts/servers.sh && start_servers`)";

/// Which kind of server a [`TestServer`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// moto's S3 API (accepts any credentials).
    Moto,
    /// s3s-fs: S3 over a directory, checks SigV4 signatures for real.
    S3s,
    /// Azurite: Azure Blob Storage.
    Azurite,
    /// fake-gcs-server: GCS's JSON API (listing and reads through object_store; its XML
    /// API uploads are not supported, so objects are seeded with [`TestServer::gcs_upload`]).
    Gcs,
}

/// One running server: where it listens and the environment variables that hold its
/// credentials (plans reference them as `${env:…}`, exactly as a user's plan would).
#[derive(Debug, Clone)]
pub struct TestServer {
    /// The kind of server.
    pub kind: ServerKind,
    /// Base URL (`http://127.0.0.1:PORT`; Azurite's includes `/devstoreaccount1`).
    pub endpoint: String,
    /// Variable holding the access key id (S3) or the account name (Azure).
    pub access_key_env: &'static str,
    /// Variable holding the secret key (S3) or the account key (Azure).
    pub secret_key_env: &'static str,
    /// s3s-fs's data directory (a bucket is a folder in it).
    pub s3s_root: Option<PathBuf>,
}

fn required(var: &str) -> String {
    if std::env::var_os("RELOCATE_TEST_SERVERS").is_none() {
        panic!("{HOW_TO_START}");
    }
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set although RELOCATE_TEST_SERVERS is; {HOW_TO_START}")
    })
}

/// moto's S3 server. Panics (with how to start it) when the servers are not running.
pub fn moto() -> TestServer {
    TestServer {
        kind: ServerKind::Moto,
        endpoint: required("RELOCATE_TEST_MOTO_ENDPOINT"),
        access_key_env: "RELOCATE_TEST_MOTO_ACCESS_KEY",
        secret_key_env: "RELOCATE_TEST_MOTO_SECRET_KEY",
        s3s_root: None,
    }
}

/// The s3s-fs S3 server. Panics (with how to start it) when the servers are not running.
pub fn s3s() -> TestServer {
    TestServer {
        kind: ServerKind::S3s,
        endpoint: required("RELOCATE_TEST_S3S_ENDPOINT"),
        access_key_env: "RELOCATE_TEST_S3S_ACCESS_KEY",
        secret_key_env: "RELOCATE_TEST_S3S_SECRET_KEY",
        s3s_root: Some(PathBuf::from(required("RELOCATE_TEST_S3S_ROOT"))),
    }
}

/// Azurite's Blob service. Panics (with how to start it) when the servers are not running.
pub fn azurite() -> TestServer {
    TestServer {
        kind: ServerKind::Azurite,
        endpoint: required("RELOCATE_TEST_AZURITE_ENDPOINT"),
        access_key_env: "RELOCATE_TEST_AZURITE_ACCOUNT",
        secret_key_env: "RELOCATE_TEST_AZURITE_KEY",
        s3s_root: None,
    }
}

/// fake-gcs-server. Panics (with how to start it) when the servers are not running.
pub fn gcs() -> TestServer {
    TestServer {
        kind: ServerKind::Gcs,
        endpoint: required("RELOCATE_TEST_GCS_ENDPOINT"),
        // A service-account key that names the server and turns OAuth off; no secret.
        access_key_env: "RELOCATE_TEST_GCS_KEY",
        secret_key_env: "RELOCATE_TEST_GCS_KEY",
        s3s_root: None,
    }
}

/// A name no other test in this run (or a previous one) has used: valid as an S3 bucket and an
/// Azure container (lowercase letters, digits, hyphens; 3–63 characters).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

impl TestServer {
    /// Create a fresh, empty bucket (container for Azurite) and return its name.
    pub async fn fresh_bucket(&self) -> String {
        let name = unique_name("t");
        match self.kind {
            ServerKind::Moto => {
                put_ok(
                    reqwest::Client::new().put(format!("{}/{name}", self.endpoint)),
                    "moto bucket",
                )
                .await
            }
            ServerKind::S3s => {
                let root = self.s3s_root.as_ref().expect("s3s always has a root");
                std::fs::create_dir_all(root.join(&name)).expect("create s3s-fs bucket folder");
            }
            ServerKind::Azurite => create_azure_container(&self.endpoint, &name).await,
            ServerKind::Gcs => {
                put_ok(
                    reqwest::Client::new()
                        .post(format!("{}/storage/v1/b", self.endpoint))
                        .json(&serde_json::json!({ "name": name })),
                    "fake-gcs-server bucket",
                )
                .await
            }
        }
        name
    }

    /// Write an object through GCS's JSON API (fake-gcs-server does not take object_store's
    /// XML-API uploads). Only for [`ServerKind::Gcs`].
    pub async fn gcs_upload(&self, bucket: &str, key: &str, body: bytes::Bytes) {
        assert_eq!(
            self.kind,
            ServerKind::Gcs,
            "gcs_upload needs fake-gcs-server"
        );
        let name: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
        let url = format!(
            "{}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}",
            self.endpoint
        );
        put_ok(
            reqwest::Client::new().post(url).body(body),
            "fake-gcs-server upload",
        )
        .await;
    }

    /// Delete an object through GCS's JSON API. Only for [`ServerKind::Gcs`].
    pub async fn gcs_delete(&self, bucket: &str, key: &str) {
        assert_eq!(
            self.kind,
            ServerKind::Gcs,
            "gcs_delete needs fake-gcs-server"
        );
        let key: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
        let url = format!("{}/storage/v1/b/{bucket}/o/{key}", self.endpoint);
        put_ok(reqwest::Client::new().delete(url), "fake-gcs-server delete").await;
    }

    /// A plan store for `bucket/prefix` on this server, credentials as `${env:…}` references,
    /// validated as a plan's store is.
    pub fn plan_store(&self, bucket: &str, prefix: &str) -> plans::StoreSpec {
        let access = format!("${{env:{}}}", self.access_key_env);
        let secret = format!("${{env:{}}}", self.secret_key_env);
        self.plan_store_with(bucket, prefix, &access, &secret)
    }

    /// Like [`Self::plan_store`] with the two credential option values given as written.
    pub fn plan_store_with(
        &self,
        bucket: &str,
        prefix: &str,
        access: &str,
        secret: &str,
    ) -> plans::StoreSpec {
        let (url, options): (String, Vec<(&str, String)>) = match self.kind {
            ServerKind::Moto | ServerKind::S3s => (
                format!("s3://{bucket}/{prefix}"),
                vec![
                    ("endpoint", self.endpoint.clone()),
                    ("allow_http", "true".into()),
                    ("region", "us-east-1".into()),
                    ("access_key_id", access.into()),
                    ("secret_access_key", secret.into()),
                ],
            ),
            ServerKind::Azurite => (
                format!("az://{bucket}/{prefix}"),
                vec![
                    ("endpoint", self.endpoint.clone()),
                    ("allow_http", "true".into()),
                    ("account_name", access.into()),
                    ("access_key", secret.into()),
                ],
            ),
            ServerKind::Gcs => (
                format!("gs://{bucket}/{prefix}"),
                vec![("service_account_key", access.into())],
            ),
        };
        let store = plans::Store {
            region: "test".into(),
            url,
            options: options
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            multipart: None,
            retry: None,
            credentials: plans::Credentials::Options,
        };
        plans::StoreSpec::from_store("test", &store)
            .unwrap_or_else(|e| panic!("test store on {:?} is invalid: {e}", self.kind))
    }
}

async fn put_ok(request: reqwest::RequestBuilder, what: &str) {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: request failed: {e}"));
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        panic!("{what}: HTTP {status}: {body}");
    }
}

/// Azurite's well-known development account name.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";

/// `PUT {endpoint}/{container}?restype=container`, signed with SharedKey.
async fn create_azure_container(endpoint: &str, container: &str) {
    let key =
        std::env::var("RELOCATE_TEST_AZURITE_KEY").unwrap_or_else(|_| panic!("{HOW_TO_START}"));
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    let url = format!("{endpoint}/{container}?restype=container");
    let path = url::Url::parse(&url)
        .expect("valid Azurite url")
        .path()
        .to_owned();
    let authorization = shared_key_authorization(
        AZURITE_ACCOUNT,
        &key,
        "PUT",
        &date,
        version,
        &path,
        "restype:container",
    );
    let request = reqwest::Client::new()
        .put(url)
        .header("x-ms-date", &date)
        .header("x-ms-version", version)
        .header("content-length", "0")
        .header("authorization", authorization);
    put_ok(request, "Azurite container").await;
}

/// The `Authorization` header of a body-less Blob request (SharedKey, service version ≥ 2015-02-21).
fn shared_key_authorization(
    account: &str,
    key_b64: &str,
    verb: &str,
    date: &str,
    version: &str,
    path: &str,
    canonical_query: &str,
) -> String {
    let key = B64.decode(key_b64).expect("the account key is base64");
    // VERB, then 11 standard headers (all empty: no body, no conditions), then x-ms-* headers
    // and the resource `/{account}{path}` with its query parameters one per line.
    let string_to_sign = format!(
        "{verb}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{account}{path}\n{canonical_query}"
    );
    let signature = B64.encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    format!("SharedKey {account}:{signature}")
}
