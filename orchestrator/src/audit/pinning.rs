//! `verify --plan`: the record must be of this plan (same digest) and pin the same keys
//! and sign-off rules, so the auditor's trust rests on the reviewed plan rather than on
//! what the record says about itself.

use plans::ValidatedPlan;

use super::bundle::RecordHeader;
use super::export::stage_rules;
use super::report::Report;

/// Compare the record's header with `plan`.
pub fn check_plan(header: &RecordHeader, plan: &ValidatedPlan, report: &mut Report) {
    let digest = plan.digest().as_str();
    if header.plan_digest != digest {
        report.fail(format!(
            "the record is of another plan: it records plan `{}` with digest {}, but {} is plan `{}` with digest {digest}",
            header.plan,
            header.plan_digest,
            plan.path().display(),
            plan.name()
        ));
    } else {
        report.pass(format!(
            "the record is of plan {} (`{}`, digest {digest})",
            plan.path().display(),
            plan.name()
        ));
    }
    let mut keys_match = true;
    for (name, approver) in &plan.plan().approvers {
        match header.approvers.get(name) {
            Some(pinned) if pinned.public_key.trim() == approver.public_key.trim() => {}
            Some(pinned) => {
                keys_match = false;
                report.fail(format!(
                    "approver `{name}`: the plan pins {}, the record pins {} (key id {})",
                    approver.public_key, pinned.public_key, pinned.key_id
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
        .filter(|n| !plan.plan().approvers.contains_key(*n))
    {
        keys_match = false;
        report.fail(format!(
            "the record pins approver `{name}`, whom the plan does not name"
        ));
    }
    if keys_match {
        report.pass("the record pins exactly the approver keys the plan pins");
    }
    if header.stages == stage_rules(plan) {
        report.pass("the record's stages and sign-off rules are the plan's");
    } else {
        report.fail(
            "the record's stages or sign-off rules (approvers, thresholds) differ from the plan's",
        );
    }
}
