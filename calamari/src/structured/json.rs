//! JSON: a small parser that records the path and byte span of every value, so that a
//! replacement touches only that value's text.
//!
//! Paths join object keys and array indexes with `:` (`Logging:LogLevel:Default`,
//! `Servers:0:Name`). Typing follows the reference's `JsonUpdateMap`: the node being
//! replaced decides how the value is written:
//! * object or array: the value must be JSON (any JSON); otherwise the node is left as is;
//! * number: a 64-bit integer, else a finite double, else a string;
//! * `true`/`false`: a bool (any case), else a string;
//! * string or null: a string.
//!
//! A null variable writes `null`. Comments (`//`, `/* */`) are accepted, as Json.NET does.

use std::ops::Range;

use super::{Attempt, Candidates, Edits, encoding};

/// Why a text is not JSON, in Json.NET's words: the reason, then where (1-based line and
/// character position in that line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}. Path '', line {line}, position {position}.")]
pub struct JsonSyntaxError {
    /// What was wrong (`Unexpected end when reading JSON`, ...).
    pub reason: String,
    /// The line, from 1.
    pub line: usize,
    /// The character in the line, from 1.
    pub position: usize,
}

/// The maximum nesting depth accepted: deeper documents are refused rather than allowed
/// to overflow the stack (Json.NET's own default limit is 64).
const MAX_DEPTH: usize = 128;

/// The kind of a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `{...}`
    Object,
    /// `[...]`
    Array,
    /// `"..."`
    String,
    /// A number.
    Number,
    /// `true` or `false`.
    Bool,
    /// `null`.
    Null,
}

/// One value of a document: its `:`-joined path, kind and byte span in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// Keys and indexes joined by `:`; empty for the root.
    pub path: String,
    /// What the value is.
    pub kind: Kind,
    /// Where the value's text is.
    pub span: Range<usize>,
}

/// Parses `text`, returning every value (containers before their children).
///
/// # Errors
/// A [`JsonSyntaxError`] with the line and column of the first syntax error.
#[cfg(test)]
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, JsonSyntaxError> {
    parse_with(text, false, &|_| true)
}

/// Parses `text`, keeping only the nodes whose path `keep` accepts; with `fold`, paths
/// are built lower-cased (as variable names are looked up).
fn parse_with(text: &str, fold: bool, keep: &dyn Fn(&str) -> bool) -> Result<Vec<Node>, JsonSyntaxError> {
    let mut p = Parser { text, bytes: text.as_bytes(), pos: 0, nodes: Vec::new(), path: String::new(), fold, keep };
    p.skip_ws()?;
    if p.pos >= p.bytes.len() {
        return Err(p.error("Unexpected end when reading JSON"));
    }
    p.value(0)?;
    p.skip_ws()?;
    if p.pos < p.bytes.len() {
        return Err(p.error("Additional text encountered after finished reading JSON content"));
    }
    Ok(p.nodes)
}

pub(crate) fn replace(text: &str, candidates: &Candidates<'_>, edits: &mut Edits) -> Result<(), Attempt> {
    // An empty file is an empty document, as the reference's JSON replacer has always
    // read it: nothing to replace, and not a reason to fail the deployment.
    if text.trim_matches([' ', '\t', '\r', '\n', '\u{feff}']).is_empty() {
        return Ok(());
    }
    // Paths are built folded and only matching nodes are kept: no allocation per value.
    let keep = |path: &str| !path.is_empty() && candidates.lookup_folded(path).is_some();
    let nodes = parse_with(text, true, &keep).map_err(|e| Attempt::Unparseable(e.into()))?;
    let eol = encoding::line_ending(text);
    for node in &nodes {
        let Some(name) = candidates.lookup_folded(&node.path) else { continue };
        let value = candidates.value(name)?;
        match render(node.kind, value.as_deref()) {
            Some(rendered) => {
                let rendered = indent_continuation(&rendered, line_indent(text, node.span.start), eol);
                edits.push(name, node.span.clone(), rendered);
            }
            None => edits.warn(format!(
                "Unable to set value for {name}. The variable value could not be parsed as JSON and the existing {} was left unchanged.",
                if node.kind == Kind::Object { "object" } else { "array" }
            )),
        }
    }
    Ok(())
}

/// How `value` is written in place of a node of `kind`; `None` leaves the node unchanged.
pub(crate) fn render(kind: Kind, value: Option<&str>) -> Option<String> {
    let Some(value) = value else { return Some("null".to_string()) };
    match kind {
        Kind::Object | Kind::Array => {
            let trimmed = value.trim();
            serde_json::from_str::<serde_json::Value>(trimmed).ok().map(|_| trimmed.to_string())
        }
        Kind::Number => Some(number(value).unwrap_or_else(|| quote(value))),
        Kind::Bool => Some(match value.trim() {
            v if v.eq_ignore_ascii_case("true") => "true".to_string(),
            v if v.eq_ignore_ascii_case("false") => "false".to_string(),
            _ => quote(value),
        }),
        Kind::String | Kind::Null => Some(quote(value)),
    }
}

/// A value as a JSON number: a 64-bit integer (`long.TryParse`), else a finite double
/// written with a decimal point as Json.NET writes doubles.
fn number(value: &str) -> Option<String> {
    let v = value.trim();
    if let Ok(n) = v.parse::<i64>() {
        return Some(n.to_string());
    }
    let lower = v.to_ascii_lowercase();
    if lower.contains("inf") || lower.contains("nan") {
        return None;
    }
    let d = v.parse::<f64>().ok().filter(|d| d.is_finite())?;
    let s = d.to_string();
    Some(if s.contains(['.', 'e', 'E']) { s } else { format!("{s}.0") })
}

/// `value` as a JSON string literal, escaped as Json.NET does by default.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    crate::variables::template::json::write_string(value, &mut out);
    out
}

/// The leading whitespace of the line containing `pos`.
pub(crate) fn line_indent(text: &str, pos: usize) -> &str {
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[start..];
    let len = line.len() - line.trim_start_matches([' ', '\t']).len();
    &line[..len.min(pos - start)]
}

/// Indents every line after the first of a multi-line value by `indent`, with `eol`.
pub(crate) fn indent_continuation(value: &str, indent: &str, eol: &str) -> String {
    if !value.contains(['\n', '\r']) {
        return value.to_string();
    }
    let normalised = value.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(value.len() + 16);
    for (i, line) in normalised.split('\n').enumerate() {
        if i > 0 {
            out.push_str(eol);
            if !line.is_empty() {
                out.push_str(indent);
            }
        }
        out.push_str(line);
    }
    out
}

struct Parser<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    nodes: Vec<Node>,
    /// The current path, segments pushed and truncated as the parser descends.
    path: String,
    fold: bool,
    keep: &'t dyn Fn(&str) -> bool,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> JsonSyntaxError {
        let before = &self.text[..self.pos.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let position = before.rfind('\n').map_or(before.chars().count(), |i| before[i + 1..].chars().count()) + 1;
        JsonSyntaxError { reason: what.to_string(), line, position }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) -> Result<(), JsonSyntaxError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') => match self.bytes.get(self.pos + 1) {
                    Some(b'/') => {
                        self.pos =
                            memchr::memchr(b'\n', &self.bytes[self.pos..]).map_or(self.bytes.len(), |i| self.pos + i);
                    }
                    Some(b'*') => {
                        let end = memchr::memmem::find(&self.bytes[self.pos + 2..], b"*/")
                            .ok_or_else(|| self.error("Unexpected end while parsing comment"))?;
                        self.pos += 2 + end + 2;
                    }
                    _ => return Err(self.error("Unexpected character encountered while parsing value: /")),
                },
                Some(0xEF) if self.text[self.pos..].starts_with('\u{feff}') => self.pos += 3,
                _ => return Ok(()),
            }
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), JsonSyntaxError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected '{}'", b as char)))
        }
    }

    fn unexpected(&self, context: &str) -> JsonSyntaxError {
        match self.text[self.pos..].chars().next() {
            Some(c) => self.error(&format!("Unexpected character encountered while parsing value: {c} ({context})")),
            None => self.error(&format!("Unexpected end when reading JSON ({context})")),
        }
    }

    /// Appends a segment to the current path; returns the length to truncate back to.
    fn push_segment(&mut self, segment: &str) -> usize {
        let len = self.path.len();
        if len > 0 {
            self.path.push(':');
        }
        if self.fold {
            if segment.is_ascii() {
                self.path.extend(segment.bytes().map(|b| char::from(b.to_ascii_lowercase())));
            } else {
                self.path.push_str(&segment.to_lowercase());
            }
        } else {
            self.path.push_str(segment);
        }
        len
    }

    fn value(&mut self, depth: usize) -> Result<(), JsonSyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("The JSON is nested too deeply"));
        }
        let start = self.pos;
        let kind = match self.peek() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b'"') => Kind::String,
            Some(b'-' | b'0'..=b'9') => Kind::Number,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            _ => return Err(self.unexpected("expected a value")),
        };
        let index = (self.keep)(&self.path).then(|| {
            self.nodes.push(Node { path: self.path.clone(), kind, span: start..start });
            self.nodes.len() - 1
        });
        match kind {
            Kind::Object => {
                self.pos += 1;
                self.skip_ws()?;
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip_ws()?;
                        if self.peek() == Some(b'}') {
                            // A trailing comma, which Json.NET accepts.
                            self.pos += 1;
                            break;
                        }
                        if self.peek() != Some(b'"') {
                            return Err(self.unexpected("expected a property name"));
                        }
                        let key = self.string()?;
                        self.skip_ws()?;
                        self.expect(b':')?;
                        self.skip_ws()?;
                        let len = self.push_segment(&key);
                        self.value(depth + 1)?;
                        self.path.truncate(len);
                        self.skip_ws()?;
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b'}') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.unexpected("expected ',' or '}'")),
                        }
                    }
                }
            }
            Kind::Array => {
                self.pos += 1;
                let mut i = 0usize;
                loop {
                    self.skip_ws()?;
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        break;
                    }
                    let len = self.push_segment(&i.to_string());
                    self.value(depth + 1)?;
                    self.path.truncate(len);
                    i += 1;
                    self.skip_ws()?;
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err(self.unexpected("expected ',' or ']'")),
                    }
                }
            }
            Kind::String => {
                self.string()?;
            }
            Kind::Number => self.number()?,
            Kind::Bool | Kind::Null => {
                let word = ["true", "false", "null"]
                    .into_iter()
                    .find(|w| self.text[self.pos..].starts_with(w))
                    .ok_or_else(|| self.unexpected("expected true, false or null"))?;
                self.pos += word.len();
                if self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(self.unexpected("after a literal"));
                }
                if (kind == Kind::Null) != (word == "null") {
                    return Err(self.error("Unexpected literal"));
                }
            }
        }
        if let Some(index) = index {
            self.nodes[index].span = start..self.pos;
        }
        Ok(())
    }

    fn number(&mut self) -> Result<(), JsonSyntaxError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos > s
        };
        if !digits(self) {
            return Err(self.unexpected("in a number"));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(self.unexpected("in a number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.unexpected("in a number"));
            }
        }
        if self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.') {
            self.pos = start;
            return Err(self.unexpected("in a number"));
        }
        Ok(())
    }

    /// Reads a string literal at `pos` and returns its decoded value.
    fn string(&mut self) -> Result<String, JsonSyntaxError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.bytes[self.pos..];
            let Some(i) = memchr::memchr2(b'"', b'\\', rest) else {
                self.pos = self.bytes.len();
                return Err(self.error("Unterminated string. Expected delimiter: \""));
            };
            out.push_str(&self.text[self.pos..self.pos + i]);
            self.pos += i;
            if self.bytes[self.pos] == b'"' {
                self.pos += 1;
                return Ok(out);
            }
            self.pos += 1;
            let esc = self.peek().ok_or_else(|| self.error("Unterminated string"))?;
            self.pos += 1;
            match esc {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'\'' => out.push('\''),
                b'u' => {
                    let hi = self.hex4()?;
                    let c = if (0xD800..0xDC00).contains(&hi) && self.text[self.pos..].starts_with("\\u") {
                        self.pos += 2;
                        let lo = self.hex4()?;
                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF))
                    } else {
                        char::from_u32(hi)
                    };
                    out.push(c.unwrap_or('\u{fffd}'));
                }
                _ => {
                    self.pos -= 1;
                    return Err(self.error("Bad JSON escape sequence"));
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonSyntaxError> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or_else(|| self.error("Bad JSON escape sequence"))?;
        let v = u32::from_str_radix(digits, 16).map_err(|_| self.error("Bad JSON escape sequence"))?;
        self.pos += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_spans() {
        let text = r#"{ "a": { "b": [1, "x", true] }, "c:d": null } // done"#;
        let nodes = parse(text).unwrap();
        let got: Vec<(&str, Kind, &str)> =
            nodes.iter().map(|n| (n.path.as_str(), n.kind, &text[n.span.clone()])).collect();
        assert_eq!(
            got,
            vec![
                ("", Kind::Object, r#"{ "a": { "b": [1, "x", true] }, "c:d": null }"#),
                ("a", Kind::Object, r#"{ "b": [1, "x", true] }"#),
                ("a:b", Kind::Array, r#"[1, "x", true]"#),
                ("a:b:0", Kind::Number, "1"),
                ("a:b:1", Kind::String, r#""x""#),
                ("a:b:2", Kind::Bool, "true"),
                ("c:d", Kind::Null, "null"),
            ]
        );
    }

    #[test]
    fn rejects_invalid_json() {
        for bad in ["", "{", "{\"a\" 1}", "a: 1", "<x/>", "{\"a\":1} x", "[1,,2]", "01x", "\"abc", "{'a':1}", "[tru]"] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        for good in ["1", "[]", "{}", "[1,]", "/* c */ {\"a\": -1.5e3}", "\"\\u00e9\\ud83d\\ude00\""] {
            assert!(parse(good).is_ok(), "{good:?} should parse");
        }
    }

    #[test]
    fn error_names_line_and_position() {
        let err = parse("{\n  \"a\": x\n}").unwrap_err();
        assert_eq!((err.line, err.position), (2, 8), "{err}");
        assert!(err.to_string().contains("line 2, position 8"), "{err}");
    }

    #[test]
    fn typing_follows_the_node() {
        let cases = [
            (Kind::Number, Some("42"), Some("42")),
            (Kind::Number, Some(" 007 "), Some("7")),
            (Kind::Number, Some("1.5"), Some("1.5")),
            (Kind::Number, Some("1e3"), Some("1000.0")),
            (Kind::Number, Some("abc"), Some("\"abc\"")),
            (Kind::Number, Some("NaN"), Some("\"NaN\"")),
            (Kind::Bool, Some("False"), Some("false")),
            (Kind::Bool, Some("yes"), Some("\"yes\"")),
            (Kind::String, Some("12"), Some("\"12\"")),
            (Kind::String, Some("a\"b\\c\nd"), Some("\"a\\\"b\\\\c\\nd\"")),
            (Kind::String, None, Some("null")),
            (Kind::Null, Some(""), Some("\"\"")),
            (Kind::Object, Some(" {\"x\": 1} "), Some("{\"x\": 1}")),
            (Kind::Array, Some("not json"), None),
            (Kind::Array, Some("5"), Some("5")),
        ];
        for (kind, value, expected) in cases {
            assert_eq!(render(kind, value).as_deref(), expected, "{kind:?} {value:?}");
        }
    }
}
