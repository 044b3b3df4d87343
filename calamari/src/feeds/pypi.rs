//! PyPI indexes: the simple index page `<feedUri>/simple/<normalized name>/` (or
//! `<feedUri>/<name>/` when `--feedUri` already ends in `/simple`) links every file with
//! its SHA-256 in the `#sha256=` fragment. A wheel is preferred to an sdist, as the
//! reference does.

use super::http::{Http, resolve};
use super::verify::{Algorithm, Expected};
use super::{Error, Resolved};

/// PEP 503 normalization: lowercase, runs of `-`, `_`, `.` become one `-`.
pub(crate) fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_run = false;
        }
    }
    out
}

/// Finds the file in the index at `feed_uri`.
///
/// # Errors
/// The index page cannot be read, or links no file of the version.
pub(crate) fn resolve_package(http: &Http, feed_uri: &str, id: &str, version: &str) -> Result<Resolved, Error> {
    let base = feed_uri.trim_end_matches('/');
    let simple = if base.ends_with("/simple") { base.to_string() } else { format!("{base}/simple") };
    let page_url = format!("{simple}/{}/", normalize(id));
    let Some(page) = http.get_text_optional(&page_url)? else {
        return Err(http.not_found(format!("{page_url} answered HTTP 404")));
    };
    let mut wheel = None;
    let mut sdist = None;
    for (href, text) in links(&page) {
        let href = href.replace("&amp;", "&");
        let file_name = if text.trim().is_empty() {
            href.split(['#', '?']).next().unwrap_or("").rsplit('/').next().unwrap_or("").to_string()
        } else {
            text.trim().to_string()
        };
        let Some((name, file_version, extension)) = parse_file_name(&file_name) else { continue };
        if normalize(&name) != normalize(id) || !file_version.eq_ignore_ascii_case(version) {
            continue;
        }
        let (url, fragment) = match href.split_once('#') {
            Some((u, f)) => (u.to_string(), Some(f.to_string())),
            None => (href.clone(), None),
        };
        let expected = fragment
            .as_deref()
            .and_then(|f| f.strip_prefix("sha256="))
            .and_then(|h| Expected::hex(Algorithm::Sha256, h));
        let found = Resolved { url: resolve(&page_url, &url), extension, expected };
        if found.extension == ".whl" {
            wheel.get_or_insert(found);
        } else {
            sdist.get_or_insert(found);
        }
    }
    wheel.or(sdist).ok_or_else(|| http.not_found(format!("{page_url} links no file of that version")))
}

/// `(name, version, extension)` of a wheel (`name-ver-py-abi-plat.whl`) or an sdist
/// (`name-ver.tar.gz` / `.zip`).
fn parse_file_name(file_name: &str) -> Option<(String, String, String)> {
    if let Some(stem) = file_name.strip_suffix(".whl") {
        let mut parts = stem.split('-');
        let name = parts.next()?;
        let version = parts.next()?;
        return Some((name.to_string(), version.to_string(), ".whl".into()));
    }
    for extension in [".tar.gz", ".zip", ".tar.bz2", ".tgz"] {
        if let Some(stem) = file_name.strip_suffix(extension) {
            let (name, version) = stem.rsplit_once('-')?;
            return Some((name.to_string(), version.to_string(), extension.to_string()));
        }
    }
    None
}

/// `(href, text)` of each `<a>` in an HTML page (the simple index has nothing fancier).
fn links(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<a ").map(|i| at + i) {
        let Some(tag_end) = lower[start..].find('>').map(|i| start + i) else { break };
        let tag = &html[start..tag_end];
        let close = lower[tag_end..].find("</a>").map_or(html.len(), |i| tag_end + i);
        let text = html[tag_end + 1..close.max(tag_end + 1)].to_string();
        if let Some(h) = tag.to_ascii_lowercase().find("href=") {
            let rest = &tag[h + 5..];
            let href = match rest.chars().next() {
                Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
                _ => rest.split_whitespace().next().unwrap_or(""),
            };
            out.push((href.to_string(), text));
        }
        at = close.min(html.len()).max(tag_end);
        if at >= html.len() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_files_parse() {
        assert_eq!(normalize("Acme_Web..Tools"), "acme-web-tools");
        assert_eq!(
            parse_file_name("acme_web-1.0.0-py3-none-any.whl"),
            Some(("acme_web".into(), "1.0.0".into(), ".whl".into()))
        );
        assert_eq!(
            parse_file_name("acme-web-1.0.0.tar.gz"),
            Some(("acme-web".into(), "1.0.0".into(), ".tar.gz".into()))
        );
        let page = r#"<html><body><a href="../../packages/acme-1.0.tar.gz#sha256=ab">acme-1.0.tar.gz</a><br><A HREF='x.whl'>x</A></body></html>"#;
        assert_eq!(
            links(page),
            vec![
                ("../../packages/acme-1.0.tar.gz#sha256=ab".to_string(), "acme-1.0.tar.gz".to_string()),
                ("x.whl".into(), "x".into())
            ]
        );
    }
}
