//! What happens to each line a script prints.
//!
//! * stdout goes through the service-message [`Parser`]. Plain text is logged at the
//!   script's current level (`##octopus[stdout-verbose]` and friends from the script switch
//!   it; the [`Log`] then emits the switch itself, so its idea of the agent's level stays
//!   right), masked.
//! * `setVariable` becomes an output variable: set in the [`VariableDictionary`] (the name,
//!   `Octopus.Action[A].Output.name`, `...Output[M].name`) so later conventions see it, and
//!   re-emitted once for the agent in Calamari's own form. A value that contains a known
//!   secret is marked sensitive even without `-sensitive`.
//! * How a sensitive value reaches the agent while masking holds: the `setVariable` (and a
//!   sensitive `set-environmentstate`, and `mask`) is written once, unmasked, in its wire
//!   form where the value is base64 only, never the clear text; the value is then added to
//!   the mask set, so every later appearance, clear or base64, prints as `********`. The
//!   agent, which reads the message, stores the value as sensitive. This is the same
//!   contract as [`Log::output_variable`].
//! * Every other message passes through unchanged at the current level (masked like text:
//!   a message carrying a secret's base64 is broken rather than leaked).
//! * stderr lines are logged as errors (masked) and remembered for
//!   `Octopus.Action.FailScriptOnErrorOutput`.

use crate::Log;
use crate::VariableDictionary;
use crate::log::Level;
use crate::service_message::parse::{Item, Parser};
use crate::service_message::{ServiceMessage, names};

use super::process::Stream;

/// The state of one script's output.
pub(crate) struct OutputHandler<'a> {
    parser: Parser,
    items: Vec<Item>,
    level: Level,
    log: &'a Log,
    variables: &'a mut VariableDictionary,
    /// Whether the script wrote to stderr.
    pub had_error_output: bool,
}

impl<'a> OutputHandler<'a> {
    /// A handler writing to `log` and setting output variables in `variables`.
    pub(crate) fn new(log: &'a Log, variables: &'a mut VariableDictionary) -> Self {
        OutputHandler {
            parser: Parser::new(),
            items: Vec::new(),
            level: Level::Info,
            log,
            variables,
            had_error_output: false,
        }
    }

    /// Handles one line from `stream`.
    pub(crate) fn line(&mut self, stream: Stream, line: String) {
        match stream {
            Stream::Stderr => {
                self.had_error_output = true;
                self.log.error(&line);
            }
            Stream::Stdout => {
                self.parser.feed(&line, &mut self.items);
                let items = std::mem::take(&mut self.items);
                for item in items {
                    self.item(item);
                }
            }
        }
    }

    /// The stream ended: anything pending is flushed as text.
    pub(crate) fn finish(&mut self) {
        self.parser.finish(&mut self.items);
        for item in std::mem::take(&mut self.items) {
            self.item(item);
        }
    }

    fn item(&mut self, item: Item) {
        match item {
            Item::Text(text) => self.log.write(self.level, text.strip_suffix('\r').unwrap_or(&text)),
            Item::Message { message, raw } => self.message(message, &raw),
        }
    }

    fn message(&mut self, message: ServiceMessage, raw: &str) {
        let name = message.name.as_str();
        if let Some(level) = level_of(name) {
            self.level = level;
            return;
        }
        let sensitive = message.get("sensitive").is_some_and(|s| s.trim().eq_ignore_ascii_case("true"));
        if name == names::SET_VARIABLE {
            let Some(var) = message.get("name").filter(|n| !n.is_empty()) else {
                self.log.warn(format!("Ignoring a setVariable service message without a name: {}", self.log.mask(raw)));
                return;
            };
            let value = message.get("value").unwrap_or("");
            // A value holding a secret stays secret even when the script forgot -sensitive.
            let sensitive = sensitive || self.log.mask(value) != value;
            self.variables.set_output(var, value, sensitive);
            self.log.output_variable(var, value, sensitive);
        } else if name == names::MASK || (name == names::SET_ENVIRONMENT_STATE && sensitive) {
            self.log.service_message(self.level, &message);
            if let Some(value) = message.get("value") {
                self.log.add_sensitive(value);
            }
        } else {
            self.log.write(self.level, raw);
        }
    }
}

fn level_of(name: &str) -> Option<Level> {
    Some(match name {
        "stdout-default" => Level::Info,
        "stdout-verbose" => Level::Verbose,
        "stdout-warning" => Level::Warn,
        "stdout-highlight" => Level::Highlight,
        "stdout-wait" => Level::Wait,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_variable_masking_and_levels() {
        let (log, out, err) = Log::capture();
        let mut vars = VariableDictionary::new();
        vars.set("Octopus.Action.Name", "Step A".to_string());
        vars.set("Octopus.Machine.Name", "web01".to_string());
        let secret = "s3cr3t-value";
        let b64 = ServiceMessage::encode_value(secret);
        {
            let mut h = OutputHandler::new(&log, &mut vars);
            for line in [
                "hello".to_string(),
                format!(
                    "##octopus[setVariable name='{}' value='{b64}' sensitive='VHJ1ZQ==']",
                    ServiceMessage::encode_value("Pw")
                ),
                format!("now {secret} and {b64}"),
                format!(
                    "##octopus[setVariable name='{}' value='{}']",
                    ServiceMessage::encode_value("Copy"),
                    ServiceMessage::encode_value(&format!("pw={secret}"))
                ),
                "##octopus[stdout-verbose]".to_string(),
                "quiet".to_string(),
                "##octopus[stdout-default]".to_string(),
                "##octopus[progress percentage='NTA=' message='']".to_string(),
            ] {
                h.line(Stream::Stdout, line);
            }
            h.line(Stream::Stderr, format!("err {secret}"));
            h.finish();
            assert!(h.had_error_output);
        }
        assert_eq!(vars.get_raw("Pw"), Some(secret));
        assert_eq!(vars.get_raw("Octopus.Action[Step A].Output.Pw"), Some(secret));
        assert_eq!(vars.get_raw("Octopus.Action[Step A].Output[web01].Pw"), Some(secret));
        assert!(vars.is_sensitive("Pw"));
        assert!(vars.is_sensitive("Copy"), "a copy of a secret is promoted to sensitive");
        let out = out.contents();
        let err = err.contents();
        assert!(!out.contains(secret) && !err.contains(secret), "{out}\n{err}");
        assert!(out.contains("now ******** and ********"), "{out}");
        assert!(out.contains("##octopus[stdout-verbose]\nquiet\n##octopus[stdout-default]\n"), "{out}");
        assert!(out.contains("##octopus[progress percentage='NTA=' message='']"), "{out}");
        // The value's base64 appears only inside the two setVariable messages (the second
        // holds "pw=<secret>", whose base64 contains the secret's: 3-byte aligned).
        assert_eq!(out.matches(&b64).count(), 2, "{out}");
        assert!(err.contains("err ********"));
    }
}
