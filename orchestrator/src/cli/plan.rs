//! `relocate plan validate|show|schema`: check and explain a plan, changing nothing.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use bytesize::ByteSize;
use connectors::store::{Access, open_store, preflight};
use futures::StreamExt;
use plans::{Step, ValidatedPlan};

use super::{StateArgs, load_plan};
use crate::cli::output::outln;
use crate::exit;
use crate::state::Db;
use crate::transfer::KeyFilter;
use crate::transfer::local::{Links, is_staging_name, list_store};

/// `relocate plan show` arguments.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// State directory (to say what is already done).
    #[command(flatten)]
    pub state: StateArgs,
    /// Do not list the stores (explain the plan only).
    #[arg(long)]
    pub offline: bool,
}

/// Validate and say so.
pub(crate) fn validate(path: &std::path::Path) -> anyhow::Result<u8> {
    let plan = super::load_plan_warning(path)?;
    let p = plan.plan();
    outln!(
        "{}: valid — plan {} ({}), {} → {}, {} stage(s), {} workload(s), {} approver(s)",
        path.display(),
        p.name,
        plan.digest(),
        p.source,
        p.target,
        p.stages.len(),
        p.workloads.len(),
        p.approvers.len()
    );
    Ok(exit::SUCCESS)
}

/// Print the JSON Schema.
pub(crate) fn schema() -> anyhow::Result<u8> {
    outln!("{}", serde_json::to_string_pretty(&plans::json_schema())?);
    Ok(exit::SUCCESS)
}

/// Explain the plan and, unless offline, what the object steps would move.
pub(crate) async fn show(args: &ShowArgs) -> anyhow::Result<u8> {
    let plan = load_plan(&args.plan)?;
    let p = plan.plan();
    let region = |r: &str| {
        p.regions
            .get(r)
            .map(|x| format!("{r} ({})", x.jurisdiction))
            .unwrap_or_else(|| r.to_owned())
    };
    outln!("plan {} ({})", p.name, plan.digest());
    outln!("moves {} → {}", region(&p.source), region(&p.target));
    if let Some(res) = &p.residency {
        outln!(
            "residency: writes only to {}",
            res.allowed_target_jurisdictions.join(", ")
        );
    }
    let state = super::state_dir(&args.state, &plan);
    let db = if state.exists() {
        Some(Db::open_read_only(&state.db_path())?)
    } else {
        None
    };
    let mut listed = std::collections::BTreeSet::new();
    let mut frozen = std::collections::BTreeSet::new();
    for (i, stage) in p.stages.iter().enumerate() {
        let done = db
            .as_ref()
            .and_then(|d| d.stage(i).ok().flatten())
            .map(|r| format!(" [{}]", r.status.as_str()))
            .unwrap_or_default();
        outln!("\nstage {}: {}{done}", i + 1, stage.name);
        for (j, step) in stage.steps.iter().enumerate() {
            if let Step::Freeze(w) = step {
                frozen.insert(w.clone());
            }
            let after_freeze = step.workload().is_some_and(|w| frozen.contains(w));
            outln!("  {}. {}", j + 1, describe(&plan, step, after_freeze));
            if let (Step::Copy(w), false) = (step, args.offline)
                && plan.object_workload(w).is_some()
                && listed.insert(w.clone())
            {
                match dry_run(&plan, w, db.as_ref()).await {
                    Ok(text) => outln!("     {text}"),
                    Err(e) => outln!("     cannot list the stores: {e:#}"),
                }
            }
            if let (Step::Deploy(w), false) = (step, args.offline)
                && listed.insert(w.clone())
            {
                match kube_diff(&plan, w).await {
                    Ok(text) => outln!("{text}"),
                    Err(e) => outln!("     cannot read the source cluster: {e:#}"),
                }
            }
        }
        if let Some(s) = &stage.signoff {
            outln!(
                "  gate: {} of [{}] must sign the stage's evidence",
                s.threshold(),
                s.approvers().join(", ")
            );
        }
    }
    Ok(print_preflight(&plan, db.as_ref()))
}

/// The local pre-flight `run` starts with, for the stages not yet completed: printed,
/// and a failing exit code when `run` would stop on it.
fn print_preflight(plan: &ValidatedPlan, db: Option<&Db>) -> u8 {
    let pending: Vec<usize> = (0..plan.plan().stages.len())
        .filter(|&i| {
            !db.and_then(|d| d.stage(i).ok().flatten())
                .is_some_and(|r| r.status == crate::state::StageStatus::Completed)
        })
        .collect();
    let problems = crate::engine::preflight::local_problems(plan, &pending);
    if problems.is_empty() {
        outln!("\npre-flight: every program, hook and secret file the plan names is in place");
        return exit::SUCCESS;
    }
    outln!("\npre-flight: `relocate run` would stop before moving anything:");
    for p in &problems {
        outln!("  - {p}");
    }
    exit::ERROR
}

/// One step in words; `after_freeze`: the step's workload was frozen by an earlier
/// step (a volume copy is then the final, point-in-time one).
fn describe(plan: &ValidatedPlan, step: &Step, after_freeze: bool) -> String {
    let store = |s: &str| {
        plan.store(s)
            .map(|x| format!("{s} ({})", x.display_url))
            .unwrap_or_else(|| s.to_owned())
    };
    if let Some(text) = step
        .workload()
        .and_then(|w| describe_volumes(plan, step, w, after_freeze, &store))
    {
        return text;
    }
    match step {
        Step::Copy(w) => match plan.object_workload(w) {
            Some(o) => {
                format!(
                    "copy {w}: {} → {}, {} hashed while streaming; only what is missing or changed",
                    store(&o.from),
                    store(&o.to),
                    o.checksum.as_str()
                ) + &selection(o)
            }
            None => format!("copy {w}"),
        },
        Step::Verify(w) => match plan.object_workload(w) {
            Some(o) => format!(
                "verify {w}: re-read every object at {} and compare with the manifest",
                store(&o.to)
            ),
            None => format!("verify {w}"),
        },
        Step::Freeze(w) => {
            let mut text = format!(
                "freeze {w}: record how each source writer stands, then pause KEDA ScaledObjects, \
                 suspend CronJobs and Jobs, switch StatefulSets with `whenScaled: Delete` to \
                 Retain, scale Deployments, ReplicaSets and StatefulSets to zero; refuses \
                 writers it cannot stop (DaemonSets, GitOps-owned, uncontrolled)"
            );
            match plan.kubernetes_workload(w) {
                Some(k) if !k.leave_running.is_empty() || k.gitops_paused => {
                    if !k.leave_running.is_empty() {
                        text.push_str(&format!("; leaves running {}", k.leave_running.join(", ")));
                    }
                    if k.gitops_paused {
                        text.push_str("; GitOps reconciliation declared paused");
                    }
                }
                _ => text.push_str(" unless `leaveRunning` or `gitopsPaused` say so"),
            }
            text
        }
        Step::Deploy(w) => format!(
            "deploy {w}: apply the transformed resources to the target cluster, wait until ready"
        ),
        Step::Rollback(w) => format!(
            "rollback {w}: restore the source first, as recorded (best effort, every failure \
             reported), then stop the target; `relocate rollback --source-only` when the \
             target is unreachable"
        ),
        Step::Run(run) => format!("run {}", run.argv().join(" ")),
    }
}

/// A step of a workload whose claims' data moves (`volumes.copy`), in words.
fn describe_volumes(
    plan: &ValidatedPlan,
    step: &Step,
    w: &str,
    after_freeze: bool,
    store: &dyn Fn(&str) -> String,
) -> Option<String> {
    let (k, v) = plan.volume_workload(w)?;
    let target = format!("{}/{}", k.to, k.target_namespace());
    Some(match step {
        Step::Copy(_) => {
            let how = match (after_freeze, &v.snapshot_class) {
                (true, _) => "the source is frozen: the final, point-in-time copy".to_owned(),
                (false, Some(class)) => {
                    format!("while the source runs, from `{class}` snapshots (point-in-time)")
                }
                (false, None) => {
                    "while the source runs, read live: not point-in-time (the copy after `freeze` counts)".to_owned()
                }
            };
            format!(
                "copy {w}: pack every claim of {}/{} (selected PVCs and StatefulSet claim templates) into {} with a mover Job per claim, every file hashed; {how}",
                k.from,
                k.namespace,
                store(&v.staging)
            )
        }
        Step::Deploy(_) => format!(
            "deploy {w}: create the claims at {target}, restore each from {} with a mover Job and re-read it, compare every root with the packed one; only then apply the transformed resources and wait until ready",
            store(&v.staging)
        ),
        Step::Verify(_) => format!(
            "verify {w}: re-read every claim at {target} with a mover Job and compare its root with the packed one (a claim the started workload mounts keeps the deploy's re-read)"
        ),
        _ => return None,
    })
}

/// `; keys: include […], exclude […]`: which keys of the source the workload takes.
fn selection(o: &plans::ObjectWorkload) -> String {
    let list = |globs: &[String]| {
        globs
            .iter()
            .map(|g| format!("`{g}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let include = if o.include.is_empty() {
        "every key".to_owned()
    } else {
        format!("include {}", list(&o.include))
    };
    let exclude = if o.exclude.is_empty() {
        String::new()
    } else {
        format!(", exclude {}", list(&o.exclude))
    };
    format!("; keys: {include}{exclude}")
}

/// Export from the source cluster, transform, and show what would change (Secret values masked).
async fn kube_diff(plan: &ValidatedPlan, name: &str) -> anyhow::Result<String> {
    use connectors::kube::{connect, export, render_diff, transform};
    let w = plan
        .kubernetes_workload(name)
        .ok_or_else(|| anyhow::anyhow!("no such Kubernetes workload"))?;
    let cluster = plan
        .plan()
        .clusters
        .get(&w.from)
        .ok_or_else(|| anyhow::anyhow!("no cluster {}", w.from))?;
    let client = connect(cluster, plan.base_dir()).await?;
    let resources = export(&client, w).await?;
    let labels = std::collections::BTreeMap::from([(
        "relocate.io/region".to_owned(),
        plan.plan().target.clone(),
    )]);
    let transformed = transform(&resources, &w.transform, &labels)?;
    let mut out = format!(
        "     {} resource(s) exported from {}:",
        resources.len(),
        w.from
    );
    for (s, t) in resources.iter().zip(&transformed) {
        out.push('\n');
        out.push_str(&render_diff(s, t));
    }
    if let Some(target_ns) = w
        .transform
        .namespace
        .as_deref()
        .filter(|t| *t != w.namespace)
    {
        for warning in
            connectors::kube::namespace_rename_warnings(&transformed, &w.namespace, target_ns)
        {
            out.push_str(&format!("\n     rename: {warning}"));
        }
    }
    out.push('\n');
    out.push_str(&kube_dry_run(plan, w, &transformed).await);
    Ok(out)
}

/// The server-side dry run at the target, as lines for `plan show` (problems are shown, not fatal).
async fn kube_dry_run(
    plan: &ValidatedPlan,
    w: &plans::KubernetesWorkload,
    transformed: &[connectors::kube::Resource],
) -> String {
    use connectors::kube::{ApplyOptions, connect, dry_run};
    let Some(cluster) = plan.plan().clusters.get(&w.to) else {
        return format!("     dry run: no cluster {}", w.to);
    };
    let client = match connect(cluster, plan.base_dir()).await {
        Ok(c) => c,
        Err(e) => return format!("     dry run at {}: {e}", w.to),
    };
    match dry_run(&client, transformed, ApplyOptions::from(w)).await {
        Ok(report) => {
            let mut out = format!(
                "     dry run at {}: {} manifest(s) accepted",
                w.to, report.accepted
            );
            if !report.found.is_empty() {
                out.push_str(&format!("; found {}", report.found.join(", ")));
            }
            for notice in report.notices {
                out.push_str(&format!("\n     note: {notice}"));
            }
            out
        }
        Err(connectors::kube::KubeError::DryRunFailed { problems }) => {
            let mut out = format!(
                "     dry run at {} FAILED ({} problem(s); deploy would be refused):",
                w.to,
                problems.len()
            );
            for p in problems {
                out.push_str(&format!("\n       - {p}"));
            }
            out
        }
        Err(e) => format!("     dry run at {}: {e}", w.to),
    }
}

/// List source (and compare with the state) to say what a copy would move.
async fn dry_run(plan: &ValidatedPlan, name: &str, db: Option<&Db>) -> anyhow::Result<String> {
    let w = plan
        .object_workload(name)
        .ok_or_else(|| anyhow::anyhow!("no such object workload"))?;
    let store = plan
        .store(&w.from)
        .ok_or_else(|| anyhow::anyhow!("no store {}", w.from))?;
    let source = open_store(&w.from, store, plan.base_dir(), Access::Read)?;
    preflight(&source).await?;
    if let Some(t) = plan.store(&w.to) {
        match open_store(&w.to, t, plan.base_dir(), Access::Read) {
            Ok(target) => {
                if let Err(e) = preflight(&target).await {
                    outln!("     target {}: {e}", w.to);
                }
            }
            Err(e) => outln!(
                "     target {}: {e} (a local target directory is created by the first copy)",
                w.to
            ),
        }
    }
    let filter = KeyFilter::new(&w.include, &w.exclude)?;
    // A local source through the copy's own walker: object_store's listing hides files
    // named `name#digits` and follows every link, so it would predict a different copy.
    let (mut listing, skipped_links) = match &source.local {
        Some(fs) => {
            let walk = list_store(fs, Links::Source(w.symlinks));
            (
                walk.pages.flat_map(futures::stream::iter).boxed(),
                Some(walk.skipped_links),
            )
        }
        None => (source.store.list(None), None),
    };
    // The copy refuses these by name when either end is a local directory.
    let reserved =
        source.local.is_some() || plan.store_url(&w.to).is_some_and(|u| u.scheme() == "file");
    let mut refused: Vec<String> = Vec::new();
    let (mut objects, mut bytes, mut unchanged, mut unchanged_bytes) = (0u64, 0u64, 0u64, 0u64);
    while let Some(item) = listing.next().await {
        let meta = item.map_err(|e| anyhow::anyhow!(source.redact(&e.to_string())))?;
        if !filter.matches(meta.location.as_ref()) {
            continue;
        }
        objects += 1;
        bytes += meta.size;
        if reserved && meta.location.filename().is_some_and(is_staging_name) {
            refused.push(meta.location.to_string());
        }
        // The same test the copy applies, so `show` predicts exactly what `run` skips.
        let known = match db {
            Some(db) => db
                .object(name, meta.location.as_ref())?
                .map(|row| crate::state::Known::from(&row)),
            None => None,
        };
        if crate::transfer::copy::unchanged(known.as_ref(), &meta) {
            unchanged += 1;
            unchanged_bytes += meta.size;
        }
    }
    let mut text = format!(
        "source has {objects} objects ({}); would copy {} ({}), {unchanged} already copied and unchanged",
        ByteSize::b(bytes).display().iec(),
        objects - unchanged,
        ByteSize::b(bytes - unchanged_bytes).display().iec()
    );
    let skipped = skipped_links.map_or(0, |n| n.load(Ordering::Relaxed));
    if skipped > 0 {
        text.push_str(&format!(
            "\n     {skipped} symbolic link(s) skipped (symlinks: skip)"
        ));
    }
    if !refused.is_empty() {
        let shown = refused
            .iter()
            .take(5)
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>();
        text.push_str(&format!(
            "\n     the copy would fail: {} file(s) named like a local staging file (`name#digits`), e.g. {}",
            refused.len(),
            shown.join(", ")
        ));
    }
    Ok(text)
}
