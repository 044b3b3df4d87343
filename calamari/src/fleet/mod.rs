//! `calamari fleet`: run one Calamari command on many hosts over OpenSSH.
//!
//! Per host ([`host`]): one master connection ([`ssh`]); one probe that reports whether
//! this build's Calamari is complete under `$HOME/.octopus/<instance>/Calamari/<version>/`
//! (`Success.txt`), creates a private work directory and hashes the cached packages; when
//! Calamari is missing or half-installed, the bundle is pushed and installed under the
//! remote push lock (so two drivers at once push and install once); then one command
//! uploads the command's input files as a tar stream (the variables password first, over
//! the same stdin, never on a command line), moves packages into the remote package cache,
//! runs the command and removes the work directory. Output streams back line by line,
//! prefixed with the host.
//!
//! A package to send whose earlier version is in the remote cache goes as a delta when
//! that is small enough ([`delta`]): the remote makes the basis's signature, the delta is
//! built here and applied remotely, and anything wrong falls back to the full package.
//!
//! Scheduling ([`schedule`]): `--parallel` hosts at once, `--batch` rolling windows,
//! `--maxFailPercentage`. The summary table and the JSON report are in [`report`].
//!
//! The bundle pushed is this build's executable (or `--bundle=FILE`, for a remote of
//! another platform): the remote runs what it is given.

mod args;
mod bundle;
mod delta;
mod host;
mod hosts;
mod output;
mod quote;
mod remote;
mod report;
mod schedule;
mod ssh;

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use args::{CommandArg, FileKind, parse_arguments};
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
    /// The variables password could not be read.
    #[error(transparent)]
    Variables(#[from] crate::variables::Error),
    /// The Calamari bundle to push could not be made or is not valid.
    #[error(transparent)]
    Bundle(#[from] crate::self_install::Error),
    /// The control directory, a thread or `ssh` itself could not be started.
    #[error("cannot start the fleet run: {0}")]
    Start(String),
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
    pub command: String,
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
}

impl FleetRequest {
    /// A request for `command` with the defaults and no hosts.
    pub fn new(command: impl Into<String>) -> Self {
        FleetRequest {
            command: command.into(),
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

/// Where the fleet's output goes: the host-prefixed lines and the summary (`out`), and
/// the remote stderr and per-host errors (`err`). Cheap to clone.
#[derive(Clone)]
pub struct FleetOutput {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    err: Arc<Mutex<Box<dyn Write + Send>>>,
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
        FleetOutput { out: Arc::new(Mutex::new(Box::new(out))), err: Arc::new(Mutex::new(Box::new(err))), terminal }
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
/// the report were written); the others when the run could not start.
pub fn run_fleet(
    request: &FleetRequest,
    executable: Option<&CalamariExecutable>,
    output: &FleetOutput,
) -> Result<(Outcome, Vec<HostReport>), Error> {
    let password = request.resolve_password()?;
    let bundle = bundle::BundleSource::new(request.bundle.clone(), executable.cloned());
    if let Some(path) = &request.bundle {
        // A given bundle is checked before any host is contacted.
        bundle.get().map_err(|e| Error::Usage(format!("--bundle={}: {e}", path.display())))?;
    }
    let control = ssh::control_dir()?;
    let context = host::HostContext {
        request,
        password: password.as_deref(),
        bundle: &bundle,
        ssh: ssh::SshOptions { config: request.ssh_config.clone(), control_dir: control.path().to_path_buf() },
        output,
        package_hashes: Default::default(),
    };
    let reports = schedule::run_all(&context)?;
    report::print_summary(&reports, output);
    if let Some(path) = &request.report {
        crate::fs::write_atomic(path, report::to_json(&reports))?;
    }
    output.flush();
    let failed = reports.iter().filter(|r| r.result == report::HostResult::Failed).count();
    let not_started = reports.iter().filter(|r| r.result == report::HostResult::NotStarted).count();
    if failed + not_started > 0 {
        return Err(Error::HostsFailed { failed, not_started, total: reports.len() });
    }
    Ok((Outcome::Success, reports))
}
