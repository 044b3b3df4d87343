//! `calamari rollback --retentionPolicySet=SET [--deploymentId=ID] [--script=FILE]`: points
//! the set's current link back at an earlier release.
//!
//! The release restored is the one named, or else the newest successful deployment that
//! the journal lists *before* the first entry of the current release and whose directory
//! still exists. Rolling back twice therefore walks back through the releases (as
//! Capistrano's `deploy:rollback` does) rather than toggling between two. A new journal
//! entry records the restored release as the newest successful deployment, with the link
//! and the target it replaced; it is written before the link is switched, so a kill leaves
//! the link at a release the journal lists as successful.

use std::path::{Path, PathBuf};

use super::{DEFAULT_LOCK_TIMEOUT, Error, link, names};
use crate::journal::{DeploymentJournal, JournalEntry, entry};
use crate::{Log, VariableDictionary};

/// What `calamari rollback` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct RollbackRequest {
    /// `--retentionPolicySet`: whose current link is rolled back.
    pub retention_policy_set: String,
    /// `--deploymentId`: the journal entry to make current (else the previous release).
    pub deployment_id: Option<String>,
    /// `--to`: the package version to make current (its newest successful release).
    pub to_version: Option<String>,
    /// `--script`: a script run in the restored directory after the switch.
    pub script: Option<PathBuf>,
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackOutcome {
    /// The current link.
    pub link: PathBuf,
    /// The release it now points at.
    pub target: PathBuf,
    /// Where it pointed before (`None` when it did not exist).
    pub previous: Option<PathBuf>,
    /// The journal entry written for the rollback.
    pub entry_id: String,
}

use super::history::{self, same};

/// The release a rollback from `current` restores: among `entries` (one link's, in journal
/// order), the newest successful one before the first entry installed in `current`, whose
/// directory exists, is not `current` and is not marked bad (`is_bad`).
pub(crate) fn candidate<'a>(
    entries: &[&'a JournalEntry],
    current: &Path,
    is_bad: impl Fn(&Path) -> bool,
) -> Option<&'a JournalEntry> {
    let first_current = entries
        .iter()
        .position(|e| e.installation_directory().is_some_and(|d| same(d, current)))
        .unwrap_or(entries.len());
    entries[..first_current].iter().rev().copied().find(|e| {
        e.was_successful && e.installation_directory().is_some_and(|d| d.is_dir() && !same(d, current) && !is_bad(d))
    })
}

/// Runs `calamari rollback`.
///
/// # Errors
/// No set, no journal, no link recorded for the set, nothing to roll back to, an entry that
/// cannot be restored, the link's lock held too long, a failing `--script`.
pub fn rollback(
    request: &RollbackRequest,
    variables: &mut VariableDictionary,
    log: &Log,
) -> crate::Result<RollbackOutcome> {
    let set = request.retention_policy_set.trim();
    if set.is_empty() {
        return Err(Error::NoRetentionPolicySet.into());
    }
    let home = variables.get_raw(&format!("env:{}", crate::env_vars::TENTACLE_HOME)).map(std::path::PathBuf::from);
    crate::operator_lock::refuse_if_locked(home.as_deref(), set, "rolled back")?;
    let journal = DeploymentJournal::from_variables(variables)?.ok_or(Error::NoJournal)?.with_log(log.clone());
    let link_of_set = |entries: &[JournalEntry]| {
        entries.iter().rev().filter(|e| e.retention_policy_set == set).find_map(|e| e.current_link.clone())
    };
    let link =
        PathBuf::from(link_of_set(&journal.entries_in_set(set)?).ok_or_else(|| Error::NoCurrentLink(set.to_string()))?);
    let _lock = super::lock_link(&link, DEFAULT_LOCK_TIMEOUT, log)?;
    link::remove_stray_temporaries(&link);
    // Read again under the lock: a deployment may have finished meanwhile.
    let entries = journal.entries_in_set(set)?;
    let ours: Vec<&JournalEntry> = entries
        .iter()
        .filter(|e| e.retention_policy_set == set && e.current_link.as_deref() == link.to_str())
        .collect();
    let current = match link::state(&link)? {
        link::LinkState::Missing => None,
        link::LinkState::Link(target) => Some(link::absolute_target(&link, &target)),
    };
    let marks = history::ReleaseMarks::beside(&journal).read()?;
    let is_bad = |dir: &Path| history::ReleaseMarks::reason(&marks, set, dir);
    let explicit = match (&request.deployment_id, &request.to_version) {
        (Some(id), _) => Some((
            id.clone(),
            entries
                .iter()
                .find(|e| e.id.eq_ignore_ascii_case(id.trim()) && e.retention_policy_set == set)
                .ok_or_else(|| Error::UnknownDeployment { id: id.clone(), set: set.to_string() })?,
        )),
        (None, Some(version)) => {
            // The newest successful release of that version whose directory still exists.
            let of_version = |e: &&&JournalEntry| {
                e.package().is_some_and(|p| p.package_version.eq_ignore_ascii_case(version.trim()))
            };
            let entry = ours
                .iter()
                .rev()
                .filter(of_version)
                .find(|e| e.was_successful && e.installation_directory().is_some_and(Path::is_dir))
                .or_else(|| ours.iter().rev().find(of_version))
                .ok_or_else(|| Error::NoSuchRelease { set: set.to_string(), wanted: format!("version {version}") })?;
            Some((format!("version {version}"), *entry))
        }
        (None, None) => None,
    };
    let chosen = match explicit {
        Some((id, entry)) => {
            let cannot = |reason: String| Error::CannotRollBackTo { id: id.clone(), reason };
            if !entry.was_successful {
                return Err(cannot("it did not succeed".to_string()).into());
            }
            let dir = entry.installation_directory().ok_or_else(|| cannot("it has no directory".to_string()))?;
            if !dir.is_dir() {
                return Err(cannot(format!("its directory '{}' no longer exists", dir.display())).into());
            }
            if current.as_deref().is_some_and(|c| same(c, dir)) {
                return Err(cannot(format!("it is already current ('{}')", dir.display())).into());
            }
            if let Some(reason) = is_bad(dir) {
                log.warn(format!("Rolling back to '{}', which is marked bad ({reason}), as asked", dir.display()));
            }
            entry
        }
        None => {
            let none = || Error::NothingToRollBackTo {
                set: set.to_string(),
                current: current.as_ref().map_or("(none)".to_string(), |c| c.display().to_string()),
            };
            let usable = |e: &JournalEntry| {
                e.was_successful && e.installation_directory().is_some_and(|d| d.is_dir() && is_bad(d).is_none())
            };
            let chosen = match &current {
                Some(c) => candidate(&ours, c, |d| is_bad(d).is_some()).ok_or_else(none)?,
                None => ours.iter().rev().copied().find(|e| usable(e)).ok_or_else(none)?,
            };
            for skipped in marks.iter().filter(|m| m.retention_policy_set == set) {
                log.verbose(format!("Skipping '{}', marked bad: {}", skipped.directory, skipped.reason));
            }
            chosen
        }
    };
    let Some(target) = chosen.installation_directory().map(Path::to_path_buf) else {
        return Err(Error::NothingToRollBackTo { set: set.to_string(), current: String::new() }.into());
    };
    let restored = JournalEntry {
        id: entry::new_guid(),
        installed_on: Some(entry::now_in_whole_seconds()),
        was_successful: true,
        current_link: Some(link.display().to_string()),
        previous_target: current.as_ref().map(|c| c.display().to_string()),
        ..chosen.clone()
    };
    journal.add(&restored)?;
    link::switch(&link, &target)?;
    let package = chosen.package().map(|p| format!(" ({} {})", p.package_id, p.package_version)).unwrap_or_default();
    log.info(format!(
        "Rolled back '{}' to '{}'{package}{}; it is now the current release",
        link.display(),
        target.display(),
        current.as_ref().map_or(String::new(), |c| format!(", was '{}'", c.display()))
    ));
    let output = |variables: &mut VariableDictionary, name: &str, value: &str| {
        variables.set_output(name, value, false);
        log.output_variable(name, value, false);
    };
    output(variables, names::CURRENT_LINK, &link.display().to_string());
    output(variables, names::PREVIOUS_TARGET, &current.as_ref().map(|c| c.display().to_string()).unwrap_or_default());
    variables.set(names::ROLLED_BACK, Some("True".to_string()));
    variables.set(crate::variables::names::INSTALLATION_DIRECTORY_PATH, Some(target.display().to_string()));
    if let Some(p) = chosen.package() {
        variables.set(crate::variables::names::PACKAGE_ID, Some(p.package_id.clone()));
        variables.set(crate::variables::names::PACKAGE_VERSION, Some(p.package_version.clone()));
    }
    if let Some(script) = &request.script {
        run_script(script, &target, variables, log)?;
    }
    Ok(RollbackOutcome { link, target, previous: current, entry_id: restored.id })
}

/// Runs `script` in `directory`: a copy of it is placed there (hidden, removed afterwards)
/// so that it runs with the directory as its working directory and the usual helpers.
fn run_script(script: &Path, directory: &Path, variables: &mut VariableDictionary, log: &Log) -> crate::Result<()> {
    let script = std::path::absolute(script).unwrap_or_else(|_| script.to_path_buf());
    if !script.is_file() {
        return Err(crate::script::Error::ScriptNotFound { path: script }.into());
    }
    let name = script.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let suffix: u32 = rand::random();
    let copy = directory.join(format!(".calamari-rollback-{suffix:08x}-{name}"));
    crate::fs::copy(&script, &copy)?;
    let _remove = crate::script::RemoveOnDrop(vec![copy.clone()]);
    log.verbose(format!("Running the rollback script '{}' in '{}'", script.display(), directory.display()));
    let outcome = crate::script::run_script(&copy, None, variables, log)?;
    if outcome.exit_code != 0 {
        return Err(Error::RollbackScriptFailed {
            script,
            exit_code: outcome.exit_code,
            target: directory.to_path_buf(),
        }
        .into());
    }
    Ok(())
}
