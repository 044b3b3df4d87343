//! Version strings for the `Version*` filters, read leniently as Octopus.Versioning does.
//!
//! A text that is a package version (after an optional `v`) is read by
//! [`crate::version::Version`], the crate's one version grammar and order; anything else
//! is scanned leniently and never fails: leading numbers as far as they go, the rest as
//! pre-release and metadata (`19.0.0.Final`, `latest`).

/// The parts of a version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Version {
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

impl Version {
    #[cfg(test)]
    /// The package version these parts spell, when they are one; compare with its order.
    pub(crate) fn to_package_version(&self) -> Option<crate::version::Version> {
        let mut text = self.numbers.join(".");
        if !self.pre_release.is_empty() {
            text = format!("{text}-{}", self.pre_release);
        }
        if !self.metadata.is_empty() {
            text = format!("{text}+{}", self.metadata);
        }
        crate::version::Version::parse(&text)
    }
}

/// Parses leniently: never fails (a non-version is `0.0.0.0` with the text as pre-release).
pub(crate) fn parse(text: &str) -> Version {
    let mut rest = text.trim();
    if rest.len() > 1 && rest.starts_with(['v', 'V']) && rest.as_bytes()[1].is_ascii_digit() {
        rest = &rest[1..];
    }
    match crate::version::Version::parse(rest) {
        Some(strict) => from_package(&strict),
        None => lenient(rest),
    }
}

/// The parts of a package version.
fn from_package(strict: &crate::version::Version) -> Version {
    let mut v = Version {
        numbers: strict.parts().map(|n| n.to_string()),
        metadata: strict.metadata().to_string(),
        ..Version::default()
    };
    split_pre_release(&mut v, strict.release());
    v
}

/// Scans `rest` (trimmed, without its `v`): up to four dot-separated numbers, then the
/// pre-release up to a `+`, then metadata.
fn lenient(mut rest: &str) -> Version {
    let mut v = Version { numbers: ["0", "0", "0", "0"].map(String::from), ..Version::default() };
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
    split_pre_release(&mut v, pre);
    v
}

/// Sets the pre-release and its prefix and counter (split at the first `.`, `-` or `_`).
fn split_pre_release(v: &mut Version, pre: &str) {
    v.pre_release = pre.to_string();
    match pre.find(['.', '-', '_']) {
        Some(i) => {
            v.pre_release_prefix = pre[..i].to_string();
            v.pre_release_counter = pre[i + 1..].to_string();
        }
        None => v.pre_release_prefix = pre.to_string(),
    }
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

    #[test]
    fn package_versions_read_as_the_lenient_scan_reads_them() {
        for text in [
            "1",
            "1.2",
            "01.002.0003",
            "1.2.3.4",
            "1.0.0-beta",
            "1.0.0-Beta.2+build.7",
            "2.0-rc-1",
            "1.2.3--x",
            "1.2+meta",
            "0.0.1-a.b.c",
            " 3.1.4 ",
        ] {
            let rest = text.trim();
            assert!(crate::version::Version::parse(rest).is_some(), "{text} is a package version");
            assert_eq!(parse(text), lenient(rest), "{text}");
        }
    }

    #[test]
    fn parts_order_as_package_versions() {
        let older = parse("v1.0.0-BETA.2").to_package_version().unwrap();
        let newer = parse("1.0.0-beta.10").to_package_version().unwrap();
        assert!(older < newer);
        assert_eq!(parse("1.0.0-BETA").to_package_version(), parse("1.0.0-beta").to_package_version());
        let final_release = parse("19.0.0.Final").to_package_version().unwrap();
        assert_eq!(final_release.to_string(), "19.0.0-Final");
        assert!(parse("1.0-be ta").to_package_version().is_none());
    }
}
