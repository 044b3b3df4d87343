//! Names and paths of the install layout, and which strings may be versions or file paths.

use std::path::{Path, PathBuf};

use super::Error;

/// The directory under TentacleHome that holds one subdirectory per installed version.
pub(crate) const CALAMARI_DIR: &str = "Calamari";
/// The completeness marker, written last: an agent treats a version directory as installed only when it holds this file.
pub(crate) const SUCCESS_FILE: &str = "Success.txt";
/// The manifest inside every install and bundle.
pub(crate) const MANIFEST_FILE: &str = "manifest.json";
/// The lock file that serialises installs and prunes of one home (inside `Calamari/`).
pub(crate) const LOCK_FILE: &str = ".install.lock";
/// The executable's name inside an install.
pub(crate) const BINARY_NAME: &str = "calamari";
/// Prefix of staging directories (`.tmp-<version>-<random>`).
pub(crate) const TEMP_PREFIX: &str = ".tmp-";
/// Prefix of directories moved aside before deletion (`.old-<version>-<random>`).
pub(crate) const OLD_PREFIX: &str = ".old-";

/// Caps on what a bundle may hold, so a hostile bundle cannot fill the disk.
pub(crate) const MAX_FILES: usize = 10_000;
pub(crate) const MAX_TOTAL_BYTES: u64 = 4 << 30;
pub(crate) const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// `home/Calamari`.
pub(crate) fn calamari_dir(home: &Path) -> PathBuf {
    home.join(CALAMARI_DIR)
}

/// `home/Calamari/<version>`.
pub fn version_dir(home: &Path, version: &str) -> PathBuf {
    calamari_dir(home).join(version)
}

/// The platform an install or bundle is for, e.g. `linux-x86_64`.
pub(crate) fn platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// Checks that `version` can name a directory under `Calamari/`: 1-128 characters from
/// `A-Z a-z 0-9 . _ + -`, not starting with a dot (dot names are our temp directories).
///
/// # Errors
/// [`Error::InvalidVersion`] naming the version and the rule it breaks.
pub(crate) fn validate_version(version: &str) -> Result<(), Error> {
    let reason = if version.is_empty() {
        Some("it is empty")
    } else if version.len() > 128 {
        Some("it is longer than 128 characters")
    } else if version.starts_with('.') {
        Some("it starts with a dot")
    } else if !version.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-')) {
        Some("only letters, digits and . _ + - are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidVersion { version: version.to_string(), reason }),
        None => Ok(()),
    }
}

/// Checks a file path inside an install or bundle: relative, `/`-separated, every
/// component a plain name (no empty, `.`, `..`, backslash, NUL or control character).
pub(crate) fn validate_rel_path(path: &str) -> Result<(), UnsafePath> {
    let bad = |reason: &'static str| Err(UnsafePath { path: path.to_string(), reason });
    if path.is_empty() {
        return bad("empty");
    }
    if path.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return bad("absolute");
    }
    for component in path.split('/') {
        match component {
            "" => return bad("empty component"),
            "." | ".." => return bad("'.' or '..' component"),
            c if c.len() > 255 => return bad("component longer than 255 bytes"),
            c if c.chars().any(|ch| ch == '\\' || ch.is_control()) => return bad("backslash or control character"),
            _ => {}
        }
    }
    Ok(())
}

/// A file path that cannot be part of an install.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe path '{}': {reason}", path.escape_debug())]
pub(crate) struct UnsafePath {
    /// The path as given.
    pub path: String,
    /// The rule it breaks.
    pub reason: &'static str,
}

/// A fresh `<prefix><version>-<random>` name for a sibling of the version directories.
pub(crate) fn temp_name(prefix: &str, version: &str) -> String {
    format!("{prefix}{version}-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_that_can_be_directory_names() {
        for ok in ["1.2.3", "2024.1.12345", "1.0.0-beta.1+build.5", "v2_x"] {
            assert!(validate_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", ".tmp-1", "1/2", "a b", "1\\2", "ü", &"9".repeat(129)] {
            assert!(validate_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_paths_that_are_safe() {
        for ok in ["calamari", "lib/x.so", "a/b/c.txt", "..hidden"] {
            assert!(validate_rel_path(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a/", "a\\b", "a\nb", "a\0b"] {
            assert!(validate_rel_path(bad).is_err(), "{bad:?}");
        }
    }
}
