//! Well-known variable names, one constant each.

/// Comma list of enabled features (`Octopus.Features.*`).
pub(crate) const ENABLED_FEATURES: &str = "Octopus.Action.EnabledFeatures";
/// The step's name, used to name output variables.
pub(crate) const ACTION_NAME: &str = "Octopus.Action.Name";
/// The machine's name, used to name output variables.
pub(crate) const MACHINE_NAME: &str = "Octopus.Machine.Name";
/// The agent instance name.
pub(crate) const AGENT_INSTANCE_NAME: &str = "Octopus.Tentacle.Agent.InstanceName";
/// Extra variables file merged over the others.
pub(crate) const ADDITIONAL_VARIABLES_PATH: &str = "AdditionalVariablesPath";
/// Root of staging directories.
pub(crate) const APPLICATION_DIRECTORY_PATH: &str = "Octopus.Tentacle.Agent.ApplicationDirectoryPath";
/// Environment name (a staging-directory segment).
pub(crate) const ENVIRONMENT_NAME: &str = "Octopus.Environment.Name";
/// Tenant name (a staging-directory segment).
pub(crate) const TENANT_NAME: &str = "Octopus.Deployment.Tenant.Name";
/// Output: where the package was extracted (or copied to).
pub(crate) const INSTALLATION_DIRECTORY_PATH: &str = "Octopus.Action.Package.InstallationDirectoryPath";
/// Output: short form of the installation directory.
pub(crate) const PACKAGE_INSTALLATION_DIRECTORY_PATH: &str = "Package.InstallationDirectoryPath";
/// Output: number of files extracted.
pub(crate) const PACKAGE_EXTRACTED_FILE_COUNT: &str = "Package.ExtractedFileCount";
/// Plain variable: the staging directory the package was extracted to.
pub(crate) const ORIGINAL_PACKAGE_DIRECTORY_PATH: &str = "OctopusOriginalPackageDirectoryPath";
/// Stop the convention pipeline after the current convention.
pub(crate) const SKIP_REMAINING_CONVENTIONS: &str = "Octopus.Action.SkipRemainingConventions";
/// Do not write a journal entry.
pub(crate) const SKIP_JOURNAL: &str = "Octopus.Action.SkipJournal";
/// Fail a script that wrote to stderr.
pub(crate) const FAIL_SCRIPT_ON_ERROR_OUTPUT: &str = "Octopus.Action.FailScriptOnErrorOutput";
/// Keep scripts after running them when false.
pub(crate) const DELETE_SCRIPTS_ON_CLEANUP: &str = "OctopusDeleteScriptsOnCleanup";
/// Output: a script's exit code.
pub(crate) const SCRIPT_EXIT_CODE: &str = "Octopus.Action.Script.ExitCode";
/// Set on failure: the error.
pub(crate) const LAST_ERROR: &str = "OctopusLastError";
/// Set on failure: the error message.
pub(crate) const LAST_ERROR_MESSAGE: &str = "OctopusLastErrorMessage";
/// Journal key; triggers the `PreviousInstallation` variables.
pub(crate) const RETENTION_POLICY_SET: &str = "OctopusRetentionPolicySet";
/// Package id of the primary package.
pub(crate) const PACKAGE_ID: &str = "Octopus.Action.Package.PackageId";
/// Package version of the primary package.
pub(crate) const PACKAGE_VERSION: &str = "Octopus.Action.Package.PackageVersion";
/// Extra directories (newline-separated) searched for substitution and structured targets.
pub(crate) const ADDITIONAL_PATHS: &str = "Octopus.Action.AdditionalPaths";
