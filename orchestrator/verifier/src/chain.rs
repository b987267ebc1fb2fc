//! The record's own integrity: every signature against the pinned keys, the chain of
//! evidence (stage order, attempts, previous-evidence digests), each approval's
//! binding to the evidence right before it, each gate's threshold over its stage's
//! final evidence, and the entry list of the signed header (nothing removed, inserted,
//! reordered or duplicated). Nothing in a payload is trusted before its signature is.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::VerifyError;
use crate::approval::{ApprovalRefused, Expected, check_approval};
use crate::dsse::Envelope;
use crate::header::{check_entry_list, check_header};
use crate::keys::PublicKey;
use crate::record::{Bundle, RecordHeader};
use crate::report::Report;
use crate::statement::{
    APPROVAL_PREDICATE_TYPE, Decision, EVIDENCE_PREDICATE_TYPE, EvidencePredicate, Statement,
    Subject, evidence_digest, parse_evidence,
};

/// What a checked record offers the target and proof checks.
#[derive(Debug, Clone)]
pub struct VerifiedRecord {
    /// The signed header.
    pub header: RecordHeader,
    /// The operator key the header and evidence verified under.
    pub operator: PublicKey,
    /// Evidence whose operator signature verified, in record order.
    pub evidence: Vec<EvidenceLine>,
    /// Per stage of the plan, who attests its final evidence.
    pub stages: Vec<StageAttestation>,
}

/// Who attests one stage: the operator's signature on its final evidence and the
/// approvers whose checked approvals bind that evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageAttestation {
    /// Stage name.
    pub stage: String,
    /// Record line of its final valid evidence, if any.
    pub evidence_line: Option<usize>,
    /// Approver name and key id of each checked approval of that evidence.
    pub approved_by: Vec<(String, String)>,
    /// Approvers who rejected it.
    pub rejected_by: Vec<String>,
}

/// One signed evidence line.
#[derive(Debug, Clone)]
pub struct EvidenceLine {
    /// Line number in the record file, from 1.
    pub line: usize,
    /// `sha256:<hex>` of its payload.
    pub digest: String,
    /// The statement's subjects (each manifest by its Merkle root), as signed.
    pub subjects: Vec<Subject>,
    /// What it attests.
    pub predicate: EvidencePredicate,
}

/// Check the header, every entry and every gate. `None` when the header itself cannot
/// be trusted (nothing else can then be checked).
pub fn check_record(
    bundle: &Bundle,
    pinned_operator: Option<&PublicKey>,
    report: &mut Report,
) -> Option<VerifiedRecord> {
    let (header, operator, approvers) = check_header(bundle, pinned_operator, report)?;
    let mut walk = Walk::new(&header, &operator, &approvers);
    for (i, line) in bundle.lines.iter().enumerate().skip(1) {
        walk.line(i + 1, line, report);
    }
    walk.check_gates(report);
    let stages = walk.attestations();
    check_entry_list(bundle, &header, report);
    let evidence = walk.evidence;
    Some(VerifiedRecord {
        header,
        operator,
        evidence,
        stages,
    })
}

/// The evidence an approval must refer to: the latest evidence line.
#[derive(Debug, Clone)]
struct Current {
    index: usize,
    stage: String,
    attempt: u32,
    digest: String,
}

/// Approvals and rejections of one evidence digest.
#[derive(Debug, Default)]
struct Tally {
    approved: BTreeSet<String>,
    rejected: Vec<(String, Option<String>)>,
}

struct Walk<'a> {
    header: &'a RecordHeader,
    operator: &'a PublicKey,
    approvers: &'a BTreeMap<String, PublicKey>,
    seen: HashMap<String, usize>,
    lines_of: HashMap<String, (usize, String)>,
    current: Option<Current>,
    last_of_stage: Vec<Option<(String, usize)>>,
    tallies: HashMap<String, Tally>,
    evidence: Vec<EvidenceLine>,
    /// The line of the latest evidence that failed its signature or could not be read:
    /// approvals after it cannot be tied to any evidence.
    broken_at: Option<usize>,
}

impl<'a> Walk<'a> {
    fn new(
        header: &'a RecordHeader,
        operator: &'a PublicKey,
        approvers: &'a BTreeMap<String, PublicKey>,
    ) -> Self {
        let last_of_stage = vec![None; header.stages.len()];
        Self {
            header,
            operator,
            approvers,
            seen: HashMap::new(),
            lines_of: HashMap::new(),
            current: None,
            last_of_stage,
            tallies: HashMap::new(),
            evidence: Vec::new(),
            broken_at: None,
        }
    }

    fn line(&mut self, n: usize, line: &Result<Envelope, String>, report: &mut Report) {
        let envelope = match line {
            Ok(env) => env,
            Err(e) => return report.fail(format!("line {n} is not a DSSE envelope: {e}")),
        };
        let digest = evidence_digest(envelope);
        if let Some(first) = self.seen.get(&digest) {
            return report.fail(format!(
                "line {n} duplicates line {first}: the same entry appears twice"
            ));
        }
        let predicate_type =
            serde_json::from_slice::<Statement>(&envelope.payload).map(|s| s.predicate_type);
        let result = match predicate_type.as_deref() {
            Ok(EVIDENCE_PREDICATE_TYPE) => self.evidence(n, envelope, &digest),
            Ok(APPROVAL_PREDICATE_TYPE) => self.approval(n, envelope, &digest),
            Ok(other) => Err(format!(
                "line {n} holds a `{other}` statement, neither evidence nor an approval"
            )),
            Err(e) => Err(format!("line {n} is not an in-toto statement: {e}")),
        };
        match result {
            Ok(text) => report.pass(text),
            Err(text) => report.fail(text),
        }
    }

    fn evidence(&mut self, n: usize, envelope: &Envelope, digest: &str) -> Result<String, String> {
        self.broken_at = Some(n);
        envelope.verify_with(self.operator).map_err(|e| {
            format!("line {n}: evidence is not validly signed by the operator key: {e}")
        })?;
        let (statement, p) = parse_evidence(envelope).map_err(|e| format!("line {n}: {e}"))?;
        self.broken_at = None;
        self.seen.insert(digest.to_owned(), n);
        let what = format!("evidence of stage `{}` (attempt {})", p.stage, p.attempt);
        if p.plan_digest != self.header.plan_digest {
            return Err(format!(
                "line {n}: {what} is for another plan ({}; the record is of {})",
                p.plan_digest, self.header.plan_digest
            ));
        }
        if self
            .header
            .stages
            .get(p.stage_index)
            .is_none_or(|s| s.name != p.stage)
        {
            return Err(format!(
                "line {n}: {what} claims stage index {}, which is not that stage in the plan",
                p.stage_index
            ));
        }
        let order = self.order_problem(&p);
        let chained = self.chain_problem(&p);
        self.current = Some(Current {
            index: p.stage_index,
            stage: p.stage.clone(),
            attempt: p.attempt,
            digest: digest.to_owned(),
        });
        self.last_of_stage[p.stage_index] = Some((digest.to_owned(), n));
        self.lines_of
            .insert(digest.to_owned(), (n, p.stage.clone()));
        self.evidence.push(EvidenceLine {
            line: n,
            digest: digest.to_owned(),
            subjects: statement.subject,
            predicate: p,
        });
        if let Some(problem) = order.or(chained) {
            return Err(format!("line {n}: {what} {problem}"));
        }
        let link = if self
            .evidence
            .last()
            .is_some_and(|e| e.predicate.stage_index == 0)
        {
            "first in the chain"
        } else {
            "chained to the previous stage's evidence"
        };
        Ok(format!("line {n}: {what}, signed by the operator, {link}"))
    }

    /// Stages run in order; attempts of one stage increase.
    fn order_problem(&self, p: &EvidencePredicate) -> Option<String> {
        let stage_name = |i: usize| {
            self.header
                .stages
                .get(i)
                .map_or("?", |s| s.name.as_str())
                .to_owned()
        };
        match &self.current {
            None if p.stage_index != 0 => Some(format!(
                "opens the record, but the evidence of stage `{}` before it is missing",
                stage_name(0)
            )),
            None => None,
            Some(cur) if p.stage_index < cur.index => Some(format!(
                "comes after the evidence of the later stage `{}`: lines are out of order",
                cur.stage
            )),
            Some(cur) if p.stage_index == cur.index && p.attempt <= cur.attempt => Some(format!(
                "comes after attempt {} of the same stage: lines are out of order",
                cur.attempt
            )),
            Some(cur) if p.stage_index > cur.index + 1 => Some(format!(
                "follows stage `{}`: the evidence of stage `{}` is missing",
                cur.stage,
                stage_name(cur.index + 1)
            )),
            Some(_) => None,
        }
    }

    /// `previousEvidence` must be the digest of the previous stage's last evidence.
    fn chain_problem(&self, p: &EvidencePredicate) -> Option<String> {
        let expected = p
            .stage_index
            .checked_sub(1)
            .and_then(|i| self.last_of_stage.get(i).cloned().flatten());
        match (&p.previous_evidence, expected) {
            (None, None) => None,
            (Some(prev), Some((digest, _))) if *prev == digest => None,
            (Some(prev), Some((digest, line))) => Some(format!(
                "names previous evidence {prev}, but the last evidence of the previous stage is {digest} (line {line}): the chain is broken"
            )),
            (Some(prev), None) => Some(format!(
                "names previous evidence {prev}, which is not in the record: the chain is broken"
            )),
            (None, Some((_, line))) => Some(format!(
                "names no previous evidence although line {line} holds the previous stage's: the chain is broken"
            )),
        }
    }

    fn approval(&mut self, n: usize, envelope: &Envelope, digest: &str) -> Result<String, String> {
        let (name, key) = self
            .signer(envelope)
            .map_err(|e| format!("line {n}: {e}"))?;
        self.seen.insert(digest.to_owned(), n);
        if let Some(line) = self.broken_at {
            return Err(format!(
                "line {n}: approval by {name} cannot be tied to evidence: the evidence before it (line {line}) failed its checks"
            ));
        }
        let cur = self
            .current
            .clone()
            .ok_or_else(|| format!("line {n}: approval by {name} comes before any evidence"))?;
        let gate = self
            .header
            .stages
            .get(cur.index)
            .and_then(|s| s.signoff.as_ref());
        let gate = gate.ok_or_else(|| {
            format!(
                "line {n}: approval by {name} follows stage `{}`, which has no sign-off gate",
                cur.stage
            )
        })?;
        if !gate.approvers.contains(&name) {
            return Err(format!(
                "line {n}: {name} is not an approver of stage `{}`",
                cur.stage
            ));
        }
        let expected = Expected {
            plan_digest: self.header.plan_digest.clone(),
            stage: cur.stage.clone(),
            evidence_digest: cur.digest.clone(),
        };
        let checked = check_approval(envelope, &expected, &name, key).map_err(|refused| {
            format!("line {n}: approval by {name} after the evidence of stage `{}` is refused: {refused}{}", cur.stage, self.replay_hint(&refused))
        })?;
        let tally = self.tallies.entry(cur.digest.clone()).or_default();
        match checked.decision {
            Decision::Approve => {
                tally.approved.insert(name.clone());
            }
            Decision::Reject => tally.rejected.push((name.clone(), checked.reason)),
        }
        let what = match checked.decision {
            Decision::Approve => "approval",
            Decision::Reject => "rejection",
        };
        Ok(format!(
            "line {n}: {what} of stage `{}` (attempt {}) by {name}, signed by its pinned key {}; signedAt {} (claimed by the signer, not a trusted time)",
            cur.stage,
            cur.attempt,
            key.key_id(),
            checked.signed_at
        ))
    }

    /// Who attests each stage's final evidence.
    fn attestations(&self) -> Vec<StageAttestation> {
        self.header
            .stages
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                let last = self.last_of_stage[index].as_ref();
                let tally = last.and_then(|(digest, _)| self.tallies.get(digest));
                StageAttestation {
                    stage: rule.name.clone(),
                    evidence_line: last.map(|(_, line)| *line),
                    approved_by: tally
                        .map(|t| {
                            t.approved
                                .iter()
                                .map(|name| {
                                    let id = self.approvers.get(name).map(PublicKey::key_id);
                                    (name.clone(), id.unwrap_or_default())
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    rejected_by: tally
                        .map(|t| t.rejected.iter().map(|(n, _)| n.clone()).collect())
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The pinned approver whose key signed `envelope`.
    fn signer(&self, envelope: &Envelope) -> Result<(String, &'a PublicKey), String> {
        let mut tampered = None;
        for (name, key) in self.approvers {
            match envelope.verify_with(key) {
                Ok(()) => return Ok((name.clone(), key)),
                Err(VerifyError::BadSignature { .. }) => tampered = Some(name),
                Err(_) => {}
            }
        }
        if let Some(name) = tampered {
            return Err(format!(
                "approval naming {name}'s key does not verify: the line was changed after signing"
            ));
        }
        let ids = envelope.key_ids();
        Err(format!(
            "approval signed by unknown key {}: no approver pinned in the record holds it",
            if ids.is_empty() {
                "(none named)".to_owned()
            } else {
                ids.join(", ")
            }
        ))
    }

    /// Where a refused approval came from, when the record shows it.
    fn replay_hint(&self, refused: &ApprovalRefused) -> String {
        match refused {
            ApprovalRefused::WrongStage { found, .. } => {
                format!(" (an approval replayed from stage `{found}`)")
            }
            ApprovalRefused::WrongEvidence { found, .. } => match self.lines_of.get(found) {
                Some((line, stage)) => format!(
                    " (it approves the evidence on line {line}, of stage `{stage}`: a replay)"
                ),
                None => " (it approves evidence that is not in this record)".to_owned(),
            },
            ApprovalRefused::WrongPlan { .. } => {
                " (an approval replayed from another plan)".to_owned()
            }
            _ => String::new(),
        }
    }

    /// Every stage has evidence; every gated stage's final evidence met its threshold
    /// and was not rejected.
    fn check_gates(&self, report: &mut Report) {
        for (index, rule) in self.header.stages.iter().enumerate() {
            let Some((digest, line)) = &self.last_of_stage[index] else {
                report.fail(format!("stage `{}`: no valid evidence in the record (the move has not reached it, or lines were removed or changed)", rule.name));
                continue;
            };
            let Some(gate) = &rule.signoff else {
                report.pass(format!(
                    "stage `{}`: evidence on line {line}; no sign-off required",
                    rule.name
                ));
                continue;
            };
            let empty = Tally::default();
            let tally = self.tallies.get(digest).unwrap_or(&empty);
            let signed: Vec<&str> = tally.approved.iter().map(String::as_str).collect();
            if let Some((who, reason)) = tally.rejected.first() {
                let reason = reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                report.fail(format!(
                    "stage `{}`: its final evidence (line {line}) was rejected by {who}{reason}",
                    rule.name
                ));
            } else if signed.len() >= gate.threshold {
                report.pass(format!("stage `{}`: signed off by {} ({} of {} needed) over its final evidence (line {line})", rule.name, signed.join(", "), signed.len(), gate.threshold));
            } else {
                let missing: Vec<&str> = gate
                    .approvers
                    .iter()
                    .map(String::as_str)
                    .filter(|a| !signed.contains(a))
                    .collect();
                report.fail(format!(
                    "stage `{}`: sign-off threshold not met: {} of {} approvals over its final evidence (line {line}); no valid approval from {}",
                    rule.name,
                    signed.len(),
                    gate.threshold,
                    missing.join(", ")
                ));
            }
        }
    }
}
