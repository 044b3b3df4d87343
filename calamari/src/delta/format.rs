//! The Octodiff file formats: reading and writing signatures and deltas.
//!
//! Integers are little-endian, names are .NET strings (a 7-bit varint length, then the
//! bytes).
//!
//! ```text
//! signature  "OCTOSIG" 0x01 name("SHA1") name("Adler32"|"Adler32V2") ">>>"
//!            per chunk: int16 length | uint32 rolling checksum | SHA1 (20 bytes)
//! delta      "OCTODELTA" 0x01 name("SHA1") int32 20 | SHA1 of the new file | ">>>"
//!            commands to the end: 0x60 int64 start int64 length  (copy from the basis)
//!                                 0x80 int64 length, the bytes    (literal data)
//! ```
//!
//! Unlike Octodiff's reader, ours trusts nothing: every length is checked against what is
//! left of the file (and a copy against the basis) before anything is read or allocated,
//! an unknown command byte or a cut command is an error, and reading goes through a
//! bounded buffer.

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::checksum::Algorithm;
use super::error::{Error, FileKind};
use crate::fs::IoContext as _;

pub(crate) const SIGNATURE_MAGIC: &[u8] = b"OCTOSIG";
pub(crate) const DELTA_MAGIC: &[u8] = b"OCTODELTA";
pub(crate) const END_OF_METADATA: &[u8] = b">>>";
pub(crate) const VERSION: u8 = 1;
pub(crate) const COPY: u8 = 0x60;
pub(crate) const DATA: u8 = 0x80;
pub(crate) const HASH_NAME: &str = "SHA1";
pub(crate) const HASH_LEN: usize = 20;
/// One chunk record of a signature: int16 + uint32 + SHA1.
pub(crate) const CHUNK_RECORD: u64 = 2 + 4 + HASH_LEN as u64;
/// The longest algorithm name we read (a name is a few bytes; more is damage).
const MAX_NAME: usize = 64;

/// A SHA-1.
pub(crate) type Sha1 = [u8; HASH_LEN];

/// One chunk of a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Where it starts in the basis (the sum of the lengths before it).
    pub start: u64,
    /// Its length (1 to 32767).
    pub length: u16,
    /// Its rolling checksum.
    pub checksum: u32,
    /// Its SHA-1.
    pub hash: Sha1,
}

/// A signature as read.
#[derive(Debug, Clone)]
pub struct Signature {
    /// The rolling checksum its chunks were summed with.
    pub algorithm: Algorithm,
    /// The chunks, in basis order.
    pub chunks: Vec<Chunk>,
}

/// A reader that knows its file's path, length and position, for precise errors.
pub(crate) struct Source<R> {
    inner: R,
    kind: FileKind,
    path: PathBuf,
    pos: u64,
    len: u64,
}

impl Source<BufReader<std::fs::File>> {
    pub(crate) fn open(path: &Path, kind: FileKind) -> Result<Self, Error> {
        let file = crate::fs::open(path)?;
        let len = file.metadata().at("read metadata of", path)?.len();
        Ok(Source { inner: BufReader::with_capacity(1 << 16, file), kind, path: path.to_path_buf(), pos: 0, len })
    }
}

impl<R: Read> Source<R> {
    pub(crate) fn remaining(&self) -> u64 {
        self.len - self.pos
    }

    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    fn truncated(&self, offset: u64, what: impl Into<String>) -> Error {
        Error::Truncated { kind: self.kind, path: self.path.clone(), offset, len: self.len, what: what.into() }
    }

    pub(crate) fn corrupt(&self, offset: u64, problem: impl Into<String>) -> Error {
        Error::Corrupt { kind: self.kind, path: self.path.clone(), offset, problem: problem.into() }
    }

    /// Reads exactly `buf.len()` bytes, which the caller has checked are there; a file that
    /// shrank meanwhile reads as truncated.
    pub(crate) fn read_exact(&mut self, buf: &mut [u8], start: u64, what: &str) -> Result<(), Error> {
        if (buf.len() as u64) > self.remaining() {
            return Err(self.truncated(start, what));
        }
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(self.truncated(start, what)),
            Err(e) => Err(crate::fs::IoError { op: "read", path: self.path.clone(), source: e }.into()),
        }
    }

    fn array<const N: usize>(&mut self, start: u64, what: &str) -> Result<[u8; N], Error> {
        let mut b = [0u8; N];
        self.read_exact(&mut b, start, what)?;
        Ok(b)
    }

    fn header_bytes(&mut self, expected: &[u8], what: &str) -> Result<bool, Error> {
        let start = self.pos;
        let mut b = vec![0u8; expected.len()];
        self.read_exact(&mut b, start, what)?;
        Ok(b == expected)
    }

    /// A .NET string: a 7-bit varint length, then that many UTF-8 bytes.
    fn name(&mut self, what: &str) -> Result<String, Error> {
        let start = self.pos;
        let mut len = 0usize;
        for shift in (0..35).step_by(7) {
            let [b] = self.array::<1>(start, what)?;
            len |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            if shift == 28 {
                return Err(self.corrupt(start, format!("the length of {what} is malformed")));
            }
        }
        if len > MAX_NAME {
            return Err(self.corrupt(start, format!("{what} is {len} bytes long")));
        }
        let mut b = vec![0u8; len];
        self.read_exact(&mut b, start, what)?;
        String::from_utf8(b).map_err(|_| self.corrupt(start, format!("{what} is not text")))
    }

    /// Magic, version and hash name, shared by both formats.
    fn preamble(&mut self, magic: &'static [u8], magic_name: &'static str) -> Result<(), Error> {
        if !self.header_bytes(magic, "the header")? {
            return Err(Error::BadMagic { kind: self.kind, path: self.path.clone(), magic: magic_name });
        }
        let [version] = self.array::<1>(self.pos, "the header")?;
        if version != VERSION {
            return Err(Error::NewerVersion { kind: self.kind, path: self.path.clone(), version });
        }
        let hash = self.name("the hash algorithm name")?;
        if hash != HASH_NAME {
            return Err(Error::UnsupportedHash { kind: self.kind, path: self.path.clone(), name: hash });
        }
        Ok(())
    }

    fn end_of_metadata(&mut self) -> Result<(), Error> {
        let start = self.pos;
        if !self.header_bytes(END_OF_METADATA, "the header")? {
            return Err(self.corrupt(start, "the header does not end with >>>"));
        }
        Ok(())
    }
}

/// Reads a whole signature (its size is proportional to the basis's number of chunks,
/// known from the file's length before anything is allocated).
///
/// # Errors
/// A damaged or unsupported signature, or a read failure.
pub fn read_signature(path: &Path) -> Result<Signature, Error> {
    let mut src = Source::open(path, FileKind::Signature)?;
    src.preamble(SIGNATURE_MAGIC, "OCTOSIG")?;
    let name = src.name("the rolling checksum name")?;
    let algorithm = Algorithm::from_name(&name)
        .ok_or_else(|| Error::UnsupportedRollingChecksum { path: path.to_path_buf(), name })?;
    src.end_of_metadata()?;
    let records = src.remaining() / CHUNK_RECORD;
    if src.remaining() % CHUNK_RECORD != 0 {
        let offset = src.position() + records * CHUNK_RECORD;
        return Err(src.truncated(offset, "a chunk record (the last chunk has data missing)"));
    }
    let mut chunks = Vec::with_capacity(usize::try_from(records).unwrap_or(0));
    let mut start = 0u64;
    for _ in 0..records {
        let offset = src.position();
        let record: [u8; CHUNK_RECORD as usize] = src.array(offset, "a chunk record")?;
        let length = i16::from_le_bytes([record[0], record[1]]);
        if length <= 0 {
            return Err(src.corrupt(offset, format!("a chunk of length {length}")));
        }
        let checksum = u32::from_le_bytes([record[2], record[3], record[4], record[5]]);
        let mut hash = [0u8; HASH_LEN];
        hash.copy_from_slice(&record[6..]);
        chunks.push(Chunk { start, length: length as u16, checksum, hash });
        start += length as u64;
    }
    Ok(Signature { algorithm, chunks })
}

/// Writes a signature's header.
pub(crate) fn write_signature_header(w: &mut impl Write, algorithm: Algorithm) -> std::io::Result<()> {
    w.write_all(SIGNATURE_MAGIC)?;
    w.write_all(&[VERSION])?;
    write_name(w, HASH_NAME)?;
    write_name(w, algorithm.name())?;
    w.write_all(END_OF_METADATA)
}

/// Writes one chunk record.
pub(crate) fn write_chunk(w: &mut impl Write, length: u16, checksum: u32, hash: &Sha1) -> std::io::Result<()> {
    w.write_all(&length.to_le_bytes())?;
    w.write_all(&checksum.to_le_bytes())?;
    w.write_all(hash)
}

fn write_name(w: &mut impl Write, name: &str) -> std::io::Result<()> {
    // Our names are all shorter than 128 bytes: a one-byte length.
    debug_assert!(name.len() < 128);
    w.write_all(&[name.len() as u8])?;
    w.write_all(name.as_bytes())
}

/// One command of a delta, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Copy `length` bytes of the basis from `start`.
    Copy {
        /// Offset in the basis.
        start: u64,
        /// Bytes to copy.
        length: u64,
    },
    /// `length` literal bytes follow in the delta (read them with [`DeltaReader::read_data`]).
    Data {
        /// Bytes that follow.
        length: u64,
    },
}

/// Reads a delta: the header at [`DeltaReader::open`], then one command at a time.
pub struct DeltaReader {
    src: Source<BufReader<std::fs::File>>,
    expected_hash: Sha1,
    basis_len: u64,
    data_left: u64,
}

impl DeltaReader {
    /// Opens `path` and reads its header; copies will be checked against a basis of
    /// `basis_len` bytes.
    ///
    /// # Errors
    /// A damaged or unsupported header, or a read failure.
    pub fn open(path: &Path, basis_len: u64) -> Result<DeltaReader, Error> {
        let mut src = Source::open(path, FileKind::Delta)?;
        src.preamble(DELTA_MAGIC, "OCTODELTA")?;
        let start = src.position();
        let hash_len = i32::from_le_bytes(src.array(start, "the header")?);
        if hash_len != HASH_LEN as i32 {
            return Err(src.corrupt(start, format!("a SHA1 hash of {hash_len} bytes")));
        }
        let expected_hash = src.array(start, "the header")?;
        src.end_of_metadata()?;
        Ok(DeltaReader { src, expected_hash, basis_len, data_left: 0 })
    }

    /// The SHA-1 the result must have.
    pub fn expected_hash(&self) -> &Sha1 {
        &self.expected_hash
    }

    /// How far into the delta file the reader is, and its length (for progress).
    pub fn progress(&self) -> (u64, u64) {
        (self.src.position(), self.src.len)
    }

    /// The next command; `None` at the end of the file. The bytes of a DATA command must
    /// be read (all of them) before the next command.
    ///
    /// # Errors
    /// An unknown command byte, a cut command, a negative length, a copy beyond the basis,
    /// a data length beyond the end of the file, or a read failure.
    pub fn next_command(&mut self) -> Result<Option<Command>, Error> {
        assert_eq!(self.data_left, 0, "the previous DATA command's bytes were not read");
        if self.src.remaining() == 0 {
            return Ok(None);
        }
        let offset = self.src.position();
        let [byte] = self.src.array::<1>(offset, "a command")?;
        match byte {
            COPY => {
                let what = "a COPY command";
                let start = i64::from_le_bytes(self.src.array(offset, what)?);
                let length = i64::from_le_bytes(self.src.array(offset, what)?);
                if start < 0 || length < 0 {
                    return Err(self.src.corrupt(offset, format!("COPY with start {start} and length {length}")));
                }
                let (s, l) = (start as u64, length as u64);
                if s.checked_add(l).is_none_or(|end| end > self.basis_len) {
                    return Err(Error::CopyBeyondBasis {
                        path: self.src.path.clone(),
                        offset,
                        start,
                        length,
                        basis_len: self.basis_len,
                    });
                }
                Ok(Some(Command::Copy { start: s, length: l }))
            }
            DATA => {
                let length = i64::from_le_bytes(self.src.array(offset, "a DATA command")?);
                if length < 0 {
                    return Err(self.src.corrupt(offset, format!("DATA with length {length}")));
                }
                let length = length as u64;
                if length > self.src.remaining() {
                    return Err(self.src.truncated(
                        offset,
                        format!("a DATA command of {length} bytes ({} are left)", self.src.remaining()),
                    ));
                }
                self.data_left = length;
                Ok(Some(Command::Data { length }))
            }
            other => Err(self.src.corrupt(offset, format!("unknown command byte 0x{other:02x}"))),
        }
    }

    /// Reads the next piece of the current DATA command's bytes into `buf` (up to its
    /// length); returns how many, 0 once they are all read.
    ///
    /// # Errors
    /// A read failure, or the file shrank.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let n = usize::try_from(self.data_left).unwrap_or(usize::MAX).min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        let offset = self.src.position();
        self.src.read_exact(&mut buf[..n], offset, "a DATA command")?;
        self.data_left -= n as u64;
        Ok(n)
    }
}

/// Writes a delta: the header, then commands, merging copies that are adjacent in the
/// basis as Octodiff does.
pub struct DeltaWriter<W: Write> {
    out: W,
    pending: Option<(u64, u64)>,
}

impl<W: Write> DeltaWriter<W> {
    /// A writer whose output starts with the header for a new file of SHA-1 `hash`.
    ///
    /// # Errors
    /// A write failure.
    pub fn new(mut out: W, hash: &Sha1) -> std::io::Result<Self> {
        out.write_all(DELTA_MAGIC)?;
        out.write_all(&[VERSION])?;
        write_name(&mut out, HASH_NAME)?;
        out.write_all(&(HASH_LEN as i32).to_le_bytes())?;
        out.write_all(hash)?;
        out.write_all(END_OF_METADATA)?;
        Ok(DeltaWriter { out, pending: None })
    }

    /// A writer of commands only (no header), for tests of the command encoding.
    pub fn commands_only(out: W) -> Self {
        DeltaWriter { out, pending: None }
    }

    /// Copies `length` bytes from `start` of the basis (merged with the previous copy when
    /// it ends at `start`).
    ///
    /// # Errors
    /// A write failure.
    pub fn copy(&mut self, start: u64, length: u64) -> std::io::Result<()> {
        match &mut self.pending {
            Some((s, l)) if *l > 0 && *s + *l == start => *l += length,
            _ => {
                self.flush_copy()?;
                self.pending = Some((start, length));
            }
        }
        Ok(())
    }

    fn flush_copy(&mut self) -> std::io::Result<()> {
        if let Some((start, length)) = self.pending.take()
            && length > 0
        {
            self.out.write_all(&[COPY])?;
            self.out.write_all(&(start as i64).to_le_bytes())?;
            self.out.write_all(&(length as i64).to_le_bytes())?;
        }
        Ok(())
    }

    /// Starts a DATA command of `length` bytes; the caller writes exactly that many with
    /// [`DeltaWriter::data_bytes`].
    ///
    /// # Errors
    /// A write failure.
    pub fn data_header(&mut self, length: u64) -> std::io::Result<()> {
        self.flush_copy()?;
        self.out.write_all(&[DATA])?;
        self.out.write_all(&(length as i64).to_le_bytes())
    }

    /// Bytes of the current DATA command.
    ///
    /// # Errors
    /// A write failure.
    pub fn data_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)
    }

    /// A DATA command of `length` bytes of `source` from `offset`.
    ///
    /// # Errors
    /// A read or write failure, or `source` ends early.
    pub fn data_from(
        &mut self,
        source: &mut (impl Read + Seek),
        offset: u64,
        length: u64,
        buf: &mut [u8],
    ) -> std::io::Result<()> {
        self.data_header(length)?;
        source.seek(SeekFrom::Start(offset))?;
        let mut left = length;
        while left > 0 {
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            source.read_exact(&mut buf[..n])?;
            self.out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Writes the pending copy and returns the output.
    ///
    /// # Errors
    /// A write failure.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.flush_copy()?;
        Ok(self.out)
    }
}

/// A buffered writer to a file (for the builders).
pub(crate) fn buffered(file: std::fs::File) -> BufWriter<std::fs::File> {
    BufWriter::with_capacity(1 << 20, file)
}
