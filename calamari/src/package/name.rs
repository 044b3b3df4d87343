//! Package file names: the cache form `Id@SVersion@HEX.ext` that Octopus
//! and Calamari write, and the legacy form `Id.Version.ext`. For a `.nupkg` that exists,
//! the id and version inside its `.nuspec` win over the file name.

use std::path::Path;

use super::Error;
use crate::text_encoding::percent_decode as unescape;
use crate::version::Version;

/// Extensions we recognise, longest first so `.tar.gz` wins over `.gz`.
pub(crate) const EXTENSIONS: &[&str] = &[
    ".tar.bz2", ".tar.zst", ".tar.gz", ".tar.bz", ".tar.xz", ".tar.Z", ".nupkg", ".tbz", ".tgz", ".txz", ".tzst",
    ".zip", ".whl", ".jar", ".war", ".ear", ".tar",
];

/// A package's id and version, and how they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageIdentity {
    /// The package id, e.g. `Acme.Web`.
    pub id: String,
    /// The version (from the nuspec for a `.nupkg`).
    pub version: Version,
    /// The version as written in the file name (differs from `version` when the nuspec says otherwise).
    pub file_version: Option<Version>,
    /// The extension including its dot, as written, e.g. `.tar.gz`.
    pub extension: String,
    /// The version format letter of a cache name (`S`, `M`, `O`, `L`); `S` for legacy names.
    pub version_format: char,
}

impl PackageIdentity {
    /// Reads the identity from a package file name; for an existing `.nupkg` the nuspec
    /// inside supplies the id and version.
    ///
    /// # Errors
    /// When the name has no known extension or is neither a cache nor a legacy name.
    pub fn from_file(path: &Path) -> Result<PackageIdentity, Error> {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::NotAPackageFileName { path: path.to_path_buf() })?;
        let mut identity = parse_file_name(file_name)?;
        if identity.extension.eq_ignore_ascii_case(".nupkg")
            && path.is_file()
            && let Some((id, version)) = super::zip::read_nuspec_identity(path)?
        {
            identity.file_version = Some(identity.version.clone());
            identity.id = id;
            identity.version = version;
        }
        Ok(identity)
    }

    /// The name of the version format, as `find-package` reports it.
    pub fn version_format_name(&self) -> &'static str {
        match self.version_format {
            'M' => "Maven",
            'O' => "Octopus",
            'L' => "Lexicographic",
            'D' => "Docker",
            _ => "Semver",
        }
    }
}

/// The version format letter of a cache name for a `--packageVersionFormat` value
/// (case-insensitive): `S` Semver, `M` Maven, `O` Octopus, `L` Lexicographic, `D` Docker;
/// `None` for any other name.
pub(crate) fn version_format_letter(format: &str) -> Option<char> {
    ["Semver", "Maven", "Octopus", "Lexicographic", "Docker"]
        .iter()
        .find(|name| name.eq_ignore_ascii_case(format))
        .and_then(|name| name.chars().next())
}

/// The cache name the reference writes for a package it stores:
/// `<escaped id>@<format letter><escaped version>@<32 uppercase hex><extension>`, the hex
/// part fresh each time (the reference uses a new GUID), so two downloads of one version
/// never collide. `find-package` and [`parse_file_name`] read it back.
pub(crate) fn cached_file_name(id: &str, version: &str, version_format: char, extension: &str) -> String {
    let buster: [u8; 16] = rand::random();
    format!("{}@{version_format}{}@{}{extension}", escape(id), escape(version), hex::encode_upper(buster))
}

/// Splits a known extension off `name` (case-insensitive): `("Acme.1.0.0", ".tar.gz")`.
pub(crate) fn split_extension(name: &str) -> Option<(&str, &str)> {
    let lower = name.to_ascii_lowercase();
    EXTENSIONS
        .iter()
        .find(|ext| lower.ends_with(&ext.to_ascii_lowercase()) && name.len() > ext.len())
        .map(|ext| name.split_at(name.len() - ext.len()))
}

/// Parses a cache name or a legacy name (no file access).
///
/// # Errors
/// When the extension is missing or unknown, or the name holds no version.
pub(crate) fn parse_file_name(file_name: &str) -> Result<PackageIdentity, Error> {
    let Some((stem, extension)) = split_extension(file_name) else {
        return Err(match Path::new(file_name).extension() {
            None => Error::MissingExtension { path: file_name.into() },
            Some(ext) => Error::UnsupportedNameExtension {
                file_name: file_name.to_string(),
                extension: ext.to_string_lossy().into_owned(),
            },
        });
    };
    if let Some(identity) = parse_cache_name(stem, extension) {
        return Ok(identity);
    }
    parse_legacy_name(stem, extension).ok_or_else(|| Error::NoIdentityInFileName {
        file_name: file_name.to_string(),
        extension: extension.to_string(),
    })
}

fn parse_cache_name(stem: &str, extension: &str) -> Option<PackageIdentity> {
    let mut pieces = stem.split('@');
    let (id, version, buster) = (pieces.next()?, pieces.next()?, pieces.next()?);
    if pieces.next().is_some() || id.is_empty() || buster.is_empty() {
        return None;
    }
    if !buster.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut chars = version.chars();
    let format = chars.next()?;
    if !matches!(format, 'S' | 'M' | 'O' | 'L' | 'D') {
        return None;
    }
    let version = Version::parse(&unescape(chars.as_str()))?;
    Some(PackageIdentity {
        id: unescape(id),
        version,
        file_version: None,
        extension: extension.to_string(),
        version_format: format,
    })
}

/// The legacy `Id.Version` stem: the id is the shortest `\w+([_.-]\w+)*` prefix followed by
/// `.` and a version that runs to the end (the reference's lazy regex).
fn parse_legacy_name(stem: &str, extension: &str) -> Option<PackageIdentity> {
    for (dot, _) in stem.match_indices('.') {
        let (id, version) = (&stem[..dot], &stem[dot + 1..]);
        if !version.starts_with(|c: char| c.is_ascii_digit()) || !is_legacy_id(id) {
            continue;
        }
        if let Some(version) = Version::parse(version) {
            return Some(PackageIdentity {
                id: id.to_string(),
                version,
                file_version: None,
                extension: extension.to_string(),
                version_format: 'S',
            });
        }
    }
    None
}

fn is_legacy_id(id: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    !id.is_empty()
        && id.starts_with(word)
        && id.ends_with(word)
        && id.chars().all(|c| word(c) || matches!(c, '.' | '-'))
        && !id.contains("..")
        && !id.contains("--")
        && !id.contains(".-")
        && !id.contains("-.")
}

/// The reference's `FileNameEscaper`: percent-encode `% < > : " / \ | ? @` (not `+`).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '@') {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_file_name_reads_back_and_is_fresh_each_time() {
        let a = cached_file_name("Acme:Web", "1.0.0-beta+5", 'M', ".tar.gz");
        let b = cached_file_name("Acme:Web", "1.0.0-beta+5", 'M', ".tar.gz");
        assert_ne!(a, b);
        assert!(a.starts_with("Acme%3AWeb@M1.0.0-beta+5@") && a.ends_with(".tar.gz"), "{a}");
        let buster = &a["Acme%3AWeb@M1.0.0-beta+5@".len()..a.len() - ".tar.gz".len()];
        assert!(buster.len() == 32 && buster.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()), "{a}");
        let parsed = parse_file_name(&a).unwrap();
        assert_eq!(
            (parsed.id.as_str(), parsed.version_format, parsed.extension.as_str()),
            ("Acme:Web", 'M', ".tar.gz")
        );
        assert_eq!(version_format_letter("maven"), Some('M'));
        assert_eq!(version_format_letter("Lexicographic"), Some('L'));
        assert_eq!(version_format_letter("Nuget"), None);
    }

    #[test]
    fn parses_legacy_names() {
        let cases = [
            ("Acme.Core.1.0.0.0-bugfix.nupkg", "Acme.Core", "1.0.0-bugfix", ".nupkg"),
            ("Acme.Core.1.0.01.nupkg", "Acme.Core", "1.0.1", ".nupkg"),
            ("Acme.Core.1.0.1+ace8cda.nupkg", "Acme.Core", "1.0.1", ".nupkg"),
            ("Acme.Core.1.0.0.0-bugfix.tar.gz", "Acme.Core", "1.0.0-bugfix", ".tar.gz"),
            ("Acme.Core.1.0.0.0-bugfix.TAR.BZ2", "Acme.Core", "1.0.0-bugfix", ".TAR.BZ2"),
            ("example.0.0.1.tgz", "example", "0.0.1", ".tgz"),
            ("My_App-web.2.3.zip", "My_App-web", "2.3.0", ".zip"),
            ("utf8.Filenames-1.0.0.zip", "utf8.Filenames-1", "0.0.0", ".zip"),
            ("App.1.2.3.4.tar.zst", "App", "1.2.3.4", ".tar.zst"),
        ];
        for (name, id, version, ext) in cases {
            let p = parse_file_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((p.id.as_str(), p.version.to_string().as_str(), p.extension.as_str()), (id, version, ext));
            assert_eq!(p.version_format, 'S');
        }
    }

    #[test]
    fn parses_cache_names() {
        let p = parse_file_name("Acme.Web@S1.0.0-beta%2B1@3F2A00000000000000000000000000AB.nupkg").unwrap();
        assert_eq!(p.id, "Acme.Web");
        assert_eq!(p.version.to_full_string(), "1.0.0-beta+1");
        assert_eq!(p.extension, ".nupkg");
        let p = parse_file_name("a%40b@M2.0@ABCDEF.tar.gz").unwrap();
        assert_eq!((p.id.as_str(), p.version_format, p.version_format_name()), ("a@b", 'M', "Maven"));
    }

    #[test]
    fn reports_bad_names() {
        let e = parse_file_name("package").unwrap_err().to_string();
        assert!(e.contains("missing file extension"), "{e}");
        let e = parse_file_name("Acme.1.0.0.rar").unwrap_err().to_string();
        assert!(e.contains("Unsupported file extension `.rar`"), "{e}");
        let e = parse_file_name("Acme.zip").unwrap_err().to_string();
        assert!(e.contains("Unable to determine"), "{e}");
    }

    #[test]
    fn escapes_like_the_reference() {
        assert_eq!(escape("a<b>c:d\"e/f\\g|h?i@j%k+l"), "a%3Cb%3Ec%3Ad%22e%2Ff%5Cg%7Ch%3Fi%40j%25k+l");
        assert_eq!(unescape(&escape("a<b>c:d\"e/f\\g|h?i@j%k+l")), "a<b>c:d\"e/f\\g|h?i@j%k+l");
        assert_eq!(unescape("my%20resource.txt"), "my resource.txt");
        assert_eq!(unescape("100%"), "100%");
        assert_eq!(unescape("%zz%4"), "%zz%4");
    }
}
