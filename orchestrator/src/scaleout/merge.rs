//! Merge shard results into the coordinator's database, range by range.
//!
//! A shard's result is taken only when it is this order's (the order digest it names),
//! for this shard's range (the order's, never the one the result claims), and its
//! `result.ndjson` hashes to the digest its `result.json` gives; a verify's rows must
//! keep every copied object's size and source hash. Then its rows replace every row of
//! the range in one transaction: rows the worker pruned, failed or verified arrive as
//! the worker left them, and nothing outside the range can be touched (a row outside
//! it refuses the whole shard). The workload's rows are then what an in-process run
//! leaves, and the manifest written from them, and its Merkle root, are byte for byte
//! the same.

use std::sync::Arc;

use object_store::ObjectStore;

use super::ScaleError;
use super::exchange::{self, row_pages};
use super::order::{Layout, ShardTask};
use super::result::ShardResult;
use super::split::PlannedShard;
use crate::state::{Db, blocking};

/// Read shard `index`'s result; `None` when the worker has not finished it.
pub async fn read_result(
    store: &Arc<dyn ObjectStore>,
    layout: &Layout,
    index: u32,
) -> Result<Option<ShardResult>, ScaleError> {
    exchange::get_json(store, &layout.result(index), "shard result").await
}

/// Why a result is not merged (the shard then runs again).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// It is another order's, or claims another range.
    #[error("its result is of another order or range")]
    Foreign,
    /// Its rows do not hash to its report's digest, or leave the range.
    #[error("{0}")]
    Corrupt(String),
    /// A verify's rows change what was copied.
    #[error("its verify rows change the copied object {0:?}")]
    ChangedSource(String),
}

/// Replace the rows of `shard`'s range with its result's rows; returns how many.
pub async fn merge_shard(
    store: &Arc<dyn ObjectStore>,
    layout: &Layout,
    db: &Db,
    workload: &str,
    (task, order_digest, shard): (ShardTask, &str, &PlannedShard),
    result: &ShardResult,
) -> Result<Result<u64, Refused>, ScaleError> {
    if result.order_digest != order_digest
        || result.range != shard.range
        || result.index != shard.index
    {
        return Ok(Err(Refused::Foreign));
    }
    let path = layout.result_rows(shard.index);
    let Some((file, digest)) = exchange::download(store, &path).await? else {
        return Ok(Err(Refused::Corrupt(format!(
            "{path}: result.json is there but its rows are not"
        ))));
    };
    if digest != result.rows_digest {
        return Ok(Err(Refused::Corrupt(format!(
            "{path}: its rows hash to sha256:{digest}, the worker's report says sha256:{}: not merged",
            result.rows_digest
        ))));
    }
    if task == ShardTask::Verify {
        let mut pages = row_pages(file.path(), path.as_ref())?;
        while let Some(page) = pages()? {
            if let Some(key) = db.first_changed_source(workload, &page)? {
                return Ok(Err(Refused::ChangedSource(key)));
            }
        }
    }
    let pages = row_pages(file.path(), path.as_ref())?;
    let db = db.clone();
    let (workload, range) = (workload.to_owned(), shard.range.clone());
    match blocking(move || db.replace_range(&workload, &range, pages)) {
        Ok(n) => Ok(Ok(n)),
        Err(crate::state::StateError::Corrupt { detail, .. }) => {
            Ok(Err(Refused::Corrupt(format!("{path}: {detail}"))))
        }
        Err(e) => Err(e.into()),
    }
}
