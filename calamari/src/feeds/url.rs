//! `--feedType=Http`: a plain HTTP(S) file. `--feedUri` is the package file's URL, in
//! which `{packageId}` and `{packageVersion}` are replaced (percent-encoded) when present.
//! The extension comes from the URL's file name; nothing is published to check.

use super::http::{Http, encode_segment};
use super::{Error, Resolved};
use crate::package::name::split_extension;

/// The file's URL and extension.
///
/// # Errors
/// The URL's file name has no package extension.
pub(crate) fn resolve_package(http: &Http, feed_uri: &str, id: &str, version: &str) -> Result<Resolved, Error> {
    let url =
        feed_uri.replace("{packageId}", &encode_segment(id)).replace("{packageVersion}", &encode_segment(version));
    let path = url.split(['?', '#']).next().unwrap_or(&url);
    let file_name = path.rsplit('/').next().unwrap_or("");
    let Some((_, extension)) = split_extension(file_name) else {
        return Err(http.bad_response(
            &url,
            format!("the file name '{file_name}' has no package extension (.zip, .tar.gz, .nupkg, .jar, ...)"),
        ));
    };
    Ok(Resolved { extension: extension.to_string(), url, expected: None })
}
