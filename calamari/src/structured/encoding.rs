//! Text encodings of structured configuration files. [`crate::text_encoding`] detects
//! them as the reference's `EncodingDetectingFileReader` does (a BOM names the encoding;
//! without one the bytes are strict UTF-8 or else windows-1252), and the file is written
//! back in the encoding it came in, with the BOM it had, so only the replaced values
//! change on disk; text the encoding cannot represent makes the file UTF-8 by the rule in
//! [`crate::text_encoding`]. This module adds the line-ending helpers the formats share.

pub(crate) use crate::text_encoding::decode;

/// The dominant line ending of `text`: `\r\n` when CRLF lines outnumber bare LF lines.
pub(crate) fn line_ending(text: &str) -> &'static str {
    let crlf = text.matches("\r\n").count();
    let lf = text.matches('\n').count() - crlf;
    if crlf > lf { "\r\n" } else { "\n" }
}

/// Rewrites every line break in `value` as `eol`.
#[cfg(test)]
pub(crate) fn with_line_ending(value: &str, eol: &str) -> String {
    if !value.contains(['\n', '\r']) {
        return value.to_string();
    }
    value.replace("\r\n", "\n").replace('\r', "\n").replace('\n', eol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominant_line_ending() {
        assert_eq!(line_ending("a\r\nb\r\nc\n"), "\r\n");
        assert_eq!(line_ending("a\nb\r\nc\n"), "\n");
        assert_eq!(with_line_ending("a\nb\r\nc", "\r\n"), "a\r\nb\r\nc");
    }
}
