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
    /// A message saying what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("{MANIFEST_FILE} is not a valid manifest: {e}"))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks format, name, version, and that every file has a safe unique path, a
    /// plausible size and a 64-digit lower-case hex hash.
    ///
    /// # Errors
    /// A message naming the field or file at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != MANIFEST_FORMAT {
            return Err(format!("{MANIFEST_FILE} has format {}, this Calamari reads {MANIFEST_FORMAT}", self.format));
        }
        if self.name != NAME {
            return Err(format!("{MANIFEST_FILE} names '{}', expected '{NAME}'", self.name));
        }
        layout::validate_version(&self.version).map_err(|e| format!("{MANIFEST_FILE}: {e}"))?;
        if self.files.is_empty() {
            return Err(format!("{MANIFEST_FILE} lists no files"));
        }
        if self.files.len() > MAX_FILES {
            return Err(format!("{MANIFEST_FILE} lists {} files, more than {MAX_FILES}", self.files.len()));
        }
        let mut seen = HashSet::new();
        let mut total = 0u64;
        for file in &self.files {
            layout::validate_rel_path(&file.path).map_err(|e| format!("{MANIFEST_FILE}: {e}"))?;
            if file.path == MANIFEST_FILE || file.path == SUCCESS_FILE {
                return Err(format!("{MANIFEST_FILE} lists the reserved file '{}'", file.path));
            }
            if !seen.insert(file.path.as_str()) {
                return Err(format!("{MANIFEST_FILE} lists '{}' twice", file.path));
            }
            if file.sha256.len() != 64 || !file.sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(format!("{MANIFEST_FILE}: file '{}' has an invalid sha256 '{}'", file.path, file.sha256));
            }
            total = total.saturating_add(file.size);
        }
        if total > MAX_TOTAL_BYTES {
            return Err(format!("{MANIFEST_FILE} lists {total} bytes, more than {MAX_TOTAL_BYTES}"));
        }
        Ok(())
    }

    /// The entry for `path`.
    pub fn file(&self, path: &str) -> Option<&ManifestFile> {
        self.files.iter().find(|f| f.path == path)
    }
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
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
        assert!(Manifest::parse(b"{not json").unwrap_err().contains("not a valid manifest"));
    }
}
