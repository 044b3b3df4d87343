//! What a feed publishes about a package's bytes, and checking it in the same pass that
//! computes the SHA-1 we report (`StagedPackage.Hash`).

use std::io::{Read, Write};
use std::path::Path;

use base64::Engine as _;
use sha1::Digest as _;

/// A hash algorithm a feed publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    /// SHA-1 (Maven `.sha1`, npm `shasum`).
    Sha1,
    /// SHA-256 (PyPI `#sha256=`, Helm `digest`).
    Sha256,
    /// SHA-512 (NuGet `packageHash`, npm `integrity`).
    Sha512,
}

impl Algorithm {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA-1",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512 => "SHA-512",
        }
    }
}

/// How the published hash is written, so the message shows ours the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notation {
    /// Lowercase hex.
    Hex,
    /// Standard base64 (NuGet).
    Base64,
    /// Subresource integrity `sha512-<base64>` (npm).
    Sri,
}

/// A hash the feed publishes for the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) algorithm: Algorithm,
    pub(crate) digest: Vec<u8>,
    pub(crate) notation: Notation,
}

impl Expected {
    /// From hex (`None` when it is not hex of the algorithm's length).
    pub(crate) fn hex(algorithm: Algorithm, text: &str) -> Option<Expected> {
        let digest = hex::decode(text.trim()).ok()?;
        (digest.len() == len(algorithm)).then_some(Expected { algorithm, digest, notation: Notation::Hex })
    }

    /// From standard base64.
    pub(crate) fn base64(algorithm: Algorithm, text: &str) -> Option<Expected> {
        let digest = base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()?;
        (digest.len() == len(algorithm)).then_some(Expected { algorithm, digest, notation: Notation::Base64 })
    }

    /// From an SRI `integrity` string: the first `sha512-`, else `sha256-`, else `sha1-` item.
    pub(crate) fn sri(text: &str) -> Option<Expected> {
        for (prefix, algorithm) in
            [("sha512-", Algorithm::Sha512), ("sha256-", Algorithm::Sha256), ("sha1-", Algorithm::Sha1)]
        {
            if let Some(item) = text.split_whitespace().find_map(|i| i.strip_prefix(prefix))
                && let Some(mut e) = Expected::base64(algorithm, item)
            {
                e.notation = Notation::Sri;
                return Some(e);
            }
        }
        None
    }

    /// `digest` written the way the feed writes its hash.
    pub(crate) fn show(&self, digest: &[u8]) -> String {
        match self.notation {
            Notation::Hex => hex::encode(digest),
            Notation::Base64 => base64::engine::general_purpose::STANDARD.encode(digest),
            Notation::Sri => format!(
                "{}-{}",
                self.algorithm.name().to_ascii_lowercase().replace('-', ""),
                base64::engine::general_purpose::STANDARD.encode(digest)
            ),
        }
    }
}

fn len(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::Sha1 => 20,
        Algorithm::Sha256 => 32,
        Algorithm::Sha512 => 64,
    }
}

enum Extra {
    None,
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

/// SHA-1, the size, and the published algorithm when it is another, fed as bytes pass.
pub(crate) struct Hasher {
    sha1: sha1::Sha1,
    extra: Extra,
    size: u64,
}

/// What a [`Hasher`] found.
pub(crate) struct Digests {
    /// SHA-1, lowercase hex.
    pub(crate) sha1: String,
    /// The size in bytes.
    pub(crate) size: u64,
    /// The digest in the published algorithm, when one was expected.
    pub(crate) published: Option<Vec<u8>>,
}

impl Hasher {
    pub(crate) fn new(expected: Option<&Expected>) -> Hasher {
        let extra = match expected.map(|e| e.algorithm) {
            Some(Algorithm::Sha256) => Extra::Sha256(sha2::Sha256::new()),
            Some(Algorithm::Sha512) => Extra::Sha512(sha2::Sha512::new()),
            Some(Algorithm::Sha1) | None => Extra::None,
        };
        Hasher { sha1: sha1::Sha1::new(), extra, size: 0 }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.sha1.update(bytes);
        match &mut self.extra {
            Extra::None => {}
            Extra::Sha256(h) => h.update(bytes),
            Extra::Sha512(h) => h.update(bytes),
        }
        self.size += bytes.len() as u64;
    }

    pub(crate) fn finish(self, expected: Option<&Expected>) -> Digests {
        let sha1 = self.sha1.finalize().to_vec();
        let published = match (self.extra, expected) {
            (Extra::Sha256(h), _) => Some(h.finalize().to_vec()),
            (Extra::Sha512(h), _) => Some(h.finalize().to_vec()),
            (Extra::None, Some(_)) => Some(sha1.clone()),
            (Extra::None, None) => None,
        };
        Digests { sha1: hex::encode(sha1), size: self.size, published }
    }
}

/// Copies `reader` to `writer`, hashing as it goes, in two threads: this one reads (the
/// network) while a second hashes and writes what was read before, so hashing costs no
/// time as long as the network is the slower side (a single thread stops reading while it
/// hashes, and the sender stalls). At most [`IN_FLIGHT`] chunks of [`CHUNK`] bytes wait
/// between them, so memory stays bounded.
///
/// # Errors
/// `Err(Ok(e))` when reading failed (the network), `Err(Err(e))` when writing failed.
pub(crate) fn copy_hashing(
    reader: &mut impl Read,
    writer: &mut (impl Write + Send),
    hasher: &mut Hasher,
) -> Result<(), Result<std::io::Error, std::io::Error>> {
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(IN_FLIGHT);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || -> std::io::Result<()> {
            for (buf, n) in full_rx {
                hasher.update(&buf[..n]);
                writer.write_all(&buf[..n])?;
                // The reader may have finished and dropped its end: nothing to reuse then.
                let _ = empty_tx.send(buf);
            }
            Ok(())
        });
        let read = (|| loop {
            let mut buf = empty_rx.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
            let n = fill(reader, &mut buf)?;
            if n == 0 || full_tx.send((buf, n)).is_err() {
                // The end, or the worker stopped on a write error, which it reports.
                return Ok(());
            }
        })();
        drop(full_tx);
        let written = worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match (read, written) {
            (_, Err(e)) => Err(Err(e)),
            (Err(e), Ok(())) => Err(Ok(e)),
            (Ok(()), Ok(())) => Ok(()),
        }
    })
}

/// Bytes per chunk handed from the reading thread to the hashing one.
const CHUNK: usize = 1 << 20;
/// Chunks that may wait for the hashing thread.
const IN_FLIGHT: usize = 4;

/// Reads into `buf` until at least half of it is filled or the stream ends; returns the
/// bytes read (0 at the end).
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() / 2 {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The digests of a file already on disk.
///
/// # Errors
/// When the file cannot be read.
pub(crate) fn hash_file(path: &Path, expected: Option<&Expected>) -> Result<Digests, crate::fs::IoError> {
    let mut file = crate::fs::open(path)?;
    let mut hasher = Hasher::new(expected);
    copy_hashing(&mut file, &mut std::io::sink(), &mut hasher).map_err(|e| crate::fs::IoError {
        op: "read",
        path: path.to_path_buf(),
        source: e.unwrap_or_else(|e| e),
    })?;
    Ok(hasher.finish(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `data` in pieces of 7,777 bytes, then fails with `fail` if given.
    struct Trickle<'a> {
        data: &'a [u8],
        fail: Option<std::io::ErrorKind>,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.data.is_empty() {
                return match self.fail.take() {
                    Some(kind) => Err(kind.into()),
                    None => Ok(0),
                };
            }
            let n = buf.len().min(self.data.len()).min(7777);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Accepts `room` bytes, then fails.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::ErrorKind::StorageFull.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn copying_on_two_threads_keeps_every_byte_in_order_and_reports_which_side_failed() {
        let data: Vec<u8> = (0..(5 * CHUNK + 12_345)).map(|i| (i * 31 % 251) as u8).collect();
        let mut out = Vec::new();
        let mut hasher = Hasher::new(None);
        copy_hashing(&mut Trickle { data: &data, fail: None }, &mut out, &mut hasher).unwrap();
        assert!(out == data, "the copy differs");
        let digests = hasher.finish(None);
        assert_eq!((digests.sha1, digests.size), (hex::encode(sha1::Sha1::digest(&data)), data.len() as u64));

        let mut hasher = Hasher::new(None);
        let read = copy_hashing(
            &mut Trickle { data: &data, fail: Some(std::io::ErrorKind::ConnectionReset) },
            &mut Vec::new(),
            &mut hasher,
        );
        assert!(matches!(&read, Err(Ok(e)) if e.kind() == std::io::ErrorKind::ConnectionReset), "{read:?}");

        let mut hasher = Hasher::new(None);
        let written = copy_hashing(&mut Trickle { data: &data, fail: None }, &mut Full { room: CHUNK }, &mut hasher);
        assert!(matches!(&written, Err(Err(e)) if e.kind() == std::io::ErrorKind::StorageFull), "{written:?}");
    }

    #[test]
    fn published_hashes_parse_and_show_as_published() {
        let sha512 = sha2::Sha512::digest(b"x");
        let b64 = base64::engine::general_purpose::STANDARD.encode(sha512);
        let sri = Expected::sri(&format!("sha1-AAAA sha512-{b64}")).expect("an SRI sha512");
        assert_eq!(sri.algorithm, Algorithm::Sha512);
        assert_eq!(sri.show(&sha512), format!("sha512-{b64}"));
        assert!(Expected::hex(Algorithm::Sha256, "abc").is_none());
        let mut hasher = Hasher::new(Some(&sri));
        hasher.update(b"x");
        let digests = hasher.finish(Some(&sri));
        assert_eq!(digests.published.as_deref(), Some(&sha512[..]));
        assert_eq!(digests.sha1, "11f6ad8ec52a2984abaafd7c3b516503785c2072");
        assert_eq!(digests.size, 1);
    }
}
