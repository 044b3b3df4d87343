//! Splitting `calamari fleet <command> [options]` into the fleet's own options and the
//! command's, and finding the command's options that name local files.
//!
//! Both `--name=value` and `--name value` are accepted for every option known here. An
//! option neither the fleet nor the file list knows is passed through to the remote
//! command unchanged, in the order given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Batch, Error, FleetCommand, FleetRequest, hosts, report};

/// What kind of local file an option names: decides where it goes on the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A package (`--package`): goes to the remote package cache, sent only when the
    /// cache does not hold the same bytes.
    Package,
    /// A variables file: goes to the work directory, mode 0600.
    Variables,
    /// Any other input file (`--script`): goes to the work directory.
    Other,
}

/// One argument of the remote command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandArg {
    /// Passed through as given.
    Plain(String),
    /// `--<option>=<local file>`: the file is uploaded and the option rewritten to its
    /// remote path.
    File {
        /// The option, without its dashes (`package`).
        option: &'static str,
        /// The local file (absolute).
        path: PathBuf,
        /// Where it goes.
        kind: FileKind,
    },
}

/// Options of the commands that name input files, and their kind.
const FILE_OPTIONS: [(&str, FileKind); 4] = [
    ("package", FileKind::Package),
    ("variables", FileKind::Variables),
    ("sensitiveVariables", FileKind::Variables),
    ("script", FileKind::Other),
];

/// The fleet's own options that take a value.
const FLEET_VALUE_OPTIONS: [&str; 14] = [
    "host",
    "hosts",
    "sshConfig",
    "instance",
    "parallel",
    "batch",
    "maxFailPercentage",
    "report",
    "bundle",
    "variablesPassword",
    "variablesPasswordFile",
    "events",
    "retryFailed",
    "batchWait",
];

/// Options that cannot travel: a second password would need a second stdin.
const REFUSED_OPTIONS: [&str; 2] = ["sensitiveVariablesPassword", "sensitiveVariablesPasswordFile"];

/// Parses `args` (the command and everything after it). Relative paths are taken from
/// `working_directory`. The password options are returned, unread, in the request's
/// `password_inline` / `password_file`.
///
/// # Errors
/// [`Error::Usage`] for a missing command, option value, host, or a bad number;
/// [`Error::BadHost`] for a destination `ssh` would misread; an I/O error for a hosts file;
/// [`Error::RetryReport`] for a `--retryFailed` report that cannot be read.
pub fn parse_arguments(args: &[String], working_directory: &Path) -> Result<FleetRequest, Error> {
    let mut iter = args.iter();
    let command = match iter.next() {
        Some(c) if !c.starts_with('-') => FleetCommand::parse(c),
        _ => return Err(usage("a command: calamari fleet <command> [options] --host=DEST...")),
    };
    let mut request = FleetRequest::new(command);
    let mut host_files = Vec::new();
    while let Some(arg) = iter.next() {
        let Some(body) = arg.strip_prefix("--") else {
            request.command_args.push(CommandArg::Plain(arg.clone()));
            continue;
        };
        let (name, inline_value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if REFUSED_OPTIONS.contains(&name) {
            return Err(Error::Usage(format!(
                "--{name} cannot be used with fleet: only the --variables password travels (over standard input)"
            )));
        }
        if name == "serviceMessages" {
            request.service_messages = true;
            continue;
        }
        if name == "noDelta" {
            request.no_delta = true;
            continue;
        }
        let file_kind = FILE_OPTIONS.iter().find(|(o, _)| *o == name);
        if !FLEET_VALUE_OPTIONS.contains(&name) && file_kind.is_none() {
            request.command_args.push(CommandArg::Plain(arg.clone()));
            continue;
        }
        let value = match inline_value {
            Some(v) => v,
            None => iter.next().cloned().ok_or_else(|| usage_option(name, "a value"))?,
        };
        if let Some((option, kind)) = file_kind {
            request.command_args.push(CommandArg::File { option, path: working_directory.join(&value), kind: *kind });
            continue;
        }
        match name {
            "host" => {
                hosts::check_destination(&value).map_err(|reason| Error::BadHost {
                    host: value.clone(),
                    source_name: "--host".into(),
                    reason,
                })?;
                request.hosts.push(value);
            }
            "hosts" => host_files.push(working_directory.join(value)),
            "sshConfig" => request.ssh_config = Some(working_directory.join(value)),
            "instance" => {
                if value.is_empty() || value.contains('/') || value.starts_with('.') {
                    return Err(usage_option(name, "an instance name (no '/', not starting with '.')"));
                }
                request.instance = value;
            }
            "parallel" => {
                request.parallel = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| usage_option(name, "a number of hosts greater than 0"))?;
            }
            "batch" => request.batch = Some(parse_batch(&value)?),
            "maxFailPercentage" => {
                request.max_fail_percentage = value
                    .parse()
                    .ok()
                    .filter(|p| *p <= 100)
                    .ok_or_else(|| usage_option(name, "a percentage from 0 to 100"))?;
            }
            "report" => request.report = Some(working_directory.join(value)),
            "bundle" => request.bundle = Some(working_directory.join(value)),
            "variablesPassword" => request.password_inline = Some(value),
            "variablesPasswordFile" => {
                request.password_file =
                    Some(if value == "-" { PathBuf::from("-") } else { working_directory.join(value) });
            }
            "events" => {
                request.events = Some(if value == "-" { PathBuf::from("-") } else { working_directory.join(value) });
            }
            "retryFailed" => request.retry_failed = Some(working_directory.join(value)),
            "batchWait" => {
                let seconds = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
                    .ok_or_else(|| usage_option(name, "a number of seconds from 0 to 86400"))?;
                request.batch_wait = Some(Duration::from_secs_f64(seconds));
            }
            _ => unreachable!("every fleet option is matched above"),
        }
    }
    for file in host_files {
        let text = crate::fs::read_to_string(&file).map_err(|source| Error::HostsFile { source })?;
        request.hosts.extend(hosts::parse_hosts_file(&text, &file)?);
    }
    if request.batch_wait.is_some() && request.batch.is_none() {
        return Err(Error::Usage("--batchWait needs --batch: it is the pause between rolling batches".into()));
    }
    match &request.retry_failed {
        // The hosts that did not succeed then; with hosts given, only those of them.
        Some(report) => {
            let retry = report::hosts_to_retry(report)?;
            if request.hosts.is_empty() {
                request.hosts = retry;
            } else {
                request.hosts.retain(|h| retry.contains(h));
            }
        }
        None if request.hosts.is_empty() => {
            return Err(usage("at least one host: --host=DEST or --hosts=FILE, or --retryFailed=REPORT"));
        }
        None => {}
    }
    Ok(request)
}

fn parse_batch(value: &str) -> Result<Batch, Error> {
    let parsed = match value.strip_suffix('%') {
        Some(p) => p.parse().ok().filter(|p| (1..=100).contains(p)).map(Batch::Percent),
        None => value.parse().ok().filter(|n| *n > 0).map(Batch::Hosts),
    };
    parsed.ok_or_else(|| usage_option("batch", "a number of hosts (5) or a percentage (25%)"))
}

fn usage(what: &str) -> Error {
    Error::Usage(format!("calamari fleet needs {what}"))
}

fn usage_option(option: &str, expected: &str) -> Error {
    Error::Usage(format!("--{option} expects {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<FleetRequest, Error> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse_arguments(&args, Path::new("/work"))
    }

    #[test]
    fn splits_fleet_options_from_the_commands() {
        let r = parse(&[
            "run-script",
            "--script=s.sh",
            "--host",
            "web1",
            "--host=web2",
            "--parallel=3",
            "--batch",
            "50%",
            "--scriptParameters=-x",
            "--variables",
            "v.json",
            "--serviceMessages",
        ])
        .unwrap();
        assert_eq!(r.command, FleetCommand::Remote("run-script".into()));
        assert_eq!(r.hosts, ["web1", "web2"]);
        assert_eq!(r.parallel, 3);
        assert_eq!(r.batch, Some(Batch::Percent(50)));
        assert!(r.service_messages);
        assert_eq!(
            r.command_args,
            [
                CommandArg::File { option: "script", path: "/work/s.sh".into(), kind: FileKind::Other },
                CommandArg::Plain("--scriptParameters=-x".into()),
                CommandArg::File { option: "variables", path: "/work/v.json".into(), kind: FileKind::Variables },
            ]
        );
    }

    #[test]
    fn refuses_what_cannot_work() {
        assert!(parse(&["--host=a"]).is_err());
        assert!(parse(&["check"]).unwrap_err().to_string().contains("at least one host"));
        assert!(parse(&["check", "--host=a", "--parallel=0"]).is_err());
        assert!(parse(&["check", "--host=a", "--batch=0%"]).is_err());
        assert!(parse(&["check", "--host=a", "--maxFailPercentage=101"]).is_err());
        assert!(parse(&["check", "--host=-oProxyCommand=x"]).is_err());
        assert!(parse(&["check", "--host=a", "--sensitiveVariablesPassword=x"]).is_err());
        assert!(parse(&["check", "--host"]).unwrap_err().to_string().contains("--host expects a value"));
        assert!(parse(&["check", "--host=a", "--batchWait=1"]).unwrap_err().to_string().contains("needs --batch"));
        assert!(parse(&["check", "--host=a", "--batch=1", "--batchWait=-1"]).is_err());
        assert!(parse(&["check", "--host=a", "--batch=1", "--batchWait=x"]).is_err());
    }

    #[test]
    fn the_new_options() {
        let r = parse(&["check", "--host=a", "--batch=1", "--batchWait=1.5", "--events=-"]).unwrap();
        assert_eq!(r.batch_wait, Some(Duration::from_millis(1500)));
        assert_eq!(r.events.as_deref(), Some(Path::new("-")));
        let r = parse(&["check", "--host=a", "--events=e.jsonl"]).unwrap();
        assert_eq!(r.events.as_deref(), Some(Path::new("/work/e.jsonl")));
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json");
        crate::fs::write(
            &report,
            br#"[{"host":"a","result":"succeeded"},{"host":"b","result":"failed"},{"host":"c","result":"notStarted"}]"#,
        )
        .unwrap();
        let retry = format!("--retryFailed={}", report.display());
        assert_eq!(parse(&["check", &retry]).unwrap().hosts, ["b", "c"]);
        assert_eq!(parse(&["check", &retry, "--host=c", "--host=a"]).unwrap().hosts, ["c"]);
    }
}
