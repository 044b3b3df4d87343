//! What happened on each host: the summary table and the JSON report.

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{Error, FleetOutput};

/// How a host ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HostResult {
    /// The command exited 0.
    Succeeded,
    /// The command failed, or the host could not be reached or prepared.
    Failed,
    /// Never started: a batch failed before, or the failure limit was exceeded.
    NotStarted,
}

impl HostResult {
    fn label(self) -> &'static str {
        match self {
            HostResult::Succeeded => "succeeded",
            HostResult::Failed => "failed",
            HostResult::NotStarted => "not started",
        }
    }
}

/// `calamari fleet check`'s findings on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// Complete installs (with `Success.txt`).
    pub installed_versions: Vec<String>,
    /// Version directories without `Success.txt`.
    pub incomplete_versions: Vec<String>,
    /// This build's version is complete.
    pub complete: bool,
    /// Bytes available under the remote `$HOME/.octopus`.
    pub free_bytes: Option<u64>,
}

/// One host's line of the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostReport {
    /// The destination as given.
    pub host: String,
    /// How it ended.
    pub result: HostResult,
    /// The remote command's exit code; `null` when it did not run to the end.
    pub exit_code: Option<i32>,
    /// This run pushed and installed Calamari on the host.
    pub pushed_calamari: bool,
    /// Wall-clock seconds spent on the host.
    pub seconds: f64,
    /// Output variables (`setVariable`), sensitive values masked.
    pub output_variables: IndexMap<String, String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `check` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckReport>,
    /// How each package went to the host, in the command's order.
    pub packages_sent: Vec<PackageSent>,
}

/// How a package went to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SendMode {
    /// The whole file.
    Full,
    /// A delta against an earlier version in the remote cache, applied remotely.
    Delta,
    /// Not sent: the remote cache holds the same bytes.
    Cached,
}

/// One package sent to a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageSent {
    /// The package's file name.
    pub name: String,
    /// How.
    pub mode: SendMode,
    /// Bytes of package or delta sent.
    pub bytes: u64,
}

impl HostReport {
    pub(crate) fn new(host: &str) -> Self {
        HostReport {
            host: host.to_string(),
            result: HostResult::NotStarted,
            exit_code: None,
            pushed_calamari: false,
            seconds: 0.0,
            output_variables: IndexMap::new(),
            error: None,
            check: None,
            packages_sent: Vec::new(),
        }
    }
}

/// The JSON report: an array of [`HostReport`]s in host order.
pub(crate) fn to_json(reports: &[HostReport]) -> Vec<u8> {
    let mut json = serde_json::to_vec_pretty(reports).expect("reports serialise");
    json.push(b'\n');
    json
}

/// `--retryFailed=REPORT`: the hosts of an earlier report that did not succeed (failed or
/// not started), in the report's order.
///
/// # Errors
/// [`Error::RetryReportUnreadable`] or [`Error::RetryReportInvalid`], naming the file.
pub(crate) fn hosts_to_retry(path: &Path) -> Result<Vec<String>, Error> {
    /// The part of a report entry this needs.
    #[derive(Deserialize)]
    struct Entry {
        host: String,
        result: HostResult,
    }
    let text = crate::fs::read_to_string(path).map_err(|source| Error::RetryReportUnreadable { source })?;
    let entries: Vec<Entry> =
        serde_json::from_str(&text).map_err(|source| Error::RetryReportInvalid { path: path.to_path_buf(), source })?;
    Ok(entries.into_iter().filter(|e| e.result != HostResult::Succeeded).map(|e| e.host).collect())
}

/// Prints the summary table.
pub(crate) fn print_summary(reports: &[HostReport], output: &FleetOutput) {
    let width = reports.iter().map(|r| r.host.len()).max().unwrap_or(4).max(4);
    output.line("");
    output.line(&format!("{:<width$}  {:<11}  {:>4}  {:<6}  {:>7}", "HOST", "RESULT", "EXIT", "PUSHED", "SECONDS"));
    for r in reports {
        let exit = r.exit_code.map_or_else(|| "-".to_string(), |c| c.to_string());
        output.line(&format!(
            "{:<width$}  {:<11}  {:>4}  {:<6}  {:>7.2}",
            r.host,
            r.result.label(),
            exit,
            if r.pushed_calamari { "yes" } else { "no" },
            r.seconds
        ));
    }
    let ok = reports.iter().filter(|r| r.result == HostResult::Succeeded).count();
    output.line(&format!("{ok} of {} hosts succeeded", reports.len()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_to_retry_are_those_that_did_not_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut reports = vec![HostReport::new("a"), HostReport::new("b"), HostReport::new("c")];
        reports[0].result = HostResult::Succeeded;
        reports[1].result = HostResult::Failed;
        crate::fs::write(&path, to_json(&reports)).unwrap();
        assert_eq!(hosts_to_retry(&path).unwrap(), ["b", "c"]);
        crate::fs::write(&path, b"{\"host\": 1}").unwrap();
        let e = hosts_to_retry(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("--retryFailed={}: expected the JSON report", path.display())), "{e}");
        let e = hosts_to_retry(&dir.path().join("none.json")).unwrap_err().to_string();
        assert!(e.starts_with("cannot read the --retryFailed report: failed to read"), "{e}");
        assert!(e.contains("none.json"), "{e}");
    }
}
