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

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

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

/// The decompressed stream of a tar package.
pub(crate) fn decoder(path: &Path, compression: Compression) -> Result<Box<dyn Read>, Error> {
    let file = BufReader::with_capacity(256 * 1024, crate::fs::open(path)?);
    Ok(match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
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
    // The tar crate reads 512-byte headers; a buffer lets the decoder work in large chunks.
    let stream = BufReader::with_capacity(256 * 1024, decoder(path, compression)?);
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
        let name = utf8(sink, &entry.path_bytes(), "entry name")?;
        let header = entry.header();
        let kind = header.entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
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
        match kind {
            EntryType::Directory => sink.dir(&name, &rel, mode, mtime)?,
            _ if v7_dir => sink.dir(&name, &rel, mode, mtime)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let file_path = sink.file(&name, &rel)?;
                let size = entry.size();
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
