//! File globs as the reference's Globfish understands them: `*`, `**`, `?`, `{a,b}`,
//! `[...]`, relative to a base directory. Used by substitution targets, structured
//! configuration targets and purge exclusions.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

/// A compiled glob pattern.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    matcher: GlobMatcher,
}

/// An invalid pattern.
#[derive(Debug, thiserror::Error)]
#[error("invalid file pattern '{pattern}': {reason}")]
pub struct GlobError {
    /// The pattern as given.
    pub pattern: String,
    /// Why it is invalid.
    pub reason: String,
}

impl Glob {
    /// Compiles a pattern. Backslashes are treated as path separators (patterns written on
    /// Windows), and a leading `./` or `/` is ignored: patterns are relative to the base.
    ///
    /// # Errors
    /// [`GlobError`] for a malformed pattern (unclosed `[` or `{`).
    pub(crate) fn new(pattern: &str) -> Result<Glob, GlobError> {
        let normalised = pattern.trim().replace('\\', "/");
        let normalised = normalised.trim_start_matches("./").trim_start_matches('/');
        let matcher = GlobBuilder::new(normalised)
            .literal_separator(true)
            .backslash_escape(false)
            .build()
            .map_err(|e| GlobError { pattern: pattern.to_string(), reason: e.kind().to_string() })?
            .compile_matcher();
        Ok(Glob { matcher })
    }

    /// Whether a path relative to the base matches.
    pub(crate) fn is_match(&self, relative: &Path) -> bool {
        self.matcher.is_match(relative)
    }

    /// Every regular file under `base` whose relative path matches, sorted. Symbolic links
    /// are not followed, so a link planted in a package cannot lead outside it.
    pub(crate) fn find_files(&self, base: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = walkdir::WalkDir::new(base)
            .follow_links(false)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter(|e| e.path().strip_prefix(base).is_ok_and(|rel| self.is_match(rel)))
            .map(walkdir::DirEntry::into_path)
            .collect();
        found.sort();
        found
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests {
    use super::*;

    #[test]
    fn globfish_syntax() {
        let cases = [
            ("*.config", "web.config", true),
            ("*.config", "sub/web.config", false),
            ("**/*.config", "sub/deep/web.config", true),
            ("**/*.config", "web.config", true),
            ("config/?.json", "config/a.json", true),
            ("config/?.json", "config/ab.json", false),
            ("{a,b}.txt", "b.txt", true),
            ("[ab].txt", "c.txt", false),
            ("assets\\README.txt", "assets/README.txt", true),
            ("./web.config", "web.config", true),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(Glob::new(pattern).unwrap().is_match(Path::new(path)), expected, "{pattern} vs {path}");
        }
        assert!(Glob::new("[unclosed").is_err());
    }

    #[test]
    fn find_files_walks_relative_to_the_base() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["a.json", "sub/b.json", "sub/c.txt"] {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let found = Glob::new("**/*.json").unwrap().find_files(dir.path());
        let rel: Vec<_> = found.iter().map(|p| p.strip_prefix(dir.path()).unwrap().to_path_buf()).collect();
        assert_eq!(rel, [PathBuf::from("a.json"), PathBuf::from("sub/b.json")]);
    }
}
