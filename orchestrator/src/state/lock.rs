//! One `relocate run` per state directory at a time.
//!
//! An OS file lock (`flock`) on `<state>/lock`: the kernel drops it when the holder dies,
//! so a lock left by a `kill -9`ed run is never stale. The holder's PID and start time
//! are written into the file so the refusal can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use super::StateError;

/// Held for the lifetime of a run; released on drop or process death.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Take the lock or say who holds it.
    pub fn acquire(path: &Path) -> Result<Self, StateError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| StateError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(StateError::Locked {
                    path: path.to_path_buf(),
                    holder: holder.trim().to_owned(),
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(StateError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        let stamp = format!(
            "pid {} since {}\n",
            std::process::id(),
            chrono::Utc::now().to_rfc3339()
        );
        let io = |source| StateError::Io {
            path: path.to_path_buf(),
            source,
        };
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(stamp.as_bytes()).map_err(io)?;
        Ok(Self { _file: file })
    }

    /// Who holds the lock at `path` (the holder's stamp), or `None` when no live run
    /// does: a run killed with `kill -9` holds nothing, whatever its rows still say.
    ///
    /// Probed with a shared lock taken and dropped at once, so a reader never keeps a
    /// run out for longer than that instant.
    pub fn holder(path: &Path) -> Option<String> {
        let mut file = File::open(path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Some(holder.trim().to_owned())
            }
            Err(TryLockError::Error(_)) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = RunLock::acquire(&path).unwrap();
        let err = RunLock::acquire(&path).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(RunLock::holder(&path).is_some_and(|h| h.contains("pid")));
        drop(first);
        assert_eq!(RunLock::holder(&path), None);
        RunLock::acquire(&path).unwrap();
    }
}
