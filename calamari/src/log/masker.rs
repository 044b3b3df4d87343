//! [`Masker`]: replaces every sensitive value Calamari knows with `********` in the text it
//! prints. Better than the reference, which masks only on the server.
//!
//! What is masked (see `docs/behaviour.md`, "Secrets in output"): the whole value, each line of a multi-line value (output
//! is processed line by line), and the base64 renderings of the value: the plain one and
//! the three offset-shifted ones with their unstable edge characters trimmed, so the value
//! is caught even in the middle of a longer base64 string; the JSON-escaped (also
//! `\uXXXX`, as Python writes non-ASCII) and URL-encoded forms when they differ from the
//! value (a script dumping JSON or a URL). Those are exact patterns, derived when a value is
//! added. URL-safe base64, the lines of wrapped base64 and hex dumps are found by scanning
//! base64 runs and decoded hex (`super::encoded`), with patterns derived from the values
//! the first time a line could hold such a form.

use std::borrow::Cow;

use std::sync::OnceLock;

use super::matcher::Matcher;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::encoded;

/// The text printed in place of a sensitive value.
pub(crate) const MASK: &str = "********";

/// Whole values shorter than this are not masked: masking `1` would destroy every log.
const MIN_VALUE_LEN: usize = 3;
use super::encoded::MIN_FRAGMENT_LEN;

/// Values longer than one line of `base64` output (57 bytes) also get the pieces of their
/// base64 that lines of a wrapped stream hold (see `encoded`). Shorter ones are caught when
/// a line holds them whole; deriving pieces for every value would multiply the patterns of
/// a deployment with many short secrets.
const WRAP_MIN_VALUE_LEN: usize = 58;

/// A set of sensitive values and the automata that find them.
#[derive(Debug, Default, Clone)]
pub struct Masker {
    /// Exact patterns, in the order registered, with a constant-time "already registered?"
    /// so that loading 200,000 sensitive variables is linear (foldhash, not SipHash: these
    /// are our own values, and SipHash was most of the load time).
    patterns: indexmap::IndexSet<String, foldhash::fast::RandomState>,
    /// The values themselves. The forms found by scanning base64 runs and hex dumps (see
    /// `encoded`) are derived from them when the first line that could hold such a form
    /// is masked: most commands print none, and loading stays as fast as before.
    values: Vec<String>,
    /// Built on first use after a change: registering many secrets one by one (as the CLI
    /// does when it loads the variables) must not rebuild the automaton each time.
    automaton: OnceLock<Option<Matcher>>,
    /// URL-safe base64 and pieces of wrapped base64: a hit masks the whole base64 run.
    base64_automaton: OnceLock<Option<Matcher>>,
    /// Pieces of the raw values, scanned for in decoded hex.
    hex_automaton: OnceLock<Option<Matcher>>,
}

impl Masker {
    /// An empty masker that changes nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sensitive value (and its derived forms). Returns whether anything was added.
    pub fn add(&mut self, value: &str) -> bool {
        let mut added = false;
        for pattern in derived_patterns(value) {
            added |= self.patterns.insert(pattern);
        }
        if !added {
            return false;
        }
        self.automaton = OnceLock::new();
        if value.len() >= MIN_VALUE_LEN {
            self.values.push(value.to_string());
            self.base64_automaton = OnceLock::new();
            self.hex_automaton = OnceLock::new();
        }
        true
    }

    /// Whether no value is registered.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The text with every sensitive value replaced by [`MASK`].
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.patterns.is_empty() {
            return Cow::Borrowed(text);
        }
        let automaton = self.automaton.get_or_init(|| Matcher::build(self.patterns.iter().map(String::as_bytes)));
        let text = match automaton.as_ref().and_then(|m| m.replace_all(text, MASK)) {
            Some(masked) => Cow::Owned(masked),
            None => Cow::Borrowed(text),
        };
        if self.values.is_empty() {
            return text;
        }
        let mut spans = Vec::new();
        let base64 = match self.base64_automaton.get() {
            Some(built) => built.as_ref(),
            None if encoded::may_hold_encoded_base64(&text) => {
                self.base64_automaton.get_or_init(|| build_base64(&self.values)).as_ref()
            }
            None => None,
        };
        if let Some(ac) = base64 {
            encoded::base64_runs(&text, ac.find_all(text.as_bytes()).into_iter(), &mut spans);
        }
        // Built on the first hex that decodes to a few bytes (a hash, a dump).
        let hex_hit = |decoded: &[u8]| {
            let hex = self.hex_automaton.get_or_init(|| {
                // Deduplicated: the prefixes of similar values are often the same, and
                // duplicate patterns make the build quadratic.
                let fragments: indexmap::IndexSet<Vec<u8>, foldhash::fast::RandomState> =
                    self.values.iter().flat_map(|v| encoded::hex_fragments(v.as_bytes())).collect();
                Matcher::build(fragments.iter().map(Vec::as_slice))
            });
            hex.as_ref().is_some_and(|ac| ac.is_match(decoded))
        };
        encoded::hex_spans(&text, hex_hit, &mut spans);
        if spans.is_empty() {
            return text;
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in spans {
            if end <= at {
                continue;
            }
            if start >= at {
                out.push_str(&text[at..start]);
                out.push_str(MASK);
            }
            at = end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }
}

/// The automaton of URL-safe renderings (whole and cores) of every value, and of the
/// wrapped-line pieces (both alphabets) of long ones.
fn build_base64(values: &[String]) -> Option<Matcher> {
    let mut patterns: indexmap::IndexSet<String, foldhash::fast::RandomState> = indexmap::IndexSet::default();
    for value in values {
        let cores = encoded::base64_cores(value.as_bytes());
        patterns.extend(encoded::url_safe(&BASE64.encode(value.as_bytes())));
        patterns.extend(cores.iter().filter(|c| c.len() >= MIN_FRAGMENT_LEN).filter_map(|c| encoded::url_safe(c)));
        if value.len() >= WRAP_MIN_VALUE_LEN {
            patterns.extend(encoded::wrapped_fragments(&cores));
        }
    }
    if patterns.is_empty() {
        return None;
    }
    Matcher::build(patterns.iter().map(String::as_bytes))
}

fn derived_patterns(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    if value.len() >= MIN_VALUE_LEN {
        out.push(value.to_string());
    }
    if value.contains('\n') {
        for line in value.split('\n') {
            let line = line.trim_end_matches('\r');
            if line.trim().len() >= MIN_FRAGMENT_LEN {
                out.push(line.to_string());
            }
        }
    }
    if value.len() >= MIN_VALUE_LEN {
        out.push(BASE64.encode(value.as_bytes()));
        // The value inside a longer base64 stream starts at one of three byte offsets
        // modulo 3: the stable core of each rendering (URL-safe ones: `build_base64`).
        for core in encoded::base64_cores(value.as_bytes()) {
            if core.len() >= MIN_FRAGMENT_LEN {
                out.push(core);
            }
        }
        if let Ok(json) = serde_json::to_string(value) {
            let inner = &json[1..json.len() - 1];
            if inner != value {
                out.push(inner.to_string());
            }
        }
        for upper in [false, true] {
            out.extend(encoded::json_ascii(value, upper));
        }
        let url = url_encode(value);
        if url != value {
            out.push(url);
        }
    }
    out.dedup();
    out
}

/// Percent-encoding of everything but RFC 3986 unreserved characters.
fn url_encode(value: &str) -> String {
    crate::text_encoding::percent_encode(value, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_whole_values_lines_and_base64_forms() {
        let mut m = Masker::new();
        m.add("s3cr3t-p@ss");
        m.add("-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----");
        let b64 = BASE64.encode("s3cr3t-p@ss");
        let cases = [
            ("password is s3cr3t-p@ss!", "password is ********!"),
            ("no secrets here", "no secrets here"),
            ("AAAABBBBCCCC", "********"),
            (b64.as_str(), "********"),
        ];
        for (input, expected) in cases {
            assert_eq!(m.mask(input), expected, "input {input:?}");
        }
        // Embedded at every offset inside a longer base64 stream.
        for prefix in ["", "x", "xy", "xyz"] {
            let encoded = BASE64.encode(format!("{prefix}s3cr3t-p@ss and more"));
            let masked = m.mask(&encoded);
            assert!(masked.contains(MASK), "prefix {prefix:?}: {encoded} -> {masked}");
        }
    }

    #[test]
    fn json_and_url_forms_are_masked() {
        let mut m = Masker::new();
        m.add("p@ss \"word\"/\n2");
        assert_eq!(m.mask(r#"{"pw":"p@ss \"word\"/\n2"}"#), r#"{"pw":"********"}"#);
        assert_eq!(m.mask("https://h/?pw=p%40ss%20%22word%22%2F%0A2&x=1"), "https://h/?pw=********&x=1");
    }

    proptest::proptest! {
        /// Whatever the secret and the text around it, the secret never comes out in clear,
        /// nor its base64 (alone, or inside a longer base64 stream for secrets of 8+ bytes).
        #[test]
        fn a_secret_never_survives(secret in "[ -~]{3,40}", before in "[ -~]{0,20}", after in "[ -~]{0,20}") {
            proptest::prop_assume!(!MASK.contains(&secret)); // "***" is in every mask
            let mut m = Masker::new();
            m.add(&secret);
            let line = format!("{before}{secret}{after}");
            let masked = m.mask(&line);
            proptest::prop_assert!(!masked.contains(&secret), "{line:?} -> {masked:?}");
            let encoded = BASE64.encode(secret.as_bytes());
            let masked = m.mask(&encoded);
            proptest::prop_assert!(!masked.contains(&encoded));
            // Inside a longer base64 stream only the stable core can be matched: too short
            // for secrets under 8 bytes (their fragments would mask ordinary text).
            if secret.len() >= 8 {
                let stream = BASE64.encode(format!("{before}{secret}{after}"));
                proptest::prop_assert!(m.mask(&stream).contains(MASK), "{stream}");
            }
        }
    }

    /// What `base64` prints: the encoding wrapped at `width` columns.
    fn wrapped(bytes: &[u8], width: usize) -> Vec<String> {
        BASE64.encode(bytes).as_bytes().chunks(width).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect()
    }

    /// A 100-byte secret with `+` and `/` in its base64.
    fn long_secret() -> String {
        let mut s = String::from("k3y>>>?");
        while s.len() < 100 {
            s.push_str(&format!("{}-~>?", s.len()));
        }
        s.truncate(100);
        s
    }

    /// Every line holding 8 or more stable base64 characters of `secret` (standard or
    /// URL-safe) is masked whole; shorter pieces (the tail of a last line) are left.
    fn assert_masked_where_held(m: &Masker, secret: &str, lines: &[String], what: &str) {
        let cores = crate::log::encoded::base64_cores(secret.as_bytes());
        let safe = |s: &str| s.replace('+', "-").replace('/', "_");
        for line in lines {
            let holds = cores.iter().any(|c| (0..=c.len() - 8).any(|i| safe(line).contains(&safe(&c[i..i + 8]))));
            let masked = m.mask(line);
            if holds {
                assert_eq!(masked, MASK, "{what}: line {line:?}");
            }
        }
    }

    #[test]
    fn wrapped_base64_lines_are_masked_whole_at_every_offset_and_width() {
        let secret = long_secret();
        let mut m = Masker::new();
        m.add(&secret);
        // Alone: every line of `printf %s secret | base64`, and `openssl base64` (64).
        for width in [76, 64] {
            assert_masked_where_held(&m, &secret, &wrapped(secret.as_bytes(), width), "alone");
        }
        // Inside a longer stream, at every byte offset: no line holding 8 or more base64
        // characters of the secret keeps any of them in clear.
        let filler: Vec<u8> = (0..200u32).map(|i| b"0123456789abcdefghij"[(i % 20) as usize]).collect();
        for offset in 0..60 {
            let mut stream = filler[..offset].to_vec();
            stream.extend_from_slice(secret.as_bytes());
            stream.extend_from_slice(&filler[..40]);
            assert_masked_where_held(&m, &secret, &wrapped(&stream, 76), &format!("offset {offset}"));
        }
        // Lines of unrelated base64 are left alone.
        for line in wrapped(&filler, 76) {
            assert_eq!(m.mask(&line), line);
        }
    }

    #[test]
    fn url_safe_base64_is_masked() {
        let secret = long_secret();
        let mut m = Masker::new();
        m.add(&secret);
        let safe = |s: &str| s.replace('+', "-").replace('/', "_");
        assert!(BASE64.encode(&secret).contains(['+', '/']));
        let lines: Vec<String> = wrapped(secret.as_bytes(), 76).iter().map(|l| safe(l)).collect();
        assert_masked_where_held(&m, &secret, &lines, "url-safe wrapped");
        // A short one, whole and inside a longer stream.
        let short = "s3c??>>?r3t";
        m.add(short);
        let encoded = safe(&BASE64.encode(short));
        assert!(encoded.contains(['-', '_']), "{encoded}");
        assert_eq!(m.mask(&format!("token={encoded}")), format!("token={MASK}"));
        let stream = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("ab{short}cd"));
        assert!(m.mask(&stream).contains(MASK), "{stream}");
    }

    fn hex(bytes: &[u8], upper: bool) -> String {
        bytes.iter().map(|b| if upper { format!("{b:02X}") } else { format!("{b:02x}") }).collect()
    }

    /// `od -An -tx1`: 16 bytes a line, each as ` xx`.
    fn od(bytes: &[u8]) -> Vec<String> {
        bytes.chunks(16).map(|c| c.iter().map(|b| format!(" {b:02x}")).collect()).collect()
    }

    /// `hexdump -C`: offset, two groups of 8 bytes, ASCII column.
    fn hexdump_c(bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, c) in bytes.chunks(16).enumerate() {
            let mut line = format!("{:08x} ", i * 16);
            for (j, b) in c.iter().enumerate() {
                line.push_str(if j == 8 { "  " } else { " " });
                line.push_str(&format!("{b:02x}"));
            }
            let ascii: String = c.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect();
            line.push_str(&format!("  |{ascii}|"));
            out.push(line);
        }
        out
    }

    /// `hexdump` without options: offset, eight little-endian 16-bit words.
    fn hexdump_words(bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, c) in bytes.chunks(16).enumerate() {
            let mut line = format!("{:07x}", i * 16);
            for w in c.chunks(2) {
                let word = u16::from(w[0]) | u16::from(*w.get(1).unwrap_or(&0)) << 8;
                line.push_str(&format!(" {word:04x}"));
            }
            out.push(line);
        }
        out
    }

    #[test]
    fn hex_dumps_are_masked_in_every_layout_and_case() {
        let secret = long_secret();
        let short = "pin-4711";
        let mut m = Masker::new();
        m.add(&secret);
        m.add(short);
        for value in [secret.as_str(), short] {
            let bytes = value.as_bytes();
            let xxd_p: Vec<String> =
                hex(bytes, false).as_bytes().chunks(60).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
            let xxd_pu: Vec<String> = xxd_p.iter().map(|l| l.to_uppercase()).collect();
            for (what, lines) in [
                ("xxd -p", xxd_p),
                ("xxd -p -u", xxd_pu),
                ("od -An -tx1", od(bytes)),
                ("hexdump -C", hexdump_c(bytes)),
                ("hexdump", hexdump_words(bytes)),
            ] {
                // The last line of a 100-byte value holds 4 or 10 bytes: masked too.
                for line in lines {
                    let masked = m.mask(&line);
                    // What is left is at most an offset column.
                    let rest = masked.replace(MASK, "");
                    assert!(
                        masked.contains(MASK) && rest.trim().len() <= 8,
                        "{what} {value:?}: {line:?} -> {masked:?}"
                    );
                    assert!(!masked.contains(&hex(&bytes[..4.min(bytes.len())], false)));
                }
            }
        }
        // Inside a longer stream at every offset: lines holding 4 or more of its bytes.
        let filler = b"The quick brown fox jumps over the lazy dog; ".repeat(4);
        for offset in 0..16 {
            let mut stream = filler[..offset].to_vec();
            stream.extend_from_slice(secret.as_bytes());
            stream.extend_from_slice(&filler[..20]);
            for line in hexdump_c(&stream) {
                let masked = m.mask(&line);
                let ascii = &line[line.find('|').unwrap() + 1..line.len() - 1];
                let holds = (0..=secret.len() - 4).any(|i| ascii.contains(&secret[i..i + 4]));
                if holds {
                    assert!(
                        masked.ends_with(MASK) && masked.len() <= 8 + 2 + MASK.len(),
                        "offset {offset}: {line} -> {masked}"
                    );
                }
            }
        }
        // Dumps of other data, hashes and ordinary words are left alone.
        for line in hexdump_c(&filler).into_iter().chain([
            "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            "a decade of cafe facade".into(),
        ]) {
            assert_eq!(m.mask(&line), line);
        }
    }

    #[test]
    fn json_unicode_escapes_are_masked() {
        let mut m = Masker::new();
        m.add("pässwörd-€-😀");
        // Python's json.dumps (ensure_ascii), and the same in upper-case hex.
        assert_eq!(m.mask(r#""p\u00e4ssw\u00f6rd-\u20ac-\ud83d\ude00""#), format!("\"{MASK}\""));
        assert_eq!(m.mask(r#"{"pw": "p\u00E4ssw\u00F6rd-\u20AC-\uD83D\uDE00"}"#), format!(r#"{{"pw": "{MASK}"}}"#));
        // ASCII values have no such form (and keep their usual JSON escape).
        assert_eq!(crate::log::encoded::json_ascii("plain \"quoted\"", false), None);
    }

    #[test]
    fn short_values_are_not_masked() {
        let mut m = Masker::new();
        m.add("1");
        assert!(m.is_empty());
        assert_eq!(m.mask("1 2 3"), "1 2 3");
    }
}
