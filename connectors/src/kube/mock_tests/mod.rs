//! The cluster-facing functions against a scripted API server.
//!
//! As in kube-rs's own `mock_tests.rs`, a `tower_test::mock::pair` stands in for the HTTP
//! connection; a verifier task takes each request, checks method, path, query, content
//! type and body against the script, and answers with a realistic API payload. A request
//! the script does not expect fails the test; so does a script step that never comes.

mod apply;
mod export;
mod scale;
mod wait;

use std::collections::BTreeSet;
use std::time::Duration;

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::Value;

pub(super) type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A client wired to a scripted server.
pub(super) fn mock() -> (Client, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

type BodyCheck = Box<dyn Fn(&Value) + Send + Sync>;

/// One expected request and its answer.
pub(super) struct Exchange {
    method: Method,
    path: String,
    query: BTreeSet<(String, String)>,
    content_type: Option<&'static str>,
    body: Option<BodyCheck>,
    status: u16,
    reply: Value,
}

impl Exchange {
    pub(super) fn new(method: Method, uri: &str) -> Self {
        let (path, query) = split_uri(uri);
        Exchange {
            method,
            path,
            query,
            content_type: None,
            body: None,
            status: 200,
            reply: Value::Null,
        }
    }
    pub(super) fn get(uri: &str) -> Self {
        Self::new(Method::GET, uri)
    }
    pub(super) fn patch(uri: &str) -> Self {
        Self::new(Method::PATCH, uri)
    }
    /// The request must carry this content type.
    pub(super) fn content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = Some(content_type);
        self
    }
    /// The request body must equal `expected`.
    pub(super) fn body_eq(mut self, expected: Value) -> Self {
        self.body = Some(Box::new(move |actual| assert_eq!(actual, &expected)));
        self
    }
    /// Answer 200 with `reply`.
    pub(super) fn ok(mut self, reply: Value) -> Self {
        self.reply = reply;
        self
    }
    /// Answer `status` with `reply` (a `Status` body for failures).
    pub(super) fn fail(mut self, status: u16, reply: Value) -> Self {
        self.status = status;
        self.reply = reply;
        self
    }
}

fn split_uri(uri: &str) -> (String, BTreeSet<(String, String)>) {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect();
    (path.to_owned(), pairs)
}

fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Play `script` in order on a spawned task; await the handle with [`finished`].
pub(super) fn serve(mut handle: Handle, script: Vec<Exchange>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for (step, expected) in script.into_iter().enumerate() {
            let (request, send) = handle.next_request().await.unwrap_or_else(|| {
                panic!(
                    "step {step}: client stopped before {} {}",
                    expected.method, expected.path
                )
            });
            let (parts, body) = request.into_parts();
            let where_ = format!("step {step} ({} {})", parts.method, parts.uri);
            assert_eq!(parts.method, expected.method, "{where_}");
            let (path, query) = split_uri(&parts.uri.to_string());
            assert_eq!(path, expected.path, "{where_}");
            assert_eq!(query, expected.query, "{where_}");
            if let Some(content_type) = expected.content_type {
                let actual = parts.headers.get(http::header::CONTENT_TYPE);
                assert_eq!(
                    actual.and_then(|v| v.to_str().ok()),
                    Some(content_type),
                    "{where_}"
                );
            }
            if let Some(check) = &expected.body {
                let bytes = body.collect_bytes().await.expect("request body");
                let actual: Value = serde_json::from_slice(&bytes).expect("JSON request body");
                check(&actual);
            }
            send.send_response(respond(expected.status, &expected.reply));
        }
    })
}

pub(super) fn respond(status: u16, reply: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(reply).expect("JSON reply")))
        .expect("valid response")
}

/// Wait for the script to have been played to the end, surfacing its assertion failures.
pub(super) async fn finished(server: tokio::task::JoinHandle<()>) {
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("verifier task failed: {e}"),
        Err(_) => panic!("script not played to the end within 5s"),
    }
}
