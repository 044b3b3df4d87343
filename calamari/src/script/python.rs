//! Running Python scripts: the bootstrap (`bootstrap/Bootstrap.py`, standard library only)
//! loads the variables file, defines the helpers and runs the script as `__main__`, under
//! `python3 -u`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::interpreter::Launch;
use super::workspace::StepDir;
use super::{Error, variables_payload};

/// The bootstrap, run as `python3 -u Bootstrap.py <variables file> <script> [params...]`.
pub(crate) const BOOTSTRAP: &str = include_str!("bootstrap/Bootstrap.py");

/// The interpreter.
pub(crate) const PROGRAM: &str = "python3";

/// The command running `launch.script`, with the variables file and bootstrap written.
///
/// # Errors
/// When a file cannot be written, a variable cannot be evaluated, or python3 is not on
/// the PATH.
pub(crate) fn command(launch: &Launch<'_>) -> Result<Command, Error> {
    let variables_file = launch.step.write("Variables.bin", &variables_payload(launch.variables)?)?;
    let bootstrap = write(launch.step)?;
    let mut cmd = Command::new(launch.interpreter);
    let params = launch.parameters.map(split_parameters).unwrap_or_default();
    cmd.args(arguments(&bootstrap, &variables_file, launch.script, &params));
    // Script modules are removed after the step: leave no compiled copies behind.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    if std::env::var_os("PYTHONIOENCODING").is_none() {
        cmd.env("PYTHONIOENCODING", "utf-8:surrogateescape");
    }
    Ok(cmd)
}

/// Writes the bootstrap into the step directory and returns its path.
pub(crate) fn write(step: &StepDir) -> crate::fs::Result<PathBuf> {
    step.write("Bootstrap.py", BOOTSTRAP.as_bytes())
}

/// The arguments after the interpreter.
pub(crate) fn arguments(
    bootstrap: &Path,
    variables_file: &Path,
    script: &Path,
    parameters: &[String],
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-u".into(), bootstrap.into(), variables_file.into(), script.into()];
    args.extend(parameters.iter().map(Into::into));
    args
}

/// Splits parameters as a POSIX shell would split words (no expansion): whitespace
/// separates, `'...'` is literal, `"..."` honours `\"` and `\\`, a backslash outside quotes
/// escapes the next character. Python takes an argv, not a command line.
pub(crate) fn split_parameters(text: &str) -> Vec<String> {
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
