//! The validated plan: the only form of a plan the engine accepts.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use url::Url;

use crate::source_map::{Position, SourceMap};
use crate::validate::{Anchor, Problem, checked};
use crate::{
    Diagnostic, KubernetesWorkload, ObjectWorkload, Plan, PlanDigest, PlanError, Stage,
    StoreLocation, StoreSpec, Workload,
};

/// A plan that passed validation. Construct with [`crate::load`] or [`crate::parse`]
/// (or [`ValidatedPlan::from_plan`] for a plan built in code).
#[derive(Debug, Clone)]
pub struct ValidatedPlan {
    plan: Plan,
    path: PathBuf,
    digest: PlanDigest,
    /// Every store, typed, local paths made absolute against the plan's directory.
    stores: IndexMap<String, StoreSpec>,
    /// Rates and durations of workloads and approvers.
    values: crate::typed::Values,
    /// The text that was validated (for a plan built in code, its JSON, which is YAML).
    text: String,
}

impl ValidatedPlan {
    /// Validate `plan`, positioning every problem through `map`.
    pub(crate) fn check(plan: Plan, path: &Path, map: &SourceMap) -> Result<Self, PlanError> {
        let (problems, typed) = checked(&plan);
        let invalid = |problems: Vec<Problem>| {
            let file = path.display().to_string();
            let mut diags: Vec<Diagnostic> = problems
                .into_iter()
                .map(|p| position(p, &file, map))
                .collect();
            diags.sort_by_key(|d| (d.line, d.column));
            PlanError::Invalid(diags)
        };
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let values = crate::typed::values(&plan).map_err(invalid)?;
        let digest = PlanDigest::of(&plan);
        let base_dir = base_dir_of(path).to_path_buf();
        let stores = typed
            .stores
            .into_iter()
            .map(|(name, spec)| (name, spec.resolve(&base_dir)))
            .collect();
        let text = serde_json::to_string_pretty(&plan).unwrap_or_default();
        Ok(Self {
            plan,
            path: path.to_path_buf(),
            digest,
            stores,
            values,
            text,
        })
    }

    /// Validate a plan built in code (tests, generators). Diagnostics carry the YAML
    /// path but line and column 0, as there is no text to point into.
    pub fn from_plan(plan: Plan, path: &Path) -> Result<Self, PlanError> {
        Self::check(plan, path, &SourceMap::default())
    }

    /// The same plan with its text as written and that document's digest (see
    /// [`PlanDigest`]).
    pub(crate) fn with_document(mut self, text: &str, digest: PlanDigest) -> Self {
        self.digest = digest;
        self.text = text.to_owned();
        self
    }

    /// The text that was validated: what a worker re-validates, whatever happens to the
    /// file since.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The plan as written.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The plan's name.
    pub fn name(&self) -> &str {
        &self.plan.name
    }

    /// The file the plan was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Directory relative paths in the plan (hook commands, `${file:…}`, `file://./…`
    /// store URLs) resolve against.
    pub fn base_dir(&self) -> &Path {
        base_dir_of(&self.path)
    }

    /// SHA-256 of the plan's canonical form; part of all evidence.
    pub fn digest(&self) -> &PlanDigest {
        &self.digest
    }

    /// A stage by name.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.plan.stages.iter().find(|s| s.name == name)
    }

    /// An object workload by name (validation guarantees copy/verify steps name one).
    pub fn object_workload(&self, name: &str) -> Option<&ObjectWorkload> {
        match self.plan.workloads.get(name) {
            Some(Workload::Objects(w)) => Some(w),
            _ => None,
        }
    }

    /// A Kubernetes workload by name (validation guarantees freeze/deploy/rollback
    /// steps name one).
    pub fn kubernetes_workload(&self, name: &str) -> Option<&KubernetesWorkload> {
        match self.plan.workloads.get(name) {
            Some(Workload::Kubernetes(w)) => Some(w),
            _ => None,
        }
    }

    /// Store `name`, typed: its location (a local path absolute), options, credentials
    /// policy, multipart and retry settings. `None` when no such store exists.
    pub fn store(&self, name: &str) -> Option<&StoreSpec> {
        self.stores.get(name)
    }

    /// The `bandwidth` cap of object workload `name`, in bytes per second.
    pub fn bandwidth(&self, workload: &str) -> Option<u64> {
        self.values.bandwidth.get(workload).copied()
    }

    /// The `waitTimeout` of Kubernetes workload `name`, if the plan sets one.
    pub fn wait_timeout(&self, workload: &str) -> Option<std::time::Duration> {
        self.values.wait_timeout.get(workload).copied()
    }

    /// The `volumes.timeout` of Kubernetes workload `name`, if the plan sets one.
    pub fn volume_timeout(&self, workload: &str) -> Option<std::time::Duration> {
        self.values.volume_timeout.get(workload).copied()
    }

    /// The Kubernetes workload `name` when its claims' data moves (`volumes.copy`).
    pub fn volume_workload(
        &self,
        name: &str,
    ) -> Option<(&crate::KubernetesWorkload, &crate::Volumes)> {
        let w = self.kubernetes_workload(name)?;
        let v = w.volumes.as_ref().filter(|v| v.copy)?;
        Some((w, v))
    }

    /// The hook of approver `name`, typed (read once, at validation).
    pub fn hook(&self, approver: &str) -> Option<&crate::HookSpec> {
        self.values.hook.get(approver)
    }

    /// The Ed25519 key the plan pins for approver `name` (decoded once, at validation).
    pub fn approver_key(&self, approver: &str) -> Option<&ed25519_dalek::VerifyingKey> {
        self.values.approver_key.get(approver)
    }

    /// The hook `timeout` of approver `name`, if the plan sets one.
    pub fn hook_timeout(&self, approver: &str) -> Option<std::time::Duration> {
        self.hook(approver).and_then(|h| h.timeout)
    }

    /// The URL of store `name`: a local directory as an absolute directory URL (with a
    /// trailing `/`), a cloud URL as written. `None` when no such store exists.
    pub fn store_url(&self, name: &str) -> Option<Url> {
        match &self.store(name)?.location {
            StoreLocation::Local(dir) => Url::from_directory_path(dir).ok(),
            StoreLocation::Memory { prefix } => Url::parse(&format!("memory:///{prefix}")).ok(),
            StoreLocation::Cloud { url, .. } => Some(url.clone()),
        }
    }
}

/// The directory of the plan file `path` (`.` for a bare file name).
fn base_dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A problem as a diagnostic positioned at its node's key or value.
fn position(problem: Problem, file: &str, map: &SourceMap) -> Diagnostic {
    let at = map
        .find(&problem.yaml_path)
        .map(|node| match problem.anchor {
            Anchor::Key => node.key.unwrap_or(node.value),
            Anchor::Value => node.value,
        })
        .unwrap_or(Position { line: 0, column: 0 });
    Diagnostic {
        file: file.to_owned(),
        line: at.line,
        column: at.column,
        yaml_path: problem.yaml_path,
        message: problem.message,
        hint: problem.hint,
    }
}
