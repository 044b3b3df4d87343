//! The journal's storage engine: how `DeploymentJournal.xml` is changed in place, crash-safely,
//! at a cost that does not grow with its history.
//!
//! # Changes: edits protected by an undo record
//!
//! Every change is a [`Patch`]: a few [`Edit`]s, each replacing a byte range of the journal
//! in place. An append replaces the tail (`\n</Deployments>`) with the new element and a
//! new tail; a removal overwrites an element with spaces (white space between elements is
//! ignored by every XML reader, the reference's `XDocument` included); completing an entry
//! rewrites it where it stands. Before the first byte of the journal is touched, the bytes
//! the edits will overwrite go to the undo record `<journal>.undo` (with the journal's
//! inode, its length before and after, and a SHA-256 of each edit's new bytes), which is
//! fsync'd. Then the edits are written and the journal is fsync'd; then the index is
//! updated; then the undo record is truncated, which commits the change.
//!
//! The repair rule, applied under the exclusive lock by whoever opens the journal next:
//!
//! * an undo record that is empty, torn (bad checksum) or about another file (inode) is
//!   void: the journal was not touched after it was written, or it was replaced since;
//! * when the journal holds every edit's new bytes at its new length, the change was
//!   complete: the record is voided (this is what makes the truncation of the record, which
//!   is not fsync'd, a safe commit);
//! * otherwise the change was interrupted: the old bytes are written back, the journal is
//!   cut to its old length and fsync'd, the record is voided, and a warning names the change
//!   that was undone ("adding the entry ..."). Nothing committed is ever undone: a change
//!   is committed only once its record is void, and a record is only written by the next
//!   change after the previous one was committed.
//!
//! A file that ends in the middle of the root with no undo record to explain it (written by
//! something else, or copied while being written) is a torn tail: it is cut after its last
//! complete entry and closed again, the file as found is kept beside it
//! (`DeploymentJournal.xml.corrupt-<time>`), and a warning says how many bytes were dropped
//! and which entry ids they mentioned. Anything else that does not parse is moved aside as
//! before.
//!
//! # Why edits in place rather than a rewrite
//!
//! A rewrite (temp file, fsync, rename) costs the whole file on every deployment: 1.5 s and
//! 160 MB at 100,000 entries. An edit costs the bytes it changes plus two fsyncs, whatever
//! the history. The price: a reader that does not take our lock (the reference, a person
//! with `cat`) may see, for the microseconds of a write, or after a crash until the next
//! Calamari run repairs it, a journal that does not end in `</Deployments>`. Our own readers
//! take the lock shared, so they never do.
//!
//! # Completing an entry
//!
//! The in-progress entry a deployment records when it picks its directory is completed at
//! the end ([`Session::replace`]). The rewrite happens where the entry stands, so ids stay
//! unique (the reference removes entries by id and would lose both copies of a duplicated
//! one) and the entry keeps its place in the file:
//!
//! * when it is still the last element (the usual case), the edit rewrites from it to the
//!   end of the file;
//! * when its new text is no longer than the old one (`"False"` becomes `"True"`), it is
//!   written over the old one and padded with spaces;
//! * otherwise (a longer entry with entries after it) the old element is blanked and the new
//!   one appended, in one patch.
//!
//! Blanked bytes are counted as garbage in the index; when garbage reaches half the file
//! (or the file is small, 256 KiB, where a rewrite costs nothing), the journal is compacted:
//! rewritten whole (temp file, fsync, rename, fsync of the directory) from the live
//! elements' bytes, so space is reclaimed at an amortised constant cost per entry. A
//! removal that would itself bring the garbage to half the file skips the blanking and
//! compacts straight away (writing the entries that stay is then the cheaper side).
//!
//! # Sessions
//!
//! A [`Session`] is the journal opened under its lock: shared for readers ([`Access::Read`]),
//! exclusive for writers ([`Access::Write`]), or, for a dry run ([`Access::Inspect`]),
//! shared if the lock file exists and without changing or creating anything. Opening
//! applies the repair rule (a reader that finds something to repair takes the lock
//! exclusively first), then loads the index, or rebuilds it with one streaming pass when it
//! does not describe the file.

use std::fs::File;
use std::io::{BufReader, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::index::{self, Index, Record, Stamp};
use super::xml::{self, Ending, Layout, ScanError};
use super::{DeploymentJournal, Error, JournalEntry};
use crate::fault::checkpoint;
use crate::fs::IoContext as _;
use crate::lock::NamedLock;

/// A journal this small is compacted as soon as it holds any garbage.
const SMALL_JOURNAL: u64 = 256 * 1024;

/// One byte range of the journal replaced in place.
#[derive(Debug, Clone)]
pub(crate) struct Edit {
    /// Where the range starts.
    pub offset: u64,
    /// How many bytes it replaces. Only the last edit may differ from `new.len()`, and then
    /// it must reach the end of the file (it rewrites the tail).
    pub old_len: u64,
    /// The new bytes.
    pub new: Vec<u8>,
}

/// A change to the journal: its edits, in file order, and what it does (for the warning
/// when a crash interrupted it).
#[derive(Debug, Clone)]
pub(crate) struct Patch {
    pub edits: Vec<Edit>,
    pub what: String,
}

// ---------------------------------------------------------------------------------------
// The undo record

const UNDO_MAGIC: &[u8; 8] = b"CLMJUND1";

/// `<journal>.undo`.
pub(crate) fn undo_path_of(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_os_string();
    name.push(".undo");
    PathBuf::from(name)
}

/// What an interrupted change needs to be undone or recognised as complete.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Undo {
    identity: (u64, u64),
    len_before: u64,
    len_after: u64,
    what: String,
    /// Per edit: offset, the old bytes, the length and SHA-256 of the new bytes.
    edits: Vec<(u64, Vec<u8>, u64, [u8; 32])>,
}

impl Undo {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.edits.iter().map(|e| e.1.len() + 56).sum::<usize>());
        out.extend_from_slice(UNDO_MAGIC);
        for v in [self.identity.0, self.identity.1, self.len_before, self.len_after] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(self.what.len() as u64).to_le_bytes());
        out.extend_from_slice(self.what.as_bytes());
        out.extend_from_slice(&(self.edits.len() as u64).to_le_bytes());
        for (offset, old, new_len, new_hash) in &self.edits {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&(old.len() as u64).to_le_bytes());
            out.extend_from_slice(&new_len.to_le_bytes());
            out.extend_from_slice(new_hash);
            out.extend_from_slice(old);
        }
        let check = Sha256::digest(&out);
        out.extend_from_slice(&check);
        out
    }

    /// The record in `bytes`, `None` when it is empty, torn or not a record.
    fn decode(bytes: &[u8]) -> Option<Undo> {
        let (body, check) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if !body.starts_with(UNDO_MAGIC) || Sha256::digest(body)[..] != *check {
            return None;
        }
        let mut cursor = Cursor { bytes: body, at: 8 };
        let identity = (cursor.u64()?, cursor.u64()?);
        let (len_before, len_after) = (cursor.u64()?, cursor.u64()?);
        let what_len = usize::try_from(cursor.u64()?).ok()?;
        let what = String::from_utf8_lossy(cursor.take(what_len)?).into_owned();
        let count = cursor.u64()?;
        let mut edits = Vec::new();
        for _ in 0..count {
            let offset = cursor.u64()?;
            let old_len = usize::try_from(cursor.u64()?).ok()?;
            let new_len = cursor.u64()?;
            let new_hash: [u8; 32] = cursor.take(32)?.try_into().ok()?;
            let old = cursor.take(old_len)?.to_vec();
            edits.push((offset, old, new_len, new_hash));
        }
        Some(Undo { identity, len_before, len_after, what, edits })
    }

    /// Reads the undo file at `path`.
    fn read(path: &Path) -> crate::fs::Result<Found> {
        match crate::fs::read(path) {
            Ok(bytes) if bytes.is_empty() => Ok(Found::Nothing),
            Ok(bytes) => Ok(Undo::decode(&bytes).map_or(Found::Torn, Found::Record)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Found::Nothing),
            Err(e) => Err(e),
        }
    }

    /// Writes the record at `path` durably: the file's data, and the directory when the
    /// file is new.
    fn write(&self, path: &Path) -> crate::fs::Result<()> {
        let existed = path.exists();
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(path).at("open", path)?;
        file.write_all(&self.encode()).at("write", path)?;
        file.sync_data().at("fsync", path)?;
        if !existed {
            crate::fs::sync_parent(path)?;
        }
        Ok(())
    }

    /// Whether `file` holds every edit's new bytes at the new length: the change is complete.
    fn is_applied(&self, file: &File, path: &Path) -> crate::fs::Result<bool> {
        if file.metadata().at("stat", path)?.len() != self.len_after {
            return Ok(false);
        }
        for (offset, _, new_len, new_hash) in &self.edits {
            let mut bytes = vec![0; usize::try_from(*new_len).unwrap_or(usize::MAX)];
            if file.read_exact_at(&mut bytes, *offset).is_err() || Sha256::digest(&bytes)[..] != new_hash[..] {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether `file` is still exactly as before the change (old length, old bytes).
    fn is_untouched(&self, file: &File, path: &Path) -> bool {
        if file.metadata().at("stat", path).map(|m| m.len()).ok() != Some(self.len_before) {
            return false;
        }
        self.edits.iter().all(|(offset, old, _, _)| {
            let mut bytes = vec![0; old.len()];
            file.read_exact_at(&mut bytes, *offset).is_ok() && bytes == *old
        })
    }

    /// Puts the old bytes back and the old length, durably.
    fn roll_back(&self, file: &File, path: &Path) -> crate::fs::Result<()> {
        for (offset, old, _, _) in &self.edits {
            file.write_all_at(old, *offset).at("write", path)?;
        }
        file.set_len(self.len_before).at("truncate", path)?;
        file.sync_data().at("fsync", path)
    }
}

/// What the undo file holds.
enum Found {
    /// Nothing: no change is in flight.
    Nothing,
    /// A record that never became durable (its checksum fails): void, the journal untouched.
    Torn,
    /// A record in force.
    Record(Undo),
}

/// Reads an undo record's fields in order; `None` past its end.
struct Cursor<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Cursor<'b> {
    fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Voids the undo record at `path` (the commit of a change). Not fsync'd: a record that
/// comes back after a power loss is recognised as complete by [`Undo::is_applied`].
fn void_undo(path: &Path) -> crate::fs::Result<()> {
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(file) => file.set_len(0).at("truncate", path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at("open", path),
    }
}

/// The undo record of `patch` on `file` (`len_before` bytes long): the bytes it will
/// overwrite, read now.
fn undo_of(file: &File, path: &Path, len_before: u64, patch: &Patch) -> crate::fs::Result<Undo> {
    let (dev, ino) = {
        use std::os::unix::fs::MetadataExt as _;
        let meta = file.metadata().at("stat", path)?;
        (meta.dev(), meta.ino())
    };
    let mut len_after = len_before;
    let mut edits = Vec::with_capacity(patch.edits.len());
    for (i, edit) in patch.edits.iter().enumerate() {
        let tail = edit.offset + edit.old_len == len_before;
        assert!(
            edit.old_len == edit.new.len() as u64 || (tail && i + 1 == patch.edits.len()),
            "only the last edit of a patch may change the journal's length, and only at its end"
        );
        if tail {
            len_after = edit.offset + edit.new.len() as u64;
        }
        let mut old = vec![0; usize::try_from(edit.old_len).expect("an edit fits in memory")];
        file.read_exact_at(&mut old, edit.offset).at("read", path)?;
        edits.push((edit.offset, old, edit.new.len() as u64, Sha256::digest(&edit.new).into()));
    }
    Ok(Undo { identity: (dev, ino), len_before, len_after, what: patch.what.clone(), edits })
}

/// Writes `patch` to `file` under the undo protocol (module doc), up to but not including
/// the commit.
fn write_patch(file: &File, path: &Path, undo_path: &Path, len_before: u64, patch: &Patch) -> crate::fs::Result<()> {
    let undo = undo_of(file, path, len_before, patch)?;
    let len_after = undo.len_after;
    undo.write(undo_path)?;
    checkpoint("journal-undo-written");
    let written = (|| {
        // The tail first: should we die between two edits, a reader that ignores our lock
        // sees the new element before the old one is blanked (a duplicate), never neither.
        let order =
            patch.edits.iter().rev().take(1).chain(patch.edits.iter().take(patch.edits.len().saturating_sub(1)));
        for edit in order {
            file.write_all_at(&edit.new, edit.offset).at("write", path)?;
            checkpoint("journal-edit-written");
        }
        if len_after < len_before {
            file.set_len(len_after).at("truncate", path)?;
        }
        file.sync_data().at("fsync", path)?;
        checkpoint("journal-synced");
        Ok(())
    })();
    if let Err(e) = written {
        // Put it back now if we can (or see that nothing was written, as when the disk is
        // full); otherwise the record stays in force for the next opener.
        if undo.roll_back(file, path).is_ok() || undo.is_untouched(file, path) {
            let _ = void_undo(undo_path);
        }
        return Err(e);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Sessions

/// How a session holds the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Shared lock; repairs (taking the lock exclusively) what a crash left.
    Read,
    /// Exclusive lock; may change the journal.
    Write,
    /// A dry run: shared lock only when the lock file exists, nothing written, created,
    /// repaired or moved; a torn tail reads as its complete entries.
    Inspect,
}

/// Why an operation on a session stopped.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The index does not describe the journal after all (an entry did not match its
    /// record): rebuild it and try again.
    Stale,
    /// A real error.
    Error(Error),
}

impl<E: Into<Error>> From<E> for Fault {
    fn from(e: E) -> Self {
        Fault::Error(e.into())
    }
}

/// What a session's opening found to tell about the journal it read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Notes {
    /// An [`Access::Inspect`] session found a torn or unreadable journal that a real run
    /// would repair or move aside; why.
    pub damaged: Option<String>,
}

/// The journal opened under its lock, with a valid index.
pub(crate) struct Session<'j> {
    journal: &'j DeploymentJournal,
    access: Access,
    _lock: Option<NamedLock>,
    /// The journal, open for reading (and writing when exclusive); `None` when it does not
    /// exist.
    file: Option<File>,
    index: Index,
    pub(crate) notes: Notes,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // Hand the index to the next session of this journal (it checks the stamp).
        if self.file.is_some() && self.notes.damaged.is_none() {
            self.journal.keep_cached(std::mem::take(&mut self.index));
        }
    }
}

/// What [`Session::prepare`] concluded.
enum Prepared {
    Ready,
    /// Something needs repairing and the lock is only shared.
    NeedsExclusive,
}

impl<'j> Session<'j> {
    /// Opens `journal` for `access` (module doc, "Sessions").
    pub(crate) fn open(journal: &'j DeploymentJournal, access: Access) -> Result<Session<'j>, Error> {
        // Reading a journal that was never written creates nothing (not even its directory).
        let never_written = || !journal.path().exists() && !journal.lock_path().exists();
        let lock = match access {
            Access::Write => Some(journal.lock(true)?),
            Access::Read | Access::Inspect if never_written() => None,
            Access::Read => Some(journal.lock(false)?),
            Access::Inspect if journal.lock_path().exists() => Some(journal.lock(false)?),
            Access::Inspect => None,
        };
        let mut session =
            Session { journal, access, _lock: lock, file: None, index: Index::default(), notes: Notes::default() };
        let mut prepared = session.prepare(false)?;
        if session._lock.is_none() && access == Access::Read && session.file.is_some() {
            // Written meanwhile: read it under the lock after all.
            session._lock = Some(journal.lock(false)?);
            prepared = session.prepare(false)?;
        }
        if let Prepared::NeedsExclusive = prepared {
            // Let go of the shared lock first: two readers upgrading would deadlock.
            session._lock = None;
            session._lock = Some(journal.lock(true)?);
            session.access = Access::Write;
            session.prepare(false)?;
        }
        if access == Access::Write {
            // Writers of the journal all hold its lock, which we hold: any temp file is stale.
            crate::fs::remove_temp_files_of(journal.path());
        }
        Ok(session)
    }

    fn path(&self) -> &'j Path {
        self.journal.path()
    }

    fn exclusive(&self) -> bool {
        self.access == Access::Write
    }

    /// Repairs what a crash left (when allowed) and loads or rebuilds the index.
    fn prepare(&mut self, force_scan: bool) -> Result<Prepared, Error> {
        let path = self.path();
        let undo_path = undo_path_of(path);
        let index_path = index::path_of(path);
        loop {
            if self.access != Access::Inspect {
                match Undo::read(&undo_path)? {
                    Found::Nothing => {}
                    Found::Torn if !self.exclusive() => {}
                    Found::Torn => void_undo(&undo_path)?,
                    Found::Record(_) if !self.exclusive() => return Ok(Prepared::NeedsExclusive),
                    Found::Record(undo) => {
                        self.recover(&undo, &undo_path)?;
                        Index::discard(&index_path);
                    }
                }
            }
            let file = match self.open_file() {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.file = None;
                    self.index = Index::default();
                    return Ok(Prepared::Ready);
                }
                Err(e) => return Err(crate::fs::IoError { op: "open", path: path.to_path_buf(), source: e }.into()),
            };
            let stamp = Stamp::of(&file, path)?;
            self.file = Some(file);
            if !force_scan
                && let Some(index) =
                    self.journal.take_cached(&stamp).or_else(|| Index::load(&index_path).filter(|i| i.stamp == stamp))
            {
                self.index = index;
                return Ok(Prepared::Ready);
            }
            match self.scan_index(stamp)? {
                Ok(mut index) => {
                    if self.access != Access::Inspect {
                        // Best effort: without it the next session scans again.
                        let _ = index.save(&index_path);
                    }
                    self.index = index;
                    return Ok(Prepared::Ready);
                }
                Err(ScanOutcome::Torn { layout, records, reason }) => match self.access {
                    Access::Inspect => {
                        self.notes.damaged = Some(format!("it ends inside an entry ({reason})"));
                        self.index = Index::new(stamp, layout, records);
                        return Ok(Prepared::Ready);
                    }
                    Access::Read => return Ok(Prepared::NeedsExclusive),
                    Access::Write => self.repair_torn(&stamp, &layout, records.len(), &reason)?,
                },
                Err(ScanOutcome::Corrupt(corrupt)) => match self.access {
                    Access::Inspect => {
                        self.notes.damaged = Some(corrupt.to_string());
                        self.file = None;
                        self.index = Index::default();
                        return Ok(Prepared::Ready);
                    }
                    Access::Read => return Ok(Prepared::NeedsExclusive),
                    Access::Write => {
                        self.move_aside(&corrupt)?;
                        Index::discard(&index_path);
                        let _ = void_undo(&undo_path);
                    }
                },
            }
            // Repaired or moved aside: look again.
        }
    }

    fn open_file(&self) -> std::io::Result<File> {
        std::fs::OpenOptions::new().read(true).write(self.exclusive()).open(self.path())
    }

    /// The repair rule for an undo record in force (module doc).
    fn recover(&mut self, undo: &Undo, undo_path: &Path) -> Result<(), Error> {
        let path = self.path();
        let file = match std::fs::OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(void_undo(undo_path)?),
            Err(e) => return Err(crate::fs::IoError { op: "open", path: path.to_path_buf(), source: e }.into()),
        };
        let identity = {
            use std::os::unix::fs::MetadataExt as _;
            let meta = file.metadata().at("stat", path)?;
            (meta.dev(), meta.ino())
        };
        if identity == undo.identity && !undo.is_applied(&file, path)? {
            undo.roll_back(&file, path)?;
            self.journal.warn(&format!(
                "The last change to the deployment journal '{}' was interrupted (the process making it was killed, the machine stopped or a write failed) and has been undone: {}. The journal is as it was before that change.",
                path.display(),
                undo.what
            ));
        }
        void_undo(undo_path)?;
        Ok(())
    }

    /// A streaming reader of the open journal from its first byte.
    fn scanner(&self) -> Result<xml::Scanner<BufReader<&File>>, Error> {
        use std::io::Seek as _;
        let mut file = self.file.as_ref().expect("the journal is open");
        file.seek(std::io::SeekFrom::Start(0)).at("read", self.path())?;
        Ok(xml::Scanner::new(BufReader::with_capacity(256 * 1024, file)).at("read", self.path())?)
    }

    /// One streaming pass over the journal: its records and layout, or why it cannot be used.
    fn scan_index(&self, stamp: Stamp) -> Result<Result<Index, ScanOutcome>, Error> {
        let mut records = Vec::new();
        let mut scanner = self.scanner()?;
        loop {
            match scanner.next_entry() {
                Ok(Some(found)) => records.push(Record::of(&found.entry, found.offset, found.len)),
                Ok(None) => break,
                Err(ScanError::Io(e)) => {
                    return Err(crate::fs::IoError { op: "read", path: self.path().to_path_buf(), source: e }.into());
                }
                Err(ScanError::Corrupt(c)) => return Ok(Err(ScanOutcome::Corrupt(c))),
            }
        }
        Ok(match scanner.ending() {
            Some(Ending::Complete(layout)) => Ok(Index::new(stamp, *layout, records)),
            Some(Ending::Torn { layout, reason }) => {
                Err(ScanOutcome::Torn { layout: *layout, records, reason: reason.clone() })
            }
            None => Err(ScanOutcome::Corrupt(xml::Corrupt("the document was not read to its end".to_string()))),
        })
    }

    /// Cuts a torn journal after its last complete element and closes the root again,
    /// keeping the file as found beside it.
    fn repair_torn(&mut self, stamp: &Stamp, layout: &Layout, kept: usize, reason: &str) -> Result<(), Error> {
        let path = self.path();
        let aside = self.journal.corrupt_path();
        crate::fs::copy(path, &aside)?;
        crate::fs::sync_path(&aside)?;
        let file = self.file.as_ref().expect("the journal is open");
        let keep = layout.tail_start;
        let mut dropped = vec![0; usize::try_from(stamp.len() - keep).expect("the torn tail fits in memory")];
        file.read_exact_at(&mut dropped, keep).at("read", path)?;
        let dropped_ids = ids_mentioned(&String::from_utf8_lossy(&dropped));
        let close = if layout.empty_root { Vec::new() } else { xml::CLOSE.as_bytes().to_vec() };
        let patch = Patch {
            edits: vec![Edit { offset: keep, old_len: stamp.len() - keep, new: close }],
            what: "closing a torn journal".to_string(),
        };
        write_patch(file, path, &undo_path_of(path), stamp.len(), &patch)?;
        void_undo(&undo_path_of(path))?;
        self.journal.warn(&format!(
            "The deployment journal '{}' is unreadable past byte {keep}: {reason}. It was cut after its last complete entry ({kept} entries kept) and closed again; the {} bytes dropped {}. The journal as found was kept at '{}'.",
            path.display(),
            dropped.len(),
            if dropped_ids.is_empty() {
                "held no complete entry".to_string()
            } else {
                format!("mentioned the entry ids {}", dropped_ids.join(", "))
            },
            aside.display()
        ));
        Ok(())
    }

    fn move_aside(&mut self, corrupt: &xml::Corrupt) -> Result<(), Error> {
        let path = self.path();
        self.file = None;
        let aside = self.journal.corrupt_path();
        crate::fs::rename(path, &aside)?;
        crate::fs::sync_parent(path)?;
        self.journal.warn(&format!(
            "The deployment journal '{}' is unreadable ({corrupt}). It was moved to '{}' and a new journal was started; deployments recorded in it are no longer known to retention or to the previous-installation variables.",
            path.display(),
            aside.display()
        ));
        Ok(())
    }

    /// Rebuilds the index from the journal (after [`Fault::Stale`]).
    pub(crate) fn rebuild(&mut self) -> Result<(), Error> {
        Index::discard(&index::path_of(self.path()));
        if let Prepared::NeedsExclusive = self.prepare(true)? {
            self._lock = None;
            self._lock = Some(self.journal.lock(true)?);
            self.access = Access::Write;
            self.prepare(true)?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Reading

    /// The records, in file order (removed ones included: check [`Record::live`]).
    pub(crate) fn records(&self) -> &[Record] {
        self.index.records()
    }

    /// The entry of record `i`, read and checked against its record.
    pub(crate) fn entry(&self, i: usize) -> Result<JournalEntry, Fault> {
        Ok(self.entry_and_bytes(i)?.0)
    }

    fn entry_and_bytes(&self, i: usize) -> Result<(JournalEntry, Vec<u8>), Fault> {
        let record = self.index.records()[i];
        let file = self.file.as_ref().ok_or(Fault::Stale)?;
        let mut bytes = vec![0; record.len as usize];
        if record.end() > self.index.stamp.len() || file.read_exact_at(&mut bytes, record.offset).is_err() {
            return Err(Fault::Stale);
        }
        let entry = xml::parse_entry(&bytes).map_err(|_| Fault::Stale)?;
        let check = Record::of(&entry, record.offset, u64::from(record.len));
        if !record.live() || (Record { flags: record.flags & !index::REMOVED, ..record }) != check {
            return Err(Fault::Stale);
        }
        Ok((entry, bytes))
    }

    /// The id of record `i`, read from its start tag only and checked against the record.
    fn id_of(&self, i: usize) -> Result<String, Fault> {
        let record = self.index.records()[i];
        let file = self.file.as_ref().ok_or(Fault::Stale)?;
        let mut bytes = vec![0; record.len as usize];
        if record.end() > self.index.stamp.len() || file.read_exact_at(&mut bytes, record.offset).is_err() {
            return Err(Fault::Stale);
        }
        let id = xml::start_tag_dirs(&bytes).map_err(|_| Fault::Stale)?.id;
        if index::id_key(&id) != record.id {
            return Err(Fault::Stale);
        }
        Ok(id)
    }

    /// Indexes of the live records matching `keep`.
    pub(crate) fn live_matching(&self, keep: impl Fn(&Record) -> bool) -> Vec<usize> {
        let records = self.index.records();
        (0..records.len()).filter(|&i| records[i].live() && keep(&records[i])).collect()
    }

    /// The directories of every live entry, in file order (entries with a current link,
    /// [`index::LINKED`], whole), read from their start tags only: what the retention guard
    /// needs of the whole journal, at the cost of a sequential read and no XML beyond each
    /// start tag.
    pub(crate) fn for_each_dirs(&self, mut each: impl FnMut(xml::Dirs, Option<JournalEntry>)) -> Result<(), Fault> {
        let Some(file) = self.file.as_ref() else { return Ok(()) };
        const CHUNK: u64 = 1 << 20;
        let mut buf = Vec::new();
        let mut buf_start = 0;
        for (i, record) in self.index.records().iter().enumerate() {
            if !record.live() {
                continue;
            }
            if record.offset < buf_start || record.end() > buf_start + buf.len() as u64 {
                // Read on from this element, a megabyte at a time.
                let len = CHUNK.max(u64::from(record.len)).min(self.index.stamp.len().saturating_sub(record.offset));
                if len < u64::from(record.len) {
                    return Err(Fault::Stale);
                }
                buf.resize(usize::try_from(len).expect("a chunk fits in memory"), 0);
                file.read_exact_at(&mut buf, record.offset).map_err(|_| Fault::Stale)?;
                buf_start = record.offset;
            }
            let at = usize::try_from(record.offset - buf_start).expect("within the chunk");
            let bytes = &buf[at..at + record.len as usize];
            let dirs = xml::start_tag_dirs(bytes).map_err(|_| Fault::Stale)?;
            if index::id_key(&dirs.id) != record.id {
                return Err(Fault::Stale);
            }
            let entry = if record.flags & index::LINKED != 0 { Some(self.entry(i)?) } else { None };
            each(dirs, entry);
        }
        Ok(())
    }

    /// Every entry, in file order, read in one streaming pass over the journal.
    pub(crate) fn for_each_entry(&self, mut each: impl FnMut(JournalEntry)) -> Result<(), Error> {
        if self.file.is_none() {
            return Ok(());
        }
        // Only the sound part of a torn journal an inspection found.
        let limit = self.index.stamp.len();
        let mut scanner = self.scanner()?;
        loop {
            match scanner.next_entry() {
                Ok(Some(found)) if found.offset + found.len <= limit => each(found.entry),
                Ok(Some(_)) | Ok(None) => return Ok(()),
                // Torn or corrupt after it was indexed: only an inspection reads such a file.
                Err(ScanError::Corrupt(_)) => return Ok(()),
                Err(ScanError::Io(e)) => {
                    return Err(crate::fs::IoError { op: "read", path: self.path().to_path_buf(), source: e }.into());
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Writing (exclusive sessions only)

    fn file(&self) -> &File {
        self.file.as_ref().expect("the journal is open")
    }

    /// Applies `patch`, then `update` to the index, saves the index and commits.
    fn change(&mut self, patch: &Patch, update: impl FnOnce(&mut Index)) -> Result<(), Error> {
        assert!(self.exclusive(), "only an exclusive session changes the journal");
        let path = self.path();
        let undo_path = undo_path_of(path);
        write_patch(self.file(), path, &undo_path, self.index.stamp.len(), patch)?;
        update(&mut self.index);
        self.index.stamp = Stamp::of(self.file(), path)?;
        let index_path = index::path_of(path);
        if self.index.save(&index_path).is_err() {
            Index::discard(&index_path);
        }
        checkpoint("journal-indexed");
        void_undo(&undo_path)?;
        checkpoint("journal-committed");
        if self.needs_compaction(0) {
            self.compact()?;
        }
        Ok(())
    }

    /// Adds `entries` at the end of the journal (creating it when missing).
    pub(crate) fn append(&mut self, entries: &[JournalEntry], what: &str) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            return self.rewrite(entries);
        }
        let layout = self.index.layout;
        let (start, mut new) = if layout.empty_root {
            (layout.root_start, b"<Deployments>".to_vec())
        } else {
            (layout.tail_start, Vec::new())
        };
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries {
            new.extend_from_slice(xml::SEPARATOR.as_bytes());
            let text = xml::entry_in_document(entry);
            records.push(Record::of(entry, start + new.len() as u64, text.len() as u64));
            new.extend_from_slice(text.as_bytes());
        }
        new.extend_from_slice(xml::CLOSE.as_bytes());
        let tail_start = records.last().expect("at least one entry").end();
        let patch = Patch {
            edits: vec![Edit { offset: start, old_len: self.index.stamp.len() - start, new }],
            what: what.to_string(),
        };
        self.change(&patch, |index| {
            for record in records {
                index.push(record);
            }
            if index.layout.empty_root {
                index.layout.content_start = index.layout.root_start + "<Deployments>".len() as u64;
                index.layout.empty_root = false;
            }
            index.layout.tail_start = tail_start;
        })
    }

    /// Rewrites the entry with `entry`'s id in place (module doc, "Completing an entry");
    /// appends it when there is none.
    pub(crate) fn replace(&mut self, entry: &JournalEntry) -> Result<(), Fault> {
        let key = index::id_key(&entry.id);
        let mut found = None;
        for i in self.live_matching(|r| r.id == key) {
            let (existing, bytes) = self.entry_and_bytes(i)?;
            if existing.id == entry.id {
                found = Some((i, bytes));
                break;
            }
        }
        let what = format!("completing the entry {}", entry.id);
        let Some((i, old)) = found else { return Ok(self.append(std::slice::from_ref(entry), &what)?) };
        let record = self.index.records()[i];
        let text = xml::entry_in_document(entry).into_bytes();
        let new_record = Record::of(entry, record.offset, text.len() as u64);
        let len = self.index.stamp.len();
        if record.end() == self.index.layout.tail_start {
            // The last element: rewrite from it to the end.
            let mut new = text;
            new.extend_from_slice(xml::CLOSE.as_bytes());
            let patch = Patch { edits: vec![Edit { offset: record.offset, old_len: len - record.offset, new }], what };
            self.change(&patch, |index| {
                index.set(i, new_record);
                index.layout.tail_start = new_record.end();
            })?;
        } else if text.len() <= old.len() {
            // Over the old one, padded with white space.
            let pad = old.len() - text.len();
            let mut new = text;
            new.resize(old.len(), b' ');
            let patch = Patch { edits: vec![Edit { offset: record.offset, old_len: old.len() as u64, new }], what };
            self.change(&patch, |index| {
                index.set(i, new_record);
                index.layout.garbage += pad as u64;
            })?;
        } else {
            // Blank the old one, append the new one.
            let start = self.index.layout.tail_start;
            let mut new = xml::SEPARATOR.as_bytes().to_vec();
            let appended = Record::of(entry, start + new.len() as u64, text.len() as u64);
            new.extend_from_slice(&text);
            new.extend_from_slice(xml::CLOSE.as_bytes());
            let patch = Patch {
                edits: vec![
                    Edit { offset: record.offset, old_len: old.len() as u64, new: blank(&old) },
                    Edit { offset: start, old_len: len - start, new },
                ],
                what,
            };
            self.change(&patch, |index| {
                index.set(i, Record { flags: record.flags | index::REMOVED, ..record });
                index.push(appended);
                index.layout.tail_start = appended.end();
                index.layout.garbage += old.len() as u64;
            })?;
        }
        Ok(())
    }

    /// Removes the entries with these ids; returns how many were removed. They are blanked
    /// in place, unless that would leave the journal half garbage: then the journal is
    /// compacted straight away (written anew from the entries that stay), which is cheaper
    /// than blanking most of it first.
    pub(crate) fn remove(&mut self, ids: &[String]) -> Result<usize, Fault> {
        if ids.is_empty() || self.file.is_none() {
            return Ok(0);
        }
        let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let keys: std::collections::HashSet<u64> = ids.iter().map(|id| index::id_key(id)).collect();
        let mut removed = Vec::new();
        let mut bytes_removed = 0;
        for i in self.live_matching(|r| keys.contains(&r.id)) {
            if wanted.contains(self.id_of(i)?.as_str()) {
                removed.push(i);
                bytes_removed += u64::from(self.index.records()[i].len);
            }
        }
        if removed.is_empty() {
            return Ok(0);
        }
        let count = removed.len();
        let mark = |index: &mut Index| {
            for &i in &removed {
                let record = index.records()[i];
                index.set(i, Record { flags: record.flags | index::REMOVED, ..record });
                index.layout.garbage += u64::from(record.len);
            }
        };
        if self.needs_compaction(bytes_removed) {
            mark(&mut self.index);
            self.compact()?;
            return Ok(count);
        }
        let mut edits = Vec::with_capacity(count);
        for &i in &removed {
            let record = self.index.records()[i];
            let mut old = vec![0; record.len as usize];
            self.file().read_exact_at(&mut old, record.offset).at("read", self.path())?;
            edits.push(Edit { offset: record.offset, old_len: old.len() as u64, new: blank(&old) });
        }
        let what = match count {
            1 => "removing 1 entry".to_string(),
            n => format!("removing {n} entries"),
        };
        self.change(&Patch { edits, what }, mark)?;
        Ok(count)
    }

    /// Whether the journal, with `more` bytes of garbage, is due for compaction.
    fn needs_compaction(&self, more: u64) -> bool {
        let garbage = self.index.layout.garbage + more;
        let len = self.index.stamp.len();
        garbage > 0 && (garbage * 2 >= len || len <= SMALL_JOURNAL)
    }

    /// Replaces the whole journal with `entries` (temp file, fsync, rename, fsync of the
    /// directory), keeping its mode.
    pub(crate) fn rewrite(&mut self, entries: &[JournalEntry]) -> Result<(), Error> {
        assert!(self.exclusive(), "only an exclusive session changes the journal");
        let path = self.path();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fs::create_dir_all(dir)?;
        }
        let (bytes, places) = xml::serialise_with_offsets(entries);
        // Keep the journal's mode (a new one gets the usual 0644, not the temp file's 0600).
        crate::fs::write_atomic_keeping_mode(path, &bytes, 0o644)?;
        let records = entries.iter().zip(places).map(|(e, (offset, len))| Record::of(e, offset, len)).collect();
        let layout = scan_layout(&bytes);
        self.reopen(layout, records)
    }

    /// After the journal was replaced by a rename: open the new file, index it, void any
    /// undo record (it is about the old inode).
    fn reopen(&mut self, layout: Layout, records: Vec<Record>) -> Result<(), Error> {
        let path = self.path();
        let file = self.open_file().at("open", path)?;
        let stamp = Stamp::of(&file, path)?;
        self.file = Some(file);
        self.index = Index::new(stamp, layout, records);
        let index_path = index::path_of(path);
        if self.index.save(&index_path).is_err() {
            Index::discard(&index_path);
        }
        void_undo(&undo_path_of(path))?;
        Ok(())
    }

    /// Rewrites the journal from its live elements' bytes, dropping the garbage.
    pub(crate) fn compact(&mut self) -> Result<(), Error> {
        let path = self.path();
        let live: Vec<Record> = self.index.records().iter().copied().filter(Record::live).collect();
        if live.is_empty() {
            return self.rewrite(&[]);
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.calamari{}.", std::process::id()))
            .suffix(".tmp")
            .tempfile_in(dir)
            .at("create temporary file in", dir)?;
        let file = self.file();
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, tmp.as_file());
        let mut prefix =
            vec![0; usize::try_from(self.index.layout.content_start).expect("the prologue fits in memory")];
        file.read_exact_at(&mut prefix, 0).at("read", path)?;
        out.write_all(&prefix).at("write", tmp.path())?;
        let mut at = prefix.len() as u64;
        let mut records = Vec::with_capacity(live.len());
        let mut bytes = Vec::new();
        for record in &live {
            bytes.resize(record.len as usize, 0);
            file.read_exact_at(&mut bytes, record.offset).at("read", path)?;
            out.write_all(xml::SEPARATOR.as_bytes()).at("write", tmp.path())?;
            at += xml::SEPARATOR.len() as u64;
            out.write_all(&bytes).at("write", tmp.path())?;
            records.push(Record { offset: at, ..*record });
            at += u64::from(record.len);
        }
        out.write_all(xml::CLOSE.as_bytes()).at("write", tmp.path())?;
        out.flush().at("write", tmp.path())?;
        drop(out);
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = file.metadata().at("stat", path)?.permissions().mode() & 0o7777;
            tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode)).at("chmod", tmp.path())?;
        }
        tmp.as_file().sync_all().at("fsync", tmp.path())?;
        checkpoint("journal-compaction-written");
        tmp.persist(path).map_err(|e| crate::fs::IoError {
            op: "rename to",
            path: path.to_path_buf(),
            source: e.error,
        })?;
        crate::fs::sync_parent(path)?;
        checkpoint("journal-compacted");
        let layout = Layout {
            root_start: self.index.layout.root_start,
            content_start: self.index.layout.content_start,
            tail_start: at,
            empty_root: false,
            garbage: 0,
        };
        self.reopen(layout, records)
    }
}

/// Why a scan could not index the journal.
enum ScanOutcome {
    Torn { layout: Layout, records: Vec<Record>, reason: String },
    Corrupt(xml::Corrupt),
}

/// The layout of a document we just serialised.
fn scan_layout(bytes: &[u8]) -> Layout {
    let mut scanner = xml::Scanner::new(bytes).expect("reading memory cannot fail");
    while let Ok(Some(_)) = scanner.next_entry() {}
    match scanner.ending() {
        Some(Ending::Complete(layout)) => *layout,
        _ => unreachable!("a serialised journal is a complete document"),
    }
}

/// The bytes of an element turned into white space, its line breaks kept.
fn blank(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|&b| if b == b'\n' { b'\n' } else { b' ' }).collect()
}

/// The `Id="..."` values in a piece of (possibly torn) XML.
fn ids_mentioned(text: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(" Id=\"") {
        rest = &rest[at + 5..];
        let Some(end) = rest.find('"') else { break };
        ids.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    ids
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests {
    use super::*;
    use crate::Log;
    use crate::journal::JournalPackage;
    use chrono::TimeZone as _;

    fn entry(id: &str, set: &str, ok: bool) -> JournalEntry {
        JournalEntry {
            id: id.into(),
            environment_id: "Environments-1".into(),
            project_id: "Projects-1".into(),
            retention_policy_set: set.into(),
            installed_on: Some(chrono::Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()),
            extracted_to: Some(format!("/apps/Acme/{id}")),
            was_successful: ok,
            packages: vec![JournalPackage {
                package_id: "Acme".into(),
                package_version: "1.0.0".into(),
                deployed_from: None,
            }],
            ..JournalEntry::default()
        }
    }

    /// A journal of `entries` written in one go, in a temp dir; and its log.
    fn journal_of(entries: &[JournalEntry]) -> (tempfile::TempDir, DeploymentJournal, crate::log::SharedBuffer) {
        let dir = tempfile::tempdir().unwrap();
        let (log, out, _) = Log::capture();
        let journal = DeploymentJournal::at(dir.path().join("DeploymentJournal.xml")).with_log(log);
        if !entries.is_empty() {
            journal.update(|all| all.extend(entries.iter().cloned())).unwrap();
        }
        (dir, journal, out)
    }

    fn ids(journal: &DeploymentJournal) -> Vec<String> {
        journal.entries().unwrap().into_iter().map(|e| e.id).collect()
    }

    /// Enough entries to make the journal bigger than [`SMALL_JOURNAL`], so changes leave
    /// their garbage in place instead of compacting.
    fn many(n: usize) -> Vec<JournalEntry> {
        (0..n).map(|i| entry(&format!("seed-{i}"), "Other", true)).collect()
    }

    #[test]
    fn a_small_journal_stays_byte_for_byte_the_references() {
        let (_dir, journal, _) = journal_of(&[]);
        let pending = entry("a", "S", false);
        journal.append(&pending, "adding").unwrap();
        assert_eq!(std::fs::read(journal.path()).unwrap(), xml::serialise(std::slice::from_ref(&pending)));
        // Completed while last: rewritten from its start.
        let done = JournalEntry { was_successful: true, ..pending.clone() };
        journal.replace(&done).unwrap();
        assert_eq!(std::fs::read(journal.path()).unwrap(), xml::serialise(std::slice::from_ref(&done)));
        // Completed with another entry after it: in place, then compacted (small journal).
        let b = entry("b", "S", false);
        journal.append(&b, "adding").unwrap();
        let shorter = JournalEntry { packages: Vec::new(), ..done.clone() };
        journal.replace(&shorter).unwrap();
        assert_eq!(std::fs::read(journal.path()).unwrap(), xml::serialise(&[shorter.clone(), b.clone()]));
        // Longer, not last: blanked and appended, then compacted: it moves to the end.
        let longer = JournalEntry { current_link: Some("/srv/current".into()), ..shorter.clone() };
        journal.replace(&longer).unwrap();
        assert_eq!(std::fs::read(journal.path()).unwrap(), xml::serialise(&[b.clone(), longer.clone()]));
        assert_eq!(journal.remove_entries(&["b".to_string()]).unwrap(), 1);
        assert_eq!(std::fs::read(journal.path()).unwrap(), xml::serialise(std::slice::from_ref(&longer)));
        assert_eq!(journal.remove_entries(&["a".to_string(), "nope".to_string()]).unwrap(), 1);
        assert_eq!(std::fs::read(journal.path()).unwrap(), xml::serialise(&[]));
        journal.append(&b, "adding").unwrap();
        assert_eq!(std::fs::read(journal.path()).unwrap(), xml::serialise(std::slice::from_ref(&b)));
    }

    #[test]
    fn a_big_journal_is_changed_in_place_and_compacted_when_half_garbage() {
        let seeds = many(1200);
        let (_dir, journal, _) = journal_of(&seeds);
        let size = std::fs::metadata(journal.path()).unwrap().len();
        assert!(size > SMALL_JOURNAL, "{size}");
        let pending = entry("a", "S", false);
        journal.append(&pending, "adding").unwrap();
        let b = entry("b", "S", true);
        journal.append(&b, "adding").unwrap();
        // Shorter, in place with padding; longer, blanked and appended.
        let done = JournalEntry { was_successful: true, ..pending.clone() };
        journal.replace(&done).unwrap();
        let text = std::fs::read_to_string(journal.path()).unwrap();
        let padded = format!("{} {}{}", xml::entry_in_document(&done), xml::SEPARATOR, xml::entry_in_document(&b));
        assert!(text.contains(&padded), "written over the old one, padded with a space");
        let linked = JournalEntry { current_link: Some("/srv/current".into()), ..done.clone() };
        journal.replace(&linked).unwrap();
        let size_with_ab = std::fs::metadata(journal.path()).unwrap().len();
        let mut expected: Vec<String> = seeds.iter().map(|e| e.id.clone()).collect();
        expected.extend(["b".to_string(), "a".to_string()]);
        assert_eq!(ids(&journal), expected);
        // The file parses on its own, and the reference would see each id once.
        let parsed = xml::parse(&std::fs::read(journal.path()).unwrap()).unwrap();
        assert_eq!(parsed.len(), 1202);
        assert_eq!(parsed.last().unwrap(), &linked);
        // Removing under half leaves blanks; past half, the journal is compacted.
        let first: Vec<String> = seeds[..300].iter().map(|e| e.id.clone()).collect();
        assert_eq!(journal.remove_entries(&first).unwrap(), 300);
        assert_eq!(std::fs::metadata(journal.path()).unwrap().len(), size_with_ab, "blanked in place");
        assert!(std::fs::read_to_string(journal.path()).unwrap().contains(&" ".repeat(200)));
        let rest: Vec<String> = seeds[300..].iter().map(|e| e.id.clone()).collect();
        assert_eq!(journal.remove_entries(&rest).unwrap(), 900);
        assert_eq!(std::fs::read(journal.path()).unwrap(), xml::serialise(&[b, linked]));
    }

    /// Writes the undo record of `patch` and then only the edits `apply` lists, as a
    /// process killed in the middle of the change leaves them.
    fn interrupt(journal: &DeploymentJournal, patch: &Patch, apply: &[usize]) {
        let path = journal.path();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
        let len = file.metadata().unwrap().len();
        let undo = undo_of(&file, path, len, patch).unwrap();
        undo.write(&undo_path_of(path)).unwrap();
        for &i in apply {
            file.write_all_at(&patch.edits[i].new, patch.edits[i].offset).unwrap();
        }
    }

    /// The patch that blanks `a`'s element and appends `new`, as a replace makes it.
    fn blank_and_append(journal: &DeploymentJournal, new: &JournalEntry) -> Patch {
        let bytes = std::fs::read(journal.path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let element = xml::entry_in_document(&entry("a", "S", false));
        let offset = text.find(&element).unwrap() as u64;
        let close = bytes.len() as u64 - xml::CLOSE.len() as u64;
        let mut appended = format!("{}{}", xml::SEPARATOR, xml::entry_in_document(new)).into_bytes();
        appended.extend_from_slice(xml::CLOSE.as_bytes());
        Patch {
            edits: vec![
                Edit { offset, old_len: element.len() as u64, new: blank(element.as_bytes()) },
                Edit { offset: close, old_len: xml::CLOSE.len() as u64, new: appended },
            ],
            what: "completing the entry a".to_string(),
        }
    }

    #[test]
    fn an_interrupted_change_is_undone_and_a_complete_one_kept() {
        let start = [entry("a", "S", false), entry("b", "S", true)];
        let linked = JournalEntry { current_link: Some("/srv/current".into()), ..entry("a", "S", true) };
        // Killed after the tail edit only (the new element written, the old not blanked),
        // after none, and with the undo record itself torn.
        for (apply, torn_record) in [(vec![1], false), (vec![], false), (vec![], true)] {
            let (_dir, journal, out) = journal_of(&start);
            let before = std::fs::read(journal.path()).unwrap();
            let patch = blank_and_append(&journal, &linked);
            interrupt(&journal, &patch, &apply);
            if torn_record {
                let undo = undo_path_of(journal.path());
                let len = std::fs::metadata(&undo).unwrap().len();
                std::fs::OpenOptions::new().write(true).open(&undo).unwrap().set_len(len - 3).unwrap();
            }
            assert_eq!(ids(&journal), ["a", "b"], "{apply:?} {torn_record}");
            assert_eq!(std::fs::read(journal.path()).unwrap(), before, "{apply:?}");
            // A torn record was never in force (it is fsync'd before any edit): nothing to say.
            assert_eq!(
                out.contents().contains("has been undone: completing the entry a"),
                !torn_record,
                "{}",
                out.contents()
            );
            if torn_record {
                journal.append(&entry("c", "S", true), "adding").unwrap();
            }
            assert_eq!(std::fs::metadata(undo_path_of(journal.path())).unwrap().len(), 0, "the record is void");
        }
        // Killed after both edits, before the commit: the change stands, silently.
        let (_dir, journal, out) = journal_of(&start);
        let patch = blank_and_append(&journal, &linked);
        interrupt(&journal, &patch, &[0, 1]);
        let after = journal.entries().unwrap();
        assert_eq!(after.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(after[1], linked);
        assert!(!out.contents().contains("undone"), "{}", out.contents());
        // A record about another file (the journal was replaced since) is ignored.
        let (_dir, journal, out) = journal_of(&start);
        let patch = blank_and_append(&journal, &linked);
        interrupt(&journal, &patch, &[]);
        let mut replaced = start.to_vec();
        replaced.push(entry("c", "S", true));
        crate::fs::write_atomic(journal.path(), xml::serialise(&replaced)).unwrap();
        assert_eq!(ids(&journal), ["a", "b", "c"]);
        assert!(!out.contents().contains("undone"));
    }

    #[test]
    fn a_torn_tail_is_cut_after_the_last_complete_entry() {
        let all = [entry("a", "S", true), entry("b", "S", true), entry("c", "S", true)];
        let (dir, journal, out) = journal_of(&all);
        let bytes = std::fs::read(journal.path()).unwrap();
        let cut = String::from_utf8_lossy(&bytes).find("<Deployment Id=\"c\"").unwrap() + 40;
        std::fs::write(journal.path(), &bytes[..cut]).unwrap();
        assert_eq!(ids(&journal), ["a", "b"]);
        assert_eq!(std::fs::read(journal.path()).unwrap(), xml::serialise(&all[..2]));
        let text = out.contents();
        assert!(text.contains("is unreadable past byte") && text.contains("the entry ids c"), "{text}");
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read(&aside[0]).unwrap(), &bytes[..cut], "the file as found is kept");
        // A journal that only lost its closing tag keeps everything.
        let (_dir, journal, out) = journal_of(&all);
        let bytes = std::fs::read(journal.path()).unwrap();
        std::fs::write(journal.path(), &bytes[..bytes.len() - 5]).unwrap();
        assert_eq!(ids(&journal), ["a", "b", "c"]);
        assert!(out.contents().contains("held no complete entry"), "{}", out.contents());
    }

    #[test]
    fn an_index_that_does_not_describe_the_journal_is_rebuilt() {
        let (_dir, journal, _) = journal_of(&[entry("a", "S", true), entry("b", "T", true)]);
        assert_eq!(journal.latest_installation("S").unwrap().unwrap().id, "a");
        // An index whose records lie (consistent hash, wrong sets) is caught by the check
        // of each entry read through it.
        let path = index::path_of(journal.path());
        let mut lying = Index::load(&path).unwrap();
        let (first, second) = (lying.records()[0], lying.records()[1]);
        lying.set(0, Record { set: second.set, ..first });
        lying.set(1, Record { set: first.set, ..second });
        lying.save(&path).unwrap();
        // A new instance: this process's cached index would otherwise be used.
        let journal = DeploymentJournal::at(journal.path());
        assert_eq!(journal.latest_installation("S").unwrap().unwrap().id, "a");
        assert_eq!(journal.latest_installation("T").unwrap().unwrap().id, "b");
        // The journal replaced behind our back (as the reference writes it: a new file).
        let mut replaced = xml::parse(&std::fs::read(journal.path()).unwrap()).unwrap();
        replaced.push(entry("c", "S", true));
        crate::fs::write_atomic(journal.path(), xml::serialise(&replaced)).unwrap();
        assert_eq!(journal.latest_installation("S").unwrap().unwrap().id, "c");
        // The index deleted, or garbage.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(journal.entries_in_set("S").unwrap().len(), 2);
        std::fs::write(&path, b"garbage").unwrap();
        assert_eq!(journal.entries_in_set("T").unwrap().len(), 1);
    }

    #[test]
    fn a_change_by_another_process_is_seen_through_the_cached_index() {
        // `first` and `second` stand for two processes (each keeps its own index in memory).
        let mut all = many(1000);
        all.insert(500, entry("a", "S", false));
        let (_dir, first, _) = journal_of(&all);
        let second = DeploymentJournal::at(first.path());
        assert_eq!(first.latest_successful_installation("S").unwrap(), None);
        let size = std::fs::metadata(first.path()).unwrap().len();
        // Completed in place, far from the end: the journal keeps its size and its tail.
        let done = JournalEntry { was_successful: true, ..entry("a", "S", false) };
        second.replace(&done).unwrap();
        assert_eq!(std::fs::metadata(first.path()).unwrap().len(), size);
        assert_eq!(first.latest_successful_installation("S").unwrap(), Some(done));
        assert_eq!(first.entries_in_set("Other").unwrap().len(), 1000);
    }

    #[test]
    fn an_inspection_changes_nothing() {
        let all = [entry("a", "S", true), entry("b", "S", true)];
        let (dir, journal, _) = journal_of(&all);
        let bytes = std::fs::read(journal.path()).unwrap();
        std::fs::write(journal.path(), &bytes[..bytes.len() - 30]).unwrap();
        std::fs::remove_file(index::path_of(journal.path())).unwrap();
        let listing = || {
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let before = listing();
        let read = journal
            .with_session(Access::Inspect, |s| {
                let mut seen = Vec::new();
                s.for_each_entry(|e| seen.push(e.id))?;
                Ok((seen, s.notes.damaged.clone()))
            })
            .unwrap();
        assert_eq!(read.0, ["a"]);
        assert!(read.1.unwrap().contains("ends inside"));
        assert_eq!(listing(), before);
        assert_eq!(std::fs::read(journal.path()).unwrap(), &bytes[..bytes.len() - 30]);
    }

    #[test]
    fn undo_records_round_trip_and_torn_ones_are_void() {
        let undo = Undo {
            identity: (1, 2),
            len_before: 100,
            len_after: 120,
            what: "adding the entry x".to_string(),
            edits: vec![(10, b"old".to_vec(), 5, [7; 32]), (90, b"\n</Deployments>".to_vec(), 30, [9; 32])],
        };
        let bytes = undo.encode();
        assert_eq!(Undo::decode(&bytes), Some(undo));
        for cut in [0, 1, 8, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(Undo::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 4;
        assert_eq!(Undo::decode(&flipped), None);
        assert_eq!(Undo::decode(&vec![0; bytes.len()]), None);
    }

    #[test]
    fn ids_in_a_torn_tail() {
        let tail = "\n  <Deployment Id=\"a-1\" EnvironmentId=\"E\" />\n  <Deployment Id=\"b-2\" Ret";
        assert_eq!(ids_mentioned(tail), ["a-1", "b-2"]);
        assert!(ids_mentioned("\n  <Deploym").is_empty());
        assert!(ids_mentioned(" Id=\"unterminated").is_empty());
    }

    #[test]
    fn blanking_keeps_line_breaks() {
        assert_eq!(blank(b"<a>\n  <b />\n</a>"), b"   \n       \n    ");
    }
}
