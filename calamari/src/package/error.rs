//! The errors of package handling. Each variant carries the data its message needs (the
//! archive, the entry, the variable, the sizes), and the message is written once, in its
//! `#[error]` attribute.

use std::path::PathBuf;

use super::budget::LimitExceeded;
use super::refusal::Refusal;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// A variable could not be evaluated (for example a recursive definition).
    #[error("{name}: {source}")]
    Variable {
        /// The variable being read.
        name: String,
        /// Why it could not be evaluated.
        #[source]
        source: crate::variables::Error,
    },
    /// A variable has a value of the wrong kind.
    #[error("The variable {name} must be {expected}, found '{value}'")]
    InvalidVariable {
        /// The variable.
        name: String,
        /// Its (trimmed) value.
        value: String,
        /// What it must be, e.g. "a whole number".
        expected: &'static str,
    },
    /// A package file name without an extension.
    #[error(
        "Package is missing file extension. This is needed to select the correct extraction algorithm. File: '{}'",
        path.display()
    )]
    MissingExtension {
        /// The package (or its file name).
        path: PathBuf,
    },
    /// A package whose extension selects no extraction algorithm.
    #[error("Unsupported file extension `.{extension}` of package '{}'", path.display())]
    UnsupportedExtension {
        /// The package.
        path: PathBuf,
        /// The extension, without its dot.
        extension: String,
    },
    /// A package file name whose extension is not a package extension.
    #[error("Unsupported file extension `.{extension}`: '{file_name}'")]
    UnsupportedNameExtension {
        /// The file name.
        file_name: String,
        /// The extension, without its dot.
        extension: String,
    },
    /// A path that has no file name to read a package identity from.
    #[error("'{}' is not a package file name", path.display())]
    NotAPackageFileName {
        /// The path.
        path: PathBuf,
    },
    /// A package file name that holds no id and version.
    #[error(
        "Unable to determine the package id and version from the file name '{file_name}': expected 'Id.Version{extension}' or 'Id@SVersion@Hash{extension}'"
    )]
    NoIdentityInFileName {
        /// The file name.
        file_name: String,
        /// Its extension, with its dot.
        extension: String,
    },
    /// A `.nupkg` whose nuspec version does not parse.
    #[error("The nuspec in '{}' has an invalid version '{version}'", path.display())]
    InvalidNuspecVersion {
        /// The package.
        path: PathBuf,
        /// The version as written in the nuspec.
        version: String,
    },
    /// The extraction destination exists before extraction.
    #[error("The extraction destination '{}' already exists; extraction needs a new directory", path.display())]
    DestinationExists {
        /// The destination.
        path: PathBuf,
    },
    /// The extraction destination appeared while the package was being extracted.
    #[error("The extraction destination '{}' was created by someone else during extraction", path.display())]
    DestinationCreatedMeanwhile {
        /// The destination.
        path: PathBuf,
    },
    /// The extraction destination (or its parent) cannot be created: a read-only or
    /// unwritable parent, a file in the way.
    #[error("Cannot create the extraction destination '{}'", path.display())]
    DestinationNotWritable {
        /// The destination asked for (never the hidden directory written first).
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The extraction was stopped by SIGINT or SIGTERM; its partial directory was removed.
    #[error("Extraction of '{}' was cancelled by {name}; nothing was left behind", archive.display())]
    Cancelled {
        /// The archive.
        archive: PathBuf,
        /// The signal received.
        signal: i32,
        /// Its name (`SIGINT`).
        name: String,
    },
    /// An extraction destination without a final component (`/`, `..`).
    #[error("The extraction destination '{}' has no usable name", path.display())]
    DestinationHasNoName {
        /// The destination.
        path: PathBuf,
    },
    /// No staging root: neither the variable nor `HOME` is set.
    #[error("Unable to determine the application directory: set {variable} or the HOME environment variable")]
    NoApplicationDirectory {
        /// The variable that names the root.
        variable: &'static str,
    },
    /// The staging root's filesystem has less free space than required.
    #[error(
        "The drive containing the directory '{}' on machine '{host}' does not have enough free disk space available for this operation to proceed. The disk only has {available} MB available; please free up at least {required} MB.",
        path.display()
    )]
    NotEnoughFreeSpace {
        /// The staging root.
        path: PathBuf,
        /// This machine's host name (empty when unknown).
        host: String,
        /// Megabytes required.
        required: u64,
        /// Megabytes available.
        available: u64,
    },
    /// An entry that would be unsafe to extract.
    #[error("Refused to extract entry '{}' of '{}': {reason}", super::entry_name::shorten(entry), archive.display())]
    Refused {
        /// The archive.
        archive: PathBuf,
        /// The entry name as written in the archive (shortened in the message when long).
        entry: String,
        /// Why.
        reason: Refusal,
    },
    /// The archive could not be read.
    #[error("The package '{}' is damaged or not a valid archive{}: {message}", archive.display(), entry.as_ref().map(|e| format!(" (entry '{e}')")).unwrap_or_default())]
    Corrupt {
        /// The archive.
        archive: PathBuf,
        /// The entry being read, if any.
        entry: Option<String>,
        /// What went wrong.
        message: String,
    },
    /// A safety limit was exceeded.
    #[error("Extraction of '{}' stopped: {limit}", archive.display())]
    Limit {
        /// The archive.
        archive: PathBuf,
        /// Which limit, and how to change it.
        limit: LimitExceeded,
    },
    /// The package's hash is not the one given.
    #[error("The package '{}' has SHA-1 hash {actual}, but {expected} was expected; the package may be corrupt", path.display())]
    HashMismatch {
        /// The package.
        path: PathBuf,
        /// The hash given on the command line.
        expected: String,
        /// The hash of the file.
        actual: String,
    },
    /// A worker thread panicked: a bug.
    #[error("{thread} thread panicked")]
    ThreadPanicked {
        /// Which thread, e.g. "a zip writer".
        thread: &'static str,
    },
}

impl Error {
    /// A variable that could not be evaluated.
    pub(crate) fn variable(name: &str, source: crate::variables::Error) -> Error {
        Error::Variable { name: name.to_string(), source }
    }
}

/// A read error of an archive as an [`Error::Corrupt`].
pub(crate) fn corrupt(archive: &std::path::Path, entry: Option<&str>, e: &dyn std::fmt::Display) -> Error {
    Error::Corrupt { archive: archive.to_path_buf(), entry: entry.map(str::to_string), message: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code_of;

    #[test]
    fn exit_codes_by_kind() {
        let io = crate::fs::IoError { op: "read", path: PathBuf::from("x"), source: std::io::Error::other("boom") };
        assert_eq!(code_of(&Error::from(io)), 100);
        assert_eq!(code_of(&Error::ThreadPanicked { thread: "a zip writer" }), 100);
        assert_eq!(code_of(&Error::DestinationExists { path: PathBuf::from("d") }), 1);
        let recursive = crate::variables::Error::RecursiveDefinition { message: "A -> A".to_string() };
        let e = Error::variable("Octopus.Calamari.ArchiveLimits.Enabled", recursive);
        assert_eq!(e.to_string(), "Octopus.Calamari.ArchiveLimits.Enabled: A -> A");
        assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
        assert_eq!(code_of(&e), 101);
        let required = crate::variables::Error::Required("X".to_string());
        assert_eq!(code_of(&Error::variable("X", required)), 1);
    }
}
