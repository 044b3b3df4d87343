//! Making a signature of a basis file (`calamari delta signature`): the basis is read one
//! chunk at a time and each chunk's length, Adler32 checksum and SHA-1 written.

use std::io::{Read, Write as _};
use std::path::Path;

use sha1::Digest as _;

use super::checksum::{Adler32, Algorithm, Roll as _};
use super::error::Error;
use super::format::{self, write_chunk, write_signature_header};
use super::{PartialFile, Progress};
use crate::fs::IoContext as _;

/// Writes the signature of `basis` to `signature` with chunks of `chunk_size` bytes
/// (Octodiff's limits: [`super::MIN_CHUNK_SIZE`] to [`super::MAX_CHUNK_SIZE`]). The file
/// appears complete or not at all.
///
/// # Errors
/// An invalid chunk size, a missing basis, or a read or write failure.
pub(crate) fn write_signature(
    basis: &Path,
    signature: &Path,
    chunk_size: u32,
    progress: &mut Progress<'_>,
) -> Result<u64, Error> {
    super::check_chunk_size(chunk_size)?;
    let mut input = super::open_input(basis, "basis")?;
    let total = input.metadata().at("read metadata of", basis)?.len();
    let (out, out_file) = PartialFile::create(signature)?;
    let mut w = format::buffered(out_file);
    let wrote = |e| crate::fs::IoError { op: "write", path: out.partial_path().to_path_buf(), source: e };
    write_signature_header(&mut w, Algorithm::Adler32).map_err(wrote)?;
    let mut block = vec![0u8; chunk_size as usize];
    let (mut done, mut chunks) = (0u64, 0u64);
    loop {
        let n = fill(&mut input, &mut block).at("read", basis)?;
        if n == 0 {
            break;
        }
        let chunk = &block[..n];
        let hash: format::Sha1 = sha1::Sha1::digest(chunk).into();
        write_chunk(&mut w, n as u16, Adler32::calculate(chunk), &hash).map_err(wrote)?;
        done += n as u64;
        chunks += 1;
        progress.report("Building signatures", done, total);
    }
    w.flush().map_err(wrote)?;
    let file = w.into_inner().map_err(|e| wrote(e.into_error()))?;
    out.commit(file)?;
    Ok(chunks)
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
pub(crate) fn fill(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
