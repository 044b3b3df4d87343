//! The [`Log`] writer: the one place that speaks the agent's stdout protocol.
//!
//! Protocol (`docs/behaviour.md`, "The agent protocol"): everything goes to stdout except errors (stderr). Before a
//! line of a different level, the writer emits `##octopus[stdout-verbose]`,
//! `##octopus[stdout-default]`, `##octopus[stdout-warning]`, ... and only when the level
//! changes. Every line passes through the [`Masker`], so a sensitive value is never printed
//! in clear by Calamari itself. When stdout is a terminal ([`Style::Terminal`]) the level
//! switches are replaced by colour, for a person reading along (none when `NO_COLOR` is set
//! to anything but the empty string: [`Log::set_colour`]). When stderr is a terminal too, a
//! long operation (an extraction) may draw a progress line there ([`Log::progress_bar`]);
//! lines printed meanwhile are written around it. Never in the protocol.

pub(crate) mod encoded;
pub(crate) mod masker;
mod matcher;

use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) use masker::MASK;
pub use masker::Masker;

use crate::service_message::ServiceMessage;

/// The level of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Diagnostic detail (`stdout-verbose`).
    Verbose,
    /// Normal output (`stdout-default`).
    Info,
    /// A warning (`stdout-warning`).
    Warn,
    /// Highlighted output (`stdout-highlight`).
    Highlight,
    /// Waiting output (`stdout-wait`).
    Wait,
    /// An error: written to stderr, no level switch.
    Error,
}

impl Level {
    /// The `##octopus[...]` message that switches stdout to this level.
    pub fn stdout_mode(self) -> Option<&'static str> {
        match self {
            Level::Verbose => Some("stdout-verbose"),
            Level::Info => Some("stdout-default"),
            Level::Warn => Some("stdout-warning"),
            Level::Highlight => Some("stdout-highlight"),
            Level::Wait => Some("stdout-wait"),
            Level::Error => None,
        }
    }
}

/// How output is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The agent's protocol, exactly (stdout is a pipe or file).
    Protocol,
    /// A person at a terminal: colour instead of level-switch messages.
    Terminal,
}

struct Inner {
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    style: Style,
    mode: Level,
    masker: Masker,
    colour: bool,
    /// Progress may be drawn on stderr (a person at a terminal on both streams).
    progress_allowed: bool,
    /// The progress line being drawn, if any.
    progress: Option<indicatif::ProgressBar>,
}

/// The log writer; cheap to clone (clones share the streams, level and mask set).
#[derive(Clone)]
pub struct Log {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").finish_non_exhaustive()
    }
}

impl Log {
    /// A log over the given streams.
    pub fn new(out: impl Write + Send + 'static, err: impl Write + Send + 'static, style: Style) -> Log {
        Log {
            inner: Arc::new(Mutex::new(Inner {
                out: Box::new(out),
                err: Box::new(err),
                style,
                mode: Level::Info,
                masker: Masker::new(),
                colour: style == Style::Terminal,
                progress_allowed: false,
                progress: None,
            })),
        }
    }

    /// A log over the process's stdout/stderr: the protocol when stdout is not a terminal.
    /// Progress is drawn only when stderr is a terminal as well.
    pub fn stdio() -> Log {
        let style = if io::stdout().is_terminal() { Style::Terminal } else { Style::Protocol };
        let log = Log::new(io::stdout(), io::stderr(), style);
        log.lock().progress_allowed = style == Style::Terminal && io::stderr().is_terminal();
        log
    }

    /// Turns colour on or off (it is on at a terminal unless this says otherwise; the CLI
    /// turns it off for `NO_COLOR`). The protocol never has colour.
    pub fn set_colour(&self, on: bool) {
        let mut inner = self.lock();
        inner.colour = on && inner.style == Style::Terminal;
    }

    /// True when lines get colour codes.
    pub fn colour(&self) -> bool {
        self.lock().colour
    }

    /// True when [`Log::progress_bar`] would draw.
    pub(crate) fn progress_allowed(&self) -> bool {
        self.lock().progress_allowed
    }

    /// A progress line on stderr for a person at a terminal, or `None` (the protocol, a
    /// pipe, a captured log). While it is set, log lines are written around it; give it
    /// back with [`Log::end_progress`].
    pub(crate) fn progress_bar(&self) -> Option<indicatif::ProgressBar> {
        let mut inner = self.lock();
        if !inner.progress_allowed || inner.progress.is_some() {
            return None;
        }
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        let template = if inner.colour { "{spinner:.cyan} {msg} [{elapsed}]" } else { "{spinner} {msg} [{elapsed}]" };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        inner.progress = Some(bar.clone());
        Some(bar)
    }

    /// Clears the progress line and forgets it.
    pub(crate) fn end_progress(&self) {
        if let Some(bar) = self.lock().progress.take() {
            bar.finish_and_clear();
        }
    }

    /// A log that keeps everything in memory (for tests): returns the log and the buffers.
    pub fn capture() -> (Log, SharedBuffer, SharedBuffer) {
        let out = SharedBuffer::default();
        let err = SharedBuffer::default();
        (Log::new(out.clone(), err.clone(), Style::Protocol), out, err)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain text state; keep logging.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a sensitive value: from now on it is masked in everything printed.
    pub fn add_sensitive(&self, value: &str) {
        self.lock().masker.add(value);
    }

    /// A copy of the current mask set.
    pub fn masker(&self) -> Masker {
        self.lock().masker.clone()
    }

    /// Masks `text` with the current mask set.
    pub fn mask(&self, text: &str) -> String {
        self.lock().masker.mask(text).into_owned()
    }

    /// Writes `text` (one or more lines) at `level`.
    pub fn write(&self, level: Level, text: &str) {
        let mut inner = self.lock();
        let masked = inner.masker.mask(text).into_owned();
        for line in masked.split('\n') {
            inner.line(level, line.strip_suffix('\r').unwrap_or(line));
        }
    }

    /// Diagnostic detail.
    pub fn verbose(&self, text: impl AsRef<str>) {
        self.write(Level::Verbose, text.as_ref());
    }

    /// Normal output.
    pub fn info(&self, text: impl AsRef<str>) {
        self.write(Level::Info, text.as_ref());
    }

    /// A warning.
    pub fn warn(&self, text: impl AsRef<str>) {
        self.write(Level::Warn, text.as_ref());
    }

    /// An error, on stderr.
    pub fn error(&self, text: impl AsRef<str>) {
        self.write(Level::Error, text.as_ref());
    }

    /// Emits a service message for the agent on stdout, unmasked: it is protocol data the
    /// agent must read (e.g. the value of a sensitive output variable, which the agent
    /// stores as sensitive). At `level` the message is preceded by a level switch if needed.
    pub fn service_message(&self, level: Level, message: &ServiceMessage) {
        let mut inner = self.lock();
        let text = match inner.style {
            Style::Protocol => message.to_string(),
            Style::Terminal => inner.friendly(message),
        };
        inner.line(level, &text);
    }

    /// Emits an output variable for the agent (`setVariable`), masking it from then on
    /// when sensitive.
    pub fn output_variable(&self, name: &str, value: &str, sensitive: bool) {
        let mut inner = self.lock();
        let message = ServiceMessage::set_variable(name, value, sensitive);
        let text = match inner.style {
            Style::Protocol => message.to_string(),
            Style::Terminal => inner.friendly(&message),
        };
        inner.line(Level::Info, &text);
        if sensitive {
            inner.masker.add(value);
        }
    }

    /// Flushes both streams.
    pub fn flush(&self) {
        let mut inner = self.lock();
        let _ = inner.out.flush();
        let _ = inner.err.flush();
    }
}

impl Inner {
    /// A service message as a person reads it: decoded, sensitive values masked.
    fn friendly(&self, message: &ServiceMessage) -> String {
        let attr = |name: &str| message.get(name).unwrap_or_default();
        match message.name.as_str() {
            crate::service_message::names::SET_VARIABLE => {
                let value = if attr("sensitive").eq_ignore_ascii_case("true") {
                    MASK.to_string()
                } else {
                    self.masker.mask(attr("value")).into_owned()
                };
                format!("Output variable {} = {value}", attr("name"))
            }
            crate::service_message::names::PROGRESS => format!("[{}%] {}", attr("percentage"), attr("message")),
            crate::service_message::names::CREATE_ARTIFACT => {
                format!("Artifact {} ({} bytes) at {}", attr("name"), attr("length"), attr("path"))
            }
            _ => self.masker.mask(&message.to_string()).into_owned(),
        }
    }

    fn line(&mut self, level: Level, line: &str) {
        match self.progress.clone() {
            Some(bar) => bar.suspend(|| self.write_line(level, line)),
            None => self.write_line(level, line),
        }
    }

    fn write_line(&mut self, level: Level, line: &str) {
        // Write errors (a closed pipe) must not abort a deployment half-way: ignore them.
        match (self.style, level) {
            (_, Level::Error) => {
                let _ = self.out.flush();
                let _ = if self.colour {
                    writeln!(self.err, "\x1b[31m{line}\x1b[0m")
                } else {
                    writeln!(self.err, "{line}")
                };
                let _ = self.err.flush();
            }
            (Style::Protocol, _) => {
                if level != self.mode {
                    if let Some(mode) = level.stdout_mode() {
                        let _ = writeln!(self.out, "##octopus[{mode}]");
                    }
                    self.mode = level;
                }
                let _ = writeln!(self.out, "{line}");
            }
            (Style::Terminal, _) => {
                let colour = match level {
                    _ if !self.colour => "",
                    Level::Verbose => "\x1b[2m",
                    Level::Warn => "\x1b[33m",
                    Level::Highlight => "\x1b[1;36m",
                    Level::Wait => "\x1b[35m",
                    Level::Info | Level::Error => "",
                };
                let _ = if colour.is_empty() {
                    writeln!(self.out, "{line}")
                } else {
                    writeln!(self.out, "{colour}{line}\x1b[0m")
                };
            }
        }
        if self.style == Style::Terminal {
            let _ = self.out.flush();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.out.flush();
        let _ = self.err.flush();
    }
}

/// `n` and the noun that goes with it: "1 file", "2 files", "0 files".
pub(crate) fn count(n: u64, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// An in-memory stream shared between a [`Log`] and a test that reads it back.
#[derive(Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// Everything written so far, lossily decoded.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).into_owned()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_switch_is_written_only_when_the_level_changes() {
        let (log, out, err) = Log::capture();
        log.info("a");
        log.verbose("b");
        log.verbose("c");
        log.warn("d");
        log.info("e");
        log.error("boom");
        log.info("f");
        assert_eq!(
            out.contents(),
            "a\n##octopus[stdout-verbose]\nb\nc\n##octopus[stdout-warning]\nd\n##octopus[stdout-default]\ne\nf\n"
        );
        assert_eq!(err.contents(), "boom\n");
    }

    #[test]
    fn a_terminal_gets_decoded_service_messages_and_no_level_switches() {
        let out = SharedBuffer::default();
        let log = Log::new(out.clone(), SharedBuffer::default(), Style::Terminal);
        log.verbose("detail");
        log.output_variable("Url", "https://x", false);
        log.output_variable("Token", "tok-secret-value", true);
        log.service_message(Level::Verbose, &ServiceMessage::progress(50, "half"));
        let text = out.contents();
        assert!(!text.contains("##octopus"), "{text}");
        assert!(text.contains("Output variable Url = https://x"), "{text}");
        assert!(text.contains("Output variable Token = ********"), "{text}");
        assert!(text.contains("[50%] half"), "{text}");
    }

    #[test]
    fn colour_can_be_turned_off_and_never_reaches_the_protocol() {
        let (out, err) = (SharedBuffer::default(), SharedBuffer::default());
        let log = Log::new(out.clone(), err.clone(), Style::Terminal);
        log.warn("coloured");
        log.set_colour(false);
        assert!(!log.colour());
        log.warn("plain");
        log.error("plain error");
        assert_eq!(out.contents(), "\x1b[33mcoloured\x1b[0m\nplain\n");
        assert_eq!(err.contents(), "plain error\n");
        let (protocol, _, _) = Log::capture();
        protocol.set_colour(true);
        assert!(!protocol.colour(), "the protocol has no colour");
        assert!(protocol.progress_bar().is_none(), "nor progress");
    }

    #[test]
    fn counts_read_as_english() {
        assert_eq!(count(1, "file", "files"), "1 file");
        assert_eq!(count(0, "file", "files"), "0 files");
        assert_eq!(count(2, "entry", "entries"), "2 entries");
    }

    #[test]
    fn sensitive_values_are_masked_on_both_streams() {
        let (log, out, err) = Log::capture();
        log.add_sensitive("hunter2-secret");
        log.info("pw=hunter2-secret");
        log.error("failed with hunter2-secret");
        log.output_variable("Later", "another-secret", true);
        log.info("now another-secret too");
        let all = format!("{}{}", out.contents(), err.contents());
        assert!(!all.contains("hunter2-secret"), "{all}");
        assert!(out.contents().contains("now ******** too"));
        assert!(err.contents().contains("failed with ********"));
    }
}
