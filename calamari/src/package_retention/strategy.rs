//! Which cached packages `clean-packages` removes: the strategy variables and the two
//! strategies of the reference.
//!
//! * `FreeSpace` (default): when the filesystem holding the cache has less than
//!   `OctopusPackageRetentionPercentFreeDiskSpace` percent (default 20) free, remove
//!   packages in least-frequently-used-with-aging order until the shortfall plus 30 % is
//!   freed (by the sizes recorded in the journal).
//! * `Quantities`: keep the `MachinePackageCacheRetentionQuantityOfPackagesToKeep` most
//!   recently used package ids (default -1, all) and of each id the
//!   `MachinePackageCacheRetentionQuantityOfVersionsToKeep` most recently used versions
//!   (default 5). Only the unit `Items` exists.
//!
//! A package that a task still holds (a lock) is never selected.

use std::path::Path;

use chrono::{DateTime, FixedOffset};

use super::Error;
use super::journal::{Entry, compare_versions};
use crate::version::Version;
use crate::{Log, VariableDictionary};

/// The variables read here.
pub(crate) mod names {
    /// `FreeSpace` or `Quantities`.
    pub(crate) const STRATEGY: &str = "MachinePackageCacheRetentionStrategy";
    /// The percentage of the cache's filesystem to keep free.
    pub(crate) const PERCENT_FREE: &str = "OctopusPackageRetentionPercentFreeDiskSpace";
    /// How many package ids to keep (-1: all).
    pub(crate) const PACKAGES_TO_KEEP: &str = "MachinePackageCacheRetentionQuantityOfPackagesToKeep";
    /// How many versions of each id to keep.
    pub(crate) const VERSIONS_TO_KEEP: &str = "MachinePackageCacheRetentionQuantityOfVersionsToKeep";
    /// The unit of the package quantity (`Items`).
    pub(crate) const PACKAGE_UNIT: &str = "MachinePackageCacheRetentionPackageUnit";
    /// The unit of the version quantity (`Items`).
    pub(crate) const VERSION_UNIT: &str = "MachinePackageCacheRetentionVersionUnit";
}

const DEFAULT_PERCENT_FREE: u64 = 20;
const DEFAULT_PACKAGES_TO_KEEP: i64 = -1;
const DEFAULT_VERSIONS_TO_KEEP: i64 = 5;
/// What FreeSpace frees beyond the shortfall, in percent.
const FREE_SPACE_BUFFER_PERCENT: u64 = 30;

/// The strategy and its settings, as the variables give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Keep this percentage of the filesystem free.
    FreeSpace { percent: u64 },
    /// Keep this many ids (`None`: all) and this many versions of each (`None`: all).
    Quantities { packages: Option<usize>, versions: Option<usize> },
}

fn text(variables: &VariableDictionary, name: &str) -> Result<Option<String>, Error> {
    Ok(variables.get(name)?.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()))
}

fn invalid(variable: &'static str, value: String, expected: &'static str) -> Error {
    Error::InvalidVariable { variable, value, expected }
}

/// An integer count: `-1` for all, else zero or more.
fn count(variables: &VariableDictionary, name: &'static str, default: i64) -> Result<Option<usize>, Error> {
    let value = match text(variables, name)? {
        None => default,
        Some(v) => {
            v.parse::<i64>().ok().filter(|n| *n >= -1).ok_or_else(|| invalid(name, v, "a whole number, -1 for all"))?
        }
    };
    Ok(usize::try_from(value).ok())
}

fn unit(variables: &VariableDictionary, name: &'static str) -> Result<(), Error> {
    match text(variables, name)? {
        Some(v) if !v.eq_ignore_ascii_case("Items") => Err(invalid(name, v, "Items")),
        _ => Ok(()),
    }
}

/// Reads the strategy and (only) its own settings, as the reference does.
///
/// # Errors
/// [`Error::InvalidVariable`] naming the variable whose value cannot be used.
pub(crate) fn settings(variables: &VariableDictionary) -> Result<Strategy, Error> {
    let strategy = text(variables, names::STRATEGY)?;
    match strategy.as_deref() {
        None => {}
        Some(s) if s.eq_ignore_ascii_case("FreeSpace") => {}
        Some(s) if s.eq_ignore_ascii_case("Quantities") => {
            unit(variables, names::PACKAGE_UNIT)?;
            unit(variables, names::VERSION_UNIT)?;
            return Ok(Strategy::Quantities {
                packages: count(variables, names::PACKAGES_TO_KEEP, DEFAULT_PACKAGES_TO_KEEP)?,
                versions: count(variables, names::VERSIONS_TO_KEEP, DEFAULT_VERSIONS_TO_KEEP)?,
            });
        }
        Some(s) => return Err(invalid(names::STRATEGY, s.to_string(), "FreeSpace or Quantities")),
    }
    let percent = match text(variables, names::PERCENT_FREE)? {
        None => DEFAULT_PERCENT_FREE,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|p| *p <= 100)
            .ok_or_else(|| invalid(names::PERCENT_FREE, v, "a whole number of percent from 0 to 100"))?,
    };
    Ok(Strategy::FreeSpace { percent })
}

/// Free and total bytes of the filesystem holding `path` (or its nearest existing
/// ancestor); `None` when it cannot be told.
pub(crate) fn disk_space(path: &Path) -> Option<(u64, u64)> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let stat = rustix::fs::statvfs(existing).ok()?;
    let unit = if stat.f_frsize > 0 { stat.f_frsize } else { stat.f_bsize };
    Some((stat.f_bavail.saturating_mul(unit), stat.f_blocks.saturating_mul(unit)))
}

/// The indices of the entries to remove, in the order they are removed.
pub(crate) fn select(strategy: Strategy, entries: &[Entry], cache_root: Option<&Path>, log: &Log) -> Vec<usize> {
    match strategy {
        Strategy::FreeSpace { percent } => {
            let Some((free, total)) = cache_root.and_then(disk_space) else {
                log.info("Unable to determine disk space. Skipping free space package retention.");
                return Vec::new();
            };
            select_for_free_space(percent, free, total, entries, log)
        }
        Strategy::Quantities { packages, versions } => select_by_quantity(packages, versions, entries, log),
    }
}

/// FreeSpace: nothing when more than `percent` of `total` is free; else the
/// least-frequently-used packages whose recorded sizes add up to the shortfall + 30 %.
pub(crate) fn select_for_free_space(percent: u64, free: u64, total: u64, entries: &[Entry], log: &Log) -> Vec<usize> {
    let desired = (u128::from(total) * u128::from(percent) / 100) as u64;
    if free > desired {
        log.verbose(format!("Detected enough space for new packages. ({}/{})", size(free), size(total)));
        return Vec::new();
    }
    let to_free = u128::from(desired - free) * u128::from(100 + FREE_SPACE_BUFFER_PERCENT) / 100;
    log.verbose(format!("Cleaning {} space from the package cache.", size(to_free.min(u128::from(u64::MAX)) as u64)));
    let mut freed: u128 = 0;
    least_frequently_used_with_aging(entries)
        .into_iter()
        .take_while(|&i| {
            let more = freed < to_free;
            freed += u128::from(entries[i].file_size_bytes);
            more
        })
        .collect()
}

/// A size as the reference logs one: `1.5 MB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} bytes") } else { format!("{value:.2} {}", UNITS[unit]) }
}

/// Groups entry indices by package id (ignoring case), in order of first appearance.
fn group_by_id(entries: &[Entry], indices: impl Iterator<Item = usize>) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_id: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for i in indices {
        let id = entries[i].package.package_id.0.to_ascii_lowercase();
        let slot = *by_id.entry(id).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[slot].push(i);
    }
    groups
}

/// The unlocked entries, least valuable first: value = normalised hit count − ½ ×
/// normalised age (cache ages since first use) − normalised count of newer versions of
/// the same id, each normalised to 0..1 over the candidates. Computed exactly (integers);
/// ties keep the journal's order within the id groups, newest version first.
pub(crate) fn least_frequently_used_with_aging(entries: &[Entry]) -> Vec<usize> {
    let unlocked = (0..entries.len()).filter(|&i| !entries[i].has_lock());
    let current = entries
        .iter()
        .filter(|e| !e.has_lock())
        .flat_map(|e| e.usages.iter().map(|u| i64::from(u.cache_age_at_usage.value)))
        .max()
        .unwrap_or(0);
    struct Candidate {
        index: usize,
        age: i64,
        hits: i64,
        newer: i64,
    }
    let mut candidates = Vec::new();
    for group in group_by_id(entries, unlocked) {
        let mut versions: Vec<(Option<Version>, usize)> =
            group.into_iter().map(|i| (Version::parse(&entries[i].package.version.version), i)).collect();
        versions.sort_by(|(va, a), (vb, b)| {
            let order = match (va, vb) {
                (Some(x), Some(y)) => x.cmp(y),
                _ => compare_versions(&entries[*a].package.version.version, &entries[*b].package.version.version),
            };
            order.reverse()
        });
        for (newer, (_, index)) in versions.into_iter().enumerate() {
            let entry = &entries[index];
            let age =
                entry.usages.iter().map(|u| i64::from(u.cache_age_at_usage.value)).min().unwrap_or(i64::from(i32::MAX));
            candidates.push(Candidate { index, age, hits: entry.usages.len() as i64, newer: newer as i64 });
        }
    }
    if candidates.is_empty() {
        return Vec::new();
    }
    let range = |f: &dyn Fn(&Candidate) -> i64| {
        let min = candidates.iter().map(f).min().unwrap_or(0);
        let max = candidates.iter().map(f).max().unwrap_or(0);
        (min, if max == min { 1 } else { max - min })
    };
    let (hits_min, hits_div) = range(&|c| c.hits);
    let (age_min, age_div) = range(&|c| current - c.age);
    let (newer_min, newer_div) = range(&|c| c.newer);
    // value × 2·d1·d2·d3, all divisors positive: the same order, in integers.
    let key = |c: &Candidate| -> i128 {
        let (d1, d2, d3) = (i128::from(hits_div), i128::from(age_div), i128::from(newer_div));
        2 * i128::from(c.hits - hits_min) * d2 * d3
            - i128::from(current - c.age - age_min) * d1 * d3
            - 2 * i128::from(c.newer - newer_min) * d1 * d2
    };
    let mut keyed: Vec<(i128, usize)> = candidates.iter().map(|c| (key(c), c.index)).collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// The latest usage of an entry (none: the earliest time there is).
fn last_used(entry: &Entry) -> DateTime<FixedOffset> {
    entry.usages.iter().map(|u| u.date_time).max().unwrap_or(DateTime::<FixedOffset>::MIN_UTC.fixed_offset())
}

/// Quantities: of the unlocked entries, the ids beyond the `packages` most recently used
/// ones (all their versions), then per id the versions beyond the `versions` most recently
/// used.
pub(crate) fn select_by_quantity(
    packages: Option<usize>,
    versions: Option<usize>,
    entries: &[Entry],
    log: &Log,
) -> Vec<usize> {
    let unlocked = (0..entries.len()).filter(|&i| !entries[i].has_lock());
    let mut groups = group_by_id(entries, unlocked);
    // Each group most recently used first; the groups by their most recent use. Stable.
    for group in &mut groups {
        group.sort_by_key(|&i| std::cmp::Reverse(last_used(&entries[i])));
    }
    groups.sort_by_key(|g| std::cmp::Reverse(last_used(&entries[g[0]])));
    let mut remove: Vec<usize> = Vec::new();
    match packages {
        None => log
            .verbose("Machine cache retention quantity of packages to keep is Keep All. No packages will be removed."),
        Some(keep) if keep < groups.len() => {
            let n = groups.len() - keep;
            log.verbose(format!(
                "Cache size is greater than the maximum package quantity to keep {keep}. {n} package{} will be removed.",
                if n == 1 { "" } else { "s" }
            ));
            remove.extend(groups[keep..].iter().flatten().copied());
        }
        Some(_) => {}
    }
    let by_id = remove.len();
    if let Some(keep) = versions {
        let mut chosen: std::collections::HashSet<usize> = remove.iter().copied().collect();
        for group in &groups {
            for &i in group.iter().skip(keep) {
                if chosen.insert(i) {
                    remove.push(i);
                }
            }
        }
    }
    let by_version = remove.len() - by_id;
    if by_version > 0 {
        log.verbose(format!(
            "Found cached packages with more versions than the maximum version quantity to keep {}. {by_version} package version{} will be removed.",
            versions.map_or(-1, |v| v as i64),
            if by_version == 1 { "" } else { "s" }
        ));
    }
    if remove.is_empty() {
        let versions = versions.map_or(-1, |v| v as i64);
        log.verbose(match packages {
            None => format!(
                "The number of cached package versions is below the version quantity to keep {versions}. No packages will be removed."
            ),
            Some(p) => format!(
                "The number of cached packages is below the configured maximum package quantity to keep {p} and version quantity to keep {versions}. No packages will be removed."
            ),
        });
    }
    remove
}

#[cfg(test)]
mod tests {
    use super::super::journal::{CacheAge, PackageKey, Tiny, Usage, VersionJson};
    use super::*;

    fn entry(id: &str, version: &str, usages: &[(i32, i64)], locked: bool) -> Entry {
        let usage = |(age, day): (i32, i64)| Usage {
            cache_age_at_usage: CacheAge { value: age },
            date_time: DateTime::from_timestamp(1_600_000_000 + day * 86_400, 0).unwrap().fixed_offset(),
            deployment_task_id: Tiny(format!("T-{age}")),
        };
        Entry {
            package: PackageKey {
                package_id: Tiny(id.into()),
                version: VersionJson { version: version.into(), format: "Semver".into() },
                path: Tiny(format!("/{id}.{version}.zip")),
            },
            usages: usages.iter().copied().map(usage).collect(),
            locks: if locked { vec![usage((99, 0))] } else { Vec::new() },
            file_size_bytes: 1000,
        }
    }

    fn names(entries: &[Entry], picked: &[usize]) -> Vec<String> {
        picked.iter().map(|&i| entries[i].package.describe()).collect()
    }

    #[test]
    fn lfu_prefers_old_rarely_used_and_superseded_versions() {
        // The reference's fixture cases, in spirit: an older version of the same id goes
        // first; more hits keep a package; locked ones are never candidates.
        let entries = vec![
            entry("A", "1.0.0", &[(1, 1)], false),
            entry("A", "2.0.0", &[(2, 2)], false),
            entry("B", "1.0.0", &[(3, 3), (4, 4), (5, 5)], false),
            entry("C", "1.0.0", &[(6, 6)], true),
        ];
        let order = least_frequently_used_with_aging(&entries);
        assert_eq!(names(&entries, &order), ["A v1.0.0", "A v2.0.0", "B v1.0.0"]);
    }

    #[test]
    fn free_space_takes_packages_until_the_shortfall_and_buffer_are_covered() {
        let (log, _, _) = Log::capture();
        let entries: Vec<Entry> =
            (0..10).map(|i| entry("HelloWorld", &format!("1.0.{i}"), &[(i, i64::from(i))], false)).collect();
        // The reference's cases: 500 free of 5000 → 1 package; 1000 of 10000 → 2; 1000 of 1000 → 0.
        assert_eq!(select_for_free_space(20, 500, 5000, &entries, &log).len(), 1);
        assert_eq!(select_for_free_space(20, 1000, 10000, &entries, &log).len(), 2);
        assert!(select_for_free_space(20, 1000, 1000, &entries, &log).is_empty());
    }

    #[test]
    fn quantities_keep_recent_ids_and_versions() {
        let (log, _, _) = Log::capture();
        let entries = vec![
            entry("A", "1.0.0", &[(1, 1)], false),
            entry("A", "2.0.0", &[(2, 2)], false),
            entry("A", "3.0.0", &[(3, 3)], false),
            entry("B", "1.0.0", &[(4, 4)], false),
            entry("C", "1.0.0", &[(5, 0)], true),
        ];
        assert_eq!(names(&entries, &select_by_quantity(None, Some(2), &entries, &log)), ["A v1.0.0"]);
        assert_eq!(
            names(&entries, &select_by_quantity(Some(1), Some(5), &entries, &log)),
            ["A v3.0.0", "A v2.0.0", "A v1.0.0"]
        );
        assert!(select_by_quantity(None, None, &entries, &log).is_empty());
    }

    #[test]
    fn settings_name_the_bad_variable() {
        let mut v = VariableDictionary::new();
        assert_eq!(settings(&v).unwrap(), Strategy::FreeSpace { percent: 20 });
        v.set(names::PERCENT_FREE, Some("lots".into()));
        assert!(settings(&v).unwrap_err().to_string().contains(names::PERCENT_FREE));
        v.set(names::STRATEGY, Some("Quantities".into()));
        assert_eq!(settings(&v).unwrap(), Strategy::Quantities { packages: None, versions: Some(5) });
        v.set(names::VERSION_UNIT, Some("Bytes".into()));
        assert!(settings(&v).unwrap_err().to_string().contains(names::VERSION_UNIT));
        v.set(names::STRATEGY, Some("Biggest".into()));
        assert!(settings(&v).unwrap_err().to_string().contains(names::STRATEGY));
    }
}
