//! The Octostache templating language: a parser producing a syntax tree ([`parse`],
//! [`Template`]), and an evaluator over a [`VariableDictionary`] ([`evaluate`]).
//!
//! Behaviour follows `octostache.md` (the reference's specification), quirks included:
//! unresolved tokens are echoed in canonical form, a malformed template comes back
//! unchanged in the default [`ParseMode::Halt`], and [`ParseMode::Resilient`] keeps
//! unparseable fragments as text. Deep nesting and long variable chains never overflow
//! the stack (nesting is limited to [`parser::MAX_NESTING`] levels; evaluation grows its
//! stack on the heap), and a self-referencing variable is reported with its chain.
//!
//! One evaluation is bounded ([`limits`]): no evaluated value may grow past
//! `Octopus.Calamari.Template.MaximumValueSize` bytes (default 64 MiB) and one evaluation
//! may take at most `Octopus.Calamari.Template.MaximumWork` steps (default 100 million);
//! going past either is a user error naming the variable or the template position.

pub(crate) mod ast;
pub(crate) mod calc;
pub(crate) mod dotnet;
mod eval;
pub(crate) mod filters;
pub(crate) mod json;
pub(crate) mod limits;
pub(crate) mod parser;
pub(crate) mod stream;
pub(crate) mod tree;
mod uri;
pub(crate) mod version;

pub use ast::Template;
pub(crate) use eval::is_truthy;
pub use parser::ParseError;

use super::{Error, Evaluation, VariableDictionary};

/// How evaluation treats a malformed template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseMode {
    /// The reference default: a malformed template comes back unchanged, with an error.
    Halt,
    /// Resilient: unparseable fragments stay as text, the rest is substituted.
    Resilient,
}

/// Parses a template; the error names the line and column.
///
/// # Errors
/// [`ParseError`] when some `#{` does not start a valid token.
pub fn parse(text: &str) -> Result<Template, ParseError> {
    parser::parse(text)
}

/// Parses in the resilient mode (never fails).
pub fn parse_resilient(text: &str) -> Template {
    parser::parse_resilient(text)
}

/// Evaluates `text` against `variables`.
///
/// # Errors
/// [`Error::RecursiveDefinition`] when a value refers back to itself (exit code 101);
/// [`Error::LimitExceeded`] past a limit.
pub(crate) fn evaluate(variables: &VariableDictionary, text: &str, mode: ParseMode) -> Result<Evaluation, Error> {
    Ok(evaluate_checked(variables, text, mode)?
        .unwrap_or_else(|e| Evaluation { output: Some(text.to_string()), error: Some(e.message) }))
}

/// Evaluates `text`, reporting a parse failure (halting mode only) as a [`ParseError`]
/// with its line and column instead of an error text. Tokens are evaluated as they are
/// parsed, so memory stays proportional to the input and output.
///
/// # Errors
/// [`Error::RecursiveDefinition`] when a value refers back to itself (but a parse error
/// anywhere in a halting-mode template takes precedence, as in the reference);
/// [`Error::LimitExceeded`] past a limit, with the position of the top-level token;
/// [`Error::InvalidLimit`] for a limit variable that is not a positive number.
pub(crate) fn evaluate_checked(
    variables: &VariableDictionary,
    text: &str,
    mode: ParseMode,
) -> Result<Result<Evaluation, ParseError>, Error> {
    if memchr::memmem::find(text.as_bytes(), b"#{").is_none() {
        return Ok(Ok(Evaluation { output: Some(text.to_string()), error: None }));
    }
    let evaluator = eval::Evaluator::new(variables.tree(), variables.template_limits()?);
    let scope = eval::Scope::root();
    let max_output = evaluator.limits().max_output(text.len());
    let mut out = String::with_capacity(text.len().saturating_add(text.len() / 2).min(max_output));
    let mut run = eval::Run::new(max_output);
    let mut failed: Option<(usize, Error)> = None;
    let parsed = parser::for_each_token::<std::convert::Infallible>(text, mode == ParseMode::Resilient, |pos, t| {
        if failed.is_none()
            && let Err(e) = evaluator.render(std::slice::from_ref(&t), &scope, &mut out, &mut run)
        {
            failed = Some((pos, e));
        }
        Ok(())
    });
    let parsed = match parsed {
        Ok(p) => p,
        Err(never) => match never {},
    };
    if let Err(e) = parsed {
        return Ok(Err(e));
    }
    if let Some((pos, mut e)) = failed {
        if let Error::LimitExceeded { at, .. } = &mut e {
            at.position = Some(limits::line_column(text, pos));
        }
        return Err(e);
    }
    Ok(Ok(Evaluation { output: if run.null { None } else { Some(out) }, error: eval::missing_error(&run.missing) }))
}

/// The index keys directly under a collection path (`Octopus.Action` → `Package A`, ...),
/// resolved as `#{each}` resolves its collection.
///
/// # Errors
/// [`Error::Template`] for a blank or unparseable path; recursion as [`evaluate`].
pub(crate) fn indexes(variables: &VariableDictionary, path: &str) -> Result<Vec<String>, Error> {
    if path.trim().is_empty() {
        return Err(Error::Template { message: "A collection path is required".into() });
    }
    let Some(p) = parser::parse_name(path) else {
        return Err(Error::Template { message: format!("Could not parse the collection path '{path}'") });
    };
    eval::Evaluator::new(variables.tree(), variables.template_limits()?).indexes(&p).map_err(|e| e.asked_for(path))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests;
