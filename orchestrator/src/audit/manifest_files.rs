//! Writing a workload's manifest beside an exported record (`FILE.manifests/`):
//! `<workload>.<algorithm>sums` (GNU `sha256sum` format, byte for byte the file whose
//! digest the evidence names) and `<workload>.sizes`. Reading them back is the
//! verifier's ([`relocate_verifier::manifest`]).

use std::path::Path;

use relocate_verifier::manifest::file_names;
use relocate_verifier::record::ManifestRef;

use super::AuditError;
use crate::state::Db;
use crate::transfer::TransferError;
use crate::transfer::manifest::write_manifest_files;

/// Write a workload's manifest from the state, a page at a time.
pub fn export(
    db: &Db,
    workload: &str,
    algorithm: &str,
    dir: &Path,
) -> Result<ManifestRef, AuditError> {
    let (sums_name, sizes_name) = file_names(workload, algorithm);
    let (sums_path, sizes_path) = (dir.join(sums_name), dir.join(sizes_name));
    let summary = write_manifest_files(db, workload, algorithm, &sums_path, Some(&sizes_path))
        .map_err(|e| match e {
            TransferError::Manifest { path, source } => AuditError::Io { path, source },
            TransferError::State(s) => AuditError::State(s),
            other => AuditError::Io {
                path: sums_path.clone(),
                source: std::io::Error::other(other.to_string()),
            },
        })?;
    Ok(ManifestRef {
        workload: workload.to_owned(),
        algorithm: algorithm.to_owned(),
        objects: summary.objects,
        digest: summary.file_digest,
        root: summary.root,
    })
}
