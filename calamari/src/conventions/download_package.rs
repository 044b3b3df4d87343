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
    crate::register_package_use(&package_use(request, downloaded), variables, log);
    Ok(Outcome::Success)
}

/// `download-and-register-package`: downloads the package (or reuses the cached copy) and
/// registers its use for `--taskId` in the package retention journal, whatever
/// `Octopus.Calamari.EnablePackageRetention` says (see
/// [`crate::register_package_use_for_task`]). A failure is reported with `Failed to
/// download and register package <id> v<version> from feed: '<uri>'` first.
///
/// # Errors
/// A missing `--taskId`, and as [`crate::download_package`].
pub fn download_and_register_package(
    request: &DownloadPackageRequest,
    task_id: Option<&str>,
    variables: &VariableDictionary,
    environment: &AgentEnvironment,
    log: &Log,
) -> Result<Outcome> {
    let result = (|| -> Result<()> {
        let task =
            task_id.map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| crate::error::UsageError::BadOption {
                option: "--taskId",
                message: "No task ID was specified. Please pass --taskId YourTaskId".to_string(),
            })?;
        let downloaded = crate::download_package(request, environment, log)?;
        crate::register_package_use_for_task(&package_use(request, downloaded), task, variables, log);
        Ok(())
    })();
    if result.is_err() {
        log.error(format!(
            "Failed to download and register package {} v{} from feed: '{}'",
            request.package_id.as_deref().unwrap_or_default(),
            request.package_version.as_deref().unwrap_or_default(),
            crate::feeds::strip_credentials(request.feed_uri.as_deref().unwrap_or_default())
        ));
    }
    result.map(|()| Outcome::Success)
}

/// The use of a downloaded package, for the retention journal.
fn package_use(request: &DownloadPackageRequest, downloaded: crate::DownloadedPackage) -> crate::PackageUse {
    crate::PackageUse {
        package_id: downloaded.package_id,
        version: downloaded.version,
        version_format: request.package_version_format.clone().unwrap_or_else(|| "Semver".to_string()),
        path: downloaded.path,
    }
}
