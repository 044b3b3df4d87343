//! Running PowerShell scripts: the bootstrap (`bootstrap/Bootstrap.ps1`, placeholders filled
//! per step) reads the variables file, imports the script modules and dot-sources the
//! script, under `pwsh`. `pwsh` must be on the PATH; there is no silent fallback.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::interpreter::Launch;
use super::{Error, ScriptSyntax, variable_names, variables_payload};

/// The interpreter.
pub(crate) const PROGRAM: &str = "pwsh";

/// The command running `launch.script`, with the variables file and bootstrap written.
///
/// # Errors
/// When a file cannot be written, a variable cannot be evaluated, or pwsh is not on the
/// PATH.
pub(crate) fn command(launch: &Launch<'_>) -> Result<Command, Error> {
    let variables_file = launch.step.write("Variables.bin", &variables_payload(launch.variables)?)?;
    let text = bootstrap_text(&variables_file, launch.script, launch.parameters, launch.modules);
    // UTF-8 with BOM, as the reference writes PowerShell files.
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(text.as_bytes());
    let bootstrap = launch.step.write("Bootstrap.ps1", &bytes)?;
    let mut cmd = Command::new(launch.require(PROGRAM, "PowerShell Core (pwsh)", ScriptSyntax::PowerShell)?);
    cmd.args(arguments(&bootstrap, launch.variables.get_flag(variable_names::POWERSHELL_WITHOUT_PROFILE, false)?));
    Ok(cmd)
}

/// The bootstrap template.
pub(crate) const TEMPLATE: &str = include_str!("bootstrap/Bootstrap.ps1");

/// Quotes `text` as a PowerShell single-quoted string body (`'` doubled).
pub(crate) fn escape(text: &str) -> String {
    text.replace('\'', "''")
}

/// The bootstrap text for one step.
pub(crate) fn bootstrap_text(
    variables_file: &Path,
    script: &Path,
    parameters: Option<&str>,
    modules: &[PathBuf],
) -> String {
    let imports: String = modules
        .iter()
        .map(|m| format!("Import-Module -Name '{}' -DisableNameChecking\n", escape(&m.to_string_lossy())))
        .collect();
    TEMPLATE
        .replace("{{VARIABLES_FILE}}", &escape(&variables_file.to_string_lossy()))
        .replace("{{MODULES}}", &imports)
        .replace("{{SCRIPT}}", &escape(&script.to_string_lossy()))
        .replace("{{PARAMETERS}}", parameters.map(|p| p.replace(['\r', '\n'], " ")).as_deref().unwrap_or("").trim())
}

/// The arguments after `pwsh`.
pub(crate) fn arguments(bootstrap: &Path, without_profile: bool) -> Vec<String> {
    let mut args = Vec::new();
    if without_profile {
        args.push("-NoProfile".to_string());
    }
    args.extend(["-NoLogo", "-NonInteractive", "-ExecutionPolicy", "Unrestricted", "-Command"].map(String::from));
    args.push(format!(
        "Try {{. {{. '{}'; if ((Test-Path variable:global:LASTEXITCODE)) {{ exit $LastExitCode }}}};}} catch {{ throw }}",
        escape(&bootstrap.to_string_lossy())
    ));
    args
}
