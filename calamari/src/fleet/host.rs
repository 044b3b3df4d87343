//! One host's run: `check` ([`super::check`]) or a Calamari command over one ssh session,
//! whose steps are [`HostRun`]'s methods in order: [`HostRun::boot`] (push Calamari when
//! the boot script asks, then the agent's probe), [`HostRun::send_packages`] (cached, a
//! delta, or the whole file, per package), [`HostRun::upload_and_start`] (the run request,
//! the password line, the tar stream of the files), then the command's output streams
//! until the session ends and [`conclude`] says how it went.

use std::io::Write;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use super::FleetCommand;
use super::check;
use super::command::{LocalPackage, PreparedArg};
use super::context::HostContext;
use super::delta::{self, Built, DeltaError};
use super::events::{Event, seconds};
use super::failure::{HostError, RemoteProblem, Stage};
use super::output::{self, Control, StdoutPrinter, StdoutSummary};
use super::protocol::{self, Applied, CachedFile, Probe, Rebuilt, Refused, Request, RunRequest, SignatureReply};
use super::remote::Boot;
use super::report::{HostReport, HostResult, PackageSent, SendMode};
use super::ssh::{Finished, Session, SshError};

/// Runs the request on `dest` and reports what happened.
pub(crate) fn run_host(context: &HostContext<'_>, dest: &str) -> HostReport {
    let started = Instant::now();
    context.events.emit(&Event::HostStarted { host: dest });
    let mut report = HostReport::new(dest);
    let result = match &context.request.command {
        FleetCommand::Check => check::check(context, dest, &mut report),
        FleetCommand::Remote(_) => run_command(context, dest, &mut report, started),
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
            report.error = Some(crate::error::chain(&e));
        }
    }
    if let Some(error) = &report.error {
        context.output.error_line(&format!("{}error: {error}", output::prefix(dest, context.output)));
    }
    context.events.emit(&Event::Finished {
        host: dest,
        result: report.result,
        exit_code: report.exit_code,
        seconds: seconds(started.elapsed()),
        error: report.error.as_deref(),
    });
    report
}

/// Why driving the session stopped early.
enum Halt {
    /// The host closed the session (or writing to it failed): its exit status and stderr
    /// tell why, once it has ended.
    Closed,
    /// We stopped: this is why.
    Failed(HostError),
}

/// A file to upload, and where it goes.
struct Upload<'a> {
    local: &'a std::path::Path,
    /// The path inside the tar stream (relative to the work directory).
    entry: String,
}

/// How a package goes, decided per host.
enum DeltaOutcome {
    /// Sent as a delta of this many bytes, rebuilt remotely at this path.
    Sent { bytes: u64, rebuilt: String },
    /// The delta would be this big: not worth it.
    TooBig(u64),
    /// The delta could not be made or applied.
    Failed(DeltaError),
}

/// What goes with the run request.
#[derive(Default)]
struct Plan<'a> {
    args: Vec<String>,
    uploads: Vec<Upload<'a>>,
    /// Packages in the tar stream, for the cache.
    packages: Vec<String>,
    rebuilt: Vec<Rebuilt>,
}

/// One host's session, driven step by step.
struct HostRun<'a, 'c> {
    context: &'a HostContext<'c>,
    dest: &'a str,
    report: &'a mut HostReport,
    version: &'a str,
    session: &'a Session,
    stdin: Option<std::process::ChildStdin>,
    controls: Receiver<Control>,
    stage: Stage,
    started: Instant,
    /// Why writing to the host stopped.
    sending: Option<std::io::Error>,
}

/// A Calamari command on one host, over one session.
fn run_command(
    context: &HostContext<'_>,
    dest: &str,
    report: &mut HostReport,
    started: Instant,
) -> Result<Option<i32>, HostError> {
    let version = context.bundle.version().map_err(HostError::Bundle)?;
    let boot = Boot {
        instance: &context.request.instance,
        version: &version,
        packages: context.command.packages().map(|p| p.name.as_str()).collect(),
    };
    let mut session = Session::start(&context.ssh, dest, &boot.command(), context.output)?;
    let (tx, controls) = std::sync::mpsc::channel();
    let stdout = session.stdout.take().expect("stdout is piped");
    let printer = StdoutPrinter::new(dest, context.output, context.request.service_messages);
    let reader = std::thread::Builder::new()
        .name("fleet-stdout".into())
        .spawn(move || output::read_stdout(stdout, printer, &tx))
        .map_err(SshError::Spawn)?;
    let stdin = session.stdin.take();
    let (outcome, stage, sending) = {
        let mut run = HostRun {
            context,
            dest,
            report,
            version: &version,
            session: &session,
            stdin,
            controls,
            stage: Stage::Connecting,
            started,
            sending: None,
        };
        let outcome = run.drive();
        (outcome, run.stage, run.sending.take())
        // `run` (with stdin) is dropped here: the host sees the end of its input.
    };
    let summary = reader.join().unwrap_or_default();
    let finished = session.finish()?;
    for (name, variable) in &summary.variables {
        let value = if variable.sensitive { crate::log::MASK.to_string() } else { variable.value.clone() };
        report.output_variables.insert(name.clone(), value);
    }
    if summary.ready {
        // The command ran: what it wrote.
        let (stdout_lines, stderr_lines) = (summary.lines, finished.stderr.lines);
        context.events.emit(&Event::Output { host: dest, stdout_lines, stderr_lines });
    }
    conclude(outcome, stage, &summary, &finished, sending)
}

/// How the run ended, from where it stopped, what stdout carried and how `ssh` exited.
fn conclude(
    outcome: Result<(), Halt>,
    stage: Stage,
    summary: &StdoutSummary,
    finished: &Finished,
    sending: Option<std::io::Error>,
) -> Result<Option<i32>, HostError> {
    if let Err(Halt::Failed(e)) = outcome {
        return Err(e);
    }
    if let Some(code) = summary.exit {
        return Ok(Some(code));
    }
    let lost = finished.ssh_failed();
    let problem = RemoteProblem::new(finished, sending);
    Err(match stage {
        Stage::Connecting if lost => HostError::Connect(problem),
        Stage::Connecting | Stage::Probing => HostError::Probe(problem),
        Stage::Pushing if !lost => HostError::Install(problem),
        Stage::Uploading if !lost => HostError::Upload(problem),
        Stage::Running if !lost && problem.script_failed() => HostError::Run(problem),
        Stage::Running if !lost => {
            // The agent could not say how the command ended (its stdout went away).
            return match finished.status {
                Some(code) => Ok(Some(code)),
                None => Err(HostError::Killed),
            };
        }
        stage => HostError::ConnectionLost { stage, problem },
    })
}

impl<'c> HostRun<'_, 'c> {
    fn drive(&mut self) -> Result<(), Halt> {
        let probe = self.boot()?;
        self.stage = Stage::Uploading;
        let plan = self.send_packages(&probe)?;
        self.upload_and_start(plan)?;
        self.stage = Stage::Running;
        Ok(())
    }

    fn prefix(&self) -> String {
        output::prefix(self.dest, self.context.output)
    }

    /// The next control line; the first one says the host answered.
    fn next(&mut self) -> Result<Control, Halt> {
        let control = self.controls.recv().map_err(|_| Halt::Closed)?;
        if self.stage == Stage::Connecting {
            self.session.connected(self.dest, self.context.output);
            let seconds = seconds(self.started.elapsed());
            self.context.events.emit(&Event::Connected { host: self.dest, seconds });
            self.stage = Stage::Probing;
        }
        Ok(control)
    }

    /// Writes to the host; a failure ends the session (it is kept for the message).
    fn write(&mut self, write: impl FnOnce(&mut std::process::ChildStdin) -> std::io::Result<()>) -> Result<(), Halt> {
        let Some(stdin) = self.stdin.as_mut() else { return Err(Halt::Closed) };
        match write(stdin).and_then(|()| stdin.flush()) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.sending = Some(e);
                self.stdin = None;
                Err(Halt::Closed)
            }
        }
    }

    fn request(&mut self, request: &Request) -> Result<(), Halt> {
        let mut line = serde_json::to_vec(request).expect("requests serialise");
        line.push(b'\n');
        self.write(|stdin| stdin.write_all(&line))
    }

    fn parse<T: serde::de::DeserializeOwned>(control: &Control, what: &'static str) -> Result<T, Halt> {
        serde_json::from_str(&control.data).map_err(|source| Halt::Failed(HostError::BadAnswer { what, source }))
    }

    fn unexpected(control: &Control, expected: &'static str) -> Halt {
        Halt::Failed(HostError::Unexpected { expected, answer: control.name.clone() })
    }

    /// Until the probe: pushes Calamari when the boot script asks for it.
    fn boot(&mut self) -> Result<Probe, Halt> {
        loop {
            let control = self.next()?;
            match control.name.as_str() {
                protocol::NEED => {
                    self.stage = Stage::Pushing;
                    self.push(control.data.trim())?;
                }
                protocol::HAVE | protocol::INSTALLED => {
                    let pushed = control.name == protocol::INSTALLED;
                    self.report.pushed_calamari = pushed;
                    let bytes = if pushed { self.context.bundle.get().map(|b| b.size).unwrap_or(0) } else { 0 };
                    let (host, version) = (self.dest, self.version);
                    self.context.events.emit(&Event::Pushed { host, version, bytes, pushed });
                    self.stage = Stage::Probing;
                }
                protocol::PROBE => return Self::parse(&control, "probe"),
                _ => return Err(Self::unexpected(&control, "the probe")),
            }
        }
    }

    /// Sends the bundle: `<sha256> <size>`, then its bytes.
    fn push(&mut self, arch: &str) -> Result<(), Halt> {
        let context = self.context;
        if !context.bundle.is_given() && !arch_matches(arch) {
            return Err(Halt::Failed(HostError::WrongArchitecture {
                remote: arch.to_string(),
                local: std::env::consts::ARCH,
            }));
        }
        let bundle = context.bundle.get().map_err(|e| Halt::Failed(HostError::Bundle(e)))?;
        context.output.line(&format!(
            "{}Pushing Calamari {} ({} KiB)",
            self.prefix(),
            self.version,
            bundle.size / 1024
        ));
        self.write(|stdin| {
            stdin.write_all(protocol::push_header(&bundle.sha256, bundle.size).as_bytes())?;
            let mut file = crate::fs::open(&bundle.path).map_err(std::io::Error::other)?;
            std::io::copy(&mut file, stdin).map(|_| ())
        })
    }

    /// Decides, per package, what goes: nothing (cached), a delta, or the whole file; and
    /// the command's arguments with the remote paths.
    fn send_packages(&mut self, probe: &Probe) -> Result<Plan<'c>, Halt> {
        let context: &HostContext<'c> = self.context;
        let command: &'c super::command::PreparedCommand = context.command;
        let mut plan = Plan { args: vec![context.request.command.name().to_string()], ..Plan::default() };
        for arg in &command.args {
            match arg {
                PreparedArg::Plain(text) => plan.args.push(text.clone()),
                PreparedArg::Package { option, package } => {
                    self.send_package(package, probe, &mut plan)?;
                    plan.args.push(format!("--{option}={}/Files/{}", probe.home, package.name));
                }
                PreparedArg::File { option, local, entry } => {
                    plan.args.push(format!("--{option}={}/{entry}", probe.work));
                    plan.uploads.push(Upload { local, entry: entry.clone() });
                }
            }
        }
        if context.password.is_some() {
            plan.args.push("--variablesPasswordFile=-".into());
        }
        Ok(plan)
    }

    fn send_package(&mut self, package: &'c LocalPackage, probe: &Probe, plan: &mut Plan<'c>) -> Result<(), Halt> {
        let (prefix, name, size) = (self.prefix(), package.name.as_str(), package.size);
        let output = self.context.output;
        if probe.cached.get(name) == Some(&package.sha256) {
            output.line(&format!("{prefix}Package {name} is in the remote cache with the same hash: not sent"));
            self.sent(package, SendMode::Cached, 0);
            return Ok(());
        }
        let basis = if self.context.request.no_delta { None } else { delta::choose_basis(name, &probe.files) };
        if let Some(basis) = basis {
            match self.try_delta(package, basis)? {
                DeltaOutcome::Sent { bytes, rebuilt } => {
                    output.line(&format!(
                        "{prefix}Package {name}: sent a delta of {bytes} bytes against {} instead of {size} bytes",
                        basis.name
                    ));
                    self.sent(package, SendMode::Delta, bytes);
                    plan.rebuilt.push(Rebuilt { path: rebuilt, name: name.to_string() });
                    return Ok(());
                }
                DeltaOutcome::TooBig(bytes) => output.line(&format!(
                    "{prefix}Package {name}: a delta against {} would be {bytes} bytes of {size}: sending the full package",
                    basis.name
                )),
                DeltaOutcome::Failed(why) => output.line(&format!(
                    "{prefix}Package {name}: the delta against {} failed ({}): sending the full package",
                    basis.name,
                    crate::error::chain(&why)
                )),
            }
        }
        plan.uploads.push(Upload { local: &package.path, entry: format!("packages/{name}") });
        plan.packages.push(name.to_string());
        self.sent(package, SendMode::Full, size);
        Ok(())
    }

    fn sent(&mut self, package: &LocalPackage, mode: SendMode, bytes: u64) {
        self.report.packages_sent.push(PackageSent { name: package.name.clone(), mode, bytes });
        self.context.events.emit(&Event::Package { host: self.dest, name: &package.name, mode, bytes });
    }

    /// The basis's signature, the delta built here, applied there.
    fn try_delta(&mut self, package: &LocalPackage, basis: &CachedFile) -> Result<DeltaOutcome, Halt> {
        self.request(&Request::Signature { basis: basis.name.clone() })?;
        let reply = self.next()?;
        let (basis_sha1, signature) = match reply.name.as_str() {
            protocol::SIGNATURE => (Self::parse::<SignatureReply>(&reply, "signature")?.sha1, reply.bytes),
            protocol::REFUSED => return Ok(refused(&reply, "signature")),
            _ => return Err(Self::unexpected(&reply, "a signature")),
        };
        let (path, bytes, _dir) = match delta::build(&signature, package) {
            Ok(Built::Delta { path, bytes, _dir }) => (path, bytes, _dir),
            Ok(Built::TooBig(bytes)) => return Ok(DeltaOutcome::TooBig(bytes)),
            Err(e) => return Ok(DeltaOutcome::Failed(e)),
        };
        self.request(&Request::ApplyDelta {
            basis: basis.name.clone(),
            basis_sha1,
            new_name: package.name.clone(),
            bytes,
        })?;
        self.write(|stdin| {
            let mut file = crate::fs::open(&path).map_err(std::io::Error::other)?;
            std::io::copy(&mut file, stdin).map(|_| ())
        })?;
        let reply = self.next()?;
        match reply.name.as_str() {
            protocol::APPLIED => {
                let applied: Applied = Self::parse(&reply, "apply-delta")?;
                Ok(match delta::check_applied(applied.status, &applied.stdout, &applied.stderr, package) {
                    Ok(rebuilt) => DeltaOutcome::Sent { bytes, rebuilt },
                    Err(e) => DeltaOutcome::Failed(e),
                })
            }
            protocol::REFUSED => Ok(refused(&reply, "apply-delta")),
            _ => Err(Self::unexpected(&reply, "apply-delta's answer")),
        }
    }

    /// The run request, the password line and the tar stream; then waits until the agent
    /// says everything arrived.
    fn upload_and_start(&mut self, plan: Plan<'_>) -> Result<(), Halt> {
        let password = self.context.password;
        let run = RunRequest {
            args: plan.args,
            password: password.is_some(),
            packages: plan.packages,
            rebuilt: plan.rebuilt,
        };
        self.request(&Request::Run(run))?;
        let mut bytes = 0;
        self.write(|stdin| {
            bytes = send_inputs(stdin, password, &plan.uploads)?;
            Ok(())
        })?;
        self.stdin = None;
        let ready = self.next()?;
        if ready.name != protocol::READY {
            return Err(Self::unexpected(&ready, "the ready line"));
        }
        let files = plan.uploads.len();
        self.context.events.emit(&Event::Uploaded { host: self.dest, files, bytes });
        Ok(())
    }
}

fn refused(reply: &Control, step: &'static str) -> DeltaOutcome {
    let reason = serde_json::from_str::<Refused>(&reply.data).map(|r| r.reason).unwrap_or_else(|_| reply.data.clone());
    DeltaOutcome::Failed(DeltaError::Refused { step, reason })
}

fn arch_matches(remote: &str) -> bool {
    let ours = std::env::consts::ARCH;
    remote == ours || (ours == "aarch64" && remote == "arm64") || (ours == "x86" && remote.starts_with('i'))
}

/// Writes the password line, then a tar stream of `uploads` (0600 each); returns the bytes
/// of files sent.
fn send_inputs(stdin: &mut impl Write, password: Option<&str>, uploads: &[Upload<'_>]) -> std::io::Result<u64> {
    if let Some(password) = password {
        stdin.write_all(password.as_bytes())?;
        stdin.write_all(b"\n")?;
    }
    let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(256 * 1024, stdin));
    let mut bytes = 0;
    for upload in uploads {
        let mut file = crate::fs::open(upload.local).map_err(std::io::Error::other)?;
        let size = file.metadata()?.len();
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mtime(0);
        tar.append_data(&mut header, &upload.entry, &mut file)?;
        bytes += size;
    }
    tar.into_inner()?.flush()?;
    Ok(bytes)
}
