//! SIGINT and SIGTERM while Calamari runs a script or an extraction: caught (one atomic
//! store) instead of killing the process, so the script's process group can be stopped
//! and a partial extraction removed; the previous handlers come back when the last
//! [`SignalGuard`] goes. One set of statics for the whole process, whoever installs it.
//!
//! rustix offers no safe `sigaction` (only an `unsafe` one for runtimes), so these few
//! calls stay on `libc`, each with its SAFETY comment.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, PoisonError};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

struct Installed {
    users: usize,
    saved: Vec<(i32, libc::sigaction)>,
}

static INSTALLED: Mutex<Installed> = Mutex::new(Installed { users: 0, saved: Vec::new() });

extern "C" fn on_signal(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// The signal received while a guard is alive, if any.
pub(crate) fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// While alive, SIGINT and SIGTERM are recorded (see [`received`]) instead of killing
/// Calamari.
#[derive(Debug)]
pub(crate) struct SignalGuard;

impl SignalGuard {
    /// Starts catching SIGINT and SIGTERM (the first guard clears what an earlier one saw).
    pub(crate) fn install() -> SignalGuard {
        let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        if installed.users == 0 {
            RECEIVED.store(0, Ordering::SeqCst);
            for signal in [libc::SIGINT, libc::SIGTERM] {
                // SAFETY: sigaction with a zeroed struct and an async-signal-safe handler
                // (one atomic store); the old action is saved to be restored.
                unsafe {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                    action.sa_flags = libc::SA_RESTART;
                    libc::sigemptyset(&mut action.sa_mask);
                    let mut old: libc::sigaction = std::mem::zeroed();
                    if libc::sigaction(signal, &action, &mut old) == 0 {
                        installed.saved.push((signal, old));
                    }
                }
            }
        }
        installed.users += 1;
        SignalGuard
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        installed.users -= 1;
        if installed.users == 0 {
            for (signal, old) in installed.saved.drain(..) {
                // SAFETY: restores the action saved by `install`.
                unsafe {
                    libc::sigaction(signal, &old, std::ptr::null_mut());
                }
            }
        }
    }
}

/// The name of a signal, for messages ("SIGKILL").
pub(crate) fn signal_name(signal: i32) -> String {
    let name = match rustix::process::Signal::from_named_raw(signal) {
        Some(rustix::process::Signal::HUP) => "SIGHUP",
        Some(rustix::process::Signal::INT) => "SIGINT",
        Some(rustix::process::Signal::QUIT) => "SIGQUIT",
        Some(rustix::process::Signal::ILL) => "SIGILL",
        Some(rustix::process::Signal::TRAP) => "SIGTRAP",
        Some(rustix::process::Signal::ABORT) => "SIGABRT",
        Some(rustix::process::Signal::BUS) => "SIGBUS",
        Some(rustix::process::Signal::FPE) => "SIGFPE",
        Some(rustix::process::Signal::KILL) => "SIGKILL",
        Some(rustix::process::Signal::USR1) => "SIGUSR1",
        Some(rustix::process::Signal::SEGV) => "SIGSEGV",
        Some(rustix::process::Signal::USR2) => "SIGUSR2",
        Some(rustix::process::Signal::PIPE) => "SIGPIPE",
        Some(rustix::process::Signal::ALARM) => "SIGALRM",
        Some(rustix::process::Signal::TERM) => "SIGTERM",
        Some(rustix::process::Signal::XCPU) => "SIGXCPU",
        Some(rustix::process::Signal::XFSZ) => "SIGXFSZ",
        _ => return format!("signal {signal}"),
    };
    name.to_string()
}
