//! The option keys each store backend knows, and which of them make up credentials.
//!
//! `plan validate` must refuse a misspelled key (`sekret_access_key`) rather than leave it to
//! the run, and must know whether a store's options configure credentials at all: without
//! them object_store would fall back to the environment or the cloud's metadata endpoint,
//! which relocate does only when a store says `credentials: ambient`. The lists are
//! object_store 0.14's config keys (its `FromStr` impls); a connectors test checks that each
//! one parses there, so the two cannot drift apart unnoticed.

use crate::store_url::Cloud;

/// HTTP client keys every cloud backend takes (with or without its `aws_`/`azure_`/
/// `google_` prefix).
const CLIENT: &[&str] = &[
    "allow_http",
    "allow_invalid_certificates",
    "disable_system_certificates",
    "connect_timeout",
    "default_content_type",
    "http1_only",
    "http2_only",
    "http2_keep_alive_interval",
    "http2_keep_alive_timeout",
    "http2_keep_alive_while_idle",
    "http2_max_frame_size",
    "pool_idle_timeout",
    "pool_max_idle_per_host",
    "proxy_url",
    "proxy_ca_certificate",
    "proxy_excludes",
    "randomize_addresses",
    "read_timeout",
    "timeout",
    "user_agent",
];

const S3: &[&str] = &[
    "aws_access_key_id",
    "access_key_id",
    "aws_secret_access_key",
    "secret_access_key",
    "aws_default_region",
    "default_region",
    "aws_region",
    "region",
    "aws_bucket",
    "aws_bucket_name",
    "bucket_name",
    "bucket",
    "aws_endpoint_url",
    "aws_endpoint",
    "endpoint_url",
    "endpoint",
    "aws_endpoint_url_s3",
    "aws_session_token",
    "aws_token",
    "session_token",
    "token",
    "aws_virtual_hosted_style_request",
    "virtual_hosted_style_request",
    "aws_s3_express",
    "s3_express",
    "aws_imdsv1_fallback",
    "imdsv1_fallback",
    "aws_metadata_endpoint",
    "metadata_endpoint",
    "aws_unsigned_payload",
    "unsigned_payload",
    "aws_checksum_algorithm",
    "checksum_algorithm",
    "aws_container_credentials_relative_uri",
    "container_credentials_relative_uri",
    "aws_container_credentials_full_uri",
    "container_credentials_full_uri",
    "aws_container_authorization_token_file",
    "container_authorization_token_file",
    "aws_web_identity_token_file",
    "web_identity_token_file",
    "aws_role_arn",
    "role_arn",
    "aws_role_session_name",
    "role_session_name",
    "aws_endpoint_url_sts",
    "endpoint_url_sts",
    "aws_skip_signature",
    "skip_signature",
    "aws_copy_if_not_exists",
    "copy_if_not_exists",
    "aws_conditional_put",
    "conditional_put",
    "aws_disable_tagging",
    "disable_tagging",
    "aws_disable_bulk_delete",
    "disable_bulk_delete",
    "aws_request_payer",
    "request_payer",
    "aws_server_side_encryption",
    "server_side_encryption",
    "aws_sse_kms_key_id",
    "sse_kms_key_id",
    "aws_sse_bucket_key_enabled",
    "sse_bucket_key_enabled",
    "aws_sse_customer_key_base64",
    "sse_customer_key_base64",
];

const AZURE: &[&str] = &[
    "azure_storage_account_key",
    "azure_storage_access_key",
    "azure_storage_master_key",
    "master_key",
    "account_key",
    "access_key",
    "azure_storage_account_name",
    "account_name",
    "azure_storage_client_id",
    "azure_client_id",
    "client_id",
    "azure_storage_client_secret",
    "azure_client_secret",
    "client_secret",
    "azure_storage_tenant_id",
    "azure_storage_authority_id",
    "azure_tenant_id",
    "azure_authority_id",
    "tenant_id",
    "authority_id",
    "azure_storage_authority_host",
    "azure_authority_host",
    "authority_host",
    "azure_storage_sas_key",
    "azure_storage_sas_token",
    "sas_key",
    "sas_token",
    "azure_storage_token",
    "bearer_token",
    "token",
    "azure_storage_use_emulator",
    "use_emulator",
    "azure_storage_endpoint",
    "azure_endpoint",
    "endpoint",
    "azure_msi_endpoint",
    "azure_identity_endpoint",
    "identity_endpoint",
    "msi_endpoint",
    "azure_object_id",
    "object_id",
    "azure_msi_resource_id",
    "msi_resource_id",
    "azure_federated_token_file",
    "federated_token_file",
    "azure_use_fabric_endpoint",
    "use_fabric_endpoint",
    "azure_use_azure_cli",
    "use_azure_cli",
    "azure_skip_signature",
    "skip_signature",
    "azure_container_name",
    "container_name",
    "azure_disable_tagging",
    "disable_tagging",
    "azure_fabric_token_service_url",
    "fabric_token_service_url",
    "azure_fabric_workload_host",
    "fabric_workload_host",
    "azure_fabric_session_token",
    "fabric_session_token",
    "azure_fabric_cluster_identifier",
    "fabric_cluster_identifier",
    "azure_credential_type",
    "credential_type",
    "azure_storage_encryption_key",
    "encryption_key",
];

const GCS: &[&str] = &[
    "google_service_account",
    "service_account",
    "google_service_account_path",
    "service_account_path",
    "google_service_account_key",
    "service_account_key",
    "google_bucket",
    "google_bucket_name",
    "bucket",
    "bucket_name",
    "google_base_url",
    "base_url",
    "google_application_credentials",
    "application_credentials",
    "google_bearer_token",
    "bearer_token",
    "google_skip_signature",
    "skip_signature",
];

fn backend_keys(cloud: Cloud) -> (&'static [&'static str], &'static str) {
    match cloud {
        Cloud::S3 => (S3, "aws_"),
        Cloud::Azure => (AZURE, "azure_"),
        Cloud::Gcs => (GCS, "google_"),
    }
}

/// Every key `cloud` accepts, client keys with and without the backend's prefix.
pub fn known_keys(cloud: Cloud) -> Vec<String> {
    let (own, prefix) = backend_keys(cloud);
    own.iter()
        .map(|k| (*k).to_owned())
        .chain(
            CLIENT
                .iter()
                .flat_map(|k| [(*k).to_owned(), format!("{prefix}{k}")]),
        )
        .collect()
}

/// Whether `cloud` knows option `key` (case-insensitive, as object_store reads keys).
pub fn is_known(cloud: Cloud, key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let (own, prefix) = backend_keys(cloud);
    own.contains(&key.as_str()) || CLIENT.contains(&key.strip_prefix(prefix).unwrap_or(&key))
}

/// The known key closest to a misspelled one, if one is close enough to be meant.
pub fn closest_key(cloud: Cloud, key: &str) -> Option<String> {
    let key = key.to_ascii_lowercase();
    known_keys(cloud)
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(&key, &k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 5))
        .min()
        .map(|(_, k)| k)
}

/// Credential groups: a store configures credentials when every key of one group is set
/// (or a `true` flag group's key is `true`).
const S3_SETS: &[&[&str]] = &[&["access_key_id", "secret_access_key"]];
const AZURE_SETS: &[&[&str]] = &[
    &["account_key"],
    &["sas_key"],
    &["bearer_token"],
    &["client_id", "client_secret", "tenant_id"],
];
const GCS_SETS: &[&[&str]] = &[
    &["service_account"],
    &["service_account_key"],
    &["application_credentials"],
    &["bearer_token"],
];

/// The canonical name of a credential key of `cloud` (aliases folded: `aws_token`,
/// `session_token` → `session_token`; `azure_storage_access_key`, `master_key` →
/// `account_key`; …), `None` for keys that carry no credential.
fn credential_role(cloud: Cloud, key: &str) -> Option<&'static str> {
    let k = key.to_ascii_lowercase();
    let k = k.as_str();
    Some(match cloud {
        Cloud::S3 => match k {
            "aws_access_key_id" | "access_key_id" => "access_key_id",
            "aws_secret_access_key" | "secret_access_key" => "secret_access_key",
            "aws_session_token" | "aws_token" | "session_token" | "token" => "session_token",
            "aws_skip_signature" | "skip_signature" => "skip_signature",
            _ => return None,
        },
        Cloud::Azure => match k {
            "azure_storage_account_key"
            | "azure_storage_access_key"
            | "azure_storage_master_key"
            | "master_key"
            | "account_key"
            | "access_key" => "account_key",
            "azure_storage_sas_key" | "azure_storage_sas_token" | "sas_key" | "sas_token" => {
                "sas_key"
            }
            "azure_storage_token" | "bearer_token" | "token" => "bearer_token",
            "azure_storage_client_id" | "azure_client_id" | "client_id" => "client_id",
            "azure_storage_client_secret" | "azure_client_secret" | "client_secret" => {
                "client_secret"
            }
            "azure_storage_tenant_id"
            | "azure_storage_authority_id"
            | "azure_tenant_id"
            | "azure_authority_id"
            | "tenant_id"
            | "authority_id" => "tenant_id",
            "azure_storage_use_emulator" | "use_emulator" => "use_emulator",
            "azure_skip_signature" | "skip_signature" => "skip_signature",
            _ => return None,
        },
        Cloud::Gcs => match k {
            "google_service_account"
            | "service_account"
            | "google_service_account_path"
            | "service_account_path" => "service_account",
            "google_service_account_key" | "service_account_key" => "service_account_key",
            "google_application_credentials" | "application_credentials" => {
                "application_credentials"
            }
            "google_bearer_token" | "bearer_token" => "bearer_token",
            "google_skip_signature" | "skip_signature" => "skip_signature",
            _ => return None,
        },
    })
}

/// Keys that make object_store reach for credentials outside the plan (instance metadata,
/// workload identity files, the Azure CLI): only with `credentials: ambient`.
pub fn is_ambient_key(key: &str) -> bool {
    const AMBIENT: [&str; 14] = [
        "imdsv1_fallback",
        "metadata_endpoint",
        "container_credentials_relative_uri",
        "container_credentials_full_uri",
        "container_authorization_token_file",
        "web_identity_token_file",
        "role_arn",
        "msi_endpoint",
        "identity_endpoint",
        "msi_resource_id",
        "federated_token_file",
        "use_azure_cli",
        "object_id",
        "credential_type",
    ];
    let k = key.to_ascii_lowercase();
    let bare = ["aws_", "azure_", "google_"]
        .iter()
        .find_map(|p| k.strip_prefix(p))
        .unwrap_or(&k);
    AMBIENT.contains(&bare)
}

/// Whether `options` (key, value as written) configure credentials for `cloud` on their
/// own: a complete group of credential keys, or `skip_signature`/`use_emulator` set to
/// `true` (anonymous access, the Azure emulator's well-known account).
pub fn configures_credentials<'a>(
    cloud: Cloud,
    options: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> bool {
    let mut roles = Vec::new();
    for (key, value) in options {
        match credential_role(cloud, key) {
            // A flag counts only when it is `true`.
            Some("skip_signature" | "use_emulator")
                if !value.trim().eq_ignore_ascii_case("true") => {}
            Some(role) => roles.push(role),
            None => {}
        }
    }
    if roles.contains(&"skip_signature") || roles.contains(&"use_emulator") {
        return true;
    }
    let sets = match cloud {
        Cloud::S3 => S3_SETS,
        Cloud::Azure => AZURE_SETS,
        Cloud::Gcs => GCS_SETS,
    };
    sets.iter()
        .any(|set| set.iter().all(|role| roles.contains(role)))
}

/// Whether `key` names a credential of `cloud` (so contradicts `credentials: ambient`).
pub fn is_credential_option(cloud: Cloud, key: &str) -> bool {
    credential_role(cloud, key).is_some_and(|r| r != "skip_signature" && r != "use_emulator")
}

/// What to write for `cloud` in a hint.
pub fn credentials_example(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::S3 => {
            "`access_key_id: \"${env:AWS_ACCESS_KEY_ID}\"` and `secret_access_key: \"${env:AWS_SECRET_ACCESS_KEY}\"`"
        }
        Cloud::Azure => {
            "`account_key: \"${env:AZURE_STORAGE_ACCOUNT_KEY}\"` or `sas_key: \"${env:AZURE_SAS}\"`"
        }
        Cloud::Gcs => "`service_account_key: \"${file:gcs-key.json}\"`",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_known_per_backend() {
        assert!(is_known(Cloud::S3, "secret_access_key"));
        assert!(is_known(Cloud::S3, "AWS_ALLOW_HTTP"));
        assert!(is_known(Cloud::S3, "allow_http"));
        assert!(!is_known(Cloud::S3, "sekret_access_key"));
        assert!(!is_known(Cloud::Gcs, "access_key_id"));
        assert!(is_known(Cloud::Azure, "azure_connect_timeout"));
    }

    #[test]
    fn misspelled_keys_get_a_suggestion() {
        assert_eq!(
            closest_key(Cloud::S3, "sekret_access_key").as_deref(),
            Some("secret_access_key")
        );
        assert_eq!(closest_key(Cloud::S3, "zzzz"), None);
    }

    #[test]
    fn credential_groups_must_be_complete() {
        let s3 = |pairs: &[(&str, &str)]| configures_credentials(Cloud::S3, pairs.iter().copied());
        assert!(s3(&[
            ("access_key_id", "a"),
            ("aws_secret_access_key", "b")
        ]));
        assert!(!s3(&[("access_key_id", "a")]));
        assert!(!s3(&[("endpoint", "https://x")]));
        assert!(s3(&[("skip_signature", "true")]));
        assert!(!s3(&[("skip_signature", "false")]));
        let az =
            |pairs: &[(&str, &str)]| configures_credentials(Cloud::Azure, pairs.iter().copied());
        assert!(az(&[("access_key", "k")]));
        assert!(az(&[("use_emulator", "true")]));
        assert!(!az(&[("client_id", "c"), ("tenant_id", "t")]));
    }
}
