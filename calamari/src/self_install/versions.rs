//! Reading the installs of a home: check one, list them in version order, verify one, prune.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use super::Error;
use super::layout::{self, LOCK_FILE, MANIFEST_FILE, OLD_PREFIX, SUCCESS_FILE, calamari_dir, temp_name};
use super::manifest::Manifest;
use super::ops::{Ops, RealOps, hash_reader};
use super::stager::{InstallOptions, acquire_lock, remove_leftovers};
use crate::fs::{self, IoContext};
use crate::log::Log;

/// The state of one version directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallState {
    /// `Success.txt` exists: the install is complete.
    Complete,
    /// The directory exists without `Success.txt` (an interrupted install).
    Incomplete,
    /// No directory.
    Missing,
}

pub(crate) fn state_of(dir: &Path) -> InstallState {
    if dir.join(SUCCESS_FILE).is_file() {
        InstallState::Complete
    } else if dir.is_dir() {
        InstallState::Incomplete
    } else {
        InstallState::Missing
    }
}

/// The state of `home/Calamari/<version>`; a version that cannot be a directory name is
/// [`InstallState::Missing`].
pub fn check_install(home: &Path, version: &str) -> InstallState {
    if layout::validate_version(version).is_err() {
        return InstallState::Missing;
    }
    state_of(&layout::version_dir(home, version))
}

/// True unless `home/Calamari/<version>/Success.txt` exists: the agent's test for pushing
/// a Calamari.
pub fn needs_update(home: &Path, version: &str) -> bool {
    check_install(home, version) != InstallState::Complete
}

/// Re-hashes every file of a complete install against its manifest.
///
/// # Errors
/// [`Error::Damaged`] naming the file, or [`Error::NotInstalled`] when the version is not complete.
pub fn verify_install(home: &Path, version: &str) -> Result<Manifest, Error> {
    layout::validate_version(version)?;
    let dir = layout::version_dir(home, version);
    if state_of(&dir) != InstallState::Complete {
        return Err(Error::NotInstalled { version: version.to_string(), dir });
    }
    let damaged = |problem: String| Error::Damaged { dir: dir.clone(), problem };
    let manifest = Manifest::parse(&fs::read(dir.join(MANIFEST_FILE))?).map_err(|e| damaged(e.to_string()))?;
    if manifest.version != version {
        return Err(damaged(format!("{MANIFEST_FILE} names version {}", manifest.version)));
    }
    for file in &manifest.files {
        let path = dir.join(&file.path);
        let (size, sha256) = hash_reader(&mut fs::open(&path)?, &path)?;
        if size != file.size || sha256 != file.sha256 {
            return Err(damaged(format!(
                "'{}' has {size} bytes and SHA-256 {sha256}, {MANIFEST_FILE} says {} bytes and {}",
                file.path, file.size, file.sha256
            )));
        }
    }
    Ok(manifest)
}

/// A complete install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledVersion {
    /// The directory name.
    pub version: String,
    /// `home/Calamari/<version>`.
    pub dir: PathBuf,
}

/// The package version a directory name stands for, if it is one. Build metadata is cut
/// off first: it never affects the order, and any `+suffix` a directory name may hold
/// (even one that is not a valid metadata label) keeps the name a version.
fn version_of(name: &str) -> Option<crate::version::Version> {
    crate::version::Version::parse(name.split('+').next().unwrap_or(name))
}

/// Orders version names newest first: names that are package versions (1-4 numeric
/// components, optional `-prerelease`, `+build` ignored) by [`crate::version::Version`]'s
/// order, equal versions by name; then any other names last, by name.
pub(crate) fn compare_versions(a: &str, b: &str) -> Ordering {
    match (version_of(a), version_of(b)) {
        (Some(va), Some(vb)) => vb.cmp(&va).then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// Every version directory under `home/Calamari` (names not starting with a dot), with its state.
fn version_dirs(home: &Path) -> Result<Vec<(String, PathBuf, InstallState)>, Error> {
    let root = calamari_dir(home);
    let entries = match fs::read_dir(&root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with('.') || !entry.file_type().at("read metadata of", &path)?.is_dir() {
            continue;
        }
        let state = state_of(&path);
        dirs.push((name, path, state));
    }
    dirs.sort_by(|a, b| compare_versions(&a.0, &b.0));
    Ok(dirs)
}

/// The complete installs of `home`, newest first ([`compare_versions`]).
///
/// # Errors
/// I/O errors naming the directory.
pub fn installed_versions(home: &Path) -> Result<Vec<InstalledVersion>, Error> {
    Ok(version_dirs(home)?
        .into_iter()
        .filter(|(_, _, state)| *state == InstallState::Complete)
        .map(|(version, dir, _)| InstalledVersion { version, dir })
        .collect())
}

/// What [`prune`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Complete installs kept, newest first.
    pub kept: Vec<String>,
    /// Directories removed (versions, incomplete installs, leftovers).
    pub removed: Vec<PathBuf>,
    /// A version kept only because the running Calamari lives in it.
    pub spared_running: Option<String>,
}

/// The version directory the running executable lives in, canonicalised. When a forced
/// reinstall replaced our own files, Linux reports the executable as `<path> (deleted)`:
/// the directory name still tells which version is running.
fn running_dir(home: &Path) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let exe = exe.canonicalize().ok().or_else(|| {
        let live = Path::new(exe.to_str()?.strip_suffix(" (deleted)")?);
        Some(live.parent()?.canonicalize().ok()?.join(live.file_name()?))
    })?;
    let root = calamari_dir(home).canonicalize().ok()?;
    let rel = exe.strip_prefix(&root).ok()?;
    Some(root.join(rel.components().next()?))
}

/// The version directories of `home` that a running process's executable lives in (from
/// `/proc/<pid>/exe`; processes we may not inspect are not seen), canonicalised, with the
/// process ids. A binary replaced under a running process is reported by Linux as
/// `<path> (deleted)`: the directory name still tells which version it is.
fn dirs_in_use(home: &Path) -> Vec<(PathBuf, u32)> {
    let Ok(root) = calamari_dir(home).canonicalize() else { return Vec::new() };
    let Ok(entries) = crate::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(exe) = crate::fs::read_link(entry.path().join("exe")) else { continue };
        let exe = match exe.to_str().and_then(|e| e.strip_suffix(" (deleted)")) {
            Some(live) => PathBuf::from(live),
            None => exe,
        };
        if let Ok(rel) = exe.strip_prefix(&root)
            && let Some(first) = rel.components().next()
        {
            out.push((root.join(first), pid));
        }
    }
    out
}

/// What [`prune`] keeps besides the newest complete installs.
#[derive(Debug, Clone, Copy, Default)]
pub struct PruneOptions<'a> {
    /// How many complete installs to keep, newest first.
    pub keep: usize,
    /// A version to keep whatever its rank (the one just installed).
    pub spare: Option<&'a str>,
}

/// Deletes all but the newest `keep` complete installs, every incomplete install and every
/// leftover of an interrupted run, but never an install a running process's executable
/// lives in (this Calamari's or another's). Takes the install lock, so no install is under
/// way meanwhile. Each directory first disappears by one rename (to `.old-*`), so an
/// interrupted prune never leaves a half-deleted version directory.
///
/// # Errors
/// I/O errors naming the path, or [`Error::LockTimeout`].
pub fn prune(home: &Path, keep: usize, log: &Log) -> Result<PruneReport, Error> {
    prune_with(&mut RealOps, home, PruneOptions { keep, spare: None }, log)
}

/// [`prune`] with a version spared (see [`PruneOptions`]).
///
/// # Errors
/// As [`prune`].
pub fn prune_sparing(home: &Path, options: PruneOptions<'_>, log: &Log) -> Result<PruneReport, Error> {
    prune_with(&mut RealOps, home, options, log)
}

pub(crate) fn prune_with(
    ops: &mut dyn Ops,
    home: &Path,
    options: PruneOptions<'_>,
    log: &Log,
) -> Result<PruneReport, Error> {
    let root = calamari_dir(home);
    let mut report = PruneReport::default();
    if !root.is_dir() {
        log.verbose(format!("Nothing to prune: {} does not exist", root.display()));
        return Ok(report);
    }
    let _lock = acquire_lock(&root.join(LOCK_FILE), InstallOptions::default().lock_timeout, log)?;
    report.removed = remove_leftovers(ops, &root, log)?;
    let running = running_dir(home);
    let in_use = dirs_in_use(home);
    let mut complete_seen = 0usize;
    for (version, dir, state) in version_dirs(home)? {
        let spared = options.spare == Some(version.as_str());
        let keep_it = state == InstallState::Complete && (spared || complete_seen < options.keep);
        if state == InstallState::Complete && !spared {
            complete_seen += 1;
        }
        if keep_it {
            report.kept.push(version);
            continue;
        }
        let canonical = dir.canonicalize().ok();
        let is_running = running.is_some() && canonical == running;
        let user = in_use.iter().find(|(d, _)| Some(d) == canonical.as_ref()).map(|(_, pid)| *pid);
        if is_running || user.is_some() {
            let why = match (is_running, user) {
                (true, _) => "it is the one running".to_string(),
                (false, Some(pid)) => format!("process {pid} is running it"),
                (false, None) => unreachable!("checked above"),
            };
            log.info(format!("Keeping Calamari {version}: {why} ({})", dir.display()));
            if state == InstallState::Complete {
                report.kept.push(version.clone());
            }
            report.spared_running = Some(version);
            continue;
        }
        let what = if state == InstallState::Complete { "Removing Calamari" } else { "Removing incomplete install" };
        log.info(format!("{what} {version} ({})", dir.display()));
        let aside = root.join(temp_name(OLD_PREFIX, &version));
        ops.rename(&dir, &aside)?;
        ops.sync_dir(&root)?;
        ops.remove_dir_all(&aside)?;
        report.removed.push(dir);
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests {
    use super::*;

    #[test]
    fn versions_sort_newest_first_with_odd_names_last() {
        let mut names =
            vec!["1.10.0", "1.2.0", "zeta", "2.0.0-beta.2", "2.0.0", "1.2", "2.0.0-beta.10", "1.2.0.5", "alpha", "0.9"];
        names.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            names,
            ["2.0.0", "2.0.0-beta.10", "2.0.0-beta.2", "1.10.0", "1.2.0.5", "1.2", "1.2.0", "0.9", "alpha", "zeta"]
        );
    }

    #[test]
    fn version_order_is_the_package_order() {
        let table = [
            ("2.0.0-RC.1", "2.0.0-rc.2", Ordering::Greater),
            ("2.0.0-Beta", "2.0.0-alpha", Ordering::Less),
            ("1.0.0+build_1", "1.0.0+build_2", Ordering::Less),
            ("1.0.0+zz", "1.0.1", Ordering::Greater),
            ("1.0.0", "1.0.0-rc", Ordering::Less),
            ("1.0.0-rc", "nightly", Ordering::Less),
        ];
        for (a, b, want) in table {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
        }
    }

    fn fake(home: &Path, version: &str, complete: bool) {
        let dir = layout::version_dir(home, version);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("calamari"), version).unwrap();
        if complete {
            std::fs::write(dir.join(SUCCESS_FILE), "").unwrap();
        }
    }

    #[test]
    fn check_list_and_prune() {
        let home = tempfile::tempdir().unwrap();
        let home = home.path();
        assert_eq!(check_install(home, "1.0.0"), InstallState::Missing);
        assert!(installed_versions(home).unwrap().is_empty());
        for v in ["1.0.0", "3.0.0", "2.0.0", "10.0.0"] {
            fake(home, v, true);
        }
        fake(home, "11.0.0", false);
        std::fs::create_dir_all(calamari_dir(home).join(".tmp-11.0.0-dead")).unwrap();
        assert_eq!(check_install(home, "2.0.0"), InstallState::Complete);
        assert_eq!(check_install(home, "11.0.0"), InstallState::Incomplete);
        assert_eq!(check_install(home, "../x"), InstallState::Missing);
        assert!(needs_update(home, "11.0.0") && !needs_update(home, "10.0.0"));
        let listed: Vec<String> = installed_versions(home).unwrap().into_iter().map(|v| v.version).collect();
        assert_eq!(listed, ["10.0.0", "3.0.0", "2.0.0", "1.0.0"]);

        let (log, _, _) = Log::capture();
        let report = prune(home, 2, &log).unwrap();
        assert_eq!(report.kept, ["10.0.0", "3.0.0"]);
        assert_eq!(report.removed.len(), 4, "{report:?}");
        let mut left: Vec<String> = std::fs::read_dir(calamari_dir(home))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".install.lock", "10.0.0", "3.0.0"]);
    }

    #[test]
    fn verify_install_finds_a_damaged_file() {
        let home = tempfile::tempdir().unwrap();
        let (log, _, _) = Log::capture();
        let bin = tempfile::tempdir().unwrap();
        let exe = super::super::install::tests::fake_calamari(bin.path());
        super::super::install_executable(home.path(), &exe, &InstallOptions::default(), &log).unwrap();
        let dir = layout::version_dir(home.path(), crate::VERSION);
        std::fs::write(dir.join("calamari"), b"tampered").unwrap();
        let err = verify_install(home.path(), crate::VERSION).unwrap_err().to_string();
        assert!(err.contains("'calamari' has 8 bytes"), "{err}");
    }
}
