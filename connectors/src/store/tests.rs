//! Tests of opening stores: URL forms, secrets kept out of every message, the GCS builder path,
//! and the pre-flight check against a local directory and a closed port.

use std::collections::HashMap;
use std::ffi::OsString;

use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};

use super::*;

fn raw_store(url: &str, options: &[(&str, &str)]) -> plans::Store {
    plans::Store {
        region: "here".into(),
        url: url.into(),
        options: options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        multipart: None,
        retry: None,
        credentials: plans::Credentials::Options,
    }
}

/// A store as validation types it (a relative path stays relative: `open_with` gets the base).
fn plan_store(url: &str, options: &[(&str, &str)]) -> StoreSpec {
    StoreSpec::from_store("dst", &raw_store(url, options))
        .unwrap_or_else(|e| panic!("valid store {url}: {e}"))
}

fn open_with(
    store: &StoreSpec,
    base: &Path,
    mode: Access,
    env: &[(&str, &str)],
) -> Result<StoreHandle, StoreError> {
    let env: HashMap<String, OsString> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    open_store_with_env("dst", store, base, mode, &move |name| {
        env.get(name).cloned()
    })
}

#[tokio::test]
async fn relative_file_url_is_created_for_write_and_keys_are_relative() {
    let base = tempfile::tempdir().expect("tempdir");
    let handle = open_with(
        &plan_store("file://./out/data", &[]),
        base.path(),
        Access::Write,
        &[],
    )
    .expect("opens");
    handle
        .store
        .put(
            &ObjectPath::from("a/b.txt"),
            PutPayload::from_static(b"hello"),
        )
        .await
        .expect("put");
    let on_disk = std::fs::read(base.path().join("out/data/a/b.txt"))
        .expect("file written under the plan dir");
    assert_eq!(on_disk, b"hello");
    assert_eq!(
        handle.display_url,
        format!("file://{}", base.path().join("out/data").display())
    );
    preflight(&handle).await.expect("local preflight passes");
}

#[test]
fn missing_local_dir_for_read_is_not_found() {
    let base = tempfile::tempdir().expect("tempdir");
    let err = open_with(
        &plan_store("file:missing", &[]),
        base.path(),
        Access::Read,
        &[],
    )
    .expect_err("fails");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(
        !base.path().join("missing").exists(),
        "read mode must not create the directory"
    );
}

#[tokio::test]
async fn memory_store_with_prefix_roundtrips() {
    let handle = open_with(
        &plan_store("memory:///pre/fix", &[]),
        Path::new("/"),
        Access::Write,
        &[],
    )
    .expect("opens");
    let key = ObjectPath::from("k");
    handle
        .store
        .put(&key, PutPayload::from_static(b"v"))
        .await
        .expect("put");
    let listed: Vec<_> = handle
        .root
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    assert_eq!(listed, vec!["pre/fix/k".to_owned()]);
    let got = handle
        .store
        .get(&key)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&got[..], b"v");
}

#[test]
fn finding_18_unknown_option_key_is_refused_before_the_run() {
    let store = raw_store(
        "s3://bucket/p",
        &[
            ("access_key_id", "${env:K}"),
            ("sekret_access_key", "${env:K}"),
        ],
    );
    let err = StoreSpec::from_store("dst", &store).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("unknown option `sekret_access_key`")
            && text.contains("did you mean `secret_access_key`?"),
        "{text}"
    );
    let err = StoreSpec::from_store("dst", &raw_store("memory:///", &[("region", "x")]))
        .expect_err("memory takes no options");
    assert!(err.to_string().contains("takes no options"), "{err}");
}

#[test]
fn finding_18_every_listed_option_key_is_one_object_store_knows() {
    use object_store::aws::AmazonS3ConfigKey;
    use object_store::azure::AzureConfigKey;
    use object_store::gcp::GoogleConfigKey;
    use plans::Cloud;
    use std::str::FromStr;
    for key in plans::store_options::known_keys(Cloud::S3) {
        assert!(AmazonS3ConfigKey::from_str(&key).is_ok(), "s3 `{key}`");
    }
    for key in plans::store_options::known_keys(Cloud::Azure) {
        assert!(AzureConfigKey::from_str(&key).is_ok(), "azure `{key}`");
    }
    for key in plans::store_options::known_keys(Cloud::Gcs) {
        assert!(GoogleConfigKey::from_str(&key).is_ok(), "gcs `{key}`");
    }
}

#[test]
fn finding_18_cloud_store_without_credentials_is_refused() {
    let store = raw_store("s3://bucket/p", &[("region", "eu-central-2")]);
    let err = StoreSpec::from_store("dst", &store).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("configures no credentials") && text.contains("credentials: ambient"),
        "{text}"
    );
    let mut ambient = store.clone();
    ambient.credentials = plans::Credentials::Ambient;
    StoreSpec::from_store("dst", &ambient).expect("ambient said explicitly");
}

#[test]
fn s3_handle_shows_no_credentials_and_knows_its_account() {
    let store = plan_store(
        "s3://bucket/some/prefix",
        &[
            ("endpoint", "http://127.0.0.1:9"),
            ("allow_http", "true"),
            ("region", "us-east-1"),
            ("access_key_id", "${env:KEY_ID}"),
            ("secret_access_key", "${env:SECRET}"),
        ],
    );
    let handle = open_with(
        &store,
        Path::new("/"),
        Access::Read,
        &[
            ("KEY_ID", "AKIDEXAMPLE1"),
            ("SECRET", "wJalrXUtnFEMI-secret"),
        ],
    )
    .expect("opens");
    let shown = format!("{handle:?} {}", handle.display_url);
    assert!(
        !shown.contains("wJalrXUtnFEMI-secret") && !shown.contains("AKIDEXAMPLE1"),
        "{shown}"
    );
    assert_eq!(handle.display_url, "s3://bucket/some/prefix");
    assert_eq!(handle.same_account_key, "s3|http://127.0.0.1:9|bucket");
    assert_eq!(handle.prefix.as_ref(), "some/prefix");
    assert_eq!(handle.redact("sig for AKIDEXAMPLE1"), "sig for ***");
}

#[tokio::test]
async fn closed_port_is_unreachable_quickly() {
    let port = closed_port();
    let store = plan_store(
        "s3://bucket",
        &[
            ("endpoint", &format!("http://127.0.0.1:{port}")),
            ("allow_http", "true"),
            ("region", "us-east-1"),
            ("access_key_id", "${env:KEY_ID}"),
            ("secret_access_key", "${env:SECRET}"),
        ],
    );
    let handle = open_with(
        &store,
        Path::new("/"),
        Access::Read,
        &[("KEY_ID", "AKIDEXAMPLE2"), ("SECRET", "another-secret-9")],
    )
    .expect("opens");
    let started = std::time::Instant::now();
    let err = preflight(&handle).await.expect_err("fails");
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("dst") && text.contains("s3://bucket"),
        "{text}"
    );
    assert!(
        !text.contains("another-secret-9") && !text.contains("AKIDEXAMPLE2"),
        "{text}"
    );
}

/// A loopback port nothing listens on: bind one, note it, close it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

/// Builds a GCS client from a service-account key given by `${file:…}`. This is as far as GCS can
/// be tested here: no emulator that answers object_store's GCS API can be installed on this
/// machine, so requests against GCS are not exercised by the test suite.
#[test]
fn gcs_builds_from_a_service_account_key_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = serde_json::json!({
        "type": "service_account",
        "project_id": "relocate-test",
        "private_key_id": "0123456789abcdef",
        "private_key": TEST_ONLY_RSA_KEY,
        "client_email": "relocate@relocate-test.iam.gserviceaccount.com",
    });
    std::fs::write(dir.path().join("sa.json"), key.to_string()).expect("write key");
    let store = plan_store(
        "gs://bucket/prefix",
        &[("service_account_key", "${file:sa.json}")],
    );
    let handle = open_with(&store, dir.path(), Access::Read, &[]).expect("GCS client builds");
    assert_eq!(handle.same_account_key, "gcs||bucket");
    assert!(!format!("{handle:?}").contains("PRIVATE KEY"));

    let broken = r#"{"private_key":"-----BEGIN PRIVATE KEY-----\nbm90LWEta2V5LXN1cGVyLXNlY3JldA==\n-----END PRIVATE KEY-----\n","client_email":"x@y"}"#;
    std::fs::write(dir.path().join("bad.json"), broken).expect("write key");
    let store = plan_store(
        "gs://bucket",
        &[("service_account_key", "${file:bad.json}")],
    );
    let err = open_with(&store, dir.path(), Access::Read, &[]).expect_err("fails");
    let text = format!("{err} {err:?}");
    assert!(matches!(err, StoreError::Build { .. }), "{err:?}");
    assert!(!text.contains("bm90LWEta2V5LXN1cGVyLXNlY3JldA"), "{text}");
}

/// A throwaway 2048-bit RSA key generated for this test only; it protects nothing.
const TEST_ONLY_RSA_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDGaZXFb8xdPv2f\n\
iKgnrCVvspUgUNMcLXjKF+eBaD/2zDAhD0WSa/RLmAmkqe0lAIW+kbwttd0ArWgW\n\
vDF7NGNOQpuTPI3O/nwEqokRJepnw5cizKp+V5zbvEN4S9Q7MzN9SZPH4xuf03cD\n\
GIHCxZmfb9FgFA6K0O5dl8Fg5WpNnph8VJnIiz0S2qHLTEuSAsmhfE3dMxKtepLv\n\
Me/b2F9dYZL6DQ6pOkdLuUKBnu282aNRN80CuEUwl27TKt22pUV/cUoQg9VNySCf\n\
co1GjutJp08MLZqby8Bjbs0jMde+pmAIDfTdXBJwlQEopV5lcPO+GzIfrN9/3qJc\n\
31lij7G9AgMBAAECggEAGlt4W+wIF/MAOisrO2nw5y+wA8T45mtb+mzGgjhZFu31\n\
Ds86jMLuhwRBc7BnIl05ZyFxABmCrE5c33hMknNZJdJPXHXU2MSRsQT+hFqnEvW2\n\
pBbQJ0x4N/CAfgCExwB8PI6DpTAUQV0UGEMvKbKaP8XY6IyBigtLPv+j3r1bK8hD\n\
0nnk+h06IlyB4kC3AxZOKUr790Ns7MowIIyNv0A/HlheJhgEI6Lg6zqhge3N8gBl\n\
OfsZIVLA9xMTWViqqsR6nJI+fUv5Y3KOBQ3PSmN3N+ryn6keI0yptSMO2GdvXP0v\n\
IkoQTYKoXysOzBxfUQzfMbreouigTvcQ/BeJJ2QXAQKBgQDlCGttgYaQoy0HV0jX\n\
h/Ks4OX25FLxdbevmpbRPTRVbhqBKqGUGyjn2T/tFnpud+UZfgAqe6B43wgPknAS\n\
fM9Ph3Wl+70eJQ8+ghJIiL6pdzQEKhwlpktsh1a++gZDEGtZtE7BhGulB6pkgc6U\n\
/dvOKEyWx9/mr1/Lf0WYA3M4HQKBgQDdxjHCtpMptrOnT2qCkjprN3epptp6fC70\n\
L/KAqWc36B4unRLYXf16ji/MqzT3t80ZfKOx7G0QbPbdgWuTjKpXj/tQ0dY4ne+m\n\
umdf2NgIFrlRvvdZ5OSvySJ3F/1N3GFdf8KnKChM5JxWOMVlU7MD3o2caHcw7mOr\n\
qj6BH61uIQKBgDdzWWcS0/yStSUw2b7s+DEo5iRnVTmGkalfWSJhmhkQ5jPdmW8d\n\
QEMZ0yNYrN2wA3Svj+S5N7nr7ayvfJjNRPfxSOed0kTJHi65GSociWTIKnzToSrw\n\
XxRwk+z65ac5A3Sdde/eWp2DBJr+3oAuEhiQozJiQ/A7B4tiTfwm4a91AoGANYtX\n\
kkpgZ47b+0Y6UgIaJq7CrmxBjZcUAxLceuHrsNzTBLAZz7GJtKBFvCWN6U0wMLoe\n\
D6QkhPW5+Kr5nSs2KWPy6oVvMkY3iUqyELsbFYDfB3SS5dpUuHhYYOai2rydqWRi\n\
S9dvO3lqoYqdZiR6MTH3gM7cEC1OVTEKXESYq+ECgYAVvTzb+cv5z5y4r/y9LjOe\n\
dKcG9W8CgR9t5z57WLr/QfxznMXfu7GpT2xxMDwwGcw2dqdYZ8JSV99zvUtOMLCM\n\
WXHilZGTNdOoH3wsnZNzgSZbJDTJbygjTVdwWjCVbPZpMGZfdW8kASqVRrPXJXWz\n\
eEH7BPW/x4fCT1/6LLKM1g==\n\
-----END PRIVATE KEY-----\n\
";

#[tokio::test]
async fn finding_11_a_parent_relative_file_url_that_validates_also_opens() {
    let root = tempfile::tempdir().expect("tempdir");
    let plan_dir = root.path().join("plans");
    std::fs::create_dir_all(&plan_dir).expect("plan dir");
    let text = r#"apiVersion: relocate/v1
kind: MigrationPlan
name: up
regions: { a: { jurisdiction: RU }, b: { jurisdiction: CH } }
source: a
target: b
stores:
  src: { region: a, url: "file://./src/" }
  dst: { region: b, url: "file://../target/" }
workloads:
  data: { objects: { from: src, to: dst } }
stages:
  - name: seed
    steps: [ { copy: data }, { verify: data } ]
"#;
    let plan = plans::parse(text, &plan_dir.join("plan.yaml")).expect("the plan validates");
    let spec = plan.store("dst").expect("dst");
    let handle =
        open_store("dst", spec, plan.base_dir(), Access::Write).expect("what validated also opens");
    handle
        .store
        .put(&ObjectPath::from("k"), PutPayload::from_static(b"v"))
        .await
        .expect("put");
    assert_eq!(
        std::fs::read(root.path().join("target/k")).expect("written beside the plan dir"),
        b"v"
    );
}
