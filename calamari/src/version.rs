//! Package versions as Octopus parses them: NuGet-flavoured SemVer 2 with
//! one to four numeric parts, leading zeros tolerated (`1.0.01` is `1.0.1`), an optional
//! pre-release tag and optional build metadata.
//!
//! [`Version`]'s `Display` is the normalised form the staging directory uses: at least
//! three parts, the fourth only when it is not zero, no leading zeros, the pre-release tag
//! and no metadata (NuGet's `ToNormalizedString`). [`Version::to_full_string`] adds the
//! metadata back. Ordering and equality ignore metadata and compare pre-release tags the
//! NuGet way (numeric identifiers numerically, others case-insensitively; a release is
//! newer than any of its pre-releases).
//!
//! This is the one version order of the crate: staging, templating and the self-install
//! listing all compare through [`Version`] (see [`compare_text`]).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// An Octopus/NuGet package version.
#[derive(Debug, Clone)]
pub struct Version {
    parts: [u64; 4],
    release: String,
    metadata: String,
}

impl Version {
    /// Parses `1`, `1.2`, `1.2.3`, `1.2.3.4`, each optionally followed by `-prerelease`
    /// and `+metadata`. Returns `None` when `text` is not such a version.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let (rest, metadata) = match text.split_once('+') {
            Some((r, m)) => {
                if !valid_label(m) {
                    return None;
                }
                (r, m)
            }
            None => (text, ""),
        };
        let (numbers, release) = match rest.split_once('-') {
            Some((n, r)) => {
                if !valid_label(r) {
                    return None;
                }
                (n, r)
            }
            None => (rest, ""),
        };
        let mut parts = [0u64; 4];
        for (count, piece) in numbers.split('.').enumerate() {
            if count == 4 || piece.is_empty() || !piece.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parts[count] = piece.parse().ok()?;
        }
        Some(Version { parts, release: release.to_string(), metadata: metadata.to_string() })
    }

    /// Major, minor, patch and revision.
    pub fn parts(&self) -> [u64; 4] {
        self.parts
    }

    /// The pre-release tag without its `-` (empty for a release).
    pub fn release(&self) -> &str {
        &self.release
    }

    /// The build metadata without its `+` (empty when none).
    pub fn metadata(&self) -> &str {
        &self.metadata
    }

    /// True for a pre-release version.
    pub fn is_prerelease(&self) -> bool {
        !self.release.is_empty()
    }

    /// The normalised form with the build metadata, e.g. `1.0.1+ace8cda`.
    pub fn to_full_string(&self) -> String {
        if self.metadata.is_empty() { self.to_string() } else { format!("{self}+{}", self.metadata) }
    }
}

/// Pre-release and metadata labels: dot-separated, non-empty identifiers of `[0-9A-Za-z-]`.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.split('.').all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [major, minor, patch, revision] = self.parts;
        write!(f, "{major}.{minor}.{patch}")?;
        if revision != 0 {
            write!(f, ".{revision}")?;
        }
        if !self.release.is_empty() {
            write!(f, "-{}", self.release)?;
        }
        Ok(())
    }
}

/// Text that is not a [`Version`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a valid version")]
pub struct ParseVersionError {
    /// The text as given.
    pub text: String,
}

impl std::str::FromStr for Version {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s).ok_or_else(|| ParseVersionError { text: s.to_string() })
    }
}

/// Compares two version texts by [`Version`]'s order; `None` when either is not a version.
#[cfg(test)]
pub(crate) fn compare_text(a: &str, b: &str) -> Option<Ordering> {
    Some(Version::parse(a)?.cmp(&Version::parse(b)?))
}

fn compare_release(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let xn = x.bytes().all(|c| c.is_ascii_digit());
                let yn = y.bytes().all(|c| c.is_ascii_digit());
                let order = match (xn, yn) {
                    (true, true) => {
                        let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                        x.len().cmp(&y.len()).then_with(|| x.cmp(y))
                    }
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts.cmp(&other.parts).then_with(|| compare_release(&self.release, &other.release))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts.hash(state);
        // Numeric identifiers compare by value, others case-insensitively: hash a form that
        // is equal exactly when `cmp` says Equal.
        for id in self.release.split('.').filter(|s| !s.is_empty()) {
            if id.bytes().all(|c| c.is_ascii_digit()) {
                id.trim_start_matches('0').hash(state);
            } else {
                id.to_ascii_lowercase().hash(state);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let cases = [
            ("1.0.0", "1.0.0", "1.0.0"),
            ("1.0.01", "1.0.1", "1.0.1"),
            ("1.0.0.0-bugfix", "1.0.0-bugfix", "1.0.0-bugfix"),
            ("1.2.3.4", "1.2.3.4", "1.2.3.4"),
            ("1.0.1+ace8cda", "1.0.1", "1.0.1+ace8cda"),
            ("2", "2.0.0", "2.0.0"),
            ("2.1", "2.1.0", "2.1.0"),
            ("0.0.1-beta.1+build.5", "0.0.1-beta.1", "0.0.1-beta.1+build.5"),
            ("01.002.0003", "1.2.3", "1.2.3"),
        ];
        for (input, normal, full) in cases {
            let v = Version::parse(input).unwrap_or_else(|| panic!("{input} parses"));
            assert_eq!(v.to_string(), normal, "{input}");
            assert_eq!(v.to_full_string(), full, "{input}");
        }
    }

    #[test]
    fn rejects_non_versions() {
        for bad in ["", "a", "1.", ".1", "1.2.3.4.5", "1.0-", "1.0+", "1.0-be ta", "1..2", "v1.0", "1.0-a..b", "-1"] {
            assert!(Version::parse(bad).is_none(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn orders_like_nuget() {
        let ordered = [
            "0.9",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.0.1",
            "1.0.1",
            "1.0.10",
            "1.1",
            "2.0.0",
        ];
        for pair in ordered.windows(2) {
            let (a, b) = (Version::parse(pair[0]).unwrap(), Version::parse(pair[1]).unwrap());
            assert!(a < b, "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(Version::parse("1.0.01").unwrap(), Version::parse("1.0.1.0").unwrap());
        assert_eq!(Version::parse("1.0.1+a").unwrap(), Version::parse("1.0.1+b").unwrap());
        assert_eq!(Version::parse("1.0.0-BETA").unwrap(), Version::parse("1.0.0-beta").unwrap());
    }

    #[test]
    fn ordering_table() {
        use Ordering::{Equal as Eq, Greater as Gt, Less as Lt};
        let table = [
            // Numeric parts compare as numbers; missing parts are zero.
            ("1.0.0", "1.0.0", Eq),
            ("1", "1.0.0.0", Eq),
            ("1.0.01", "1.0.1", Eq),
            ("1.2", "1.10", Lt),
            ("1.9.9.9", "2.0", Lt),
            ("1.0.0.1", "1.0.0", Gt),
            // A release is newer than its pre-releases, older than the next version's.
            ("1.0.0", "1.0.0-rc.1", Gt),
            ("1.0.1-alpha", "1.0.0", Gt),
            // Pre-release labels: case-insensitive.
            ("1.0.0-BETA", "1.0.0-beta", Eq),
            ("1.0.0-Alpha", "1.0.0-beta", Lt),
            ("1.0.0-alpha", "1.0.0-BETA", Lt),
            ("1.0.0-RC.1", "1.0.0-rc.2", Lt),
            // Numeric identifiers numerically, and below alphanumeric ones.
            ("1.0.0-beta.2", "1.0.0-beta.10", Lt),
            ("1.0.0-beta.010", "1.0.0-beta.10", Eq),
            ("1.0.0-1", "1.0.0-alpha", Lt),
            ("1.0.0-beta.1", "1.0.0-beta.a", Lt),
            // More identifiers after an equal prefix is newer.
            ("1.0.0-alpha", "1.0.0-alpha.1", Lt),
            // Build metadata is ignored.
            ("1.0.0+a", "1.0.0+b", Eq),
            ("1.0.0-rc+z", "1.0.0-rc+a", Eq),
            ("1.0.0+zzz", "1.0.1+aaa", Lt),
        ];
        for (a, b, want) in table {
            assert_eq!(compare_text(a, b), Some(want), "{a} vs {b}");
            assert_eq!(compare_text(b, a), Some(want.reverse()), "{b} vs {a}");
            let (va, vb) = (Version::parse(a).unwrap(), Version::parse(b).unwrap());
            assert_eq!(va == vb, want == Eq, "{a} == {b}");
            if want == Eq {
                use std::hash::BuildHasher;
                let state = std::collections::hash_map::RandomState::new();
                assert_eq!(state.hash_one(&va), state.hash_one(&vb), "equal versions hash alike: {a} {b}");
            }
        }
        assert_eq!(compare_text("1.0", "latest"), None);
    }

    #[test]
    fn from_str_error_names_the_text() {
        let e = "v1".parse::<Version>().unwrap_err();
        assert_eq!(e, ParseVersionError { text: "v1".to_string() });
        assert_eq!(e.to_string(), "'v1' is not a valid version");
    }
}
