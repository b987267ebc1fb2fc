//! Approval hooks: how a gate asks one approver for a signed approval. A hook only
//! transports envelopes; it never decides whether an approval is valid, which is
//! [`super::check_approval`]'s job. One module per kind: [`command`], [`webhook`],
//! [`file`]; [`hook_for`] builds the one a plan names.

pub mod command;
pub mod file;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use async_trait::async_trait;

use super::dsse::Envelope;

pub use command::CommandHook;
pub use file::FileHook;
pub use webhook::WebhookHook;

/// Default wait for command and webhook approvers when the plan sets no timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// What a gate hands an approver.
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    /// The plan's name.
    pub plan_name: String,
    /// The stage at the gate.
    pub stage: String,
    /// The approver asked (a name from the plan).
    pub approver: String,
    /// The stage's signed evidence.
    pub evidence: Envelope,
    /// The exact bytes written to the evidence file; what hooks send.
    pub evidence_json: Vec<u8>,
    /// Where the evidence file is.
    pub evidence_path: PathBuf,
}

/// Asks one approver for a signed approval envelope.
#[async_trait]
pub trait ApprovalHook: Send + Sync {
    /// Ask, and wait (up to the hook's timeout) for the approver's envelope.
    async fn request(&self, req: &ApprovalRequest) -> Result<Envelope, HookError>;
    /// One line for logs and the CLI, e.g. `webhook https://audit.example/approve`.
    fn describe(&self) -> String;
}

/// Why a hook brought back no envelope.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    /// The plan's hook settings cannot be used.
    #[error("approver `{approver}`: invalid hook: {reason}")]
    InvalidConfig {
        /// The approver.
        approver: String,
        /// What is wrong.
        reason: String,
    },
    /// A plain-http webhook without `allowHttp: true`.
    #[error(
        "approver `{approver}`: refusing plain-http webhook {url} (use https, or set `allowHttp: true` for a loopback auditor)"
    )]
    InsecureUrl {
        /// The approver.
        approver: String,
        /// The URL refused.
        url: String,
    },
    /// The hook command could not be started.
    #[error("approver `{approver}`: cannot run hook command `{program}`: {source}")]
    Spawn {
        /// The approver.
        approver: String,
        /// argv[0] as resolved.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The hook command exited unsuccessfully.
    #[error("approver `{approver}`: hook command failed ({status}): {stderr_tail}")]
    CommandFailed {
        /// The approver.
        approver: String,
        /// Its exit status.
        status: ExitStatus,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// The approver did not answer in time.
    #[error("approver `{approver}`: no approval within {}", humantime_like(*after))]
    Timeout {
        /// The approver.
        approver: String,
        /// How long we waited.
        after: Duration,
    },
    /// The webhook could not be reached, after retries.
    #[error("approver `{approver}`: webhook {url} unreachable after {attempts} attempts: {source}")]
    Unreachable {
        /// The approver.
        approver: String,
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The approver answered with something that is not an approval envelope.
    #[error("approver `{approver}`: bad response: {detail}")]
    BadResponse {
        /// The approver.
        approver: String,
        /// What was wrong.
        detail: String,
    },
    /// Reading the approval file failed.
    #[error("approver `{approver}`: cannot read {}: {source}", path.display())]
    Io {
        /// The approver.
        approver: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn humantime_like(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// Build the hook a plan names for `approver` from its typed [`plans::HookSpec`].
/// Relative command paths and file directories resolve against `base_dir` (the plan's
/// directory); a file hook without a directory waits in `approvals_dir`.
pub fn hook_for(
    hook: &plans::HookSpec,
    approver: &str,
    base_dir: &Path,
    approvals_dir: &Path,
) -> Result<Box<dyn ApprovalHook>, HookError> {
    match &hook.kind {
        plans::HookKind::Command { argv } => CommandHook::from_argv(
            argv,
            base_dir.to_path_buf(),
            Vec::new(),
            hook.timeout.unwrap_or(DEFAULT_TIMEOUT),
        )
        .map(|h| Box::new(h) as Box<dyn ApprovalHook>)
        .ok_or_else(|| HookError::InvalidConfig {
            approver: approver.to_owned(),
            reason: "`command` needs at least a program".to_owned(),
        }),
        plans::HookKind::Webhook { url, allow_http } => {
            // Validation refuses plain http without `allowHttp`; checked again here because
            // a HookSpec can be built outside a plan.
            webhook::check_scheme(url, *allow_http, approver)?;
            let timeout = hook.timeout.unwrap_or(DEFAULT_TIMEOUT);
            Ok(Box::new(WebhookHook::new(
                url.clone(),
                *allow_http,
                timeout,
            )))
        }
        plans::HookKind::File { dir } => {
            let dir = match dir {
                Some(dir) => base_dir.join(dir),
                None => approvals_dir.to_path_buf(),
            };
            Ok(Box::new(FileHook::new(
                dir,
                hook.timeout,
                file::DEFAULT_POLL_INTERVAL,
            )))
        }
    }
}

/// Keep the last `max` bytes of `bytes` as text, on a character boundary.
pub(crate) fn tail(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    let text = String::from_utf8_lossy(&bytes[start..]);
    text.trim().to_owned()
}

#[cfg(test)]
mod tests;
