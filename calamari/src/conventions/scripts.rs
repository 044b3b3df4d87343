//! The script conventions: configured scripts (`Octopus.Action.CustomScripts.<Stage>.<ext>`,
//! when the `Octopus.Features.CustomScripts` feature is enabled) and packaged scripts
//! (`<Stage>.<ext>` at the top of the package).
//!
//! Reference rules (`ConfiguredScriptBehaviour`, `PackagedScriptBehaviour`): every
//! non-empty configured script runs, in syntax order; of the packaged scripts for a stage
//! only one runs, chosen by the platform's preference (`.sh`, `.py`, `.ps1` here), and all
//! of that stage's scripts are deleted afterwards unless `OctopusDeleteScriptsOnCleanup`
//! is false.

use std::path::{Path, PathBuf};

use super::{Deployment, Error, features};
use crate::Result;
use crate::script::{self, ScriptSyntax};
use crate::variables::names;

/// A deployment stage that has scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before substitution and configuration.
    PreDeploy,
    /// After configuration.
    Deploy,
    /// Last.
    PostDeploy,
    /// On failure (rollback).
    DeployFailed,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Stage {
    /// The stage's name as in script file names and variables.
    pub fn name(self) -> &'static str {
        match self {
            Stage::PreDeploy => "PreDeploy",
            Stage::Deploy => "Deploy",
            Stage::PostDeploy => "PostDeploy",
            Stage::DeployFailed => "DeployFailed",
        }
    }
}

/// Configured script syntaxes in the reference's enum order, with the extension used in the
/// variable name. C# scripts (`csx`) are not supported here.
const CONFIGURED_EXTENSIONS: [(&str, Option<ScriptSyntax>); 4] = [
    ("ps1", Some(ScriptSyntax::PowerShell)),
    ("csx", None),
    ("sh", Some(ScriptSyntax::Bash)),
    ("py", Some(ScriptSyntax::Python)),
];

fn delete_scripts_on_cleanup(d: &Deployment<'_>) -> Result<bool> {
    Ok(d.variables.get_flag(names::DELETE_SCRIPTS_ON_CLEANUP, true)?)
}

/// Runs every non-empty configured script of `stage`.
pub(super) fn run_configured(d: &mut Deployment<'_>, stage: Stage) -> Result<()> {
    if !d.variables.is_feature_enabled(features::CUSTOM_SCRIPTS)? {
        return Ok(());
    }
    for (extension, syntax) in CONFIGURED_EXTENSIONS {
        let name = format!("Octopus.Action.CustomScripts.{}.{extension}", stage.name());
        let body = d.variables.get_or_empty(&name)?;
        if body.trim().is_empty() {
            continue;
        }
        let Some(syntax) = syntax else {
            return Err(Error::CSharpUnsupported { stage }.into());
        };
        let path = d.current_directory.join(&name);
        crate::fs::write(&path, syntax.file_bytes(&body.replace("\r\n", "\n")))?;
        let outcome = run(d, &path, syntax);
        if delete_scripts_on_cleanup(d)? {
            crate::fs::remove_file(&path)?;
        }
        check_outcome(d, stage, &path, true, &outcome?)?;
    }
    Ok(())
}

/// The configured scripts of `stage` that would run: (variable name, syntax); C# ones are
/// refused when they run.
pub(super) fn configured_scripts(
    variables: &crate::VariableDictionary,
    stage: Stage,
) -> Result<Vec<(String, Option<ScriptSyntax>)>> {
    if !variables.is_feature_enabled(features::CUSTOM_SCRIPTS)? {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (extension, syntax) in CONFIGURED_EXTENSIONS {
        let name = format!("Octopus.Action.CustomScripts.{}.{extension}", stage.name());
        if !variables.get_or_empty(&name)?.trim().is_empty() {
            out.push((name, syntax));
        }
    }
    Ok(out)
}

/// The packaged scripts of `stage` at the top of the current directory.
pub(super) fn packaged_scripts(dir: &Path, stage: Stage) -> Vec<(PathBuf, ScriptSyntax)> {
    let Ok(entries) = crate::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(PathBuf, ScriptSyntax)> = entries
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| p.file_stem().is_some_and(|s| s.to_string_lossy().eq_ignore_ascii_case(stage.name())))
        .filter_map(|p| ScriptSyntax::from_path(&p).map(|s| (p, s)))
        .collect();
    found.sort_by_key(|(p, syntax)| {
        (ScriptSyntax::preferred_order().iter().position(|s| s == syntax).unwrap_or(usize::MAX), p.clone())
    });
    found
}

/// Runs the preferred packaged script of `stage`, then deletes that stage's scripts
/// (except `DeployFailed`, deleted at cleanup).
pub(super) fn run_packaged(d: &mut Deployment<'_>, stage: Stage) -> Result<()> {
    if !d.variables.get_flag("Octopus.Action.Package.RunScripts", true)? {
        return Ok(());
    }
    let scripts = packaged_scripts(&d.current_directory, stage);
    let Some((path, syntax)) = scripts.first().cloned() else { return Ok(()) };
    let outcome = run(d, &path, syntax);
    if stage != Stage::DeployFailed {
        delete_packaged_scripts(d, stage)?;
    }
    check_outcome(d, stage, &path, false, &outcome?)
}

/// A non-zero exit code fails the stage; so does error output with
/// `OctopusFailScriptOnErrorOutput`.
fn check_outcome(
    d: &Deployment<'_>,
    stage: Stage,
    script: &Path,
    configured: bool,
    outcome: &script::ScriptOutcome,
) -> Result<()> {
    let script = script.to_path_buf();
    if outcome.exit_code != 0 {
        return Err(Error::ScriptFailed { stage, script, configured, exit_code: outcome.exit_code }.into());
    }
    if outcome.had_error_output && d.variables.get_flag(names::FAIL_SCRIPT_ON_ERROR_OUTPUT, false)? {
        return Err(Error::ScriptErrorOutput { stage, script, configured }.into());
    }
    Ok(())
}

/// Deletes every packaged script of `stage` unless `OctopusDeleteScriptsOnCleanup` is false.
pub(super) fn delete_packaged_scripts(d: &Deployment<'_>, stage: Stage) -> Result<()> {
    if !delete_scripts_on_cleanup(d)? {
        return Ok(());
    }
    for (path, _) in packaged_scripts(&d.current_directory, stage) {
        crate::fs::remove_file(&path)?;
    }
    Ok(())
}

fn run(d: &mut Deployment<'_>, path: &Path, syntax: ScriptSyntax) -> Result<script::ScriptOutcome> {
    d.log.verbose(format!("Executing '{}' ({syntax:?})", path.display()));
    Ok(script::run_script(path, None, d.variables, d.log)?)
}
