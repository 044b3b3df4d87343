//! YAML: yaml-rust2's event stream gives the structure and where each node starts; the
//! end of each node is recovered from the text, so a replacement rewrites only that node.
//!
//! Paths join mapping keys and sequence indexes with `:`, per document of the stream.
//! Supported forms: block and flow mappings and sequences, plain, single- and
//! double-quoted scalars (also over several lines), literal (`|`) and folded (`>`) block
//! scalars, empty values (`key:`), anchors, tags and aliases, comments anywhere, several
//! documents.
//!
//! A scalar keeps its style when the new value can be written in it: plain stays plain
//! when the value is a safe plain scalar, quotes stay quotes, a block scalar stays a block
//! scalar (re-indented as before); otherwise the value is double-quoted. A mapping or
//! sequence is replaced by the value read as JSON or YAML, written on the line of its key:
//! a mapping or sequence in flow style, a scalar as it reads (`server: local`), anything
//! else as a double-quoted string ([`render_structure`]).

use std::ops::Range;

use yaml_rust2::Event;
use yaml_rust2::parser::Parser;
use yaml_rust2::scanner::TScalarStyle;

use super::{Attempt, Candidates, Edits, encoding};

/// Why a text is not a YAML stream this module can edit.
#[derive(Debug, thiserror::Error)]
pub enum YamlSyntaxError {
    /// The scanner or parser rejected the text. Written as the reference's YamlDotNet
    /// writes a position: 1-based line and column, 0-based character index. The scanner's
    /// own error is not kept as the source: its position is not always where the fault is
    /// (it reports a simple key without `:` at the end of the text), and its text would
    /// repeat the wrong one.
    #[error("(Line: {line}, Col: {column}, Idx: {index}) - (Line: {line}, Col: {column}, Idx: {index}): {info}")]
    Scan {
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
        /// The character index, from 0.
        index: usize,
        /// What the scanner said.
        info: String,
    },
    /// A collection ended that was never started.
    #[error("unbalanced collection end")]
    UnbalancedCollectionEnd,
    /// The parser reported a plain scalar whose text could not be found where it said.
    #[error("could not locate the plain scalar '{value}'")]
    PlainScalarNotFound {
        /// The scalar's value.
        value: String,
    },
    /// A quoted scalar runs to the end of the text.
    #[error("unterminated {quote}-quoted scalar")]
    UnterminatedScalar {
        /// `single` or `double`.
        quote: &'static str,
    },
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A scalar in the given style.
    Scalar(TScalarStyle),
    /// A scalar with no text (`key:`): replacing it inserts after the indicator.
    Empty,
    /// `*alias`.
    Alias,
    /// A block or flow mapping.
    Mapping {
        /// `{...}` rather than indentation.
        flow: bool,
    },
    /// A block or flow sequence.
    Sequence {
        /// `[...]` rather than `- ` items.
        flow: bool,
    },
}

/// One node of a document: its path (`None` under a complex key), kind and byte span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// Keys and indexes joined by `:`; `None` for nodes that have no path.
    pub path: Option<String>,
    /// What the node is.
    pub kind: Kind,
    /// Where its text is (for [`Kind::Empty`], the insertion point).
    pub span: Range<usize>,
    /// Whether the node sits inside a flow collection.
    pub in_flow: bool,
    /// Whether the original is a plain scalar that reads as a string (not a number, bool
    /// or null): a new value that would read as another type is then quoted, so a string
    /// setting stays a string (`version: 1.10` must not become the float 1.1).
    pub plain_string: bool,
}

enum Frame {
    Mapping { path: Option<String>, key: Option<Option<String>>, node: usize, flow: bool },
    Sequence { path: Option<String>, index: usize, node: usize, flow: bool },
}

/// Char index → byte offset (yaml-rust2 markers count chars).
struct Offsets {
    table: Option<Vec<usize>>,
    len: usize,
}

impl Offsets {
    fn new(text: &str) -> Self {
        let table = (!text.is_ascii())
            .then(|| text.char_indices().map(|(i, _)| i).chain(std::iter::once(text.len())).collect());
        Offsets { table, len: text.len() }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.table {
            Some(t) => t.get(char_index).copied().unwrap_or(self.len),
            None => char_index.min(self.len),
        }
    }
}

/// Parses `text` (every document), returning every node with its span.
///
/// # Errors
/// The parser's message, with line and column.
#[cfg(test)]
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, YamlSyntaxError> {
    parse_with(text, false)
}

/// As [`parse`]; with `fold`, paths are built lower-cased, as variable names are looked up.
///
/// yaml-rust2 keeps only the last `%TAG` directive of a document, so a tag using a named
/// handle that an earlier directive declares (`%TAG !yams! ...` then `!yams!bool`) is
/// refused. Tags do not matter here (a node's kind and span do), so such a tag is masked
/// in a copy of the text (`!yams!bool` becomes the local tag `!yams_bool`, same length)
/// and the copy is parsed again; spans are the same in both texts.
fn parse_with(text: &str, fold: bool) -> Result<Vec<Node>, YamlSyntaxError> {
    // yaml-rust2's scanner takes a NUL for the end of the stream, so whatever follows one
    // would never be checked (and a replacement could then turn a broken file into another
    // broken one). YAML allows no NUL in a stream: refuse it where it is.
    if let Some(at) = text.find('\0') {
        let before = &text[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        return Err(YamlSyntaxError::Scan {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            index: before.chars().count(),
            info: "the NUL character (U+0000) is not allowed in YAML".to_string(),
        });
    }
    let handles = declared_handles(text);
    let mut masked: Option<String> = None;
    loop {
        let source = masked.as_deref().unwrap_or(text);
        let error = match parse_events(source, fold) {
            Ok(nodes) => return Ok(nodes),
            Err(Failure::Syntax(e)) => return Err(e),
            Err(Failure::Scan(e)) => e,
        };
        let mark = *error.marker();
        if error.info() == "the handle wasn't declared" {
            let at = Offsets::new(source).byte(mark.index());
            if let Some(handle) = handles.iter().find(|h| source[at..].starts_with(h.as_str())) {
                let mut copy = source.to_string();
                // The handle's closing `!` (ASCII, so the byte length is unchanged).
                copy.replace_range(at + handle.len() - 1..at + handle.len(), "_");
                masked = Some(copy);
                continue;
            }
        }
        return Err(locate(text, error.info(), mark));
    }
}

/// The named tag handles (`!name!`) declared by `%TAG` directives anywhere in `text`.
fn declared_handles(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("%TAG"))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|h| h.len() > 2 && h.starts_with('!') && h.ends_with('!'))
        .map(str::to_string)
        .collect()
}

/// The syntax error for a scanner error at `mark`, placed where the reference places it:
/// a simple key that never got its `:` is reported where the key starts (the scanner
/// notices only on a later line, often at the end of the text), and the end of a text
/// that ends with a line break is the end of its last line, not a line after it.
fn locate(text: &str, info: &str, mark: yaml_rust2::scanner::Marker) -> YamlSyntaxError {
    let offsets = Offsets::new(text);
    let mut at = offsets.byte(mark.index());
    if info.starts_with("simple key") {
        // The key is on a line before the one the scanner noticed on (its lines count
        // from 1; the end of a text without a final line break is a line after the last):
        // the first non-blank character of the last content line before that one.
        let lines: Vec<(usize, &str)> = text
            .split_inclusive('\n')
            .scan(0, |start, line| {
                let here = *start;
                *start += line.len();
                Some((here, line))
            })
            .collect();
        let before = mark.line().saturating_sub(1).min(lines.len());
        if let Some((start, line)) = lines[..before].iter().rev().find(|(_, line)| {
            let content = line.trim_start_matches([' ', '\t']).trim_end();
            !content.is_empty() && !content.starts_with('#')
        }) {
            at = start + (line.len() - line.trim_start_matches([' ', '\t']).len());
        }
    } else if at >= text.len() && text.ends_with('\n') {
        at = text.trim_end_matches(['\n', '\r']).len();
    }
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    YamlSyntaxError::Scan {
        line: text[..at].matches('\n').count() + 1,
        column: text[line_start..at].chars().count() + 1,
        index: text[..at].chars().count(),
        info: info.to_string(),
    }
}

/// Why [`parse_events`] stopped: the scanner's error (placed by [`locate`]), or our own.
enum Failure {
    Scan(yaml_rust2::ScanError),
    Syntax(YamlSyntaxError),
}

impl From<yaml_rust2::ScanError> for Failure {
    fn from(e: yaml_rust2::ScanError) -> Self {
        Failure::Scan(e)
    }
}

impl From<YamlSyntaxError> for Failure {
    fn from(e: YamlSyntaxError) -> Self {
        Failure::Syntax(e)
    }
}

fn parse_events(text: &str, fold: bool) -> Result<Vec<Node>, Failure> {
    let offsets = Offsets::new(text);
    let mut parser = Parser::new_from_str(text);
    let mut nodes: Vec<Node> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut last_end = 0usize;
    // Anchor id -> whether the anchored node is a string scalar (an alias reads as it).
    let mut anchored_strings: std::collections::HashMap<usize, bool> = std::collections::HashMap::new();
    loop {
        let (event, mark) = parser.next_token()?;
        let at = offsets.byte(mark.index());
        match event {
            Event::StreamEnd => break,
            Event::Nothing | Event::StreamStart | Event::DocumentStart | Event::DocumentEnd => {
                if matches!(event, Event::DocumentStart) {
                    stack.clear();
                }
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let (node, flow) = match stack.pop() {
                    Some(Frame::Mapping { node, flow, .. } | Frame::Sequence { node, flow, .. }) => (node, flow),
                    None => return Err(YamlSyntaxError::UnbalancedCollectionEnd.into()),
                };
                let end = if flow { next_char(text, at) } else { last_end };
                if flow {
                    last_end = end;
                }
                nodes[node].span.end = end.max(nodes[node].span.start);
                finish_child(&mut stack);
                continue;
            }
            _ => {}
        }
        // A node: a key when the parent mapping expects one.
        let in_flow =
            stack.iter().any(|f| matches!(f, Frame::Mapping { flow: true, .. } | Frame::Sequence { flow: true, .. }));
        let (is_key, path) = match stack.last() {
            None => (false, Some(String::new())),
            Some(Frame::Mapping { key: None, .. }) => (true, None),
            Some(Frame::Mapping { path, key: Some(k), .. }) => (false, join(path, k.as_deref())),
            Some(Frame::Sequence { path, index, .. }) => (false, join(path, Some(&index.to_string()))),
        };
        match event {
            Event::Scalar(value, style, anchor, _) => {
                if anchor > 0 {
                    anchored_strings.insert(anchor, style != TScalarStyle::Plain || reads_as_string(&value));
                }
                let item = matches!(stack.last(), Some(Frame::Sequence { flow: false, .. }));
                let (kind, span) = scalar_span(text, at, last_end, &value, style, item)?;
                last_end = span.end;
                set_block_starts(text, &stack, &mut nodes, span.start);
                if is_key {
                    if let Some(Frame::Mapping { key, .. }) = stack.last_mut() {
                        *key = Some(Some(if fold { fold_segment(value) } else { value }));
                    }
                } else {
                    let plain_string = style == TScalarStyle::Plain && reads_as_string(&value);
                    nodes.push(Node { path, kind, span, in_flow, plain_string });
                    finish_child(&mut stack);
                }
            }
            Event::Alias(anchor) => {
                let plain_string = anchored_strings.get(&anchor).copied().unwrap_or(false);
                let end =
                    at + text[at..].find(|c: char| c.is_whitespace() || ",]}".contains(c)).unwrap_or(text.len() - at);
                last_end = end;
                set_block_starts(text, &stack, &mut nodes, at);
                if is_key {
                    if let Some(Frame::Mapping { key, .. }) = stack.last_mut() {
                        *key = Some(None);
                    }
                } else {
                    nodes.push(Node { path, kind: Kind::Alias, span: at..end, in_flow, plain_string });
                    finish_child(&mut stack);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let flow = text[at..].starts_with(['{', '[']);
                if flow {
                    last_end = next_char(text, at);
                    set_block_starts(text, &stack, &mut nodes, at);
                }
                let mapping = matches!(event, Event::MappingStart(..));
                // A collection used as a key has no path, and nor has anything inside it.
                let path = if is_key { None } else { path };
                let kind = if mapping { Kind::Mapping { flow } } else { Kind::Sequence { flow } };
                let start = if flow { at } else { usize::MAX };
                nodes.push(Node { path: path.clone(), kind, span: start..start, in_flow, plain_string: false });
                let node = nodes.len() - 1;
                stack.push(if mapping {
                    Frame::Mapping { path, key: None, node, flow }
                } else {
                    Frame::Sequence { path, index: 0, node, flow }
                });
            }
            _ => {}
        }
    }
    Ok(nodes)
}

/// Gives every enclosing block collection that has no start yet the start of the token at
/// `start` (for a sequence, the `-` before it), innermost first.
fn set_block_starts(text: &str, stack: &[Frame], nodes: &mut [Node], mut start: usize) {
    for frame in stack.iter().rev() {
        let (Frame::Mapping { node, .. } | Frame::Sequence { node, .. }) = frame;
        if nodes[*node].span.start != usize::MAX {
            break;
        }
        if let Frame::Sequence { .. } = frame {
            let before = text[..start].trim_end_matches([' ', '\t']);
            if before.ends_with('-') {
                start = before.len() - 1;
            }
        }
        nodes[*node].span.start = start;
    }
}

/// Called when a value node is complete: the parent mapping now expects a key, the parent
/// sequence moves to the next index.
fn finish_child(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Mapping { key, .. }) => {
            if key.is_some() {
                *key = None;
            } else {
                // The completed node was a (complex) key.
                *key = Some(None);
            }
        }
        Some(Frame::Sequence { index, .. }) => *index += 1,
        None => {}
    }
}

/// A path segment lower-cased as `fold_name` does, without allocating for ASCII.
fn fold_segment(mut segment: String) -> String {
    if segment.is_ascii() {
        segment.make_ascii_lowercase();
        segment
    } else {
        segment.to_lowercase()
    }
}

fn join(prefix: &Option<String>, key: Option<&str>) -> Option<String> {
    let (prefix, key) = (prefix.as_ref()?, key?);
    Some(if prefix.is_empty() { key.to_string() } else { format!("{prefix}:{key}") })
}

fn next_char(text: &str, at: usize) -> usize {
    text[at..].chars().next().map_or(at, |c| at + c.len_utf8())
}

/// The span of a scalar whose event was marked at `at` (for block scalars, at the first
/// content line; `last_end` is where the previous token ended); `item` when it is an item
/// of a block sequence.
fn scalar_span(
    text: &str,
    at: usize,
    last_end: usize,
    value: &str,
    style: TScalarStyle,
    item: bool,
) -> Result<(Kind, Range<usize>), YamlSyntaxError> {
    let bytes = text.as_bytes();
    match style {
        TScalarStyle::SingleQuoted => {
            let mut i = at + 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return Ok((Kind::Scalar(style), at..i + 1));
                }
                i += 1;
            }
            Err(YamlSyntaxError::UnterminatedScalar { quote: "single" })
        }
        TScalarStyle::DoubleQuoted => {
            let mut i = at + 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => return Ok((Kind::Scalar(style), at..i + 1)),
                    _ => i += 1,
                }
            }
            Err(YamlSyntaxError::UnterminatedScalar { quote: "double" })
        }
        TScalarStyle::Literal | TScalarStyle::Folded => {
            let from = last_end.min(at);
            let header = text[from..].find(['|', '>']).map_or(at, |i| from + i);
            if value.is_empty() || at <= header {
                // No content lines: the header (and its indicators) is the whole node.
                let end = header + text[header..].find(|c: char| c.is_whitespace()).unwrap_or(text.len() - header);
                return Ok((Kind::Scalar(style), header..end));
            }
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let indent = at - line_start;
            let mut end = at;
            let mut pos = line_start;
            while pos < text.len() {
                let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
                let line = text[pos..line_end].trim_end_matches('\r');
                let content = line.trim_start_matches(' ');
                if content.is_empty() {
                    // Blank line: part of the scalar only if more content follows.
                } else if line.len() - content.len() >= indent {
                    end = pos + line.len();
                } else {
                    break;
                }
                pos = line_end + 1;
            }
            Ok((Kind::Scalar(style), header..end))
        }
        _ => {
            if value.is_empty() {
                // `key:` with nothing after: insert after the indicator before `at`.
                let from = last_end.min(at);
                let gap = &text[from..at];
                // An empty item goes after its own `-`, the last one before it; the gap may
                // also hold the parent's `key:` (`t:\n- \n`).
                let dash = if item { item_dash(gap) } else { None };
                let mut indicator = dash.or_else(|| gap.find([':', '-', '?'])).map(|i| from + i + 1).unwrap_or(from);
                // `key: !tag` or `key: &anchor`: the value goes after the node's properties.
                loop {
                    let rest = &text[indicator..at.max(indicator)];
                    let trimmed = rest.trim_start_matches([' ', '\t']);
                    if !trimmed.starts_with(['!', '&']) {
                        break;
                    }
                    let len = trimmed.find([' ', '\t', '\r', '\n', ',', '}', ']']).unwrap_or(trimmed.len());
                    indicator += rest.len() - trimmed.len() + len;
                }
                return Ok((Kind::Empty, indicator..indicator));
            }
            let end = plain_end(text, at, value)
                .ok_or_else(|| YamlSyntaxError::PlainScalarNotFound { value: value.to_string() })?;
            Ok((Kind::Scalar(style), at..end))
        }
    }
}

/// Where the `-` of a block sequence item is in `gap` (the text between the previous token
/// and an empty item): the last `-` that starts an item (followed by a space, a tab, a line
/// break or the end), outside comments.
fn item_dash(gap: &str) -> Option<usize> {
    let mut found = None;
    let mut line_start = 0;
    for line in gap.split_inclusive('\n') {
        let code = line.find('#').map_or(line, |i| &line[..i]);
        for (i, _) in code.match_indices('-') {
            if code[i + 1..].starts_with([' ', '\t', '\r', '\n']) || i + 1 == code.len() {
                found = Some(line_start + i);
            }
        }
        line_start += line.len();
    }
    found
}

/// The end of a plain scalar starting at `start` whose folded value is `value`: line
/// breaks and indentation in the text fold to single spaces (or `\n` for blank lines).
fn plain_end(text: &str, start: usize, value: &str) -> Option<usize> {
    if text[start..].starts_with(value) {
        return Some(start + value.len());
    }
    let bytes = text.as_bytes();
    let mut i = start;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if text[i..].starts_with(c) && c != '\n' {
            i += c.len_utf8();
            continue;
        }
        if c == ' ' || c == '\n' {
            let run_start = i;
            while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n') {
                i += 1;
            }
            if !text[run_start..i].contains('\n') {
                return None;
            }
            while chars.peek() == Some(&'\n') {
                chars.next();
            }
            continue;
        }
        return None;
    }
    Some(i)
}

pub(crate) fn replace(text: &str, candidates: &Candidates<'_>, edits: &mut Edits) -> Result<(), Attempt> {
    let nodes = parse_with(text, true).map_err(|e| Attempt::Unparseable(e.into()))?;
    let eol = encoding::line_ending(text);
    for node in &nodes {
        let Some(path) = node.path.as_deref().filter(|p| !p.is_empty()) else { continue };
        let Some(name) = candidates.lookup_folded(path) else { continue };
        let value = candidates.value(name)?;
        match node.kind {
            Kind::Scalar(style) => {
                let indent = block_indent(text, node);
                edits.push(
                    name,
                    node.span.clone(),
                    render_scalar(style, value.as_deref(), node.in_flow, node.plain_string, &indent, eol),
                );
            }
            Kind::Alias => {
                edits.push(
                    name,
                    node.span.clone(),
                    render_scalar(TScalarStyle::Plain, value.as_deref(), node.in_flow, node.plain_string, "", eol),
                );
            }
            Kind::Empty => {
                let rendered = render_scalar(TScalarStyle::Plain, value.as_deref(), node.in_flow, false, "", eol);
                edits.push(name, node.span.clone(), format!(" {rendered}"));
            }
            Kind::Mapping { flow } | Kind::Sequence { flow } => {
                let mut span = node.span.clone();
                let mut rendered = render_structure(value.as_deref(), node.in_flow);
                if !flow {
                    // Put the flow value on the line of its key (or `-`), as a block
                    // collection's first line may sit at the key's own indentation.
                    let before = text[..span.start].trim_end_matches([' ', '\t', '\r', '\n']);
                    if before.ends_with([':', '-', '?']) {
                        span.start = before.len();
                        rendered = format!(" {rendered}");
                    } else if matches!(node.kind, Kind::Sequence { .. }) {
                        rendered = format!("  {rendered}");
                    }
                }
                edits.push(name, span, rendered);
            }
        }
    }
    Ok(())
}

/// The indentation for block scalar content: as before (the column of the first content
/// line), or two more than the key's line for an empty block scalar.
fn block_indent(text: &str, node: &Node) -> String {
    let header_line_start = text[..node.span.start].rfind('\n').map_or(0, |i| i + 1);
    let key_indent = text[header_line_start..].len() - text[header_line_start..].trim_start_matches(' ').len();
    let after_header = text[node.span.start..node.span.end].find('\n').map(|i| node.span.start + i + 1);
    if let Some(content_start) = after_header {
        let rest = &text[content_start..node.span.end];
        for line in rest.split('\n') {
            let trimmed = line.trim_start_matches(' ');
            if !trimmed.trim_end_matches('\r').is_empty() {
                return " ".repeat(line.len() - trimmed.len());
            }
        }
    }
    " ".repeat(key_indent + 2)
}

/// Writes a scalar value in `style` where possible (see the module docs). With
/// `keep_string`, a plain value that would read as a number, bool or null is quoted.
pub(crate) fn render_scalar(
    style: TScalarStyle,
    value: Option<&str>,
    in_flow: bool,
    keep_string: bool,
    indent: &str,
    eol: &str,
) -> String {
    let Some(value) = value else { return "null".to_string() };
    let printable = !value.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
    match style {
        TScalarStyle::Plain if is_plain_safe(value, in_flow) && (!keep_string || reads_as_string(value)) => {
            value.to_string()
        }
        TScalarStyle::SingleQuoted if printable && !value.contains(['\n', '\t']) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        TScalarStyle::Literal | TScalarStyle::Folded
            if printable && !in_flow && !value.starts_with([' ', '\t', '\n']) && !value.is_empty() =>
        {
            let body = value.strip_suffix('\n').unwrap_or(value);
            let chomp = if value.ends_with("\n\n") {
                "+"
            } else if value.ends_with('\n') {
                ""
            } else {
                "-"
            };
            let header = if style == TScalarStyle::Folded && !body.contains('\n') { '>' } else { '|' };
            let mut out = format!("{header}{chomp}");
            for line in body.split('\n') {
                out.push_str(eol);
                if !line.is_empty() {
                    out.push_str(indent);
                    out.push_str(line);
                }
            }
            out
        }
        _ => double_quote(value),
    }
}

/// A double-quoted YAML scalar.
pub(crate) fn double_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a plain scalar with this text reads as a string (YAML core schema).
fn reads_as_string(value: &str) -> bool {
    // Fast path: a word starting with a letter that no number, bool, null or infinity
    // starts with is a string.
    if value.chars().next().is_some_and(|c| c.is_alphabetic() && !"tTfFnNiIyYoO".contains(c)) {
        return true;
    }
    matches!(yaml_rust2::Yaml::from_str(value), yaml_rust2::Yaml::String(_))
}

/// Whether `value` reads back as the same string when written as a plain scalar here.
fn is_plain_safe(value: &str, in_flow: bool) -> bool {
    let Some(first) = value.chars().next() else { return false };
    if value.trim() != value || value.chars().any(|c| c.is_control()) {
        return false;
    }
    if "[]{},#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if "-?:".contains(first) {
        let second = value[1..].chars().next();
        if second.is_none_or(|c| c == ' ' || (in_flow && ",[]{}".contains(c))) {
            return false;
        }
        if value == "---" || value.starts_with("--- ") {
            return false;
        }
    }
    if value.contains(": ") || value.contains(" #") || value.ends_with(':') {
        return false;
    }
    !(in_flow && value.contains([',', '[', ']', '{', '}']))
}

/// What replaces a mapping or sequence (reference `ParseFragment`): the value read as
/// YAML. A mapping or sequence is written in flow style ([`render_collection`]); a single
/// scalar is written as it reads (`local` stays plain, `'x'` stays quoted, `~` stays `~`);
/// anything else (no content, several documents, not YAML) is the value as a
/// double-quoted string, so `""` for an empty value; a null value is `null`.
fn render_structure(value: Option<&str>, in_flow: bool) -> String {
    let Some(value) = value else { return "null".to_string() };
    if let Some(flow) = render_collection(Some(value)) {
        return flow;
    }
    match single_scalar(value) {
        Some((text, TScalarStyle::Plain)) if is_plain_safe(&text, in_flow) => text,
        Some((text, TScalarStyle::SingleQuoted)) if !text.chars().any(char::is_control) => {
            format!("'{}'", text.replace('\'', "''"))
        }
        Some((text, _)) => double_quote(&text),
        None => double_quote(value),
    }
}

/// The value of `value` read as a YAML stream holding exactly one scalar, with its style.
fn single_scalar(value: &str) -> Option<(String, TScalarStyle)> {
    let mut parser = Parser::new_from_str(value);
    let mut found = None;
    loop {
        match parser.next_token().ok()?.0 {
            Event::StreamEnd => return found,
            Event::Nothing | Event::StreamStart | Event::DocumentStart | Event::DocumentEnd => {}
            Event::Scalar(text, style, _, _) if found.is_none() => found = Some((text, style)),
            _ => return None,
        }
    }
}

/// The flow text for a mapping or sequence replacement: the value as JSON (compact), or
/// as YAML converted to JSON; `None` when it is neither.
fn render_collection(value: Option<&str>) -> Option<String> {
    let value = value?;
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(value.trim()) {
        return serde_json::to_string(&json).ok();
    }
    let docs = yaml_rust2::YamlLoader::load_from_str(value).ok()?;
    let [doc] = docs.as_slice() else { return None };
    match doc {
        yaml_rust2::Yaml::Hash(_) | yaml_rust2::Yaml::Array(_) => serde_json::to_string(&to_json(doc)?).ok(),
        _ => None,
    }
}

fn to_json(yaml: &yaml_rust2::Yaml) -> Option<serde_json::Value> {
    use serde_json::Value;
    use yaml_rust2::Yaml;
    Some(match yaml {
        Yaml::Real(r) => {
            r.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::String(r.clone()), Value::Number)
        }
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect::<Option<_>>()?),
        Yaml::Hash(h) => {
            let mut map = serde_json::Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => return None,
                };
                map.insert(key, to_json(v)?);
            }
            Value::Object(map)
        }
        Yaml::Null => Value::Null,
        Yaml::Alias(_) | Yaml::BadValue => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<(String, &str)> {
        parse(text).unwrap().into_iter().map(|n| (n.path.unwrap_or_else(|| "?".into()), &text[n.span])).collect()
    }

    #[test]
    fn block_and_flow_spans() {
        let text = "# c\na: 1\nb:\n  c: 'x'\n  d: \"y\"\n  e: |\n    lit\n    more\n\n  f: [1, {g: 2}]\nh:\n- 1\n- k: v\n  l: &an !!str w\nm: *an\n";
        let got = spans(text);
        let expect: Vec<(&str, &str)> = vec![
            (
                "",
                "a: 1\nb:\n  c: 'x'\n  d: \"y\"\n  e: |\n    lit\n    more\n\n  f: [1, {g: 2}]\nh:\n- 1\n- k: v\n  l: &an !!str w\nm: *an",
            ),
            ("a", "1"),
            ("b", "c: 'x'\n  d: \"y\"\n  e: |\n    lit\n    more\n\n  f: [1, {g: 2}]"),
            ("b:c", "'x'"),
            ("b:d", "\"y\""),
            ("b:e", "|\n    lit\n    more"),
            ("b:f", "[1, {g: 2}]"),
            ("b:f:0", "1"),
            ("b:f:1", "{g: 2}"),
            ("b:f:1:g", "2"),
            ("h", "- 1\n- k: v\n  l: &an !!str w"),
            ("h:0", "1"),
            ("h:1", "k: v\n  l: &an !!str w"),
            ("h:1:k", "v"),
            ("h:1:l", "w"),
            ("m", "*an"),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn multi_line_scalars_and_documents() {
        let text =
            "---\na:\nb: plain\n  multi  # c\nc: >-\n  fold\n  ed\n# after\nd: 'q\n  m'\n---\n- x\n- - y\n  - z\n...\n";
        let got = spans(text);
        let got: Vec<(&str, &str)> = got.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        assert_eq!(
            got,
            vec![
                ("", "a:\nb: plain\n  multi  # c\nc: >-\n  fold\n  ed\n# after\nd: 'q\n  m'"),
                ("a", ""),
                ("b", "plain\n  multi"),
                ("c", ">-\n  fold\n  ed"),
                ("d", "'q\n  m'"),
                ("", "- x\n- - y\n  - z"),
                ("0", "x"),
                ("1", "- y\n  - z"),
                ("1:0", "y"),
                ("1:1", "z"),
            ]
        );
    }

    #[test]
    fn non_ascii_offsets() {
        let text = "é: ü\nkey: välue # ç\n";
        let got = spans(text);
        assert_eq!(got[1], ("é".to_string(), "ü"));
        assert_eq!(got[2], ("key".to_string(), "välue"));
    }

    #[test]
    fn plain_safety() {
        for (v, safe) in [
            ("abc", true),
            ("-5", true),
            ("http://x:80/a", true),
            ("a: b", false),
            ("a #b", false),
            ("", false),
            (" x", false),
            ("- x", false),
            ("*x", false),
            ("{x}", false),
            ("a,b", true),
        ] {
            assert_eq!(is_plain_safe(v, false), safe, "{v:?}");
        }
        assert!(!is_plain_safe("a,b", true));
    }

    #[test]
    fn rejects_invalid_yaml() {
        for bad in ["a: [1, 2", "a: 'x", "key: value\n  bad: indent", "- a\nb: c"] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    /// Found by `fuzz/templating` (target `structured`, minimised input `\x01d: |\0\nt`):
    /// the scanner stopped at the NUL, so the invalid rest was accepted, and a replacement
    /// of `d` wrote a file that no longer parsed.
    #[test]
    fn a_nul_is_refused_where_it_is() {
        let err = parse("d: |\0\nt").unwrap_err().to_string();
        assert_eq!(
            err,
            "(Line: 1, Col: 5, Idx: 4) - (Line: 1, Col: 5, Idx: 4): the NUL character (U+0000) is not allowed in YAML"
        );
        let err = parse("a: 1\nb: x\0").unwrap_err().to_string();
        assert!(err.starts_with("(Line: 2, Col: 5, Idx: 9)"), "{err}");
        let mut variables = crate::VariableDictionary::new();
        variables.set("d", Some("- x".to_string()));
        assert!(matches!(
            crate::structured::replace(b"d: |\0\nt", crate::structured::Format::Yaml, &variables),
            Err(crate::structured::Error::Syntax { .. })
        ));
    }

    /// Found by `fuzz/templating` (target `structured`, input `a: !n`): the value of an
    /// empty node with a tag was written before the tag, which then trailed the quoted
    /// scalar and made the file invalid.
    #[test]
    fn an_empty_tagged_or_anchored_node_gets_its_value_after_the_properties() {
        let mut variables = crate::VariableDictionary::new();
        variables.set("a", Some("- x\n- y: z".to_string()));
        variables.set("b", Some("v".to_string()));
        let out =
            crate::structured::replace(b"a: !n\nb: &x !t\nc: [*x]\n", crate::structured::Format::Yaml, &variables)
                .unwrap()
                .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, "a: !n \"- x\\n- y: z\"\nb: &x !t v\nc: [*x]\n");
        assert!(parse(&out).is_ok(), "{out}");
    }

    /// Found by `fuzz/templating` (target `structured`, input `list:\n-st:\n- $a\n- `): the
    /// empty last item of a replaced sequence was also filled in, after the replacement.
    #[test]
    fn an_empty_item_at_the_end_of_a_replaced_sequence_is_left_to_it() {
        let mut variables = crate::VariableDictionary::new();
        variables.set("-st", Some("v".to_string()));
        variables.set("-st:1", Some("w".to_string()));
        let out = crate::structured::replace(b"list:\n-st:\n- $a\n- ", crate::structured::Format::Yaml, &variables)
            .unwrap()
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, "list:\n-st: v ");
        assert!(parse(&out).is_ok(), "{out}");
    }

    /// Found by `fuzz/templating` (target `structured`, input
    /// `regressions/structured-yaml-sequence-of-one-empty-item`): the empty item of a
    /// sequence was placed after the parent's `t:` instead of after its own `-`, so `t`
    /// was inserted after `t:`, leaving the `- ` line behind: invalid YAML.
    #[test]
    fn a_sequence_of_one_empty_item_is_replaced_whole() {
        let mut variables = crate::VariableDictionary::new();
        variables.set("t", Some("[1]".to_string()));
        variables.set("t:0", Some("null".to_string()));
        let out = crate::structured::replace(b"t:\n- \nk: 1\n", crate::structured::Format::Yaml, &variables)
            .unwrap()
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, "t: [1] \nk: 1\n", "the item's trailing space stays");
        let mut item_only = crate::VariableDictionary::new();
        item_only.set("t:0", Some("x".to_string()));
        for (doc, expected) in [
            ("t:\n- \nk: 1\n", "t:\n- x \nk: 1\n"),
            ("t: # a - b\n  -   # c-d -\nk: 1\n", "t: # a - b\n  - x   # c-d -\nk: 1\n"),
        ] {
            let out = crate::structured::replace(doc.as_bytes(), crate::structured::Format::Yaml, &item_only)
                .unwrap()
                .unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{doc:?}");
        }
    }
}

#[cfg(test)]
mod torture {
    //! Every scalar of a document written in many YAML styles is replaced in turn; the
    //! result must load as the original document with exactly that value changed.

    use yaml_rust2::{Yaml, YamlLoader};

    use crate::VariableDictionary;
    use crate::structured::{Format, replace};

    const DOC: &str = "%YAML 1.2\n--- # doc\n# leading comment\nplain: value   # trailing\nmulti: first\n  second line\n\nsingle: 'it''s'\ndouble: \"tab\\there\"\nquoted_multi: \"a\n  b\"\nlit: |\n  line 1\n\n  line 3\nfold: >-\n  folded\n  text\nempty:\ntagged: !!str 42\nanchor: &a anchored\nalias: *a\n1: int key\n\"quoted key\": v\nnested:\n  map:\n    deep: x # c\n  list:\n  - one\n  - two: 2\n    three: 3\n  -   - inner\n      - inner2\n  flow: {a: 1, b: [x, y], c: 'q'}\nseq_of_maps:\n  - name: a\n    port: 1\n  # between\n  - name: b\n    port: 2\nlast: end\n";

    fn get<'y>(y: &'y mut Yaml, path: &str) -> &'y mut Yaml {
        path.split(':').fold(y, |y, seg| match y {
            Yaml::Hash(h) => {
                let key = match seg.parse::<i64>() {
                    Ok(i) if h.contains_key(&Yaml::Integer(i)) => Yaml::Integer(i),
                    _ => Yaml::String(seg.to_string()),
                };
                h.get_mut(&key).unwrap_or_else(|| panic!("no key {seg}"))
            }
            Yaml::Array(a) => &mut a[seg.parse::<usize>().unwrap()],
            other => panic!("cannot descend into {other:?}"),
        })
    }

    #[test]
    fn every_scalar_replaced_in_turn() {
        let original = YamlLoader::load_from_str(DOC).unwrap().remove(0);
        let nodes = super::parse(DOC).unwrap();
        let mut count = 0;
        for node in
            nodes.iter().filter(|n| !matches!(n.kind, super::Kind::Mapping { .. } | super::Kind::Sequence { .. }))
        {
            let path = node.path.clone().unwrap();
            for value in ["new", "two words: and # more", "multi\nline\n", "-5", "'q'"] {
                let mut vars = VariableDictionary::new();
                vars.set(path.clone(), Some(value.to_string()));
                let out = replace(DOC.as_bytes(), Format::Yaml, &vars).unwrap().expect("something changed");
                let out = String::from_utf8(out).unwrap();
                let got = YamlLoader::load_from_str(&out)
                    .unwrap_or_else(|e| panic!("{path}={value:?}: {e}\n{out}"))
                    .remove(0);
                let mut expected = original.clone();
                let slot = get(&mut expected, &path);
                // A plain value may read back typed where the original was not a string.
                *slot = match (&*slot, Yaml::from_str(value)) {
                    (Yaml::String(_), _) | (_, Yaml::String(_)) => Yaml::String(value.to_string()),
                    (_, typed) => typed,
                };
                if path == "anchor" {
                    // The alias reads the anchored node, so it follows.
                    let new = get(&mut expected, "anchor").clone();
                    *get(&mut expected, "alias") = new;
                }
                assert_eq!(got, expected, "{path}={value:?}\n{out}");
                // Everything outside the replaced node is byte for byte the same.
                assert!(
                    out.starts_with(
                        &DOC[..node.span.start.min(DOC[..node.span.start].rfind(':').map_or(0, |i| i + 1))]
                    )
                );
                count += 1;
            }
        }
        assert!(count > 60, "{count}");
    }

    #[test]
    fn every_collection_replaced_in_turn() {
        let original = YamlLoader::load_from_str(DOC).unwrap().remove(0);
        let nodes = super::parse(DOC).unwrap();
        for node in
            nodes.iter().filter(|n| matches!(n.kind, super::Kind::Mapping { .. } | super::Kind::Sequence { .. }))
        {
            let Some(path) = node.path.clone().filter(|p| !p.is_empty()) else { continue };
            let mut vars = VariableDictionary::new();
            vars.set(path.clone(), Some("{\"k\": [1, \"two\"]}".to_string()));
            let out = String::from_utf8(replace(DOC.as_bytes(), Format::Yaml, &vars).unwrap().unwrap()).unwrap();
            let got = YamlLoader::load_from_str(&out).unwrap_or_else(|e| panic!("{path}: {e}\n{out}")).remove(0);
            let mut expected = original.clone();
            *get(&mut expected, &path) = YamlLoader::load_from_str("{k: [1, two]}").unwrap().remove(0);
            assert_eq!(got, expected, "{path}\n{out}");
        }
    }
}
