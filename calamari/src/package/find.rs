//! `find-package`: is this exact package (id, version and SHA-1) already in the agent's
//! package cache (`$TentacleHome/Files`)? If not, which earlier versions are there, so the
//! server can send a delta (reference `FindPackageCommand`, `PackageStore`).

use std::path::{Path, PathBuf};

use crate::log::Level;
use crate::{Log, ServiceMessage};

use super::hash::hash_file;
use super::name::PackageIdentity;
use super::{Error, name};
use crate::version::Version;

/// Most earlier versions reported.
const NEAREST: usize = 5;

/// A package file in the cache.
#[derive(Debug, Clone)]
pub(crate) struct CachedPackage {
    /// Where it is.
    pub path: PathBuf,
    /// Its id and version.
    pub identity: PackageIdentity,
    /// Its SHA-1, lowercase hex.
    pub hash: String,
}

/// Every package file under `root` (recursively) whose id is `id` (case-insensitive).
/// Files whose names do not parse are ignored.
pub(crate) fn packages_with_id(root: &Path, id: &str) -> Vec<(PathBuf, PackageIdentity)> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false).into_iter().flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(file_name) = entry.file_name().to_str() else { continue };
        // Cheap filter on the name before opening anything.
        let Ok(by_name) = name::parse_file_name(file_name) else { continue };
        if !by_name.id.eq_ignore_ascii_case(id) && !file_name.to_ascii_lowercase().ends_with(".nupkg") {
            continue;
        }
        let Ok(identity) = PackageIdentity::from_file(entry.path()) else { continue };
        if identity.id.eq_ignore_ascii_case(id) {
            found.push((entry.path().to_path_buf(), identity));
        }
    }
    found
}

/// The result of a search.
#[derive(Debug, Clone)]
pub(crate) enum Found {
    /// The exact package.
    Exact(Box<CachedPackage>),
    /// Not there; up to five earlier versions, newest first.
    Earlier(Vec<CachedPackage>),
}

/// Searches `root` for `id` at `version` with SHA-1 `hash`.
///
/// # Errors
/// When a candidate file cannot be hashed.
pub(crate) fn find(root: &Path, id: &str, version: &Version, hash: &str) -> Result<Found, Error> {
    let mut candidates = packages_with_id(root, id);
    candidates.sort_by(|a, b| b.1.version.cmp(&a.1.version).then_with(|| a.0.cmp(&b.0)));
    for (path, identity) in &candidates {
        if identity.version == *version {
            let actual = hash_file(path)?.sha1;
            if actual.eq_ignore_ascii_case(hash.trim()) {
                return Ok(Found::Exact(Box::new(CachedPackage {
                    path: path.clone(),
                    identity: identity.clone(),
                    hash: actual,
                })));
            }
        }
    }
    let mut earlier = Vec::new();
    for (path, identity) in candidates.into_iter().filter(|(_, i)| i.version <= *version).take(NEAREST) {
        let hash = hash_file(&path)?.sha1;
        earlier.push(CachedPackage { path, identity, hash });
    }
    Ok(Found::Earlier(earlier))
}

/// The `foundPackage` service message.
pub(crate) fn found_package_message(package: &CachedPackage) -> ServiceMessage {
    ServiceMessage::new(crate::service_message::names::FOUND_PACKAGE)
        .with("id", package.identity.id.clone())
        .with("version", package.identity.version.to_full_string())
        .with("versionFormat", package.identity.version_format_name())
        .with("hash", package.hash.clone())
        .with("remotePath", package.path.to_string_lossy().into_owned())
        .with("fileExtension", package.identity.extension.clone())
}

/// Runs the search and logs what the reference logs: for an exact match
/// `calamari-found-package` and `foundPackage`; otherwise (unless `exact_only`) the
/// earlier versions, each as `foundPackage`.
///
/// # Errors
/// Hashing errors.
pub(crate) fn find_and_report(
    root: &Path,
    id: &str,
    version: &Version,
    hash: &str,
    exact_only: bool,
    log: &Log,
) -> Result<Found, Error> {
    let found = find(root, id, version, hash)?;
    match &found {
        Found::Exact(package) => {
            log.verbose(format!(
                "Package {} {} hash {} has already been uploaded",
                package.identity.id,
                package.identity.version.to_full_string(),
                package.hash
            ));
            log.service_message(
                Level::Verbose,
                &ServiceMessage::new(crate::service_message::names::CALAMARI_FOUND_PACKAGE),
            );
            log.service_message(Level::Verbose, &found_package_message(package));
        }
        Found::Earlier(earlier) => {
            log.verbose(format!(
                "Package {id} version {} hash {hash} has not been uploaded.",
                version.to_full_string()
            ));
            if exact_only {
                return Ok(Found::Earlier(Vec::new()));
            }
            log.verbose("Finding earlier packages that have been uploaded to this Tentacle.");
            if earlier.is_empty() {
                log.verbose(format!("No earlier packages for {id} has been uploaded"));
            } else {
                let noun = if earlier.len() == 1 { "version" } else { "versions" };
                log.verbose(format!("Found {} earlier {noun} of {id} on this Tentacle", earlier.len()));
                for package in earlier {
                    log.verbose(format!(
                        "  - {}: {}",
                        package.identity.version.to_full_string(),
                        package.path.display()
                    ));
                    log.service_message(Level::Verbose, &found_package_message(package));
                }
            }
        }
    }
    Ok(found)
}
