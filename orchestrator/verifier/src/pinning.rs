//! `verify --plan`: the record must be of the reviewed plan (same digest) and pin the
//! same approver keys and sign-off rules, so the auditor's trust rests on the plan
//! they reviewed rather than on what the record says about itself. The operator key
//! the plan pins is checked with the header's signature ([`crate::header`]).
//!
//! This crate does not read plans (that is YAML and validation, in `plans`): the
//! caller hands over what the reviewed plan pins as a [`ReviewedPlan`].

use std::collections::BTreeMap;

use crate::record::{RecordHeader, StageRule};
use crate::report::Report;

/// What a reviewed plan pins, as the caller read it from the plan file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewedPlan {
    /// The plan file, for messages.
    pub path: String,
    /// The plan's name.
    pub name: String,
    /// `sha256:<hex>` of the plan.
    pub digest: String,
    /// Approver name → pinned public key (`ed25519:<base64>`).
    pub approvers: BTreeMap<String, String>,
    /// Stages in order with their sign-off rules.
    pub stages: Vec<StageRule>,
    /// The operator key the plan pins (`operator.publicKey`), if any.
    pub operator_key: Option<String>,
}

/// Compare the record's header with the reviewed `plan`; `true` when the record pins
/// exactly the plan's approver keys (so the approvals checked are by the plan's keys).
pub fn check_plan(header: &RecordHeader, plan: &ReviewedPlan, report: &mut Report) -> bool {
    let digest = plan.digest.as_str();
    if header.plan_digest != digest {
        report.fail(format!(
            "the record is of another plan: it records plan `{}` with digest {}, but {} is plan `{}` with digest {digest}",
            header.plan, header.plan_digest, plan.path, plan.name
        ));
    } else {
        report.pass(format!(
            "the record is of plan {} (`{}`, digest {digest})",
            plan.path, plan.name
        ));
    }
    let mut keys_match = true;
    for (name, public_key) in &plan.approvers {
        match header.approvers.get(name) {
            Some(pinned) if pinned.public_key.trim() == public_key.trim() => {}
            Some(pinned) => {
                keys_match = false;
                report.fail(format!(
                    "approver `{name}`: the plan pins {public_key}, the record pins {} (key id {})",
                    pinned.public_key, pinned.key_id
                ));
            }
            None => {
                keys_match = false;
                report.fail(format!(
                    "approver `{name}` of the plan is not pinned in the record"
                ));
            }
        }
    }
    for name in header
        .approvers
        .keys()
        .filter(|n| !plan.approvers.contains_key(*n))
    {
        keys_match = false;
        report.fail(format!(
            "the record pins approver `{name}`, whom the plan does not name"
        ));
    }
    if keys_match {
        report.pass("the record pins exactly the approver keys the plan pins");
    }
    if header.stages == plan.stages {
        report.pass("the record's stages and sign-off rules are the plan's");
    } else {
        report.fail(
            "the record's stages or sign-off rules (approvers, thresholds) differ from the plan's",
        );
    }
    keys_match
}
