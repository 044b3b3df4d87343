//! Running bash scripts: `Configure.sh` (helpers, embedded from `bootstrap/Configure.sh`)
//! and a per-step `Bootstrap.sh` that holds the variables as literals, then sources the
//! user's script with its parameters; `bash --noprofile --norc` runs it.

use std::path::Path;
use std::process::Command;

use super::interpreter::Launch;
use super::workspace::StepDir;
use super::{Error, evaluated_variables};

/// The interpreter.
pub(crate) const PROGRAM: &str = "bash";

/// The command running `launch.script`: its line endings made LF, its bootstrap written.
///
/// # Errors
/// When the script or bootstrap cannot be read or written, a variable cannot be evaluated,
/// or bash is not on the PATH.
pub(crate) fn command(launch: &Launch<'_>) -> Result<Command, Error> {
    normalise_line_endings(launch.script)?;
    let bootstrap = write(launch.step, &evaluated_variables(launch.variables)?, launch.script, launch.parameters)?;
    let mut cmd = Command::new(launch.interpreter);
    // `$0` is the user's script (so `$(dirname "$0")` finds its siblings), not the
    // bootstrap in the private step directory.
    cmd.args(["--noprofile", "--norc", "-c", "source \"$1\""]).arg(launch.script).arg(bootstrap);
    Ok(cmd)
}

/// The helper functions and variable loader (bash builtins only).
pub(crate) const CONFIGURE: &str = include_str!("bootstrap/Configure.sh");

/// Quotes `text` for bash as one word (`'...'`, with `'` written `'\''`).
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The per-step bootstrap: the helpers with the variables filled in, then the user's
/// script sourced with the parameters verbatim (as the reference does, so their quoting
/// holds). One file, so bash opens one file and Calamari writes and removes one.
pub(crate) fn bootstrap_text(variables_source: &[u8], script: &Path, parameters: Option<&str>) -> Vec<u8> {
    let parameters = parameters.map(|p| p.replace(['\r', '\n'], " ")).unwrap_or_default();
    let (head, tail) = CONFIGURE.split_once(PLACEHOLDER).expect("the bootstrap has the variables placeholder");
    let mut out = Vec::with_capacity(CONFIGURE.len() + variables_source.len() + 256);
    out.extend_from_slice(b"#!/usr/bin/env bash\n");
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(variables_source);
    out.extend_from_slice(tail.as_bytes());
    out.extend_from_slice(
        format!("\nset --\nsource {} {}\n", quote(&script.to_string_lossy()), parameters.trim()).as_bytes(),
    );
    out
}

/// Where the variables go in [`CONFIGURE`].
const PLACEHOLDER: &str = "#{{OCTOPUS_PARAMETERS}}\n";

/// Writes `Bootstrap.sh` into the step directory and returns its path.
pub(crate) fn write(
    step: &StepDir,
    variables: &[(&str, String)],
    script: &Path,
    parameters: Option<&str>,
) -> crate::fs::Result<std::path::PathBuf> {
    step.write("Bootstrap.sh", &bootstrap_text(&variables_source(variables), script, parameters))
}

/// Variables.sh: `octopus_parameters=( ['name']='value' ... )`, every key and value a
/// literal: single-quoted, or `$'...'` (only `\\`, `\'` and `\xHH` for control bytes) when
/// it holds a `'`. Sourcing it runs nothing else, whatever the values contain.
pub(crate) fn variables_source(variables: &[(&str, String)]) -> Vec<u8> {
    let mut out = String::with_capacity(variables.iter().map(|(n, v)| n.len() + v.len() + 8).sum::<usize>() + 32);
    out.push_str("octopus_parameters=(\n");
    for (name, value) in variables {
        out.push('[');
        push_literal(&mut out, name);
        out.push_str("]=");
        push_literal(&mut out, value);
        out.push('\n');
    }
    out.push_str(")\n");
    out.into_bytes()
}

fn push_literal(out: &mut String, text: &str) {
    if !text.contains('\'') {
        out.push('\'');
        out.push_str(text);
        out.push('\'');
        return;
    }
    out.push_str("$'");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// Rewrites CRLF line endings of a bash script to LF in place (reference behaviour).
pub(crate) fn normalise_line_endings(script: &Path) -> crate::fs::Result<()> {
    let bytes = crate::fs::read(script)?;
    if memchr::memmem::find(&bytes, b"\r\n").is_some() {
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        crate::fs::write(script, out)?;
    }
    Ok(())
}
