//! Why a host failed: [`HostError`] names the step and carries what was seen on the host
//! ([`RemoteProblem`]: the scripts' or the agent's own error lines, the last lines of
//! stderr, the exit status, and why sending stopped).

use super::bundle::BundleError;
use super::remote::SCRIPT_FAILED;
use super::ssh::{Finished, SshError, last_lines};

/// Where a host's run was when its connection was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Nothing has come back yet.
    Connecting,
    /// The bundle is being pushed and installed.
    Pushing,
    /// Calamari is there; the agent's probe is awaited.
    Probing,
    /// Deltas and the command's files are being sent.
    Uploading,
    /// The command runs.
    Running,
    /// `calamari fleet check` runs.
    Checking,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Connecting => "connecting",
            Stage::Pushing => "pushing Calamari",
            Stage::Probing => "probing",
            Stage::Uploading => "uploading",
            Stage::Running => "running",
            Stage::Checking => "checking",
        })
    }
}

/// What the host showed when a step failed.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub(crate) struct RemoteProblem {
    /// `ssh`'s exit status.
    pub(crate) status: Option<i32>,
    /// The scripts' or the agent's own error lines.
    pub(crate) own: Vec<String>,
    /// The last other lines of stderr.
    pub(crate) tail: Vec<String>,
    /// Why writing to the host stopped, if it did.
    #[source]
    pub(crate) sending: Option<std::io::Error>,
}

impl RemoteProblem {
    /// What a finished session showed.
    pub(crate) fn new(finished: &Finished, sending: Option<std::io::Error>) -> Self {
        RemoteProblem {
            status: finished.status,
            own: finished.stderr.own.clone(),
            tail: finished.stderr.tail.clone(),
            sending,
        }
    }

    /// The scripts' own lines, else the last stderr lines, else the exit status; "disk
    /// full" said plainly; why sending stopped, last.
    fn describe(&self) -> String {
        let mut lines = self.own.clone();
        lines.extend(self.tail.iter().cloned());
        let text = last_lines(&lines).unwrap_or_else(|| match self.status {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".into(),
        });
        let mut text = if text.contains("No space left on device") || text.contains("Disk quota exceeded") {
            format!("the remote disk is full ({text})")
        } else {
            text
        };
        if let Some(e) = &self.sending {
            text.push_str(&format!(" (sending stopped: {e})"));
        }
        text
    }

    /// The agent or a script failed (rather than the command).
    pub(crate) fn script_failed(&self) -> bool {
        self.status == Some(SCRIPT_FAILED) && !self.own.is_empty()
    }
}

/// Why a host failed: the step, and what was seen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostError {
    /// `ssh` could not connect or authenticate.
    #[error("cannot connect: {0}")]
    Connect(#[source] RemoteProblem),
    /// `ssh` could not be started or waited for.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// No bundle to push.
    #[error("no Calamari bundle: {0}")]
    Bundle(#[source] BundleError),
    /// The host's machine cannot run this build.
    #[error(
        "cannot push Calamari: the host is {remote} but this build is {local}: give --bundle=FILE with a bundle built for it"
    )]
    WrongArchitecture {
        /// The host's `uname -m`.
        remote: String,
        /// This build's architecture.
        local: &'static str,
    },
    /// The connection went away.
    #[error("connection lost while {stage}: {problem}")]
    ConnectionLost {
        /// What was going on.
        stage: Stage,
        /// What the host showed.
        #[source]
        problem: RemoteProblem,
    },
    /// Pushing or installing the bundle failed.
    #[error("cannot install Calamari: {0}")]
    Install(#[source] RemoteProblem),
    /// The boot script or the agent failed before its probe.
    #[error("probe failed: {0}")]
    Probe(#[source] RemoteProblem),
    /// Receiving the command's files failed.
    #[error("upload failed: {0}")]
    Upload(#[source] RemoteProblem),
    /// The agent failed around the command (not the command itself).
    #[error("remote run failed: {0}")]
    Run(#[source] RemoteProblem),
    /// `calamari fleet check`'s script failed.
    #[error("check failed: {0}")]
    Check(#[source] RemoteProblem),
    /// `ssh` was killed.
    #[error("ssh failed: killed by a signal")]
    Killed,
    /// The host said something this build does not expect there.
    #[error("the host answered '{answer}' where {expected} was expected")]
    Unexpected {
        /// What we waited for.
        expected: &'static str,
        /// The control line's name.
        answer: String,
    },
    /// A control line's data did not parse.
    #[error("cannot understand the host's {what}: {source}")]
    BadAnswer {
        /// Which answer.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}
