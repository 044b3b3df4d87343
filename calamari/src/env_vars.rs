//! Every process environment variable Calamari reads, one documented constant each.

/// The agent's home directory: package cache (`Files/`), journal, Calamari installs.
pub const TENTACLE_HOME: &str = "TentacleHome";
/// Path of `DeploymentJournal.xml`; when unset, `$TentacleHome/DeploymentJournal.xml`.
pub const TENTACLE_JOURNAL: &str = "TentacleJournal";
/// The agent instance name, exposed as `Octopus.Tentacle.Agent.InstanceName`.
pub(crate) const TENTACLE_INSTANCE_NAME: &str = "TentacleInstanceName";
/// Extra variables file (flat `{"Name":"Value"}` JSON), also readable as a variable.
pub(crate) const ADDITIONAL_VARIABLES_PATH: &str = "AdditionalVariablesPath";
/// Set by Calamari for child scripts: the directory Calamari was started in.
pub(crate) const CALAMARI_WORKING_DIRECTORY: &str = "OctopusCalamariWorkingDirectory";
/// Milliseconds a terminal extraction runs before its progress line shows (default 500).
pub(crate) const PROGRESS_DELAY_MS: &str = "CALAMARI_PROGRESS_DELAY_MS";
/// Fallback root for staging directories (`$HOME/Applications`).
pub(crate) const HOME: &str = "HOME";
/// Windows-style root for staging directories (`%SystemDrive%/Applications`).
pub(crate) const SYSTEM_DRIVE: &str = "SystemDrive";
/// A PEM CA bundle that `download-package` trusts for HTTPS besides the system roots.
pub(crate) const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

use std::path::PathBuf;

/// The process environment an agent started Calamari in, read once (by the CLI, or by a
/// program that embeds the library) and passed to what needs it: the `env:NAME`
/// variables, `TentacleHome`, the journal's location, the working directory.
#[derive(Debug, Clone, Default)]
pub struct AgentEnvironment {
    /// Every environment variable whose name and value are UTF-8, in the order read.
    pub variables: Vec<(String, String)>,
    /// The directory Calamari was started in; `None` when it cannot be read (deleted).
    pub working_directory: Option<PathBuf>,
}

impl AgentEnvironment {
    /// Reads this process's environment and working directory.
    pub fn from_process() -> Self {
        AgentEnvironment {
            variables: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            working_directory: std::env::current_dir().ok(),
        }
    }

    /// The directory Calamari was started in.
    ///
    /// # Errors
    /// [`crate::outcome::UsageError::CurrentDirectory`] when it could not be read.
    pub fn working_directory(&self) -> Result<&std::path::Path, crate::outcome::UsageError> {
        self.working_directory.as_deref().ok_or_else(|| {
            crate::outcome::UsageError::CurrentDirectory(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "it was deleted or cannot be accessed",
            ))
        })
    }

    /// The value of one environment variable; a blank value counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.variables.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
    }

    /// `$TentacleHome`: the agent's home (package cache, journal, Calamari installs).
    pub fn tentacle_home(&self) -> Option<PathBuf> {
        self.get(TENTACLE_HOME).map(PathBuf::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_are_unset_and_the_last_value_wins() {
        let env = AgentEnvironment {
            variables: vec![
                ("TentacleHome".into(), "/a".into()),
                ("TentacleHome".into(), "/b".into()),
                ("HOME".into(), "  ".into()),
            ],
            working_directory: None,
        };
        assert_eq!(env.tentacle_home(), Some(PathBuf::from("/b")));
        assert_eq!(env.get("HOME"), None);
        assert_eq!(env.get("PATH"), None);
    }
}
