//! Scripts: running bash, PowerShell and Python scripts with their bootstraps, streaming
//! output, service messages and output variables.
//!
//! [`run_script`] is what every caller uses (the `run-script` command through
//! [`crate::conventions::run_script`], and the deploy pipeline for packaged and configured
//! scripts):
//!
//! 1. A private step directory ([`workspace::StepDir`], 0700, removed afterwards, leftovers
//!    of killed steps swept by the next run) receives the bootstrap and the variables with
//!    their evaluated values (0600 files: bash gets them as literals inside its bootstrap,
//!    Python and PowerShell read a `name NUL value NUL ...` file).
//! 2. Script modules (`Octopus.Script.Module[Name]`) of the script's language are written
//!    beside the script, and removed afterwards ([`modules`]).
//! 3. The script's syntax module ([`bash`], [`python`], [`powershell`]) writes its bootstrap
//!    and builds the interpreter command.
//! 4. The interpreter runs in the script's directory, in its own process group, stdin
//!    `/dev/null` ([`process`]); each output line goes through [`output::OutputHandler`]
//!    (service messages, output variables, masking).
//!
//! Variable values never appear in argv or the environment: the bootstraps read the file
//! with builtins only (bash: one literal compound assignment into `octopus_parameters`, no
//! fork, no openssl; Python: standard library; PowerShell: .NET file APIs).

pub(crate) mod bash;
mod error;
pub(crate) mod interpreter;
pub(crate) mod modules;
pub(crate) mod output;
pub(crate) mod powershell;
pub(crate) mod process;
pub(crate) mod python;
mod syntax;
mod variable_values;
pub(crate) mod workspace;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Log;
use crate::VariableDictionary;
use crate::variables::names;

pub use error::Error;
pub(crate) use modules::{RemoveOnDrop, write_script_modules};
pub use syntax::ScriptSyntax;
pub(crate) use variable_values::{evaluated_variables, variables_payload};

/// How a script run ended. A non-zero exit code is not an error: callers decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScriptOutcome {
    /// The script's exit code (128 + n when killed by signal n).
    pub exit_code: i32,
    /// Whether the script wrote to stderr.
    pub had_error_output: bool,
}

impl ScriptOutcome {
    /// The exit code the step reports: the script's own, or -1 when it exited 0 but wrote to
    /// stderr and `Octopus.Action.FailScriptOnErrorOutput` is true (reference behaviour).
    ///
    /// # Errors
    /// When the flag's value cannot be evaluated.
    pub(crate) fn effective_exit_code(&self, variables: &VariableDictionary) -> Result<i32, Error> {
        if self.exit_code == 0
            && self.had_error_output
            && variables.get_flag(names::FAIL_SCRIPT_ON_ERROR_OUTPUT, false)?
        {
            return Ok(-1);
        }
        Ok(self.exit_code)
    }
}

/// Variable names this module reads.
pub(crate) mod variable_names {
    /// The inline script body.
    pub(crate) const SCRIPT_BODY: &str = "Octopus.Action.Script.ScriptBody";
    /// The inline script's syntax.
    pub(crate) const SYNTAX: &str = "Octopus.Action.Script.Syntax";
    /// A script file, relative to the working directory (e.g. inside an extracted package).
    pub(crate) const SCRIPT_FILE_NAME: &str = "Octopus.Action.Script.ScriptFileName";
    /// Parameters passed to the script.
    pub(crate) const SCRIPT_PARAMETERS: &str = "Octopus.Action.Script.ScriptParameters";
    /// Seconds after which the script is stopped.
    pub(crate) const TIMEOUT: &str = "Octopus.Action.Script.Timeout";
    /// Skip the environment information block.
    pub(crate) const SUPPRESS_ENVIRONMENT_LOGGING: &str = "Octopus.Action.Script.SuppressEnvironmentLogging";
    /// Run pwsh with -NoProfile.
    pub(crate) const POWERSHELL_WITHOUT_PROFILE: &str = "Octopus.Action.PowerShell.ExecuteWithoutProfile";
    /// `Set-PSDebug -Trace N` before the script (a number, or true for 2).
    pub(crate) const POWERSHELL_TRACE: &str = "Octopus.Action.PowerShell.PSDebug.Trace";
    /// `Set-PSDebug -Strict` before the script.
    pub(crate) const POWERSHELL_STRICT: &str = "Octopus.Action.PowerShell.PSDebug.Strict";
    /// A private `XDG_CACHE_HOME` for pwsh, so parallel steps do not share its caches.
    pub(crate) const POWERSHELL_UNIQUE_CACHE_PATH: &str = "Octopus.Action.PowerShell.UniqueCachePath";
    /// Server-generated helper functions (`New-<Name>` for PowerShell), as JSON.
    pub(crate) const SCRIPT_FUNCTIONS_REGISTRATION: &str = "Octopus.Sashimi.ScriptFunctions.Registration";
    /// Prefix of script modules: `Octopus.Script.Module[Name]`.
    pub(crate) const MODULE_PREFIX: &str = "Octopus.Script.Module[";
    /// Prefix of script module languages: `Octopus.Script.Module.Language[Name]`.
    pub(crate) const MODULE_LANGUAGE_PREFIX: &str = "Octopus.Script.Module.Language[";
}

/// Runs `script` (syntax from its extension) with `parameters`, in the script's directory.
/// Service messages are applied (`setVariable` sets output variables in `variables`), all
/// output goes to `log`, masked. Temp files are removed on every path.
///
/// # Errors
/// Failing to start, timeout, cancellation, unknown syntax, missing interpreter. A non-zero
/// exit is an `Ok` outcome.
pub(crate) fn run_script(
    script: &Path,
    parameters: Option<&str>,
    variables: &mut VariableDictionary,
    log: &Log,
) -> Result<ScriptOutcome, Error> {
    let syntax =
        ScriptSyntax::from_path(script).ok_or_else(|| Error::UnknownSyntax { script: script.to_path_buf() })?;
    let script = absolute(script)?;
    if !script.is_file() {
        return Err(Error::ScriptNotFound { path: script });
    }
    let dir = script.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    let parameters = parameters.map(str::trim).filter(|p| !p.is_empty());

    // The interpreter first: when it is missing, nothing of the step is written or run.
    let interpreter = interpreter::find_interpreter(syntax, &script)?;
    let step = workspace::StepDir::create(variables)?;
    let modules = write_script_modules(&dir, syntax, variables)?;
    let remove_modules = RemoveOnDrop(modules.iter().map(|m| m.path.clone()).collect());
    let launch = interpreter::Launch {
        interpreter: &interpreter,
        script: &script,
        parameters,
        variables,
        step: &step,
        modules: &modules,
        log,
    };
    let mut cmd = syntax.command(&launch)?;
    cmd.current_dir(&dir);
    if let Ok(cwd) = std::env::current_dir() {
        cmd.env(crate::env_vars::CALAMARI_WORKING_DIRECTORY, cwd);
    }
    // The PowerShell bootstrap logs its own, from inside pwsh (`HostProcess: pwsh (<pid>)`).
    if syntax != ScriptSyntax::PowerShell && !variables.get_flag(variable_names::SUPPRESS_ENVIRONMENT_LOGGING, false)? {
        log_environment(log, syntax, &dir);
    }
    let timeout = variables.get_int(variable_names::TIMEOUT)?.filter(|s| *s > 0).map(|s| s as u64);

    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut handler = output::OutputHandler::new(log, variables);
    let result =
        process::run(cmd, step.id(), timeout.map(Duration::from_secs), |stream, line| handler.line(stream, line))
            .map_err(|source| Error::Start { program, script: script.clone(), source })?;
    handler.finish();
    let had_error_output = handler.had_error_output;
    drop(handler);
    drop(remove_modules);
    drop(step);
    match result {
        Ok(process::Exit::Code(exit_code)) => Ok(ScriptOutcome { exit_code, had_error_output }),
        Ok(process::Exit::Signal(signal)) => {
            log.error(format!(
                "The script '{}' was terminated by signal {signal} ({})",
                script.display(),
                crate::signals::signal_name(signal)
            ));
            Ok(ScriptOutcome { exit_code: 128 + signal, had_error_output: true })
        }
        Err(process::Stopped::Timeout) => Err(Error::Timeout { script, seconds: timeout.unwrap_or_default() }),
        Err(process::Stopped::Signal(signal)) => {
            Err(Error::Cancelled { script, signal, name: crate::signals::signal_name(signal) })
        }
    }
}

/// The inline script from `Octopus.Action.Script.ScriptBody` + `.Syntax`, or
/// `Octopus.Action.Script.ScriptBody[<Syntax>]` in the preferred order.
///
/// # Errors
/// When a value cannot be evaluated or the syntax is unknown.
pub(crate) fn inline_script(variables: &VariableDictionary) -> Result<Option<(ScriptSyntax, String)>, Error> {
    if let Some(body) = variables.get(variable_names::SCRIPT_BODY)?.filter(|b| !b.trim().is_empty()) {
        let syntax = match variables.get(variable_names::SYNTAX)? {
            Some(name) if !name.trim().is_empty() => match ScriptSyntax::from_name(&name) {
                Some(syntax) => syntax,
                None => return Err(Error::UnknownSyntaxName { name, variable: variable_names::SYNTAX }),
            },
            _ => ScriptSyntax::PowerShell,
        };
        return Ok(Some((syntax, body)));
    }
    for syntax in ScriptSyntax::preferred_order() {
        let name = format!("{}[{}]", variable_names::SCRIPT_BODY, syntax.name());
        if let Some(body) = variables.get(&name)?.filter(|b| !b.trim().is_empty()) {
            return Ok(Some((*syntax, body)));
        }
    }
    Ok(None)
}

fn absolute(path: &Path) -> Result<PathBuf, Error> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|source| Error::CurrentDirectory { source })?;
    Ok(cwd.join(path))
}

/// The reference's environment information block (what its bash bootstrap prints with
/// `uname -a`, `whoami`, `hostname`...), gathered without starting any process.
fn log_environment(log: &Log, syntax: ScriptSyntax, dir: &Path) {
    let read = |p: &str| crate::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
    // Online CPUs, without the cgroup probing of `available_parallelism` (cost per step).
    let cpus = read("/sys/devices/system/cpu/online")
        .split(',')
        .map(|r| {
            r.split_once('-').map_or(1, |(a, b)| b.parse::<usize>().unwrap_or(0) + 1 - a.parse::<usize>().unwrap_or(0))
        })
        .sum::<usize>();
    let uname = rustix::system::uname();
    log.verbose(format!(
        "{} Environment Information:\n  OperatingSystem: {}\n  CurrentUser: {}\n  HostName: {}\n  ProcessorCount: {cpus}\n  CurrentDirectory: {}\n  TempDirectory: {}\n  HostProcessID: {}",
        syntax.name(),
        uname_all(&uname),
        user_name(rustix::process::geteuid().as_raw(), &read("/etc/passwd")),
        uname.nodename().to_string_lossy(),
        dir.display(),
        std::env::temp_dir().display(),
        std::process::id()
    ));
}

/// What `uname -a` prints: kernel name, node, release, version, machine, and the operating
/// system (`GNU/Linux` on Linux, as coreutils names it).
fn uname_all(u: &rustix::system::Uname) -> String {
    let sysname = u.sysname().to_string_lossy();
    let os = if sysname == "Linux" { "GNU/Linux".into() } else { sysname.clone() };
    format!(
        "{sysname} {} {} {} {} {os}",
        u.nodename().to_string_lossy(),
        u.release().to_string_lossy(),
        u.version().to_string_lossy(),
        u.machine().to_string_lossy()
    )
}

/// What `whoami` prints: the name `/etc/passwd` gives the user id, else the id.
fn user_name(uid: u32, passwd: &str) -> String {
    passwd
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse::<u32>().ok()?;
            (id == uid).then(|| name.to_string())
        })
        .next()
        .unwrap_or_else(|| uid.to_string())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests;
