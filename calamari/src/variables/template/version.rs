//! Lenient version strings as Octopus.Versioning reads them (§6.6).

/// The parts of a version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Version {
    /// Major, minor, patch, revision (missing parts are `0`).
    pub numbers: [String; 4],
    /// The pre-release tag (`branch.1`), empty when none.
    pub pre_release: String,
    /// The pre-release up to its first `.`, `-` or `_`.
    pub pre_release_prefix: String,
    /// The pre-release after that separator.
    pub pre_release_counter: String,
    /// The `+metadata`, empty when none.
    pub metadata: String,
}

/// Parses leniently: never fails (a non-version is `0.0.0.0` with the text as pre-release).
pub fn parse(text: &str) -> Version {
    let mut v = Version { numbers: ["0", "0", "0", "0"].map(String::from), ..Version::default() };
    let mut rest = text.trim();
    if rest.len() > 1 && rest.starts_with(['v', 'V']) && rest.as_bytes()[1].is_ascii_digit() {
        rest = &rest[1..];
    }
    let mut count = 0;
    while count < 4 {
        let body = if count == 0 { rest } else { rest.strip_prefix('.').unwrap_or("") };
        let digits = body.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            break;
        }
        let n = &body[..digits];
        v.numbers[count] = n.trim_start_matches('0').to_string();
        if v.numbers[count].is_empty() {
            v.numbers[count] = "0".into();
        }
        rest = &body[digits..];
        count += 1;
    }
    let (pre, meta) = match rest.find('+') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    v.metadata = meta.to_string();
    let pre = if count > 0 { pre.strip_prefix(['-', '.', '_']).unwrap_or(pre) } else { pre };
    v.pre_release = pre.to_string();
    match pre.find(['.', '-', '_']) {
        Some(i) => {
            v.pre_release_prefix = pre[..i].to_string();
            v.pre_release_counter = pre[i + 1..].to_string();
        }
        None => v.pre_release_prefix = pre.to_string(),
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let v = parse("V1.2.3.4-branch.hithere+meta");
        assert_eq!(v.numbers, ["1", "2", "3", "4"]);
        assert_eq!((v.pre_release.as_str(), v.pre_release_prefix.as_str()), ("branch.hithere", "branch"));
        assert_eq!((v.pre_release_counter.as_str(), v.metadata.as_str()), ("hithere", "meta"));
        let v = parse("19.0.0.Final");
        assert_eq!((v.numbers[0].as_str(), v.pre_release.as_str()), ("19", "Final"));
        let v = parse("latest");
        assert_eq!((v.numbers[1].as_str(), v.pre_release_prefix.as_str()), ("0", "latest"));
    }
}
