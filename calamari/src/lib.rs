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
//! | download a package from a feed into the cache | [`download_package`] with a [`DownloadPackageRequest`] |
//! | extract a package safely | [`extract`] (any destination), [`extract_package`] (the command) |
//! | evaluate an Octostache template | [`VariableDictionary::evaluate`] |
//! | substitute `#{...}` in files | [`substitute_in_files`] |
//! | structured configuration (JSON, YAML, XML, properties) | [`replace_in_files`] |
//! | the standalone file commands, against a directory already there | [`structured_config_variables`], [`substitute_variables_in_files`], [`substitute_in_files_command`] with a [`TargetDirectory`] |
//! | XML configuration transforms (XDT), .NET `appSettings`/`connectionStrings` | [`apply_configuration_transforms`], [`replace_configuration_variables`] |
//! | read the journal, apply retention | [`DeploymentJournal`], [`clean_deployments`] |
//! | rebuild a package from a delta, make signatures and deltas (Octodiff) | [`apply_delta`], [`create_signature`], [`create_delta`] |
//! | the machine package cache: register, release locks, clean | [`register_package`], [`release_package_lock`], [`clean_packages`], [`register_package_use`] |
//! | run a command on many hosts over OpenSSH | [`parse_fleet_arguments`], [`run_fleet`] |
//! | install Calamari where an agent looks for it | [`install_executable`], [`install_bundle`], [`check_install`], [`needs_update`], [`installed_versions`], [`prune`] |
//!
//! Output goes through a [`Log`], which speaks the agent's protocol (`##octopus[...]`
//! service messages, level switches) and masks every sensitive value it has been told.
//! [`Log::capture`] keeps the output in memory, as the examples do.
//!
//! # Where things live, and the layers
//!
//! Command entry points (typed request in, [`Result`]`<`[`Outcome`]`>` out) live today in
//! `conventions/` (deploy, transfer, run-script, extract, find, the file commands), `delta/`,
//! `feeds/`, `package_retention/commands.rs` and `self_install/commands.rs`; they are to
//! gather in one `ops/` module. The modules form layers, bottom first: the leaves
//! (`outcome`, `version`, `timespan`, `text_encoding`, `xml_escape`, `signals`, `fs`,
//! `service_message`); `env_vars`, `lock`, `log`; `variables`, `glob`, `operator_lock`; the
//! domain modules (`package`, `script`, `nginx`, `isolation`, `substitution`, `structured`,
//! `self_install`); `feeds`, `delta`, `journal`, `package_retention`; `conventions`; `fleet`;
//! and `error` on top. A module uses only lower rows; `tests/integration/layers.rs` holds
//! the table and the few exceptions left, each naming the work that removes it.
//!
//! # Errors and exit codes
//!
//! Every operation returns [`Result`]; [`Error`] wraps one error type per area
//! ([`PackageError`], [`ScriptError`], [`JournalError`]...) whose variants carry the path,
//! variable, entry, stage or lock at fault. [`Error::kind`] says what kind of failure it is
//! and [`exit_code`] is the whole exit-code policy; its documentation holds the table, the
//! one copy of it.
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
//!
//! # Example: run a script with the helpers
//!
//! ```
//! use calamari::{Log, Outcome, RunScriptRequest, VariableDictionary, run_script};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("hello.sh"), "echo \"Hello $(get_octopusvariable Name)\"\nexit 3\n")?;
//! let mut variables = VariableDictionary::new();
//! variables.set("Name", Some("World".into()));
//! let (log, output, _) = Log::capture();
//! let request = RunScriptRequest {
//!     script: Some("hello.sh".into()),
//!     parameters: None,
//!     working_directory: dir.path().to_path_buf(),
//!     package: None,
//! };
//! assert_eq!(run_script(&request, &mut variables, &log)?, Outcome::ScriptExited(3));
//! assert!(output.contents().contains("Hello World"));
//! # Ok(())
//! # }
//! ```
//!
//! # Example: extract a package, evaluate a template, substitute in files
//!
//! ```
//! use calamari::{ExtractOptions, Log, VariableDictionary, extract, substitute_in_files};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let archive = dir.path().join("site.zip");
//! let mut zip = zip::ZipWriter::new(std::fs::File::create(&archive)?);
//! zip.start_file("conf/app.config", zip::write::SimpleFileOptions::default())?;
//! std::io::Write::write_all(&mut zip, b"port=#{Port}")?;
//! zip.finish()?;
//!
//! let (log, _, _) = Log::capture();
//! let destination = dir.path().join("site");
//! let summary = extract(&archive, &destination, &ExtractOptions::default(), &log)?;
//! assert_eq!(summary.file_count, 1);
//!
//! let mut variables = VariableDictionary::new();
//! variables.set("Port", Some("8080".into()));
//! assert_eq!(variables.evaluate("#{Port | ToUpper}")?.output.as_deref(), Some("8080"));
//! let changed = substitute_in_files(&destination, &["conf/*.config".to_string()], &variables, &log)?;
//! assert_eq!(changed.substituted.len(), 1);
//! assert_eq!(std::fs::read_to_string(destination.join("conf/app.config"))?, "port=8080");
//! # Ok(())
//! # }
//! ```
//!
//! # Example: replace structured configuration values
//!
//! ```
//! use calamari::{ConfigFormat, VariableDictionary, replace_structured};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut variables = VariableDictionary::new();
//! variables.set("Logging:Level", Some("Debug".into()));
//! let changed = replace_structured(br#"{"Logging": {"Level": "Info"}}"#, ConfigFormat::Json, &variables)?;
//! let json: serde_json::Value = serde_json::from_slice(&changed.expect("a value was replaced"))?;
//! assert_eq!(json["Logging"]["Level"], "Debug");
//! # Ok(())
//! # }
//! ```
//!
//! # Example: evaluate a template
//!
//! ```
//! use calamari::VariableDictionary;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut variables = VariableDictionary::new();
//! variables.set("Environment", Some("production".into()));
//! variables.set("Servers", Some("web1,web2".into()));
//! let text = "#{Environment | ToUpper}:#{each s in Servers}[#{s}]#{/each}";
//! assert_eq!(variables.evaluate(text)?.output.as_deref(), Some("PRODUCTION:[web1][web2]"));
//! # Ok(())
//! # }
//! ```
//!
//! # Example: make and apply a delta
//!
//! ```
//! use calamari::{AgentEnvironment, ApplyDeltaRequest, DEFAULT_CHUNK_SIZE, DeltaRequest, Log, SignatureRequest};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let (basis, new) = (dir.path().join("Acme.1.0.0.zip"), dir.path().join("Acme.1.0.1.zip"));
//! std::fs::write(&basis, "the same bytes, then version one".repeat(100))?;
//! std::fs::write(&new, "the same bytes, then version two".repeat(100))?;
//! let (log, _, _) = Log::capture();
//! let signature = dir.path().join("basis.octosig");
//! let delta = dir.path().join("new.octodelta");
//! let sig = SignatureRequest { basis: basis.clone(), signature: signature.clone(), chunk_size: DEFAULT_CHUNK_SIZE, progress: false };
//! calamari::create_signature(&sig, &log)?;
//! calamari::create_delta(&DeltaRequest { signature, new_file: new.clone(), delta: delta.clone(), progress: false }, &log)?;
//!
//! // The agent rebuilds the new package into TentacleHome's package cache.
//! let home = dir.path().join("home");
//! let environment = AgentEnvironment {
//!     variables: vec![("TentacleHome".into(), home.display().to_string())],
//!     ..AgentEnvironment::default()
//! };
//! let request = ApplyDeltaRequest {
//!     basis_file_name: Some(basis.display().to_string()),
//!     file_hash: Some(calamari::internals::hash_file(&basis)?.sha1),
//!     delta_file_name: Some(delta.display().to_string()),
//!     new_file_name: Some("Acme.1.0.1.zip".into()),
//!     ..ApplyDeltaRequest::default()
//! };
//! calamari::apply_delta(&request, &environment, &log)?;
//! let cached: Vec<_> = std::fs::read_dir(home.join("Files"))?.collect::<Result<_, _>>()?;
//! assert_eq!(cached.len(), 1);
//! assert_eq!(std::fs::read(cached[0].path())?, std::fs::read(&new)?);
//! # Ok(())
//! # }
//! ```
//!
//! # Example: the journal and retention
//!
//! ```
//! use calamari::{CleanRequest, DeploymentJournal, JournalEntry, Log, VariableDictionary, clean_deployments};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let journal_path = dir.path().join("DeploymentJournal.xml");
//! let journal = DeploymentJournal::at(&journal_path);
//! for (n, day) in [(1, 1), (2, 2), (3, 3)] {
//!     let release = dir.path().join(format!("Acme/{n}.0.0"));
//!     std::fs::create_dir_all(&release)?;
//!     journal.add(&JournalEntry {
//!         id: format!("deployment-{n}"),
//!         retention_policy_set: "Acme".into(),
//!         installed_on: chrono::DateTime::from_timestamp(1_700_000_000 + day * 86_400, 0),
//!         extracted_to: Some(release.display().to_string()),
//!         was_successful: true,
//!         ..JournalEntry::default()
//!     })?;
//! }
//! // `clean` reads the journal's location from the agent's environment variables.
//! let mut variables = VariableDictionary::new();
//! variables.set("env:TentacleJournal", Some(journal_path.display().to_string()));
//! let request = CleanRequest { retention_policy_set: "Acme".into(), releases: Some(1), ..CleanRequest::default() };
//! let (log, _, _) = Log::capture();
//! let summary = clean_deployments(&request, &variables, &log)?.expect("the journal is known");
//! assert_eq!(summary.removed_entries.len(), 1);
//! assert!(!dir.path().join("Acme/1.0.0").exists());
//! assert_eq!(journal.entries()?.len(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! # Example: the self-install an agent checks
//!
//! ```
//! use calamari::{CalamariExecutable, InstallOptions, InstallState, Log, check_install, install_executable};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let home = dir.path().join("TentacleHome");
//! assert!(calamari::needs_update(&home, calamari::VERSION));
//! // The executable to install is named explicitly (here a stand-in); a program that embeds
//! // the library never installs itself by accident.
//! let exe = dir.path().join("calamari");
//! std::fs::write(&exe, b"#!/bin/sh\n")?;
//! let (log, _, _) = Log::capture();
//! install_executable(&home, &CalamariExecutable::at(&exe)?, &InstallOptions::default(), &log)?;
//! assert_eq!(check_install(&home, calamari::VERSION), InstallState::Complete);
//! assert!(home.join(format!("Calamari/{}/Success.txt", calamari::VERSION)).is_file());
//! assert_eq!(calamari::installed_versions(&home)?.len(), 1);
//! # Ok(())
//! # }
//! ```

mod config_transform;
mod conventions;
mod delta;
mod env_vars;
mod error;
mod fault;
mod feeds;
mod fleet;
pub mod fs;
mod glob;
mod isolation;
mod journal;
mod lock;
mod log;
mod nginx;
pub mod operator_lock;
mod outcome;
mod package;
mod package_retention;
mod script;
mod self_install;
mod service_message;
mod signals;
mod structured;
mod substitution;
#[cfg(test)]
mod test_support;
mod text_encoding;
mod timespan;
mod variables;
mod version;
mod xml_escape;

// Errors and the exit-code policy.
pub use config_transform::Error as ConfigTransformError;
pub use conventions::Error as DeploymentError;
pub use conventions::release::Error as ReleaseError;
pub use delta::Error as DeltaError;
pub use error::{Error, ErrorKind, Outcome, Result, UsageError, chain as error_chain, exit_code};
pub use feeds::Error as FeedError;
pub use feeds::HashMismatch as FeedHashMismatch;
pub use fleet::Error as FleetError;
pub use fs::IoError;
pub use isolation::Error as IsolationError;
pub use journal::Error as JournalError;
pub use lock::LockTimeout;
pub use package::Error as PackageError;
pub use package_retention::Error as PackageRetentionError;
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
pub use variables::template::limits::{Limit as TemplateLimit, LimitContext as TemplateLimitContext};
pub use variables::template::{ParseError as TemplateParseError, ParseMode, Template, parse as parse_template};
pub use variables::{Evaluation, Variable, VariableDictionary, VariableSources};

// The agent protocol.
pub use log::{Log, Masker};
pub use service_message::ServiceMessage;
pub use service_message::parse::{Item as ServiceMessageItem, Parser as ServiceMessageParser};

// The commands' pipelines.
pub use conventions::{
    AlreadyInstalled, DeployOutcome, ExtractPackageRequest, ExtractedPackage, FindPackageRequest, JournalDecision,
    RunScriptRequest, Stage, Transfer, deploy_package, download_and_register_package, download_package_and_register,
    extract_package, find_and_register_package, find_package, find_package_and_register, plan_deploy_package,
    run_script, transfer_package,
};
// The standalone file commands: one convention each, against a directory that is there.
pub use conventions::file_commands::{
    TargetDirectory, structured_config_variables, substitute_in_files_command, substitute_variables_in_files,
};

// Releases: the current link, shared paths, the health gate, rollback.
pub use conventions::release::{
    BadMark, ReleaseRecord, ReleaseSelector, RollbackOutcome, RollbackRequest, journal_of, mark_bad, mark_good,
    releases, releases_json, releases_table, rollback,
};

// Feeds: download-package.
pub use feeds::{DownloadPackageRequest, DownloadedPackage, FeedType, download_package};

// Packages.
pub use package::{
    ExtractOptions, ExtractSummary, Format as PackageFormat, PackageIdentity, StagedPackage, Version as PackageVersion,
    extract, extract_to_staging,
};

// Files: substitution and structured configuration.
pub use structured::{
    FileOutcome as StructuredFileOutcome, Format as ConfigFormat, StructuredSummary, replace as replace_structured,
    replace_in_files,
};
pub use substitution::{SubstitutionSummary, substitute_in_files};

// .NET configuration files: XDT transforms and configuration variables.
pub use config_transform::{apply_configuration_transforms, replace_configuration_variables};

// Delta compression (Octodiff formats): apply-delta, delta signature, delta create.
pub use delta::{
    ApplyDeltaRequest, DEFAULT_CHUNK_SIZE, DeltaRequest, DeltaStats, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, SignatureRequest,
    apply_delta, create_delta, create_signature,
};

// Script isolation: the lock held for a whole command.
pub use isolation::{
    INFINITE_TIMESPAN, IsolationGuard, IsolationLevel, IsolationRequest, REPORT_EVERY as ISOLATION_REPORT_EVERY,
    enforce_isolation, format_timespan, parse_timespan,
};

// The journal and retention.
pub use journal::{
    CleanRequest, CleanSummary, DeploymentJournal, JournalEntry, JournalPackage, RetentionPolicy, clean_deployments,
};

// The machine package cache and its retention.
pub use package_retention::{
    CleanPackagesSummary, PackageUse, RegisterPackageRequest, ReleasePackageLockRequest, clean_packages,
    register_package, register_package_use, register_package_use_for_task, release_package_lock,
};

// The self-install.
pub use self_install::commands as self_install_commands;
pub use self_install::{
    CalamariExecutable, DEFAULT_KEEP_OTHERS, InstallOptions, InstallOutcome, InstallRequest, InstallState,
    InstallStatus, InstalledVersion, PruneOptions, PruneReport, check_install, install_bundle, install_bundle_with,
    install_executable, installed_versions, needs_update, prune, prune_sparing, resolve_home, verify_bundle,
    verify_install, version_dir, write_bundle,
};

// Many hosts over OpenSSH (`calamari fleet`).
pub use fleet::{
    Batch as FleetBatch, CheckReport as FleetCheckReport, CommandArg as FleetCommandArg, FileKind as FleetFileKind,
    FleetOutput, FleetRequest, HostReport, HostResult, parse_arguments as parse_fleet_arguments, run_fleet,
};
pub use fleet::{BundleError as FleetBundleError, PackageSent as FleetPackageSent, SendMode as FleetSendMode};
// The remote side of `calamari fleet` (`calamari fleet-agent`, run on each host).
pub use fleet::{
    AgentError as FleetAgentError, AgentRequest as FleetAgentRequest, FleetCommand, run_agent as run_fleet_agent,
};

/// Internals that the fuzz targets and benchmarks exercise directly. Not part of the API:
/// no stability promise.
#[doc(hidden)]
pub mod internals {
    pub use crate::delta::{
        Chunk as DeltaChunk, DeltaCommand, DeltaReader, DeltaWriter, FileKind as DeltaFileKind, RollingChecksum,
        Signature as DeltaSignature, explain_delta, read_signature,
    };
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
