//! The current link itself: reading it, switching it atomically, removing it.
//!
//! A switch creates a new symbolic link beside the current one (`.<name>.tmp-<random>`)
//! and renames it over the old one. `rename(2)` replaces the directory entry in one step,
//! so at every instant the path resolves either to the old release or to the new one, never
//! to nothing. A kill between the two calls leaves a stray temporary link beside it, which
//! the next deployment to that link removes ([`remove_stray_temporaries`]).

use std::path::{Path, PathBuf};

use super::Error;

/// What is at the link's path now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkState {
    /// Nothing: the first release.
    Missing,
    /// A symbolic link, and where it points.
    Link(PathBuf),
}

/// Reads the link's path; anything there that is not a symbolic link is an error naming it.
pub(crate) fn state(link: &Path) -> Result<LinkState, Error> {
    match crate::fs::symlink_metadata(link) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LinkState::Missing),
        Err(e) => Err(e.into()),
        Ok(m) if m.file_type().is_symlink() => Ok(LinkState::Link(crate::fs::read_link(link)?)),
        Ok(m) => {
            Err(Error::NotALink { path: link.to_path_buf(), what: if m.is_dir() { "a directory" } else { "a file" } })
        }
    }
}

/// The link's target made absolute (a relative target is relative to the link's directory).
pub(crate) fn absolute_target(link: &Path, target: &Path) -> PathBuf {
    if target.is_absolute() { target.to_path_buf() } else { link.parent().unwrap_or(Path::new("/")).join(target) }
}

fn temporary_prefix(link: &Path) -> String {
    format!(".{}.tmp-", link.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

/// Points `link` at `target` atomically (a new link beside it, renamed over it), then makes
/// the rename durable.
pub(crate) fn switch(link: &Path, target: &Path) -> Result<(), Error> {
    let parent = link.parent().ok_or_else(|| Error::LinkNotAbsolute(link.to_path_buf()))?;
    let suffix: u64 = rand::random();
    let temporary = parent.join(format!("{}{suffix:016x}", temporary_prefix(link)));
    crate::fs::symlink(target, &temporary)?;
    if let Err(e) = crate::fs::rename(&temporary, link) {
        let _ = crate::fs::remove_file(&temporary);
        return Err(e.into());
    }
    crate::fs::sync_parent(link)?;
    Ok(())
}

/// Removes the link (a first release that failed after its switch: nothing was current
/// before it).
pub(crate) fn remove(link: &Path) -> Result<(), Error> {
    match crate::fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => {
            crate::fs::remove_file(link)?;
            crate::fs::sync_parent(link)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Removes temporary links that a killed switch left beside `link`. Called with the link's
/// lock held, so no switch is in flight.
pub(crate) fn remove_stray_temporaries(link: &Path) {
    let (Some(parent), prefix) = (link.parent(), temporary_prefix(link)) else { return };
    let Ok(entries) = crate::fs::read_dir(parent) else { return };
    for entry in entries.filter_map(std::result::Result::ok) {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(&prefix) && entry.file_type().is_ok_and(|t| t.is_symlink()) {
            let _ = crate::fs::remove_file(entry.path());
        }
    }
}

/// Creates the link's directory when missing.
pub(crate) fn ensure_parent(link: &Path) -> Result<(), Error> {
    if let Some(parent) = link.parent() {
        crate::fs::create_dir_all(parent)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up files with std::fs directly
mod tests {
    use super::*;

    #[test]
    fn switch_replaces_the_link_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("current");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        assert_eq!(state(&link).unwrap(), LinkState::Missing);
        switch(&link, &a).unwrap();
        assert_eq!(state(&link).unwrap(), LinkState::Link(a.clone()));
        switch(&link, &b).unwrap();
        assert_eq!(state(&link).unwrap(), LinkState::Link(b));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        std::os::unix::fs::symlink(&a, dir.path().join(".current.tmp-dead")).unwrap();
        remove_stray_temporaries(&link);
        assert!(!dir.path().join(".current.tmp-dead").exists());
        remove(&link).unwrap();
        assert_eq!(state(&link).unwrap(), LinkState::Missing);
    }

    #[test]
    fn a_directory_at_the_link_path_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = state(dir.path()).unwrap_err();
        assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
        assert!(err.to_string().contains("a directory"), "{err}");
    }
}
