//! The `webhook` hook: POST the evidence to the approver's service (TLS verified;
//! plain http only when the plan allows it). A `200` carries the approval; a `202`
//! means "ask again later" at its `Location` (or `{"poll": "<url>"}`), polled until the
//! approval arrives or the timeout. Server errors and connection failures are retried
//! with bounded exponential backoff. The evidence body is never logged above `trace`.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{RequestBuilder, StatusCode, Url};

use super::{ApprovalHook, ApprovalRequest, HookError, tail};
use crate::signoff::dsse::{Envelope, MAX_ENVELOPE_BYTES};

/// Default pause between polls after a `202`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Default retries of a failing request.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Default first retry delay (doubled on each retry, up to [`MAX_BACKOFF`]).
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// Longest pause between retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// POSTs the evidence to an approver's HTTP service.
#[derive(Debug, Clone)]
pub struct WebhookHook {
    /// The approver's endpoint.
    pub url: Url,
    /// Allow `http://` (loopback auditors, tests).
    pub allow_http: bool,
    /// Overall wait, polls included.
    pub timeout: Duration,
    /// Pause between polls after a `202`.
    pub poll_interval: Duration,
    /// Retries of a request that failed to connect or got a 5xx.
    pub max_retries: u32,
    /// First retry delay.
    pub backoff: Duration,
}

/// A fully read HTTP reply.
struct Reply {
    status: StatusCode,
    location: Option<String>,
    body: Vec<u8>,
}

/// A 5xx reply, kept as the cause of [`HookError::Unreachable`].
#[derive(Debug, thiserror::Error)]
#[error("server answered HTTP {status}: {body_tail}")]
struct ServerError {
    status: StatusCode,
    body_tail: String,
}

/// Why one attempt failed.
enum AttemptError {
    /// Worth retrying.
    Transient(Box<dyn std::error::Error + Send + Sync>),
    /// Not worth retrying.
    Fatal(HookError),
}

impl WebhookHook {
    /// A hook with default polling and retry settings.
    pub fn new(url: Url, allow_http: bool, timeout: Duration) -> Self {
        Self {
            url,
            allow_http,
            timeout,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff: DEFAULT_BACKOFF,
        }
    }

    /// Parse and check a plan's webhook URL.
    pub fn parse_url(url: &str, allow_http: bool, approver: &str) -> Result<Url, HookError> {
        let parsed = Url::parse(url).map_err(|e| HookError::InvalidConfig {
            approver: approver.to_owned(),
            reason: format!("webhook `{url}` is not a URL: {e}"),
        })?;
        check_scheme(&parsed, allow_http, approver)?;
        Ok(parsed)
    }

    fn client(&self, approver: &str) -> Result<reqwest::Client, HookError> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.timeout.min(MAX_BACKOFF))
            .https_only(!self.allow_http)
            .build()
            .map_err(|e| HookError::InvalidConfig {
                approver: approver.to_owned(),
                reason: format!("cannot build an HTTP client: {e}"),
            })
    }

    fn backoff_for(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(16);
        self.backoff.saturating_mul(factor).min(MAX_BACKOFF)
    }

    /// POST, then follow `202`s until the approval arrives.
    async fn exchange(
        &self,
        client: &reqwest::Client,
        req: &ApprovalRequest,
    ) -> Result<Envelope, HookError> {
        let approver = req.approver.as_str();
        let post = || {
            client
                .post(self.url.clone())
                .header(CONTENT_TYPE, "application/json")
                .header("X-Relocate-Stage", &req.stage)
                .header("X-Relocate-Approver", &req.approver)
                .body(req.evidence_json.clone())
        };
        let mut reply = self.send_with_retry(post, &self.url, approver).await?;
        let mut poll_at: Option<Url> = None;
        loop {
            match reply.status {
                StatusCode::OK => return parse_envelope(&reply.body, approver),
                StatusCode::ACCEPTED => {
                    let next = poll_url(&reply, &self.url)
                        .or(poll_at.take())
                        .ok_or_else(|| {
                            bad(
                                approver,
                                "202 Accepted without a Location header or {\"poll\": url} body"
                                    .to_owned(),
                            )
                        })?;
                    check_scheme(&next, self.allow_http, approver)?;
                    tracing::debug!(approver, poll = %next, "approval pending; polling");
                    tokio::time::sleep(self.poll_interval).await;
                    reply = self
                        .send_with_retry(|| client.get(next.clone()), &next, approver)
                        .await?;
                    poll_at = Some(next);
                }
                status => {
                    return Err(bad(
                        approver,
                        format!("HTTP {status}: {}", tail(&reply.body, 512)),
                    ));
                }
            }
        }
    }

    async fn send_with_retry(
        &self,
        build: impl Fn() -> RequestBuilder,
        url: &Url,
        approver: &str,
    ) -> Result<Reply, HookError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let cause = match attempt(build(), approver).await {
                Ok(reply) => return Ok(reply),
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Transient(cause)) => cause,
            };
            if attempts > self.max_retries {
                return Err(HookError::Unreachable {
                    approver: approver.to_owned(),
                    url: url.to_string(),
                    attempts,
                    source: cause,
                });
            }
            let pause = self.backoff_for(attempts);
            tracing::warn!(approver, %url, attempt = attempts, error = %cause, retry_in = ?pause, "webhook request failed; retrying");
            tokio::time::sleep(pause).await;
        }
    }
}

/// Send once and read the whole (size-limited) reply; 5xx and network errors are
/// transient.
async fn attempt(request: RequestBuilder, approver: &str) -> Result<Reply, AttemptError> {
    let transient = |e: reqwest::Error| {
        if e.is_builder() {
            AttemptError::Fatal(bad(approver, format!("cannot build the request: {e}")))
        } else {
            AttemptError::Transient(Box::new(e))
        }
    };
    let mut response = request.send().await.map_err(transient)?;
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transient)? {
        if body.len() + chunk.len() > MAX_ENVELOPE_BYTES {
            return Err(AttemptError::Fatal(bad(
                approver,
                format!("reply is over the {MAX_ENVELOPE_BYTES}-byte limit"),
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_server_error() {
        return Err(AttemptError::Transient(Box::new(ServerError {
            status,
            body_tail: tail(&body, 512),
        })));
    }
    Ok(Reply {
        status,
        location,
        body,
    })
}

/// Where to poll after a `202`: `Location`, else `{"poll": "<url>"}`, resolved against
/// the request URL.
fn poll_url(reply: &Reply, base: &Url) -> Option<Url> {
    #[derive(serde::Deserialize)]
    struct Poll {
        poll: String,
    }
    let target = reply.location.clone().or_else(|| {
        serde_json::from_slice::<Poll>(&reply.body)
            .ok()
            .map(|p| p.poll)
    })?;
    base.join(&target).ok()
}

pub(super) fn check_scheme(url: &Url, allow_http: bool, approver: &str) -> Result<(), HookError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http => Ok(()),
        _ => Err(HookError::InsecureUrl {
            approver: approver.to_owned(),
            url: url.to_string(),
        }),
    }
}

fn parse_envelope(body: &[u8], approver: &str) -> Result<Envelope, HookError> {
    Envelope::from_json(body)
        .map_err(|e| bad(approver, format!("reply is not an approval envelope: {e}")))
}

fn bad(approver: &str, detail: String) -> HookError {
    HookError::BadResponse {
        approver: approver.to_owned(),
        detail,
    }
}

#[async_trait]
impl ApprovalHook for WebhookHook {
    async fn request(&self, req: &ApprovalRequest) -> Result<Envelope, HookError> {
        check_scheme(&self.url, self.allow_http, &req.approver)?;
        let client = self.client(&req.approver)?;
        tracing::info!(approver = %req.approver, stage = %req.stage, url = %self.url, "asking approver by webhook");
        tracing::trace!(evidence = %String::from_utf8_lossy(&req.evidence_json), "webhook body");
        tokio::time::timeout(self.timeout, self.exchange(&client, req))
            .await
            .unwrap_or_else(|_| {
                Err(HookError::Timeout {
                    approver: req.approver.clone(),
                    after: self.timeout,
                })
            })
    }

    fn describe(&self) -> String {
        format!("webhook {}", self.url)
    }
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
