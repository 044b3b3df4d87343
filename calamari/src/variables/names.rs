//! Well-known variable names (reference §2.6), one constant each.

/// Comma list of enabled features (`Octopus.Features.*`).
pub const ENABLED_FEATURES: &str = "Octopus.Action.EnabledFeatures";
/// The step's name, used to name output variables.
pub const ACTION_NAME: &str = "Octopus.Action.Name";
/// The machine's name, used to name output variables.
pub const MACHINE_NAME: &str = "Octopus.Machine.Name";
/// The agent instance name.
pub const AGENT_INSTANCE_NAME: &str = "Octopus.Tentacle.Agent.InstanceName";
/// Extra variables file merged over the others.
pub const ADDITIONAL_VARIABLES_PATH: &str = "AdditionalVariablesPath";
/// Root of staging directories.
pub const APPLICATION_DIRECTORY_PATH: &str = "Octopus.Tentacle.Agent.ApplicationDirectoryPath";
/// Environment name (a staging-directory segment).
pub const ENVIRONMENT_NAME: &str = "Octopus.Environment.Name";
/// Tenant name (a staging-directory segment).
pub const TENANT_NAME: &str = "Octopus.Deployment.Tenant.Name";
/// Output: where the package was extracted (or copied to).
pub const INSTALLATION_DIRECTORY_PATH: &str = "Octopus.Action.Package.InstallationDirectoryPath";
/// Output: short form of the installation directory.
pub const PACKAGE_INSTALLATION_DIRECTORY_PATH: &str = "Package.InstallationDirectoryPath";
/// Output: number of files extracted.
pub const PACKAGE_EXTRACTED_FILE_COUNT: &str = "Package.ExtractedFileCount";
/// Plain variable: the staging directory the package was extracted to.
pub const ORIGINAL_PACKAGE_DIRECTORY_PATH: &str = "OctopusOriginalPackageDirectoryPath";
/// Stop the convention pipeline after the current convention.
pub const SKIP_REMAINING_CONVENTIONS: &str = "Octopus.Action.SkipRemainingConventions";
/// Do not write a journal entry.
pub const SKIP_JOURNAL: &str = "Octopus.Action.SkipJournal";
/// Fail a script that wrote to stderr.
pub const FAIL_SCRIPT_ON_ERROR_OUTPUT: &str = "Octopus.Action.FailScriptOnErrorOutput";
/// Keep scripts after running them when false.
pub const DELETE_SCRIPTS_ON_CLEANUP: &str = "OctopusDeleteScriptsOnCleanup";
/// Output: a script's exit code.
pub const SCRIPT_EXIT_CODE: &str = "Octopus.Action.Script.ExitCode";
/// Set on failure: the error.
pub const LAST_ERROR: &str = "OctopusLastError";
/// Set on failure: the error message.
pub const LAST_ERROR_MESSAGE: &str = "OctopusLastErrorMessage";
/// Journal key; triggers the `PreviousInstallation` variables.
pub const RETENTION_POLICY_SET: &str = "OctopusRetentionPolicySet";
/// Package id of the primary package.
pub const PACKAGE_ID: &str = "Octopus.Action.Package.PackageId";
/// Package version of the primary package.
pub const PACKAGE_VERSION: &str = "Octopus.Action.Package.PackageVersion";
/// Extra directories (newline-separated) searched for substitution and structured targets.
pub const ADDITIONAL_PATHS: &str = "Octopus.Action.AdditionalPaths";
