//! The state database: schema, opening, and the errors of everything under `state/`.
//!
//! SQLite in WAL mode with `synchronous=NORMAL`: a committed transaction survives a
//! process crash (`kill -9`), readers (`relocate status`) never block the writer, and
//! object rows are written in batched transactions so the database is never the
//! bottleneck of a copy.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per object per workload: what was listed at the source, what was copied
-- (with its source hash), and what verify found at the target.
CREATE TABLE IF NOT EXISTS objects (
    workload     TEXT NOT NULL,
    key          TEXT NOT NULL,
    size         INTEGER NOT NULL,
    etag         TEXT,
    modified     TEXT,
    algorithm    TEXT,
    source_hash  TEXT,
    target_hash  TEXT,
    status       TEXT NOT NULL,
    epoch        INTEGER NOT NULL,
    error        TEXT,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (workload, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS stages (
    stage_index      INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    status           TEXT NOT NULL,
    evidence_digest  TEXT,
    evidence_path    TEXT,
    started_at       TEXT,
    finished_at      TEXT,
    detail           TEXT
);

CREATE TABLE IF NOT EXISTS steps (
    stage_index  INTEGER NOT NULL,
    step_index   INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    workload     TEXT,
    status       TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    summary      TEXT,
    error        TEXT,
    PRIMARY KEY (stage_index, step_index)
);

-- Append-only: evidence and approvals in the order they happened. This is the
-- tamper-evident record `relocate record export` writes out.
CREATE TABLE IF NOT EXISTS record (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    stage       TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    approver    TEXT,
    decision    TEXT,
    reason      TEXT,
    digest      TEXT NOT NULL,
    envelope    TEXT NOT NULL,
    at          TEXT NOT NULL
);

-- Free-form per-workload state of side-effecting steps (e.g. frozen replica counts),
-- written before the effect so a crash can be undone.
CREATE TABLE IF NOT EXISTS workload_state (
    workload  TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (workload, name)
) WITHOUT ROWID;
"#;

/// Errors of the state directory and database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A file or directory of the state could not be read or written.
    #[error("state file {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database refused an operation.
    #[error("state database: {source}")]
    Sql {
        /// The cause.
        #[from]
        source: rusqlite::Error,
    },
    /// Another `relocate run` holds the state directory.
    #[error("another relocate run holds {} ({holder}); wait for it to finish or stop it", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it.
        holder: String,
    },
    /// The state was created for a different plan.
    #[error(
        "state in {} belongs to plan digest {recorded}, but this plan is {current}; the record is bound to the plan it started with: restore that plan or use another --state-dir",
        dir.display()
    )]
    PlanChanged {
        /// The state directory.
        dir: PathBuf,
        /// Digest recorded at the first run.
        recorded: String,
        /// Digest of the plan given now.
        current: String,
    },
    /// The database was written by a newer relocate.
    #[error(
        "state schema version {found} is newer than this relocate understands ({SCHEMA_VERSION}); upgrade relocate"
    )]
    SchemaTooNew {
        /// Version found.
        found: i64,
    },
    /// A batch of object rows could not be written (disk full, read-only state
    /// directory); what was committed before is intact and a rerun resumes from it.
    #[error("cannot write the state database (disk full or read-only?): {detail}")]
    WriteFailed {
        /// The database's own message.
        detail: String,
    },
    /// A stored value could not be decoded.
    #[error("state database holds an unreadable {what}: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// An operator key (the state's or `--operator-key`) cannot be read or installed.
    #[error("operator key {}: {source}", path.display())]
    OperatorKey {
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: connectors::signoff::SignoffError,
    },
    /// The plan or `--operator-key` names another operator key than the state's.
    #[error(
        "the state in {} signs with operator key {found}, but {by} is operator key {wanted}: use this operator's state directory (--state-dir) or the matching key",
        dir.display()
    )]
    OperatorKeyMismatch {
        /// The state directory.
        dir: PathBuf,
        /// Key id of the state's (or the given) key.
        found: String,
        /// What asks for another key (`the plan's operator.publicKey`, `--operator-key FILE`).
        by: String,
        /// Key id of the key asked for.
        wanted: String,
    },
    /// The plan pins an operator key and the state has none yet.
    #[error(
        "the plan pins operator key {pinned} (`operator.publicKey`) and the state in {} has no operator key yet: pass `--operator-key FILE` (the secret key whose `.pub` the plan pins), which the first run copies into the state directory",
        dir.display()
    )]
    OperatorKeyMissing {
        /// The state directory.
        dir: PathBuf,
        /// Key id of the pinned key.
        pinned: String,
    },
}

/// A handle on the state database, cheap to clone and safe to share between tasks.
///
/// Calls are short and synchronous, and announced to the async runtime as blocking
/// (see [`blocking`]); the copy pipeline batches its writes (see
/// [`super::ObjectWriter`]) so the lock is never held for long.
#[derive(Debug, Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Open (creating if needed) the database at `path` for a run.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let conn = Connection::open(path)?;
        Self::configure(&conn)?;
        conn.execute_batch(SCHEMA)?;
        let found: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match found.and_then(|v| v.parse::<i64>().ok()) {
            Some(v) if v > SCHEMA_VERSION => return Err(StateError::SchemaTooNew { found: v }),
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )?;
            }
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Open an existing database read-only (for `status`, while a run may be writing).
    pub fn open_read_only(path: &Path) -> Result<Self, StateError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn configure(conn: &Connection) -> Result<(), StateError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(())
    }

    /// Lock the connection for a short synchronous operation.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A poisoned mutex means a panic while holding it; the connection itself is still
        // consistent (SQLite rolls back open transactions), so keep going.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read a meta value.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StateError> {
        blocking(|| {
            Ok(self
                .conn()
                .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                    r.get(0)
                })
                .optional()?)
        })
    }

    /// Write a meta value.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StateError> {
        blocking(|| {
            self.conn().execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
            Ok(())
        })
    }

    /// Bind the state to a plan digest at first use; refuse a different plan later.
    pub fn bind_plan(&self, dir: &Path, digest: &str, name: &str) -> Result<(), StateError> {
        match self.meta("plan_digest")? {
            Some(recorded) if recorded != digest => Err(StateError::PlanChanged {
                dir: dir.to_path_buf(),
                recorded,
                current: digest.to_owned(),
            }),
            Some(_) => Ok(()),
            None => {
                self.set_meta("plan_digest", digest)?;
                self.set_meta("plan_name", name)
            }
        }
    }

    /// Per-workload side-effect state (e.g. frozen replica counts).
    pub fn workload_state(&self, workload: &str, name: &str) -> Result<Option<String>, StateError> {
        blocking(|| {
            Ok(self
                .conn()
                .query_row(
                    "SELECT value FROM workload_state WHERE workload = ?1 AND name = ?2",
                    params![workload, name],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    /// Forget per-workload side-effect state (after it was undone).
    pub fn clear_workload_state(&self, workload: &str, name: &str) -> Result<(), StateError> {
        blocking(|| {
            self.conn().execute(
                "DELETE FROM workload_state WHERE workload = ?1 AND name = ?2",
                params![workload, name],
            )?;
            Ok(())
        })
    }

    /// Record per-workload side-effect state (before the effect).
    pub fn set_workload_state(
        &self,
        workload: &str,
        name: &str,
        value: &str,
    ) -> Result<(), StateError> {
        blocking(|| {
            self.conn().execute(
                "INSERT OR REPLACE INTO workload_state (workload, name, value) VALUES (?1, ?2, ?3)",
                params![workload, name, value],
            )?;
            Ok(())
        })
    }
}

/// Run a blocking state call from anywhere, async tasks included: inside the
/// multi-thread runtime it is announced with `block_in_place`, so the runtime moves its
/// other tasks off this worker while SQLite (or the mutex, or a full writer queue)
/// blocks it. Every `Db` method goes through this.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Now, as stored in the database.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_refuses_another_plan() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.db")).unwrap();
        db.bind_plan(dir.path(), "sha256:aa", "p").unwrap();
        db.bind_plan(dir.path(), "sha256:aa", "p").unwrap();
        let err = db.bind_plan(dir.path(), "sha256:bb", "p").unwrap_err();
        assert!(matches!(err, StateError::PlanChanged { .. }), "{err}");
        assert!(err.to_string().contains("sha256:aa"));
    }

    #[test]
    fn finding_14_a_blocked_database_call_does_not_stall_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.db")).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // Another thread holds the connection (a long transaction) for 600 ms.
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let holder = {
            let db = db.clone();
            std::thread::spawn(move || {
                let _conn = db.conn();
                held_tx.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(600));
            })
        };
        held_rx.recv().unwrap();
        let ticked_while_blocked = rt.block_on(async {
            let blocked = tokio::spawn({
                let db = db.clone();
                async move { db.meta("x").map(|_| std::time::Instant::now()) }
            });
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            // With the only worker stuck in SQLite, this timer could not fire in time.
            let ticker = tokio::spawn(async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                std::time::Instant::now()
            });
            let ticked = ticker.await.unwrap();
            let done = blocked.await.unwrap().unwrap();
            ticked < done
        });
        holder.join().unwrap();
        assert!(
            ticked_while_blocked,
            "the runtime stalled behind the database"
        );
    }

    #[test]
    fn reopening_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        Db::open(&path).unwrap().set_meta("x", "1").unwrap();
        assert_eq!(
            Db::open(&path).unwrap().meta("x").unwrap().as_deref(),
            Some("1")
        );
    }
}
