//! Tar-based packages: `.tar`, `.tar.gz`/`.tgz`, `.tar.bz2`/`.tbz`/`.tar.bz`,
//! `.tar.xz`/`.txz`, `.tar.zst`/`.tzst`.
//!
//! One deflate (or bzip2, xz, zstd) stream cannot be split, so this thread inflates and
//! parses headers (the `tar` crate handles PAX and GNU long names and PAX sizes) while a
//! pool of writer threads creates the small files from memory; large files are streamed
//! by this thread, so memory stays bounded (about a megabyte per queued job). After the
//! last entry the stream is read to its end so the gzip/xz/zstd checksums are verified.
//!
//! The `tar` crate buffers GNU long names and PAX headers whole; a guard around the
//! stream caps what one header may consume, so a header declaring gigabytes of "name"
//! fails instead of filling memory.
//!
//! Compressed bytes are counted as they are read, so the ratio limit compares what was
//! written with what was read so far; each file's declared size is checked against the
//! free space before it is written. A gzip stream may be followed by zero padding (as
//! tape-blocked `.tar.gz` files are, and as `gzip`, GNU tar and bsdtar accept); any other
//! trailing data is an error.
//!
//! Sparse files are extracted with their holes: GNU's old format by the `tar` crate, and
//! the PAX formats 0.0, 0.1 and 1.0 (`GNU.sparse.*` records) here, under their real name
//! (`GNU.sparse.name`, not the `GNUSparseFile.N/` placeholder) and size. A sparse map that
//! does not fit the entry's data, or another sparse version, is refused.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use crate::fs::IoContext as _;

use super::budget::Budget;

use super::error::corrupt;
use super::refusal::Refusal;
use super::sink::{self, Sink};
use super::writer::{self, file_mode};
use super::{Compression, Error};

/// Files up to this size are read into memory and written by the pool.
const INLINE_FILE_BYTES: u64 = 1 << 20;
/// Most bytes the headers of one entry (long names, PAX records) may occupy.
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Caps the bytes read while the tar crate looks for the next entry.
struct HeaderGuard<R> {
    inner: R,
    remaining: Rc<Cell<u64>>,
}

impl<R: Read> Read for HeaderGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.remaining.get();
        if left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an entry's headers (long name or PAX) exceed 1 MiB",
            ));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if left != u64::MAX {
            self.remaining.set(left - n as u64);
        }
        Ok(n)
    }
}

/// Counts the compressed bytes read from the archive.
struct Counting {
    inner: File,
    budget: Arc<Budget>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget.add_compressed(n as u64);
        Ok(n)
    }
}

/// Every member of a gzip stream, then nothing but zero padding.
struct GzipMembers<R: BufRead> {
    current: Option<flate2::bufread::GzDecoder<R>>,
}

impl<R: BufRead> GzipMembers<R> {
    fn new(inner: R) -> Self {
        GzipMembers { current: Some(flate2::bufread::GzDecoder::new(inner)) }
    }
}

/// Consumes the rest of `inner`; an error unless it is all zeros.
fn skip_zero_padding(inner: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = inner.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if buf.iter().any(|&b| b != 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "trailing data after the gzip stream that is neither another gzip member nor zero padding",
            ));
        }
        let n = buf.len();
        inner.consume(n);
    }
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(decoder) = self.current.as_mut() else { return Ok(0) };
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // This member ended (its CRC and length were checked): another member, zero
            // padding, or the end.
            let mut inner = self.current.take().map(flate2::bufread::GzDecoder::into_inner).expect("decoder present");
            let head = inner.fill_buf()?;
            if head.is_empty() {
                return Ok(0);
            }
            if head[0] == 0 {
                skip_zero_padding(&mut inner)?;
                return Ok(0);
            }
            self.current = Some(flate2::bufread::GzDecoder::new(inner));
        }
    }
}

/// The decompressed stream of a tar package; compressed bytes read are counted in `budget`.
pub(crate) fn decoder(path: &Path, compression: Compression, budget: Arc<Budget>) -> Result<Box<dyn Read>, Error> {
    let counting = Counting { inner: crate::fs::open(path)?, budget };
    let file = BufReader::with_capacity(256 * 1024, counting);
    Ok(match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(GzipMembers::new(file)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(file)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(file)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(file).map_err(|e| corrupt(path, None, &e))?)
        }
    })
}

fn utf8(sink: &Sink<'_>, bytes: &[u8], what: &'static str) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| sink.refuse(&String::from_utf8_lossy(bytes), Refusal::NotUtf8 { what }))
}

/// Extracts a tar-based package through `sink`.
pub(crate) fn extract(path: &Path, compression: Compression, sink: &mut Sink<'_>) -> Result<(), Error> {
    let remaining = Rc::new(Cell::new(MAX_HEADER_BYTES));
    sink.budget().start_stream();
    // The tar crate reads 512-byte headers; a buffer lets the decoder work in large chunks.
    let stream = BufReader::with_capacity(256 * 1024, decoder(path, compression, sink.budget().clone())?);
    let guard = HeaderGuard { inner: stream, remaining: remaining.clone() };
    let mut copy_buffer = vec![0u8; writer::COPY_BUFFER];
    let mut archive = ::tar::Archive::new(guard);
    let mut entries = archive.entries().map_err(|e| corrupt(path, None, &e))?;
    loop {
        remaining.set(MAX_HEADER_BYTES);
        let mut entry = match entries.next() {
            None => break,
            Some(Err(e)) => return Err(corrupt(path, None, &e)),
            Some(Ok(entry)) => entry,
        };
        remaining.set(u64::MAX);
        let raw_name = utf8(sink, &entry.path_bytes(), "entry name")?;
        if entry.header().entry_type().is_pax_global_extensions() {
            continue;
        }
        let sparse =
            sparse_layout(&mut entry).map_err(|problem| sink.refuse(&raw_name, Refusal::Sparse { problem }))?;
        let name = match sparse.as_ref().and_then(|s| s.name.as_deref()) {
            Some(real) => utf8(sink, real.as_bytes(), "entry name")?,
            None => raw_name,
        };
        let header = entry.header();
        let kind = header.entry_type();
        sink.count_entry()?;
        let mode = header.mode().ok();
        let mtime = header.mtime().ok().map(|t| sink::unix_time(t.min(i64::MAX as u64) as i64));
        let link = entry.link_name_bytes().map(|b| b.into_owned());
        let Some(rel) = sink.path_of(&name)? else {
            // `./` itself: nothing to create.
            continue;
        };
        use ::tar::EntryType;
        // Old (v7) tars mark directories with a trailing slash on a regular entry.
        let v7_dir = kind == EntryType::Regular && name.ends_with('/') && entry.size() == 0;
        if let Some(sparse) = sparse {
            if !matches!(kind, EntryType::Regular | EntryType::Continuous) {
                let problem = format!("sparse records on an entry of tar type {:?}", kind.as_byte() as char);
                return Err(sink.refuse(&name, Refusal::Sparse { problem }));
            }
            let file_path = sink.file(&name, &rel)?;
            let budget = sink.budget().clone();
            let target = Target { path: &file_path, entry: &name, archive: path, mode: file_mode(mode), mtime };
            write_sparse(&mut entry, &sparse, &target, &budget, &mut copy_buffer).map_err(|e| match e {
                SparseError::Map(problem) => sink.refuse(&name, Refusal::Sparse { problem }),
                SparseError::Other(e) => e,
            })?;
            continue;
        }
        match kind {
            EntryType::Directory => sink.dir(&name, &rel, mode, mtime)?,
            _ if v7_dir => sink.dir(&name, &rel, mode, mtime)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let file_path = sink.file(&name, &rel)?;
                let size = entry.size();
                sink.budget().declare(&name, size)?;
                let mode = file_mode(mode);
                if size <= INLINE_FILE_BYTES {
                    let mut data = Vec::with_capacity(size as usize);
                    (&mut entry).take(size).read_to_end(&mut data).map_err(|e| corrupt(path, Some(&name), &e))?;
                    if (data.len() as u64) < size {
                        return Err(corrupt(path, Some(&name), &"the archive ends in the middle of this entry"));
                    }
                    sink.submit(&name, file_path, mode, mtime, data)?;
                } else {
                    let budget = sink.budget().clone();
                    let written = writer::write_stream(
                        &file_path,
                        &name,
                        path,
                        mode,
                        mtime,
                        &mut entry,
                        &budget,
                        None,
                        &mut copy_buffer,
                    )?;
                    if written < size {
                        return Err(corrupt(path, Some(&name), &"the archive ends in the middle of this entry"));
                    }
                }
            }
            EntryType::Symlink => {
                let target = utf8(sink, link.as_deref().unwrap_or_default(), "symbolic link target")?;
                sink.symlink(&name, &rel, &target)?;
            }
            EntryType::Link => {
                let target = utf8(sink, link.as_deref().unwrap_or_default(), "hard link target")?;
                sink.hardlink(&name, &rel, &target)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(sink.refuse(&name, Refusal::SpecialFile { kinds: "device files and FIFOs" }));
            }
            other => {
                sink.log()
                    .verbose(format!("Skipping entry '{name}' of unsupported tar type {:?}", other.as_byte() as char));
            }
        }
    }
    #[allow(clippy::drop_non_drop)]
    drop(entries);
    // Read what follows the end-of-archive blocks so the compressed stream's checksum and
    // length are verified (a damaged trailer must fail the extraction).
    remaining.set(u64::MAX);
    let mut rest = archive.into_inner();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => sink.budget().add(n as u64)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(corrupt(path, None, &e)),
        }
    }
    sink.drain_pool()
}

/// The layout of a PAX sparse file.
#[derive(Debug, PartialEq, Eq)]
struct SparseLayout {
    /// `GNU.sparse.name`: the real name (the header's is a placeholder).
    name: Option<String>,
    /// The file's real size.
    real_size: u64,
    /// `(offset, length)` of each data segment; `None` when the map starts the data (1.0).
    map: Option<Vec<(u64, u64)>>,
}

fn number(key: &str, value: &str) -> Result<u64, String> {
    value.trim().parse::<u64>().map_err(|_| format!("{key} is not a number: '{value}'"))
}

/// The sparse layout from the `GNU.sparse.*` records of `records`; `None` without them.
fn parse_sparse_records(records: &[(String, String)]) -> Result<Option<SparseLayout>, String> {
    if records.is_empty() {
        return Ok(None);
    }
    let get = |key: &str| records.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let version = (get("GNU.sparse.major"), get("GNU.sparse.minor"));
    let real_size = match get("GNU.sparse.realsize").or(get("GNU.sparse.size")) {
        Some(v) => number("GNU.sparse.realsize", v)?,
        None => return Err("no GNU.sparse.realsize or GNU.sparse.size record".to_string()),
    };
    let name = get("GNU.sparse.name").map(str::to_string);
    let map = match version {
        (Some(major), Some(minor)) if major.trim() == "1" && minor.trim() == "0" => None,
        (None, None) => {
            let mut map = Vec::new();
            if let Some(list) = get("GNU.sparse.map") {
                let numbers = list.split(',').map(|v| number("GNU.sparse.map", v)).collect::<Result<Vec<_>, _>>()?;
                if numbers.len() % 2 != 0 {
                    return Err("GNU.sparse.map has an odd number of values".to_string());
                }
                map.extend(numbers.chunks(2).map(|c| (c[0], c[1])));
            } else {
                let mut offset = None;
                for (key, value) in records {
                    match key.as_str() {
                        "GNU.sparse.offset" if offset.is_none() => offset = Some(number(key, value)?),
                        "GNU.sparse.numbytes" => match offset.take() {
                            Some(o) => map.push((o, number(key, value)?)),
                            None => return Err("GNU.sparse.numbytes without GNU.sparse.offset".to_string()),
                        },
                        "GNU.sparse.offset" => return Err("GNU.sparse.offset without GNU.sparse.numbytes".to_string()),
                        _ => {}
                    }
                }
                if offset.is_some() {
                    return Err("GNU.sparse.offset without GNU.sparse.numbytes".to_string());
                }
            }
            if let Some(count) = get("GNU.sparse.numblocks") {
                let count = number("GNU.sparse.numblocks", count)?;
                if count != map.len() as u64 {
                    return Err(format!("GNU.sparse.numblocks says {count} blocks but the map has {}", map.len()));
                }
            }
            Some(map)
        }
        (major, minor) => {
            return Err(format!(
                "GNU sparse format {}.{} is not supported (only 0.0, 0.1 and 1.0)",
                major.unwrap_or("?"),
                minor.unwrap_or("?")
            ));
        }
    };
    Ok(Some(SparseLayout { name, real_size, map }))
}

/// The sparse layout of `entry` from its PAX records, if it has any.
fn sparse_layout<R: Read>(entry: &mut ::tar::Entry<'_, R>) -> Result<Option<SparseLayout>, String> {
    let mut records = Vec::new();
    if let Some(extensions) = entry.pax_extensions().map_err(|e| e.to_string())? {
        for extension in extensions {
            let extension = extension.map_err(|e| e.to_string())?;
            let Ok(key) = extension.key() else { continue };
            if key.starts_with("GNU.sparse.") {
                let value = String::from_utf8_lossy(extension.value_bytes()).into_owned();
                records.push((key.to_string(), value));
            }
        }
    }
    parse_sparse_records(&records)
}

/// Where a file goes.
struct Target<'a> {
    path: &'a Path,
    entry: &'a str,
    archive: &'a Path,
    mode: u32,
    mtime: Option<SystemTime>,
}

enum SparseError {
    /// The map is wrong: refused, naming the entry.
    Map(String),
    Other(Error),
}

impl From<Error> for SparseError {
    fn from(e: Error) -> Self {
        SparseError::Other(e)
    }
}

impl From<crate::fs::IoError> for SparseError {
    fn from(e: crate::fs::IoError) -> Self {
        SparseError::Other(e.into())
    }
}

/// Most entries in a 1.0 sparse map.
const MAX_SPARSE_SEGMENTS: u64 = 1 << 20;

/// Reads one decimal line of a 1.0 sparse map; counts the bytes in `consumed`.
fn map_line(data: &mut impl Read, consumed: &mut u64) -> Result<u64, SparseError> {
    let mut digits = String::new();
    let mut byte = [0u8; 1];
    loop {
        match data.read(&mut byte) {
            Ok(0) => return Err(SparseError::Map("the data ends inside the sparse map".to_string())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SparseError::Map(e.to_string())),
        }
        *consumed += 1;
        match byte[0] {
            b'\n' => break,
            b @ b'0'..=b'9' if digits.len() < 20 => digits.push(b as char),
            _ => return Err(SparseError::Map("the sparse map at the start of the data is malformed".to_string())),
        }
    }
    digits.parse().map_err(|_| SparseError::Map("the sparse map at the start of the data is malformed".to_string()))
}

/// Reads the map that starts the data of a 1.0 sparse file, and its padding to 512 bytes.
fn read_data_map(data: &mut impl Read) -> Result<(Vec<(u64, u64)>, u64), SparseError> {
    let mut consumed = 0;
    let count = map_line(data, &mut consumed)?;
    if count > MAX_SPARSE_SEGMENTS {
        return Err(SparseError::Map(format!("the sparse map has {count} segments, more than {MAX_SPARSE_SEGMENTS}")));
    }
    let mut map = Vec::new();
    for _ in 0..count {
        let offset = map_line(data, &mut consumed)?;
        let length = map_line(data, &mut consumed)?;
        map.push((offset, length));
    }
    let padding = (512 - consumed % 512) % 512;
    let skipped = io::copy(&mut data.take(padding), &mut io::sink()).map_err(|e| SparseError::Map(e.to_string()))?;
    if skipped < padding {
        return Err(SparseError::Map("the data ends inside the sparse map".to_string()));
    }
    Ok((map, consumed + padding))
}

/// Writes a PAX sparse file: the data segments where the map puts them, holes left as
/// holes (they read as zeros), the file cut to its real size. Holes count against the
/// size limit as the bytes they will read as.
fn write_sparse<R: Read>(
    entry: &mut ::tar::Entry<'_, R>,
    layout: &SparseLayout,
    target: &Target<'_>,
    budget: &Budget,
    buf: &mut [u8],
) -> Result<(), SparseError> {
    let mut data_size = entry.size();
    let map = match &layout.map {
        Some(map) => map.clone(),
        None => {
            let (map, map_bytes) = read_data_map(entry)?;
            data_size = data_size
                .checked_sub(map_bytes)
                .ok_or_else(|| SparseError::Map("the sparse map is larger than the entry".to_string()))?;
            map
        }
    };
    let mut end = 0u64;
    let mut total = 0u64;
    for &(offset, length) in &map {
        let segment_end = offset.checked_add(length).filter(|e| *e <= layout.real_size);
        match segment_end {
            Some(e) if offset >= end => end = e,
            Some(_) => {
                return Err(SparseError::Map("the sparse map's segments overlap or are out of order".to_string()));
            }
            None => {
                return Err(SparseError::Map(format!(
                    "a segment of the sparse map ends past the real size of {} bytes",
                    layout.real_size
                )));
            }
        }
        total += length;
    }
    if total != data_size {
        return Err(SparseError::Map(format!(
            "the sparse map describes {total} bytes of data but the entry holds {data_size}"
        )));
    }
    budget.declare(target.entry, data_size)?;
    let mut file = writer::create_file(target.path, target.mode)
        .map_err(|e| writer::write_error(target.archive, target.entry, target.path, e))?;
    let mut position = 0u64;
    for &(offset, length) in &map {
        budget.add(offset - position)?;
        file.seek(SeekFrom::Start(offset)).at("write", target.path)?;
        let mut left = length;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match entry.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(corrupt(
                        target.archive,
                        Some(target.entry),
                        &"the archive ends in the middle of this entry",
                    )
                    .into());
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(corrupt(target.archive, Some(target.entry), &e).into()),
            };
            budget.add(n as u64)?;
            file.write_all(&buf[..n]).at("write", target.path)?;
            left -= n as u64;
        }
        position = offset + length;
    }
    budget.add(layout.real_size - position)?;
    file.set_len(layout.real_size).at("write", target.path)?;
    if let Some(t) = target.mtime {
        file.set_modified(t).at("set modification time of", target.path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn sparse_records_of_each_version() {
        assert_eq!(parse_sparse_records(&[]), Ok(None));
        let v00 = records(&[
            ("GNU.sparse.size", "100"),
            ("GNU.sparse.numblocks", "2"),
            ("GNU.sparse.offset", "0"),
            ("GNU.sparse.numbytes", "10"),
            ("GNU.sparse.offset", "50"),
            ("GNU.sparse.numbytes", "5"),
        ]);
        let want = SparseLayout { name: None, real_size: 100, map: Some(vec![(0, 10), (50, 5)]) };
        assert_eq!(parse_sparse_records(&v00), Ok(Some(want)));
        let v01 = records(&[("GNU.sparse.size", "100"), ("GNU.sparse.name", "a/b"), ("GNU.sparse.map", "0,10,50,5")]);
        let layout = parse_sparse_records(&v01).unwrap().unwrap();
        assert_eq!((layout.name.as_deref(), layout.map), (Some("a/b"), Some(vec![(0, 10), (50, 5)])));
        let v10 = records(&[("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.realsize", "7")]);
        assert_eq!(parse_sparse_records(&v10).unwrap().unwrap().map, None);
        let v20 = records(&[("GNU.sparse.major", "2"), ("GNU.sparse.minor", "0"), ("GNU.sparse.realsize", "7")]);
        assert!(parse_sparse_records(&v20).unwrap_err().contains("2.0 is not supported"));
        let odd = records(&[("GNU.sparse.size", "9"), ("GNU.sparse.map", "0,1,2")]);
        assert!(parse_sparse_records(&odd).unwrap_err().contains("odd"));
        let count = records(&[("GNU.sparse.size", "9"), ("GNU.sparse.numblocks", "3"), ("GNU.sparse.map", "0,1")]);
        assert!(parse_sparse_records(&count).unwrap_err().contains("numblocks"));
    }

    #[test]
    fn data_map_of_version_one() {
        let mut data = Vec::from(&b"2\n0\n4\n10\n2\n"[..]);
        data.resize(512, 0);
        data.extend_from_slice(b"abcdef");
        let mut reader = &data[..];
        let (map, consumed) = read_data_map(&mut reader).ok().unwrap();
        assert_eq!((map, consumed), (vec![(0, 4), (10, 2)], 512));
        assert_eq!(reader, b"abcdef");
        assert!(read_data_map(&mut &b"1\nx\n"[..]).is_err());
    }

    #[test]
    fn gzip_members_then_zero_padding() {
        use std::io::Write as _;
        let member = |text: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(text).unwrap();
            e.finish().unwrap()
        };
        let mut data = member(b"one ");
        data.extend(member(b"two"));
        data.extend([0u8; 1000]);
        let mut out = String::new();
        GzipMembers::new(&data[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out, "one two");
        data.push(b'x');
        let e = GzipMembers::new(&data[..]).read_to_string(&mut String::new()).unwrap_err();
        assert!(e.to_string().contains("neither another gzip member nor zero padding"), "{e}");
        let mut garbage = member(b"one");
        garbage.extend(b"garbage");
        assert!(GzipMembers::new(&garbage[..]).read_to_string(&mut String::new()).is_err());
    }
}
