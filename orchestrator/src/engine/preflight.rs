//! Pre-flight: every store the remaining stages touch is opened and asked for one
//! listing page before anything moves, so a wrong credential or an unreachable
//! endpoint stops the run at the start instead of halfway. Each Kubernetes workload a
//! pending stage deploys is dry-run at its target cluster ([`check_deploys`]) before any
//! stage runs, so a manifest the target would refuse stops the run before `freeze`.
//! Before both, [`local_problems`] checks what must exist on this machine (programs of
//! `run` steps and command hooks, `${file:…}` secrets): a missing hook script is found
//! at the start, not at the gate after every step has run. `plan show` prints the same.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use connectors::store::{Access, open_store, preflight};
use plans::secret::OptionValue;
use plans::{Step, ValidatedPlan};

use super::{Context, EngineError};

/// Check the stores of the pending stages.
pub(crate) async fn check_stores(ctx: &Context, pending: &[usize]) -> Result<(), EngineError> {
    let mut stores: BTreeSet<(String, bool)> = BTreeSet::new();
    for &i in pending {
        for step in &ctx.plan.plan().stages[i].steps {
            if let Step::Copy(w) | Step::Verify(w) = step
                && let Some(wl) = ctx.plan.object_workload(w)
            {
                stores.insert((wl.from.clone(), false));
                stores.insert((wl.to.clone(), true));
            }
            if let Step::Copy(w) | Step::Verify(w) | Step::Deploy(w) = step
                && let Some((_, v)) = ctx.plan.volume_workload(w)
            {
                stores.insert((v.staging.clone(), true));
                if let Some(state) = &ctx.plan.plan().state {
                    stores.insert((state.store.clone(), true));
                }
            }
        }
    }
    for (name, write) in stores {
        let Some(store) = ctx.plan.store(&name) else {
            continue;
        };
        let access = if write { Access::Write } else { Access::Read };
        let handle = open_store(&name, store, ctx.plan.base_dir(), access).map_err(|source| {
            EngineError::Store {
                store: name.clone(),
                source,
            }
        })?;
        preflight(&handle)
            .await
            .map_err(|source| EngineError::Store {
                store: name.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Dry-run every workload the pending stages deploy, before anything is frozen.
pub(crate) async fn check_deploys(ctx: &Context, pending: &[usize]) -> Result<(), EngineError> {
    let mut seen = BTreeSet::new();
    for &i in pending {
        for step in &ctx.plan.plan().stages[i].steps {
            if let Step::Deploy(w) = step
                && seen.insert(w.clone())
            {
                let report = super::steps::kubernetes::dry_run_deploy(ctx, w)
                    .await
                    .map_err(|cause| EngineError::DeployPreflight {
                        workload: w.clone(),
                        cause: Box::new(cause),
                    })?;
                tracing::info!(workload = %w, accepted = report.accepted, "deploy dry run passed");
                for notice in report.notices {
                    tracing::warn!(workload = %w, %notice, "deploy dry run");
                }
            }
        }
    }
    Ok(())
}

/// For every workload whose claims' data the pending stages move: the namespace the
/// movers run in exists at each cluster, with the Secret the plan names for them, so a
/// missing Secret stops the run before `freeze`, not at the restore.
pub(crate) async fn check_volumes(ctx: &Context, pending: &[usize]) -> Result<(), EngineError> {
    let mut sides: BTreeSet<(String, bool)> = BTreeSet::new();
    for &i in pending {
        for step in &ctx.plan.plan().stages[i].steps {
            match step {
                Step::Copy(w) => sides.insert((w.clone(), false)),
                Step::Deploy(w) | Step::Verify(w) => sides.insert((w.clone(), true)),
                _ => false,
            };
        }
    }
    for (name, target) in sides {
        let Some((w, v)) = ctx.plan.volume_workload(&name) else {
            continue;
        };
        let Some(secret) = v.credentials.as_ref().map(|c| c.secret_name.as_str()) else {
            continue;
        };
        let (cluster, namespace) = if target {
            (&w.to, w.target_namespace().to_owned())
        } else {
            (&w.from, w.namespace.clone())
        };
        let fail = |detail: String| EngineError::VolumePreflight {
            workload: name.clone(),
            detail,
        };
        let client = super::steps::kubernetes::cluster_client(ctx, cluster)
            .await
            .map_err(|e| fail(e.to_string()))?;
        connectors::kube::workers::check_worker_prerequisites(
            client,
            &namespace,
            Some(secret),
            None,
        )
        .await
        .map_err(|e| {
            // The workers' hints name `workers.kubernetes`; a mover runs where the claims are.
            let e = match e {
                connectors::kube::KubeError::MissingPrerequisite {
                    kind,
                    name,
                    namespace: ns,
                    ..
                } if kind == "namespace" => connectors::kube::KubeError::MissingPrerequisite {
                    hint: format!("the movers run beside the claims: check `namespace`{} of the workload", if target { " (and `transform.namespace`)" } else { "" }),
                    kind,
                    name,
                    namespace: ns,
                },
                connectors::kube::KubeError::MissingPrerequisite {
                    kind,
                    name,
                    namespace: Some(ns),
                    ..
                } => connectors::kube::KubeError::MissingPrerequisite {
                    hint: format!(
                        "create it with the staging store's credentials (kubectl create secret generic {name} -n {ns} --from-literal=KEY=… for each ${{env:KEY}} of the store), or name another in `volumes.credentials.secretName`"
                    ),
                    kind,
                    name,
                    namespace: Some(ns),
                },
                other => other,
            };
            fail(format!("the volume movers at {cluster}: {e}"))
        })?;
    }
    Ok(())
}

/// Check, before anything moves, the files the pending stages will need on this
/// machine: each `run` step's program and each command hook's program exists and is
/// executable (a relative path is taken from the plan's directory, a bare name from
/// `PATH`), and each `${file:…}` secret of a store they touch exists. Every problem is
/// returned (an empty list passes); nothing is read beyond file metadata.
pub(crate) fn local_problems(plan: &ValidatedPlan, pending: &[usize]) -> Vec<String> {
    let base = plan.base_dir();
    let mut problems = Vec::new();
    let mut approvers = BTreeSet::new();
    let mut stores = BTreeSet::new();
    for &i in pending {
        let stage = &plan.plan().stages[i];
        for (j, step) in stage.steps.iter().enumerate() {
            match step {
                Step::Run(run) => {
                    if let Some(program) = run.argv().first()
                        && let Err(why) = find_program(program, base)
                    {
                        problems.push(format!(
                            "stage {}, step {} (run): program `{program}` {why}",
                            stage.name,
                            j + 1
                        ));
                    }
                }
                Step::Copy(w) | Step::Verify(w) => {
                    if let Some(wl) = plan.object_workload(w) {
                        stores.insert(wl.from.clone());
                        stores.insert(wl.to.clone());
                    }
                }
                _ => {}
            }
        }
        if let Some(signoff) = &stage.signoff {
            approvers.extend(signoff.approvers().iter().cloned());
        }
    }
    for approver in approvers {
        if let Some(plans::HookKind::Command { argv }) = plan.hook(&approver).map(|h| &h.kind)
            && let Some(program) = argv.first()
            && let Err(why) = find_program(program, base)
        {
            problems.push(format!(
                "approver {approver}: hook program `{program}` {why}"
            ));
        }
    }
    for name in stores {
        let Some(store) = plan.plan().stores.get(&name) else {
            continue;
        };
        for (key, raw) in &store.options {
            if let OptionValue::File(file) = OptionValue::parse(raw) {
                let path = base.join(&file);
                if !path.is_file() {
                    problems.push(format!(
                        "store {name}: option `{key}` names secret file {}, which does not exist",
                        path.display()
                    ));
                }
            }
        }
    }
    problems
}

/// Where `program` would be run from, or why it cannot be: a name with a `/` is a path
/// (relative to the plan's directory), a bare name is looked up on `PATH`.
pub(crate) fn find_program(program: &str, base: &Path) -> Result<PathBuf, String> {
    if program.contains('/') {
        let path = if Path::new(program).is_absolute() {
            PathBuf::from(program)
        } else {
            base.join(program)
        };
        return match executable(&path) {
            Ok(()) => Ok(path),
            Err(why) => Err(format!("({}) {why}", path.display())),
        };
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate).is_ok())
        .ok_or_else(|| {
            if base.join(program).is_file() {
                format!("is not found on PATH (for the one beside the plan, write `./{program}`)")
            } else {
                "is not found on PATH".to_owned()
            }
        })
}

fn executable(path: &Path) -> Result<(), &'static str> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Err(_) => Err("does not exist"),
        Ok(m) if !m.is_file() => Err("is not a file"),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err("is not executable (chmod +x it)"),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_is_looked_up_on_path_and_a_script_beside_the_plan_gets_a_hint() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(find_program("sh", dir.path()).is_ok(), "sh is on PATH");
        std::fs::write(dir.path().join("switch.sh"), "#!/bin/sh\n").expect("write");
        let why = find_program("switch.sh", dir.path()).expect_err("not on PATH");
        assert!(why.contains("write `./switch.sh`"), "{why}");
        let why = find_program("./switch.sh", dir.path()).expect_err("not executable");
        assert!(why.contains("is not executable"), "{why}");
        let why = find_program("./absent.sh", dir.path()).expect_err("absent");
        assert!(why.contains("does not exist"), "{why}");
    }
}
