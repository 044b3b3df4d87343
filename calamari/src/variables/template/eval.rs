//! The tree-walking evaluator: scopes, lookups with parent fallback, nested evaluation
//! of values, recursion detection, JSON probing, conditionals, loops and calc.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt::Write as _;

use super::ast::{CalcExpr, Condition, Conditional, Expression, FilterOption, Path, Repetition, Step, Token};
use super::json::Json;
use super::limits::{Limit, LimitContext, Limits};
use super::tree::{Cached, Tree, fold};
use super::{filters, parser};
use crate::variables::Error;

/// What one template run collects besides its output, and how long that output may grow.
pub(crate) struct Run {
    pub missing: Vec<String>,
    seen: HashSet<String>,
    pub null: bool,
    max_len: usize,
    /// Output of this run already handed on (a streamed file's), counted against `max_len`.
    pub flushed: usize,
}

impl Run {
    /// A run whose output may be at most `max_len` bytes.
    pub(crate) fn new(max_len: usize) -> Run {
        Run { missing: Vec::new(), seen: HashSet::new(), null: false, max_len, flushed: 0 }
    }

    fn miss(&mut self, token: String) {
        if self.seen.insert(token.clone()) {
            self.missing.push(token);
        }
    }
}

#[derive(Clone, Debug)]
enum Bind {
    Node(usize),
    Value(String),
    Item { key: String, value: String },
    LoopRoot,
    Each(u8),
}

enum Kind<'s> {
    Root,
    Nested,
    Loop { var: &'s str, item: Bind, index: usize, count: usize },
}

pub(crate) struct Scope<'s> {
    kind: Kind<'s>,
    parent: Option<&'s Scope<'s>>,
    stack: RefCell<Vec<Path>>,
}

impl<'s> Scope<'s> {
    pub(crate) fn root() -> Scope<'static> {
        Scope { kind: Kind::Root, parent: None, stack: RefCell::new(Vec::new()) }
    }

    fn nested(parent: &'s Scope<'s>) -> Scope<'s> {
        Scope { kind: Kind::Nested, parent: Some(parent), stack: RefCell::new(Vec::new()) }
    }
}

pub(crate) struct Evaluator<'d> {
    tree: &'d Tree,
    swallowed: Cell<u64>,
    limits: Limits,
    work: Cell<u64>,
}

#[cfg(test)]
thread_local! {
    /// The most work any evaluation on this thread has taken (for the tests that measure
    /// how far real templates stay below the limit).
    pub(crate) static MOST_WORK: Cell<u64> = const { Cell::new(0) };
}

#[cfg(test)]
impl Drop for Evaluator<'_> {
    fn drop(&mut self) {
        MOST_WORK.with(|m| m.set(m.get().max(self.work.get())));
    }
}

fn limit_error(limit: Limit) -> Error {
    Error::LimitExceeded { limit, at: LimitContext::default() }
}

const RED_ZONE: usize = 128 * 1024;
const GROW: usize = 2 * 1024 * 1024;

fn recursion_error(path: &Path, chain: &[Path]) -> Error {
    let chain: Vec<String> = chain.iter().map(ToString::to_string).collect();
    Error::RecursiveDefinition {
        message: format!(
            "An attempt to parse the variable symbol \"{path}\" appears to have resulted in a self referencing loop ({} -> {path}). Ensure that recursive loops do not exist in the variable values.",
            chain.join(" -> ")
        ),
    }
}

/// Truthiness, as Octostache decides it for `#{if}`: see `docs/behaviour.md`, "Templates".
pub(crate) fn is_truthy(s: &str) -> bool {
    if s.is_empty() || s == "0" {
        return false;
    }
    let t = s.trim();
    !(t.eq_ignore_ascii_case("false") || t.eq_ignore_ascii_case("no"))
}

impl<'d> Evaluator<'d> {
    pub(crate) fn new(tree: &'d Tree, limits: Limits) -> Self {
        let limits = limits.for_input(tree.longest_value);
        Evaluator { tree, swallowed: Cell::new(0), limits, work: Cell::new(0) }
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Counts `steps` against the work budget.
    #[inline]
    fn charge(&self, steps: u64) -> Result<(), Error> {
        let w = self.work.get() + steps;
        self.work.set(w);
        if w > self.limits.max_work { Err(limit_error(Limit::Work(self.limits.max_work))) } else { Ok(()) }
    }

    /// One step, plus one per 64 bytes handled.
    #[inline]
    fn charge_bytes(&self, bytes: usize) -> Result<(), Error> {
        self.charge(1 + (bytes as u64 >> 6))
    }

    /// Appends to a run's output, refusing to grow it past the run's limit.
    #[inline]
    fn push(&self, out: &mut String, s: &str, run: &Run) -> Result<(), Error> {
        self.charge_bytes(s.len())?;
        if run.flushed.saturating_add(out.len()).saturating_add(s.len()) > run.max_len {
            return Err(limit_error(Limit::ValueSize(run.max_len)));
        }
        out.push_str(s);
        Ok(())
    }

    pub(crate) fn render(
        &self,
        tokens: &[Token],
        scope: &Scope<'_>,
        out: &mut String,
        run: &mut Run,
    ) -> Result<(), Error> {
        for t in tokens {
            self.token(t, scope, out, run)?;
        }
        Ok(())
    }

    fn token(&self, t: &Token, scope: &Scope<'_>, out: &mut String, run: &mut Run) -> Result<(), Error> {
        match t {
            Token::Text(s) => self.push(out, s, run)?,
            Token::Substitution(e) => match self.expression(e, scope, run)? {
                Some(v) => self.push(out, &v, run)?,
                None => {
                    if e.filters.last().is_some_and(|f| f.name == "null") {
                        run.null = true;
                    } else {
                        let echo = format!("#{{{e}}}");
                        self.push(out, &echo, run)?;
                        run.miss(echo);
                    }
                }
            },
            Token::Conditional(c) => stacker::maybe_grow(RED_ZONE, GROW, || self.conditional(t, c, scope, out, run))?,
            Token::Repetition(r) => stacker::maybe_grow(RED_ZONE, GROW, || self.repetition(r, scope, out, run))?,
            Token::Calculation(c) => match self.calc(c, scope, run)? {
                Some(v) => self.push(out, &super::calc::format_double(v), run)?,
                None => {
                    let echo = t.to_string();
                    self.push(out, &echo, run)?;
                    run.miss(echo);
                }
            },
        }
        Ok(())
    }

    fn expression(&self, e: &Expression, scope: &Scope<'_>, run: &mut Run) -> Result<Option<String>, Error> {
        let mut v = match &e.path {
            Some(p) => self.resolve(scope, p, run)?,
            None => None,
        };
        for f in &e.filters {
            let mut options = Vec::with_capacity(f.options.len());
            for o in &f.options {
                match o {
                    FilterOption::Text(t) => options.push(t.clone()),
                    FilterOption::Token(t) => {
                        // The option is its own text: what the run has handed on does not count.
                        let flushed = std::mem::take(&mut run.flushed);
                        let mut s = String::new();
                        let r = self.token(t, scope, &mut s, run);
                        run.flushed = flushed;
                        r?;
                        options.push(s);
                    }
                }
            }
            self.charge_bytes(v.as_ref().map_or(0, String::len) + options.iter().map(String::len).sum::<usize>())?;
            let max = self.limits.max_value_size;
            v = filters::apply(&f.name, v.as_deref(), &options, max)
                .map_err(|filters::TooLarge| limit_error(Limit::ValueSize(max)))?;
            if v.as_ref().is_some_and(|v| v.len() > max) {
                return Err(limit_error(Limit::ValueSize(max)));
            }
        }
        Ok(v)
    }

    fn operand(&self, e: &Expression, scope: &Scope<'_>, run: &mut Run) -> Result<Option<String>, Error> {
        if e.filters.is_empty()
            && let Some(p) = &e.path
        {
            return Ok(Some(self.resolve(scope, p, run)?.unwrap_or_default()));
        }
        self.expression(e, scope, run)
    }

    fn conditional(
        &self,
        t: &Token,
        c: &Conditional,
        scope: &Scope<'_>,
        out: &mut String,
        run: &mut Run,
    ) -> Result<(), Error> {
        let echo = |e: &Expression, out: &mut String, run: &mut Run| -> Result<(), Error> {
            self.push(out, &t.to_string(), run)?;
            run.miss(format!("#{{{e}}}"));
            Ok(())
        };
        let truth = match &c.condition {
            Condition::Truthy(e) => match self.operand(e, scope, run)? {
                Some(v) => is_truthy(&v),
                None => return echo(e, out, run),
            },
            Condition::CompareText { left, equal, text } => match self.operand(left, scope, run)? {
                Some(v) => (v == *text) == *equal,
                None => return echo(left, out, run),
            },
            Condition::Compare { left, equal, right } => {
                let Some(l) = self.operand(left, scope, run)? else { return echo(left, out, run) };
                let Some(r) = self.operand(right, scope, run)? else { return echo(right, out, run) };
                (l == r) == *equal
            }
        };
        self.render(if truth { &c.truthy } else { &c.falsy }, scope, out, run)
    }

    fn repetition(&self, r: &Repetition, scope: &Scope<'_>, out: &mut String, run: &mut Run) -> Result<(), Error> {
        let items = match self.walk(scope, &r.collection, run)? {
            None => Vec::new(),
            Some(b) => self.items(&b)?,
        };
        let count = items.len();
        for (index, item) in items.into_iter().enumerate() {
            self.charge(1)?;
            let s = Scope {
                kind: Kind::Loop { var: &r.variable, item, index, count },
                parent: Some(scope),
                stack: RefCell::new(Vec::new()),
            };
            self.render(&r.body, &s, out, run)?;
        }
        Ok(())
    }

    fn items(&self, b: &Bind) -> Result<Vec<Bind>, Error> {
        if let Bind::Node(id) = b {
            let node = &self.tree.nodes[*id];
            if !node.indexed.is_empty() {
                self.charge(node.indexed.len() as u64)?;
                return Ok(node.indexed.values().map(|(_, n)| Bind::Node(*n)).collect());
            }
        }
        let Some(v) = self.value(b) else { return Ok(Vec::new()) };
        self.charge_bytes(v.len())?;
        let items: Vec<Bind> = match Json::parse(&v) {
            Some(Json::Array(items)) => items.iter().map(|j| Bind::Value(j.to_value_string())).collect(),
            Some(Json::Object(props)) => {
                props.iter().map(|(k, j)| Bind::Item { key: k.clone(), value: j.to_value_string() }).collect()
            }
            _ => v.split(',').map(|s| Bind::Value(s.to_string())).collect(),
        };
        self.charge(items.len() as u64)?;
        Ok(items)
    }

    /// The index keys (or items) of a collection, as `#{each}` would iterate it.
    pub(crate) fn indexes(&self, path: &Path) -> Result<Vec<String>, Error> {
        let scope = Scope::root();
        let mut run = Run::new(self.limits.max_value_size);
        let Some(b) = self.walk(&scope, path, &mut run)? else { return Ok(Vec::new()) };
        if let Bind::Node(id) = &b {
            let node = &self.tree.nodes[*id];
            if !node.indexed.is_empty() {
                return Ok(node.indexed.values().map(|(k, _)| k.clone()).collect());
            }
        }
        Ok(self.items(&b)?.iter().filter_map(|i| self.value(i)).collect())
    }

    fn calc(&self, c: &CalcExpr, scope: &Scope<'_>, run: &mut Run) -> Result<Option<f64>, Error> {
        Ok(match c {
            CalcExpr::Constant(v) => Some(*v),
            CalcExpr::Path(p) => self.resolve(scope, p, run)?.and_then(|v| super::calc::parse_double(&v)),
            CalcExpr::Binary(l, op, r) => {
                let Some(a) = stacker::maybe_grow(RED_ZONE, GROW, || self.calc(l, scope, run))? else {
                    return Ok(None);
                };
                let Some(b) = stacker::maybe_grow(RED_ZONE, GROW, || self.calc(r, scope, run))? else {
                    return Ok(None);
                };
                Some(match op {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    _ => a / b,
                })
            }
        })
    }

    fn value(&self, b: &Bind) -> Option<String> {
        match b {
            Bind::Node(id) => self.tree.nodes[*id].value.clone(),
            Bind::Value(v) => Some(v.clone()),
            Bind::Item { key, .. } => Some(key.clone()),
            Bind::LoopRoot | Bind::Each(_) => None,
        }
    }

    /// The value of a path, evaluated; `None` when it does not resolve.
    pub(crate) fn resolve(&self, scope: &Scope<'_>, path: &Path, run: &mut Run) -> Result<Option<String>, Error> {
        Ok(match self.walk(scope, path, run)? {
            Some(Bind::Value(v)) => Some(v),
            Some(b) => self.value(&b),
            None => None,
        })
    }

    fn walk(&self, scope: &Scope<'_>, path: &Path, run: &mut Run) -> Result<Option<Bind>, Error> {
        self.charge(1)?;
        stacker::maybe_grow(RED_ZONE, GROW, || {
            let mut s = Some(scope);
            while let Some(sc) = s {
                let stack = sc.stack.borrow();
                if stack.iter().any(|p| p == path) {
                    return Err(recursion_error(path, &stack));
                }
                s = sc.parent;
            }
            scope.stack.borrow_mut().push(path.clone());
            let r = self.walk_inner(scope, path, run);
            scope.stack.borrow_mut().pop();
            r
        })
    }

    fn walk_inner(&self, scope: &Scope<'_>, path: &Path, run: &mut Run) -> Result<Option<Bind>, Error> {
        let copied;
        let path = if path.steps().iter().any(|s| matches!(s, Step::SymbolIndex { .. })) {
            let mut steps = Vec::with_capacity(path.steps().len());
            for s in path.steps() {
                match s {
                    Step::SymbolIndex { path: inner, offset } => match self.resolve(scope, inner, run)? {
                        Some(v) => steps.push(Step::Index { text: v, offset: *offset }),
                        None => steps.push(s.clone()),
                    },
                    other => steps.push(other.clone()),
                }
            }
            copied = Path::new(steps);
            &copied
        } else {
            path
        };
        let mut cur = match &scope.kind {
            Kind::Root => Some(Bind::Node(0)),
            Kind::Nested => None,
            Kind::Loop { .. } => Some(Bind::LoopRoot),
        };
        for step in path.steps() {
            let Some(b) = cur.take() else { break };
            cur = match step {
                Step::Identifier { text, .. } => match self.child(scope, &b, text) {
                    Some(c) => Some(c),
                    None => self.json(scope, &b, text).map_err(|e| e.in_variable(|| path.to_string()))?,
                },
                Step::Index { text, .. } => match self.indexed(&b, text) {
                    Some(c) => Some(c),
                    None => self.json(scope, &b, text).map_err(|e| e.in_variable(|| path.to_string()))?,
                },
                Step::SymbolIndex { .. } => return Ok(None),
            };
        }
        match cur {
            Some(b) => self.materialize(scope, b, run).map(Some).map_err(|e| e.in_variable(|| path.to_string())),
            None => match scope.parent {
                Some(p) => self.walk(p, path, run),
                None => Ok(None),
            },
        }
    }

    fn child(&self, scope: &Scope<'_>, b: &Bind, name: &str) -> Option<Bind> {
        match b {
            Bind::Node(id) => self.tree.nodes[*id].children.get(fold(name).as_ref()).map(|n| Bind::Node(*n)),
            Bind::Value(_) => None,
            Bind::Item { key, value } => {
                if name.eq_ignore_ascii_case("key") {
                    Some(Bind::Value(key.clone()))
                } else if name.eq_ignore_ascii_case("value") {
                    Some(Bind::Value(value.clone()))
                } else {
                    None
                }
            }
            Bind::LoopRoot => {
                let Kind::Loop { var, item, .. } = &scope.kind else { return None };
                if fold(name) == fold(var) {
                    Some(item.clone())
                } else if name.eq_ignore_ascii_case("octopus") {
                    Some(Bind::Each(1))
                } else {
                    None
                }
            }
            Bind::Each(depth) => {
                let Kind::Loop { index, count, .. } = &scope.kind else { return None };
                match depth {
                    1 if name.eq_ignore_ascii_case("template") => Some(Bind::Each(2)),
                    2 if name.eq_ignore_ascii_case("each") => Some(Bind::Each(3)),
                    3 if name.eq_ignore_ascii_case("index") => Some(Bind::Value(index.to_string())),
                    3 if name.eq_ignore_ascii_case("first") => {
                        Some(Bind::Value(if *index == 0 { "True" } else { "False" }.into()))
                    }
                    3 if name.eq_ignore_ascii_case("last") => {
                        Some(Bind::Value(if index + 1 == *count { "True" } else { "False" }.into()))
                    }
                    _ => None,
                }
            }
        }
    }

    fn indexed(&self, b: &Bind, key: &str) -> Option<Bind> {
        let Bind::Node(id) = b else { return None };
        let node = &self.tree.nodes[*id];
        if key == "*"
            && let Some((_, (_, n))) = node.indexed.first()
        {
            return Some(Bind::Node(*n));
        }
        node.indexed.get(fold(key).as_ref()).map(|(_, n)| Bind::Node(*n))
    }

    /// Reads the binding's value as JSON (evaluating it first when it is a template) and
    /// takes `name` from it. A recursion met while doing so just makes the probe fail.
    fn json(&self, scope: &Scope<'_>, b: &Bind, name: &str) -> Result<Option<Bind>, Error> {
        let Some(v) = self.value(b) else { return Ok(None) };
        if v.is_empty() {
            return Ok(None);
        }
        let text = if v.contains("#{") {
            match parser::parse(&v) {
                Err(_) => v,
                Ok(t) => {
                    let nested = Scope::nested(scope);
                    let mut out = String::new();
                    let mut inner = Run::new(self.limits.max_value_size);
                    match self.render(&t.tokens, &nested, &mut out, &mut inner) {
                        Ok(()) => out,
                        Err(Error::RecursiveDefinition { .. }) => {
                            self.swallowed.set(self.swallowed.get() + 1);
                            return Ok(None);
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        } else {
            v
        };
        let first = text.trim_start().chars().next();
        if !matches!(first, Some('{' | '[' | '"' | '\'' | '-' | '0'..='9' | 't' | 'f' | 'n' | '.')) {
            return Ok(None);
        }
        self.charge_bytes(text.len())?;
        Ok(Json::parse(&text).and_then(|j| j.member(name)).map(Bind::Value))
    }

    /// A found binding whose value is a template becomes the evaluated value.
    fn materialize(&self, scope: &Scope<'_>, b: Bind, run: &mut Run) -> Result<Bind, Error> {
        let raw: &str = match &b {
            Bind::Node(id) => match &self.tree.nodes[*id].value {
                Some(v) => v,
                None => return Ok(b),
            },
            Bind::Value(v) => v,
            Bind::Item { key, .. } => key,
            _ => return Ok(b),
        };
        if memchr::memmem::find(raw.as_bytes(), b"#{").is_none() {
            return Ok(b);
        }
        let cacheable = matches!(scope.kind, Kind::Root);
        if let (true, Bind::Node(id)) = (cacheable, &b)
            && let Some(c) = self.tree.cache[*id].get()
        {
            self.charge_bytes(c.output.len())?;
            for m in &c.missing {
                run.miss(m.clone());
            }
            return Ok(Bind::Value(c.output.clone()));
        }
        let Ok(template) = parser::parse(raw) else { return Ok(b) };
        let nested = Scope::nested(scope);
        let mut out = String::new();
        let mut inner = Run::new(self.limits.max_value_size);
        let before = self.swallowed.get();
        self.render(&template.tokens, &nested, &mut out, &mut inner)?;
        if let (true, Bind::Node(id)) = (cacheable, &b)
            && self.swallowed.get() == before
        {
            let _ = self.tree.cache[*id].set(Cached { output: out.clone(), missing: inner.missing.clone() });
        }
        for m in inner.missing {
            run.miss(m);
        }
        Ok(Bind::Value(out))
    }
}

/// Renders the error text for unresolved tokens.
pub(crate) fn missing_error(missing: &[String]) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    let mut s = String::from("The following tokens were unable to be evaluated: ");
    for (i, m) in missing.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "'{m}'");
    }
    Some(s)
}
