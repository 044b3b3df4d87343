//! One host's run: connect, probe, push Calamari when needed, upload and run, clean up.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Instant;

use super::args::{CommandArg, FileKind};
use super::bundle::BundleSource;
use super::delta;
use super::output::{self, StdoutSummary};
use super::quote::sh_command;
use super::remote::{self, SCRIPT_FAILED};
use super::report::{CheckReport, HostReport, HostResult, PackageSent, SendMode};
use super::ssh::{Master, SshOptions, last_lines};
use super::{FleetOutput, FleetRequest};

/// What every host's run shares.
pub(crate) struct HostContext<'a> {
    pub(crate) request: &'a FleetRequest,
    pub(crate) password: Option<&'a str>,
    pub(crate) bundle: &'a BundleSource,
    pub(crate) ssh: SshOptions,
    pub(crate) output: &'a FleetOutput,
    /// The packages' SHA-256 and SHA-1, computed once for all hosts.
    pub(crate) package_hashes: std::sync::Mutex<std::collections::HashMap<PathBuf, (String, String)>>,
}

impl HostContext<'_> {
    /// The package's SHA-256 and SHA-1.
    fn package_hash(&self, path: &Path) -> Result<(String, String), HostError> {
        let mut hashes = self.package_hashes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(hash) = hashes.get(path) {
            return Ok(hash.clone());
        }
        let hashes_of = crate::package::hash::hash_file(path)
            .map_err(|e| HostError::new("cannot read the package", crate::error::chain(&e)))?;
        let hash = (hashes_of.sha256, hashes_of.sha1);
        hashes.insert(path.to_path_buf(), hash.clone());
        Ok(hash)
    }
}

/// Why a host failed: the step and what was seen.
#[derive(Debug)]
pub(crate) struct HostError {
    step: &'static str,
    message: String,
}

impl HostError {
    fn new(step: &'static str, message: impl Into<String>) -> Self {
        HostError { step, message: message.into() }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.message)
    }
}

/// Runs the request on `dest` (the `index`th host) and reports what happened.
pub(crate) fn run_host(context: &HostContext<'_>, index: usize, dest: &str) -> HostReport {
    let started = Instant::now();
    let mut report = HostReport::new(dest);
    let result = match Master::connect(dest, &context.ssh, &format!("host-{index}")) {
        Err(message) => Err(HostError::new("cannot connect", message)),
        Ok(mut master) => {
            let result = if context.request.command == "check" {
                check(context, &master, dest, &mut report)
            } else {
                run_command(context, &master, dest, &mut report)
            };
            master.close();
            result
        }
    };
    report.seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(code) => {
            report.exit_code = code;
            report.result = if code.is_none_or(|c| c == 0) { HostResult::Succeeded } else { HostResult::Failed };
            if let Some(code) = code.filter(|c| *c != 0) {
                report.error = Some(format!("{} exited with code {code}", context.request.command));
            }
        }
        Err(e) => {
            report.result = HostResult::Failed;
            report.error = Some(e.to_string());
        }
    }
    if let Some(error) = &report.error {
        context.output.error_line(&format!("{}error: {error}", output::prefix(dest, context.output)));
    }
    report
}

/// What a remote script gave back.
struct ScriptRun {
    status: Option<i32>,
    stdout: String,
    own_errors: Vec<String>,
    stderr_tail: Vec<String>,
}

impl ScriptRun {
    /// A message for a failure: the scripts' own lines, else the last stderr lines, with
    /// "disk full" said plainly.
    fn problem(&self) -> String {
        let mut lines = self.own_errors.clone();
        lines.extend(self.stderr_tail.iter().cloned());
        let text = last_lines(&lines.join("\n")).unwrap_or_else(|| match self.status {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".into(),
        });
        if text.contains("No space left on device") || text.contains("Disk quota exceeded") {
            format!("the remote disk is full ({text})")
        } else {
            text
        }
    }

    fn lost_connection(&self) -> bool {
        self.status == Some(255)
    }
}

/// Runs a script and collects its output (stdout kept whole; stderr streamed).
fn script(
    master: &Master,
    dest: &str,
    output: &FleetOutput,
    script: &str,
    args: &[String],
) -> Result<ScriptRun, HostError> {
    let mut child = spawn(master, &sh_command(script, args), Stdio::null())?;
    let stderr = child.stderr.take().expect("piped");
    let out = output.clone();
    let dest_owned = dest.to_string();
    let errors = std::thread::spawn(move || output::stream_stderr(stderr, &dest_owned, &out));
    let mut stdout = String::new();
    let _ = child.stdout.take().expect("piped").read_to_string(&mut stdout);
    let status = child.wait().map_err(|e| HostError::new("ssh failed", e.to_string()))?;
    let (own_errors, stderr_tail) = errors.join().unwrap_or_default();
    Ok(ScriptRun { status: status.code(), stdout, own_errors, stderr_tail })
}

/// Runs `remote` over the master connection, stdout and stderr piped.
pub(super) fn spawn_remote(master: &Master, remote: &str, stdin: Stdio) -> Result<Child, HostError> {
    spawn(master, remote, stdin)
}

fn spawn(master: &Master, remote: &str, stdin: Stdio) -> Result<Child, HostError> {
    master
        .command(remote)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HostError::new("cannot run ssh", e.to_string()))
}

fn field<'a>(stdout: &'a str, key: &str) -> Option<&'a str> {
    stdout.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
}

/// A file to upload, and where it goes.
struct Upload {
    local: PathBuf,
    /// The path inside the tar stream (relative to the work directory).
    entry: String,
    mode: u32,
}

/// The remote package cache: `<home>/Files`.
fn remote_cache(home: &str) -> String {
    format!("{home}/Files")
}

fn base_name(path: &Path) -> Result<String, HostError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.contains('\n'))
        .map(str::to_string)
        .ok_or_else(|| HostError::new("cannot upload", format!("'{}' has no usable file name", path.display())))
}

fn run_command(
    context: &HostContext<'_>,
    master: &Master,
    dest: &str,
    report: &mut HostReport,
) -> Result<Option<i32>, HostError> {
    let request = context.request;
    let version = context.bundle.version().map_err(|e| HostError::new("no Calamari bundle", e))?;
    // The packages and their hashes, for the cache check.
    let mut packages = Vec::new();
    for arg in &request.command_args {
        if let CommandArg::File { path, kind: FileKind::Package, .. } = arg {
            let hash = context.package_hash(path)?;
            packages.push((path.clone(), base_name(path)?, hash));
        }
    }
    let mut args = vec![request.instance.clone(), version.clone()];
    args.extend(packages.iter().map(|(_, name, _)| name.clone()));
    let packages: Vec<(PathBuf, String, String, String)> =
        packages.into_iter().map(|(path, name, (sha256, sha1))| (path, name, sha256, sha1)).collect();
    let probe = script(master, dest, context.output, remote::PROBE, &args)?;
    if probe.status != Some(0) {
        return Err(HostError::new("probe failed", probe.problem()));
    }
    let (Some(home), Some(work), Some(state)) =
        (field(&probe.stdout, "home"), field(&probe.stdout, "work"), field(&probe.stdout, "calamari"))
    else {
        return Err(HostError::new("probe failed", format!("unexpected answer: {}", probe.stdout.trim())));
    };
    let cached: Vec<&str> = probe.stdout.lines().filter_map(|l| l.strip_prefix("cached ")).collect();
    let files = delta::cached_files(&probe.stdout);
    let probed = Probed { home, work, state, arch: field(&probe.stdout, "arch"), cached, files };
    let result = push_upload_run(context, master, dest, report, &probed, &packages, version);
    if result.is_err() && master.check() {
        // The run script removes the work directory itself; before it started, do it here.
        let _ = script(master, dest, context.output, remote::REMOVE_WORK, &[work.to_string()]);
    }
    result
}

/// What the probe found on a host.
struct Probed<'a> {
    home: &'a str,
    work: &'a str,
    state: &'a str,
    arch: Option<&'a str>,
    /// Per package, the SHA-256 of the cached file of that name (`-` when none).
    cached: Vec<&'a str>,
    /// The files in the package cache (the bases for deltas).
    files: Vec<delta::CachedFile>,
}

fn push_upload_run(
    context: &HostContext<'_>,
    master: &Master,
    dest: &str,
    report: &mut HostReport,
    probed: &Probed<'_>,
    packages: &[(PathBuf, String, String, String)],
    version: String,
) -> Result<Option<i32>, HostError> {
    let request = context.request;
    let Probed { home, work, state, arch, cached, files } = probed;
    if *state != "complete" {
        if request.bundle.is_none()
            && let Some(arch) = arch
            && !arch_matches(arch)
        {
            return Err(HostError::new(
                "cannot push Calamari",
                format!(
                    "the host is {arch} but this build is {}: give --bundle=FILE with a bundle built for it",
                    std::env::consts::ARCH
                ),
            ));
        }
        report.pushed_calamari = push_calamari(context, master, dest, &version)?;
    }

    // The files to send, and the command line with their remote paths.
    let mut uploads = Vec::new();
    let mut moved = Vec::new();
    let mut rebuilt = Vec::new();
    let mut remote_args = vec![request.command.clone()];
    let mut package_index = 0;
    for (i, arg) in request.command_args.iter().enumerate() {
        match arg {
            CommandArg::Plain(text) => remote_args.push(text.clone()),
            CommandArg::File { option, path, kind: FileKind::Package } => {
                let (local, name, hash, sha1) = &packages[package_index];
                debug_assert_eq!(local, path);
                package_index += 1;
                let remote = format!("{}/{name}", remote_cache(home));
                let prefix = output::prefix(dest, context.output);
                let size = crate::fs::metadata(local).map(|m| m.len()).unwrap_or(0);
                if !send_package(cached.get(package_index - 1).copied(), hash) {
                    context
                        .output
                        .line(&format!("{prefix}Package {name} is in the remote cache with the same hash: not sent"));
                    report.packages_sent.push(PackageSent { name: name.clone(), mode: SendMode::Cached, bytes: 0 });
                } else {
                    let basis = if request.no_delta { None } else { delta::choose_basis(name, files) };
                    let sent = basis.map(|basis| {
                        (
                            basis,
                            delta::send_delta(
                                context,
                                master,
                                (work, &version),
                                &delta::LocalPackage { path: local, name, sha1 },
                                basis,
                            ),
                        )
                    });
                    match sent {
                        Some((basis, Ok(delta::Sent::Delta { bytes, rebuilt: path }))) => {
                            context.output.line(&format!(
                                "{prefix}Package {name}: sent a delta of {bytes} bytes against {} instead of {size} bytes",
                                basis.name
                            ));
                            report.packages_sent.push(PackageSent { name: name.clone(), mode: SendMode::Delta, bytes });
                            rebuilt.push((path, name.clone()));
                        }
                        other => {
                            match other {
                                Some((basis, Ok(delta::Sent::TooBig(bytes)))) => context.output.line(&format!(
                                    "{prefix}Package {name}: a delta against {} would be {bytes} bytes of {size}: sending the full package",
                                    basis.name
                                )),
                                Some((basis, Err(why))) => context.output.line(&format!(
                                    "{prefix}Package {name}: the delta against {} failed ({why}): sending the full package",
                                    basis.name
                                )),
                                _ => {}
                            }
                            uploads.push(Upload {
                                local: local.clone(),
                                entry: format!("packages/{name}"),
                                mode: 0o600,
                            });
                            moved.push(name.clone());
                            report.packages_sent.push(PackageSent {
                                name: name.clone(),
                                mode: SendMode::Full,
                                bytes: size,
                            });
                        }
                    }
                }
                remote_args.push(format!("--{option}={remote}"));
            }
            CommandArg::File { option, path, .. } => {
                // Variables (and scripts, which may hold secrets too): 0600 in the 0700 work directory.
                let entry = format!("files/{i}-{}", base_name(path)?);
                remote_args.push(format!("--{option}={work}/{entry}"));
                uploads.push(Upload { local: path.clone(), entry, mode: 0o600 });
            }
        }
    }
    if context.password.is_some() {
        remote_args.push("--variablesPasswordFile=-".into());
    }
    let mut args = vec![
        request.instance.clone(),
        version,
        work.to_string(),
        if context.password.is_some() { "1" } else { "0" }.to_string(),
        moved.len().to_string(),
    ];
    args.extend(moved);
    args.push(rebuilt.len().to_string());
    for (path, name) in rebuilt {
        args.extend([path, name]);
    }
    args.extend(remote_args);
    run_remote(context, master, dest, &args, &uploads, report)
}

/// Whether a package must be sent, given the remote cache's hash of the same name. When
/// it must, an earlier version in the remote cache may let a delta go instead
/// ([`delta::send_delta`]).
fn send_package(cached_hash: Option<&str>, local_hash: &str) -> bool {
    cached_hash != Some(local_hash)
}

fn arch_matches(remote: &str) -> bool {
    let ours = std::env::consts::ARCH;
    remote == ours || (ours == "aarch64" && remote == "arm64") || (ours == "x86" && remote.starts_with('i'))
}

/// Pushes and installs the bundle under the remote push lock; `false` when another
/// driver installed it meanwhile.
fn push_calamari(context: &HostContext<'_>, master: &Master, dest: &str, version: &str) -> Result<bool, HostError> {
    let bundle = context.bundle.get().map_err(|e| HostError::new("no Calamari bundle", e))?;
    let args =
        vec![context.request.instance.clone(), version.to_string(), bundle.sha256.clone(), bundle.size.to_string()];
    let mut child = spawn(master, &sh_command(remote::PUSH, &args), Stdio::piped())?;
    let stderr = child.stderr.take().expect("piped");
    let out = context.output.clone();
    let dest_owned = dest.to_string();
    let errors = std::thread::spawn(move || output::stream_stderr(stderr, &dest_owned, &out));
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let mut first = String::new();
    let _ = std::io::BufRead::read_line(&mut stdout, &mut first);
    let mut stdin = child.stdin.take().expect("piped");
    let mut write_error = None;
    let pushed = first.trim() == "need";
    if pushed {
        context.output.line(&format!(
            "{}Pushing Calamari {version} ({} KiB)",
            output::prefix(dest, context.output),
            bundle.size / 1024
        ));
        let sent = crate::fs::open(&bundle.path)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|mut file| std::io::copy(&mut file, &mut stdin));
        write_error = sent.err();
    }
    drop(stdin);
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    let status = child.wait().map_err(|e| HostError::new("ssh failed", e.to_string()))?;
    let (own_errors, stderr_tail) = errors.join().unwrap_or_default();
    let run = ScriptRun { status: status.code(), stdout: format!("{first}{rest}"), own_errors, stderr_tail };
    if run.status == Some(0) && (run.stdout.contains("installed") || first.trim() == "have") {
        return Ok(pushed);
    }
    if run.lost_connection() {
        return Err(HostError::new("connection lost while pushing Calamari", run.problem()));
    }
    let mut problem = run.problem();
    if let Some(e) = write_error {
        problem = format!("{problem} (sending stopped: {e})");
    }
    Err(HostError::new("cannot install Calamari", problem))
}

/// Sends the password line and the tar stream, runs the command, streams its output.
fn run_remote(
    context: &HostContext<'_>,
    master: &Master,
    dest: &str,
    args: &[String],
    uploads: &[Upload],
    report: &mut HostReport,
) -> Result<Option<i32>, HostError> {
    let mut child = spawn(master, &sh_command(remote::RUN, args), Stdio::piped())?;
    let stderr = child.stderr.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let (out, dest_owned) = (context.output.clone(), dest.to_string());
    let errors = std::thread::spawn(move || output::stream_stderr(stderr, &dest_owned, &out));
    let (out, dest_owned, raw) = (context.output.clone(), dest.to_string(), context.request.service_messages);
    let lines = std::thread::spawn(move || output::stream_stdout(stdout, &dest_owned, &out, raw));
    let mut stdin = child.stdin.take().expect("piped");
    let sent = send_inputs(&mut stdin, context.password, uploads);
    drop(stdin);
    let status = child.wait().map_err(|e| HostError::new("ssh failed", e.to_string()))?;
    let summary: StdoutSummary = lines.join().unwrap_or_default();
    let (own_errors, stderr_tail) = errors.join().unwrap_or_default();
    let run = ScriptRun { status: status.code(), stdout: String::new(), own_errors, stderr_tail };
    for (name, variable) in summary.variables {
        let value = if variable.sensitive { crate::log::MASK.to_string() } else { variable.value };
        report.output_variables.insert(name, value);
    }
    if !summary.ready {
        let step = if run.lost_connection() { "connection lost while uploading" } else { "upload failed" };
        let mut problem = run.problem();
        if let Err(e) = sent {
            problem = format!("{problem} (sending stopped: {e})");
        }
        return Err(HostError::new(step, problem));
    }
    if run.lost_connection() && !master_alive(master) {
        return Err(HostError::new("connection lost while running", run.problem()));
    }
    match run.status {
        Some(SCRIPT_FAILED) if !run.own_errors.is_empty() => Err(HostError::new("remote run failed", run.problem())),
        Some(code) => Ok(Some(code)),
        None => Err(HostError::new("ssh failed", "killed by a signal")),
    }
}

fn master_alive(master: &Master) -> bool {
    master.check()
}

/// Writes the password line, then a tar stream of `uploads`.
fn send_inputs(stdin: &mut impl Write, password: Option<&str>, uploads: &[Upload]) -> std::io::Result<()> {
    if let Some(password) = password {
        stdin.write_all(password.as_bytes())?;
        stdin.write_all(b"\n")?;
    }
    let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(256 * 1024, stdin));
    for upload in uploads {
        let mut file = crate::fs::open(&upload.local).map_err(|e| std::io::Error::other(e.to_string()))?;
        let size = file.metadata()?.len();
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(upload.mode);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mtime(0);
        tar.append_data(&mut header, &upload.entry, &mut file)?;
    }
    tar.into_inner()?.flush()
}

/// `calamari fleet check` on one host: versions, completeness, free space, the warning.
fn check(
    context: &HostContext<'_>,
    master: &Master,
    dest: &str,
    report: &mut HostReport,
) -> Result<Option<i32>, HostError> {
    let version = context.bundle.version().map_err(|e| HostError::new("no Calamari bundle", e))?;
    let run = script(master, dest, context.output, remote::CHECK, std::slice::from_ref(&context.request.instance))?;
    if run.status != Some(0) {
        let step = if run.lost_connection() { "connection lost" } else { "check failed" };
        return Err(HostError::new(step, run.problem()));
    }
    let mut versions = Vec::new();
    let mut incomplete = Vec::new();
    for line in run.stdout.lines() {
        if let Some(rest) = line.strip_prefix("version ") {
            match rest.rsplit_once(' ') {
                Some((v, "complete")) => versions.push(v.to_string()),
                Some((v, _)) if !v.starts_with('.') => incomplete.push(v.to_string()),
                _ => {}
            }
        }
    }
    // Newest first, as `installed-versions` lists them.
    versions.sort_by(|a, b| {
        let parse = |v: &str| crate::package::Version::parse(v.split('+').next().unwrap_or(v));
        parse(b).cmp(&parse(a)).then_with(|| a.cmp(b))
    });
    let free_kib: Option<u64> = field(&run.stdout, "free").and_then(|f| f.trim().parse().ok());
    let complete = versions.contains(&version);
    let prefix = output::prefix(dest, context.output);
    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    context.output.line(&format!("{prefix}Installed Calamari versions: {}", list(&versions)));
    if !incomplete.is_empty() {
        context.output.line(&format!("{prefix}Incomplete (no Success.txt): {}", list(&incomplete)));
    }
    context.output.line(&format!(
        "{prefix}This build's version {version}: {}",
        if complete {
            "complete"
        } else if incomplete.contains(&version) {
            "incomplete"
        } else {
            "missing"
        }
    ));
    if let Some(kib) = free_kib {
        context.output.line(&format!(
            "{prefix}Free disk space under $HOME/{}: {} MiB",
            remote::OCTOPUS_DIR,
            kib / 1024
        ));
    }
    if versions.is_empty() {
        context.output.line(&format!("{prefix}warning: No versions of Calamari are installed."));
    } else if !complete {
        context.output.line(&format!("{prefix}warning: Not running latest version of Calamari. Expected: {version}"));
    }
    report.check = Some(CheckReport {
        installed_versions: versions,
        incomplete_versions: incomplete,
        complete,
        free_bytes: free_kib.map(|k| k * 1024),
    });
    Ok(Some(0))
}
