//! The PowerShell bootstrap (`bootstrap/Bootstrap.ps1`, placeholders filled per step), run
//! with `pwsh`. `pwsh` must be on the PATH; there is no silent fallback.

use std::path::{Path, PathBuf};

/// The bootstrap template.
pub const TEMPLATE: &str = include_str!("bootstrap/Bootstrap.ps1");

/// Quotes `text` as a PowerShell single-quoted string body (`'` doubled).
pub fn escape(text: &str) -> String {
    text.replace('\'', "''")
}

/// The bootstrap text for one step.
pub fn bootstrap_text(variables_file: &Path, script: &Path, parameters: Option<&str>, modules: &[PathBuf]) -> String {
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
pub fn arguments(bootstrap: &Path, without_profile: bool) -> Vec<String> {
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
