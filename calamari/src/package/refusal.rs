//! Why an archive entry is refused: each reason [`super::Error::Refused`] can give, with
//! the names it involves.

use super::entry_name::UnsafeName;

/// Why an entry is not extracted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The entry name itself is unsafe.
    #[error(transparent)]
    UnsafeName(#[from] UnsafeName),
    /// A parent of the entry is a symbolic link entry.
    #[error("it would be written through the symbolic link '{link}'")]
    ThroughSymlink {
        /// The symbolic link's relative path.
        link: String,
    },
    /// A parent of the entry is a file entry.
    #[error("'{parent}' is a file, not a directory")]
    ParentIsFile {
        /// The file's relative path.
        parent: String,
    },
    /// An earlier entry of the same name is a symbolic link.
    #[error("an earlier entry of the same name is a symbolic link (duplicate entry)")]
    DuplicateOfSymlink,
    /// An earlier entry of the same name is a directory.
    #[error("an earlier entry of the same name is a directory (duplicate entry)")]
    DuplicateOfDirectory,
    /// An earlier entry of the same name is a file.
    #[error("an earlier entry has the same name (duplicate entry)")]
    Duplicate,
    /// Something of that name exists on disk already.
    #[error("a file of that name already exists")]
    AlreadyExists,
    /// A symbolic link with an empty target or one containing NUL.
    #[error("the symbolic link target is empty or contains NUL")]
    EmptyOrNulLinkTarget,
    /// A symbolic link target longer than the limit.
    #[error("the symbolic link target is too long")]
    LinkTargetTooLong,
    /// A hard link to the extraction directory.
    #[error("the hard link points at the extraction directory itself")]
    HardLinkToRoot,
    /// A hard link whose target name is unsafe.
    #[error("the hard link target '{target}' is unsafe: {reason}")]
    UnsafeHardLinkTarget {
        /// The target as written.
        target: String,
        /// Why it is unsafe.
        reason: UnsafeName,
    },
    /// A hard link to something that is not a regular file extracted earlier.
    #[error("the hard link target '{target}' is not a regular file extracted earlier from this archive")]
    HardLinkTargetNotExtracted {
        /// The target as written.
        target: String,
    },
    /// A name or link target that is not UTF-8.
    #[error("the {what} is not valid UTF-8")]
    NotUtf8 {
        /// What it is, e.g. "symbolic link target".
        what: &'static str,
    },
    /// A device, FIFO or socket.
    #[error("{kinds} are not extracted")]
    SpecialFile {
        /// The kinds the format can hold, e.g. "device files and FIFOs".
        kinds: &'static str,
    },
    /// The entry's path, joined to the extraction directory, is longer than the system
    /// allows.
    #[error(
        "path too long: it is {length} bytes once joined to the extraction directory, more than the system's limit of {max}"
    )]
    PathTooLong {
        /// The joined path's length in bytes.
        length: usize,
        /// The most the system allows.
        max: usize,
    },
    /// A zip entry flagged as UTF-8 whose name is not.
    #[error(
        "its name is flagged as UTF-8 but is not valid UTF-8 (bytes other than printable ASCII are shown as \\xNN)"
    )]
    NameNotUtf8,
    /// A sparse file this reader does not understand, or whose map does not match its data.
    #[error("sparse file: {problem}")]
    Sparse {
        /// What is wrong.
        problem: String,
    },
    /// An encrypted zip entry.
    #[error("encrypted zip entries are not supported")]
    Encrypted,
    /// Another writer thread failed first.
    #[error("a writer thread failed")]
    WriterFailed,
    /// The writer threads stopped before taking the file.
    #[error("the writer threads stopped")]
    WritersStopped,
}
