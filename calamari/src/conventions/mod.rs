//! The `deploy-package` convention pipeline, in the reference's order (§2):
//!
//! 1. already-installed check (`Octopus.Action.Package.SkipIfAlreadyInstalled`)
//! 2. extract to the staging directory
//! 3. configured then packaged `PreDeploy` scripts
//! 4. substitute variables in files (`Octopus.Features.SubstituteInFiles`)
//! 5. XML transforms / appSettings (not supported: one warning when enabled)
//! 6. structured configuration variables (`Octopus.Features.JsonConfigurationVariables`)
//! 7. copy to the custom installation directory
//! 8. packaged then configured `Deploy` scripts
//! 9. packaged then configured `PostDeploy` scripts
//!
//! After every convention, a truthy `Octopus.Action.SkipRemainingConventions` stops the
//! pipeline. On failure `OctopusLastError`/`OctopusLastErrorMessage` are set and the
//! packaged `DeployFailed` script runs (the rollback convention); `DeployFailed.*` scripts
//! are deleted afterwards either way. A journal entry is written on success and on failure.

mod custom_installation;
pub mod run_script;
mod scripts;

use std::path::{Path, PathBuf};

use crate::journal::{self, AlreadyInstalled, DeploymentJournal, JournalEntry};
use crate::log::Log;
use crate::variables::{VariableDictionary, names};
use crate::{Error, Result, package, structured, substitution};

pub use scripts::Stage;

/// Feature names listed in `Octopus.Action.EnabledFeatures`.
pub mod features {
    /// Configured (custom) scripts.
    pub const CUSTOM_SCRIPTS: &str = "Octopus.Features.CustomScripts";
    /// Substitute variables in files.
    pub const SUBSTITUTE_IN_FILES: &str = "Octopus.Features.SubstituteInFiles";
    /// Structured configuration variables.
    pub const JSON_CONFIGURATION_VARIABLES: &str = "Octopus.Features.JsonConfigurationVariables";
    /// XML configuration transforms (not supported here).
    pub const CONFIGURATION_TRANSFORMS: &str = "Octopus.Features.ConfigurationTransforms";
    /// .NET appSettings/connectionStrings replacement (not supported here).
    pub const CONFIGURATION_VARIABLES: &str = "Octopus.Features.ConfigurationVariables";
}

/// A deployment in progress: what every convention reads and changes.
#[derive(Debug)]
pub struct Deployment<'a> {
    /// The package file being deployed (absolute).
    pub package: PathBuf,
    /// The variables, including output variables set so far.
    pub variables: &'a mut VariableDictionary,
    /// The log writer.
    pub log: &'a Log,
    /// Where scripts are looked for and run: the staging directory, then the custom
    /// installation directory once the package has been copied there.
    pub current_directory: PathBuf,
}

impl Deployment<'_> {
    fn skip_remaining(&self) -> Result<bool> {
        Ok(self.variables.get_flag(names::SKIP_REMAINING_CONVENTIONS, false)?)
    }

    /// Whether the package has been extracted. Until then the current directory is the
    /// process's own, where no packaged script may be run or deleted.
    fn package_extracted(&self) -> bool {
        self.variables.get_raw(names::ORIGINAL_PACKAGE_DIRECTORY_PATH).is_some_and(|p| !p.is_empty())
    }

    /// Sets an output variable: in the dictionary (all three names) and for the agent.
    pub fn set_output(&mut self, name: &str, value: &str) {
        self.variables.set_output(name, value, false);
        self.log.output_variable(name, value, false);
    }
}

/// One convention: a step of the pipeline.
type Convention = fn(&mut Deployment<'_>) -> Result<()>;

/// What a successful deployment produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployOutcome {
    /// Where the package was installed (the staging or custom directory); `None` when the
    /// deployment was skipped before extraction.
    pub installation_directory: Option<PathBuf>,
    /// Whether the already-installed check skipped the deployment.
    pub skipped_as_already_installed: bool,
}

/// Runs `deploy-package` for `package` with `variables`.
///
/// # Errors
/// The first convention that fails, after the rollback conventions ran and the journal
/// recorded the failure.
pub fn deploy_package(package: &Path, variables: &mut VariableDictionary, log: &Log) -> Result<DeployOutcome> {
    let package = std::path::absolute(package)
        .map_err(|e| Error::command(format!("Could not resolve the package path '{}': {e}", package.display())))?;
    if !package.is_file() {
        return Err(Error::command(format!("Could not find package file: {}", package.display())));
    }
    let journal = DeploymentJournal::from_variables(variables)?.map(|j| j.with_log(log.clone()));
    journal::set_previous_installation_variables(journal.as_ref(), variables)?;

    let mut deployment = Deployment {
        package: package.clone(),
        variables,
        log,
        current_directory: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let result = run_conventions(&mut deployment, journal.as_ref());
    if let Err(error) = &result {
        rollback(&mut deployment, error);
    }
    if deployment.package_extracted()
        && let Err(e) = scripts::delete_packaged_scripts(&deployment, Stage::DeployFailed)
    {
        log.verbose(format!("Could not delete the DeployFailed scripts: {e}"));
    }
    let succeeded = result.is_ok();
    write_journal(journal.as_ref(), &deployment, succeeded, &package)?;
    result
}

fn run_conventions(d: &mut Deployment<'_>, journal: Option<&DeploymentJournal>) -> Result<DeployOutcome> {
    if let AlreadyInstalled::Yes(dir) = journal::check_already_installed(journal, d.variables, d.log)? {
        return Ok(DeployOutcome {
            installation_directory: Some(PathBuf::from(dir)).filter(|p| !p.as_os_str().is_empty()),
            skipped_as_already_installed: true,
        });
    }
    let steps: [(&str, Convention); 11] = [
        ("extract package", extract_to_staging),
        ("configured PreDeploy script", |d| scripts::run_configured(d, Stage::PreDeploy)),
        ("packaged PreDeploy script", |d| scripts::run_packaged(d, Stage::PreDeploy)),
        ("substitute variables in files", substitute_in_files),
        ("configuration transforms", unsupported_features),
        ("structured configuration variables", structured_variables),
        ("copy to custom installation directory", custom_installation::copy_to_custom_directory),
        ("packaged Deploy script", |d| scripts::run_packaged(d, Stage::Deploy)),
        ("configured Deploy script", |d| scripts::run_configured(d, Stage::Deploy)),
        ("packaged PostDeploy script", |d| scripts::run_packaged(d, Stage::PostDeploy)),
        ("configured PostDeploy script", |d| scripts::run_configured(d, Stage::PostDeploy)),
    ];
    for (name, step) in steps {
        d.log.verbose(format!("Running convention: {name}"));
        step(d)?;
        if d.skip_remaining()? {
            d.log.verbose(format!("{} is set: skipping the remaining conventions.", names::SKIP_REMAINING_CONVENTIONS));
            break;
        }
    }
    let dir = d.variables.get(names::INSTALLATION_DIRECTORY_PATH)?.filter(|s| !s.is_empty()).map(PathBuf::from);
    Ok(DeployOutcome { installation_directory: dir, skipped_as_already_installed: false })
}

fn extract_to_staging(d: &mut Deployment<'_>) -> Result<()> {
    let staged = package::extract_to_staging(&d.package, d.variables, d.log)?;
    let dir = staged.directory.display().to_string();
    d.variables.set(names::ORIGINAL_PACKAGE_DIRECTORY_PATH, Some(dir.clone()));
    d.set_output(names::INSTALLATION_DIRECTORY_PATH, &dir);
    d.set_output(names::PACKAGE_INSTALLATION_DIRECTORY_PATH, &dir);
    d.set_output(names::PACKAGE_EXTRACTED_FILE_COUNT, &staged.file_count.to_string());
    if d.variables.get_raw(names::PACKAGE_ID).is_none_or(str::is_empty) {
        d.variables.set(names::PACKAGE_ID, Some(staged.identity.id.clone()));
    }
    if d.variables.get_raw(names::PACKAGE_VERSION).is_none_or(str::is_empty) {
        d.variables.set(names::PACKAGE_VERSION, Some(staged.identity.version.to_string()));
    }
    d.current_directory = staged.directory;
    Ok(())
}

fn substitute_in_files(d: &mut Deployment<'_>) -> Result<()> {
    if !d.variables.is_feature_enabled(features::SUBSTITUTE_IN_FILES)? {
        return Ok(());
    }
    let targets = d.variables.get_paths("Octopus.Action.SubstituteInFiles.TargetFiles")?;
    substitution::substitute_in_files(&d.current_directory, &targets, d.variables, d.log)?;
    Ok(())
}

fn unsupported_features(d: &mut Deployment<'_>) -> Result<()> {
    let transforms = d.variables.is_feature_enabled(features::CONFIGURATION_TRANSFORMS)?;
    let app_settings = d.variables.is_feature_enabled(features::CONFIGURATION_VARIABLES)?
        && d.variables.get_flag("Octopus.Action.Package.AutomaticallyUpdateAppSettingsAndConnectionStrings", false)?;
    if transforms || app_settings {
        d.log.warn(
            "XML configuration transforms and .NET configuration variables (appSettings/connectionStrings) are not \
             supported by this Calamari; the files were left as they are. Use structured configuration variables or \
             substitute variables in files instead.",
        );
    }
    Ok(())
}

fn structured_variables(d: &mut Deployment<'_>) -> Result<()> {
    if !d.variables.is_feature_enabled(features::JSON_CONFIGURATION_VARIABLES)? {
        return Ok(());
    }
    let targets = d.variables.get_paths("Octopus.Action.Package.JsonConfigurationVariablesTargets")?;
    structured::replace_in_files(&d.current_directory, &targets, d.variables, d.log)?;
    Ok(())
}

/// The rollback conventions: record the error, run the packaged `DeployFailed` script.
fn rollback(d: &mut Deployment<'_>, error: &Error) {
    let message = error.to_string();
    d.variables.set(names::LAST_ERROR, Some(format!("{error:?}")));
    d.variables.set(names::LAST_ERROR_MESSAGE, Some(message.clone()));
    d.log.error("Running rollback conventions...");
    if !d.package_extracted() {
        return;
    }
    if let Err(rollback_error) = scripts::run_packaged(d, Stage::DeployFailed)
        && rollback_error.to_string() != message
    {
        d.log.error(rollback_error.to_string());
    }
}

fn write_journal(
    journal: Option<&DeploymentJournal>,
    d: &Deployment<'_>,
    succeeded: bool,
    package: &Path,
) -> Result<()> {
    let Some(journal) = journal else {
        d.log.verbose("No deployment journal: neither TentacleJournal nor TentacleHome is set.");
        return Ok(());
    };
    if let Some(entry) = JournalEntry::for_deployment(d.variables, succeeded, Some(package))? {
        journal.add(&entry)?;
    }
    Ok(())
}
