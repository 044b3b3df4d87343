//! The `deploy-package` convention pipeline, in the reference's order (`docs/behaviour.md`, "deploy-package"):
//!
//! 1. already-installed check (`Octopus.Action.Package.SkipIfAlreadyInstalled`)
//! 2. extract to the staging directory
//! 3. configured then packaged `PreDeploy` scripts
//! 4. substitute variables in files (`Octopus.Features.SubstituteInFiles`)
//! 5. XML configuration transforms (`Octopus.Features.ConfigurationTransforms`)
//! 6. .NET configuration variables: `appSettings`, `connectionStrings`,
//!    `applicationSettings` (`Octopus.Features.ConfigurationVariables`)
//! 7. structured configuration variables (`Octopus.Features.JsonConfigurationVariables`)
//! 8. copy to the custom installation directory
//! 9. packaged then configured `Deploy` scripts
//! 10. packaged then configured `PostDeploy` scripts
//!
//! Around the script stages, the embedded scripts of enabled features run
//! ([`feature_scripts`]: `BeforePreDeploy` after extraction, `AfterPreDeploy`,
//! `BeforeDeploy`, `AfterDeploy`, `BeforePostDeploy`, `AfterPostDeploy`, and `DeployFailed`
//! after the packaged `DeployFailed` script).
//!
//! After every convention, a truthy `Octopus.Action.SkipRemainingConventions` stops the
//! pipeline. On failure `OctopusLastError`/`OctopusLastErrorMessage` are set and the
//! packaged `DeployFailed` script runs (the rollback convention); `DeployFailed.*` scripts
//! are deleted afterwards either way. A journal entry is written on success and on failure.
//!
//! Releases ([`release`], opt-in through `Calamari.Release.*`) add four steps: prepare
//! (before extraction), link shared paths (before `PreDeploy`), switch the current link
//! (after `Deploy`) and the health gate (after `PostDeploy`); on failure after the switch the
//! rollback conventions switch the link back first.

mod already_installed;
mod custom_installation;
mod download_package;
mod error;
mod extract_package;
mod feature_scripts;
pub(crate) mod file_commands;
mod find_package;
mod plan;
pub(crate) mod release;
mod run_script;
mod scripts;
pub(crate) mod transfer_package;

use std::path::{Path, PathBuf};

use crate::journal::{self, DeploymentJournal, JournalEntry};
use crate::log::Log;
use crate::package::StagedPackage;
use crate::variables::{VariableDictionary, names};
use crate::{Result, config_transform, package, structured, substitution};
use feature_scripts::FeatureStage;

pub use already_installed::AlreadyInstalled;
pub(crate) use already_installed::check_already_installed;
pub use download_package::{download_and_register_package, download_package_and_register};
pub use error::Error;
pub use extract_package::{ExtractPackageRequest, ExtractedPackage, extract_package};
pub use find_package::{FindPackageRequest, find_and_register_package, find_package, find_package_and_register};
pub use plan::plan_deploy_package;
pub use run_script::{RunScriptRequest, run_script};
pub use scripts::Stage;
pub use transfer_package::{Transfer, transfer_package};

/// Feature names listed in `Octopus.Action.EnabledFeatures`.
pub(crate) mod features {
    /// Configured (custom) scripts.
    pub(crate) const CUSTOM_SCRIPTS: &str = "Octopus.Features.CustomScripts";
    /// Substitute variables in files.
    pub(crate) const SUBSTITUTE_IN_FILES: &str = "Octopus.Features.SubstituteInFiles";
    /// Structured configuration variables.
    pub(crate) const JSON_CONFIGURATION_VARIABLES: &str = "Octopus.Features.JsonConfigurationVariables";
    /// XML configuration transforms.
    pub(crate) const CONFIGURATION_TRANSFORMS: &str = "Octopus.Features.ConfigurationTransforms";
    /// .NET appSettings/connectionStrings/applicationSettings replacement.
    pub(crate) const CONFIGURATION_VARIABLES: &str = "Octopus.Features.ConfigurationVariables";
    /// Deploy to NGINX (`crate::nginx`).
    pub(crate) const NGINX: &str = "Octopus.Features.Nginx";

    /// Features run here, by a convention or through their variables (the custom
    /// installation directory, the PowerShell edition, which on Linux is always pwsh).
    pub(crate) const RUN_HERE: [&str; 9] = [
        CUSTOM_SCRIPTS,
        NGINX,
        SUBSTITUTE_IN_FILES,
        JSON_CONFIGURATION_VARIABLES,
        CONFIGURATION_TRANSFORMS,
        CONFIGURATION_VARIABLES,
        "Octopus.Features.CustomDirectory",
        "Octopus.Features.HelloWorld",
        "Octopus.Features.SelectPowerShellEditionForWindows",
    ];

    /// Features the reference knows that this Calamari does not run, with what the step
    /// will therefore not do.
    pub(crate) const NOT_RUN_HERE: [(&str, &str); 6] = [
        (
            "Octopus.Features.IISWebSite",
            "IIS is Windows-only, so no IIS web site, application or virtual directory is configured",
        ),
        (
            "Octopus.Features.WindowsService",
            "Windows services are Windows-only, so no service is installed, reconfigured or started",
        ),
        ("Octopus.Features.Vhd", "VHD images are Windows-only, so no VHD is mounted"),
        (
            "Octopus.Features.TomcatDeployManager",
            "deploying to Tomcat is not supported by this Calamari, so the package is not deployed to Tomcat",
        ),
        (
            "Octopus.Features.WildflyDeployCLI",
            "deploying to WildFly is not supported by this Calamari, so the package is not deployed to WildFly",
        ),
        (
            "Octopus.Features.WildflyStateCLI",
            "WildFly deployment states are not supported by this Calamari, so no deployment state is changed",
        ),
    ];
}

/// Whether the deployment gets a journal entry, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalDecision {
    /// An entry is written at the end, on success and on failure.
    Record,
    /// The agent set `Octopus.Action.SkipJournal`.
    SkippedByRequest,
    /// The already-installed check found this package deployed: nothing ran, nothing is recorded.
    SkippedAsAlreadyInstalled,
}

/// A deployment in progress: what every convention reads and changes.
///
/// What the pipeline learns lives here, in types; variables are still set for scripts and
/// the agent (`OctopusOriginalPackageDirectoryPath`, the installation directory outputs),
/// but the pipeline never reads back what it wrote there.
#[derive(Debug)]
pub(crate) struct Deployment<'a> {
    /// The package file being deployed (absolute).
    pub package: PathBuf,
    /// The variables, including output variables set so far.
    pub variables: &'a mut VariableDictionary,
    /// The log writer.
    pub log: &'a Log,
    /// The package once it has been extracted to its staging directory.
    pub staged: Option<StagedPackage>,
    /// Where scripts are looked for and run: the process's working directory, then the
    /// staging directory, then the custom installation directory once the package has been
    /// copied there.
    pub current_directory: PathBuf,
    /// Whether a journal entry will be written.
    pub journal_decision: JournalDecision,
    /// The deployment journal, when its location is known.
    pub journal: Option<DeploymentJournal>,
    /// The id of the entry recorded (not yet successful) as soon as the staging directory
    /// was chosen, which the end of the deployment completes: a kill at any moment leaves
    /// a directory that the journal, and so retention, knows about.
    pub pending_entry: Option<String>,
    /// The release settings and state (current link, shared paths, health check), when
    /// any `Calamari.Release.*` variable asks for them.
    pub release: Option<release::Release>,
}

impl Deployment<'_> {
    fn skip_remaining(&self) -> Result<bool> {
        Ok(self.variables.get_flag(names::SKIP_REMAINING_CONVENTIONS, false)?)
    }

    /// Whether the package has been extracted. Until then the current directory is the
    /// process's own, where no packaged script may be run or deleted.
    fn package_extracted(&self) -> bool {
        self.staged.is_some()
    }

    /// Sets an output variable: in the dictionary (all three names) and for the agent.
    pub(crate) fn set_output(&mut self, name: &str, value: &str) {
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
    let package =
        std::path::absolute(package).map_err(|source| Error::PackagePath { path: package.to_path_buf(), source })?;
    if !package.is_file() {
        return Err(Error::PackageNotFound(package).into());
    }
    let home = variables.get_raw(&format!("env:{}", crate::env_vars::TENTACLE_HOME)).map(PathBuf::from);
    let set = variables.get_or_empty(names::RETENTION_POLICY_SET)?;
    crate::operator_lock::refuse_if_locked(home.as_deref(), &set, "deployed")?;
    crate::package_retention::commands::register_package_file(&package, variables, log);
    let journal = DeploymentJournal::from_variables(variables)?.map(|j| j.with_log(log.clone()));
    journal::set_previous_installation_variables(journal.as_ref(), variables)?;
    let journal_decision = if variables.get_flag(names::SKIP_JOURNAL, false)? {
        JournalDecision::SkippedByRequest
    } else {
        JournalDecision::Record
    };

    let mut deployment = Deployment {
        package: package.clone(),
        variables,
        log,
        staged: None,
        current_directory: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        journal_decision,
        journal,
        pending_entry: None,
        release: None,
    };
    let result = run_conventions(&mut deployment);
    if let Err(error) = &result {
        rollback(&mut deployment, error);
    }
    if deployment.package_extracted()
        && let Err(e) = scripts::delete_packaged_scripts(&deployment, Stage::DeployFailed)
    {
        log.verbose(format!("Could not delete the DeployFailed scripts: {e}"));
    }
    let succeeded = result.is_ok();
    write_journal(&deployment, succeeded, &package)?;
    result
}

/// When a step of the pipeline runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applies {
    /// In every deployment.
    Always,
    /// In every deployment, without a log line: it reads the `Calamari.Release.*` settings
    /// and says what it found only when there are some.
    ReleaseSettings,
    /// Only when the deployment is a release (some `Calamari.Release.*` variable is set).
    Release,
}

/// One step of the pipeline: what it does, and what `--plan` says it would do.
struct Step {
    name: &'static str,
    applies: Applies,
    run: Convention,
    plan: fn(&mut plan::Plan<'_>) -> Result<()>,
}

const fn step(
    name: &'static str,
    applies: Applies,
    run: Convention,
    plan: fn(&mut plan::Plan<'_>) -> Result<()>,
) -> Step {
    Step { name, applies, run, plan }
}

/// The conventions of `deploy-package`, in order (see the module documentation).
const PIPELINE: [Step; 23] = [
    step("features this Calamari does not run", Applies::Always, warn_features_not_run, plan::features_not_run),
    step(
        "release: current link, lock and settings",
        Applies::ReleaseSettings,
        release::prepare,
        plan::release_settings,
    ),
    step("extract package", Applies::Always, extract_to_staging, plan::nothing),
    step("release: link shared paths", Applies::Release, release::link_shared_paths, plan::shared_paths),
    step(
        "feature BeforePreDeploy",
        Applies::Always,
        |d| feature_scripts::run(d, FeatureStage::BeforePreDeploy),
        plan::before_pre_deploy,
    ),
    step(
        "configured PreDeploy script",
        Applies::Always,
        |d| scripts::run_configured(d, Stage::PreDeploy),
        plan::configured_pre_deploy,
    ),
    step(
        "packaged PreDeploy script",
        Applies::Always,
        |d| scripts::run_packaged(d, Stage::PreDeploy),
        plan::packaged_pre_deploy,
    ),
    step(
        "feature AfterPreDeploy",
        Applies::Always,
        |d| feature_scripts::run(d, FeatureStage::AfterPreDeploy),
        plan::after_pre_deploy,
    ),
    step("substitute variables in files", Applies::Always, substitute_in_files, plan::substitution),
    step("configuration transforms", Applies::Always, configuration_transforms, plan::config_transforms),
    step("configuration variables", Applies::Always, configuration_variables, plan::config_variables),
    step("structured configuration variables", Applies::Always, structured_variables, plan::structured_variables),
    step(
        "copy to custom installation directory",
        Applies::Always,
        custom_installation::copy_to_custom_directory,
        plan::custom_installation,
    ),
    step(
        "feature BeforeDeploy",
        Applies::Always,
        |d| feature_scripts::run(d, FeatureStage::BeforeDeploy),
        plan::before_deploy,
    ),
    step("packaged Deploy script", Applies::Always, |d| scripts::run_packaged(d, Stage::Deploy), plan::packaged_deploy),
    step(
        "configured Deploy script",
        Applies::Always,
        |d| scripts::run_configured(d, Stage::Deploy),
        plan::configured_deploy,
    ),
    step(
        "feature AfterDeploy",
        Applies::Always,
        |d| feature_scripts::run(d, FeatureStage::AfterDeploy),
        plan::after_deploy,
    ),
    step("release: switch the current link", Applies::Release, release::switch_current_link, plan::switch_link),
    step(
        "feature BeforePostDeploy",
        Applies::Always,
        |d| feature_scripts::run(d, FeatureStage::BeforePostDeploy),
        plan::before_post_deploy,
    ),
    step(
        "packaged PostDeploy script",
        Applies::Always,
        |d| scripts::run_packaged(d, Stage::PostDeploy),
        plan::packaged_post_deploy,
    ),
    step(
        "configured PostDeploy script",
        Applies::Always,
        |d| scripts::run_configured(d, Stage::PostDeploy),
        plan::configured_post_deploy,
    ),
    step(
        "feature AfterPostDeploy",
        Applies::Always,
        |d| feature_scripts::run(d, FeatureStage::AfterPostDeploy),
        plan::after_post_deploy,
    ),
    step("release: health check", Applies::Release, release::health_gate, plan::health_check),
];

fn run_conventions(d: &mut Deployment<'_>) -> Result<DeployOutcome> {
    if let AlreadyInstalled::Yes(dir) = check_already_installed(d.journal.as_ref(), d.variables, d.log)? {
        d.journal_decision = JournalDecision::SkippedAsAlreadyInstalled;
        return Ok(DeployOutcome {
            installation_directory: Some(PathBuf::from(dir)).filter(|p| !p.as_os_str().is_empty()),
            skipped_as_already_installed: true,
        });
    }
    for step in PIPELINE {
        match step.applies {
            Applies::Always => d.log.verbose(format!("Running convention: {}", step.name)),
            // Silent: a deployment that asks for no release hears nothing about them.
            Applies::ReleaseSettings => {}
            Applies::Release if d.release.is_none() => continue,
            Applies::Release => d.log.verbose(format!("Running convention: {}", step.name)),
        }
        (step.run)(d)?;
        if d.skip_remaining()? {
            d.log.verbose(format!("{} is set: skipping the remaining conventions.", names::SKIP_REMAINING_CONVENTIONS));
            break;
        }
    }
    let installation_directory = d.staged.as_ref().map(|_| d.current_directory.clone());
    Ok(DeployOutcome { installation_directory, skipped_as_already_installed: false })
}

fn extract_to_staging(d: &mut Deployment<'_>) -> Result<()> {
    // The package's identity from its file name, before extraction, so that the entry
    // recorded when the directory is chosen already names the package.
    let identity = package::PackageIdentity::from_file(&d.package)?;
    set_package_identity(d.variables, &identity);
    let mut pending = None;
    let staged = {
        let (journal, decision, variables, package) =
            (d.journal.as_ref(), d.journal_decision, &*d.variables, &d.package);
        package::extract_to_staging_with::<crate::Error>(&d.package, variables, d.log, &mut |directory| {
            let Some(journal) = journal.filter(|_| decision == JournalDecision::Record) else { return Ok(()) };
            if let Some(entry) = JournalEntry::for_deployment(variables, false, Some(package), Some(directory))? {
                let id = entry.id.clone();
                journal.append(&entry, &format!("adding the in-progress entry {id}"))?;
                d.log.verbose(format!("Recorded the deployment in the journal as in progress ({id})"));
                pending = Some(id);
            }
            Ok(())
        })?
    };
    d.pending_entry = pending;
    let dir = staged.directory.display().to_string();
    d.variables.set(names::ORIGINAL_PACKAGE_DIRECTORY_PATH, Some(dir.clone()));
    d.set_output(names::INSTALLATION_DIRECTORY_PATH, &dir);
    d.set_output(names::PACKAGE_INSTALLATION_DIRECTORY_PATH, &dir);
    d.set_output(names::PACKAGE_EXTRACTED_FILE_COUNT, &staged.file_count.to_string());
    set_package_identity(d.variables, &staged.identity);
    d.current_directory = staged.directory.clone();
    d.staged = Some(staged);
    Ok(())
}

/// Sets `Octopus.Action.Package.PackageId`/`PackageVersion` from the package file's name
/// when the agent did not.
fn set_package_identity(variables: &mut VariableDictionary, identity: &package::PackageIdentity) {
    if variables.get_raw(names::PACKAGE_ID).is_none_or(str::is_empty) {
        variables.set(names::PACKAGE_ID, Some(identity.id.clone()));
    }
    if variables.get_raw(names::PACKAGE_VERSION).is_none_or(str::is_empty) {
        variables.set(names::PACKAGE_VERSION, Some(identity.version.to_string()));
    }
}

fn substitute_in_files(d: &mut Deployment<'_>) -> Result<()> {
    if !d.variables.is_feature_enabled(features::SUBSTITUTE_IN_FILES)? {
        return Ok(());
    }
    let targets = d.variables.get_paths("Octopus.Action.SubstituteInFiles.TargetFiles")?;
    substitution::substitute_in_files(&d.current_directory, &targets, d.variables, d.log)?;
    Ok(())
}

/// A warning for each feature in `Octopus.Action.EnabledFeatures` that this Calamari will
/// not run, naming it and what the step will not do; the deployment goes on, as the
/// reference's does for features it has no convention for.
fn warn_features_not_run(d: &mut Deployment<'_>) -> Result<()> {
    for warning in features_not_run(d.variables)? {
        d.log.warn(warning);
    }
    Ok(())
}

/// The warning for each enabled feature this Calamari will not run.
fn features_not_run(variables: &VariableDictionary) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for feature in variables.get_strings(names::ENABLED_FEATURES, &[','])? {
        let feature = feature.trim();
        if feature.is_empty() || features::RUN_HERE.iter().any(|f| f.eq_ignore_ascii_case(feature)) {
            continue;
        }
        warnings.push(match features::NOT_RUN_HERE.iter().find(|(f, _)| f.eq_ignore_ascii_case(feature)) {
            Some((name, consequence)) => format!("The enabled feature {name} will not run: {consequence}."),
            None => {
                format!("The enabled feature {feature} will not run: this Calamari does not know it, so it is ignored.")
            }
        });
    }
    Ok(warnings)
}

/// XDT transforms (`Web.Release.config` onto `Web.config`, and the explicit ones).
fn configuration_transforms(d: &mut Deployment<'_>) -> Result<()> {
    if !d.variables.is_feature_enabled(features::CONFIGURATION_TRANSFORMS)? {
        return Ok(());
    }
    config_transform::apply_configuration_transforms(&d.current_directory, d.variables, d.log)
}

/// `appSettings`, `connectionStrings` and `applicationSettings` values from variables.
fn configuration_variables(d: &mut Deployment<'_>) -> Result<()> {
    if !d.variables.is_feature_enabled(features::CONFIGURATION_VARIABLES)?
        || !d.variables.get_flag(config_transform::variable_names::UPDATE_APP_SETTINGS, false)?
    {
        return Ok(());
    }
    config_transform::replace_configuration_variables(&d.current_directory, d.variables, d.log)
}

fn structured_variables(d: &mut Deployment<'_>) -> Result<()> {
    if !d.variables.is_feature_enabled(features::JSON_CONFIGURATION_VARIABLES)? {
        return Ok(());
    }
    let targets = d.variables.get_paths(structured::TARGETS_VARIABLE)?;
    structured::replace_in_files(&d.current_directory, &targets, d.variables, d.log)?;
    Ok(())
}

/// The rollback conventions: record the error, run the packaged `DeployFailed` script.
fn rollback(d: &mut Deployment<'_>, error: &crate::Error) {
    let message = error.to_string();
    d.variables.set(names::LAST_ERROR, Some(error.chain()));
    d.variables.set(names::LAST_ERROR_MESSAGE, Some(message.clone()));
    d.log.error("Running rollback conventions...");
    release::switch_back(d);
    if !d.package_extracted() {
        return;
    }
    // As the reference's rollback conventions: the feature scripts only run when the packaged
    // script did not fail.
    let rolled_back = scripts::run_packaged(d, Stage::DeployFailed)
        .and_then(|()| feature_scripts::run(d, FeatureStage::DeployFailed));
    if let Err(rollback_error) = rolled_back
        && rollback_error.to_string() != message
    {
        d.log.error(rollback_error.to_string());
    }
}

/// The entry this deployment's journal records, with the release's link and the target it
/// replaced when there is one.
pub(crate) fn journal_entry(d: &Deployment<'_>, succeeded: bool, package: &Path) -> Result<Option<JournalEntry>> {
    let extracted_to = d.staged.as_ref().map(|s| s.directory.as_path());
    let Some(mut entry) = JournalEntry::for_deployment(d.variables, succeeded, Some(package), extracted_to)? else {
        return Ok(None);
    };
    if let Some(release) = &d.release
        && let Some(link) = release.link()
    {
        entry.current_link = Some(link.display().to_string());
        entry.previous_target = release.previous_target.as_ref().map(|p| p.display().to_string());
    }
    Ok(Some(entry))
}

fn write_journal(d: &Deployment<'_>, succeeded: bool, package: &Path) -> Result<()> {
    let Some(journal) = &d.journal else {
        d.log.verbose("No deployment journal: neither TentacleJournal nor TentacleHome is set.");
        return Ok(());
    };
    if d.journal_decision != JournalDecision::Record {
        return Ok(());
    }
    let Some(mut entry) = journal_entry(d, succeeded, package)? else { return Ok(()) };
    // A release whose entry was marked successful before its switch: when nothing else
    // changed, that entry (with the time it went live) is already the final one.
    if let Some(marked) = d.release.as_ref().and_then(|r| r.marked.as_ref()) {
        entry.installed_on = marked.installed_on;
        entry.id.clone_from(&marked.id);
        if succeeded && entry == *marked {
            d.log.verbose(format!("The journal entry {} was recorded when the current link was switched", entry.id));
            return Ok(());
        }
    }
    match &d.pending_entry {
        // Complete the entry recorded when the directory was chosen (same id, final state).
        Some(id) => {
            entry.id.clone_from(id);
            journal.log_adding(&entry);
            journal.replace(&entry)?;
        }
        None => journal.add(&entry)?,
    }
    Ok(())
}
