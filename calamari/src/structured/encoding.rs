//! Text encodings of structured configuration files, detected as the reference's
//! `EncodingDetectingFileReader` does (§2.3): a BOM names the encoding; without one the
//! bytes are strict UTF-8 or else windows-1252. The file is written back in the encoding it
//! came in, with the BOM it had, so only the replaced values change on disk.

/// The encoding a file was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8, with or without a byte order mark.
    Utf8 {
        /// Whether the file starts with `EF BB BF`.
        bom: bool,
    },
    /// UTF-16 little endian with a BOM (`FF FE`).
    Utf16Le,
    /// UTF-16 big endian with a BOM (`FE FF`).
    Utf16Be,
    /// windows-1252 (no BOM, not valid UTF-8).
    Windows1252,
}

/// Decodes `bytes`, returning the text (without BOM) and the encoding found.
pub fn decode(bytes: &[u8]) -> (String, TextEncoding) {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return (String::from_utf8_lossy(rest).into_owned(), TextEncoding::Utf8 { bom: true });
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        let (text, _) = encoding_rs::UTF_16LE.decode_without_bom_handling(rest);
        return (text.into_owned(), TextEncoding::Utf16Le);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        let (text, _) = encoding_rs::UTF_16BE.decode_without_bom_handling(rest);
        return (text.into_owned(), TextEncoding::Utf16Be);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), TextEncoding::Utf8 { bom: false }),
        Err(_) => {
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
            (text.into_owned(), TextEncoding::Windows1252)
        }
    }
}

/// Encodes `text` back into `encoding`. A value that windows-1252 cannot represent makes
/// the whole file UTF-8 (no BOM), as the reference falls back to UTF-8 rather than write
/// question marks.
pub fn encode(text: &str, encoding: TextEncoding) -> Vec<u8> {
    match encoding {
        TextEncoding::Utf8 { bom } => {
            let mut out = Vec::with_capacity(text.len() + 3);
            if bom {
                out.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
            }
            out.extend_from_slice(text.as_bytes());
            out
        }
        TextEncoding::Utf16Le => {
            let mut out = vec![0xFF, 0xFE];
            out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
            out
        }
        TextEncoding::Utf16Be => {
            let mut out = vec![0xFE, 0xFF];
            out.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
            out
        }
        TextEncoding::Windows1252 => {
            let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
            if unmappable { text.as_bytes().to_vec() } else { bytes.into_owned() }
        }
    }
}

/// The dominant line ending of `text`: `\r\n` when CRLF lines outnumber bare LF lines.
pub fn line_ending(text: &str) -> &'static str {
    let crlf = text.matches("\r\n").count();
    let lf = text.matches('\n').count() - crlf;
    if crlf > lf { "\r\n" } else { "\n" }
}

/// Rewrites every line break in `value` as `eol`.
pub fn with_line_ending(value: &str, eol: &str) -> String {
    if !value.contains(['\n', '\r']) {
        return value.to_string();
    }
    value.replace("\r\n", "\n").replace('\r', "\n").replace('\n', eol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_each_encoding() {
        let cases: [(&[u8], TextEncoding, &str); 5] = [
            (b"{\"a\":1}", TextEncoding::Utf8 { bom: false }, "{\"a\":1}"),
            (b"\xEF\xBB\xBF{}", TextEncoding::Utf8 { bom: true }, "{}"),
            (b"\xFF\xFE{\x00}\x00", TextEncoding::Utf16Le, "{}"),
            (b"\xFE\xFF\x00{\x00}", TextEncoding::Utf16Be, "{}"),
            (b"caf\xE9 \x80\x81", TextEncoding::Windows1252, "caf\u{e9} \u{20ac}\u{81}"),
        ];
        for (bytes, encoding, text) in cases {
            let (decoded, found) = decode(bytes);
            assert_eq!(found, encoding);
            assert_eq!(decoded, text);
            assert_eq!(encode(&decoded, found), bytes);
        }
    }

    #[test]
    fn windows_1252_falls_back_to_utf8() {
        assert_eq!(encode("\u{4e2d}", TextEncoding::Windows1252), "\u{4e2d}".as_bytes());
    }

    #[test]
    fn dominant_line_ending() {
        assert_eq!(line_ending("a\r\nb\r\nc\n"), "\r\n");
        assert_eq!(line_ending("a\nb\r\nc\n"), "\n");
        assert_eq!(with_line_ending("a\nb\r\nc", "\r\n"), "a\r\nb\r\nc");
    }
}
