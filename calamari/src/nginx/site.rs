//! The site a "Deploy to NGINX" step describes, read from its variables, and the files it
//! becomes: `conf/<name>.conf` (the `server` block), `conf/<name>.conf.d/location.<N><path>.conf`
//! (one per additional location) and `ssl/<common name>/<common name>.{crt,key}` (the
//! certificates taken from certificate variables). The text is the reference's, line for
//! line (`NginxServer.BuildConfiguration`, `GetLocationConfig`, `RemoveEmptyLines`), with
//! Linux line endings.
//!
//! Where the reference silently drops what it cannot read (bindings or directives that are
//! not JSON, an https binding whose certificate variable is missing), this is an error
//! naming the variable, so that a step never "succeeds" with a site missing its bindings.

use serde_json::Value;

use super::Error;
use crate::variables::VariableDictionary;

/// The step's variables.
pub(crate) mod names {
    /// JSON array of bindings (`protocol`, `port`, `ipAddress`, `certificateLocation`,
    /// `certificateKeyLocation`, `certificateVariable`, `securityProtocols`, `enabled`).
    pub(crate) const BINDINGS: &str = "Octopus.Action.Nginx.Server.Bindings";
    /// JSON array of locations (`path`, `directives`, `headers`, `reverseProxyUrl`,
    /// `reverseProxyHeaders`, `reverseProxyDirectives`).
    pub(crate) const LOCATIONS: &str = "Octopus.Action.Nginx.Server.Locations";
    /// The `server_name`; empty or `*` writes none.
    pub(crate) const HOST_NAME: &str = "Octopus.Action.Nginx.Server.HostName";
    /// The configuration's file name; the package id when empty.
    pub(crate) const CONFIG_NAME: &str = "Octopus.Action.Nginx.Server.ConfigName";
    /// Where the configuration files go (default `/etc/nginx/conf.d`).
    pub(crate) const CONFIGURATIONS_DIRECTORY: &str = "Octopus.Action.Nginx.ConfigurationsDirectory";
    /// Where certificates from certificate variables go (default `/etc/ssl`).
    pub(crate) const CERTIFICATES_DIRECTORY: &str = "Octopus.Action.Nginx.CertificatesDirectory";
    /// Our extension: the main configuration file nginx runs with, passed as `nginx -c`
    /// (default: none, nginx's own).
    pub(crate) const CONFIGURATION_FILE: &str = "Calamari.Nginx.ConfigurationFile";
}

/// The default of [`names::CONFIGURATIONS_DIRECTORY`] on Linux (reference `NixNginxServer`).
pub(crate) const DEFAULT_CONFIGURATIONS_DIRECTORY: &str = "/etc/nginx/conf.d";
/// The default of [`names::CERTIFICATES_DIRECTORY`] on Linux.
pub(crate) const DEFAULT_CERTIFICATES_DIRECTORY: &str = "/etc/ssl";

/// The paths a location may have to be the site's root location, in the order looked for.
const ROOT_PATHS: [&str; 2] = ["= /", "/"];

/// One `location` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    /// What follows `location` (`/`, `= /`, `/api/`, `~ \.php$`).
    pub path: String,
    /// `proxy_pass`, when not empty.
    pub reverse_proxy_url: Option<String>,
    /// The location's directives then the reverse proxy's, each `name value`.
    pub directives: Vec<(String, String)>,
    /// `proxy_set_header name value`, the location's headers then the reverse proxy's.
    pub headers: Vec<(String, String)>,
}

/// A certificate taken from a certificate variable, written under the certificates directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Certificate {
    /// The subject's common name made a file name: the directory and the files' stem.
    pub file_stem: String,
    /// The certificate, then its chain when there is one.
    pub certificate_pem: String,
    /// The private key.
    pub private_key_pem: String,
}

/// The site: what the configuration files are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Site {
    /// The configuration's file name (`<name>.conf`), made safe as a file name.
    pub name: String,
    /// `server_name`, when one is set.
    pub host_name: Option<String>,
    /// The `server` block's binding directives (`listen`, `ssl_certificate`...), in order.
    pub binding_directives: Vec<(&'static str, String)>,
    /// The `= /` or `/` location, written in the server block.
    pub root: Location,
    /// The other locations, one file each, included by the server block.
    pub additional: Vec<Location>,
    /// Certificates to write.
    pub certificates: Vec<Certificate>,
    /// Where the configuration files are installed (for the `include` line).
    pub configurations_directory: String,
}

/// One file of the site, relative to the staging directory (`conf/...` or `ssl/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SiteFile {
    pub relative_path: String,
    pub contents: String,
    /// Whether only the owner may read it (private keys).
    pub private: bool,
}

impl Site {
    /// Reads the site from the step's variables (`#{...}` in them evaluated).
    pub(crate) fn from_variables(variables: &VariableDictionary) -> Result<Site, Error> {
        let get =
            |name: &str| -> Result<Option<String>, Error> { Ok(variables.get(name)?.filter(|v| !v.trim().is_empty())) };
        let locations_json = get(names::LOCATIONS)?.ok_or(Error::MissingRootLocation)?;
        let mut locations = parse_locations(&locations_json)?;
        let root_index =
            locations.iter().position(|l| ROOT_PATHS.contains(&l.path.as_str())).ok_or(Error::MissingRootLocation)?;
        let root = locations.remove(root_index);
        let additional = locations.into_iter().filter(|l| l.path != root.path).collect();

        let name_source = match get(names::CONFIG_NAME)? {
            Some(name) => (name, names::CONFIG_NAME),
            None => {
                (get(crate::variables::names::PACKAGE_ID)?.unwrap_or_default(), crate::variables::names::PACKAGE_ID)
            }
        };
        let name = file_name(&name_source.0);
        if name.is_empty() || name == "." || name == ".." {
            return Err(Error::NoConfigName { found: name_source.0, variable: name_source.1 });
        }
        let host_name = get(names::HOST_NAME)?.filter(|h| h.trim() != "*");
        let certificates_directory =
            get(names::CERTIFICATES_DIRECTORY)?.unwrap_or_else(|| DEFAULT_CERTIFICATES_DIRECTORY.to_string());
        let configurations_directory =
            get(names::CONFIGURATIONS_DIRECTORY)?.unwrap_or_else(|| DEFAULT_CONFIGURATIONS_DIRECTORY.to_string());

        let mut binding_directives = Vec::new();
        let mut certificates: Vec<Certificate> = Vec::new();
        let bindings = match get(names::BINDINGS)? {
            Some(json) => parse_bindings(&json)?,
            None => Vec::new(),
        };
        for binding in bindings.into_iter().filter(|b| b.enabled) {
            if binding.protocol.eq_ignore_ascii_case("http") {
                binding_directives.push(("listen", binding.listen(false)));
                continue;
            }
            let (certificate, key) = match (&binding.certificate_location, &binding.certificate_variable) {
                (Some(location), _) => (location.clone(), binding.certificate_key_location.clone().unwrap_or_default()),
                (None, Some(variable)) => {
                    let certificate = certificate_from_variable(variables, variable)?;
                    let dir = format!("{}/{}", certificates_directory.trim_end_matches('/'), certificate.file_stem);
                    let paths = (
                        format!("{dir}/{}.crt", certificate.file_stem),
                        format!("{dir}/{}.key", certificate.file_stem),
                    );
                    if !certificates.iter().any(|c| c.file_stem == certificate.file_stem) {
                        certificates.push(certificate);
                    }
                    paths
                }
                (None, None) => return Err(Error::HttpsBindingWithoutCertificate { binding: binding.describe() }),
            };
            binding_directives.push(("listen", binding.listen(true)));
            binding_directives.push(("ssl_certificate", certificate));
            binding_directives.push(("ssl_certificate_key", key));
            if !binding.security_protocols.is_empty() {
                binding_directives.push(("ssl_protocols", binding.security_protocols.join(" ")));
            }
        }
        Ok(Site { name, host_name, binding_directives, root, additional, certificates, configurations_directory })
    }

    /// The files of the site, in the order they are written.
    pub(crate) fn files(&self) -> Vec<SiteFile> {
        let mut files = Vec::new();
        for certificate in &self.certificates {
            let dir = format!("ssl/{}", certificate.file_stem);
            files.push(SiteFile {
                relative_path: format!("{dir}/{}.crt", certificate.file_stem),
                contents: certificate.certificate_pem.clone(),
                private: false,
            });
            files.push(SiteFile {
                relative_path: format!("{dir}/{}.key", certificate.file_stem),
                contents: certificate.private_key_pem.clone(),
                private: true,
            });
        }
        for (index, location) in self.additional.iter().enumerate() {
            files.push(SiteFile {
                relative_path: format!(
                    "conf/{}.conf.d/location.{}.conf",
                    self.name,
                    location_file_name(&location.path, index)
                ),
                contents: remove_empty_lines(&location_block(location)),
                private: false,
            });
        }
        files.push(SiteFile {
            relative_path: format!("conf/{}.conf", self.name),
            contents: remove_empty_lines(&self.server_block()),
            private: false,
        });
        files
    }

    /// The `server` block, before empty lines are removed.
    fn server_block(&self) -> String {
        let bindings: Vec<String> = self.binding_directives.iter().map(|(k, v)| format!("    {k} {v};")).collect();
        let host = self.host_name.as_ref().map(|h| format!("    server_name {h};")).unwrap_or_default();
        let include = if self.additional.is_empty() {
            String::new()
        } else {
            format!(
                "    include {}/{}.conf.d/location.*.conf;",
                self.configurations_directory.trim_end_matches('/'),
                self.name
            )
        };
        format!("\nserver {{\n{}\n{host}\n{include}\n{}\n}}\n", bindings.join("\n"), location_block(&self.root))
    }
}

/// A `location` block, before empty lines are removed.
fn location_block(location: &Location) -> String {
    let proxy = location.reverse_proxy_url.as_ref().map(|url| format!("        proxy_pass {url};")).unwrap_or_default();
    let directives: Vec<String> = location.directives.iter().map(|(n, v)| format!("        {n} {v};")).collect();
    let headers: Vec<String> =
        location.headers.iter().map(|(n, v)| format!("        proxy_set_header {n} {v};")).collect();
    format!("\n    location {} {{\n{proxy}\n{}\n{}\n    }}\n", location.path, directives.join("\n"), headers.join("\n"))
}

/// The reference's `RemoveEmptyLines`: lines holding only white space go, and so does the
/// white space at the end.
fn remove_empty_lines(text: &str) -> String {
    let kept: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    kept.join("\n").trim_end().to_string()
}

/// `<index><path made a file name>`: the index keeps nginx's order of regular-expression
/// locations (it reads included files in name order), the first run of letters, digits and
/// slashes of the path (slashes as `_`, trimmed) keeps the name readable.
pub(crate) fn location_file_name(path: &str, index: usize) -> String {
    let run: String = path
        .chars()
        .skip_while(|c| !(c.is_ascii_alphanumeric() || *c == '/'))
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
        .map(|c| if c == '/' { '_' } else { c })
        .collect();
    format!("{index}{}", run.trim_matches('_'))
}

/// `name` with the characters a Linux file name cannot hold (`/`, NUL) as separators: the
/// pieces joined by `_` (a GitHub package id `owner/repo` becomes `owner_repo`).
pub(crate) fn file_name(name: &str) -> String {
    name.split(['/', '\0']).filter(|piece| !piece.is_empty()).collect::<Vec<_>>().join("_")
}

/// A binding as the step's JSON holds it.
#[derive(Debug)]
struct Binding {
    protocol: String,
    port: String,
    ip_address: Option<String>,
    certificate_location: Option<String>,
    certificate_key_location: Option<String>,
    certificate_variable: Option<String>,
    security_protocols: Vec<String>,
    enabled: bool,
}

impl Binding {
    fn listen(&self, https: bool) -> String {
        let ip = self.ip_address.as_deref().filter(|ip| !ip.trim().is_empty() && *ip != "*");
        let ip = ip.map(|ip| format!("{ip}:")).unwrap_or_default();
        format!("{ip}{}{}", self.port, if https { " ssl" } else { "" })
    }

    fn describe(&self) -> String {
        format!("{} {}{}", self.protocol, self.ip_address.as_deref().unwrap_or("*"), format_args!(":{}", self.port))
    }
}

/// The text of a JSON scalar as .NET's `(string)token` gives it; `None` for null and for
/// an empty string.
fn scalar(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some(text).filter(|t| !t.is_empty())
}

/// A JSON object's field, by name in any case (Json.NET binds properties that way).
fn field<'v>(object: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn parse_bindings(json: &str) -> Result<Vec<Binding>, Error> {
    let bad = |reason: String| Error::BadJson { variable: names::BINDINGS, reason };
    let items: Vec<Value> = serde_json::from_str(json).map_err(|e| bad(format!("it is not valid JSON ({e})")))?;
    let mut bindings = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Value::Object(object) = item else {
            return Err(bad(format!("binding {} is not a JSON object", index + 1)));
        };
        let protocol = scalar(field(object, "protocol")).unwrap_or_else(|| "http".into());
        let port = scalar(field(object, "port"))
            .ok_or_else(|| bad(format!("binding {} ({protocol}) has no port", index + 1)))?;
        let security_protocols = match field(object, "securityProtocols") {
            Some(Value::Array(items)) => items.iter().filter_map(|v| scalar(Some(v))).collect(),
            _ => Vec::new(),
        };
        bindings.push(Binding {
            protocol,
            port,
            ip_address: scalar(field(object, "ipAddress")),
            certificate_location: scalar(field(object, "certificateLocation")),
            certificate_key_location: scalar(field(object, "certificateKeyLocation")),
            certificate_variable: scalar(field(object, "certificateVariable")),
            security_protocols,
            enabled: truthy(field(object, "enabled")),
        });
    }
    Ok(bindings)
}

fn parse_locations(json: &str) -> Result<Vec<Location>, Error> {
    let bad = |reason: String| Error::BadJson { variable: names::LOCATIONS, reason };
    let items: Vec<Value> = serde_json::from_str(json).map_err(|e| bad(format!("it is not valid JSON ({e})")))?;
    let mut locations = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Value::Object(object) = item else {
            return Err(bad(format!("location {} is not a JSON object", index + 1)));
        };
        let path = scalar(field(object, "path")).ok_or_else(|| bad(format!("location {} has no path", index + 1)))?;
        let pairs = |name: &str| -> Result<Vec<(String, String)>, Error> {
            let text = scalar(field(object, name)).unwrap_or_default();
            name_value_pairs(&text).map_err(|reason| bad(format!("the {name} of location '{path}' {reason}")))
        };
        let directives = combine(pairs("directives")?, pairs("reverseProxyDirectives")?);
        let headers = combine(pairs("headers")?, pairs("reverseProxyHeaders")?);
        locations.push(Location {
            reverse_proxy_url: scalar(field(object, "reverseProxyUrl")),
            path,
            directives,
            headers,
        });
    }
    Ok(locations)
}

/// Directives or headers held as JSON text: an object (`{"root": "/srv"}`) or an array of
/// objects (`[{"include": "a"}, {"include": "b"}]`, which may repeat a name); empty text is
/// none.
fn name_value_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))?;
    let objects = match &value {
        Value::Object(_) => std::slice::from_ref(&value),
        Value::Array(items) => items.as_slice(),
        _ => return Err("is neither a JSON object nor an array of objects".into()),
    };
    let mut pairs = Vec::new();
    for object in objects {
        let Value::Object(object) = object else { return Err("holds an item that is not a JSON object".into()) };
        for (name, value) in object {
            pairs.push((name.clone(), scalar(Some(value)).unwrap_or_default()));
        }
    }
    Ok(pairs)
}

/// The reference's `CombineItems`: the first list, then each item of the second whose name
/// (in any case) is not there yet; the second list whole when the first is empty.
fn combine(mut first: Vec<(String, String)>, second: Vec<(String, String)>) -> Vec<(String, String)> {
    if first.is_empty() {
        return second;
    }
    for item in second {
        if !first.iter().any(|(name, _)| name.eq_ignore_ascii_case(&item.0)) {
            first.push(item);
        }
    }
    first
}

/// The certificate a binding names by variable: `<var>.SubjectCommonName`,
/// `<var>.CertificatePem`, `<var>.PrivateKeyPem` and the optional `<var>.ChainPem`.
fn certificate_from_variable(variables: &VariableDictionary, variable: &str) -> Result<Certificate, Error> {
    let part = |suffix: &str| -> Result<Option<String>, Error> {
        Ok(variables.get(&format!("{variable}.{suffix}"))?.filter(|v| !v.trim().is_empty()))
    };
    let missing = |suffix: &str| Error::MissingCertificate {
        variable: variable.to_string(),
        part: format!("{variable}.{suffix}"),
    };
    let common_name = part("SubjectCommonName")?.ok_or_else(|| missing("SubjectCommonName"))?;
    let certificate = part("CertificatePem")?.ok_or_else(|| missing("CertificatePem"))?;
    let private_key = part("PrivateKeyPem")?.ok_or_else(|| missing("PrivateKeyPem"))?;
    let chain = part("ChainPem")?.unwrap_or_default();
    let file_stem: String = common_name.chars().filter(|c| !matches!(c, '/' | '\0')).collect();
    Ok(Certificate { file_stem, certificate_pem: format!("{certificate}\n{chain}"), private_key_pem: private_key })
}

#[cfg(test)]
mod tests;
