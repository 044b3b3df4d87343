//! Applying a delta to a basis file: streamed, with bounded buffers, the result hashed as
//! it is written and checked against the delta's header before it is put in place.

use std::io::{Read, Seek, SeekFrom, Write as _};
use std::path::Path;

use sha1::Digest as _;

use super::error::Error;
use super::format::{self, Command, DeltaReader};
use super::{PartialFile, Progress};
use crate::fs::IoContext as _;

/// The size of the copy buffer.
const BUFFER: usize = 1 << 20;

/// Writes the result of applying `delta` to `basis` to `output`, through `<output>.partial`
/// which is verified (unless `skip_verification`), fsync'd and renamed; on any failure the
/// partial file is removed and `output` is left as it was. Returns the result's SHA-1 and
/// length.
///
/// # Errors
/// A damaged delta, a copy beyond the basis, a failed verification, or an I/O failure.
pub(crate) fn apply(
    basis: &Path,
    delta: &Path,
    output: &Path,
    skip_verification: bool,
    progress: &mut Progress<'_>,
) -> Result<(format::Sha1, u64), Error> {
    let mut basis_file = crate::fs::open(basis)?;
    let basis_len = basis_file.metadata().at("read metadata of", basis)?.len();
    let mut reader = DeltaReader::open(delta, basis_len)?;
    if let Some(dir) = output.parent()
        && !dir.as_os_str().is_empty()
    {
        crate::fs::create_dir_all(dir)?;
    }
    let (out, out_file) = PartialFile::create(output)?;
    let mut w = format::buffered(out_file);
    let wrote = |e| crate::fs::IoError { op: "write", path: out.partial_path().to_path_buf(), source: e };
    let mut hasher = sha1::Sha1::new();
    let mut buf = vec![0u8; BUFFER];
    let mut written = 0u64;
    while let Some(command) = reader.next_command()? {
        match command {
            Command::Copy { start, length } => {
                basis_file.seek(SeekFrom::Start(start)).at("seek in", basis)?;
                let mut left = length;
                while left > 0 {
                    let n = usize::try_from(left).unwrap_or(BUFFER).min(BUFFER);
                    match basis_file.read_exact(&mut buf[..n]) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                            return Err(Error::BasisChanged(basis.to_path_buf()));
                        }
                        Err(e) => {
                            return Err(crate::fs::IoError { op: "read", path: basis.to_path_buf(), source: e }.into());
                        }
                    }
                    hasher.update(&buf[..n]);
                    w.write_all(&buf[..n]).map_err(wrote)?;
                    left -= n as u64;
                }
                written += length;
            }
            Command::Data { length } => {
                loop {
                    let n = reader.read_data(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    w.write_all(&buf[..n]).map_err(wrote)?;
                }
                written += length;
            }
        }
        let (at, of) = reader.progress();
        progress.report("Applying delta", at, of);
    }
    let actual: format::Sha1 = hasher.finalize().into();
    if !skip_verification && &actual != reader.expected_hash() {
        return Err(Error::VerificationFailed {
            expected: hex::encode(reader.expected_hash()),
            actual: hex::encode(actual),
        });
    }
    w.flush().map_err(wrote)?;
    let file = w.into_inner().map_err(|e| wrote(e.into_error()))?;
    out.commit(file)?;
    Ok((actual, written))
}
