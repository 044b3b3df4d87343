//! [`Matcher`]: finds the leftmost-longest occurrences of a set of patterns. Up to
//! [`AUTOMATON_MAX_PATTERNS`] patterns it is an Aho-Corasick automaton (the fastest scan);
//! beyond, building the automaton is what costs (about 8 s for the 1.2 million forms of
//! 200,000 secrets), so the set is a hash table instead: every position of the text is
//! looked up by its first bytes, and only candidates whose prefix matches are compared.
//! Building that takes one pass over the patterns.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// Up to this many patterns the automaton is a DFA: it scans every line Calamari prints
/// 2-3x faster than the default (measured in benches/scripts.rs), but costs more to build.
const DFA_MAX_PATTERNS: usize = 500;
/// Beyond this many patterns the set is hashed instead of compiled into an automaton.
pub(super) const AUTOMATON_MAX_PATTERNS: usize = 50_000;
/// Bytes of a pattern's start that key the hashed set (patterns are at least 3 bytes).
const KEY_LEN: usize = 4;

/// A compiled set of patterns.
#[derive(Debug, Clone)]
pub(super) enum Matcher {
    /// Aho-Corasick, leftmost-longest.
    Automaton(AhoCorasick),
    /// The hashed set.
    Hashed(Hashed),
}

/// Patterns keyed by their first bytes, each key listing the lengths of its patterns,
/// longest first.
#[derive(Debug, Clone, Default)]
pub(super) struct Hashed {
    starts: foldhash::HashMap<u32, Vec<usize>>,
    patterns: foldhash::HashSet<Box<[u8]>>,
}

fn key(bytes: &[u8]) -> u32 {
    // Shorter patterns (3 bytes) get a key of their own length, tagged so that it never
    // equals a 4-byte one by accident of padding; a clash would only cost a comparison.
    let mut k = [0u8; KEY_LEN];
    let n = bytes.len().min(KEY_LEN);
    k[..n].copy_from_slice(&bytes[..n]);
    u32::from_le_bytes(k) ^ ((n as u32) << 29)
}

impl Matcher {
    /// Compiles `patterns`; `None` when there are none.
    pub(super) fn build<'p>(patterns: impl ExactSizeIterator<Item = &'p [u8]> + Clone) -> Option<Matcher> {
        let count = patterns.len();
        if count == 0 {
            return None;
        }
        if count <= AUTOMATON_MAX_PATTERNS {
            let kind = if count <= DFA_MAX_PATTERNS { Some(AhoCorasickKind::DFA) } else { None };
            return AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(kind)
                .build(patterns)
                .ok()
                .map(Matcher::Automaton);
        }
        let mut hashed = Hashed::default();
        for pattern in patterns.filter(|p| !p.is_empty()) {
            if hashed.patterns.insert(pattern.into()) {
                let lengths = hashed.starts.entry(key(pattern)).or_default();
                if !lengths.contains(&pattern.len()) {
                    lengths.push(pattern.len());
                    lengths.sort_unstable_by(|a, b| b.cmp(a));
                }
            }
        }
        Some(Matcher::Hashed(hashed))
    }

    /// The leftmost-longest, non-overlapping matches in `text`, as byte ranges.
    pub(super) fn find_all(&self, text: &[u8]) -> Vec<(usize, usize)> {
        match self {
            Matcher::Automaton(ac) => ac.find_iter(text).map(|m| (m.start(), m.end())).collect(),
            Matcher::Hashed(h) => h.find_all(text, false),
        }
    }

    /// Whether `text` holds any pattern.
    pub(super) fn is_match(&self, text: &[u8]) -> bool {
        match self {
            Matcher::Automaton(ac) => ac.is_match(text),
            Matcher::Hashed(h) => !h.find_all(text, true).is_empty(),
        }
    }

    /// `text` with every match replaced by `mask`; `None` when nothing matched.
    pub(super) fn replace_all(&self, text: &str, mask: &str) -> Option<String> {
        let matches = self.find_all(text.as_bytes());
        if matches.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in matches {
            // Patterns are UTF-8, so a match starts and ends on character boundaries.
            out.push_str(&text[at..start]);
            out.push_str(mask);
            at = end;
        }
        out.push_str(&text[at..]);
        Some(out)
    }
}

impl Hashed {
    fn find_all(&self, text: &[u8], first_only: bool) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        'scan: while i < text.len() {
            for n in [KEY_LEN, 3] {
                if i + n > text.len() {
                    continue;
                }
                let Some(lengths) = self.starts.get(&key(&text[i..i + n])) else { continue };
                for &len in lengths {
                    if i + len <= text.len() && self.patterns.contains(&text[i..i + len]) {
                        out.push((i, i + len));
                        if first_only {
                            return out;
                        }
                        i += len;
                        continue 'scan;
                    }
                }
            }
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hashed set finds what the automaton finds, on the same leftmost-longest terms.
    #[test]
    fn hashed_agrees_with_the_automaton() {
        let patterns: Vec<&[u8]> = vec![b"abc", b"abcd", b"abcdef", b"xyz1", b"zzzz", b"bcde"];
        let automaton = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&patterns).unwrap();
        let mut hashed = Hashed::default();
        for p in &patterns {
            hashed.patterns.insert((*p).into());
            let lengths = hashed.starts.entry(key(p)).or_default();
            lengths.push(p.len());
            lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
        for text in ["", "ab", "abc", "xabcdefx", "abcdabc", "zzzzzzzz", "bcdeabcxyz1", "aabcde", "é abcd é"] {
            let want: Vec<(usize, usize)> =
                automaton.find_iter(text.as_bytes()).map(|m| (m.start(), m.end())).collect();
            assert_eq!(hashed.find_all(text.as_bytes(), false), want, "{text:?}");
        }
    }

    #[test]
    fn a_large_set_is_hashed_and_masks() {
        let values: Vec<String> = (0..AUTOMATON_MAX_PATTERNS + 10).map(|i| format!("secret-{i}-xyz")).collect();
        let matcher = Matcher::build(values.iter().map(String::as_bytes)).unwrap();
        assert!(matches!(matcher, Matcher::Hashed(_)));
        let masked = matcher.replace_all("a secret-17-xyz and secret-50005-xyz, secret-x", "***").unwrap();
        assert_eq!(masked, "a *** and ***, secret-x");
        assert!(!matcher.is_match(b"nothing here"));
    }
}
