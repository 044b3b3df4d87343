//! The HTTP side of `download-package`: one blocking client (ureq over rustls) per
//! command, basic authentication, the CA roots it trusts, URL helpers, and errors that name
//! the feed and the package.
//!
//! HTTPS trusts the system's CA bundle (the first of the usual Linux locations that
//! exists) and, in addition, every certificate in the PEM file named by `SSL_CERT_FILE`
//! (the OpenSSL and curl convention). With neither, the Mozilla roots built into the
//! client are used.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::{Error, Target};
use crate::env_vars::{AgentEnvironment, SSL_CERT_FILE};

/// Where Linux distributions keep the system CA bundle (the list curl and openssl-probe use).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Most bytes of a metadata document (service index, registration, npm packument, index.yaml).
const METADATA_LIMIT: u64 = 256 << 20;

/// The client of one command: the agent, the `Authorization` header, what errors name.
pub(crate) struct Http {
    agent: ureq::Agent,
    authorization: Option<String>,
    pub(crate) target: Target,
}

/// A response whose status was a success.
pub(crate) type Response = ureq::http::Response<ureq::Body>;

impl Http {
    /// A client for `target`, authenticating with `credentials` (username, password) when given.
    ///
    /// # Errors
    /// `SSL_CERT_FILE` names a file that cannot be read or holds no certificate.
    pub(crate) fn new(
        target: Target,
        credentials: Option<(&str, &str)>,
        environment: &AgentEnvironment,
    ) -> Result<Http, Error> {
        let tls = TlsConfig::builder().root_certs(root_certs(environment)?).build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .user_agent(format!("calamari/{}", crate::VERSION))
            .tls_config(tls)
            .build();
        let authorization = credentials.map(|(user, password)| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
        });
        Ok(Http { agent: config.into(), authorization, target })
    }

    fn send(&self, method: &str, url: &str) -> Result<Response, Error> {
        let result = if method == "HEAD" {
            let mut request = self.agent.head(url);
            if let Some(auth) = &self.authorization {
                request = request.header("Authorization", auth);
            }
            request.call()
        } else {
            let mut request = self.agent.get(url);
            if let Some(auth) = &self.authorization {
                request = request.header("Authorization", auth);
            }
            request.call()
        };
        result.map_err(|e| self.network(url, e))
    }

    /// GETs `url`; any status but success is an error naming it.
    pub(crate) fn get(&self, url: &str) -> Result<Response, Error> {
        let response = self.send("GET", url)?;
        self.check(url, response)
    }

    /// GETs `url` as text; `None` for 404.
    pub(crate) fn get_text_optional(&self, url: &str) -> Result<Option<String>, Error> {
        let response = self.send("GET", url)?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        let response = self.check(url, response)?;
        let text = response
            .into_body()
            .into_with_config()
            .limit(METADATA_LIMIT)
            .read_to_string()
            .map_err(|e| self.network(url, e))?;
        Ok(Some(text))
    }

    /// GETs `url` as text; 404 is an error like any other failure status.
    pub(crate) fn get_text(&self, url: &str) -> Result<String, Error> {
        match self.get_text_optional(url)? {
            Some(text) => Ok(text),
            None => Err(self.status(url, 404)),
        }
    }

    /// GETs `url` as JSON.
    pub(crate) fn get_json(&self, url: &str) -> Result<serde_json::Value, Error> {
        let text = self.get_text(url)?;
        serde_json::from_str(&text).map_err(|e| self.bad_response(url, format!("not JSON: {e}")))
    }

    /// Whether `url` exists (HEAD answers success); `false` for 404.
    pub(crate) fn exists(&self, url: &str) -> Result<bool, Error> {
        let response = self.send("HEAD", url)?;
        if response.status().as_u16() == 404 {
            return Ok(false);
        }
        self.check(url, response).map(|_| true)
    }

    /// A reader over a successful response's body, streaming (never held in memory).
    pub(crate) fn body_reader(response: Response) -> impl Read {
        response.into_body().into_reader()
    }

    fn check(&self, url: &str, response: Response) -> Result<Response, Error> {
        let status = response.status().as_u16();
        if (200..300).contains(&status) { Ok(response) } else { Err(self.status(url, status)) }
    }

    /// The error for an HTTP status.
    pub(crate) fn status(&self, url: &str, status: u16) -> Error {
        let t = &self.target;
        Error::Status {
            feed_id: t.feed_id.clone(),
            feed_uri: t.feed_uri.clone(),
            package: t.package.clone(),
            url: strip_credentials(url),
            status,
        }
    }

    /// The error for a failed request or transfer.
    pub(crate) fn network(&self, url: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        let t = &self.target;
        Error::Network {
            feed_id: t.feed_id.clone(),
            feed_uri: t.feed_uri.clone(),
            package: t.package.clone(),
            url: strip_credentials(url),
            source: source.into(),
        }
    }

    /// The error for a response that is not what the feed type publishes.
    pub(crate) fn bad_response(&self, url: &str, message: impl Into<String>) -> Error {
        let t = &self.target;
        Error::BadResponse {
            feed_id: t.feed_id.clone(),
            feed_uri: t.feed_uri.clone(),
            package: t.package.clone(),
            url: strip_credentials(url),
            message: message.into(),
        }
    }

    /// The error for a version the feed does not list.
    pub(crate) fn not_found(&self, detail: impl Into<String>) -> Error {
        let t = &self.target;
        let detail = detail.into();
        Error::NotFound {
            feed_id: t.feed_id.clone(),
            feed_uri: t.feed_uri.clone(),
            package: t.package.clone(),
            version: t.version.clone(),
            detail: if detail.is_empty() { detail } else { format!(": {}", strip_credentials(&detail)) },
        }
    }
}

/// The roots HTTPS trusts: the system bundle plus `SSL_CERT_FILE`; the built-in Mozilla
/// roots when neither is there.
fn root_certs(environment: &AgentEnvironment) -> Result<RootCerts, Error> {
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    if let Some(bundle) = SYSTEM_BUNDLES.iter().find(|p| std::path::Path::new(p).is_file())
        && let Ok(pem) = crate::fs::read(bundle)
    {
        certs.extend(pem_certificates(&pem));
    }
    if let Some(path) = environment.get(SSL_CERT_FILE) {
        let pem = crate::fs::read(path)
            .map_err(|e| Error::CaBundle { path: path.to_string(), message: e.source.to_string() })?;
        let extra = pem_certificates(&pem);
        if extra.is_empty() {
            return Err(Error::CaBundle { path: path.to_string(), message: "no PEM certificate in it".into() });
        }
        certs.extend(extra);
    }
    Ok(if certs.is_empty() { RootCerts::WebPki } else { RootCerts::Specific(Arc::new(certs)) })
}

fn pem_certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect()
}

/// Splits `user:password@` out of a URL: (the URL without it, the credentials).
pub(crate) fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let Some(scheme_end) = url.find("://") else { return (url.to_string(), None) };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else { return (url.to_string(), None) };
    let userinfo = &authority[..at];
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let stripped = format!("{}{}", &url[..scheme_end + 3], &rest[at + 1..]);
    (stripped, Some((crate::text_encoding::percent_decode(user), crate::text_encoding::percent_decode(password))))
}

/// `url` without any `user:password@`, for messages.
pub(crate) fn strip_credentials(url: &str) -> String {
    split_credentials(url).0
}

/// Resolves `reference` (absolute, host-absolute `/x`, or relative with `..`) against `base`.
pub(crate) fn resolve(base: &str, reference: &str) -> String {
    if reference.contains("://") {
        return reference.to_string();
    }
    let Some(scheme_end) = base.find("://") else { return reference.to_string() };
    let after = &base[scheme_end + 3..];
    let host_end = after.find('/').map_or(base.len(), |i| scheme_end + 3 + i);
    let origin = &base[..host_end];
    if let Some(path) = reference.strip_prefix('/') {
        return format!("{origin}/{path}");
    }
    let base_path = base[host_end..].split(['?', '#']).next().unwrap_or("");
    let dir = base_path.rfind('/').map_or("", |i| &base_path[..i]);
    let mut segments: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    let (ref_path, tail) = match reference.find(['?', '#']) {
        Some(i) => reference.split_at(i),
        None => (reference, ""),
    };
    let parts: Vec<&str> = ref_path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        match *part {
            "." => {}
            ".." => {
                segments.pop();
            }
            "" if i + 1 < parts.len() => {}
            p => segments.push(p),
        }
    }
    format!("{origin}/{}{tail}", segments.join("/"))
}

/// Percent-encodes one path segment (everything but unreserved characters).
pub(crate) fn encode_segment(text: &str) -> String {
    crate::text_encoding::percent_encode(text, b"+")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_out_of_urls() {
        let (url, creds) = split_credentials("https://me:p%40ss@feed.example:8443/v3/index.json");
        assert_eq!(url, "https://feed.example:8443/v3/index.json");
        assert_eq!(creds, Some(("me".into(), "p@ss".into())));
        assert_eq!(split_credentials("http://h/a@b").0, "http://h/a@b");
        assert_eq!(strip_credentials("http://h/x"), "http://h/x");
    }

    #[test]
    fn references_resolve_like_a_browser() {
        let base = "http://h:1/simple/acme/";
        assert_eq!(
            resolve(base, "../../packages/acme-1.0.tar.gz#sha256=ab"),
            "http://h:1/packages/acme-1.0.tar.gz#sha256=ab"
        );
        assert_eq!(resolve(base, "/x/y.tgz"), "http://h:1/x/y.tgz");
        assert_eq!(resolve("http://h/charts/index.yaml", "acme-1.0.tgz"), "http://h/charts/acme-1.0.tgz");
        assert_eq!(resolve("http://h/charts/", "https://o/z.tgz"), "https://o/z.tgz");
        assert_eq!(resolve("http://h", "a.tgz"), "http://h/a.tgz");
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("@scope/name"), "%40scope%2Fname");
        assert_eq!(encode_segment("Acme.Web-1_0"), "Acme.Web-1_0");
    }
}
