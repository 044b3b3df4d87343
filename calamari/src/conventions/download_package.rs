//! `download-package` as a command: the download ([`crate::download_package`]), then, when
//! `Octopus.Calamari.EnablePackageRetention` is true, the package's use registered for the
//! task `Octopus.Task.Id`, as deploy-package and find-package do.

use crate::error::{Outcome, Result};
use crate::{AgentEnvironment, DownloadPackageRequest, Log, VariableDictionary};

/// Downloads the package (or reuses the cached copy) and registers its use in the package
/// retention journal when retention is enabled (see [`crate::register_package_use`]).
///
/// # Errors
/// As [`crate::download_package`]; a failed registration is logged, never an error.
pub fn download_package_and_register(
    request: &DownloadPackageRequest,
    variables: &VariableDictionary,
    environment: &AgentEnvironment,
    log: &Log,
) -> Result<Outcome> {
    let downloaded = crate::download_package(request, environment, log)?;
    let use_ = crate::PackageUse {
        package_id: downloaded.package_id,
        version: downloaded.version,
        version_format: request.package_version_format.clone().unwrap_or_else(|| "Semver".to_string()),
        path: downloaded.path,
    };
    crate::register_package_use(&use_, variables, log);
    Ok(Outcome::Success)
}
