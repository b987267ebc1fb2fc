//! The validated plan: the only form of a plan the engine accepts.

use std::path::{Path, PathBuf};

use url::Url;

use crate::source_map::{Position, SourceMap};
use crate::validate::{Anchor, Problem, validate};
use crate::{
    Diagnostic, KubernetesWorkload, ObjectWorkload, Plan, PlanDigest, PlanError, Stage, Workload,
};

/// A plan that passed validation. Construct with [`crate::load`] or [`crate::parse`]
/// (or [`ValidatedPlan::from_plan`] for a plan built in code).
#[derive(Debug, Clone)]
pub struct ValidatedPlan {
    plan: Plan,
    path: PathBuf,
    digest: PlanDigest,
}

impl ValidatedPlan {
    /// Validate `plan`, positioning every problem through `map`.
    pub(crate) fn check(plan: Plan, path: &Path, map: &SourceMap) -> Result<Self, PlanError> {
        let problems = validate(&plan);
        if !problems.is_empty() {
            let file = path.display().to_string();
            let mut diags: Vec<Diagnostic> = problems
                .into_iter()
                .map(|p| position(p, &file, map))
                .collect();
            diags.sort_by_key(|d| (d.line, d.column));
            return Err(PlanError::Invalid(diags));
        }
        let digest = PlanDigest::of(&plan);
        Ok(Self {
            plan,
            path: path.to_path_buf(),
            digest,
        })
    }

    /// Validate a plan built in code (tests, generators). Diagnostics carry the YAML
    /// path but line and column 0, as there is no text to point into.
    pub fn from_plan(plan: Plan, path: &Path) -> Result<Self, PlanError> {
        Self::check(plan, path, &SourceMap::default())
    }

    /// The same plan with the digest of its document as written (see [`PlanDigest`]).
    pub(crate) fn with_digest(mut self, digest: PlanDigest) -> Self {
        self.digest = digest;
        self
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
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
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

    /// The URL of store `name`, ready for `object_store`: a relative file URL
    /// (`file://./x`, `file:x`) is made absolute against [`Self::base_dir`] (as a
    /// directory URL, with a trailing `/`); other URLs are returned as written.
    /// `None` when no such store exists.
    pub fn store_url(&self, name: &str) -> Option<Url> {
        let store = self.plan.stores.get(name)?;
        crate::store_url::resolve(&store.url, self.base_dir())
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
