//! Releases (our extension, opt-in through the `Calamari.Release.*` variables; the
//! reference ignores them): an atomic `current` link, shared paths, a health gate and
//! rollback (`docs/behaviour.md`, "Releases").
//!
//! The steps in `deploy-package`'s table:
//!
//! 1. [`prepare`], before extraction: reads the settings, takes the link's lock
//!    (`<link>.lock`, a `flock` that dies with its holder) for the whole deployment, and
//!    refuses a path that exists and is not a symbolic link.
//! 2. [`link_shared_paths`], after extraction, before `PreDeploy`.
//! 3. [`switch_current_link`], after the `Deploy` scripts: first the journal entry is marked
//!    successful with the link and the target it replaces, then the link is switched. So a
//!    kill at any moment leaves the link at a release that the journal lists as successful.
//! 4. [`health_gate`], after `PostDeploy`.
//!
//! On failure after the switch, [`switch_back`] (from the rollback conventions) points the
//! link at the previous target again before the `DeployFailed` script runs, with
//! `Calamari.Release.RolledBack` = `True`; the final journal write marks the entry failed.

mod health;
pub(crate) mod history;
mod link;
pub(crate) mod rollback;
mod shared;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Deployment;
use crate::journal::JournalEntry;
use crate::lock::{LockError, NamedLock};
use crate::{Result, VariableDictionary};
pub(crate) use health::HealthCheck;
pub use history::{
    BadMark, ReleaseRecord, ReleaseSelector, journal_of, mark_bad, mark_good, releases, releases_json, releases_table,
};
pub use rollback::{RollbackOutcome, RollbackRequest, rollback};

/// The variables.
pub(crate) mod names {
    /// The absolute path of the current link.
    pub(crate) const CURRENT_LINK: &str = "Calamari.Release.CurrentLink";
    /// Newline-separated relative paths linked from `<parent of the link>/shared/`.
    pub(crate) const SHARED_PATHS: &str = "Calamari.Release.SharedPaths";
    /// An `http://` URL whose GET must answer 2xx.
    pub(crate) const HEALTH_CHECK_URL: &str = "Calamari.Release.HealthCheckUrl";
    /// A bash command that must exit 0.
    pub(crate) const HEALTH_CHECK_COMMAND: &str = "Calamari.Release.HealthCheckCommand";
    /// Seconds the health check may take in all (default 30).
    pub(crate) const HEALTH_CHECK_TIMEOUT: &str = "Calamari.Release.HealthCheckTimeout";
    /// Seconds to wait for another deployment holding the link's lock (default 300).
    pub(crate) const LOCK_TIMEOUT: &str = "Calamari.Release.LockTimeout";
    /// Output: where the link pointed before (empty for the first release).
    pub(crate) const PREVIOUS_TARGET: &str = "Calamari.Release.PreviousTarget";
    /// `True` for the `DeployFailed` script when the link was switched back.
    pub(crate) const ROLLED_BACK: &str = "Calamari.Release.RolledBack";
}

const DEFAULT_HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// How a release step fails.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// Reading or writing the journal failed.
    #[error(transparent)]
    Journal(#[from] crate::journal::Error),
    /// Running the rollback's script failed.
    #[error(transparent)]
    Script(#[from] crate::script::Error),
    /// A variable cannot be evaluated.
    #[error(transparent)]
    Variables(#[from] crate::variables::Error),
    /// Another deployment held the link's lock for too long.
    #[error(transparent)]
    LockTimeout(#[from] crate::lock::LockTimeout),
    /// The current link is not an absolute path.
    #[error("Calamari.Release.CurrentLink must be an absolute path, found '{}'", .0.display())]
    LinkNotAbsolute(PathBuf),
    /// Something other than a symbolic link is at the link's path.
    #[error(
        "The current link '{}' (Calamari.Release.CurrentLink) is {what}, not a symbolic link; move it away or choose another path. Nothing was deployed.",
        path.display()
    )]
    NotALink {
        /// The path.
        path: PathBuf,
        /// What is there.
        what: &'static str,
    },
    /// Shared paths need the link's directory.
    #[error(
        "Calamari.Release.SharedPaths is set but Calamari.Release.CurrentLink is not; shared paths live in <parent of the link>/shared"
    )]
    SharedPathsWithoutLink,
    /// A shared path escapes `shared/`.
    #[error(
        "The shared path '{0}' (Calamari.Release.SharedPaths) must be a relative path that stays inside shared/ (no '..', not absolute)"
    )]
    SharedPathEscapes(String),
    /// A shared path whose parent in the release is a symbolic link.
    #[error("The shared path '{0}' (Calamari.Release.SharedPaths) goes through a symbolic link of the package")]
    SharedPathThroughLink(String),
    /// Both health checks were given.
    #[error("Set Calamari.Release.HealthCheckUrl or Calamari.Release.HealthCheckCommand, not both")]
    TwoHealthChecks,
    /// The health-check URL cannot be used.
    #[error("The health check URL '{url}' (Calamari.Release.HealthCheckUrl) cannot be used: {reason}")]
    HealthCheckUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A timeout variable that is not a number of seconds.
    #[error("{variable} must be a number of seconds, found '{value}'")]
    InvalidSeconds {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// The health check did not succeed in time.
    #[error("The health check {check} did not succeed within {} seconds ({attempts} attempts); last result: {last}", timeout.as_secs_f64())]
    HealthCheckFailed {
        /// The check, as shown (`GET <url>` or `command '<command>'`).
        check: String,
        /// The timeout.
        timeout: Duration,
        /// How many attempts were made.
        attempts: u32,
        /// What the last attempt saw (`HTTP 500 Internal Server Error`, `exit code 3: ...`).
        last: String,
    },
    /// `ReleaseMarks.json` cannot be read or written.
    #[error("The release marks file '{}' cannot be used: {reason}", path.display())]
    MarksFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `releases mark-bad|mark-good`, `rollback --to`: no such release in the set.
    #[error("The retention policy set '{set}' has no release with {wanted}")]
    NoSuchRelease {
        /// The set.
        set: String,
        /// What was asked for (`version 1.2.3`, `deployment <id>`).
        wanted: String,
    },
    /// `rollback`: no retention policy set given.
    #[error("No retention policy set was specified. Please pass --retentionPolicySet")]
    NoRetentionPolicySet,
    /// `rollback`: the journal's location is unknown.
    #[error("The deployment journal location is unknown: neither TentacleJournal nor TentacleHome is set")]
    NoJournal,
    /// `rollback`: no deployment of the set used a current link.
    #[error(
        "No deployment of the retention policy set '{0}' has a current link (Calamari.Release.CurrentLink): nothing to roll back"
    )]
    NoCurrentLink(String),
    /// `rollback`: nothing earlier to go back to.
    #[error(
        "Nothing to roll back to: no successful deployment of '{set}' before the current release '{current}' has a directory that still exists"
    )]
    NothingToRollBackTo {
        /// The retention policy set.
        set: String,
        /// Where the link points.
        current: String,
    },
    /// `rollback --deploymentId`: no such entry in the set.
    #[error("The journal has no deployment '{id}' in the retention policy set '{set}'")]
    UnknownDeployment {
        /// The id asked for.
        id: String,
        /// The set.
        set: String,
    },
    /// `rollback --deploymentId`: the entry cannot be made current.
    #[error("Cannot roll back to the deployment '{id}': {reason}")]
    CannotRollBackTo {
        /// The id asked for.
        id: String,
        /// Why.
        reason: String,
    },
    /// `rollback --script`: the script exited non-zero (the link was already switched).
    #[error("The rollback script '{}' returned non-zero exit code: {exit_code}; the current link points at '{}'", script.display(), target.display())]
    RollbackScriptFailed {
        /// The script.
        script: PathBuf,
        /// Its exit code.
        exit_code: i32,
        /// Where the link now points.
        target: PathBuf,
    },
}

/// Takes `<link>.lock`, waiting at most `timeout`.
pub(crate) fn lock_link(link: &Path, timeout: Duration, log: &crate::Log) -> Result<NamedLock, Error> {
    let path = lock_path(link);
    NamedLock::acquire_within("release lock", &path, timeout, |path| {
        log.info(format!("Waiting for the release lock '{}' held by another deployment", path.display()));
    })
    .map_err(|e| match e {
        LockError::Io(e) => Error::Io(e),
        LockError::Timeout(t) => Error::LockTimeout(t),
    })
}

fn lock_path(link: &Path) -> PathBuf {
    let mut name = link.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    link.with_file_name(name)
}

/// A deployment's release settings and state, once [`prepare`] ran.
#[derive(Debug)]
pub(crate) struct Release {
    /// The current link, when one is configured.
    link: Option<PathBuf>,
    /// Shared paths (only with a link).
    shared: Vec<PathBuf>,
    /// The health check, if any.
    health: Option<HealthCheck>,
    /// Its overall timeout.
    health_timeout: Duration,
    /// Where the link pointed when the deployment started (absolute).
    pub(crate) previous_target: Option<PathBuf>,
    /// Whether the link was switched to this release.
    pub(crate) switched: bool,
    /// The journal entry written, successful, just before the switch.
    pub(crate) marked: Option<JournalEntry>,
    /// Held for the whole deployment.
    _lock: Option<NamedLock>,
}

impl Release {
    /// The current link, for the journal entry.
    pub(crate) fn link(&self) -> Option<&Path> {
        self.link.as_deref()
    }
}

fn seconds(variables: &VariableDictionary, name: &'static str, default: Duration) -> Result<Duration, Error> {
    let Some(value) = variables.get(name)?.filter(|v| !v.trim().is_empty()) else { return Ok(default) };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or(Error::InvalidSeconds { variable: name, value })
}

/// A deployment's `Calamari.Release.*` settings, read and checked without touching anything.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The current link (absolute).
    pub(crate) link: Option<PathBuf>,
    /// Shared paths (only with a link).
    pub(crate) shared: Vec<PathBuf>,
    /// The health check.
    pub(crate) health: Option<HealthCheck>,
    /// Its overall timeout.
    pub(crate) health_timeout: Duration,
}

impl Settings {
    /// The settings, `None` when the deployment asks for no release.
    pub(crate) fn read(v: &VariableDictionary) -> Result<Option<Settings>> {
        let text = |name: &str| -> Result<Option<String>, Error> {
            Ok(v.get(name)?.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
        };
        let link = text(names::CURRENT_LINK)?.map(PathBuf::from);
        let shared = shared::parse(&text(names::SHARED_PATHS)?.unwrap_or_default())?;
        let health = match (text(names::HEALTH_CHECK_URL)?, text(names::HEALTH_CHECK_COMMAND)?) {
            (Some(_), Some(_)) => return Err(Error::TwoHealthChecks.into()),
            (Some(url), None) => Some(HealthCheck::Url(health::parse_url(&url)?)),
            (None, Some(command)) => Some(HealthCheck::Command(command)),
            (None, None) => None,
        };
        let health_timeout = seconds(v, names::HEALTH_CHECK_TIMEOUT, DEFAULT_HEALTH_CHECK_TIMEOUT)?;
        if link.is_none() && !shared.is_empty() {
            return Err(Error::SharedPathsWithoutLink.into());
        }
        if link.is_none() && health.is_none() {
            return Ok(None);
        }
        if let Some(link) = &link {
            if !link.is_absolute() || link.file_name().is_none() {
                return Err(Error::LinkNotAbsolute(link.clone()).into());
            }
            link::state(link)?;
        }
        Ok(Some(Settings { link, shared, health, health_timeout }))
    }

    /// Where the link points now (absolute), `None` when it does not exist or there is none.
    pub(crate) fn current_target(&self) -> Result<Option<PathBuf>> {
        let Some(link) = &self.link else { return Ok(None) };
        Ok(match link::state(link)? {
            link::LinkState::Missing => None,
            link::LinkState::Link(target) => Some(link::absolute_target(link, &target)),
        })
    }
}

/// Reads the settings; with a link, takes its lock and checks what is at its path. Runs
/// before extraction, so a bad setting fails before anything is written.
pub(super) fn prepare(d: &mut Deployment<'_>) -> Result<()> {
    let Some(Settings { link, shared, health, health_timeout }) = Settings::read(d.variables)? else {
        return Ok(());
    };
    let v = &*d.variables;
    let mut release = Release {
        link: None,
        shared,
        health,
        health_timeout,
        previous_target: None,
        switched: false,
        marked: None,
        _lock: None,
    };
    if let Some(link) = link {
        link::ensure_parent(&link)?;
        let lock_timeout = seconds(v, names::LOCK_TIMEOUT, DEFAULT_LOCK_TIMEOUT)?;
        let lock = lock_link(&link, lock_timeout, d.log)?;
        link::remove_stray_temporaries(&link);
        release.previous_target = match link::state(&link)? {
            link::LinkState::Missing => None,
            link::LinkState::Link(target) => Some(link::absolute_target(&link, &target)),
        };
        d.log.verbose(format!(
            "Release: the current link '{}' points at {}",
            link.display(),
            release.previous_target.as_ref().map_or("nothing yet".to_string(), |t| format!("'{}'", t.display()))
        ));
        release._lock = Some(lock);
        release.link = Some(link);
    }
    d.variables.set(names::ROLLED_BACK, Some("False".to_string()));
    d.release = Some(release);
    Ok(())
}

/// Links the shared paths into the freshly extracted release.
pub(super) fn link_shared_paths(d: &mut Deployment<'_>) -> Result<()> {
    let Some(release) = &d.release else { return Ok(()) };
    let (Some(link), false) = (&release.link, release.shared.is_empty()) else { return Ok(()) };
    let shared_root = link.parent().unwrap_or(Path::new("/")).join("shared");
    shared::link_into(&d.current_directory, &shared_root, &release.shared, d.log)?;
    Ok(())
}

/// Marks the journal entry successful (with the link), then switches the link to the
/// installation directory.
pub(super) fn switch_current_link(d: &mut Deployment<'_>) -> Result<()> {
    let Some(link) = d.release.as_ref().and_then(|r| r.link.clone()) else { return Ok(()) };
    let target = d.current_directory.clone();
    let previous = d.release.as_ref().and_then(|r| r.previous_target.clone());
    // The journal first: should we be killed right after the switch, the link must point
    // at a release the journal lists as successful. The entry is the final one as far as
    // it is known now; the end of the deployment rewrites it only when something changed.
    if let (Some(journal), Some(id), super::JournalDecision::Record) =
        (&d.journal, d.pending_entry.clone(), d.journal_decision)
        && let Some(mut entry) = super::journal_entry(d, true, &d.package)?
    {
        entry.id = id;
        journal.log_adding(&entry);
        journal.replace(&entry).map_err(Error::from)?;
        if let Some(release) = d.release.as_mut() {
            release.marked = Some(entry);
        }
    }
    link::switch(&link, &target)?;
    if let Some(release) = d.release.as_mut() {
        release.switched = true;
    }
    d.log.info(format!(
        "Switched the current link '{}' to '{}'{}",
        link.display(),
        target.display(),
        previous.as_ref().map_or(String::new(), |p| format!(" (was '{}')", p.display()))
    ));
    d.set_output(names::CURRENT_LINK, &link.display().to_string());
    d.set_output(names::PREVIOUS_TARGET, &previous.map(|p| p.display().to_string()).unwrap_or_default());
    Ok(())
}

/// Polls the health check, if one is configured.
pub(super) fn health_gate(d: &mut Deployment<'_>) -> Result<()> {
    let Some(release) = &d.release else { return Ok(()) };
    let Some(check) = &release.health else { return Ok(()) };
    d.log.info(format!(
        "Checking the release's health: {check} (for up to {} seconds)",
        release.health_timeout.as_secs_f64()
    ));
    match health::poll(check, &d.current_directory, release.health_timeout, d.log) {
        Ok(result) => {
            d.log.info(format!("The health check {check} succeeded: {result}"));
            Ok(())
        }
        Err((last, attempts)) => {
            Err(Error::HealthCheckFailed { check: check.to_string(), timeout: release.health_timeout, attempts, last }
                .into())
        }
    }
}

/// The rollback path: when the link was switched to this release, points it back at the
/// previous target (or removes it when there was none) and sets
/// `Calamari.Release.RolledBack` for the `DeployFailed` script.
pub(super) fn switch_back(d: &mut Deployment<'_>) {
    let Some(release) = d.release.as_mut() else { return };
    let Some(link) = release.link.clone().filter(|_| release.switched) else { return };
    let result = match &release.previous_target {
        Some(previous) => link::switch(&link, previous),
        None => link::remove(&link),
    };
    match result {
        Ok(()) => {
            release.switched = false;
            let text = match &release.previous_target {
                Some(p) => format!("Switched the current link '{}' back to '{}'", link.display(), p.display()),
                None => {
                    format!("Removed the current link '{}': no release was current before this one", link.display())
                }
            };
            d.log.warn(text);
            d.variables.set(names::ROLLED_BACK, Some("True".to_string()));
        }
        Err(e) => d.log.error(format!(
            "Could not switch the current link '{}' back: {}",
            link.display(),
            crate::error_chain(&e)
        )),
    }
}

/// The directories retention must keep: where every current link recorded in the journal
/// points, and the release a `rollback` of it would restore.
pub(crate) fn protected_directories(all: &[JournalEntry]) -> Vec<PathBuf> {
    let mut links: Vec<&str> = all.iter().filter_map(|e| e.current_link.as_deref()).collect();
    links.sort_unstable();
    links.dedup();
    let mut out = Vec::new();
    for link in links {
        let link = Path::new(link);
        let Ok(link::LinkState::Link(target)) = link::state(link) else { continue };
        let target = link::absolute_target(link, &target);
        let uses_link: Vec<&JournalEntry> = all.iter().filter(|e| e.current_link.as_deref() == link.to_str()).collect();
        if let Some(candidate) = rollback::candidate(&uses_link, &target, |_| false) {
            out.extend(candidate.installation_directory().map(Path::to_path_buf));
        }
        out.push(target);
    }
    out
}
