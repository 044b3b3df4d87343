//! The standalone file commands, each one convention of `deploy-package` run on its own
//! against a directory that is already there:
//!
//! | command | reference | directory | targets |
//! |---|---|---|---|
//! | `substitute-in-files` | `SubstituteInFilesCommand` | `--targetPathVariable` (or our `--path`) | `--filesToTarget` (or our `--targetFiles`), else `Octopus.Action.SubstituteInFiles.TargetFiles` |
//! | `substitute-variables-in-files` | `SubstituteVariablesInFilesCommand` | the current deployment's: `OctopusOriginalPackageDirectoryPath`, else the working directory | `--filesToTarget`, split at newlines and `;` |
//! | `structured-config-variables` | `StructuredConfigVariablesCommand` | `--targetPathVariable` (or our `--path`) | `Octopus.Action.Package.JsonConfigurationVariablesTargets` |
//!
//! The reference reaches these only through `execute-manifest` (they are input commands:
//! a JSON object such as `{"targetPathVariable": "..."}`); here they are ordinary commands
//! whose options carry the inputs' names. A `--targetPathVariable` names a variable whose
//! raw value (not evaluated, as the reference's `GetRaw`) is the directory; a variable that
//! is missing or blank fails with the reference's message. Unlike the reference, a directory
//! that does not exist is an error naming it (the reference finds no files and warns), and
//! every command is all or nothing: a file that cannot be processed leaves every file as it
//! was (see [`crate::substitute_in_files`] and [`crate::replace_in_files`]).

use std::path::{Path, PathBuf};

use super::Error;
use crate::log::Log;
use crate::structured::{self, StructuredSummary};
use crate::substitution::{self, SubstitutionSummary};
use crate::variables::{VariableDictionary, names};
use crate::{Result, UsageError};

/// The reference's class names, as its "could not locate" messages name them.
const SUBSTITUTE_IN_FILES: &str = "SubstituteInFilesCommand";
const STRUCTURED_CONFIG_VARIABLES: &str = "StructuredConfigVariablesCommand";

/// The directory a file command's target globs are relative to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetDirectory {
    /// A directory given directly (`--path`); relative to the working directory.
    Path(PathBuf),
    /// The raw value of this variable (`--targetPathVariable`); relative to the working directory.
    Variable(String),
}

/// `substitute-in-files`: substitutes variables in the files under `directory` that
/// `targets` match (globs), or, when `targets` is `None`, those that the
/// `Octopus.Action.SubstituteInFiles.TargetFiles` variable's globs match.
///
/// # Errors
/// The directory cannot be found (a variable that is missing or blank, a directory that
/// does not exist), or as [`crate::substitute_in_files`].
pub fn substitute_in_files_command(
    directory: &TargetDirectory,
    targets: Option<Vec<String>>,
    working_directory: &Path,
    variables: &VariableDictionary,
    log: &Log,
) -> Result<SubstitutionSummary> {
    let dir = resolve(directory, SUBSTITUTE_IN_FILES, working_directory, variables)?;
    let targets = match targets {
        Some(targets) => targets,
        None => variables.get_paths(substitution::TARGET_FILES)?,
    };
    substitute(&dir, &targets, variables, log)
}

/// `substitute-variables-in-files`: substitutes variables in the files that
/// `files_to_target` names (globs separated by newlines or `;`), relative to the current
/// deployment's directory: `OctopusOriginalPackageDirectoryPath` when it is set, else
/// `working_directory` (the reference's `RunningDeployment.CurrentDirectory`).
///
/// # Errors
/// `OctopusOriginalPackageDirectoryPath` names a directory that does not exist, or as
/// [`crate::substitute_in_files`].
pub fn substitute_variables_in_files(
    files_to_target: &str,
    working_directory: &Path,
    variables: &VariableDictionary,
    log: &Log,
) -> Result<SubstitutionSummary> {
    let dir = match variables.get(names::ORIGINAL_PACKAGE_DIRECTORY_PATH)?.filter(|d| !d.trim().is_empty()) {
        Some(dir) => existing(working_directory.join(dir), Some(names::ORIGINAL_PACKAGE_DIRECTORY_PATH.to_string()))?,
        None => working_directory.to_path_buf(),
    };
    let targets: Vec<String> =
        files_to_target.split(['\n', '\r', ';']).filter(|t| !t.is_empty()).map(str::to_string).collect();
    substitute(&dir, &targets, variables, log)
}

/// `structured-config-variables`: replaces structured configuration variables in the
/// files under `directory` that `Octopus.Action.Package.JsonConfigurationVariablesTargets`
/// names, whether or not the feature is enabled (the reference's command does not ask).
///
/// # Errors
/// The directory cannot be found, or as [`crate::replace_in_files`] (a file that does not
/// parse names the file and the format; nothing is then written).
pub fn structured_config_variables(
    directory: &TargetDirectory,
    working_directory: &Path,
    variables: &VariableDictionary,
    log: &Log,
) -> Result<StructuredSummary> {
    let dir = resolve(directory, STRUCTURED_CONFIG_VARIABLES, working_directory, variables)?;
    let targets = variables.get_paths(structured::TARGETS_VARIABLE)?;
    if targets.iter().all(|t| t.trim().is_empty()) {
        log.info(format!(
            "No structured configuration target files are given in {}; nothing to do",
            structured::TARGETS_VARIABLE
        ));
        return Ok(StructuredSummary::default());
    }
    let summary = structured::replace_in_files(&dir, &targets, variables, log)?;
    log.verbose(format!(
        "Structured variable replacement changed {} of {} file(s) in {}",
        summary.changed_files(),
        summary.files.len(),
        dir.display()
    ));
    Ok(summary)
}

fn substitute(
    dir: &Path,
    targets: &[String],
    variables: &VariableDictionary,
    log: &Log,
) -> Result<SubstitutionSummary> {
    if targets.iter().all(|t| t.trim().is_empty()) {
        log.info("No substitution target files were given; nothing to do");
        return Ok(SubstitutionSummary::default());
    }
    let summary = substitution::substitute_in_files(dir, targets, variables, log)?;
    log.verbose(format!(
        "Substituted variables in {} of {} matched file(s)",
        summary.substituted.len(),
        summary.files.len()
    ));
    Ok(summary)
}

/// The directory `directory` names, which must exist.
fn resolve(
    directory: &TargetDirectory,
    command: &'static str,
    working_directory: &Path,
    variables: &VariableDictionary,
) -> Result<PathBuf> {
    match directory {
        TargetDirectory::Path(path) => existing(working_directory.join(path), None),
        TargetDirectory::Variable(name) => match variables.get_raw(name).filter(|v| !v.trim().is_empty()) {
            Some(value) => existing(working_directory.join(value), Some(name.clone())),
            None => Err(Error::TargetPathVariableMissing { variable: name.clone(), command }.into()),
        },
    }
}

fn existing(dir: PathBuf, variable: Option<String>) -> Result<PathBuf> {
    if dir.is_dir() {
        return Ok(dir);
    }
    Err(match variable {
        Some(variable) => Error::TargetDirectoryNotFound { directory: dir, variable }.into(),
        None => UsageError::DirectoryNotFound(dir).into(),
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> VariableDictionary {
        let mut d = VariableDictionary::new();
        for (k, v) in pairs {
            d.set(*k, Some((*v).to_string()));
        }
        d
    }

    #[test]
    fn a_target_path_variable_is_read_raw_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("app")).unwrap();
        let d = vars(&[("Dir", "app"), ("Other", "#{Dir}"), ("Blank", " ")]);
        let by = |name: &str| resolve(&TargetDirectory::Variable(name.into()), "XCommand", dir.path(), &d);
        assert_eq!(by("Dir").unwrap(), dir.path().join("app"));
        // Raw: `#{Dir}` is not evaluated, so it names a directory that does not exist.
        assert_eq!(
            by("Other").unwrap_err().to_string(),
            format!(
                "The directory '{}' named by the variable Other does not exist",
                dir.path().join("#{Dir}").display()
            )
        );
        for missing in ["Missing", "Blank"] {
            assert_eq!(
                by(missing).unwrap_err().to_string(),
                format!("Could not locate target path from variable {missing} for XCommand")
            );
        }
        let path = resolve(&TargetDirectory::Path("nope".into()), "XCommand", dir.path(), &d).unwrap_err();
        assert_eq!(path.to_string(), format!("The directory '{}' does not exist", dir.path().join("nope").display()));
    }

    #[test]
    fn files_to_target_split_at_newlines_and_semicolons() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.txt", "b.txt", "c.txt", "d.txt"] {
            std::fs::write(dir.path().join(name), "#{X}").unwrap();
        }
        let d = vars(&[("X", "1")]);
        let (log, _, _) = Log::capture();
        let summary = substitute_variables_in_files("a.txt;b.txt\r\nc.txt;;", dir.path(), &d, &log).unwrap();
        assert_eq!(summary.substituted.len(), 3);
        assert_eq!(std::fs::read_to_string(dir.path().join("c.txt")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(dir.path().join("d.txt")).unwrap(), "#{X}");
    }
}
