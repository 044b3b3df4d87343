//! [`Error`]: every way running a script can fail, each variant with the data its message
//! names.

use std::path::PathBuf;

use super::ScriptSyntax;

/// Errors of the script module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// Evaluating variables failed.
    #[error(transparent)]
    Variables(#[from] crate::variables::Error),
    /// The script file does not exist (or is not a file).
    #[error("Could not find the script file '{path}'")]
    ScriptNotFound {
        /// The script, made absolute.
        path: PathBuf,
    },
    /// A relative script path could not be resolved.
    #[error("Cannot read the current directory: {source}")]
    CurrentDirectory {
        /// Why.
        source: std::io::Error,
    },
    /// The file's extension names no script language we run.
    #[error(
        "Cannot run the script '{script}': its extension names no known script syntax (expected .sh for bash, .ps1 for PowerShell or .py for Python)"
    )]
    UnknownSyntax {
        /// The script.
        script: PathBuf,
    },
    /// A variable names a script syntax we do not know.
    #[error("Unknown script syntax '{name}' in {variable}")]
    UnknownSyntaxName {
        /// The value found.
        name: String,
        /// The variable that held it.
        variable: &'static str,
    },
    /// The server's script functions registration is not valid.
    #[error("Cannot generate the script functions of {variable}: {reason}")]
    ScriptFunctions {
        /// The variable.
        variable: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `run-script` found neither a script file nor an inline script.
    #[error(
        "No script to run: give --script, or set Octopus.Action.Script.ScriptBody (with Octopus.Action.Script.Syntax) or Octopus.Action.Script.ScriptFileName"
    )]
    NoScriptToRun,
    /// The interpreter is not on the PATH.
    #[error("{description} was not found on the PATH; it is needed to run '{script}'.{install}")]
    InterpreterMissing {
        /// The program looked for (`bash`, `python3`, `pwsh`).
        program: &'static str,
        /// How messages name it ("Python 3 (python3)").
        description: &'static str,
        /// How to install it (a sentence with a leading space, or empty).
        install: &'static str,
        /// The syntax it runs.
        syntax: ScriptSyntax,
        /// The script that needed it.
        script: PathBuf,
    },
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
