//! `calamari extract-package`: check the package's hash, extract it to the destination
//! given or to the staging directory the variables choose, and report where it went as the
//! output variables `Octopus.Action.Package.InstallationDirectoryPath`,
//! `Package.InstallationDirectoryPath` and `Package.ExtractedFileCount`.

use std::path::{Path, PathBuf};

use crate::outcome::UsageError;
use crate::package::{self, ExtractOptions};
use crate::variables::names;
use crate::{Log, Result, VariableDictionary};

/// What `extract-package` was asked to do.
#[derive(Debug, Clone)]
pub struct ExtractPackageRequest {
    /// The package file (relative to `working_directory` when relative).
    pub package: PathBuf,
    /// Extract here (must not exist yet) instead of the staging directory.
    pub destination: Option<PathBuf>,
    /// The package's expected SHA-1; a mismatch fails before anything is written.
    pub package_hash: Option<String>,
    /// The directory relative paths are resolved against.
    pub working_directory: PathBuf,
}

/// Where a package was extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedPackage {
    /// The directory holding the package's files.
    pub directory: PathBuf,
    /// How many files were written.
    pub file_count: u64,
}

/// Runs `extract-package`.
///
/// # Errors
/// A missing package file, a hash mismatch, or any extraction error.
pub fn extract_package(
    request: &ExtractPackageRequest,
    variables: &VariableDictionary,
    log: &Log,
) -> Result<ExtractedPackage> {
    let package_path = request.working_directory.join(&request.package);
    if !package_path.is_file() {
        return Err(UsageError::PackageNotFound(package_path).into());
    }
    if let Some(hash) = request.package_hash.as_deref().filter(|h| !h.trim().is_empty()) {
        package::hash::verify_sha1(&package_path, hash)?;
    }
    let extracted = match &request.destination {
        Some(destination) => extract_to(&package_path, &request.working_directory.join(destination), variables, log)?,
        None => {
            let staged = package::extract_to_staging(&package_path, variables, log)?;
            ExtractedPackage { directory: staged.directory, file_count: staged.file_count }
        }
    };
    let directory = extracted.directory.to_string_lossy();
    log.output_variable(names::INSTALLATION_DIRECTORY_PATH, &directory, false);
    log.output_variable(names::PACKAGE_INSTALLATION_DIRECTORY_PATH, &directory, false);
    log.output_variable(names::PACKAGE_EXTRACTED_FILE_COUNT, &extracted.file_count.to_string(), false);
    Ok(extracted)
}

fn extract_to(
    package: &Path,
    destination: &Path,
    variables: &VariableDictionary,
    log: &Log,
) -> Result<ExtractedPackage> {
    let options = ExtractOptions::from_variables(variables)?;
    // Refused before the "Extracting" line, so the log never announces what will not happen
    // (`package::extract` checks again, atomically with creating it).
    if destination.symlink_metadata().is_ok() {
        return Err(package::Error::DestinationExists { path: destination.to_path_buf() }.into());
    }
    log.verbose(format!("Extracting package to: {}", destination.display()));
    let summary = package::extract(package, destination, &options, log)?;
    log.verbose(format!("Extracted {}", crate::log::count(summary.file_count, "file", "files")));
    Ok(ExtractedPackage { directory: destination.to_path_buf(), file_count: summary.file_count })
}
