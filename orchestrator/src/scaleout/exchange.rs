//! Rows and JSON documents in the state store: written streamed and hashed, read back
//! through a local file so the database import runs in one blocking transaction
//! whatever the row count.

use std::io::{BufRead, Write};

use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

use super::ScaleError;
use crate::state::{Db, ShardRow};
use crate::transfer::KeyRange;

/// Rows per page read from the database or handed to it.
pub const PAGE: usize = 4096;

fn store_err(what: &'static str, path: &Path) -> impl FnOnce(object_store::Error) -> ScaleError {
    let path = path.to_string();
    move |source| ScaleError::Store { what, path, source }
}

/// Write `workload`'s rows in `range` (only those updated since `since`, when given)
/// to `path` as NDJSON, in key order; returns the rows written and the file's SHA-256.
pub async fn upload_rows(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    db: &Db,
    workload: &str,
    range: &KeyRange,
    since: Option<&str>,
) -> Result<(u64, String), ScaleError> {
    let mut out = BufWriter::new(store.clone(), path.clone());
    let mut hasher = Sha256::new();
    let (mut rows, mut after): (u64, Option<String>) = (0, None);
    loop {
        let page = db.range_rows(workload, range, after.as_deref(), since, PAGE)?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        let mut buf = Vec::with_capacity(page.len() * 160);
        for row in &page {
            serde_json::to_writer(&mut buf, row).map_err(|e| ScaleError::Io {
                what: "encoding a row".into(),
                source: e.into(),
            })?;
            buf.push(b'\n');
        }
        hasher.update(&buf);
        rows += page.len() as u64;
        out.write_all(&buf).await.map_err(|source| ScaleError::Io {
            what: format!("writing {path}"),
            source,
        })?;
    }
    out.shutdown().await.map_err(|source| ScaleError::Io {
        what: format!("writing {path}"),
        source,
    })?;
    Ok((rows, hex::encode(hasher.finalize())))
}

/// Read `path` into a local temporary file; `None` when it does not exist. Returns the
/// file and its SHA-256.
pub async fn download(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<Option<(tempfile::NamedTempFile, String)>, ScaleError> {
    use futures::TryStreamExt;
    let got = match store.get(path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store_err("reading", path)(e)),
    };
    let io = |source| ScaleError::Io {
        what: format!("keeping a local copy of {path}"),
        source,
    };
    let mut file = tempfile::NamedTempFile::new().map_err(io)?;
    let mut hasher = Sha256::new();
    let mut body = got.into_stream();
    while let Some(chunk) = body.try_next().await.map_err(store_err("reading", path))? {
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(io)?;
    }
    file.flush().map_err(io)?;
    Ok(Some((file, hex::encode(hasher.finalize()))))
}

/// The rows of a downloaded NDJSON file, a page at a time (blocking reads).
pub fn row_pages(
    file: &std::path::Path,
    name: &str,
) -> Result<impl FnMut() -> Result<Option<Vec<ShardRow>>, crate::state::StateError>, ScaleError> {
    let reader = std::io::BufReader::new(std::fs::File::open(file).map_err(|source| {
        ScaleError::Io {
            what: format!("reading {name}"),
            source,
        }
    })?);
    let mut lines = reader.lines();
    let name = name.to_owned();
    let mut line_no = 0u64;
    Ok(move || {
        let mut page = Vec::new();
        for line in lines.by_ref() {
            line_no += 1;
            let corrupt = |detail: String| crate::state::StateError::Corrupt {
                what: "shard rows",
                detail: format!("{name} line {line_no}: {detail}"),
            };
            let line = line.map_err(|e| corrupt(e.to_string()))?;
            if line.is_empty() {
                continue;
            }
            page.push(serde_json::from_str(&line).map_err(|e| corrupt(e.to_string()))?);
            if page.len() == PAGE {
                break;
            }
        }
        Ok((!page.is_empty()).then_some(page))
    })
}

/// Write a JSON document.
pub async fn put_json<T: serde::Serialize>(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    value: &T,
) -> Result<(), ScaleError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| ScaleError::Io {
        what: format!("encoding {path}"),
        source: e.into(),
    })?;
    store
        .put(path, PutPayload::from(bytes))
        .await
        .map_err(store_err("writing", path))?;
    Ok(())
}

/// Read a JSON document; `None` when it does not exist.
pub async fn get_json<T: serde::de::DeserializeOwned>(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    what: &'static str,
) -> Result<Option<T>, ScaleError> {
    let bytes = match store.get(path).await {
        Ok(got) => got.bytes().await.map_err(store_err("reading", path))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store_err("reading", path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ScaleError::Corrupt {
            path: path.to_string(),
            what,
            detail: e.to_string(),
        })
}

/// Whether an object exists.
pub async fn exists(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<bool, ScaleError> {
    match store.head(path).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(store_err("looking up", path)(e)),
    }
}

/// Remove an object (gone already is fine).
pub async fn remove(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<(), ScaleError> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(store_err("removing", path)(e)),
    }
}

/// Put an empty marker object.
pub async fn touch(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<(), ScaleError> {
    store
        .put(path, PutPayload::from_static(b""))
        .await
        .map_err(store_err("writing", path))?;
    Ok(())
}

/// Load the rows of `path` into `db` (upsert); returns whether the file existed.
pub async fn load_rows(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    db: &Db,
    workload: &str,
) -> Result<bool, ScaleError> {
    let Some((file, _)) = download(store, path).await? else {
        return Ok(false);
    };
    let mut pages = row_pages(file.path(), path.as_ref())?;
    while let Some(page) = pages()? {
        db.upsert_rows(workload, &page)?;
    }
    Ok(true)
}
