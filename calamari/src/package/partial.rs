//! Atomic extraction: a hidden sibling directory that is renamed into place at the end.
//!
//! `.<name>.calamari-partial-<random>` is created next to the destination and locked (a
//! [`NamedLock`] on the directory itself) for as long as its extraction runs; the lock
//! dies with the process. Whoever creates a
//! partial directory in the same parent first removes every partial directory whose lock
//! is free: those were left by a failed or killed extraction. The directory is first
//! created under a `.calamari-new-` name and renamed to its `partial` name only once it is
//! locked, so a cleaner never sees an unlocked directory that is still in use.
//!
//! A live partial directory also reserves its destination name: the staging code treats
//! `<name>` as taken while `.<name>.calamari-partial-*` is locked (see [`is_reserved`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::fs::IoError;
use crate::lock::NamedLock;

use super::Error;

const PARTIAL: &str = ".calamari-partial-";
const NEW: &str = ".calamari-new-";

/// A locked, hidden directory that becomes the destination on [`Partial::commit`] and is
/// removed when dropped uncommitted.
#[derive(Debug)]
pub(crate) struct Partial {
    path: PathBuf,
    lock: Option<NamedLock>,
    committed: bool,
}

impl Partial {
    /// Creates the partial directory for `destination` (whose parent is created if needed),
    /// after removing stale partial directories in the same parent.
    ///
    /// # Errors
    /// I/O errors creating, locking or renaming the directory.
    pub(crate) fn create(destination: &Path) -> Result<Partial, Error> {
        let (parent, name) = split(destination)?;
        // A read-only or unwritable parent is the user's to fix: name the destination
        // asked for, not the hidden directory.
        let not_writable =
            |e: IoError| Error::DestinationNotWritable { path: destination.to_path_buf(), source: e.source };
        crate::fs::create_dir_all(&parent).map_err(not_writable)?;
        remove_stale(&parent);
        let token = format!("{:016x}", rand::random::<u64>());
        let fresh = parent.join(format!(".{name}{NEW}{token}"));
        crate::fs::create_dir(&fresh).map_err(not_writable)?;
        let lock = match NamedLock::acquire_existing(&fresh) {
            Ok(lock) => lock,
            Err(e) => {
                // Best-effort cleanup: the lock error is the one to report.
                let _ = crate::fs::remove_dir(&fresh);
                return Err(e.into());
            }
        };
        let path = parent.join(format!(".{name}{PARTIAL}{token}"));
        if let Err(e) = crate::fs::rename(&fresh, &path) {
            // Best-effort cleanup: the rename error is the one to report.
            let _ = crate::fs::remove_dir(&fresh);
            return Err(e.into());
        }
        Ok(Partial { path, lock: Some(lock), committed: false })
    }

    /// The directory to extract into.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the directory to `destination`, which must not exist, and makes the rename
    /// durable by syncing the parent directory.
    ///
    /// # Errors
    /// When `destination` exists or the rename fails.
    pub(crate) fn commit(mut self, destination: &Path) -> Result<(), Error> {
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &self.path,
            rustix::fs::CWD,
            destination,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {}
            // Filesystems without RENAME_NOREPLACE: fall back to rename(2), which refuses a
            // non-empty existing directory anyway.
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {
                if destination.symlink_metadata().is_ok() {
                    return Err(exists(destination));
                }
                crate::fs::rename(&self.path, destination)?;
            }
            Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => return Err(exists(destination)),
            Err(e) => return Err(IoError { op: "rename to", path: destination.to_path_buf(), source: e.into() }.into()),
        }
        self.committed = true;
        self.lock = None;
        let _ = crate::fs::sync_parent(destination);
        Ok(())
    }
}

fn exists(destination: &Path) -> Error {
    Error::DestinationCreatedMeanwhile { path: destination.to_path_buf() }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.committed {
            let _ = remove_tree(&self.path);
        }
    }
}

fn split(destination: &Path) -> Result<(PathBuf, String), Error> {
    let name = destination
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::DestinationHasNoName { path: destination.to_path_buf() })?;
    let parent = match destination.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_string()))
}

/// Removes a tree we created, making read-only directories writable first.
fn remove_tree(path: &Path) -> crate::fs::Result<()> {
    match crate::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(_) => {
            for entry in walkdir::WalkDir::new(path).follow_links(false).into_iter().flatten() {
                if entry.file_type().is_dir() {
                    // Best effort: a directory we cannot chmod makes the removal below fail.
                    let _ = crate::fs::set_mode(entry.path(), 0o700);
                }
            }
            crate::fs::remove_dir_all(path)
        }
    }
}

/// Removes partial directories in `parent` whose extraction is no longer running, and
/// `new` directories older than an hour (a process killed between mkdir and rename).
pub(crate) fn remove_stale(parent: &Path) {
    let Ok(entries) = crate::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if name.contains(PARTIAL) {
            if !is_locked(&path) {
                let _ = remove_tree(&path);
            }
        } else if name.contains(NEW) {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > Duration::from_secs(3600));
            if old {
                let _ = remove_tree(&path);
            }
        }
    }
}

/// True when a process holds the lock of this partial directory.
fn is_locked(path: &Path) -> bool {
    NamedLock::is_held(path)
}

/// True when an extraction in progress has reserved `parent/name`.
pub(crate) fn is_reserved(parent: &Path, name: &str) -> bool {
    let prefix = format!(".{name}{PARTIAL}");
    let Ok(entries) = crate::fs::read_dir(parent) else { return false };
    entries.flatten().any(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) && is_locked(&e.path()))
}

/// Creates the partial directory for `parent/name` without touching stale ones (the caller
/// holds the staging lock and cleaned them already).
pub(crate) fn create_in(parent: &Path, name: &str) -> Result<Partial, Error> {
    Partial::create(&parent.join(name))
}

// --- SIGINT/SIGTERM during an extraction -------------------------------------------------
//
// While an extraction runs, SIGINT and SIGTERM only set a flag. The byte and entry budget
// checks it with every chunk and entry, so the extraction stops with
// [`Error::Cancelled`], the [`Partial`] is dropped (its directory removed) and the command
// exits 128 + signal, as a cancelled script does. The handlers are `crate::signals`'.

/// The signal received while an extraction runs, if any.
pub(crate) fn cancellation() -> Option<i32> {
    crate::signals::received()
}

/// While alive, SIGINT and SIGTERM mark the running extractions cancelled instead of
/// killing the process (see `crate::signals`).
pub(crate) type Cancellation = crate::signals::SignalGuard;

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn committed_partial_becomes_destination_and_dropped_one_vanishes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let p = Partial::create(&dest).unwrap();
        std::fs::write(p.path().join("f"), "x").unwrap();
        assert!(is_reserved(dir.path(), "out"));
        p.commit(&dest).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "x");
        assert!(!is_reserved(dir.path(), "out"));

        let other = dir.path().join("other");
        let p = Partial::create(&other).unwrap();
        let partial_path = p.path().to_path_buf();
        drop(p);
        assert!(!partial_path.exists());
        assert!(!other.exists());
    }

    #[test]
    fn stale_partials_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".x.calamari-partial-dead");
        std::fs::create_dir_all(stale.join("sub")).unwrap();
        let live = Partial::create(&dir.path().join("y")).unwrap();
        let unrelated = dir.path().join(".keep");
        std::fs::create_dir(&unrelated).unwrap();
        let _again = Partial::create(&dir.path().join("z")).unwrap();
        assert!(!stale.exists());
        assert!(live.path().exists());
        assert!(unrelated.exists());
    }

    #[test]
    fn commit_refuses_existing_destination() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let p = Partial::create(&dest).unwrap();
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("mine"), "x").unwrap();
        let e = p.commit(&dest).unwrap_err().to_string();
        assert!(e.contains("created by someone else"), "{e}");
        assert!(dest.join("mine").exists());
    }
}
