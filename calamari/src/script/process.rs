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
//!
//! System calls go through `rustix`'s safe wrappers; only the `pre_exec` hook and the
//! `sigaction` handlers, which have no safe equivalent, are `unsafe`.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{Pid, Signal};

/// The longest line passed on in one piece.
pub(crate) const LINE_CAP: usize = 64 * 1024;
/// How long output may keep coming after the main process exited.
pub(crate) const DRAIN: Duration = Duration::from_secs(2);
/// How long a process group gets between SIGTERM and SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_secs(3);
/// The environment variable that marks a step's processes.
pub(crate) const STEP_MARKER: &str = "CALAMARI_STEP_ID";

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// Why a run was stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// The timeout passed.
    Timeout,
    /// Calamari received this signal.
    Signal(i32),
}

/// Runs `cmd` to the end, calling `on_line` for each line of output in arrival order.
/// Returns how it ended, or why it was stopped.
pub(crate) fn run(
    mut cmd: Command,
    marker: &str,
    timeout: Option<Duration>,
    mut on_line: impl FnMut(Stream, String),
) -> std::io::Result<Result<Exit, Stopped>> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).env(STEP_MARKER, marker);
    // If Calamari itself is killed (SIGKILL cannot be caught), the script gets SIGTERM
    // instead of running on unattended.
    let parent = Pid::from_raw(std::process::id() as i32);
    // SAFETY: the closure runs in the forked child before exec. It only makes two raw
    // system calls (prctl, getppid: rustix issues them directly, async-signal-safe) and
    // builds an `io::Error` from an errno (no allocation); it touches no lock or heap.
    unsafe {
        cmd.pre_exec(move || {
            if rustix::process::set_parent_process_death_signal(Some(Signal::TERM)).is_ok()
                && rustix::process::getppid() != parent
            {
                // The parent died before the prctl took effect: the spawn fails (the child
                // exits without running the script).
                return Err(Errno::SRCH.into());
            }
            Ok(())
        });
    }
    let _signals = crate::signals::SignalGuard::install();
    let mut child = cmd.spawn()?;
    let pgid = Pid::from_child(&child);
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
                kill_group(pgid, Signal::KILL);
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
    pgid: Pid,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pgid, Signal::KILL);
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
    pgid: Pid,
    marker: &str,
    pump: &mut Pump,
    on_line: &mut impl FnMut(Stream, String),
) -> std::io::Result<()> {
    kill_group(pgid, Signal::TERM);
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
    kill_group(pgid, Signal::KILL);
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
    fn new(out: OwnedFd, err: OwnedFd) -> std::io::Result<Pump> {
        for fd in [&out, &err] {
            let flags = rustix::fs::fcntl_getfl(fd)?;
            rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
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
        let mut ready = [false; 2];
        {
            let mut fds = Vec::with_capacity(2);
            let mut which = Vec::with_capacity(2);
            for (i, pipe) in self.pipes.iter().enumerate() {
                if let Some(pipe) = pipe {
                    fds.push(PollFd::new(pipe, PollFlags::IN));
                    which.push(i);
                }
            }
            // Whole milliseconds, as poll(2) takes them.
            let wait = Duration::from_millis(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
            let timeout = Timespec::try_from(wait).unwrap_or(Timespec { tv_sec: i64::MAX, tv_nsec: 0 });
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(_) => {}
                Err(Errno::INTR) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            for (fd, i) in fds.iter().zip(which) {
                ready[i] = !fd.revents().is_empty();
            }
        }
        for (i, ready) in ready.into_iter().enumerate() {
            if ready {
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

/// Signals the process group; it may be gone already, which is fine.
fn kill_group(pgid: Pid, signal: Signal) {
    let _ = rustix::process::kill_process_group(pgid, signal);
}

/// SIGKILLs every process (but us) whose environment carries `STEP_MARKER=marker`.
/// Returns how many were found.
pub(crate) fn kill_marked(marker: &str) -> usize {
    let needle = format!("{STEP_MARKER}={marker}\0").into_bytes();
    let me = std::process::id();
    let mut total = 0;
    // A process forking in a loop can add new ones while we scan: repeat a few times.
    for _ in 0..3 {
        let found = marked_pids(&needle, me);
        if found.is_empty() {
            break;
        }
        for pid in found.iter().filter_map(|pid| Pid::from_raw(*pid as i32)) {
            // It may have exited meanwhile.
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
        total += found.len();
    }
    total
}

fn marked_pids(needle: &[u8], me: u32) -> Vec<u32> {
    let Ok(entries) = crate::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(env) = crate::fs::read(format!("/proc/{pid}/environ")) else { continue };
        let hit = memchr::memmem::find_iter(&env, needle).any(|at| at == 0 || env[at - 1] == 0);
        if hit {
            out.push(pid);
        }
    }
    out
}

fn pending_signal() -> Option<i32> {
    crate::signals::received()
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
