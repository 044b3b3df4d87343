//! The syntax tree of a parsed template, and its canonical text form (the form the
//! reference echoes unresolved tokens in).

use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A parsed template: a sequence of tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The tokens, in source order.
    pub tokens: Vec<Token>,
}

/// One token of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// Literal text (escapes already resolved: `##{` became `#{`).
    Text(String),
    /// `#{expression}`.
    Substitution(Expression),
    /// `#{if}`/`#{unless}` (unless is stored with its branches swapped; elseif as a
    /// nested conditional in the false branch).
    Conditional(Box<Conditional>),
    /// `#{each x in Path}...#{/each}`.
    Repetition(Box<Repetition>),
    /// `#{calc ...}`.
    Calculation(CalcExpr),
}

/// A variable path (`Octopus.Action[Step A].Output.X`), shared cheaply.
#[derive(Debug, Clone)]
pub struct Path(pub Arc<PathData>);

/// The steps of a path and a fingerprint of (texts, kinds, positions) for the recursion
/// check.
#[derive(Debug)]
pub struct PathData {
    /// The steps.
    pub steps: Vec<Step>,
    /// A hash of the steps, texts and positions (fast inequality for the recursion check).
    pub fingerprint: u64,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `.Name` (or the first name).
    Identifier {
        /// The trimmed name.
        text: String,
        /// Byte offset in the text it was parsed from.
        offset: u32,
    },
    /// `[text]`, `[]` or `[*]`.
    Index {
        /// The index text.
        text: String,
        /// Byte offset.
        offset: u32,
    },
    /// `[#{path}]`.
    SymbolIndex {
        /// The inner path.
        path: Path,
        /// Byte offset.
        offset: u32,
    },
}

impl Path {
    /// A path from its steps.
    pub fn new(steps: Vec<Step>) -> Path {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for s in &steps {
            match s {
                Step::Identifier { text, offset } => (0u8, text, offset).hash(&mut h),
                Step::Index { text, offset } => (1u8, text, offset).hash(&mut h),
                Step::SymbolIndex { path, offset } => (2u8, path.0.fingerprint, offset).hash(&mut h),
            }
        }
        Path(Arc::new(PathData { steps, fingerprint: h.finish() }))
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.0.steps
    }

    /// The identifier texts used by this path (for argument names).
    pub fn identifiers(&self, out: &mut Vec<String>) {
        for s in self.steps() {
            match s {
                Step::Identifier { text, .. } => out.push(text.clone()),
                Step::Index { .. } => {}
                Step::SymbolIndex { path, .. } => path.identifiers(out),
            }
        }
    }
}

impl PartialEq for Path {
    fn eq(&self, other: &Path) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || (self.0.fingerprint == other.0.fingerprint && self.0.steps == other.0.steps)
    }
}

/// A substitution expression: an optional path and a filter chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    /// The looked-up path (absent in `#{ | NowDate}`).
    pub path: Option<Path>,
    /// Filters applied left to right.
    pub filters: Vec<Filter>,
}

/// One `| Name options...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The name as written.
    pub name: String,
    /// The options.
    pub options: Vec<FilterOption>,
}

/// A filter option.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterOption {
    /// A bare word or quoted text.
    Text(String),
    /// A nested token whose output is the option.
    Token(Box<Token>),
}

/// `#{if ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Conditional {
    /// The condition.
    pub condition: Condition,
    /// Tokens when true.
    pub truthy: Vec<Token>,
    /// Tokens when false.
    pub falsy: Vec<Token>,
}

/// The condition of a conditional.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Truthiness of one expression.
    Truthy(Expression),
    /// `EXPR ==/!= "text"` (or `"text" ==/!= EXPR`).
    CompareText {
        /// The expression side.
        left: Expression,
        /// `==` (true) or `!=`.
        equal: bool,
        /// The text side.
        text: String,
    },
    /// `EXPR ==/!= EXPR`.
    Compare {
        /// Left side.
        left: Expression,
        /// `==` (true) or `!=`.
        equal: bool,
        /// Right side.
        right: Expression,
    },
}

/// `#{each var in Path}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Repetition {
    /// The loop variable.
    pub variable: String,
    /// The collection.
    pub collection: Path,
    /// The body.
    pub body: Vec<Token>,
}

/// A `calc` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum CalcExpr {
    /// A decimal constant.
    Constant(f64),
    /// A variable.
    Path(Path),
    /// A binary operation.
    Binary(Box<CalcExpr>, char, Box<CalcExpr>),
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.steps().iter().enumerate() {
            match s {
                Step::Identifier { text, .. } => {
                    if i > 0 {
                        f.write_char('.')?;
                    }
                    f.write_str(text)?;
                }
                Step::Index { text, .. } => write!(f, "[{text}]")?,
                Step::SymbolIndex { path, .. } => write!(f, "[#{{{path}}}]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{p}")?;
        }
        for filter in &self.filters {
            write!(f, " | {}", filter.name)?;
            for o in &filter.options {
                match o {
                    FilterOption::Text(t) => write!(f, " \"{t}\"")?,
                    FilterOption::Token(t) => write!(f, " {t}")?,
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Truthy(e) => write!(f, "{e}"),
            Condition::CompareText { left, equal, text } => {
                write!(f, "{left} {} \"{text}\" ", if *equal { "==" } else { "!=" })
            }
            Condition::Compare { left, right, .. } => write!(f, "{left} == {right} "),
        }
    }
}

impl fmt::Display for CalcExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalcExpr::Constant(c) => f.write_str(&super::calc::format_double(*c)),
            CalcExpr::Path(p) => write!(f, "{p}"),
            CalcExpr::Binary(l, op, r) => write!(f, "{l}{op}{r}"),
        }
    }
}

fn write_tokens(f: &mut fmt::Formatter<'_>, tokens: &[Token]) -> fmt::Result {
    for t in tokens {
        write!(f, "{t}")?;
    }
    Ok(())
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Text(t) => f.write_str(&t.replace("#{", "##{")),
            Token::Substitution(e) => write!(f, "#{{{e}}}"),
            Token::Conditional(c) => {
                write!(f, "#{{if {}}}", c.condition)?;
                write_tokens(f, &c.truthy)?;
                if !c.falsy.is_empty() {
                    f.write_str("#{else}")?;
                    write_tokens(f, &c.falsy)?;
                }
                f.write_str("#{/if}")
            }
            Token::Repetition(r) => {
                write!(f, "#{{each {} in {}}}", r.variable, r.collection)?;
                write_tokens(f, &r.body)?;
                f.write_str("#{/each}")
            }
            Token::Calculation(c) => write!(f, "#{{{c}}}"),
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_tokens(f, &self.tokens)
    }
}

impl Template {
    /// The identifiers the template references: substitution
    /// paths, filter options, symbol indexers, conditional operands (and the quoted text
    /// of string comparisons), each collections; not identifiers inside an each body.
    pub fn argument_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_names(&self.tokens, &mut out);
        out
    }
}

fn expression_names(e: &Expression, out: &mut Vec<String>) {
    if let Some(p) = &e.path {
        p.identifiers(out);
    }
    for f in &e.filters {
        for o in &f.options {
            if let FilterOption::Token(t) = o {
                collect_names(std::slice::from_ref(&**t), out);
            }
        }
    }
}

fn collect_names(tokens: &[Token], out: &mut Vec<String>) {
    for t in tokens {
        match t {
            Token::Text(_) => {}
            Token::Substitution(e) => expression_names(e, out),
            Token::Conditional(c) => {
                match &c.condition {
                    Condition::Truthy(e) => expression_names(e, out),
                    Condition::CompareText { left, text, .. } => {
                        expression_names(left, out);
                        out.push(text.clone());
                    }
                    Condition::Compare { left, right, .. } => {
                        expression_names(left, out);
                        expression_names(right, out);
                    }
                }
                collect_names(&c.truthy, out);
                collect_names(&c.falsy, out);
            }
            Token::Repetition(r) => r.collection.identifiers(out),
            Token::Calculation(c) => calc_names(c, out),
        }
    }
}

fn calc_names(c: &CalcExpr, out: &mut Vec<String>) {
    match c {
        CalcExpr::Constant(_) => {}
        CalcExpr::Path(p) => p.identifiers(out),
        CalcExpr::Binary(l, _, r) => {
            calc_names(l, out);
            calc_names(r, out);
        }
    }
}
