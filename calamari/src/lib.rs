//! Calamari for Rust: the library behind the `calamari` deployment executor.
//!
//! An agent (Octopus Tentacle style) runs one `calamari <command>` per deployment step.
//! Everything a command does lives here; the `calamari` binary only turns flags into the
//! typed requests below and maps the result to an exit code with [`exit_code`]. A program
//! that drives deployments itself (an agent written in Rust) embeds the same functions.
//!
//! # The API, by what an agent does
//!
//! | to... | call |
//! |---|---|
//! | load the variables an agent hands over | [`load_variables`], [`VariableSources`], [`AgentEnvironment`] |
//! | deploy a package (the whole convention pipeline) | [`deploy_package`] |
//! | run a script with the Calamari helpers | [`run_script`] with a [`RunScriptRequest`] |
//! | extract a package safely | [`extract`] (any destination), [`extract_package`] (the command) |
//! | evaluate an Octostache template | [`VariableDictionary::evaluate`] |
//! | substitute `#{...}` in files | [`substitute_in_files`] |
//! | structured configuration (JSON, YAML, XML, properties) | [`replace_in_files`] |
//! | read the journal, apply retention | [`DeploymentJournal`], [`clean_deployments`] |
//! | install Calamari where an agent looks for it | [`install_executable`], [`install_bundle`], [`check_install`], [`needs_update`], [`installed_versions`], [`prune`] |
//!
//! Output goes through a [`Log`], which speaks the agent's protocol (`##octopus[...]`
//! service messages, level switches) and masks every sensitive value it has been told.
//! [`Log::capture`] keeps the output in memory, as the examples do.
//!
//! # Errors and exit codes
//!
//! Every operation returns [`Result`]; [`Error`] wraps one error type per area
//! ([`PackageError`], [`ScriptError`], [`JournalError`]...) whose variants carry the path,
//! variable, entry, stage or lock at fault. [`Error::kind`] says what kind of failure it is
//! and [`exit_code`] is the whole exit-code policy: 0, 1 for a user's mistake or a failed
//! step, 100 unexpected, 101 recursive variable definition, 3 out of date, a script's own code.
//!
//! # Example: deploy a package
//!
//! ```
//! use calamari::{Log, VariableDictionary, deploy_package};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! // A package: Acme.Web.1.0.0.tar.gz holding index.html and a Deploy script.
//! let package = dir.path().join("Acme.Web.1.0.0.tar.gz");
//! let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
//!     std::fs::File::create(&package)?,
//!     flate2::Compression::fast(),
//! ));
//! for (name, text) in [("index.html", "Hello #{Name}"), ("Deploy.sh", "echo deployed")] {
//!     let mut header = tar::Header::new_gnu();
//!     header.set_size(text.len() as u64);
//!     header.set_mode(0o644);
//!     tar.append_data(&mut header, name, text.as_bytes())?;
//! }
//! tar.into_inner()?.finish()?;
//!
//! let mut variables = VariableDictionary::new();
//! variables.set("Octopus.Tentacle.Agent.ApplicationDirectoryPath", Some(dir.path().join("Apps").display().to_string()));
//! variables.set("Octopus.Action.EnabledFeatures", Some("Octopus.Features.SubstituteInFiles".into()));
//! variables.set("Octopus.Action.SubstituteInFiles.TargetFiles", Some("index.html".into()));
//! variables.set("Name", Some("World".into()));
//! let (log, output, _errors) = Log::capture();
//!
//! let outcome = deploy_package(&package, &mut variables, &log)?;
//! let installed = outcome.installation_directory.expect("the package was installed");
//! assert_eq!(std::fs::read_to_string(installed.join("index.html"))?, "Hello World");
//! assert!(output.contents().contains("deployed"));
//! # Ok(())
//! # }
//! ```

mod conventions;
mod env_vars;
mod error;
pub mod fs;
mod glob;
mod journal;
mod lock;
mod log;
mod package;
mod script;
mod self_install;
mod service_message;
mod structured;
mod substitution;
mod text_encoding;
mod variables;
mod xml_escape;

// Errors and the exit-code policy.
pub use conventions::Error as DeploymentError;
pub use error::{Error, ErrorKind, Outcome, Result, UsageError, chain as error_chain, exit_code};
pub use fs::IoError;
pub use journal::Error as JournalError;
pub use lock::LockTimeout;
pub use package::Error as PackageError;
pub use script::Error as ScriptError;
pub use self_install::Error as SelfInstallError;
pub use structured::Error as StructuredError;
pub use substitution::Error as SubstitutionError;
pub use variables::Error as VariablesError;
// What the errors' variants carry.
pub use package::{LimitExceeded, Refusal as EntryRefusal};
pub use script::ScriptSyntax;
pub use structured::SyntaxError as ConfigSyntaxError;
pub use structured::json::JsonSyntaxError;
pub use structured::properties::PropertiesSyntaxError;
pub use structured::xml::XmlSyntaxError;
pub use structured::yaml::YamlSyntaxError;

// The environment, variables and templates.
pub use env_vars::{AgentEnvironment, TENTACLE_HOME, TENTACLE_JOURNAL};
pub use variables::crypto::encrypt as encrypt_variables;
pub use variables::input::{load as load_variables, load_for_command, resolve_password};
pub use variables::template::{ParseError as TemplateParseError, ParseMode, Template, parse as parse_template};
pub use variables::{Evaluation, Variable, VariableDictionary, VariableSources};

// The agent protocol.
pub use log::{Log, Masker};
pub use service_message::ServiceMessage;
pub use service_message::parse::{Item as ServiceMessageItem, Parser as ServiceMessageParser};

// The commands' pipelines.
pub use conventions::{
    AlreadyInstalled, DeployOutcome, ExtractPackageRequest, ExtractedPackage, FindPackageRequest, JournalDecision,
    RunScriptRequest, Stage, Transfer, deploy_package, extract_package, find_package, run_script, transfer_package,
};

// Packages.
pub use package::{
    ExtractOptions, ExtractSummary, Format as PackageFormat, PackageIdentity, StagedPackage, Version as PackageVersion,
    extract, extract_to_staging,
};

// Files: substitution and structured configuration.
pub use structured::{Format as ConfigFormat, replace as replace_structured, replace_in_files};
pub use substitution::{SubstitutionSummary, substitute_in_files, substitute_in_files_command};

// The journal and retention.
pub use journal::{
    CleanRequest, CleanSummary, DeploymentJournal, JournalEntry, JournalPackage, RetentionPolicy, clean_deployments,
};

// The self-install.
pub use self_install::commands as self_install_commands;
pub use self_install::{
    CalamariExecutable, InstallOptions, InstallOutcome, InstallRequest, InstallState, InstallStatus, InstalledVersion,
    PruneReport, check_install, install_bundle, install_bundle_with, install_executable, installed_versions,
    needs_update, prune, resolve_home, verify_bundle, verify_install, version_dir, write_bundle,
};

/// Internals that the fuzz targets and benchmarks exercise directly. Not part of the API:
/// no stability promise.
#[doc(hidden)]
pub mod internals {
    pub use crate::journal::entry::new_guid;
    pub use crate::journal::retention::select as select_for_retention;
    pub use crate::journal::xml::{parse as parse_journal, serialise as serialise_journal};
    pub use crate::package::entry_name::entry_path;
    pub use crate::package::hash::hash_file;
    pub use crate::variables::template::parse_resilient as parse_template_resilient;
}

/// The version of this build, as `calamari version` prints it and as the self-install
/// names its directory (`TentacleHome/Calamari/<VERSION>`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
