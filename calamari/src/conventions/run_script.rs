//! `run-script`: the command's small pipeline.
//!
//! 0. With a journal (`TentacleJournal` or `TentacleHome`) and `OctopusRetentionPolicySet`,
//!    the `Octopus.Tentacle.PreviousInstallation.*` and
//!    `Octopus.Tentacle.PreviousSuccessfulInstallation.*` variables are set from it, as for
//!    every command of the reference.
//! 1. With `--package`, extract it into a new `staging` directory under the working
//!    directory (`staging_1`, `staging_2`... when taken), which becomes the working
//!    directory.
//! 2. Find the script: `--script`, else `Octopus.Action.Script.ScriptFileName` (both
//!    relative to the working directory), else the inline script of
//!    `Octopus.Action.Script.ScriptBody`, written as `Script.<ext>` there (removed after
//!    the run unless `OctopusDeleteScriptsOnCleanup` is false).
//!    A script file from `Octopus.Action.Script.ScriptFileName`, or from `--script` with
//!    `--package`, has variables substituted into it first, as in the reference.
//! 3. Run it ([`script::run_script`]), set the output variable
//!    `Octopus.Action.Script.ExitCode`, and return the step's exit code.

use std::path::{Path, PathBuf};

use crate::journal::{self, DeploymentJournal};
use crate::outcome::Outcome;
use crate::script::{self, RemoveOnDrop, variable_names};
use crate::variables::names;
use crate::{Log, Result, VariableDictionary, package, substitution};

/// What `calamari run-script` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct RunScriptRequest {
    /// `--script`: a script file. Without it the script comes from the variables.
    pub script: Option<PathBuf>,
    /// `--scriptParameters` (else `Octopus.Action.Script.ScriptParameters`).
    pub parameters: Option<String>,
    /// Where an inline script (`Script.<ext>`) is written: the working directory.
    pub working_directory: PathBuf,
    /// `--package`: a package extracted into a new `staging` directory under the working
    /// directory, which then becomes the working directory (so `--script` and
    /// `Octopus.Action.Script.ScriptFileName` name a script inside the package).
    pub package: Option<PathBuf>,
}

/// Runs `run-script`: optional extraction, then the script. Returns the step's exit code
/// (see [`script::ScriptOutcome::effective_exit_code`]); a failing script is not an error.
///
/// # Errors
/// When the journal cannot be read, the package cannot be extracted, there is no script to run, or running it fails
/// (see [`script::run_script`]).
pub fn run_script(request: &RunScriptRequest, variables: &mut VariableDictionary, log: &Log) -> Result<Outcome> {
    let journal = DeploymentJournal::from_variables(variables)?.map(|j| j.with_log(log.clone()));
    journal::set_previous_installation_variables(journal.as_ref(), variables)?;
    let working_directory = match &request.package {
        None => request.working_directory.clone(),
        Some(package) => extract_to_staging(package, &request.working_directory, variables, log)?,
    };
    let (script, source, inline_file) = locate_script(request.script.as_deref(), &working_directory, variables)?;
    // As the reference: the script file is a substitution target, unless it was given with
    // `--script` alone (the server substituted it then). Inline bodies were evaluated when
    // read, so they are not evaluated twice.
    let substitute = match source {
        ScriptSource::Option => request.package.is_some(),
        ScriptSource::FileNameVariable => true,
        ScriptSource::Inline => false,
    };
    if substitute && script.is_file() {
        substitution::substitute_file(&script, variables, log)?;
    }
    let parameters = match &request.parameters {
        Some(p) => Some(p.clone()),
        None => variables.get(variable_names::SCRIPT_PARAMETERS)?,
    };
    let outcome = script::run_script(&script, parameters.as_deref(), variables, log)?;
    drop(inline_file);
    let code = outcome.exit_code.to_string();
    variables.set_output(names::SCRIPT_EXIT_CODE, &code, false);
    log.output_variable(names::SCRIPT_EXIT_CODE, &code, false);
    Ok(Outcome::ScriptExited(outcome.effective_exit_code(variables)?))
}

/// Extracts `package` into a new `staging` directory under `working_directory` and
/// returns that directory.
fn extract_to_staging(
    package: &Path,
    working_directory: &Path,
    variables: &VariableDictionary,
    log: &Log,
) -> Result<PathBuf> {
    let directory = unique_directory(&working_directory.join("staging"));
    let options = package::ExtractOptions::from_variables(variables)?;
    let summary = package::extract(package, &directory, &options, log)?;
    log.verbose(format!(
        "Extracted {} files from '{}' to '{}'",
        summary.file_count,
        package.display(),
        directory.display()
    ));
    Ok(directory)
}

/// Where the script to run came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScriptSource {
    /// `--script`.
    Option,
    /// `Octopus.Action.Script.ScriptFileName`.
    FileNameVariable,
    /// `Octopus.Action.Script.ScriptBody`, written as `Script.<ext>`.
    Inline,
}

/// The script to run, where it came from, and the inline script file to remove after the
/// run (if one was written and `OctopusDeleteScriptsOnCleanup` is not false).
fn locate_script(
    script: Option<&Path>,
    working_directory: &Path,
    variables: &VariableDictionary,
) -> Result<(PathBuf, ScriptSource, Option<RemoveOnDrop>)> {
    if let Some(path) = script {
        return Ok((working_directory.join(path), ScriptSource::Option, None));
    }
    let Some((syntax, body)) = script::inline_script(variables)? else {
        return match variables.get(variable_names::SCRIPT_FILE_NAME)?.filter(|n| !n.trim().is_empty()) {
            Some(name) => Ok((working_directory.join(name.trim()), ScriptSource::FileNameVariable, None)),
            None => Err(script::Error::NoScriptToRun.into()),
        };
    };
    let path = working_directory.join(format!("Script.{}", syntax.extension()));
    crate::fs::write(&path, syntax.file_bytes(&body))?;
    let remove = variables.get_flag(names::DELETE_SCRIPTS_ON_CLEANUP, true)?.then(|| RemoveOnDrop(vec![path.clone()]));
    Ok((path, ScriptSource::Inline, remove))
}

/// `base`, or `base_1`, `base_2`... whichever does not exist yet.
fn unique_directory(base: &Path) -> PathBuf {
    let mut candidate = base.to_path_buf();
    let mut i = 0;
    while candidate.symlink_metadata().is_ok() {
        i += 1;
        candidate = PathBuf::from(format!("{}_{i}", base.display()));
    }
    candidate
}
