//! The WAN proxy as a process, for `e2e/bench/wan.sh`: one proxy per named link in front
//! of one server, and on request the requests and bytes that crossed each link since the
//! last time it was asked.
//!
//! `cargo run --release -p e2e --example wan_figures -- UPSTREAM NAME=RTT_MS[:MBIT]...`
//! (`wan40=40:200` is a 40 ms round trip shaped to 200 Mbit/s each way; `wan0=0` is the
//! proxy without delay or shaping). It prints `proxy NAME ENDPOINT` per link, then
//! `ready`, and then answers each line `take NAME` on stdin with one JSON line: requests
//! by kind, their total, the bytes each way, and up to 8 request lines of kind `Other`
//! (rclone 1.60 lists with ListObjects v1, `GET /bucket?prefix=…` without `list-type=2`:
//! those are counted as `ListV1` here, apart from the harness's own classification). It
//! ends at the end of its input.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use e2e::wan::{Counts, Link, RequestKind, WanProxy};

fn parse_link(spec: &str) -> anyhow::Result<(String, Link)> {
    let (name, shape) = spec
        .split_once('=')
        .with_context(|| format!("{spec}: expected NAME=RTT_MS[:MBIT]"))?;
    let (rtt, mbit) = match shape.split_once(':') {
        Some((rtt, mbit)) => (rtt, Some(mbit)),
        None => (shape, None),
    };
    let rtt: u64 = rtt
        .parse()
        .with_context(|| format!("{spec}: round trip {rtt:?} is not whole milliseconds"))?;
    let mut link = Link::rtt(Duration::from_millis(rtt));
    if let Some(mbit) = mbit {
        let mbit: u64 = mbit
            .parse()
            .with_context(|| format!("{spec}: rate {mbit:?} is not whole Mbit/s"))?;
        link = link.mbit(mbit);
    }
    Ok((name.to_owned(), link))
}

/// `GET /bucket?…` or `GET /bucket` with no key and no other S3 sub-resource: a v1 listing.
fn is_list_v1(line: &str) -> bool {
    let Some(target) = line.strip_prefix("GET ") else {
        return false;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let bucket_only = !path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .contains('/');
    let sub_resource = ["location", "versioning", "uploads", "acl", "policy"]
        .iter()
        .any(|s| query.split('&').any(|p| p.split('=').next() == Some(s)));
    bucket_only && !sub_resource
}

fn report(name: &str, counts: &Counts) -> serde_json::Value {
    let mut requests: BTreeMap<String, u64> = counts
        .requests
        .iter()
        .filter(|(kind, _)| **kind != RequestKind::Other)
        .map(|(kind, n)| (format!("{kind:?}"), *n))
        .collect();
    let others: Vec<&String> = counts
        .lines
        .iter()
        .filter(|l| {
            let target = l.split_once(' ').map_or("", |(_, t)| t);
            let method = l.split_once(' ').map_or("", |(m, _)| m);
            e2e::wan::classify(method, target, &[]) == RequestKind::Other
        })
        .collect();
    let v1 = others.iter().filter(|l| is_list_v1(l)).count() as u64;
    let other = counts.get(RequestKind::Other).saturating_sub(v1);
    if v1 > 0 {
        requests.insert("ListV1".into(), v1);
    }
    if other > 0 {
        requests.insert("Other".into(), other);
    }
    serde_json::json!({
        "name": name,
        "requests": requests,
        "total": counts.total(),
        "bytes_up": counts.bytes_up,
        "bytes_down": counts.bytes_down,
        "other_lines": others.iter().filter(|l| !is_list_v1(l)).take(8).collect::<Vec<_>>(),
    })
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let upstream = args
        .next()
        .context("usage: wan_figures UPSTREAM NAME=RTT_MS[:MBIT]...")?;
    // The proxies run on the runtime's two workers; this thread only answers `take`.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut proxies = BTreeMap::new();
    let mut out = std::io::stdout().lock();
    for spec in args {
        let (name, link) = parse_link(&spec)?;
        let proxy = runtime
            .block_on(WanProxy::start(&upstream, link))
            .with_context(|| format!("start the proxy {name} in front of {upstream}"))?;
        writeln!(out, "proxy {name} {}", proxy.endpoint())?;
        proxies.insert(name, proxy);
    }
    if proxies.is_empty() {
        bail!("name at least one link: NAME=RTT_MS[:MBIT]");
    }
    writeln!(out, "ready")?;
    out.flush()?;
    for line in std::io::stdin().lines() {
        let line = line?;
        let Some(name) = line.trim().strip_prefix("take ") else {
            bail!("{line:?}: expected `take NAME`");
        };
        let proxy = proxies
            .get(name.trim())
            .with_context(|| format!("no link named {name:?}"))?;
        writeln!(out, "{}", report(name.trim(), &proxy.take_counts()))?;
        out.flush()?;
    }
    // Dropping the proxies inside the runtime stops their tasks.
    runtime.block_on(async move { drop(proxies) });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_listings_are_told_from_bucket_calls() {
        assert!(is_list_v1("GET /b?delimiter=&max-keys=1000&prefix=data%2F"));
        assert!(is_list_v1("GET /b/"));
        assert!(!is_list_v1("GET /b?location"));
        assert!(!is_list_v1("GET /b/key"));
        assert!(!is_list_v1("HEAD /b"));
    }

    #[test]
    fn links_are_parsed_with_and_without_a_rate() {
        let (name, link) = parse_link("wan40=40:200").expect("valid");
        assert_eq!(name, "wan40");
        assert_eq!(link.delay_up, Duration::from_millis(20));
        assert_eq!(link.rate, Some(25_000_000));
        let (_, link) = parse_link("wan0=0").expect("valid");
        assert_eq!((link.delay_down, link.rate), (Duration::ZERO, None));
        assert!(parse_link("x=fast").is_err());
        assert!(parse_link("40:200").is_err());
    }
}
