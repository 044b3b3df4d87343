//! The progress line of a long extraction, for a person at a terminal: bytes written and
//! entries so far, redrawn in place on stderr. It appears only after half a second (short
//! extractions stay quiet) and only when the [`Log`] allows it (both streams are a
//! terminal; never in the agent's protocol).

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::Log;
use crate::log::count;

use super::budget::Budget;

/// How long an extraction runs before its progress shows, unless
/// `CALAMARI_PROGRESS_DELAY_MS` says otherwise (0 shows it at once, as the tests do).
const DELAY: Duration = Duration::from_millis(500);

fn delay() -> Duration {
    std::env::var(crate::env_vars::PROGRESS_DELAY_MS)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(DELAY, Duration::from_millis)
}
/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// A running progress display; dropping it clears the line.
pub(crate) struct Progress {
    done: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts showing the progress of extracting `archive`, counted by `budget`; `None`
    /// when `log` draws no progress.
    pub(crate) fn start(archive: &Path, budget: Arc<Budget>, log: &Log) -> Option<Progress> {
        if !log.progress_allowed() {
            return None;
        }
        let name = archive.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let log = log.clone();
        let (done, stopped) = mpsc::channel::<()>();
        let delay = delay();
        let thread = std::thread::Builder::new()
            .name("extract-progress".to_string())
            .spawn(move || {
                if stopped.recv_timeout(delay) != Err(RecvTimeoutError::Timeout) {
                    return;
                }
                let Some(bar) = log.progress_bar() else { return };
                loop {
                    bar.set_message(format!(
                        "Extracting {name}: {} written, {}",
                        indicatif::HumanBytes(budget.written()),
                        count(budget.entries(), "entry", "entries")
                    ));
                    bar.tick();
                    if stopped.recv_timeout(TICK) != Err(RecvTimeoutError::Timeout) {
                        break;
                    }
                }
                log.end_progress();
            })
            .ok()?;
        Some(Progress { done: Some(done), thread: Some(thread) })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            // A panic in the display thread must not fail the extraction.
            let _ = thread.join();
        }
    }
}
