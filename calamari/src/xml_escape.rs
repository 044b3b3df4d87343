//! XML escaping as .NET's `XmlWriter` does it, shared by the deployment journal (which
//! writes whole documents) and structured configuration (which writes single values into
//! an existing document).
//!
//! Attribute values escape `&`, `<`, `>`, the quote character that delimits them, and the
//! whitespace characters attribute-value normalisation would otherwise turn into spaces
//! (`\n`, `\r`, `\t` as `&#xA;`, `&#xD;`, `&#x9;`), so a value reads back exactly as it
//! was written. Text content escapes only `&`, `<` and `>`.

/// Appends `value` to `out`, escaped for an attribute delimited by `quote` (`"` or `'`).
pub(crate) fn escape_attribute_into(out: &mut String, value: &str, quote: u8) {
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
}

/// `value` escaped for an attribute delimited by `quote` (`"` or `'`).
pub(crate) fn escape_attribute(value: &str, quote: u8) -> String {
    let mut out = String::with_capacity(value.len());
    escape_attribute_into(&mut out, value, quote);
    out
}

/// `value` escaped as element text.
pub(crate) fn escape_text(value: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_and_text_escaping() {
        let value = "a & <b> \"c\" 'd'\n\te\r";
        let cases: [(u8, &str); 2] = [
            (b'"', "a &amp; &lt;b&gt; &quot;c&quot; 'd'&#xA;&#x9;e&#xD;"),
            (b'\'', "a &amp; &lt;b&gt; \"c\" &apos;d&apos;&#xA;&#x9;e&#xD;"),
        ];
        for (quote, expected) in cases {
            assert_eq!(escape_attribute(value, quote), expected, "quote {}", quote as char);
        }
        assert_eq!(escape_text(value), "a &amp; &lt;b&gt; \"c\" 'd'\n\te\r");
    }
}
