//! Editing XML as text, so that every byte a transform does not touch stays as it was:
//! start tags taken apart and put back together ([`StartTag`]), line and column numbers
//! for messages ([`line_col`]), and the layout rules the reference's XDT writer applies to
//! what a transform adds or removes ([`Layout`]).
//!
//! The reference loads the document with whitespace preserved, edits the tree and lets an
//! `XmlFormatter` fix up the whitespace around what changed when it saves. The rules it
//! follows, which [`Layout`] applies at the moment of each edit:
//!
//! * a removed element takes one of the two whitespace runs around it with it (the one
//!   before, unless only that one holds a line break), so its line goes away;
//! * an added element (or comment) that does not follow whitespace or text is put on its
//!   own line, indented like the siblings before it (the last indentation seen at that
//!   level, else the first one found among the siblings, else the parent's plus one
//!   step), and what follows it gets the same treatment;
//! * one indentation step is the difference between the indentation of a level and the
//!   one above it, found by walking up the levels.
//!
//! An added element's start tag is written as the reference's writer writes one: its
//! attributes separated by one space, in double quotes, the line wrapped before an
//! attribute that would pass column 160, and `/>` with no space before it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;

use crate::structured::xml::dom::{Document, Kind, NodeRef, split_qname};
use crate::xml_escape::escape_attribute;

/// The column past which the reference's writer starts a new line before an attribute.
pub(crate) const MAX_LINE_LENGTH: usize = 160;

/// An attribute as written in a start tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagAttr {
    /// The whitespace before it.
    pub(crate) leading: String,
    /// Its qualified name.
    pub(crate) name: String,
    /// From the name to the opening quote included (`name="`, `name = '`).
    pub(crate) head: String,
    /// The value as written (escaped), without the quotes.
    pub(crate) value: String,
    /// The quote character.
    pub(crate) quote: char,
}

impl TagAttr {
    /// A new attribute `name="value"` (`value` unescaped) after `leading`.
    pub(crate) fn new(leading: &str, name: &str, value: &str, quote: char) -> TagAttr {
        TagAttr {
            leading: leading.to_string(),
            name: name.to_string(),
            head: format!("{name}={quote}"),
            value: escape_attribute(value, quote as u8),
            quote,
        }
    }

    /// Whether this is a namespace declaration (`xmlns`, `xmlns:p`).
    pub(crate) fn is_namespace_declaration(&self) -> bool {
        self.name == "xmlns" || self.name.starts_with("xmlns:")
    }

    /// Sets the value (`value` unescaped), keeping the quotes.
    pub(crate) fn set_value(&mut self, value: &str) {
        self.value = escape_attribute(value, self.quote as u8);
    }
}

/// A start tag taken apart: put back together with [`StartTag::render`], it is the same
/// text, byte for byte, until something is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartTag {
    /// The element's qualified name.
    pub(crate) name: String,
    /// The attributes, namespace declarations included, in order.
    pub(crate) attrs: Vec<TagAttr>,
    /// The whitespace before `/>` or `>`.
    pub(crate) trailing: String,
    /// Whether the tag ends with `/>`.
    pub(crate) self_closing: bool,
}

impl StartTag {
    /// Takes apart `tag`, the text of a well-formed start tag (`<a ...>` or `<a .../>`).
    pub(crate) fn parse(tag: &str) -> StartTag {
        let b = tag.as_bytes();
        let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
        let mut i = 1;
        while i < b.len() && !is_space(b[i]) && b[i] != b'/' && b[i] != b'>' {
            i += 1;
        }
        let name = tag[1..i].to_string();
        let mut attrs = Vec::new();
        loop {
            let ws = i;
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            if i >= b.len() || b[i] == b'/' || b[i] == b'>' {
                let self_closing = b.get(i) == Some(&b'/');
                return StartTag { name, attrs, trailing: tag[ws..i].to_string(), self_closing };
            }
            let start = i;
            while i < b.len() && b[i] != b'=' && !is_space(b[i]) {
                i += 1;
            }
            let attr_name = tag[start..i].to_string();
            while i < b.len() && b[i] != b'"' && b[i] != b'\'' {
                i += 1;
            }
            let quote = b.get(i).copied().unwrap_or(b'"');
            let head = tag[start..(i + 1).min(b.len())].to_string();
            let value_start = (i + 1).min(b.len());
            let value_end = memchr::memchr(quote, &b[value_start..]).map_or(b.len(), |n| value_start + n);
            attrs.push(TagAttr {
                leading: tag[ws..start].to_string(),
                name: attr_name,
                head,
                value: tag[value_start..value_end].to_string(),
                quote: quote as char,
            });
            i = (value_end + 1).min(b.len());
        }
    }

    /// The tag as text.
    pub(crate) fn render(&self) -> String {
        let mut out = self.render_open();
        out.push_str(&self.trailing);
        out.push_str(if self.self_closing { "/>" } else { ">" });
        out
    }

    /// The tag as text up to the end of its last attribute.
    pub(crate) fn render_open(&self) -> String {
        let mut out = format!("<{}", self.name);
        for a in &self.attrs {
            out.push_str(&a.leading);
            out.push_str(&a.head);
            out.push_str(&a.value);
            out.push(a.quote);
        }
        out
    }

    /// Whether the attributes are written one per line (the reference's test: a line
    /// break before every attribute but the first, counting the tag's end as one more
    /// place; so a tag with a single attribute counts as one per line).
    pub(crate) fn one_attribute_per_line(&self) -> bool {
        // The reference counts the leading spaces it recorded, the tag's end included:
        // with no attribute there is only that one and the answer is no.
        !self.attrs.is_empty() && self.attrs.iter().skip(1).all(|a| a.leading.contains('\n'))
    }

    /// The first whitespace in the tag holding a line break (before an attribute or before
    /// the tag's end): the line break and indentation new attributes of this tag, and
    /// those of its new siblings, are wrapped with.
    pub(crate) fn attribute_line_break(&self) -> Option<&str> {
        self.attrs.iter().map(|a| a.leading.as_str()).chain([self.trailing.as_str()]).find(|s| s.contains('\n'))
    }

    /// The quote character new attributes get: that of the last attribute, else `"`.
    pub(crate) fn quote(&self) -> char {
        self.attrs.last().map_or('"', |a| a.quote)
    }
}

/// The 1-based line and column of the byte at `pos` in `text`, as .NET's reader counts
/// them: `\r\n`, `\n` and a lone `\r` each end a line; columns count characters.
pub(crate) fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos.min(text.len())];
    let mut line = 1;
    let mut line_start = 0;
    let bytes = before.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'\n' || (c == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            line += 1;
            line_start = i + 1;
        }
    }
    (line, before[line_start..].chars().count() + 1)
}

/// The 1-based column the next character written after `text` lands in.
pub(crate) fn column_after(text: &str) -> usize {
    let line = text.rfind(['\n', '\r']).map_or(text, |i| &text[i + 1..]);
    line.chars().count() + 1
}

/// Whether `s` holds a line break.
fn has_newline(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

/// The indentation a whitespace run sets: from its last line break to its end; `None`
/// when it holds no line break (whitespace within a line is not an indentation).
fn indent_of(ws: &str) -> Option<&str> {
    let i = ws.rfind(['\n', '\r'])?;
    let i = if ws.as_bytes()[i] == b'\n' && i > 0 && ws.as_bytes()[i - 1] == b'\r' { i - 1 } else { i };
    Some(&ws[i..])
}

/// The reference's last resort for one indentation step: what follows the first character
/// after the line breaks of `indent` (its own quirk, kept), or a tab.
fn convert_indent_to_tab(indent: &str) -> String {
    let chars: Vec<char> = indent.chars().collect();
    for i in 0..chars.len().saturating_sub(1) {
        if chars[i] != '\r' && chars[i] != '\n' {
            return chars[i + 1..].iter().collect();
        }
    }
    "\t".to_string()
}

/// What `inner` adds to `outer`, when it extends it. A level with no line break (the root,
/// when nothing precedes it) counts as starting on a new line: the reference's formatter
/// would take the whole inner indentation, line break included, for one step there.
fn extension<'i>(outer: &str, inner: &'i str) -> Option<&'i str> {
    if has_newline(outer) {
        return inner.strip_prefix(outer);
    }
    let line_break = &inner[..inner.len() - inner.trim_start_matches(['\r', '\n']).len()];
    inner.strip_prefix(line_break)?.strip_prefix(outer)
}

/// One indentation step from a chain of indentations, outermost first: the difference
/// between the innermost one and the nearest one above that it extends (the reference's
/// `ComputeOneTab`, which [`Layout::step`] computes level by level).
#[cfg(test)]
fn one_tab(chain: &[String]) -> String {
    for i in (1..chain.len()).rev() {
        if let Some(step) = extension(&chain[i - 1], &chain[i]) {
            return step.to_string();
        }
    }
    chain.first().map_or_else(|| "\t".to_string(), |first| convert_indent_to_tab(first))
}

/// What a node among its siblings is, for the layout rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemKind {
    /// Whitespace only.
    Whitespace,
    /// Text with something other than whitespace.
    Text,
    /// An element (its index in the document).
    Element(usize),
    /// A comment.
    Comment,
    /// CDATA, a processing instruction, the declaration, a doctype.
    Other,
}

/// A node, or the whitespace between two top-level nodes (which the document does not
/// keep as nodes).
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) kind: ItemKind,
    pub(crate) span: Range<usize>,
}

impl ItemKind {
    /// Whether a node added right after this one is put on its own line (the reference's
    /// `NeedsIndent`): unless it follows whitespace or text. `None` is the start of the
    /// parent's content, which counts as an element.
    pub(crate) fn needs_indent_after(prev: Option<ItemKind>) -> bool {
        !matches!(prev, Some(ItemKind::Whitespace | ItemKind::Text))
    }

    /// Whether a node right after an added one gets its own line too (elements and
    /// comments do; text, CDATA and instructions are left alone).
    pub(crate) fn indented_when_after_new(self) -> bool {
        matches!(self, ItemKind::Element(_) | ItemKind::Comment)
    }
}

/// The layout of one version of a target document: its text and tree, with the
/// indentations found so far (so that a deeply nested document costs linear time).
pub(crate) struct Layout<'a> {
    pub(crate) doc: &'a Document,
    pub(crate) text: &'a str,
    own: RefCell<HashMap<usize, String>>,
    steps: RefCell<HashMap<usize, String>>,
}

/// How close to the end of the stack a recursion on the document's depth grows it.
const RED_ZONE: usize = 64 * 1024;
/// How much stack it grows by.
const GROW: usize = 1024 * 1024;

impl<'a> Layout<'a> {
    /// The layout of `doc`, parsed from `text`.
    pub(crate) fn new(doc: &'a Document, text: &'a str) -> Layout<'a> {
        Layout { doc, text, own: RefCell::default(), steps: RefCell::default() }
    }
}

impl Layout<'_> {
    /// The parent element of `node` (`None` at the top level).
    pub(crate) fn parent(&self, node: usize) -> Option<usize> {
        self.doc.nodes[node].parent
    }

    /// The children of `parent` (`None`: the top level, with the whitespace between
    /// top-level nodes as items of its own).
    pub(crate) fn items(&self, parent: Option<usize>) -> Vec<Item> {
        let classify = |i: usize| match &self.doc.nodes[i].kind {
            Kind::Text { span, .. } => {
                if self.text[span.clone()].bytes().all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n')) {
                    ItemKind::Whitespace
                } else {
                    ItemKind::Text
                }
            }
            Kind::Element { .. } => ItemKind::Element(i),
            Kind::Comment { .. } => ItemKind::Comment,
            _ => ItemKind::Other,
        };
        match parent {
            Some(p) => self.doc.nodes[p]
                .children
                .iter()
                .map(|&i| Item { kind: classify(i), span: self.doc.nodes[i].span.clone() })
                .collect(),
            None => {
                let mut out = Vec::new();
                let mut at = 0;
                for &i in &self.doc.top {
                    let span = self.doc.nodes[i].span.clone();
                    if span.start > at {
                        out.push(Item { kind: ItemKind::Whitespace, span: at..span.start });
                    }
                    at = span.end;
                    out.push(Item { kind: classify(i), span });
                }
                if self.text.len() > at {
                    out.push(Item { kind: ItemKind::Whitespace, span: at..self.text.len() });
                }
                out
            }
        }
    }

    /// The indentation in force at byte `pos` among the children of `parent` (the
    /// reference's `CurrentIndent`): the last whitespace before `pos` that holds a line
    /// break; else the first such whitespace among the children that is followed by a
    /// sibling; else the parent's own indentation plus one step.
    pub(crate) fn level_indent(&self, parent: Option<usize>, pos: usize) -> String {
        let items = self.items(parent);
        let ws = |item: &Item| {
            (item.kind == ItemKind::Whitespace).then(|| indent_of(&self.text[item.span.clone()])).flatten()
        };
        if let Some(indent) = items.iter().rev().filter(|i| i.span.end <= pos).find_map(ws) {
            return indent.to_string();
        }
        if let Some(indent) = items.iter().take(items.len().saturating_sub(1)).find_map(ws) {
            return indent.to_string();
        }
        match parent {
            None => String::new(),
            Some(p) => self.own_indent(p) + &self.step(p),
        }
    }

    /// The indentation of the level `node` sits at.
    pub(crate) fn own_indent(&self, node: usize) -> String {
        if let Some(found) = self.own.borrow().get(&node) {
            return found.clone();
        }
        let indent = stacker::maybe_grow(RED_ZONE, GROW, || {
            self.level_indent(self.parent(node), self.doc.nodes[node].span.start)
        });
        self.own.borrow_mut().insert(node, indent.clone());
        indent
    }

    /// One indentation step below `node`: [`one_tab`] of the indentations of `node` and its
    /// ancestors.
    pub(crate) fn step(&self, node: usize) -> String {
        if let Some(found) = self.steps.borrow().get(&node) {
            return found.clone();
        }
        let own = self.own_indent(node);
        let step = match self.parent(node) {
            None => convert_indent_to_tab(&own),
            Some(p) => match extension(&self.own_indent(p), &own) {
                Some(step) => step.to_string(),
                None => stacker::maybe_grow(RED_ZONE, GROW, || self.step(p)),
            },
        };
        self.steps.borrow_mut().insert(node, step.clone());
        step
    }

    /// One indentation step below a new child of `parent` that is indented `own`.
    pub(crate) fn step_below(&self, parent: Option<usize>, own: &str) -> String {
        match parent {
            None => convert_indent_to_tab(own),
            Some(p) => extension(&self.own_indent(p), own).map_or_else(|| self.step(p), str::to_string),
        }
    }

    /// The item `node` is among its siblings, with its neighbours.
    pub(crate) fn neighbours(&self, node: usize) -> (Option<Item>, Option<Item>) {
        let items = self.items(self.parent(node));
        let start = self.doc.nodes[node].span.start;
        let Some(i) = items.iter().position(|it| it.span.start == start) else { return (None, None) };
        (i.checked_sub(1).map(|p| items[p].clone()), items.get(i + 1).cloned())
    }

    /// The span removing `node` takes away: the element and one of the whitespace runs
    /// around it when there is one on each side (the one before, unless only it holds a
    /// line break), as the reference's formatter merges them.
    pub(crate) fn removal_span(&self, node: usize) -> Range<usize> {
        let span = self.doc.nodes[node].span.clone();
        match self.neighbours(node) {
            (Some(prev), Some(next)) if prev.kind == ItemKind::Whitespace && next.kind == ItemKind::Whitespace => {
                let (p, n) = (&self.text[prev.span.clone()], &self.text[next.span.clone()]);
                if !has_newline(n) && has_newline(p) { span.start..next.span.end } else { prev.span.start..span.end }
            }
            _ => span,
        }
    }

    /// The line break and indentation an added or changed element's long start tag is
    /// wrapped with (the reference's attribute indent): that of the sibling element right
    /// before `before` when its start tag spans lines, else of the first such sibling from
    /// `after` on, else `own` (the element's level) plus one step below the parent.
    pub(crate) fn attribute_line_break(
        &self,
        parent: Option<usize>,
        (before, after): (usize, usize),
        own: &str,
    ) -> String {
        let items = self.items(parent);
        let line_break_of = |item: &Item| match item.kind {
            ItemKind::Element(i) => match &self.doc.nodes[i].kind {
                Kind::Element { tag, .. } => {
                    StartTag::parse(&self.text[tag.clone()]).attribute_line_break().map(str::to_string)
                }
                _ => None,
            },
            _ => None,
        };
        let previous = items.iter().rfind(|i| i.span.end <= before && matches!(i.kind, ItemKind::Element(_)));
        if let Some(found) = previous.and_then(line_break_of) {
            return found;
        }
        if let Some(found) = items.iter().filter(|i| i.span.start >= after).find_map(line_break_of) {
            return found;
        }
        format!("{own}{}", parent.map_or_else(|| "\t".to_string(), |p| self.step(p)))
    }

    /// The text of the line up to `pos`.
    pub(crate) fn line_before(&self, pos: usize) -> &str {
        let start = self.text[..pos].rfind(['\n', '\r']).map_or(0, |i| i + 1);
        &self.text[start..pos]
    }

    /// Appends a new last child to `parent`: `render(own, around, line_before)` writes it,
    /// given the indentation of its level, the positions of the siblings around it and the
    /// text before it on its line. A `<p/>` is opened up; the new child gets a line of its
    /// own and the end tag stays on its line.
    pub(crate) fn append_child(&self, parent: usize, render: &RenderChild<'_>) -> (Range<usize>, String) {
        let layout = self;
        let node = &self.doc.nodes[parent];
        let Kind::Element { tag, content, qname, .. } = &node.kind else { return (0..0, String::new()) };
        match content {
            None => {
                // `<p/>`: opened up to hold the new element on a line of its own.
                let mut open = StartTag::parse(&self.text[tag.clone()]);
                open.self_closing = false;
                open.trailing.clear();
                let own = layout.own_indent(parent);
                let indent = layout.level_indent(Some(parent), tag.end);
                let open = open.render();
                let line = format!("{}{open}{indent}", self.line_before(tag.start));
                let new = render(&indent, (tag.end, tag.end), &line);
                (tag.clone(), format!("{open}{indent}{new}{own}</{qname}>"))
            }
            Some(content) => {
                let items = layout.items(Some(parent));
                let trailing = items.last().filter(|i| i.kind == ItemKind::Whitespace).cloned();
                let pos = trailing.as_ref().map_or(content.end, |t| t.span.start);
                let prev = items.iter().rev().find(|i| i.span.end <= pos).map(|i| i.kind);
                let indent = layout.level_indent(Some(parent), pos);
                let lead = if ItemKind::needs_indent_after(prev) { indent.clone() } else { String::new() };
                let tail = if trailing.is_none() { layout.own_indent(parent) } else { String::new() };
                let line = format!("{}{lead}", self.line_before(pos));
                let new = render(&indent, (pos, pos), &line);
                (pos..pos, format!("{lead}{new}{tail}"))
            }
        }
    }

    /// The start tag of `target` with `attrs` (qualified name, namespace, unescaped value)
    /// set: a value changed in place, a new attribute added after the others on the same
    /// line, or on a line of its own when the tag has one attribute per line (and before
    /// one that would pass column 160). `xdt` takes a tag with a single attribute for one
    /// with one attribute per line, as the reference's XDT writer does.
    pub(crate) fn set_attributes(
        &self,
        target: usize,
        attrs: &[(String, Option<String>, String)],
        xdt: bool,
    ) -> (Range<usize>, String) {
        let layout = self;
        let node = &self.doc.nodes[target];
        let Kind::Element { tag, attrs: existing, .. } = &node.kind else { return (0..0, String::new()) };
        let mut start_tag = StartTag::parse(&self.text[tag.clone()]);
        let per_line = start_tag.one_attribute_per_line() && (xdt || start_tag.attrs.len() > 1);
        let line_break = start_tag.attribute_line_break().map(str::to_string).unwrap_or_else(|| {
            layout.attribute_line_break(
                layout.parent(target),
                (node.span.start, node.span.end),
                &layout.own_indent(target),
            )
        });
        let scope = layout.scope(Some(target));
        let line_before = self.line_before(tag.start);
        for (qname, ns, value) in attrs {
            let (prefix, local) = split_qname(qname);
            let found = start_tag.attrs.iter_mut().find(|a| {
                existing.iter().any(|e| {
                    let name = e.prefix.as_ref().map_or_else(|| e.local.clone(), |p| format!("{p}:{}", e.local));
                    name == a.name && e.local == local && &e.ns == ns
                })
            });
            if let Some(found) = found {
                found.set_value(value);
                continue;
            }
            let quote = start_tag.quote();
            let mut new = vec![TagAttr::new("", qname, value, quote)];
            if let (Some(p), Some(uri)) = (&prefix, ns)
                && scope.get(p) != uri
            {
                new.push(TagAttr::new(" ", &format!("xmlns:{p}"), uri, quote));
            }
            let leading = if start_tag.attrs.is_empty() {
                " ".to_string()
            } else if per_line {
                line_break.clone()
            } else {
                let written = new[0].head.len() + new[0].value.chars().count() + 1;
                let column = column_after(&format!("{line_before}{}", start_tag.render_open()));
                if column + written + 1 > MAX_LINE_LENGTH { line_break.clone() } else { " ".to_string() }
            };
            new[0].leading = leading;
            start_tag.attrs.extend(new);
        }
        (tag.clone(), start_tag.render())
    }

    /// Removes attributes from a start tag, moving the whitespace as the reference does:
    /// the space before the first attribute stays; a line break before a removed attribute
    /// moves to the next one unless that one is on a new line already.
    pub(crate) fn remove_attributes(&self, target: usize, names: &[String]) -> (Range<usize>, String) {
        let Kind::Element { tag, .. } = &self.doc.nodes[target].kind else { return (0..0, String::new()) };
        let mut start_tag = StartTag::parse(&self.text[tag.clone()]);
        let mut first = true;
        let mut keep: Option<String> = None;
        let mut kept = Vec::new();
        for mut attr in std::mem::take(&mut start_tag.attrs) {
            let exists = attr.is_namespace_declaration() || !names.contains(&attr.name);
            if !exists {
                if first {
                    keep.get_or_insert(attr.leading.clone());
                } else if attr.leading.contains('\n') {
                    keep = Some(attr.leading.clone());
                }
            } else {
                if let Some(k) = keep.take()
                    && (first || !attr.leading.contains('\n'))
                {
                    attr.leading = k;
                }
                kept.push(attr);
            }
            first = first && !exists;
        }
        if kept.is_empty() {
            start_tag.trailing.clear();
        }
        start_tag.attrs = kept;
        (tag.clone(), start_tag.render())
    }

    /// The namespace declarations in force at `element` (`""` for the default namespace),
    /// innermost first.
    pub(crate) fn scope(&self, element: Option<usize>) -> NsScope {
        let mut scope = NsScope::default();
        let mut at = element;
        let mut chain = Vec::new();
        while let Some(n) = at {
            chain.push(n);
            at = self.parent(n);
        }
        for n in chain.into_iter().rev() {
            if let Kind::Element { tag, .. } = &self.doc.nodes[n].kind {
                scope.declare_all(&StartTag::parse(&self.text[tag.clone()]));
            }
        }
        scope
    }
}

/// Writes a new child element given the indentation of its level, the positions of the
/// siblings around it and the text before it on its line.
pub(crate) type RenderChild<'a> = dyn Fn(&str, (usize, usize), &str) -> String + 'a;

/// Namespace declarations in force: prefix (`""` for the default namespace) to URI.
#[derive(Debug, Clone, Default)]
pub(crate) struct NsScope {
    pub(crate) bound: HashMap<String, String>,
}

impl NsScope {
    /// Adds the declarations a start tag makes.
    pub(crate) fn declare_all(&mut self, tag: &StartTag) {
        for a in tag.attrs.iter().filter(|a| a.is_namespace_declaration()) {
            let prefix = a.name.strip_prefix("xmlns").unwrap_or_default().trim_start_matches(':');
            let value =
                quick_xml::escape::unescape(&a.value).map(|v| v.into_owned()).unwrap_or_else(|_| a.value.clone());
            self.bound.insert(prefix.to_string(), value);
        }
    }

    /// The URI `prefix` stands for (`""`: the default namespace; none bound is no namespace).
    pub(crate) fn get(&self, prefix: &str) -> &str {
        match prefix {
            "xml" => crate::structured::xml::dom::XML_NAMESPACE,
            p => self.bound.get(p).map_or("", String::as_str),
        }
    }
}

/// What an element of the transform document is, to write it into the target.
pub(crate) struct NewElement<'a> {
    /// The transform document and its text.
    pub(crate) doc: &'a Document,
    pub(crate) text: &'a str,
    /// Whether an attribute of the transform is dropped when written (the transform's own
    /// attributes): given the element and the attribute's index in its start tag.
    pub(crate) drop_attribute: &'a dyn Fn(usize, &TagAttr) -> bool,
    /// The namespace of an element or attribute name of the transform document, given the
    /// element and the prefix.
    pub(crate) resolve: &'a dyn Fn(usize, Option<&str>) -> Option<String>,
    /// The line ending of the target.
    pub(crate) eol: &'a str,
}

impl NewElement<'_> {
    /// Writes `element` (of the transform document) as it lands in the target: at the
    /// end of `out` (the target's text up to there, for columns), at a level indented
    /// `own`, one indentation step being `step` there, in the namespace scope `scope`, with
    /// a long start tag wrapped with `line_break`.
    pub(crate) fn write(
        &self,
        out: &mut String,
        element: usize,
        own: &str,
        step: &str,
        scope: &NsScope,
        line_break: &str,
    ) {
        let node = &self.doc.nodes[element];
        let Kind::Element { qname, ns, tag, content, .. } = &node.kind else { return };
        let source_tag = StartTag::parse(&self.text[tag.clone()]);
        let mut scope = scope.clone();
        let (prefix, _) = crate::structured::xml::dom::split_qname(qname);
        let mut declarations: Vec<(String, String)> = Vec::new();
        let mut declare = |scope: &mut NsScope, prefix: &str, uri: &str| {
            if scope.get(prefix) != uri && prefix != "xml" {
                scope.bound.insert(prefix.to_string(), uri.to_string());
                let name = if prefix.is_empty() { "xmlns".to_string() } else { format!("xmlns:{prefix}") };
                declarations.push((name, uri.to_string()));
            }
        };
        declare(&mut scope, prefix.as_deref().unwrap_or_default(), ns.as_deref().unwrap_or_default());
        let mut attrs: Vec<(String, String)> = Vec::new();
        for a in &source_tag.attrs {
            if a.is_namespace_declaration() || (self.drop_attribute)(element, a) {
                continue;
            }
            let value = quick_xml::escape::unescape(&a.value).map_or_else(|_| a.value.clone(), |v| v.into_owned());
            if let (Some(p), _) = crate::structured::xml::dom::split_qname(&a.name)
                && let Some(uri) = (self.resolve)(element, Some(&p))
            {
                declare(&mut scope, &p, &uri);
            }
            attrs.push((a.name.clone(), value));
        }
        out.push('<');
        out.push_str(qname);
        for (i, (name, value)) in attrs.iter().enumerate() {
            let written = format!("{name}=\"{}\"", escape_attribute(value, b'"'));
            // The first attribute always follows one space; later ones move to a new line
            // when they would end past the column limit.
            if i > 0 && column_after(out) + written.chars().count() + 1 > MAX_LINE_LENGTH {
                out.push_str(line_break);
            } else {
                out.push(' ');
            }
            out.push_str(&written);
        }
        for (name, uri) in &declarations {
            out.push_str(&format!(" {name}=\"{}\"", escape_attribute(uri, b'"')));
        }
        if content.is_none() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        let children = &node.children;
        let is_ws = |i: usize| matches!(&self.doc.nodes[i].kind, Kind::Text { span, .. } if self.text[span.clone()].bytes().all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n')));
        let lookahead = children
            .iter()
            .take(children.len().saturating_sub(1))
            .filter(|&&c| is_ws(c))
            .find_map(|&c| indent_of(&self.text[self.doc.nodes[c].span.clone()]).map(str::to_string));
        let mut current: Option<String> = None;
        let child_indent = |current: &Option<String>| {
            current.clone().or_else(|| lookahead.clone()).unwrap_or_else(|| format!("{own}{step}"))
        };
        let mut prev: Option<ItemKind> = None;
        for &c in children {
            let child = &self.doc.nodes[c];
            let raw = &self.text[child.span.clone()];
            let kind = match &child.kind {
                Kind::Text { .. } if is_ws(c) => ItemKind::Whitespace,
                Kind::Text { .. } => ItemKind::Text,
                Kind::Element { .. } => ItemKind::Element(c),
                Kind::Comment { .. } => ItemKind::Comment,
                _ => ItemKind::Other,
            };
            match kind {
                ItemKind::Whitespace => {
                    if let Some(indent) = indent_of(raw) {
                        current = Some(with_eol(indent, self.eol));
                    }
                    out.push_str(&with_eol(raw, self.eol));
                }
                ItemKind::Element(_) | ItemKind::Comment => {
                    let indent = child_indent(&current);
                    if ItemKind::needs_indent_after(prev) {
                        out.push_str(&indent);
                    }
                    if let ItemKind::Element(e) = kind {
                        // Its long start tag wraps one step deeper than its own level.
                        let inner_break = format!("{indent}{step}");
                        let inner_step = extension(own, &indent).unwrap_or(step).to_string();
                        stacker::maybe_grow(RED_ZONE, GROW, || {
                            self.write(out, e, &indent, &inner_step, &scope, &inner_break);
                        });
                    } else {
                        out.push_str(&with_eol(raw, self.eol));
                    }
                }
                ItemKind::Text | ItemKind::Other => out.push_str(&with_eol(raw, self.eol)),
            }
            prev = Some(kind);
        }
        // Before the end tag: a line of its own unless the last child is whitespace or text
        // (an element with no children at all counts as following an element).
        if ItemKind::needs_indent_after(prev) {
            out.push_str(own);
        }
        out.push_str(&format!("</{qname}>"));
    }
}

/// `text` with its line breaks written as `eol`.
pub(crate) fn with_eol(text: &str, eol: &str) -> String {
    if !has_newline(text) {
        return text.to_string();
    }
    text.replace("\r\n", "\n").replace('\r', "\n").replace('\n', eol)
}

/// The element a selected node is, when it is one.
pub(crate) fn as_element(doc: &Document, node: NodeRef) -> Option<usize> {
    match node {
        NodeRef::Node(i) if matches!(doc.nodes[i].kind, Kind::Element { .. }) => Some(i),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structured::xml::dom::parse;

    #[test]
    fn start_tags_round_trip_and_edit() {
        for tag in [
            "<a>",
            "<a/>",
            "<a  x='1'   y = \"2\"\n   z=\"&amp;\" />",
            "<p:a xmlns:p=\"urn:p\" p:b='c'>",
            "<a\tx=\"1\"\t/>",
        ] {
            assert_eq!(StartTag::parse(tag).render(), tag);
        }
        let mut t = StartTag::parse("<add  key='a'   value=\"b\" />");
        assert_eq!(t.name, "add");
        assert_eq!((t.attrs[0].leading.as_str(), t.attrs[0].quote), ("  ", '\''));
        t.attrs[0].set_value("it's <x>");
        assert_eq!(t.render(), "<add  key='it&apos;s &lt;x&gt;'   value=\"b\" />");
    }

    #[test]
    fn attributes_one_per_line() {
        let cases = [
            ("<a/>", false),
            ("<a x='1'/>", true),
            ("<a x='1' y='2'/>", false),
            ("<a x='1'\n   y='2'/>", true),
            ("<a\n  x='1' y='2'\n  z='3'/>", false),
        ];
        for (tag, expected) in cases {
            assert_eq!(StartTag::parse(tag).one_attribute_per_line(), expected, "{tag}");
        }
    }

    #[test]
    fn lines_and_columns_count_characters_and_every_line_break() {
        let text = "ab\r\ncé\rd\ne";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (2, 1));
        assert_eq!(line_col(text, text.find('d').unwrap()), (3, 1));
        assert_eq!(line_col(text, text.find('\r').unwrap() + 2 + 3), (2, 3));
        assert_eq!(line_col(text, text.len()), (4, 2));
    }

    #[test]
    fn indentation_steps() {
        assert_eq!(one_tab(&["\n".into(), "\n  ".into(), "\n    ".into()]), "  ");
        assert_eq!(one_tab(&["\n\t".into(), "\n\t\t".into()]), "\t");
        assert_eq!(one_tab(&["\n".into()]), "\t");
        assert_eq!(one_tab(&["".into(), "\r\n  ".into()]), "  ", "a root on the first line");
        assert_eq!(one_tab(&["\n    ".into()]), "   ", "the reference's own fallback");
        assert_eq!(indent_of("  \r\n    "), Some("\r\n    "));
        assert_eq!(indent_of("   "), None);
    }

    #[test]
    fn layout_of_a_document() {
        let text = "<?xml version=\"1.0\"?>\n<c>\n  <a>\n    <x/>\n  </a>\n  <b/>\n  <e></e>\n</c>\n";
        let doc = parse(text).unwrap();
        let layout = Layout::new(&doc, text);
        let find = |name: &str| {
            (0..doc.nodes.len())
                .find(|&i| matches!(&doc.nodes[i].kind, Kind::Element { qname, .. } if qname == name))
                .unwrap()
        };
        assert_eq!(layout.own_indent(find("c")), "\n");
        assert_eq!(layout.own_indent(find("a")), "\n  ");
        assert_eq!(layout.own_indent(find("x")), "\n    ");
        for name in ["c", "a", "x", "e"] {
            let mut chain = Vec::new();
            let mut at = Some(find(name));
            while let Some(n) = at {
                chain.insert(0, layout.own_indent(n));
                at = layout.parent(n);
            }
            assert_eq!(layout.step(find(name)), one_tab(&chain), "{name}");
        }
        // No whitespace inside <e>: the level above plus one step.
        assert_eq!(layout.level_indent(Some(find("e")), doc.nodes[find("e")].span.end), "\n    ");
        // Removing <b/> takes the line break and indentation before it.
        let b = doc.nodes[find("b")].span.clone();
        assert_eq!(layout.removal_span(find("b")), b.start - 3..b.end);
    }
}
