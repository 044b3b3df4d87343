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
