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
                (
                    hex::encode(Sha256::digest(std::fs::read(&p).expect("read"))),
                    m.size(),
                )
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
