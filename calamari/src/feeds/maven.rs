//! Maven repositories: the id is `group:artifact`, the file
//! `<feedUri>/<group with dots as slashes>/<artifact>/<version>/<artifact>-<version><ext>`
//! for the first extension the repository has (HEAD), and its SHA-1 is the `.sha1` file
//! beside it when the repository publishes one.

use super::http::Http;
use super::verify::{Algorithm, Expected};
use super::{Error, Resolved};

/// Extensions tried, in order.
const EXTENSIONS: &[&str] =
    &[".jar", ".war", ".ear", ".rar", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar", ".nupkg"];

/// The `(group, artifact)` of a Maven id, or `None` when it is not `group:artifact`.
pub(crate) fn split_id(id: &str) -> Option<(&str, &str)> {
    let (group, artifact) = id.split_once(':')?;
    let artifact = artifact.split(':').next().unwrap_or(artifact);
    (!group.is_empty() && !artifact.is_empty()).then_some((group, artifact))
}

/// Finds the artifact in the repository at `feed_uri`.
///
/// # Errors
/// The id is not `group:artifact`, no extension exists (every HEAD answered 404: the error
/// says so), or a request fails.
pub(crate) fn resolve_package(http: &Http, feed_uri: &str, id: &str, version: &str) -> Result<Resolved, Error> {
    let Some((group, artifact)) = split_id(id) else {
        return Err(http.not_found(format!("a Maven package id is group:artifact, '{id}' is not")));
    };
    let dir = format!("{}/{}/{artifact}/{version}", feed_uri.trim_end_matches('/'), group.replace('.', "/"));
    for extension in EXTENSIONS {
        let url = format!("{dir}/{artifact}-{version}{extension}");
        if !http.exists(&url)? {
            continue;
        }
        let expected = http
            .get_text_optional(&format!("{url}.sha1"))?
            .and_then(|text| text.split_whitespace().next().and_then(|h| Expected::hex(Algorithm::Sha1, h)));
        return Ok(Resolved { url, extension: (*extension).to_string(), expected });
    }
    // Every HEAD answered 404 (any other failure status returned above): say so, as the
    // other feed types' errors and the reference's ("Failed to find the Maven artifact",
    // "(404) Not Found") do.
    Err(http.not_found(format!(
        "Failed to find the Maven artifact: {dir}/{artifact}-{version}.{{{}}} each answered HTTP 404",
        EXTENSIONS.iter().map(|e| &e[1..]).collect::<Vec<_>>().join(",")
    )))
}
