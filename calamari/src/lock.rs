//! Cross-process named locks: `flock(2)` on a lock file. The kernel releases the lock when
//! the holder dies, so a `kill -9` never leaves a stale lock behind, and a lock file left on
//! disk by a dead process never blocks anyone.
//!
//! [`NamedLock::acquire_within`] is the one bounded wait every lock of Calamari uses (the
//! deployment journal, the self-install, staging directories, extractions): it polls, tells
//! the caller once that it is waiting, and gives up with [`LockTimeout`] naming the lock
//! file and how long it waited.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fs::{IoContext, Result};

/// Another process held a lock for longer than we were willing to wait.
#[derive(Debug, thiserror::Error)]
#[error("Timed out after {} seconds waiting for the {purpose} '{}'; another process holds it", waited.as_secs(), path.display())]
pub struct LockTimeout {
    /// What the lock guards, as a reader names it ("deployment journal lock").
    pub purpose: &'static str,
    /// The lock file.
    pub path: PathBuf,
    /// How long we waited.
    pub waited: Duration,
}

/// Why [`NamedLock::acquire_within`] returned without the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file could not be opened or locked.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// The wait ran out.
    #[error(transparent)]
    Timeout(#[from] LockTimeout),
}

/// A lock held on a lock file until dropped: exclusive, or shared with other readers.
#[derive(Debug)]
pub(crate) struct NamedLock {
    file: File,
}

impl NamedLock {
    /// Blocks until the exclusive lock on `path` is ours. Creates the file (and its
    /// directory) when missing. The file is never deleted: deleting a lock file races with
    /// other processes that have it open.
    pub(crate) fn acquire(path: impl AsRef<Path>) -> Result<NamedLock> {
        let (file, path) = open_lock_file(path.as_ref())?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(std::io::Error::from)
            .at("lock", &path)?;
        Ok(NamedLock { file })
    }

    /// Takes the lock only if nobody holds it.
    pub(crate) fn try_acquire(path: impl AsRef<Path>) -> Result<Option<NamedLock>> {
        let (file, path) = open_lock_file(path.as_ref())?;
        try_lock(file, &path, rustix::fs::FlockOperation::NonBlockingLockExclusive)
    }

    /// Takes the lock shared (with other shared holders, never with an exclusive one) only
    /// if no exclusive holder has it.
    /// An existing lock file is opened read-only (a reader may not be allowed to write it).
    pub(crate) fn try_acquire_shared(path: impl AsRef<Path>) -> Result<Option<NamedLock>> {
        let path = path.as_ref();
        let (file, path) = match File::options().read(true).open(path) {
            Ok(file) => (file, path.to_path_buf()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => open_lock_file(path)?,
            Err(e) => return Err(e).at("open lock file", path),
        };
        try_lock(file, &path, rustix::fs::FlockOperation::NonBlockingLockShared)
    }

    /// Takes the lock, waiting at most `timeout` for another holder. `on_wait` is called
    /// once, before the first pause, so the caller can say who it is waiting for. Polls
    /// (1 ms doubling to 50 ms) rather than blocking, so the wait is bounded.
    ///
    /// # Errors
    /// [`LockError::Timeout`] when the wait runs out; [`LockError::Io`] when the lock file
    /// cannot be opened.
    pub(crate) fn acquire_within(
        purpose: &'static str,
        path: impl AsRef<Path>,
        timeout: Duration,
        on_wait: impl FnOnce(&Path),
    ) -> std::result::Result<NamedLock, LockError> {
        Self::acquire_within_as(purpose, path, timeout, on_wait, |p| NamedLock::try_acquire(p))
    }

    /// [`acquire_within`](Self::acquire_within) for a shared lock (readers, who exclude
    /// writers but not each other).
    ///
    /// # Errors
    /// As [`acquire_within`](Self::acquire_within).
    pub(crate) fn acquire_shared_within(
        purpose: &'static str,
        path: impl AsRef<Path>,
        timeout: Duration,
        on_wait: impl FnOnce(&Path),
    ) -> std::result::Result<NamedLock, LockError> {
        Self::acquire_within_as(purpose, path, timeout, on_wait, |p| NamedLock::try_acquire_shared(p))
    }

    fn acquire_within_as(
        purpose: &'static str,
        path: impl AsRef<Path>,
        timeout: Duration,
        on_wait: impl FnOnce(&Path),
        try_acquire: fn(&Path) -> Result<Option<NamedLock>>,
    ) -> std::result::Result<NamedLock, LockError> {
        let path = path.as_ref();
        if let Some(lock) = try_acquire(path)? {
            return Ok(lock);
        }
        on_wait(path);
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            std::thread::sleep(pause);
            if let Some(lock) = try_acquire(path)? {
                return Ok(lock);
            }
            if start.elapsed() >= timeout {
                return Err(LockTimeout { purpose, path: path.to_path_buf(), waited: timeout }.into());
            }
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Blocks until the exclusive lock on `path`, an existing file or directory, is ours.
    /// The path is opened read-only and never created: for a lock that lives on the
    /// directory it protects (the lock follows the directory through renames).
    pub(crate) fn acquire_existing(path: impl AsRef<Path>) -> Result<NamedLock> {
        let path = path.as_ref();
        let file = crate::fs::open(path)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(std::io::Error::from)
            .at("lock", path)?;
        Ok(NamedLock { file })
    }

    /// True when someone holds the lock on `path` (an existing file or directory, never
    /// created). Tests with a shared lock, so two processes testing at once do not see
    /// each other; false when `path` cannot be opened.
    pub(crate) fn is_held(path: impl AsRef<Path>) -> bool {
        let Ok(file) = crate::fs::open(path) else { return false };
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared).is_err()
    }
}

fn try_lock(file: File, path: &Path, operation: rustix::fs::FlockOperation) -> Result<Option<NamedLock>> {
    match rustix::fs::flock(&file, operation) {
        Ok(()) => Ok(Some(NamedLock { file })),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(std::io::Error::from(e)).at("lock", path),
    }
}

/// Opens (creating it and its directory when missing) a lock file.
fn open_lock_file(path: &Path) -> Result<(File, PathBuf)> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::fs::create_dir_all(parent)?;
    }
    let file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).at("open lock file", path)?;
    Ok((file, path.to_path_buf()))
}

impl Drop for NamedLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first makes the release
        // independent of any descriptor a child process may have inherited.
        let _ = rustix::fs::flock(&self.file, rustix::fs::FlockOperation::Unlock);
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn second_try_fails_while_held_and_succeeds_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/x.lock");
        let held = NamedLock::acquire(&path).unwrap();
        assert!(NamedLock::try_acquire(&path).unwrap().is_none());
        drop(held);
        assert!(NamedLock::try_acquire(&path).unwrap().is_some());
    }

    #[test]
    fn bounded_wait_names_the_lock_and_the_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let _held = NamedLock::acquire(&path).unwrap();
        let mut told = None;
        let err =
            NamedLock::acquire_within("test lock", &path, Duration::from_millis(60), |p| told = Some(p.to_path_buf()))
                .unwrap_err();
        assert_eq!(told.as_deref(), Some(path.as_path()));
        let LockError::Timeout(timeout) = err else { panic!("expected a timeout, got {err}") };
        assert_eq!(timeout.path, path);
        assert!(timeout.to_string().starts_with("Timed out after 0 seconds waiting for the test lock '"), "{timeout}");
    }

    #[test]
    fn a_directory_can_be_locked_and_tested() {
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("d");
        std::fs::create_dir(&locked).unwrap();
        assert!(!NamedLock::is_held(&locked));
        let held = NamedLock::acquire_existing(&locked).unwrap();
        assert!(NamedLock::is_held(&locked));
        drop(held);
        assert!(!NamedLock::is_held(&locked));
        assert!(!NamedLock::is_held(dir.path().join("missing")));
        assert!(NamedLock::acquire_existing(dir.path().join("missing")).is_err());
    }
}
