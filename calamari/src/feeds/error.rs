//! The errors of `download-package`. Every variant that comes from a feed names the feed
//! (its id and its URI, credentials stripped), and the package where one is being fetched.

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call in the package cache failed.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// `--feedType` names a type this Calamari cannot download from.
    #[error(
        "The feed type `{feed_type}` is not supported by download-package here. Supported feed types: NuGet, Maven, Helm, Npm, PyPi, Http."
    )]
    UnsupportedFeedType {
        /// The type as given.
        feed_type: String,
    },
    /// The feed answered with an HTTP status that is not success.
    #[error("feed '{feed_id}' ({feed_uri}) answered HTTP {status} for {url} (package {package})")]
    Status {
        /// `--feedId`.
        feed_id: String,
        /// `--feedUri`, credentials stripped.
        feed_uri: String,
        /// The package id.
        package: String,
        /// The URL requested, credentials stripped.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The feed could not be reached, or the transfer broke off.
    #[error("feed '{feed_id}' ({feed_uri}): request for {url} (package {package}) failed: {source}")]
    Network {
        /// `--feedId`.
        feed_id: String,
        /// `--feedUri`, credentials stripped.
        feed_uri: String,
        /// The package id.
        package: String,
        /// The URL requested, credentials stripped.
        url: String,
        /// What the HTTP client reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The feed answered, but not with what its type publishes (no service index, bad JSON...).
    #[error("feed '{feed_id}' ({feed_uri}): unexpected response from {url} (package {package}): {message}")]
    BadResponse {
        /// `--feedId`.
        feed_id: String,
        /// `--feedUri`, credentials stripped.
        feed_uri: String,
        /// The package id.
        package: String,
        /// The URL requested, credentials stripped.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The feed does not list the version asked for.
    #[error("feed '{feed_id}' ({feed_uri}) has no package {package} version {version}{detail}")]
    NotFound {
        /// `--feedId`.
        feed_id: String,
        /// `--feedUri`, credentials stripped.
        feed_uri: String,
        /// The package id.
        package: String,
        /// The version.
        version: String,
        /// Where we looked, for the message (starts with ": " when not empty).
        detail: String,
    },
    /// What was downloaded does not have the hash the feed publishes for it; nothing was
    /// left in the cache.
    #[error(transparent)]
    HashMismatch(Box<HashMismatch>),
    /// A CA bundle (`SSL_CERT_FILE`) could not be read or holds no certificate.
    #[error("Cannot use the CA certificates in '{path}' (SSL_CERT_FILE): {message}")]
    CaBundle {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Every attempt failed; `source` is the last failure. The first line is the reference's.
    #[error(
        "Failed to download package {package} v{version} from feed: '{feed_uri}' (feed {feed_id}, {attempts} attempt(s))"
    )]
    Failed {
        /// The package id.
        package: String,
        /// The version.
        version: String,
        /// `--feedId`.
        feed_id: String,
        /// `--feedUri`, credentials stripped.
        feed_uri: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's failure.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Whether another attempt may succeed: a network failure, a server error (5xx), 408
    /// or 429, a broken response or a hash mismatch (a truncated or damaged transfer). A
    /// 4xx answer (401, 403, 404), a missing version or a local failure is final.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Error::Network { .. } | Error::BadResponse { .. } | Error::HashMismatch(_) => true,
            Error::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => false,
        }
    }

    /// Whether the feed could not be asked at all (a network error, a server error, an
    /// unreadable answer): then a copy already in the cache may serve. Not for a hash
    /// mismatch, where the feed did answer and what it publishes is not what we hold.
    pub(crate) fn is_unreachable(&self) -> bool {
        self.is_transient() && !matches!(self, Error::HashMismatch(_))
    }
}

/// A download whose hash is not the one its feed publishes.
#[derive(Debug, thiserror::Error)]
#[error(
    "feed '{feed_id}' ({feed_uri}): package {package} v{version} downloaded from {url} has {algorithm} {actual}, but the feed publishes {expected}"
)]
pub struct HashMismatch {
    /// `--feedId`.
    pub feed_id: String,
    /// `--feedUri`, credentials stripped.
    pub feed_uri: String,
    /// The package id.
    pub package: String,
    /// The version.
    pub version: String,
    /// The URL downloaded, credentials stripped.
    pub url: String,
    /// `SHA-512`, `SHA-256` or `SHA-1`.
    pub algorithm: &'static str,
    /// The published hash, as published (hex, or base64 for an SRI `integrity`).
    pub expected: String,
    /// The hash of what was received, in the same notation.
    pub actual: String,
}
