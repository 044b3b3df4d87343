//! [`JournalEntry`]: one deployment as the journal records it, and how a deployment's
//! variables turn into one (reference `JournalEntry.cs`, `DeployedPackage.cs`,
//! `DeploymentJournalWriter.cs`).

use std::path::Path;

use chrono::{DateTime, Utc};

use super::Error;
use crate::VariableDictionary;
use crate::variables::names;

/// `Octopus.Environment.Id`.
pub(crate) const ENVIRONMENT_ID: &str = "Octopus.Environment.Id";
/// `Octopus.Deployment.Tenant.Id`.
pub(crate) const TENANT_ID: &str = "Octopus.Deployment.Tenant.Id";
/// `Octopus.Project.Id`.
pub(crate) const PROJECT_ID: &str = "Octopus.Project.Id";
/// `Octopus.Action.Package.CustomInstallationDirectory`.
pub(crate) const CUSTOM_INSTALLATION_DIRECTORY: &str = "Octopus.Action.Package.CustomInstallationDirectory";
/// The collection the indexed package variables belong to: `Octopus.Action.Package[<ref>].X`.
pub(crate) const PACKAGE_COLLECTION: &str = "Octopus.Action.Package";

/// One package of a deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalPackage {
    /// The package id, e.g. `Acme.Web`.
    pub package_id: String,
    /// The package version, e.g. `1.0.0`.
    pub package_version: String,
    /// The package file the deployment used; `None` when not recorded.
    pub deployed_from: Option<String>,
}

/// One deployment recorded in `DeploymentJournal.xml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalEntry {
    /// A GUID, unique per entry.
    pub id: String,
    /// `Octopus.Environment.Id`.
    pub environment_id: String,
    /// `Octopus.Deployment.Tenant.Id`; `None` when untenanted.
    pub tenant_id: Option<String>,
    /// `Octopus.Project.Id`.
    pub project_id: String,
    /// `OctopusRetentionPolicySet`: the key retention and the "previous installation" lookups use.
    pub retention_policy_set: String,
    /// When the deployment was recorded (UTC, whole seconds in the file).
    pub installed_on: Option<DateTime<Utc>>,
    /// The staging directory the package was extracted to; `None` when nothing was extracted.
    pub extracted_to: Option<String>,
    /// The custom installation directory, if one was used; retention never deletes it.
    pub custom_installation_directory: Option<String>,
    /// Whether the deployment succeeded.
    pub was_successful: bool,
    /// The packages deployed.
    pub packages: Vec<JournalPackage>,
    /// Our extension (`CurrentLink`): the current link (`Calamari.Release.CurrentLink`) this
    /// deployment pointed at its installation directory; `None` for a deployment without one.
    pub current_link: Option<String>,
    /// Our extension (`PreviousTarget`): where the current link pointed before this
    /// deployment switched it; `None` when it did not exist.
    pub previous_target: Option<String>,
}

/// A new random (version 4) GUID in .NET's `ToString()` form.
pub fn new_guid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

impl JournalEntry {
    /// The journal entry a deployment writes, following `DeploymentJournalWriter.AddJournalEntry`:
    /// `None` when the deployment has no package (neither `package_path` nor any indexed
    /// `Octopus.Action.Package[<ref>].*` variable). Whether to write it at all (the agent's
    /// `Octopus.Action.SkipJournal`, the already-installed check) is the caller's decision.
    ///
    /// Packages come from every indexed reference (`[]` is the primary package). When there
    /// are none but a package file was given, the primary package is taken from
    /// `Octopus.Action.Package.PackageId`/`PackageVersion`. The primary package's
    /// `DeployedFrom` falls back to `package_path`. `ExtractedTo` is `extracted_to`, the
    /// directory the package was extracted to; the time is now (UTC).
    ///
    /// # Errors
    /// A variable that cannot be evaluated (recursive definition).
    pub fn for_deployment(
        variables: &VariableDictionary,
        success: bool,
        package_path: Option<&Path>,
        extracted_to: Option<&Path>,
    ) -> Result<Option<JournalEntry>, Error> {
        let package_path = package_path.filter(|p| !p.as_os_str().is_empty());
        let references = package_references(variables);
        if references.is_empty() && package_path.is_none() {
            return Ok(None);
        }
        let mut packages = Vec::new();
        for reference in &references {
            let get = |field: &str| variables.get(&format!("{PACKAGE_COLLECTION}[{reference}].{field}"));
            let mut deployed_from = get("OriginalPath")?.filter(|s| !s.is_empty());
            if deployed_from.is_none() && reference.is_empty() {
                deployed_from = package_path.map(|p| p.to_string_lossy().into_owned());
            }
            packages.push(JournalPackage {
                package_id: get("PackageId")?.unwrap_or_default(),
                package_version: get("PackageVersion")?.unwrap_or_default(),
                deployed_from,
            });
        }
        if packages.is_empty()
            && let Some(id) = variables.get(names::PACKAGE_ID)?.filter(|s| !s.is_empty())
        {
            packages.push(JournalPackage {
                package_id: id,
                package_version: variables.get_or_empty(names::PACKAGE_VERSION)?,
                deployed_from: package_path.map(|p| p.to_string_lossy().into_owned()),
            });
        }
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        Ok(Some(JournalEntry {
            id: new_guid(),
            environment_id: variables.get_or_empty(ENVIRONMENT_ID)?,
            tenant_id: non_empty(variables.get(TENANT_ID)?),
            project_id: variables.get_or_empty(PROJECT_ID)?,
            retention_policy_set: variables.get_or_empty(names::RETENTION_POLICY_SET)?,
            installed_on: Some(now_in_whole_seconds()),
            extracted_to: extracted_to.map(|p| p.to_string_lossy().into_owned()).filter(|s| !s.trim().is_empty()),
            custom_installation_directory: non_empty(variables.get(CUSTOM_INSTALLATION_DIRECTORY)?),
            was_successful: success,
            packages,
            current_link: None,
            previous_target: None,
        }))
    }

    /// The first package (the one the "previous installation" variables describe).
    pub fn package(&self) -> Option<&JournalPackage> {
        self.packages.first()
    }

    /// Where the deployment was installed: the custom installation directory when it has
    /// one, else the extraction directory (what a current link points at).
    pub fn installation_directory(&self) -> Option<&Path> {
        self.custom_installation_directory
            .as_deref()
            .or(self.extracted_to.as_deref())
            .filter(|d| !d.trim().is_empty())
            .map(Path::new)
    }

    /// `ExtractedTo` as a path.
    pub fn extracted_to_path(&self) -> Option<&Path> {
        self.extracted_to.as_deref().map(Path::new)
    }
}

/// The time as the journal stores it: UTC, whole seconds (so what we hold equals what we
/// read back).
pub(crate) fn now_in_whole_seconds() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
}

/// The references of the indexed package variables (`Octopus.Action.Package[<ref>].X`), in
/// first-seen order, without duplicates (compared ignoring case, as variable names are).
/// The primary package's reference is the empty string.
pub(crate) fn package_references(variables: &VariableDictionary) -> Vec<String> {
    let prefix = format!("{PACKAGE_COLLECTION}[").to_lowercase();
    let mut refs: Vec<String> = Vec::new();
    for name in variables.names() {
        let lower = name.to_lowercase();
        if !lower.starts_with(&prefix) {
            continue;
        }
        let rest = &name[prefix.len()..];
        let Some(close) = rest.find("].") else { continue };
        let reference = &rest[..close];
        if !refs.iter().any(|r| r.eq_ignore_ascii_case(reference)) {
            refs.push(reference.to_string());
        }
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> VariableDictionary {
        let mut d = VariableDictionary::new();
        for (k, v) in pairs {
            d.set(*k, Some(v.to_string()));
        }
        d
    }

    #[test]
    fn guids_look_like_dotnet_guids() {
        let g = new_guid();
        assert_eq!(g.len(), 36);
        assert_eq!(g.matches('-').count(), 4);
        assert_eq!(&g[14..15], "4");
        assert_ne!(g, new_guid());
    }

    #[test]
    fn indexed_packages_become_the_entry_packages() {
        let d = vars(&[
            ("Octopus.Action.Package[].PackageId", "Acme.Web"),
            ("Octopus.Action.Package[].PackageVersion", "1.0.0"),
            ("Octopus.Action.Package[].OriginalPath", "/files/Acme.Web.1.0.0.zip"),
            ("octopus.action.package[Tools].PackageId", "Acme.Tools"),
            ("Octopus.Action.Package[tools].PackageVersion", "2.0.0"),
            ("Octopus.Environment.Id", "Environments-1"),
            ("Octopus.Deployment.Tenant.Id", ""),
            ("Octopus.Project.Id", "Projects-1"),
            ("OctopusRetentionPolicySet", "Set-1"),
            ("Octopus.Action.Package.CustomInstallationDirectory", "/var/www"),
        ]);
        let extracted = Path::new("/apps/Acme.Web/1.0.0");
        let e = JournalEntry::for_deployment(&d, true, Some(Path::new("/pkg.zip")), Some(extracted)).unwrap().unwrap();
        assert_eq!(
            e.packages,
            vec![
                JournalPackage {
                    package_id: "Acme.Web".into(),
                    package_version: "1.0.0".into(),
                    deployed_from: Some("/files/Acme.Web.1.0.0.zip".into())
                },
                JournalPackage {
                    package_id: "Acme.Tools".into(),
                    package_version: "2.0.0".into(),
                    deployed_from: None
                },
            ]
        );
        assert_eq!(e.environment_id, "Environments-1");
        assert_eq!(e.tenant_id, None);
        assert_eq!(e.project_id, "Projects-1");
        assert_eq!(e.retention_policy_set, "Set-1");
        assert_eq!(e.extracted_to.as_deref(), Some("/apps/Acme.Web/1.0.0"));
        assert_eq!(e.custom_installation_directory.as_deref(), Some("/var/www"));
        assert!(e.was_successful);
        let age = Utc::now() - e.installed_on.unwrap();
        assert!(age.num_seconds() < 5);
    }

    #[test]
    fn when_no_entry_is_written() {
        // No package at all.
        assert_eq!(
            JournalEntry::for_deployment(&vars(&[("OctopusRetentionPolicySet", "S")]), true, None, None).unwrap(),
            None
        );
    }

    #[test]
    fn a_package_path_alone_uses_the_primary_package_variables() {
        let d =
            vars(&[("Octopus.Action.Package.PackageId", "Acme"), ("Octopus.Action.Package.PackageVersion", "3.1.4")]);
        let e =
            JournalEntry::for_deployment(&d, false, Some(Path::new("/cache/Acme.3.1.4.zip")), None).unwrap().unwrap();
        assert!(!e.was_successful);
        assert_eq!(e.extracted_to, None);
        assert_eq!(
            e.packages,
            vec![JournalPackage {
                package_id: "Acme".into(),
                package_version: "3.1.4".into(),
                deployed_from: Some("/cache/Acme.3.1.4.zip".into())
            }]
        );
        // Without any package id the entry is still written (the reference writes it with no packages).
        let e = JournalEntry::for_deployment(&VariableDictionary::new(), true, Some(Path::new("/x.zip")), None)
            .unwrap()
            .unwrap();
        assert!(e.packages.is_empty());
    }
}
