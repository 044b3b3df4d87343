//! Helm chart repositories: `<feedUri>/index.yaml` lists `entries.<chart>` with each
//! version's `urls` (relative to the repository or absolute) and its SHA-256 `digest`.

use yaml_rust2::{Yaml, YamlLoader};

use super::http::{Http, resolve};
use super::verify::{Algorithm, Expected};
use super::{Error, Resolved};

/// Finds the chart in the repository at `feed_uri`.
///
/// # Errors
/// The index cannot be read or parsed, or does not list the version.
pub(crate) fn resolve_package(http: &Http, feed_uri: &str, id: &str, version: &str) -> Result<Resolved, Error> {
    let base = format!("{}/", feed_uri.trim_end_matches('/'));
    let index_url = format!("{base}index.yaml");
    let text = http.get_text(&index_url)?;
    let docs = YamlLoader::load_from_str(&text).map_err(|e| http.bad_response(&index_url, format!("not YAML: {e}")))?;
    let doc = docs.first().ok_or_else(|| http.bad_response(&index_url, "empty"))?;
    let entries = &doc["entries"];
    if entries.is_badvalue() {
        return Err(http.bad_response(&index_url, "no `entries`"));
    }
    let versions = match &entries[id] {
        Yaml::Array(a) => a.clone(),
        _ => return Err(http.not_found(format!("{index_url} lists no chart '{id}'"))),
    };
    let wanted = version.trim_start_matches('v');
    for chart in versions {
        let Some(v) = chart["version"].as_str() else { continue };
        if v.trim_start_matches('v') != wanted {
            continue;
        }
        let Some(url) = chart["urls"].as_vec().and_then(|u| u.iter().find_map(Yaml::as_str)) else {
            return Err(http.bad_response(&index_url, format!("chart {id} {v} has no urls")));
        };
        let expected = chart["digest"].as_str().and_then(|d| Expected::hex(Algorithm::Sha256, d));
        return Ok(Resolved { url: resolve(&base, url), extension: ".tgz".into(), expected });
    }
    Err(http.not_found(format!("{index_url} lists no such version")))
}
