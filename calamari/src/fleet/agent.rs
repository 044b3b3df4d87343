//! The remote side of a host's run: `calamari fleet-agent`, which the boot script
//! ([`super::remote::BOOT`]) execs on the host once this version is installed, in the same
//! ssh session. One process does what took a shell script and a dozen small programs
//! (`mkdir`, `find`, `mktemp`, `sha256sum`, `wc`, `tar`, `mv`): it makes the private work
//! directory, hashes the cached packages of the names it was given and lists the cache
//! ([`Probe`]), serves the driver's requests (a basis's signature, a delta to apply with
//! `apply-delta`), receives the password line and the tar stream of the command's files,
//! moves packages into the cache, starts Calamari with the command, passes its standard
//! output on as it comes, and removes the work directory whatever happens.
//!
//! The command and `apply-delta` run as their own processes (the installed
//! `Calamari/<version>/calamari`), exactly as when an agent runs them: their exit code,
//! signals and environment (`TentacleHome`) are theirs. The agent's own failures are one
//! line on stderr starting with [`FLEET_PREFIX`] and exit status [`SCRIPT_FAILED`].

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use super::protocol::{self, Applied, CachedFile, Exit, Probe, Refused, Request, RunRequest, SignatureReply};
use super::remote::{FLEET_PREFIX, SCRIPT_FAILED};
use crate::env_vars::TENTACLE_HOME;
use crate::fs::IoContext as _;

/// Work directories older than this were left by a run whose host went away: removed.
const STALE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// How the agent was started.
#[derive(Debug, Clone)]
pub struct AgentRequest {
    /// The remote TentacleHome, `$HOME/.octopus/<instance>`.
    pub home: PathBuf,
    /// The installed Calamari that runs the command and `apply-delta`.
    pub calamari: PathBuf,
    /// The file names of the packages the command will name (their cached hashes are sent).
    pub packages: Vec<String>,
}

/// Why the agent stopped before the command could run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A filesystem call failed (the message names the path).
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// Standard input ended before a request to run.
    #[error("the driver went away before the command could run")]
    DriverGone,
    /// Standard input could not be read.
    #[error("cannot read from the driver: {0}")]
    Read(#[source] std::io::Error),
    /// Standard output could not be written.
    #[error("cannot answer the driver: {0}")]
    Write(#[source] std::io::Error),
    /// A request line is not one this build sends.
    #[error("cannot understand the driver's request '{line}': {source}")]
    BadRequest {
        /// The line, as received.
        line: String,
        /// Why it did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// Fewer bytes arrived than announced.
    #[error("the {what} arrived incomplete: {got} of {expected} bytes")]
    Incomplete {
        /// "delta", ...
        what: &'static str,
        /// Bytes that arrived.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// The password line was announced but did not come.
    #[error("the password did not arrive")]
    NoPassword,
    /// The tar stream could not be unpacked into the work directory.
    #[error("cannot unpack the upload into {}: {source}", .dir.display())]
    Unpack {
        /// The work directory.
        dir: PathBuf,
        /// What failed (a full disk shows here).
        #[source]
        source: std::io::Error,
    },
    /// A name the driver sent is not a plain file name.
    #[error("'{0}' is not a plain file name")]
    BadName(String),
    /// Calamari could not be started.
    #[error("cannot run {}: {source}", .program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the agent over `input` (the driver's requests) and `output` (control lines and the
/// command's output); the agent's own failure is written to `errors`. Returns the exit
/// status: the command's, or [`SCRIPT_FAILED`].
pub fn run_agent(
    request: &AgentRequest,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    errors: &mut dyn Write,
) -> i32 {
    let result = prepare(request).and_then(|(work, probe)| {
        let code = serve(request, (work.path(), &probe), input, output);
        remove_work(work);
        code
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(errors, "{FLEET_PREFIX}{}", crate::error::chain(&e));
            let _ = errors.flush();
            SCRIPT_FAILED
        }
    }
}

/// Makes the work directory and sends the probe.
fn prepare(request: &AgentRequest) -> Result<(tempfile::TempDir, Probe), AgentError> {
    let works = request.home.join("Work");
    crate::fs::create_dir_all(&works)?;
    remove_stale_work(&works);
    // 0700, as tempfile makes directories on Unix.
    let work = tempfile::Builder::new().prefix("run-").tempdir_in(&works).at("create a directory in", &works)?;
    let cache = request.home.join("Files");
    let mut cached = std::collections::BTreeMap::new();
    for name in &request.packages {
        check_name(name)?;
        let path = cache.join(name);
        if path.is_file() {
            cached.insert(name.clone(), sha256_of(&path)?);
        }
    }
    let files = if request.packages.is_empty() { Vec::new() } else { cached_files(&cache)? };
    let probe = Probe {
        home: request.home.to_string_lossy().into_owned(),
        work: work.path().to_string_lossy().into_owned(),
        cached,
        files,
    };
    Ok((work, probe))
}

fn remove_work(work: tempfile::TempDir) {
    // A command may have made read-only directories inside: make them writable first.
    for entry in walkdir::WalkDir::new(work.path()).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let _ = crate::fs::set_mode(entry.path(), 0o700);
        }
    }
    let _ = work.close();
}

/// Removes `run-*` and `push-*` directories older than [`STALE_AFTER`].
fn remove_stale_work(works: &Path) {
    let Ok(entries) = crate::fs::read_dir(works) else { return };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("run-") || name.starts_with("push-")) {
            continue;
        }
        let old = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old {
            let _ = crate::fs::remove_dir_all(entry.path());
        }
    }
}

fn check_name(name: &str) -> Result<(), AgentError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0', '\n']) {
        return Err(AgentError::BadName(name.to_string()));
    }
    Ok(())
}

fn sha256_of(path: &Path) -> Result<String, AgentError> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut crate::fs::open(path)?, &mut hasher).at("read", path)?;
    Ok(hex::encode(hasher.finalize()))
}

fn cached_files(cache: &Path) -> Result<Vec<CachedFile>, AgentError> {
    let entries = match crate::fs::read_dir(cache) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() {
            files.push(CachedFile { size: meta.len(), name: entry.file_name().to_string_lossy().into_owned() });
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Sends the probe, then serves requests until the one to run.
fn serve(
    request: &AgentRequest,
    (work, probe): (&Path, &Probe),
    input: &mut dyn BufRead,
    output: &mut dyn Write,
) -> Result<i32, AgentError> {
    send(output, protocol::control_with(protocol::PROBE, probe).as_bytes())?;
    loop {
        let mut line = String::new();
        if input.read_line(&mut line).map_err(AgentError::Read)? == 0 {
            return Err(AgentError::DriverGone);
        }
        let parsed = serde_json::from_str::<Request>(line.trim_end())
            .map_err(|source| AgentError::BadRequest { line: line.trim_end().to_string(), source })?;
        match parsed {
            Request::Signature { basis } => {
                let answer = signature(request, work, &basis);
                match answer {
                    Ok((sha1, bytes)) => {
                        let reply = SignatureReply { sha1, bytes: bytes.len() as u64 };
                        let mut message = protocol::control_with(protocol::SIGNATURE, &reply).into_bytes();
                        message.push(b'\n');
                        message.extend_from_slice(&bytes);
                        output.write_all(&message).map_err(AgentError::Write)?;
                        output.flush().map_err(AgentError::Write)?;
                    }
                    Err(e) => refuse(output, &e)?,
                }
            }
            Request::ApplyDelta { basis, basis_sha1, new_name, bytes } => {
                let delta = work.join("package.octodelta");
                receive(input, &delta, bytes, "delta")?;
                let applied = apply_delta(request, &delta, (&basis, &basis_sha1), &new_name);
                let _ = crate::fs::remove_file(&delta);
                match applied {
                    Ok(applied) => send(output, protocol::control_with(protocol::APPLIED, &applied).as_bytes())?,
                    Err(e) => refuse(output, &e)?,
                }
            }
            Request::Run(run) => return run_command(request, work, &run, input, output),
        }
    }
}

/// Writes one control line and flushes.
fn send(output: &mut dyn Write, line: &[u8]) -> Result<(), AgentError> {
    output
        .write_all(line)
        .and_then(|()| output.write_all(b"\n"))
        .and_then(|()| output.flush())
        .map_err(AgentError::Write)
}

fn refuse(output: &mut dyn Write, e: &AgentError) -> Result<(), AgentError> {
    let refused = Refused { reason: crate::error::chain(e) };
    send(output, protocol::control_with(protocol::REFUSED, &refused).as_bytes())
}

/// The basis's SHA-1 and its signature (made in the work directory, read back, removed).
fn signature(request: &AgentRequest, work: &Path, basis: &str) -> Result<(String, Vec<u8>), AgentError> {
    check_name(basis)?;
    let path = request.home.join("Files").join(basis);
    let sha1 = crate::package::hash::hash_file(&path).map_err(|e| match e {
        crate::package::Error::Io(io) => AgentError::Io(io),
        other => AgentError::Io(crate::fs::IoError {
            op: "hash",
            path: path.clone(),
            source: std::io::Error::other(other.to_string()),
        }),
    })?;
    let file = work.join("basis.octosig");
    crate::delta::write_signature_file(&path, &file).map_err(|e| {
        AgentError::Io(crate::fs::IoError {
            op: "write the signature of",
            path: path.clone(),
            source: std::io::Error::other(crate::error::chain(&e)),
        })
    })?;
    let bytes = crate::fs::read(&file)?;
    crate::fs::remove_file(&file)?;
    Ok((sha1.sha1, bytes))
}

/// Copies exactly `bytes` from `input` into a new 0600 file.
fn receive(input: &mut dyn BufRead, path: &Path, bytes: u64, what: &'static str) -> Result<(), AgentError> {
    let mut file = crate::fs::create(path)?;
    let got = std::io::copy(&mut input.take(bytes), &mut file).at("write", path)?;
    if got != bytes {
        return Err(AgentError::Incomplete { what, got, expected: bytes });
    }
    Ok(())
}

/// Runs the installed Calamari's `apply-delta`, as the server would.
fn apply_delta(
    request: &AgentRequest,
    delta: &Path,
    (basis, basis_sha1): (&str, &str),
    new_name: &str,
) -> Result<Applied, AgentError> {
    check_name(basis)?;
    check_name(new_name)?;
    let output = Command::new(&request.calamari)
        .arg("apply-delta")
        .arg(format!("--basisFileName={}", request.home.join("Files").join(basis).display()))
        .arg(format!("--fileHash={basis_sha1}"))
        .arg(format!("--deltaFileName={}", delta.display()))
        .arg(format!("--newFileName={new_name}"))
        .env(TENTACLE_HOME, &request.home)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| AgentError::Spawn { program: request.calamari.clone(), source })?;
    Ok(Applied {
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Receives the password and the files, moves the packages into the cache, runs the
/// command and passes its output on. Returns its exit status.
fn run_command(
    request: &AgentRequest,
    work: &Path,
    run: &RunRequest,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
) -> Result<i32, AgentError> {
    let password = if run.password {
        let mut line = String::new();
        if input.read_line(&mut line).map_err(AgentError::Read)? == 0 {
            return Err(AgentError::NoPassword);
        }
        Some(line)
    } else {
        None
    };
    unpack(input, work)?;
    let cache = request.home.join("Files");
    if !run.packages.is_empty() || !run.rebuilt.is_empty() {
        crate::fs::create_dir_all(&cache)?;
    }
    for name in &run.packages {
        check_name(name)?;
        crate::fs::rename(work.join("packages").join(name), cache.join(name))?;
    }
    for rebuilt in &run.rebuilt {
        check_name(&rebuilt.name)?;
        let target = cache.join(&rebuilt.name);
        if Path::new(&rebuilt.path) != target {
            crate::fs::rename(&rebuilt.path, &target)?;
        }
    }
    send(output, protocol::control(protocol::READY).as_bytes())?;
    let mut child = Command::new(&request.calamari)
        .args(&run.args)
        .current_dir(work)
        .env(TENTACLE_HOME, &request.home)
        .stdin(if password.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| AgentError::Spawn { program: request.calamari.clone(), source })?;
    if let (Some(password), Some(mut stdin)) = (password, child.stdin.take()) {
        // A command that never reads it closes the pipe: not our failure.
        let _ = stdin.write_all(password.as_bytes());
    }
    let ended_with_newline = pass_on(child.stdout.take().expect("piped"), output);
    let status = child.wait().map_err(|source| AgentError::Spawn { program: request.calamari.clone(), source })?;
    let code = exit_code(status);
    // The exit line starts a line of its own even when the output's last line had no end.
    let mut tail = if ended_with_newline { Vec::new() } else { b"\n".to_vec() };
    tail.extend_from_slice(protocol::control_with(protocol::EXIT, &Exit { code }).as_bytes());
    // The driver may be gone; the command ran to its end all the same.
    let _ = send(output, &tail);
    Ok(code)
}

/// Unpacks the tar stream into `work`: `packages/<name>` and `files/<name>` only.
fn unpack(input: &mut dyn BufRead, work: &Path) -> Result<(), AgentError> {
    let unpack_error = |source| AgentError::Unpack { dir: work.to_path_buf(), source };
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(unpack_error)? {
        let mut entry = entry.map_err(unpack_error)?;
        let path = entry.path().map_err(unpack_error)?.into_owned();
        let mut parts = path.iter();
        let (Some(dir), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AgentError::BadName(path.display().to_string()));
        };
        if !(dir == "packages" || dir == "files") {
            return Err(AgentError::BadName(path.display().to_string()));
        }
        check_name(&name.to_string_lossy())?;
        crate::fs::create_dir_all(work.join(dir))?;
        entry.unpack_in(work).map_err(unpack_error)?;
    }
    Ok(())
}

/// Copies the command's output as it comes (each read written and flushed at once);
/// returns whether it ended with a newline (or was empty). When the driver is gone, the
/// rest is read and dropped so that the command is not stopped by a full pipe.
fn pass_on(mut from: impl Read, output: &mut dyn Write) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    let mut last = b'\n';
    let mut driver_gone = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return last == b'\n',
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return last == b'\n',
        };
        last = buf[n - 1];
        if !driver_gone && output.write_all(&buf[..n]).and_then(|()| output.flush()).is_err() {
            driver_gone = true;
        }
    }
}

/// The status a shell would report: the code, or 128 + the signal.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(SCRIPT_FAILED)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)]

    use super::*;

    fn agent(home: &Path) -> AgentRequest {
        AgentRequest { home: home.to_path_buf(), calamari: PathBuf::from("/bin/sh"), packages: vec!["a.tar".into()] }
    }

    #[test]
    fn names_with_a_path_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a\nb"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("Acme.Web.1.0.0.tar.gz").is_ok());
    }

    #[test]
    fn probe_then_run_then_the_work_directory_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join("Files")).unwrap();
        std::fs::write(home.join("Files/a.tar"), b"abc").unwrap();
        // An old run's directory is removed, a fresh one and a script's step directory kept.
        let stale = home.join("Work/run-old");
        std::fs::create_dir_all(&stale).unwrap();
        let day_ago = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
        filetime_set(&stale, day_ago);
        std::fs::create_dir_all(home.join("Work/step-1")).unwrap();
        filetime_set(&home.join("Work/step-1"), day_ago);

        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(6);
        header.set_mode(0o600);
        tar.append_data(&mut header, "files/0-s.sh", &b"echo x"[..]).unwrap();
        let run = Request::Run(RunRequest {
            args: vec!["-c".into(), "cat; echo \"$TentacleHome\"; printf tail; exit 4".into()],
            password: true,
            packages: vec![],
            rebuilt: vec![],
        });
        let mut input = serde_json::to_vec(&run).unwrap();
        input.extend_from_slice(b"\nsecret\n");
        input.extend_from_slice(&tar.into_inner().unwrap());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_agent(&agent(&home), &mut &input[..], &mut out, &mut err);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(code, 4, "{out}{}", String::from_utf8_lossy(&err));
        let mut lines = out.lines();
        let (name, data) = protocol::parse_control(lines.next().unwrap()).unwrap();
        assert_eq!(name, protocol::PROBE);
        let probe: Probe = serde_json::from_str(data).unwrap();
        assert_eq!(probe.cached["a.tar"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(probe.files, [CachedFile { size: 3, name: "a.tar".into() }]);
        assert!(Path::new(&probe.work).starts_with(home.join("Work")));
        assert_eq!(lines.next(), Some(protocol::control(protocol::READY).as_str()));
        assert_eq!(lines.next(), Some("secret"));
        assert_eq!(lines.next(), Some(home.to_str().unwrap()));
        assert_eq!(lines.next(), Some("tail"));
        assert_eq!(lines.next(), Some("##calamari-fleet[exit] {\"code\":4}"));
        assert!(!Path::new(&probe.work).exists(), "the work directory is removed");
        assert!(!stale.exists(), "a day-old run directory is removed");
        assert!(home.join("Work/step-1").exists(), "other directories are left alone");
    }

    #[test]
    fn an_upload_outside_the_work_directory_is_refused_and_nothing_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o600);
        tar.append_data(&mut header, "other/x", &b"x"[..]).unwrap();
        let run = Request::Run(RunRequest { args: vec![], password: false, packages: vec![], rebuilt: vec![] });
        let mut input = serde_json::to_vec(&run).unwrap();
        input.push(b'\n');
        input.extend_from_slice(&tar.into_inner().unwrap());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_agent(&agent(dir.path()), &mut &input[..], &mut out, &mut err);
        assert_eq!(code, SCRIPT_FAILED);
        assert_eq!(String::from_utf8(err).unwrap(), "calamari-fleet: 'other/x' is not a plain file name\n");
        assert!(!String::from_utf8(out).unwrap().contains("[ready]"));
        assert_eq!(std::fs::read_dir(dir.path().join("Work")).unwrap().count(), 0);
    }

    fn filetime_set(path: &Path, time: SystemTime) {
        let file = std::fs::File::open(path).unwrap();
        file.set_modified(time).unwrap();
    }
}
