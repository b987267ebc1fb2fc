//! One exported volume manifest read the auditor's way: every byte hashed, every line
//! parsed and its leaf recomputed, and the structure a restore relies on checked
//! (paths relative and unique, in strict walk order, each under a directory listed
//! before it, each hard link naming an earlier file), so that nothing the record says
//! about the volume is believed without its file.
//!
//! Memory stays flat in the number of entries: one line at a time, the chain of
//! directories of the current path, and the hard links' targets (a second pass
//! resolves them, only when there are any).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::CheckError;
use crate::merkle::MerkleBuilder;
use crate::volume::{
    EntryKind, VolumeEntry, is_ancestor_or_self, parent, path_problem, walk_order,
};

/// Structural problems listed per volume before the rest are only counted.
const MAX_PROBLEMS: usize = 10;

/// What a volume manifest file holds, recomputed from its bytes alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeFile {
    /// `sha256:<hex>` of the file's bytes.
    pub digest: String,
    /// `sha256:<hex>` Merkle root over the entries that parse.
    pub root: String,
    /// Lines (entries).
    pub entries: u64,
    /// Regular files.
    pub files: u64,
    /// Bytes of the regular files.
    pub bytes: u64,
    /// Hard links.
    pub hard_links: u64,
    /// Paths marked sparse, in order.
    pub sparse: Vec<String>,
    /// What is wrong with its structure (at most [`MAX_PROBLEMS`], then a count).
    pub problems: Vec<String>,
}

/// Structural problems found so far.
#[derive(Debug, Default)]
struct Problems {
    listed: Vec<String>,
    more: u64,
}

impl Problems {
    fn push(&mut self, problem: String) {
        if self.listed.len() < MAX_PROBLEMS {
            self.listed.push(problem);
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.listed.push(format!("and {} more problems", self.more));
        }
        self.listed
    }
}

/// The state of one pass over the entries.
#[derive(Debug, Default)]
struct Pass {
    file: VolumeFile,
    tree: MerkleBuilder,
    problems: Problems,
    previous: Option<String>,
    /// The directories the current path is under, outermost first.
    dirs: Vec<String>,
    /// Hard link target → (first link naming it, its line).
    link_targets: BTreeMap<String, (String, u64)>,
}

/// Read and check the manifest at `path`.
pub fn read_volume_manifest(path: &Path) -> Result<VolumeFile, CheckError> {
    let io = |source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut pass = Pass::default();
    let mut reader = BufReader::new(Hashing {
        inner: file,
        hasher: &mut hasher,
    });
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
            break;
        }
        n += 1;
        let Some(body) = line.strip_suffix(b"\n") else {
            pass.problems
                .push(format!("line {n} does not end with a newline"));
            pass.entry(n, &line);
            continue;
        };
        pass.entry(n, body);
    }
    drop(reader);
    let targets = std::mem::take(&mut pass.link_targets);
    if !targets.is_empty() {
        resolve_hard_links(path, targets, &mut pass.problems)?;
    }
    let mut out = pass.file;
    out.digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    out.root = format!("sha256:{}", hex::encode(pass.tree.root()));
    out.problems = pass.problems.finish();
    Ok(out)
}

impl Pass {
    /// Check one line (`n` from 1) and add its leaf.
    fn entry(&mut self, n: u64, line: &[u8]) {
        self.file.entries += 1;
        let entry = match VolumeEntry::parse(line) {
            Ok(entry) => entry,
            Err(e) => {
                self.problems
                    .push(format!("line {n} is not a manifest entry: {e}"));
                return;
            }
        };
        self.tree.push(entry.leaf());
        let p = &entry.path;
        if let Some(why) = path_problem(p) {
            self.problems.push(format!("line {n}: path {p:?} {why}"));
        }
        if n == 1 && !(p == "." && entry.kind == EntryKind::Dir) {
            self.problems.push(format!(
                "line 1 is {p:?}, not the volume's root directory `.`"
            ));
        }
        match &self.previous {
            Some(prev) if walk_order(prev, p).is_ge() => self.problems.push(format!(
                "line {n}: path {p:?} is not after {prev:?} in walk order (duplicated or out of order)"
            )),
            _ => {}
        }
        self.check_parent(n, &entry);
        self.count(n, &entry);
        self.previous = Some(entry.path);
    }

    /// The directory a path is in must be listed before it, as a directory.
    fn check_parent(&mut self, n: u64, entry: &VolumeEntry) {
        let p = &entry.path;
        if let Some(dir) = parent(p) {
            while self
                .dirs
                .last()
                .is_some_and(|top| !is_ancestor_or_self(top, p))
            {
                self.dirs.pop();
            }
            if self.dirs.last().map(String::as_str) != Some(dir) {
                self.problems.push(format!(
                    "line {n}: path {p:?} is in directory {dir:?}, which is not listed before it"
                ));
            }
        }
        if entry.kind == EntryKind::Dir {
            self.dirs.push(p.clone());
        }
    }

    fn count(&mut self, n: u64, entry: &VolumeEntry) {
        let p = &entry.path;
        match entry.kind {
            EntryKind::File => {
                self.file.files += 1;
                match self.file.bytes.checked_add(entry.size) {
                    Some(total) => self.file.bytes = total,
                    None => self
                        .problems
                        .push(format!("line {n}: the file sizes overflow 64 bits")),
                }
                if !entry.sha256.as_deref().is_some_and(is_sha256_hex) {
                    self.problems.push(format!(
                        "line {n}: file {p:?} has no SHA-256 of its content"
                    ));
                }
                if entry.sparse {
                    self.file.sparse.push(p.clone());
                }
            }
            EntryKind::HardLink => {
                self.file.hard_links += 1;
                match entry.target.as_deref() {
                    Some(t) if path_problem(t).is_none() && t != "." && walk_order(t, p).is_lt() => {
                        self.link_targets
                            .entry(t.to_owned())
                            .or_insert_with(|| (p.clone(), n));
                    }
                    Some(t) => self.problems.push(format!(
                        "line {n}: hard link {p:?} names {t:?}, which is not an earlier path of the volume"
                    )),
                    None => self
                        .problems
                        .push(format!("line {n}: hard link {p:?} names no target")),
                }
            }
            EntryKind::Symlink if entry.target.is_none() => self
                .problems
                .push(format!("line {n}: symlink {p:?} has no target")),
            _ => {}
        }
    }
}

/// The second pass: every hard link's target must be a regular file of the manifest
/// (earlier by walk order, checked in the first pass).
fn resolve_hard_links(
    path: &Path,
    mut targets: BTreeMap<String, (String, u64)>,
    problems: &mut Problems,
) -> Result<(), CheckError> {
    let io = |source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = BufReader::new(std::fs::File::open(path).map_err(io)?);
    for line in reader.split(b'\n') {
        let line = line.map_err(io)?;
        let Ok(entry) = VolumeEntry::parse(&line) else {
            continue;
        };
        if entry.kind == EntryKind::File {
            targets.remove(&entry.path);
        }
    }
    for (target, (link, n)) in targets {
        problems.push(format!(
            "line {n}: hard link {link:?} names {target:?}, which is not a file listed before it"
        ));
    }
    Ok(())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A reader that hashes what passes through it.
struct Hashing<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(path: &str, kind: &str) -> String {
        format!(
            r#"{{"path":{},"kind":"{kind}","size":0,"mode":493,"uid":0,"gid":0,"mtime":1,"mtimeNsec":0}}"#,
            serde_json::to_string(path).expect("json")
        )
    }

    fn dir(path: &str) -> String {
        meta(path, "dir")
    }

    fn file(path: &str, size: u64) -> String {
        format!(
            r#"{{"path":{},"kind":"file","size":{size},"mode":420,"uid":0,"gid":0,"mtime":1,"mtimeNsec":0,"sha256":"{}","segment":0,"offset":0}}"#,
            serde_json::to_string(path).expect("json"),
            "ab".repeat(32)
        )
    }

    fn hard(path: &str, target: &str) -> String {
        meta(path, "hardLink").replace(
            r#""kind":"hardLink""#,
            &format!(r#""kind":"hardLink","target":"{target}""#),
        )
    }

    fn read(lines: &[String]) -> VolumeFile {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.ndjson");
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&path, text).expect("write");
        read_volume_manifest(&path).expect("readable")
    }

    fn good() -> Vec<String> {
        vec![
            dir("."),
            dir("a"),
            file("a/x", 3),
            hard("a/y", "a/x"),
            file("a b", 4).replace(r#""segment""#, r#""sparse":true,"segment""#),
            dir("b"),
            dir("b/c"),
            meta("b/c/l", "symlink").replace(
                r#""kind":"symlink""#,
                r#""kind":"symlink","target":"../../a/x""#,
            ),
            file("b/z", 5),
        ]
    }

    #[test]
    fn a_well_formed_manifest_counts_and_hashes_as_written() {
        let lines = good();
        let found = read(&lines);
        assert_eq!(found.problems, Vec::<String>::new());
        assert_eq!(
            (found.entries, found.files, found.bytes, found.hard_links),
            (9, 3, 12, 1)
        );
        assert_eq!(found.sparse, vec!["a b".to_owned()]);
        let mut tree = MerkleBuilder::default();
        let mut bytes = Vec::new();
        for l in &lines {
            tree.push(VolumeEntry::parse(l.as_bytes()).expect("entry").leaf());
            bytes.extend_from_slice(l.as_bytes());
            bytes.push(b'\n');
        }
        assert_eq!(found.root, format!("sha256:{}", hex::encode(tree.root())));
        assert_eq!(
            found.digest,
            format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
        );
    }

    /// Each forgery a signing operator could slip into a manifest is named.
    #[test]
    fn every_structural_forgery_is_named() {
        let cases: Vec<(Vec<String>, &str)> = vec![
            (vec![dir("."), file("/etc/passwd", 1)], "is absolute"),
            (
                vec![dir("."), dir("a"), file("a/../../x", 1)],
                "`..` component",
            ),
            (
                vec![dir("."), file("a", 1), file("a", 1)],
                "duplicated or out of order",
            ),
            (
                vec![dir("."), file("b", 1), file("a", 1)],
                "duplicated or out of order",
            ),
            (
                vec![dir("."), file("a-", 1), dir("a")],
                "duplicated or out of order",
            ),
            (
                vec![dir("."), file("d/x", 1)],
                "which is not listed before it",
            ),
            (
                vec![dir("."), file("a", 1), file("a/x", 1)],
                "which is not listed before it",
            ),
            (vec![file("a", 1)], "not the volume's root directory"),
            (
                vec![dir("."), dir("a"), hard("a/y", "a/z"), file("a/z", 1)],
                "not an earlier path",
            ),
            (
                vec![dir("."), dir("a"), hard("a/y", "a")],
                "not a file listed before it",
            ),
            (vec![dir("."), hard("a", "gone")], "not an earlier path"),
            (
                vec![dir("."), hard("b", "a")],
                "not a file listed before it",
            ),
            (
                vec![dir("."), hard("b", "/etc/shadow")],
                "not an earlier path",
            ),
            (
                vec![dir("."), "{not json".to_owned()],
                "is not a manifest entry",
            ),
            (
                vec![dir("."), meta("x", "socket")],
                "is not a manifest entry",
            ),
            (
                vec![dir("."), file("a", 1).replace(&"ab".repeat(32), "ab")],
                "has no SHA-256",
            ),
            (vec![dir("."), String::new()], "is not a manifest entry"),
        ];
        for (lines, needle) in cases {
            let found = read(&lines);
            assert!(
                found.problems.iter().any(|p| p.contains(needle)),
                "{lines:?}: expected {needle:?} in {:?}",
                found.problems
            );
        }
    }

    #[test]
    fn a_missing_final_newline_and_many_problems_are_reported_bounded() {
        let dir_ = tempfile::tempdir().expect("tempdir");
        let path = dir_.path().join("m.ndjson");
        std::fs::write(&path, dir(".")).expect("write");
        let found = read_volume_manifest(&path).expect("readable");
        assert!(found.problems[0].contains("does not end with a newline"));
        assert_eq!(found.entries, 1);

        let mut lines = vec![dir(".")];
        lines.extend((0..50).map(|i| file(&format!("/abs{i}"), 1)));
        let found = read(&lines);
        assert_eq!(found.problems.len(), MAX_PROBLEMS + 1);
        assert!(
            found.problems[MAX_PROBLEMS].starts_with("and "),
            "{:?}",
            found.problems
        );
    }
}
