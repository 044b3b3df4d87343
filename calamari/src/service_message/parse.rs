//! Parsing `##octopus[...]` messages out of script output (`docs/behaviour.md`, "The agent protocol").
//!
//! [`Parser`] is fed one line of script stdout at a time and yields [`Item`]s: plain text,
//! or decoded [`ServiceMessage`]s. As the reference's state machine does, it finds
//! `##octopus[` anywhere in a line, collects up to the first `]` (across lines when a
//! message is split, CR/LF dropped), and reads `name attr='b64' attr2="b64"`: either quote
//! style, every attribute value base64 of UTF-8, attribute names matched ignoring case.
//! Several messages per line are allowed.
//!
//! Plain text is never mistaken for a message: anything that does not parse (bad base64,
//! a stray `##octopus[` with no `]` within [`MAX_MESSAGE_LEN`] bytes, a malformed attribute)
//! comes back as the text it was, never dropped. The reference ignores such messages; we
//! keep them visible instead.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::{PREFIX, ServiceMessage};

/// A message longer than this (collected over several lines) is given up on and its lines
/// come back as plain text.
pub(crate) const MAX_MESSAGE_LEN: usize = 1024 * 1024;

/// Standard alphabet; padding optional, as hand-written scripts sometimes omit it.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One piece of parsed output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A line (or the part of a line around messages) of plain text.
    Text(String),
    /// A service message, with its raw wire text (`##octopus[...]`, joined onto one line).
    Message {
        /// The decoded message.
        message: ServiceMessage,
        /// The message as it appeared (line breaks removed).
        raw: String,
    },
}

/// A message that started on an earlier line and has no `]` yet.
#[derive(Debug, Default)]
struct Pending {
    /// The original text from `##octopus[` on, line by line, to give back if it fails.
    raw_lines: Vec<String>,
    /// The content after `##octopus[` so far, CR/LF removed.
    content: String,
}

/// A stateful parser over the lines of one output stream.
#[derive(Debug, Default)]
pub struct Parser {
    pending: Option<Pending>,
}

impl Parser {
    /// A parser with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one line (without its `\n`), appending what it yields to `out`.
    pub fn feed(&mut self, line: &str, out: &mut Vec<Item>) {
        let mut rest = line;
        if let Some(mut pending) = self.pending.take() {
            match rest.find(']') {
                Some(end) => {
                    pending.content.extend(rest[..end].chars().filter(|c| *c != '\r' && *c != '\n'));
                    pending.raw_lines.push(rest[..=end].to_string());
                    match parse_content(&pending.content) {
                        Some(message) => {
                            out.push(Item::Message { message, raw: format!("{PREFIX}{}]", pending.content) })
                        }
                        None => out.extend(pending.raw_lines.into_iter().map(Item::Text)),
                    }
                    rest = &rest[end + 1..];
                    if rest.trim().is_empty() {
                        return;
                    }
                }
                None => {
                    pending.content.extend(rest.chars().filter(|c| *c != '\r' && *c != '\n'));
                    pending.raw_lines.push(rest.to_string());
                    if pending.content.len() > MAX_MESSAGE_LEN {
                        out.extend(pending.raw_lines.into_iter().map(Item::Text));
                    } else {
                        self.pending = Some(pending);
                    }
                    return;
                }
            }
        }
        let mut text = String::new();
        let mut found_message = false;
        loop {
            let Some(start) = rest.find(PREFIX) else {
                text.push_str(rest);
                break;
            };
            text.push_str(&rest[..start]);
            let after = &rest[start + PREFIX.len()..];
            match after.find(']') {
                Some(end) => match parse_content(&after[..end]) {
                    Some(message) => {
                        flush_text(&mut text, out);
                        found_message = true;
                        out.push(Item::Message {
                            message,
                            raw: rest[start..start + PREFIX.len() + end + 1].to_string(),
                        });
                        rest = &after[end + 1..];
                    }
                    None => {
                        text.push_str(&rest[start..start + PREFIX.len() + end + 1]);
                        rest = &after[end + 1..];
                    }
                },
                None => {
                    flush_text(&mut text, out);
                    self.pending = Some(Pending {
                        raw_lines: vec![rest[start..].to_string()],
                        content: after.chars().filter(|c| *c != '\r').collect(),
                    });
                    return;
                }
            }
        }
        if !found_message || !text.trim().is_empty() {
            out.push(Item::Text(text));
        }
    }

    /// Ends the stream: a message still waiting for its `]` comes back as text.
    pub fn finish(&mut self, out: &mut Vec<Item>) {
        if let Some(pending) = self.pending.take() {
            out.extend(pending.raw_lines.into_iter().map(Item::Text));
        }
    }

    /// Parses a whole text (several lines) at once.
    pub fn parse_all(text: &str) -> Vec<Item> {
        let mut parser = Parser::new();
        let mut out = Vec::new();
        for line in text.split('\n') {
            parser.feed(line, &mut out);
        }
        parser.finish(&mut out);
        out
    }
}

/// Pushes the text collected before a message, unless it is only whitespace.
fn flush_text(text: &mut String, out: &mut Vec<Item>) {
    if !text.trim().is_empty() {
        out.push(Item::Text(std::mem::take(text)));
    } else {
        text.clear();
    }
}

/// Parses the content between `##octopus[` and `]`: a name, then `attr='base64'` pairs.
/// `None` when anything is malformed.
pub(crate) fn parse_content(content: &str) -> Option<ServiceMessage> {
    let content = content.trim();
    let content = content.strip_suffix('/').unwrap_or(content).trim_end();
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    let name_end = content.find(|c: char| !is_name_char(c)).unwrap_or(content.len());
    if name_end == 0 {
        return None;
    }
    let mut message = ServiceMessage::new(&content[..name_end]);
    let mut rest = &content[name_end..];
    loop {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            return Some(message);
        }
        if message.attributes.is_empty() && trimmed.len() == rest.len() {
            return None; // the name and the first attribute must be separated by whitespace
        }
        let attr_end = trimmed.find(|c: char| !is_name_char(c)).unwrap_or(trimmed.len());
        if attr_end == 0 {
            return None;
        }
        let attr = &trimmed[..attr_end];
        let after = trimmed[attr_end..].trim_start().strip_prefix('=')?.trim_start();
        let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let value_end = after[1..].find(quote)? + 1;
        let encoded = &after[1..value_end];
        let bytes = LENIENT.decode(encoded.trim()).ok()?;
        message.attributes.push((attr.to_string(), String::from_utf8(bytes).ok()?));
        rest = &after[value_end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(name: &str, attrs: &[(&str, &str)]) -> Item {
        let mut m = ServiceMessage::new(name);
        for (k, v) in attrs {
            m = m.with(*k, *v);
        }
        Item::Message { raw: String::new(), message: m }
    }

    fn text(t: &str) -> Item {
        Item::Text(t.to_string())
    }

    /// Compares ignoring the raw text of messages.
    fn strip(items: Vec<Item>) -> Vec<Item> {
        items
            .into_iter()
            .map(|i| match i {
                Item::Message { message, .. } => Item::Message { message, raw: String::new() },
                t => t,
            })
            .collect()
    }

    #[test]
    fn table() {
        // "Rm9v" = Foo, "QmFy" = Bar, "VHJ1ZQ==" = True, "w6k=" = é
        let cases: Vec<(&str, Vec<Item>)> = vec![
            ("plain text", vec![text("plain text")]),
            ("", vec![text("")]),
            ("##octopus is great", vec![text("##octopus is great")]),
            ("##octopus[stdout-verbose]", vec![msg("stdout-verbose", &[])]),
            (
                "##octopus[setVariable name='Rm9v' value='QmFy']",
                vec![msg("setVariable", &[("name", "Foo"), ("value", "Bar")])],
            ),
            (
                r#"##octopus[setVariable name="Rm9v" value="QmFy" sensitive="VHJ1ZQ=="]"#,
                vec![msg("setVariable", &[("name", "Foo"), ("value", "Bar"), ("sensitive", "True")])],
            ),
            (
                "##octopus[setVariable name=\"Rm9v\" value='w6k=']",
                vec![msg("setVariable", &[("name", "Foo"), ("value", "é")])],
            ),
            (
                "  ##octopus[progress percentage='NTA' message='']  ",
                vec![msg("progress", &[("percentage", "50"), ("message", "")])],
            ),
            ("##octopus[a x='Rm9v']##octopus[b y='QmFy']", vec![msg("a", &[("x", "Foo")]), msg("b", &[("y", "Bar")])]),
            ("before ##octopus[a x='Rm9v'] after", vec![text("before "), msg("a", &[("x", "Foo")]), text(" after")]),
            // split over lines
            (
                "##octopus[setVariable name='Rm9v'\nvalue='QmFy']",
                vec![msg("setVariable", &[("name", "Foo"), ("value", "Bar")])],
            ),
            (
                "##octopus[setVariable\r\n name='Rm9v'\r\n value='QmFy']\r",
                vec![msg("setVariable", &[("name", "Foo"), ("value", "Bar")])],
            ),
            // malformed: kept as text
            ("##octopus[setVariable name='not base64!']", vec![text("##octopus[setVariable name='not base64!']")]),
            ("##octopus[setVariable name='Rm9v]", vec![text("##octopus[setVariable name='Rm9v]")]),
            ("##octopus[setVariable name=Rm9v]", vec![text("##octopus[setVariable name=Rm9v]")]),
            ("##octopus[]", vec![text("##octopus[]")]),
            ("##octopus[ x]", vec![msg("x", &[])]),
            ("a[1] ##octopus[bad name='@@'] b", vec![text("a[1] ##octopus[bad name='@@'] b")]),
            // unterminated: comes back as text at the end
            (
                "##octopus[setVariable name='Rm9v'\nmore text",
                vec![text("##octopus[setVariable name='Rm9v'"), text("more text")],
            ),
            // unpadded base64 is accepted
            ("##octopus[m value='Rm9vYg']", vec![msg("m", &[("value", "Foob")])]),
        ];
        for (input, expected) in cases {
            assert_eq!(strip(Parser::parse_all(input)), expected, "input {input:?}");
        }
    }

    #[test]
    fn raw_text_is_kept_for_pass_through() {
        let items = Parser::parse_all("x ##octopus[createArtifact path='Rm9v'] y");
        assert!(matches!(&items[1], Item::Message { raw, .. } if raw == "##octopus[createArtifact path='Rm9v']"));
    }

    #[test]
    fn round_trips_the_emitter() {
        for value in ["", "a", "ab", "abc", "quote ' and \" ] [", "line\nbreak", "ünïcødé ✓"] {
            let m = ServiceMessage::set_variable("Name", value, true);
            assert_eq!(Parser::parse_all(&m.to_string()), vec![Item::Message { raw: m.to_string(), message: m }]);
        }
    }

    #[test]
    fn an_overlong_message_comes_back_as_text() {
        let mut p = Parser::new();
        let mut out = Vec::new();
        p.feed("##octopus[x a='", &mut out);
        let chunk = "A".repeat(64 * 1024);
        for _ in 0..20 {
            p.feed(&chunk, &mut out);
        }
        p.finish(&mut out);
        assert_eq!(out.len(), 21, "every line comes back once");
        assert!(out.iter().all(|i| matches!(i, Item::Text(_))));
    }
}
