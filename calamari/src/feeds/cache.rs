//! The package cache side of `download-package`: `$TentacleHome/Files/<feedId>/<cache name>`
//! (the layout `find-package` reads), reuse of a file already there, and writing a new
//! one as `<name>.downloading`, fsync'd and renamed, so a crash or a failed check never
//! leaves a partial or unverified package under a package name.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::http::Http;
use super::verify::{self, Expected, Hasher};
use super::{Error, Resolved};
use crate::fs::IoContext as _;
use crate::package::name::{cached_file_name, parse_file_name};
use crate::version::Version;

/// The suffix of a download in progress (never a package name, so never found or reused).
pub(crate) const DOWNLOADING: &str = ".downloading";

/// A package file in the cache, with what we report about it.
#[derive(Debug, Clone)]
pub(crate) struct CachedFile {
    pub(crate) path: PathBuf,
    pub(crate) sha1: String,
    pub(crate) size: u64,
}

/// A file in `dir` for `id` at `version` (same version format) whose hash is `expected`
/// when the feed publishes one; the newest such file first.
///
/// # Errors
/// When a candidate cannot be read.
pub(crate) fn find_cached(
    dir: &Path,
    id: &str,
    version: &str,
    format: char,
    expected: Option<&Expected>,
) -> Result<Option<CachedFile>, Error> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let wanted = Version::parse(version);
    let mut candidates = Vec::new();
    for entry in crate::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        let Ok(identity) = parse_file_name(&name) else { continue };
        let same_version = match &wanted {
            Some(v) => identity.version == *v,
            None => identity.version.to_string() == version,
        };
        if identity.id.eq_ignore_ascii_case(id) && same_version && identity.version_format == format {
            let path = entry.path();
            let modified = crate::fs::metadata(&path)?.modified().ok();
            candidates.push((modified, path));
        }
    }
    candidates.sort_by(|a, b| b.cmp(a));
    for (_, path) in candidates {
        let digests = verify::hash_file(&path, expected)?;
        if let Some(e) = expected
            && digests.published.as_deref() != Some(&e.digest[..])
        {
            continue;
        }
        return Ok(Some(CachedFile { path, sha1: digests.sha1, size: digests.size }));
    }
    Ok(None)
}

/// Removes the partial download unless disarmed.
struct PartialGuard<'a>(Option<&'a Path>);

impl Drop for PartialGuard<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = crate::fs::remove_file(path);
        }
    }
}

/// Downloads `resolved` into `dir` under a fresh cache name, checking the published hash
/// in the same pass as the SHA-1.
///
/// # Errors
/// The request fails, the transfer breaks off, the hash differs (nothing is left behind),
/// or the cache cannot be written.
pub(crate) fn download(
    http: &Http,
    resolved: &Resolved,
    dir: &Path,
    id: &str,
    version: &str,
    format: char,
) -> Result<CachedFile, Error> {
    crate::fs::create_dir_all(dir)?;
    let name = cached_file_name(id, version, format, &resolved.extension);
    let path = dir.join(&name);
    let partial = dir.join(format!("{name}{DOWNLOADING}"));
    let response = http.get(&resolved.url)?;
    let file = crate::fs::create(&partial)?;
    let mut guard = PartialGuard(Some(&partial));
    let mut hasher = Hasher::new(resolved.expected.as_ref());
    let mut body = Http::body_reader(response);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, crate::fs::Writeback::new(&file));
    verify::copy_hashing(&mut body, &mut out, &mut hasher).map_err(|e| match e {
        Ok(net) => http.network(&resolved.url, net),
        Err(io) => Error::Io(crate::fs::IoError { op: "write", path: partial.clone(), source: io }),
    })?;
    out.flush().at("write", &partial)?;
    drop(out);
    let digests = hasher.finish(resolved.expected.as_ref());
    if let Some(expected) = &resolved.expected {
        let actual = digests.published.clone().unwrap_or_default();
        if actual != expected.digest {
            let t = &http.target;
            return Err(Error::HashMismatch(Box::new(super::error::HashMismatch {
                feed_id: t.feed_id.clone(),
                feed_uri: t.feed_uri.clone(),
                package: t.package.clone(),
                version: t.version.clone(),
                url: super::http::strip_credentials(&resolved.url),
                algorithm: expected.algorithm.name(),
                expected: expected.show(&expected.digest),
                actual: expected.show(&actual),
            })));
        }
    }
    file.sync_all().at("fsync", &partial)?;
    drop(file);
    crate::fs::rename(&partial, &path)?;
    guard.0 = None;
    crate::fs::sync_parent(&path)?;
    Ok(CachedFile { path, sha1: digests.sha1, size: digests.size })
}
