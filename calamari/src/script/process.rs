//! Running one script process: its own process group, stdin `/dev/null`, stdout and stderr
//! streamed line by line as they come, timeouts, cancellation, and no hang on orphans.
//!
//! * Two reader threads turn each stream into lines (split on `\n`, decoded lossily, a line
//!   longer than [`LINE_CAP`] is cut into pieces so memory stays bounded, nothing is
//!   dropped) and send them over a bounded channel: a script producing output faster than
//!   we print is slowed down by its pipe, never buffered whole.
//! * The child gets `CALAMARI_STEP_ID=<random>` in its environment. Descendants inherit it,
//!   even those that `setsid` out of the process group, so after the step we can find
//!   and kill them by scanning `/proc/*/environ` (same-uid readable) without making
//!   Calamari a subreaper (which would change process-wide behaviour of the library).
//! * When the main child has exited but something still holds its stdout/stderr, we wait
//!   [`DRAIN`] for it, then SIGKILL the group and every marked process. Background
//!   processes that closed or redirected their output are left alone, as the reference does.
//! * A timeout, or SIGINT/SIGTERM to Calamari, sends SIGTERM to the group, waits [`GRACE`],
//!   then SIGKILLs the group and the marked processes.

use std::io::Read;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The longest line passed on in one piece.
pub const LINE_CAP: usize = 64 * 1024;
/// How long output may keep coming after the main process exited.
pub const DRAIN: Duration = Duration::from_secs(2);
/// How long a process group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);
/// The environment variable that marks a step's processes.
pub const STEP_MARKER: &str = "CALAMARI_STEP_ID";

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

enum Event {
    Line(Stream, String),
    Eof,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// Why a run was stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The timeout passed.
    Timeout,
    /// Calamari received this signal.
    Signal(i32),
}

/// Runs `cmd` to the end, calling `on_line` for each line of output in arrival order.
/// Returns how it ended, or why it was stopped.
pub fn run(
    mut cmd: Command,
    marker: &str,
    timeout: Option<Duration>,
    mut on_line: impl FnMut(Stream, String),
) -> std::io::Result<Result<Exit, Stopped>> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).env(STEP_MARKER, marker);
    let _signals = SignalGuard::install();
    let mut child = cmd.spawn()?;
    let pgid = child.id() as i32;
    let (tx, rx) = sync_channel::<Event>(1024);
    let out = child.stdout.take().expect("stdout is piped");
    let err = child.stderr.take().expect("stderr is piped");
    spawn_reader(out, Stream::Stdout, tx.clone());
    spawn_reader(err, Stream::Stderr, tx);

    let started = Instant::now();
    let mut status: Option<ExitStatus> = None;
    let mut exited_at: Option<Instant> = None;
    let mut eofs = 0;
    let mut last_poll = Instant::now();
    let tick = Duration::from_millis(20);
    let mut backoff = Duration::from_micros(50);
    loop {
        match rx.recv_timeout(tick) {
            Ok(Event::Line(stream, line)) => {
                on_line(stream, line);
                if last_poll.elapsed() < tick {
                    continue;
                }
            }
            Ok(Event::Eof) => eofs += 1,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                eofs = 2;
                if status.is_none() {
                    // The output is closed; the exit usually follows within microseconds.
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(tick);
                }
            }
        }
        last_poll = Instant::now();
        if status.is_none() {
            if let Some(st) = child.try_wait()? {
                status = Some(st);
                exited_at = Some(Instant::now());
            }
        }
        if let Some(st) = status {
            if eofs >= 2 {
                return Ok(Ok(exit_of(st)));
            }
            if exited_at.is_some_and(|t| t.elapsed() >= DRAIN) {
                // Orphans still hold the output pipes: stop them and finish.
                kill_group(pgid, libc::SIGKILL);
                kill_marked(marker);
                drain(&rx, &mut on_line, Duration::from_millis(500));
                return Ok(Ok(exit_of(st)));
            }
            continue;
        }
        let stop = if let Some(sig) = pending_signal() {
            Some(Stopped::Signal(sig))
        } else if timeout.is_some_and(|t| started.elapsed() >= t) {
            Some(Stopped::Timeout)
        } else {
            None
        };
        if let Some(stop) = stop {
            terminate(&mut child, pgid, marker, &rx, &mut on_line);
            return Ok(Err(stop));
        }
    }
}

fn exit_of(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        (None, None) => Exit::Code(-1),
    }
}

/// SIGTERM to the group, [`GRACE`], then SIGKILL to the group and every marked process.
fn terminate(
    child: &mut Child,
    pgid: i32,
    marker: &str,
    rx: &Receiver<Event>,
    on_line: &mut impl FnMut(Stream, String),
) {
    kill_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        // Keep reading so a script writing on its way out is not blocked on a full pipe.
        if let Ok(Event::Line(stream, line)) = rx.recv_timeout(Duration::from_millis(20)) {
            on_line(stream, line);
        }
    }
    kill_group(pgid, libc::SIGKILL);
    let _ = child.wait();
    kill_marked(marker);
    drain(rx, on_line, Duration::from_millis(500));
}

/// Passes on what is still in the channel, for at most `limit`.
fn drain(rx: &Receiver<Event>, on_line: &mut impl FnMut(Stream, String), limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut eofs = 0;
    while eofs < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::Line(stream, line)) => on_line(stream, line),
            Ok(Event::Eof) => eofs += 1,
            Err(_) => break,
        }
    }
}

fn kill_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group; no memory is involved.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// SIGKILLs every process (but us) whose environment carries `STEP_MARKER=marker`.
/// Returns how many were found.
pub fn kill_marked(marker: &str) -> usize {
    let needle = format!("{STEP_MARKER}={marker}\0").into_bytes();
    let me = std::process::id();
    let mut total = 0;
    // A process forking in a loop can add new ones while we scan: repeat a few times.
    for _ in 0..3 {
        let found = marked_pids(&needle, me);
        if found.is_empty() {
            break;
        }
        for pid in &found {
            // SAFETY: kill(2) on a pid; no memory is involved.
            unsafe {
                libc::kill(*pid as i32, libc::SIGKILL);
            }
        }
        total += found.len();
    }
    total
}

fn marked_pids(needle: &[u8], me: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        let hit = memchr::memmem::find_iter(&env, needle).any(|at| at == 0 || env[at - 1] == 0);
        if hit {
            out.push(pid);
        }
    }
    out
}

fn spawn_reader(mut source: impl Read + Send + 'static, stream: Stream, tx: SyncSender<Event>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut line: Vec<u8> = Vec::new();
        let send = |bytes: &[u8]| tx.send(Event::Line(stream, String::from_utf8_lossy(bytes).into_owned())).is_ok();
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let mut chunk = &buf[..n];
            while let Some(i) = memchr::memchr(b'\n', chunk) {
                let ok = if line.is_empty() {
                    send(&chunk[..i])
                } else {
                    line.extend_from_slice(&chunk[..i]);
                    let ok = send(&line);
                    line.clear();
                    ok
                };
                if !ok {
                    return;
                }
                chunk = &chunk[i + 1..];
            }
            line.extend_from_slice(chunk);
            while line.len() >= LINE_CAP {
                if !send(&line[..LINE_CAP]) {
                    return;
                }
                line.drain(..LINE_CAP);
            }
        }
        if !line.is_empty() {
            send(&line);
        }
        let _ = tx.send(Event::Eof);
    });
}

/// The name of a signal, for messages ("SIGKILL").
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return format!("signal {signal}"),
    };
    name.to_string()
}

// --- SIGINT/SIGTERM while a script runs -------------------------------------------------

static RECEIVED: AtomicI32 = AtomicI32::new(0);

struct Installed {
    users: usize,
    saved: Vec<(i32, libc::sigaction)>,
}

static INSTALLED: Mutex<Installed> = Mutex::new(Installed { users: 0, saved: Vec::new() });

extern "C" fn on_signal(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// The signal Calamari received while scripts run, if any.
fn pending_signal() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// While alive, SIGINT and SIGTERM are caught (so the script's group can be stopped)
/// instead of killing Calamari; the previous handlers come back when the last guard goes.
struct SignalGuard;

impl SignalGuard {
    fn install() -> SignalGuard {
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
