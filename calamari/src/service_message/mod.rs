//! `##octopus[...]` service messages: the typed [`ServiceMessage`], its wire form, and
//! (in [`parse`]) the parser for script output.
//!
//! Wire form: `##octopus[name attr="<base64 of UTF-8>" ...]`. Every
//! attribute value is base64; Calamari's own emitter uses double quotes. Messages without
//! attributes (`##octopus[stdout-verbose]`) switch the agent's log level.

pub(crate) mod parse;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The prefix every service message starts with.
pub(crate) const PREFIX: &str = "##octopus[";

/// One service message: a name and ordered attributes (plain text; base64 on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMessage {
    /// The message name, e.g. `setVariable`.
    pub name: String,
    /// Attribute names and their decoded values, in order.
    pub attributes: Vec<(String, String)>,
}

impl ServiceMessage {
    /// A message with no attributes yet.
    pub fn new(name: impl Into<String>) -> Self {
        ServiceMessage { name: name.into(), attributes: Vec::new() }
    }

    /// Adds an attribute (builder style).
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }

    /// The value of an attribute, matched case-insensitively as the reference does.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `setVariable`: an output variable for the agent. `sensitive` adds
    /// `sensitive="True"` as the reference's emitter does.
    pub fn set_variable(name: &str, value: &str, sensitive: bool) -> Self {
        let msg = ServiceMessage::new(names::SET_VARIABLE).with("name", name).with("value", value);
        if sensitive { msg.with("sensitive", "True") } else { msg }
    }

    /// `createArtifact` for a file the agent should collect.
    pub fn create_artifact(path: &str, name: &str, length: u64) -> Self {
        ServiceMessage::new(names::CREATE_ARTIFACT)
            .with("path", path)
            .with("name", name)
            .with("length", length.to_string())
    }

    /// `progress` with a percentage and a message.
    pub fn progress(percentage: u32, message: &str) -> Self {
        ServiceMessage::new(names::PROGRESS).with("percentage", percentage.to_string()).with("message", message)
    }

    /// `resultMessage`: the message a failed step reports.
    pub fn result_message(message: &str) -> Self {
        ServiceMessage::new(names::RESULT_MESSAGE).with("message", message)
    }

    /// Encodes a value as the wire form expects (base64 of UTF-8).
    pub fn encode_value(value: &str) -> String {
        BASE64.encode(value.as_bytes())
    }
}

impl fmt::Display for ServiceMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.name)?;
        for (name, value) in &self.attributes {
            write!(f, " {name}=\"{}\"", Self::encode_value(value))?;
        }
        f.write_str("]")
    }
}

/// Well-known message names.
pub(crate) mod names {
    /// An output variable.
    pub(crate) const SET_VARIABLE: &str = "setVariable";
    /// An artifact to collect.
    pub(crate) const CREATE_ARTIFACT: &str = "createArtifact";
    /// Progress of a long operation.
    pub(crate) const PROGRESS: &str = "progress";
    /// The result message of a failed step.
    pub(crate) const RESULT_MESSAGE: &str = "resultMessage";
    /// A value the agent should mask.
    pub(crate) const MASK: &str = "mask";
    /// Environment state.
    pub(crate) const SET_ENVIRONMENT_STATE: &str = "set-environmentstate";
    /// A package found by `find-package`.
    pub(crate) const FOUND_PACKAGE: &str = "foundPackage";
    /// Marker before an exact `find-package` match.
    pub(crate) const CALAMARI_FOUND_PACKAGE: &str = "calamari-found-package";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_variable_wire_form_is_base64_double_quoted() {
        let cases = [
            (ServiceMessage::set_variable("Foo", "Bar", false), r#"##octopus[setVariable name="Rm9v" value="QmFy"]"#),
            (
                ServiceMessage::set_variable("Foo", "Bar", true),
                r#"##octopus[setVariable name="Rm9v" value="QmFy" sensitive="VHJ1ZQ=="]"#,
            ),
            (ServiceMessage::new("stdout-verbose"), "##octopus[stdout-verbose]"),
            (ServiceMessage::set_variable("é", "", false), r#"##octopus[setVariable name="w6k=" value=""]"#),
        ];
        for (msg, wire) in cases {
            assert_eq!(msg.to_string(), wire);
        }
    }
}
