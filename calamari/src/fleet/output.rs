//! Reading one host's output as it arrives: every line is written at once, prefixed with
//! the host (no polling, no sleep), service messages decoded for a person or passed
//! through, output variables collected.

use std::io::{BufRead, BufReader, Read};

use indexmap::IndexMap;

use super::FleetOutput;
use super::remote::{FLEET_PREFIX, READY_LINE};
use crate::service_message::names::SET_VARIABLE;
use crate::service_message::parse::{Item, Parser};

/// An output variable as the host reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputVariable {
    pub(crate) value: String,
    pub(crate) sensitive: bool,
}

/// What a host's stdout carried besides its text.
#[derive(Debug, Default)]
pub(crate) struct StdoutSummary {
    /// The run script said everything had arrived.
    pub(crate) ready: bool,
    /// `setVariable` messages, by name (the last value wins).
    pub(crate) variables: IndexMap<String, OutputVariable>,
}

/// The prefix of a host's lines.
pub(crate) fn prefix(host: &str, output: &FleetOutput) -> String {
    if output.terminal { format!("\x1b[36m{host}\x1b[0m | ") } else { format!("{host} | ") }
}

fn lines(stream: impl Read, mut each: impl FnMut(&str)) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.strip_suffix('\n').unwrap_or(&line);
                each(line.strip_suffix('\r').unwrap_or(line));
            }
        }
    }
}

/// Streams a host's stdout to `output` until it ends.
pub(crate) fn stream_stdout(
    stream: impl Read,
    host: &str,
    output: &FleetOutput,
    service_messages: bool,
) -> StdoutSummary {
    let prefix = prefix(host, output);
    let mut summary = StdoutSummary::default();
    let mut parser = Parser::new();
    let mut items = Vec::new();
    lines(stream, |line| {
        if !summary.ready && line == READY_LINE {
            summary.ready = true;
            return;
        }
        items.clear();
        parser.feed(line, &mut items);
        if service_messages {
            output.line(&format!("{prefix}{line}"));
        }
        for item in items.drain(..) {
            match item {
                Item::Text(text) => {
                    if !service_messages {
                        output.line(&format!("{prefix}{text}"));
                    }
                }
                Item::Message { message, .. } => {
                    if message.name != SET_VARIABLE {
                        continue;
                    }
                    let name = message.get("name").unwrap_or_default().to_string();
                    let value = message.get("value").unwrap_or_default().to_string();
                    let sensitive = message.get("sensitive").is_some_and(|s| s.eq_ignore_ascii_case("true"));
                    if !service_messages {
                        let shown = if sensitive { crate::log::MASK } else { value.as_str() };
                        output.line(&format!("{prefix}Output variable {name} = {shown}"));
                    }
                    summary.variables.insert(name, OutputVariable { value, sensitive });
                }
            }
        }
    });
    summary
}

/// Streams a host's stderr to `output` until it ends; returns the scripts' own error lines
/// and the last lines (for the host's error message).
pub(crate) fn stream_stderr(stream: impl Read, host: &str, output: &FleetOutput) -> (Vec<String>, Vec<String>) {
    let prefix = prefix(host, output);
    let mut own = Vec::new();
    let mut tail: Vec<String> = Vec::new();
    lines(stream, |line| {
        if let Some(message) = line.strip_prefix(FLEET_PREFIX) {
            own.push(message.to_string());
            return;
        }
        output.error_line(&format!("{prefix}{line}"));
        if !line.trim().is_empty() {
            if tail.len() == 5 {
                tail.remove(0);
            }
            tail.push(line.to_string());
        }
    });
    (own, tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service_message::ServiceMessage;

    fn capture() -> (FleetOutput, crate::log::SharedBuffer) {
        let (_, buffer, _) = crate::Log::capture();
        (FleetOutput::new(buffer.clone(), std::io::sink(), false), buffer)
    }

    #[test]
    fn lines_are_prefixed_and_variables_collected() {
        let secret = ServiceMessage::set_variable("Token", "abc", true).to_string();
        let plain = ServiceMessage::set_variable("Where", "/srv", false).to_string();
        let text = format!("{READY_LINE}\nhello\n##octopus[stdout-verbose]\n{secret}\n{plain}\n");
        let (output, buffer) = capture();
        let summary = stream_stdout(text.as_bytes(), "web1", &output, false);
        assert!(summary.ready);
        assert_eq!(summary.variables["Token"], OutputVariable { value: "abc".into(), sensitive: true });
        assert_eq!(
            buffer.contents(),
            "web1 | hello\nweb1 | Output variable Token = ********\nweb1 | Output variable Where = /srv\n"
        );

        let (output, buffer) = capture();
        stream_stdout(text.as_bytes(), "web1", &output, true);
        assert!(buffer.contents().contains(&format!("web1 | {secret}\n")), "{}", buffer.contents());
    }

    #[test]
    fn own_errors_are_kept_apart() {
        let (output, _) = capture();
        let (own, tail) =
            stream_stderr("calamari-fleet: the bundle arrived incomplete\noops\n".as_bytes(), "h", &output);
        assert_eq!(own, ["the bundle arrived incomplete"]);
        assert_eq!(tail, ["oops"]);
    }
}
