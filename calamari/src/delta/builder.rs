//! Making a delta (`calamari delta create`): Octodiff's matching rules, so that our deltas
//! are byte for byte the ones Octodiff writes for the same signature and new file.
//!
//! The signature's chunks are sorted by (checksum, start) and the first index of each
//! checksum kept in a hash map, behind a bit set that rejects most positions with one
//! load. A window of the largest chunk size slides over the new file one byte at a time,
//! its rolling checksum updated in O(1) (within the last `largest` bytes of each read the
//! window is the smallest chunk size, recomputed, as Octodiff does). A checksum found in
//! the map is confirmed with SHA-1 against each chunk of that checksum in order; the first
//! that matches is a COPY, the bytes since the previous match are DATA. The new file is
//! read 4 MiB at a time, re-reading `largest - 1` bytes at each boundary.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::path::Path;

use sha1::Digest as _;

use super::checksum::{Adler32, Adler32V2, Algorithm, Roll};
use super::error::Error;
use super::format::{self, Chunk, DeltaWriter, Sha1};
use super::signature::fill;
use super::{PartialFile, Progress};
use crate::fs::IoContext as _;

/// The builder's read window, as Octodiff's.
const READ_BUFFER: usize = 4 << 20;
/// Bits of the checksum prefilter (2^20 bits = 128 KiB).
const FILTER_BITS: u32 = 20;

/// What `delta create` wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeltaStats {
    /// Bytes of the new file taken from the basis.
    pub copied: u64,
    /// Bytes of the new file written literally.
    pub literal: u64,
    /// Size of the delta file.
    pub delta_len: u64,
}

/// Writes the delta that turns the basis described by `signature` into `new_file`.
///
/// # Errors
/// A damaged or unsupported signature, a missing input, or a read or write failure.
pub(crate) fn write_delta(
    signature: &Path,
    new_file: &Path,
    delta: &Path,
    progress: &mut Progress<'_>,
) -> Result<DeltaStats, Error> {
    if !signature.is_file() {
        return Err(Error::InputNotFound { what: "signature", path: signature.to_path_buf() });
    }
    let sig = format::read_signature(signature)?;
    let mut input = super::open_input(new_file, "new")?;
    let hash = super::sha1_of(&mut input, new_file)?;
    let len = input.metadata().at("read metadata of", new_file)?.len();
    let mut data_source = crate::fs::open(new_file)?;
    let (out, out_file) = PartialFile::create(delta)?;
    let wrote =
        |e: std::io::Error| crate::fs::IoError { op: "write", path: out.partial_path().to_path_buf(), source: e };
    let mut writer = DeltaWriter::new(format::buffered(out_file), &hash).map_err(wrote)?;
    let mut ctx = Build {
        writer: &mut writer,
        data_source: &mut data_source,
        new_file,
        copy_buf: vec![0u8; 1 << 20],
        stats: DeltaStats::default(),
    };
    let stats = match sig.algorithm {
        Algorithm::Adler32 => ctx.run::<Adler32>(sig.chunks, &mut input, len, progress),
        Algorithm::Adler32V2 => ctx.run::<Adler32V2>(sig.chunks, &mut input, len, progress),
    }?;
    let mut w = writer.finish().map_err(wrote)?;
    w.flush().map_err(wrote)?;
    let file = w.into_inner().map_err(|e| wrote(e.into_error()))?;
    let delta_len = file.metadata().at("read metadata of", out.partial_path())?.len();
    out.commit(file)?;
    Ok(DeltaStats { delta_len, ..stats })
}

struct Build<'a, W: std::io::Write> {
    writer: &'a mut DeltaWriter<W>,
    data_source: &'a mut std::fs::File,
    new_file: &'a Path,
    copy_buf: Vec<u8>,
    stats: DeltaStats,
}

impl<W: std::io::Write> Build<'_, W> {
    fn data(&mut self, offset: u64, length: u64) -> Result<(), Error> {
        self.stats.literal += length;
        self.writer
            .data_from(self.data_source, offset, length, &mut self.copy_buf)
            .at("copy data from", self.new_file)?;
        Ok(())
    }

    fn copy(&mut self, chunk: &Chunk) -> Result<(), Error> {
        self.stats.copied += u64::from(chunk.length);
        // Write errors surface at finish or flush; a copy only buffers.
        self.writer.copy(chunk.start, u64::from(chunk.length)).at("write delta for", self.new_file)?;
        Ok(())
    }

    fn run<R: Roll>(
        &mut self,
        mut chunks: Vec<Chunk>,
        input: &mut std::fs::File,
        len: u64,
        progress: &mut Progress<'_>,
    ) -> Result<DeltaStats, Error> {
        let mut last_match = 0u64;
        if !chunks.is_empty() {
            chunks.sort_by_key(|c| (c.checksum, c.start));
            let max = chunks.iter().map(|c| usize::from(c.length)).max().unwrap_or(0);
            let min = chunks.iter().map(|c| usize::from(c.length)).min().unwrap_or(0);
            let mut first: HashMap<u32, usize, foldhash::fast::FixedState> =
                HashMap::with_capacity_and_hasher(chunks.len(), foldhash::fast::FixedState::default());
            let mut filter = vec![0u64; 1 << (FILTER_BITS - 6)];
            for (i, c) in chunks.iter().enumerate() {
                first.entry(c.checksum).or_insert(i);
                let bit = filter_bit(c.checksum);
                filter[bit >> 6] |= 1 << (bit & 63);
            }
            let mut buffer = vec![0u8; usize::try_from(len).unwrap_or(READ_BUFFER).clamp(1, READ_BUFFER)];
            let mut start_position = 0u64;
            loop {
                input.seek(SeekFrom::Start(start_position)).at("seek in", self.new_file)?;
                let read = fill(input, &mut buffer).at("read", self.new_file)?;
                let buf = &buffer[..read];
                let mut window = max;
                let mut checksum = 0u32;
                if read >= min {
                    for i in 0..=read - min {
                        let remaining = read - i;
                        if remaining < max {
                            window = min;
                        }
                        if i == 0 || remaining < max {
                            checksum = R::calculate(&buf[i..i + window]);
                        } else {
                            checksum = R::roll(checksum, buf[i - 1], buf[i + window - 1], window as u32);
                        }
                        let position = start_position + i as u64;
                        if i % (1 << 20) == 0 {
                            progress.report("Building delta", position, len);
                        }
                        if position < last_match {
                            continue;
                        }
                        let bit = filter_bit(checksum);
                        if filter[bit >> 6] & (1 << (bit & 63)) == 0 {
                            continue;
                        }
                        let Some(&index) = first.get(&checksum) else { continue };
                        let hash: Sha1 = sha1::Sha1::digest(&buf[i..i + window]).into();
                        let found =
                            chunks[index..].iter().take_while(|c| c.checksum == checksum).find(|c| c.hash == hash);
                        if let Some(chunk) = found {
                            if position > last_match {
                                self.data(last_match, position - last_match)?;
                            }
                            let chunk = chunk.clone();
                            self.copy(&chunk)?;
                            last_match = position + window as u64;
                        }
                    }
                }
                if read < READ_BUFFER {
                    break;
                }
                start_position = start_position + read as u64 - max as u64 + 1;
            }
        }
        if len != last_match {
            self.data(last_match, len - last_match)?;
        }
        progress.report("Building delta", len, len);
        Ok(self.stats)
    }
}

#[inline(always)]
fn filter_bit(checksum: u32) -> usize {
    (checksum.wrapping_mul(0x9E37_79B1) >> (32 - FILTER_BITS)) as usize
}

/// Reads all of `input` from its start, hashing it with SHA-1.
pub(crate) fn sha1_stream(input: &mut impl Read) -> std::io::Result<Sha1> {
    let mut h = sha1::Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = fill(input, &mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}
