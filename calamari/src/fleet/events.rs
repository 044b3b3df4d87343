//! `--events=FILE|-`: what happens, as it happens, one JSON object per line, for dashboards
//! and CI. Every line has `event` (its kind), `time` (UTC, RFC 3339 with milliseconds) and
//! `elapsed` (seconds since the run started); the rest depends on the kind ([`Event`]).
//! Each line is written whole and flushed at once, so a reader following the file sees
//! every event when it happens.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use super::report::{HostResult, SendMode};

/// One event.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub(crate) enum Event<'a> {
    /// The run starts.
    RunStarted {
        /// The command run on every host.
        command: &'a str,
        /// The hosts, in order.
        hosts: &'a [String],
    },
    /// A rolling window (`--batch`) starts; batches count from 1.
    BatchStarted { batch: usize, hosts: Vec<&'a str> },
    /// `--batchWait`: the pause before the next batch starts.
    BatchWait { batch: usize, seconds: f64 },
    /// Work on a host starts.
    HostStarted { host: &'a str },
    /// The host answered (connected and authenticated, its first line arrived).
    Connected { host: &'a str, seconds: f64 },
    /// Calamari was pushed and installed (`pushed: false`: another driver installed it meanwhile).
    Pushed { host: &'a str, version: &'a str, bytes: u64, pushed: bool },
    /// How a package went: `full`, `delta` or `cached` (not sent), and the bytes sent.
    Package { host: &'a str, name: &'a str, mode: SendMode, bytes: u64 },
    /// Everything sent has arrived; the command starts.
    Uploaded { host: &'a str, files: usize, bytes: u64 },
    /// The command's output: lines on stdout and stderr.
    Output { host: &'a str, stdout_lines: u64, stderr_lines: u64 },
    /// The host is done.
    Finished {
        host: &'a str,
        result: HostResult,
        exit_code: Option<i32>,
        seconds: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
    },
    /// A host that was not started (an earlier batch failed, or too many hosts failed).
    NotStarted { host: &'a str },
    /// The run is over.
    RunFinished { succeeded: usize, failed: usize, not_started: usize, seconds: f64 },
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    event: &'a Event<'a>,
    time: String,
    elapsed: f64,
}

/// Where events go (nowhere without `--events`). Cheap to clone.
#[derive(Clone)]
pub(crate) struct Events {
    sink: Option<Arc<Mutex<Box<dyn Write + Send>>>>,
    started: Instant,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("enabled", &self.sink.is_some()).finish_non_exhaustive()
    }
}

impl Events {
    /// Events written to `sink`, or dropped.
    pub(crate) fn new(sink: Option<Box<dyn Write + Send>>) -> Self {
        Events { sink: sink.map(|s| Arc::new(Mutex::new(s))), started: Instant::now() }
    }

    /// Events written to a writer shared with other output.
    pub(crate) fn shared(sink: Arc<Mutex<Box<dyn Write + Send>>>) -> Self {
        Events { sink: Some(sink), started: Instant::now() }
    }

    /// Seconds since the run started.
    pub(crate) fn elapsed(&self) -> f64 {
        seconds(self.started.elapsed())
    }

    /// Writes one event line and flushes; a failed write is ignored (the run goes on).
    pub(crate) fn emit(&self, event: &Event<'_>) {
        let Some(sink) = &self.sink else { return };
        let line = Line {
            event,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            elapsed: self.elapsed(),
        };
        let mut text = serde_json::to_vec(&line).expect("events serialise");
        text.push(b'\n');
        let mut sink = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = sink.write_all(&text).and_then(|()| sink.flush());
    }
}

/// Seconds rounded to milliseconds, for events and the report.
pub(crate) fn seconds(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_per_line_with_its_kind_first() {
        let (_, buffer, _) = crate::Log::capture();
        let events = Events::new(Some(Box::new(buffer.clone())));
        events.emit(&Event::Package { host: "web1", name: "A.1.0.0.tar", mode: SendMode::Delta, bytes: 12 });
        events.emit(&Event::Finished {
            host: "web1",
            result: HostResult::Failed,
            exit_code: Some(3),
            seconds: 1.5,
            error: None,
        });
        let text = buffer.contents();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert!(
            text.starts_with("{\"event\":\"package\",\"host\":\"web1\",\"name\":\"A.1.0.0.tar\",\"mode\":\"delta\"")
        );
        assert_eq!(lines[1]["exitCode"], 3);
        assert_eq!(lines[1]["result"], "failed");
        assert!(lines[1].get("error").is_none());
        assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
        assert!(lines[1]["elapsed"].as_f64().unwrap() >= 0.0);
        Events::new(None).emit(&Event::NotStarted { host: "x" });
    }
}
