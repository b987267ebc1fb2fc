//! Store and cluster rules: regions, URLs (read once, by `store_url::parse`), option keys
//! the backend knows, secrets by reference only, credentials given or `ambient` said
//! explicitly, plain-http endpoints, multipart and retry tuning. A store that passes comes
//! out typed ([`StoreSpec`]).

use indexmap::IndexMap;

use super::{Report, name_hint};
use crate::secret::{OptionValue, check_reference, is_secret_key};
use crate::store_options::{
    closest_key, configures_credentials, credentials_example, is_ambient_key, is_credential_option,
    is_known,
};
use crate::store_spec::{MIN_PART_SIZE, MultipartSettings, RetryPolicy, StoreSpec};
use crate::store_url::{self, StoreLocation};
use crate::units::{parse_bytes, parse_duration};
use crate::{Credentials, Multipart, Plan, Store};

/// Check every store and cluster; the stores that passed, typed (local paths still
/// relative to the plan's directory).
pub(super) fn check(plan: &Plan, report: &mut Report) -> IndexMap<String, StoreSpec> {
    let mut typed = IndexMap::new();
    for (name, store) in &plan.stores {
        check_region(plan, report, &format!("stores.{name}"), &store.region);
        if let Some(spec) = check_store(report, name, store) {
            typed.insert(name.clone(), spec);
        }
    }
    for (name, cluster) in &plan.clusters {
        check_region(plan, report, &format!("clusters.{name}"), &cluster.region);
    }
    typed
}

/// Check one store (all but its region); its typed form when nothing was wrong with it.
pub(crate) fn check_store(report: &mut Report, name: &str, store: &Store) -> Option<StoreSpec> {
    let path = format!("stores.{name}");
    let before = report.len();
    let location = match store_url::parse(&store.url) {
        Ok(location) => Some(location),
        Err(problem) => {
            report.value(format!("{path}.url"), problem.message, problem.hint);
            None
        }
    };
    check_options(report, &path, name, &store.options);
    if let Some(location) = &location {
        check_backend_options(report, &path, name, store, location);
    }
    let multipart = store
        .multipart
        .as_ref()
        .map(|m| check_multipart(report, &format!("{path}.multipart"), m))
        .unwrap_or_default();
    let retry = check_retry(report, &path, store);
    let location = location?;
    (report.len() == before).then(|| StoreSpec::typed(name, store, location, multipart, retry))
}

fn check_region(plan: &Plan, report: &mut Report, path: &str, region: &str) {
    if !plan.regions.contains_key(region) {
        report.value(
            format!("{path}.region"),
            format!("region `{region}` is not defined"),
            name_hint(region, plan.regions.keys(), "regions"),
        );
    }
}

fn check_options(report: &mut Report, path: &str, store: &str, options: &IndexMap<String, String>) {
    for (key, raw) in options {
        let at = format!("{path}.options.{key}");
        if let Err(why) = check_reference(raw) {
            report.value(
                &at,
                format!("option `{key}` of store `{store}` is a malformed reference"),
                why,
            );
        } else if is_secret_key(key) && !OptionValue::parse(raw).is_reference() {
            report.value(
                &at,
                format!("literal secret in plan: option `{key}` of store `{store}`"),
                format!(
                    "give it by reference, e.g. `{key}: \"${{env:{}}}\"` or `\"${{file:PATH}}\"`, \
                     and rotate the exposed credential",
                    key.to_ascii_uppercase()
                ),
            );
        } else if has_password(raw) {
            report.value(
                &at,
                format!("literal secret in plan: option `{key}` of store `{store}` holds a `user:password@` URL"),
                "give the credentials as store options by reference (`${env:NAME}`), never inside \
                 a URL, and rotate the exposed password",
            );
        }
    }
    check_plain_http(report, path, store, options);
}

/// An option value as it may be shown: as written, unless it is a URL with a user,
/// password or query, which are left out.
fn shown(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(u) if u.password().is_some() || !u.username().is_empty() || u.query().is_some() => {
            store_url::display_url(raw.trim())
        }
        _ => raw.to_owned(),
    }
}

/// Whether a literal option value is a URL with a password (`https://user:pw@host`).
fn has_password(raw: &str) -> bool {
    url::Url::parse(raw.trim()).is_ok_and(|u| u.password().is_some())
}

/// Keys the backend knows; credentials given, or `credentials: ambient` said explicitly.
fn check_backend_options(
    report: &mut Report,
    path: &str,
    name: &str,
    store: &Store,
    location: &StoreLocation,
) {
    let Some(cloud) = location.cloud() else {
        if let Some(key) = store.options.keys().next() {
            report.key(
                format!("{path}.options.{key}"),
                format!("a {} store takes no options (`{key}`)", location.backend()),
                "remove the store's `options`",
            );
        }
        if store.credentials == Credentials::Ambient {
            report.value(
                format!("{path}.credentials"),
                format!("a {} store has no credentials", location.backend()),
                "remove `credentials: ambient`",
            );
        }
        return;
    };
    for key in store.options.keys() {
        if !is_known(cloud, key) {
            let hint = match closest_key(cloud, key) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("see object_store's {} configuration keys", cloud.name()),
            };
            report.key(
                format!("{path}.options.{key}"),
                format!(
                    "unknown option `{key}` for the {} store `{name}`",
                    cloud.name()
                ),
                hint,
            );
        } else if store.credentials == Credentials::Options && is_ambient_key(key) {
            report.key(
                format!("{path}.options.{key}"),
                format!("option `{key}` of store `{name}` takes credentials from the machine"),
                "add `credentials: ambient` to the store to allow it explicitly",
            );
        }
    }
    let pairs = || store.options.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    match store.credentials {
        Credentials::Options if !configures_credentials(cloud, pairs()) => report.key(
            path.to_owned(),
            format!(
                "store `{name}` configures no credentials, and relocate never falls back to \
                 the environment or a metadata endpoint unasked"
            ),
            format!(
                "give {} in its options, or add `credentials: ambient` to use the machine's",
                credentials_example(cloud)
            ),
        ),
        Credentials::Ambient => {
            if let Some(key) = store
                .options
                .keys()
                .find(|k| is_credential_option(cloud, k))
            {
                report.value(
                    format!("{path}.credentials"),
                    format!(
                        "store `{name}` says `credentials: ambient` but its option `{key}` gives credentials"
                    ),
                    "choose one: remove `credentials: ambient`, or the credential options",
                );
            }
        }
        Credentials::Options => {}
    }
}

/// A literal `http://` endpoint must be allowed explicitly with `allow_http: "true"`.
fn check_plain_http(
    report: &mut Report,
    path: &str,
    store: &str,
    options: &IndexMap<String, String>,
) {
    let allowed = options.iter().any(|(k, v)| {
        k.to_ascii_lowercase().ends_with("allow_http") && v.trim().eq_ignore_ascii_case("true")
    });
    if allowed {
        return;
    }
    for (key, raw) in options {
        let lower = key.to_ascii_lowercase();
        let is_endpoint =
            lower == "endpoint" || lower.ends_with("_endpoint") || lower.ends_with("endpoint_url");
        if is_endpoint && raw.trim().to_ascii_lowercase().starts_with("http://") {
            report.value(
                format!("{path}.options.{key}"),
                format!("store `{store}` uses a plain-http endpoint `{}`", shown(raw)),
                "use https, or add `allow_http: \"true\"` to the store's options to allow it explicitly",
            );
        }
    }
}

fn check_retry(report: &mut Report, path: &str, store: &Store) -> RetryPolicy {
    let Some(retry) = &store.retry else {
        return RetryPolicy::default();
    };
    let timeout = retry.timeout.as_ref().and_then(|raw| {
        parse_duration(raw)
            .map_err(|why| {
                report.value(
                    format!("{path}.retry.timeout"),
                    "retry timeout is not a duration",
                    why,
                )
            })
            .ok()
    });
    RetryPolicy {
        max_retries: retry.max_retries,
        timeout,
    }
}

fn check_multipart(report: &mut Report, path: &str, multipart: &Multipart) -> MultipartSettings {
    let defaults = MultipartSettings::default();
    let mut size = |field: &str, raw: &Option<String>| -> Option<u64> {
        let raw = raw.as_ref()?;
        parse_bytes(raw)
            .map_err(|why| {
                report.value(
                    format!("{path}.{field}"),
                    format!("`{field}` is not a size"),
                    why,
                )
            })
            .ok()
    };
    let threshold = size("threshold", &multipart.threshold);
    let part_size = size("partSize", &multipart.part_size);
    if let Some(part) = part_size.filter(|p| *p < MIN_PART_SIZE) {
        report.value(
            format!("{path}.partSize"),
            format!("part size {part} bytes is below the 5 MiB minimum of S3-compatible stores"),
            "write at least `5MiB`, e.g. `16MiB`",
        );
    }
    if let (Some(threshold), Some(part)) = (threshold, part_size)
        && threshold < part
    {
        report.value(
            format!("{path}.threshold"),
            "the multipart threshold is smaller than the part size",
            "make `threshold` at least `partSize`",
        );
    }
    if multipart.concurrency == Some(0) {
        report.value(
            format!("{path}.concurrency"),
            "multipart concurrency is 0",
            "write 1 or more",
        );
    }
    MultipartSettings {
        threshold: threshold.unwrap_or(defaults.threshold),
        part_size: part_size.unwrap_or(defaults.part_size),
        concurrency: multipart.concurrency.unwrap_or(defaults.concurrency),
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{base_with, expect_one};

    const SECRET_LINE: &str = r#"secret_access_key: "${env:ZRH_SECRET}""#;

    #[test]
    fn store_region_undefined() {
        let text = base_with("src: { region: moscow", "src: { region: mos");
        expect_one(
            &text,
            11,
            18,
            "region `mos` is not defined",
            "regions defined: `moscow`, `zurich`",
        );
    }

    #[test]
    fn cluster_region_undefined() {
        let text = base_with("zrh: { region: zurich", "zrh: { region: zurch");
        let d = crate::validate::testing::diagnostics(&text);
        let d = d.iter().find(|d| d.line == 20).expect("cluster diagnostic");
        assert_eq!(d.column, 18);
        assert!(
            d.message.contains("region `zurch` is not defined")
                && d.hint.contains("did you mean `zurich`?"),
            "{d}"
        );
    }

    #[test]
    fn bad_url_scheme() {
        let text = base_with("s3://bucket/archive/", "ftp://bucket/archive/");
        expect_one(
            &text,
            14,
            10,
            "scheme `ftp` is not supported",
            "file, memory, s3, s3a",
        );
    }

    #[test]
    fn literal_secret_is_refused_without_echoing_it() {
        let text = base_with(SECRET_LINE, r#"secret_access_key: "wJalrXUtnFEMI/K7MDENG""#);
        let d = expect_one(
            &text,
            17,
            26,
            "literal secret in plan: option `secret_access_key` of store `dst`",
            "${env:SECRET_ACCESS_KEY}",
        );
        assert!(
            !d.to_string().contains("wJalrXUtnFEMI"),
            "secret echoed: {d}"
        );
        assert!(
            !format!("{d:?}").contains("wJalrXUtnFEMI"),
            "secret echoed in Debug"
        );
    }

    #[test]
    fn malformed_reference() {
        let text = base_with(SECRET_LINE, r#"secret_access_key: "${vault:zrh}""#);
        let d = expect_one(
            &text,
            17,
            26,
            "option `secret_access_key` of store `dst` is a malformed reference",
            "`${env:NAME}` or `${file:PATH}`",
        );
        assert!(!d.to_string().contains("vault:zrh"));
    }

    #[test]
    fn plain_http_endpoint_needs_allow_http() {
        let text = base_with("https://s3.zrh.example", "http://127.0.0.1:3900");
        expect_one(
            &text,
            16,
            17,
            "plain-http endpoint `http://127.0.0.1:3900`",
            "allow_http: \"true\"",
        );
        let allowed = base_with(
            "https://s3.zrh.example\"",
            "http://127.0.0.1:3900\", allow_http: \"true\"",
        );
        crate::parse(&allowed, std::path::Path::new("p.yaml")).expect("allowed explicitly");
    }

    #[test]
    fn multipart_part_size_minimum_and_threshold_order() {
        let multipart =
            "url: \"s3://bucket/archive/\"\n    multipart: { threshold: 8MiB, partSize: 1MiB }";
        let text = base_with("url: \"s3://bucket/archive/\"", multipart);
        expect_one(&text, 15, 45, "below the 5 MiB minimum", "at least `5MiB`");
        let multipart =
            "url: \"s3://bucket/archive/\"\n    multipart: { threshold: 8MiB, partSize: 16MiB }";
        let text = base_with("url: \"s3://bucket/archive/\"", multipart);
        expect_one(
            &text,
            15,
            29,
            "threshold is smaller than the part size",
            "at least `partSize`",
        );
    }

    #[test]
    fn bad_sizes_and_durations() {
        let multipart = "url: \"s3://bucket/archive/\"\n    multipart: { partSize: lots }";
        let text = base_with("url: \"s3://bucket/archive/\"", multipart);
        expect_one(&text, 15, 28, "`partSize` is not a size", "`64MiB`");
        let retry = "url: \"s3://bucket/archive/\"\n    retry: { timeout: soon }";
        let text = base_with("url: \"s3://bucket/archive/\"", retry);
        expect_one(&text, 15, 23, "retry timeout is not a duration", "`5m`");
    }

    #[test]
    fn finding_18_credentials_in_a_store_url_are_refused_where_written() {
        let text = base_with(
            "s3://bucket/archive/",
            "s3://AKIAXMPL:wJalrXUtnFEMI@bucket/archive/",
        );
        let d = expect_one(&text, 14, 10, "credentials in store url", "by reference");
        let shown = format!("{d} {d:?}");
        assert!(
            !shown.contains("wJalrXUtnFEMI") && !shown.contains("AKIAXMPL"),
            "{shown}"
        );
    }

    #[test]
    fn finding_18_unknown_option_key_is_refused_with_a_suggestion() {
        let text = base_with("endpoint:", "endpont:");
        expect_one(
            &text,
            16,
            7,
            "unknown option `endpont` for the s3 store `dst`",
            "did you mean `endpoint`?",
        );
        let text = base_with("secret_access_key:", "sekret_access_key:");
        let diags = crate::validate::testing::diagnostics(&text);
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("unknown option `sekret_access_key`")
                    && d.hint.contains("did you mean `secret_access_key`?")),
            "{diags:#?}"
        );
    }

    #[test]
    fn finding_18_a_store_without_credentials_needs_credentials_ambient() {
        let text = base_with(
            r#"src: { region: moscow, url: "file:///srv/src/" }"#,
            r#"src: { region: moscow, url: "s3://in/" }"#,
        );
        expect_one(
            &text,
            11,
            3,
            "store `src` configures no credentials",
            "`credentials: ambient`",
        );
        let ambient = base_with(
            r#"src: { region: moscow, url: "file:///srv/src/" }"#,
            r#"src: { region: moscow, url: "s3://in/", credentials: ambient }"#,
        );
        let plan =
            crate::parse(&ambient, std::path::Path::new("p.yaml")).expect("ambient is explicit");
        assert_eq!(
            plan.store("src").map(|s| s.credentials),
            Some(crate::Credentials::Ambient)
        );
        let text = base_with(
            r#"src: { region: moscow, url: "file:///srv/src/" }"#,
            r#"src: { region: moscow, url: "s3://in/", options: { role_arn: "arn:aws:iam::1:role/r", skip_signature: "true" } }"#,
        );
        expect_one(
            &text,
            11,
            54,
            "takes credentials from the machine",
            "credentials: ambient",
        );
    }

    #[test]
    fn finding_18_ambient_and_credential_options_contradict() {
        let text = base_with(
            "url: \"s3://bucket/archive/\"",
            "url: \"s3://bucket/archive/\"\n    credentials: ambient",
        );
        let diags = crate::validate::testing::diagnostics(&text);
        assert!(
            diags
                .iter()
                .all(|d| d.message.contains("says `credentials: ambient` but")),
            "{diags:#?}"
        );
    }

    #[test]
    fn finding_03_endpoint_with_a_password_is_a_literal_secret() {
        let text = base_with(
            "https://s3.zrh.example",
            "https://user:hunter22@s3.zrh.example",
        );
        let d = expect_one(&text, 16, 17, "literal secret in plan", "rotate");
        assert!(!format!("{d} {d:?}").contains("hunter22"), "{d}");
    }

    #[test]
    fn local_stores_take_no_options() {
        let text = base_with(
            r#"src: { region: moscow, url: "file:///srv/src/" }"#,
            r#"src: { region: moscow, url: "file:///srv/src/", options: { region: x } }"#,
        );
        expect_one(&text, 11, 62, "a local store takes no options", "remove");
    }

    #[test]
    fn typed_store_carries_sizes_and_durations() {
        let tuned = "url: \"s3://bucket/archive/\"\n    multipart: { threshold: 64MiB, partSize: 16MiB, concurrency: 2 }\n    retry: { maxRetries: 3, timeout: 90s }";
        let text = base_with("url: \"s3://bucket/archive/\"", tuned);
        let plan = crate::parse(&text, std::path::Path::new("/p/plan.yaml")).expect("valid");
        let dst = plan.store("dst").expect("dst");
        assert_eq!(
            (
                dst.multipart.threshold,
                dst.multipart.part_size,
                dst.multipart.concurrency
            ),
            (64 << 20, 16 << 20, 2)
        );
        assert_eq!(dst.retry.max_retries, Some(3));
        assert_eq!(dst.retry.timeout, Some(std::time::Duration::from_secs(90)));
        let src = plan.store("src").expect("src");
        assert_eq!(src.multipart, crate::MultipartSettings::default());
    }
}
