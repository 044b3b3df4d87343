//! The reference's `AlreadyInstalledConvention`, the first step of deploy-package and
//! transfer-package: with `Octopus.Action.Package.SkipIfAlreadyInstalled`, a package that the
//! journal records as successfully deployed (same retention policy set, id and version) is
//! not deployed again.

use crate::journal::{self, DeploymentJournal};
use crate::variables::names;
use crate::{Log, VariableDictionary};

/// `Octopus.Action.Package.SkipIfAlreadyInstalled`.
pub(crate) const SKIP_IF_ALREADY_INSTALLED: &str = "Octopus.Action.Package.SkipIfAlreadyInstalled";

/// What the already-installed check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlreadyInstalled {
    /// The check is off (`SkipIfAlreadyInstalled` not true), or no entry matched.
    No,
    /// The latest matching entry failed: deploy again.
    PreviousAttemptFailed,
    /// The latest matching entry succeeded: the rest is skipped. Holds its `ExtractedTo`.
    Yes(String),
}

/// The reference's `AlreadyInstalledConvention`: when
/// `Octopus.Action.Package.SkipIfAlreadyInstalled` is true, look up the latest entry with the
/// same `OctopusRetentionPolicySet`, `Octopus.Action.Package.PackageId` and `PackageVersion`.
/// A successful one logs "The package has already been installed on this machine, so
/// installation will be skipped.", emits the output variables
/// `Octopus.Action.Package.InstallationDirectoryPath` and `Package.InstallationDirectoryPath`
/// (its `ExtractedTo`), and sets `Octopus.Action.SkipRemainingConventions` and
/// `Octopus.Action.SkipJournal` to true. A failed one logs "The previous attempt to deploy
/// this package was not successful; re-deploying.".
///
/// # Errors
/// The journal could not be read, or a variable could not be evaluated.
pub(crate) fn check_already_installed(
    journal: Option<&DeploymentJournal>,
    variables: &mut VariableDictionary,
    log: &Log,
) -> Result<AlreadyInstalled, journal::Error> {
    if !variables.get_flag(SKIP_IF_ALREADY_INSTALLED, false)? {
        return Ok(AlreadyInstalled::No);
    }
    let Some(journal) = journal else { return Ok(AlreadyInstalled::No) };
    let id = primary_package(variables, "PackageId", names::PACKAGE_ID)?;
    let version = primary_package(variables, "PackageVersion", names::PACKAGE_VERSION)?;
    let set = variables.get_or_empty(names::RETENTION_POLICY_SET)?;
    match journal.latest_for_package(&set, &id, &version)? {
        None => Ok(AlreadyInstalled::No),
        Some(previous) if !previous.was_successful => {
            log.info("The previous attempt to deploy this package was not successful; re-deploying.");
            Ok(AlreadyInstalled::PreviousAttemptFailed)
        }
        Some(previous) => {
            log.info("The package has already been installed on this machine, so installation will be skipped.");
            let extracted_to = previous.extracted_to.unwrap_or_default();
            log.output_variable(names::INSTALLATION_DIRECTORY_PATH, &extracted_to, false);
            log.output_variable(names::PACKAGE_INSTALLATION_DIRECTORY_PATH, &extracted_to, false);
            variables.set(names::SKIP_REMAINING_CONVENTIONS, Some("true".to_string()));
            variables.set(names::SKIP_JOURNAL, Some("true".to_string()));
            Ok(AlreadyInstalled::Yes(extracted_to))
        }
    }
}

/// A field of the primary package: the agent sends `Octopus.Action.Package[].<field>` (the
/// indexed form the reference reads), older agents `Octopus.Action.Package.<field>`.
fn primary_package(variables: &VariableDictionary, field: &str, legacy: &str) -> Result<String, journal::Error> {
    let indexed = variables.get_or_empty(&format!("{}[].{field}", journal::entry::PACKAGE_COLLECTION))?;
    if !indexed.trim().is_empty() {
        return Ok(indexed);
    }
    Ok(variables.get_or_empty(legacy)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JournalEntry, JournalPackage};

    fn entry(id: &str, ok: bool, pkg: (&str, &str)) -> JournalEntry {
        JournalEntry {
            id: id.into(),
            retention_policy_set: "Set-A".into(),
            installed_on: Some(journal::entry::now_in_whole_seconds()),
            was_successful: ok,
            extracted_to: Some(format!("/apps/{}/{}", pkg.0, pkg.1)),
            packages: vec![JournalPackage {
                package_id: pkg.0.into(),
                package_version: pkg.1.into(),
                deployed_from: None,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn already_installed_check() {
        let dir = tempfile::tempdir().unwrap();
        let journal = DeploymentJournal::at(dir.path().join("DeploymentJournal.xml"));
        journal.add(&entry("ok", true, ("Acme", "1.0.0"))).unwrap();
        journal.add(&entry("failed", false, ("Acme", "2.0.0"))).unwrap();
        let vars = |version: &str, skip: &str| {
            let mut v = VariableDictionary::new();
            for (k, val) in [
                ("OctopusRetentionPolicySet", "Set-A"),
                ("Octopus.Action.Package.PackageId", "acme"),
                ("Octopus.Action.Package.PackageVersion", version),
                ("Octopus.Action.Package.SkipIfAlreadyInstalled", skip),
            ] {
                v.set(k, Some(val.to_string()));
            }
            v
        };

        let (log, out, _) = Log::capture();
        let mut v = vars("1.0.0", "True");
        assert_eq!(
            check_already_installed(Some(&journal), &mut v, &log).unwrap(),
            AlreadyInstalled::Yes("/apps/Acme/1.0.0".into())
        );
        assert!(v.get_flag("Octopus.Action.SkipRemainingConventions", false).unwrap());
        assert!(v.get_flag("Octopus.Action.SkipJournal", false).unwrap());
        let text = out.contents();
        assert!(
            text.contains("The package has already been installed on this machine, so installation will be skipped.")
        );
        assert!(text.contains("##octopus[setVariable name=\"T2N0b3B1cy5BY3Rpb24uUGFja2FnZS5JbnN0YWxsYXRpb25EaXJlY3RvcnlQYXRo\" value=\"L2FwcHMvQWNtZS8xLjAuMA==\"]"), "{text}");

        let (log, out, _) = Log::capture();
        let mut v = vars("2.0.0", "True");
        assert_eq!(
            check_already_installed(Some(&journal), &mut v, &log).unwrap(),
            AlreadyInstalled::PreviousAttemptFailed
        );
        assert!(
            out.contents().contains("The previous attempt to deploy this package was not successful; re-deploying.")
        );
        assert!(!v.contains("Octopus.Action.SkipRemainingConventions"));

        let (log, out, _) = Log::capture();
        for (version, skip) in [("1.0.0", "False"), ("3.0.0", "True")] {
            let mut v = vars(version, skip);
            assert_eq!(check_already_installed(Some(&journal), &mut v, &log).unwrap(), AlreadyInstalled::No);
        }
        let mut v = vars("1.0.0", "True");
        assert_eq!(check_already_installed(None, &mut v, &log).unwrap(), AlreadyInstalled::No);
        assert_eq!(out.contents(), "");
    }
}
