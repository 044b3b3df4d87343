//! Reading one host's streams as they arrive: every line is written at once, prefixed with
//! the host (no polling, no sleep). On stdout, the agent's control lines
//! ([`super::protocol`]) go to the host's driver through a channel and the command's
//! output is shown: service messages decoded for a person or passed through, output
//! variables collected. On stderr, the scripts' own error lines are kept apart.

use std::io::{BufRead, BufReader, Read};
use std::sync::Mutex;
use std::sync::mpsc::Sender;

use indexmap::IndexMap;

use super::FleetOutput;
use super::protocol::{self, Exit};
use super::remote::FLEET_PREFIX;
use crate::service_message::names::SET_VARIABLE;
use crate::service_message::parse::{Item, Parser};

/// How many of the last stderr lines are kept for a host's error message.
const TAIL_LINES: usize = 5;

/// An output variable as the host reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputVariable {
    pub(crate) value: String,
    pub(crate) sensitive: bool,
}

/// What a host's stdout carried besides the text shown.
#[derive(Debug, Default)]
pub(crate) struct StdoutSummary {
    /// The agent said everything had arrived (and started the command).
    pub(crate) ready: bool,
    /// The command's exit code, as the agent reported it.
    pub(crate) exit: Option<i32>,
    /// `setVariable` messages, by name (the last value wins).
    pub(crate) variables: IndexMap<String, OutputVariable>,
    /// Lines of the command's output.
    pub(crate) lines: u64,
}

/// What a host's stderr carried.
#[derive(Debug, Default)]
pub(crate) struct StderrSummary {
    /// The scripts' and the agent's own error lines (without [`FLEET_PREFIX`]).
    pub(crate) own: Vec<String>,
    /// The last other lines.
    pub(crate) tail: Vec<String>,
    /// All other lines.
    pub(crate) lines: u64,
}

/// Stderr lines held back until the host has answered.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// `Some` while held.
    held: Mutex<Option<Vec<String>>>,
}

impl Gate {
    pub(crate) fn closed() -> Self {
        Gate { held: Mutex::new(Some(Vec::new())) }
    }

    /// Holds `line` and returns `None` while closed; else gives it back to be written.
    pub(crate) fn pass(&self, line: String) -> Option<String> {
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match held.as_mut() {
            Some(lines) => {
                lines.push(line);
                None
            }
            None => Some(line),
        }
    }

    pub(crate) fn open(&self) -> Vec<String> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take().unwrap_or_default()
    }
}

/// A control line from the agent, with the bytes that followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Control {
    pub(crate) name: String,
    pub(crate) data: String,
    pub(crate) bytes: Vec<u8>,
}

/// The prefix of a host's lines.
pub(crate) fn prefix(host: &str, output: &FleetOutput) -> String {
    if output.terminal { format!("\x1b[36m{host}\x1b[0m | ") } else { format!("{host} | ") }
}

/// One line read, without its `\n` or `\r\n`; `None` at the end.
fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> Option<String> {
    buf.clear();
    match reader.read_until(b'\n', buf) {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            let line = String::from_utf8_lossy(buf);
            let line = line.strip_suffix('\n').unwrap_or(&line);
            Some(line.strip_suffix('\r').unwrap_or(line).to_string())
        }
    }
}

/// Writes the command's output lines for a person (or raw, with `--serviceMessages`).
pub(crate) struct StdoutPrinter {
    prefix: String,
    output: FleetOutput,
    service_messages: bool,
    parser: Parser,
    items: Vec<Item>,
    /// Verbose lines (after `##octopus[stdout-verbose]`) are left out for a person, as the
    /// agent's log hides them by default; `--serviceMessages` passes everything.
    verbose: bool,
    summary: StdoutSummary,
}

impl StdoutPrinter {
    pub(crate) fn new(host: &str, output: &FleetOutput, service_messages: bool) -> Self {
        StdoutPrinter {
            prefix: prefix(host, output),
            output: output.clone(),
            service_messages,
            parser: Parser::new(),
            items: Vec::new(),
            verbose: false,
            summary: StdoutSummary::default(),
        }
    }

    /// Shows a line that is not the command's (a login script's, before the agent spoke).
    fn plain(&self, line: &str) {
        self.output.line(&format!("{}{line}", self.prefix));
    }

    /// One line of the command's output.
    pub(crate) fn line(&mut self, line: &str) {
        self.summary.lines += 1;
        if self.service_messages {
            self.output.line(&format!("{}{line}", self.prefix));
        }
        let mut items = std::mem::take(&mut self.items);
        self.parser.feed(line, &mut items);
        self.show(&mut items);
        self.items = items;
    }

    fn show(&mut self, items: &mut Vec<Item>) {
        for item in items.drain(..) {
            match item {
                Item::Text(text) => {
                    if !self.service_messages && !self.verbose {
                        self.output.line(&format!("{}{text}", self.prefix));
                    }
                }
                Item::Message { message, .. } => {
                    if let Some(level) = message.name.strip_prefix("stdout-") {
                        self.verbose = level == "verbose";
                        continue;
                    }
                    if message.name != SET_VARIABLE {
                        continue;
                    }
                    let name = message.get("name").unwrap_or_default().to_string();
                    let value = message.get("value").unwrap_or_default().to_string();
                    let sensitive = message.get("sensitive").is_some_and(|s| s.eq_ignore_ascii_case("true"));
                    if !self.service_messages {
                        let shown = if sensitive { crate::log::MASK } else { value.as_str() };
                        self.output.line(&format!("{}Output variable {name} = {shown}", self.prefix));
                    }
                    self.summary.variables.insert(name, OutputVariable { value, sensitive });
                }
            }
        }
    }

    fn finish(mut self) -> StdoutSummary {
        let mut items = Vec::new();
        self.parser.finish(&mut items);
        self.show(&mut items);
        self.summary
    }
}

/// How many raw bytes follow a control line (its data's `"bytes"`).
fn frame_length(data: &str) -> u64 {
    #[derive(serde::Deserialize)]
    struct Frame {
        bytes: Option<u64>,
    }
    if data.is_empty() { 0 } else { serde_json::from_str::<Frame>(data).ok().and_then(|f| f.bytes).unwrap_or(0) }
}

/// Reads a host's stdout until it ends: control lines (and their bytes) go to `controls`,
/// the command's output (after [`protocol::READY`]) to `printer`. An [`protocol::EXIT`]
/// line counts only as the very last line; anything after it shows it was output.
pub(crate) fn read_stdout(stream: impl Read, mut printer: StdoutPrinter, controls: &Sender<Control>) -> StdoutSummary {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut buf = Vec::new();
    let mut ready = false;
    let mut exit_line: Option<(String, i32)> = None;
    while let Some(line) = next_line(&mut reader, &mut buf) {
        if ready {
            if let Some((text, _)) = exit_line.take() {
                printer.line(&text);
            }
            let exit = protocol::parse_control(&line)
                .filter(|(name, _)| *name == protocol::EXIT)
                .and_then(|(_, data)| serde_json::from_str::<Exit>(data).ok());
            match exit {
                Some(exit) => exit_line = Some((line, exit.code)),
                None => printer.line(&line),
            }
            continue;
        }
        let Some((name, data)) = protocol::parse_control(&line) else {
            printer.plain(&line);
            continue;
        };
        let mut bytes = vec![0u8; usize::try_from(frame_length(data)).unwrap_or(usize::MAX)];
        if reader.read_exact(&mut bytes).is_err() {
            break;
        }
        ready = name == protocol::READY;
        // The driver may have stopped listening (it failed): keep reading to the end.
        let _ = controls.send(Control { name: name.to_string(), data: data.to_string(), bytes });
    }
    let mut summary = printer.finish();
    summary.ready = ready;
    summary.exit = exit_line.map(|(_, code)| code);
    summary
}

/// Streams a host's stderr to `output` until it ends (holding lines while `gate` is
/// closed); keeps the scripts' own error lines apart and the last others.
pub(crate) fn stream_stderr(stream: impl Read, host: &str, output: &FleetOutput, gate: &Gate) -> StderrSummary {
    let prefix = prefix(host, output);
    let mut summary = StderrSummary::default();
    let mut reader = BufReader::with_capacity(16 * 1024, stream);
    let mut buf = Vec::new();
    while let Some(line) = next_line(&mut reader, &mut buf) {
        if let Some(message) = line.strip_prefix(FLEET_PREFIX) {
            summary.own.push(message.to_string());
            continue;
        }
        summary.lines += 1;
        if !line.trim().is_empty() {
            if summary.tail.len() == TAIL_LINES {
                summary.tail.remove(0);
            }
            summary.tail.push(line.clone());
        }
        if let Some(line) = gate.pass(line) {
            output.error_line(&format!("{prefix}{line}"));
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service_message::ServiceMessage;

    fn capture() -> (FleetOutput, crate::log::SharedBuffer) {
        let (_, buffer, _) = crate::Log::capture();
        (FleetOutput::new(buffer.clone(), std::io::sink(), false), buffer)
    }

    fn read(text: &str, service_messages: bool) -> (StdoutSummary, Vec<Control>, String) {
        let (output, buffer) = capture();
        let (tx, rx) = std::sync::mpsc::channel();
        let summary = read_stdout(text.as_bytes(), StdoutPrinter::new("web1", &output, service_messages), &tx);
        drop(tx);
        (summary, rx.iter().collect(), buffer.contents())
    }

    #[test]
    fn lines_are_prefixed_and_variables_collected() {
        let secret = ServiceMessage::set_variable("Token", "abc", true).to_string();
        let plain = ServiceMessage::set_variable("Where", "/srv", false).to_string();
        let ready = protocol::control(protocol::READY);
        let text = format!(
            "motd\n{ready}\nhello\n##octopus[stdout-verbose]\ndetail\n{secret}\n##octopus[stdout-default]\n{plain}\nbye\n##calamari-fleet[exit] {{\"code\":0}}\n"
        );
        let (summary, controls, shown) = read(&text, false);
        assert!(summary.ready);
        assert_eq!(summary.exit, Some(0));
        assert_eq!(controls.len(), 1);
        assert_eq!(summary.variables["Token"], OutputVariable { value: "abc".into(), sensitive: true });
        assert_eq!(
            shown,
            "web1 | motd\nweb1 | hello\nweb1 | Output variable Token = ********\nweb1 | Output variable Where = /srv\nweb1 | bye\n"
        );

        let (_, _, shown) = read(&text, true);
        assert!(shown.contains(&format!("web1 | {secret}\n")), "{shown}");
    }

    #[test]
    fn control_lines_carry_their_bytes_and_an_exit_line_counts_only_last() {
        let text = "##calamari-fleet[signature] {\"sha1\":\"ab\",\"bytes\":3}\nx\nz##calamari-fleet[ready]\nout\n\
                    ##calamari-fleet[exit] {\"code\":7}\nmore\n##calamari-fleet[exit] {\"code\":2}\n";
        let (summary, controls, shown) = read(text, false);
        assert_eq!(controls[0].name, protocol::SIGNATURE);
        assert_eq!(controls[0].bytes, b"x\nz");
        assert_eq!(controls[1].name, protocol::READY);
        assert_eq!(summary.exit, Some(2));
        assert_eq!(summary.lines, 3);
        assert_eq!(shown, "web1 | out\nweb1 | ##calamari-fleet[exit] {\"code\":7}\nweb1 | more\n");
        // No exit line: the session was cut.
        let (summary, _, _) = read("##calamari-fleet[ready]\nout\n", false);
        assert_eq!((summary.ready, summary.exit), (true, None));
    }

    #[test]
    fn own_errors_are_kept_apart_and_held_lines_wait_for_the_gate() {
        let (_, buffer) = capture();
        let output = FleetOutput::new(std::io::sink(), buffer.clone(), false);
        let gate = Gate::default();
        let summary =
            stream_stderr("calamari-fleet: the bundle arrived incomplete\noops\n".as_bytes(), "h", &output, &gate);
        assert_eq!(summary.own, ["the bundle arrived incomplete"]);
        assert_eq!(summary.tail, ["oops"]);
        assert_eq!(buffer.contents(), "h | oops\n");
    }
}
