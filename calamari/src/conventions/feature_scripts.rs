//! The feature conventions: scripts embedded in Calamari that run at fixed points of the
//! `deploy-package` pipeline for the features listed in `Octopus.Action.EnabledFeatures`.
//!
//! Reference rules (`FeatureConvention`): a feature's script for a stage is named
//! `<Feature>_<Stage>.<ext>` (for example `Octopus.Features.HelloWorld_BeforePreDeploy.sh`),
//! and every supported syntax is tried, in the platform's preference order (`.sh`, `.py`,
//! `.ps1`): a feature with both a bash and a PowerShell script runs both, as the reference
//! does on Linux. A script we embed is written to the current directory (an existing file of that
//! name is kept and run instead, with a warning, so it can override ours), run, then
//! deleted. Features without embedded scripts are skipped silently. The name is matched
//! exactly, case included, as the reference looks up its embedded resources.

use super::{Deployment, Error};
use crate::Result;
use crate::script::{self, ScriptSyntax};
use crate::variables::names;

/// Where feature scripts run in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeatureStage {
    /// After extraction, before the PreDeploy scripts.
    BeforePreDeploy,
    /// After the PreDeploy scripts.
    AfterPreDeploy,
    /// After configuration and the copy to the custom directory, before the Deploy scripts.
    BeforeDeploy,
    /// After the Deploy scripts.
    AfterDeploy,
    /// Before the PostDeploy scripts.
    BeforePostDeploy,
    /// After the PostDeploy scripts.
    AfterPostDeploy,
    /// On failure, after the packaged `DeployFailed` script.
    DeployFailed,
}

impl FeatureStage {
    /// The stage's name as in feature script names.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FeatureStage::BeforePreDeploy => "BeforePreDeploy",
            FeatureStage::AfterPreDeploy => "AfterPreDeploy",
            FeatureStage::BeforeDeploy => "BeforeDeploy",
            FeatureStage::AfterDeploy => "AfterDeploy",
            FeatureStage::BeforePostDeploy => "BeforePostDeploy",
            FeatureStage::AfterPostDeploy => "AfterPostDeploy",
            FeatureStage::DeployFailed => "DeployFailed",
        }
    }
}

/// The feature scripts embedded in Calamari: (file name, contents).
const EMBEDDED: &[(&str, &str)] = &[
    (
        "Octopus.Features.HelloWorld_BeforePreDeploy.sh",
        include_str!("feature_scripts/Octopus.Features.HelloWorld_BeforePreDeploy.sh"),
    ),
    (
        "Octopus.Features.HelloWorld_BeforePreDeploy.ps1",
        include_str!("feature_scripts/Octopus.Features.HelloWorld_BeforePreDeploy.ps1"),
    ),
];

/// The embedded script named `name`, if there is one.
fn embedded(name: &str) -> Option<&'static str> {
    EMBEDDED.iter().find(|(n, _)| *n == name).map(|(_, body)| *body)
}

/// `<feature>_<stage>.<ext>`.
fn script_name(feature: &str, stage: FeatureStage, syntax: ScriptSyntax) -> String {
    format!("{feature}_{}.{}", stage.name(), syntax.extension())
}

/// Runs the embedded scripts of every enabled feature for `stage`, in feature order.
///
/// # Errors
/// When a script cannot be written or run, or exits with a non-zero code.
pub(super) fn run(d: &mut Deployment<'_>, stage: FeatureStage) -> Result<()> {
    let features = d.variables.get_strings(names::ENABLED_FEATURES, &[','])?;
    for feature in &features {
        // Features implemented here rather than by embedded scripts run first, as the
        // reference runs a feature's class before its scripts.
        if feature.eq_ignore_ascii_case(super::features::NGINX) {
            match stage {
                FeatureStage::BeforePreDeploy => crate::nginx::check_prerequisites(d.variables, d.log)?,
                FeatureStage::AfterDeploy => crate::nginx::configure(d.variables, d.log)?,
                _ => {}
            }
        }
        for syntax in ScriptSyntax::preferred_order() {
            let name = script_name(feature, stage, *syntax);
            let Some(body) = embedded(&name) else { continue };
            run_one(d, &name, *syntax, body)?;
        }
    }
    Ok(())
}

/// The embedded scripts the enabled `features` would run at `stage`, in order.
pub(super) fn planned(features: &[String], stage: FeatureStage) -> Vec<String> {
    let mut out = Vec::new();
    for feature in features {
        for syntax in ScriptSyntax::preferred_order() {
            let name = script_name(feature, stage, *syntax);
            if embedded(&name).is_some() {
                out.push(name);
            }
        }
    }
    out
}

fn run_one(d: &mut Deployment<'_>, name: &str, syntax: ScriptSyntax, body: &str) -> Result<()> {
    let path = d.current_directory.join(name);
    if path.symlink_metadata().is_ok() {
        d.log.warn(format!("Did not overwrite '{}', it was already on disk", path.display()));
    } else {
        d.log.verbose(format!("Creating '{}' from embedded resource", path.display()));
        crate::fs::write(&path, syntax.file_bytes(body))?;
    }
    d.log.verbose(format!("Executing '{}'", path.display()));
    let outcome = script::run_script(&path, None, d.variables, d.log);
    d.log.verbose(format!("Deleting '{}'", path.display()));
    if let Err(e) = crate::fs::remove_file(&path) {
        d.log.verbose(format!("Could not delete '{}': {e}", path.display()));
    }
    let exit_code = outcome?.exit_code;
    if exit_code != 0 {
        return Err(Error::FeatureScriptFailed { script: path, exit_code }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_names_follow_the_reference_and_only_embedded_ones_are_found() {
        let name = script_name("Octopus.Features.HelloWorld", FeatureStage::BeforePreDeploy, ScriptSyntax::Bash);
        assert_eq!(name, "Octopus.Features.HelloWorld_BeforePreDeploy.sh");
        assert!(embedded(&name).is_some_and(|body| body.contains("echo \"Hello World!\"")));
        let ps = script_name("Octopus.Features.HelloWorld", FeatureStage::BeforePreDeploy, ScriptSyntax::PowerShell);
        assert!(embedded(&ps).is_some_and(|body| body.contains("Write-Output \"Hello World!\"")));
        assert!(embedded("octopus.features.helloworld_BeforePreDeploy.sh").is_none(), "names match exactly");
        assert!(embedded("Octopus.Features.HelloWorld_AfterPreDeploy.sh").is_none());
        assert!(embedded("Octopus.Features.Nginx_BeforePreDeploy.sh").is_none(), "nginx is done in Rust");
    }
}
