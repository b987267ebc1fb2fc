//! The sign-off gate: ask each approver through its hook, check every answer against
//! the pinned key, the plan, the stage and this attempt's evidence, and pass only when
//! the threshold of valid approvals is met.
//!
//! Answers are checked as they arrive. A valid rejection stops the stage at once. A
//! refused answer (wrong key, other stage, other evidence, a failing hook) does not
//! count and is reported with its reason. Valid approvals are appended to the record,
//! so a gate interrupted halfway keeps the approvals it already has.

use std::collections::BTreeSet;
use std::path::PathBuf;

use connectors::signoff::approval::{Expected, check_approval};
use connectors::signoff::hook::{ApprovalHook, CommandHook, DEFAULT_TIMEOUT};
use connectors::signoff::hook::{ApprovalRequest, hook_for};
use connectors::signoff::keys::PublicKey;
use connectors::signoff::statement::Decision;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use plans::{Signoff, Stage};

use super::evidence::StageEvidence;
use super::{Context, EngineError, Refusal};
use crate::progress::Event;
use crate::state::{StageStatus, blocking};

/// One approver's answer, checked.
enum Answer {
    Approved,
    Rejected(Option<String>),
    Refused(Refusal),
}

/// Run the gate of a stage; `Ok` when it passed.
pub(crate) async fn run_gate(
    ctx: &Context,
    index: usize,
    stage: &Stage,
    signoff: &Signoff,
    evidence: &StageEvidence,
) -> Result<(), EngineError> {
    let threshold = signoff.threshold();
    // The gate counts distinct keys, not names: two approvers pinning one key are one
    // signer (validation refuses such a plan; this holds even if one gets through).
    let mut approved_keys: BTreeSet<[u8; 32]> = ctx
        .db
        .record()?
        .into_iter()
        .filter(|r| {
            r.kind == "approval"
                && r.stage == stage.name
                && r.digest == evidence.digest
                && r.decision.as_deref() == Some("approve")
        })
        .filter_map(|r| r.approver)
        .filter_map(|a| pinned_key(ctx, &a))
        .collect();
    let awaiting: Vec<&String> = signoff
        .approvers()
        .iter()
        .filter(|a| pinned_key(ctx, a).is_none_or(|k| !approved_keys.contains(&k)))
        .collect();
    if approved_keys.len() >= threshold {
        return Ok(());
    }
    let awaiting_names: Vec<String> = awaiting.iter().map(|s| (*s).clone()).collect();
    let attests = connectors::signoff::check_evidence(&evidence.envelope, None)
        .map(|(_, predicate)| super::guide::attests(&predicate))
        .unwrap_or_default();
    ctx.emit(Event::GateWaiting {
        stage: stage.name.clone(),
        asks: super::guide::asks(
            &ctx.plan,
            &ctx.state,
            &stage.name,
            &awaiting_names,
            &evidence.path,
        ),
        awaiting: awaiting_names,
        threshold,
        evidence: evidence.path.display().to_string(),
        attests,
    });

    let mut asks: FuturesUnordered<_> = awaiting
        .iter()
        .map(|approver| ask(ctx, stage, approver, evidence))
        .collect();
    let mut refusals = Vec::new();
    let mut remaining = awaiting.len();
    while approved_keys.len() < threshold && approved_keys.len() + remaining >= threshold {
        let next = tokio::select! {
            n = asks.next() => n,
            () = ctx.cancel.cancelled() => {
                ctx.emit(Event::StageFinished { stage: stage.name.clone(), outcome: "interrupted".into() });
                return Err(EngineError::Interrupted);
            }
        };
        let Some((approver, answer)) = next else {
            break;
        };
        remaining -= 1;
        match answer {
            Answer::Approved => {
                if let Some(key) = pinned_key(ctx, &approver)
                    && !approved_keys.insert(key)
                {
                    refusals.push(format!("{approver}: {}", Refusal::SameKey));
                }
            }
            Answer::Rejected(reason) => {
                let detail = format!(
                    "rejected by {approver}{}",
                    reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
                ctx.db
                    .finish_stage(index, StageStatus::Rejected, Some(&detail))?;
                ctx.emit(Event::StageFinished {
                    stage: stage.name.clone(),
                    outcome: "rejected".into(),
                });
                return Err(EngineError::Rejected {
                    stage: stage.name.clone(),
                    approver,
                    reason,
                });
            }
            Answer::Refused(reason) => refusals.push(format!("{approver}: {reason}")),
        }
    }
    let approved = approved_keys.len();
    if approved >= threshold {
        return Ok(());
    }
    let detail = refusals.join("; ");
    ctx.db
        .finish_stage(index, StageStatus::Failed, Some(&detail))?;
    ctx.emit(Event::StageFinished {
        stage: stage.name.clone(),
        outcome: "sign-off refused".into(),
    });
    Err(EngineError::SignoffRefused {
        stage: stage.name.clone(),
        approved,
        threshold,
        detail,
    })
}

/// The raw bytes of the key the plan pins for `approver` (`None` if unreadable, in
/// which case [`ask_inner`] refuses the approver's answers).
fn pinned_key(ctx: &Context, approver: &str) -> Option<[u8; 32]> {
    ctx.plan.approver_key(approver).map(|k| k.to_bytes())
}

/// The approver's hook; command hooks get `RELOCATE_BIN` so a hook script can call
/// `"$RELOCATE_BIN" approve …` whichever way relocate was installed.
fn build_hook(ctx: &Context, approver: &str) -> Result<Box<dyn ApprovalHook>, Refusal> {
    let spec = ctx.plan.hook(approver).ok_or(Refusal::NotInPlan)?;
    let base = std::path::absolute(ctx.plan.base_dir())
        .unwrap_or_else(|_| ctx.plan.base_dir().to_path_buf());
    if let plans::HookKind::Command { argv } = &spec.kind {
        let env = vec![
            (
                "RELOCATE_BIN".to_owned(),
                ctx.options.relocate_bin.display().to_string(),
            ),
            ("RELOCATE_PLAN".to_owned(), ctx.plan.name().to_owned()),
        ];
        let timeout = spec.timeout.unwrap_or(DEFAULT_TIMEOUT);
        return CommandHook::from_argv(argv, base, env, timeout)
            .map(|h| Box::new(h) as Box<dyn ApprovalHook>)
            .ok_or(Refusal::NoProgram);
    }
    Ok(hook_for(spec, approver, &base, &ctx.state.approvals_dir())?)
}

/// Where a file hook expects `approver`'s answer for `stage`; `None` for other hooks.
fn file_drop_path(ctx: &Context, stage: &Stage, approver: &str) -> Option<PathBuf> {
    super::guide::drop_path(&ctx.plan, &ctx.state, &stage.name, approver)
}

/// A file left in the drop zone by an earlier attempt would be refused and fail the
/// gate; move it aside (kept for the record) so the hook waits for a fresh one.
fn set_aside_stale_file(
    ctx: &Context,
    stage: &Stage,
    approver: &str,
    pinned: &PublicKey,
    evidence: &StageEvidence,
) {
    let Some(path) = file_drop_path(ctx, stage, approver) else {
        return;
    };
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    let expected = Expected {
        plan_digest: ctx.plan.digest().to_string(),
        stage: stage.name.clone(),
        evidence_digest: evidence.digest.clone(),
    };
    let stale = match connectors::signoff::dsse::Envelope::from_json(&bytes) {
        Ok(env) => check_approval(&env, &expected, approver, pinned).is_err(),
        Err(_) => true,
    };
    if stale {
        let aside = path.with_extension(format!(
            "stale-{}.json",
            chrono::Utc::now().format("%Y%m%dT%H%M%S")
        ));
        match std::fs::rename(&path, &aside) {
            Ok(()) => tracing::info!(
                "set aside {} (not for this evidence) as {}",
                path.display(),
                aside.display()
            ),
            Err(e) => tracing::warn!("cannot set aside stale approval {}: {e}", path.display()),
        }
    }
}

/// Ask one approver and check the answer.
async fn ask(
    ctx: &Context,
    stage: &Stage,
    approver: &str,
    evidence: &StageEvidence,
) -> (String, Answer) {
    let answer = ask_inner(ctx, stage, approver, evidence).await;
    match &answer {
        Answer::Approved => ctx.emit(Event::ApprovalReceived {
            stage: stage.name.clone(),
            approver: approver.to_owned(),
            decision: "approve".into(),
            reason: None,
        }),
        Answer::Rejected(reason) => ctx.emit(Event::ApprovalReceived {
            stage: stage.name.clone(),
            approver: approver.to_owned(),
            decision: "reject".into(),
            reason: reason.clone(),
        }),
        Answer::Refused(reason) => ctx.emit(Event::ApprovalRefused {
            stage: stage.name.clone(),
            approver: approver.to_owned(),
            reason: reason.to_string(),
        }),
    }
    (approver.to_owned(), answer)
}

async fn ask_inner(
    ctx: &Context,
    stage: &Stage,
    approver: &str,
    evidence: &StageEvidence,
) -> Answer {
    let Some(pinned) = ctx.plan.approver_key(approver).map(|k| PublicKey::from(*k)) else {
        return Answer::Refused(Refusal::NotInPlan);
    };
    let hook = match build_hook(ctx, approver) {
        Ok(h) => h,
        Err(e) => return Answer::Refused(e),
    };
    let request = ApprovalRequest {
        plan_name: ctx.plan.name().to_owned(),
        stage: stage.name.clone(),
        approver: approver.to_owned(),
        evidence: evidence.envelope.clone(),
        evidence_json: evidence.json.clone(),
        evidence_path: evidence.path.clone(),
    };
    if matches!(
        ctx.plan.hook(approver).map(|h| &h.kind),
        Some(plans::HookKind::File { .. })
    ) {
        blocking(|| set_aside_stale_file(ctx, stage, approver, &pinned, evidence));
    }
    let expected = Expected {
        plan_digest: ctx.plan.digest().to_string(),
        stage: stage.name.clone(),
        evidence_digest: evidence.digest.clone(),
    };
    let drop_path = file_drop_path(ctx, stage, approver);
    let (envelope, checked) = loop {
        let envelope = match hook.request(&request).await {
            Ok(env) => env,
            Err(e) => return Answer::Refused(e.into()),
        };
        let refused = match check_approval(&envelope, &expected, approver, &pinned) {
            Ok(c) => break (envelope, c),
            Err(refused) => refused,
        };
        // A file anyone could drop must not end the gate: set it aside and wait on.
        let Some(path) = &drop_path else {
            return Answer::Refused(refused.into());
        };
        match blocking(|| connectors::signoff::hook::file::set_aside(path)) {
            Ok(aside) => ctx.emit(Event::ApprovalRefused {
                stage: stage.name.clone(),
                approver: approver.to_owned(),
                reason: format!(
                    "{refused}; the file was set aside as {} and the gate still waits",
                    aside.display()
                ),
            }),
            Err(e) => {
                tracing::warn!("cannot set aside {}: {e}", path.display());
                return Answer::Refused(refused.into());
            }
        }
    };
    let decision = match checked.decision {
        Decision::Approve => "approve",
        Decision::Reject => "reject",
    };
    let json = String::from_utf8_lossy(&envelope.to_json_pretty()).into_owned();
    if let Err(e) = ctx.db.append_record(
        "approval",
        &stage.name,
        evidence.attempt,
        Some(approver),
        Some(decision),
        checked.reason.as_deref(),
        &evidence.digest,
        &json,
    ) {
        return Answer::Refused(Refusal::Record(e));
    }
    match checked.decision {
        Decision::Approve => Answer::Approved,
        Decision::Reject => Answer::Rejected(checked.reason),
    }
}
