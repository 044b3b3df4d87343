//! The commands (`register-package`, `release-package-lock`, `clean-packages`) and
//! [`register_package_use`], the registration other commands make when retention is on.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{Local, TimeDelta};

use super::journal::{CacheAge, Entry, PackageJournal, PackageKey, Tiny, Usage, VersionJson};
use super::{Error, names, strategy};
use crate::outcome::{Outcome, UsageError};
use crate::version::Version;
use crate::{Log, Result, VariableDictionary};

/// The version formats a package version can have, as the reference names them.
const VERSION_FORMATS: [&str; 5] = ["Semver", "Maven", "Docker", "Octopus", "Lexicographic"];

/// `register-package`'s options, as given on its command line.
#[derive(Debug, Clone, Default)]
pub struct RegisterPackageRequest {
    /// `--packageId`.
    pub package_id: Option<String>,
    /// `--packageVersionFormat` (`Semver` when not given).
    pub package_version_format: Option<String>,
    /// `--packageVersion`.
    pub package_version: Option<String>,
    /// `--packagePath`: the package file in the cache.
    pub package_path: Option<PathBuf>,
    /// `--taskId`: the task that uses (and locks) the package.
    pub task_id: Option<String>,
}

/// `release-package-lock`'s options.
#[derive(Debug, Clone, Default)]
pub struct ReleasePackageLockRequest {
    /// `--taskId`: the task whose locks are released.
    pub task_id: Option<String>,
}

/// A package another command used, for [`register_package_use`].
#[derive(Debug, Clone)]
pub struct PackageUse {
    /// The package id.
    pub package_id: String,
    /// The version, as text.
    pub version: String,
    /// The version format name (`Semver`, `Maven`...).
    pub version_format: String,
    /// The package file.
    pub path: PathBuf,
}

/// What `clean-packages` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanPackagesSummary {
    /// The package files whose entries were removed, in order (some may have been gone already).
    pub removed: Vec<PathBuf>,
}

fn required(value: Option<&str>, option: &'static str, message: &str) -> Result<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| UsageError::BadOption { option, message: message.to_string() }.into())
}

fn open_journal(variables: &VariableDictionary, log: &Log) -> Result<PackageJournal, Error> {
    let path = super::journal_path(variables).ok_or(Error::NoJournalPath)?;
    Ok(PackageJournal { path, lock_timeout: super::lock_timeout(variables)?, log: log.clone() })
}

/// Adds a usage and a lock of `task` for `package` (a new entry of `size` bytes when the
/// journal has none), bumping the cache age.
fn record_use(journal: &PackageJournal, package: PackageKey, task: &str, size: u64) -> Result<(), Error> {
    let describe = package.describe();
    journal.update(|data| {
        data.cache.cache_age.value = data.cache.cache_age.value.saturating_add(1);
        let age = data.cache.cache_age;
        let usage = Usage {
            cache_age_at_usage: CacheAge { value: age.value },
            date_time: Local::now().fixed_offset(),
            deployment_task_id: Tiny(task.to_string()),
        };
        match data.entry_mut(&package) {
            Some(entry) => {
                entry.usages.push(usage.clone());
                entry.locks.push(usage);
            }
            None => data.journal_entries.push(Entry {
                package,
                usages: vec![usage.clone()],
                locks: vec![usage],
                file_size_bytes: size,
            }),
        }
        Ok(())
    })?;
    journal.log.verbose(format!("Registered package use/lock for {describe} and task {task}"));
    Ok(())
}

fn file_size(path: &Path) -> Result<u64> {
    match crate::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(m.len()),
        Ok(_) => Err(UsageError::PackageNotFound(path.to_path_buf()).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(UsageError::PackageNotFound(path.to_path_buf()).into())
        }
        Err(e) => Err(e.into()),
    }
}

fn canonical_format(format: &str) -> Option<&'static str> {
    VERSION_FORMATS.iter().copied().find(|f| f.eq_ignore_ascii_case(format.trim()))
}

/// `register-package`: records that `--taskId` uses the package at `--packagePath` and
/// locks it for that task. Runs whether or not `Octopus.Calamari.EnablePackageRetention` is
/// set (the server only calls it when retention is on), as the reference does.
///
/// # Errors
/// A missing or invalid option, a package file that does not exist, no journal location,
/// a bad variable, the journal lock held too long, or an I/O failure. Each is preceded by
/// the reference's "Unable to register package use." (info).
pub fn register_package(
    request: &RegisterPackageRequest,
    variables: &VariableDictionary,
    log: &Log,
) -> Result<Outcome> {
    let result = (|| -> Result<()> {
        let id = required(
            request.package_id.as_deref(),
            "--packageId",
            "No package ID was specified. Please pass --packageId YourPackage",
        )?;
        let raw_format = request.package_version_format.as_deref().unwrap_or("Semver");
        let format = canonical_format(raw_format).ok_or_else(|| UsageError::BadOption {
            option: "--packageVersionFormat",
            message: format!("The provided version format `{raw_format}` is not recognised."),
        })?;
        let version = required(
            request.package_version.as_deref(),
            "--packageVersion",
            "No package version was specified. Please pass --packageVersion 1.0.0.0",
        )?;
        if format == "Semver" && Version::parse(&version).is_none() {
            return Err(UsageError::BadOption {
                option: "--packageVersion",
                message: format!(
                    "Package version '{version}' is not a valid {format} version string. Please pass --packageVersionFormat with a different version type."
                ),
            }
            .into());
        }
        let path = request.package_path.as_deref().filter(|p| !p.as_os_str().is_empty()).ok_or_else(|| {
            UsageError::BadOption {
                option: "--packagePath",
                message: "No package path was specified. Please pass --packagePath /path/to/package".into(),
            }
        })?;
        let task = required(
            request.task_id.as_deref(),
            "--taskId",
            "No task ID was specified. Please pass --taskId ServerTasks-1",
        )?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let size = file_size(&path)?;
        let journal = open_journal(variables, log)?;
        let key = PackageKey {
            package_id: Tiny(id),
            version: VersionJson { version, format: format.to_string() },
            path: Tiny(path.to_string_lossy().into_owned()),
        };
        record_use(&journal, key, &task, size)?;
        Ok(())
    })();
    if result.is_err() {
        log.info("Unable to register package use.");
    }
    result.map(|()| Outcome::Success)
}

/// Registers a package another command (deploy-package, find-package, download-package)
/// used, for the task `Octopus.Task.Id`, when `Octopus.Calamari.EnablePackageRetention` is
/// true and the journal has a place. Never fails the command: a problem (no task id, the
/// file gone, the journal lock held too long) is logged at info, as the reference does.
/// Returns whether the use was recorded.
pub fn register_package_use(package: &PackageUse, variables: &VariableDictionary, log: &Log) -> bool {
    let task = (|| -> Result<Option<String>> {
        if !super::is_enabled(variables)? {
            return Ok(None);
        }
        let task = variables.get(names::TASK_ID)?.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        if task.is_none() {
            log.info(format!("Unable to register package use.\n{} is not set.", names::TASK_ID));
        }
        Ok(task)
    })();
    match task {
        Ok(Some(task)) => register_package_use_for_task(package, &task, variables, log),
        Ok(None) => false,
        Err(e) => {
            log.info(format!("Unable to register package use.\n{}", e.chain()));
            false
        }
    }
}

/// Registers `package`'s use (and a lock) for `task` in the package retention journal,
/// whether or not `Octopus.Calamari.EnablePackageRetention` is set: what the
/// `find-and-register-package` and `download-and-register-package` commands do. A problem
/// is logged at info and never fails the command, as the reference's journal does.
/// Returns whether the use was recorded.
pub fn register_package_use_for_task(
    package: &PackageUse,
    task: &str,
    variables: &VariableDictionary,
    log: &Log,
) -> bool {
    let result = (|| -> Result<()> {
        let path = std::path::absolute(&package.path).unwrap_or_else(|_| package.path.clone());
        let size = file_size(&path)?;
        let journal = open_journal(variables, log)?;
        let format = canonical_format(&package.version_format).unwrap_or("Semver");
        let key = PackageKey {
            package_id: Tiny(package.package_id.clone()),
            version: VersionJson { version: package.version.clone(), format: format.to_string() },
            path: Tiny(path.to_string_lossy().into_owned()),
        };
        record_use(&journal, key, task, size)?;
        Ok(())
    })();
    match result {
        Ok(()) => true,
        Err(e) => {
            log.info(format!("Unable to register package use.\n{}", e.chain()));
            false
        }
    }
}

/// `release-package-lock`: removes every lock of `--taskId`, then expires locks older than
/// `Octopus.Calamari.PackageRetentionLockExpiration` (default 14 days), in one update.
///
/// # Errors
/// No `--taskId`, a bad expiration, no journal location, the lock held too long, I/O.
pub fn release_package_lock(
    request: &ReleasePackageLockRequest,
    variables: &VariableDictionary,
    log: &Log,
) -> Result<Outcome> {
    let task = required(
        request.task_id.as_deref(),
        "--taskId",
        "No task ID was specified. Please pass --taskId ServerTasks-1",
    )?;
    let expiration = super::lock_expiration(variables)?;
    let journal = open_journal(variables, log)?;
    log.verbose(format!("Releasing package locks for task {task}"));
    let (released, expired) = journal.update(|data| {
        let now = Local::now().fixed_offset();
        let expiration = TimeDelta::from_std(expiration).unwrap_or(TimeDelta::MAX);
        let mut released = 0;
        let mut expired = 0;
        for entry in &mut data.journal_entries {
            released += entry.remove_locks_of(&task);
            let before = entry.locks.len();
            entry.locks.retain(|l| l.date_time.checked_add_signed(expiration).is_none_or(|until| until > now));
            expired += before - entry.locks.len();
        }
        Ok((released, expired))
    })?;
    log.verbose(format!("Released {released} package lock(s) of task {task}; {expired} stale lock(s) expired."));
    Ok(Outcome::Success)
}

/// `clean-packages`: applies `MachinePackageCacheRetentionStrategy` to the cache and
/// removes the chosen package files and their entries. Locked packages are kept; a file
/// already gone is not an error.
///
/// # Errors
/// A bad strategy variable (before anything changes), no journal location, the journal
/// lock held too long, I/O.
pub fn clean_packages(variables: &VariableDictionary, log: &Log) -> Result<CleanPackagesSummary> {
    let strategy = strategy::settings(variables)?;
    let journal = open_journal(variables, log)?;
    let cache_root = super::cache_root(variables);
    let summary = journal.update(|data| {
        let picked = strategy::select(strategy, &data.journal_entries, cache_root.as_deref(), log);
        let mut drop: HashSet<usize> = HashSet::new();
        let mut removed = Vec::new();
        for i in picked {
            let path = data.journal_entries[i].package.path.0.clone();
            if path.trim().is_empty() || !Path::new(&path).is_file() {
                log.verbose(format!("Package at {path} not found."));
            } else {
                log.verbose(format!("Removing package file '{path}'"));
                if let Err(e) = crate::fs::remove_file(&path) {
                    // Keep the entry, so a later clean tries again.
                    log.warn(format!("Could not remove the cached package '{path}': {e}"));
                    continue;
                }
            }
            drop.insert(i);
            removed.push(PathBuf::from(path));
        }
        let mut index = 0;
        data.journal_entries.retain(|_| {
            index += 1;
            !drop.contains(&(index - 1))
        });
        Ok(CleanPackagesSummary { removed })
    })?;
    let n = summary.removed.len();
    log.info(format!("Removed {n} package{} from the package cache.", if n == 1 { "" } else { "s" }));
    Ok(summary)
}

/// [`register_package_use`] for a package file whose name (or nuspec) gives its id and
/// version: the registration `deploy-package` makes. Only a package in the cache
/// (`$TentacleHome/Files`) is registered: `clean-packages` may delete what is registered,
/// and a package deployed from anywhere else is not the cache's to delete. A name that
/// tells neither id nor version is logged at info, and nothing is recorded.
pub(crate) fn register_package_file(path: &Path, variables: &VariableDictionary, log: &Log) -> bool {
    if !super::is_enabled(variables).unwrap_or(false) {
        return false;
    }
    let in_cache = super::cache_root(variables)
        .and_then(|root| std::path::absolute(root).ok())
        .is_some_and(|root| std::path::absolute(path).is_ok_and(|p| p.starts_with(root)));
    if !in_cache {
        log.verbose(format!(
            "The package '{}' is not in the package cache ($TentacleHome/Files): its use is not registered for retention.",
            path.display()
        ));
        return false;
    }
    match crate::package::PackageIdentity::from_file(path) {
        Ok(identity) => register_package_use(
            &PackageUse {
                package_id: identity.id.clone(),
                version: identity.version.to_full_string(),
                version_format: identity.version_format_name().to_string(),
                path: path.to_path_buf(),
            },
            variables,
            log,
        ),
        Err(e) => {
            log.info(format!("Unable to register package use.\n{e}"));
            false
        }
    }
}
