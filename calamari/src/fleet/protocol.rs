//! What the driver and the remote agent (`agent.rs`) say to each other over the one
//! ssh session of a host: the agent's stdout carries control lines, the driver's stdin
//! carries requests, one JSON object per line, some followed by raw bytes.
//!
//! A control line is `##calamari-fleet[<name>]`, then a space and a JSON object when it
//! has data. When that object holds `"bytes": N`, exactly N raw bytes follow the line. The
//! boot script (`remote.rs`, `BOOT`) writes the push lines (`need`, `have`, `installed`)
//! in the same form. Every line before the first control line (a login script's chatter)
//! and after [`READY`] (the command's output) is the host's output, except the final
//! [`EXIT`] line.
//!
//! The agent and the driver are always the same build (the agent is the Calamari the
//! driver pushed), so the protocol has no versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The start of a control line.
pub(crate) const PREFIX: &str = "##calamari-fleet[";

/// Boot: this version is not installed; the rest of the line is the host's `uname -m`.
/// The driver answers `<sha256> <size>` and the bundle's bytes ([`push_header`]).
pub(crate) const NEED: &str = "need";
/// Boot: another driver installed this version while we waited for the push lock.
pub(crate) const HAVE: &str = "have";
/// Boot: the bundle was installed.
pub(crate) const INSTALLED: &str = "installed";
/// Agent: what the host holds ([`Probe`]).
pub(crate) const PROBE: &str = "probe";
/// Agent: a basis's signature ([`SignatureReply`]) and its bytes.
pub(crate) const SIGNATURE: &str = "signature";
/// Agent: what `apply-delta` did ([`Applied`]).
pub(crate) const APPLIED: &str = "applied";
/// Agent: a request could not be served, the session goes on ([`Refused`]).
pub(crate) const REFUSED: &str = "refused";
/// Agent: everything sent has arrived; the command starts. Its output follows.
pub(crate) const READY: &str = "ready";
/// Agent: the command ended ([`Exit`]); the last line.
pub(crate) const EXIT: &str = "exit";

/// A control line split into its name and data (`""` when none).
pub(crate) fn parse_control(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix(PREFIX)?;
    let (name, data) = rest.split_once(']')?;
    Some((name, data.strip_prefix(' ').unwrap_or(data)))
}

/// A control line without data.
pub(crate) fn control(name: &str) -> String {
    format!("{PREFIX}{name}]")
}

/// A control line with data.
pub(crate) fn control_with(name: &str, data: &impl Serialize) -> String {
    format!("{PREFIX}{name}] {}", serde_json::to_string(data).expect("protocol messages serialise"))
}

/// The driver's answer to [`NEED`]: the bundle's SHA-256 and size, its bytes after.
pub(crate) fn push_header(sha256: &str, size: u64) -> String {
    format!("{sha256} {size}\n")
}

/// A file in the remote package cache (the bases for deltas).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CachedFile {
    pub(crate) size: u64,
    pub(crate) name: String,
}

/// What the agent found when it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Probe {
    /// The remote TentacleHome, `$HOME/.octopus/<instance>`.
    pub(crate) home: String,
    /// The private work directory made for this run.
    pub(crate) work: String,
    /// Of the packages named on the agent's command line, those in the cache: name to
    /// the cached file's SHA-256.
    pub(crate) cached: BTreeMap<String, String>,
    /// The package cache (when packages were named).
    pub(crate) files: Vec<CachedFile>,
}

/// A request from the driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Request {
    /// Send the signature of this cached file.
    Signature {
        /// Its name in the package cache.
        basis: String,
    },
    /// `bytes` of delta follow: rebuild `new_name` from `basis` with `apply-delta`.
    #[serde(rename_all = "camelCase")]
    ApplyDelta { basis: String, basis_sha1: String, new_name: String, bytes: u64 },
    /// The password line (when `password`) and a tar stream follow; then run the command.
    Run(RunRequest),
}

/// The command to run, and what comes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunRequest {
    /// Calamari's arguments, the command first, with the remote paths of the files sent.
    pub(crate) args: Vec<String>,
    /// A password line comes first, for the command's standard input.
    pub(crate) password: bool,
    /// Packages in the tar stream (`packages/<name>`), to move into the package cache.
    pub(crate) packages: Vec<String>,
    /// Packages rebuilt from deltas: the path `apply-delta` wrote, to rename to its name.
    pub(crate) rebuilt: Vec<Rebuilt>,
}

/// A package `apply-delta` rebuilt into the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Rebuilt {
    /// Where `apply-delta` wrote it.
    pub(crate) path: String,
    /// The package's own file name: its name in the cache from now on.
    pub(crate) name: String,
}

/// The agent's answer to [`Request::Signature`]: the basis's SHA-1; `bytes` of signature follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignatureReply {
    pub(crate) sha1: String,
    pub(crate) bytes: u64,
}

/// What `apply-delta` did: its exit status and its output (`deltaVerification` is in stdout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Applied {
    pub(crate) status: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// A request the agent could not serve, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Refused {
    pub(crate) reason: String,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Exit {
    pub(crate) code: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_lines_round_trip() {
        assert_eq!(parse_control(&control(READY)), Some((READY, "")));
        let line = control_with(EXIT, &Exit { code: 3 });
        assert_eq!(line, "##calamari-fleet[exit] {\"code\":3}");
        let (name, data) = parse_control(&line).unwrap();
        assert_eq!((name, serde_json::from_str::<Exit>(data).unwrap()), (EXIT, Exit { code: 3 }));
        assert_eq!(parse_control("##calamari-fleet[need] x86_64"), Some((NEED, "x86_64")));
        assert_eq!(parse_control("hello"), None);
        let request = Request::Signature { basis: "a.tar".into() };
        assert_eq!(serde_json::to_string(&request).unwrap(), r#"{"signature":{"basis":"a.tar"}}"#);
    }
}
