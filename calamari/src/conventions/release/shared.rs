//! Shared paths (`Calamari.Release.SharedPaths`): files and directories that outlive
//! releases (uploads, logs, a local configuration), kept in `<parent of the link>/shared/`
//! and linked into each release before its `PreDeploy` scripts run.

use std::path::{Component, Path, PathBuf};

use super::Error;
use crate::Log;

/// Parses the newline-separated list: blank lines are ignored; every path must be relative
/// and stay inside `shared/` (no `..`, no root, no `.`-only path).
pub(crate) fn parse(text: &str) -> Result<Vec<PathBuf>, Error> {
    let mut out: Vec<PathBuf> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = Path::new(line.trim_end_matches('/'));
        let mut clean = PathBuf::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => clean.push(part),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(Error::SharedPathEscapes(line.to_string()));
                }
            }
        }
        if clean.as_os_str().is_empty() {
            return Err(Error::SharedPathEscapes(line.to_string()));
        }
        if !out.contains(&clean) {
            out.push(clean);
        }
    }
    Ok(out)
}

/// Links every shared path into `release`. A package entry at a shared path is replaced by
/// the link, with a warning; when the shared copy does not exist yet, the package's entry
/// seeds it (moved into `shared/`), else an empty directory is created there.
pub(crate) fn link_into(release: &Path, shared_root: &Path, paths: &[PathBuf], log: &Log) -> Result<(), Error> {
    for rel in paths {
        let shared = shared_root.join(rel);
        let inside = release.join(rel);
        // A parent inside the release that is itself a link could lead the link elsewhere.
        if let Some(parent) = inside.parent() {
            refuse_links_between(release, parent, rel)?;
            crate::fs::create_dir_all(parent)?;
        }
        let in_package = crate::fs::symlink_metadata(&inside).ok();
        let shared_exists = crate::fs::symlink_metadata(&shared).is_ok();
        if let Some(parent) = shared.parent() {
            crate::fs::create_dir_all(parent)?;
        }
        match (in_package, shared_exists) {
            (Some(_), false) => {
                log.warn(format!(
                    "The package's '{}' is a shared path: it was moved to '{}' (the shared copy did not exist yet) and replaced by a link to it",
                    rel.display(),
                    shared.display()
                ));
                crate::fs::rename(&inside, &shared)?;
            }
            (Some(meta), true) => {
                log.warn(format!(
                    "The package's '{}' is replaced by a link to the shared '{}'",
                    rel.display(),
                    shared.display()
                ));
                if meta.is_dir() {
                    crate::fs::remove_dir_all(&inside)?;
                } else {
                    crate::fs::remove_file(&inside)?;
                }
            }
            (None, false) => crate::fs::create_dir_all(&shared)?,
            (None, true) => {}
        }
        crate::fs::symlink(&shared, &inside)?;
        log.verbose(format!("Linked '{}' to the shared '{}'", inside.display(), shared.display()));
    }
    Ok(())
}

/// Errors when a directory between `release` and `parent` is a symbolic link.
fn refuse_links_between(release: &Path, parent: &Path, rel: &Path) -> Result<(), Error> {
    let mut at = parent;
    while at != release && at.starts_with(release) {
        if crate::fs::symlink_metadata(at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::SharedPathThroughLink(rel.display().to_string()));
        }
        match at.parent() {
            Some(p) => at = p,
            None => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_and_stay_inside() {
        assert_eq!(
            parse("logs\n\n  config/app.ini \n./uploads/\nlogs").unwrap(),
            vec![PathBuf::from("logs"), PathBuf::from("config/app.ini"), PathBuf::from("uploads")]
        );
        for bad in ["../etc", "/etc/passwd", "a/../../b", ".", "a/.."] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad.trim()), "{bad}: {e}");
        }
    }
}
