//! The staging directory a deployment extracts its package into:
//! `<root>/<tenant>/<environment>/<escaped id>/<normalised version>`, with `_1`, `_2`, ...
//! when that exists, where `<root>` is `Octopus.Tentacle.Agent.ApplicationDirectoryPath`,
//! else `$SystemDrive/Applications`, else `$HOME/Applications`.
//!
//! The name is chosen under a cross-process `flock` (`<root>/.calamari-extraction.lock`,
//! the reference's `Octopus.Calamari.ExtractionDirectory` mutex). Under the lock the
//! extraction's partial directory is created, which reserves the name (see
//! [`super::partial`]); the lock is then released and the (long) extraction runs in
//! parallel with others. A name counts as taken when it exists or a live partial directory
//! reserves it, so eight concurrent deployments of one package get eight directories, and
//! each still appears atomically.

use std::path::{Path, PathBuf};

use crate::Log;
use crate::lock::NamedLock;
use crate::variables::{VariableDictionary, names};

use super::budget::{FREE_DISK_SPACE_OVERRIDE, SKIP_FREE_DISK_SPACE_CHECK};
use super::name::{PackageIdentity, escape};
use super::{Error, ExtractOptions, Format, partial};

/// Free space required on the staging root, unless overridden (reference: 500 MB).
const REQUIRED_FREE_MEGABYTES: u64 = 500;

/// A package extracted into its staging directory.
#[derive(Debug, Clone)]
pub struct StagedPackage {
    /// The staging directory (exists, complete).
    pub directory: PathBuf,
    /// The package's id and version.
    pub identity: PackageIdentity,
    /// Files extracted.
    pub file_count: u64,
}

fn var(variables: &VariableDictionary, name: &str) -> Result<Option<String>, Error> {
    let value = variables.get(name).map_err(|e| Error::variable(name, e))?;
    Ok(value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()))
}

/// The staging root: the variable, `$SystemDrive/Applications` or `$HOME/Applications`.
///
/// # Errors
/// When none of them is set.
pub(crate) fn application_root(variables: &VariableDictionary) -> Result<PathBuf, Error> {
    if let Some(path) = var(variables, names::APPLICATION_DIRECTORY_PATH)? {
        return Ok(PathBuf::from(path));
    }
    for env in [crate::env_vars::SYSTEM_DRIVE, crate::env_vars::HOME] {
        // The agent's environment, as the variables carry it (`env:HOME`).
        if let Some(base) = variables.get_raw(&format!("env:{env}")).filter(|v| !v.trim().is_empty()) {
            return Ok(PathBuf::from(base).join("Applications"));
        }
    }
    Err(Error::NoApplicationDirectory { variable: names::APPLICATION_DIRECTORY_PATH })
}

/// A tenant or environment name as one path segment: `/` and NUL removed (the invalid
/// file-name characters on Unix), and never `.` or `..`.
fn segment(name: &str) -> Option<String> {
    let cleaned: String = name.chars().filter(|c| *c != '/' && *c != '\0').collect();
    if cleaned.is_empty() {
        None
    } else if cleaned.chars().all(|c| c == '.') {
        Some(cleaned.replace('.', "_"))
    } else {
        Some(cleaned)
    }
}

/// `<root>/<tenant>/<environment>/<escaped id>`: the parent of the version directories.
///
/// # Errors
/// When the root cannot be determined or a variable fails to evaluate.
pub(crate) fn package_parent(variables: &VariableDictionary, id: &str) -> Result<(PathBuf, PathBuf), Error> {
    let root = application_root(variables)?;
    let mut parent = root.clone();
    for name in [names::TENANT_NAME, names::ENVIRONMENT_NAME] {
        if let Some(seg) = var(variables, name)?.as_deref().and_then(segment) {
            parent.push(seg);
        }
    }
    let id = escape(id);
    parent.push(segment(&id).unwrap_or_else(|| "_".to_string()));
    Ok((root, parent))
}

/// Checks that the staging root has the required free space; returns that requirement in
/// megabytes (`None` when the check is skipped), which the extraction keeps checking
/// against the sizes the archive declares.
fn check_free_space(root: &Path, variables: &VariableDictionary) -> Result<Option<u64>, Error> {
    if variables.get_flag(SKIP_FREE_DISK_SPACE_CHECK, false).unwrap_or(false) {
        return Ok(None);
    }
    let required = super::whole_number(variables, FREE_DISK_SPACE_OVERRIDE)?.unwrap_or(REQUIRED_FREE_MEGABYTES);
    let Ok(stat) = rustix::fs::statvfs(root) else { return Ok(None) };
    let free = stat.f_bavail.saturating_mul(stat.f_frsize) / (1024 * 1024);
    if free < required {
        let host =
            crate::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        return Err(Error::NotEnoughFreeSpace { path: root.to_path_buf(), host, required, available: free });
    }
    Ok(Some(required))
}

/// The directory [`extract_to_staging`] would choose for `identity` now, without creating
/// anything (`--plan`).
pub(crate) fn planned_directory(identity: &PackageIdentity, variables: &VariableDictionary) -> Result<PathBuf, Error> {
    let (_, parent) = package_parent(variables, &identity.id)?;
    let version = identity.version.to_string();
    let mut name = version.clone();
    let mut i = 0;
    while parent.join(&name).symlink_metadata().is_ok() || partial::is_reserved(&parent, &name) {
        i += 1;
        name = format!("{version}_{i}");
    }
    Ok(parent.join(name))
}

/// Chooses the staging directory under the lock and extracts `package` there.
///
/// Logs "Extracting package to: X" and "Extracted N file(s)" (verbose), as the reference.
///
/// # Errors
/// Package name, format, safety or I/O errors; the staging directory then does not exist.
pub fn extract_to_staging(package: &Path, variables: &VariableDictionary, log: &Log) -> Result<StagedPackage, Error> {
    extract_to_staging_with(package, variables, log, &mut |_| Ok::<(), Error>(()))
}

/// [`extract_to_staging`], calling `on_reserved` with the staging directory once its name
/// is reserved and before anything is extracted into place: deploy-package records the
/// directory in the journal there, so a kill at any later moment leaves no directory that
/// retention cannot find. An error from `on_reserved` stops the extraction.
///
/// # Errors
/// As [`extract_to_staging`], or `on_reserved`'s error.
pub(crate) fn extract_to_staging_with<E: From<Error>>(
    package: &Path,
    variables: &VariableDictionary,
    log: &Log,
    on_reserved: &mut dyn FnMut(&Path) -> Result<(), E>,
) -> Result<StagedPackage, E> {
    let identity = PackageIdentity::from_file(package)?;
    let format = Format::detect(package)?;
    // Dropped after the partial directory, so a Ctrl-C cannot interrupt its removal.
    let _cancellation = partial::Cancellation::install();
    let (options, directory, reserved) = reserve(&identity, variables)?;
    on_reserved(&directory)?;
    log.verbose(format!("Extracting package to: {}", directory.display()));
    let summary = super::extract_into(package, format, reserved.path(), &options, log)?;
    reserved.commit(&directory)?;
    log.verbose(format!("Extracted {}", crate::log::count(summary.file_count, "file", "files")));
    Ok(StagedPackage { directory, identity, file_count: summary.file_count })
}

/// Checks the options and free space, then chooses and reserves the staging directory
/// under the extraction lock.
fn reserve(
    identity: &PackageIdentity,
    variables: &VariableDictionary,
) -> Result<(ExtractOptions, PathBuf, partial::Partial), Error> {
    let mut options = ExtractOptions::from_variables(variables)?;
    let (root, parent) = package_parent(variables, &identity.id)?;
    crate::fs::create_dir_all(&parent)?;
    options.min_free_bytes = check_free_space(&root, variables)?.map(|mb| mb.saturating_mul(1024 * 1024));
    let version = identity.version.to_string();
    let _lock = NamedLock::acquire(root.join(".calamari-extraction.lock"))?;
    partial::remove_stale(&parent);
    let mut name = version.clone();
    let mut i = 0;
    while parent.join(&name).symlink_metadata().is_ok() || partial::is_reserved(&parent, &name) {
        i += 1;
        name = format!("{version}_{i}");
    }
    let reserved = partial::create_in(&parent, &name)?;
    Ok((options, parent.join(&name), reserved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_climb() {
        assert_eq!(segment("Production"), Some("Production".to_string()));
        assert_eq!(segment("a/b"), Some("ab".to_string()));
        assert_eq!(segment(".."), Some("__".to_string()));
        assert_eq!(segment("/"), None);
    }

    #[test]
    fn parent_has_tenant_then_environment_then_escaped_id() {
        let mut v = VariableDictionary::new();
        v.set(names::APPLICATION_DIRECTORY_PATH, Some("/apps".to_string()));
        v.set(names::ENVIRONMENT_NAME, Some("Prod".to_string()));
        v.set(names::TENANT_NAME, Some("Acme/Corp".to_string()));
        let (root, parent) = package_parent(&v, "My:Pkg").unwrap();
        assert_eq!(root, PathBuf::from("/apps"));
        assert_eq!(parent, PathBuf::from("/apps/AcmeCorp/Prod/My%3APkg"));
    }

    #[test]
    fn a_recursive_root_keeps_its_cause_and_exits_101() {
        let mut v = VariableDictionary::new();
        v.set(names::APPLICATION_DIRECTORY_PATH, Some("#{Loop}".to_string()));
        v.set("Loop", Some("#{Loop}".to_string()));
        let e = application_root(&v).unwrap_err();
        assert!(matches!(&e, Error::Variable { name, .. } if name == names::APPLICATION_DIRECTORY_PATH), "{e:?}");
        assert_eq!(crate::error::code_of(&e), 101, "{e}");
        assert!(e.to_string().starts_with(&format!("{}: ", names::APPLICATION_DIRECTORY_PATH)), "{e}");
    }

    #[test]
    fn free_space_override_must_be_a_whole_number() {
        let mut v = VariableDictionary::new();
        v.set(FREE_DISK_SPACE_OVERRIDE, Some(" lots ".to_string()));
        let e = check_free_space(Path::new("/"), &v).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("The variable {FREE_DISK_SPACE_OVERRIDE} must be a whole number, found 'lots'")
        );
        assert_eq!(crate::error::code_of(&e), 1);
        v.set(FREE_DISK_SPACE_OVERRIDE, Some(u64::MAX.to_string()));
        match check_free_space(Path::new("/"), &v) {
            Err(Error::NotEnoughFreeSpace { required, .. }) => assert_eq!(required, u64::MAX),
            other => panic!("{other:?}"),
        }
    }
}
