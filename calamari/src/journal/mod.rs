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
//! * [`xml`]: the reference's exact file format, including legacy entries.
//! * [`retention`]: `calamari clean`.
//!
//! Safety under concurrency and kills: every update takes a `flock` on `<journal>.lock`
//! (released by the kernel if the holder dies), re-reads the file under the lock, and
//! replaces it with [`crate::fs::write_atomic`] (temp file, fsync, rename, fsync of the
//! directory). Concurrent writers therefore never lose each other's entries, and a crash
//! leaves the old or the new journal, never a torn one. A journal that cannot be parsed is
//! moved aside to `DeploymentJournal.xml.corrupt-<timestamp>` with a warning, and a new one
//! is started: the deployment goes on and the old history stays on disk for a person to read.
//!
//! How a deployment uses it: the previous-installation variables are set from it before
//! the conventions run, the already-installed check (in `conventions/`) reads it first, and
//! one entry is added at the end, on success and on failure.

pub(crate) mod entry;
pub(crate) mod retention;
pub(crate) mod xml;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use entry::{JournalEntry, JournalPackage};
pub use retention::{CleanRequest, CleanSummary, RetentionPolicy, clean_deployments};

use crate::lock::NamedLock;
use crate::variables::names;
use crate::{Log, VariableDictionary};

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
}

/// How long a journal update waits for the lock by default.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

impl DeploymentJournal {
    /// The journal at `path` (which need not exist yet).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        DeploymentJournal { path: path.into(), log: None, lock_timeout: DEFAULT_LOCK_TIMEOUT }
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

    fn warn(&self, text: &str) {
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

    /// Takes the journal lock, logging the wait and giving up after the timeout. Polls
    /// rather than blocking so the wait is bounded; a holder that dies releases the lock at
    /// once (flock), so there is never a stale lock to wait out.
    fn lock(&self) -> Result<NamedLock, Error> {
        let lock = NamedLock::acquire_within("deployment journal lock", self.lock_path(), self.lock_timeout, |path| {
            let text = format!("Waiting for the deployment journal lock '{}' held by another process", path.display());
            match &self.log {
                Some(log) => log.verbose(text),
                None => log::info!("{text}"),
            }
        })?;
        Ok(lock)
    }

    /// Every entry, in file order. A missing journal has none. A corrupt one is moved aside
    /// (with a warning) and read as empty.
    ///
    /// # Errors
    /// The journal could not be read, or a corrupt one could not be moved aside.
    pub fn entries(&self) -> Result<Vec<JournalEntry>, Error> {
        match self.read()? {
            Ok(entries) => Ok(entries),
            Err(_) => {
                // Move it aside under the lock, so we never move a journal another process
                // has just replaced.
                let _lock = self.lock()?;
                self.read_or_recover()
            }
        }
    }

    /// Reads and parses without changing anything: a corrupt journal is reported as
    /// `Ok(Err(corrupt))` and left where it is (what a dry run needs).
    ///
    /// # Errors
    /// The journal exists but could not be read.
    pub fn read(&self) -> Result<Result<Vec<JournalEntry>, xml::Corrupt>, Error> {
        match crate::fs::read(&self.path) {
            Ok(bytes) => Ok(xml::parse(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ok(Vec::new())),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads, moving a corrupt journal aside. The caller holds the lock.
    fn read_or_recover(&self) -> Result<Vec<JournalEntry>, Error> {
        match self.read()? {
            Ok(entries) => Ok(entries),
            Err(corrupt) => {
                let aside = self.corrupt_path();
                crate::fs::rename(&self.path, &aside)?;
                crate::fs::sync_parent(&self.path)?;
                self.warn(&format!(
                    "The deployment journal '{}' is unreadable ({corrupt}). It was moved to '{}' and a new journal was started; deployments recorded in it are no longer known to retention or to the previous-installation variables.",
                    self.path.display(),
                    aside.display()
                ));
                Ok(Vec::new())
            }
        }
    }

    fn corrupt_path(&self) -> PathBuf {
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

    /// Applies `change` to the entries under the lock and writes the result atomically.
    /// Returns what `change` returned.
    ///
    /// # Errors
    /// The lock, the read or the write failed. The journal on disk is then unchanged.
    pub fn update<T>(&self, change: impl FnOnce(&mut Vec<JournalEntry>) -> T) -> Result<T, Error> {
        let _lock = self.lock()?;
        let mut entries = self.read_or_recover()?;
        let result = change(&mut entries);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fs::create_dir_all(dir)?;
        }
        // Keep the journal's mode (a new one gets the usual 0644, not the temp file's 0600).
        crate::fs::write_atomic_keeping_mode(&self.path, xml::serialise(&entries), 0o644)?;
        // Writers of the journal all hold its lock, which we hold: any temp file left is stale.
        crate::fs::remove_temp_files_of(&self.path);
        Ok(result)
    }

    /// Appends an entry.
    ///
    /// # Errors
    /// As [`update`](Self::update).
    pub fn add(&self, entry: &JournalEntry) -> Result<(), Error> {
        self.log_adding(entry);
        self.update(|entries| entries.push(entry.clone()))
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
    /// As [`update`](Self::update).
    pub fn remove_entries(&self, ids: &[String]) -> Result<usize, Error> {
        self.update(|entries| {
            let before = entries.len();
            entries.retain(|e| !ids.contains(&e.id));
            before - entries.len()
        })
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
        Ok(latest(self.entries()?, |e| {
            e.retention_policy_set.eq_ignore_ascii_case(retention_policy_set)
                && e.packages.iter().any(|p| {
                    p.package_id.eq_ignore_ascii_case(package_id) && p.package_version.eq_ignore_ascii_case(version)
                })
        }))
    }

    /// The latest entry of this retention policy set.
    ///
    /// # Errors
    /// As [`entries`](Self::entries).
    pub fn latest_installation(&self, retention_policy_set: &str) -> Result<Option<JournalEntry>, Error> {
        Ok(latest(self.entries()?, |e| e.retention_policy_set.eq_ignore_ascii_case(retention_policy_set)))
    }

    /// The latest successful entry of this retention policy set.
    ///
    /// # Errors
    /// As [`entries`](Self::entries).
    pub fn latest_successful_installation(&self, retention_policy_set: &str) -> Result<Option<JournalEntry>, Error> {
        Ok(latest(self.entries()?, |e| {
            e.was_successful && e.retention_policy_set.eq_ignore_ascii_case(retention_policy_set)
        }))
    }
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
    let entries = match journal {
        Some(journal) => journal.entries()?,
        None => Vec::new(),
    };
    let previous = latest(entries.clone(), |e| e.retention_policy_set.eq_ignore_ascii_case(&set));
    let successful = latest(entries, |e| e.was_successful && e.retention_policy_set.eq_ignore_ascii_case(&set));
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
