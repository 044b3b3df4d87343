//! SHA-1 (what Octopus sends as `--packageHash`) and SHA-256 of a file, in one read.
//!
//! The file is read once in 1 MiB chunks; SHA-1 runs on the reading thread and SHA-256 on
//! a second thread fed the same chunks, so both take about as long as one (both use the
//! CPU's SHA instructions when it has them).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;

use sha1::Digest as _;

use super::Error;

/// Both hashes of a file, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHashes {
    /// SHA-1, 40 hex digits.
    pub sha1: String,
    /// SHA-256, 64 hex digits.
    pub sha256: String,
}

const CHUNK: usize = 1 << 20;

/// Hashes `path` with SHA-1 and SHA-256 in a single pass.
///
/// # Errors
/// When the file cannot be read.
pub fn hash_file(path: &Path) -> Result<FileHashes, Error> {
    let mut file = crate::fs::open(path)?;
    let mut sha1 = sha1::Sha1::new();
    let read = |file: &mut std::fs::File, buf: &mut Vec<u8>| -> Result<usize, Error> {
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        while filled < CHUNK {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(crate::fs::IoError { op: "read", path: path.to_path_buf(), source: e }.into()),
            }
        }
        buf.truncate(filled);
        Ok(filled)
    };
    let mut first = Vec::new();
    read(&mut file, &mut first)?;
    if first.len() < CHUNK {
        // Small file: no thread.
        sha1.update(&first);
        let sha256 = sha2::Sha256::digest(&first);
        return Ok(FileHashes { sha1: hex::encode(sha1.finalize()), sha256: hex::encode(sha256) });
    }
    let (tx, rx) = sync_channel::<Arc<Vec<u8>>>(4);
    let worker = std::thread::spawn(move || {
        let mut sha256 = sha2::Sha256::new();
        for chunk in rx {
            sha256.update(&chunk[..]);
        }
        hex::encode(sha256.finalize())
    });
    let mut chunk = Arc::new(first);
    let result = loop {
        sha1.update(&chunk[..]);
        let done = chunk.len() < CHUNK;
        if tx.send(chunk).is_err() || done {
            break Ok(());
        }
        let mut next = Vec::with_capacity(CHUNK);
        if let Err(e) = read(&mut file, &mut next) {
            break Err(e);
        }
        if next.is_empty() {
            break Ok(());
        }
        chunk = Arc::new(next);
    };
    drop(tx);
    let sha256 = worker.join().map_err(|_| Error::ThreadPanicked { thread: "the SHA-256" })?;
    result?;
    Ok(FileHashes { sha1: hex::encode(sha1.finalize()), sha256 })
}

/// Fails with [`Error::HashMismatch`] unless `path`'s SHA-1 is `expected` (any case).
///
/// # Errors
/// Mismatch or read failure.
pub(crate) fn verify_sha1(path: &Path, expected: &str) -> Result<FileHashes, Error> {
    let hashes = hash_file(path)?;
    if !hashes.sha1.eq_ignore_ascii_case(expected.trim()) {
        return Err(Error::HashMismatch {
            path: path.to_path_buf(),
            expected: expected.trim().to_string(),
            actual: hashes.sha1,
        });
    }
    Ok(hashes)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors_small_and_large() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("abc");
        std::fs::write(&small, "abc").unwrap();
        let h = hash_file(&small).unwrap();
        assert_eq!(h.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(h.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

        // Exactly two chunks plus a bit, to cross the threaded path and its boundaries.
        let big = dir.path().join("big");
        let data: Vec<u8> = (0..(2 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&big, &data).unwrap();
        let h = hash_file(&big).unwrap();
        assert_eq!(h.sha1, hex::encode(sha1::Sha1::digest(&data)));
        assert_eq!(h.sha256, hex::encode(sha2::Sha256::digest(&data)));
        let exact = dir.path().join("exact");
        std::fs::write(&exact, &data[..CHUNK]).unwrap();
        assert_eq!(hash_file(&exact).unwrap().sha1, hex::encode(sha1::Sha1::digest(&data[..CHUNK])));

        assert!(verify_sha1(&small, "A9993E364706816ABA3E25717850C26C9CD0D89D").is_ok());
        let e = verify_sha1(&small, "0000").unwrap_err().to_string();
        assert!(e.contains("a9993e36") && e.contains("0000"), "{e}");
    }
}
