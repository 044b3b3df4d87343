//! The self-install commands as an agent runs them: `install`, `bundle`, `check-install`,
//! `installed-versions` and `prune`, each one function over a typed request, with the
//! messages and outcomes the agent reads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    CalamariExecutable, Error, InstallOptions, InstallState, PruneOptions, calamari_dir, check_install,
    install_bundle_with, install_executable, installed_versions, prune, prune_sparing, validate_version, version_dir,
    write_bundle,
};
use crate::Log;
use crate::env_vars::AgentEnvironment;
use crate::outcome::Outcome;

/// The agent's home: the one given (`--home`), else `$TentacleHome` of `environment`.
///
/// # Errors
/// [`Error::NoHome`] when neither is set.
pub fn resolve_home(explicit: Option<PathBuf>, environment: &AgentEnvironment) -> Result<PathBuf, Error> {
    explicit.or_else(|| environment.tentacle_home()).ok_or(Error::NoHome)
}

/// What `calamari install` was asked to do.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    /// The agent's home; the install goes to `home/Calamari/<version>`.
    pub home: PathBuf,
    /// Install this bundle instead of `executable`.
    pub bundle: Option<PathBuf>,
    /// The bundle's expected SHA-256; without it, `<bundle>.sha256` is checked when present.
    pub sha256: Option<String>,
    /// Reinstall even when `Success.txt` says the version is complete.
    pub force: bool,
    /// How long to wait for another install of the same home.
    pub lock_timeout: Duration,
    /// After a successful install, keep this many other complete versions (the newest)
    /// and remove the rest; `None` keeps them all.
    pub keep_others: Option<usize>,
}

/// How many other complete versions `install` keeps by default.
pub const DEFAULT_KEEP_OTHERS: usize = 3;

/// `calamari install`: installs the request's bundle, or else `executable` (this build).
///
/// # Errors
/// As [`install_executable`] and [`install_bundle_with`]; [`Error::NotCalamari`] when
/// there is neither a bundle nor an executable.
pub fn install(request: &InstallRequest, executable: Option<&CalamariExecutable>, log: &Log) -> Result<Outcome, Error> {
    let options = InstallOptions { force: request.force, lock_timeout: request.lock_timeout };
    let installed = match &request.bundle {
        None => {
            let executable = executable.ok_or_else(|| Error::NotCalamari { path: PathBuf::new() })?;
            install_executable(&request.home, executable, &options, log)?
        }
        Some(bundle) => {
            let sha256 = match &request.sha256 {
                Some(hex) => Some(hex.clone()),
                None => sidecar_sha256(bundle, log)?,
            };
            install_bundle_with(&request.home, bundle, sha256.as_deref(), &options, log)?
        }
    };
    // An install that wrote nothing (the version was complete) leaves the others alone too:
    // it may run where the home is read-only.
    if let Some(keep) = request.keep_others
        && installed.status != super::InstallStatus::AlreadyInstalled
    {
        prune_old_versions(&request.home, &installed.version, keep, log)?;
    }
    Ok(Outcome::Success)
}

/// After an install: keeps `version` and the newest `keep` other complete versions, never
/// one a process runs, removes the rest and says what went.
fn prune_old_versions(home: &Path, version: &str, keep: usize, log: &Log) -> Result<(), Error> {
    let report = prune_sparing(home, PruneOptions { keep, spare: Some(version) }, log)?;
    let removed: Vec<String> =
        report.removed.iter().filter_map(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    if removed.is_empty() {
        log.verbose(format!("No older Calamari version to remove (keeping up to {keep} besides {version})"));
    } else {
        log.info(format!(
            "Removed older Calamari {}: {} (keeping {version} and up to {keep} other complete version{})",
            if removed.len() == 1 { "version" } else { "versions" },
            removed.join(", "),
            if keep == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

/// The hash in `<bundle>.sha256` (`sha256sum` format), when that file exists.
fn sidecar_sha256(bundle: &Path, log: &Log) -> Result<Option<String>, Error> {
    let sidecar = sidecar_path(bundle);
    if !sidecar.is_file() {
        return Ok(None);
    }
    let text = crate::fs::read_to_string(&sidecar)?;
    log.verbose(format!("Checking the bundle against {}", sidecar.display()));
    Ok(Some(text.split_whitespace().next().unwrap_or_default().to_string()))
}

fn sidecar_path(bundle: &Path) -> PathBuf {
    let mut sidecar = bundle.as_os_str().to_owned();
    sidecar.push(".sha256");
    PathBuf::from(sidecar)
}

/// `calamari bundle`: writes the pushable bundle of `executable` into `output` and says
/// where, with its SHA-256.
///
/// # Errors
/// As [`write_bundle`].
pub fn bundle(output: &Path, executable: &CalamariExecutable, log: &Log) -> Result<Outcome, Error> {
    let path = write_bundle(output, executable)?;
    let sidecar = sidecar_path(&path);
    let line = crate::fs::read_to_string(&sidecar)?;
    log.info(format!("Wrote {}", path.display()));
    log.info(format!("SHA-256 {} (in {})", line.split_whitespace().next().unwrap_or_default(), sidecar.display()));
    Ok(Outcome::Success)
}

/// `calamari check-install`: [`Outcome::Success`] when `version` is complete in `home`,
/// else [`Outcome::OutOfDate`] (exit 3) with the agent's warning.
///
/// # Errors
/// [`Error::InvalidVersion`].
pub fn check(home: &Path, version: &str, log: &Log) -> Result<Outcome, Error> {
    validate_version(version)?;
    let dir = version_dir(home, version);
    match check_install(home, version) {
        InstallState::Complete => {
            log.info(format!("Calamari {version} is installed at {}", dir.display()));
            Ok(Outcome::Success)
        }
        InstallState::Missing => {
            // As the agent reports it on a fresh machine: the Calamari root when there is no
            // Calamari at all, the version directory only when the root exists.
            let root = calamari_dir(home);
            let missing = if root.is_dir() { dir } else { root };
            log.warn(format!(
                "Not running latest version of Calamari. Directory does not exist: {}",
                missing.display()
            ));
            Ok(Outcome::OutOfDate)
        }
        InstallState::Incomplete => {
            log.warn(format!(
                "Not running latest version of Calamari. Directory is incomplete (no Success.txt): {}",
                dir.display()
            ));
            Ok(Outcome::OutOfDate)
        }
    }
}

/// `calamari installed-versions`: the complete installs of `home`, newest first, one a line.
///
/// # Errors
/// The Calamari directory cannot be listed.
pub fn list(home: &Path, log: &Log) -> Result<Outcome, Error> {
    let versions = installed_versions(home)?;
    if versions.is_empty() {
        log.verbose(format!("No complete Calamari install in {}", calamari_dir(home).display()));
    }
    for installed in versions {
        log.info(installed.version);
    }
    Ok(Outcome::Success)
}

/// `calamari prune`: keeps the newest `keep` complete installs (never the running one) and
/// says what it kept and removed.
///
/// # Errors
/// As [`prune`].
pub fn prune_installs(home: &Path, keep: usize, log: &Log) -> Result<Outcome, Error> {
    let report = prune(home, keep, log)?;
    let removed = report.removed.len();
    log.info(format!(
        "Kept {}; removed {removed} director{}",
        if report.kept.is_empty() { "none".to_string() } else { report.kept.join(", ") },
        if removed == 1 { "y" } else { "ies" }
    ));
    Ok(Outcome::Success)
}
