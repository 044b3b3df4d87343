//! The Octostache templating language: parser, syntax tree and evaluator over a
//! [`VariableDictionary`](super::VariableDictionary). Filled in by the templating work
//! (issue 4); until then evaluation returns text unchanged.

use super::{Error, Evaluation, VariableDictionary};

/// How evaluation treats a malformed template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseMode {
    /// The reference default: a malformed template comes back unchanged, with an error.
    Halt,
    /// Resilient: unparseable fragments stay as text, the rest is substituted.
    Resilient,
}

/// Evaluates `text` against `variables`.
///
/// # Errors
/// [`Error::RecursiveDefinition`] when a value refers back to itself.
pub fn evaluate(_variables: &VariableDictionary, text: &str, _mode: ParseMode) -> Result<Evaluation, Error> {
    Ok(Evaluation { output: Some(text.to_string()), error: None })
}
