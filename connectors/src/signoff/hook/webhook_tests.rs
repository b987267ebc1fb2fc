//! The webhook hook against a real HTTP server (axum on loopback) acting as an
//! auditor service that signs with its own key.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::*;
use crate::signoff::hook::tests::{PLAN_DIGEST, auditor, request};
use crate::signoff::{
    ApprovalRefused, Decision, Expected, approve, check_approval, evidence_digest,
};

/// The auditor service: signs whatever evidence it is sent, after checking the headers.
#[derive(Default)]
struct Auditor {
    hits: AtomicUsize,
    polls: AtomicUsize,
    pending: std::sync::Mutex<Option<Vec<u8>>>,
}

impl Auditor {
    fn sign(&self, headers: &HeaderMap, body: &[u8], decision: Decision) -> Response {
        self.hits.fetch_add(1, Ordering::SeqCst);
        let evidence = match Envelope::from_json(body) {
            Ok(e) => e,
            Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        };
        let (_, predicate) = crate::signoff::parse_evidence(&evidence).expect("evidence");
        let header_ok = headers
            .get("x-relocate-stage")
            .and_then(|v| v.to_str().ok())
            == Some(&predicate.stage)
            && headers
                .get("x-relocate-approver")
                .and_then(|v| v.to_str().ok())
                == Some("auditor")
            && headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                == Some("application/json");
        if !header_ok {
            return (StatusCode::BAD_REQUEST, "missing relocate headers").into_response();
        }
        let reason =
            (decision == Decision::Reject).then(|| "counts do not match my re-listing".to_owned());
        let approval = approve(&auditor(), &evidence, decision, reason).expect("sign");
        (StatusCode::OK, approval.to_json_pretty()).into_response()
    }
}

type Shared = State<Arc<Auditor>>;

async fn approve_now(State(a): Shared, headers: HeaderMap, body: Bytes) -> Response {
    a.sign(&headers, &body, Decision::Approve)
}

async fn reject_now(State(a): Shared, headers: HeaderMap, body: Bytes) -> Response {
    a.sign(&headers, &body, Decision::Reject)
}

async fn accept_later(State(a): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let poll_by_json = headers
        .get("x-relocate-stage")
        .is_some_and(|s| s == "cutover");
    *a.pending.lock().expect("lock") = Some(body.to_vec());
    if poll_by_json {
        (StatusCode::ACCEPTED, r#"{"poll": "/poll"}"#).into_response()
    } else {
        (StatusCode::ACCEPTED, [(header::LOCATION, "poll")]).into_response()
    }
}

/// Pending on the first poll, signed on the second.
async fn poll(State(a): Shared) -> Response {
    if a.polls.fetch_add(1, Ordering::SeqCst) == 0 {
        return StatusCode::ACCEPTED.into_response();
    }
    let body = a
        .pending
        .lock()
        .expect("lock")
        .clone()
        .expect("evidence posted first");
    let evidence = Envelope::from_json(&body).expect("evidence");
    let approval = approve(&auditor(), &evidence, Decision::Approve, None).expect("sign");
    (StatusCode::OK, approval.to_json_pretty()).into_response()
}

async fn never(State(a): Shared) -> Response {
    a.polls.fetch_add(1, Ordering::SeqCst);
    (StatusCode::ACCEPTED, [(header::LOCATION, "/never")]).into_response()
}

async fn unavailable(State(a): Shared) -> Response {
    a.hits.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "auditor is down for maintenance",
    )
        .into_response()
}

async fn garbage() -> Response {
    (StatusCode::OK, "<html>hello</html>").into_response()
}

async fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "who are you").into_response()
}

async fn start() -> (SocketAddr, Arc<Auditor>) {
    let state = Arc::new(Auditor::default());
    let app = Router::new()
        .route("/approve", post(approve_now))
        .route("/reject", post(reject_now))
        .route("/slow/submit", post(accept_later))
        .route("/slow/poll", get(poll))
        .route("/poll", get(poll))
        .route("/never", post(never).get(never))
        .route("/unavailable", post(unavailable))
        .route("/garbage", post(garbage))
        .route("/forbidden", post(forbidden))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (addr, state)
}

fn hook(addr: SocketAddr, path: &str) -> WebhookHook {
    WebhookHook {
        url: Url::parse(&format!("http://{addr}{path}")).expect("url"),
        allow_http: true,
        timeout: Duration::from_secs(3),
        poll_interval: Duration::from_millis(20),
        max_retries: 2,
        backoff: Duration::from_millis(5),
    }
}

fn expected(req: &ApprovalRequest) -> Expected {
    Expected {
        plan_digest: PLAN_DIGEST.to_owned(),
        stage: req.stage.clone(),
        evidence_digest: evidence_digest(&req.evidence),
    }
}

#[tokio::test]
async fn immediate_approval_checks_out() {
    let (addr, auditor_state) = start().await;
    let req = request("copy");
    let approval = hook(addr, "/approve")
        .request(&req)
        .await
        .expect("approved");
    let checked =
        check_approval(&approval, &expected(&req), "auditor", &auditor().public()).expect("valid");
    assert_eq!(checked.decision, Decision::Approve);
    assert_eq!(auditor_state.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn slow_approver_is_polled_via_location_and_via_json() {
    for stage in ["copy", "cutover"] {
        let (addr, state) = start().await;
        let req = request(stage);
        let approval = hook(addr, "/slow/submit")
            .request(&req)
            .await
            .expect("approved after polling");
        check_approval(&approval, &expected(&req), "auditor", &auditor().public()).expect("valid");
        assert_eq!(state.polls.load(Ordering::SeqCst), 2, "stage {stage}");
    }
}

#[tokio::test]
async fn rejecting_approver_yields_a_checked_reject() {
    let (addr, _) = start().await;
    let req = request("copy");
    let approval = hook(addr, "/reject")
        .request(&req)
        .await
        .expect("a signed reply");
    let checked =
        check_approval(&approval, &expected(&req), "auditor", &auditor().public()).expect("valid");
    assert_eq!(checked.decision, Decision::Reject);
    assert_eq!(
        checked.reason.as_deref(),
        Some("counts do not match my re-listing")
    );
}

#[tokio::test]
async fn approval_from_the_service_is_refused_under_another_pinned_key() {
    let (addr, _) = start().await;
    let req = request("copy");
    let approval = hook(addr, "/approve").request(&req).await.expect("reply");
    let pinned = crate::signoff::SecretKey::from_seed(&[99; 32]).public();
    let err = check_approval(&approval, &expected(&req), "auditor", &pinned).expect_err("refused");
    assert!(matches!(err, ApprovalRefused::WrongKey { .. }), "{err:?}");
}

#[tokio::test]
async fn server_down_is_unreachable_after_bounded_retries() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let err = hook(port, "/approve")
        .request(&request("copy"))
        .await
        .expect_err("down");
    match err {
        HookError::Unreachable { attempts, url, .. } => {
            assert_eq!(attempts, 3);
            assert!(url.ends_with("/approve"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn persistent_5xx_is_retried_then_unreachable() {
    let (addr, state) = start().await;
    let err = hook(addr, "/unavailable")
        .request(&request("copy"))
        .await
        .expect_err("5xx");
    assert!(
        matches!(err, HookError::Unreachable { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(state.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn garbage_and_4xx_are_bad_responses() {
    let (addr, _) = start().await;
    for path in ["/garbage", "/forbidden"] {
        let err = hook(addr, path)
            .request(&request("copy"))
            .await
            .expect_err("bad");
        assert!(
            matches!(err, HookError::BadResponse { .. }),
            "{path}: {err:?}"
        );
    }
}

#[tokio::test]
async fn never_approving_service_times_out() {
    let (addr, state) = start().await;
    let mut hook = hook(addr, "/never");
    hook.timeout = Duration::from_millis(150);
    let err = hook.request(&request("copy")).await.expect_err("timeout");
    assert!(matches!(err, HookError::Timeout { .. }), "{err:?}");
    assert!(state.polls.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn plain_http_refused_unless_allowed() {
    let (addr, _) = start().await;
    let mut hook = hook(addr, "/approve");
    hook.allow_http = false;
    let err = hook.request(&request("copy")).await.expect_err("refused");
    assert!(matches!(err, HookError::InsecureUrl { .. }), "{err:?}");
}
