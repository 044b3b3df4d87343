//! `calamari find-package`: look for a package (or its nearest earlier versions) in the
//! agent's package cache, `$TentacleHome/Files`, and report it with `foundPackage` service
//! messages. The options are checked here, with the reference's messages.

use crate::env_vars::{AgentEnvironment, TENTACLE_HOME};
use crate::outcome::{Outcome, UsageError};
use crate::package::find::{Found, find_and_report};
use crate::version::Version;
use crate::{Log, Result};

/// What `find-package` was asked, as given on its command line.
#[derive(Debug, Clone, Default)]
pub struct FindPackageRequest {
    /// `--packageId`.
    pub package_id: Option<String>,
    /// `--packageVersion`.
    pub package_version: Option<String>,
    /// `--packageHash`: the SHA-1 of the package wanted.
    pub package_hash: Option<String>,
    /// `--packageVersionFormat` (named in the message for an unparseable version).
    pub package_version_format: String,
    /// `--exactMatch`: `true`/`false`; only an exact match is reported when true.
    pub exact_match: Option<String>,
}

fn required(value: Option<&String>, option: &'static str, message: &str) -> Result<String> {
    value
        .filter(|v| !v.trim().is_empty())
        .cloned()
        .ok_or_else(|| UsageError::BadOption { option, message: message.to_string() }.into())
}

/// Runs `find-package` against the cache of `environment`'s `TentacleHome`.
///
/// # Errors
/// A missing or invalid option, `TentacleHome` not set, or the cache cannot be read.
pub fn find_package(request: &FindPackageRequest, environment: &AgentEnvironment, log: &Log) -> Result<Outcome> {
    find(request, environment, log).map(|_| Outcome::Success)
}

/// As [`find_package`], and when the exact package is found and
/// `Octopus.Calamari.EnablePackageRetention` is true, registers its use for the task
/// `Octopus.Task.Id` in the package retention journal (see [`crate::register_package_use`]).
///
/// # Errors
/// As [`find_package`]; a failed registration is logged, never an error.
pub fn find_package_and_register(
    request: &FindPackageRequest,
    variables: &crate::VariableDictionary,
    environment: &AgentEnvironment,
    log: &Log,
) -> Result<Outcome> {
    if let Found::Exact(package) = find(request, environment, log)? {
        crate::register_package_use(&package_use(request, &package), variables, log);
    }
    Ok(Outcome::Success)
}

/// `find-and-register-package`: as [`find_package`], and when the exact package is found,
/// its use registered for `--taskId` in the package retention journal, whatever
/// `Octopus.Calamari.EnablePackageRetention` says (see
/// [`crate::register_package_use_for_task`]). The options are checked first, `--taskId`
/// after the package's, with the reference's messages; a failure is reported with
/// `Failed to find and register package <id> v<version> hash <hash>` first.
///
/// # Errors
/// As [`find_package`], and a missing `--taskId`.
pub fn find_and_register_package(
    request: &FindPackageRequest,
    task_id: Option<&str>,
    variables: &crate::VariableDictionary,
    environment: &AgentEnvironment,
    log: &Log,
) -> Result<Outcome> {
    let result = (|| -> Result<()> {
        required_options(request)?;
        let task = required(
            task_id.map(str::to_string).as_ref(),
            "--taskId",
            "No task ID was specified. Please pass --taskId YourTaskId",
        )?;
        if let Found::Exact(package) = find(request, environment, log)? {
            crate::register_package_use_for_task(&package_use(request, &package), task.trim(), variables, log);
        }
        Ok(())
    })();
    if result.is_err() {
        log.error(format!(
            "Failed to find and register package {} v{} hash {}",
            request.package_id.as_deref().unwrap_or_default(),
            request.package_version.as_deref().unwrap_or_default(),
            request.package_hash.as_deref().unwrap_or_default()
        ));
    }
    result.map(|()| Outcome::Success)
}

/// The package id, version and hash, each required, with the reference's messages.
fn required_options(request: &FindPackageRequest) -> Result<(String, String, String)> {
    let id = required(
        request.package_id.as_ref(),
        "--packageId",
        "No package ID was specified. Please pass --packageId YourPackage",
    )?;
    let raw_version = required(
        request.package_version.as_ref(),
        "--packageVersion",
        "No package version was specified. Please pass --packageVersion 1.0.0.0",
    )?;
    let hash = required(
        request.package_hash.as_ref(),
        "--packageHash",
        "No package hash was specified. Please pass --packageHash YourPackageHash",
    )?;
    Ok((id, raw_version, hash))
}

fn find(request: &FindPackageRequest, environment: &AgentEnvironment, log: &Log) -> Result<Found> {
    let (id, raw_version, hash) = required_options(request)?;
    let exact = match request.exact_match.as_deref().map(str::trim) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(UsageError::InvalidOption {
                option: "--exactMatch",
                value: v.to_string(),
                expected: "true or false",
            }
            .into());
        }
    };
    let format = &request.package_version_format;
    let version = Version::parse(&raw_version).ok_or_else(|| UsageError::BadOption {
        option: "--packageVersion",
        message: format!(
            "Package version '{raw_version}' is not a valid {format} version string. Please pass --packageVersionFormat with a different version type."
        ),
    })?;
    let home = environment.tentacle_home().ok_or(UsageError::EnvironmentVariableNotSet(TENTACLE_HOME))?;
    Ok(find_and_report(&home.join("Files"), &id, &version, &hash, exact, log)?)
}

/// The use of a package found in the cache, for the retention journal.
fn package_use(request: &FindPackageRequest, package: &crate::package::find::CachedPackage) -> crate::PackageUse {
    crate::PackageUse {
        package_id: package.identity.id.clone(),
        version: request.package_version.clone().unwrap_or_default().trim().to_string(),
        version_format: request.package_version_format.clone(),
        path: package.path.clone(),
    }
}
