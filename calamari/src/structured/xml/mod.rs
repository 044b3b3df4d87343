//! XML: variable names are XPath expressions. The document is read with quick-xml into a
//! small tree that remembers the byte span of every attribute value, text, CDATA section,
//! comment and element content; each node an expression selects is replaced in place.
//!
//! Namespace prefixes declared anywhere in the document (`xmlns:p="..."`) are registered
//! for the expressions, as the reference does. An unprefixed element name matches
//! elements in no namespace or in the root element's default namespace (XPath 2 style).
//!
//! Supported XPath: absolute and relative location paths (`/a/b`, `a/b`, `//b`, `a//b`),
//! `.`, `..`, `*`, `p:*`, `*:local` (XPath 2), `@attr`, `@*`, `text()`, `node()`, `comment()`,
//! `processing-instruction()` (with or without a target literal), the axes
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
pub(crate) mod xpath;

pub use dom::XmlSyntaxError;
pub(crate) use replace::replace;

use std::ops::Range;

use crate::text_encoding::{Charset, TextEncoding};

/// The span of the `encoding` value in an XML declaration at the start of `text`.
fn declared_encoding_span(text: &[u8]) -> Option<Range<usize>> {
    if !text.starts_with(b"<?xml") || !text.get(5).is_some_and(u8::is_ascii_whitespace) {
        return None;
    }
    let end = memchr::memmem::find(&text[..text.len().min(1024)], b"?>")?;
    let decl = &text[..end];
    let mut at = memchr::memmem::find(decl, b"encoding")? + b"encoding".len();
    while decl.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    if decl.get(at) != Some(&b'=') {
        return None;
    }
    at += 1;
    while decl.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    let quote = *decl.get(at).filter(|q| matches!(q, b'"' | b'\''))?;
    let close = at + 1 + memchr::memchr(quote, &decl[at + 1..])?;
    Some(at + 1..close)
}

/// The text of an XML file read in the encoding its declaration names (reference
/// `XmlFormatVariableReplacer`: the declared encoding is tried first). `None` when there
/// is a BOM (it wins), no declaration or encoding, an encoding that is UTF-8, UTF-16 or
/// unknown, or bytes that are not valid in it: the usual detection applies then.
pub(crate) fn decode_declared(bytes: &[u8]) -> Option<(String, TextEncoding)> {
    if bytes.starts_with(b"\xEF\xBB\xBF") || crate::text_encoding::is_utf16(bytes) {
        return None;
    }
    let name = std::str::from_utf8(&bytes[declared_encoding_span(bytes)?]).ok()?;
    let encoding = TextEncoding::by_name(name, false)?;
    let text = match encoding.charset {
        Charset::Other(e) => e.decode_without_bom_handling_and_without_replacement(bytes)?.into_owned(),
        Charset::Ascii if bytes.is_ascii() => String::from_utf8(bytes.to_vec()).ok()?,
        _ => return None,
    };
    Some((text, encoding))
}

/// `text` with the encoding its XML declaration names changed to `name`; `None` when it
/// has no declaration naming one.
pub(crate) fn with_declared_encoding(text: &str, name: &str) -> Option<String> {
    let span = declared_encoding_span(text.as_bytes())?;
    let mut out = text.to_string();
    out.replace_range(span, name);
    Some(out)
}
