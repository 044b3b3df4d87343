//! XML: variable names are XPath expressions. The document is read with quick-xml into a
//! small tree that remembers the byte span of every attribute value, text, CDATA section,
//! comment and element content; each node an expression selects is replaced in place.
//!
//! Namespace prefixes declared anywhere in the document (`xmlns:p="..."`) are registered
//! for the expressions, as the reference does. An unprefixed element name matches
//! elements in no namespace or in the root element's default namespace (XPath 2 style).
//!
//! Supported XPath: absolute and relative location paths (`/a/b`, `a/b`, `//b`, `a//b`),
//! `.`, `..`, `*`, `p:*`, `@attr`, `@*`, `text()`, `node()`, `comment()`, the axes
//! `child::`, `attribute::`, `descendant::`, `descendant-or-self::`, `self::`, `parent::`,
//! unions (`a | b`), and predicates with positions (`[1]`, `[last()]`), comparisons
//! (`=`, `!=` between paths, strings and numbers), `and`, `or`, `not()`, `contains()`,
//! `starts-with()`, `position()`, `last()`, `count()`, `string()`, `name()`,
//! `local-name()`, `true()`, `false()`. A name that is not such an expression (or uses an
//! unknown prefix) is not a structure name and is ignored.
//!
//! What a selected node becomes (reference `XmlFormatVariableReplacer`): an attribute or
//! text node takes the value; an element holding only a CDATA section gets new CDATA
//! content; an element with child elements takes the value as an XML fragment (left
//! unchanged with a warning when it is not one); any other element takes the value as its
//! text. Values are escaped as XML requires.

use std::collections::HashMap;
use std::ops::Range;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use super::{Attempt, Candidates, Edits};

/// The most brackets an expression may hold (they nest the recursive parser).
const MAX_BRACKETS: usize = 64;

/// An attribute as written in the document.
#[derive(Debug, Clone)]
struct Attr {
    prefix: Option<String>,
    local: String,
    ns: Option<String>,
    value: String,
    /// The value's span, inside the quotes.
    span: Range<usize>,
    quote: u8,
}

#[derive(Debug, Clone)]
enum Kind {
    Element {
        qname: String,
        local: String,
        ns: Option<String>,
        attrs: Vec<Attr>,
        /// The whole start tag (`<a ...>` or `<a .../>`).
        tag: Range<usize>,
        /// Between the start and end tags; `None` for `<a/>`.
        content: Option<Range<usize>>,
    },
    Text {
        value: String,
        span: Range<usize>,
    },
    CData {
        value: String,
        span: Range<usize>,
    },
    Comment {
        value: String,
        span: Range<usize>,
    },
    Other,
}

#[derive(Debug, Clone)]
struct XNode {
    kind: Kind,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// A parsed document: the nodes in document order, with the top-level ones listed.
#[derive(Debug)]
pub struct Document {
    nodes: Vec<XNode>,
    top: Vec<usize>,
    namespaces: HashMap<String, String>,
    default_ns: Option<String>,
}

fn offset(text: &str, slice: &str) -> usize {
    slice.as_ptr() as usize - text.as_ptr() as usize
}

fn split_qname(qname: &str) -> (Option<String>, String) {
    match qname.split_once(':') {
        Some((p, l)) => (Some(p.to_string()), l.to_string()),
        None => (None, qname.to_string()),
    }
}

/// Parses `text` as a well-formed XML document.
///
/// # Errors
/// The parser's message with the byte position, for any well-formedness error quick-xml
/// finds, a missing or second root element, text outside the root, or unclosed elements.
pub fn parse(text: &str) -> Result<Document, String> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;
    let mut doc = Document { nodes: Vec::new(), top: Vec::new(), namespaces: HashMap::new(), default_ns: None };
    let mut stack: Vec<usize> = Vec::new();
    // In-scope namespace declarations: (element depth, prefix or "" for default, uri),
    // innermost last. Only declarations are kept, so resolving a prefix does not walk
    // every open element of a deeply nested document.
    let mut scopes: Vec<(usize, String, String)> = Vec::new();
    let mut roots = 0usize;
    // quick-xml reports `a &amp; b` as text, an entity reference and text: one pending span
    // gathers them into the single text node the document holds there.
    let mut pending_text: Option<Range<usize>> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| format!("{e} at position {}", reader.error_position()))?;
        let after = reader.buffer_position() as usize;
        let parent = stack.last().copied();
        let span = match &event {
            Event::Text(t) => Some(offset(text, t)..offset(text, t) + t.len()),
            Event::GeneralRef(_) => Some(before..after),
            _ => None,
        };
        if let Some(span) = span {
            match &mut pending_text {
                Some(pending) if pending.end == span.start => pending.end = span.end,
                _ => pending_text = Some(span),
            }
            continue;
        }
        if let Some(span) = pending_text.take() {
            push_text(&mut doc, parent, text, span)?;
        }
        let kind = match event {
            Event::Eof => break,
            Event::Start(ref e) | Event::Empty(ref e) => {
                if stack.is_empty() {
                    roots += 1;
                    if roots > 1 {
                        return Err(format!("There are multiple root elements at position {before}"));
                    }
                }
                let qname = e.name().as_ref().to_string();
                let mut decls = Vec::new();
                let mut raw_attrs = Vec::new();
                for attr in e.attributes() {
                    let attr = attr.map_err(|err| format!("{err} in the tag at position {before}"))?;
                    let key = attr.key.as_ref().to_string();
                    let value = quick_xml::escape::unescape(&attr.value)
                        .map_err(|err| format!("{err} in the tag at position {before}"))?
                        .into_owned();
                    let start = offset(text, &attr.value);
                    let span = start..start + attr.value.len();
                    let quote = text.as_bytes().get(start.wrapping_sub(1)).copied().unwrap_or(b'"');
                    if key == "xmlns" {
                        decls.push((String::new(), value.clone()));
                    } else if let Some(p) = key.strip_prefix("xmlns:") {
                        decls.push((p.to_string(), value.clone()));
                        doc.namespaces.entry(p.to_string()).or_insert_with(|| value.clone());
                    }
                    raw_attrs.push((key, value, span, quote));
                }
                if stack.is_empty() {
                    doc.default_ns =
                        decls.iter().find(|(p, _)| p.is_empty()).map(|(_, u)| u.clone()).filter(|u| !u.is_empty());
                }
                let depth = stack.len();
                scopes.extend(decls.into_iter().map(|(p, u)| (depth, p, u)));
                let resolve = |prefix: Option<&str>, is_attr: bool| -> Result<Option<String>, String> {
                    let p = match prefix {
                        Some("xml") => return Ok(Some("http://www.w3.org/XML/1998/namespace".to_string())),
                        Some(p) => p,
                        None if is_attr => return Ok(None),
                        None => "",
                    };
                    if let Some((_, _, uri)) = scopes.iter().rev().find(|(_, q, _)| q == p) {
                        return Ok(Some(uri.clone()).filter(|u| !u.is_empty()));
                    }
                    if p.is_empty() {
                        Ok(None)
                    } else {
                        Err(format!("'{p}' is an undeclared prefix at position {before}"))
                    }
                };
                let (prefix, local) = split_qname(&qname);
                let ns = resolve(prefix.as_deref(), false)?;
                let mut attrs = Vec::new();
                for (key, value, span, quote) in raw_attrs {
                    if key == "xmlns" || key.starts_with("xmlns:") {
                        continue;
                    }
                    let (prefix, local) = split_qname(&key);
                    let ns = resolve(prefix.as_deref(), true)?;
                    attrs.push(Attr { prefix, local, ns, value, span, quote });
                }
                let empty = matches!(event, Event::Empty(_));
                if empty {
                    scopes.retain(|(d, _, _)| *d < depth);
                }
                Kind::Element {
                    qname,
                    local,
                    ns,
                    attrs,
                    tag: before..after,
                    content: if empty { None } else { Some(after..after) },
                }
            }
            Event::End(_) => {
                let Some(open) = stack.pop() else {
                    return Err(format!("Unexpected end tag at position {before}"));
                };
                let depth = stack.len();
                while scopes.last().is_some_and(|(d, _, _)| *d >= depth) {
                    scopes.pop();
                }
                if let Kind::Element { content: Some(c), .. } = &mut doc.nodes[open].kind {
                    c.end = before;
                }
                continue;
            }
            Event::Text(_) | Event::GeneralRef(_) => unreachable!("text is gathered above"),
            Event::CData(ref c) => {
                if stack.is_empty() {
                    return Err(format!("Data at the root level is invalid at position {before}"));
                }
                let value = c.to_string();
                let start = offset(text, c);
                Kind::CData { value, span: start..start + c.len() }
            }
            Event::Comment(ref c) => {
                let value = c.to_string();
                let start = offset(text, c);
                Kind::Comment { value, span: start..start + c.len() }
            }
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) => Kind::Other,
        };
        let is_start = matches!(event, Event::Start(_));
        let index = doc.nodes.len();
        doc.nodes.push(XNode { kind, parent, children: Vec::new() });
        match parent {
            Some(p) => doc.nodes[p].children.push(index),
            None => doc.top.push(index),
        }
        if is_start {
            stack.push(index);
        }
    }
    if let Some(span) = pending_text.take() {
        push_text(&mut doc, stack.last().copied(), text, span)?;
    }
    if !stack.is_empty() {
        return Err("Unexpected end of file: there are unclosed elements".to_string());
    }
    if roots == 0 {
        return Err("Root element is missing".to_string());
    }
    Ok(doc)
}

/// Adds the text node at `span` (entity references still escaped) under `parent`; text
/// outside the root element may only be whitespace.
fn push_text(doc: &mut Document, parent: Option<usize>, text: &str, span: Range<usize>) -> Result<(), String> {
    let raw = &text[span.clone()];
    let Some(parent) = parent else {
        if raw.trim().is_empty() {
            return Ok(());
        }
        return Err(format!("Data at the root level is invalid at position {}", span.start));
    };
    let value = quick_xml::escape::unescape(raw).map_err(|e| format!("{e} at position {}", span.start))?.into_owned();
    let index = doc.nodes.len();
    doc.nodes.push(XNode { kind: Kind::Text { value, span }, parent: Some(parent), children: Vec::new() });
    doc.nodes[parent].children.push(index);
    Ok(())
}

/// A node an expression can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum NodeRef {
    Root,
    Node(usize),
    Attr(usize, usize),
}

#[derive(Debug, Clone)]
enum Value {
    Nodes(Vec<NodeRef>),
    Str(String),
    Num(f64),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Axis {
    Child,
    Attribute,
    Descendant,
    DescendantOrSelf,
    Current,
    Parent,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Name(Option<String>, String),
    Any,
    PrefixAny(String),
    Text,
    Node,
    Comment,
}

#[derive(Debug, Clone)]
struct Step {
    axis: Axis,
    test: Test,
    predicates: Vec<Expr>,
}

#[derive(Debug, Clone)]
enum Expr {
    Path { absolute: bool, steps: Vec<Step> },
    Union(Vec<Expr>),
    Literal(String),
    Number(f64),
    Compare(Box<Expr>, Box<Expr>, bool),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

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

fn tokenize(expr: &str) -> Result<Vec<Token>, String> {
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
                let end = chars[i + 1..].iter().position(|&x| x == c).ok_or("unterminated string literal")?;
                tokens.push(Token::Literal(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            c if c.is_ascii_digit() || c == '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                tokens.push(Token::Number(s.parse().map_err(|_| format!("bad number {s}"))?));
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
                        return Err(format!("unexpected ':' at {i}"));
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
            other => return Err(format!("unexpected character '{other}'")),
        }
    }
    Ok(tokens)
}

struct ExprParser<'d> {
    tokens: Vec<Token>,
    pos: usize,
    doc: &'d Document,
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

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Name("or".into())) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.compare()?;
        while self.peek() == Some(&Token::Name("and".into())) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.compare()?));
        }
        Ok(left)
    }

    fn compare(&mut self) -> Result<Expr, String> {
        let left = self.union()?;
        if self.eat(&Token::Eq) {
            return Ok(Expr::Compare(Box::new(left), Box::new(self.union()?), false));
        }
        if self.eat(&Token::NotEq) {
            return Ok(Expr::Compare(Box::new(left), Box::new(self.union()?), true));
        }
        Ok(left)
    }

    fn union(&mut self) -> Result<Expr, String> {
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

    fn primary(&mut self) -> Result<Expr, String> {
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
                    return Err("expected ')'".into());
                }
                Ok(e)
            }
            Some(Token::Name(n))
                if self.tokens.get(self.pos + 1) == Some(&Token::LParen)
                    && !matches!(n.as_str(), "text" | "node" | "comment") =>
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
                            return Err("expected ',' or ')'".into());
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
                    return Err(format!("unsupported function {n}()"));
                }
                Ok(Expr::Call(n, args))
            }
            _ => self.path(),
        }
    }

    fn path(&mut self) -> Result<Expr, String> {
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

    fn step(&mut self) -> Result<Step, String> {
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
                other => return Err(format!("unsupported axis {other}")),
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
                if self.peek() == Some(&Token::LParen) && matches!(n.as_str(), "text" | "node" | "comment") {
                    self.pos += 1;
                    if !self.eat(&Token::RParen) {
                        return Err("expected ')'".into());
                    }
                    match n.as_str() {
                        "text" => Test::Text,
                        "node" => Test::Node,
                        _ => Test::Comment,
                    }
                } else if let Some(p) = n.strip_suffix(":*") {
                    self.namespace(p)?;
                    Test::PrefixAny(p.to_string())
                } else {
                    let (prefix, local) = split_qname(&n);
                    if let Some(p) = &prefix {
                        self.namespace(p)?;
                    }
                    Test::Name(prefix, local)
                }
            }
            _ => return Err("expected a node test".into()),
        };
        let mut predicates = Vec::new();
        while self.eat(&Token::Open) {
            predicates.push(self.or()?);
            if !self.eat(&Token::Close) {
                return Err("expected ']'".into());
            }
        }
        Ok(Step { axis, test, predicates })
    }

    fn namespace(&self, prefix: &str) -> Result<(), String> {
        if prefix == "xml" || self.doc.namespaces.contains_key(prefix) {
            Ok(())
        } else {
            Err(format!("Namespace prefix '{prefix}' is not defined"))
        }
    }
}

/// Compiles an XPath expression against `doc`'s namespaces.
fn compile(doc: &Document, expr: &str) -> Result<Expr, String> {
    // The parser recurses on brackets: bound the nesting so no name can exhaust the stack.
    if expr.chars().filter(|c| matches!(c, '(' | '[')).count() > MAX_BRACKETS {
        return Err("the expression is nested too deeply".into());
    }
    let tokens = tokenize(expr)?;
    if tokens.is_empty() {
        return Err("empty expression".into());
    }
    let mut p = ExprParser { tokens, pos: 0, doc };
    let e = p.or()?;
    if p.pos != p.tokens.len() {
        return Err(format!("unexpected token {:?}", p.tokens[p.pos]));
    }
    Ok(e)
}

struct Ctx {
    node: NodeRef,
    position: usize,
    size: usize,
}

impl Document {
    fn children(&self, n: NodeRef) -> &[usize] {
        match n {
            NodeRef::Root => &self.top,
            NodeRef::Node(i) => &self.nodes[i].children,
            NodeRef::Attr(..) => &[],
        }
    }

    fn descendants(&self, n: NodeRef, out: &mut Vec<NodeRef>) {
        let mut stack: Vec<usize> = self.children(n).iter().rev().copied().collect();
        while let Some(i) = stack.pop() {
            out.push(NodeRef::Node(i));
            stack.extend(self.nodes[i].children.iter().rev());
        }
    }

    fn ns_matches(&self, ns: &Option<String>, prefix: &Option<String>, is_attr: bool) -> bool {
        match prefix {
            Some(p) if p == "xml" => ns.as_deref() == Some("http://www.w3.org/XML/1998/namespace"),
            Some(p) => self.namespaces.get(p) == ns.as_ref(),
            None => ns.is_none() || (!is_attr && ns == &self.default_ns),
        }
    }

    fn test(&self, n: NodeRef, test: &Test, axis: Axis) -> bool {
        match n {
            NodeRef::Root => matches!(test, Test::Node),
            NodeRef::Attr(e, a) => {
                let Kind::Element { attrs, .. } = &self.nodes[e].kind else { return false };
                let attr = &attrs[a];
                match test {
                    Test::Node | Test::Any => true,
                    Test::Name(p, l) => &attr.local == l && self.ns_matches(&attr.ns, p, true),
                    Test::PrefixAny(p) => self.namespaces.get(p) == attr.ns.as_ref(),
                    _ => false,
                }
            }
            NodeRef::Node(i) => match (&self.nodes[i].kind, test) {
                (_, Test::Node) => true,
                (Kind::Text { .. } | Kind::CData { .. }, Test::Text) => true,
                (Kind::Comment { .. }, Test::Comment) => true,
                (Kind::Element { .. }, Test::Any) => axis != Axis::Attribute,
                (Kind::Element { local, ns, .. }, Test::Name(p, l)) => local == l && self.ns_matches(ns, p, false),
                (Kind::Element { ns, .. }, Test::PrefixAny(p)) => self.namespaces.get(p) == ns.as_ref(),
                _ => false,
            },
        }
    }

    fn axis(&self, n: NodeRef, axis: Axis) -> Vec<NodeRef> {
        match axis {
            Axis::Child => self.children(n).iter().map(|&i| NodeRef::Node(i)).collect(),
            Axis::Attribute => match n {
                NodeRef::Node(i) => match &self.nodes[i].kind {
                    Kind::Element { attrs, .. } => (0..attrs.len()).map(|a| NodeRef::Attr(i, a)).collect(),
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            },
            Axis::Descendant => {
                let mut out = Vec::new();
                self.descendants(n, &mut out);
                out
            }
            Axis::DescendantOrSelf => {
                let mut out = vec![n];
                self.descendants(n, &mut out);
                out
            }
            Axis::Current => vec![n],
            Axis::Parent => match n {
                NodeRef::Root => Vec::new(),
                NodeRef::Attr(e, _) => vec![NodeRef::Node(e)],
                NodeRef::Node(i) => vec![self.nodes[i].parent.map_or(NodeRef::Root, NodeRef::Node)],
            },
        }
    }

    fn string_value(&self, n: NodeRef) -> String {
        match n {
            NodeRef::Attr(e, a) => match &self.nodes[e].kind {
                Kind::Element { attrs, .. } => attrs[a].value.clone(),
                _ => String::new(),
            },
            NodeRef::Node(i) => match &self.nodes[i].kind {
                Kind::Text { value, .. } | Kind::CData { value, .. } | Kind::Comment { value, .. } => value.clone(),
                _ => self.inner_text(n),
            },
            NodeRef::Root => self.inner_text(n),
        }
    }

    fn inner_text(&self, n: NodeRef) -> String {
        let mut all = Vec::new();
        self.descendants(n, &mut all);
        all.into_iter()
            .filter_map(|d| match d {
                NodeRef::Node(i) => match &self.nodes[i].kind {
                    Kind::Text { value, .. } | Kind::CData { value, .. } => Some(value.as_str()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    fn eval(&self, e: &Expr, ctx: &Ctx) -> Value {
        match e {
            Expr::Literal(s) => Value::Str(s.clone()),
            Expr::Number(n) => Value::Num(*n),
            Expr::Path { absolute, steps } => {
                let mut set = vec![if *absolute { NodeRef::Root } else { ctx.node }];
                for step in steps {
                    let mut next = Vec::new();
                    for &n in &set {
                        let mut found: Vec<NodeRef> = self
                            .axis(n, step.axis)
                            .into_iter()
                            .filter(|&m| self.test(m, &step.test, step.axis))
                            .collect();
                        for p in &step.predicates {
                            let size = found.len();
                            found = found
                                .into_iter()
                                .enumerate()
                                .filter(|&(i, m)| {
                                    let c = Ctx { node: m, position: i + 1, size };
                                    match self.eval(p, &c) {
                                        Value::Num(x) => x == (i + 1) as f64,
                                        v => self.boolean(&v),
                                    }
                                })
                                .map(|(_, m)| m)
                                .collect();
                        }
                        next.extend(found);
                    }
                    next.sort();
                    next.dedup();
                    set = next;
                }
                Value::Nodes(set)
            }
            Expr::Union(parts) => {
                let mut all = Vec::new();
                for p in parts {
                    if let Value::Nodes(n) = self.eval(p, ctx) {
                        all.extend(n);
                    }
                }
                all.sort();
                all.dedup();
                Value::Nodes(all)
            }
            Expr::Compare(a, b, negate) => {
                let (a, b) = (self.eval(a, ctx), self.eval(b, ctx));
                Value::Bool(self.compare(&a, &b, *negate))
            }
            Expr::And(a, b) => Value::Bool(self.boolean(&self.eval(a, ctx)) && self.boolean(&self.eval(b, ctx))),
            Expr::Or(a, b) => Value::Bool(self.boolean(&self.eval(a, ctx)) || self.boolean(&self.eval(b, ctx))),
            Expr::Call(name, args) => {
                let arg = |i: usize| args.get(i).map(|a| self.eval(a, ctx));
                let string = |v: Option<Value>| v.map_or_else(|| self.string_value(ctx.node), |v| self.string(&v));
                match name.as_str() {
                    "position" => Value::Num(ctx.position as f64),
                    "last" => Value::Num(ctx.size as f64),
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "not" => Value::Bool(!arg(0).is_some_and(|v| self.boolean(&v))),
                    "count" => Value::Num(match arg(0) {
                        Some(Value::Nodes(n)) => n.len() as f64,
                        _ => 0.0,
                    }),
                    "contains" => Value::Bool(string(arg(0)).contains(&string(arg(1)))),
                    "starts-with" => Value::Bool(string(arg(0)).starts_with(&string(arg(1)))),
                    "string" => Value::Str(string(arg(0))),
                    "name" | "local-name" => {
                        let node = match arg(0) {
                            Some(Value::Nodes(n)) => n.first().copied(),
                            _ => Some(ctx.node),
                        };
                        Value::Str(node.map_or_else(String::new, |n| self.name(n, name == "local-name")))
                    }
                    _ => Value::Bool(false),
                }
            }
        }
    }

    fn name(&self, n: NodeRef, local_only: bool) -> String {
        match n {
            NodeRef::Node(i) => match &self.nodes[i].kind {
                Kind::Element { qname, local, .. } => {
                    if local_only {
                        local.clone()
                    } else {
                        qname.clone()
                    }
                }
                _ => String::new(),
            },
            NodeRef::Attr(e, a) => match &self.nodes[e].kind {
                Kind::Element { attrs, .. } => {
                    let attr = &attrs[a];
                    match (&attr.prefix, local_only) {
                        (Some(p), false) => format!("{p}:{}", attr.local),
                        _ => attr.local.clone(),
                    }
                }
                _ => String::new(),
            },
            NodeRef::Root => String::new(),
        }
    }

    fn boolean(&self, v: &Value) -> bool {
        match v {
            Value::Nodes(n) => !n.is_empty(),
            Value::Str(s) => !s.is_empty(),
            Value::Num(x) => *x != 0.0 && !x.is_nan(),
            Value::Bool(b) => *b,
        }
    }

    fn string(&self, v: &Value) -> String {
        match v {
            Value::Nodes(n) => n.first().map(|&n| self.string_value(n)).unwrap_or_default(),
            Value::Str(s) => s.clone(),
            Value::Num(x) => x.to_string(),
            Value::Bool(b) => b.to_string(),
        }
    }

    fn number(&self, v: &Value) -> f64 {
        match v {
            Value::Num(x) => *x,
            Value::Bool(b) => f64::from(u8::from(*b)),
            other => self.string(other).trim().parse().unwrap_or(f64::NAN),
        }
    }

    fn compare(&self, a: &Value, b: &Value, negate: bool) -> bool {
        let eq = |x: bool| x != negate;
        match (a, b) {
            (Value::Nodes(x), Value::Nodes(y)) => {
                let ys: Vec<String> = y.iter().map(|&n| self.string_value(n)).collect();
                x.iter().any(|&n| {
                    let s = self.string_value(n);
                    ys.iter().any(|t| eq(&s == t))
                })
            }
            (Value::Nodes(x), other) | (other, Value::Nodes(x)) => match other {
                Value::Bool(b) => eq(x.is_empty() != *b),
                Value::Num(num) => x.iter().any(|&n| eq(self.string_value(n).trim().parse::<f64>().ok() == Some(*num))),
                _ => {
                    let s = self.string(other);
                    x.iter().any(|&n| eq(self.string_value(n) == s))
                }
            },
            (Value::Bool(_), _) | (_, Value::Bool(_)) => eq(self.boolean(a) == self.boolean(b)),
            (Value::Num(_), _) | (_, Value::Num(_)) => eq(self.number(a) == self.number(b)),
            _ => eq(self.string(a) == self.string(b)),
        }
    }

    /// The nodes `expr` selects, in document order; an error when it is not an expression
    /// this module understands or does not select nodes.
    fn select(&self, expr: &str) -> Result<Vec<NodeRef>, String> {
        let compiled = compile(self, expr)?;
        match self.eval(&compiled, &Ctx { node: NodeRef::Root, position: 1, size: 1 }) {
            Value::Nodes(n) => Ok(n),
            _ => Err("the expression does not select nodes".into()),
        }
    }
}

/// Text content escaped for XML.
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// An attribute value escaped for XML, for the given quote character.
pub fn escape_attr(value: &str, quote: u8) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if quote == b'"' => out.push_str("&quot;"),
            '\'' if quote == b'\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            c => out.push(c),
        }
    }
    out
}

fn is_fragment(value: &str) -> bool {
    let wrapped = format!("<fragment>{value}</fragment>");
    let mut reader = Reader::from_str(&wrapped);
    reader.config_mut().check_end_names = true;
    let mut depth = 0i32;
    loop {
        match reader.read_event() {
            Err(_) => return false,
            Ok(Event::Eof) => return depth == 0,
            Ok(Event::Start(_)) => depth += 1,
            Ok(Event::End(_)) => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Ok(Event::GeneralRef(r)) => {
                let known = match r.resolve_char_ref() {
                    Ok(Some(_)) => true,
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&r).is_some(),
                    Err(_) => false,
                };
                if !known {
                    return false;
                }
            }
            Ok(_) => {}
        }
    }
}

pub(crate) fn replace(text: &str, candidates: &Candidates<'_>, edits: &mut Edits) -> Result<(), Attempt> {
    let doc = parse(text).map_err(Attempt::Unparseable)?;
    for name in candidates.names() {
        let Ok(selected) = doc.select(name) else { continue };
        if selected.is_empty() {
            continue;
        }
        let value = candidates.value(name)?.unwrap_or_default();
        for node in selected {
            match node {
                NodeRef::Root => {}
                NodeRef::Attr(e, a) => {
                    if let Kind::Element { attrs, .. } = &doc.nodes[e].kind {
                        let attr = &attrs[a];
                        edits.push(name, attr.span.clone(), escape_attr(&value, attr.quote));
                    }
                }
                NodeRef::Node(i) => match &doc.nodes[i].kind {
                    Kind::Text { span, .. } => edits.push(name, span.clone(), escape_text(&value)),
                    Kind::CData { span, .. } => edits.push(name, span.clone(), value.replace("]]>", "]]]]><![CDATA[>")),
                    Kind::Comment { span, .. } => edits.push(name, span.clone(), value.replace("--", "- -")),
                    Kind::Element { qname, tag, content, .. } => {
                        let children = &doc.nodes[i].children;
                        // .NET drops whitespace-only text when loading, so `<a> <![CDATA[x]]> </a>`
                        // counts as holding only its CDATA section.
                        let significant: Vec<usize> = children
                            .iter()
                            .copied()
                            .filter(
                                |&c| !matches!(&doc.nodes[c].kind, Kind::Text { value, .. } if value.trim().is_empty()),
                            )
                            .collect();
                        let only_cdata = match significant.as_slice() {
                            [c] => matches!(doc.nodes[*c].kind, Kind::CData { .. }),
                            _ => false,
                        };
                        let has_elements = children.iter().any(|&c| matches!(doc.nodes[c].kind, Kind::Element { .. }));
                        match content {
                            None => {
                                // `<a/>`: open it up to hold the value.
                                let open = text[tag.clone()].trim_end_matches('>').trim_end_matches('/').trim_end();
                                edits.push(name, tag.clone(), format!("{open}>{}</{qname}>", escape_text(&value)));
                            }
                            Some(_) if only_cdata => {
                                if let Kind::CData { span, .. } = &doc.nodes[significant[0]].kind {
                                    edits.push(name, span.clone(), value.replace("]]>", "]]]]><![CDATA[>"));
                                }
                            }
                            Some(content) if has_elements => {
                                if is_fragment(&value) {
                                    edits.push(name, content.clone(), value.clone());
                                } else {
                                    edits.warn(format!(
                                        "Could not set the value of the XML element at XPath '{name}'. Expected a valid XML fragment. Skipping replacement of this element."
                                    ));
                                }
                            }
                            Some(content) => edits.push(name, content.clone(), escape_text(&value)),
                        }
                    }
                    Kind::Other => {}
                },
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<!-- settings -->
<configuration xmlns:x="urn:x">
  <appSettings>
    <add key="Name" value="demo" />
    <add key='Port' value='80'/>
  </appSettings>
  <x:feature enabled="false">on</x:feature>
  <empty/>
  <script><![CDATA[a < b]]></script>
  <list><item>1</item><item>2</item></list>
</configuration>
"#;

    fn select(expr: &str) -> Vec<String> {
        let doc = parse(DOC).unwrap();
        doc.select(expr)
            .unwrap()
            .into_iter()
            .map(|n| match n {
                NodeRef::Attr(e, a) => match &doc.nodes[e].kind {
                    Kind::Element { attrs, .. } => format!("@{}={}", attrs[a].local, attrs[a].value),
                    _ => unreachable!(),
                },
                other => format!("{}:{}", doc.name(other, false), doc.string_value(other)),
            })
            .collect()
    }

    #[test]
    fn xpath_subset() {
        let cases: &[(&str, &[&str])] = &[
            ("/configuration/appSettings/add[@key='Name']/@value", &["@value=demo"]),
            ("//add[@key=\"Port\"]/@value", &["@value=80"]),
            ("//add/@key", &["@key=Name", "@key=Port"]),
            ("/configuration/x:feature", &["x:feature:on"]),
            ("//x:feature/@enabled", &["@enabled=false"]),
            ("//x:*/text()", &[":on"]),
            ("/configuration/list/item[2]", &["item:2"]),
            ("/configuration/list/item[last()]", &["item:2"]),
            ("//item[. = '1']", &["item:1"]),
            ("//item[position() = 5 or true()]", &["item:1", "item:2"]),
            ("//list/item[1] | //empty", &["empty:", "item:1"]),
            ("//script", &["script:a < b"]),
            ("//add[@key='Name' and @value='demo']/@key", &["@key=Name"]),
            ("//add[not(@key='Name')]/@value", &["@value=80"]),
            ("//add[starts-with(@key,'Po')]/@key", &["@key=Port"]),
            ("//nothing", &[]),
            ("Name", &[]),
        ];
        for (expr, expected) in cases {
            assert_eq!(select(expr), *expected, "{expr}");
        }
    }

    #[test]
    fn names_that_are_not_expressions() {
        let doc = parse(DOC).unwrap();
        let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        for expr in ["Logging:Level", "My Var", "a[", "", "unknown:*", "#{x}", deep.as_str()] {
            assert!(doc.select(expr).is_err(), "{expr:?} should not compile");
        }
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            "",
            "a: 1",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "<a>&undefined;</a>",
            "{\"a\": 1}",
            "<a x='1' x='2'/>",
            "text <a/>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}

#[cfg(test)]
mod torture {
    //! Every element and attribute of a document is replaced in turn through an absolute
    //! positional XPath; the result must parse, hold the new value there, and hold the old
    //! values everywhere else.

    use super::*;
    use crate::VariableDictionary;
    use crate::structured::{Format, replace};

    const DOC: &str = "<?xml version=\"1.0\"?>\r\n<!DOCTYPE root>\r\n<root xmlns:p=\"urn:p\" a=\"1\" b='two'>\r\n  <!-- c -->\r\n  <p:item id=\"x\">text &amp; more</p:item>\r\n  <item/>\r\n  <item id='y'><![CDATA[<raw>]]></item>\r\n  <group>\r\n    <leaf k=\"v\">1</leaf>\r\n    <leaf>2<!-- inner --></leaf>\r\n  </group>\r\n  <?pi data?>\r\n</root>\r\n";

    /// `(xpath, string value)` of every element and attribute, by absolute positions.
    fn inventory(doc: &Document) -> Vec<(String, String)> {
        let mut out = Vec::new();
        fn walk(doc: &Document, i: usize, path: String, out: &mut Vec<(String, String)>) {
            let Kind::Element { attrs, .. } = &doc.nodes[i].kind else { return };
            out.push((path.clone(), doc.string_value(NodeRef::Node(i))));
            for a in attrs {
                out.push((format!("{path}/@{}", a.local), a.value.clone()));
            }
            let mut seen: HashMap<String, usize> = HashMap::new();
            for &c in &doc.nodes[i].children {
                if let Kind::Element { qname, .. } = &doc.nodes[c].kind {
                    let n = seen.entry(qname.clone()).or_default();
                    *n += 1;
                    walk(doc, c, format!("{path}/{qname}[{n}]"), out);
                }
            }
        }
        let root = doc.top.iter().copied().find(|&i| matches!(doc.nodes[i].kind, Kind::Element { .. })).unwrap();
        walk(doc, root, "/root".to_string(), &mut out);
        out
    }

    #[test]
    fn every_element_and_attribute_replaced_in_turn() {
        let before = inventory(&parse(DOC).unwrap());
        assert_eq!(before.len(), 12, "{before:?}");
        for (i, (path, _)) in before.iter().enumerate() {
            let has_children = path == "/root" || path.ends_with("group[1]");
            let value = if has_children { "<new a=\"1\">x</new>" } else { "a < b & \"c\" 'd'" };
            let mut vars = VariableDictionary::new();
            vars.set(path.clone(), Some(value.to_string()));
            let out =
                replace(DOC.as_bytes(), Format::Xml, &vars).unwrap().unwrap_or_else(|| panic!("{path} unchanged"));
            let out = String::from_utf8(out).unwrap();
            let doc = parse(&out).unwrap_or_else(|e| panic!("{path}: {e}\n{out}"));
            assert!(out.contains("\r\n  <!-- c -->\r\n") || path == "/root", "{out}");
            let after = inventory(&doc);
            if has_children {
                let (p, v) = after.iter().find(|(p, _)| p == path).unwrap();
                assert_eq!((p.as_str(), v.as_str()), (path.as_str(), "x"), "{out}");
                continue;
            }
            assert_eq!(after.len(), before.len(), "{path}\n{out}");
            for (j, ((p0, v0), (p1, v1))) in before.iter().zip(&after).enumerate() {
                assert_eq!(p0, p1);
                if j == i {
                    assert_eq!(v1, value, "{path}\n{out}");
                } else if !path.starts_with(p0.as_str()) {
                    assert_eq!(v0, v1, "{p0} changed when replacing {path}\n{out}");
                }
            }
        }
    }
}
