//! The bounds of one evaluation: how large an evaluated value may grow and how much work
//! one evaluation may do, so that a template such as `D1=#{D0}#{D0}` ... `D40=#{D39}#{D39}`
//! (2^41 bytes) or three nested `#{each}` over 1,000 items fails at once with a clear error
//! instead of exhausting memory or running for minutes.
//!
//! * **Value size**, [`MAXIMUM_VALUE_SIZE`] (default [`DEFAULT_MAXIMUM_VALUE_SIZE`], 64 MiB):
//!   no evaluated variable value, filter result or filter option may be longer (in UTF-8
//!   bytes), unless the variables hand in longer text: the limit is at least eight times
//!   the longest raw value, so a 100 MB value still goes through `ToUpper`. The output of
//!   a whole template (a file being substituted, `evaluate`) may also be eight times the
//!   template's own length, so substituting a large file works as before. What is bounded
//!   is growth: memory stays a small multiple of what was handed in.
//! * **Work**, [`MAXIMUM_WORK`] (default [`DEFAULT_MAXIMUM_WORK`]): one evaluation (one
//!   `evaluate`, one file, one variable a script receives) may take this many steps. A
//!   step is one token rendered, one variable looked up, one loop item made or iterated,
//!   and one per 64 bytes of text copied, scanned or parsed (so walking a large value over
//!   and over counts). The conformance vectors need at most 41 steps, substituting a
//!   100,000-line configuration file over 2,000 variables 300,001.
//!
//! Both are read from the variables, raw (not evaluated), as a positive whole number.
//! Going past either is [`Error::LimitExceeded`](crate::variables::Error::LimitExceeded),
//! a user error (exit 1) that names the variable being evaluated or the template position.

use crate::variables::Error;

/// Variable raising (or lowering) the largest evaluated value, in bytes.
pub(crate) const MAXIMUM_VALUE_SIZE: &str = "Octopus.Calamari.Template.MaximumValueSize";
/// Variable raising (or lowering) the work budget of one evaluation, in steps.
pub(crate) const MAXIMUM_WORK: &str = "Octopus.Calamari.Template.MaximumWork";
/// 64 MiB.
pub(crate) const DEFAULT_MAXIMUM_VALUE_SIZE: usize = 64 * 1024 * 1024;
/// 100 million steps: a few seconds of evaluation (about 60 ns a step on the loaded project
/// machine), over 300 times what substituting a 100,000-line configuration file needs.
pub(crate) const DEFAULT_MAXIMUM_WORK: u64 = 100_000_000;

/// How many times the longest text handed in a value may always grow to.
const GROWTH: usize = 8;

/// Which limit was exceeded, with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A value grew past this many bytes.
    ValueSize(usize),
    /// The evaluation took more than this many steps.
    Work(u64),
}

/// The limits in force for one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub max_value_size: usize,
    pub max_work: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_value_size: DEFAULT_MAXIMUM_VALUE_SIZE, max_work: DEFAULT_MAXIMUM_WORK }
    }
}

impl Limits {
    /// Reads the limits from the raw values of their variables (unset or blank → default).
    ///
    /// # Errors
    /// [`Error::InvalidLimit`] when a value is not a positive whole number.
    pub(crate) fn read<'a>(raw: impl Fn(&str) -> Option<&'a str>) -> Result<Limits, Error> {
        fn number(name: &'static str, value: Option<&str>) -> Result<Option<u64>, Error> {
            let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
            match v.parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(Error::InvalidLimit { variable: name, value: v.to_string() }),
            }
        }
        let mut limits = Limits::default();
        if let Some(n) = number(MAXIMUM_VALUE_SIZE, raw(MAXIMUM_VALUE_SIZE))? {
            limits.max_value_size = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number(MAXIMUM_WORK, raw(MAXIMUM_WORK))? {
            limits.max_work = n;
        }
        Ok(limits)
    }

    /// The limits for variables whose longest raw value is `longest` bytes.
    pub(crate) fn for_input(self, longest: usize) -> Limits {
        Limits { max_value_size: self.max_value_size.max(longest.saturating_mul(GROWTH)), ..self }
    }

    /// The longest output allowed for a whole template of `len` bytes.
    pub(crate) fn max_output(&self, len: usize) -> usize {
        self.max_value_size.max(len.saturating_mul(GROWTH))
    }
}

/// Where a limit was exceeded, for the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitContext {
    /// The innermost variable whose value was being evaluated.
    pub variable: Option<String>,
    /// The variable that was asked for, when it is not `variable` itself.
    pub within: Option<String>,
    /// Line and column (1-based) of the top-level token of the template being evaluated.
    pub position: Option<(usize, usize)>,
}

/// The message of [`Error::LimitExceeded`].
pub(crate) fn describe(limit: Limit, at: &LimitContext) -> String {
    let what = match limit {
        Limit::ValueSize(n) => format!("a value grew past {n} bytes"),
        Limit::Work(n) => format!("the evaluation took more than {n} steps"),
    };
    let place = match (&at.variable, &at.within, at.position) {
        (Some(v), Some(w), _) => format!("in the value of variable '{v}', reached while evaluating variable '{w}'"),
        (Some(v), None, Some((l, c))) => {
            format!("in the value of variable '{v}', reached from line {l}, column {c} of the template")
        }
        (Some(v), None, None) => format!("in the value of variable '{v}'"),
        (None, Some(w), _) => format!("in the value of variable '{w}'"),
        (None, None, Some((l, c))) => format!("at line {l}, column {c} of the template"),
        (None, None, None) => "in the template".to_string(),
    };
    let (variable, meant) = match limit {
        Limit::ValueSize(_) => (MAXIMUM_VALUE_SIZE, "the value is meant to be this large"),
        Limit::Work(_) => (MAXIMUM_WORK, "the template is meant to do this much"),
    };
    format!("Template evaluation stopped: {what} {place}. Set {variable} higher if {meant}.")
}

/// Line and column (1-based, column in characters) of byte `offset` of `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = memchr::memchr_iter(b'\n', before.as_bytes()).count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}
