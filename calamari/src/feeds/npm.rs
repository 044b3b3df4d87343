//! npm registries: the package document `<feedUri>/<id>` (a scoped `@scope/name` encoded
//! as `@scope%2fname`) gives `versions.<v>.dist.tarball` and its hash, `dist.integrity`
//! (SRI, SHA-512) or else `dist.shasum` (SHA-1 hex).

use serde_json::Value;

use super::http::{Http, resolve};
use super::verify::{Algorithm, Expected};
use super::{Error, Resolved};

/// Finds the tarball in the registry at `feed_uri`.
///
/// # Errors
/// The document cannot be read, or does not list the version.
pub(crate) fn resolve_package(http: &Http, feed_uri: &str, id: &str, version: &str) -> Result<Resolved, Error> {
    let name = match id.strip_prefix('@').and_then(|s| s.split_once('/')) {
        Some((scope, name)) => format!("@{scope}%2f{name}"),
        None => id.to_string(),
    };
    let url = format!("{}/{name}", feed_uri.trim_end_matches('/'));
    let Some(text) = http.get_text_optional(&url)? else {
        return Err(http.not_found(format!("{url} answered HTTP 404")));
    };
    let doc: Value = serde_json::from_str(&text).map_err(|e| http.bad_response(&url, format!("not JSON: {e}")))?;
    let Some(dist) = doc.get("versions").and_then(|v| v.get(version)).and_then(|v| v.get("dist")) else {
        return Err(http.not_found(format!("{url} lists no such version")));
    };
    let tarball = dist
        .get("tarball")
        .and_then(Value::as_str)
        .ok_or_else(|| http.bad_response(&url, format!("version {version} has no dist.tarball")))?;
    let expected = dist
        .get("integrity")
        .and_then(Value::as_str)
        .and_then(Expected::sri)
        .or_else(|| dist.get("shasum").and_then(Value::as_str).and_then(|s| Expected::hex(Algorithm::Sha1, s)));
    Ok(Resolved { url: resolve(&url, tarball), extension: ".tgz".into(), expected })
}
