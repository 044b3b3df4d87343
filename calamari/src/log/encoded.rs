//! Encoded forms of sensitive values that the [`Masker`](super::Masker) finds in the shape a
//! whole printed line takes, rather than by exact match: wrapped base64 and hex dumps.
//!
//! Output is masked line by line, so an encoder that wraps its output (`base64` at 76
//! columns, `openssl base64` at 64, `xxd -p` at 60 hex characters, `od`/`hexdump` at 16
//! bytes) prints a long value, or one inside a longer stream, in pieces no whole-value
//! pattern matches. A line of such output that lies inside the value's encoding always
//! contains one of a few fixed-size chunks of it, and a line where the value starts or
//! ends holds a prefix or suffix of it; a hit on either masks the whole base64 run, or the
//! whole hex dump from its first byte to the end of the line (the ASCII column included).
//!
//! Base64 fragments are patterns over the text (standard and URL-safe alphabets). Hex is
//! decoded instead: each run of hex digits, or group of 2- and 4-digit tokens separated by
//! one or two spaces, is turned back into bytes (in order, and with 4-digit words swapped
//! for little-endian `hexdump`/`od -x`) and scanned for pieces of the raw values, so every
//! case, spacing and grouping of every dump tool is one set of patterns.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Lines of multi-line values and base64 fragments shorter than this are not masked (kept
/// here, below the masker, so `encoded.rs` needs nothing from `masker.rs`).
pub(super) const MIN_FRAGMENT_LEN: usize = 4;
/// Base64 chunk length. Every line of a stream wrapped at 63 columns or more (76 for
/// `base64`, 64 for `openssl base64` and PEM) that lies inside the value's encoding
/// contains one whole chunk at a multiple of this length.
const WRAP_CHUNK: usize = 32;
/// The shortest prefix or suffix of a value's base64 that is masked where a wrapped line
/// starts or ends inside it (6 bytes of the value: shorter would hit unrelated base64).
const WRAP_EDGE: usize = 8;
/// The narrowest wrapped base64 line handled (`openssl base64`, PEM).
const MIN_WRAPPED_LINE: usize = 64;

/// Hex chunk length, in bytes of the value. Every dump line holds at least 16 bytes
/// (`od`, `hexdump`, `xxd`; `xxd -p` 30), so one that lies inside the value contains a chunk.
const HEX_CHUNK: usize = 8;
/// The shortest prefix or suffix of a value masked where a dump line starts or ends
/// inside it; values shorter than this are looked for whole.
const HEX_EDGE: usize = 4;
/// Decoded hex shorter than this cannot hold a value (`MIN_VALUE_LEN`) and is not scanned.
const HEX_MIN_BYTES: usize = 3;

/// The stable part of the value's base64 at each of the three byte offsets it can have in
/// a longer stream: the characters no neighbouring byte influences.
pub(super) fn base64_cores(value: &[u8]) -> Vec<String> {
    let mut out = Vec::with_capacity(3);
    for shift in 0..3usize {
        let mut bytes = vec![0u8; shift];
        bytes.extend_from_slice(value);
        let encoded = BASE64.encode(&bytes);
        let trimmed = encoded.trim_end_matches('=');
        let drop_front = [0, 2, 3][shift];
        let drop_back = usize::from(bytes.len() % 3 != 0);
        if trimmed.len() > drop_front + drop_back {
            out.push(trimmed[drop_front..trimmed.len() - drop_back].to_string());
        }
    }
    out
}

/// The URL-safe (`-_`) rendering of a standard base64 text, when it differs.
pub(super) fn url_safe(b64: &str) -> Option<String> {
    b64.contains(['+', '/']).then(|| b64.replace('+', "-").replace('/', "_"))
}

/// Pieces of the value's base64 (both alphabets) of which every wrapped line holding part
/// of the value contains one: the first and last [`WRAP_EDGE`] characters of each core and,
/// for cores longer than [`WRAP_CHUNK`], its chunks (the last one flush with the end).
pub(super) fn wrapped_fragments(cores: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for core in cores {
        let len = core.len();
        if len < WRAP_EDGE {
            continue;
        }
        out.push(core[..WRAP_EDGE].to_string());
        out.push(core[len - WRAP_EDGE..].to_string());
        if len > WRAP_CHUNK {
            for start in (0..=len - WRAP_CHUNK).step_by(WRAP_CHUNK) {
                out.push(core[start..start + WRAP_CHUNK].to_string());
            }
            out.push(core[len - WRAP_CHUNK..].to_string());
        }
    }
    let safe: Vec<String> = out.iter().filter_map(|f| url_safe(f)).collect();
    out.extend(safe);
    out
}

/// Pieces of the raw value of which every hex dump line holding part of it contains one
/// (after decoding): the value itself when short, else its first and last [`HEX_EDGE`]
/// bytes and, when a whole line can lie inside it, its [`HEX_CHUNK`]-byte chunks.
pub(super) fn hex_fragments(value: &[u8]) -> Vec<Vec<u8>> {
    let n = value.len();
    if n < HEX_EDGE {
        return vec![value.to_vec()];
    }
    let mut out = vec![value[..HEX_EDGE].to_vec(), value[n - HEX_EDGE..].to_vec()];
    if n > 2 * HEX_CHUNK {
        for start in (0..=n - HEX_CHUNK).step_by(HEX_CHUNK) {
            out.push(value[start..start + HEX_CHUNK].to_vec());
        }
        out.push(value[n - HEX_CHUNK..].to_vec());
    }
    out
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// Whether a line may hold a form the base64 automaton looks for: a run of base64 long
/// enough to be a wrapped line (every wrapped stream has one before or at the line that
/// needs it), or one with `-` or `_` (URL-safe). Lets most commands never build it.
pub(super) fn may_hold_encoded_base64(text: &str) -> bool {
    let mut run = 0;
    let mut url_safe = false;
    for &b in text.as_bytes() {
        if is_base64_char(b) {
            run += 1;
            url_safe |= matches!(b, b'-' | b'_');
            if run >= MIN_WRAPPED_LINE || (url_safe && run >= MIN_FRAGMENT_LEN) {
                return true;
            }
        } else {
            run = 0;
            url_safe = false;
        }
    }
    false
}

/// The whole base64 run (with up to two `=` of padding) around each of `hits`.
pub(super) fn base64_runs(text: &str, hits: impl Iterator<Item = (usize, usize)>, spans: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let mut last_end = 0;
    for (start, end) in hits {
        if start < last_end {
            continue; // inside the run already taken
        }
        let mut s = start;
        while s > 0 && is_base64_char(bytes[s - 1]) {
            s -= 1;
        }
        let mut e = end;
        while e < bytes.len() && is_base64_char(bytes[e]) {
            e += 1;
        }
        for _ in 0..2 {
            if bytes.get(e) == Some(&b'=') {
                e += 1;
            }
        }
        spans.push((s, e));
        last_end = e;
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

fn decode_pairs(digits: &[u8], out: &mut Vec<u8>) {
    for pair in digits.chunks_exact(2) {
        out.push(hex_value(pair[0]) << 4 | hex_value(pair[1]));
    }
}

/// Spans of `text` to mask because a hex rendering there decodes to bytes `hit` accepts:
/// a contiguous run of hex digits (`xxd -p`; decoded from either parity) masks the run, a
/// group of byte or word tokens (`od -tx1`, `hexdump -C`, `xxd`, `hexdump`) masks from the
/// group to the end of its line, where dump tools print the ASCII column.
pub(super) fn hex_spans(text: &str, mut hit: impl FnMut(&[u8]) -> bool, spans: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    // Maximal runs of hex digits.
    let mut tokens: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_hexdigit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
                i += 1;
            }
            tokens.push((start, i));
        } else {
            i += 1;
        }
    }
    let is_group_token = |(s, e): (usize, usize)| matches!(e - s, 2 | 4);
    let joined = |(_, e): (usize, usize), (s, _): (usize, usize)| {
        (1..=2).contains(&(s - e)) && bytes[e..s].iter().all(|&b| b == b' ')
    };
    let mut decoded = Vec::new();
    let mut t = 0;
    while t < tokens.len() {
        let token = tokens[t];
        if !is_group_token(token) {
            let digits = &bytes[token.0..token.1];
            if digits.len() >= 2 * HEX_MIN_BYTES {
                let found = (0..2).any(|parity| {
                    decoded.clear();
                    decode_pairs(&digits[parity..], &mut decoded);
                    hit(&decoded)
                });
                if found {
                    spans.push(token);
                }
            }
            t += 1;
            continue;
        }
        let mut last = t;
        while last + 1 < tokens.len() && is_group_token(tokens[last + 1]) && joined(tokens[last], tokens[last + 1]) {
            last += 1;
        }
        let group = &tokens[t..=last];
        let digits: usize = group.iter().map(|(s, e)| e - s).sum();
        if digits >= 2 * HEX_MIN_BYTES {
            let words = group.iter().any(|(s, e)| e - s == 4);
            let found = [false, true].into_iter().filter(|&swap| !swap || words).any(|swap| {
                decoded.clear();
                for &(s, e) in group {
                    let start = decoded.len();
                    decode_pairs(&bytes[s..e], &mut decoded);
                    if swap && e - s == 4 {
                        decoded[start..].reverse();
                    }
                }
                hit(&decoded)
            });
            if found {
                let line_end = text[token.0..].find('\n').map_or(text.len(), |p| token.0 + p);
                spans.push((token.0, line_end));
            }
        }
        t = last + 1;
    }
}

/// The JSON string body of a value with every character outside printable ASCII written as
/// `\uXXXX` (surrogate pairs beyond the BMP), as Python's `json.dumps` does by default;
/// `None` when that is not different from what `serde_json` writes.
pub(super) fn json_ascii(value: &str, upper: bool) -> Option<String> {
    if value.bytes().all(|b| b < 0x7f) {
        return None;
    }
    let mut out = String::with_capacity(value.len() * 2);
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    if upper {
                        out.push_str(&format!("\\u{unit:04X}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
        }
    }
    Some(out)
}
