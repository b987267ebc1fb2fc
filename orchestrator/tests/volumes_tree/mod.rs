//! The odd tree the volume tests move, and an independent listing of a tree
//! (`find -printf '%p %y %s %m %U %G %T@ %l'` plus hashes) to compare two with.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const UNICODE: &str = "Zürich 日本/файл #1\nline2.txt";

pub fn set_mtime(path: &Path, sec: i64, nsec: i64) {
    let at = rustix::fs::Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    let times = rustix::fs::Timestamps {
        last_access: at,
        last_modification: at,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("utimensat");
}

/// A tree with everything a mover gets wrong: modes, owners, nanosecond mtimes,
/// symlinks (one dangling), an empty directory, a read-only directory, a hard link, a
/// sparse file, unicode/`#`/newline names, many small files and a multi-segment file.
pub fn odd_tree(root: &Path) {
    let w = |rel: &str, bytes: &[u8], mode: u32| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, bytes).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    };
    let secret = w("data/a.txt", b"the analyzer's state\n", 0o600);
    std::os::unix::fs::chown(&secret, Some(1234), Some(5678)).expect("chown (tests run as root)");
    std::fs::hard_link(&secret, root.join("data/hard")).expect("hard link");
    w(UNICODE, "grüße\n".as_bytes(), 0o644);
    w("exec.sh", b"#!/bin/sh\necho hi\n", 0o4755);
    std::os::unix::fs::symlink("data/a.txt", root.join("link")).expect("symlink");
    std::os::unix::fs::symlink("nowhere/x", root.join("dangling")).expect("dangling");
    std::fs::create_dir(root.join("empty")).expect("empty dir");
    std::fs::set_permissions(root.join("empty"), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    w("ro/inside", b"x", 0o444);
    std::fs::set_permissions(root.join("ro"), std::fs::Permissions::from_mode(0o555))
        .expect("chmod");
    let sparse = std::fs::File::create(root.join("sparse.bin")).expect("sparse");
    sparse.set_len(8 << 20).expect("set_len");
    std::os::unix::fs::FileExt::write_all_at(&sparse, &[7u8; 4096], 5 << 20).expect("write");
    drop(sparse);
    for i in 0..500 {
        w(
            &format!("small/{i:04}"),
            format!("file {i}").as_bytes(),
            0o640,
        );
    }
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("queue.fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o620),
        0,
    )
    .expect("mkfifo");
    // A device node where the sandbox allows one (root with CAP_MKNOD): /dev/null's.
    let _ = rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("null.dev"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    );
    // A socket: its process's, not the volume's; left out and named.
    let socket = std::os::unix::net::UnixListener::bind(root.join("app.sock")).expect("socket");
    drop(socket);
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    w("big.bin", &big, 0o644);
    set_mtime(&secret, 1_700_000_000, 123_456_789);
    set_mtime(&root.join("link"), 1_600_000_000, 42);
    set_mtime(&root.join("empty"), 1_500_000_000, 999_999_999);
    set_mtime(&root.join("ro"), 1_400_000_000, 1);
}

/// `find -printf '%p %y %s %m %U %G %T@ %l'` plus each file's SHA-256 and, for hard
/// links, which earlier path shares the inode: written independently of the library.
pub fn listing(root: &Path) -> BTreeMap<String, String> {
    fn visit(
        root: &Path,
        dir: &Path,
        inodes: &mut BTreeMap<u64, String>,
        out: &mut BTreeMap<String, String>,
    ) {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        names.sort();
        for p in names {
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let ft = m.file_type();
            let kind = if m.is_dir() {
                "d".to_owned()
            } else if ft.is_symlink() {
                "l".to_owned()
            } else if ft.is_fifo() {
                "p".to_owned()
            } else if ft.is_char_device() {
                format!("c{}", m.rdev())
            } else if ft.is_socket() {
                // Sockets do not move (see `notMoved`).
                continue;
            } else {
                "f".to_owned()
            };
            let link = std::fs::read_link(&p)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (sha, size) = if m.is_file() {
                // Streamed: the full tree has 200 MiB files.
                let mut hasher = Sha256::new();
                std::io::copy(&mut std::fs::File::open(&p).expect("open"), &mut hasher)
                    .expect("read");
                (hex::encode(hasher.finalize()), m.size())
            } else {
                (String::new(), 0)
            };
            let same = if m.is_file() && m.nlink() > 1 {
                inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone()
            } else {
                String::new()
            };
            out.insert(
                rel.clone(),
                format!(
                    "{kind} {size} {:o} {} {} {}.{:09} {link} {sha} {same}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid(),
                    m.mtime(),
                    m.mtime_nsec()
                ),
            );
            if m.is_dir() {
                visit(root, &p, inodes, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    let m = std::fs::metadata(root).expect("root");
    out.insert(
        ".".into(),
        format!("d {:o} {} {}", m.mode() & 0o7777, m.uid(), m.gid()),
    );
    visit(root, root, &mut BTreeMap::new(), &mut out);
    out
}

/// Owner given to every tenth tiny file (tests run as root, as [`odd_tree`] needs).
pub const OTHER_UID: u32 = 1234;
pub const OTHER_GID: u32 = 5678;

/// `count` files of 1–200 bytes under `root/dir`, `per_dir` to a directory
/// (`dir/0000/00`, …), like an object store's or a database's many small files:
/// modes 0644/0640/0600/0444, every tenth owned by [`OTHER_UID`], every third with a
/// nanosecond mtime. Written from several threads (the file count, not the bytes,
/// is what costs). Returns the bytes written.
pub fn tiny_files(root: &Path, dir: &str, count: u32, per_dir: u32) -> u64 {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dirs = count.div_ceil(per_dir);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)) as u32;
    let write_dir = |d: u32, content: &mut Vec<u8>| -> u64 {
        let at = root.join(dir).join(format!("{d:04}"));
        std::fs::create_dir_all(&at).expect("tiny files' directory");
        let mut bytes = 0u64;
        for i in d * per_dir..((d + 1) * per_dir).min(count) {
            let len = 1 + (i.wrapping_mul(2_654_435_761) >> 7) % 200;
            content.clear();
            content.extend((0..len).map(|k| (i ^ k.wrapping_mul(31)) as u8 | 1));
            let mode = [0o644, 0o640, 0o600, 0o444][(i % 4) as usize];
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(at.join(format!("{:02}", i % per_dir)))
                .expect("tiny file");
            file.write_all(content).expect("write tiny file");
            if i % 10 == 0 {
                std::os::unix::fs::fchown(&file, Some(OTHER_UID), Some(OTHER_GID))
                    .expect("chown (tests run as root)");
            }
            if i % 3 == 0 {
                let at = rustix::fs::Timespec {
                    tv_sec: 1_600_000_000 + i64::from(i),
                    tv_nsec: i64::from(i % 1_000_000_000),
                };
                let times = rustix::fs::Timestamps {
                    last_access: at,
                    last_modification: at,
                };
                rustix::fs::futimens(&file, &times).expect("futimens");
            }
            bytes += u64::from(len);
        }
        bytes
    };
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut content = Vec::with_capacity(200);
                    (t..dirs)
                        .step_by(threads as usize)
                        .map(|d| write_dir(d, &mut content))
                        .sum::<u64>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a tiny-file writer panicked"))
            .sum()
    })
}

/// A file of `len` bytes that are not zeros (so nothing takes it for sparse) and
/// differ from MiB to MiB: one pseudo-random MiB, rotated by a different amount for
/// each MiB written, so the buffer is made once.
pub fn big_file(path: &Path, len: u64) {
    use std::io::Write;
    const MIB: usize = 1 << 20;
    let mut block = Vec::with_capacity(MIB);
    let mut counter = 0u64;
    while block.len() < MIB {
        block.extend_from_slice(&Sha256::digest(counter.to_le_bytes()));
        counter += 1;
    }
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let mut out =
        std::io::BufWriter::with_capacity(MIB, std::fs::File::create(path).expect("big file"));
    let mut written = 0u64;
    let mut chunk = 0usize;
    while written < len {
        let take = usize::try_from(len - written).map_or(MIB, |l| l.min(MIB));
        let turn = (chunk * 4099 + 1) % MIB;
        let (head, tail) = block.split_at(turn);
        let first = tail.len().min(take);
        out.write_all(&tail[..first]).expect("write big file");
        out.write_all(&head[..take - first])
            .expect("write big file");
        written += take as u64;
        chunk += 1;
    }
    out.flush().expect("flush big file");
}

/// A sparse file of `len` bytes: holes but for 4 KiB of data at each of `data_at`.
pub fn sparse_file(path: &Path, len: u64, data_at: &[u64]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let file = std::fs::File::create(path).expect("sparse file");
    file.set_len(len).expect("set_len");
    for (i, at) in data_at.iter().enumerate() {
        std::os::unix::fs::FileExt::write_all_at(&file, &[i as u8 + 1; 4096], *at)
            .expect("write sparse data");
    }
}

/// `find ROOT -printf '%P %y %s %m %U %G %T@ %l'` (NUL-terminated: the odd tree has a
/// newline in a name), sorted; a directory's size is left out (it depends on the
/// file system's history, not on the volume's content) and sockets too (they do not
/// move). `None` when `find` is not installed.
pub fn find_listing(root: &Path) -> Option<Vec<String>> {
    let out = match std::process::Command::new("find")
        .arg(root)
        .args(["-printf", "%P %y %s %m %U %G %T@ %l\\0"])
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("running find: {e}"),
    };
    assert!(
        out.status.success(),
        "find {}: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .filter_map(|line| {
            // The path may hold spaces: the fields are counted from the end, the link
            // target (%l) being the last and empty but for symlinks.
            let mut fields: Vec<&str> = line.rsplitn(8, ' ').collect();
            fields.reverse();
            let [path, kind, size, rest @ ..] = fields.as_slice() else {
                panic!("find printed {line:?}");
            };
            match *kind {
                "s" => None,
                "d" => Some(format!("{path} d - {}", rest.join(" "))),
                _ => Some(format!("{path} {kind} {size} {}", rest.join(" "))),
            }
        })
        .collect();
    lines.sort();
    Some(lines)
}

/// Regular files (counting each inode once) and their bytes, from a [`listing`].
pub fn regular_files(listing: &BTreeMap<String, String>) -> (u64, u64) {
    listing
        .iter()
        .filter_map(|(path, line)| {
            let fields: Vec<&str> = line.split(' ').collect();
            let first_name = fields.last().is_none_or(|s| s.is_empty() || s == path);
            (fields.first() == Some(&"f") && first_name).then(|| {
                fields
                    .get(1)
                    .and_then(|s| s.parse::<u64>().ok())
                    .expect("size")
            })
        })
        .fold((0, 0), |(n, b), size| (n + 1, b + size))
}
