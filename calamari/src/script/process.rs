//! Running one script process: its own process group, stdin `/dev/null`, stdout and stderr
//! streamed line by line as they come, timeouts, cancellation, and no hang on orphans.
//!
//! * One thread polls both pipes (`poll(2)`, non-blocking reads) and turns each stream into
//!   lines as data arrives (split on `\n`, decoded lossily, a line longer than
//!   [`LINE_CAP`] is cut into pieces so memory stays bounded, nothing is dropped): a script
//!   producing output faster than we print is slowed down by its pipe, never buffered whole.
//! * The child gets `CALAMARI_STEP_ID=<random>` in its environment. Descendants inherit it,
//!   even those that `setsid` out of the process group, so after the step we can find
//!   and kill them by scanning `/proc/*/environ` (same-uid readable) without making
//!   Calamari a subreaper (which would change process-wide behaviour of the library).
//! * When the main child has exited but something still holds its stdout/stderr, we wait
//!   [`DRAIN`] for it, then SIGKILL the group and every marked process. Background
//!   processes that closed or redirected their output are left alone, as the reference does.
//! * A timeout, or SIGINT/SIGTERM to Calamari, sends SIGTERM to the group, waits [`GRACE`],
//!   then SIGKILLs the group and the marked processes. If Calamari is SIGKILLed, the
//!   interpreter gets SIGTERM (`PR_SET_PDEATHSIG`), and the next step sweeps the files.

use std::io::Read;
use std::os::fd::AsRawFd as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
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
    // If Calamari itself is killed (SIGKILL cannot be caught), the script gets SIGTERM
    // instead of running on unattended.
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0) == 0
                && libc::getppid() != parent
            {
                libc::_exit(1); // the parent died before the prctl took effect
            }
            Ok(())
        });
    }
    let _signals = SignalGuard::install();
    let mut child = cmd.spawn()?;
    let pgid = child.id() as i32;
    // Should anything below fail (poll, read), the script must not run on unattended.
    let mut guard = KillOnDrop { pgid, armed: true };
    let mut pump = Pump::new(
        child.stdout.take().expect("stdout is piped").into(),
        child.stderr.take().expect("stderr is piped").into(),
    )?;
    let started = Instant::now();
    let mut status: Option<ExitStatus> = None;
    let mut exited_at: Option<Instant> = None;
    let mut backoff = Duration::from_micros(50);
    let tick = Duration::from_millis(100);
    loop {
        if pump.is_open() {
            let wait = match exited_at {
                Some(t) => DRAIN.saturating_sub(t.elapsed()).min(tick),
                None => tick,
            };
            pump.pump(wait, &mut on_line)?;
        } else if status.is_none() {
            // The output is closed; the exit usually follows within microseconds.
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(20));
        }
        if status.is_none()
            && let Some(st) = child.try_wait()?
        {
            status = Some(st);
            exited_at = Some(Instant::now());
        }
        if let Some(st) = status {
            if !pump.is_open() {
                guard.armed = false;
                return Ok(Ok(exit_of(st)));
            }
            if exited_at.is_some_and(|t| t.elapsed() >= DRAIN) {
                // Orphans still hold the output pipes: stop them and finish.
                kill_group(pgid, libc::SIGKILL);
                kill_marked(marker);
                guard.armed = false;
                pump.drain(Duration::from_millis(500), &mut on_line)?;
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
            guard.armed = false;
            terminate(&mut child, pgid, marker, &mut pump, &mut on_line)?;
            return Ok(Err(stop));
        }
    }
}

/// SIGKILLs the process group when dropped while armed (an error path).
struct KillOnDrop {
    pgid: i32,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pgid, libc::SIGKILL);
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
    pump: &mut Pump,
    on_line: &mut impl FnMut(Stream, String),
) -> std::io::Result<()> {
    kill_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        // Keep reading so a script writing on its way out is not blocked on a full pipe.
        if pump.is_open() {
            pump.pump(Duration::from_millis(20), on_line)?;
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    kill_group(pgid, libc::SIGKILL);
    let _ = child.wait();
    kill_marked(marker);
    pump.drain(Duration::from_millis(500), on_line)
}

/// Both output pipes, read without blocking from one thread with `poll(2)`: no reader
/// threads, so no thread handoff per line (which costs milliseconds on a loaded machine).
struct Pump {
    pipes: [Option<std::fs::File>; 2],
    lines: [Vec<u8>; 2],
    buf: Vec<u8>,
}

const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

impl Pump {
    fn new(out: std::os::fd::OwnedFd, err: std::os::fd::OwnedFd) -> std::io::Result<Pump> {
        for fd in [&out, &err] {
            set_nonblocking(fd.as_raw_fd())?;
        }
        Ok(Pump {
            pipes: [Some(out.into()), Some(err.into())],
            lines: [Vec::new(), Vec::new()],
            buf: vec![0u8; 64 * 1024],
        })
    }

    fn is_open(&self) -> bool {
        self.pipes.iter().any(Option::is_some)
    }

    /// Waits up to `wait` for output, then reads what is there (a bounded amount, so the
    /// caller's checks run regularly even under a flood).
    fn pump(&mut self, wait: Duration, on_line: &mut impl FnMut(Stream, String)) -> std::io::Result<()> {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(2);
        let mut which = Vec::with_capacity(2);
        for (i, pipe) in self.pipes.iter().enumerate() {
            if let Some(pipe) = pipe {
                fds.push(libc::pollfd { fd: pipe.as_raw_fd(), events: libc::POLLIN, revents: 0 });
                which.push(i);
            }
        }
        let millis = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the whole call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return if e.kind() == std::io::ErrorKind::Interrupted { Ok(()) } else { Err(e) };
        }
        for (fd, i) in fds.iter().zip(which) {
            if fd.revents != 0 {
                self.read_some(i, on_line)?;
            }
        }
        Ok(())
    }

    fn read_some(&mut self, i: usize, on_line: &mut impl FnMut(Stream, String)) -> std::io::Result<()> {
        for _ in 0..16 {
            let Some(pipe) = self.pipes[i].as_mut() else { return Ok(()) };
            match pipe.read(&mut self.buf) {
                Ok(0) => {
                    self.pipes[i] = None;
                    if !self.lines[i].is_empty() {
                        on_line(STREAMS[i], String::from_utf8_lossy(&self.lines[i]).into_owned());
                        self.lines[i].clear();
                    }
                    return Ok(());
                }
                Ok(n) => split_lines(&self.buf[..n], &mut self.lines[i], STREAMS[i], on_line),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Passes on what is still coming, for at most `limit`.
    fn drain(&mut self, limit: Duration, on_line: &mut impl FnMut(Stream, String)) -> std::io::Result<()> {
        let deadline = Instant::now() + limit;
        while self.is_open() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.pump(left, on_line)?;
        }
        for (line, stream) in self.lines.iter_mut().zip(STREAMS) {
            if !line.is_empty() {
                on_line(stream, String::from_utf8_lossy(line).into_owned());
                line.clear();
            }
        }
        Ok(())
    }
}

/// Splits `data` into lines (on `\n`), keeping an unfinished line in `line`; a line longer
/// than [`LINE_CAP`] is passed on in pieces.
fn split_lines(mut data: &[u8], line: &mut Vec<u8>, stream: Stream, on_line: &mut impl FnMut(Stream, String)) {
    let mut emit = |mut whole: &[u8]| {
        while whole.len() > LINE_CAP {
            on_line(stream, String::from_utf8_lossy(&whole[..LINE_CAP]).into_owned());
            whole = &whole[LINE_CAP..];
        }
        on_line(stream, String::from_utf8_lossy(whole).into_owned());
    };
    while let Some(i) = memchr::memchr(b'\n', data) {
        if line.is_empty() {
            emit(&data[..i]);
        } else {
            line.extend_from_slice(&data[..i]);
            emit(line);
            line.clear();
        }
        data = &data[i + 1..];
    }
    line.extend_from_slice(data);
    // `>`: a line of exactly the cap waits for its newline, so it is one piece whatever
    // the chunking.
    while line.len() > LINE_CAP {
        on_line(stream, String::from_utf8_lossy(&line[..LINE_CAP]).into_owned());
        line.drain(..LINE_CAP);
    }
}

fn set_nonblocking(fd: i32) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor we own; no memory is involved.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces never exceed the cap and come out the same however the data is chunked.
    #[test]
    fn lines_are_capped_whatever_the_chunking() {
        let data: Vec<u8> = [vec![b'a'; 300_000], b"\nshort\n".to_vec(), vec![b'b'; LINE_CAP], b"\n".to_vec()].concat();
        for chunk in [1usize, 1000, 40_000, 65_535, 65_536, 70_000, 1 << 20] {
            let mut pieces = Vec::new();
            let mut line = Vec::new();
            for part in data.chunks(chunk) {
                split_lines(part, &mut line, Stream::Stdout, &mut |_, l| pieces.push(l.len()));
            }
            assert!(line.is_empty());
            assert!(pieces.iter().all(|p| *p <= LINE_CAP), "chunk {chunk}: {pieces:?}");
            assert_eq!(
                pieces,
                [LINE_CAP, LINE_CAP, LINE_CAP, LINE_CAP, 300_000 - 4 * LINE_CAP, 5, LINE_CAP],
                "chunk {chunk}"
            );
        }
    }
}
