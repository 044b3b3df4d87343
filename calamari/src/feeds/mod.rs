//! `calamari download-package`: fetch a package from a feed into the agent's package cache,
//! `$TentacleHome/Files/<feedId>/<cache name>` (the layout `find-package` reads), and
//! report it as the output variables `StagedPackage.Hash` (SHA-1), `StagedPackage.Size`
//! and `StagedPackage.FullPathOnRemoteMachine`.
//!
//! Feed types (`--feedType`, case-insensitive): `NuGet` (v3), `Maven`, `Helm`, `Npm`,
//! `PyPi`, and `Http` (a plain file URL). One file per type says how it finds the package
//! and which hash the feed publishes; that hash is checked while the file downloads, in
//! the same pass as the SHA-1. A failed attempt is retried `--attempts` times in all, the
//! n-th retry after n × `--attemptBackoffSeconds`.

mod cache;
mod error;
mod helm;
mod http;
pub(crate) use http::strip_credentials;
mod maven;
mod npm;
mod nuget;
mod pypi;
mod url;
mod verify;

use std::path::PathBuf;
use std::time::Duration;

pub use error::{Error, HashMismatch};

use crate::env_vars::{AgentEnvironment, TENTACLE_HOME};
use crate::outcome::UsageError;
use crate::package::name::version_format_letter;
use crate::version::Version;
use crate::{Log, Result};

/// What `download-package` was asked, as given on its command line.
#[derive(Debug, Clone, Default)]
pub struct DownloadPackageRequest {
    /// `--packageId` (`group:artifact` for Maven).
    pub package_id: Option<String>,
    /// `--packageVersion`.
    pub package_version: Option<String>,
    /// `--packageVersionFormat`: Semver (default), Maven, Octopus, Lexicographic, Docker.
    pub package_version_format: Option<String>,
    /// `--feedId`: names the cache directory `Files/<feedId>`.
    pub feed_id: Option<String>,
    /// `--feedUri`.
    pub feed_uri: Option<String>,
    /// `--feedType`: NuGet (default), Maven, Helm, Npm, PyPi, Http.
    pub feed_type: Option<String>,
    /// `--feedUsername`.
    pub feed_username: Option<String>,
    /// `--feedPassword` (or read from `--feedPasswordFile`).
    pub feed_password: Option<String>,
    /// `--attempts` (default 5).
    pub attempts: Option<String>,
    /// `--attemptBackoffSeconds` (default 10).
    pub attempt_backoff_seconds: Option<String>,
    /// `--forcePackageDownload`: download even when the cache has the package.
    pub force_package_download: bool,
}

/// A package in the cache after `download-package`: what an agent (or the retention
/// journal) records about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedPackage {
    /// The package id.
    pub package_id: String,
    /// The version, as asked for.
    pub version: String,
    /// `--feedId`.
    pub feed_id: String,
    /// The file in the cache.
    pub path: PathBuf,
    /// Its SHA-1, lowercase hex.
    pub hash: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether the file was already in the cache (nothing was downloaded).
    pub reused: bool,
}

/// The feed types this Calamari downloads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedType {
    /// NuGet v3: service index, registration, flat container.
    NuGet,
    /// A Maven repository.
    Maven,
    /// A Helm chart repository (`index.yaml`).
    Helm,
    /// An npm registry.
    Npm,
    /// A PyPI (simple) index.
    PyPi,
    /// A plain HTTP(S) file URL (`{packageId}`, `{packageVersion}` replaced).
    Http,
}

impl FeedType {
    /// Parses a `--feedType` value (case-insensitive).
    ///
    /// # Errors
    /// [`Error::UnsupportedFeedType`] for any other name (including the reference's
    /// Docker, S3, GitHub...).
    pub fn parse(name: &str) -> Result<FeedType, Error> {
        let all = [
            ("NuGet", FeedType::NuGet),
            ("Maven", FeedType::Maven),
            ("Helm", FeedType::Helm),
            ("Npm", FeedType::Npm),
            ("PyPi", FeedType::PyPi),
            ("Http", FeedType::Http),
        ];
        all.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, t)| *t)
            .ok_or_else(|| Error::UnsupportedFeedType { feed_type: name.to_string() })
    }
}

/// What errors name: the feed and the package.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) feed_id: String,
    /// `--feedUri` without credentials.
    pub(crate) feed_uri: String,
    pub(crate) package: String,
    pub(crate) version: String,
}

/// Where a feed says the package is, and the hash it publishes for it.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) url: String,
    /// Including the dot, e.g. `.nupkg`.
    pub(crate) extension: String,
    pub(crate) expected: Option<verify::Expected>,
}

fn required(value: Option<&String>, option: &'static str, message: &str) -> Result<String> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().to_string())
        .ok_or_else(|| UsageError::BadOption { option, message: message.to_string() }.into())
}

fn number(value: Option<&String>, default: u64, option: &'static str, message: impl Fn(&str) -> String) -> Result<u64> {
    match value.map(|v| v.trim()) {
        None | Some("") => Ok(default),
        Some(v) => v.parse::<u64>().map_err(|_| UsageError::BadOption { option, message: message(v) }.into()),
    }
}

/// Runs `download-package`: checks the options (with the reference's messages), reuses
/// a cached file or downloads one, and emits the `StagedPackage.*` output variables. The
/// feed password is masked in all output from the start.
///
/// # Errors
/// A missing or invalid option, an unsupported feed type, `TentacleHome` not set, or every
/// attempt failing ([`Error::Failed`], whose source is the last failure).
pub fn download_package(
    request: &DownloadPackageRequest,
    environment: &AgentEnvironment,
    log: &Log,
) -> Result<DownloadedPackage> {
    if let Some(password) = request.feed_password.as_deref().filter(|p| !p.is_empty()) {
        log.add_sensitive(password);
    }
    let feed_type = FeedType::parse(request.feed_type.as_deref().unwrap_or("NuGet"))?;
    let id = required(
        request.package_id.as_ref(),
        "--packageId",
        "No package ID was specified. Please pass --packageId YourPackage",
    )?;
    let version = required(
        request.package_version.as_ref(),
        "--packageVersion",
        "No package version was specified. Please pass --packageVersion 1.0.0.0",
    )?;
    let feed_id =
        required(request.feed_id.as_ref(), "--feedId", "No feed ID was specified. Please pass --feedId feed-id")?;
    let raw_uri = required(
        request.feed_uri.as_ref(),
        "--feedUri",
        "No feed URI was specified. Please pass --feedUri https://url/to/nuget/feed",
    )?;
    let format_name = request.package_version_format.as_deref().unwrap_or("Semver");
    let letter = version_format_letter(format_name.trim()).ok_or_else(|| UsageError::BadOption {
        option: "--packageVersionFormat",
        message: format!("The provided version format `{format_name}` is not recognised."),
    })?;
    if letter == 'S' && Version::parse(&version).is_none() {
        return Err(UsageError::BadOption {
            option: "--packageVersion",
            message: format!("Package version '{version}' specified is not a valid Semver version string"),
        }
        .into());
    }
    let (uri, uri_credentials) = http::split_credentials(&raw_uri);
    if !(uri.starts_with("http://") || uri.starts_with("https://")) || uri.len() <= "https://".len() {
        return Err(UsageError::BadOption {
            option: "--feedUri",
            message: format!("URI specified '{uri}' is not a valid URI"),
        }
        .into());
    }
    if let Some((_, password)) = &uri_credentials
        && !password.is_empty()
    {
        log.add_sensitive(password);
    }
    let username = request.feed_username.as_deref().filter(|u| !u.trim().is_empty());
    let password = request.feed_password.as_deref().filter(|p| !p.is_empty());
    if username.is_some() && password.is_none() {
        return Err(UsageError::BadOption {
            option: "--feedPassword",
            message: "A username was specified but no password was provided. Please pass --feedPassword \"FeedPassword\" (or --feedPasswordFile)".into(),
        }
        .into());
    }
    let attempts = number(request.attempts.as_ref(), 5, "--attempts", |v| {
        format!("The requested number of download attempts '{v}' is not a valid integer number")
    })?;
    if attempts == 0 {
        return Err(UsageError::BadOption {
            option: "--attempts",
            message: "The requested number of download attempts should be more than zero".into(),
        }
        .into());
    }
    let backoff = number(request.attempt_backoff_seconds.as_ref(), 10, "--attemptBackoffSeconds", |v| {
        format!("Retry requested download attempt retry backoff '{v}' is not a valid integer number of seconds")
    })?;
    let home = environment.tentacle_home().ok_or(UsageError::EnvironmentVariableNotSet(TENTACLE_HOME))?;
    let credentials = match (username, password) {
        (Some(u), Some(p)) => Some((u.to_string(), p.to_string())),
        _ => uri_credentials,
    };
    let target =
        Target { feed_id: feed_id.clone(), feed_uri: uri.clone(), package: id.clone(), version: version.clone() };
    let client = http::Http::new(target, credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str())), environment)?;
    let dir = home.join("Files").join(crate::package::name::escape(&feed_id));
    log.info(format!("Downloading package {id} v{version} from feed '{feed_id}': '{uri}'"));

    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
    let mut attempt = 1;
    let (file, reused) = loop {
        match attempt_once(&client, feed_type, &uri, &id, &version, letter, &dir, request.force_package_download, log) {
            Ok(done) => break done,
            Err(e) if attempt < attempts && e.is_transient() => {
                let wait = backoff.saturating_mul(u64::from(attempt));
                log.warn(format!(
                    "Attempt {attempt} of {attempts} to download package {id} v{version} failed: {}",
                    crate::outcome::chain(&e)
                ));
                log.verbose(format!("Waiting {wait}s before attempting the download from the external feed again."));
                std::thread::sleep(Duration::from_secs(wait));
                attempt += 1;
            }
            Err(e) => {
                // The feed cannot be reached (or keeps failing): a copy already in the cache
                // serves, as the reference's cache-first lookup would, with a warning that
                // its hash could not be checked against the feed this time.
                if e.is_unreachable()
                    && !request.force_package_download
                    && let Some(cached) = cache::find_cached(&dir, &id, &version, letter, None)?
                {
                    log.warn(format!(
                        "The feed '{feed_id}' could not be reached after {attempt} attempt(s) ({}): using the copy of {id} v{version} already in the package cache, whose hash could not be checked against the feed",
                        crate::outcome::chain(&e)
                    ));
                    break (cached, true);
                }
                return Err(Error::Failed {
                    package: id,
                    version,
                    feed_id,
                    feed_uri: uri,
                    attempts: attempt,
                    source: Box::new(e),
                }
                .into());
            }
        }
    };
    if reused {
        log.info(format!("Package {id} v{version} is already in the package cache: {}", file.path.display()));
    } else {
        log.verbose(format!("Package {id} v{version} successfully downloaded from feed: '{uri}'"));
    }
    log.output_variable("StagedPackage.Hash", &file.sha1, false);
    log.output_variable("StagedPackage.Size", &file.size.to_string(), false);
    log.output_variable("StagedPackage.FullPathOnRemoteMachine", &file.path.display().to_string(), false);
    Ok(DownloadedPackage {
        package_id: id,
        version,
        feed_id,
        path: file.path,
        hash: file.sha1,
        size: file.size,
        reused,
    })
}

#[allow(clippy::too_many_arguments, reason = "one attempt of the loop above, with everything it checked")]
fn attempt_once(
    http: &http::Http,
    feed_type: FeedType,
    uri: &str,
    id: &str,
    version: &str,
    letter: char,
    dir: &std::path::Path,
    force: bool,
    log: &Log,
) -> Result<(cache::CachedFile, bool), Error> {
    let resolved = match feed_type {
        FeedType::NuGet => nuget::resolve_package(http, uri, id, version)?,
        FeedType::Maven => maven::resolve_package(http, uri, id, version)?,
        FeedType::Helm => helm::resolve_package(http, uri, id, version)?,
        FeedType::Npm => npm::resolve_package(http, uri, id, version)?,
        FeedType::PyPi => pypi::resolve_package(http, uri, id, version)?,
        FeedType::Http => url::resolve_package(http, uri, id, version)?,
    };
    log.verbose(format!("Package {id} v{version} is at {}", http::strip_credentials(&resolved.url)));
    if force {
        log.verbose("--forcePackageDownload: not looking in the package cache");
    } else if let Some(cached) = cache::find_cached(dir, id, version, letter, resolved.expected.as_ref())? {
        return Ok((cached, true));
    }
    let file = cache::download(http, &resolved, dir, id, version, letter)?;
    Ok((file, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code_of;

    fn status(status: u16) -> Error {
        Error::Status {
            feed_id: "f".into(),
            feed_uri: "http://h/".into(),
            package: "A".into(),
            url: "http://h/A".into(),
            status,
        }
    }

    #[test]
    fn feed_failures_are_user_errors_and_only_transient_ones_are_retried() {
        assert!(status(503).is_transient() && status(429).is_transient() && status(408).is_transient());
        assert!(!status(404).is_transient() && !status(401).is_transient());
        let failed = Error::Failed {
            package: "A".into(),
            version: "1".into(),
            feed_id: "f".into(),
            feed_uri: "http://h/".into(),
            attempts: 5,
            source: Box::new(status(503)),
        };
        assert_eq!(code_of(&failed), 1);
        assert_eq!(code_of(&Error::UnsupportedFeedType { feed_type: "Docker".into() }), 1);
        let io = crate::fs::IoError { op: "write", path: "/x".into(), source: std::io::Error::other("disk") };
        assert_eq!(code_of(&Error::Io(io)), 100);
    }

    #[test]
    fn feed_types_parse_case_insensitively() {
        assert_eq!(FeedType::parse("nuget").ok(), Some(FeedType::NuGet));
        assert_eq!(FeedType::parse("PYPI").ok(), Some(FeedType::PyPi));
        assert!(matches!(FeedType::parse("Docker"), Err(Error::UnsupportedFeedType { .. })));
    }
}
