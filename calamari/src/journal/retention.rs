//! Retention: `calamari clean --retentionPolicySet=SET (--days=N | --releases=N)`
//! (the reference's `RetentionPolicy.cs`; `docs/behaviour.md`, "Retention").
//!
//! Which entries go is decided by [`select`], a pure function of the entries, the policy and
//! the clock, so it is table-tested. [`clean`] then deletes their extraction directories and
//! removes them from the journal, with these guarantees beyond the reference:
//!
//! * **Never a kept directory.** A directory is not deleted when an entry that stays in the
//!   journal (of any retention set) uses it or lives inside it, when it is, contains or lies
//!   inside any entry's custom installation directory (one that differs from that entry's
//!   own extraction directory), when it contains `$TentacleHome` or
//!   the journal, or when it is not an absolute path.
//! * **Never a live release.** With releases (`Calamari.Release.CurrentLink`), the directory
//!   a current link recorded in the journal points at, and the one `calamari rollback` would
//!   restore, are not deleted, and their entries stay.
//! * **Clock skew.** With `--days`, the two most recent successful deployments (the
//!   current release and the one before it) are kept whatever their age, so a clock that
//!   jumped forward cannot empty the machine.
//! * **Interruptible.** A directory is first renamed to `.deleting-<name>-<random>`
//!   beside itself (one atomic rename), then deleted; entries leave the journal only after
//!   that, in one atomic journal update. A `kill -9` at any point leaves either the entry
//!   and its directory, or the entry and no directory (the next run drops the entry), plus
//!   perhaps a `.deleting-*` directory that the next run removes.
//! * **Dry run** lists what would go and changes nothing.

use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use super::store::Access;
use super::{DeploymentJournal, Error, JournalEntry};
use crate::Log;

/// How much history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionPolicy {
    /// Keep deployments installed in the last N days (`--days`).
    Days(u32),
    /// Keep this deployment and the previous N successful ones (`--releases`).
    Releases(u32),
}

/// What `calamari clean` was asked to do, as given on its command line.
#[derive(Debug, Clone, Default)]
pub struct CleanRequest {
    /// `--retentionPolicySet`: whose deployments are considered (exact match).
    pub retention_policy_set: String,
    /// `--days`: keep deployments from the last N days (takes precedence over releases).
    pub days: Option<i64>,
    /// `--releases`: keep this deployment and the previous N successful ones.
    pub releases: Option<i64>,
    /// `--dryRun`: list what would be deleted, delete nothing.
    pub dry_run: bool,
}

impl CleanRequest {
    /// The policy asked for: days when positive, else releases.
    ///
    /// # Errors
    /// [`Error::NoRetentionPolicy`] when neither is positive; [`Error::NoRetentionPolicySet`]
    /// when the set is blank.
    pub fn policy(&self) -> Result<RetentionPolicy, Error> {
        let clamp = |n: Option<i64>| u32::try_from(n.unwrap_or(0).max(0)).unwrap_or(u32::MAX);
        let (days, releases) = (clamp(self.days), clamp(self.releases));
        if days == 0 && releases == 0 {
            return Err(Error::NoRetentionPolicy);
        }
        if self.retention_policy_set.trim().is_empty() {
            return Err(Error::NoRetentionPolicySet);
        }
        Ok(if days > 0 { RetentionPolicy::Days(days) } else { RetentionPolicy::Releases(releases) })
    }
}

/// `calamari clean`: applies the request's policy to the journal the variables name (see
/// [`clean`]). `None` (with a warning) when no journal location is known.
///
/// # Errors
/// A bad request, or as [`clean`].
pub fn clean_deployments(
    request: &CleanRequest,
    variables: &crate::VariableDictionary,
    log: &Log,
) -> Result<Option<CleanSummary>, Error> {
    let policy = request.policy()?;
    let Some(journal) = DeploymentJournal::from_variables(variables)? else {
        log.warn(
            "The deployment journal location is unknown: neither TentacleJournal nor TentacleHome is set. Did not find any deployments to clean up",
        );
        return Ok(None);
    };
    let journal = journal.with_log(log.clone());
    let tentacle_home = variables
        .get_raw(&format!("env:{}", crate::env_vars::TENTACLE_HOME))
        .filter(|h| !h.trim().is_empty())
        .map(std::path::PathBuf::from);
    let summary =
        clean(&journal, &request.retention_policy_set, policy, request.dry_run, now(), tentacle_home.as_deref(), log)?;
    if request.dry_run {
        log.info(format!(
            "Dry run: {} deployments and {} directories would be removed; nothing was changed.",
            summary.removed_entries.len(),
            summary.removed_directories.len()
        ));
    }
    Ok(Some(summary))
}

/// The wall clock, for callers of [`clean`] that do not inject one.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The prefix of a directory being deleted.
pub(crate) const DELETING_PREFIX: &str = ".deleting-";

/// What [`select`] decided, as indexes into the entries it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Entries to remove (with their directories).
    pub delete: Vec<usize>,
    /// Entries whose directories must survive (the reference's "preserved entries").
    pub preserved: Vec<usize>,
    /// Entries the `--days` policy would have deleted but that are the current or previous
    /// successful release (subset of `preserved`).
    pub protected_releases: Vec<usize>,
}

/// The entries' indexes, most recent first: by `InstalledOn` descending, entries without a
/// time last, and of equal times the one written later first.
fn newest_first(entries: &[JournalEntry]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[b].installed_on.cmp(&entries[a].installed_on).then(b.cmp(&a)));
    order
}

/// Decides which entries (all of one retention policy set) go.
///
/// * `Days(n)`: entries installed before `now - n days` go; newer ones are preserved; entries
///   without a time stay but are not preserved (reference). The two most recent successful
///   entries are always preserved (a clock that jumps forward must not delete the live release).
/// * `Releases(n)`: when there are at most `n` successful entries nothing goes. Otherwise,
///   most recent first, the first `n + 1` successful entries are preserved ("this deployment
///   and the previous n") and every other entry, failed ones included, goes.
/// * `n == 0`: nothing goes.
pub fn select(entries: &[JournalEntry], policy: RetentionPolicy, now: DateTime<Utc>) -> Selection {
    let mut sel = Selection::default();
    match policy {
        RetentionPolicy::Days(0) | RetentionPolicy::Releases(0) => {}
        RetentionPolicy::Days(days) => {
            let cutoff = now - Duration::days(i64::from(days));
            for (i, e) in entries.iter().enumerate() {
                match e.installed_on {
                    Some(t) if t < cutoff => sel.delete.push(i),
                    Some(_) => sel.preserved.push(i),
                    None => {}
                }
            }
            let current_and_previous: Vec<usize> =
                newest_first(entries).into_iter().filter(|&i| entries[i].was_successful).take(2).collect();
            for i in current_and_previous {
                if let Some(pos) = sel.delete.iter().position(|&d| d == i) {
                    sel.delete.remove(pos);
                    sel.preserved.push(i);
                    sel.protected_releases.push(i);
                }
            }
        }
        RetentionPolicy::Releases(releases) => {
            let successful = entries.iter().filter(|e| e.was_successful).count();
            if successful <= releases as usize {
                return sel;
            }
            let mut kept = 0usize;
            for i in newest_first(entries) {
                if entries[i].was_successful && kept <= releases as usize {
                    kept += 1;
                    sel.preserved.push(i);
                } else {
                    sel.delete.push(i);
                }
            }
            sel.delete.sort_unstable();
        }
    }
    sel
}

/// What [`clean`] did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanSummary {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Entries removed from the journal.
    pub removed_entries: Vec<JournalEntry>,
    /// Extraction directories deleted.
    pub removed_directories: Vec<PathBuf>,
    /// Directories of removed entries left alone because something kept uses them.
    pub kept_directories: Vec<PathBuf>,
    /// Directories that could not be deleted (their entries stay in the journal).
    pub failed_directories: Vec<PathBuf>,
    /// Leftover `.deleting-*` directories of an interrupted run that were deleted.
    pub removed_leftovers: Vec<PathBuf>,
    /// Stale `*.downloading` files deleted under `$TentacleHome/Files`.
    pub removed_downloads: Vec<PathBuf>,
}

/// Applies `policy` to the entries of `retention_policy_set` (compared exactly, as the
/// reference does here), then deletes `*.downloading` files older than a day under
/// `tentacle_home/Files`. `now` is the clock (injected so tests control it).
///
/// # Errors
/// The journal could not be read or written. A directory that cannot be deleted is not an
/// error: it is logged, and its entry stays for the next run.
pub(crate) fn clean(
    journal: &DeploymentJournal,
    retention_policy_set: &str,
    policy: RetentionPolicy,
    dry_run: bool,
    now: DateTime<Utc>,
    tentacle_home: Option<&Path>,
    log: &Log,
) -> Result<CleanSummary, Error> {
    let mut summary = CleanSummary { dry_run, ..CleanSummary::default() };
    match policy {
        RetentionPolicy::Days(n) if n > 0 => log.info(format!("Keeping deployments from the last {n} days")),
        RetentionPolicy::Releases(n) if n > 0 => {
            log.info(format!("Keeping this deployment and the previous {n} successful deployments"))
        }
        _ => {
            log.info("Keeping all deployments");
            return Ok(summary);
        }
    }
    if dry_run {
        log.info("Dry run: nothing will be deleted.");
    }

    // The set's entries, through the index; a dry run changes, creates and repairs nothing.
    let access = if dry_run { Access::Inspect } else { Access::Read };
    let in_set = journal.with_session(access, |session| {
        if let Some(damaged) = &session.notes.damaged {
            log.warn(format!(
                "The deployment journal '{}' is unreadable ({damaged}); a real run would move it aside and keep what can be read of it.",
                journal.path().display()
            ));
        }
        super::entries_in_set(session, retention_policy_set)
    })?;
    let selection = select(&in_set, policy, now);
    for &i in &selection.protected_releases {
        log.verbose(format!(
            "Keeping the deployment installed on {} in '{}' although it is older than the policy: it is the current or previous successful release",
            in_set[i].installed_on.map(|t| super::xml::format_installed_on(&t)).unwrap_or_default(),
            in_set[i].extracted_to.as_deref().unwrap_or("")
        ));
    }
    let doomed: Vec<&JournalEntry> = selection.delete.iter().map(|&i| &in_set[i]).collect();
    if doomed.is_empty() {
        log.info("Did not find any deployments to clean up");
    }

    // What must survive is known from every entry of the journal, in one streaming pass,
    // and only when something is to go.
    let guard = if doomed.is_empty() {
        Guard::default()
    } else {
        journal.with_session(access, |session| {
            let mut builder = GuardBuilder::new(&doomed, journal.path(), tentacle_home);
            session.for_each_dirs(|dirs, linked| builder.see_dirs(dirs, linked))?;
            Ok(builder.finish())
        })?
    };
    // The directories beside which interrupted runs leave leftovers.
    let mut parents: Vec<PathBuf> = in_set
        .iter()
        .filter_map(|e| e.extracted_to_path().filter(|d| d.is_absolute()).and_then(Path::parent))
        .map(Path::to_path_buf)
        .collect();
    parents.sort();
    parents.dedup();

    let mut remove_ids = Vec::new();
    let mut removed = Vec::new();
    for (&i, entry) in selection.delete.iter().zip(&doomed) {
        let keep_entry = match entry.extracted_to.as_deref().filter(|d| !d.trim().is_empty()) {
            None => false,
            Some(dir) => delete_extraction_directory(Path::new(dir), &guard, dry_run, log, &mut summary),
        };
        if keep_entry {
            continue;
        }
        if dry_run {
            log.info(format!("Would remove the journal entry {}{}", entry.id, describe(entry)));
        } else {
            log.verbose(format!("Removing the journal entry {}{}", entry.id, describe(entry)));
        }
        remove_ids.push(entry.id.clone());
        removed.push(i);
    }
    drop(doomed);
    let mut in_set = in_set;
    summary.removed_entries = removed.into_iter().map(|i| std::mem::take(&mut in_set[i])).collect();
    drop(in_set);
    if !dry_run && !remove_ids.is_empty() {
        journal.remove_entries(&remove_ids)?;
    }

    remove_leftovers(&parents, dry_run, log, &mut summary);
    if !dry_run {
        // Extractions killed before their rename leave hidden partial directories beside
        // the releases; their lock died with them, so they are safe to remove.
        for parent in &parents {
            crate::package::remove_stale_partials(parent);
        }
    }
    if let Some(home) = tentacle_home {
        remove_stale_downloads(&home.join("Files"), now, dry_run, log, &mut summary);
    }
    Ok(summary)
}

fn describe(entry: &JournalEntry) -> String {
    let mut s = String::new();
    if let Some(p) = entry.package() {
        s.push_str(&format!(" ({} {})", p.package_id, p.package_version));
    }
    if let Some(t) = &entry.installed_on {
        s.push_str(&format!(" installed on {}", super::xml::format_installed_on(t)));
    }
    s
}

/// The forms of a path compared by the guard: lexically cleaned, and canonical when it exists.
fn forms(path: &Path) -> Vec<PathBuf> {
    let lexical = lexical(path);
    let mut out = vec![lexical.clone()];
    if let Ok(canonical) = path.canonicalize()
        && canonical != lexical
    {
        out.push(canonical);
    }
    out
}

/// Removes `.` components, resolves `..` lexically and drops trailing separators.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Why a doomed directory must stay, in the order the reasons are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Keep {
    /// An entry that stays uses it.
    Used,
    /// An entry that stays lives inside it.
    Inside,
    /// It is, contains or lies inside a custom installation directory.
    Custom,
    /// It contains `$TentacleHome` or the journal.
    Infrastructure,
}

impl Keep {
    fn reason(self) -> &'static str {
        match self {
            Keep::Used => "a deployment that is kept uses it",
            Keep::Inside => "a deployment that is kept lives inside it",
            Keep::Custom => "it is, contains or lies inside a custom installation directory",
            Keep::Infrastructure => "it contains TentacleHome or the deployment journal",
        }
    }
}

/// Everything a deleted directory must not touch, worked out for the doomed directories
/// only: for each of their forms (lexical, canonical), the strongest reason to keep it,
/// and whether a release needs it. Paths are compared as strings (journal paths are text).
#[derive(Debug, Default)]
struct Guard {
    keep: foldhash::HashMap<String, Keep>,
    releases: foldhash::HashSet<String>,
    /// The forms of each doomed directory, worked out once (they cost a `canonicalize`).
    forms: foldhash::HashMap<PathBuf, Vec<PathBuf>>,
}

/// `path` as text, for the guard's lookups.
fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

impl Guard {
    /// Whether `dir` is, or contains, where a current link points or the release its
    /// rollback would restore: then its entry stays in the journal too.
    fn is_release(&self, dir: &Path) -> bool {
        self.forms_of(dir).iter().any(|c| self.releases.contains(&text(c)))
    }

    fn forms_of(&self, dir: &Path) -> std::borrow::Cow<'_, [PathBuf]> {
        match self.forms.get(dir) {
            Some(known) => std::borrow::Cow::Borrowed(known),
            None => std::borrow::Cow::Owned(forms(dir)),
        }
    }

    /// Why `dir` must not be deleted, if it must not.
    fn reason(&self, dir: &Path) -> Option<String> {
        if !dir.is_absolute() {
            return Some("it is not an absolute path".to_string());
        }
        let candidates = self.forms_of(dir);
        if candidates.iter().any(|c| c.parent().is_none()) {
            return Some("it is a filesystem root".to_string());
        }
        candidates.iter().filter_map(|c| self.keep.get(&text(c))).min().map(|k| k.reason().to_string())
    }
}

/// Whether `path` is already what [`lexical`] makes of an absolute path: no `.` or `..`
/// components, no doubled or trailing separators. Nearly every recorded path is, and then
/// its ancestors are its prefixes up to each `/`.
fn is_clean_absolute(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    // Every component between two separators must be neither empty, `.` nor `..`.
    let Some(rest) = path.as_bytes().strip_prefix(b"/") else { return false };
    rest.split(|&b| b == b'/').all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// A clean absolute path and its ancestors, longest first: `/a/b`, `/a`, `/`.
fn ancestors_of(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = match memchr::memrchr(b'/', current.as_bytes()) {
            Some(0) if current.len() > 1 => Some("/"),
            Some(0) | None => None,
            Some(at) => Some(&current[..at]),
        };
        Some(current)
    })
}

/// Builds a [`Guard`] from one pass over every entry of the journal: each entry's
/// directories are looked up, with their ancestors, among the doomed directories' forms,
/// so the pass costs the depth of the paths per entry, not the number of doomed entries.
struct GuardBuilder<'d> {
    /// The doomed entries' ids.
    doomed_ids: foldhash::HashSet<&'d str>,
    /// Every form of every doomed directory.
    targets: foldhash::HashSet<String>,
    guard: Guard,
    /// Every custom installation directory seen (its forms), to find doomed directories
    /// inside one.
    customs: foldhash::HashSet<String>,
    /// The entries with a current link (a release), for [`protected_directories`].
    ///
    /// [`protected_directories`]: crate::conventions::release::protected_directories
    linked: Vec<JournalEntry>,
    /// Canonical forms of directories, so each distinct parent is resolved once.
    canonical: foldhash::HashMap<String, Option<String>>,
    infrastructure: Vec<PathBuf>,
}

impl<'d> GuardBuilder<'d> {
    fn new(doomed: &[&'d JournalEntry], journal: &Path, tentacle_home: Option<&Path>) -> Self {
        let mut targets = foldhash::HashSet::default();
        let mut guard = Guard::default();
        for entry in doomed {
            if let Some(dir) = entry.extracted_to.as_deref().filter(|d| !d.trim().is_empty()) {
                let dir_forms = forms(Path::new(dir));
                targets.extend(dir_forms.iter().map(|f| text(f)));
                guard.forms.insert(PathBuf::from(dir), dir_forms);
            }
        }
        let mut infrastructure = Vec::new();
        if let Some(home) = tentacle_home {
            infrastructure.extend(forms(home));
        }
        let journal_dir = journal.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        infrastructure.extend(forms(journal_dir));
        GuardBuilder {
            doomed_ids: doomed.iter().map(|e| e.id.as_str()).collect(),
            targets,
            guard,
            customs: foldhash::HashSet::default(),
            linked: Vec::new(),
            canonical: foldhash::HashMap::default(),
            infrastructure,
        }
    }

    /// The lexical form of `path` and, when different, its canonical one, as clean
    /// absolute paths (a relative path has none). Symbolic links are resolved in the
    /// directories above it (once per distinct parent) but not in its own last component,
    /// which is what deploy-package always creates as a directory.
    fn forms(&mut self, path: &str) -> Vec<String> {
        let lexical = if is_clean_absolute(path) { path.to_string() } else { text(&lexical(Path::new(path))) };
        if !is_clean_absolute(&lexical) {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(2);
        if let Some(at) = lexical.rfind('/').filter(|&at| at > 0) {
            let (parent, name) = (&lexical[..at], &lexical[at..]);
            let canonical = match self.canonical.get(parent) {
                Some(known) => known.as_deref(),
                None => {
                    let resolved = Path::new(parent).canonicalize().ok().map(|p| text(&p));
                    self.canonical.entry(parent.to_string()).or_insert(resolved).as_deref()
                }
            };
            if let Some(canonical) = canonical.filter(|c| *c != parent) {
                out.push(format!("{canonical}{name}"));
            }
        }
        out.insert(0, lexical);
        out
    }

    /// Marks `reason` on every target that is `path` or an ancestor of it (`inside` for a
    /// proper ancestor).
    fn mark_ancestors(&mut self, path: &str, at: Keep, inside: Keep) {
        for (depth, ancestor) in ancestors_of(path).enumerate() {
            if self.targets.contains(ancestor) {
                let reason = if depth == 0 { at } else { inside };
                let slot = self.guard.keep.entry(ancestor.to_string()).or_insert(reason);
                *slot = (*slot).min(reason);
            }
        }
    }

    #[cfg(test)]
    fn see(&mut self, entry: JournalEntry) {
        let dirs = super::xml::Dirs {
            id: entry.id.clone(),
            extracted_to: entry.extracted_to.clone(),
            custom_installation_directory: entry.custom_installation_directory.clone(),
        };
        let linked = entry.current_link.is_some().then_some(entry);
        self.see_dirs(dirs, linked);
    }

    /// Takes one entry of the journal into account: its directories, and the whole entry
    /// when it has a current link.
    fn see_dirs(&mut self, entry: super::xml::Dirs, linked: Option<JournalEntry>) {
        let own = entry.extracted_to.as_deref().filter(|d| !d.trim().is_empty()).map(|d| self.forms(d));
        if !self.doomed_ids.contains(entry.id.as_str())
            && let Some(own) = &own
        {
            for form in own {
                self.mark_ancestors(form, Keep::Used, Keep::Inside);
            }
        }
        // deploy-package records CustomInstallationDirectory = ExtractedTo when no custom
        // directory is configured (as the reference does): that is no custom directory.
        if let Some(dir) = entry.custom_installation_directory.as_deref().filter(|d| !d.trim().is_empty()) {
            let custom = self.forms(dir);
            if !custom.iter().any(|f| own.as_ref().is_some_and(|own| own.contains(f))) {
                for form in custom {
                    self.mark_ancestors(&form, Keep::Custom, Keep::Custom);
                    self.customs.insert(form);
                }
            }
        }
        self.linked.extend(linked);
    }

    fn finish(mut self) -> Guard {
        // Doomed directories inside a custom installation directory.
        let targets: Vec<String> = self.targets.iter().cloned().collect();
        for target in &targets {
            if ancestors_of(target).any(|a| self.customs.contains(a)) {
                let slot = self.guard.keep.entry(target.clone()).or_insert(Keep::Custom);
                *slot = (*slot).min(Keep::Custom);
            }
        }
        for dir in std::mem::take(&mut self.infrastructure) {
            self.mark_ancestors(&text(&dir), Keep::Infrastructure, Keep::Infrastructure);
        }
        for dir in crate::conventions::release::protected_directories(&self.linked) {
            for form in forms(&dir) {
                for ancestor in ancestors_of(&text(&form)) {
                    if self.targets.contains(ancestor) {
                        self.guard.releases.insert(ancestor.to_string());
                    }
                }
            }
        }
        self.guard
    }
}

/// Deletes one extraction directory; returns whether its entry must stay in the journal
/// (the directory could not be deleted).
fn delete_extraction_directory(
    dir: &Path,
    guard: &Guard,
    dry_run: bool,
    log: &Log,
    summary: &mut CleanSummary,
) -> bool {
    if dir.is_absolute() && guard.is_release(dir) {
        log.verbose(format!(
            "Not removing directory '{}' nor its journal entry because a current link points at it or it is the rollback target",
            dir.display()
        ));
        summary.kept_directories.push(dir.to_path_buf());
        return true;
    }
    if let Some(reason) = guard.reason(dir) {
        log.verbose(format!("Not removing directory '{}' because {reason}", dir.display()));
        summary.kept_directories.push(dir.to_path_buf());
        return false;
    }
    match crate::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        // Missing (already deleted, perhaps by an interrupted run): only the entry goes.
        // Not a directory: never ours to delete.
        _ => return false,
    }
    if dry_run {
        log.info(format!("Would remove directory '{}'", dir.display()));
        summary.removed_directories.push(dir.to_path_buf());
        return false;
    }
    log.info(format!("Removing directory '{}'", dir.display()));
    match remove_directory(dir) {
        Ok(()) => {
            summary.removed_directories.push(dir.to_path_buf());
            false
        }
        Err(e) => {
            log.verbose(format!(
                "Could not delete directory '{}' because some files could not be deleted: {e}",
                dir.display()
            ));
            summary.failed_directories.push(dir.to_path_buf());
            true
        }
    }
}

/// Renames `dir` to `.deleting-<name>-<random>` beside it, then deletes that. When the rename
/// is impossible the directory is deleted in place.
fn remove_directory(dir: &Path) -> Result<(), crate::fs::IoError> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return crate::fs::remove_dir_all(dir);
    };
    let suffix: u32 = rand::random();
    let aside = parent.join(format!("{DELETING_PREFIX}{}-{suffix:08x}", name.to_string_lossy()));
    match crate::fs::rename(dir, &aside) {
        Ok(()) => {
            // Make the rename durable before the journal forgets the entry.
            crate::fs::sync_path(parent)?;
            crate::fs::remove_dir_all(&aside)
        }
        Err(_) => crate::fs::remove_dir_all(dir),
    }
}

/// Deletes `.deleting-*` directories left in `parents` (where this set's extraction
/// directories live) by an interrupted run.
fn remove_leftovers(parents: &[PathBuf], dry_run: bool, log: &Log, summary: &mut CleanSummary) {
    for parent in parents {
        let Ok(read_dir) = crate::fs::read_dir(parent) else { continue };
        for item in read_dir.flatten() {
            let is_leftover = item.file_name().to_string_lossy().starts_with(DELETING_PREFIX)
                && item.file_type().is_ok_and(|t| t.is_dir());
            if !is_leftover {
                continue;
            }
            let path = item.path();
            if dry_run {
                log.info(format!("Would remove '{}', left by an interrupted clean", path.display()));
                summary.removed_leftovers.push(path);
                continue;
            }
            log.verbose(format!("Removing '{}', left by an interrupted clean", path.display()));
            match crate::fs::remove_dir_all(&path) {
                Ok(()) => summary.removed_leftovers.push(path),
                Err(e) => log.verbose(format!("Could not delete '{}': {e}", path.display())),
            }
        }
    }
}

/// Deletes `*.downloading` files (partial package downloads) modified more than a day
/// before `now`, anywhere under `files`.
fn remove_stale_downloads(files: &Path, now: DateTime<Utc>, dry_run: bool, log: &Log, summary: &mut CleanSummary) {
    if !files.is_dir() {
        return;
    }
    let cutoff = now - Duration::days(1);
    for item in walkdir::WalkDir::new(files).follow_links(false).into_iter().flatten() {
        if !item.file_type().is_file() || !item.file_name().to_string_lossy().ends_with(".downloading") {
            continue;
        }
        let Some(modified) = item.metadata().ok().and_then(|m| m.modified().ok()) else { continue };
        if DateTime::<Utc>::from(modified) >= cutoff {
            continue;
        }
        let path = item.into_path();
        if dry_run {
            log.info(format!("Would remove the stale package download '{}'", path.display()));
            summary.removed_downloads.push(path);
            continue;
        }
        log.verbose(format!("Removing the stale package download '{}'", path.display()));
        match crate::fs::remove_file(&path) {
            Ok(()) => summary.removed_downloads.push(path),
            Err(e) => log.verbose(format!("Could not delete '{}': {e}", path.display())),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    /// (days ago, successful) → entry.
    fn entries(spec: &[(Option<i64>, bool)]) -> Vec<JournalEntry> {
        spec.iter()
            .enumerate()
            .map(|(i, (days_ago, ok))| JournalEntry {
                id: format!("e{i}"),
                installed_on: days_ago.map(|d| now() - Duration::days(d)),
                was_successful: *ok,
                ..JournalEntry::default()
            })
            .collect()
    }

    #[test]
    fn selection_table() {
        use RetentionPolicy::{Days, Releases};
        let t = true;
        let f = false;
        // (entries, policy, expected deleted indexes, expected preserved indexes)
        #[allow(clippy::type_complexity)]
        let cases: Vec<(Vec<(Option<i64>, bool)>, RetentionPolicy, Vec<usize>, Vec<usize>)> = vec![
            // --days: older than the cutoff goes, newer is preserved, no time stays unpreserved.
            (
                vec![(Some(10), t), (Some(5), t), (Some(4), f), (Some(1), t), (Some(0), t), (None, t)],
                Days(3),
                vec![0, 1, 2],
                vec![3, 4],
            ),
            // Exactly at the cutoff is not "before" it.
            (vec![(Some(3), t), (Some(1), t), (Some(0), t)], Days(3), vec![], vec![0, 1, 2]),
            // Everything is old (the clock jumped forward): the two newest successful stay.
            (vec![(Some(40), t), (Some(30), t), (Some(20), f), (Some(10), t)], Days(5), vec![0, 2], vec![3, 1]),
            // A failed newest entry is not the current release.
            (vec![(Some(40), t), (Some(30), f)], Days(5), vec![1], vec![0]),
            // --releases: keep this deployment and the previous N successful ones.
            (
                vec![(Some(6), t), (Some(5), t), (Some(4), f), (Some(3), t), (Some(2), t), (Some(1), f)],
                Releases(2),
                vec![0, 2, 5],
                vec![4, 3, 1],
            ),
            // At most N successful: nothing goes, failures included.
            (vec![(Some(3), t), (Some(2), f), (Some(1), t)], Releases(2), vec![], vec![]),
            // N + 1 successful: only failures go.
            (vec![(Some(4), t), (Some(3), f), (Some(2), t), (Some(1), t)], Releases(2), vec![1], vec![3, 2, 0]),
            // Entries without a time sort last (oldest).
            (vec![(None, t), (Some(2), t), (Some(1), t)], Releases(1), vec![0], vec![2, 1]),
            // Same second: the one written later is the more recent.
            (vec![(Some(1), t), (Some(1), t), (Some(1), t)], Releases(1), vec![0], vec![2, 1]),
            // Zero keeps everything.
            (vec![(Some(100), t)], Days(0), vec![], vec![]),
            (vec![(Some(100), t), (Some(1), t)], Releases(0), vec![], vec![]),
        ];
        for (n, (spec, policy, delete, preserved)) in cases.into_iter().enumerate() {
            let sel = select(&entries(&spec), policy, now());
            assert_eq!(sel.delete, delete, "case {n}: deleted");
            assert_eq!(sel.preserved, preserved, "case {n}: preserved");
        }
    }

    #[test]
    fn clean_uses_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let journal = DeploymentJournal::at(dir.path().join("DeploymentJournal.xml"));
        let mk = |id: &str, days_ago: i64| {
            let path = dir.path().join("apps").join(id);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join("f"), id).unwrap();
            JournalEntry {
                id: id.into(),
                retention_policy_set: "S".into(),
                installed_on: Some(now() - Duration::days(days_ago)),
                was_successful: true,
                extracted_to: Some(path.to_string_lossy().into_owned()),
                ..JournalEntry::default()
            }
        };
        for e in [mk("a", 9), mk("b", 6), mk("c", 3), mk("d", 0)] {
            journal.add(&e).unwrap();
        }
        let (log, out, _) = Log::capture();
        // Seen from 2 days later, a 5-day policy removes a and b only; a dry run changes nothing.
        let later = now() + Duration::days(2);
        let dry = clean(&journal, "S", RetentionPolicy::Days(5), true, later, None, &log).unwrap();
        assert_eq!(dry.removed_entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(dir.path().join("apps/a/f").exists());
        assert_eq!(journal.entries().unwrap().len(), 4);
        assert!(out.contents().contains("Would remove directory"));
        let done = clean(&journal, "S", RetentionPolicy::Days(5), false, later, None, &log).unwrap();
        assert_eq!(done.removed_directories.len(), 2);
        assert!(!dir.path().join("apps/a").exists() && !dir.path().join("apps/b").exists());
        assert!(dir.path().join("apps/c/f").exists() && dir.path().join("apps/d/f").exists());
        assert_eq!(journal.entries().unwrap().iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["c", "d"]);
        // A year later everything is old, but the current and previous releases stay.
        let much_later = now() + Duration::days(365);
        let done = clean(&journal, "S", RetentionPolicy::Days(5), false, much_later, None, &log).unwrap();
        assert!(done.removed_entries.is_empty());
        assert_eq!(journal.entries().unwrap().len(), 2);
    }

    #[test]
    fn dry_run_leaves_a_corrupt_journal_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("DeploymentJournal.xml");
        std::fs::write(&path, "<Deployments><Depl").unwrap();
        let (log, out, _) = Log::capture();
        let journal = DeploymentJournal::at(&path);
        let summary = clean(&journal, "S", RetentionPolicy::Days(1), true, now(), None, &log).unwrap();
        assert!(summary.removed_entries.is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "<Deployments><Depl");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing moved aside, no lock file");
        assert!(out.contents().contains("a real run would move it aside"));
    }

    #[test]
    fn ancestors_of_clean_paths() {
        assert_eq!(ancestors_of("/a/b/c").collect::<Vec<_>>(), ["/a/b/c", "/a/b", "/a", "/"]);
        assert_eq!(ancestors_of("/").collect::<Vec<_>>(), ["/"]);
        let cases = [
            ("/a/b", true),
            ("/", true),
            ("/a/", false),
            ("a/b", false),
            ("/a//b", false),
            ("/a/./b", false),
            ("/a/..", false),
        ];
        for (path, clean) in cases {
            assert_eq!(is_clean_absolute(path), clean, "{path}");
        }
    }

    #[test]
    fn lexical_cleanup() {
        assert_eq!(lexical(Path::new("/a/./b/../c/")), PathBuf::from("/a/c"));
        assert_eq!(lexical(Path::new("/a/b//")), PathBuf::from("/a/b"));
    }

    /// What the guard of a clean that removes `doomed` from `all` says about each of
    /// `probes`, directories of further entries removed by the same clean.
    fn reasons(all: &[JournalEntry], doomed: &[&str], probes: &[&str], home: Option<&Path>) -> Vec<Option<String>> {
        let mut all = all.to_vec();
        for (i, probe) in probes.iter().enumerate() {
            all.push(JournalEntry {
                id: format!("probe-{i}"),
                extracted_to: Some(probe.to_string()),
                ..Default::default()
            });
        }
        let doomed: Vec<&JournalEntry> =
            all.iter().filter(|e| doomed.contains(&e.id.as_str()) || e.id.starts_with("probe-")).collect();
        let mut builder = GuardBuilder::new(&doomed, Path::new("/home/t/DeploymentJournal.xml"), home);
        for e in &all {
            builder.see(e.clone());
        }
        let guard = builder.finish();
        probes.iter().map(|p| guard.reason(Path::new(p))).collect()
    }

    #[test]
    fn guard_reasons() {
        let all = vec![
            JournalEntry { id: "kept".into(), extracted_to: Some("/apps/A/2.0.0".into()), ..Default::default() },
            JournalEntry {
                id: "old".into(),
                extracted_to: Some("/apps/A/1.0.0".into()),
                custom_installation_directory: Some("/var/www/a".into()),
                ..Default::default()
            },
        ];
        let cases: &[(&str, Option<&str>)] = &[
            ("/apps/A/1.0.0", None),
            ("/apps/A/2.0.0/", Some("kept uses it")),
            ("/apps/A", Some("lives inside it")),
            ("/var/www/a", Some("custom installation")),
            ("/var/www", Some("custom installation")),
            ("/var/www/a/bin", Some("custom installation")),
            ("/home", Some("TentacleHome")),
            ("relative/dir", Some("absolute")),
            ("/", Some("root")),
        ];
        let probes: Vec<&str> = cases.iter().map(|(p, _)| *p).collect();
        let got = reasons(&all, &["old"], &probes, Some(Path::new("/home/t")));
        for ((probe, expected), got) in cases.iter().zip(got) {
            match (expected, got) {
                (None, None) => {}
                (Some(needle), Some(reason)) => assert!(reason.contains(needle), "{probe}: {reason}"),
                (expected, got) => panic!("{probe}: expected {expected:?}, got {got:?}"),
            }
        }
        // A "custom" directory equal to the entry's own extraction directory (what
        // deploy-package records when none is configured) protects nothing.
        let all = vec![JournalEntry {
            id: "plain".into(),
            extracted_to: Some("/apps/B/1.0.0".into()),
            custom_installation_directory: Some("/apps/B/1.0.0/".into()),
            ..Default::default()
        }];
        assert_eq!(reasons(&all, &["plain"], &["/apps/B/1.0.0"], None), [None]);
    }
}
