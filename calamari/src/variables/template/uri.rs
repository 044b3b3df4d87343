//! The `UriPart` filter: the parts of a URI as .NET `System.Uri` reports them.

struct Uri {
    scheme: String,
    user_info: String,
    host: String,
    port: Option<u16>,
    path: String,
    query: String,
    fragment: String,
}

fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        "ftp" => 21,
        "ssh" | "sftp" => 22,
        "telnet" => 23,
        "ldap" => 389,
        "gopher" => 70,
        "nntp" => 119,
        _ => return None,
    })
}

fn parse_absolute(s: &str) -> Option<Uri> {
    let colon = s.find(':')?;
    let scheme = &s[..colon];
    if scheme.len() < 2
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let mut rest = &s[colon + 1..];
    let (mut user_info, mut host, mut port) = (String::new(), String::new(), None);
    if let Some(r) = rest.strip_prefix("//") {
        let end = r.find(['/', '?', '#']).unwrap_or(r.len());
        let authority = &r[..end];
        rest = &r[end..];
        let hostport = match authority.rfind('@') {
            Some(at) => {
                user_info = authority[..at].to_string();
                &authority[at + 1..]
            }
            None => authority,
        };
        let (h, p) = if hostport.starts_with('[') {
            match hostport.find(']') {
                Some(e) => (&hostport[..=e], hostport[e + 1..].strip_prefix(':')),
                None => return None,
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        host = h.to_ascii_lowercase();
        port = match p {
            Some("") | None => None,
            Some(p) => Some(p.parse().ok()?),
        };
        if host.is_empty() && scheme != "file" {
            return None;
        }
    }
    let (before_frag, fragment) = match rest.find('#') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, String::new()),
    };
    let (path, query) = match before_frag.find('?') {
        Some(i) => (&before_frag[..i], before_frag[i..].to_string()),
        None => (before_frag, String::new()),
    };
    let mut path = path.replace(' ', "%20");
    if path.is_empty() && !host.is_empty() {
        path = "/".into();
    }
    Some(Uri { scheme, user_info, host, port, path, query, fragment })
}

fn host_type(host: &str) -> &'static str {
    if host.starts_with('[') {
        "IPv6"
    } else if host.parse::<std::net::Ipv4Addr>().is_ok() {
        "IPv4"
    } else if host.is_empty() {
        "Basic"
    } else if host.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.') {
        "Dns"
    } else {
        "Basic"
    }
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `#{X | UriPart part}`.
pub(super) fn uri_part(arg: &str, options: &[String]) -> Option<String> {
    let Some(part) = options.first() else { return Some("[UriPart error: no argument given]".into()) };
    let lower = part.to_ascii_lowercase();
    let known = [
        "absolutepath",
        "absoluteuri",
        "authority",
        "dnssafehost",
        "fragment",
        "host",
        "hostandport",
        "hostnametype",
        "isabsoluteuri",
        "isdefaultport",
        "isfile",
        "isloopback",
        "isunc",
        "path",
        "pathandquery",
        "port",
        "query",
        "scheme",
        "schemeandserver",
        "userinfo",
    ];
    if !known.contains(&lower.as_str()) {
        return Some(format!("[UriPart {part} error: argument '{part}' not supported]"));
    }
    let Some(u) = parse_absolute(arg) else {
        return Some(if lower == "isabsoluteuri" {
            "false".into()
        } else {
            format!("[UriPart {part} error: This operation is not supported for a relative URI.]")
        });
    };
    let dport = default_port(&u.scheme);
    let port = u.port.or(dport);
    let is_default = u.port.is_none() || u.port == dport;
    let authority =
        if is_default || port.is_none() { u.host.clone() } else { format!("{}:{}", u.host, port.unwrap_or(0)) };
    let scheme_server = format!("{}://{}", u.scheme, authority);
    let port_text = port.map_or("-1".to_string(), |p| p.to_string());
    Some(match lower.as_str() {
        "absolutepath" => u.path.clone(),
        "absoluteuri" => {
            let ui = if u.user_info.is_empty() { String::new() } else { format!("{}@", u.user_info) };
            format!("{}://{ui}{authority}{}{}{}", u.scheme, u.path, u.query, u.fragment)
        }
        "authority" => authority,
        "dnssafehost" => u.host.trim_start_matches('[').trim_end_matches(']').to_string(),
        "fragment" => u.fragment.clone(),
        "host" => u.host.clone(),
        "hostandport" => format!("{}:{port_text}", u.host),
        "hostnametype" => host_type(&u.host).into(),
        "isabsoluteuri" => "true".into(),
        "isdefaultport" => is_default.to_string(),
        "isfile" => (u.scheme == "file").to_string(),
        "isloopback" => {
            (u.host == "localhost" || u.host.starts_with("127.") || u.host == "[::1]" || u.host.is_empty()).to_string()
        }
        "isunc" => (u.scheme == "file" && !u.host.is_empty()).to_string(),
        "path" => unescape(&u.path),
        "pathandquery" => format!("{}{}", u.path, u.query),
        "port" => port_text,
        "query" => u.query.clone(),
        "scheme" => u.scheme.clone(),
        "schemeandserver" => scheme_server,
        _ => u.user_info.clone(),
    })
}
