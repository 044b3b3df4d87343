//! The sidecar index `<journal>.idx`: where each `<Deployment>` element of the journal is,
//! and just enough about it to answer the deployment-time questions without reading the
//! journal.
//!
//! The journal stays the only source of truth; the index is a cache that can be deleted at
//! any time and is rebuilt from one streaming pass over the journal whenever it does not
//! provably describe the file. One fixed-size [`Record`] per element, in file order:
//! byte offset and length, the keys of its retention policy set and id, a bit set of its
//! packages, its `InstalledOn` in whole seconds and whether it succeeded. A deployment
//! reads the records (a few MB at 100,000 entries, no XML) and parses only the one or two
//! entries it needs; a change rewrites only the records it touched and the header.
//!
//! # Validity
//!
//! The header holds a [`Stamp`] of the journal it describes (device, inode, length,
//! modification and change times, a SHA-256 of its last 4 KiB) and a checksum of the
//! records. An index is used only when its header checks out, its records sum to the
//! header's checksum and the stamp equals the journal's current one; anything else (the
//! reference rewrote the journal, a crash between the journal's write and the index's, a
//! torn index after a power loss, a hand edit) makes it stale and it is rebuilt. On top of
//! that every entry read through a record is checked against it (it must be one
//! `<Deployment>` element with the record's set and id); a mismatch also means stale.
//! The index is never fsync'd: losing it costs one rebuild, never a wrong answer.
//!
//! Keys are the first 8 bytes of SHA-256 (stable across versions, unlike a hasher's):
//! sets and ids are lower-cased first, as lookups compare them ignoring ASCII case;
//! exact comparisons happen on the parsed entry.
//!
//! The records' checksum is a wrapping sum of a 64-bit mix of each record and its position
//! ([`mix`], hand-written: a crate hash would have to run over all the records again,
//! where a sum lets a change of one record update it in O(1)). It is there to catch an
//! index torn by a power loss (the index is never fsync'd), not an adversary. Within a
//! process the index stays in memory between sessions and is reused while the journal's
//! stamp is unchanged, so a deployment reads it from disk once.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::JournalEntry;
use super::xml::Layout;
use crate::fs::IoContext as _;

const MAGIC: &[u8; 8] = b"CLMJIDX1";
const VERSION: u32 = 1;
/// Bytes of one [`Record`] on disk.
pub(crate) const RECORD_SIZE: usize = 48;
/// Bytes of the header on disk.
const HEADER_SIZE: usize = 192;
/// How much of the journal's end the stamp hashes.
const TAIL_HASHED: u64 = 4096;

/// The entry succeeded (`WasSuccessful`).
pub(crate) const SUCCESSFUL: u32 = 1;
/// The entry has an `InstalledOn` time.
pub(crate) const TIMED: u32 = 2;
/// The entry has a `CurrentLink` (a release).
pub(crate) const LINKED: u32 = 4;
/// The entry was removed: its bytes in the journal are now white space.
pub(crate) const REMOVED: u32 = 8;

/// A stable 64-bit key of a string: the first 8 bytes of its SHA-256.
pub(crate) fn key(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
}

/// The key of a retention policy set (compared ignoring ASCII case).
pub(crate) fn set_key(set: &str) -> u64 {
    key(&set.to_ascii_lowercase())
}

/// The key of an entry id (compared ignoring ASCII case).
pub(crate) fn id_key(id: &str) -> u64 {
    key(&id.to_ascii_lowercase())
}

/// The three bits a package sets in [`Record::packages`] (a 64-bit Bloom filter).
pub(crate) fn package_bits(id: &str, version: &str) -> u64 {
    let h = key(&format!("{}\n{}", id.to_ascii_lowercase(), version.to_ascii_lowercase()));
    (1 << (h & 63)) | (1 << ((h >> 6) & 63)) | (1 << ((h >> 12) & 63))
}

/// What the index knows about one `<Deployment>` element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// Where `<Deployment` starts in the journal.
    pub offset: u64,
    /// The element's length in bytes.
    pub len: u32,
    /// [`SUCCESSFUL`], [`TIMED`], [`LINKED`], [`REMOVED`].
    pub flags: u32,
    /// `InstalledOn` in whole seconds since the Unix epoch (0 without a time).
    pub secs: i64,
    /// [`set_key`] of `RetentionPolicySet`.
    pub set: u64,
    /// [`id_key`] of `Id`.
    pub id: u64,
    /// The union of [`package_bits`] of its packages.
    pub packages: u64,
}

impl Record {
    /// The record of `entry`, whose element is `len` bytes at `offset`.
    pub(crate) fn of(entry: &JournalEntry, offset: u64, len: u64) -> Record {
        let mut flags = 0;
        if entry.was_successful {
            flags |= SUCCESSFUL;
        }
        if entry.installed_on.is_some() {
            flags |= TIMED;
        }
        if entry.current_link.is_some() {
            flags |= LINKED;
        }
        Record {
            offset,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            flags,
            secs: entry.installed_on.map_or(0, |t| t.timestamp()),
            set: set_key(&entry.retention_policy_set),
            id: id_key(&entry.id),
            packages: entry.packages.iter().fold(0, |bits, p| bits | package_bits(&p.package_id, &p.package_version)),
        }
    }

    /// Whether the element is still in the journal.
    pub(crate) fn live(&self) -> bool {
        self.flags & REMOVED == 0
    }

    /// Where the element ends.
    pub(crate) fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }

    /// Whether the entry is newer than `other`, as [`super::latest`] orders entries: timed
    /// before untimed, then by time; `self` is assumed to come later in the file, so it wins
    /// a tie. Seconds only: entries within one second must be compared parsed.
    pub(crate) fn sort_key(&self) -> (bool, i64) {
        (self.flags & TIMED != 0, self.secs)
    }

    fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.offset.to_le_bytes());
        out[8..12].copy_from_slice(&self.len.to_le_bytes());
        out[12..16].copy_from_slice(&self.flags.to_le_bytes());
        out[16..24].copy_from_slice(&self.secs.to_le_bytes());
        out[24..32].copy_from_slice(&self.set.to_le_bytes());
        out[32..40].copy_from_slice(&self.id.to_le_bytes());
        out[40..48].copy_from_slice(&self.packages.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Record {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Record {
            offset: u64_at(0),
            len: u32_at(8),
            flags: u32_at(12),
            secs: i64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
            set: u64_at(24),
            id: u64_at(32),
            packages: u64_at(40),
        }
    }
}

/// The state of the journal file an index describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    tail: [u8; 32],
}

impl Stamp {
    /// The stamp of the open journal `file` (at `path`, for errors).
    pub(crate) fn of(file: &File, path: &Path) -> crate::fs::Result<Stamp> {
        let meta = file.metadata().at("stat", path)?;
        let len = meta.len();
        let from = len.saturating_sub(TAIL_HASHED);
        let mut tail = vec![0; usize::try_from(len - from).expect("at most 4 KiB")];
        file.read_exact_at(&mut tail, from).at("read", path)?;
        Ok(Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len,
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            tail: Sha256::digest(&tail).into(),
        })
    }

    /// The journal's length when stamped.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

/// The mix of record `i` that [`Index`]'s checksum sums (splitmix64's finaliser over the
/// record's words and its position).
fn mix(record: &Record, i: usize) -> u64 {
    let mut h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x6a09_e667_f3bc_c908;
    for word in [
        record.offset,
        u64::from(record.len) | (u64::from(record.flags) << 32),
        record.secs as u64,
        record.set,
        record.id,
        record.packages,
    ] {
        h = (h ^ word).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 31;
        h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 29;
    }
    h
}

/// The index of one journal, in memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    /// The journal state it describes.
    pub stamp: Stamp,
    /// Where the root and the tail are.
    pub layout: Layout,
    /// One record per `<Deployment>` element, in file order, removed ones included.
    records: Vec<Record>,
    /// The wrapping sum of [`mix`] over `records`.
    sum: u64,
    /// A random number drawn at every save: an index kept in memory is reused only while
    /// the one on disk is still the one it saved or loaded (another process's change
    /// saves a new one), even should the journal's stamp not show that change.
    nonce: u64,
    /// How many of `records` are on disk as they are here (for in-place saves).
    saved: Option<usize>,
}

/// `<journal>.idx`.
pub(crate) fn path_of(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_os_string();
    name.push(".idx");
    PathBuf::from(name)
}

impl Index {
    /// An index of `records` and `layout` for the journal stamped `stamp`, not saved yet.
    pub(crate) fn new(stamp: Stamp, layout: Layout, records: Vec<Record>) -> Index {
        let sum = records.iter().enumerate().fold(0u64, |sum, (i, r)| sum.wrapping_add(mix(r, i)));
        Index { stamp, layout, records, sum, nonce: 0, saved: None }
    }

    /// The records, in file order (removed ones included: check [`Record::live`]).
    pub(crate) fn records(&self) -> &[Record] {
        &self.records
    }

    /// Replaces record `i`.
    pub(crate) fn set(&mut self, i: usize, record: Record) {
        self.sum = self.sum.wrapping_sub(mix(&self.records[i], i)).wrapping_add(mix(&record, i));
        self.records[i] = record;
        if let Some(saved) = self.saved.as_mut() {
            *saved = (*saved).min(i);
        }
    }

    /// Adds a record at the end.
    pub(crate) fn push(&mut self, record: Record) {
        self.sum = self.sum.wrapping_add(mix(&record, self.records.len()));
        self.records.push(record);
    }

    /// Loads the index at `path` when it is intact (header, records hash). Whether it
    /// describes the journal as it is now is the caller's check ([`Stamp`]). `None` for a
    /// missing, foreign, torn or otherwise unusable index.
    pub(crate) fn load(path: &Path) -> Option<Index> {
        let mut file = crate::fs::open(path).ok()?;
        let mut header = [0; HEADER_SIZE];
        file.read_exact(&mut header).ok()?;
        if &header[0..8] != MAGIC
            || u32::from_le_bytes(header[8..12].try_into().ok()?) != VERSION
            || u32::from_le_bytes(header[12..16].try_into().ok()?) as usize != RECORD_SIZE
            || header[184..192] != Sha256::digest(&header[..184])[..8]
        {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
        let i64_at = |i: usize| i64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
        let count = usize::try_from(u64_at(144)).ok()?;
        let mut bytes = vec![0; count.checked_mul(RECORD_SIZE)?];
        file.read_exact(&mut bytes).ok()?;
        let records: Vec<Record> = bytes.chunks_exact(RECORD_SIZE).map(Record::decode).collect();
        let sum = records.iter().enumerate().fold(0u64, |sum, (i, r)| sum.wrapping_add(mix(r, i)));
        if sum != u64_at(152) || file.read(&mut [0]).ok()? != 0 {
            return None;
        }
        let stamp = Stamp {
            dev: u64_at(16),
            ino: u64_at(24),
            len: u64_at(32),
            mtime: (i64_at(40), i64_at(48)),
            ctime: (i64_at(56), i64_at(64)),
            tail: header[72..104].try_into().ok()?,
        };
        let layout = Layout {
            root_start: u64_at(104),
            content_start: u64_at(112),
            tail_start: u64_at(120),
            empty_root: header[128] & 1 != 0,
            garbage: u64_at(136),
        };
        Some(Index { stamp, layout, records, sum, nonce: u64_at(160), saved: Some(count) })
    }

    /// The nonce of the index saved at `path`, reading only its header.
    pub(crate) fn nonce_on_disk(path: &Path) -> Option<u64> {
        let mut header = [0; HEADER_SIZE];
        crate::fs::open(path).ok()?.read_exact(&mut header).ok()?;
        (&header[0..8] == MAGIC && header[184..192] == Sha256::digest(&header[..184])[..8])
            .then(|| u64::from_le_bytes(header[160..168].try_into().expect("8 bytes")))
    }

    /// Whether this index, kept in memory, is still the one saved at `path`.
    pub(crate) fn is_on_disk(&self, path: &Path) -> bool {
        self.nonce != 0 && Index::nonce_on_disk(path) == Some(self.nonce)
    }

    fn header(&self) -> [u8; HEADER_SIZE] {
        let mut h = [0; HEADER_SIZE];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(RECORD_SIZE as u32).to_le_bytes());
        let s = &self.stamp;
        for (at, v) in [(16, s.dev), (24, s.ino), (32, s.len)] {
            h[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        for (at, v) in [(40, s.mtime.0), (48, s.mtime.1), (56, s.ctime.0), (64, s.ctime.1)] {
            h[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        h[72..104].copy_from_slice(&s.tail);
        let l = &self.layout;
        for (at, v) in [(104, l.root_start), (112, l.content_start), (120, l.tail_start), (136, l.garbage)] {
            h[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        h[128] = u8::from(l.empty_root);
        h[144..152].copy_from_slice(&(self.records.len() as u64).to_le_bytes());
        h[152..160].copy_from_slice(&self.sum.to_le_bytes());
        h[160..168].copy_from_slice(&self.nonce.to_le_bytes());
        let check = Sha256::digest(&h[..184]);
        h[184..192].copy_from_slice(&check[..8]);
        h
    }

    fn encoded_records(&self, from: usize) -> Vec<u8> {
        let mut bytes = vec![0; (self.records.len() - from) * RECORD_SIZE];
        for (record, out) in self.records[from..].iter().zip(bytes.chunks_exact_mut(RECORD_SIZE)) {
            record.encode(out);
        }
        bytes
    }

    /// Saves the index at `path` without fsync. When the file on disk is this index as
    /// loaded or last saved, only the records from the first changed one on and the header
    /// are rewritten in place; otherwise the whole file is written to a temp file and
    /// renamed over it (so a concurrent reader sees the old index or the new one).
    ///
    /// # Errors
    /// The index could not be written. Callers may ignore this: a missing or stale index is
    /// rebuilt.
    pub(crate) fn save(&mut self, path: &Path) -> crate::fs::Result<()> {
        self.nonce = rand::random::<u64>() | 1;
        let header = self.header();
        match self.saved {
            Some(saved) if path.exists() => {
                let from = saved.min(self.records.len());
                let file = std::fs::OpenOptions::new().write(true).open(path).at("open", path)?;
                let tail = self.encoded_records(from);
                file.write_all_at(&tail, (HEADER_SIZE + from * RECORD_SIZE) as u64).at("write", path)?;
                file.set_len((HEADER_SIZE + self.records.len() * RECORD_SIZE) as u64).at("truncate", path)?;
                file.write_all_at(&header, 0).at("write", path)?;
            }
            _ => {
                let dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let mut tmp = tempfile::Builder::new()
                    .prefix(&format!(".{name}.calamari{}.", std::process::id()))
                    .suffix(".tmp")
                    .tempfile_in(dir)
                    .at("create temporary file in", dir)?;
                // Readable as the journal is (a temp file is 0600), so that an agent's other
                // users can use it instead of rebuilding it.
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    let perms = std::fs::Permissions::from_mode(0o644);
                    tmp.as_file().set_permissions(perms).at("chmod", tmp.path())?;
                }
                tmp.write_all(&header).at("write", tmp.path())?;
                tmp.write_all(&self.encoded_records(0)).at("write", tmp.path())?;
                tmp.persist(path).map_err(|e| crate::fs::IoError {
                    op: "rename to",
                    path: path.to_path_buf(),
                    source: e.error,
                })?;
            }
        }
        self.saved = Some(self.records.len());
        Ok(())
    }

    /// Deletes the index at `path` (it no longer describes the journal). Best effort.
    pub(crate) fn discard(path: &Path) {
        let _ = crate::fs::remove_file(path);
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn record(i: u64) -> Record {
        Record {
            offset: i * 100,
            len: 90,
            flags: SUCCESSFUL | TIMED,
            secs: 1_700_000_000 + i as i64,
            set: i,
            id: i * 7,
            packages: 5,
        }
    }

    #[test]
    fn records_round_trip() {
        let r = Record { offset: u64::MAX - 1, len: 7, flags: REMOVED | LINKED, secs: -5, set: 1, id: 2, packages: 3 };
        let mut buf = [0; RECORD_SIZE];
        r.encode(&mut buf);
        assert_eq!(Record::decode(&buf), r);
    }

    #[test]
    fn saves_whole_then_in_place_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("j.xml");
        std::fs::write(&journal, "<Deployments />").unwrap();
        let stamp = Stamp::of(&File::open(&journal).unwrap(), &journal).unwrap();
        let path = path_of(&journal);
        let layout = Layout { root_start: 1, content_start: 2, tail_start: 3, empty_root: true, garbage: 4 };
        let mut index = Index::new(stamp, layout, (0..10).map(record).collect());
        index.save(&path).unwrap();
        let loaded = Index::load(&path).unwrap();
        assert_eq!(loaded.records, index.records);
        assert_eq!(loaded.layout, layout);
        assert_eq!(loaded.stamp, stamp);
        // Change one record, add one: only the changed part is rewritten.
        let removed = Record { flags: index.records[3].flags | REMOVED, ..index.records[3] };
        index.set(3, removed);
        index.push(record(42));
        index.save(&path).unwrap();
        let loaded = Index::load(&path).unwrap();
        assert_eq!(loaded.records, index.records);
        assert_eq!(loaded.sum, Index::new(stamp, layout, index.records.clone()).sum);
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, HEADER_SIZE + 11 * RECORD_SIZE);
    }

    #[test]
    fn a_damaged_index_is_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("j.xml");
        std::fs::write(&journal, "<Deployments />").unwrap();
        let stamp = Stamp::of(&File::open(&journal).unwrap(), &journal).unwrap();
        let path = path_of(&journal);
        Index::new(stamp, Layout::default(), (0..4).map(record).collect()).save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        // A flipped bit in a record, in the header, a torn end, zeros, nothing.
        let mut damaged = Vec::new();
        let mut flipped = good.clone();
        flipped[HEADER_SIZE + RECORD_SIZE + 3] ^= 1;
        damaged.push(flipped);
        let mut header = good.clone();
        header[35] ^= 1;
        damaged.push(header);
        damaged.push(good[..good.len() - 5].to_vec());
        let mut longer = good.clone();
        longer.extend_from_slice(&[0; RECORD_SIZE]);
        damaged.push(longer);
        let mut swapped = good.clone();
        swapped.copy_within(HEADER_SIZE..HEADER_SIZE + RECORD_SIZE, HEADER_SIZE + 2 * RECORD_SIZE);
        damaged.push(swapped);
        damaged.push(vec![0; good.len()]);
        damaged.push(Vec::new());
        for bytes in damaged {
            std::fs::write(&path, &bytes).unwrap();
            assert!(Index::load(&path).is_none());
        }
        std::fs::write(&path, &good).unwrap();
        assert!(Index::load(&path).is_some());
    }
}
