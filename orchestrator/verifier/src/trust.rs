//! What the verdict rests on: which keys were pinned from outside the record (the
//! operator's by the plan's `operator.publicKey` or `--operator-key`, the approvers' by
//! the plan) and which were taken from the record itself.
//!
//! A record whose keys all come from its own header proves only that it was not
//! changed since whoever holds those keys signed it: anyone can write such a record
//! with keys of their own. So the verdict line names every such limit ("integrity
//! only: operator key not pinned"), `--json` carries it, and every stage is listed with
//! the keys that attest it and whether each is pinned.

use serde_json::{Value, json};

use crate::chain::VerifiedRecord;
use crate::keys::PublicKey;
use crate::report::Report;

/// Where the operator key a record is checked against comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorPin {
    /// The pinned key.
    pub key: PublicKey,
    /// Who pins it: `the plan's operator.publicKey` or `--operator-key`.
    pub by: String,
}

/// The pins a verification ran with.
#[derive(Debug, Clone, Default)]
pub struct Pins {
    /// The operator key, when pinned.
    pub operator: Option<OperatorPin>,
    /// Whether the approvers' keys are the reviewed plan's (`--plan`, and the record
    /// pins exactly the plan's keys).
    pub approvers_by_plan: bool,
}

/// The operator key to pin from the plan and from `--operator-key`; two different
/// pins are a failed check, and the plan's wins.
pub fn operator_pin(
    from_plan: Option<PublicKey>,
    from_flag: Option<PublicKey>,
    report: &mut Report,
) -> Option<OperatorPin> {
    match (from_plan, from_flag) {
        (Some(plan), Some(flag)) if plan != flag => {
            report.fail(format!(
                "--operator-key is key {}, but the plan's operator.publicKey is key {}: they must agree",
                flag.key_id(),
                plan.key_id()
            ));
            Some(OperatorPin {
                key: plan,
                by: "the plan's operator.publicKey".to_owned(),
            })
        }
        (Some(key), _) => Some(OperatorPin {
            key,
            by: "the plan's operator.publicKey".to_owned(),
        }),
        (None, Some(key)) => Some(OperatorPin {
            key,
            by: "--operator-key".to_owned(),
        }),
        (None, None) => None,
    }
}

/// Name the verdict's limits in the report.
pub fn state_limits(pins: &Pins, report: &mut Report) {
    if pins.operator.is_none() {
        report.limit("integrity only: operator key not pinned");
    }
    if !pins.approvers_by_plan {
        report.limit("approver keys not pinned by a plan");
    }
}

/// One note per stage: the keys that attest it and whether each is pinned.
pub fn list_attestations(record: &VerifiedRecord, pins: &Pins, report: &mut Report) {
    let operator = operator_words(record, pins);
    for stage in &record.stages {
        let Some(line) = stage.evidence_line else {
            report.note(format!(
                "stage `{}`: attested by no valid evidence",
                stage.stage
            ));
            continue;
        };
        let mut text = format!(
            "stage `{}`: evidence (line {line}) signed by {operator}",
            stage.stage
        );
        for (name, key_id) in &stage.approved_by {
            text.push_str(&format!(
                "; approved by {name}, key {key_id} ({})",
                approver_words(pins)
            ));
        }
        for name in &stage.rejected_by {
            text.push_str(&format!("; rejected by {name}"));
        }
        report.note(text);
    }
}

fn operator_words(record: &VerifiedRecord, pins: &Pins) -> String {
    let id = record.operator.key_id();
    match &pins.operator {
        Some(pin) => format!("operator key {id} (pinned by {})", pin.by),
        None => format!("operator key {id} (NOT pinned: taken from the record)"),
    }
}

fn approver_words(pins: &Pins) -> &'static str {
    if pins.approvers_by_plan {
        "pinned by the plan"
    } else {
        "NOT pinned by a plan: taken from the record header"
    }
}

/// The `--json` document: verdict, limits, pins, per-stage attestations, every check.
pub fn to_json(report: &Report, record: Option<&VerifiedRecord>, pins: &Pins) -> Value {
    let stages: Vec<Value> = record
        .map(|r| {
            r.stages
                .iter()
                .map(|s| {
                    json!({
                        "stage": s.stage,
                        "evidenceLine": s.evidence_line,
                        "operator": {
                            "keyId": r.operator.key_id(),
                            "pinned": pins.operator.is_some(),
                        },
                        "approvals": s.approved_by.iter().map(|(name, key_id)| json!({
                            "approver": name,
                            "keyId": key_id,
                            "pinned": pins.approvers_by_plan,
                        })).collect::<Vec<_>>(),
                        "rejectedBy": s.rejected_by,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "verified": report.all_hold(),
        "verdict": report.summary(),
        "integrityOnly": pins.operator.is_none(),
        "limits": report.limits(),
        "operatorKey": {
            "keyId": record.map(|r| r.operator.key_id()),
            "pinned": pins.operator.is_some(),
            "pinnedBy": pins.operator.as_ref().map(|p| p.by.clone()),
        },
        "approverKeysPinnedByPlan": pins.approvers_by_plan,
        "stages": stages,
        "checks": report.checks().iter().map(|c| json!({"holds": c.holds, "text": c.text})).collect::<Vec<_>>(),
        "notes": report.notes(),
    })
}
