//! Sending a package as a delta, the driver's part: when the remote cache holds an earlier
//! version of the same package (the probe lists the cache), the agent sends the basis's
//! signature over the session, the delta is built here with the delta library
//! ([`crate::delta`]), and when it is small enough it is sent and applied remotely with
//! `apply-delta`, whose `deltaVerification` answer is checked against the local package
//! (SHA-1 and size). The host's driver (`host.rs`) carries the requests; anything
//! wrong means the full package is sent, as Octopus Server does.

use std::path::PathBuf;

use super::command::LocalPackage;
use super::protocol::CachedFile;
use crate::package::name::parse_file_name;
use crate::service_message::parse::{Item, Parser};

/// A delta is sent only when it is smaller than this share of the package (percent).
pub(crate) const WORTH_PERCENT: u64 = 70;

/// Why a delta could not be sent (the full package goes instead).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeltaError {
    /// The agent could not serve a request.
    #[error("the remote {step} failed: {reason}")]
    Refused {
        /// "signature", "apply-delta".
        step: &'static str,
        /// The agent's reason.
        reason: String,
    },
    /// The signature had no bytes.
    #[error("the remote signature is empty")]
    EmptySignature,
    /// A temporary file could not be made, written or read.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// The delta could not be built from the signature.
    #[error("cannot build the delta: {0}")]
    Build(#[source] crate::delta::Error),
    /// `apply-delta` exited non-zero.
    #[error("apply-delta failed: {stderr}")]
    ApplyFailed {
        /// Its exit status.
        status: Option<i32>,
        /// The end of its stderr.
        stderr: String,
    },
    /// `apply-delta` printed no `deltaVerification`.
    #[error("apply-delta gave no deltaVerification")]
    NoVerification,
    /// `deltaVerification` reported an error (the text is the remote's).
    #[error("{0}")]
    Verification(String),
    /// `deltaVerification` lacks a field.
    #[error("apply-delta's deltaVerification is incomplete")]
    IncompleteVerification,
    /// The rebuilt file is not the local package.
    #[error("the rebuilt package has SHA-1 {hash} and {size} bytes, expected {expected_hash} and {expected_size}")]
    Mismatch { hash: String, size: String, expected_hash: String, expected_size: u64 },
}

/// The best basis for `name` in the cache: the newest file of the same package id and
/// extension with an earlier version (cache names and legacy names alike).
pub(crate) fn choose_basis<'a>(name: &str, cache: &'a [CachedFile]) -> Option<&'a CachedFile> {
    let wanted = parse_file_name(name).ok()?;
    cache
        .iter()
        .filter(|f| f.size > 0)
        .filter_map(|f| parse_file_name(&f.name).ok().map(|id| (f, id)))
        .filter(|(_, id)| {
            id.id.eq_ignore_ascii_case(&wanted.id)
                && id.extension.eq_ignore_ascii_case(&wanted.extension)
                && id.version < wanted.version
        })
        .max_by(|(fa, a), (fb, b)| a.version.cmp(&b.version).then_with(|| fb.name.cmp(&fa.name)))
        .map(|(f, _)| f)
}

/// A delta built from a remote signature.
#[derive(Debug)]
pub(crate) enum Built {
    /// Worth sending: this file, this many bytes.
    Delta {
        /// Holds the file; removed when dropped.
        _dir: tempfile::TempDir,
        path: PathBuf,
        bytes: u64,
    },
    /// Not worth it (the delta is this big): send the full package.
    TooBig(u64),
}

/// Builds the delta from the basis `signature` describes to `package`.
///
/// # Errors
/// An empty or damaged signature, or a temporary file that cannot be written.
pub(crate) fn build(signature: &[u8], package: &LocalPackage) -> Result<Built, DeltaError> {
    if signature.is_empty() {
        return Err(DeltaError::EmptySignature);
    }
    let dir = tempfile::Builder::new()
        .prefix("calamari-fleet-delta-")
        .tempdir()
        .map_err(|source| crate::fs::IoError { op: "create", path: std::env::temp_dir(), source })?;
    let (sig, delta) = (dir.path().join("basis.octosig"), dir.path().join("package.octodelta"));
    crate::fs::write(&sig, signature)?;
    let stats = crate::delta::write_delta_file(&sig, &package.path, &delta).map_err(DeltaError::Build)?;
    let bytes = stats.delta_len;
    if bytes * 100 >= package.size * WORTH_PERCENT {
        return Ok(Built::TooBig(bytes));
    }
    Ok(Built::Delta { _dir: dir, path: delta, bytes })
}

/// The remote's answer to `apply-delta`, checked against the local package: the path of
/// the rebuilt file.
///
/// # Errors
/// A failed `apply-delta`, no or an incomplete `deltaVerification`, its `error`, or a
/// different hash or size.
pub(crate) fn check_applied(
    status: Option<i32>,
    stdout: &str,
    stderr: &str,
    package: &LocalPackage,
) -> Result<String, DeltaError> {
    if status != Some(0) {
        return Err(DeltaError::ApplyFailed { status, stderr: stderr.trim().to_string() });
    }
    check_verification(stdout, &package.sha1, package.size)
}

/// The `deltaVerification` in `apply-delta`'s output, checked against `sha1` and `size`.
fn check_verification(stdout: &str, sha1: &str, size: u64) -> Result<String, DeltaError> {
    let mut parser = Parser::new();
    let mut items = Vec::new();
    for line in stdout.split('\n') {
        parser.feed(line, &mut items);
    }
    parser.finish(&mut items);
    let message = items
        .into_iter()
        .find_map(|item| match item {
            Item::Message { message, .. } if message.name == "deltaVerification" => Some(message),
            _ => None,
        })
        .ok_or(DeltaError::NoVerification)?;
    if let Some(error) = message.get("error") {
        return Err(DeltaError::Verification(error.to_string()));
    }
    let (Some(path), Some(hash), Some(got)) = (message.get("remotePath"), message.get("hash"), message.get("size"))
    else {
        return Err(DeltaError::IncompleteVerification);
    };
    if !hash.eq_ignore_ascii_case(sha1) || got.parse::<u64>().ok() != Some(size) {
        return Err(DeltaError::Mismatch {
            hash: hash.to_string(),
            size: got.to_string(),
            expected_hash: sha1.to_string(),
            expected_size: size,
        });
    }
    Ok(path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> CachedFile {
        CachedFile { size: 10, name: name.into() }
    }

    #[test]
    fn the_newest_earlier_version_of_the_same_package_is_the_basis() {
        let cache = vec![
            file("Acme.Web.0.9.0.tar"),
            file("Acme.Web@S1.0.0@0123456789ABCDEF0123456789ABCDEF.tar"),
            file("Acme.Web.1.0.1.tar"),
            file("Acme.Web.2.0.0.tar"),
            file("Acme.Web.Extra.1.0.0.tar"),
            file("Acme.Web.1.0.0.zip"),
            file("junk.txt"),
        ];
        assert_eq!(
            choose_basis("Acme.Web.1.0.1.tar", &cache).unwrap().name,
            "Acme.Web@S1.0.0@0123456789ABCDEF0123456789ABCDEF.tar"
        );
        assert!(choose_basis("Acme.Web.0.9.0.tar", &cache).is_none());
        assert!(choose_basis("Other.1.0.0.tar", &cache).is_none());
    }

    #[test]
    fn the_verification_must_match_the_local_package() {
        let ok = "##octopus[deltaVerification remotePath='L3gvRmlsZXMvYS50YXI=' hash='YWJj' size='Mw==']";
        assert_eq!(check_verification(ok, "ABC", 3).unwrap(), "/x/Files/a.tar");
        assert!(check_verification(ok, "abd", 3).unwrap_err().to_string().contains("expected abd and 3"));
        assert!(check_verification(ok, "abc", 4).is_err());
        let bad = "Applying\n##octopus[deltaVerification error='Ym9vbQ==']";
        assert_eq!(check_verification(bad, "abc", 3).unwrap_err().to_string(), "boom");
        assert!(matches!(check_verification("nothing", "abc", 3), Err(DeltaError::NoVerification)));
    }

    #[test]
    fn a_delta_is_built_with_the_library_and_kept_only_when_worth_it() {
        let dir = tempfile::tempdir().unwrap();
        let noise: Vec<u8> = (0u32..200_000).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let (basis, new, sig) = (dir.path().join("b"), dir.path().join("A.1.0.1.tar"), dir.path().join("s"));
        crate::fs::write(&basis, &noise).unwrap();
        let mut changed = noise.clone();
        changed[1000..1100].fill(7);
        crate::fs::write(&new, &changed).unwrap();
        crate::delta::write_signature_file(&basis, &sig).unwrap();
        let package = LocalPackage {
            path: new.clone(),
            name: "A.1.0.1.tar".into(),
            sha256: String::new(),
            sha1: String::new(),
            size: changed.len() as u64,
        };
        let signature = crate::fs::read(&sig).unwrap();
        match build(&signature, &package).unwrap() {
            Built::Delta { bytes, path, .. } => {
                assert!(bytes < 10_000, "{bytes}");
                assert_eq!(crate::fs::metadata(&path).unwrap().len(), bytes);
            }
            other => panic!("{other:?}"),
        }
        // Against an unrelated basis, the delta is the whole file: not worth it.
        crate::fs::write(&basis, vec![1u8; 200_000]).unwrap();
        crate::delta::write_signature_file(&basis, &sig).unwrap();
        assert!(matches!(build(&crate::fs::read(&sig).unwrap(), &package).unwrap(), Built::TooBig(_)));
        assert!(matches!(build(&[], &package), Err(DeltaError::EmptySignature)));
    }
}
