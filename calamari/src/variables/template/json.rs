//! Lenient JSON as the reference reads variable values (Newtonsoft.Json): unquoted
//! property names, single-quoted strings, comments; additional content after the value
//! is an error. Values are rendered back the way the reference prints them.

use super::calc::format_double;

const MAX_DEPTH: usize = 128;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    /// `null`/`undefined`.
    Null,
    /// `true`/`false`.
    Bool(bool),
    /// A number, kept as its rendered text.
    Number(String),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, properties in order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole text; `None` when it is not (lenient) JSON.
    pub(crate) fn parse(text: &str) -> Option<Json> {
        let mut p = P { b: text.as_bytes(), s: text, i: 0 };
        let v = p.value(0)?;
        p.ws();
        if p.i == p.b.len() { Some(v) } else { None }
    }

    /// The value as the reference prints a property or element: strings as-is, numbers
    /// and booleans in invariant form (`True`), null as empty, containers as compact JSON.
    pub(crate) fn to_value_string(&self) -> String {
        match self {
            Json::Null => String::new(),
            Json::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Json::Number(n) => n.clone(),
            Json::Str(s) => s.clone(),
            Json::Array(_) | Json::Object(_) => {
                let mut out = String::new();
                self.write_compact(&mut out);
                out
            }
        }
    }

    fn write_compact(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::Str(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_compact(out);
                }
                out.push(']');
            }
            Json::Object(props) => {
                out.push('{');
                for (i, (k, v)) in props.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(k, out);
                    out.push(':');
                    v.write_compact(out);
                }
                out.push('}');
            }
        }
    }

    /// Property access as the reference does it: object property (case-sensitive;
    /// missing → empty string), array element by integer index (past the end → empty
    /// string), a scalar → itself whatever the name.
    pub(crate) fn member(&self, name: &str) -> Option<String> {
        match self {
            Json::Object(props) => {
                Some(props.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.to_value_string()).unwrap_or_default())
            }
            Json::Array(items) => {
                let ix: usize = name.trim().parse().ok()?;
                Some(items.get(ix).map(Json::to_value_string).unwrap_or_default())
            }
            other => Some(other.to_value_string()),
        }
    }
}

/// Appends `s` as a JSON string literal, escaped as Json.NET does by default (control
/// characters, and U+0085, U+2028, U+2029, which JavaScript treats as line breaks).
pub(crate) fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct P<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        loop {
            while self.i < self.b.len() {
                let c = self.s[self.i..].chars().next().unwrap_or(' ');
                if !c.is_whitespace() {
                    break;
                }
                self.i += c.len_utf8();
            }
            if self.b[self.i..].starts_with(b"//") {
                while self.i < self.b.len() && self.b[self.i] != b'\n' {
                    self.i += 1;
                }
            } else if self.b[self.i..].starts_with(b"/*") {
                match memchr::memmem::find(&self.b[self.i + 2..], b"*/") {
                    Some(off) => self.i += off + 4,
                    None => self.i = self.b.len(),
                }
            } else {
                return;
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.b.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut props = Vec::new();
                loop {
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Some(Json::Object(props));
                    }
                    let key = match *self.b.get(self.i)? {
                        b'"' | b'\'' => self.string()?,
                        _ => self.unquoted()?,
                    };
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return None;
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    props.push((key, v));
                    self.ws();
                    match *self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(Json::Object(props));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Some(Json::Array(items));
                    }
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match *self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(Json::Array(items));
                        }
                        _ => return None,
                    }
                }
            }
            b'"' | b'\'' => self.string().map(Json::Str),
            b't' if self.b[self.i..].starts_with(b"true") => {
                self.i += 4;
                Some(Json::Bool(true))
            }
            b'f' if self.b[self.i..].starts_with(b"false") => {
                self.i += 5;
                Some(Json::Bool(false))
            }
            b'n' if self.b[self.i..].starts_with(b"null") => {
                self.i += 4;
                Some(Json::Null)
            }
            b'u' if self.b[self.i..].starts_with(b"undefined") => {
                self.i += 9;
                Some(Json::Null)
            }
            b'-' | b'0'..=b'9' | b'.' => self.number(),
            _ => None,
        }
    }

    fn unquoted(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.s[self.i..].chars().next() {
            if c.is_alphanumeric() || c == '_' || c == '$' {
                self.i += c.len_utf8();
            } else {
                break;
            }
        }
        if self.i == start { None } else { Some(self.s[start..self.i].to_string()) }
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.b[self.i];
        self.i += 1;
        let mut out = String::new();
        loop {
            let c = self.s[self.i..].chars().next()?;
            self.i += c.len_utf8();
            if c as u32 == quote as u32 {
                return Some(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let e = self.s[self.i..].chars().next()?;
            self.i += e.len_utf8();
            match e {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex = self.s.get(self.i..self.i + 4)?;
                    let mut code = u32::from_str_radix(hex, 16).ok()?;
                    self.i += 4;
                    if (0xD800..0xDC00).contains(&code)
                        && self.s[self.i..].starts_with("\\u")
                        && let Some(low) =
                            self.s.get(self.i + 2..self.i + 6).and_then(|h| u32::from_str_radix(h, 16).ok())
                        && (0xDC00..0xE000).contains(&low)
                    {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                        self.i += 6;
                    }
                    out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                }
                other => out.push(other),
            }
        }
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.i;
        while self.i < self.b.len() && matches!(self.b[self.i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
            self.i += 1;
        }
        let t = &self.s[start..self.i];
        if !t.contains(['.', 'e', 'E'])
            && let Ok(n) = t.parse::<i64>()
        {
            return Some(Json::Number(n.to_string()));
        }
        let v: f64 = t.parse().ok()?;
        Some(Json::Number(format_double(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_json() {
        let j = Json::parse("{\"Small\": \"11.5\",  Large: 15.21, 'q': [1, {\"a\": true}]}").unwrap();
        assert_eq!(j.member("Large").unwrap(), "15.21");
        assert_eq!(j.member("q").unwrap(), "[1,{\"a\":true}]");
        assert_eq!(j.member("missing").unwrap(), "");
        assert!(Json::parse("{Name: NoComma}").is_none());
        assert!(Json::parse("{} x").is_none());
        assert_eq!(Json::parse("12").unwrap().member("x").unwrap(), "12");
        assert!(Json::parse(&"[".repeat(100_000)).is_none());
    }
}
