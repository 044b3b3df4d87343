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
//! The pieces, in the order a file goes through them:
//!
//! * [`dom`]: [`parse`] builds the [`Document`] tree, or says why the text is not XML
//!   ([`XmlSyntaxError`]).
//! * `xpath`: the expression lexer and parser ([`XPathError`] for a name that is not one).
//! * `eval`: the evaluator that turns an expression into the nodes it selects.
//! * `replace`: what each selected node becomes, written into the edits.

pub(crate) mod dom;
mod eval;
mod replace;
mod xpath;

pub use dom::XmlSyntaxError;
pub(crate) use replace::replace;
