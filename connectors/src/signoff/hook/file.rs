//! The `file` hook: wait for the approver (or an operator carrying their signature) to
//! drop `<dir>/<stage>/<approver>.json` into a directory. The engine writes the
//! evidence itself; this hook only waits, polling the filesystem, and tolerates a file
//! that is still being written by re-reading it until it parses or stops changing.
//!
//! Anyone who can write to the drop zone can drop anything there, so nothing found in
//! it ends the wait: a file that is too large or stays unparseable is logged and
//! renamed aside ([`set_aside`], `<approver>.json.<time>.rejected`, kept for the
//! record), and the hook goes on waiting for a real approval. The gate does the same
//! with a well-formed envelope signed by the wrong key or for other evidence.
//!
//! For the same reason the timeout runs from the first time the hook is asked for an
//! approval, not from each ask: the gate asks again after setting a wrong-key approval
//! aside, and a writer to the drop zone must not hold the gate open forever by dropping
//! one every so often.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncReadExt;

use super::{ApprovalHook, ApprovalRequest, HookError};
use crate::signoff::dsse::{Envelope, MAX_ENVELOPE_BYTES};

/// How often the directory is checked when the plan says nothing.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Unparseable reads of an unchanging file before it is declared bad.
const PARSE_ATTEMPTS: u32 = 4;

/// Waits for an approval file.
#[derive(Debug, Clone)]
pub struct FileHook {
    /// Directory holding `<stage>/<approver>.json`.
    pub dir: PathBuf,
    /// How long to wait; `None` waits until the run is interrupted.
    pub timeout: Option<Duration>,
    /// How often to look.
    pub poll_interval: Duration,
    /// When each approval path was first waited for: the timeout runs from there.
    first_asked: Arc<Mutex<HashMap<PathBuf, tokio::time::Instant>>>,
}

impl FileHook {
    /// A hook waiting in `dir`, giving up `timeout` after it is first asked (`None`:
    /// never), looking every `poll_interval`.
    pub fn new(dir: PathBuf, timeout: Option<Duration>, poll_interval: Duration) -> Self {
        Self {
            dir,
            timeout,
            poll_interval,
            first_asked: Arc::default(),
        }
    }

    /// When the wait for `path` ends: `timeout` after the first ask for it.
    fn deadline(&self, path: &Path, timeout: Duration) -> tokio::time::Instant {
        let mut first = self.first_asked.lock().unwrap_or_else(|p| p.into_inner());
        *first
            .entry(path.to_path_buf())
            .or_insert_with(tokio::time::Instant::now)
            + timeout
    }

    /// Where the approval for `stage` from `approver` is expected.
    pub fn approval_path(&self, stage: &str, approver: &str) -> PathBuf {
        self.dir.join(stage).join(format!("{approver}.json"))
    }

    async fn wait_for(&self, path: &Path, approver: &str) -> Result<Envelope, HookError> {
        let mut failed_parses = 0;
        let mut last_seen: Option<Vec<u8>> = None;
        loop {
            match read_bounded(path).await {
                Ok(None) => {
                    let why = format!("over the {MAX_ENVELOPE_BYTES}-byte limit of an approval");
                    refuse_file(path, approver, &why);
                    last_seen = None;
                }
                Ok(Some(bytes)) => match Envelope::from_json(&bytes) {
                    Ok(envelope) => return Ok(envelope),
                    Err(e) => {
                        // Still being written? Only an unchanging unparseable file counts.
                        if last_seen.as_ref() == Some(&bytes) {
                            failed_parses += 1;
                        } else {
                            failed_parses = 1;
                        }
                        if failed_parses >= PARSE_ATTEMPTS {
                            refuse_file(path, approver, &format!("not an approval envelope: {e}"));
                            failed_parses = 0;
                            last_seen = None;
                        } else {
                            last_seen = Some(bytes);
                        }
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(HookError::Io {
                        approver: approver.to_owned(),
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }
}

/// Log why a dropped file does not count and move it out of the way.
fn refuse_file(path: &Path, approver: &str, why: &str) {
    match set_aside(path) {
        Ok(aside) => tracing::warn!(
            %approver,
            "{} is {why}; set aside as {} and still waiting",
            path.display(),
            aside.display()
        ),
        Err(e) => tracing::warn!(
            %approver,
            "{} is {why}, and cannot be set aside ({e}); still waiting",
            path.display()
        ),
    }
}

/// Rename a file that does not count to `<name>.<UTC time>.rejected` beside it, so the
/// drop zone is free for the real approval and the file stays for whoever investigates.
pub fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let aside = path.with_file_name(format!("{name}.{stamp}.rejected"));
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

/// The file's bytes, reading at most one byte past [`MAX_ENVELOPE_BYTES`]: `None` when
/// it is larger (a huge file dropped in the zone is refused without being loaded).
async fn read_bounded(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let file = tokio::fs::File::open(path).await?;
    let mut bytes = Vec::new();
    file.take(MAX_ENVELOPE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await?;
    Ok((bytes.len() <= MAX_ENVELOPE_BYTES).then_some(bytes))
}

/// Stage and approver names become path components; refuse anything that could leave
/// the approvals directory.
fn safe_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

#[async_trait]
impl ApprovalHook for FileHook {
    async fn request(&self, req: &ApprovalRequest) -> Result<Envelope, HookError> {
        if !safe_component(&req.stage) || !safe_component(&req.approver) {
            return Err(HookError::InvalidConfig {
                approver: req.approver.clone(),
                reason: format!(
                    "stage `{}` or approver name is not a plain file name",
                    req.stage
                ),
            });
        }
        let path = self.approval_path(&req.stage, &req.approver);
        tracing::info!(
            approver = %req.approver,
            stage = %req.stage,
            path = %path.display(),
            evidence = %req.evidence_path.display(),
            "waiting for the approval file"
        );
        let wait = self.wait_for(&path, &req.approver);
        match self.timeout {
            None => wait.await,
            Some(after) => {
                let deadline = self.deadline(&path, after);
                tokio::time::timeout_at(deadline, wait)
                    .await
                    .unwrap_or_else(|_| {
                        Err(HookError::Timeout {
                            approver: req.approver.clone(),
                            after,
                        })
                    })
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "file drop in {}/<stage>/<approver>.json",
            self.dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signoff::hook::tests::{auditor, request};
    use crate::signoff::{Decision, approve};

    fn hook(dir: &Path, timeout: Option<Duration>) -> FileHook {
        FileHook::new(dir.to_path_buf(), timeout, Duration::from_millis(20))
    }

    /// The gate's loop: an answer that does not count (here every answer: it is signed
    /// by someone the gate does not accept) is set aside and the hook asked again.
    async fn gate_refusing_every_answer(hook: &FileHook, req: &ApprovalRequest) -> HookError {
        loop {
            match hook.request(req).await {
                Ok(_) => {
                    let _ = set_aside(&hook.approval_path("copy", "auditor"));
                }
                Err(e) => return e,
            }
        }
    }

    #[tokio::test]
    async fn files_dropped_every_200ms_do_not_hold_the_gate_open_past_its_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let req = request("copy");
        // A well-formed approval the gate refuses (wrong signer), and garbage, in turn.
        let forged = approve(
            &crate::signoff::SecretKey::from_seed(&[9; 32]),
            &req.evidence,
            Decision::Approve,
            None,
        )
        .expect("sign");
        let hook = hook(dir.path(), Some(Duration::from_secs(1)));
        let path = hook.approval_path("copy", "auditor");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let bytes = forged.to_json_pretty();
        let dropper = tokio::spawn(async move {
            for i in 0.. {
                let body: &[u8] = if i % 2 == 0 { &bytes } else { b"{ not json" };
                let _ = tokio::fs::write(&path, body).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let started = std::time::Instant::now();
        let gate = tokio::time::timeout(
            Duration::from_secs(5),
            gate_refusing_every_answer(&hook, &req),
        )
        .await;
        dropper.abort();
        let err = gate.expect("the gate timed out instead of waiting on");
        let took = started.elapsed();
        assert!(matches!(err, HookError::Timeout { .. }), "{err:?}");
        assert!(
            err.to_string().contains("1s"),
            "the usual message names the timeout: {err}"
        );
        assert!(
            (Duration::from_millis(950)..Duration::from_millis(1600)).contains(&took),
            "timed out after {took:?}, not ~1s"
        );
    }

    #[tokio::test]
    async fn returns_the_file_dropped_later() {
        let dir = tempfile::tempdir().expect("tempdir");
        let req = request("copy");
        let approval = approve(&auditor(), &req.evidence, Decision::Approve, None).expect("sign");
        let hook = hook(dir.path(), Some(Duration::from_secs(5)));
        let path = hook.approval_path("copy", "auditor");
        assert_eq!(path, dir.path().join("copy").join("auditor.json"));
        let bytes = approval.to_json_pretty();
        let dropper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tokio::fs::create_dir_all(path.parent().expect("parent"))
                .await
                .expect("mkdir");
            // Written in two halves, as a slow copy would.
            let (a, b) = bytes.split_at(bytes.len() / 2);
            tokio::fs::write(&path, a).await.expect("half");
            tokio::time::sleep(Duration::from_millis(30)).await;
            tokio::fs::write(&path, [a, b].concat())
                .await
                .expect("whole");
        });
        let started = std::time::Instant::now();
        let got = hook.request(&req).await.expect("approval arrives");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(got, approval);
        dropper.await.expect("dropper");
    }

    #[tokio::test]
    async fn times_out_when_nothing_arrives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let req = request("copy");
        let err = hook(dir.path(), Some(Duration::from_millis(100)))
            .request(&req)
            .await
            .expect_err("nothing dropped");
        assert!(matches!(err, HookError::Timeout { .. }), "{err:?}");
    }

    /// The `*.rejected` files beside the approval path.
    fn rejected(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join("copy"))
            .expect("read dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rejected"))
            .collect();
        found.sort();
        found
    }

    #[tokio::test]
    async fn garbage_in_the_drop_zone_is_set_aside_and_the_wait_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let req = request("copy");
        std::fs::create_dir_all(dir.path().join("copy")).expect("mkdir");
        std::fs::write(dir.path().join("copy/auditor.json"), "garbage").expect("write");
        let approval = approve(&auditor(), &req.evidence, Decision::Approve, None).expect("sign");
        let hook = hook(dir.path(), Some(Duration::from_secs(10)));
        let path = hook.approval_path("copy", "auditor");
        let bytes = approval.to_json_pretty();
        let dropper = tokio::spawn(async move {
            // Once the garbage is gone, the real approval arrives.
            while path.exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::fs::write(&path, bytes).await.expect("drop");
        });
        let got = hook.request(&req).await.expect("the real approval counts");
        assert_eq!(got, approval);
        dropper.await.expect("dropper");
        let aside = rejected(dir.path());
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(std::fs::read(&aside[0]).expect("kept"), b"garbage");
    }

    #[tokio::test]
    async fn finding_14_an_oversized_approval_file_is_set_aside_without_loading_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let req = request("copy");
        std::fs::create_dir_all(dir.path().join("copy")).expect("mkdir");
        // Sparse: a huge file that costs no disk, and must cost no memory either.
        let file = std::fs::File::create(dir.path().join("copy/auditor.json")).expect("create");
        file.set_len(64 << 30).expect("sparse 64 GiB");
        let err = hook(dir.path(), Some(Duration::from_millis(300)))
            .request(&req)
            .await
            .expect_err("nothing valid arrives");
        assert!(matches!(err, HookError::Timeout { .. }), "{err:?}");
        assert!(!dir.path().join("copy/auditor.json").exists());
        assert_eq!(rejected(dir.path()).len(), 1);
    }

    #[tokio::test]
    async fn refuses_path_escaping_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut req = request("copy");
        req.approver = "../evil".to_owned();
        let err = hook(dir.path(), None)
            .request(&req)
            .await
            .expect_err("refused");
        assert!(matches!(err, HookError::InvalidConfig { .. }), "{err:?}");
    }
}
