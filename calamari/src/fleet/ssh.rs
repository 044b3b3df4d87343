//! One `ssh` per host: [`Session`] starts `ssh ... -- <dest> <remote command>`, streams its
//! stderr in a thread and, at the end, waits for it and joins that thread.
//!
//! The system `ssh` is used, so the user's configuration, agent, `known_hosts`,
//! `ProxyJump`, `ControlMaster` and so on apply as they do for `ssh` itself; we add
//! `BatchMode=yes` (never a prompt) and a connect timeout. A whole run (push when needed,
//! probe, deltas, upload, command) is one session over one connection: no master
//! connection, no second `ssh`, nothing left running afterwards.
//!
//! Until the remote side has said something on stdout, what `ssh` writes on stderr is held
//! back: it is most likely `ssh`'s own complaint about the connection, which becomes the
//! host's error (`cannot connect: ...`) rather than a line of output. Once the host answers
//! ([`Session::connected`]), held lines go out and later ones stream as they come.

use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::FleetOutput;
use super::output::{self, Gate, StderrSummary};

/// How long `ssh` may take to open the TCP connection to a host.
const CONNECT_TIMEOUT_SECONDS: u32 = 15;

/// `ssh`'s exit status for its own failures (and for a lost connection).
pub(crate) const SSH_FAILED: i32 = 255;

/// The options every `ssh` gets.
#[derive(Debug, Clone, Default)]
pub(crate) struct SshOptions {
    /// `-F FILE`, when given.
    pub(crate) config: Option<PathBuf>,
}

/// Starting or ending `ssh` failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SshError {
    /// `ssh` could not be started.
    #[error("cannot run ssh: {0}")]
    Spawn(#[source] std::io::Error),
    /// Waiting for `ssh` failed.
    #[error("cannot wait for ssh: {0}")]
    Wait(#[source] std::io::Error),
}

/// A running `ssh` session to one host.
pub(crate) struct Session {
    child: Child,
    /// The remote command's standard input.
    pub(crate) stdin: Option<ChildStdin>,
    /// The remote command's standard output.
    pub(crate) stdout: Option<ChildStdout>,
    stderr: Option<JoinHandle<StderrSummary>>,
    gate: Arc<Gate>,
}

/// How a session ended.
#[derive(Debug)]
pub(crate) struct Finished {
    /// `ssh`'s exit status (the remote command's, or [`SSH_FAILED`]); `None` when killed.
    pub(crate) status: Option<i32>,
    /// What stderr carried.
    pub(crate) stderr: StderrSummary,
}

impl Finished {
    /// `ssh` itself failed or the connection was lost.
    pub(crate) fn ssh_failed(&self) -> bool {
        self.status == Some(SSH_FAILED)
    }
}

impl Session {
    /// Starts `ssh <dest> <remote>` with all three streams piped; stderr is read by a
    /// thread that writes it to `output` with the host's prefix (once [`Session::connected`]).
    ///
    /// # Errors
    /// [`SshError::Spawn`] when `ssh` cannot be started.
    pub(crate) fn start(
        options: &SshOptions,
        dest: &str,
        remote: &str,
        output: &FleetOutput,
    ) -> Result<Session, SshError> {
        let mut command = Command::new("ssh");
        if let Some(config) = &options.config {
            command.arg("-F").arg(config);
        }
        command
            .args(["-o", "BatchMode=yes", "-o"])
            .arg(format!("ConnectTimeout={CONNECT_TIMEOUT_SECONDS}"))
            .args(["-T", "--", dest, remote])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(SshError::Spawn)?;
        let gate = Arc::new(Gate::closed());
        let stderr = child.stderr.take().expect("stderr is piped");
        let (output, host, held) = (output.clone(), dest.to_string(), gate.clone());
        let stderr = std::thread::Builder::new()
            .name("fleet-stderr".into())
            .spawn(move || output::stream_stderr(stderr, &host, &output, &held))
            .map_err(SshError::Spawn)?;
        Ok(Session { stdin: child.stdin.take(), stdout: child.stdout.take(), child, stderr: Some(stderr), gate })
    }

    /// The host answered: stderr lines held so far are written, later ones stream.
    pub(crate) fn connected(&self, dest: &str, output: &FleetOutput) {
        let prefix = output::prefix(dest, output);
        for line in self.gate.open() {
            output.error_line(&format!("{prefix}{line}"));
        }
    }

    /// Closes stdin, waits for `ssh` and the stderr thread.
    ///
    /// # Errors
    /// [`SshError::Wait`] when waiting fails.
    pub(crate) fn finish(mut self) -> Result<Finished, SshError> {
        drop(self.stdin.take());
        drop(self.stdout.take());
        let status = self.child.wait().map_err(SshError::Wait)?;
        let stderr = self.stderr.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        Ok(Finished { status: status.code(), stderr })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Only on an early return: `finish` has waited already.
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The meaningful last lines of ssh's stderr (its own chatter removed), joined.
pub(crate) fn last_lines(lines: &[String]) -> Option<String> {
    let lines: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    (!tail.is_empty()).then(|| tail.join("; "))
}
