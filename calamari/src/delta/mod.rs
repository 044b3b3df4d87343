//! Delta compression of packages, in Octodiff's formats.
//!
//! * `apply-delta` ([`apply_delta`]): Octopus Server sends a delta between a package the
//!   agent already has (the basis) and a new version; the new package is rebuilt into the
//!   package cache, `$TentacleHome/Files/<cache name>`, and reported with a
//!   `deltaVerification` service message (its path, SHA-1 and size) that the server checks.
//!   As in the reference, every failure of the delta itself is reported in that message
//!   (`error="..."`) and the command exits 0: the server then uploads the whole package.
//! * `delta signature` ([`create_signature`]) and `delta create` ([`create_delta`]): the
//!   other side, writing files Octodiff reads (and byte for byte what Octodiff writes).
//!
//! Nothing reads a whole basis, delta or new file into memory: all three are streamed
//! through fixed buffers; only a signature (26 bytes per chunk of the basis) is held.

mod apply;
mod builder;
mod checksum;
mod error;
mod format;
mod signature;

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

pub use builder::DeltaStats;
pub use checksum::Algorithm as RollingChecksum;
pub use error::{Error, FileKind};
pub use format::{Chunk, Command as DeltaCommand, DeltaReader, DeltaWriter, Signature, read_signature};

use crate::env_vars::{AgentEnvironment, TENTACLE_HOME};
use crate::fs::IoContext as _;
use crate::log::Level;
use crate::outcome::{Outcome, UsageError};
use crate::package::PackageIdentity;
use crate::package::name::cached_file_name;
use crate::service_message::ServiceMessage;
use crate::{Log, Result};

/// The smallest chunk size Octodiff accepts.
pub const MIN_CHUNK_SIZE: u32 = 128;
/// Octodiff's default chunk size.
pub const DEFAULT_CHUNK_SIZE: u32 = 2048;
/// The largest chunk size Octodiff accepts (31 KiB).
pub const MAX_CHUNK_SIZE: u32 = 31 * 1024;

/// The service message `apply-delta` answers with.
const DELTA_VERIFICATION: &str = "deltaVerification";

/// What `apply-delta` was asked, as given on its command line.
#[derive(Debug, Clone, Default)]
pub struct ApplyDeltaRequest {
    /// `--basisFileName`: the package the delta was made against.
    pub basis_file_name: Option<String>,
    /// `--fileHash`: the basis's SHA-1.
    pub file_hash: Option<String>,
    /// `--deltaFileName`: the `.octodelta`.
    pub delta_file_name: Option<String>,
    /// `--newFileName`: the new package's file name (its id, version and extension name
    /// the file written to the cache).
    pub new_file_name: Option<String>,
    /// `--progress`: report progress as the delta is applied.
    pub progress: bool,
    /// `--skipVerification`: do not compare the result's SHA-1 with the delta's header.
    pub skip_verification: bool,
}

/// What `delta signature` was asked.
#[derive(Debug, Clone)]
pub struct SignatureRequest {
    /// The basis file.
    pub basis: PathBuf,
    /// The signature file to write.
    pub signature: PathBuf,
    /// Bytes per chunk, [`MIN_CHUNK_SIZE`] to [`MAX_CHUNK_SIZE`].
    pub chunk_size: u32,
    /// Report progress.
    pub progress: bool,
}

/// What `delta create` was asked.
#[derive(Debug, Clone)]
pub struct DeltaRequest {
    /// The basis's signature.
    pub signature: PathBuf,
    /// The new file.
    pub new_file: PathBuf,
    /// The delta file to write.
    pub delta: PathBuf,
    /// Report progress.
    pub progress: bool,
}

/// Runs `apply-delta`: rebuilds the new package from the basis and the delta into the
/// package cache of `environment`'s `TentacleHome` and reports it (or what went wrong)
/// with a `deltaVerification` service message.
///
/// # Errors
/// Only what the reference does not report through the message: `TentacleHome` not set, a
/// `--newFileName` that is no package file name. Every other failure is reported and the
/// result is [`Outcome::Success`], as the reference exits 0.
pub fn apply_delta(request: &ApplyDeltaRequest, environment: &AgentEnvironment, log: &Log) -> Result<Outcome> {
    match try_apply(request, environment, log) {
        Ok((path, hash, size)) => {
            let message = ServiceMessage::new(DELTA_VERIFICATION)
                .with("remotePath", path.display().to_string())
                .with("hash", hash)
                .with("size", size.to_string());
            log.service_message(Level::Verbose, &message);
            Ok(Outcome::Success)
        }
        Err(Failure::Fatal(e)) => Err(e),
        Err(Failure::Reported(e)) => {
            let text = crate::outcome::chain(&e);
            log.info(format!("Applying the delta failed: {text}"));
            log.service_message(Level::Verbose, &ServiceMessage::new(DELTA_VERIFICATION).with("error", text));
            Ok(Outcome::Success)
        }
    }
}

enum Failure {
    /// Reported through `deltaVerification`, exit 0.
    Reported(Error),
    /// Returned, exit code by kind.
    Fatal(crate::Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Reported(e)
    }
}

fn try_apply(
    request: &ApplyDeltaRequest,
    environment: &AgentEnvironment,
    log: &Log,
) -> std::result::Result<(PathBuf, String, u64), Failure> {
    let required = |value: &Option<String>, option: &'static str, message: &'static str| {
        value.clone().filter(|v| !v.trim().is_empty()).ok_or(Error::MissingOption { option, message })
    };
    let basis_name = required(
        &request.basis_file_name,
        "--basisFileName",
        "No basis file was specified. Please pass --basisFileName MyPackage.1.0.0.0.nupkg",
    )?;
    let file_hash =
        required(&request.file_hash, "--fileHash", "No file hash was specified. Please pass --fileHash MyFileHash")?;
    let delta_name = required(
        &request.delta_file_name,
        "--deltaFileName",
        "No delta file was specified. Please pass --deltaFileName MyPackage.1.0.0.0_to_1.0.0.1.octodelta",
    )?;
    let new_name = required(
        &request.new_file_name,
        "--newFileName",
        "No new file name was specified. Please pass --newFileName MyPackage.1.0.0.1.nupkg",
    )?;
    let basis = Path::new(&basis_name);
    if !basis.is_file() {
        return Err(Error::BasisNotFound(basis_name).into());
    }
    let delta = Path::new(&delta_name);
    if !delta.is_file() {
        return Err(Error::DeltaNotFound(delta_name).into());
    }
    let identity = PackageIdentity::from_file(Path::new(&new_name)).map_err(|source| {
        Failure::Fatal(Error::BadNewFileName { name: new_name.clone(), source: Box::new(source) }.into())
    })?;
    let home = environment
        .tentacle_home()
        .ok_or_else(|| Failure::Fatal(UsageError::EnvironmentVariableNotSet(TENTACLE_HOME).into()))?;
    let new_path = home.join("Files").join(cached_file_name(
        &identity.id,
        &identity.version.to_full_string(),
        identity.version_format,
        &identity.extension,
    ));
    let mut basis_file = crate::fs::open(basis).map_err(Error::from)?;
    let actual = hex::encode(sha1_of(&mut basis_file, basis)?);
    drop(basis_file);
    if !actual.eq_ignore_ascii_case(file_hash.trim()) {
        return Err(Error::BasisHashMismatch { actual, expected: file_hash }.into());
    }
    log.info(format!(
        "Applying delta to {} with hash {} and storing as {}",
        basis.display(),
        file_hash,
        new_path.display()
    ));
    let mut progress = Progress::new(request.progress.then_some(log));
    let (hash, size) = apply::apply(basis, delta, &new_path, request.skip_verification, &mut progress)?;
    Ok((new_path, hex::encode(hash), size))
}

/// Runs `delta signature`: writes the Adler32 signature of a basis file.
///
/// # Errors
/// A missing basis, an invalid chunk size, or an I/O failure.
pub fn create_signature(request: &SignatureRequest, log: &Log) -> Result<Outcome> {
    let mut progress = Progress::new(request.progress.then_some(log));
    let chunks = signature::write_signature(&request.basis, &request.signature, request.chunk_size, &mut progress)?;
    log.info(format!(
        "Wrote the signature {} of {}: {} of up to {} bytes",
        request.signature.display(),
        request.basis.display(),
        crate::log::count(chunks, "chunk", "chunks"),
        request.chunk_size
    ));
    Ok(Outcome::Success)
}

/// Runs `delta create`: writes the delta from the basis described by a signature to a
/// new file.
///
/// # Errors
/// A missing input, a damaged or unsupported signature, or an I/O failure.
pub fn create_delta(request: &DeltaRequest, log: &Log) -> Result<Outcome> {
    let mut progress = Progress::new(request.progress.then_some(log));
    let stats = builder::write_delta(&request.signature, &request.new_file, &request.delta, &mut progress)?;
    log.info(format!(
        "Wrote the delta {}: {} copied from the basis, {} of new data, {} in all",
        request.delta.display(),
        crate::log::count(stats.copied, "byte", "bytes"),
        crate::log::count(stats.literal, "byte", "bytes"),
        crate::log::count(stats.delta_len, "byte", "bytes")
    ));
    Ok(Outcome::Success)
}

/// Writes the signature of `basis` to `signature` with Octodiff's default chunk size, no
/// progress: the library call behind `calamari fleet`'s remote side. Returns the chunks written.
///
/// # Errors
/// A missing basis, or a read or write failure.
pub(crate) fn write_signature_file(basis: &Path, signature: &Path) -> std::result::Result<u64, Error> {
    signature::write_signature(basis, signature, DEFAULT_CHUNK_SIZE, &mut Progress::new(None))
}

/// Writes the delta from the basis `signature` describes to `new_file`, no progress: the
/// library call behind `calamari fleet`'s driver.
///
/// # Errors
/// A missing input, a damaged or unsupported signature, or an I/O failure.
pub(crate) fn write_delta_file(
    signature: &Path,
    new_file: &Path,
    delta: &Path,
) -> std::result::Result<DeltaStats, Error> {
    builder::write_delta(signature, new_file, delta, &mut Progress::new(None))
}

/// Lists a delta's commands as `copy start=S, length=L` and `write HEX` (for tests and
/// diagnosis; DATA bytes are held, so only for small deltas).
///
/// # Errors
/// A damaged delta (checked against a basis of `basis_len` bytes) or a read failure.
pub fn explain_delta(path: &Path, basis_len: u64) -> std::result::Result<Vec<String>, Error> {
    let mut reader = DeltaReader::open(path, basis_len)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Some(command) = reader.next_command()? {
        match command {
            DeltaCommand::Copy { start, length } => out.push(format!("copy start={start}, length={length}")),
            DeltaCommand::Data { .. } => {
                let mut text = String::from("write ");
                loop {
                    let n = reader.read_data(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    text.push_str(&hex::encode(&buf[..n]));
                }
                out.push(text);
            }
        }
    }
    Ok(out)
}

fn check_chunk_size(value: u32) -> std::result::Result<(), Error> {
    if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&value) { Ok(()) } else { Err(Error::InvalidChunkSize { value }) }
}

fn open_input(path: &Path, what: &'static str) -> std::result::Result<std::fs::File, Error> {
    if !path.is_file() {
        return Err(Error::InputNotFound { what, path: path.to_path_buf() });
    }
    Ok(crate::fs::open(path)?)
}

/// The SHA-1 of an open file, read from its start; leaves it at its start.
fn sha1_of(file: &mut std::fs::File, path: &Path) -> std::result::Result<format::Sha1, Error> {
    file.seek(SeekFrom::Start(0)).at("seek in", path)?;
    let hash = builder::sha1_stream(&mut file.by_ref()).at("read", path)?;
    file.seek(SeekFrom::Start(0)).at("seek in", path)?;
    Ok(hash)
}

/// `--progress`: `<operation>: N%` lines, one per whole percent.
pub(crate) struct Progress<'a> {
    log: Option<&'a Log>,
    last: Option<(&'static str, u64)>,
}

impl<'a> Progress<'a> {
    fn new(log: Option<&'a Log>) -> Self {
        Progress { log, last: None }
    }

    pub(crate) fn report(&mut self, operation: &'static str, done: u64, total: u64) {
        let Some(log) = self.log else { return };
        let percent = if total == 0 { 100 } else { (u128::from(done) * 100 / u128::from(total)) as u64 };
        if self.last != Some((operation, percent)) {
            self.last = Some((operation, percent));
            log.info(format!("{operation}: {percent}%"));
        }
    }
}

/// The output of a command: written to `<path>.partial`, fsync'd, renamed into place and
/// the directory fsync'd; removed if the command fails before [`PartialFile::commit`].
pub(crate) struct PartialFile {
    dest: PathBuf,
    partial: PathBuf,
    committed: bool,
}

impl PartialFile {
    pub(crate) fn create(dest: &Path) -> std::result::Result<(PartialFile, std::fs::File), Error> {
        let mut name = dest.as_os_str().to_owned();
        name.push(".partial");
        let partial = PathBuf::from(name);
        let file = crate::fs::create(&partial)?;
        Ok((PartialFile { dest: dest.to_path_buf(), partial, committed: false }, file))
    }

    pub(crate) fn partial_path(&self) -> &Path {
        &self.partial
    }

    pub(crate) fn commit(mut self, file: std::fs::File) -> std::result::Result<(), Error> {
        file.sync_all().at("fsync", &self.partial)?;
        drop(file);
        crate::fs::rename(&self.partial, &self.dest)?;
        self.committed = true;
        crate::fs::sync_parent(&self.dest)?;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = crate::fs::remove_file(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)]

    use sha1::Digest as _;

    use super::*;
    use crate::error::code_of;

    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn header(hash: &format::Sha1) -> Vec<u8> {
        DeltaWriter::new(Vec::new(), hash).unwrap().finish().unwrap()
    }

    fn apply_bytes(
        basis: &[u8],
        delta: &[u8],
        skip: bool,
    ) -> (std::result::Result<(format::Sha1, u64), Error>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let (b, d, out) = (dir.path().join("basis"), dir.path().join("delta"), dir.path().join("out/new.zip"));
        std::fs::write(&b, basis).unwrap();
        std::fs::write(&d, delta).unwrap();
        let result = apply::apply(&b, &d, &out, skip, &mut Progress::new(None));
        let partial = dir.path().join("out/new.zip.partial");
        assert!(!partial.exists(), "the partial file is always gone");
        let written = std::fs::read(&out).unwrap_or_default();
        if result.is_err() {
            assert!(!out.exists(), "no output after {result:?}");
        }
        (result, written)
    }

    #[test]
    fn bad_deltas_are_refused_with_the_problem_and_no_output() {
        let basis = random(1000, 1);
        let good_hash: format::Sha1 = sha1::Sha1::digest(&basis[..10]).into();
        let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
        let mut copy = header(&good_hash);
        copy.push(format::COPY);
        copy.extend_from_slice(&0i64.to_le_bytes());
        copy.extend_from_slice(&10i64.to_le_bytes());
        let (result, written) = apply_bytes(&basis, &copy, false);
        assert_eq!(result.unwrap(), (good_hash, 10));
        assert_eq!(written, &basis[..10]);

        let with = |tail: &[u8]| {
            let mut d = header(&good_hash);
            d.extend_from_slice(tail);
            d
        };
        let le = |v: i64| v.to_le_bytes();
        cases.push((with(&[0x42]), "unknown command byte 0x42"));
        cases.push((
            with(&[[format::DATA].as_slice(), &le(1 << 40), b"abc"].concat()),
            "DATA command of 1099511627776 bytes",
        ));
        cases.push((with(&[[format::DATA].as_slice(), &le(-1)].concat()), "DATA with length -1"));
        cases.push((
            with(&[[format::COPY].as_slice(), &le(990), &le(11)].concat()),
            "beyond the end of the basis file (1000 bytes)",
        ));
        cases.push((with(&[[format::COPY].as_slice(), &le(i64::MAX), &le(i64::MAX)].concat()), "beyond the end"));
        cases.push((with(&[[format::COPY].as_slice(), &le(0), &le(-5)].concat()), "COPY with start 0 and length -5"));
        cases.push((with(&[[format::COPY].as_slice(), &le(0)].concat()), "inside a COPY command"));
        cases.push((with(&[format::DATA, 1, 2]), "inside a DATA command"));
        cases.push((b"OCTODELTB\x01".to_vec(), "does not start with OCTODELTA"));
        cases.push((header(&good_hash)[..15].to_vec(), "is truncated"));
        let mut v2 = header(&good_hash);
        v2[9] = 2;
        cases.push((v2, "format version 2"));
        let md5 = [b"OCTODELTA\x01\x03MD5".as_slice(), &20i32.to_le_bytes(), &[0u8; 20], b">>>"].concat();
        cases.push((md5, "hash algorithm 'MD5'"));
        let long_hash = [b"OCTODELTA\x01\x04SHA1".as_slice(), &i32::MAX.to_le_bytes()].concat();
        cases.push((long_hash, "a SHA1 hash of 2147483647 bytes"));
        let mut no_end = header(&good_hash);
        no_end.truncate(no_end.len() - 3);
        no_end.extend_from_slice(b"<<<");
        cases.push((no_end, "does not end with >>>"));
        cases.push((
            with(&[[format::COPY].as_slice(), &le(0), &le(11)].concat()),
            "Verification of the patched file failed",
        ));
        for (delta, expected) in cases {
            let (result, _) = apply_bytes(&basis, &delta, false);
            let e = result.expect_err(expected);
            assert!(e.to_string().contains(expected), "{e} lacks {expected:?}");
            assert_eq!(code_of(&e), 1, "{e}");
        }
        let (result, written) =
            apply_bytes(&basis, &with(&[[format::COPY].as_slice(), &le(0), &le(11)].concat()), true);
        assert_eq!(result.unwrap().1, 11, "--skipVerification keeps it");
        assert_eq!(written, &basis[..11]);
    }

    #[test]
    fn deltas_round_trip_across_read_windows_with_moves_inserts_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let basis = random(4 * 1024 * 1024 + 300_000, 7);
        let mut new = Vec::new();
        new.extend_from_slice(&basis[3_000_000..4_000_000]);
        new.extend_from_slice(b"inserted");
        new.extend_from_slice(&basis[..2_000_000]);
        new.extend_from_slice(&basis[2_003_000..]);
        new.extend_from_slice(&random(5000, 9));
        let (b, n) = (dir.path().join("basis"), dir.path().join("new"));
        std::fs::write(&b, &basis).unwrap();
        std::fs::write(&n, &new).unwrap();
        for chunk_size in [MIN_CHUNK_SIZE, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE] {
            let (sig, delta, out) = (dir.path().join("sig"), dir.path().join("delta"), dir.path().join("out"));
            signature::write_signature(&b, &sig, chunk_size, &mut Progress::new(None)).unwrap();
            let stats = builder::write_delta(&sig, &n, &delta, &mut Progress::new(None)).unwrap();
            assert_eq!(stats.copied + stats.literal, new.len() as u64);
            assert!(stats.literal < 3 * u64::from(chunk_size) + 5100, "{chunk_size}: {stats:?}");
            assert_eq!(stats.delta_len, std::fs::metadata(&delta).unwrap().len());
            let (hash, len) = apply::apply(&b, &delta, &out, false, &mut Progress::new(None)).unwrap();
            assert_eq!(std::fs::read(&out).unwrap(), new);
            assert_eq!((hash.to_vec(), len), (sha1::Sha1::digest(&new).to_vec(), new.len() as u64));
        }
    }

    #[test]
    fn chunk_sizes_outside_octodiffs_limits_are_refused() {
        for bad in [0, 127, 31745, u32::MAX] {
            let e = check_chunk_size(bad).unwrap_err();
            assert_eq!(code_of(&e), 1);
        }
        assert!(check_chunk_size(128).is_ok() && check_chunk_size(31744).is_ok());
    }

    #[test]
    fn a_failed_output_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.octosig");
        {
            let (partial, _file) = PartialFile::create(&dest).unwrap();
            assert!(partial.partial_path().exists());
        }
        assert!(!dest.exists() && !dir.path().join("x.octosig.partial").exists());
    }
}
