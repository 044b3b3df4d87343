//! The document tree the XPath evaluator walks: quick-xml's events turned into nodes that
//! remember the byte span of every attribute value, text, CDATA section, comment and
//! element content, so a replacement edits only those bytes.
//!
//! [`parse`] is strict where .NET's `XmlDocument.Load` is (one root element, no text
//! outside it, declared prefixes, matching end tags) and reports the first problem as an
//! [`XmlSyntaxError`] with its byte position. Namespace declarations are collected for the
//! expressions: every `xmlns:p` anywhere in the document, and the root's default namespace.

use std::collections::HashMap;
use std::ops::Range;

use quick_xml::escape::EscapeError;
use quick_xml::events::Event;
use quick_xml::events::attributes::AttrError;
use quick_xml::reader::Reader;

/// The namespace the `xml` prefix is bound to without a declaration.
pub(crate) const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// Why a text is not a well-formed XML document. Positions are byte offsets in the text.
#[derive(Debug, thiserror::Error)]
pub enum XmlSyntaxError {
    /// quick-xml found a well-formedness error.
    #[error("{source} at position {position}")]
    Reader {
        /// What quick-xml said.
        #[source]
        source: quick_xml::Error,
        /// Where the error was found.
        position: u64,
    },
    /// A start tag holds a malformed attribute (a duplicate, a missing quote...).
    #[error("{source} in the tag at position {position}")]
    Attribute {
        /// What quick-xml said.
        #[source]
        source: AttrError,
        /// The start of the tag.
        position: usize,
    },
    /// An attribute value holds an unknown or malformed entity reference.
    #[error("{source} in the tag at position {position}")]
    AttributeValue {
        /// What the unescaper said.
        #[source]
        source: EscapeError,
        /// The start of the tag.
        position: usize,
    },
    /// Text holds an unknown or malformed entity reference.
    #[error("{source} at position {position}")]
    Text {
        /// What the unescaper said.
        #[source]
        source: EscapeError,
        /// The start of the text.
        position: usize,
    },
    /// A second element at the top level.
    #[error("There are multiple root elements at position {position}")]
    MultipleRoots {
        /// The start of the second root's tag.
        position: usize,
    },
    /// An element or attribute name uses a prefix no enclosing element declares.
    #[error("'{prefix}' is an undeclared prefix at position {position}")]
    UndeclaredPrefix {
        /// The prefix.
        prefix: String,
        /// The start of the tag.
        position: usize,
    },
    /// An end tag with no open element.
    #[error("Unexpected end tag at position {position}")]
    UnexpectedEndTag {
        /// The start of the end tag.
        position: usize,
    },
    /// Text or CDATA outside the root element.
    #[error("Data at the root level is invalid at position {position}")]
    DataAtRootLevel {
        /// The start of the text or CDATA section.
        position: usize,
    },
    /// The text ends while elements are open.
    #[error("Unexpected end of file: there are unclosed elements")]
    UnclosedElements,
    /// No element at all.
    #[error("Root element is missing")]
    MissingRoot,
}

/// An attribute as written in the document.
#[derive(Debug, Clone)]
pub(crate) struct Attr {
    pub(crate) prefix: Option<String>,
    pub(crate) local: String,
    pub(crate) ns: Option<String>,
    pub(crate) value: String,
    /// The value's span, inside the quotes.
    pub(crate) span: Range<usize>,
    /// The quote character around the value.
    pub(crate) quote: u8,
}

/// What a node is, with the spans a replacement needs.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
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
    /// `<?target data?>`: `span` is the data (after the blanks that follow the target), or
    /// the point right after the target when there is none.
    Pi {
        target: String,
        value: String,
        span: Range<usize>,
    },
    Other,
}

/// A node with its links, as indexes into [`Document`]'s node list.
#[derive(Debug, Clone)]
pub(crate) struct XNode {
    pub(crate) kind: Kind,
    /// The whole node as written: from its first byte to its last (an element's end tag
    /// included; the entity references of a text node included).
    pub(crate) span: Range<usize>,
    pub(crate) parent: Option<usize>,
    pub(crate) children: Vec<usize>,
}

/// A parsed document: the nodes in document order, with the top-level ones listed.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) nodes: Vec<XNode>,
    pub(crate) top: Vec<usize>,
    /// Every prefix declared anywhere, bound to its first declaration's URI.
    pub(crate) namespaces: HashMap<String, String>,
    /// The root element's default namespace.
    pub(crate) default_ns: Option<String>,
    /// Each later declaration of a prefix with another URI, in document order:
    /// `(prefix, its URI, the URI the prefix is already bound to)`.
    pub(crate) duplicate_prefixes: Vec<(String, String, String)>,
}

fn offset(text: &str, slice: &str) -> usize {
    slice.as_ptr() as usize - text.as_ptr() as usize
}

pub(crate) fn split_qname(qname: &str) -> (Option<String>, String) {
    match qname.split_once(':') {
        Some((p, l)) => (Some(p.to_string()), l.to_string()),
        None => (None, qname.to_string()),
    }
}

/// Parses `text` as a well-formed XML document.
///
/// # Errors
/// An [`XmlSyntaxError`] with the byte position, for any well-formedness error quick-xml
/// finds, a missing or second root element, text outside the root, or unclosed elements.
pub(crate) fn parse(text: &str) -> Result<Document, XmlSyntaxError> {
    parse_with(text, true)
}

/// As [`parse`], but a text with no root element (only a declaration, comments, blanks) is
/// an empty document rather than an error: what a transform that removed the root leaves.
///
/// # Errors
/// As [`parse`], except [`XmlSyntaxError::MissingRoot`].
pub(crate) fn parse_allowing_no_root(text: &str) -> Result<Document, XmlSyntaxError> {
    parse_with(text, false)
}

fn parse_with(text: &str, require_root: bool) -> Result<Document, XmlSyntaxError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;
    let mut doc = Document {
        nodes: Vec::new(),
        top: Vec::new(),
        namespaces: HashMap::new(),
        default_ns: None,
        duplicate_prefixes: Vec::new(),
    };
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
        let event = reader
            .read_event()
            .map_err(|source| XmlSyntaxError::Reader { source, position: reader.error_position() })?;
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
                        return Err(XmlSyntaxError::MultipleRoots { position: before });
                    }
                }
                let qname = e.name().as_ref().to_string();
                let mut decls = Vec::new();
                let mut raw_attrs = Vec::new();
                for attr in e.attributes() {
                    let attr = attr.map_err(|source| XmlSyntaxError::Attribute { source, position: before })?;
                    let key = attr.key.as_ref().to_string();
                    let value = quick_xml::escape::unescape(&attr.value)
                        .map_err(|source| XmlSyntaxError::AttributeValue { source, position: before })?
                        .into_owned();
                    let start = offset(text, &attr.value);
                    let span = start..start + attr.value.len();
                    let quote = text.as_bytes().get(start.wrapping_sub(1)).copied().unwrap_or(b'"');
                    if key == "xmlns" {
                        decls.push((String::new(), value.clone()));
                    } else if let Some(p) = key.strip_prefix("xmlns:") {
                        decls.push((p.to_string(), value.clone()));
                        match doc.namespaces.get(p) {
                            None => {
                                doc.namespaces.insert(p.to_string(), value.clone());
                            }
                            Some(existing) if *existing != value => {
                                doc.duplicate_prefixes.push((p.to_string(), value.clone(), existing.clone()));
                            }
                            Some(_) => {}
                        }
                    }
                    raw_attrs.push((key, value, span, quote));
                }
                if stack.is_empty() {
                    doc.default_ns =
                        decls.iter().find(|(p, _)| p.is_empty()).map(|(_, u)| u.clone()).filter(|u| !u.is_empty());
                }
                let depth = stack.len();
                scopes.extend(decls.into_iter().map(|(p, u)| (depth, p, u)));
                let resolve = |prefix: Option<&str>, is_attr: bool| -> Result<Option<String>, XmlSyntaxError> {
                    let p = match prefix {
                        Some("xml") => return Ok(Some(XML_NAMESPACE.to_string())),
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
                        Err(XmlSyntaxError::UndeclaredPrefix { prefix: p.to_string(), position: before })
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
                    return Err(XmlSyntaxError::UnexpectedEndTag { position: before });
                };
                let depth = stack.len();
                while scopes.last().is_some_and(|(d, _, _)| *d >= depth) {
                    scopes.pop();
                }
                if let Kind::Element { content: Some(c), .. } = &mut doc.nodes[open].kind {
                    c.end = before;
                }
                doc.nodes[open].span.end = after;
                continue;
            }
            Event::Text(_) | Event::GeneralRef(_) => unreachable!("text is gathered above"),
            Event::CData(ref c) => {
                if stack.is_empty() {
                    return Err(XmlSyntaxError::DataAtRootLevel { position: before });
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
            Event::PI(ref pi) => {
                let start = offset(text, pi);
                let target = pi.target().to_string();
                let data = pi[target.len()..].trim_start_matches([' ', '\t', '\r', '\n']);
                let data_start = start + pi.len() - data.len();
                Kind::Pi { target, value: data.to_string(), span: data_start..start + pi.len() }
            }
            Event::Decl(_) | Event::DocType(_) => Kind::Other,
        };
        let is_start = matches!(event, Event::Start(_));
        let index = doc.nodes.len();
        doc.nodes.push(XNode { kind, span: before..after, parent, children: Vec::new() });
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
        return Err(XmlSyntaxError::UnclosedElements);
    }
    if roots == 0 && require_root {
        return Err(XmlSyntaxError::MissingRoot);
    }
    Ok(doc)
}

/// Adds the text node at `span` (entity references still escaped) under `parent`; text
/// outside the root element may only be whitespace.
fn push_text(doc: &mut Document, parent: Option<usize>, text: &str, span: Range<usize>) -> Result<(), XmlSyntaxError> {
    let raw = &text[span.clone()];
    let Some(parent) = parent else {
        if raw.trim().is_empty() {
            return Ok(());
        }
        return Err(XmlSyntaxError::DataAtRootLevel { position: span.start });
    };
    let value = quick_xml::escape::unescape(raw)
        .map_err(|source| XmlSyntaxError::Text { source, position: span.start })?
        .into_owned();
    let index = doc.nodes.len();
    doc.nodes.push(XNode {
        kind: Kind::Text { value, span: span.clone() },
        span,
        parent: Some(parent),
        children: Vec::new(),
    });
    doc.nodes[parent].children.push(index);
    Ok(())
}

/// A node an expression can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum NodeRef {
    Root,
    Node(usize),
    Attr(usize, usize),
}

impl Document {
    pub(crate) fn children(&self, n: NodeRef) -> &[usize] {
        match n {
            NodeRef::Root => &self.top,
            NodeRef::Node(i) => &self.nodes[i].children,
            NodeRef::Attr(..) => &[],
        }
    }

    pub(crate) fn descendants(&self, n: NodeRef, out: &mut Vec<NodeRef>) {
        let mut stack: Vec<usize> = self.children(n).iter().rev().copied().collect();
        while let Some(i) = stack.pop() {
            out.push(NodeRef::Node(i));
            stack.extend(self.nodes[i].children.iter().rev());
        }
    }

    pub(crate) fn string_value(&self, n: NodeRef) -> String {
        match n {
            NodeRef::Attr(e, a) => match &self.nodes[e].kind {
                Kind::Element { attrs, .. } => attrs[a].value.clone(),
                _ => String::new(),
            },
            NodeRef::Node(i) => match &self.nodes[i].kind {
                Kind::Text { value, .. }
                | Kind::CData { value, .. }
                | Kind::Comment { value, .. }
                | Kind::Pi { value, .. } => value.clone(),
                _ => self.inner_text(n),
            },
            NodeRef::Root => self.inner_text(n),
        }
    }

    pub(crate) fn inner_text(&self, n: NodeRef) -> String {
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

    pub(crate) fn name(&self, n: NodeRef, local_only: bool) -> String {
        match n {
            NodeRef::Node(i) => match &self.nodes[i].kind {
                Kind::Element { qname, local, .. } => {
                    if local_only {
                        local.clone()
                    } else {
                        qname.clone()
                    }
                }
                Kind::Pi { target, .. } => target.clone(),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            "",
            "a: 1",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "<a>&undefined;</a>",
            "<a>a & b</a>",
            "<a x='&undefined;'/>",
            "{\"a\": 1}",
            "<a x='1' x='2'/>",
            "text <a/>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn syntax_errors_carry_their_position() {
        let cases = [
            ("", "Root element is missing"),
            ("<a>", "Unexpected end of file: there are unclosed elements"),
            ("<a/><b/>", "There are multiple root elements at position 4"),
            ("text <a/>", "Data at the root level is invalid at position 0"),
            ("<a/> &amp;", "Data at the root level is invalid at position 4"),
            ("<p:a/>", "'p' is an undeclared prefix at position 0"),
        ];
        for (bad, message) in cases {
            assert_eq!(parse(bad).unwrap_err().to_string(), message, "{bad:?}");
        }
        assert!(matches!(parse("<a>x &nope; y</a>"), Err(XmlSyntaxError::Text { position: 3, .. })));
    }
}
