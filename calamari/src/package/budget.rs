//! The safety limits of one extraction: total bytes written, number of entries, and the
//! ratio of bytes written to the archive's size.
//!
//! Bytes are counted as the data streams, never from the sizes an archive declares, by
//! every writer thread through one shared `Budget`. The ratio limit only applies once
//! [`ExtractOptions::ratio_floor_bytes`] were written, so small archives of very
//! compressible text never trip it. Each limit is `None` when switched off.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Error, ExtractOptions, limit_names};

/// Which limit an extraction passed; the message says how to change it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// More bytes than `MaximumUncompressedSize`.
    #[error(
        "it expands to more than {max} bytes (set {} to raise the limit, 0 for none)",
        limit_names::MAXIMUM_UNCOMPRESSED_SIZE
    )]
    Size {
        /// The limit, in bytes.
        max: u64,
    },
    /// Written bytes reached `MaximumCompressionRatio` times the archive's size.
    #[error(
        "it expands to more than {ratio} times its size of {archive_size} bytes, which looks like a decompression bomb (set {} to raise the limit, 0 for none)",
        limit_names::MAXIMUM_COMPRESSION_RATIO
    )]
    Ratio {
        /// The limit.
        ratio: u64,
        /// The archive's size in bytes.
        archive_size: u64,
    },
    /// More entries than `MaximumEntryCount`.
    #[error("it has more than {max} entries (set {} to raise the limit, 0 for none)", limit_names::MAXIMUM_ENTRY_COUNT)]
    Entries {
        /// The limit.
        max: u64,
    },
}

/// Bytes and entries counted so far, checked against the limits. Shared with the writer
/// threads.
#[derive(Debug)]
pub(crate) struct Budget {
    written: AtomicU64,
    entries: AtomicU64,
    max_bytes: Option<u64>,
    max_ratio: Option<u64>,
    max_entries: Option<u64>,
    ratio_floor: u64,
    archive_size: u64,
    archive: PathBuf,
}

impl Budget {
    /// A budget for extracting `archive` (of `archive_size` bytes) under `options`.
    pub(crate) fn new(options: &ExtractOptions, archive: PathBuf, archive_size: u64) -> Budget {
        Budget {
            written: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            max_bytes: options.max_uncompressed_bytes,
            max_ratio: options.max_ratio,
            max_entries: options.max_entries,
            ratio_floor: options.ratio_floor_bytes,
            archive_size,
            archive,
        }
    }

    fn exceeded(&self, limit: LimitExceeded) -> Error {
        Error::Limit { archive: self.archive.clone(), limit }
    }

    /// Fails when SIGINT or SIGTERM arrived during the extraction (see
    /// [`super::partial::Cancellation`]); checked with every chunk and entry.
    fn check_cancelled(&self) -> Result<(), Error> {
        match super::partial::cancellation() {
            None => Ok(()),
            Some(signal) => Err(Error::Cancelled {
                archive: self.archive.clone(),
                signal,
                name: crate::script::process::signal_name(signal),
            }),
        }
    }

    /// Counts `n` more bytes; fails once a limit is passed or the extraction was cancelled.
    pub(crate) fn add(&self, n: u64) -> Result<(), Error> {
        self.check_cancelled()?;
        let total = self.written.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(max) = self.max_bytes
            && total > max
        {
            return Err(self.exceeded(LimitExceeded::Size { max }));
        }
        if let Some(ratio) = self.max_ratio
            && total > self.ratio_floor
            && total / self.archive_size.max(1) >= ratio
        {
            return Err(self.exceeded(LimitExceeded::Ratio { ratio, archive_size: self.archive_size }));
        }
        Ok(())
    }

    /// Counts one more entry; fails once the entry limit is passed or the extraction was
    /// cancelled.
    pub(crate) fn add_entry(&self) -> Result<(), Error> {
        self.check_cancelled()?;
        let entries = self.entries.fetch_add(1, Ordering::Relaxed) + 1;
        match self.max_entries {
            Some(max) if entries > max => Err(self.exceeded(LimitExceeded::Entries { max })),
            _ => Ok(()),
        }
    }

    /// Bytes counted so far.
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Entries counted so far.
    pub(crate) fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(max_bytes: Option<u64>, max_ratio: Option<u64>, max_entries: Option<u64>, floor: u64) -> Budget {
        let options = ExtractOptions {
            max_uncompressed_bytes: max_bytes,
            max_entries,
            max_ratio,
            ratio_floor_bytes: floor,
            ..ExtractOptions::default()
        };
        Budget::new(&options, PathBuf::from("a.zip"), 10)
    }

    fn limit(result: Result<(), Error>) -> Option<LimitExceeded> {
        match result {
            Ok(()) => None,
            Err(Error::Limit { limit, .. }) => Some(limit),
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn size_limit_counts_every_byte() {
        let b = budget(Some(100), None, None, 0);
        assert_eq!(limit(b.add(60)), None);
        assert_eq!(limit(b.add(40)), None);
        assert_eq!(limit(b.add(1)), Some(LimitExceeded::Size { max: 100 }));
        assert_eq!(b.written(), 101);
    }

    #[test]
    fn ratio_limit_waits_for_the_floor() {
        let b = budget(None, Some(5), None, 100);
        assert_eq!(limit(b.add(100)), None, "at the floor the ratio is not checked");
        assert_eq!(limit(b.add(1)), Some(LimitExceeded::Ratio { ratio: 5, archive_size: 10 }));
        let unlimited = budget(None, None, None, 0);
        assert_eq!(limit(unlimited.add(u64::from(u32::MAX))), None);
    }

    #[test]
    fn entry_limit_and_message() {
        let b = budget(None, None, Some(2), 0);
        assert_eq!(limit(b.add_entry()), None);
        assert_eq!(limit(b.add_entry()), None);
        let e = b.add_entry().unwrap_err().to_string();
        assert_eq!(
            e,
            "Extraction of 'a.zip' stopped: it has more than 2 entries (set Octopus.Calamari.ArchiveLimits.MaximumEntryCount to raise the limit, 0 for none)"
        );
    }
}
