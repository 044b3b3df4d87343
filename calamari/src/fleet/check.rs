//! `calamari fleet check` on one host: the installed versions (complete and not), this
//! build's state, free space, and the reference's warnings, from one small script
//! ([`super::remote::CHECK`]): no Calamari is needed on the host.

use std::io::{BufRead, BufReader};
use std::time::Instant;

use super::context::HostContext;
use super::events::{Event, seconds};
use super::failure::{HostError, RemoteProblem, Stage};
use super::output;
use super::remote::{self, Check};
use super::report::{CheckReport, HostReport};
use super::ssh::Session;
use crate::self_install::compare_versions;

/// Runs the check script on `dest`, prints its findings and puts them in the report.
pub(crate) fn check(context: &HostContext<'_>, dest: &str, report: &mut HostReport) -> Result<Option<i32>, HostError> {
    let started = Instant::now();
    let version = context.bundle.version().map_err(HostError::Bundle)?;
    let command = Check { instance: &context.request.instance }.command();
    let mut session = Session::start(&context.ssh, dest, &command, context.output)?;
    drop(session.stdin.take());
    let mut stdout = String::new();
    let mut reader = BufReader::new(session.stdout.take().expect("stdout is piped"));
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        if stdout.is_empty() {
            session.connected(dest, context.output);
            context.events.emit(&Event::Connected { host: dest, seconds: seconds(started.elapsed()) });
        }
        stdout.push_str(&line);
        line.clear();
    }
    let finished = session.finish()?;
    if finished.status != Some(0) {
        let lost = finished.ssh_failed();
        let problem = RemoteProblem::new(&finished, None);
        return Err(match (lost, stdout.is_empty()) {
            (true, true) => HostError::Connect(problem),
            (true, false) => HostError::ConnectionLost { stage: Stage::Checking, problem },
            (false, _) => HostError::Check(problem),
        });
    }
    let findings = Findings::parse(&stdout, &version);
    findings.print(dest, context, &version);
    report.check = Some(CheckReport {
        complete: findings.complete,
        free_bytes: findings.free_kib.map(|k| k * 1024),
        installed_versions: findings.versions,
        incomplete_versions: findings.incomplete,
    });
    Ok(Some(0))
}

/// What the check script found.
#[derive(Debug, PartialEq, Eq)]
struct Findings {
    /// Complete installs, newest first (as `installed-versions` lists them).
    versions: Vec<String>,
    /// Version directories without `Success.txt`.
    incomplete: Vec<String>,
    /// This build's version is complete.
    complete: bool,
    free_kib: Option<u64>,
}

impl Findings {
    fn parse(stdout: &str, version: &str) -> Self {
        let mut versions = Vec::new();
        let mut incomplete = Vec::new();
        let mut free_kib = None;
        for line in stdout.lines() {
            if let Some(rest) = line.strip_prefix("version ") {
                match rest.rsplit_once(' ') {
                    Some((v, "complete")) => versions.push(v.to_string()),
                    Some((v, _)) if !v.starts_with('.') => incomplete.push(v.to_string()),
                    _ => {}
                }
            } else if let Some(free) = line.strip_prefix("free ") {
                free_kib = free.trim().parse().ok();
            }
        }
        versions.sort_by(|a, b| compare_versions(a, b));
        let complete = versions.iter().any(|v| v == version);
        Findings { versions, incomplete, complete, free_kib }
    }

    fn print(&self, dest: &str, context: &HostContext<'_>, version: &str) {
        let prefix = output::prefix(dest, context.output);
        let line = |text: String| context.output.line(&format!("{prefix}{text}"));
        let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
        line(format!("Installed Calamari versions: {}", list(&self.versions)));
        if !self.incomplete.is_empty() {
            line(format!("Incomplete (no Success.txt): {}", list(&self.incomplete)));
        }
        let state = if self.complete {
            "complete"
        } else if self.incomplete.iter().any(|v| v == version) {
            "incomplete"
        } else {
            "missing"
        };
        line(format!("This build's version {version}: {state}"));
        if let Some(kib) = self.free_kib {
            line(format!("Free disk space under $HOME/{}: {} MiB", remote::OCTOPUS_DIR, kib / 1024));
        }
        if self.versions.is_empty() {
            line("warning: No versions of Calamari are installed.".into());
        } else if !self.complete {
            line(format!("warning: Not running latest version of Calamari. Expected: {version}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_newest_first_and_this_builds_state() {
        let stdout = "home /h\nversion 0.9.0 complete\nversion 0.10.0 complete\nversion 1.0.0 incomplete\n\
                      version .tmp-x incomplete\nfree 2048\n";
        let findings = Findings::parse(stdout, "1.0.0");
        assert_eq!(
            findings,
            Findings {
                versions: vec!["0.10.0".into(), "0.9.0".into()],
                incomplete: vec!["1.0.0".into()],
                complete: false,
                free_kib: Some(2048),
            }
        );
        assert!(Findings::parse(stdout, "0.9.0").complete);
    }
}
