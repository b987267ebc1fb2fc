//! Reading a mover's report, and believing it only when its pod vouches for it.
//!
//! The report lies in the exchange store, which every mover and every worker can write:
//! any of them could rewrite it between the mover's exit and this read. So the mover
//! also leaves a [`TerminationMessage`] (claim, task, the report's SHA-256) as its
//! container's termination message, which the kubelet copies into the pod's status,
//! where only the kubelet and holders of `pods/status` write. A report is accepted only
//! when the exact bytes read hash to what the succeeded pod sealed and the seal names
//! the claim and task the mover was started for.

use connectors::kube::volumes::{MoverExit, MoverJob, succeeded_movers};
use object_store::ObjectStoreExt as _;
use object_store::path::Path;
use sha2::{Digest, Sha256};

use super::{Movers, cluster};
use crate::volumes::mover::{MoverError, MoverReport, TerminationMessage};
use crate::volumes::order::MoverTask;

/// The report of `job`, the mover of `claim`, read from `path` and checked against the
/// termination message of its succeeded pod.
pub(super) async fn accepted_report(
    movers: &Movers,
    job: &MoverJob,
    claim: &str,
    task: MoverTask,
    path: &Path,
) -> Result<MoverReport, MoverError> {
    let (ns, name) = (&movers.namespace, &job.worker.name);
    let failed = |detail: String| MoverError::MoverFailed {
        claim: claim.to_owned(),
        task: task.as_str(),
        namespace: ns.clone(),
        job: name.clone(),
        detail,
    };
    let bytes = match movers.state.get(path).await {
        Ok(got) => got.bytes().await,
        Err(e) => Err(e),
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(failed("it completed without a report".into()));
        }
        Err(source) => {
            return Err(MoverError::State(Box::new(
                crate::scaleout::ScaleError::Store {
                    what: "reading",
                    path: path.to_string(),
                    source,
                },
            )));
        }
    };
    let pods = succeeded_movers(movers.client.clone(), ns, name)
        .await
        .map_err(|e| cluster(claim, e))?;
    let refused = |pod: &str, detail: String| MoverError::ReportRefused {
        claim: claim.to_owned(),
        task: task.as_str(),
        job: format!("{ns}/{name}"),
        pod: pod.to_owned(),
        detail,
    };
    if pods.is_empty() {
        return Err(refused(
            "(none)",
            "no succeeded pod of the Job is left to vouch for it (were its pods deleted?)".into(),
        ));
    }
    let found = hex::encode(Sha256::digest(&bytes));
    for MoverExit { pod, message } in &pods {
        let Some(message) = message else {
            return Err(refused(
                pod,
                format!(
                    "the pod succeeded without a termination message. If `kubectl -n {ns} logs {pod}` has no line `termination message written`, its image predates sealed reports: run the image of this relocate version ({}). If it has that line, the message was removed from the pod's status after the mover wrote it: treat the report as forged",
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        };
        let seal: TerminationMessage = serde_json::from_str(message).map_err(|e| {
            refused(
                pod,
                format!("its termination message is not a mover's seal ({e})"),
            )
        })?;
        if seal.claim != claim || seal.task != task {
            return Err(refused(
                pod,
                format!(
                    "the pod sealed a {} of claim {}, not this {}",
                    seal.task.as_str(),
                    seal.claim,
                    task.as_str()
                ),
            ));
        }
        if seal.report_sha256 != found {
            return Err(refused(
                pod,
                format!(
                    "the report in the exchange store hashes to sha256:{found}, the pod sealed sha256:{}: it was rewritten after the mover exited, by someone holding the exchange store's credentials (rotate them, then rerun the stage)",
                    seal.report_sha256
                ),
            ));
        }
    }
    let report: MoverReport = serde_json::from_slice(&bytes)
        .map_err(|e| failed(format!("its report is not a mover report: {e}")))?;
    // Sealed by the pod, and still only the mover's if it names what it was started for.
    if report.claim != claim || report.task != task {
        return Err(failed(format!(
            "its report is for the {} of claim {}, not this {}",
            report.task.as_str(),
            report.claim,
            task.as_str()
        )));
    }
    Ok(report)
}
