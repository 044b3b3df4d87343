//! The leaf every layer may use: how a command that did not fail ended ([`Outcome`]), what is
//! wrong with a command's options ([`UsageError`]) and the display chain of any error
//! ([`chain`]). It imports nothing from the crate, so a module at the bottom (`env_vars`) can
//! use it without reaching up to [`crate::Error`], which aggregates every module's error.
//! [`crate::error`] re-exports all three, so `crate::error::Outcome` keeps working.

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked: exit 0.
    Success,
    /// `check-install`: the version asked for is missing or incomplete: exit 3, the code an
    /// agent reads as "push a newer Calamari".
    OutOfDate,
    /// `run-script`: the script ran and exited with this code, passed through unchanged.
    ScriptExited(i32),
}

/// A command's options or arguments are wrong (checked by the library, not by the parser).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// An option that must be given was not, or its value cannot be used; the message is
    /// the reference's wording.
    #[error("{message}")]
    BadOption {
        /// The option, as spelled on the command line (`--packageId`).
        option: &'static str,
        /// The reference's message.
        message: String,
    },
    /// An option's value cannot be used.
    #[error("{option} expects {expected}, found '{value}'")]
    InvalidOption {
        /// The option, as spelled on the command line.
        option: &'static str,
        /// The value given.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// Two options that exclude each other were both given.
    #[error("{0}")]
    Conflict(&'static str),
    /// An environment variable that the command needs is not set.
    #[error("Environment variable '{0}' has not been set.")]
    EnvironmentVariableNotSet(&'static str),
    /// A directory named by an option does not exist.
    #[error("The directory '{}' does not exist", .0.display())]
    DirectoryNotFound(std::path::PathBuf),
    /// A file named by an option does not exist.
    #[error("Could not find package file: {}", .0.display())]
    PackageNotFound(std::path::PathBuf),
    /// The process's working directory cannot be read.
    #[error("Cannot read the current directory: {0}")]
    CurrentDirectory(#[source] std::io::Error),
    /// Writing the result to standard output failed.
    #[error("Could not write the result to standard output: {0}")]
    Stdout(#[source] std::io::Error),
}

/// The display chain of any error: its message, then each `source` whose text the
/// message so far does not already contain.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
