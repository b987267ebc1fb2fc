use super::*;

fn local_at(raw: &str) -> PathBuf {
    match parse(raw).expect("parses").resolve(Path::new("/plans/dir")) {
        StoreLocation::Local(p) => p,
        other => panic!("not local: {other:?}"),
    }
}

#[test]
fn local_urls_resolve_against_the_plan_directory() {
    assert_eq!(local_at("file:///srv/data/"), PathBuf::from("/srv/data"));
    assert_eq!(local_at("file:/srv/data"), PathBuf::from("/srv/data"));
    assert_eq!(
        local_at("file://localhost/srv/data"),
        PathBuf::from("/srv/data")
    );
    assert_eq!(
        local_at("file://./data/in"),
        PathBuf::from("/plans/dir/data/in")
    );
    assert_eq!(local_at("file:./data"), PathBuf::from("/plans/dir/data"));
    assert_eq!(local_at("file:data"), PathBuf::from("/plans/dir/data"));
    assert_eq!(local_at("file://."), PathBuf::from("/plans/dir"));
    assert_eq!(
        local_at("file://../target/"),
        PathBuf::from("/plans/target")
    );
    assert_eq!(
        local_at("file:///srv/my%20data"),
        PathBuf::from("/srv/my%20data")
    );
}

#[test]
fn finding_11_parent_relative_file_url_is_one_location_for_validation_and_run() {
    let location = parse("file://../target/").expect("a relative file url parses");
    assert_eq!(location, StoreLocation::Local(PathBuf::from("../target")));
    assert_eq!(
        location.resolve(Path::new("/plans/zrh")),
        StoreLocation::Local(PathBuf::from("/plans/target"))
    );
}

#[test]
fn cloud_urls_keep_their_decoded_prefix() {
    let cloud = |raw: &str| match parse(raw).expect("parses") {
        StoreLocation::Cloud { cloud, prefix, .. } => (cloud, prefix),
        other => panic!("not cloud: {other:?}"),
    };
    assert_eq!(cloud("s3://bucket/a/b/"), (Cloud::S3, "a/b".to_owned()));
    assert_eq!(cloud("s3://bucket"), (Cloud::S3, String::new()));
    assert_eq!(cloud("gs://b/my%20dir/"), (Cloud::Gcs, "my dir".to_owned()));
    assert_eq!(
        cloud("abfss://cont@acct.dfs.core.windows.net/p/"),
        (Cloud::Azure, "p".to_owned())
    );
    assert_eq!(
        cloud("https://acct.blob.core.windows.net/container/x/y"),
        (Cloud::Azure, "x/y".to_owned())
    );
    assert_eq!(
        cloud("https://s3.eu-central-2.amazonaws.com/bucket/x"),
        (Cloud::S3, "x".to_owned())
    );
    assert_eq!(
        parse("memory:///p/").expect("parses"),
        StoreLocation::Memory {
            prefix: "p".to_owned()
        }
    );
}

#[test]
fn bad_urls_are_explained() {
    let err = parse("ftp://host/x").expect_err("unknown scheme");
    assert!(err.message.contains("`ftp`"), "{err:?}");
    assert!(err.hint.contains("s3"), "{err:?}");
    let err = parse("file://nas/share").expect_err("host");
    assert!(err.message.contains("names a host"), "{err:?}");
    let err = parse("not a url").expect_err("not a url");
    assert!(err.message.contains("is not a URL"), "{err:?}");
    let err = parse("https://minio.local/bucket").expect_err("unknown https host");
    assert!(err.hint.contains("endpoint"), "{err:?}");
    assert!(parse("s3://bucket/a//b").is_err());
    assert!(parse("file:").is_err());
}

#[test]
fn finding_18_credentials_in_urls_are_refused_without_echoing_them() {
    for raw in [
        "s3://AKIAKEY:wJalrSECRET@bucket/p/",
        "s3://AKIAKEY@bucket/p/",
        "https://acct.blob.core.windows.net/c/p?sv=2020&sig=wJalrSECRET",
        "gs://bucket/p#wJalrSECRET",
        "abfs://cont:wJalrSECRET@acct.dfs.core.windows.net/p",
    ] {
        let err = parse(raw).expect_err(raw);
        let text = format!("{err:?}");
        assert!(!text.contains("wJalrSECRET"), "{raw}: {text}");
        assert!(!text.contains("AKIAKEY"), "{raw}: {text}");
    }
    assert!(parse("abfs://cont@acct.dfs.core.windows.net/p").is_ok());
}

#[test]
fn display_url_drops_user_password_and_query() {
    assert_eq!(
        display_url("https://acct.blob.core.windows.net/c/p?sv=2020&sig=SECRETSIG"),
        "https://acct.blob.core.windows.net/c/p"
    );
    assert_eq!(display_url("s3://user:hunter22@bucket/p"), "s3://bucket/p");
    assert_eq!(
        display_url("abfs://cont@acct.dfs.core.windows.net/p"),
        "abfs://cont@acct.dfs.core.windows.net/p"
    );
    assert!(!display_url("not a url://u:pw@host/x?sig=1").contains("pw"));
}
