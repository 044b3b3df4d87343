//! Text encodings of the files Calamari rewrites (substitution, structured configuration),
//! detected as the reference's `EncodingDetectingFileReader` does: a BOM names the
//! encoding (UTF-8, UTF-16 LE/BE); without one the bytes are strict UTF-8, or else
//! windows-1252. Files are written back in the encoding and with the BOM they came in, so
//! only the replaced text changes on disk.
//!
//! Text the encoding cannot represent (a `我` in a windows-1252 file, or in a file whose
//! `OutputEncoding` names one) follows one rule for every rewriter, the reference's file
//! writer: try the file's encoding, and when a character does not fit, warn and write the
//! whole file as UTF-8 without a BOM ([`TextEncoding::encode_or_utf8`],
//! [`unrepresentable_warning`]). Question marks are never written.

use std::path::Path;

use encoding_rs::Encoding;

/// A character set a file can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charset {
    /// UTF-8.
    Utf8,
    /// UTF-16 little endian.
    Utf16Le,
    /// UTF-16 big endian.
    Utf16Be,
    /// 7-bit ASCII (written with windows-1252, refusing anything non-ASCII).
    Ascii,
    /// Any other single- or multi-byte encoding `encoding_rs` knows (windows-1252, ...).
    Other(&'static Encoding),
}

/// The encoding a file was read in (or is to be written in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TextEncoding {
    /// The character set.
    pub charset: Charset,
    /// Whether the file starts with a byte order mark.
    pub bom: bool,
}

impl TextEncoding {
    /// UTF-8 without a BOM.
    pub(crate) const UTF8: TextEncoding = TextEncoding { charset: Charset::Utf8, bom: false };

    /// The encoding named by a .NET encoding name (`utf-8`, `unicode`, `bigendianunicode`,
    /// `us-ascii`, `windows-1252`, ...), keeping `bom`; `None` for an unknown name.
    pub(crate) fn by_name(name: &str, bom: bool) -> Option<TextEncoding> {
        let n = name.trim().to_ascii_lowercase();
        let charset = match n.as_str() {
            "utf-8" | "utf8" => Charset::Utf8,
            "utf-16" | "utf-16le" | "unicode" => Charset::Utf16Le,
            "utf-16be" | "unicodefffe" | "bigendianunicode" => Charset::Utf16Be,
            "ascii" | "us-ascii" => Charset::Ascii,
            _ => match Encoding::for_label(n.as_bytes())? {
                e if e == encoding_rs::UTF_8 => Charset::Utf8,
                e if e == encoding_rs::UTF_16LE => Charset::Utf16Le,
                e if e == encoding_rs::UTF_16BE => Charset::Utf16Be,
                e if e == encoding_rs::REPLACEMENT => return None,
                e => Charset::Other(e),
            },
        };
        Some(TextEncoding { charset, bom })
    }

    /// `text` in this encoding (with the BOM when there was one); `None` when a character
    /// cannot be represented.
    pub(crate) fn encode(&self, text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(text.len() + 3);
        match self.charset {
            Charset::Utf8 => {
                if self.bom {
                    out.extend_from_slice(b"\xEF\xBB\xBF");
                }
                out.extend_from_slice(text.as_bytes());
            }
            Charset::Utf16Le => {
                if self.bom {
                    out.extend_from_slice(b"\xFF\xFE");
                }
                out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
            }
            Charset::Utf16Be => {
                if self.bom {
                    out.extend_from_slice(b"\xFE\xFF");
                }
                out.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
            }
            Charset::Ascii => {
                if !text.is_ascii() {
                    return None;
                }
                out.extend_from_slice(text.as_bytes());
            }
            Charset::Other(encoding) => {
                let (bytes, _, unmappable) = encoding.encode(text);
                if unmappable {
                    return None;
                }
                out.extend_from_slice(&bytes);
            }
        }
        Some(out)
    }
}

/// A text encoded for writing back ([`TextEncoding::encode_or_utf8`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Encoded {
    /// The bytes to write.
    pub bytes: Vec<u8>,
    /// Whether the requested encoding could not represent the text, so `bytes` are UTF-8
    /// without a BOM; the caller warns with [`unrepresentable_warning`].
    pub fell_back_to_utf8: bool,
}

impl TextEncoding {
    /// `text` in this encoding, or, when a character cannot be represented, in UTF-8
    /// without a BOM: the reference's writer tries the file's encoding and then a BOM-less
    /// UTF-8 encoder, whatever BOM the file had.
    pub(crate) fn encode_or_utf8(&self, text: &str) -> Encoded {
        match self.encode(text) {
            Some(bytes) => Encoded { bytes, fell_back_to_utf8: false },
            None => Encoded { bytes: text.as_bytes().to_vec(), fell_back_to_utf8: true },
        }
    }
}

/// The warning logged when a file's new text is written as UTF-8 because its encoding
/// cannot represent it.
pub(crate) fn unrepresentable_warning(path: &Path) -> String {
    format!(
        "The substituted text of '{}' cannot be represented in the output encoding; writing UTF-8 instead",
        path.display()
    )
}

/// Whether `bytes` start with a UTF-16 byte order mark (such text can hold `#{` without
/// the bytes `#{` appearing).
pub(crate) fn is_utf16(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF")
}

/// Decodes a file's bytes: the text (without BOM) and the encoding found.
pub(crate) fn decode(bytes: &[u8]) -> (String, TextEncoding) {
    let with = |charset, text: String| (text, TextEncoding { charset, bom: true });
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return with(Charset::Utf8, String::from_utf8_lossy(rest).into_owned());
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return with(Charset::Utf16Le, encoding_rs::UTF_16LE.decode_without_bom_handling(rest).0.into_owned());
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return with(Charset::Utf16Be, encoding_rs::UTF_16BE.decode_without_bom_handling(rest).0.into_owned());
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), TextEncoding::UTF8),
        Err(_) => (
            encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes).0.into_owned(),
            TextEncoding { charset: Charset::Other(encoding_rs::WINDOWS_1252), bom: false },
        ),
    }
}

/// Percent-decoding (`%20` -> space), the inverse of [`percent_encode`] (NuGet package
/// file and entry names); malformed escapes are kept as written and the bytes
/// are read as UTF-8 (lossily).
pub(crate) fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes `text` byte by byte (`%XX`, upper-case hex), keeping RFC 3986's
/// unreserved characters (letters, digits, `-._~`) and the bytes in `also_keep`: the one
/// percent-encoder of the crate (the masker's URL-encoded secrets keep none, the feeds' URL
/// path segments keep `+`).
pub(crate) fn percent_encode(text: &str, also_keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || also_keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_and_round_trip() {
        let utf16le: Vec<u8> =
            b"\xFF\xFE".iter().copied().chain("a=é".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let utf16be: Vec<u8> =
            b"\xFE\xFF".iter().copied().chain("a=é".encode_utf16().flat_map(u16::to_be_bytes)).collect();
        let cases: [(&[u8], &str, Charset, bool); 5] = [
            (b"\xEF\xBB\xBFa=\xC3\xA9", "a=é", Charset::Utf8, true),
            (b"a=\xC3\xA9", "a=é", Charset::Utf8, false),
            (&utf16le, "a=é", Charset::Utf16Le, true),
            (&utf16be, "a=é", Charset::Utf16Be, true),
            (b"a=\xE9", "a=é", Charset::Other(encoding_rs::WINDOWS_1252), false),
        ];
        for (bytes, text, charset, bom) in cases {
            let (decoded, encoding) = decode(bytes);
            assert_eq!((decoded.as_str(), encoding), (text, TextEncoding { charset, bom }), "{bytes:?}");
            assert_eq!(encoding.encode(&decoded).as_deref(), Some(bytes), "round trip of {bytes:?}");
        }
    }

    #[test]
    fn unrepresentable_text_falls_back_to_utf8_without_bom() {
        let w1252 = TextEncoding { charset: Charset::Other(encoding_rs::WINDOWS_1252), bom: true };
        let fits = w1252.encode_or_utf8("caf\u{e9}");
        assert_eq!(fits, Encoded { bytes: b"caf\xE9".to_vec(), fell_back_to_utf8: false });
        let ascii = TextEncoding::by_name("us-ascii", true).unwrap();
        for encoding in [w1252, ascii] {
            let out = encoding.encode_or_utf8("\u{6211} caf\u{e9}");
            assert_eq!(out, Encoded { bytes: "\u{6211} caf\u{e9}".as_bytes().to_vec(), fell_back_to_utf8: true });
        }
    }

    #[test]
    fn unrepresentable_text_and_names() {
        let (_, w1252) = decode(b"\xE9");
        assert_eq!(w1252.encode("snowman ☃"), None);
        assert_eq!(TextEncoding::by_name("us-ascii", false).unwrap().encode("é"), None);
        assert_eq!(TextEncoding::by_name("Unicode", true).unwrap().charset, Charset::Utf16Le);
        assert_eq!(TextEncoding::by_name("no-such-encoding", false), None);
    }
}
