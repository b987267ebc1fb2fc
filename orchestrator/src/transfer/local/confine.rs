//! Paths inside a local target, opened without ever following a symbolic link.
//!
//! A path like `root/a/b/key` resolved by the kernel in one call follows any link on the
//! way: with `root/a` replaced by a link to another directory, a copy wrote there and a
//! prune deleted a file outside the target. Here the target's root is opened once (it
//! may itself be a link: the plan names it), and every directory below it is opened
//! relative to the one above with `O_NOFOLLOW`, so a link anywhere below the root is
//! refused with an error naming it. The object itself is then created, renamed and
//! removed relative to its directory (`openat`, `renameat`, `unlinkat`), which act on a
//! link's own name and never on what it points to.
//!
//! The same directory handle makes the rename durable: `fsync` on it after the rename.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use rustix::io::Errno;

/// The directory that holds one object of a local target, opened without links.
#[derive(Debug)]
pub(crate) struct Parent {
    fd: OwnedFd,
    /// The directory's path, for messages.
    pub(crate) path: PathBuf,
}

/// Open the directory holding `path` (under `root`) and return it with the object's
/// file name. Missing directories are created when `create`; otherwise a missing one is
/// `NotFound`. A symbolic link below `root` is an error naming it.
pub(crate) fn parent(root: &Path, path: &Path, create: bool) -> io::Result<(Parent, OsString)> {
    let below = path.strip_prefix(root).map_err(|_| {
        io::Error::other(format!(
            "{} is not inside the target {}",
            path.display(),
            root.display()
        ))
    })?;
    let mut parts: Vec<&OsStr> = Vec::new();
    for c in below.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            other => {
                return Err(io::Error::other(format!(
                    "{}: unexpected path component {other:?}",
                    path.display()
                )));
            }
        }
    }
    let Some(name) = parts.pop() else {
        return Err(io::Error::other(format!(
            "{}: no file name",
            path.display()
        )));
    };
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut fd = rustix::fs::openat(CWD, root, dir_flags, Mode::empty())
        .map_err(|e| with_path(e.into(), root))?;
    let mut here = root.to_path_buf();
    for part in parts {
        here.push(part);
        fd = open_below(&fd, part, &here, create)?;
    }
    Ok((Parent { fd, path: here }, name.to_owned()))
}

/// Open one directory below `dir` without following a link, creating it when asked.
fn open_below(dir: &OwnedFd, part: &OsStr, here: &Path, create: bool) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut made = false;
    loop {
        match rustix::fs::openat(dir, part, flags, Mode::empty()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create && !made => {
                match rustix::fs::mkdirat(dir, part, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(Errno::EXIST) => made = true,
                    Err(e) => return Err(with_path(e.into(), here)),
                }
            }
            Err(Errno::LOOP | Errno::NOTDIR) if is_link(dir, part) => {
                return Err(link_error(here));
            }
            Err(e) => return Err(with_path(e.into(), here)),
        }
    }
}

fn is_link(dir: &OwnedFd, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// The error for a link met inside a target.
pub(crate) fn link_error(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{}: a symbolic link inside the target; relocate never follows one there \
         (replace it with the directory or file itself)",
        path.display()
    ))
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Parent {
    /// Create `name` in this directory; it must not exist (not even as a link).
    pub(crate) fn create_new(&self, name: &OsStr) -> io::Result<File> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o666))
            .map(File::from)
            .map_err(io::Error::from)
    }

    /// Rename `from` to `to` in this directory (replacing `to`, link or not, never
    /// what a link points to).
    pub(crate) fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to).map_err(|e| self.error(e, to))
    }

    /// Remove `name` from this directory; a missing file is not an error here.
    pub(crate) fn remove(&self, name: &OsStr) -> io::Result<()> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(self.error(e, name)),
        }
    }

    /// Make the directory's entries (a rename into it) durable.
    pub(crate) fn sync(&self) -> io::Result<()> {
        rustix::fs::fsync(&self.fd).map_err(|e| with_path(e.into(), &self.path))
    }

    fn error(&self, e: Errno, name: &OsStr) -> io::Error {
        with_path(e.into(), &self.path.join(name))
    }
}

/// Remove the object at `path` (under `root`) without following any link on the way;
/// `Ok(false)` when it was not there.
pub(crate) fn remove(root: &Path, path: &Path) -> io::Result<bool> {
    let (parent, name) = match parent(root, path, false) {
        Ok(found) => found,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match rustix::fs::statat(&parent.fd, &name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(parent.error(e, &name)),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            return Err(io::Error::other(format!(
                "{}: a directory where an object was expected",
                parent.path.join(&name).display()
            )));
        }
        Ok(_) => {}
    }
    parent.remove(&name)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn creates_directories_and_refuses_links_below_the_root() {
        let (root, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (p, name) = parent(root.path(), &root.path().join("a/b/k"), true).unwrap();
        assert_eq!(name, "k");
        assert!(root.path().join("a/b").is_dir());
        drop(p);
        symlink(elsewhere.path(), root.path().join("l")).unwrap();
        let err = parent(root.path(), &root.path().join("l/k"), true).unwrap_err();
        assert!(err.to_string().contains("never follows"), "{err}");
        let err = remove(root.path(), &root.path().join("l/k")).unwrap_err();
        assert!(err.to_string().contains("never follows"), "{err}");
        assert!(parent(root.path(), &root.path().join("x/k"), false).is_err());
    }

    #[test]
    fn a_link_as_the_object_is_replaced_or_removed_not_followed() {
        let (root, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let outside = elsewhere.path().join("victim");
        std::fs::write(&outside, b"keep").unwrap();
        symlink(&outside, root.path().join("k")).unwrap();
        assert!(remove(root.path(), &root.path().join("k")).unwrap());
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
    }
}
