//! Every process environment variable Calamari reads, one documented constant each.

/// The agent's home directory: package cache (`Files/`), journal, Calamari installs.
pub const TENTACLE_HOME: &str = "TentacleHome";
/// Path of `DeploymentJournal.xml`; when unset, `$TentacleHome/DeploymentJournal.xml`.
pub const TENTACLE_JOURNAL: &str = "TentacleJournal";
/// The agent instance name, exposed as `Octopus.Tentacle.Agent.InstanceName`.
pub const TENTACLE_INSTANCE_NAME: &str = "TentacleInstanceName";
/// Extra variables file (flat `{"Name":"Value"}` JSON), also readable as a variable.
pub const ADDITIONAL_VARIABLES_PATH: &str = "AdditionalVariablesPath";
/// Set by Calamari for child scripts: the directory Calamari was started in.
pub const CALAMARI_WORKING_DIRECTORY: &str = "OctopusCalamariWorkingDirectory";
/// Fallback root for staging directories (`$HOME/Applications`).
pub const HOME: &str = "HOME";
/// Windows-style root for staging directories (`%SystemDrive%/Applications`).
pub const SYSTEM_DRIVE: &str = "SystemDrive";
