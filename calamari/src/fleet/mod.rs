//! `calamari fleet`: run one Calamari command on many hosts over OpenSSH.
//!
//! Per host ([`host`]), one `ssh` session ([`ssh`]) does everything: its remote command
//! is a small boot script ([`remote::BOOT`]) that `exec`s this build's Calamari as the
//! fleet agent ([`agent`]) when `$HOME/.octopus/<instance>/Calamari/<version>/Success.txt`
//! is there, and otherwise first takes the remote push lock, receives the bundle over the
//! same stdin and installs it (so two drivers at once push and install once). The agent
//! makes a private work directory, reports the cached packages' hashes and the package
//! cache ([`protocol::Probe`]), serves delta requests ([`delta`]), receives the variables
//! password line and a tar stream of the command's input files, moves packages into the
//! remote package cache, runs the command and removes the work directory. Output streams
//! back line by line ([`output`]), prefixed with the host. One connection, one
//! authentication and one round trip for the probe per host: over a slow link the round
//! trips, and on a busy machine the processes, are what a run costs.
//!
//! A package to send whose earlier version is in the remote cache goes as a delta when
//! that is small enough ([`delta`]): the agent makes the basis's signature, the delta is
//! built here and applied remotely, and anything wrong falls back to the full package.
//!
//! Scheduling ([`schedule`]): `--parallel` hosts at once, `--batch` rolling windows with
//! `--batchWait` between them, `--maxFailPercentage`. The summary table, the JSON report
//! and `--retryFailed` are in [`report`]; `--events` in [`events`].
//!
//! The bundle pushed is this build's executable (or `--bundle=FILE`, for a remote of
//! another platform): the remote runs what it is given.

mod agent;
mod args;
mod bundle;
mod check;
mod command;
mod context;
mod delta;
mod events;
mod failure;
mod host;
mod hosts;
mod output;
mod protocol;
mod quote;
mod remote;
mod report;
mod schedule;
mod ssh;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use agent::{AgentError, AgentRequest, run_agent};
pub use args::{CommandArg, FileKind, parse_arguments};
pub use bundle::BundleError;
pub use command::FleetCommand;
pub use report::{CheckReport, HostReport, HostResult, PackageSent, SendMode};

use crate::error::Outcome;
use crate::self_install::CalamariExecutable;

/// The instance directory under `$HOME/.octopus` when `--instance` is not given.
pub(crate) const DEFAULT_INSTANCE: &str = "OctopusServer";
/// Hosts at once when `--parallel` is not given.
pub(crate) const DEFAULT_PARALLEL: usize = 10;

/// Errors of `calamari fleet` itself; what goes wrong on one host is in its
/// [`HostReport`], and [`Error::HostsFailed`] sums them up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file (hosts file, package, report) could not be read or written.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// The `--hosts` file cannot be read.
    #[error("cannot read the --hosts file: {source}")]
    HostsFile {
        /// What failed, naming the file.
        #[source]
        source: crate::fs::IoError,
    },
    /// The options are wrong.
    #[error("{0}")]
    Usage(String),
    /// A destination that `ssh` would misread.
    #[error("invalid host '{host}' ({source_name}): {reason}")]
    BadHost {
        /// The destination as given.
        host: String,
        /// Where it came from: `--host` or `FILE:LINE`.
        source_name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A package named by the command cannot be read.
    #[error("cannot read the package '{}': {source}", .path.display())]
    Package {
        /// The package.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<crate::package::Error>,
    },
    /// The `--retryFailed` report cannot be read.
    #[error("cannot read the --retryFailed report: {source}")]
    RetryReportUnreadable {
        /// What failed, naming the file.
        #[source]
        source: crate::fs::IoError,
    },
    /// The `--retryFailed` file is not a fleet report.
    #[error("--retryFailed={}: expected the JSON report of an earlier run (--report), found {source}", .path.display())]
    RetryReportInvalid {
        /// The file.
        path: PathBuf,
        /// What did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The `--events` file cannot be created.
    #[error("cannot write the --events file: {source}")]
    EventsFile {
        /// What failed, naming the file.
        #[source]
        source: crate::fs::IoError,
    },
    /// The variables password could not be read.
    #[error(transparent)]
    Variables(#[from] crate::variables::Error),
    /// The Calamari bundle to push could not be made or is not valid.
    #[error(transparent)]
    Bundle(#[from] crate::self_install::Error),
    /// The `--bundle` given is not a Calamari bundle.
    #[error("--bundle={}: {source}", .path.display())]
    BadBundle {
        /// The file given.
        path: PathBuf,
        /// Why it cannot be used.
        #[source]
        source: BundleError,
    },
    /// A thread for the hosts could not be started.
    #[error("cannot start the fleet run: {0}")]
    Start(#[source] std::io::Error),
    /// Some hosts failed or were not started.
    #[error("{failed} of {total} hosts failed{}", if *.not_started > 0 { format!(", {not_started} not started") } else { String::new() })]
    HostsFailed {
        /// Hosts that failed.
        failed: usize,
        /// Hosts not started (the batch or failure limit stopped them).
        not_started: usize,
        /// All hosts.
        total: usize,
    },
}

/// `--batch`: how many hosts a rolling window holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// This many hosts.
    Hosts(usize),
    /// This percentage of the hosts (rounded up, at least one).
    Percent(u32),
}

/// What `calamari fleet` was asked to do.
#[derive(Debug, Clone)]
pub struct FleetRequest {
    /// The command to run on every host (`deploy-package`, `run-script`, ..., or `check`).
    pub command: FleetCommand,
    /// Its arguments, with the files to upload singled out.
    pub command_args: Vec<CommandArg>,
    /// The destinations, in order.
    pub hosts: Vec<String>,
    /// `ssh -F FILE`.
    pub ssh_config: Option<PathBuf>,
    /// `$HOME/.octopus/<instance>` is the remote TentacleHome.
    pub instance: String,
    /// Hosts at once.
    pub parallel: usize,
    /// Rolling windows.
    pub batch: Option<Batch>,
    /// New hosts stop starting once more than this percentage failed.
    pub max_fail_percentage: u32,
    /// Write the JSON report here.
    pub report: Option<PathBuf>,
    /// Pass the agent protocol through instead of human-readable output.
    pub service_messages: bool,
    /// Push this bundle instead of one made from the running executable.
    pub bundle: Option<PathBuf>,
    /// `--variablesPassword` as given (read by [`FleetRequest::resolve_password`]).
    pub password_inline: Option<String>,
    /// `--variablesPasswordFile` as given (`-` for standard input).
    pub password_file: Option<PathBuf>,
    /// `--noDelta`: always send whole packages, never a delta against an earlier version.
    pub no_delta: bool,
    /// `--events=FILE`: one JSON object per line as things happen; `-` for the writer the
    /// caller gave [`FleetOutput::with_events`].
    pub events: Option<PathBuf>,
    /// `--retryFailed=REPORT`: the hosts came from the failures in this earlier report.
    pub retry_failed: Option<PathBuf>,
    /// `--batchWait`: the pause between rolling batches.
    pub batch_wait: Option<Duration>,
}

impl FleetRequest {
    /// A request for `command` with the defaults and no hosts.
    pub fn new(command: FleetCommand) -> Self {
        FleetRequest {
            command,
            command_args: Vec::new(),
            hosts: Vec::new(),
            ssh_config: None,
            instance: DEFAULT_INSTANCE.to_string(),
            parallel: DEFAULT_PARALLEL,
            batch: None,
            max_fail_percentage: 0,
            report: None,
            service_messages: false,
            bundle: None,
            password_inline: None,
            password_file: None,
            no_delta: false,
            events: None,
            retry_failed: None,
            batch_wait: None,
        }
    }

    /// Reads the variables password the request names (from its file or standard input).
    ///
    /// # Errors
    /// As [`crate::resolve_password`].
    pub fn resolve_password(&self) -> Result<Option<String>, Error> {
        Ok(crate::variables::input::resolve_password(
            self.password_inline.as_deref(),
            self.password_file.as_deref(),
            "--variablesPasswordFile",
        )?)
    }
}

/// A writer shared by the hosts' threads.
type SharedWriter = Arc<Mutex<Box<dyn Write + Send>>>;

/// Where the fleet's output goes: the host-prefixed lines and the summary (`out`), the
/// remote stderr and per-host errors (`err`), and `--events=-` (`events`). Cheap to clone.
#[derive(Clone)]
pub struct FleetOutput {
    out: SharedWriter,
    err: SharedWriter,
    events: Option<SharedWriter>,
    /// A person reads along: decoded service messages instead of the protocol.
    pub terminal: bool,
}

impl std::fmt::Debug for FleetOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetOutput").field("terminal", &self.terminal).finish_non_exhaustive()
    }
}

impl FleetOutput {
    /// Output over two writers.
    pub fn new(out: impl Write + Send + 'static, err: impl Write + Send + 'static, terminal: bool) -> Self {
        FleetOutput {
            out: Arc::new(Mutex::new(Box::new(out))),
            err: Arc::new(Mutex::new(Box::new(err))),
            events: None,
            terminal,
        }
    }

    /// Where `--events=-` writes (without it, `-` means `out`).
    #[must_use]
    pub fn with_events(mut self, events: impl Write + Send + 'static) -> Self {
        self.events = Some(Arc::new(Mutex::new(Box::new(events))));
        self
    }

    /// Writes one line to `out` (whole, under the lock, so hosts never interleave in a line).
    pub(crate) fn line(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(out, "{text}");
    }

    /// Writes one line to `err`.
    pub(crate) fn error_line(&self, text: &str) {
        let mut err = self.err.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(err, "{text}");
    }

    /// Flushes both writers.
    pub(crate) fn flush(&self) {
        let _ = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner).flush();
        let _ = self.err.lock().unwrap_or_else(std::sync::PoisonError::into_inner).flush();
    }
}

/// `calamari fleet`: runs the request on every host and prints the summary; writes the
/// report when asked. `executable` is the Calamari to push when no `--bundle` is given.
///
/// # Errors
/// [`Error::HostsFailed`] when any host failed or was not started (after the summary and
/// the report were written); the others when the run could not start, before any host
/// was contacted.
pub fn run_fleet(
    request: &FleetRequest,
    executable: Option<&CalamariExecutable>,
    output: &FleetOutput,
) -> Result<(Outcome, Vec<HostReport>), Error> {
    let password = request.resolve_password()?;
    let bundle = bundle::BundleSource::new(request.bundle.clone(), executable.cloned());
    if let Some(path) = &request.bundle {
        // A given bundle is checked before any host is contacted.
        bundle.get().map_err(|source| Error::BadBundle { path: path.clone(), source })?;
    }
    let prepared = command::PreparedCommand::prepare(&request.command_args)?;
    let events = open_events(request, output)?;
    if request.hosts.is_empty() {
        if let Some(report) = &request.retry_failed {
            output.line(&format!("Nothing to retry: every host in {} succeeded", report.display()));
        }
        if let Some(path) = &request.report {
            crate::fs::write_atomic(path, report::to_json(&[]))?;
        }
        output.flush();
        return Ok((Outcome::Success, Vec::new()));
    }
    let context = context::HostContext {
        request,
        password: password.as_deref(),
        bundle: &bundle,
        ssh: ssh::SshOptions { config: request.ssh_config.clone() },
        output,
        events: &events,
        command: &prepared,
    };
    events.emit(&events::Event::RunStarted { command: request.command.name(), hosts: &request.hosts });
    let reports = schedule::run_all(&context)?;
    report::print_summary(&reports, output);
    if let Some(path) = &request.report {
        crate::fs::write_atomic(path, report::to_json(&reports))?;
    }
    let count = |result| reports.iter().filter(|r| r.result == result).count();
    let (failed, not_started) = (count(HostResult::Failed), count(HostResult::NotStarted));
    events.emit(&events::Event::RunFinished {
        succeeded: count(HostResult::Succeeded),
        failed,
        not_started,
        seconds: events.elapsed(),
    });
    output.flush();
    if failed + not_started > 0 {
        return Err(Error::HostsFailed { failed, not_started, total: reports.len() });
    }
    Ok((Outcome::Success, reports))
}

/// The `--events` sink: the file (created now, so a bad path fails before any host), or
/// the output's events writer for `-`.
fn open_events(request: &FleetRequest, output: &FleetOutput) -> Result<events::Events, Error> {
    Ok(match request.events.as_deref() {
        None => events::Events::new(None),
        Some(path) if path == Path::new("-") => {
            events::Events::shared(output.events.clone().unwrap_or_else(|| output.out.clone()))
        }
        Some(path) => {
            let file = crate::fs::create(path).map_err(|source| Error::EventsFile { source })?;
            events::Events::new(Some(Box::new(file)))
        }
    })
}
