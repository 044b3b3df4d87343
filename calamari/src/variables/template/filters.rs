//! The built-in filters. Each returns `None` to decline (the substitution is
//! then echoed).

use base64::Engine as _;
use md5::Digest as _;

use super::dotnet::{self, DateTime, Zone};
use super::version;

/// A filter's result would be longer than the evaluation allows.
#[derive(Debug)]
pub(crate) struct TooLarge;

/// Applies the built-in filter `name` (any case) to `arg` with `options`. The filters that
/// can multiply their input (`Replace`, `Indent`) stop with [`TooLarge`] rather than build
/// a result longer than `max_len` bytes; for the others the caller checks the result.
pub(crate) fn apply(
    name: &str,
    arg: Option<&str>,
    options: &[String],
    max_len: usize,
) -> Result<Option<String>, TooLarge> {
    if name.eq_ignore_ascii_case("replace") && matches!(options.len(), 1 | 2) {
        let (Some(re), Some(arg)) = (regex(&options[0]), arg) else { return Ok(None) };
        return replace(&re, arg, options.get(1).map_or("", String::as_str), max_len).map(Some);
    }
    if name.eq_ignore_ascii_case("indent") {
        return match arg {
            Some(arg) => indent(arg, options, max_len),
            None => Ok(None),
        };
    }
    Ok(apply_other(name, arg, options))
}

/// `Replace`, giving up once the result is longer than `max_len`.
fn replace(re: &fancy_regex::Regex, arg: &str, replacement: &str, max_len: usize) -> Result<String, TooLarge> {
    struct Capped {
        replacement: String,
        literal: bool,
        max_len: usize,
        over: bool,
    }
    use fancy_regex::Replacer as _;
    impl fancy_regex::Replacer for Capped {
        fn replace_append(&mut self, caps: &fancy_regex::Captures<'_, str>, dst: &mut String) {
            if self.over {
                return;
            }
            if self.literal {
                dst.push_str(&self.replacement);
            } else {
                caps.expand(&self.replacement, dst);
            }
            self.over = dst.len() > self.max_len;
        }
    }
    let replacement = dotnet_replacement(replacement);
    let literal = !replacement.contains('$');
    let mut capped = Capped { replacement, literal, max_len, over: false };
    let out = re.replace_all(arg, capped.by_ref());
    if capped.over || out.len() > max_len { Err(TooLarge) } else { Ok(out.into_owned()) }
}

fn apply_other(name: &str, arg: Option<&str>, options: &[String]) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let no_opts = options.is_empty();
    match lower.as_str() {
        "toupper" if no_opts => arg.map(|a| map_case(a, true)),
        "tolower" if no_opts => arg.map(|a| map_case(a, false)),
        "tobase64" => {
            let bytes = encode(arg?, options.first().map(String::as_str), options.len())?;
            Some(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        "frombase64" => {
            if options.len() > 1 {
                return None;
            }
            let bytes = base64::engine::general_purpose::STANDARD.decode(arg?.trim()).ok()?;
            match options.first().map(|s| s.to_ascii_lowercase()).as_deref() {
                None | Some("utf8") | Some("utf-8") => Some(String::from_utf8_lossy(&bytes).into_owned()),
                Some("unicode") => Some(decode_utf16le(&bytes)),
                _ => None,
            }
        }
        "htmlescape" if no_opts => Some(html_escape(arg?, true)),
        "xmlescape" if no_opts => Some(html_escape(arg?, false)),
        "jsonescape" if no_opts => Some(json_escape(arg?)),
        "yamlsinglequoteescape" if no_opts => Some(yaml_single(arg?)),
        "yamldoublequoteescape" if no_opts => Some(yaml_double(arg?)),
        "propertieskeyescape" if no_opts => Some(properties_escape(arg?, true)),
        "propertiesvalueescape" if no_opts => Some(properties_escape(arg?, false)),
        "markdown" | "markdowntohtml" if no_opts => Some(markdown(arg?)),
        "uriescape" if no_opts => Some(uri_escape(arg?, false)),
        "uridataescape" if no_opts => Some(uri_escape(arg?, true)),
        "nowdate" | "nowdateutc" => {
            if arg.is_some() || options.len() > 1 {
                return None;
            }
            let now = if lower == "nowdate" { DateTime::now_local() } else { DateTime::now_utc() };
            let now = if lower == "nowdate" { DateTime { zone: Zone::Unspecified, ..now } } else { now };
            dotnet::format_datetime(now, options.first().map_or("O", String::as_str), false)
        }
        "addhours" | "adddays" => {
            if options.len() != 1 {
                return None;
            }
            let amount = super::calc::parse_double(&options[0])?;
            let dt = dotnet::parse_datetime(arg?)?;
            let ms = amount * if lower == "addhours" { 3_600_000.0 } else { 86_400_000.0 };
            Some(dotnet::round_trip(dt.add_millis(ms)?))
        }
        "format" => format(arg?, options),
        "match" if options.len() == 1 => Some(regex(&options[0])?.is_match(arg?).unwrap_or(false).to_string()),
        "startswith" if options.len() == 1 => Some(arg?.starts_with(options[0].as_str()).to_string()),
        "endswith" if options.len() == 1 => Some(arg?.ends_with(options[0].as_str()).to_string()),
        "contains" if options.len() == 1 => Some(arg?.contains(options[0].as_str()).to_string()),
        "substring" => substring(arg?, options),
        "truncate" => {
            let arg = arg?;
            let len: usize = dotnet::parse_int(options.first()?)?.try_into().ok()?;
            let units: Vec<u16> = arg.encode_utf16().collect();
            if units.len() > len {
                let suffix = options.get(1).map_or("...", String::as_str);
                Some(String::from_utf16_lossy(&units[..len]) + suffix)
            } else {
                Some(arg.to_string())
            }
        }
        "trim" => {
            let arg = arg?;
            match options.iter().map(|o| o.to_ascii_lowercase()).collect::<Vec<_>>().as_slice() {
                [] => Some(arg.trim().to_string()),
                [o] if o == "start" => Some(arg.trim_start().to_string()),
                [o] if o == "end" => Some(arg.trim_end().to_string()),
                _ => None,
            }
        }
        "uripart" => super::uri::uri_part(arg?, options),
        "versionmajor"
        | "versionminor"
        | "versionpatch"
        | "versionrevision"
        | "versionprerelease"
        | "versionprereleaseprefix"
        | "versionprereleasecounter"
        | "versionmetadata" => {
            let v = version::parse(arg?);
            Some(match lower.as_str() {
                "versionmajor" => v.numbers[0].clone(),
                "versionminor" => v.numbers[1].clone(),
                "versionpatch" => v.numbers[2].clone(),
                "versionrevision" => v.numbers[3].clone(),
                "versionprerelease" => v.pre_release,
                "versionprereleaseprefix" => v.pre_release_prefix,
                "versionprereleasecounter" => v.pre_release_counter,
                _ => v.metadata,
            })
        }
        "append" if !no_opts => Some(format!("{}{}", arg.unwrap_or(""), options.concat())),
        "prepend" if !no_opts => Some(format!("{}{}", options.concat(), arg.unwrap_or(""))),
        "md5" | "sha1" | "sha256" | "sha384" | "sha512" => hash(&lower, arg?, options),
        _ => None,
    }
}

/// Case mapping one character at a time, as .NET does (no expansions such as ß → SS).
fn map_case(s: &str, upper: bool) -> String {
    if s.is_ascii() {
        return if upper { s.to_ascii_uppercase() } else { s.to_ascii_lowercase() };
    }
    s.chars()
        .map(|c| {
            let mapped: Vec<char> = if upper { c.to_uppercase().collect() } else { c.to_lowercase().collect() };
            if mapped.len() == 1 { mapped[0] } else { c }
        })
        .collect()
}

fn encode(text: &str, encoding: Option<&str>, count: usize) -> Option<Vec<u8>> {
    if count > 1 {
        return None;
    }
    match encoding.map(str::to_ascii_lowercase).as_deref() {
        None | Some("utf8") | Some("utf-8") => Some(text.as_bytes().to_vec()),
        Some("unicode") => Some(text.encode_utf16().flat_map(u16::to_le_bytes).collect()),
        _ => None,
    }
}

fn decode_utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    String::from_utf16_lossy(&units)
}

fn html_escape(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '/' if slash => out.push_str("&#x2F;"),
            c => out.push(c),
        }
    }
    out
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

fn yaml_single(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        if b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) == Some(&b'\n')) {
            let start = i;
            while i < s.len() && (b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) == Some(&b'\n'))) {
                i += if b[i] == b'\r' { 2 } else { 1 };
            }
            out.push_str(if b[start] == b'\r' { "\r\n" } else { "\n" });
            out.push_str(&s[start..i]);
            continue;
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        if c == '\'' {
            out.push_str("''");
        } else {
            out.push(c);
        }
        i += c.len_utf8();
    }
    out
}

fn yaml_double(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for u in s.encode_utf16() {
        match u {
            0x0D => out.push_str("\\r"),
            0x0A => out.push_str("\\n"),
            0x09 => out.push_str("\\t"),
            0x5C => out.push_str("\\\\"),
            0x22 => out.push_str("\\\""),
            0x20..=0x7E => out.push(u as u8 as char),
            other => out.push_str(&format!("\\u{other:04x}")),
        }
    }
    out
}

fn properties_escape(s: &str, key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, u) in s.encode_utf16().enumerate() {
        match u {
            0x20 if key || i == 0 => out.push_str("\\ "),
            0x3A if key => out.push_str("\\:"),
            0x3D if key => out.push_str("\\="),
            0x5C => out.push_str("\\\\"),
            0x0D => out.push_str("\\r"),
            0x0A => out.push_str("\\n"),
            0x09 => out.push_str("\\t"),
            u if u < 0xFF => out.push(char::from_u32(u as u32).unwrap_or('?')),
            other => out.push_str(&format!("\\u{other:04x}")),
        }
    }
    out
}

fn markdown(s: &str) -> String {
    let mut options = comrak::Options::default();
    options.extension.table = true;
    options.extension.strikethrough = true;
    options.extension.autolink = true;
    options.extension.superscript = true;
    options.extension.subscript = true;
    options.render.r#unsafe = true;
    let mut html = comrak::markdown_to_html(s.trim(), &options);
    if !html.ends_with('\n') {
        html.push('\n');
    }
    html
}

fn uri_escape(s: &str, data: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (!data
                && matches!(
                    b,
                    b':' | b'/'
                        | b'?'
                        | b'#'
                        | b'['
                        | b']'
                        | b'@'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b'%'
                ));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn format(arg: &str, options: &[String]) -> Option<String> {
    match options {
        [fmt] => {
            if let Some(d) = dotnet::parse_decimal(arg) {
                return dotnet::format_number(d, fmt, false);
            }
            let dt = dotnet::parse_datetime(arg)?.as_offset();
            dotnet::format_datetime(dt, fmt, true)
        }
        [ty, fmt] => match ty.to_ascii_lowercase().as_str() {
            "int" | "int32" => dotnet::format_number(dotnet::parse_int(arg)? as f64, fmt, true),
            "double" => dotnet::format_number(super::calc::parse_double(arg)?, fmt, false),
            "decimal" => dotnet::format_number(dotnet::parse_decimal(arg)?, fmt, false),
            "date" | "datetime" => dotnet::format_datetime(dotnet::parse_datetime(arg)?, fmt, false),
            "datetimeoffset" => dotnet::format_datetime(dotnet::parse_datetime(arg)?.as_offset(), fmt, true),
            _ => None,
        },
        _ => None,
    }
}

fn regex(pattern: &str) -> Option<fancy_regex::Regex> {
    fancy_regex::RegexBuilder::new(pattern).backtrack_limit(1_000_000).build().ok()
}

/// .NET replacement syntax (`$1`, `${name}`, `$$`, `$&`) in the regex crate's syntax.
fn dotnet_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len());
    let b = r.as_bytes();
    let mut i = 0;
    while i < r.len() {
        if b[i] != b'$' {
            let c = r[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        match b.get(i + 1) {
            Some(d) if d.is_ascii_digit() => {
                let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                out.push_str(&format!("${{{}}}", &r[i + 1..i + 1 + n]));
                i += 1 + n;
            }
            Some(b'{') => match r[i..].find('}') {
                Some(end) => {
                    out.push_str(&r[i..=i + end]);
                    i += end + 1;
                }
                None => {
                    out.push_str("$$");
                    i += 1;
                }
            },
            Some(b'$') => {
                out.push_str("$$");
                i += 2;
            }
            Some(b'&') => {
                out.push_str("${0}");
                i += 2;
            }
            _ => {
                out.push_str("$$");
                i += 1;
            }
        }
    }
    out
}

fn substring(arg: &str, options: &[String]) -> Option<String> {
    let nums: Vec<usize> = options.iter().map(|o| dotnet::parse_int(o)?.try_into().ok()).collect::<Option<_>>()?;
    let units: Vec<u16> = arg.encode_utf16().collect();
    let (start, len) = match nums.as_slice() {
        [len] => (0, *len),
        [start, len] => (*start, *len),
        _ => return None,
    };
    if start > units.len() {
        return None;
    }
    let end = start.saturating_add(len).min(units.len());
    Some(String::from_utf16_lossy(&units[start..end]))
}

fn indent_spec(o: &str) -> Option<(usize, usize)> {
    let num = |s: &str| -> Option<usize> {
        if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().filter(|n| *n <= 255)
    };
    match o.split_once('/') {
        None => num(o).map(|n| (n, n)),
        Some(("", n)) => Some((0, num(n)?)),
        Some((m, n)) => Some((num(m)?, num(n)?)),
    }
}

fn indent(arg: &str, options: &[String], max_len: usize) -> Result<Option<String>, TooLarge> {
    if arg.is_empty() {
        return Ok(if options.len() > 2 { None } else { Some(String::new()) });
    }
    let (first, rest) = match options {
        [] => ("    ".to_string(), "    ".to_string()),
        [o] => match indent_spec(o) {
            Some((m, n)) => (" ".repeat(m), " ".repeat(n)),
            None => (o.clone(), o.clone()),
        },
        [a, b] => (a.clone(), b.clone()),
        _ => return Ok(None),
    };
    let newlines = memchr::memchr_iter(b'\n', arg.as_bytes()).count();
    let len = newlines.saturating_mul(rest.len()).saturating_add(first.len()).saturating_add(arg.len());
    if len > max_len {
        return Err(TooLarge);
    }
    let mut out = String::with_capacity(len);
    out.push_str(&first);
    for (i, line) in arg.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&rest);
        }
        out.push_str(line);
    }
    Ok(Some(out))
}

fn hash(algo: &str, arg: &str, options: &[String]) -> Option<String> {
    if options.len() > 2 {
        return None;
    }
    let mut size: Option<usize> = None;
    let mut encoding: Option<String> = None;
    for o in options {
        let lower = o.to_ascii_lowercase();
        if matches!(lower.as_str(), "utf8" | "utf-8" | "unicode" | "base64") {
            if encoding.is_some() {
                return None;
            }
            encoding = Some(lower);
        } else {
            let n = dotnet::parse_int(o)?;
            if n <= 0 || size.is_some() {
                return None;
            }
            size = Some(n as usize);
        }
    }
    let bytes = match encoding.as_deref() {
        None | Some("utf8") | Some("utf-8") => arg.as_bytes().to_vec(),
        Some("unicode") => arg.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        _ => base64::engine::general_purpose::STANDARD.decode(arg.trim()).ok()?,
    };
    let digest: Vec<u8> = match algo {
        "md5" => md5::Md5::digest(&bytes).to_vec(),
        "sha1" => sha1::Sha1::digest(&bytes).to_vec(),
        "sha256" => sha2::Sha256::digest(&bytes).to_vec(),
        "sha384" => sha2::Sha384::digest(&bytes).to_vec(),
        _ => sha2::Sha512::digest(&bytes).to_vec(),
    };
    let keep = size.unwrap_or(digest.len()).min(digest.len());
    Some(hex::encode(&digest[..keep]))
}
