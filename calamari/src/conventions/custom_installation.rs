//! `CopyPackageToCustomInstallationDirectoryConvention` (the reference's convention of that name): copy the staged
//! package to `Octopus.Action.Package.CustomInstallationDirectory`, optionally purging it
//! first (keeping `...PurgeExclusions` globs), and switch the current directory there.

use std::path::{Path, PathBuf};

use super::{Deployment, Error};
use crate::Result;
use crate::fs::{IoContext as _, IoError};
use crate::glob::Glob;
use crate::variables::names;

const CUSTOM_DIRECTORY: &str = "Octopus.Action.Package.CustomInstallationDirectory";
const PURGE: &str = "Octopus.Action.Package.CustomInstallationDirectoryShouldBePurgedBeforeDeployment";
const PURGE_EXCLUSIONS: &str = "Octopus.Action.Package.CustomInstallationDirectoryPurgeExclusions";

pub(super) fn copy_to_custom_directory(d: &mut Deployment<'_>) -> Result<()> {
    let staging = d.current_directory.clone();
    let raw = d.variables.get_raw(CUSTOM_DIRECTORY).unwrap_or_default().to_string();
    if raw.trim().is_empty() {
        d.log.verbose(
            "The package has been installed to the staging directory; no custom installation directory is set.",
        );
        d.variables.set(CUSTOM_DIRECTORY, Some(staging.display().to_string()));
        return Ok(());
    }
    let evaluation = d.variables.evaluate(&raw)?;
    if let Some(error) = evaluation.error {
        return Err(Error::CustomDirectoryEvaluation { message: error.to_string() }.into());
    }
    let custom = PathBuf::from(evaluation.output.unwrap_or_default().trim());
    if !custom.is_absolute() {
        return Err(Error::CustomDirectoryRelative(custom).into());
    }
    if custom.starts_with(&staging) {
        return Err(Error::CustomDirectoryInsideStaging { custom, staging }.into());
    }
    crate::fs::create_dir_all(&custom)?;
    if d.variables.get_flag(PURGE, false)? {
        let exclusions = d
            .variables
            .get_paths(PURGE_EXCLUSIONS)?
            .iter()
            .map(|p| Glob::new(p).map_err(|e| Error::PurgeExclusion(e).into()))
            .collect::<Result<Vec<_>>>()?;
        d.log.info(format!("Purging the directory '{}'", custom.display()));
        purge(&custom, &custom, &exclusions)?;
    }
    d.log.info(format!("Copying package contents to '{}'", custom.display()));
    let copied = copy_tree(&staging, &custom).map_err(Error::CopyToCustomDirectory)?;
    d.log.info(format!("Copied {}", crate::log::count(copied, "file", "files")));
    d.current_directory = custom.clone();
    let dir = custom.display().to_string();
    d.variables.set(CUSTOM_DIRECTORY, Some(dir.clone()));
    d.set_output(names::INSTALLATION_DIRECTORY_PATH, &dir);
    d.set_output(names::PACKAGE_INSTALLATION_DIRECTORY_PATH, &dir);
    d.set_output("Package.CopiedFileCount", &copied.to_string());
    Ok(())
}

/// Deletes everything under `dir` except paths matching an exclusion (relative to `base`)
/// and the directories that lead to them.
fn purge(base: &Path, dir: &Path, exclusions: &[Glob]) -> Result<bool> {
    let mut kept_any = false;
    for entry in crate::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let relative = path.strip_prefix(base).unwrap_or(&path);
        if exclusions.iter().any(|g| g.is_match(relative)) {
            kept_any = true;
            continue;
        }
        let file_type = entry.file_type().at("read metadata of", &path)?;
        if file_type.is_dir() {
            if purge(base, &path, exclusions)? {
                kept_any = true;
            } else {
                crate::fs::remove_dir(&path)?;
            }
        } else {
            crate::fs::remove_file(&path)?;
        }
    }
    Ok(kept_any)
}

/// Copies a tree, overwriting files, keeping permissions and symbolic links; returns the
/// number of files copied.
fn copy_tree(from: &Path, to: &Path) -> std::result::Result<u64, IoError> {
    let mut count = 0;
    for entry in walkdir::WalkDir::new(from).follow_links(false).min_depth(1) {
        let entry = entry.map_err(std::io::Error::from).at("read", from)?;
        let relative = entry.path().strip_prefix(from).expect("walkdir yields paths under its root");
        let target = to.join(relative);
        let file_type = entry.file_type();
        if file_type.is_dir() {
            crate::fs::create_dir_all(&target)?;
        } else if file_type.is_symlink() {
            let link = crate::fs::read_link(entry.path())?;
            crate::fs::remove_file(&target)?;
            crate::fs::symlink(&link, &target)?;
            count += 1;
        } else {
            if crate::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
                crate::fs::remove_file(&target)?;
            }
            crate::fs::copy(entry.path(), &target)?;
            count += 1;
        }
    }
    Ok(count)
}
