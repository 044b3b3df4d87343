//! `manifest.json`: what an install or bundle holds, with sizes and SHA-256 hashes.
//!
//! ```json
//! {"format":1,"name":"Calamari","version":"0.1.0","platform":"linux-x86_64",
//!  "files":[{"path":"calamari","size":7750848,"sha256":"…","executable":true}]}
//! ```
//! The manifest does not list itself or `Success.txt`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::layout::{self, MANIFEST_FILE, MAX_FILES, MAX_TOTAL_BYTES, SUCCESS_FILE};

/// The manifest format this build writes and reads.
pub(crate) const MANIFEST_FORMAT: u32 = 1;
const NAME: &str = "Calamari";

/// The contents of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: u32,
    /// Always `Calamari`.
    pub name: String,
    /// The version, which names the install directory.
    pub version: String,
    /// The platform the files run on, as [`layout::platform`] gives it.
    pub platform: String,
    /// Every file of the install except `manifest.json` and `Success.txt`.
    pub files: Vec<ManifestFile>,
}

/// One file of an install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Relative `/`-separated path inside the version directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the contents.
    pub sha256: String,
    /// Installed with mode 0755 when true, else 0644.
    pub executable: bool,
}

impl Manifest {
    /// A manifest for this platform.
    pub fn new(version: &str, files: Vec<ManifestFile>) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            name: NAME.to_string(),
            version: version.to_string(),
            platform: layout::platform(),
            files,
        }
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest always serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Parses and [validates](Manifest::validate) `manifest.json`.
    ///
    /// # Errors
    /// [`ManifestError`] saying what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(ManifestError::NotJson)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks format, name, version, and that every file has a safe unique path, a
    /// plausible size and a 64-digit lower-case hex hash.
    ///
    /// # Errors
    /// [`ManifestError`] naming the field or file at fault.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.format != MANIFEST_FORMAT {
            return Err(ManifestError::Format(self.format));
        }
        if self.name != NAME {
            return Err(ManifestError::Name(self.name.clone()));
        }
        layout::validate_version(&self.version).map_err(|e| ManifestError::Version(Box::new(e)))?;
        if self.files.is_empty() {
            return Err(ManifestError::NoFiles);
        }
        if self.files.len() > MAX_FILES {
            return Err(ManifestError::TooManyFiles(self.files.len()));
        }
        let mut seen = HashSet::new();
        let mut total = 0u64;
        for file in &self.files {
            layout::validate_rel_path(&file.path)
                .map_err(|e| ManifestError::UnsafePath { path: e.path, reason: e.reason })?;
            if file.path == MANIFEST_FILE || file.path == SUCCESS_FILE {
                return Err(ManifestError::ReservedFile(file.path.clone()));
            }
            if !seen.insert(file.path.as_str()) {
                return Err(ManifestError::ListedTwice(file.path.clone()));
            }
            if file.sha256.len() != 64 || !file.sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(ManifestError::BadSha256 { path: file.path.clone(), sha256: file.sha256.clone() });
            }
            total = total.saturating_add(file.size);
        }
        if total > MAX_TOTAL_BYTES {
            return Err(ManifestError::TooManyBytes(total));
        }
        Ok(())
    }

    /// The entry for `path`.
    pub fn file(&self, path: &str) -> Option<&ManifestFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// What is wrong with a `manifest.json`; each message names the manifest and the field or
/// file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of a manifest's shape.
    #[error("{MANIFEST_FILE} is not a valid manifest: {0}")]
    NotJson(#[source] serde_json::Error),
    /// A format this Calamari does not read.
    #[error("{MANIFEST_FILE} has format {0}, this Calamari reads {MANIFEST_FORMAT}")]
    Format(u32),
    /// Not a Calamari manifest.
    #[error("{MANIFEST_FILE} names '{0}', expected '{NAME}'")]
    Name(String),
    /// The version is not one Calamari installs.
    #[error("{MANIFEST_FILE}: {0}")]
    Version(#[source] Box<super::Error>),
    /// No files at all.
    #[error("{MANIFEST_FILE} lists no files")]
    NoFiles,
    /// More files than an install may hold.
    #[error("{MANIFEST_FILE} lists {0} files, more than {MAX_FILES}")]
    TooManyFiles(usize),
    /// A file path that could climb out of the install.
    #[error("{MANIFEST_FILE}: unsafe path '{}': {reason}", path.escape_debug())]
    UnsafePath {
        /// The path as listed.
        path: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// `manifest.json` or `Success.txt` listed as a file.
    #[error("{MANIFEST_FILE} lists the reserved file '{0}'")]
    ReservedFile(String),
    /// A path listed twice.
    #[error("{MANIFEST_FILE} lists '{0}' twice")]
    ListedTwice(String),
    /// A hash that is not 64 lower-case hex digits.
    #[error("{MANIFEST_FILE}: file '{path}' has an invalid sha256 '{sha256}'")]
    BadSha256 {
        /// The file.
        path: String,
        /// Its hash as written.
        sha256: String,
    },
    /// More bytes than an install may hold.
    #[error("{MANIFEST_FILE} lists {0} bytes, more than {MAX_TOTAL_BYTES}")]
    TooManyBytes(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> ManifestFile {
        ManifestFile { path: path.to_string(), size: 1, sha256: "a".repeat(64), executable: false }
    }

    #[test]
    fn round_trips_and_validates() {
        let m = Manifest::new("1.2.3", vec![file("calamari"), file("lib/x")]);
        assert_eq!(Manifest::parse(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn rejects_what_would_be_unsafe_or_ambiguous() {
        let cases: Vec<(Manifest, &str)> = vec![
            (Manifest::new("1.0", vec![]), "no files"),
            (Manifest::new("../x", vec![file("a")]), "invalid Calamari version"),
            (Manifest::new("1.0", vec![file("../a")]), "unsafe path"),
            (Manifest::new("1.0", vec![file("a"), file("a")]), "twice"),
            (Manifest::new("1.0", vec![file("Success.txt")]), "reserved"),
            (Manifest::new("1.0", vec![ManifestFile { sha256: "XYZ".into(), ..file("a") }]), "invalid sha256"),
            (Manifest { format: 2, ..Manifest::new("1.0", vec![file("a")]) }, "format 2"),
        ];
        for (manifest, expected) in cases {
            let err = manifest.validate().unwrap_err();
            assert!(err.to_string().contains(expected), "{err} lacks {expected}");
        }
        assert!(Manifest::parse(b"{not json").unwrap_err().to_string().contains("not a valid manifest"));
    }
}
