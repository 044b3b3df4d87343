//! Variables: the [`VariableDictionary`], loading what the agent hands over
//! ([`input`], [`crypto`]), and the Octostache templating language ([`template`]).

pub(crate) mod crypto;
pub(crate) mod dictionary;
pub(crate) mod input;
pub(crate) mod names;
pub(crate) mod template;

use std::path::PathBuf;

pub use dictionary::{Evaluation, Variable, VariableDictionary};
pub use input::VariableSources;
use template::limits::{Limit, LimitContext};

/// Errors loading or evaluating variables.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A variables file was not found.
    #[error("Could not find variables file: {0}")]
    MissingFile(PathBuf),
    /// A variables file could not be read.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// A variables file is not the JSON it should be (reference wording first).
    #[error("Unable to parse variables as valid JSON. File '{path}': {detail}")]
    InvalidJson {
        /// The file at fault.
        path: PathBuf,
        /// What the JSON parser said, with line and column.
        detail: String,
    },
    /// An encrypted variables file could not be decrypted (reference wording first).
    #[error("Cannot decrypt variables. Check your password is correct. File '{path}': {detail}")]
    Decrypt {
        /// The file at fault.
        path: PathBuf,
        /// What went wrong (never contains the password or decrypted bytes).
        detail: String,
    },
    /// A password was given in a way that cannot be used.
    #[error("{0}")]
    Password(String),
    /// The file named by `AdditionalVariablesPath` is missing or unreadable (the reference's
    /// wording, which says how to turn it off).
    #[error(
        "Could not read additional variables from JSON file at '{}'. {reason} Make sure the file can be read or remove the 'AdditionalVariablesPath' environment variable.",
        path.display()
    )]
    AdditionalVariables {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
        /// Why it could not be read.
        #[source]
        source: Option<Box<Error>>,
    },
    /// A variable that must have a value has none.
    #[error("The variable '{0}' is required but no value is set.")]
    Required(String),
    /// A template could not be parsed (only in the mode that reports errors).
    #[error("{message}")]
    Template {
        /// The parser's message, with line and column.
        message: String,
    },
    /// A variable's value refers back to itself (`A -> B -> A`); exit code 101.
    #[error("{message}")]
    RecursiveDefinition {
        /// The reference's full message, naming the chain.
        message: String,
    },
    /// Evaluating a template went past one of its limits (value size or work); exit 1.
    #[error("{}", template::limits::describe(*limit, at))]
    LimitExceeded {
        /// Which limit, with its value.
        limit: Limit,
        /// Where: the variable being evaluated, or the template position.
        at: LimitContext,
    },
    /// A template limit variable's value is not a positive whole number.
    #[error("The variable '{variable}' must be a positive whole number, not '{value}'")]
    InvalidLimit {
        /// The limit variable.
        variable: &'static str,
        /// Its raw value.
        value: String,
    },
}

impl Error {
    /// Records that the error happened while evaluating the value of `variable` (the
    /// innermost one is kept); errors other than [`Error::LimitExceeded`] are unchanged.
    pub(crate) fn in_variable(mut self, variable: impl FnOnce() -> String) -> Self {
        if let Error::LimitExceeded { at, .. } = &mut self
            && at.variable.is_none()
        {
            at.variable = Some(variable());
        }
        self
    }

    /// Records the variable that was asked for, when the limit was exceeded somewhere in its
    /// value (a [`crate::VariableDictionary::get`]).
    pub(crate) fn asked_for(mut self, name: &str) -> Self {
        if let Error::LimitExceeded { at, .. } = &mut self {
            match &at.variable {
                None => at.variable = Some(name.to_string()),
                Some(v) if v.eq_ignore_ascii_case(name) => {}
                Some(_) => at.within = Some(name.to_string()),
            }
            at.position = None;
        }
        self
    }
}

/// The directories a target pattern is tried under: `dir`, then each of the newline-separated
/// `Octopus.Action.AdditionalPaths` (relative ones relative to `dir`), as the reference's
/// substitution and structured-configuration conventions search.
///
/// # Errors
/// A variable that cannot be evaluated.
pub(crate) fn target_roots(
    dir: &std::path::Path,
    variables: &VariableDictionary,
) -> Result<Vec<std::path::PathBuf>, Error> {
    let mut roots = vec![dir.to_path_buf()];
    roots.extend(variables.get_paths(names::ADDITIONAL_PATHS)?.iter().map(|p| dir.join(p)));
    Ok(roots)
}
