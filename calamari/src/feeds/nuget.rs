//! NuGet v3 feeds: the service index (`--feedUri`, `index.json`) names a registration
//! base (`RegistrationsBaseUrl`), whose leaf for the version gives the package URL and,
//! where the feed publishes it, its SHA-512 (`packageHash`); without a registration the
//! flat container (`PackageBaseAddress/3.0.0`) gives
//! `<base>/<id lowercase>/<version lowercase>/<id lowercase>.<version lowercase>.nupkg`.

use serde_json::Value;

use super::http::{Http, resolve};
use super::verify::{Algorithm, Expected};
use super::{Error, Resolved};
use crate::version::Version;

/// Finds the package in the feed at `feed_uri`.
///
/// # Errors
/// The service index cannot be read or names no package resource, or the version is not there.
pub(crate) fn resolve_package(http: &Http, feed_uri: &str, id: &str, version: &str) -> Result<Resolved, Error> {
    let (index_url, index) = service_index(http, feed_uri)?;
    let resources = index.get("resources").and_then(Value::as_array).ok_or_else(|| {
        http.bad_response(&index_url, "no `resources` list: --feedUri must be a NuGet v3 service index (index.json)")
    })?;
    let find = |kind: &str| {
        resources.iter().find_map(|r| {
            let types = match r.get("@type") {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            types
                .iter()
                .any(|t| t.starts_with(kind))
                .then(|| r.get("@id").and_then(Value::as_str))
                .flatten()
                .map(|u| resolve(&index_url, u))
        })
    };
    let lower_id = id.to_ascii_lowercase();
    let normalized = normalize_version(version);
    if let Some(registrations) = find("RegistrationsBaseUrl") {
        let url = format!("{}/{lower_id}/index.json", registrations.trim_end_matches('/'));
        if let Some(text) = http.get_text_optional(&url)? {
            let json: Value =
                serde_json::from_str(&text).map_err(|e| http.bad_response(&url, format!("not JSON: {e}")))?;
            if let Some(found) = from_registration(http, &url, &json, version)? {
                return Ok(found);
            }
        }
    }
    let base = find("PackageBaseAddress").ok_or_else(|| {
        http.bad_response(&index_url, "neither a RegistrationsBaseUrl nor a PackageBaseAddress resource")
    })?;
    let base = base.trim_end_matches('/');
    Ok(Resolved {
        url: format!("{base}/{lower_id}/{normalized}/{lower_id}.{normalized}.nupkg"),
        extension: ".nupkg".into(),
        expected: None,
    })
}

/// The service index: `feed_uri` itself, or `feed_uri/index.json` when that is not one
/// (404, an HTML listing, JSON without `resources`).
fn service_index(http: &Http, feed_uri: &str) -> Result<(String, Value), Error> {
    let mut urls = vec![feed_uri.to_string()];
    if !feed_uri.ends_with(".json") {
        urls.push(format!("{}/index.json", feed_uri.trim_end_matches('/')));
    }
    let mut last = None;
    for url in &urls {
        let Some(text) = http.get_text_optional(url)? else {
            last = Some(http.status(url, 404));
            continue;
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(json) if json.get("resources").is_some() => return Ok((url.clone(), json)),
            Ok(_) => last = Some(http.bad_response(url, "no `resources` list: not a NuGet v3 service index")),
            Err(e) => last = Some(http.bad_response(url, format!("not a NuGet v3 service index (not JSON: {e})"))),
        }
    }
    Err(last.unwrap_or_else(|| http.status(feed_uri, 404)))
}

/// The leaf for `version` in a registration index, following pages that are not inlined.
fn from_registration(http: &Http, url: &str, index: &Value, version: &str) -> Result<Option<Resolved>, Error> {
    let pages = index.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    for page in pages {
        let leaves = match page.get("items").and_then(Value::as_array) {
            Some(items) => items.clone(),
            None => match page.get("@id").and_then(Value::as_str) {
                Some(page_url) => {
                    let page_url = resolve(url, page_url);
                    http.get_json(&page_url)?.get("items").and_then(Value::as_array).cloned().unwrap_or_default()
                }
                None => continue,
            },
        };
        for leaf in leaves {
            let entry = leaf.get("catalogEntry").unwrap_or(&Value::Null);
            let Some(leaf_version) = entry.get("version").and_then(Value::as_str) else { continue };
            if !same_version(leaf_version, version) {
                continue;
            }
            let Some(content) = leaf.get("packageContent").and_then(Value::as_str) else { continue };
            let expected = match (
                entry.get("packageHash").and_then(Value::as_str),
                entry.get("packageHashAlgorithm").and_then(Value::as_str),
            ) {
                (Some(hash), alg) if alg.is_none_or(|a| a.eq_ignore_ascii_case("SHA512")) => {
                    Expected::base64(Algorithm::Sha512, hash)
                }
                _ => None,
            };
            return Ok(Some(Resolved { url: resolve(url, content), extension: ".nupkg".into(), expected }));
        }
    }
    Ok(None)
}

fn same_version(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// NuGet's normalized version, lowercase: build metadata dropped, a zero fourth part dropped.
fn normalize_version(version: &str) -> String {
    let v = version.split('+').next().unwrap_or(version).to_ascii_lowercase();
    let (release, pre) = match v.split_once('-') {
        Some((r, p)) => (r.to_string(), Some(p.to_string())),
        None => (v.clone(), None),
    };
    let mut parts: Vec<String> = release
        .split('.')
        .map(|p| p.trim_start_matches('0').to_string())
        .map(|p| if p.is_empty() { "0".into() } else { p })
        .collect();
    while parts.len() < 3 {
        parts.push("0".into());
    }
    if parts.len() == 4 && parts[3] == "0" {
        parts.pop();
    }
    let mut out = parts.join(".");
    if let Some(pre) = pre {
        out.push('-');
        out.push_str(&pre);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_normalize_like_nuget() {
        assert_eq!(super::normalize_version("1.0"), "1.0.0");
        assert_eq!(super::normalize_version("01.2.3.0"), "1.2.3");
        assert_eq!(super::normalize_version("1.2.3.4-Beta+sha"), "1.2.3.4-beta");
    }
}
