//! The machine package cache and its retention: `PackageRetentionJournal.json`, the
//! `register-package`, `release-package-lock` and `clean-packages` commands, and the
//! registration `deploy-package`, `find-package` and `download-package` make when retention
//! is on (`docs/behaviour.md`, "Machine package cache retention").
//!
//! * [`journal`]: the file (the reference's JSON shape), its lock and atomic replacement;
//!   a corrupt journal is moved aside with a warning and a new one started.
//! * [`strategy`]: the `FreeSpace` and `Quantities` strategies and their variables.
//! * [`commands`]: the commands, and [`register_package_use`] for the other commands.
//!
//! Every registration records a usage (task, time, cache age) and a lock for the task; a
//! locked package is never removed until `release-package-lock` releases it (or the lock
//! expires, `Octopus.Calamari.PackageRetentionLockExpiration`, default 14 days).

pub(crate) mod commands;
pub(crate) mod journal;
pub(crate) mod strategy;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use commands::{
    CleanPackagesSummary, PackageUse, RegisterPackageRequest, ReleasePackageLockRequest, clean_packages,
    register_package, register_package_use, register_package_use_for_task, release_package_lock,
};

use crate::VariableDictionary;

/// The variables and environment variables of this module.
pub(crate) mod names {
    /// `True` turns registration by deploy-package, find-package and download-package on.
    pub(crate) const ENABLED: &str = "Octopus.Calamari.EnablePackageRetention";
    /// Where the journal is (an environment variable of the agent).
    pub(crate) const JOURNAL_PATH_ENV: &str = "CalamariPackageRetentionJournalPath";
    /// How old a lock may get before `release-package-lock` expires it (.NET TimeSpan).
    pub(crate) const LOCK_EXPIRATION: &str = "Octopus.Calamari.PackageRetentionLockExpiration";
    /// Seconds an update waits for another process's journal lock (default 300).
    pub(crate) const LOCK_TIMEOUT: &str = "Calamari.PackageRetention.LockTimeout";
    /// The task a deployment-time registration is for.
    pub(crate) const TASK_ID: &str = "Octopus.Task.Id";
}

/// The journal's file name under `$TentacleHome`.
pub(crate) const JOURNAL_FILE_NAME: &str = "PackageRetentionJournal.json";

/// Locks older than this expire when none is configured.
pub(crate) const DEFAULT_LOCK_EXPIRATION: Duration = Duration::from_secs(14 * 24 * 3600);

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
    /// A variable's value cannot be used.
    #[error("The variable {variable} must be {expected}, but it is '{value}'")]
    InvalidVariable {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// Neither `CalamariPackageRetentionJournalPath` nor `TentacleHome` is set.
    #[error(
        "The package retention journal cannot be found: neither the environment variable CalamariPackageRetentionJournalPath nor TentacleHome is set."
    )]
    NoJournalPath,
}

impl From<crate::lock::LockError> for Error {
    fn from(e: crate::lock::LockError) -> Self {
        match e {
            crate::lock::LockError::Io(e) => Error::Io(e),
            crate::lock::LockError::Timeout(t) => Error::LockTimeout(t),
        }
    }
}

fn env<'a>(variables: &'a VariableDictionary, name: &str) -> Option<&'a str> {
    variables.get_raw(&format!("env:{name}")).map(str::trim).filter(|v| !v.is_empty())
}

/// `env:CalamariPackageRetentionJournalPath`, else `$TentacleHome/PackageRetentionJournal.json`.
pub(crate) fn journal_path(variables: &VariableDictionary) -> Option<PathBuf> {
    if let Some(path) = env(variables, names::JOURNAL_PATH_ENV) {
        return Some(PathBuf::from(path));
    }
    env(variables, crate::env_vars::TENTACLE_HOME).map(|home| Path::new(home).join(JOURNAL_FILE_NAME))
}

/// The package cache: `$TentacleHome/Files`.
pub(crate) fn cache_root(variables: &VariableDictionary) -> Option<PathBuf> {
    env(variables, crate::env_vars::TENTACLE_HOME).map(|home| Path::new(home).join("Files"))
}

/// Whether other commands register their packages: `Octopus.Calamari.EnablePackageRetention`
/// is true and the journal has a place.
///
/// # Errors
/// The variable could not be evaluated.
pub(crate) fn is_enabled(variables: &VariableDictionary) -> Result<bool, Error> {
    Ok(variables.get_flag(names::ENABLED, false)? && journal_path(variables).is_some())
}

/// The journal lock wait: `Calamari.PackageRetention.LockTimeout` seconds, default 300.
pub(crate) fn lock_timeout(variables: &VariableDictionary) -> Result<Duration, Error> {
    let Some(value) = variables.get(names::LOCK_TIMEOUT)?.filter(|v| !v.trim().is_empty()) else {
        return Ok(journal::DEFAULT_LOCK_TIMEOUT);
    };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or(Error::InvalidVariable { variable: names::LOCK_TIMEOUT, value, expected: "a number of seconds" })
}

/// Parses a .NET `TimeSpan` (see [`crate::timespan`]). Negative spans are `None` too (a
/// lock cannot expire before it was taken).
pub(crate) fn parse_timespan(text: &str) -> Option<Duration> {
    if text.trim().starts_with('-') {
        return None;
    }
    crate::timespan::parse(text).map(|span| span.duration)
}

/// The lock expiration the variables give (default 14 days).
pub(crate) fn lock_expiration(variables: &VariableDictionary) -> Result<Duration, Error> {
    match variables.get(names::LOCK_EXPIRATION)?.filter(|v| !v.trim().is_empty()) {
        None => Ok(DEFAULT_LOCK_EXPIRATION),
        Some(value) => parse_timespan(&value).ok_or(Error::InvalidVariable {
            variable: names::LOCK_EXPIRATION,
            value,
            expected: "a .NET TimeSpan such as 14, 14.00:00:00 or 01:30:00",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans_as_dotnet_reads_them() {
        let d = |s| parse_timespan(s).map(|d| d.as_secs_f64());
        assert_eq!(d("14"), Some(14.0 * 86_400.0));
        assert_eq!(d("14.00:00:00"), Some(14.0 * 86_400.0));
        assert_eq!(d("01:30"), Some(5_400.0));
        assert_eq!(d("00:00:01.5"), Some(1.5));
        assert_eq!(d("1:02:03:04"), Some(86_400.0 + 3_600.0 * 2.0 + 184.0));
        for bad in ["", "soon", "1.2.3", "25:00", "00:60", "-1", "00:00:01.", "1:2:3:4:5"] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }
}
