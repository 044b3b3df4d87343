//! What every command gets ([`Context`]: the log, the global options, the agent's
//! environment) and the checks commands share. Kept out of `cli.rs` so that `cli.rs`
//! (which dispatches to `commands/*.rs`) and the commands (which take a `Context`) form no
//! cycle: both use this file, which uses neither.

use std::path::PathBuf;

use calamari::AgentEnvironment;
use calamari::{Log, VariableDictionary};
use calamari::{VariableSources, load_for_command, resolve_password};
use clap::Args;

/// Options every command accepts.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Global options")]
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
    /// FullIsolation (nothing else with the same mutex runs meanwhile) or NoIsolation (runs
    /// beside other NoIsolation commands only); the lock lives in $TentacleHome and is held
    /// for the whole command. Needs --scriptIsolationMutexName.
    #[arg(long = "scriptIsolationLevel", value_name = "LEVEL", global = true)]
    pub(crate) script_isolation_level: Option<String>,
    /// The mutex to hold: commands with the same name exclude each other as their levels say.
    #[arg(long = "scriptIsolationMutexName", value_name = "NAME", global = true)]
    pub(crate) script_isolation_mutex_name: Option<String>,
    /// How long to wait for the mutex, as a .NET TimeSpan ([d.]hh:mm[:ss[.fffffff]]); no
    /// limit when absent or -00:00:00.0010000. Past it: exit 1.
    #[arg(long = "scriptIsolationTimeout", value_name = "TIMESPAN", global = true)]
    pub(crate) script_isolation_timeout: Option<String>,
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
        let password = resolve_password(
            g.variables_password.as_deref(),
            g.variables_password_file.as_deref(),
            "--variablesPasswordFile",
        )?;
        let sensitive_password = resolve_password(
            g.sensitive_variables_password.as_deref(),
            g.sensitive_variables_password_file.as_deref(),
            "--sensitiveVariablesPasswordFile",
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

/// Refuses a `--package` that is a directory (an easy slip: the directory a package was
/// extracted to) with a message naming the option, before anything reads it.
///
/// # Errors
/// [`calamari::UsageError::BadOption`] when `package`, relative to the working directory,
/// is a directory.
pub(crate) fn check_package_option(package: &std::path::Path, ctx: &Context) -> calamari::Result<()> {
    let path = ctx.environment.working_directory()?.join(package);
    if path.is_dir() {
        return Err(calamari::UsageError::BadOption {
            option: "--package",
            message: format!("--package must name a package file, but '{}' is a directory", path.display()),
        }
        .into());
    }
    Ok(())
}
