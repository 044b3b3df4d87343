//! Argument parsing (clap) and the one place that maps results to exit codes.
//!
//! The contract an agent relies on: `calamari <command> [options]`, options spelled as the
//! reference spells them (`--camelCase`), both `--name=value` and `--name value`. An
//! unknown command or option is a user error (exit 1). Exit codes: 0 success, 1 user
//! error, 100 unexpected failure, 101 recursive variable definition, and a script's own
//! exit code where the command runs one.

use std::ffi::OsString;
use std::path::PathBuf;

use calamari::AgentEnvironment;
use calamari::{ErrorKind, exit_code};
use calamari::{Log, VariableDictionary};
use calamari::{VariableSources, load_for_command, resolve_password};
use clap::{Args, Parser, Subcommand};

use crate::commands;

/// Calamari for Rust: the deployment executor an agent runs for every step.
#[derive(Debug, Parser)]
#[command(name = "calamari", version = calamari::VERSION, disable_help_subcommand = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) globals: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args, Default)]
pub(crate) struct GlobalArgs {
    /// Variables file (JSON array of {"k","v","s"}); repeatable. Encrypted when a password is given.
    #[arg(long = "variables", value_name = "FILE", global = true)]
    pub(crate) variables: Vec<PathBuf>,
    /// Password for every --variables file. Visible to other users in the process list:
    /// prefer --variablesPasswordFile.
    #[arg(long = "variablesPassword", value_name = "PASSWORD", global = true)]
    pub(crate) variables_password: Option<String>,
    /// Read the --variables password from this file ("-" for standard input).
    #[arg(long = "variablesPasswordFile", value_name = "PATH", global = true)]
    pub(crate) variables_password_file: Option<PathBuf>,
    /// Legacy flat {"name":"value"} variables file (deprecated); repeatable.
    #[arg(long = "sensitiveVariables", value_name = "FILE", global = true)]
    pub(crate) sensitive_variables: Vec<PathBuf>,
    /// Password for the legacy --sensitiveVariables files (deprecated).
    #[arg(long = "sensitiveVariablesPassword", value_name = "PASSWORD", global = true)]
    pub(crate) sensitive_variables_password: Option<String>,
    /// Read the --sensitiveVariables password from this file ("-" for standard input).
    #[arg(long = "sensitiveVariablesPasswordFile", value_name = "PATH", global = true)]
    pub(crate) sensitive_variables_password_file: Option<PathBuf>,
    /// Accepted for compatibility; isolation is the agent's job here.
    #[arg(long = "scriptIsolationLevel", value_name = "LEVEL", global = true, hide = true)]
    pub(crate) script_isolation_level: Option<String>,
    /// Accepted for compatibility.
    #[arg(long = "scriptIsolationMutexName", value_name = "NAME", global = true, hide = true)]
    pub(crate) script_isolation_mutex_name: Option<String>,
    /// Accepted for compatibility.
    #[arg(long = "scriptIsolationTimeout", value_name = "TIMESPAN", global = true, hide = true)]
    pub(crate) script_isolation_timeout: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the version of this Calamari.
    Version,
    /// Install this build (or a bundle) into TentacleHome/Calamari/<version>, Success.txt last.
    Install(commands::install::Args),
    /// Write the pushable bundle Calamari.<version>.tar.gz and its SHA-256.
    Bundle(commands::bundle::Args),
    /// Exit 0 when TentacleHome/Calamari/<version>/Success.txt exists, else 3 with a warning.
    CheckInstall(commands::check_install::Args),
    /// List the complete installs, newest first.
    InstalledVersions(commands::installed_versions::Args),
    /// Delete all but the newest N complete installs, and incomplete ones.
    Prune(commands::prune::Args),
    /// Extract a package to a directory (the staging directory by default).
    ExtractPackage(commands::extract_package::Args),
    /// Find a package (or its nearest earlier versions) in the package cache.
    FindPackage(commands::find_package::Args),
    /// Evaluate an Octostache template against the variables.
    Evaluate(commands::evaluate::Args),
    /// Substitute #{...} variables in files under a directory.
    SubstituteInFiles(commands::substitute_in_files::Args),
    /// Run a bash, PowerShell or Python script with the Calamari helpers.
    RunScript(commands::run_script::Args),
    /// Deploy a package: extract, scripts, substitution, configuration, journal.
    DeployPackage(commands::deploy_package::Args),
    /// Apply the retention policy to deployments in the journal.
    Clean(commands::clean::Args),
    /// Copy the current deployment's package to Octopus.Action.Package.TransferPath.
    TransferPackage(commands::transfer_package::Args),
}

/// What every command gets: the log writer, the global options and the environment the
/// agent started us in (read once).
pub(crate) struct Context {
    pub(crate) log: Log,
    pub(crate) globals: GlobalArgs,
    pub(crate) environment: AgentEnvironment,
}

impl Context {
    /// Loads the variables named by the global options (see
    /// [`variables::load_for_command`]).
    pub(crate) fn variables(&self) -> calamari::Result<VariableDictionary> {
        let g = &self.globals;
        let password = resolve_password(g.variables_password.as_deref(), g.variables_password_file.as_deref())?;
        let sensitive_password = resolve_password(
            g.sensitive_variables_password.as_deref(),
            g.sensitive_variables_password_file.as_deref(),
        )?;
        let sources = VariableSources {
            files: g.variables.clone(),
            password,
            sensitive_files: g.sensitive_variables.clone(),
            sensitive_password,
            ..VariableSources::with_environment(&self.environment)
        };
        Ok(load_for_command(&sources, &self.log)?)
    }
}

/// Parses `args`, runs the command and returns the process exit code.
pub(crate) fn run(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => ErrorKind::User.exit_code(),
            };
            let _ = e.print();
            return code;
        }
    };
    crate::argv_scrub::scrub_passwords();
    let log = Log::stdio();
    let environment = AgentEnvironment::from_process();
    let ctx = Context { log, globals: cli.globals, environment };
    let result = match cli.command {
        Command::Version => {
            ctx.log.info(calamari::VERSION);
            Ok(calamari::Outcome::Success)
        }
        Command::Install(args) => commands::install::exec(args, &ctx),
        Command::Bundle(args) => commands::bundle::exec(args, &ctx),
        Command::CheckInstall(args) => commands::check_install::exec(args, &ctx),
        Command::InstalledVersions(args) => commands::installed_versions::exec(args, &ctx),
        Command::Prune(args) => commands::prune::exec(args, &ctx),
        Command::ExtractPackage(args) => commands::extract_package::exec(args, &ctx),
        Command::FindPackage(args) => commands::find_package::exec(args, &ctx),
        Command::Evaluate(args) => commands::evaluate::exec(args, &ctx),
        Command::SubstituteInFiles(args) => commands::substitute_in_files::exec(args, &ctx),
        Command::RunScript(args) => commands::run_script::exec(args, &ctx),
        Command::DeployPackage(args) => commands::deploy_package::exec(args, &ctx),
        Command::Clean(args) => commands::clean::exec(args, &ctx),
        Command::TransferPackage(args) => commands::transfer_package::exec(args, &ctx),
    };
    if let Err(e) = &result {
        ctx.log.error(e.chain());
    }
    ctx.log.flush();
    exit_code(&result)
}
