//! The WAN proxy itself: its delay is observed, its rate holds within ±15%, and its
//! request counts are exact for a known sequence of object_store calls against moto.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use connectors::store::{Access, open_store};
use e2e::wan::{Link, RequestKind, WanProxy, through};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A loopback server that echoes every byte back.
async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr.to_string()
}

async fn round_trip(proxy: &WanProxy) -> Duration {
    let mut s = tokio::net::TcpStream::connect(proxy.addr())
        .await
        .expect("connect");
    s.set_nodelay(true).expect("nodelay");
    // The first exchange also opens the proxy's connection to the server: warm up.
    let mut byte = [0u8; 1];
    s.write_all(b"x").await.expect("write");
    s.read_exact(&mut byte).await.expect("read");
    let start = Instant::now();
    s.write_all(b"y").await.expect("write");
    s.read_exact(&mut byte).await.expect("read");
    assert_eq!(&byte, b"y");
    start.elapsed()
}

#[tokio::test]
async fn each_direction_pays_its_configured_delay() {
    let echo = echo_server().await;
    let symmetric = WanProxy::start(&echo, Link::rtt(Duration::from_millis(80)))
        .await
        .expect("proxy");
    let rtt = round_trip(&symmetric).await;
    assert!(
        rtt >= Duration::from_millis(80) && rtt < Duration::from_millis(80 + 60),
        "round trip {rtt:?} at 40 ms each way"
    );
    let one_way = Link {
        delay_up: Duration::from_millis(60),
        ..Link::default()
    };
    let asymmetric = WanProxy::start(&echo, one_way).await.expect("proxy");
    let rtt = round_trip(&asymmetric).await;
    assert!(
        rtt >= Duration::from_millis(60) && rtt < Duration::from_millis(60 + 60),
        "round trip {rtt:?} at 60 ms up, 0 down"
    );
    let direct = WanProxy::start(&echo, Link::default())
        .await
        .expect("proxy");
    assert!(round_trip(&direct).await < Duration::from_millis(30));
}

/// Bytes per second that crossed the link, measured from the first to the last byte.
async fn measured_rate(upload: bool, total: usize, link: Link) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        if upload {
            let mut buf = vec![0u8; 64 << 10];
            let mut got = 0;
            while got < total {
                got += s.read(&mut buf).await.expect("read");
            }
            got
        } else {
            s.write_all(&vec![7u8; total]).await.expect("write");
            total
        }
    });
    let proxy = WanProxy::start(&addr, link).await.expect("proxy");
    let mut client = tokio::net::TcpStream::connect(proxy.addr())
        .await
        .expect("connect");
    let start = Instant::now();
    if upload {
        client.write_all(&vec![7u8; total]).await.expect("write");
        assert_eq!(server.await.expect("server"), total);
    } else {
        let mut buf = vec![0u8; 64 << 10];
        let mut got = 0;
        while got < total {
            got += client.read(&mut buf).await.expect("read");
        }
        server.await.expect("server");
    }
    // The last byte also paid the one-way delay once: take it off.
    let delay = if upload {
        link.delay_up
    } else {
        link.delay_down
    };
    total as f64 / (start.elapsed() - delay).as_secs_f64()
}

#[tokio::test]
async fn the_link_is_shaped_to_its_rate_each_way_within_15_percent() {
    // 32 Mbit/s = 4 MB/s; 3 MB takes 0.75 s.
    let link = Link::rtt(Duration::from_millis(20)).mbit(32);
    let rate = link.rate.expect("shaped") as f64;
    for upload in [true, false] {
        let got = measured_rate(upload, 3_000_000, link).await;
        assert!(
            (got / rate - 1.0).abs() <= 0.15,
            "{} at {got:.0} B/s on a {rate:.0} B/s link",
            if upload { "upload" } else { "download" }
        );
    }
}

/// A known sequence of object_store calls through the proxy to moto: every request is
/// counted once, by kind.
#[tokio::test]
async fn request_counts_are_exact_for_a_known_sequence_of_s3_calls() {
    let moto = e2e::servers::moto();
    let bucket = moto.fresh_bucket().await;
    let proxy = WanProxy::start(&moto.endpoint, Link::rtt(Duration::from_millis(10)))
        .await
        .expect("proxy");
    let spec = through(&moto, &proxy).plan_store(&bucket, "data");
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn ObjectStore> = open_store("moto", &spec, dir.path(), Access::Write)
        .expect("open")
        .store;

    for key in ["a", "b"] {
        store
            .put(&Path::from(key), PutPayload::from(vec![1u8; 1000]))
            .await
            .expect("put");
    }
    let upload = store
        .put_multipart(&Path::from("big"))
        .await
        .expect("create");
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 << 20);
    writer.put(Bytes::from(vec![2u8; (5 << 20) + 1000]));
    writer.finish().await.expect("complete");
    let listed: Vec<_> = store.list(None).try_collect().await.expect("list");
    assert_eq!(listed.len(), 3);
    store.head(&Path::from("a")).await.expect("head");
    let got = store.get(&Path::from("b")).await.expect("get");
    assert_eq!(got.bytes().await.expect("body").len(), 1000);
    store.delete(&Path::from("a")).await.expect("delete");

    let counts = proxy.counts();
    let expected = [
        (RequestKind::Put, 2),
        (RequestKind::CreateMultipart, 1),
        (RequestKind::UploadPart, 2),
        (RequestKind::CompleteMultipart, 1),
        (RequestKind::List, 1),
        (RequestKind::Head, 1),
        (RequestKind::Get, 1),
        // object_store 0.14 deletes one object with a one-key `POST ?delete`.
        (RequestKind::DeleteMany, 1),
    ];
    assert_eq!(
        counts.requests,
        expected.into_iter().collect(),
        "requests seen: {:#?}",
        counts.lines
    );
    let body = 2 * 1000 + (5 << 20) + 1000;
    assert!(
        counts.bytes_up > body && counts.bytes_up < body + 20_000,
        "{} bytes up for {body} bytes of bodies",
        counts.bytes_up
    );
    assert!(counts.bytes_down > 1000 && counts.bytes_down < 50_000);
}
