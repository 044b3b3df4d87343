//! A retention policy set's releases as an operator asks about them (`calamari releases`,
//! our extension, as Deployer's `dep releases`), and releases marked bad (`releases
//! mark-bad`), which a plain `rollback` skips.
//!
//! A release is a directory the set's deployments were installed in. The journal has one
//! entry per deployment and one per rollback (which restores an earlier directory), so a
//! release's facts come from the first entry of its directory (version, when, whether it
//! succeeded); it is `current` when the set's link points at it, and `rolled back` when a
//! rollback moved the link away from it.
//!
//! Marks are kept beside the journal in `ReleaseMarks.json` (`{"marks": [{retentionPolicySet,
//! directory, version, reason, markedOn}]}`), not in the journal itself, so the journal stays
//! exactly what the reference reads; the file is replaced atomically under its own lock.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Error, link};
use crate::journal::{DeploymentJournal, JournalEntry};
use crate::lock::NamedLock;

/// The marks file, beside the journal.
pub(crate) const MARKS_FILE_NAME: &str = "ReleaseMarks.json";

/// One release of a set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRecord {
    /// The package's version (empty when the entry names no package).
    pub version: String,
    /// The package's id.
    pub package_id: String,
    /// The release's directory.
    pub directory: String,
    /// When it was first deployed (RFC 3339, UTC); empty when the journal has no time.
    pub installed_on: String,
    /// Whether its deployment succeeded.
    pub success: bool,
    /// Whether the set's current link points at it.
    pub current: bool,
    /// Whether a rollback moved the link away from it.
    pub rolled_back: bool,
    /// Whether it is marked bad (a plain rollback skips it).
    pub bad: bool,
    /// Why, when it is marked bad.
    pub bad_reason: Option<String>,
    /// The journal id of its first deployment.
    pub deployment_id: String,
}

/// A release marked bad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BadMark {
    /// The set.
    pub retention_policy_set: String,
    /// The release's directory.
    pub directory: String,
    /// Its version, for people reading the file.
    pub version: String,
    /// Why.
    pub reason: String,
    /// When (RFC 3339, UTC).
    pub marked_on: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct MarksFile {
    marks: Vec<BadMark>,
}

/// The marks of one journal's releases.
#[derive(Debug, Clone)]
pub(crate) struct ReleaseMarks {
    path: PathBuf,
}

impl ReleaseMarks {
    /// The marks kept beside `journal`.
    pub(crate) fn beside(journal: &DeploymentJournal) -> ReleaseMarks {
        let dir = journal.path().parent().unwrap_or(Path::new("."));
        ReleaseMarks { path: dir.join(MARKS_FILE_NAME) }
    }

    /// Every mark.
    ///
    /// # Errors
    /// An unreadable or malformed file, naming it.
    pub(crate) fn read(&self) -> Result<Vec<BadMark>, Error> {
        match crate::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice::<MarksFile>(&bytes)
                .map(|f| f.marks)
                .map_err(|e| Error::MarksFile { path: self.path.clone(), reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Changes the marks under the file's lock and replaces the file atomically.
    fn update(&self, change: impl FnOnce(&mut Vec<BadMark>)) -> Result<(), Error> {
        let mut lock_path = self.path.as_os_str().to_owned();
        lock_path.push(".lock");
        let _lock = NamedLock::acquire(PathBuf::from(lock_path))
            .map_err(|e| Error::MarksFile { path: self.path.clone(), reason: e.to_string() })?;
        let mut marks = self.read()?;
        change(&mut marks);
        let json = serde_json::to_vec_pretty(&MarksFile { marks }).expect("marks serialise");
        crate::fs::write_atomic(&self.path, json)?;
        Ok(())
    }

    /// Whether `directory` of `set` is marked bad, and why.
    pub(crate) fn reason(marks: &[BadMark], set: &str, directory: &Path) -> Option<String> {
        marks
            .iter()
            .find(|m| m.retention_policy_set == set && same(Path::new(&m.directory), directory))
            .map(|m| m.reason.clone())
    }
}

/// Whether two recorded paths name the same directory.
pub(crate) fn same(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// The journal the variables' environment names (`TentacleJournal`, else
/// `$TentacleHome/DeploymentJournal.xml`).
///
/// # Errors
/// [`Error::NoJournal`] when neither is set.
pub fn journal_of(variables: &crate::VariableDictionary) -> Result<DeploymentJournal, Error> {
    DeploymentJournal::from_variables(variables)?.ok_or(Error::NoJournal)
}

/// `records` as a JSON array (the fields of [`ReleaseRecord`], camelCase).
pub fn releases_json(records: &[ReleaseRecord]) -> String {
    serde_json::to_string_pretty(records).expect("records serialise")
}

/// `records` as a table for people: version, when, result, state, directory.
pub fn releases_table(records: &[ReleaseRecord]) -> String {
    let rows: Vec<[String; 5]> = records
        .iter()
        .map(|r| {
            let mut state = Vec::new();
            if r.current {
                state.push("current".to_string());
            }
            if r.rolled_back {
                state.push("rolled back".to_string());
            }
            if let Some(reason) = &r.bad_reason {
                state.push(format!("bad: {reason}"));
            }
            [
                r.version.clone(),
                r.installed_on.replace('T', " ").trim_end_matches('Z').to_string(),
                if r.success { "succeeded" } else { "failed" }.to_string(),
                if state.is_empty() { "-".to_string() } else { state.join(", ") },
                r.directory.clone(),
            ]
        })
        .collect();
    let header = ["VERSION", "INSTALLED (UTC)", "RESULT", "STATE", "DIRECTORY"].map(String::from);
    let width = |i: usize| rows.iter().chain(std::iter::once(&header)).map(|r| r[i].chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..4).map(width).collect();
    let line = |r: &[String; 5]| {
        let mut text = String::new();
        for (i, cell) in r.iter().enumerate().take(4) {
            text.push_str(&format!("{cell:<w$}  ", w = widths[i]));
        }
        text.push_str(&r[4]);
        text
    };
    std::iter::once(&header).chain(rows.iter()).map(line).collect::<Vec<_>>().join("\n")
}

/// The set's releases, newest first.
///
/// # Errors
/// The journal or the marks cannot be read.
pub fn releases(journal: &DeploymentJournal, set: &str) -> Result<Vec<ReleaseRecord>, Error> {
    let set = set.trim();
    if set.is_empty() {
        return Err(Error::NoRetentionPolicySet);
    }
    let entries = journal.entries()?;
    let marks = ReleaseMarks::beside(journal).read()?;
    let ours: Vec<&JournalEntry> = entries.iter().filter(|e| e.retention_policy_set == set).collect();
    let current =
        ours.iter().rev().find_map(|e| e.current_link.as_deref()).and_then(|l| match link::state(Path::new(l)) {
            Ok(link::LinkState::Link(target)) => Some(link::absolute_target(Path::new(l), &target)),
            _ => None,
        });
    let mut records: Vec<(Option<chrono::DateTime<chrono::Utc>>, usize, ReleaseRecord)> = Vec::new();
    for (index, entry) in ours.iter().enumerate() {
        let Some(dir) = entry.installation_directory() else { continue };
        if ours[..index].iter().any(|e| e.installation_directory().is_some_and(|d| same(d, dir))) {
            continue; // a rollback restoring an earlier release
        }
        // A rollback entry restores a directory deployed before it; one whose previous
        // target is this release moved the link away from it.
        let rolled_back = (index + 1..ours.len()).any(|j| {
            let e = ours[j];
            e.previous_target.as_deref().is_some_and(|p| same(Path::new(p), dir))
                && e.installation_directory()
                    .is_some_and(|d| ours[..j].iter().any(|o| o.installation_directory().is_some_and(|od| same(od, d))))
        });
        let bad_reason = ReleaseMarks::reason(&marks, set, dir);
        records.push((
            entry.installed_on,
            index,
            ReleaseRecord {
                version: entry.package().map(|p| p.package_version.clone()).unwrap_or_default(),
                package_id: entry.package().map(|p| p.package_id.clone()).unwrap_or_default(),
                directory: dir.display().to_string(),
                installed_on: entry
                    .installed_on
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                success: entry.was_successful,
                current: current.as_deref().is_some_and(|c| same(c, dir)),
                rolled_back,
                bad: bad_reason.is_some(),
                bad_reason,
                deployment_id: entry.id.clone(),
            },
        ));
    }
    // Newest first; entries recorded in the same second keep the journal's order.
    records.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    Ok(records.into_iter().map(|(_, _, r)| r).collect())
}

/// Which release `releases mark-bad` or `mark-good` means.
#[derive(Debug, Clone)]
pub enum ReleaseSelector {
    /// The newest release of this package version.
    Version(String),
    /// The release a journal entry installed.
    DeploymentId(String),
}

fn select<'r>(records: &'r [ReleaseRecord], set: &str, selector: &ReleaseSelector) -> Result<&'r ReleaseRecord, Error> {
    let found = match selector {
        ReleaseSelector::Version(v) => records.iter().find(|r| r.version.eq_ignore_ascii_case(v.trim())),
        ReleaseSelector::DeploymentId(id) => records.iter().find(|r| r.deployment_id.eq_ignore_ascii_case(id.trim())),
    };
    found.ok_or_else(|| Error::NoSuchRelease {
        set: set.to_string(),
        wanted: match selector {
            ReleaseSelector::Version(v) => format!("version {v}"),
            ReleaseSelector::DeploymentId(id) => format!("deployment {id}"),
        },
    })
}

/// Marks a release bad (a plain `rollback` skips it); the release marked.
///
/// # Errors
/// No such release, the marks file cannot be written.
pub fn mark_bad(
    journal: &DeploymentJournal,
    set: &str,
    selector: &ReleaseSelector,
    reason: &str,
) -> Result<ReleaseRecord, Error> {
    let set = set.trim();
    let records = releases(journal, set)?;
    let record = select(&records, set, selector)?.clone();
    let mark = BadMark {
        retention_policy_set: set.to_string(),
        directory: record.directory.clone(),
        version: record.version.clone(),
        reason: Some(reason.trim()).filter(|r| !r.is_empty()).unwrap_or("marked bad by an operator").to_string(),
        marked_on: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    ReleaseMarks::beside(journal).update(|marks| {
        marks.retain(|m| !(m.retention_policy_set == set && m.directory == mark.directory));
        marks.push(mark);
    })?;
    Ok(record)
}

/// Lifts a release's bad mark; the release, and whether it was marked.
///
/// # Errors
/// No such release, the marks file cannot be written.
pub fn mark_good(
    journal: &DeploymentJournal,
    set: &str,
    selector: &ReleaseSelector,
) -> Result<(ReleaseRecord, bool), Error> {
    let set = set.trim();
    let records = releases(journal, set)?;
    let record = select(&records, set, selector)?.clone();
    let mut was = false;
    ReleaseMarks::beside(journal).update(|marks| {
        let before = marks.len();
        marks.retain(|m| {
            !(m.retention_policy_set == set && same(Path::new(&m.directory), Path::new(&record.directory)))
        });
        was = marks.len() != before;
    })?;
    Ok((record, was))
}
