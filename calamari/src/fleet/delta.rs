//! Sending a package as a delta: when the remote cache holds an earlier version of the
//! same package (the probe lists the cache), the remote Calamari makes the basis's
//! signature and sends it back over the master connection, the delta is built here, and
//! when it is small enough it is uploaded and applied remotely with `apply-delta`; its
//! `deltaVerification` answer is checked against the local package (SHA-1 and size).
//! Anything that goes wrong on the way means the full package is sent, as Octopus Server
//! does.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Stdio;

use super::host::{HostContext, spawn_remote};
use super::quote::sh_command;
use super::ssh::Master;
use crate::package::name::parse_file_name;
use crate::service_message::parse::{Item, Parser};

/// A delta is sent only when it is smaller than this share of the package (percent).
pub(crate) const WORTH_PERCENT: u64 = 70;

/// `$1` instance, `$2` version, `$3` work directory, `$4` basis file name (in the package
/// cache). Prints the basis's SHA-1 on one line, then the signature's bytes.
pub(crate) const SIGNATURE: &str = r#"H="$HOME/.octopus/$1"; V="$2"; W="$3"; B="$H/Files/$4"
[ -f "$B" ] || { echo "calamari-fleet: the basis $4 is gone" >&2; exit 97; }
sha1sum < "$B" | cut -d' ' -f1 || exit 97
"$H/Calamari/$V/calamari" delta signature "$B" "$W/basis.octosig" >/dev/null || exit 97
cat "$W/basis.octosig" && rm -f "$W/basis.octosig"
"#;

/// `$1` instance, `$2` version, `$3` work directory, `$4` basis file name, `$5` its SHA-1,
/// `$6` delta size, `$7` the new package's file name. Reads exactly `$6` bytes of delta
/// from stdin and runs `apply-delta`, which prints `deltaVerification`.
pub(crate) const APPLY: &str = r#"H="$HOME/.octopus/$1"; V="$2"; W="$3"; D="$W/package.octodelta"
umask 077
head -c "$6" > "$D" || exit 97
if [ "$(wc -c < "$D")" -ne "$6" ]; then echo "calamari-fleet: the delta arrived incomplete" >&2; exit 97; fi
TentacleHome="$H"; export TentacleHome
"$H/Calamari/$V/calamari" apply-delta --basisFileName="$H/Files/$4" --fileHash="$5" --deltaFileName="$D" --newFileName="$7" </dev/null
s=$?; rm -f "$D"; exit $s
"#;

/// A file in the remote package cache, as the probe lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedFile {
    pub(crate) size: u64,
    pub(crate) name: String,
}

/// Parses the probe's `file <size> <name>` lines.
pub(crate) fn cached_files(stdout: &str) -> Vec<CachedFile> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("file "))
        .filter_map(|rest| {
            let (size, name) = rest.split_once(' ')?;
            Some(CachedFile { size: size.parse().ok()?, name: name.to_string() })
        })
        .collect()
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

/// How a package went to a host.
pub(crate) enum Sent {
    /// As a delta of this many bytes, rebuilt remotely at this path.
    Delta { bytes: u64, rebuilt: String },
    /// Not worth it (the delta is this big): send the full package.
    TooBig(u64),
}

/// The remote's answer to `apply-delta`, checked against the local package.
pub(crate) fn check_verification(stdout: &str, sha1: &str, size: u64) -> Result<String, String> {
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
        .ok_or_else(|| "apply-delta gave no deltaVerification".to_string())?;
    if let Some(error) = message.get("error") {
        return Err(error.to_string());
    }
    let (Some(path), Some(hash), Some(got)) = (message.get("remotePath"), message.get("hash"), message.get("size"))
    else {
        return Err("apply-delta's deltaVerification is incomplete".into());
    };
    if !hash.eq_ignore_ascii_case(sha1) || got.parse::<u64>().ok() != Some(size) {
        return Err(format!("the rebuilt package has SHA-1 {hash} and {got} bytes, expected {sha1} and {size}"));
    }
    Ok(path.to_string())
}

/// The local package a delta is made for.
pub(crate) struct LocalPackage<'a> {
    pub(crate) path: &'a Path,
    /// Its file name (and cache name on the remote).
    pub(crate) name: &'a str,
    pub(crate) sha1: &'a str,
}

/// Tries to send `package` as a delta against `basis`, with the remote Calamari
/// `version` and work directory `work`. `Err` says why not (the caller sends the full
/// package).
pub(crate) fn send_delta(
    context: &HostContext<'_>,
    master: &Master,
    (work, version): (&str, &str),
    package: &LocalPackage<'_>,
    basis: &CachedFile,
) -> Result<Sent, String> {
    let LocalPackage { path: local, name, sha1 } = *package;
    let instance = &context.request.instance;
    let size = crate::fs::metadata(local).map_err(|e| e.to_string())?.len();
    // The signature, over the master connection.
    let args = [instance.clone(), version.to_string(), work.to_string(), basis.name.clone()];
    let mut child = spawn_remote(master, &sh_command(SIGNATURE, &args), Stdio::null()).map_err(|e| e.to_string())?;
    let mut stdout = Vec::new();
    let mut stderr = String::new();
    let mut err_pipe = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let _ = err_pipe.read_to_string(&mut stderr);
        stderr
    });
    let _ = child.stdout.take().expect("piped").read_to_end(&mut stdout);
    let status = child.wait().map_err(|e| e.to_string())?;
    let stderr = errors.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("the remote signature failed: {}", stderr.trim()));
    }
    let newline = stdout.iter().position(|b| *b == b'\n').ok_or("the remote signature is empty")?;
    let basis_sha1 = String::from_utf8_lossy(&stdout[..newline]).trim().to_string();
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (sig, delta) = (temp.path().join("basis.octosig"), temp.path().join("package.octodelta"));
    crate::fs::write(&sig, &stdout[newline + 1..]).map_err(|e| e.to_string())?;
    let quiet = crate::Log::new(std::io::sink(), std::io::sink(), crate::log::Style::Protocol);
    let request =
        crate::DeltaRequest { signature: sig, new_file: local.to_path_buf(), delta: delta.clone(), progress: false };
    crate::create_delta(&request, &quiet).map_err(|e| crate::error::chain(&e))?;
    let bytes = crate::fs::metadata(&delta).map_err(|e| e.to_string())?.len();
    if bytes * 100 >= size * WORTH_PERCENT {
        return Ok(Sent::TooBig(bytes));
    }
    // Upload and apply.
    let args = [
        instance.clone(),
        version.to_string(),
        work.to_string(),
        basis.name.clone(),
        basis_sha1,
        bytes.to_string(),
        name.to_string(),
    ];
    let mut child = spawn_remote(master, &sh_command(APPLY, &args), Stdio::piped()).map_err(|e| e.to_string())?;
    let mut err_pipe = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err_pipe.read_to_string(&mut text);
        text
    });
    let mut out_pipe = child.stdout.take().expect("piped");
    let output = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out_pipe.read_to_string(&mut text);
        text
    });
    let mut stdin = child.stdin.take().expect("piped");
    let sent = crate::fs::open(&delta)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|mut file| std::io::copy(&mut file, &mut stdin))
        .and_then(|_| stdin.flush());
    drop(stdin);
    let status = child.wait().map_err(|e| e.to_string())?;
    let (stdout, stderr) = (output.join().unwrap_or_default(), errors.join().unwrap_or_default());
    if let Err(e) = sent {
        return Err(format!("sending the delta failed: {e} {}", stderr.trim()));
    }
    if !status.success() {
        return Err(format!("apply-delta failed: {}", stderr.trim()));
    }
    let rebuilt = check_verification(&stdout, sha1, size)?;
    Ok(Sent::Delta { bytes, rebuilt })
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
        assert_eq!(
            cached_files("file 12 a b.tar\nfile x y\nwork /w\n"),
            [CachedFile { size: 12, name: "a b.tar".into() }]
        );
    }

    #[test]
    fn the_verification_must_match_the_local_package() {
        let ok = "##octopus[deltaVerification remotePath='L3gvRmlsZXMvYS50YXI=' hash='YWJj' size='Mw==']";
        assert_eq!(check_verification(ok, "ABC", 3).unwrap(), "/x/Files/a.tar");
        assert!(check_verification(ok, "abd", 3).unwrap_err().contains("expected abd and 3"));
        assert!(check_verification(ok, "abc", 4).is_err());
        let bad = "Applying\n##octopus[deltaVerification error='Ym9vbQ==']";
        assert_eq!(check_verification(bad, "abc", 3).unwrap_err(), "boom");
        assert!(check_verification("nothing", "abc", 3).is_err());
    }
}
