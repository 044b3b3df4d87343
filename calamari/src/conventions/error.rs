//! [`Error`]: how a convention of `deploy-package` or `transfer-package` fails. Errors of the
//! modules a convention calls (package, script, substitution...) keep their own type and
//! reach the caller as the crate's [`crate::Error`] directly.

use std::path::PathBuf;

use super::Stage;

/// A convention failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// The package file given does not exist.
    #[error("Could not find package file: {}", .0.display())]
    PackageNotFound(PathBuf),
    /// The package path cannot be made absolute.
    #[error("Could not resolve the package path '{}': {source}", path.display())]
    PackagePath {
        /// The path as given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A variable that the convention needs has no value.
    #[error("No {what} was specified. Please provide `{variable}` variable")]
    MissingVariable {
        /// What is missing, as the reference says it ("package file", "transfer path").
        what: &'static str,
        /// The variable to set.
        variable: &'static str,
    },
    /// A package file name that is not a plain name (transfer-package).
    #[error("The package file name '{file_name}' (from `{variable}`) is not a plain file name")]
    NotAPlainFileName {
        /// The name.
        file_name: String,
        /// Where it came from.
        variable: &'static str,
    },
    /// A configured C# script: not supported on this platform.
    #[error("CSharp scripts are not supported on this platform ({stage})")]
    CSharpUnsupported {
        /// The stage it was configured for.
        stage: Stage,
    },
    /// A script exited with a non-zero code.
    #[error("{}", script_failed_message(*stage, script, *configured, *exit_code))]
    ScriptFailed {
        /// The stage.
        stage: Stage,
        /// The script that ran.
        script: PathBuf,
        /// Whether it was a configured script (from a variable) rather than a packaged one.
        configured: bool,
        /// Its exit code.
        exit_code: i32,
    },
    /// An embedded feature script exited with a non-zero code.
    #[error("Script '{}' returned non-zero exit code: {exit_code}", script.display())]
    FeatureScriptFailed {
        /// The script that ran.
        script: PathBuf,
        /// Its exit code.
        exit_code: i32,
    },
    /// A script exited with 0 but wrote to stderr, and `OctopusFailScriptOnErrorOutput` is set.
    #[error("{}", error_output_message(*stage, script, *configured))]
    ScriptErrorOutput {
        /// The stage.
        stage: Stage,
        /// The script that ran.
        script: PathBuf,
        /// Whether it was a configured script.
        configured: bool,
    },
    /// The custom installation directory's value cannot be evaluated.
    #[error("An error occurred when evaluating the value for the custom install directory. {message}")]
    CustomDirectoryEvaluation {
        /// The template error.
        message: String,
    },
    /// The custom installation directory is relative.
    #[error(
        "The custom install directory '{}' is a relative path, please specify the path as an absolute path or a UNC path.",
        .0.display()
    )]
    CustomDirectoryRelative(PathBuf),
    /// The custom installation directory is inside the staging directory.
    #[error(
        "The custom install directory '{}' is a child directory of the base installation directory '{}', please specify a different destination.",
        custom.display(), staging.display()
    )]
    CustomDirectoryInsideStaging {
        /// The custom directory.
        custom: PathBuf,
        /// The staging directory.
        staging: PathBuf,
    },
    /// A purge exclusion is not a valid pattern.
    #[error("{0}")]
    PurgeExclusion(#[source] crate::glob::GlobError),
    /// A file command's `--targetPathVariable` names a variable that is missing or blank
    /// (the reference's message, naming its command class).
    #[error("Could not locate target path from variable {variable} for {command}")]
    TargetPathVariableMissing {
        /// The variable.
        variable: String,
        /// The reference's command class (`StructuredConfigVariablesCommand`).
        command: &'static str,
    },
    /// The directory a variable names for a file command does not exist.
    #[error("The directory '{}' named by the variable {variable} does not exist", directory.display())]
    TargetDirectoryNotFound {
        /// The directory (made absolute against the working directory).
        directory: PathBuf,
        /// The variable that named it.
        variable: String,
    },
    /// Copying into the custom installation directory failed.
    #[error("{0}. Ensure that the application that uses this directory is not running.")]
    CopyToCustomDirectory(#[source] crate::fs::IoError),
}

fn script_failed_message(stage: Stage, script: &std::path::Path, configured: bool, code: i32) -> String {
    if configured {
        format!("{stage} script returned non-zero exit code: {code}")
    } else {
        format!("Script '{}' returned non-zero exit code: {code}. Deployment terminated.", script.display())
    }
}

fn error_output_message(stage: Stage, script: &std::path::Path, configured: bool) -> String {
    if configured {
        format!("{stage} script returned zero exit code but had error output.")
    } else {
        format!("Script '{}' returned zero exit code but had error output.", script.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_failures_keep_stage_script_and_exit_code_and_read_as_the_reference() {
        let script = PathBuf::from("/w/s.sh");
        let cases = [
            (
                Error::ScriptFailed { stage: Stage::PreDeploy, script: script.clone(), configured: true, exit_code: 3 },
                "PreDeploy script returned non-zero exit code: 3",
            ),
            (
                Error::ScriptFailed { stage: Stage::Deploy, script: script.clone(), configured: false, exit_code: 3 },
                "Script '/w/s.sh' returned non-zero exit code: 3. Deployment terminated.",
            ),
            (
                Error::ScriptErrorOutput { stage: Stage::Deploy, script: script.clone(), configured: true },
                "Deploy script returned zero exit code but had error output.",
            ),
            (
                Error::ScriptErrorOutput { stage: Stage::PostDeploy, script, configured: false },
                "Script '/w/s.sh' returned zero exit code but had error output.",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
            assert_eq!(crate::Error::from(error).kind(), crate::error::ErrorKind::User, "{message}");
        }
    }
}
