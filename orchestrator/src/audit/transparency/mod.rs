//! The transparency report: a verified record made readable for the customers whose
//! data moved, as one self-contained HTML file (`relocate record report`).
//!
//! It is built only from what `relocate_verifier` established: the verdict of every
//! check, then, from the evidence whose signatures held, the stage timeline, who
//! approved what, per workload the objects, bytes and Merkle roots (and each
//! persistent volume's claim, files, bytes and root); from the reviewed
//! plan the residency of every store; and the commands that let anyone re-verify it.
//! A record that fails any check gives a report that says so first, in red, and shows
//! nothing of the record as if it held.

mod html;

pub use html::render;

use plans::ValidatedPlan;
use relocate_verifier::report::Check;
use relocate_verifier::{Outcome, Report};

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct Transparency {
    /// The plan's name.
    pub plan: String,
    /// Its digest.
    pub plan_digest: String,
    /// Whether every check held.
    pub verified: bool,
    /// The verdict line.
    pub summary: String,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// What the verdict does not cover (e.g. keys not pinned).
    pub limits: Vec<String>,
    /// The operator key the record verified under, and its id.
    pub operator: Option<String>,
    /// Stages in plan order.
    pub stages: Vec<StageView>,
    /// Every store and cluster of the plan with its region and jurisdiction.
    pub places: Vec<Place>,
    /// Commands that re-verify the record.
    pub commands: Vec<String>,
    /// When the record was exported.
    pub exported_at: String,
}

/// One stage as its final attested evidence says.
#[derive(Debug, Clone, Default)]
pub struct StageView {
    /// Name.
    pub name: String,
    /// Attempt of the final evidence.
    pub attempt: Option<u32>,
    /// Started and finished (the operator's clock).
    pub started: String,
    /// Finished.
    pub finished: String,
    /// `sha256:` of the evidence.
    pub evidence: Option<String>,
    /// Steps and outcomes.
    pub steps: Vec<(String, Option<String>, String)>,
    /// Workloads it attests.
    pub workloads: Vec<WorkloadView>,
    /// Approvers (name, key id) whose approvals verified.
    pub approved_by: Vec<(String, String)>,
    /// Approvers who rejected it.
    pub rejected_by: Vec<String>,
    /// Approvals the gate needs (0: no gate).
    pub threshold: usize,
}

/// One workload of a stage's evidence.
#[derive(Debug, Clone, Default)]
pub struct WorkloadView {
    /// Name.
    pub name: String,
    /// `objects` or `kubernetes`.
    pub kind: String,
    /// Source store or cluster.
    pub source: String,
    /// Target store or cluster.
    pub target: String,
    /// Objects.
    pub objects: u64,
    /// Bytes.
    pub bytes: u64,
    /// Merkle root of its manifest.
    pub root: Option<String>,
    /// Kubernetes resources deployed (with digests).
    pub resources: usize,
    /// Persistent volumes whose files moved with it.
    pub volumes: Vec<VolumeView>,
}

/// One persistent volume of a workload, as its evidence signs it.
#[derive(Debug, Clone, Default)]
pub struct VolumeView {
    /// The claim's name.
    pub claim: String,
    /// The target namespace.
    pub namespace: String,
    /// Regular files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Merkle root of the volume's manifest.
    pub root: String,
    /// The last check that matched the root (`packed`, `restored`, `reread`).
    pub checked: String,
    /// Hard links, sparse files and paths not moved, when any, in words.
    pub notes: Vec<String>,
}

impl VolumeView {
    fn of(v: &relocate_verifier::statement::VolumeEvidence) -> Self {
        let mut notes = Vec::new();
        if v.hard_links > 0 {
            notes.push(format!("{} hard links kept as links", v.hard_links));
        }
        if !v.sparse.is_empty() {
            notes.push(format!("{} sparse files", v.sparse.len()));
        }
        if !v.not_moved.is_empty() {
            notes.push(format!("not moved: {}", v.not_moved.join(", ")));
        }
        if v.packed_from.as_deref() == Some("live") {
            notes.push("packed from the running source: not point-in-time".into());
        }
        Self {
            claim: v.claim.clone(),
            namespace: v.namespace.clone(),
            files: v.files,
            bytes: v.bytes,
            root: v.root.clone(),
            checked: match &v.checked_in {
                Some(at) => format!("{} in {at}", v.checked),
                None => v.checked.clone(),
            },
            notes,
        }
    }
}

/// Where a store or cluster is.
#[derive(Debug, Clone)]
pub struct Place {
    /// `store` or `cluster`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// The region's jurisdiction.
    pub jurisdiction: String,
    /// Whether relocate writes there (a workload's target, the state store).
    pub written: bool,
}

/// Assemble the report from a verification (`report`, `outcome`) of `record` against
/// the reviewed `plan`.
pub fn build(
    record: &std::path::Path,
    plan: &ValidatedPlan,
    report: &Report,
    outcome: &Outcome,
) -> Transparency {
    let p = plan.plan();
    let verified = report.all_hold();
    let mut stages = Vec::new();
    if let (true, Some(rec)) = (verified, outcome.record.as_ref()) {
        for attestation in &rec.stages {
            let rule = rec
                .header
                .stages
                .iter()
                .find(|s| s.name == attestation.stage);
            let line = attestation
                .evidence_line
                .and_then(|l| rec.evidence.iter().find(|e| e.line == l));
            let mut view = StageView {
                name: attestation.stage.clone(),
                approved_by: attestation.approved_by.clone(),
                rejected_by: attestation.rejected_by.clone(),
                threshold: rule
                    .and_then(|r| r.signoff.as_ref())
                    .map_or(0, |g| g.threshold),
                ..StageView::default()
            };
            if let Some(e) = line {
                let pr = &e.predicate;
                view.attempt = Some(pr.attempt);
                view.started = pr.started_at.clone();
                view.finished = pr.finished_at.clone();
                view.evidence = Some(e.digest.clone());
                view.steps = pr
                    .steps
                    .iter()
                    .map(|s| (s.kind.clone(), s.workload.clone(), s.outcome.clone()))
                    .collect();
                view.workloads = pr
                    .workloads
                    .iter()
                    .map(|w| WorkloadView {
                        name: w.name.clone(),
                        kind: w.kind.clone(),
                        source: w.source.clone(),
                        target: w.target.clone(),
                        objects: w.objects,
                        bytes: w.bytes,
                        root: w.manifest_root.clone(),
                        resources: w.resources.len(),
                        volumes: w.volumes.iter().map(VolumeView::of).collect(),
                    })
                    .collect();
            }
            stages.push(view);
        }
    }
    let written: std::collections::BTreeSet<&str> = p
        .workloads
        .values()
        .map(|w| match w {
            plans::Workload::Objects(o) => o.to.as_str(),
            plans::Workload::Kubernetes(k) => k.to.as_str(),
        })
        .chain(p.state.as_ref().map(|s| s.store.as_str()))
        .collect();
    let jurisdiction = |region: &str| {
        p.regions
            .get(region)
            .map_or_else(|| "?".to_owned(), |r| r.jurisdiction.clone())
    };
    let places = p
        .stores
        .iter()
        .map(|(name, s)| Place {
            kind: "store",
            name: name.clone(),
            region: s.region.clone(),
            jurisdiction: jurisdiction(&s.region),
            written: written.contains(name.as_str()),
        })
        .chain(p.clusters.iter().map(|(name, c)| Place {
            kind: "cluster",
            name: name.clone(),
            region: c.region.clone(),
            jurisdiction: jurisdiction(&c.region),
            written: written.contains(name.as_str()),
        }))
        .collect();
    let rec = record.display();
    let plan_path = plan.path().display();
    Transparency {
        plan: p.name.clone(),
        plan_digest: plan.digest().to_string(),
        verified,
        summary: report.summary(),
        checks: report.checks().to_vec(),
        limits: report.limits().to_vec(),
        operator: outcome
            .record
            .as_ref()
            .map(|r| r.header.operator_key.clone()),
        stages,
        places,
        commands: vec![
            format!("relocate verify {rec} --plan {plan_path}"),
            format!("relocate verify {rec} --plan {plan_path} --target"),
            format!("relocate verify {rec} --plan {plan_path} --object KEY"),
            format!(
                "sha256sum --check {}.manifests/<workload>.sha256sums   # run in the target's root",
                rec
            ),
        ],
        exported_at: outcome
            .record
            .as_ref()
            .map(|r| r.header.exported_at.clone())
            .unwrap_or_default(),
    }
}
