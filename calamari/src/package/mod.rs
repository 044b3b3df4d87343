//! Packages: safe extraction of every package format, package names and versions,
//! staging directories and hashes.
//!
//! * [`extract`] unpacks one archive into a destination that must not exist yet. The
//!   format comes from the extension, as Calamari chooses it, and must agree with the
//!   file's magic bytes. Entries are walked one by one: [`entry_name`] refuses names with
//!   `..`, absolute or Windows-rooted paths or NUL; [`sink`]'s `Sink` refuses anything
//!   written through a symbolic link, links that leave the destination and devices;
//!   [`budget`] stops at the size, entry and ratio limits. Everything goes into a hidden
//!   sibling directory that is renamed into place at the end ([`partial`]): a failed or
//!   killed extraction never leaves a destination behind.
//! * [`zip`] reads `.zip`, `.nupkg`, `.whl`, `.jar`, `.war`, `.ear` with a small pool of
//!   writer threads; [`tar`] reads `.tar` and its gzip, bzip2, xz and zstd forms on one
//!   thread and hands the files to a pool of writers.
//! * [`name`] and [`version`] read package ids and versions from file names and nuspecs;
//!   [`Version`]'s order is the one NuGet/Octopus order used everywhere (packages,
//!   templating, self-install); [`staging`] picks
//!   `<root>/<tenant>/<environment>/<id>/<version>[_N]` under a cross-process lock;
//!   [`hash`] computes SHA-1 and SHA-256 in one pass; [`find`] backs `find-package`.

pub(crate) mod budget;
pub(crate) mod entry_name;
mod error;
pub(crate) mod find;
pub(crate) mod hash;
pub(crate) mod name;
pub(crate) mod partial;
mod progress;
pub(crate) mod refusal;
pub(crate) mod sink;
pub(crate) mod staging;
pub(crate) mod tar;

mod writer;
pub(crate) mod zip;

use std::io::Read as _;
use std::path::Path;

use crate::Log;
use crate::variables::VariableDictionary;

pub use crate::version::Version;
pub use budget::LimitExceeded;
pub use error::Error;
pub use name::PackageIdentity;
pub(crate) use partial::remove_stale as remove_stale_partials;
pub use refusal::Refusal;
pub(crate) use staging::extract_to_staging_with;
pub use staging::{StagedPackage, extract_to_staging};

/// Variables that set the safety limits (the reference's names, plus an entry count).
pub(crate) mod limit_names {
    /// `false` turns every limit off.
    pub(crate) const ENABLED: &str = "Octopus.Calamari.ArchiveLimits.Enabled";
    /// Maximum total bytes written, in bytes.
    pub(crate) const MAXIMUM_UNCOMPRESSED_SIZE: &str = "Octopus.Calamari.ArchiveLimits.MaximumUncompressedSize";
    /// Maximum ratio of bytes written to the archive's size.
    pub(crate) const MAXIMUM_COMPRESSION_RATIO: &str = "Octopus.Calamari.ArchiveLimits.MaximumCompressionRatio";
    /// Maximum number of entries.
    pub(crate) const MAXIMUM_ENTRY_COUNT: &str = "Octopus.Calamari.ArchiveLimits.MaximumEntryCount";
    /// Bytes written before the ratio limit applies (ours; default 256 MiB).
    pub(crate) const COMPRESSION_RATIO_FLOOR: &str = "Octopus.Calamari.ArchiveLimits.CompressionRatioFloor";
    /// Log sizes and ratios after extraction.
    pub(crate) const METRICS_ENABLED: &str = "Octopus.Calamari.ArchiveLimits.Metrics.Enabled";
}

/// Default maximum total uncompressed size: 1 TiB (never bites a real package).
pub(crate) const DEFAULT_MAX_UNCOMPRESSED_BYTES: u64 = 1 << 40;
/// Default maximum entry count.
pub(crate) const DEFAULT_MAX_ENTRIES: u64 = 2_000_000;
/// Default maximum ratio of bytes written to archive size. Deflate cannot exceed ~1032:1,
/// so only degenerate bzip2/xz/zstd streams (or zip tricks) reach it.
pub(crate) const DEFAULT_MAX_RATIO: u64 = 1000;
/// The ratio limit only applies once this many bytes have been written, so small archives
/// of very compressible text never trip it.
pub(crate) const RATIO_FLOOR_BYTES: u64 = 256 << 20;

/// How [`extract`] behaves: safety limits and parallelism.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Maximum total bytes written (`None`: unlimited).
    pub max_uncompressed_bytes: Option<u64>,
    /// Maximum number of entries (`None`: unlimited).
    pub max_entries: Option<u64>,
    /// Maximum ratio of bytes written to archive size (`None`: unlimited).
    pub max_ratio: Option<u64>,
    /// Log the archive size, bytes written and ratio after extraction (verbose).
    pub log_metrics: bool,
    /// The ratio limit applies only once this many bytes were written.
    pub ratio_floor_bytes: u64,
    /// Writer threads (at least 1).
    pub writer_threads: usize,
    /// Free bytes each entry's declared size must leave on the destination's filesystem
    /// (`None`: not checked).
    pub min_free_bytes: Option<u64>,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            max_uncompressed_bytes: Some(DEFAULT_MAX_UNCOMPRESSED_BYTES),
            max_entries: Some(DEFAULT_MAX_ENTRIES),
            max_ratio: Some(DEFAULT_MAX_RATIO),
            log_metrics: false,
            ratio_floor_bytes: RATIO_FLOOR_BYTES,
            writer_threads: 4,
            min_free_bytes: None,
        }
    }
}

impl ExtractOptions {
    /// Reads `Octopus.Calamari.ArchiveLimits.*`; unset variables keep the defaults, `0`
    /// means unlimited, `Enabled=false` turns all limits off.
    ///
    /// # Errors
    /// When a variable is not a whole number or cannot be evaluated.
    pub fn from_variables(variables: &VariableDictionary) -> Result<ExtractOptions, Error> {
        let mut options = ExtractOptions::default();
        let flag = |name: &str, default: bool| variables.get_flag(name, default).map_err(|e| Error::variable(name, e));
        options.log_metrics = flag(limit_names::METRICS_ENABLED, false)?;
        if let Some(floor) = whole_number(variables, limit_names::COMPRESSION_RATIO_FLOOR)? {
            options.ratio_floor_bytes = floor;
        }
        if !flag(limit_names::ENABLED, true)? {
            options.max_uncompressed_bytes = None;
            options.max_entries = None;
            options.max_ratio = None;
            return Ok(options);
        }
        let number = |name: &str, current: Option<u64>| -> Result<Option<u64>, Error> {
            match whole_number(variables, name)? {
                None => Ok(current),
                Some(0) => Ok(None),
                Some(n) => Ok(Some(n)),
            }
        };
        options.max_uncompressed_bytes =
            number(limit_names::MAXIMUM_UNCOMPRESSED_SIZE, options.max_uncompressed_bytes)?;
        options.max_ratio = number(limit_names::MAXIMUM_COMPRESSION_RATIO, options.max_ratio)?;
        options.max_entries = number(limit_names::MAXIMUM_ENTRY_COUNT, options.max_entries)?;
        Ok(options)
    }
}

/// The variable `name` as a whole number; `None` when unset or blank.
///
/// # Errors
/// [`Error::Variable`] when it cannot be evaluated, [`Error::InvalidVariable`] when it is
/// not a whole number.
pub(crate) fn whole_number(variables: &VariableDictionary, name: &str) -> Result<Option<u64>, Error> {
    let value = variables.get(name).map_err(|e| Error::variable(name, e))?;
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse::<u64>().map(Some).map_err(|_| Error::InvalidVariable {
            name: name.to_string(),
            value: text.to_string(),
            expected: "a whole number",
        }),
    }
}

/// What an extraction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractSummary {
    /// Non-directory entries written: files, hard links and symbolic links (the reference counts files).
    pub file_count: u64,
    /// Directories created.
    pub directory_count: u64,
    /// Bytes of file content written.
    pub bytes_written: u64,
    /// Symbolic links not created because their target leaves the destination.
    pub skipped_links: u64,
}

/// The compression of a tar stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain `.tar`.
    None,
    /// `.tar.gz`, `.tgz`.
    Gzip,
    /// `.tar.bz2`, `.tbz`, `.tar.bz`.
    Bzip2,
    /// `.tar.xz`, `.txz`.
    Xz,
    /// `.tar.zst`, `.tzst`.
    Zstd,
}

/// An archive format, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A zip archive; `nupkg` skips NuGet metadata and URL-unescapes names.
    Zip {
        /// True for `.nupkg`.
        nupkg: bool,
    },
    /// A tar stream.
    Tar(Compression),
}

impl Format {
    /// The format for a file name, by extension as Calamari chooses it.
    ///
    /// # Errors
    /// When the extension is missing or not supported.
    pub fn from_file_name(path: &Path) -> Result<Format, Error> {
        let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        let ends = |exts: &[&str]| exts.iter().any(|e| name.ends_with(e) && name.len() > e.len());
        Ok(if ends(&[".nupkg"]) {
            Format::Zip { nupkg: true }
        } else if ends(&[".tgz", ".tar.gz", ".tar.z"]) {
            Format::Tar(Compression::Gzip)
        } else if ends(&[".tar.bz2", ".tar.bz", ".tbz"]) {
            Format::Tar(Compression::Bzip2)
        } else if ends(&[".zip", ".whl", ".jar", ".war", ".ear"]) {
            Format::Zip { nupkg: false }
        } else if ends(&[".tar"]) {
            Format::Tar(Compression::None)
        } else if ends(&[".tar.xz", ".txz"]) {
            Format::Tar(Compression::Xz)
        } else if ends(&[".tar.zst", ".tzst"]) {
            Format::Tar(Compression::Zstd)
        } else {
            return Err(match Path::new(&name).extension() {
                None => Error::MissingExtension { path: path.to_path_buf() },
                Some(ext) => Error::UnsupportedExtension {
                    path: path.to_path_buf(),
                    extension: ext.to_string_lossy().into_owned(),
                },
            });
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Format::Zip { .. } => "zip",
            Format::Tar(Compression::None) => "tar",
            Format::Tar(Compression::Gzip) => "gzip",
            Format::Tar(Compression::Bzip2) => "bzip2",
            Format::Tar(Compression::Xz) => "xz",
            Format::Tar(Compression::Zstd) => "zstd",
        }
    }

    /// The format of `path`: by extension, checked against the magic bytes.
    ///
    /// # Errors
    /// When the extension is unknown, the file is empty or unreadable, or its content is
    /// another format than its extension says (the message names both).
    pub fn detect(path: &Path) -> Result<Format, Error> {
        let by_name = Format::from_file_name(path)?;
        let mut head = [0u8; 512];
        let mut file = crate::fs::open(path)?;
        let mut len = 0;
        while len < head.len() {
            match file.read(&mut head[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(crate::fs::IoError { op: "read", path: path.to_path_buf(), source: e }.into()),
            }
        }
        let head = &head[..len];
        if head.is_empty() {
            return Err(Error::Corrupt {
                archive: path.to_path_buf(),
                entry: None,
                message: "the file is empty".to_string(),
            });
        }
        let sniffed = sniff(head);
        let agrees = match (by_name, sniffed) {
            (_, Some(found)) if found == by_name.describe() => true,
            // A tar without a ustar magic (old v7 format) is still a tar.
            (Format::Tar(Compression::None), None) => true,
            _ => false,
        };
        if !agrees {
            let found = match sniffed {
                Some(kind) => format!("{kind} data"),
                None => {
                    let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
                    format!("not a known archive format (first bytes {})", hex.join(" "))
                }
            };
            return Err(Error::Corrupt {
                archive: path.to_path_buf(),
                entry: None,
                message: format!("its extension says {} but its content is {found}", by_name.describe()),
            });
        }
        Ok(by_name)
    }
}

/// The format the first bytes of a file show.
fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") || head.starts_with(b"PK\x07\x08") {
        Some("zip")
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if head.starts_with(b"BZh") {
        Some("bzip2")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some("tar")
    } else if head.starts_with(&[0x1f, 0x9d]) {
        Some("compress (.Z)")
    } else if head.starts_with(b"7z\xbc\xaf\x27\x1c") {
        Some("7-Zip")
    } else if head.starts_with(b"Rar!") {
        Some("RAR")
    } else {
        let text = String::from_utf8_lossy(&head[..head.len().min(64)]).to_ascii_lowercase();
        if text.trim_start().starts_with("<!doctype html") || text.trim_start().starts_with("<html") {
            Some("HTML")
        } else {
            None
        }
    }
}

/// Extracts `archive` into `destination`, which must not exist. Everything is written to a
/// hidden sibling directory first and renamed into place at the end, so on failure (or if
/// the process is killed) no destination exists; a later extraction into the same parent
/// removes the leftovers.
///
/// # Errors
/// Unsupported or mismatched format, unsafe or damaged entries, exceeded limits, I/O.
pub fn extract(
    archive: &Path,
    destination: &Path,
    options: &ExtractOptions,
    log: &Log,
) -> Result<ExtractSummary, Error> {
    let format = Format::detect(archive)?;
    if destination.symlink_metadata().is_ok() {
        return Err(Error::DestinationExists { path: destination.to_path_buf() });
    }
    // Declared before the partial directory, so that it is dropped after it: a Ctrl-C
    // while the directory is being removed does not interrupt the removal.
    let _cancellation = partial::Cancellation::install();
    let partial = partial::Partial::create(destination)?;
    let summary = extract_into(archive, format, partial.path(), options, log)?;
    partial.commit(destination)?;
    Ok(summary)
}

/// Extracts into an existing, empty directory that only this process writes to.
pub(crate) fn extract_into(
    archive: &Path,
    format: Format,
    root: &Path,
    options: &ExtractOptions,
    log: &Log,
) -> Result<ExtractSummary, Error> {
    let _cancellation = partial::Cancellation::install();
    let archive_size = crate::fs::metadata(archive)?.len();
    let mut sink = sink::Sink::new(root, archive, options, archive_size, log);
    let progress = progress::Progress::start(archive, sink.budget().clone(), log);
    let extracted = match format {
        Format::Zip { nupkg } => zip::extract(archive, nupkg, &mut sink),
        Format::Tar(compression) => tar::extract(archive, compression, &mut sink),
    };
    let summary = extracted.and_then(|()| sink.finish());
    drop(progress);
    let summary = summary?;
    // A signal that came after the last chunk still cancels: the caller removes the
    // partial directory instead of committing it.
    if let Some(signal) = partial::cancellation() {
        return Err(Error::Cancelled {
            archive: archive.to_path_buf(),
            signal,
            name: crate::signals::signal_name(signal),
        });
    }
    if summary.file_count == 0 && summary.directory_count == 0 {
        log.warn(format!("The package '{}' contains no files", archive.display()));
    }
    if options.log_metrics {
        log.verbose(format!(
            "Archive metrics for '{}': {} bytes compressed, {} bytes extracted in {} and {} (ratio {:.1})",
            archive.display(),
            archive_size,
            summary.bytes_written,
            crate::log::count(summary.file_count, "file", "files"),
            crate::log::count(summary.directory_count, "directory", "directories"),
            summary.bytes_written as f64 / archive_size.max(1) as f64
        ));
    }
    Ok(summary)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests;
