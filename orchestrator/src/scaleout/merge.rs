//! Merge shard results into the coordinator's database, range by range.
//!
//! Each shard's `result.ndjson` is checked against the digest in its `result.json`
//! and then replaces every row of its range (one transaction per shard): rows the
//! worker pruned, failed or verified arrive as the worker left them, and nothing
//! outside the range can be touched (a row outside it refuses the whole shard). The
//! workload's rows are then what an in-process run leaves, and the manifest written
//! from them, and its Merkle root, are byte for byte the same.

use std::sync::Arc;

use object_store::ObjectStore;

use super::ScaleError;
use super::exchange::{self, row_pages};
use super::order::Layout;
use super::result::ShardResult;
use crate::state::{Db, blocking};

/// Read shard `index`'s result; `None` when the worker has not finished it.
pub async fn read_result(
    store: &Arc<dyn ObjectStore>,
    layout: &Layout,
    index: u32,
) -> Result<Option<ShardResult>, ScaleError> {
    exchange::get_json(store, &layout.result(index), "shard result").await
}

/// Replace the rows of `result`'s range with the shard's rows.
pub async fn merge_shard(
    store: &Arc<dyn ObjectStore>,
    layout: &Layout,
    db: &Db,
    workload: &str,
    result: &ShardResult,
) -> Result<u64, ScaleError> {
    let path = layout.result_rows(result.index);
    let (file, digest) =
        exchange::download(store, &path)
            .await?
            .ok_or_else(|| ScaleError::Corrupt {
                path: path.to_string(),
                what: "shard result",
                detail: "result.json is there but its rows are not".into(),
            })?;
    if digest != result.rows_digest {
        return Err(ScaleError::Corrupt {
            path: path.to_string(),
            what: "shard result",
            detail: format!(
                "its rows hash to sha256:{digest}, the worker's report says sha256:{}: not merged",
                result.rows_digest
            ),
        });
    }
    let pages = row_pages(file.path(), path.as_ref())?;
    let db = db.clone();
    let (workload, range) = (workload.to_owned(), result.range.clone());
    let merged = blocking(move || db.replace_range(&workload, &range, pages))?;
    Ok(merged)
}
