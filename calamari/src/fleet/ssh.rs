//! One OpenSSH master connection per host, and commands run over it.
//!
//! The system `ssh` is used, so the user's configuration, agent, `known_hosts`,
//! `ProxyJump` and so on apply as they do for `ssh` itself. The master is started with
//! `ControlMaster=yes`, `ControlPersist=120` and `-f -N`: `ssh` authenticates, then goes to
//! the background holding the connection, and its exit status says whether that worked.
//! Its stderr goes to a file in the run's private control directory (a pipe would be held
//! open by the background process). Every later `ssh` names the same `ControlPath`
//! (`<dir>/%C`) with `ControlMaster=no`, so it rides the master: no new TCP connection,
//! no new authentication. [`Master::close`] (also on drop) sends `-O exit`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How long `ssh` may take to open the TCP connection to a host.
const CONNECT_TIMEOUT_SECONDS: u32 = 15;

/// How long a master outlives its last session: the gaps between our commands are short,
/// and a driver killed before it could close its masters leaves none behind for long.
const CONTROL_PERSIST: &str = "ControlPersist=120";

/// The options every `ssh` of one host gets.
#[derive(Debug, Clone)]
pub(crate) struct SshOptions {
    /// `-F FILE`, when given.
    pub(crate) config: Option<PathBuf>,
    /// The private directory holding the control sockets.
    pub(crate) control_dir: PathBuf,
}

/// A live master connection to one host.
#[derive(Debug)]
pub(crate) struct Master {
    dest: String,
    base: Vec<OsString>,
    open: bool,
}

impl Master {
    /// Connects to `dest`; `log_name` names the file (in the control directory) that
    /// receives the master's stderr.
    ///
    /// # Errors
    /// The message of `ssh` (its stderr, or its exit status) when it cannot connect.
    pub(crate) fn connect(dest: &str, options: &SshOptions, log_name: &str) -> Result<Master, String> {
        let mut base: Vec<OsString> = Vec::new();
        if let Some(config) = &options.config {
            base.push("-F".into());
            base.push(config.into());
        }
        let mut control_path = OsString::from("ControlPath=");
        control_path.push(options.control_dir.join("%C"));
        base.extend(["-o".into(), control_path, "-o".into(), "BatchMode=yes".into()]);
        let log_path = options.control_dir.join(format!("{log_name}.log"));
        let log = crate::fs::create(&log_path).map_err(|e| e.to_string())?;
        let status = Command::new("ssh")
            .args(&base)
            .args(["-o", "ControlMaster=yes", "-o", CONTROL_PERSIST, "-o"])
            .arg(format!("ConnectTimeout={CONNECT_TIMEOUT_SECONDS}"))
            .args(["-f", "-N", "--", dest])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .status()
            .map_err(|e| format!("cannot run ssh: {e}"))?;
        if !status.success() {
            let text = crate::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(last_lines(&text).unwrap_or_else(|| format!("ssh exited with {status}")));
        }
        Ok(Master { dest: dest.to_string(), base, open: true })
    }

    /// `ssh ... dest -- <remote>` over the master; the caller sets up the streams.
    pub(crate) fn command(&self, remote: &str) -> Command {
        let mut command = Command::new("ssh");
        command.args(&self.base).args(["-o", "ControlMaster=no", "-T", "--", &self.dest, remote]);
        command
    }

    /// Stops the master connection.
    pub(crate) fn close(&mut self) {
        if self.open {
            self.open = false;
            let _ = Command::new("ssh")
                .args(&self.base)
                .args(["-O", "exit", "--", &self.dest])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.close();
    }
}

/// The meaningful last lines of ssh's stderr (its own chatter removed), joined.
pub(crate) fn last_lines(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    (!tail.is_empty()).then(|| tail.join("; "))
}

/// A private (0700) directory for the control sockets, short enough for a socket path
/// (`%C` adds 40 characters; the limit is 107).
pub(crate) fn control_dir() -> Result<tempfile::TempDir, crate::fs::IoError> {
    use crate::fs::IoContext as _;
    let tmp = std::env::temp_dir();
    let base = if tmp.as_os_str().len() > 50 { Path::new("/tmp").to_path_buf() } else { tmp };
    tempfile::Builder::new().prefix("calamari-fleet-").tempdir_in(&base).at("create temporary directory in", &base)
}

impl Master {
    /// Whether the master connection is still up (`ssh -O check`).
    pub(crate) fn check(&self) -> bool {
        Command::new("ssh")
            .args(&self.base)
            .args(["-O", "check", "--", &self.dest])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}
