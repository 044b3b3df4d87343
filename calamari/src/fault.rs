//! Test-only fault injection at named checkpoints of the crash-safe writers (the
//! self-install and the deployment journal).
//!
//! Compiled only with the `fault-injection` cargo feature, which only the test builds
//! enable (the CLI's dev-dependency on the library turns it on); a release build has no
//! way to kill itself from the environment, and every checkpoint compiles to nothing.
//!
//! With the feature, two environment variables, read once per process:
//!
//! * `CALAMARI_FAULT_AT=<checkpoint>`: at the first checkpoint of that name the process
//!   sends itself `SIGKILL`, exactly as a `kill -9` would end it (no destructors, no
//!   flushing, no core dump). `<checkpoint>#<n>` dies at the n-th time instead (a
//!   deployment changes the journal twice).
//! * `CALAMARI_FAULT_DELAY_US=<n>`: sleep `n` microseconds at every checkpoint, which widens
//!   the windows a randomly timed `kill -9` can hit.
//!
//! The checkpoints of an install, in order: `locked`, `staging-created`, then per file
//! `file-written` and `file-synced`, `staged`, (replacing an old directory)
//! `old-marker-removed` and `old-moved`, `renamed`, `marker-written`, `marker-renamed`,
//! `installed`. [`CHECKPOINTS`] lists them.
//!
//! The checkpoints of a change to the deployment journal (`journal::store`), in order:
//! `journal-undo-written`, `journal-edit-written` (after each edit), `journal-synced`,
//! `journal-indexed`, `journal-committed`; and of a compaction (a whole new file renamed
//! over the journal), `journal-compaction-written` (before the rename), `journal-compacted`.

#[cfg(feature = "fault-injection")]
use std::sync::OnceLock;
#[cfg(feature = "fault-injection")]
use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(feature = "fault-injection")]
use std::time::Duration;

#[cfg(feature = "fault-injection")]
/// Names the checkpoint at which the process kills itself.
pub(crate) const FAULT_AT_ENV: &str = "CALAMARI_FAULT_AT";
#[cfg(feature = "fault-injection")]
/// Microseconds to sleep at every checkpoint.
pub(crate) const FAULT_DELAY_ENV: &str = "CALAMARI_FAULT_DELAY_US";

/// Every checkpoint an install passes, in order.
#[cfg(feature = "fault-injection")]
#[allow(dead_code)] // the list the module documents; the tests name checkpoints themselves
pub(crate) const CHECKPOINTS: &[&str] = &[
    "locked",
    "staging-created",
    "file-written",
    "file-synced",
    "staged",
    "old-marker-removed",
    "old-moved",
    "renamed",
    "marker-written",
    "marker-renamed",
    "installed",
];

#[cfg(feature = "fault-injection")]
struct Config {
    /// The checkpoint to die at, and at which of its passes (1 = the first).
    at: Option<(String, usize)>,
    delay: Option<Duration>,
    /// How many times the checkpoint named by `at` was passed.
    passes: AtomicUsize,
}

#[cfg(feature = "fault-injection")]
fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| Config {
        at: std::env::var(FAULT_AT_ENV).ok().filter(|v| !v.is_empty()).map(|v| match v.rsplit_once('#') {
            Some((name, n)) if n.parse::<usize>().is_ok() => (name.to_string(), n.parse().unwrap_or(1)),
            _ => (v, 1),
        }),
        delay: std::env::var(FAULT_DELAY_ENV).ok().and_then(|v| v.trim().parse().ok()).map(Duration::from_micros),
        passes: AtomicUsize::new(0),
    })
}

/// Passes the named checkpoint: nothing happens without the `fault-injection` feature.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn checkpoint(_name: &str) {}

/// Passes the named checkpoint: sleeps and/or dies as the environment asks.
#[cfg(feature = "fault-injection")]
pub(crate) fn checkpoint(name: &str) {
    let config = config();
    if let Some(delay) = config.delay {
        std::thread::sleep(delay);
    }
    if let Some((at, nth)) = &config.at
        && at == name
        && config.passes.fetch_add(1, Ordering::SeqCst) + 1 == *nth
    {
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // Not reached: SIGKILL cannot be caught.
        std::process::abort();
    }
}
