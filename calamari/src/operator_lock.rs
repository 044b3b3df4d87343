//! Operator locks (our extension; `calamari lock acquire|status|release`): an explicit,
//! deliberate hold on a retention policy set, with who took it, when and why, so that nobody
//! deploys to it or rolls it back until it is lifted ("the database migration is being
//! checked", as Kamal's `lock acquire -m`).
//!
//! A lock is one small JSON file, `$TentacleHome/OperatorLocks/<sha256 of the set, 16 hex
//! digits>.json`, holding the set's name, the holder, the message and the time. It is
//! created atomically (written and fsync'd under a temporary name, then hard-linked to its
//! name, which fails when a lock is there already) and lifted by deleting it. Unlike the
//! automatic deployment lock, a `flock` that dies with its process and so can never go
//! stale, an operator lock lasts until someone releases it: that is its point.
//!
//! `deploy-package` and `rollback` check the set's lock before anything else and exit 1
//! naming the holder, the message and since when.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::fs::IoContext as _;

/// The directory under `$TentacleHome` that holds the locks.
pub const LOCKS_DIRECTORY: &str = "OperatorLocks";

/// One operator lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorLock {
    /// The retention policy set it holds.
    pub retention_policy_set: String,
    /// Who took it (`user@host`, or what `--holder` said).
    pub holder: String,
    /// Why.
    pub message: String,
    /// When it was taken (RFC 3339, UTC).
    pub since: String,
}

impl std::fmt::Display for OperatorLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}' locked by {} since {}: {}", self.retention_policy_set, self.holder, self.since, self.message)
    }
}

/// What can go wrong with operator locks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `$TentacleHome` is not set: there is nowhere to keep locks.
    #[error("Operator locks live in $TentacleHome/{LOCKS_DIRECTORY}, and TentacleHome is not set")]
    NoHome,
    /// No set was named.
    #[error("--retentionPolicySet is required and must not be empty")]
    NoSet,
    /// An empty message.
    #[error("--message is required: say why the set is locked, for whoever finds it locked")]
    NoMessage,
    /// `lock acquire` on a set that is locked already.
    #[error("The retention policy set {0}. Nothing was changed; release it first (calamari lock release)")]
    AlreadyLocked(OperatorLock),
    /// A deployment or rollback to a locked set.
    #[error(
        "The retention policy set {lock}. Nothing was {done}; `calamari lock release --retentionPolicySet=\"{}\"` lifts the lock",
        lock.retention_policy_set
    )]
    Locked {
        /// The lock.
        lock: OperatorLock,
        /// "deployed" or "rolled back".
        done: &'static str,
    },
    /// A lock file that cannot be read as one.
    #[error("The operator lock file '{}' is not a lock ({source}); delete it to lift the lock", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: serde_json::Error,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
}

/// The file of `set`'s lock.
pub fn lock_path(home: &Path, set: &str) -> PathBuf {
    let digest = sha2::Sha256::digest(set.as_bytes());
    home.join(LOCKS_DIRECTORY).join(format!("{}.json", &hex::encode(digest)[..16]))
}

fn checked_set(set: &str) -> Result<&str, Error> {
    Some(set.trim()).filter(|s| !s.is_empty()).ok_or(Error::NoSet)
}

/// `user@host` of this process: the user's name from `/etc/passwd` (else `$USER`, else the
/// uid) and the host name.
pub fn default_holder() -> String {
    let uid = rustix::process::getuid().as_raw();
    let user = crate::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)? == uid.to_string()).then(|| name.to_string())
            })
        })
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("uid {uid}"));
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    format!("{user}@{host}")
}

/// `locks` as a JSON array of `{retentionPolicySet, holder, message, since}`.
pub fn to_json(locks: &[OperatorLock]) -> String {
    serde_json::to_string_pretty(locks).expect("locks serialise")
}

/// Reads `set`'s lock, if there is one.
///
/// # Errors
/// [`Error::Corrupt`] or an I/O error naming the file.
pub fn read(home: &Path, set: &str) -> Result<Option<OperatorLock>, Error> {
    let path = lock_path(home, set.trim());
    match crate::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| Error::Corrupt { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every lock under `home`, oldest first.
///
/// # Errors
/// As [`read`].
pub fn all(home: &Path) -> Result<Vec<OperatorLock>, Error> {
    let dir = home.join(LOCKS_DIRECTORY);
    let entries = match crate::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut locks = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = crate::fs::read(&path)?;
        locks.push(serde_json::from_slice::<OperatorLock>(&bytes).map_err(|source| Error::Corrupt { path, source })?);
    }
    locks.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.retention_policy_set.cmp(&b.retention_policy_set)));
    Ok(locks)
}

/// Takes `set`'s lock.
///
/// # Errors
/// [`Error::AlreadyLocked`] (naming the holder), [`Error::NoSet`], [`Error::NoMessage`], I/O.
pub fn acquire(home: &Path, set: &str, message: &str, holder: &str) -> Result<OperatorLock, Error> {
    let set = checked_set(set)?;
    let message = Some(message.trim()).filter(|m| !m.is_empty()).ok_or(Error::NoMessage)?;
    let lock = OperatorLock {
        retention_policy_set: set.to_string(),
        holder: holder.to_string(),
        message: message.to_string(),
        since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let path = lock_path(home, set);
    let dir = path.parent().expect("lock files sit in the locks directory");
    crate::fs::create_dir_all(dir)?;
    let json = serde_json::to_vec_pretty(&lock).expect("a lock serialises");
    let temp = tempfile::Builder::new().prefix(".tmp-lock-").tempfile_in(dir).at("create a file in", dir)?;
    std::io::Write::write_all(&mut temp.as_file(), &json).at("write", temp.path())?;
    temp.as_file().sync_all().at("sync", temp.path())?;
    // The hard link is the commit: it fails when a lock is there, whoever wrote it.
    match crate::fs::hard_link(temp.path(), &path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(match read(home, set)? {
                Some(existing) => Error::AlreadyLocked(existing),
                None => Error::Io(e),
            });
        }
        Err(e) => return Err(e.into()),
    }
    crate::fs::sync_path(dir)?;
    Ok(lock)
}

/// Lifts `set`'s lock; the lock lifted, `None` when there was none.
///
/// # Errors
/// [`Error::NoSet`], [`Error::Corrupt`] (the file is removed anyway), I/O.
pub fn release(home: &Path, set: &str) -> Result<Option<OperatorLock>, Error> {
    let set = checked_set(set)?;
    let path = lock_path(home, set);
    let existing = read(home, set).or_else(|e| match e {
        Error::Corrupt { .. } => Ok(None),
        e => Err(e),
    })?;
    match crate::fs::remove_file(&path) {
        Ok(()) => crate::fs::sync_path(path.parent().expect("in the locks directory"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    Ok(existing)
}

/// Fails when `set` is locked: `deploy-package` and `rollback` call it before doing anything.
///
/// # Errors
/// [`Error::Locked`] naming the holder, the message and since when.
pub fn refuse_if_locked(home: Option<&Path>, set: &str, done: &'static str) -> Result<(), Error> {
    let (Some(home), false) = (home, set.trim().is_empty()) else { return Ok(()) };
    match read(home, set)? {
        Some(lock) => Err(Error::Locked { lock, done }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_once_read_release_and_acquire_again() {
        let home = tempfile::tempdir().unwrap();
        let set = "Environments-1/Projects-1/Step-1/Machines-1/<default>";
        let lock = acquire(home.path(), set, "checking the migration", "alice@web1").unwrap();
        assert_eq!(read(home.path(), set).unwrap(), Some(lock.clone()));
        let again = acquire(home.path(), set, "me too", "bob@web2").unwrap_err();
        assert!(matches!(&again, Error::AlreadyLocked(l) if l.holder == "alice@web1"), "{again}");
        assert!(again.to_string().contains("locked by alice@web1 since"), "{again}");
        let refused = refuse_if_locked(Some(home.path()), set, "deployed").unwrap_err();
        assert!(refused.to_string().contains(": checking the migration. Nothing was deployed"), "{refused}");
        assert!(refuse_if_locked(Some(home.path()), "other", "deployed").is_ok());
        assert!(refuse_if_locked(None, set, "deployed").is_ok());
        assert_eq!(all(home.path()).unwrap(), std::slice::from_ref(&lock));
        assert_eq!(release(home.path(), set).unwrap(), Some(lock));
        assert_eq!(release(home.path(), set).unwrap(), None);
        acquire(home.path(), set, "next", "bob@web2").unwrap();
        let names: Vec<_> = crate::fs::read_dir(home.path().join(LOCKS_DIRECTORY)).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }

    #[test]
    fn bad_input_is_named() {
        let home = tempfile::tempdir().unwrap();
        assert!(matches!(acquire(home.path(), " ", "m", "h"), Err(Error::NoSet)));
        assert!(matches!(acquire(home.path(), "s", "  ", "h"), Err(Error::NoMessage)));
        crate::fs::create_dir_all(home.path().join(LOCKS_DIRECTORY)).unwrap();
        crate::fs::write(lock_path(home.path(), "s"), "not json").unwrap();
        let err = read(home.path(), "s").unwrap_err();
        assert!(err.to_string().contains("is not a lock"), "{err}");
        assert_eq!(release(home.path(), "s").unwrap(), None, "a corrupt lock can still be released");
    }
}
