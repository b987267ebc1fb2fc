//! Store and cluster rules: regions, URLs, option secrets, plain-http endpoints,
//! multipart and retry tuning.

use indexmap::IndexMap;

use super::{Report, name_hint};
use crate::secret::{OptionValue, check_reference, is_secret_key};
use crate::store_url;
use crate::units::{parse_bytes, parse_duration};
use crate::{Multipart, Plan, Store};

/// S3's smallest part size for all but the last part.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

pub(super) fn check(plan: &Plan, report: &mut Report) {
    for (name, store) in &plan.stores {
        let path = format!("stores.{name}");
        check_region(plan, report, &path, &store.region);
        if let Err((message, hint)) = store_url::classify(&store.url) {
            report.value(format!("{path}.url"), message, hint);
        }
        check_options(report, &path, name, &store.options);
        check_tuning(report, &path, store);
    }
    for (name, cluster) in &plan.clusters {
        check_region(plan, report, &format!("clusters.{name}"), &cluster.region);
    }
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
        }
    }
    check_plain_http(report, path, store, options);
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
                format!("store `{store}` uses a plain-http endpoint `{raw}`"),
                "use https, or add `allow_http: \"true\"` to the store's options to allow it explicitly",
            );
        }
    }
}

fn check_tuning(report: &mut Report, path: &str, store: &Store) {
    if let Some(multipart) = &store.multipart {
        check_multipart(report, &format!("{path}.multipart"), multipart);
    }
    if let Some(timeout) = store.retry.as_ref().and_then(|r| r.timeout.as_ref())
        && let Err(why) = parse_duration(timeout)
    {
        report.value(
            format!("{path}.retry.timeout"),
            "retry timeout is not a duration",
            why,
        );
    }
}

fn check_multipart(report: &mut Report, path: &str, multipart: &Multipart) {
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
            "file, s3, s3a",
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
            "http://127.0.0.1:3900\"\n      allow_http: \"true\"",
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
}
