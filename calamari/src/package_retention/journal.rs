//! `PackageRetentionJournal.json`: the file the reference reads and writes, and safe updates
//! of it.
//!
//! The shape (Newtonsoft's serialisation of the reference's model):
//!
//! ```json
//! {"JournalEntries": [
//!    {"Package": {"PackageId": {"Value": "Acme"},
//!                 "Version": {"Version": "1.0.0", "Format": "Semver"},
//!                 "Path": {"Value": "/home/Files/Acme@S1.0.0@0A1B.zip"}},
//!     "usages": [{"CacheAgeAtUsage": {"Value": 3}, "DateTime": "2026-01-02T03:04:05.0000000+00:00",
//!                 "DeploymentTaskId": {"Value": "ServerTasks-1"}}],
//!     "locks": [...same shape as usages...],
//!     "FileSizeBytes": 1234}],
//!  "Cache": {"CacheAge": {"Value": 3}}}
//! ```
//!
//! The cache age is a counter bumped by every registration: it orders usages without
//! trusting clocks. Ids, paths and task ids are compared ignoring case, as the reference's
//! case-insensitive tiny types are. Reading also accepts a plain string where the reference
//! writes `{"Value": ...}`, and dates without an offset (read as local time, as .NET does).

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, TimeZone as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Error;
use crate::Log;
use crate::lock::NamedLock;
use crate::version::Version;

/// A string the reference wraps as a tiny type: written `{"Value": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tiny(pub(crate) String);

impl Serialize for Tiny {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wrapped<'a> {
            #[serde(rename = "Value")]
            value: &'a str,
        }
        Wrapped { value: &self.0 }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Tiny {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor rather than an untagged enum: no buffering, ten thousand entries parse fast.
        struct TinyVisitor;
        impl<'de> serde::de::Visitor<'de> for TinyVisitor {
            type Value = Tiny;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"a string or {"Value": string}"#)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Tiny, E> {
                Ok(Tiny(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Tiny, E> {
                Ok(Tiny(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Tiny, A::Error> {
                let mut value = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "Value" {
                        value = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                value.map(Tiny).ok_or_else(|| serde::de::Error::missing_field("Value"))
            }
        }
        d.deserialize_any(TinyVisitor)
    }
}

/// The cache age: `{"Value": n}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct CacheAge {
    #[serde(rename = "Value")]
    pub(crate) value: i32,
}

/// A package version and its format name (`Semver`, `Maven`...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionJson {
    #[serde(rename = "Version")]
    pub(crate) version: String,
    #[serde(rename = "Format")]
    pub(crate) format: String,
}

/// Which package file an entry is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PackageKey {
    #[serde(rename = "PackageId")]
    pub(crate) package_id: Tiny,
    #[serde(rename = "Version")]
    pub(crate) version: VersionJson,
    #[serde(rename = "Path")]
    pub(crate) path: Tiny,
}

impl PackageKey {
    /// The reference's identity: id and path ignoring case, versions equal as versions.
    pub(crate) fn same_as(&self, other: &PackageKey) -> bool {
        self.package_id.0.eq_ignore_ascii_case(&other.package_id.0)
            && self.path.0.eq_ignore_ascii_case(&other.path.0)
            && compare_versions(&self.version.version, &other.version.version).is_eq()
    }

    /// `Acme v1.0.0`, as the reference names a package in its log.
    pub(crate) fn describe(&self) -> String {
        format!("{} v{}", self.package_id.0, self.version.version)
    }
}

/// One usage or lock: which task, when, at which cache age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Usage {
    #[serde(rename = "CacheAgeAtUsage")]
    pub(crate) cache_age_at_usage: CacheAge,
    #[serde(rename = "DateTime", serialize_with = "write_date", deserialize_with = "read_date")]
    pub(crate) date_time: DateTime<FixedOffset>,
    #[serde(rename = "DeploymentTaskId")]
    pub(crate) deployment_task_id: Tiny,
}

fn write_date<S: Serializer>(date: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
    // .NET's round-trip format: seven fractional digits (100 ns ticks) and the offset.
    let ticks = date.timestamp_subsec_nanos() % 1_000_000_000 / 100;
    s.serialize_str(&format!("{}.{ticks:07}{}", date.format("%Y-%m-%dT%H:%M:%S"), date.format("%:z")))
}

fn read_date<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
    let text = String::deserialize(d)?;
    parse_date(&text).ok_or_else(|| serde::de::Error::custom(format!("'{text}' is not a date and time")))
}

/// An ISO 8601 date and time as Newtonsoft writes one: with an offset, `Z`, or none (local).
pub(crate) fn parse_date(text: &str) -> Option<DateTime<FixedOffset>> {
    let text = text.trim();
    if let Ok(date) = DateTime::parse_from_rfc3339(text) {
        return Some(date);
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Local.from_local_datetime(&naive).earliest().map(|d| d.fixed_offset())
}

/// One package in the cache: its usages, the tasks that hold it, and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    #[serde(rename = "Package")]
    pub(crate) package: PackageKey,
    #[serde(default)]
    pub(crate) usages: Vec<Usage>,
    #[serde(default)]
    pub(crate) locks: Vec<Usage>,
    #[serde(rename = "FileSizeBytes", default)]
    pub(crate) file_size_bytes: u64,
}

impl Entry {
    /// Whether a task still holds this package.
    pub(crate) fn has_lock(&self) -> bool {
        !self.locks.is_empty()
    }

    /// Removes every lock of `task`; returns how many there were.
    pub(crate) fn remove_locks_of(&mut self, task: &str) -> usize {
        let before = self.locks.len();
        self.locks.retain(|l| !l.deployment_task_id.0.eq_ignore_ascii_case(task));
        before - self.locks.len()
    }
}

/// `{"CacheAge": {"Value": n}}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PackageCache {
    #[serde(rename = "CacheAge", default)]
    pub(crate) cache_age: CacheAge,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JournalData {
    #[serde(rename = "JournalEntries", default, deserialize_with = "null_as_empty")]
    pub(crate) journal_entries: Vec<Entry>,
    #[serde(rename = "Cache", default, deserialize_with = "null_as_default")]
    pub(crate) cache: PackageCache,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Entry>, D::Error> {
    Ok(Option::<Vec<Entry>>::deserialize(d)?.unwrap_or_default())
}

fn null_as_default<'de, D: Deserializer<'de>>(d: D) -> Result<PackageCache, D::Error> {
    Ok(Option::<PackageCache>::deserialize(d)?.unwrap_or_default())
}

impl JournalData {
    /// Parses the file's bytes (a UTF-8 byte order mark is allowed, as .NET writes one).
    ///
    /// # Errors
    /// The text is not such a journal.
    pub(crate) fn parse(bytes: &[u8]) -> Result<JournalData, serde_json::Error> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        // `null` is what Newtonsoft reads as no journal at all.
        Ok(serde_json::from_slice::<Option<JournalData>>(bytes)?.unwrap_or_default())
    }

    /// The file's bytes.
    pub(crate) fn serialise(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the journal model always serialises")
    }

    /// The entry for `package`, if there is one.
    pub(crate) fn entry_mut(&mut self, package: &PackageKey) -> Option<&mut Entry> {
        self.journal_entries.iter_mut().find(|e| e.package.same_as(package))
    }
}

/// How long an update waits for another process's lock by default.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// The package retention journal at one path.
#[derive(Debug, Clone)]
pub(crate) struct PackageJournal {
    pub(crate) path: PathBuf,
    pub(crate) lock_timeout: Duration,
    pub(crate) log: Log,
}

impl PackageJournal {
    /// The lock file every update holds: `<journal>.lock`.
    pub(crate) fn lock_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_os_string();
        name.push(".lock");
        PathBuf::from(name)
    }

    fn lock(&self) -> Result<NamedLock, Error> {
        let lock =
            NamedLock::acquire_within("package retention journal lock", self.lock_path(), self.lock_timeout, |path| {
                self.log.verbose(format!(
                    "Waiting for the package retention journal lock '{}' held by another process",
                    path.display()
                ));
            })?;
        Ok(lock)
    }

    /// Reads the journal; a missing one is empty, a corrupt one is moved aside with a
    /// warning and read as empty. The caller holds the lock.
    fn read_or_recover(&self) -> Result<JournalData, Error> {
        let bytes = match crate::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JournalData::default()),
            Err(e) => return Err(e.into()),
        };
        match JournalData::parse(&bytes) {
            Ok(data) => Ok(data),
            Err(corrupt) => {
                let aside = aside_path(&self.path);
                crate::fs::rename(&self.path, &aside)?;
                crate::fs::sync_parent(&self.path)?;
                self.log.warn(format!(
                    "The existing package retention journal file {} could not be read ({corrupt}). The file was renamed to {}. A new journal will be created.",
                    self.path.display(),
                    aside.display()
                ));
                Ok(JournalData::default())
            }
        }
    }

    /// Applies `change` to the journal under the lock and, when it returns `Ok`, writes the
    /// result atomically. The journal on disk is unchanged when anything fails.
    ///
    /// # Errors
    /// The lock, the read, `change` or the write failed.
    pub(crate) fn update<T>(&self, change: impl FnOnce(&mut JournalData) -> Result<T, Error>) -> Result<T, Error> {
        let _lock = self.lock()?;
        let mut data = self.read_or_recover()?;
        let result = change(&mut data)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fs::create_dir_all(dir)?;
        }
        crate::fs::write_atomic_keeping_mode(&self.path, data.serialise(), 0o644)?;
        crate::fs::remove_temp_files_of(&self.path);
        Ok(result)
    }
}

/// Where a corrupt journal goes: `PackageRetentionJournal_<yyyyMMddTHHmmss>.json` next to
/// it, the reference's name (with `-N` added if that exists already).
fn aside_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new(""));
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let mut candidate = dir.join(format!("{stem}_{stamp}.json"));
    let mut n = 1;
    while candidate.exists() {
        candidate = dir.join(format!("{stem}_{stamp}-{n}.json"));
        n += 1;
    }
    candidate
}

/// Compares two version texts: as versions when both parse, else as text ignoring case.
pub(crate) fn compare_versions(a: &str, b: &str) -> Ordering {
    match (Version::parse(a), Version::parse(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_reference_writes_and_writes_the_same_shape() {
        let text = r#"{"JournalEntries":[{"Package":{"PackageId":{"Value":"Acme"},"Version":{"Version":"1.0.0","Format":"Semver"},"Path":{"Value":"C:\\Acme.1.0.0.zip"}},"usages":[{"CacheAgeAtUsage":{"Value":10},"DateTime":"2021-11-11T09:36:34.1234567+11:00","DeploymentTaskId":{"Value":"TaskID-1"}}],"locks":[{"CacheAgeAtUsage":{"Value":10},"DateTime":"2021-11-11T09:36:34","DeploymentTaskId":"TaskID-1"}],"FileSizeBytes":1}],"Cache":{"CacheAge":{"Value":10}}}"#;
        let data = JournalData::parse(text.as_bytes()).unwrap();
        assert_eq!(data.cache.cache_age.value, 10);
        let entry = &data.journal_entries[0];
        assert_eq!(entry.package.package_id.0, "Acme");
        assert_eq!(entry.locks[0].deployment_task_id.0, "TaskID-1");
        assert_eq!(entry.usages[0].date_time.to_rfc3339(), "2021-11-11T09:36:34.123456700+11:00");
        let written: serde_json::Value = serde_json::from_slice(&data.serialise()).unwrap();
        assert_eq!(written["JournalEntries"][0]["Package"]["PackageId"]["Value"], "Acme");
        assert_eq!(written["JournalEntries"][0]["usages"][0]["DateTime"], "2021-11-11T09:36:34.1234567+11:00");
        assert_eq!(written["JournalEntries"][0]["locks"][0]["DeploymentTaskId"]["Value"], "TaskID-1");
        assert_eq!(written["Cache"]["CacheAge"]["Value"], 10);
        assert_eq!(JournalData::parse(&data.serialise()).unwrap(), data);
    }

    #[test]
    fn null_and_bom_and_garbage() {
        assert_eq!(JournalData::parse(b"null").unwrap(), JournalData::default());
        assert_eq!(JournalData::parse(b"\xEF\xBB\xBF{}").unwrap(), JournalData::default());
        assert!(JournalData::parse(br#"[{"a",}]"#).is_err());
    }
}
