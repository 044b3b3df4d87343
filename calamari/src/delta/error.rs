//! The errors of `apply-delta`, `delta signature` and `delta create`: each variant names the
//! file at fault and, for a damaged delta or signature, the offset and what was found there.

use std::path::PathBuf;

/// Which Octodiff file a format error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// An `.octodelta`.
    Delta,
    /// An `.octosig`.
    Signature,
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::Delta => "delta",
            FileKind::Signature => "signature",
        })
    }
}

/// A failure of a delta operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed; the message names the path.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// A required option was not given (the reference's Guard message).
    #[error("{message}")]
    MissingOption {
        /// The option, as spelled on the command line.
        option: &'static str,
        /// The reference's message.
        message: &'static str,
    },
    /// The basis file named by `--basisFileName` does not exist.
    #[error("Could not find basis file: {0}")]
    BasisNotFound(String),
    /// The delta file named by `--deltaFileName` does not exist.
    #[error("Could not find delta file: {0}")]
    DeltaNotFound(String),
    /// A file given to `delta signature` or `delta create` does not exist.
    #[error("Could not find the {what} file: {}", .path.display())]
    InputNotFound {
        /// "basis", "signature" or "new".
        what: &'static str,
        /// The path as given.
        path: PathBuf,
    },
    /// `--newFileName` is not a package file name.
    #[error("--newFileName '{name}' is not a package file name: {source}")]
    BadNewFileName {
        /// The value given.
        name: String,
        /// Why it could not be parsed.
        #[source]
        source: Box<crate::package::Error>,
    },
    /// The basis file's SHA-1 is not the `--fileHash` given.
    #[error("Basis file hash `{actual}` does not match the file hash specified `{expected}`")]
    BasisHashMismatch {
        /// The SHA-1 of the basis file.
        actual: String,
        /// `--fileHash` as given.
        expected: String,
    },
    /// `--chunkSize` is outside Octodiff's limits.
    #[error("--chunkSize must be between {min} and {max} bytes, found {value}", min = super::MIN_CHUNK_SIZE, max = super::MAX_CHUNK_SIZE)]
    InvalidChunkSize {
        /// The value given.
        value: u32,
    },
    /// The file does not start with the format's magic bytes.
    #[error("The {kind} file '{}' is corrupt: it does not start with {magic}", .path.display())]
    BadMagic {
        /// Delta or signature.
        kind: FileKind,
        /// The file.
        path: PathBuf,
        /// The magic expected (`OCTODELTA`, `OCTOSIG`).
        magic: &'static str,
    },
    /// The format version byte is not 1.
    #[error("The {kind} file '{}' uses format version {version}, newer than this program can handle (1)", .path.display())]
    NewerVersion {
        /// Delta or signature.
        kind: FileKind,
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u8,
    },
    /// The hash algorithm named in the header is not SHA1.
    #[error("The {kind} file '{}' uses the hash algorithm '{name}'; only SHA1 is supported", .path.display())]
    UnsupportedHash {
        /// Delta or signature.
        kind: FileKind,
        /// The file.
        path: PathBuf,
        /// The name found.
        name: String,
    },
    /// The rolling checksum named in a signature is neither Adler32 nor Adler32V2.
    #[error("The signature file '{}' uses the rolling checksum '{name}'; only Adler32 and Adler32V2 are supported", .path.display())]
    UnsupportedRollingChecksum {
        /// The file.
        path: PathBuf,
        /// The name found.
        name: String,
    },
    /// The header or a command is malformed at `offset`.
    #[error("The {kind} file '{}' is corrupt at offset {offset}: {problem}", .path.display())]
    Corrupt {
        /// Delta or signature.
        kind: FileKind,
        /// The file.
        path: PathBuf,
        /// Where the problem starts.
        offset: u64,
        /// What is wrong, e.g. "unknown command byte 0x42".
        problem: String,
    },
    /// The file ends inside its header or inside a command.
    #[error("The {kind} file '{}' is truncated: it ends at offset {len} inside {what} that starts at offset {offset}", .path.display())]
    Truncated {
        /// Delta or signature.
        kind: FileKind,
        /// The file.
        path: PathBuf,
        /// Where the cut item starts.
        offset: u64,
        /// The file's length.
        len: u64,
        /// What was cut, e.g. "a DATA command of 520 bytes".
        what: String,
    },
    /// A COPY command reaches beyond the end of the basis file.
    #[error("The delta file '{}' is corrupt at offset {offset}: COPY of {length} bytes from offset {start} reaches beyond the end of the basis file ({basis_len} bytes)", .path.display())]
    CopyBeyondBasis {
        /// The delta file.
        path: PathBuf,
        /// Where the command starts in the delta.
        offset: u64,
        /// The command's start offset in the basis.
        start: i64,
        /// The command's length.
        length: i64,
        /// The basis file's length.
        basis_len: u64,
    },
    /// The basis file changed (shrank) while the delta was applied.
    #[error("The basis file '{}' changed while the delta was applied", .0.display())]
    BasisChanged(PathBuf),
    /// The result's SHA-1 is not the one the delta's header promises.
    #[error(
        "Verification of the patched file failed. The SHA1 hash of the patch result file ({actual}), and the file that was used as input for the delta ({expected}), do not match. This can happen if the basis file changed since the signatures were calculated."
    )]
    VerificationFailed {
        /// The SHA-1 in the delta's header.
        expected: String,
        /// The SHA-1 of the result.
        actual: String,
    },
}
