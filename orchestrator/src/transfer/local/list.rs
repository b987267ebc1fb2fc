//! List a local directory tree on several threads.
//!
//! object_store walks the tree on one thread and looks each file up three times by its
//! full path (`stat` to follow links, `is_file`, then the metadata): on a million
//! files the listing alone took about 12 s and was the whole of a delta copy that found
//! nothing to do. Here directories are read by a few blocking calls at once, the entry
//! type comes from the directory itself, and each file costs one `stat` relative to
//! its directory.
//!
//! Entries are what object_store's listing gives, object for object (the same keys,
//! sizes, modified times and ETags, `"inode-mtime-size"` in hex), with three
//! differences, all so that nothing vanishes without a word:
//! - files named like object_store's staging files (`name#digits`) are listed: object_store
//!   hides them, and a source file or a planted target file of that name would otherwise
//!   go unseen by copy and verify alike;
//! - symbolic links follow [`Links`]: in a source, the workload's `symlinks:` (skipped
//!   with a notice and counted, followed inside the root only, or an error); in a target
//!   never followed, always an error;
//! - a loop is found by the (device, inode) of the directories above, so links between
//!   siblings are caught at once, not after forty levels of `ELOOP`.

use std::fs::{self, Metadata, ReadDir};
use std::os::unix::fs::MetadataExt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::ObjectMeta;
use object_store::path::Path;
use plans::SymlinkPolicy;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::transfer::listing::{PAGE, Page};

/// Directories read at once.
const WORKERS: usize = 4;

/// Entries one blocking call reads before handing back (bounds memory on huge
/// directories).
const ENTRIES_PER_CALL: usize = 4096;

/// Pages waiting for the consumer.
const AHEAD: usize = 4;

/// Skipped links named one by one in the log; past this, only the count.
const NOTICES: u64 = 20;

/// How a walk treats a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// In a source: as the workload's `symlinks:` says.
    Source(SymlinkPolicy),
    /// In a target: never followed; any link is an error naming it.
    Target,
}

/// A walk under way: its pages, and how many links it skipped so far (final once the
/// pages are exhausted).
pub struct Walk {
    /// The listing, a page at a time; an error ends it.
    pub pages: BoxStream<'static, Page>,
    /// Symbolic links left out (`symlinks: skip`).
    pub skipped_links: Arc<AtomicU64>,
}

impl std::fmt::Debug for Walk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walk")
            .field("skipped_links", &self.skipped_links)
            .finish_non_exhaustive()
    }
}

/// What every directory read of one walk shares.
struct Shared {
    /// The root, links resolved: where `follow` may lead.
    root: PathBuf,
    links: Links,
    skipped: Arc<AtomicU64>,
}

/// The directories from the root down to one directory, by (device, inode).
struct Chain {
    id: (u64, u64),
    up: Option<Arc<Chain>>,
}

impl Chain {
    fn contains(chain: Option<&Arc<Chain>>, id: (u64, u64)) -> bool {
        let mut at = chain;
        while let Some(c) = at {
            if c.id == id {
                return true;
            }
            at = c.up.as_ref();
        }
        false
    }
}

fn id_of(m: &Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// Every file under `root`, a page at a time. Dropping the pages stops the walk.
pub fn list(root: PathBuf, links: Links) -> Walk {
    let skipped = Arc::new(AtomicU64::new(0));
    let shared = Arc::new(Shared {
        root: fs::canonicalize(&root).unwrap_or_else(|_| root.clone()),
        links,
        skipped: skipped.clone(),
    });
    let (tx, rx) = mpsc::channel::<Page>(AHEAD);
    tokio::spawn(async move {
        let chain = fs::metadata(&root).ok().map(|m| {
            Arc::new(Chain {
                id: id_of(&m),
                up: None,
            })
        });
        let mut pending = vec![Dir {
            path: root,
            key: String::new(),
            entries: None,
            chain,
        }];
        let mut running: JoinSet<Listed> = JoinSet::new();
        let mut page: Page = Vec::with_capacity(PAGE);
        loop {
            while running.len() < WORKERS {
                let Some(dir) = pending.pop() else { break };
                let shared = shared.clone();
                running.spawn_blocking(move || read_some(dir, &shared));
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let listed = match done {
                Ok(listed) => listed,
                Err(e) => Listed::failed(generic(format!("listing task stopped: {e}"))),
            };
            pending.extend(listed.subdirs);
            pending.extend(listed.rest);
            let mut failed = false;
            for item in listed.files {
                failed |= item.is_err();
                page.push(item);
                if page.len() == PAGE || failed {
                    let full = std::mem::replace(&mut page, Vec::with_capacity(PAGE));
                    if tx.send(full).await.is_err() || failed {
                        return;
                    }
                }
            }
        }
        if !page.is_empty() {
            let _ = tx.send(page).await;
        }
    });
    let pages =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) })
            .boxed();
    Walk {
        pages,
        skipped_links: skipped,
    }
}

/// A directory to read: its path, its key prefix (`""` or `"a/b/"`), where a previous
/// call stopped reading it, and the directories above it.
struct Dir {
    path: PathBuf,
    key: String,
    entries: Option<ReadDir>,
    chain: Option<Arc<Chain>>,
}

/// What one blocking call found.
#[derive(Default)]
struct Listed {
    files: Vec<object_store::Result<ObjectMeta>>,
    subdirs: Vec<Dir>,
    /// The same directory, when it has more entries than one call reads.
    rest: Option<Dir>,
}

impl Listed {
    fn failed(e: object_store::Error) -> Self {
        Listed {
            files: vec![Err(e)],
            ..Default::default()
        }
    }
}

fn generic(message: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: message.into(),
    }
}

/// What to do with one entry of a directory.
enum Entry {
    File(Metadata),
    Dir(Metadata),
    /// Not listed (gone, a skipped link, a socket…).
    Pass,
}

/// Look at one symbolic link as `links` says: the metadata of what it points to when
/// it is followed, `Pass` when it is skipped, an error naming it otherwise.
fn link(path: &FsPath, key: &str, shared: &Shared) -> Result<Entry, object_store::Error> {
    let skip = |why: &str| -> Result<Entry, object_store::Error> {
        let n = shared.skipped.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= NOTICES {
            tracing::warn!("skipping symbolic link `{key}` ({why})");
        } else if n == NOTICES + 1 {
            tracing::warn!("skipping more symbolic links; the step summary counts them all");
        }
        Ok(Entry::Pass)
    };
    match shared.links {
        Links::Target => Err(generic(format!(
            "{}: a symbolic link inside the target; relocate never follows one there \
             (replace it with the directory or file itself)",
            path.display()
        ))),
        Links::Source(SymlinkPolicy::Error) => Err(generic(format!(
            "{}: a symbolic link in the source, and the workload says `symlinks: error`",
            path.display()
        ))),
        Links::Source(SymlinkPolicy::Skip) => skip("symlinks: skip"),
        Links::Source(SymlinkPolicy::Follow) => {
            let resolved = match fs::canonicalize(path) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return skip("it points to nothing");
                }
                Err(e) => return Err(generic(format!("{}: {e}", path.display()))),
            };
            if !resolved.starts_with(&shared.root) {
                return Err(generic(format!(
                    "{}: the link leads out of the source root (to {}); `symlinks: follow` \
                     follows links inside the root only (name that directory as a store of \
                     its own to copy it)",
                    path.display(),
                    resolved.display()
                )));
            }
            match fs::metadata(path) {
                Ok(m) if m.is_dir() => Ok(Entry::Dir(m)),
                Ok(m) if m.is_file() => Ok(Entry::File(m)),
                Ok(_) => Ok(Entry::Pass),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Entry::Pass),
                Err(e) => Err(generic(format!("{}: {e}", path.display()))),
            }
        }
    }
}

fn read_some(mut dir: Dir, shared: &Shared) -> Listed {
    let entries = match dir.entries.take() {
        Some(entries) => entries,
        None => match fs::read_dir(&dir.path) {
            Ok(entries) => entries,
            // Removed while the walk ran: nothing to list.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Listed::default(),
            Err(e) => return Listed::failed(generic(format!("{}: {e}", dir.path.display()))),
        },
    };
    let mut out = Listed::default();
    let mut entries = entries;
    for _ in 0..ENTRIES_PER_CALL {
        let Some(entry) = entries.next() else {
            return out;
        };
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                out.files
                    .push(Err(generic(format!("{}: {e}", dir.path.display()))));
                return out;
            }
        };
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            out.files.push(Err(generic(format!(
                "{}: the file name is not valid UTF-8",
                path.display()
            ))));
            return out;
        };
        let key = format!("{}{name}", dir.key);
        // Gone since the directory was read: not a file, as in object_store's walk. Any
        // other error stops the listing, naming the path.
        let failed = |e: std::io::Error| generic(format!("{}: {e}", path.display()));
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.files.push(Err(failed(e)));
                return out;
            }
        };
        let found = if kind.is_symlink() {
            link(&path, &key, shared)
        } else if kind.is_file() || kind.is_dir() {
            // The entry's own metadata is one `fstatat` in its directory.
            match entry.metadata() {
                Ok(m) if m.is_dir() => Ok(Entry::Dir(m)),
                Ok(m) => Ok(Entry::File(m)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Entry::Pass),
                Err(e) => Err(failed(e)),
            }
        } else {
            Ok(Entry::Pass)
        };
        match found {
            Err(e) => {
                out.files.push(Err(e));
                return out;
            }
            Ok(Entry::Pass) => {}
            Ok(Entry::Dir(m)) => {
                if Chain::contains(dir.chain.as_ref(), id_of(&m)) {
                    out.files.push(Err(generic(format!(
                        "{}: file system loop (it leads back to a directory above it)",
                        path.display()
                    ))));
                    return out;
                }
                out.subdirs.push(Dir {
                    path,
                    key: format!("{key}/"),
                    entries: None,
                    chain: Some(Arc::new(Chain {
                        id: id_of(&m),
                        up: dir.chain.clone(),
                    })),
                });
            }
            Ok(Entry::File(m)) => match Path::parse(&key) {
                Ok(location) => out.files.push(Ok(object_meta(location, &m))),
                Err(source) => {
                    out.files
                        .push(Err(object_store::Error::InvalidPath { source }));
                    return out;
                }
            },
        }
    }
    dir.entries = Some(entries);
    out.rest = Some(dir);
    out
}

/// The listing entry object_store would give for this file.
fn object_meta(location: Path, metadata: &Metadata) -> ObjectMeta {
    let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let micros = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    ObjectMeta {
        location,
        last_modified: modified.into(),
        size: metadata.len(),
        e_tag: Some(format!(
            "\"{:x}-{micros:x}-{:x}\"",
            metadata.ino(),
            metadata.len()
        )),
        version: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;

    use object_store::ObjectStore;
    use object_store::local::LocalFileSystem;

    use super::*;

    async fn walk(root: &std::path::Path, links: Links) -> (Vec<Page>, u64) {
        let walk = list(root.to_path_buf(), links);
        let pages: Vec<Page> = walk.pages.collect().await;
        (pages, walk.skipped_links.load(Ordering::Relaxed))
    }

    async fn ours(root: &std::path::Path, links: Links) -> BTreeMap<String, ObjectMeta> {
        let mut out = BTreeMap::new();
        for meta in walk(root, links).await.0.into_iter().flatten() {
            let meta = meta.unwrap();
            assert!(
                out.insert(meta.location.to_string(), meta).is_none(),
                "listed twice"
            );
        }
        out
    }

    async fn error_of(root: &std::path::Path, links: Links) -> String {
        let pages = walk(root, links).await.0;
        let last = pages.last().unwrap().last().unwrap();
        last.as_ref().unwrap_err().to_string()
    }

    async fn object_stores(root: &std::path::Path) -> BTreeMap<String, ObjectMeta> {
        let fs = LocalFileSystem::new_with_prefix(root).unwrap();
        fs.list(None)
            .map(|m| {
                let m = m.unwrap();
                (m.location.to_string(), m)
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn lists_what_object_store_lists_and_its_hidden_staging_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["a/b/c", "ü space/x", "empty-dir", "big"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "top",
            "a/one",
            "a/b/two",
            "a/b/c/three",
            "ü space/x/quatre fünf",
            "per%cent",
            "hash#tag",
            "stage#12",
        ] {
            fs::write(root.join(f), f.as_bytes()).unwrap();
        }
        // More entries than one call reads, to cover resuming a directory.
        for i in 0..(ENTRIES_PER_CALL + 10) {
            fs::write(root.join(format!("big/f{i}")), b"").unwrap();
        }
        symlink(root.join("a/b"), root.join("link-to-b")).unwrap();
        symlink(root.join("top"), root.join("link-to-top")).unwrap();
        symlink(root.join("nowhere"), root.join("dangling")).unwrap();

        let mut ours = ours(root, Links::Source(SymlinkPolicy::Follow)).await;
        assert!(
            ours.remove("stage#12").is_some(),
            "object_store hides it; relocate must not"
        );
        let theirs = object_stores(root).await;
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>()
        );
        assert_eq!(ours, theirs, "sizes, times and ETags agree");
        assert!(ours.contains_key("link-to-b/c/three"));
        assert!(ours.contains_key("hash#tag"));
    }

    #[tokio::test]
    async fn a_symlink_loop_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a")).unwrap();
        symlink(dir.path(), dir.path().join("a/up")).unwrap();
        let err = error_of(dir.path(), Links::Source(SymlinkPolicy::Follow)).await;
        assert!(err.contains("file system loop"), "{err}");
    }

    /// Issue 13, finding 15: links between siblings (a/l → b, b/l → a) were followed
    /// until the kernel's `ELOOP`, listing the same files again at every level.
    #[tokio::test]
    async fn finding_15_sibling_link_loops_are_found_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["a", "b"] {
            fs::create_dir_all(root.join(d)).unwrap();
            fs::write(root.join(d).join("f"), d).unwrap();
        }
        symlink(root.join("b"), root.join("a/l")).unwrap();
        symlink(root.join("a"), root.join("b/l")).unwrap();
        let (pages, _) = walk(root, Links::Source(SymlinkPolicy::Follow)).await;
        let items: Vec<_> = pages.into_iter().flatten().collect();
        let err = items.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(err.contains("file system loop"), "{err}");
        assert!(
            items.len() <= 5,
            "the loop is caught one level down, not after 40: {} entries",
            items.len()
        );
    }

    /// Issue 13, finding 6: links in a source are skipped and counted by default, an
    /// error on request, and `follow` never leads out of the root.
    #[tokio::test]
    async fn finding_06_source_links_follow_the_workloads_rule() {
        let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let root = dir.path();
        fs::create_dir_all(root.join("d")).unwrap();
        fs::write(root.join("d/f"), b"f").unwrap();
        fs::write(outside.path().join("secret"), b"s").unwrap();
        symlink(root.join("d"), root.join("inside")).unwrap();
        symlink(outside.path().join("secret"), root.join("out")).unwrap();

        let (pages, skipped) = walk(root, Links::Source(SymlinkPolicy::Skip)).await;
        let keys: Vec<String> = pages
            .into_iter()
            .flatten()
            .map(|m| m.unwrap().location.to_string())
            .collect();
        assert_eq!((keys, skipped), (vec!["d/f".to_owned()], 2));

        let err = error_of(root, Links::Source(SymlinkPolicy::Error)).await;
        assert!(err.contains("symlinks: error"), "{err}");
        let err = error_of(root, Links::Source(SymlinkPolicy::Follow)).await;
        assert!(err.contains("leads out of the source root"), "{err}");

        fs::remove_file(root.join("out")).unwrap();
        let followed = ours(root, Links::Source(SymlinkPolicy::Follow)).await;
        assert_eq!(
            followed.keys().collect::<Vec<_>>(),
            ["d/f", "inside/f"],
            "a link inside the root is followed"
        );
    }

    /// Issue 13, finding 5: a link inside a target is never followed.
    #[tokio::test]
    async fn finding_05_a_link_inside_a_target_is_an_error() {
        let (dir, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        symlink(elsewhere.path(), dir.path().join("sub")).unwrap();
        let err = error_of(dir.path(), Links::Target).await;
        assert!(err.contains("never follows"), "{err}");
    }
}
