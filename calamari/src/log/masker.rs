//! [`Masker`]: replaces every sensitive value Calamari knows with `********` in the text it
//! prints. Better than the reference, which masks only on the server.
//!
//! What is masked (see `docs/behaviour.md`, "Secrets in output"): the whole value, each line of a multi-line value (output
//! is processed line by line), and the base64 renderings of the value: the plain one and
//! the three offset-shifted ones with their unstable edge characters trimmed, so the value
//! is caught even in the middle of a longer base64 string; and the JSON-escaped and
//! URL-encoded forms when they differ from the value (a script dumping JSON or a URL).

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The text printed in place of a sensitive value.
pub(crate) const MASK: &str = "********";

/// Whole values shorter than this are not masked: masking `1` would destroy every log.
const MIN_VALUE_LEN: usize = 3;
/// Lines of multi-line values and base64 fragments shorter than this are not masked.
const MIN_FRAGMENT_LEN: usize = 4;

/// Up to this many patterns the automaton is a DFA (fast scans, slower builds).
const DFA_MAX_PATTERNS: usize = 500;

/// A set of sensitive values and the automaton that finds them.
#[derive(Debug, Default, Clone)]
pub struct Masker {
    /// In the order registered, with a constant-time "already registered?" so that loading
    /// 200,000 sensitive variables is linear (foldhash, not SipHash: these are our own
    /// values, and SipHash was most of the load time).
    patterns: indexmap::IndexSet<String, foldhash::fast::RandomState>,
    /// Built on first use after a change: registering many secrets one by one (as the CLI
    /// does when it loads the variables) must not rebuild the automaton each time.
    automaton: std::sync::OnceLock<Option<AhoCorasick>>,
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
        if added {
            self.automaton = std::sync::OnceLock::new();
        }
        added
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
        let automaton = self.automaton.get_or_init(|| {
            // A DFA scans every line Calamari prints 2-3x faster than the default
            // (measured in benches/scripts.rs); it costs more to build, so only for small sets.
            let kind = if self.patterns.len() <= DFA_MAX_PATTERNS { Some(AhoCorasickKind::DFA) } else { None };
            AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).kind(kind).build(self.patterns.iter()).ok()
        });
        match automaton {
            Some(ac) if ac.is_match(text) => Cow::Owned(ac.replace_all(text, &vec![MASK; self.patterns.len()])),
            _ => Cow::Borrowed(text),
        }
    }
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
        // modulo 3; render each and trim the characters the neighbours influence.
        for shift in 0..3usize {
            let mut bytes = vec![0u8; shift];
            bytes.extend_from_slice(value.as_bytes());
            let encoded = BASE64.encode(&bytes);
            let trimmed = encoded.trim_end_matches('=');
            let drop_front = [0, 2, 3][shift];
            let drop_back = usize::from(bytes.len() % 3 != 0);
            if trimmed.len() > drop_front + drop_back {
                let core = &trimmed[drop_front..trimmed.len() - drop_back];
                if core.len() >= MIN_FRAGMENT_LEN {
                    out.push(core.to_string());
                }
            }
        }
    }
    if value.len() >= MIN_VALUE_LEN {
        if let Ok(json) = serde_json::to_string(value) {
            let inner = &json[1..json.len() - 1];
            if inner != value {
                out.push(inner.to_string());
            }
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
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
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

    #[test]
    fn short_values_are_not_masked() {
        let mut m = Masker::new();
        m.add("1");
        assert!(m.is_empty());
        assert_eq!(m.mask("1 2 3"), "1 2 3");
    }
}
