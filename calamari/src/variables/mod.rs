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
}
