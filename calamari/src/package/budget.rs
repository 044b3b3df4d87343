//! The safety limits of one extraction: total bytes written, number of entries, the ratio
//! of bytes written to compressed bytes, and the free space left on the destination's
//! filesystem.
//!
//! Bytes are counted as the data streams, never from the sizes an archive declares, by
//! every writer thread through one shared `Budget`. The ratio limit only applies once
//! [`ExtractOptions::ratio_floor_bytes`] were written, so small archives of very
//! compressible text never trip it. For a tar stream the ratio is taken against the
//! compressed bytes read so far (a bomb hidden at the start of a large archive is stopped
//! early, not once the whole archive's size times the ratio was written); for a zip entry
//! against that entry's compressed size, and for the whole zip against its size.
//!
//! The declared sizes (tar headers, zip uncompressed sizes) are checked against the free
//! space as the entries come, when [`ExtractOptions::min_free_bytes`] is set: an entry
//! that would leave less than that free stops the extraction before it is written. Each
//! limit is `None` when switched off.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{Error, ExtractOptions, limit_names};

/// Skip the free-space check when true.
pub(crate) const SKIP_FREE_DISK_SPACE_CHECK: &str = "OctopusSkipFreeDiskSpaceCheck";
/// Required free space in megabytes instead of 500.
pub(crate) const FREE_DISK_SPACE_OVERRIDE: &str = "OctopusFreeDiskSpaceOverrideInMegaBytes";

const MEGABYTE: u64 = 1024 * 1024;

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
    /// Written bytes reached `MaximumCompressionRatio` times the compressed bytes of a tar
    /// stream read so far.
    #[error(
        "it expands to more than {ratio} times the {read} compressed bytes read so far (of its {archive_size} bytes), which looks like a decompression bomb (set {} to raise the limit, 0 for none)",
        limit_names::MAXIMUM_COMPRESSION_RATIO
    )]
    StreamRatio {
        /// The limit.
        ratio: u64,
        /// Compressed bytes read when the limit was reached.
        read: u64,
        /// The archive's size in bytes.
        archive_size: u64,
    },
    /// A zip entry expands to `MaximumCompressionRatio` times its compressed size.
    #[error(
        "its entry '{entry}' expands to more than {ratio} times its compressed size of {compressed} bytes, which looks like a decompression bomb (set {} to raise the limit, 0 for none)",
        limit_names::MAXIMUM_COMPRESSION_RATIO
    )]
    EntryRatio {
        /// The entry.
        entry: String,
        /// The limit.
        ratio: u64,
        /// The entry's compressed size in bytes.
        compressed: u64,
    },
    /// An entry's declared size would leave less free space than required.
    #[error(
        "its entry '{entry}' declares {declared_mb} MB, which would leave less than the required {required_mb} MB free on the drive containing '{}' ({available_mb} MB available) (set {FREE_DISK_SPACE_OVERRIDE} to require less free space, or {SKIP_FREE_DISK_SPACE_CHECK} to True to skip the check)",
        directory.display()
    )]
    FreeSpace {
        /// The entry.
        entry: String,
        /// Its declared size, in megabytes (rounded up).
        declared_mb: u64,
        /// The free space to keep, in megabytes.
        required_mb: u64,
        /// The free space when checked, in megabytes.
        available_mb: u64,
        /// The extraction directory.
        directory: PathBuf,
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
    /// Compressed bytes read so far: the archive's size until [`Budget::start_stream`].
    compressed: AtomicU64,
    streaming: AtomicBool,
    free_space: Option<FreeSpace>,
}

/// The free-space check of declared sizes.
#[derive(Debug)]
struct FreeSpace {
    directory: PathBuf,
    required: u64,
    /// Free bytes at the last look, and bytes declared since.
    state: Mutex<(u64, u64)>,
}

/// Free bytes for an unprivileged user on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

impl Budget {
    /// A budget for extracting `archive` (of `archive_size` bytes) under `options`.
    /// `root` is the directory written to (for the free-space check).
    pub(crate) fn new(options: &ExtractOptions, archive: PathBuf, archive_size: u64, root: &Path) -> Budget {
        Budget {
            compressed: AtomicU64::new(archive_size),
            streaming: AtomicBool::new(false),
            free_space: options.min_free_bytes.map(|required| FreeSpace {
                directory: root.to_path_buf(),
                required,
                state: Mutex::new((0, 0)),
            }),
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
                name: crate::signals::signal_name(signal),
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
        {
            let read = self.compressed.load(Ordering::Relaxed);
            if total / read.max(1) >= ratio {
                return Err(self.exceeded(if self.streaming.load(Ordering::Relaxed) {
                    LimitExceeded::StreamRatio { ratio, read, archive_size: self.archive_size }
                } else {
                    LimitExceeded::Ratio { ratio, archive_size: self.archive_size }
                }));
            }
        }
        Ok(())
    }

    /// From now on the ratio is taken against the compressed bytes counted by
    /// [`Budget::add_compressed`], not the archive's size.
    pub(crate) fn start_stream(&self) {
        self.compressed.store(0, Ordering::Relaxed);
        self.streaming.store(true, Ordering::Relaxed);
    }

    /// Counts `n` more compressed bytes read from the archive.
    pub(crate) fn add_compressed(&self, n: u64) {
        self.compressed.fetch_add(n, Ordering::Relaxed);
    }

    /// Checks one entry's ratio: `written` bytes so far from `compressed` compressed bytes.
    pub(crate) fn check_entry_ratio(&self, entry: &str, written: u64, compressed: u64) -> Result<(), Error> {
        match self.max_ratio {
            Some(ratio) if written > self.ratio_floor && written / compressed.max(1) >= ratio => {
                Err(self.exceeded(LimitExceeded::EntryRatio { entry: entry.to_string(), ratio, compressed }))
            }
            _ => Ok(()),
        }
    }

    /// Notes that `entry` will write `size` bytes: fails when that would leave less free
    /// space than required. The filesystem is asked again only once the sizes declared
    /// since the last look could reach the margin.
    pub(crate) fn declare(&self, entry: &str, size: u64) -> Result<(), Error> {
        let Some(guard) = &self.free_space else { return Ok(()) };
        let mut state = guard.state.lock().unwrap_or_else(|p| p.into_inner());
        let (free, pending) = *state;
        let pending = pending.saturating_add(size);
        if pending.saturating_add(guard.required) <= free {
            *state = (free, pending);
            return Ok(());
        }
        let Some(free) = free_bytes(&guard.directory) else {
            *state = (u64::MAX, 0);
            return Ok(());
        };
        *state = (free, size);
        if size.saturating_add(guard.required) > free {
            return Err(self.exceeded(LimitExceeded::FreeSpace {
                entry: entry.to_string(),
                declared_mb: size.div_ceil(MEGABYTE),
                required_mb: guard.required / MEGABYTE,
                available_mb: free / MEGABYTE,
                directory: guard.directory.clone(),
            }));
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
        Budget::new(&options, PathBuf::from("a.zip"), 10, Path::new("/"))
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
    fn stream_ratio_counts_compressed_bytes_read_so_far() {
        let b = budget(None, Some(5), None, 0);
        b.start_stream();
        b.add_compressed(2);
        assert_eq!(limit(b.add(9)), None);
        assert_eq!(limit(b.add(1)), Some(LimitExceeded::StreamRatio { ratio: 5, read: 2, archive_size: 10 }));
        let b = budget(None, Some(5), None, 0);
        assert_eq!(limit(b.check_entry_ratio("e", 9, 2)), None);
        assert_eq!(
            limit(b.check_entry_ratio("e", 10, 2)),
            Some(LimitExceeded::EntryRatio { entry: "e".to_string(), ratio: 5, compressed: 2 })
        );
    }

    #[test]
    fn declared_sizes_must_leave_the_required_free_space() {
        let options = ExtractOptions { min_free_bytes: Some(MEGABYTE), ..ExtractOptions::default() };
        let b = Budget::new(&options, PathBuf::from("a.tar"), 10, Path::new("/"));
        assert_eq!(limit(b.declare("small", 10)), None);
        match limit(b.declare("huge", u64::MAX / 2)) {
            Some(LimitExceeded::FreeSpace { entry, required_mb: 1, .. }) => assert_eq!(entry, "huge"),
            other => panic!("{other:?}"),
        }
        let unchecked = budget(None, None, None, 0);
        assert_eq!(limit(unchecked.declare("huge", u64::MAX)), None);
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
