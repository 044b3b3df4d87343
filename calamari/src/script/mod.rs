//! Scripts: running bash, PowerShell and Python scripts with their bootstraps, streaming
//! output, service messages and output variables (issue 5).
//!
//! [`run_script`] is what every caller uses (the `run-script` command through
//! [`run_script_command`], and the deploy pipeline for packaged and configured scripts):
//!
//! 1. A private step directory ([`workspace::StepDir`], 0700, removed afterwards, leftovers
//!    of killed steps swept by the next run) receives the bootstrap and the variables with
//!    their evaluated values (0600 files: bash gets them as literals inside its bootstrap,
//!    Python and PowerShell read a `name NUL value NUL ...` file).
//! 2. Script modules (`Octopus.Script.Module[Name]`) of the script's language are written
//!    beside the script, and removed afterwards.
//! 3. The interpreter runs in the script's directory, in its own process group, stdin
//!    `/dev/null` ([`process`]); each output line goes through [`output::OutputHandler`]
//!    (service messages, output variables, masking).
//!
//! Variable values never appear in argv or the environment: the bootstraps read the file
//! with builtins only (bash: one literal compound assignment into `octopus_parameters`, no
//! fork, no openssl; Python: standard library; PowerShell: .NET file APIs).

pub mod bash;
pub mod output;
pub mod powershell;
pub mod process;
pub mod python;
pub mod workspace;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::Log;
use crate::VariableDictionary;
use crate::variables::names;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// Evaluating variables failed.
    #[error(transparent)]
    Variables(#[from] crate::variables::Error),
    /// The `--package` holding the script could not be extracted.
    #[error(transparent)]
    Package(#[from] crate::package::Error),
    /// A user error with its message.
    #[error("{0}")]
    Invalid(String),
    /// The file's extension names no script language we run.
    #[error(
        "Cannot run the script '{0}': its extension names no known script syntax (expected .sh for bash, .ps1 for PowerShell or .py for Python)"
    )]
    UnknownSyntax(PathBuf),
    /// The interpreter is not installed.
    #[error("{0}")]
    InterpreterMissing(String),
    /// The interpreter could not be started.
    #[error("Could not start {program} to run the script '{script}': {source}")]
    Start {
        /// The interpreter.
        program: String,
        /// The script.
        script: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `Octopus.Action.Script.Timeout` passed.
    #[error(
        "The script '{script}' timed out after {seconds} seconds (Octopus.Action.Script.Timeout); its processes were stopped"
    )]
    Timeout {
        /// The script.
        script: PathBuf,
        /// The timeout.
        seconds: u64,
    },
    /// Calamari was asked to stop (SIGINT/SIGTERM) while the script ran.
    #[error("The script '{script}' was cancelled: Calamari received {name}; its processes were stopped")]
    Cancelled {
        /// The script.
        script: PathBuf,
        /// The signal number.
        signal: i32,
        /// The signal name.
        name: String,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Io(_) => crate::error::EXIT_UNEXPECTED,
            Error::Variables(e) => e.exit_code(),
            Error::Package(e) => e.exit_code(),
            Error::Cancelled { signal, .. } => 128 + signal,
            Error::Invalid(_)
            | Error::UnknownSyntax(_)
            | Error::InterpreterMissing(_)
            | Error::Start { .. }
            | Error::Timeout { .. } => crate::error::EXIT_USER_ERROR,
        }
    }
}

/// A script language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptSyntax {
    /// `.sh`, run with bash.
    Bash,
    /// `.ps1`, run with `pwsh`.
    PowerShell,
    /// `.py`, run with `python3`.
    Python,
}

impl ScriptSyntax {
    /// The syntax named by a file's extension (case-insensitive).
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?;
        Self::preferred_order().iter().copied().find(|s| s.extension().eq_ignore_ascii_case(ext))
    }

    /// The extension, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            ScriptSyntax::Bash => "sh",
            ScriptSyntax::PowerShell => "ps1",
            ScriptSyntax::Python => "py",
        }
    }

    /// The order in which syntaxes are preferred on this platform (Linux: sh, py, ps1).
    pub fn preferred_order() -> &'static [ScriptSyntax] {
        &[ScriptSyntax::Bash, ScriptSyntax::Python, ScriptSyntax::PowerShell]
    }

    /// The name used by `Octopus.Action.Script.Syntax` and module languages.
    pub fn name(&self) -> &'static str {
        match self {
            ScriptSyntax::Bash => "Bash",
            ScriptSyntax::PowerShell => "PowerShell",
            ScriptSyntax::Python => "Python",
        }
    }

    /// Parses a syntax name (`Bash`, `PowerShell`, `Python`; any case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::preferred_order().iter().copied().find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// How a script run ended. A non-zero exit code is not an error: callers decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptOutcome {
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
    pub fn effective_exit_code(&self, variables: &VariableDictionary) -> Result<i32, Error> {
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
pub mod variable_names {
    /// The inline script body.
    pub const SCRIPT_BODY: &str = "Octopus.Action.Script.ScriptBody";
    /// The inline script's syntax.
    pub const SYNTAX: &str = "Octopus.Action.Script.Syntax";
    /// A script file, relative to the working directory (e.g. inside an extracted package).
    pub const SCRIPT_FILE_NAME: &str = "Octopus.Action.Script.ScriptFileName";
    /// Parameters passed to the script.
    pub const SCRIPT_PARAMETERS: &str = "Octopus.Action.Script.ScriptParameters";
    /// Seconds after which the script is stopped.
    pub const TIMEOUT: &str = "Octopus.Action.Script.Timeout";
    /// Skip the environment information block.
    pub const SUPPRESS_ENVIRONMENT_LOGGING: &str = "Octopus.Action.Script.SuppressEnvironmentLogging";
    /// Run pwsh with -NoProfile.
    pub const POWERSHELL_WITHOUT_PROFILE: &str = "Octopus.Action.PowerShell.ExecuteWithoutProfile";
    /// Prefix of script modules: `Octopus.Script.Module[Name]`.
    pub const MODULE_PREFIX: &str = "Octopus.Script.Module[";
    /// Prefix of script module languages: `Octopus.Script.Module.Language[Name]`.
    pub const MODULE_LANGUAGE_PREFIX: &str = "Octopus.Script.Module.Language[";
}

/// Runs `script` (syntax from its extension) with `parameters`, in the script's directory.
/// Service messages are applied (`setVariable` sets output variables in `variables`), all
/// output goes to `log`, masked. Temp files are removed on every path.
///
/// # Errors
/// Failing to start, timeout, cancellation, unknown syntax, missing interpreter. A non-zero
/// exit is an `Ok` outcome.
pub fn run_script(
    script: &Path,
    parameters: Option<&str>,
    variables: &mut VariableDictionary,
    log: &Log,
) -> Result<ScriptOutcome, Error> {
    let syntax = ScriptSyntax::from_path(script).ok_or_else(|| Error::UnknownSyntax(script.to_path_buf()))?;
    let script = absolute(script)?;
    if !script.is_file() {
        return Err(Error::Invalid(format!("Could not find the script file '{}'", script.display())));
    }
    let dir = script.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    let parameters = parameters.map(str::trim).filter(|p| !p.is_empty());

    let step = workspace::StepDir::create()?;
    // bash gets the variables inside its bootstrap; the others read a NUL-separated file.
    let variables_file = match syntax {
        ScriptSyntax::Bash => None,
        _ => Some(step.write("Variables.bin", &variables_payload(variables)?)?),
    };
    let variables_file = variables_file.as_deref().unwrap_or(Path::new(""));
    let modules = RemoveOnDrop(write_script_modules(&dir, syntax, variables)?);

    let mut cmd = match syntax {
        ScriptSyntax::Bash => {
            bash::normalise_line_endings(&script)?;
            let bootstrap = bash::write(&step, &evaluated_variables(variables)?, &script, parameters)?;
            let mut cmd = Command::new(find_program("bash").ok_or_else(|| {
                Error::InterpreterMissing(format!(
                    "bash was not found on the PATH; it is needed to run '{}'",
                    script.display()
                ))
            })?);
            // `$0` is the user's script (so `$(dirname "$0")` finds its siblings), not the
            // bootstrap in the private step directory.
            cmd.args(["--noprofile", "--norc", "-c", "source \"$1\""]).arg(&script).arg(bootstrap);
            cmd
        }
        ScriptSyntax::Python => {
            let bootstrap = python::write(&step)?;
            let program = find_program("python3").ok_or_else(|| {
                Error::InterpreterMissing(format!(
                    "Python 3 (python3) was not found on the PATH; it is needed to run '{}'",
                    script.display()
                ))
            })?;
            let mut cmd = Command::new(program);
            let params = parameters.map(split_parameters).unwrap_or_default();
            cmd.args(python::arguments(&bootstrap, variables_file, &script, &params));
            // Script modules are removed after the step: leave no compiled copies behind.
            cmd.env("PYTHONDONTWRITEBYTECODE", "1");
            if std::env::var_os("PYTHONIOENCODING").is_none() {
                cmd.env("PYTHONIOENCODING", "utf-8:surrogateescape");
            }
            cmd
        }
        ScriptSyntax::PowerShell => {
            let text = powershell::bootstrap_text(variables_file, &script, parameters, &modules.0);
            // UTF-8 with BOM, as the reference writes PowerShell files.
            let mut bytes = b"\xEF\xBB\xBF".to_vec();
            bytes.extend_from_slice(text.as_bytes());
            let bootstrap = step.write("Bootstrap.ps1", &bytes)?;
            let program = find_program("pwsh").ok_or_else(|| {
                Error::InterpreterMissing(format!(
                    "PowerShell Core (pwsh) was not found on the PATH; it is needed to run '{}'",
                    script.display()
                ))
            })?;
            let mut cmd = Command::new(program);
            cmd.args(powershell::arguments(
                &bootstrap,
                variables.get_flag(variable_names::POWERSHELL_WITHOUT_PROFILE, false)?,
            ));
            cmd
        }
    };
    cmd.current_dir(&dir);
    if let Ok(cwd) = std::env::current_dir() {
        cmd.env(crate::env_vars::CALAMARI_WORKING_DIRECTORY, cwd);
    }
    if !variables.get_flag(variable_names::SUPPRESS_ENVIRONMENT_LOGGING, false)? {
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
    drop(modules);
    drop(step);
    match result {
        Ok(process::Exit::Code(exit_code)) => Ok(ScriptOutcome { exit_code, had_error_output }),
        Ok(process::Exit::Signal(signal)) => {
            log.error(format!(
                "The script '{}' was terminated by signal {signal} ({})",
                script.display(),
                process::signal_name(signal)
            ));
            Ok(ScriptOutcome { exit_code: 128 + signal, had_error_output: true })
        }
        Err(process::Stopped::Timeout) => Err(Error::Timeout { script, seconds: timeout.unwrap_or_default() }),
        Err(process::Stopped::Signal(signal)) => {
            Err(Error::Cancelled { script, signal, name: process::signal_name(signal) })
        }
    }
}

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

/// `run-script`: runs the script, sets the output variable `Octopus.Action.Script.ExitCode`
/// and returns the step's exit code (see [`ScriptOutcome::effective_exit_code`]).
///
/// # Errors
/// As [`run_script`]; also when there is no script to run.
pub fn run_script_command(
    request: &RunScriptRequest,
    variables: &mut VariableDictionary,
    log: &Log,
) -> Result<i32, Error> {
    let mut written: Option<RemoveOnDrop> = None;
    let staged;
    let request = match &request.package {
        None => request,
        Some(package) => {
            let directory = unique_directory(&request.working_directory.join("staging"));
            let options = crate::package::ExtractOptions::from_variables(variables)?;
            let summary = crate::package::extract(package, &directory, &options, log)?;
            log.verbose(format!(
                "Extracted {} files from '{}' to '{}'",
                summary.file_count,
                package.display(),
                directory.display()
            ));
            staged = RunScriptRequest { working_directory: directory, package: None, ..request.clone() };
            &staged
        }
    };
    let script = match &request.script {
        Some(path) => request.working_directory.join(path),
        None if inline_script(variables)?.is_none() => {
            match variables.get(variable_names::SCRIPT_FILE_NAME)?.filter(|n| !n.trim().is_empty()) {
                Some(name) => request.working_directory.join(name.trim()),
                None => {
                    return Err(Error::Invalid(
                        "No script to run: give --script, or set Octopus.Action.Script.ScriptBody (with Octopus.Action.Script.Syntax) or Octopus.Action.Script.ScriptFileName"
                            .to_string(),
                    ));
                }
            }
        }
        None => {
            let (syntax, body) = inline_script(variables)?.expect("checked above");
            let path = request.working_directory.join(format!("Script.{}", syntax.extension()));
            let mut bytes = Vec::new();
            if syntax == ScriptSyntax::PowerShell {
                bytes.extend_from_slice(b"\xEF\xBB\xBF");
            }
            bytes.extend_from_slice(body.as_bytes());
            crate::fs::write(&path, bytes)?;
            if variables.get_flag(names::DELETE_SCRIPTS_ON_CLEANUP, true)? {
                written = Some(RemoveOnDrop(vec![path.clone()]));
            }
            path
        }
    };
    let parameters = match &request.parameters {
        Some(p) => Some(p.clone()),
        None => variables.get(variable_names::SCRIPT_PARAMETERS)?,
    };
    let outcome = run_script(&script, parameters.as_deref(), variables, log)?;
    drop(written);
    let code = outcome.exit_code.to_string();
    variables.set_output(names::SCRIPT_EXIT_CODE, &code, false);
    log.output_variable(names::SCRIPT_EXIT_CODE, &code, false);
    outcome.effective_exit_code(variables)
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

/// The inline script from `Octopus.Action.Script.ScriptBody` + `.Syntax`, or
/// `Octopus.Action.Script.ScriptBody[<Syntax>]` in the preferred order.
///
/// # Errors
/// When a value cannot be evaluated or the syntax is unknown.
pub fn inline_script(variables: &VariableDictionary) -> Result<Option<(ScriptSyntax, String)>, Error> {
    if let Some(body) = variables.get(variable_names::SCRIPT_BODY)?.filter(|b| !b.trim().is_empty()) {
        let syntax = match variables.get(variable_names::SYNTAX)? {
            Some(name) if !name.trim().is_empty() => ScriptSyntax::from_name(&name).ok_or_else(|| {
                Error::Invalid(format!("Unknown script syntax '{name}' in {}", variable_names::SYNTAX))
            })?,
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

/// Writes the script modules of `syntax` (`Octopus.Script.Module[Name]` whose
/// `Octopus.Script.Module.Language[Name]`, default PowerShell, matches) into `dir`: bash
/// `<Name>.sh` (scripts `source` it), Python `<Name>.py` (`import`), PowerShell
/// `Library_<Name>_<ticks>.psm1` (imported by the bootstrap). Names keep only
/// `[A-Za-z0-9_-]`. Returns the files written; the caller removes them.
///
/// # Errors
/// When a value cannot be evaluated or a file cannot be written.
pub fn write_script_modules(
    dir: &Path,
    syntax: ScriptSyntax,
    variables: &VariableDictionary,
) -> Result<Vec<PathBuf>, Error> {
    let mut written = Vec::new();
    let names: Vec<String> = variables.names().map(str::to_string).collect();
    for var in names {
        let Some(module) =
            strip_prefix_ignore_case(&var, variable_names::MODULE_PREFIX).and_then(|r| r.strip_suffix(']'))
        else {
            continue;
        };
        let language_var = format!("{}{module}]", variable_names::MODULE_LANGUAGE_PREFIX);
        let language = variables
            .get(&language_var)?
            .filter(|l| !l.trim().is_empty())
            .map(|l| ScriptSyntax::from_name(&l))
            .unwrap_or(Some(ScriptSyntax::PowerShell));
        if language != Some(syntax) {
            continue;
        }
        let clean: String = module.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
        if clean.is_empty() {
            continue;
        }
        let file = match syntax {
            ScriptSyntax::Bash => format!("{clean}.sh"),
            ScriptSyntax::Python => format!("{clean}.py"),
            ScriptSyntax::PowerShell => {
                let ticks = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() / 100)
                    .unwrap_or_default();
                format!("Library_{clean}_{ticks}.psm1")
            }
        };
        let body = variables.get(&var)?.unwrap_or_default();
        let path = dir.join(file);
        crate::fs::write(&path, body.replace("\r\n", "\n"))?;
        written.push(path);
    }
    Ok(written)
}

/// Every variable with its evaluated value (null as empty; NUL bytes, which no script
/// variable can hold, removed), in order. Names that are empty or hold NUL are skipped.
///
/// # Errors
/// When a value cannot be evaluated (a recursive definition).
pub fn evaluated_variables(variables: &VariableDictionary) -> Result<Vec<(&str, String)>, Error> {
    let mut out = Vec::with_capacity(variables.len());
    for variable in variables.iter() {
        if variable.name.is_empty() || variable.name.contains('\0') {
            continue;
        }
        let value = match &variable.value {
            None => String::new(),
            Some(raw) if !raw.contains("#{") => raw.clone(),
            Some(_) => variables.get(&variable.name)?.unwrap_or_default(),
        };
        let value = if value.contains('\0') { value.replace('\0', "") } else { value };
        out.push((variable.name.as_str(), value));
    }
    Ok(out)
}

/// The variables file for Python and PowerShell: `name NUL value NUL ...`, UTF-8.
///
/// # Errors
/// As [`evaluated_variables`].
pub fn variables_payload(variables: &VariableDictionary) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(variables.len() * 64);
    for (name, value) in evaluated_variables(variables)? {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    Ok(out)
}

/// Splits parameters as a POSIX shell would split words (no expansion): whitespace
/// separates, `'...'` is literal, `"..."` honours `\"` and `\\`, a backslash outside quotes
/// escapes the next character. Used for interpreters that take an argv (Python).
pub fn split_parameters(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    current.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            current.push(chars.next().expect("peeked"));
                        }
                        c => current.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            c => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        out.push(current);
    }
    out
}

/// Files removed when dropped.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn absolute(path: &Path) -> Result<PathBuf, Error> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| Error::Invalid(format!("Cannot read the current directory: {e}")))?;
    Ok(cwd.join(path))
}

/// The first `name` on the PATH that is an executable file.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The reference's environment information block, gathered without starting any process.
fn log_environment(log: &Log, syntax: ScriptSyntax, dir: &Path) {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
    let user = std::env::var("USER").unwrap_or_else(|_| rustix::process::geteuid().as_raw().to_string());
    // Online CPUs, without the cgroup probing of `available_parallelism` (cost per step).
    let cpus = read("/sys/devices/system/cpu/online")
        .split(',')
        .map(|r| {
            r.split_once('-').map_or(1, |(a, b)| b.parse::<usize>().unwrap_or(0) + 1 - a.parse::<usize>().unwrap_or(0))
        })
        .sum::<usize>();
    log.verbose(format!(
        "{} Environment Information:\n  OperatingSystem: {} {}\n  CurrentUser: {user}\n  HostName: {}\n  ProcessorCount: {cpus}\n  CurrentDirectory: {}\n  TempDirectory: {}\n  HostProcessID: {}",
        syntax.name(),
        read("/proc/sys/kernel/ostype"),
        read("/proc/sys/kernel/osrelease"),
        read("/proc/sys/kernel/hostname"),
        dir.display(),
        std::env::temp_dir().display(),
        std::process::id()
    ));
}

#[cfg(test)]
mod tests;
