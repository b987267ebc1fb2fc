//! Manifests exported beside a record, in `FILE.manifests/`, read back:
//! `<workload>.<algorithm>sums` (GNU `sha256sum` format, byte for byte the file whose
//! digest the evidence names, so `sha256sum -c` works on it) and `<workload>.sizes`
//! (`<size>  <key>` in the same order and escaping). Sizes are needed because the
//! Merkle leaves bind key, size and hash; with both files anyone can recompute the
//! signed root and prove one object's membership.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::CheckError;
use crate::merkle::{MerkleBuilder, leaf_hash};
use crate::record::ManifestRef;

/// One manifest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Object key relative to the store's prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex hash.
    pub hash: String,
}

impl Entry {
    /// The entry's Merkle leaf.
    pub fn leaf(&self) -> [u8; 32] {
        leaf_hash(&self.key, self.size, &self.hash)
    }
}

/// File names of a workload's exported manifest.
pub fn file_names(workload: &str, algorithm: &str) -> (String, String) {
    (
        format!("{workload}.{algorithm}sums"),
        format!("{workload}.sizes"),
    )
}

/// Parse one `sha256sum` line (`<hash>  <key>`, `<hash> *<key>`, or the `\`-escaped
/// form GNU uses for keys with backslashes or newlines) into (hash, key).
pub fn parse_sums_line(line: &str) -> Option<(String, String)> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let (hash, key) = line.split_once(' ')?;
    let key = key.strip_prefix(' ').or_else(|| key.strip_prefix('*'))?;
    if hash.is_empty() || key.is_empty() {
        return None;
    }
    let key = if escaped {
        unescape(key)?
    } else {
        key.to_owned()
    };
    Some((hash.to_ascii_lowercase(), key))
}

fn unescape(key: &str) -> Option<String> {
    let mut out = String::with_capacity(key.len());
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            _ => return None,
        }
    }
    Some(out)
}

/// Streams an exported manifest's entries (sums and sizes files in lockstep), hashing
/// the sums file as it goes so its digest can be compared with the evidence.
pub struct Reader {
    sums: BufReader<std::fs::File>,
    sizes: BufReader<std::fs::File>,
    sums_path: PathBuf,
    file_hash: Sha256,
    line: u64,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("sums_path", &self.sums_path)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Open `dir`'s manifest of `manifest.workload`.
    pub fn open(dir: &Path, manifest: &ManifestRef) -> Result<Self, CheckError> {
        let (sums_name, sizes_name) = file_names(&manifest.workload, &manifest.algorithm);
        let open = |p: PathBuf| match std::fs::File::open(&p) {
            Ok(f) => Ok((BufReader::new(f), p)),
            Err(source) => Err(CheckError::Io { path: p, source }),
        };
        let (sums, sums_path) = open(dir.join(sums_name))?;
        let (sizes, _) = open(dir.join(sizes_name))?;
        Ok(Self {
            sums,
            sizes,
            sums_path,
            file_hash: Sha256::new(),
            line: 0,
        })
    }

    /// The next entry, `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, CheckError> {
        let (mut sums_line, mut sizes_line) = (String::new(), String::new());
        let io = |source| CheckError::Io {
            path: self.sums_path.clone(),
            source,
        };
        let n = self.sums.read_line(&mut sums_line).map_err(io)?;
        let m = self
            .sizes
            .read_line(&mut sizes_line)
            .map_err(|source| CheckError::Io {
                path: self.sums_path.clone(),
                source,
            })?;
        self.line += 1;
        if n == 0 && m == 0 {
            return Ok(None);
        }
        self.file_hash.update(sums_line.as_bytes());
        let bad = |reason: &str| CheckError::BadManifest {
            path: self.sums_path.clone(),
            line: self.line,
            reason: reason.to_owned(),
        };
        let (hash, key) =
            parse_sums_line(&sums_line).ok_or_else(|| bad("not a `<hash>  <key>` line"))?;
        let (size, size_key) = parse_sums_line(&sizes_line)
            .ok_or_else(|| bad("the sizes file has no matching line"))?;
        if size_key != key {
            return Err(bad(&format!(
                "the sizes file lists `{size_key}` where the sums file lists `{key}`"
            )));
        }
        let size = size.parse().map_err(|_| bad("size is not a number"))?;
        Ok(Some(Entry { key, size, hash }))
    }

    /// `sha256:<hex>` of the sums file read so far (the whole file once at the end).
    pub fn file_digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.file_hash.clone().finalize()))
    }
}

/// Read a whole exported manifest: its entry count, Merkle root and file digest.
pub fn summarize(dir: &Path, manifest: &ManifestRef) -> Result<(u64, String, String), CheckError> {
    let mut reader = Reader::open(dir, manifest)?;
    let (mut tree, mut count) = (MerkleBuilder::default(), 0u64);
    while let Some(entry) = reader.next_entry()? {
        tree.push(entry.leaf());
        count += 1;
    }
    Ok((
        count,
        format!("sha256:{}", hex::encode(tree.root())),
        reader.file_digest(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_lines_parse_back_including_gnu_escapes() {
        for (line, key) in [
            ("ab12  a b/ü\n", "a b/ü"),
            ("\\ab12  a\\nb\n", "a\nb"),
            ("\\ab12  back\\\\slash\n", "back\\slash"),
            ("ab12  x\n", "x"),
        ] {
            assert_eq!(
                parse_sums_line(line),
                Some(("ab12".to_owned(), key.to_owned())),
                "{line:?}"
            );
        }
        assert_eq!(
            parse_sums_line("AB12 *bin.tar\n"),
            Some(("ab12".to_owned(), "bin.tar".to_owned()))
        );
        assert_eq!(parse_sums_line("nonsense"), None);
        assert_eq!(parse_sums_line("\\ab  bad\\q"), None);
    }
}
