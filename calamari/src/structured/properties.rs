//! Java `.properties`, read as `java.util.Properties.load` does: natural lines end in
//! `\n`, `\r` or `\r\n`; blank lines and lines whose first non-blank character is `#` or
//! `!` are comments; a line ending in an odd number of backslashes continues on the next
//! (whose leading blanks are dropped); the key ends at the first unescaped `=`, `:` or
//! blank, then blanks, one optional `=`/`:` and blanks again lead to the value. Keys and
//! values unescape `\t \n \r \f \uXXXX` and `\x` → `x`.
//!
//! A variable matches the logical (unescaped) key, ignoring case. The replaced value is
//! the whole logical value (all its continuation lines); the new value is written on one
//! line, escaped Java-style (backslash, control and non-ASCII characters as `\uXXXX`, a
//! leading blank). Keys are matched unescaped, so `k\u1e1by` is the variable `kḛy`. Comments,
//! blank lines, separators and every other entry stay byte for byte.

use std::ops::Range;

use super::{Attempt, Candidates, Edits};

/// Why a text is not a `.properties` file: a `\u` escape without four hex digits, as
/// `java.util.Properties.load` reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Malformed \\uxxxx encoding on line {line}.")]
pub struct PropertiesSyntaxError {
    /// The logical line's last natural line, from 1.
    pub line: usize,
}

/// One `key = value` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The unescaped key.
    pub key: String,
    /// The unescaped value.
    pub value: String,
    /// Where the value's text is (from its first character to the end of its last line).
    pub span: Range<usize>,
    /// Whether the entry has no separator at all (`key` alone), so one must be added.
    pub bare: bool,
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\x0c')
}

/// Parses `text` into its entries, in order.
///
/// # Errors
/// A malformed `\uXXXX` escape, naming the line.
pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, PropertiesSyntaxError> {
    let bytes = text.as_bytes();
    let mut entries = Vec::new();
    let mut pos = 0;
    let mut line_no = 0usize;
    while pos < bytes.len() {
        line_no += 1;
        let (line_end, next) = natural_line(bytes, pos);
        let mut start = pos;
        while start < line_end && is_blank(bytes[start]) {
            start += 1;
        }
        if start == line_end || bytes[start] == b'#' || bytes[start] == b'!' {
            pos = next;
            continue;
        }
        // Gather the logical line: pieces of text (start..end) joined across continuations.
        let mut pieces: Vec<Range<usize>> = Vec::new();
        let mut piece_start = start;
        let mut end = line_end;
        let mut cursor = next;
        loop {
            let trailing = bytes[piece_start..end].iter().rev().take_while(|&&b| b == b'\\').count();
            if trailing % 2 == 1 && cursor < bytes.len() {
                pieces.push(piece_start..end - 1);
                let (e, n) = natural_line(bytes, cursor);
                line_no += 1;
                let mut s = cursor;
                while s < e && is_blank(bytes[s]) {
                    s += 1;
                }
                piece_start = s;
                end = e;
                cursor = n;
            } else {
                let cut = if trailing % 2 == 1 { end - 1 } else { end };
                pieces.push(piece_start..cut);
                break;
            }
        }
        // Split the logical line into key and value, tracking positions in the text.
        let logical: Vec<(usize, u8)> = pieces.iter().flat_map(|r| r.clone().map(|i| (i, bytes[i]))).collect();
        let mut i = 0;
        let mut key_raw = Vec::new();
        while i < logical.len() {
            let b = logical[i].1;
            if b == b'\\' {
                key_raw.push(logical[i]);
                if i + 1 < logical.len() {
                    key_raw.push(logical[i + 1]);
                }
                i += 2;
                continue;
            }
            if b == b'=' || b == b':' || is_blank(b) {
                break;
            }
            key_raw.push(logical[i]);
            i += 1;
        }
        let mut separator = false;
        while i < logical.len() && is_blank(logical[i].1) {
            i += 1;
            separator = true;
        }
        if i < logical.len() && (logical[i].1 == b'=' || logical[i].1 == b':') {
            i += 1;
            separator = true;
            while i < logical.len() && is_blank(logical[i].1) {
                i += 1;
            }
        }
        let value_raw = &logical[i..];
        let value_start = value_raw.first().map_or_else(|| pieces.last().map_or(end, |p| p.end), |v| v.0);
        let key = unescape(&key_raw, line_no)?;
        let value = unescape(value_raw, line_no)?;
        entries.push(Entry { key, value, span: value_start..end, bare: !separator });
        pos = cursor;
    }
    Ok(entries)
}

/// The end of the natural line at `pos` (before its terminator) and the start of the next.
fn natural_line(bytes: &[u8], pos: usize) -> (usize, usize) {
    match memchr::memchr2(b'\n', b'\r', &bytes[pos..]) {
        None => (bytes.len(), bytes.len()),
        Some(i) => {
            let end = pos + i;
            if bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n') { (end, end + 2) } else { (end, end + 1) }
        }
    }
}

/// Unescapes logical-line bytes (with their positions in the text).
fn unescape(raw: &[(usize, u8)], line: usize) -> Result<String, PropertiesSyntaxError> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i].1;
        if b != b'\\' || i + 1 >= raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let e = raw[i + 1].1;
        i += 2;
        match e {
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'f' => out.push(b'\x0c'),
            b'u' => {
                let hex_at = |at: usize| -> Option<u32> {
                    let hex: Vec<u8> = raw.get(at..)?.iter().take(4).map(|x| x.1).collect();
                    std::str::from_utf8(&hex)
                        .ok()
                        .filter(|h| h.len() == 4)
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                };
                let mut code = hex_at(i).ok_or(PropertiesSyntaxError { line })?;
                i += 4;
                // A UTF-16 surrogate pair written as two escapes (as `Properties.store` does).
                if (0xD800..0xDC00).contains(&code)
                    && raw.get(i).map(|x| x.1) == Some(b'\\')
                    && raw.get(i + 1).map(|x| x.1) == Some(b'u')
                    && let Some(low @ 0xDC00..0xE000) = hex_at(i + 2)
                {
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    i += 6;
                }
                let c = char::from_u32(code).unwrap_or('\u{fffd}');
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            other => out.push(other),
        }
    }
    // Multi-byte characters came through byte by byte, so the bytes are valid UTF-8.
    Ok(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// `value` escaped for a properties value, as Java's `Properties.store` writes it: every
/// character outside printable ASCII as `\uXXXX` (upper-case hex; a character beyond the
/// Basic Multilingual Plane as its two UTF-16 surrogates), so the file stays ISO 8859-1.
pub(crate) fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            ' ' if i == 0 => out.push_str("\\ "),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out
}

pub(crate) fn replace(text: &str, candidates: &Candidates<'_>, edits: &mut Edits) -> Result<(), Attempt> {
    let entries = parse(text).map_err(|e| Attempt::Unparseable(e.into()))?;
    for entry in &entries {
        let Some(name) = candidates.lookup(&entry.key) else { continue };
        let value = candidates.value(name)?.unwrap_or_default();
        let escaped = escape_value(&value);
        let rendered = if entry.bare && !escaped.is_empty() { format!("={escaped}") } else { escaped };
        edits.push(name, entry.span.clone(), rendered);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_lines() {
        let text = "# comment\n! also\n  a = 1\nb:2\nc 3\nd\\:e=4 \nlong = one, \\\n       two\\\\\n\\ f\\u00e9=\\tx\nbare\nend=\\\n";
        let got: Vec<(String, String, &str)> =
            parse(text).unwrap().into_iter().map(|e| (e.key, e.value, &text[e.span])).collect();
        let expect = [
            ("a", "1", "1"),
            ("b", "2", "2"),
            ("c", "3", "3"),
            ("d:e", "4 ", "4 "),
            ("long", "one, two\\", "one, \\\n       two\\\\"),
            (" f\u{e9}", "\tx", "\\tx"),
            ("bare", "", ""),
            ("end", "", "\\"),
        ];
        let expect: Vec<(String, String, &str)> =
            expect.iter().map(|(k, v, s)| (k.to_string(), v.to_string(), *s)).collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn crlf_and_cr_lines() {
        let text = "a=1\r\nb=2\rc=3";
        let got: Vec<(String, &str)> = parse(text).unwrap().into_iter().map(|e| (e.key, &text[e.span])).collect();
        assert_eq!(got, vec![("a".into(), "1"), ("b".into(), "2"), ("c".into(), "3")]);
    }

    #[test]
    fn malformed_unicode_escape_is_an_error() {
        assert_eq!(parse("a=\\u12G4\n").unwrap_err().to_string(), "Malformed \\uxxxx encoding on line 1.");
    }

    #[test]
    fn non_ascii_is_escaped_as_java_writes_it() {
        assert_eq!(escape_value("\u{398}ctopus \u{e9} \u{1F310}\u{7f}"), "\\u0398ctopus \\u00E9 \\uD83C\\uDF10\\u007F");
    }

    #[test]
    fn escaping_round_trips() {
        for v in ["plain", " lead", "a\\b", "multi\nline\ttab", "x=y:z#!", "caf\u{e9}", "\u{1}", "\u{1F310}\u{7f}"] {
            let text = format!("k={}\n", escape_value(v));
            assert_eq!(parse(&text).unwrap()[0].value, v, "{text:?}");
        }
    }
}
