//! The health gate: `Calamari.Release.HealthCheckUrl` (an HTTP GET, success = a 2xx status)
//! or `Calamari.Release.HealthCheckCommand` (bash, success = exit 0), polled until it
//! succeeds or the timeout runs out.
//!
//! The HTTP client is a plain HTTP/1.1 GET over `std::net::TcpStream`: a health endpoint is
//! a local, plain-HTTP URL in practice, and a TLS client would be the largest dependency of
//! the crate. An `https://` URL is refused with a message saying so (a command running
//! `curl -fsS https://...` covers it). Each attempt has its own connect, write and read
//! timeouts, bounded by what is left of the overall timeout.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::Path;
use std::time::{Duration, Instant};

use super::Error;

/// The longest one attempt may take (connect, send, read the status line).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause between attempts.
const INTERVAL: Duration = Duration::from_millis(250);

/// A health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HealthCheck {
    /// An HTTP GET of this URL.
    Url(HttpUrl),
    /// A bash command, run in the installation directory.
    Command(String),
}

impl std::fmt::Display for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HealthCheck::Url(url) => write!(f, "GET {}", url.original),
            HealthCheck::Command(command) => write!(f, "command '{command}'"),
        }
    }
}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    /// As given.
    pub(crate) original: String,
    /// The host, without brackets for IPv6.
    pub(crate) host: String,
    /// The port (80 when not given).
    pub(crate) port: u16,
    /// The path and query, starting with `/`.
    pub(crate) target: String,
}

/// Parses a health-check URL: `http://host[:port][/path][?query]`.
pub(crate) fn parse_url(url: &str) -> Result<HttpUrl, Error> {
    let bad = |reason: &str| Error::HealthCheckUrl { url: url.to_string(), reason: reason.to_string() };
    let trimmed = url.trim();
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(bad(
            "only http:// URLs are supported (no TLS client is built in); use Calamari.Release.HealthCheckCommand \
             with curl for https",
        ));
    }
    let Some(rest) = lower.starts_with("http://").then(|| &trimmed["http://".len()..]) else {
        return Err(bad("it must start with http://"));
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(split);
    let target = if target.is_empty() {
        "/".to_string()
    } else if target.starts_with('?') {
        format!("/{target}")
    } else {
        target.to_string()
    };
    if target.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("the path holds spaces or control characters"));
    }
    if authority.contains('@') {
        return Err(bad("user information in the URL is not supported"));
    }
    let (host, port) = if let Some(after) = authority.strip_prefix('[') {
        let Some((host, tail)) = after.split_once(']') else { return Err(bad("an unclosed IPv6 address")) };
        (host.to_string(), tail.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("it has no host"));
    }
    let port = match port {
        None => 80,
        Some(p) => {
            p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("the port is not a number from 1 to 65535"))?
        }
    };
    Ok(HttpUrl { original: trimmed.to_string(), host, port, target })
}

/// The result of one attempt: whether it succeeded, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub(crate) ok: bool,
    pub(crate) result: String,
}

/// Polls `check` until it succeeds (`Ok` with the last result) or `timeout` runs out (`Err`
/// with the last result). At least one attempt is made.
pub(crate) fn poll(
    check: &HealthCheck,
    directory: &Path,
    timeout: Duration,
    log: &crate::Log,
) -> Result<String, (String, u32)> {
    let deadline = Instant::now() + timeout;
    let mut attempts = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let budget = left.clamp(Duration::from_millis(200), ATTEMPT_TIMEOUT);
        attempts += 1;
        let attempt = match check {
            HealthCheck::Url(url) => http_get(url, budget),
            HealthCheck::Command(command) => run_command(command, directory, budget),
        };
        if attempt.ok {
            return Ok(attempt.result);
        }
        log.verbose(format!("Health check {check}, attempt {attempts}: {}", attempt.result));
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err((attempt.result, attempts));
        }
        std::thread::sleep(INTERVAL.min(left));
    }
}

/// One HTTP/1.1 GET; success is a 2xx status.
pub(crate) fn http_get(url: &HttpUrl, timeout: Duration) -> Attempt {
    let fail = |result: String| Attempt { ok: false, result };
    let addresses = match (url.host.as_str(), url.port).to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => return fail(format!("cannot resolve {}: {e}", url.host)),
    };
    let started = Instant::now();
    let mut last = format!("no address for {}", url.host);
    let mut stream = None;
    for address in addresses {
        let left = timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(50));
        match TcpStream::connect_timeout(&address, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {address}: {e}"),
        }
    }
    let Some(mut stream) = stream else { return fail(last) };
    let left = timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(50));
    if stream.set_read_timeout(Some(left)).and_then(|()| stream.set_write_timeout(Some(left))).is_err() {
        return fail("cannot set socket timeouts".to_string());
    }
    let host = if url.host.contains(':') { format!("[{}]", url.host) } else { url.host.clone() };
    let host = if url.port == 80 { host } else { format!("{host}:{}", url.port) };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: calamari/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.target,
        crate::VERSION
    );
    if let Err(e) = stream.write_all(request.as_bytes()) {
        return fail(format!("cannot send the request: {e}"));
    }
    // The status line is all we need; read until its end (bounded).
    let mut buffer = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while !buffer.windows(2).any(|w| w == b"\r\n") && !buffer.contains(&b'\n') {
        if buffer.len() > 8192 {
            return fail("the status line is longer than 8 KiB".to_string());
        }
        if started.elapsed() > timeout {
            return fail(format!("no answer within {} ms", timeout.as_millis()));
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return fail(format!("no answer within {} ms", timeout.as_millis()));
            }
            Err(e) => return fail(format!("cannot read the answer: {e}")),
        }
    }
    match parse_status_line(&buffer) {
        Some((code, reason)) => {
            let result = format!("HTTP {code}{}{reason}", if reason.is_empty() { "" } else { " " });
            Attempt { ok: (200..300).contains(&code), result }
        }
        None if buffer.is_empty() => fail("the connection was closed without an answer".to_string()),
        None => fail(format!("not an HTTP answer: {:?}", String::from_utf8_lossy(&buffer[..buffer.len().min(60)]))),
    }
}

/// `HTTP/1.x NNN Reason` → (NNN, Reason).
pub(crate) fn parse_status_line(bytes: &[u8]) -> Option<(u16, String)> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..end]).ok()?.trim_end_matches('\r');
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !(version.starts_with("HTTP/1.") || version == "HTTP/2" || version == "HTTP/2.0") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((code.parse().ok()?, parts.next().unwrap_or("").trim().to_string()))
}

/// Runs `bash -c command` in `directory`, killing its process group when `timeout` runs out.
/// The output goes to an anonymous temporary file, so a chatty command never blocks on a
/// full pipe; its last line is the attempt's result.
fn run_command(command: &str, directory: &Path, timeout: Duration) -> Attempt {
    use std::os::unix::process::CommandExt as _;
    let fail = |result: String| Attempt { ok: false, result };
    let output = match tempfile::tempfile() {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot create a temporary file: {e}")),
    };
    let (Ok(out), Ok(err)) = (output.try_clone(), output.try_clone()) else {
        return fail("cannot duplicate a file handle".to_string());
    };
    let mut child = match std::process::Command::new("bash")
        .arg("-c")
        .arg(command)
        .current_dir(directory)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start bash: {e}")),
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= timeout => {
                if let Some(pid) = rustix::process::Pid::from_raw(child.id().cast_signed()) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return fail(format!("cannot wait for bash: {e}")),
        }
    };
    let mut text = String::new();
    let mut output = output;
    use std::io::Seek as _;
    let _ = output.seek(std::io::SeekFrom::Start(0));
    let _ = output.take(64 * 1024).read_to_string(&mut text);
    let last_line = text.lines().rev().find(|l| !l.trim().is_empty()).map(str::trim).unwrap_or("").to_string();
    let with_output = |head: String| if last_line.is_empty() { head } else { format!("{head}: {last_line}") };
    match status {
        None => fail(with_output(format!("no exit within {} ms", timeout.as_millis()))),
        Some(s) if s.success() => Attempt { ok: true, result: with_output("exit code 0".to_string()) },
        Some(s) => match s.code() {
            Some(code) => fail(with_output(format!("exit code {code}"))),
            None => fail(with_output("killed by a signal".to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://127.0.0.1:8080/health?x=1#frag").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.target.as_str()), ("127.0.0.1", 8080, "/health?x=1"));
        let u = parse_url("HTTP://example.test").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.target.as_str()), ("example.test", 80, "/"));
        let u = parse_url("http://[::1]:9/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        for (bad, needle) in [
            ("https://x/", "only http://"),
            ("ftp://x/", "must start with http://"),
            ("http://:80/", "no host"),
            ("http://x:0/", "port"),
            ("http://x:99999/", "port"),
            ("http://u:p@x/", "user information"),
            ("http://x/a b", "spaces"),
        ] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some((200, "OK".into())));
        assert_eq!(
            parse_status_line(b"HTTP/1.0 503 Service Unavailable\r\nX: y"),
            Some((503, "Service Unavailable".into()))
        );
        assert_eq!(parse_status_line(b"HTTP/1.1 204\r\n"), Some((204, String::new())));
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 OK\r\n"), None);
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK"), None);
    }
}
