//! Writing each volume manifest the evidence names beside an exported record:
//! `FILE.manifests/<workload>.<claim>.volume.ndjson`, copied byte for byte from the
//! state directory's `volumes/<workload>/<claim>.manifest.ndjson` (the very file
//! whose digest and root the evidence signs). Reading and checking them is the
//! verifier's ([`relocate_verifier::signed_volumes`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use connectors::signoff::dsse::Envelope;
use connectors::signoff::statement::parse_evidence;
use relocate_verifier::signed_volumes::volume_file_name;

use super::AuditError;
use crate::state::StateDir;

/// `(workload, claim)` of every volume any evidence names.
pub fn named_volumes(envelopes: &[Envelope]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for envelope in envelopes {
        let Ok((_, evidence)) = parse_evidence(envelope) else {
            continue;
        };
        for w in evidence.workloads {
            for v in w.volumes {
                out.insert((w.name.clone(), v.claim));
            }
        }
    }
    out
}

/// Where the state directory keeps a volume's latest manifest.
pub fn state_manifest(state: &StateDir, workload: &str, claim: &str) -> PathBuf {
    state
        .volumes_dir()
        .join(workload)
        .join(format!("{claim}.manifest.ndjson"))
}

/// Copy one volume's manifest into `dir`; the file name written.
pub fn export(
    state: &StateDir,
    workload: &str,
    claim: &str,
    dir: &Path,
) -> Result<String, AuditError> {
    let volume = format!("{workload}/{claim}");
    let name = volume_file_name(workload, claim).ok_or_else(|| AuditError::UnsafeVolumeName {
        volume: volume.clone(),
    })?;
    let from = state_manifest(state, workload, claim);
    let to = dir.join(&name);
    std::fs::copy(&from, &to).map_err(|source| AuditError::VolumeManifest {
        volume,
        path: from,
        source,
    })?;
    Ok(name)
}
