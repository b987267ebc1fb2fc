//! Prune: what a target claim holds that the staged manifest does not name, removed
//! before a restore writes, so that the restored claim equals the manifest (as
//! `rsync --delete` makes a copy equal its source). A claim left by an earlier attempt
//! (restored, rolled back, then files deleted at the source before the delta) or one
//! that already held data would otherwise fail the re-read for ever.
//!
//! A merge, not a set: the manifest lists its paths in walk order ([`super::walk`]:
//! parents first, each directory's names in byte order; [`super::manifest`] refuses a
//! manifest out of it), and the claim is walked in the same order beside it. Memory is
//! one directory's names per open level, the walk's own bound, whatever the number of
//! entries. In each directory, a name on disk that sorts before the manifest's next
//! name there is not named, and is removed; a named entry of another kind (a file
//! where the manifest has a directory, a symlink where it has a directory or a file)
//! is removed too, and the restore makes it anew rather than writing through it.
//! Nothing is followed: a symlink is unlinked as a link, and a directory is removed by
//! [`std::fs::remove_dir_all`], which unlinks the symlinks inside it without
//! following them.
//!
//! A mover running as the volume's user (`runAsUser`) has no `DAC_OVERRIDE`: an
//! earlier restore left the source's read-only directories (0555) read-only, and
//! nothing could be removed or replaced in them. So every directory the merge enters
//! (and a stray tree it cannot remove) gets its owner's `rwx` while the restore writes;
//! the restore's second pass puts every named directory's mode back.

use std::ffi::{OsStr, OsString};
use std::fs::FileType;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::restore::safe_relative;
use super::walk::list;
use super::{Entry, EntryKind, VolumeError};

/// Removed paths named in the summary; the count covers the rest.
pub const REMOVED_SAMPLE: usize = 20;

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Entries removed, each counted once: a directory with everything under it.
    pub removed: u64,
    /// The first [`REMOVED_SAMPLE`] of them, relative to the volume's root.
    pub paths: Vec<String>,
}

/// A directory of the claim the merge is in.
struct Level {
    /// Relative to the root; the root itself is `.`.
    rel: String,
    /// Its names on disk not yet merged, sorted by bytes and reversed (popped in order).
    names: Vec<OsString>,
    /// The manifest's last name in it, to refuse one out of order.
    last: Option<String>,
}

/// Where a manifest path lies relative to the directory the merge is in.
enum Place<'a> {
    /// Directly in it, with this name.
    Child(&'a str),
    /// Below one of its subdirectories, which the manifest has not named first.
    Deeper,
    /// Elsewhere: the directory is done.
    Outside,
}

fn place<'a>(path: &'a str, dir: &str) -> Place<'a> {
    let rest = if dir == "." {
        Some(path)
    } else {
        path.strip_prefix(dir).and_then(|r| r.strip_prefix('/'))
    };
    match rest {
        Some(rest) if path != "." && rest.contains('/') => Place::Deeper,
        Some(rest) if path != "." => Place::Child(rest),
        _ => Place::Outside,
    }
}

/// Remove from the tree under `root` (a resolved directory, not a link) every entry
/// that `manifest` (in walk order, starting with the root) does not name or names as
/// another kind. Blocking: run it off the async threads.
pub(crate) fn prune(
    root: &Path,
    manifest: impl IntoIterator<Item = Result<Entry, VolumeError>>,
) -> Result<Pruned, VolumeError> {
    let mut manifest = manifest.into_iter();
    match manifest.next().transpose()? {
        Some(e) if e.path == "." && e.kind == EntryKind::Dir => {}
        _ => return Err(corrupt("does not start with the volume's root directory")),
    }
    let mut pruned = Pruned::default();
    if let Ok(meta) = std::fs::symlink_metadata(root) {
        owner_may_write(root, &meta);
    }
    let mut stack = vec![Level {
        rel: ".".into(),
        names: list(root, ".")?,
        last: None,
    }];
    let mut next = manifest.next().transpose()?;
    while let Some(top) = stack.last_mut() {
        let Some(entry) = next.take() else {
            finish(root, top, &mut pruned)?;
            stack.pop();
            continue;
        };
        let name = match place(&entry.path, &top.rel) {
            Place::Child(name) => name,
            Place::Deeper => {
                return Err(corrupt(&format!(
                    "names {:?} before its parent directory",
                    entry.path
                )));
            }
            Place::Outside => {
                finish(root, top, &mut pruned)?;
                stack.pop();
                next = Some(entry);
                continue;
            }
        };
        if !safe_relative(&entry.path)
            || top
                .last
                .as_deref()
                .is_some_and(|l| l.as_bytes() >= name.as_bytes())
        {
            return Err(corrupt(&format!("has {:?} out of walk order", entry.path)));
        }
        // Whatever sorts before the name in this directory is not named.
        while let Some(stray) = top.names.pop_if(|d| d.as_bytes() < name.as_bytes()) {
            remove(root, &top.rel, &stray, &mut pruned)?;
        }
        let on_disk = top
            .names
            .pop_if(|d| d.as_bytes() == name.as_bytes())
            .is_some();
        top.last = Some(name.to_owned());
        let mut names = Vec::new();
        if on_disk {
            let full = root.join(&entry.path);
            match std::fs::symlink_metadata(&full) {
                Ok(meta) if !same_kind(meta.file_type(), entry.kind) => {
                    remove(root, &top.rel, OsStr::new(name), &mut pruned)?;
                }
                Ok(meta) if entry.kind == EntryKind::Dir => {
                    owner_may_write(&full, &meta);
                    names = list(&full, &entry.path)?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(VolumeError::Unreadable {
                        path: entry.path,
                        source,
                    });
                }
            }
        }
        if entry.kind == EntryKind::Dir {
            // Its subtree follows in the manifest; an empty listing when the restore
            // makes it anew.
            stack.push(Level {
                rel: entry.path,
                names,
                last: None,
            });
        }
        next = manifest.next().transpose()?;
    }
    if let Some(entry) = next {
        return Err(corrupt(&format!("has {:?} out of walk order", entry.path)));
    }
    Ok(pruned)
}

/// The directory is done: what is left of its names is not in the manifest.
fn finish(root: &Path, level: &mut Level, pruned: &mut Pruned) -> Result<(), VolumeError> {
    while let Some(stray) = level.names.pop() {
        remove(root, &level.rel, &stray, pruned)?;
    }
    Ok(())
}

/// Whether what is on disk is the manifest's kind of entry (a hard link is a file).
fn same_kind(on_disk: FileType, kind: EntryKind) -> bool {
    match kind {
        EntryKind::Dir => on_disk.is_dir(),
        EntryKind::File | EntryKind::HardLink => on_disk.is_file(),
        EntryKind::Symlink => on_disk.is_symlink(),
        EntryKind::Fifo => on_disk.is_fifo(),
        EntryKind::CharDevice => on_disk.is_char_device(),
        EntryKind::BlockDevice => on_disk.is_block_device(),
    }
}

/// Remove `name` in directory `dir` (relative) without following it, and count it.
fn remove(root: &Path, dir: &str, name: &OsStr, pruned: &mut Pruned) -> Result<(), VolumeError> {
    let (full, rel): (PathBuf, String) = if dir == "." {
        (root.join(name), name.to_string_lossy().into_owned())
    } else {
        (
            root.join(dir).join(name),
            format!("{dir}/{}", name.to_string_lossy()),
        )
    };
    let result = match std::fs::symlink_metadata(&full) {
        // `remove_dir_all` does not follow symlinks, neither the top one nor any inside.
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&full).or_else(|e| {
            if e.kind() != std::io::ErrorKind::PermissionDenied {
                return Err(e);
            }
            // A read-only directory inside: lift its owner's bits, then try again.
            unlock_tree(&full);
            std::fs::remove_dir_all(&full)
        }),
        Ok(_) => std::fs::remove_file(&full),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(VolumeError::Remove { path: rel, source }),
    }
    tracing::debug!(path = %rel, "removed: the staged manifest does not name it");
    pruned.removed += 1;
    if pruned.paths.len() < REMOVED_SAMPLE {
        pruned.paths.push(rel);
    }
    Ok(())
}

/// Give the owner of directory `full` (not a link: checked by the caller's
/// `symlink_metadata`) `rwx` when it lacks any of them. Best effort: a mover that does
/// not own it fails at the removal or the write, naming the path.
fn owner_may_write(full: &Path, meta: &std::fs::Metadata) {
    let mode = meta.permissions().mode();
    if meta.is_dir() && mode & 0o700 != 0o700 {
        let lifted = std::fs::Permissions::from_mode((mode | 0o700) & 0o7777);
        if let Err(e) = std::fs::set_permissions(full, lifted) {
            tracing::debug!(path = %full.display(), error = %e, "cannot lift a directory's mode");
        }
    }
}

/// [`owner_may_write`] on every directory of the tree under `full`, links not followed.
fn unlock_tree(full: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(full) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    owner_may_write(full, &meta);
    if let Ok(items) = std::fs::read_dir(full) {
        for item in items.flatten() {
            unlock_tree(&item.path());
        }
    }
}

fn corrupt(why: &str) -> VolumeError {
    VolumeError::Corrupt {
        detail: format!("the manifest {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind) -> Result<Entry, VolumeError> {
        Ok(Entry {
            path: path.into(),
            kind,
            size: 0,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
            mtime_nsec: 0,
            target: None,
            sha256: None,
            rdev: None,
            sparse: false,
            segment: None,
            offset: None,
        })
    }

    fn tree(root: &Path, dirs: &[&str], files: &[&str]) {
        for d in dirs {
            std::fs::create_dir_all(root.join(d)).expect("dir");
        }
        for f in files {
            std::fs::write(root.join(f), f.as_bytes()).expect("file");
        }
    }

    #[test]
    fn names_merge_in_walk_order_not_whole_path_byte_order() {
        // `a/b` sorts after `a-c` by bytes, before it in walk order: a set-free merge
        // must keep both and remove only `a/x` and `z`.
        let dir = tempfile::tempdir().expect("dir");
        tree(dir.path(), &["a"], &["a/b", "a/x", "a-c", "z"]);
        let manifest = vec![
            entry(".", EntryKind::Dir),
            entry("a", EntryKind::Dir),
            entry("a/b", EntryKind::File),
            entry("a-c", EntryKind::File),
        ];
        let pruned = prune(dir.path(), manifest).expect("prune");
        assert_eq!(pruned.removed, 2);
        assert_eq!(pruned.paths, ["a/x", "z"]);
        assert!(dir.path().join("a/b").exists() && dir.path().join("a-c").exists());
        assert!(!dir.path().join("a/x").exists() && !dir.path().join("z").exists());
    }

    #[test]
    fn a_manifest_naming_a_path_before_its_parent_is_refused() {
        // (A manifest out of walk order is refused earlier, by `manifest::root_of`,
        // before anything is removed; the merge still refuses what it cannot place.)
        let dir = tempfile::tempdir().expect("dir");
        tree(dir.path(), &["d"], &["d/f"]);
        let deeper = vec![entry(".", EntryKind::Dir), entry("d/f", EntryKind::File)];
        let err = prune(dir.path(), deeper).expect_err("no parent");
        assert!(matches!(err, VolumeError::Corrupt { .. }), "{err:?}");
        assert!(dir.path().join("d/f").exists());
        let twice = vec![
            entry(".", EntryKind::Dir),
            entry("d", EntryKind::Dir),
            entry("d", EntryKind::Dir),
        ];
        let err = prune(dir.path(), twice).expect_err("twice");
        assert!(matches!(err, VolumeError::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn a_stray_directory_counts_once_and_the_sample_is_bounded() {
        let dir = tempfile::tempdir().expect("dir");
        let files: Vec<String> = (0..30).map(|i| format!("s{i:02}")).collect();
        let names: Vec<&str> = files.iter().map(String::as_str).collect();
        tree(dir.path(), &["old/deep/er"], &names);
        std::fs::write(dir.path().join("old/deep/er/f"), b"x").expect("file");
        let pruned = prune(dir.path(), vec![entry(".", EntryKind::Dir)]).expect("prune");
        assert_eq!(pruned.removed, 31);
        assert_eq!(pruned.paths.len(), REMOVED_SAMPLE);
        assert_eq!(pruned.paths[0], "old");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn a_stray_name_that_is_not_utf8_and_a_stray_socket_are_removed() {
        // A walk refuses both (a pack fails on the one, leaves out the other); a prune
        // of the target must still remove them, or the claim never equals the manifest.
        let dir = tempfile::tempdir().expect("dir");
        let odd = dir.path().join(OsStr::from_bytes(b"caf\xe9"));
        std::fs::write(&odd, b"latin-1").expect("file");
        let _socket =
            std::os::unix::net::UnixListener::bind(dir.path().join("sock")).expect("socket");
        tree(dir.path(), &[], &["kept"]);
        let manifest = vec![entry(".", EntryKind::Dir), entry("kept", EntryKind::File)];
        let pruned = prune(dir.path(), manifest).expect("prune");
        assert_eq!(pruned.removed, 2);
        assert_eq!(pruned.paths, ["caf\u{fffd}", "sock"]);
        assert!(std::fs::symlink_metadata(&odd).is_err());
        assert!(std::fs::symlink_metadata(dir.path().join("sock")).is_err());
        assert!(dir.path().join("kept").exists());
    }

    #[test]
    fn a_restore_report_written_before_prunes_still_parses() {
        let old = r#"{"claim":"c","root":"ab","filesWritten":1,"filesPresent":2,"bytesWritten":3,
            "ownershipNotRestored":0,"ownershipSample":[],"notRecreated":[]}"#;
        let read: super::super::RestoreSummary = serde_json::from_str(old).expect("parses");
        assert_eq!((read.removed, read.removed_paths.len()), (0, 0));
    }

    #[test]
    fn walk_order_puts_a_directory_before_its_contents_and_siblings_by_bytes() {
        use super::super::walk::walk_order;
        use std::cmp::Ordering::Less;
        for (a, b) in [
            (".", "a"),
            ("a", "a/b"),
            ("a/b", "a-c"),
            ("a/z", "b"),
            ("B", "a"),
        ] {
            assert_eq!(walk_order(a, b), Less, "{a} < {b}");
        }
        assert_ne!(walk_order("a", "a"), Less);
    }
}
