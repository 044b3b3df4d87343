//! The XPath subset variable names (and XML transforms' locators) are read as: a lexer
//! ([`tokenize`]), a recursive descent parser into [`Expr`], and [`compile`], which also
//! resolves every prefix through the [`Namespaces`] in force. A name that does not compile
//! is not a structure name; the evaluator lives in `eval.rs`.

use std::collections::HashMap;

use super::dom::{XML_NAMESPACE, split_qname};

/// How the names of an expression are resolved to namespaces.
#[derive(Debug, Clone, Default)]
pub(crate) struct Namespaces {
    /// Each prefix an expression may use, and the namespace URI it stands for (`xml` is
    /// always known).
    pub(crate) prefixes: HashMap<String, String>,
    /// The namespace an unprefixed element name matches besides no namespace: the root's
    /// default namespace for variable names (XPath 2 style), none for XPath 1.0 (transforms).
    pub(crate) unprefixed: Option<String>,
}

/// The most brackets an expression may hold (they nest the recursive parser).
const MAX_BRACKETS: usize = 64;

/// Why a variable name is not an XPath expression this module understands.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum XPathError {
    /// A quote with no closing quote.
    #[error("unterminated string literal")]
    UnterminatedLiteral,
    /// Digits and dots that do not make a number.
    #[error("bad number {text}")]
    BadNumber {
        /// The characters read.
        text: String,
    },
    /// A `:` that neither separates a prefix nor is part of `::`.
    #[error("unexpected ':' at {position}")]
    UnexpectedColon {
        /// Its index, in characters.
        position: usize,
    },
    /// A character no token starts with.
    #[error("unexpected character '{character}'")]
    UnexpectedCharacter {
        /// The character.
        character: char,
    },
    /// A token missing where the grammar needs one.
    #[error("expected {expected}")]
    Expected {
        /// What was needed (`')'`, `a node test`...).
        expected: &'static str,
    },
    /// A function outside the supported set.
    #[error("unsupported function {name}()")]
    UnsupportedFunction {
        /// The function's name.
        name: String,
    },
    /// An axis outside the supported set.
    #[error("unsupported axis {axis}")]
    UnsupportedAxis {
        /// The axis's name.
        axis: String,
    },
    /// A prefix the document does not declare.
    #[error("Namespace prefix '{prefix}' is not defined")]
    UndefinedPrefix {
        /// The prefix.
        prefix: String,
    },
    /// More than 64 brackets (they nest the recursive parser).
    #[error("the expression is nested too deeply")]
    TooDeep,
    /// Nothing but blanks.
    #[error("empty expression")]
    Empty,
    /// Tokens left over after a whole expression.
    #[error("unexpected token {token}")]
    UnexpectedToken {
        /// The first token left, as the lexer names it.
        token: String,
    },
    /// An expression that yields a string, number or boolean, not nodes.
    #[error("the expression does not select nodes")]
    NotNodes,
}

/// The direction a step moves in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Axis {
    Child,
    Attribute,
    Descendant,
    DescendantOrSelf,
    Current,
    Parent,
}

/// What a step keeps of the nodes its axis reaches. Prefixes are resolved at compile time.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Test {
    /// `local` with no prefix: in no namespace, or (an element) in `also`.
    Unprefixed {
        local: String,
        also: Option<String>,
    },
    /// `p:local`: in the namespace `p` stands for.
    Qualified {
        ns: String,
        local: String,
    },
    Any,
    /// `p:*`: anything in the namespace `p` stands for.
    PrefixAny(String),
    /// `*:local`: the local name in any namespace, or none (XPath 2).
    AnyPrefix(String),
    Text,
    Node,
    Comment,
    /// `processing-instruction()`, or with a literal, those with that target.
    Pi(Option<String>),
}

/// One location step: `axis::test[predicate]...`.
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub(super) axis: Axis,
    pub(super) test: Test,
    pub(super) predicates: Vec<Expr>,
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub(super) enum Expr {
    Path { absolute: bool, steps: Vec<Step> },
    Union(Vec<Expr>),
    Literal(String),
    Number(f64),
    Compare(Box<Expr>, Box<Expr>, bool),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

/// A lexical token.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Slash,
    DoubleSlash,
    Open,
    Close,
    LParen,
    RParen,
    At,
    Comma,
    Pipe,
    Eq,
    NotEq,
    Dot,
    DotDot,
    Star,
    Axis(String),
    Name(String),
    Literal(String),
    Number(f64),
}

/// Splits an expression into tokens.
fn tokenize(expr: &str) -> Result<Vec<Token>, XPathError> {
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let is_name_start = |c: char| c.is_alphabetic() || c == '_';
    let is_name_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' | '\n' => i += 1,
            '/' if chars.get(i + 1) == Some(&'/') => {
                tokens.push(Token::DoubleSlash);
                i += 2;
            }
            '/' => {
                tokens.push(Token::Slash);
                i += 1;
            }
            // `*:local` (XPath 2): any namespace.
            '*' if chars.get(i + 1) == Some(&':') && chars.get(i + 2).is_some_and(|&c| is_name_start(c)) => {
                let start = i;
                i += 2;
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
                tokens.push(Token::Name(chars[start..i].iter().collect()));
            }
            '[' | ']' | '(' | ')' | '@' | ',' | '|' | '=' | '*' => {
                tokens.push(match c {
                    '[' => Token::Open,
                    ']' => Token::Close,
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    '@' => Token::At,
                    ',' => Token::Comma,
                    '|' => Token::Pipe,
                    '=' => Token::Eq,
                    _ => Token::Star,
                });
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::NotEq);
                i += 2;
            }
            '.' if chars.get(i + 1) == Some(&'.') => {
                tokens.push(Token::DotDot);
                i += 2;
            }
            '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                tokens.push(Token::Dot);
                i += 1;
            }
            '\'' | '"' => {
                let end = chars[i + 1..].iter().position(|&x| x == c).ok_or(XPathError::UnterminatedLiteral)?;
                tokens.push(Token::Literal(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            c if c.is_ascii_digit() || c == '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                tokens.push(Token::Number(s.parse().map_err(|_| XPathError::BadNumber { text: s.clone() })?));
            }
            c if is_name_start(c) => {
                let start = i;
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
                // A prefixed name `p:local` or `p:*` (but not the axis separator `::`).
                if chars.get(i) == Some(&':') && chars.get(i + 1) != Some(&':') {
                    if chars.get(i + 1) == Some(&'*') {
                        i += 2;
                    } else if chars.get(i + 1).is_some_and(|&c| is_name_start(c)) {
                        i += 1;
                        while i < chars.len() && is_name_char(chars[i]) {
                            i += 1;
                        }
                    } else {
                        return Err(XPathError::UnexpectedColon { position: i });
                    }
                }
                let name: String = chars[start..i].iter().collect();
                if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
                    tokens.push(Token::Axis(name));
                    i += 2;
                } else {
                    tokens.push(Token::Name(name));
                }
            }
            other => return Err(XPathError::UnexpectedCharacter { character: other }),
        }
    }
    Ok(tokens)
}

struct ExprParser<'n> {
    tokens: Vec<Token>,
    pos: usize,
    ns: &'n Namespaces,
}

impl ExprParser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn eat(&mut self, t: &Token) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, XPathError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Name("or".into())) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, XPathError> {
        let mut left = self.compare()?;
        while self.peek() == Some(&Token::Name("and".into())) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.compare()?));
        }
        Ok(left)
    }

    fn compare(&mut self) -> Result<Expr, XPathError> {
        let left = self.union()?;
        if self.eat(&Token::Eq) {
            return Ok(Expr::Compare(Box::new(left), Box::new(self.union()?), false));
        }
        if self.eat(&Token::NotEq) {
            return Ok(Expr::Compare(Box::new(left), Box::new(self.union()?), true));
        }
        Ok(left)
    }

    fn union(&mut self) -> Result<Expr, XPathError> {
        let first = self.primary()?;
        if self.peek() != Some(&Token::Pipe) {
            return Ok(first);
        }
        let mut all = vec![first];
        while self.eat(&Token::Pipe) {
            all.push(self.primary()?);
        }
        Ok(Expr::Union(all))
    }

    fn primary(&mut self) -> Result<Expr, XPathError> {
        match self.peek().cloned() {
            Some(Token::Literal(s)) => {
                self.pos += 1;
                Ok(Expr::Literal(s))
            }
            Some(Token::Number(n)) => {
                self.pos += 1;
                Ok(Expr::Number(n))
            }
            Some(Token::LParen) => {
                self.pos += 1;
                let e = self.or()?;
                if !self.eat(&Token::RParen) {
                    return Err(XPathError::Expected { expected: "')'" });
                }
                Ok(e)
            }
            Some(Token::Name(n))
                if self.tokens.get(self.pos + 1) == Some(&Token::LParen)
                    && !matches!(n.as_str(), "text" | "node" | "comment" | "processing-instruction") =>
            {
                self.pos += 2;
                let mut args = Vec::new();
                if !self.eat(&Token::RParen) {
                    loop {
                        args.push(self.or()?);
                        if self.eat(&Token::RParen) {
                            break;
                        }
                        if !self.eat(&Token::Comma) {
                            return Err(XPathError::Expected { expected: "',' or ')'" });
                        }
                    }
                }
                const KNOWN: [&str; 11] = [
                    "position",
                    "last",
                    "not",
                    "contains",
                    "starts-with",
                    "count",
                    "string",
                    "name",
                    "local-name",
                    "true",
                    "false",
                ];
                if !KNOWN.contains(&n.as_str()) {
                    return Err(XPathError::UnsupportedFunction { name: n });
                }
                Ok(Expr::Call(n, args))
            }
            _ => self.path(),
        }
    }

    fn path(&mut self) -> Result<Expr, XPathError> {
        let mut steps = Vec::new();
        let absolute = match self.peek() {
            Some(Token::Slash) => {
                self.pos += 1;
                if !self.starts_step() {
                    return Ok(Expr::Path { absolute: true, steps });
                }
                true
            }
            Some(Token::DoubleSlash) => {
                self.pos += 1;
                steps.push(Step { axis: Axis::DescendantOrSelf, test: Test::Node, predicates: Vec::new() });
                true
            }
            _ => false,
        };
        steps.push(self.step()?);
        loop {
            if self.eat(&Token::Slash) {
                steps.push(self.step()?);
            } else if self.eat(&Token::DoubleSlash) {
                steps.push(Step { axis: Axis::DescendantOrSelf, test: Test::Node, predicates: Vec::new() });
                steps.push(self.step()?);
            } else {
                break;
            }
        }
        Ok(Expr::Path { absolute, steps })
    }

    fn starts_step(&self) -> bool {
        matches!(
            self.peek(),
            Some(Token::Name(_) | Token::Star | Token::At | Token::Dot | Token::DotDot | Token::Axis(_))
        )
    }

    fn step(&mut self) -> Result<Step, XPathError> {
        if self.eat(&Token::Dot) {
            return Ok(Step { axis: Axis::Current, test: Test::Node, predicates: Vec::new() });
        }
        if self.eat(&Token::DotDot) {
            return Ok(Step { axis: Axis::Parent, test: Test::Node, predicates: Vec::new() });
        }
        let axis = if self.eat(&Token::At) {
            Axis::Attribute
        } else if let Some(Token::Axis(a)) = self.peek().cloned() {
            self.pos += 1;
            match a.as_str() {
                "child" => Axis::Child,
                "attribute" => Axis::Attribute,
                "descendant" => Axis::Descendant,
                "descendant-or-self" => Axis::DescendantOrSelf,
                "self" => Axis::Current,
                "parent" => Axis::Parent,
                other => return Err(XPathError::UnsupportedAxis { axis: other.to_string() }),
            }
        } else {
            Axis::Child
        };
        let test = match self.peek().cloned() {
            Some(Token::Star) => {
                self.pos += 1;
                Test::Any
            }
            Some(Token::Name(n)) => {
                self.pos += 1;
                if self.peek() == Some(&Token::LParen) && n == "processing-instruction" {
                    self.pos += 1;
                    let target = match self.peek().cloned() {
                        Some(Token::Literal(t)) => {
                            self.pos += 1;
                            Some(t.trim().to_string())
                        }
                        _ => None,
                    };
                    if !self.eat(&Token::RParen) {
                        return Err(XPathError::Expected { expected: "')'" });
                    }
                    Test::Pi(target)
                } else if self.peek() == Some(&Token::LParen) && matches!(n.as_str(), "text" | "node" | "comment") {
                    self.pos += 1;
                    if !self.eat(&Token::RParen) {
                        return Err(XPathError::Expected { expected: "')'" });
                    }
                    match n.as_str() {
                        "text" => Test::Text,
                        "node" => Test::Node,
                        _ => Test::Comment,
                    }
                } else if let Some(local) = n.strip_prefix("*:") {
                    Test::AnyPrefix(local.to_string())
                } else if let Some(p) = n.strip_suffix(":*") {
                    Test::PrefixAny(self.namespace(p)?)
                } else {
                    match split_qname(&n) {
                        (Some(p), local) => Test::Qualified { ns: self.namespace(&p)?, local },
                        (None, local) => Test::Unprefixed { local, also: self.ns.unprefixed.clone() },
                    }
                }
            }
            _ => return Err(XPathError::Expected { expected: "a node test" }),
        };
        let mut predicates = Vec::new();
        while self.eat(&Token::Open) {
            predicates.push(self.or()?);
            if !self.eat(&Token::Close) {
                return Err(XPathError::Expected { expected: "']'" });
            }
        }
        Ok(Step { axis, test, predicates })
    }

    /// The namespace URI `prefix` stands for.
    fn namespace(&self, prefix: &str) -> Result<String, XPathError> {
        if prefix == "xml" {
            return Ok(XML_NAMESPACE.to_string());
        }
        self.ns.prefixes.get(prefix).cloned().ok_or_else(|| XPathError::UndefinedPrefix { prefix: prefix.to_string() })
    }
}

/// Compiles an XPath expression, resolving its prefixes through `ns`.
pub(super) fn compile(ns: &Namespaces, expr: &str) -> Result<Expr, XPathError> {
    // The parser recurses on brackets: bound the nesting so no name can exhaust the stack.
    if expr.chars().filter(|c| matches!(c, '(' | '[')).count() > MAX_BRACKETS {
        return Err(XPathError::TooDeep);
    }
    let tokens = tokenize(expr)?;
    if tokens.is_empty() {
        return Err(XPathError::Empty);
    }
    let mut p = ExprParser { tokens, pos: 0, ns };
    let e = p.or()?;
    if p.pos != p.tokens.len() {
        return Err(XPathError::UnexpectedToken { token: format!("{:?}", p.tokens[p.pos]) });
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::super::dom::parse;
    use super::XPathError;

    const DOC: &str = "<configuration xmlns:x=\"urn:x\"><x:feature/></configuration>";

    #[test]
    fn names_that_are_not_expressions() {
        let doc = parse(DOC).unwrap();
        let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        let undefined = |p: &str| XPathError::UndefinedPrefix { prefix: p.to_string() };
        let cases = [
            ("Logging:Level", undefined("Logging")),
            ("My Var", XPathError::UnexpectedToken { token: "Name(\"Var\")".to_string() }),
            ("a[", XPathError::Expected { expected: "a node test" }),
            ("", XPathError::Empty),
            ("unknown:*", undefined("unknown")),
            ("#{x}", XPathError::UnexpectedCharacter { character: '#' }),
            ("'open", XPathError::UnterminatedLiteral),
            ("foo()", XPathError::UnsupportedFunction { name: "foo".to_string() }),
            ("following::a", XPathError::UnsupportedAxis { axis: "following".to_string() }),
            ("'x'", XPathError::NotNodes),
            (deep.as_str(), XPathError::TooDeep),
        ];
        for (expr, expected) in cases {
            assert_eq!(doc.select(expr).unwrap_err(), expected, "{expr:?}");
        }
        assert_eq!(
            XPathError::UndefinedPrefix { prefix: "p".into() }.to_string(),
            "Namespace prefix 'p' is not defined"
        );
    }
}
