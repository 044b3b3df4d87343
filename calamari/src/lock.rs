//! Cross-process named locks: `flock(2)` on a lock file. The kernel releases the lock when
//! the holder dies, so a `kill -9` never leaves a stale lock behind (hardening P4, E-8).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::fs::{IoContext, Result};

/// An exclusive lock held on a lock file until dropped.
#[derive(Debug)]
pub struct NamedLock {
    file: File,
    path: PathBuf,
}

impl NamedLock {
    /// Blocks until the exclusive lock on `path` is ours. Creates the file (and its
    /// directory) when missing. The file is never deleted: deleting a lock file races with
    /// other processes that have it open.
    pub fn acquire(path: impl AsRef<Path>) -> Result<NamedLock> {
        let (file, path) = open_lock_file(path.as_ref())?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(std::io::Error::from)
            .at("lock", &path)?;
        Ok(NamedLock { file, path })
    }

    /// Takes the lock only if nobody holds it.
    pub fn try_acquire(path: impl AsRef<Path>) -> Result<Option<NamedLock>> {
        let (file, path) = open_lock_file(path.as_ref())?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(NamedLock { file, path })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(std::io::Error::from(e)).at("lock", &path),
        }
    }

    /// Blocks until the exclusive lock on `path`, an existing file or directory, is ours.
    /// The path is opened read-only and never created: for a lock that lives on the
    /// directory it protects (the lock follows the directory through renames).
    pub fn acquire_existing(path: impl AsRef<Path>) -> Result<NamedLock> {
        let path = path.as_ref();
        let file = File::open(path).at("open", path)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(std::io::Error::from)
            .at("lock", path)?;
        Ok(NamedLock { file, path: path.to_path_buf() })
    }

    /// True when someone holds the lock on `path` (an existing file or directory, never
    /// created). Tests with a shared lock, so two processes testing at once do not see
    /// each other; false when `path` cannot be opened.
    pub fn is_held(path: impl AsRef<Path>) -> bool {
        let Ok(file) = File::open(path.as_ref()) else { return false };
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared).is_err()
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
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
