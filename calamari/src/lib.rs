//! Calamari for Rust: the library behind the `calamari` deployment executor.
//!
//! An agent (Octopus Tentacle style) runs one `calamari <command>` per deployment step.
//! Everything the command does lives here; the CLI only turns flags into the typed
//! inputs below and maps [`Error`] to an exit code. A tour in pipeline order:
//!
//! * [`variables`]: the case-insensitive [`VariableDictionary`], loading the
//!   (optionally encrypted) variables files an agent hands over, and the Octostache
//!   templating language that evaluates `#{...}` references.
//! * [`log`]: the [`Log`] writer that speaks the agent's stdout protocol
//!   (`##octopus[stdout-verbose]` level switches, errors on stderr) and masks sensitive
//!   values; [`service_message`] builds and parses `##octopus[...]` messages.
//! * [`package`]: safe extraction of every package format, package names, versions,
//!   staging directories and hashes.
//! * [`substitution`]: `#{...}` substitution inside package files, keeping encodings.
//! * [`structured`]: JSON/YAML/XML/properties structured configuration variables.
//! * [`script`]: running bash/PowerShell/Python scripts with bootstraps, streaming their
//!   output and capturing output variables.
//! * [`conventions`]: the ordered `deploy-package` pipeline.
//! * [`journal`]: `DeploymentJournal.xml` and retention.
//! * [`self_install`]: the versioned `TentacleHome/Calamari/<version>/Success.txt` install
//!   that an agent uses to decide whether to push a newer Calamari.
//!
//! Support modules: [`glob`] (file patterns), [`fs`] (filesystem calls whose errors name the path, atomic writes),
//! [`lock`] (cross-process named locks that die with their holder), [`env_vars`] (every
//! environment variable we read).

pub mod conventions;
pub mod env_vars;
pub mod error;
pub mod fs;
pub mod glob;
pub mod journal;
pub mod lock;
pub mod log;
pub mod package;
pub mod script;
pub mod self_install;
pub mod service_message;
pub mod structured;
pub mod substitution;
pub mod text_encoding;
pub mod variables;
pub(crate) mod xml_escape;

pub use error::{Error, Result};
pub use log::Log;
pub use service_message::ServiceMessage;
pub use variables::VariableDictionary;

/// The version of this build, as `calamari version` prints it and as the self-install
/// names its directory (`TentacleHome/Calamari/<VERSION>`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
