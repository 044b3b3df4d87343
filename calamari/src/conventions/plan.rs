//! `deploy-package --plan` (our extension, as Ansible's `--check --diff` and Deployer's
//! `--plan`): everything the deployment would do, with nothing done.
//!
//! The plan walks the same pipeline table as the deployment ([`super::PIPELINE`]), each
//! step saying what it would do or why it would not run. The package is extracted twice
//! into a private temporary directory (removed at the end): one copy stays as the package
//! ships, the file conventions (substitution, configuration transforms and variables,
//! structured variables) really run on the other, and every file they change is shown as a
//! unified diff. Scripts are listed, never run (so a `PreDeploy` script that edits files is
//! not reflected in the diffs: the plan says so). Nothing else is touched: no staging
//! directory, journal entry, release or deployment lock, package-cache registration or
//! nginx file. Everything is printed through the log, so sensitive values are masked in the
//! diffs as in any other output.

use std::path::{Path, PathBuf};

use super::feature_scripts::{self, FeatureStage};
use super::scripts::{self, Stage};
use super::{Applies, PIPELINE, features, release};
use crate::log::Log;
use crate::package::{self, ExtractOptions, PackageIdentity};
use crate::variables::{VariableDictionary, names};
use crate::{Result, structured, substitution};

/// What a plan step needs.
pub(super) struct Plan<'a> {
    pub(super) variables: &'a mut VariableDictionary,
    pub(super) log: &'a Log,
    /// Where the package would be extracted.
    pub(super) staging: PathBuf,
    /// The package as it ships.
    pub(super) shipped: PathBuf,
    /// The copy the file conventions run on.
    pub(super) planned: PathBuf,
    /// The release settings, when the deployment asks for a release.
    pub(super) release: Option<release::Settings>,
    /// Whether any file convention ran (then the diffs are shown after them).
    pub(super) files_touched: bool,
}

impl Plan<'_> {
    fn say(&self, text: impl AsRef<str>) {
        self.log.info(format!("  {}", text.as_ref()));
    }
}

/// Shows what `deploy-package` would do with `package` and `variables`; changes nothing.
///
/// # Errors
/// What would make the deployment fail before anything runs: a missing package, an
/// operator lock, bad release settings or variables, a package that cannot be extracted.
pub fn plan_deploy_package(package: &Path, variables: &mut VariableDictionary, log: &Log) -> Result<()> {
    let package = std::path::absolute(package)
        .map_err(|source| super::Error::PackagePath { path: package.to_path_buf(), source })?;
    if !package.is_file() {
        return Err(super::Error::PackageNotFound(package).into());
    }
    let home = variables.get_raw(&format!("env:{}", crate::env_vars::TENTACLE_HOME)).map(PathBuf::from);
    let set = variables.get_or_empty(names::RETENTION_POLICY_SET)?;
    crate::operator_lock::refuse_if_locked(home.as_deref(), &set, "deployed")?;
    log.info(format!("Plan for deploying {} (nothing will be changed)", package.display()));

    let journal = crate::journal::DeploymentJournal::from_variables(variables)?;
    if let super::AlreadyInstalled::Yes(dir) =
        super::check_already_installed(journal.as_ref(), variables, &Log::capture().0)?
    {
        log.info(format!("  The package is already installed at '{dir}' and would be skipped (Octopus.Action.Package.SkipIfAlreadyInstalled)"));
        return Ok(());
    }
    let identity = PackageIdentity::from_file(&package)?;
    super::set_package_identity(variables, &identity);
    let staging = package::staging::planned_directory(&identity, variables)?;
    variables.set(names::ORIGINAL_PACKAGE_DIRECTORY_PATH, Some(staging.display().to_string()));
    variables.set(names::INSTALLATION_DIRECTORY_PATH, Some(staging.display().to_string()));
    variables.set(names::PACKAGE_INSTALLATION_DIRECTORY_PATH, Some(staging.display().to_string()));

    let temp = tempfile::Builder::new().prefix("calamari-plan-").tempdir().map_err(|source| crate::fs::IoError {
        op: "create a temporary directory in",
        path: std::env::temp_dir(),
        source,
    })?;
    let options = ExtractOptions::from_variables(variables)?;
    let shipped = temp.path().join("shipped");
    let planned = temp.path().join("planned");
    let quiet = Log::capture().0;
    package::extract(&package, &shipped, &options, &quiet)?;
    let summary = package::extract(&package, &planned, &options, &quiet)?;
    let release = release::Settings::read(variables)?;

    let mut plan = Plan { variables, log, staging, shipped, planned, release, files_touched: false };
    for step in PIPELINE {
        if step.applies == Applies::Release && plan.release.is_none() {
            continue;
        }
        log.info(format!("{}:", step.name));
        if step.name == "extract package" {
            plan.say(format!(
                "would extract {} {} ({}) to '{}'",
                identity.id,
                identity.version,
                crate::log::count(summary.file_count, "file", "files"),
                plan.staging.display()
            ));
            continue;
        }
        (step.plan)(&mut plan)?;
    }
    if plan.files_touched {
        show_diffs(&plan)?;
    }
    log.info("Journal and retention:");
    match &journal {
        Some(journal) => plan.say(format!("would record the deployment in '{}'", journal.path().display())),
        None => plan.say("no journal (neither TentacleJournal nor TentacleHome is set): nothing would be recorded"),
    }
    plan.say(format!(
        "deploy-package removes no earlier release itself; `calamari clean --retentionPolicySet=\"{set}\" --releases=N --dryRun` shows what a policy would remove"
    ));
    if plan.variables.get_flag("Octopus.Calamari.EnablePackageRetention", false)? {
        plan.say("would register the package's use for this task in the package cache's retention journal");
    }
    log.info("Nothing was changed.");
    Ok(())
}

/// What the step does when it has nothing to plan: nothing to say.
pub(super) fn nothing(_: &mut Plan<'_>) -> Result<()> {
    Ok(())
}

pub(super) fn features_not_run(p: &mut Plan<'_>) -> Result<()> {
    let warnings = super::features_not_run(p.variables)?;
    if warnings.is_empty() {
        p.say("every enabled feature runs here");
    }
    for warning in warnings {
        p.say(format!("warning: {warning}"));
    }
    Ok(())
}

pub(super) fn release_settings(p: &mut Plan<'_>) -> Result<()> {
    let Some(settings) = &p.release else {
        p.say("no Calamari.Release.* setting: the release goes to its own directory only");
        return Ok(());
    };
    if let Some(link) = &settings.link {
        let current = settings.current_target()?;
        p.say(format!(
            "would take the release lock '{}.lock'; the current link '{}' points at {}",
            link.display(),
            link.display(),
            current.map_or("nothing yet".to_string(), |c| format!("'{}'", c.display()))
        ));
    }
    Ok(())
}

pub(super) fn shared_paths(p: &mut Plan<'_>) -> Result<()> {
    let Some(settings) = &p.release else { return Ok(()) };
    let (Some(link), false) = (&settings.link, settings.shared.is_empty()) else {
        p.say("no shared paths");
        return Ok(());
    };
    let root = link.parent().unwrap_or(Path::new("/")).join("shared");
    for path in &settings.shared {
        p.say(format!("would link '{}' to '{}'", p.staging.join(path).display(), root.join(path).display()));
    }
    Ok(())
}

fn feature_stage(p: &mut Plan<'_>, stage: FeatureStage) -> Result<()> {
    let features = p.variables.get_strings(names::ENABLED_FEATURES, &[','])?;
    let nginx = features.iter().any(|f| f.eq_ignore_ascii_case(features::NGINX));
    match stage {
        FeatureStage::BeforePreDeploy if nginx => p.say("would check that nginx is there (and sudo, when not root)"),
        FeatureStage::AfterDeploy if nginx => nginx_plan(p)?,
        _ => {}
    }
    let scripts = feature_scripts::planned(&features, stage);
    if scripts.is_empty() && !nginx {
        p.say("no feature script");
    }
    for script in scripts {
        p.say(format!("would run the feature script {script}"));
    }
    Ok(())
}

pub(super) fn before_pre_deploy(p: &mut Plan<'_>) -> Result<()> {
    feature_stage(p, FeatureStage::BeforePreDeploy)
}
pub(super) fn after_pre_deploy(p: &mut Plan<'_>) -> Result<()> {
    feature_stage(p, FeatureStage::AfterPreDeploy)
}
pub(super) fn before_deploy(p: &mut Plan<'_>) -> Result<()> {
    feature_stage(p, FeatureStage::BeforeDeploy)
}
pub(super) fn after_deploy(p: &mut Plan<'_>) -> Result<()> {
    feature_stage(p, FeatureStage::AfterDeploy)
}
pub(super) fn before_post_deploy(p: &mut Plan<'_>) -> Result<()> {
    feature_stage(p, FeatureStage::BeforePostDeploy)
}
pub(super) fn after_post_deploy(p: &mut Plan<'_>) -> Result<()> {
    feature_stage(p, FeatureStage::AfterPostDeploy)
}

/// The nginx site's files, as diffs against what is installed.
fn nginx_plan(p: &mut Plan<'_>) -> Result<()> {
    let site = crate::nginx::site::Site::from_variables(p.variables).map_err(crate::Error::from)?;
    let ssl = p
        .variables
        .get(crate::nginx::site::names::CERTIFICATES_DIRECTORY)?
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| crate::nginx::site::DEFAULT_CERTIFICATES_DIRECTORY.to_string());
    p.say("would test the new nginx configuration on a staged copy, install it and reload nginx:");
    for file in site.files() {
        let live = match file.relative_path.split_once('/') {
            Some(("conf", rest)) => Path::new(&site.configurations_directory).join(rest),
            Some((_, rest)) => Path::new(&ssl).join(rest),
            None => continue,
        };
        if file.private {
            p.say(format!("would write '{}' (a private key, not shown)", live.display()));
            continue;
        }
        let old = crate::fs::read_to_string(&live).unwrap_or_default();
        print_diff(p.log, &live.display().to_string(), &old, &file.contents);
    }
    Ok(())
}

fn configured_scripts(p: &mut Plan<'_>, stage: Stage) -> Result<()> {
    let found = scripts::configured_scripts(p.variables, stage)?;
    if found.is_empty() {
        p.say("none");
    }
    for (name, syntax) in found {
        match syntax {
            Some(syntax) => p.say(format!("would run {name} ({syntax:?})")),
            None => p.say(format!("would fail: {name} is a C# script, which this Calamari does not run")),
        }
    }
    Ok(())
}

fn packaged_script(p: &mut Plan<'_>, stage: Stage) -> Result<()> {
    if !p.variables.get_flag("Octopus.Action.Package.RunScripts", true)? {
        p.say("packaged scripts are off (Octopus.Action.Package.RunScripts)");
        return Ok(());
    }
    match scripts::packaged_scripts(&p.shipped, stage).first() {
        Some((path, _)) => {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let note =
                if stage == Stage::PreDeploy { " (its own changes to files are not in the diffs below)" } else { "" };
            p.say(format!("would run the packaged script {name}{note}"));
        }
        None => p.say("none in the package"),
    }
    Ok(())
}

pub(super) fn configured_pre_deploy(p: &mut Plan<'_>) -> Result<()> {
    configured_scripts(p, Stage::PreDeploy)
}
pub(super) fn packaged_pre_deploy(p: &mut Plan<'_>) -> Result<()> {
    packaged_script(p, Stage::PreDeploy)
}
pub(super) fn packaged_deploy(p: &mut Plan<'_>) -> Result<()> {
    packaged_script(p, Stage::Deploy)
}
pub(super) fn configured_deploy(p: &mut Plan<'_>) -> Result<()> {
    configured_scripts(p, Stage::Deploy)
}
pub(super) fn packaged_post_deploy(p: &mut Plan<'_>) -> Result<()> {
    packaged_script(p, Stage::PostDeploy)
}
pub(super) fn configured_post_deploy(p: &mut Plan<'_>) -> Result<()> {
    configured_scripts(p, Stage::PostDeploy)
}

pub(super) fn substitution(p: &mut Plan<'_>) -> Result<()> {
    if !p.variables.is_feature_enabled(features::SUBSTITUTE_IN_FILES)? {
        p.say(format!("not enabled ({})", features::SUBSTITUTE_IN_FILES));
        return Ok(());
    }
    let targets = p.variables.get_paths("Octopus.Action.SubstituteInFiles.TargetFiles")?;
    substitution::substitute_in_files(&p.planned, &targets, p.variables, &Log::capture().0)?;
    p.say(format!("would substitute variables in {} (diffs below)", targets.join(", ")));
    p.files_touched = true;
    Ok(())
}

pub(super) fn config_transforms(p: &mut Plan<'_>) -> Result<()> {
    if !p.variables.is_feature_enabled(features::CONFIGURATION_TRANSFORMS)? {
        p.say(format!("not enabled ({})", features::CONFIGURATION_TRANSFORMS));
        return Ok(());
    }
    crate::config_transform::apply_configuration_transforms(&p.planned, p.variables, &Log::capture().0)?;
    p.say("would apply the XML configuration transforms (diffs below)");
    p.files_touched = true;
    Ok(())
}

pub(super) fn config_variables(p: &mut Plan<'_>) -> Result<()> {
    if !p.variables.is_feature_enabled(features::CONFIGURATION_VARIABLES)?
        || !p.variables.get_flag(crate::config_transform::variable_names::UPDATE_APP_SETTINGS, false)?
    {
        p.say("not enabled");
        return Ok(());
    }
    crate::config_transform::replace_configuration_variables(&p.planned, p.variables, &Log::capture().0)?;
    p.say("would replace appSettings, connectionStrings and applicationSettings values in *.config (diffs below)");
    p.files_touched = true;
    Ok(())
}

pub(super) fn structured_variables(p: &mut Plan<'_>) -> Result<()> {
    if !p.variables.is_feature_enabled(features::JSON_CONFIGURATION_VARIABLES)? {
        p.say(format!("not enabled ({})", features::JSON_CONFIGURATION_VARIABLES));
        return Ok(());
    }
    let targets = p.variables.get_paths(structured::TARGETS_VARIABLE)?;
    structured::replace_in_files(&p.planned, &targets, p.variables, &Log::capture().0)?;
    p.say(format!("would replace structured variables in {} (diffs below)", targets.join(", ")));
    p.files_touched = true;
    Ok(())
}

pub(super) fn custom_installation(p: &mut Plan<'_>) -> Result<()> {
    let raw = p.variables.get_raw("Octopus.Action.Package.CustomInstallationDirectory").unwrap_or_default().to_string();
    if raw.trim().is_empty() {
        p.say("no custom installation directory: the release stays in the staging directory");
        return Ok(());
    }
    let custom = p.variables.evaluate(&raw)?.output.unwrap_or_default();
    let purge = p
        .variables
        .get_flag("Octopus.Action.Package.CustomInstallationDirectoryShouldBePurgedBeforeDeployment", false)?;
    p.say(format!("would copy the release to '{}'{}", custom.trim(), if purge { ", purging it first" } else { "" }));
    Ok(())
}

pub(super) fn switch_link(p: &mut Plan<'_>) -> Result<()> {
    let Some(link) = p.release.as_ref().and_then(|r| r.link.clone()) else {
        p.say("no current link");
        return Ok(());
    };
    p.say(format!("would switch '{}' to '{}'", link.display(), p.staging.display()));
    Ok(())
}

pub(super) fn health_check(p: &mut Plan<'_>) -> Result<()> {
    match p.release.as_ref().and_then(|r| r.health.as_ref().map(|h| (h, r.health_timeout))) {
        Some((check, timeout)) => p.say(format!(
            "would check {check} for up to {} seconds, switching the link back if it does not succeed",
            timeout.as_secs_f64()
        )),
        None => p.say("no health check"),
    }
    Ok(())
}

/// The unified diffs of every file the file conventions changed, added or removed, named
/// as they would be in the staging directory.
fn show_diffs(p: &Plan<'_>) -> Result<()> {
    p.log.info("Files the deployment would change:");
    let mut changed = 0usize;
    for entry in walkdir::WalkDir::new(&p.planned).sort_by_file_name() {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry.path().strip_prefix(&p.planned).expect("walkdir stays under its root");
        let new = crate::fs::read(entry.path())?;
        let old = crate::fs::read(p.shipped.join(relative)).unwrap_or_default();
        if new == old {
            continue;
        }
        changed += 1;
        let name = p.staging.join(relative).display().to_string();
        match (std::str::from_utf8(&old), std::str::from_utf8(&new)) {
            (Ok(old), Ok(new)) => print_diff(p.log, &name, old, new),
            _ => {
                p.log.info(format!("  '{name}' would change ({} bytes, then {} bytes; not text)", old.len(), new.len()))
            }
        }
    }
    if changed == 0 {
        p.say("none");
    }
    Ok(())
}

/// A unified diff of `old` to `new`, three lines of context, each line through the log (so
/// sensitive values are masked).
fn print_diff(log: &Log, name: &str, old: &str, new: &str) {
    if old == new {
        log.info(format!("  '{name}' would stay as it is"));
        return;
    }
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff.unified_diff().context_radius(3).header(&format!("a{name}"), &format!("b{name}")).to_string();
    for line in text.lines() {
        log.info(line);
    }
}
