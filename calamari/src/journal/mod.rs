//! `DeploymentJournal.xml` and retention (`docs/behaviour.md`, "The journal").
//!
//! The journal is the agent's record of every deployment: which packages went where, when,
//! and whether it worked. Three things read it: the already-installed check
//! ([`check_already_installed`]), the `Octopus.Tentacle.PreviousInstallation.*` variables
//! ([`set_previous_installation_variables`]) and retention ([`retention::clean`]), which
//! deletes old extraction directories and the entries that point at them.
//!
//! * [`DeploymentJournal`]: the file, its location (`TentacleJournal`, else
//!   `$TentacleHome/DeploymentJournal.xml`), lookups, and safe updates.
//! * [`JournalEntry`] / [`JournalPackage`]: one deployment; [`JournalEntry::for_deployment`]
//!   builds it from a deployment's variables.
//! * [`xml`]: the reference's exact file format, including legacy entries, and a streaming
//!   reader that never holds the file in memory.
//! * [`store`]: how the file is changed in place, crash-safely (an undo record), and read
//!   under a shared lock.
//! * [`index`]: the sidecar index `<journal>.idx` (each entry's byte offset, retention set,
//!   id, packages, time and outcome), validated against the journal and rebuilt when stale.
//! * [`retention`]: `calamari clean`.
//!
//! # Cost independent of history
//!
//! The file is the reference's, byte for byte, and the only source of truth. What changed
//! is how we touch it: a deployment reads the index (no XML), parses only the entries it
//! needs (the latest of its retention set), appends its entry by rewriting only the tail
//! (`\n</Deployments>`) in place, and completes that entry in place at the end; retention
//! finds its set's entries through the index and removes entries by blanking them. Nothing
//! on a deployment's path parses or rewrites the whole file, so its cost does not grow with
//! the history (`BENCHMARKS.md`, "Journal at 100,000 entries").
//!
//! # Safety under concurrency and kills
//!
//! Every update takes an exclusive `flock` on `<journal>.lock` (released by the kernel if
//! the holder dies), every read a shared one; concurrent writers never lose each other's
//! entries. A change is protected by an undo record written and fsync'd before the journal
//! is touched: whoever opens the journal after a crash finds it and either recognises the
//! change as complete or undoes it, with a warning naming what was undone; a committed
//! change is never undone (the repair rule is in [`store`]). A journal whose end is torn
//! without such a record is cut after its last complete entry and closed again, keeping the
//! file as found beside it and naming the ids it dropped. A journal that cannot be parsed at
//! all is moved aside to `DeploymentJournal.xml.corrupt-<timestamp>` with a warning, and a
//! new one is started: the deployment goes on and the old history stays on disk for a
//! person to read.
//!
//! How a deployment uses it: the previous-installation variables are set from it before
//! the conventions run, the already-installed check (in `conventions/`) reads it first, an
//! in-progress entry is added the moment the staging directory is chosen, and it is
//! completed (successful or failed) at the end.

pub(crate) mod entry;
pub(crate) mod index;
pub(crate) mod retention;
pub(crate) mod store;
pub(crate) mod xml;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use entry::{JournalEntry, JournalPackage};
pub use retention::{CleanRequest, CleanSummary, RetentionPolicy, clean_deployments};

use crate::lock::NamedLock;
use crate::variables::names;
use crate::{Log, VariableDictionary};
use store::{Access, Fault, Session};

/// The file name of the journal under `$TentacleHome`.
pub(crate) const JOURNAL_FILE_NAME: &str = "DeploymentJournal.xml";

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// A variable could not be evaluated.
    #[error(transparent)]
    Variables(#[from] crate::variables::Error),
    /// Another process held the journal lock for too long.
    #[error(transparent)]
    LockTimeout(#[from] crate::lock::LockTimeout),
    /// `clean` was given neither a number of days nor a number of releases to keep.
    #[error("A value for days to keep or releases to keep must be specified")]
    NoRetentionPolicy,
    /// The journal did not match its own index twice in a row: something that does not
    /// take Calamari's lock (the reference, an editor) is changing it right now.
    #[error(
        "The deployment journal '{}' changed while it was being read; another program is writing it without Calamari's lock. Try again.",
        .0.display()
    )]
    ChangedWhileReading(PathBuf),
    /// `clean` was given no retention policy set.
    #[error(
        "No retention policy set was specified. Please pass --retentionPolicySet \"Environments-2/projects-161/Step-Package B/Machines-29/<default>\""
    )]
    NoRetentionPolicySet,
}

impl From<crate::lock::LockError> for Error {
    fn from(e: crate::lock::LockError) -> Self {
        match e {
            crate::lock::LockError::Io(e) => Error::Io(e),
            crate::lock::LockError::Timeout(t) => Error::LockTimeout(t),
        }
    }
}

/// The deployment journal at one path.
#[derive(Debug, Clone)]
pub struct DeploymentJournal {
    path: PathBuf,
    log: Option<Log>,
    lock_timeout: Duration,
    /// The index as the last session left it, reused by the next one while the journal's
    /// stamp is unchanged (shared by clones, so a deployment reads it from disk once).
    cache: std::sync::Arc<std::sync::Mutex<Option<index::Index>>>,
}

/// How long a journal update waits for the lock by default.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

impl DeploymentJournal {
    /// The journal at `path` (which need not exist yet).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        DeploymentJournal {
            path: path.into(),
            log: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            cache: Default::default(),
        }
    }

    /// The journal the variables point at: `env:TentacleJournal`, else
    /// `env:TentacleHome/DeploymentJournal.xml`; `None` when neither is set.
    ///
    /// # Errors
    /// None today; the signature leaves room for evaluated paths.
    pub fn from_variables(variables: &VariableDictionary) -> Result<Option<Self>, Error> {
        Ok(journal_path(variables).map(DeploymentJournal::at))
    }

    /// Sends warnings (a corrupt journal moved aside) and lock waits to `log`. Without a log
    /// they go to the `log` crate.
    #[must_use]
    pub fn with_log(mut self, log: Log) -> Self {
        self.log = Some(log);
        self
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file every update holds: `<journal>.lock`.
    pub fn lock_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_os_string();
        name.push(".lock");
        PathBuf::from(name)
    }

    pub(crate) fn warn(&self, text: &str) {
        match &self.log {
            Some(log) => log.warn(text),
            None => log::warn!("{text}"),
        }
    }

    /// How long an update waits for another process's lock before giving up (default
    /// [`DEFAULT_LOCK_TIMEOUT`]).
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Takes the journal lock (exclusive for writers, shared for readers), logging the wait
    /// and giving up after the timeout. Polls rather than blocking so the wait is bounded; a
    /// holder that dies releases the lock at once (flock), so there is never a stale lock to
    /// wait out.
    pub(crate) fn lock(&self, exclusive: bool) -> Result<NamedLock, Error> {
        let on_wait = |path: &Path| {
            let text = format!("Waiting for the deployment journal lock '{}' held by another process", path.display());
            match &self.log {
                Some(log) => log.verbose(text),
                None => log::info!("{text}"),
            }
        };
        let purpose = "deployment journal lock";
        let lock = if exclusive {
            NamedLock::acquire_within(purpose, self.lock_path(), self.lock_timeout, on_wait)?
        } else {
            NamedLock::acquire_shared_within(purpose, self.lock_path(), self.lock_timeout, on_wait)?
        };
        Ok(lock)
    }

    /// The cached index, when it describes the journal stamped `stamp` and is still the
    /// index on disk (no other process changed the journal since).
    pub(crate) fn take_cached(&self, stamp: &index::Stamp) -> Option<index::Index> {
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.take().filter(|index| index.stamp == *stamp && index.is_on_disk(&index::path_of(&self.path)))
    }

    /// Keeps `index` for the next session.
    pub(crate) fn keep_cached(&self, index: index::Index) {
        *self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(index);
    }

    /// Runs `work` in a session opened for `access`. When the index turns out not to
    /// describe the journal, it is rebuilt and `work` runs once more.
    pub(crate) fn with_session<T>(
        &self,
        access: Access,
        mut work: impl FnMut(&mut Session<'_>) -> Result<T, Fault>,
    ) -> Result<T, Error> {
        let mut session = Session::open(self, access)?;
        match work(&mut session) {
            Ok(t) => Ok(t),
            Err(Fault::Error(e)) => Err(e),
            Err(Fault::Stale) => {
                session.rebuild()?;
                match work(&mut session) {
                    Ok(t) => Ok(t),
                    Err(Fault::Error(e)) => Err(e),
                    Err(Fault::Stale) => Err(Error::ChangedWhileReading(self.path.clone())),
                }
            }
        }
    }

    /// Every entry, in file order, read in one streaming pass. A missing journal has none.
    /// A torn one is repaired and a corrupt one moved aside (with a warning) first.
    ///
    /// # Errors
    /// The journal could not be read, or a damaged one could not be repaired.
    pub fn entries(&self) -> Result<Vec<JournalEntry>, Error> {
        self.with_session(Access::Read, |session| {
            let mut entries = Vec::new();
            session.for_each_entry(|e| entries.push(e))?;
            Ok(entries)
        })
    }

    /// Reads and parses without changing or creating anything (what a dry run needs): a
    /// torn or corrupt journal is reported as `Ok(Err(corrupt))` and left where it is.
    ///
    /// # Errors
    /// The journal exists but could not be read.
    pub fn read(&self) -> Result<Result<Vec<JournalEntry>, xml::Corrupt>, Error> {
        self.with_session(Access::Inspect, |session| {
            if let Some(damaged) = &session.notes.damaged {
                return Ok(Err(xml::Corrupt(damaged.clone())));
            }
            let mut entries = Vec::new();
            session.for_each_entry(|e| entries.push(e))?;
            Ok(Ok(entries))
        })
    }

    /// `DeploymentJournal.xml.corrupt-<timestamp>[-n]`, a name not taken yet.
    pub(crate) fn corrupt_path(&self) -> PathBuf {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let base = format!("{}.corrupt-{stamp}", self.path.display());
        let mut candidate = PathBuf::from(&base);
        let mut n = 1;
        while candidate.exists() {
            candidate = PathBuf::from(format!("{base}-{n}"));
            n += 1;
        }
        candidate
    }

    /// Applies `change` to all the entries under the lock and replaces the journal with the
    /// result (temp file, fsync, rename). Returns what `change` returned. This reads and
    /// rewrites the whole file: the operations below ([`add`](Self::add),
    /// [`replace`](Self::replace), [`remove_entries`](Self::remove_entries)) change it in
    /// place and are what everything in Calamari uses.
    ///
    /// # Errors
    /// The lock, the read or the write failed. The journal on disk is then unchanged.
    pub fn update<T>(&self, change: impl FnOnce(&mut Vec<JournalEntry>) -> T) -> Result<T, Error> {
        let mut change = Some(change);
        self.with_session(Access::Write, |session| {
            let mut entries = Vec::new();
            session.for_each_entry(|e| entries.push(e))?;
            let change = change.take().expect("the change runs once: a full read never finds the index stale");
            let result = change(&mut entries);
            session.rewrite(&entries)?;
            Ok(result)
        })
    }

    /// Appends an entry (logging it, as the reference does).
    ///
    /// # Errors
    /// The lock, the read or the write failed. The journal on disk is then unchanged.
    pub fn add(&self, entry: &JournalEntry) -> Result<(), Error> {
        self.log_adding(entry);
        self.append(entry, &format!("adding the entry {}", entry.id))
    }

    /// Appends an entry without logging it: the in-progress entry of a deployment.
    pub(crate) fn append(&self, entry: &JournalEntry, what: &str) -> Result<(), Error> {
        self.with_session(Access::Write, |session| Ok(session.append(std::slice::from_ref(entry), what)?))
    }

    /// Rewrites the entry with `entry`'s id (the in-progress entry of a deployment, now
    /// complete); appends `entry` when there is none.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn replace(&self, entry: &JournalEntry) -> Result<(), Error> {
        self.with_session(Access::Write, |session| session.replace(entry))
    }

    /// Logs (verbose) the entry's XML as the reference does when it adds one.
    pub(crate) fn log_adding(&self, entry: &JournalEntry) {
        if let Some(log) = &self.log {
            log.verbose(format!("Adding journal entry:\n{}", xml::entry_element(entry)));
        }
    }

    /// Removes the entries with these ids; returns how many were removed.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn remove_entries(&self, ids: &[String]) -> Result<usize, Error> {
        self.with_session(Access::Write, |session| session.remove(ids))
    }

    /// The entries of this retention policy set (compared exactly), in file order, found
    /// through the index.
    ///
    /// # Errors
    /// As [`entries`](Self::entries).
    pub fn entries_in_set(&self, retention_policy_set: &str) -> Result<Vec<JournalEntry>, Error> {
        self.with_session(Access::Read, |session| entries_in_set(session, retention_policy_set))
    }

    /// The latest entry of this retention policy set that deployed `package_id` at
    /// `version` (all compared ignoring case, as the reference does).
    ///
    /// # Errors
    /// As [`entries`](Self::entries).
    pub fn latest_for_package(
        &self,
        retention_policy_set: &str,
        package_id: &str,
        version: &str,
    ) -> Result<Option<JournalEntry>, Error> {
        let bits = index::package_bits(package_id, version);
        self.with_session(Access::Read, |session| {
            latest_in(
                session,
                retention_policy_set,
                |r| r.packages & bits == bits,
                |e| {
                    e.packages.iter().any(|p| {
                        p.package_id.eq_ignore_ascii_case(package_id) && p.package_version.eq_ignore_ascii_case(version)
                    })
                },
            )
        })
    }

    /// The latest entry of this retention policy set.
    ///
    /// # Errors
    /// As [`entries`](Self::entries).
    pub fn latest_installation(&self, retention_policy_set: &str) -> Result<Option<JournalEntry>, Error> {
        self.with_session(Access::Read, |session| latest_in(session, retention_policy_set, |_| true, |_| true))
    }

    /// The latest successful entry of this retention policy set.
    ///
    /// # Errors
    /// As [`entries`](Self::entries).
    pub fn latest_successful_installation(&self, retention_policy_set: &str) -> Result<Option<JournalEntry>, Error> {
        self.with_session(Access::Read, |session| {
            latest_in(session, retention_policy_set, |r| r.flags & index::SUCCESSFUL != 0, |e| e.was_successful)
        })
    }
}

/// The entries of `set` (compared exactly), in file order.
pub(crate) fn entries_in_set(session: &Session<'_>, set: &str) -> Result<Vec<JournalEntry>, Fault> {
    let key = index::set_key(set);
    let mut entries = Vec::new();
    for i in session.live_matching(|r| r.set == key) {
        let entry = session.entry(i)?;
        if entry.retention_policy_set == set {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// [`latest`] among the entries of `set` (ignoring case) that pass both filters, reading
/// only the newest candidates: the records give each entry's time in whole seconds, so only
/// the entries of the newest matching second are compared parsed.
pub(crate) fn latest_in(
    session: &Session<'_>,
    set: &str,
    record_filter: impl Fn(&index::Record) -> bool,
    entry_filter: impl Fn(&JournalEntry) -> bool,
) -> Result<Option<JournalEntry>, Fault> {
    let key = index::set_key(set);
    let records = session.records();
    let mut candidates = session.live_matching(|r| r.set == key && record_filter(r));
    // Newest first; of equal times, the one written later first.
    candidates.sort_unstable_by(|&a, &b| records[b].sort_key().cmp(&records[a].sort_key()).then(b.cmp(&a)));
    let mut newest = None;
    let mut matched = Vec::new();
    for i in candidates {
        let sort_key = records[i].sort_key();
        if newest.is_some_and(|n| sort_key < n) {
            break;
        }
        let entry = session.entry(i)?;
        if entry.retention_policy_set.eq_ignore_ascii_case(set) && entry_filter(&entry) {
            newest.get_or_insert(sort_key);
            matched.push((i, entry));
        }
    }
    matched.sort_unstable_by_key(|(i, _)| *i);
    Ok(latest(matched.into_iter().map(|(_, e)| e).collect(), |_| true))
}

/// The journal path the variables name, if any.
pub(crate) fn journal_path(variables: &VariableDictionary) -> Option<PathBuf> {
    let env = |name: &str| variables.get_raw(&format!("env:{name}")).map(str::trim).filter(|v| !v.is_empty());
    if let Some(path) = env(crate::env_vars::TENTACLE_JOURNAL) {
        return Some(PathBuf::from(path));
    }
    env(crate::env_vars::TENTACLE_HOME).map(|home| Path::new(home).join(JOURNAL_FILE_NAME))
}

/// The entry with the latest `InstalledOn` among those matching. Entries without a time come
/// last (as nulls sort in .NET). Of entries recorded in the same second the one written last
/// wins: the journal only has whole seconds, and file order is the order they were written.
pub(crate) fn latest(entries: Vec<JournalEntry>, matches: impl Fn(&JournalEntry) -> bool) -> Option<JournalEntry> {
    let mut best: Option<JournalEntry> = None;
    for entry in entries.into_iter().filter(|e| matches(e)) {
        match &best {
            Some(b) if entry.installed_on < b.installed_on => {}
            _ => best = Some(entry),
        }
    }
    best
}

/// The variables [`set_previous_installation_variables`] sets, for one prefix.
const PREVIOUS_FIELDS: [&str; 4] =
    ["OriginalInstalledPath", "CustomInstallationDirectory", "PackageFilePath", "PackageVersion"];

/// Sets `Octopus.Tentacle.PreviousInstallation.{OriginalInstalledPath,
/// CustomInstallationDirectory, PackageFilePath, PackageVersion}` from the latest entry of
/// `OctopusRetentionPolicySet`, and `Octopus.Tentacle.PreviousSuccessfulInstallation.*` from
/// the latest successful one; empty strings when there is none (or no journal). Nothing is
/// set when `OctopusRetentionPolicySet` is blank (reference `DeploymentJournalVariableContributor`).
///
/// # Errors
/// The journal could not be read, or a variable could not be evaluated.
pub(crate) fn set_previous_installation_variables(
    journal: Option<&DeploymentJournal>,
    variables: &mut VariableDictionary,
) -> Result<(), Error> {
    let set = variables.get_or_empty(names::RETENTION_POLICY_SET)?;
    if set.trim().is_empty() {
        return Ok(());
    }
    let (previous, successful) = match journal {
        Some(journal) => journal.with_session(Access::Read, |session| {
            Ok((
                latest_in(session, &set, |_| true, |_| true)?,
                latest_in(session, &set, |r| r.flags & index::SUCCESSFUL != 0, |e| e.was_successful)?,
            ))
        })?,
        None => (None, None),
    };
    for (prefix, entry) in [
        ("Octopus.Tentacle.PreviousInstallation", previous),
        ("Octopus.Tentacle.PreviousSuccessfulInstallation", successful),
    ] {
        let values = match &entry {
            None => [String::new(), String::new(), String::new(), String::new()],
            Some(e) => [
                e.extracted_to.clone().unwrap_or_default(),
                e.custom_installation_directory.clone().unwrap_or_default(),
                e.package().and_then(|p| p.deployed_from.clone()).unwrap_or_default(),
                e.package().map(|p| p.package_version.clone()).unwrap_or_default(),
            ],
        };
        for (field, value) in PREVIOUS_FIELDS.iter().zip(values) {
            variables.set(format!("{prefix}.{field}"), Some(value));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests;
