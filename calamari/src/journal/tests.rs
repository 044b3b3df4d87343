//! Unit tests of the journal: the reference format, legacy entries, corruption, locking,
//! lookups and the variables derived from the journal.

use std::path::Path;

use chrono::TimeZone as _;
use chrono::Utc;

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/journal").join(name)
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn entry(id: &str, set: &str, installed_on: chrono::DateTime<Utc>, ok: bool, pkg: (&str, &str)) -> JournalEntry {
    JournalEntry {
        id: id.into(),
        retention_policy_set: set.into(),
        installed_on: Some(installed_on),
        was_successful: ok,
        extracted_to: Some(format!("/apps/{}/{}", pkg.0, pkg.1)),
        packages: vec![JournalPackage {
            package_id: pkg.0.into(),
            package_version: pkg.1.into(),
            deployed_from: Some(format!("/files/{}.{}.zip", pkg.0, pkg.1)),
        }],
        ..JournalEntry::default()
    }
}

#[test]
fn reference_journal_round_trips_byte_for_byte() {
    let bytes = std::fs::read(fixture("DeploymentJournal.xml")).unwrap();
    let entries = xml::parse(&bytes).unwrap();
    assert_eq!(entries.len(), 3);
    let first = &entries[0];
    assert_eq!(first.id, "0f8fad5b-d9cb-469f-a165-70867728950e");
    assert_eq!(first.environment_id, "Environments-1");
    assert_eq!(first.tenant_id, None);
    assert_eq!(first.project_id, "Projects-1");
    assert_eq!(first.installed_on, Some(utc(2026, 8, 19, 4, 5, 6)));
    assert_eq!(first.retention_policy_set, "Environments-1/Projects-1/Step-X/Machines-1/<default>");
    assert_eq!(first.extracted_to.as_deref(), Some("/home/u/Applications/Prod/Acme.Web/1.0.0"));
    assert_eq!(first.custom_installation_directory.as_deref(), Some("/var/www/acme"));
    assert!(first.was_successful);
    assert_eq!(first.packages.len(), 1);
    assert_eq!(first.packages[0].package_id, "Acme.Web");
    let second = &entries[1];
    assert_eq!(second.tenant_id.as_deref(), Some("Tenants-7"));
    assert!(!second.was_successful);
    assert_eq!(second.custom_installation_directory, None);
    assert_eq!(second.packages.iter().map(|p| p.package_id.as_str()).collect::<Vec<_>>(), ["Acme.Web", "Acme.Tools"]);
    let third = &entries[2];
    assert!(third.packages.is_empty());
    assert_eq!(third.extracted_to, None);
    assert_eq!(xml::serialise(&entries), bytes, "serialising gives back the reference's bytes");
}

#[test]
fn legacy_entries_are_read() {
    let entries = xml::parse(&std::fs::read(fixture("legacy.xml")).unwrap()).unwrap();
    assert_eq!(entries.len(), 4);
    let e = &entries[0];
    assert!(e.was_successful, "missing WasSuccessful reads as true");
    assert_eq!(e.installed_on, Some(utc(2014, 3, 4, 5, 6, 7)));
    assert_eq!(
        e.packages,
        vec![JournalPackage {
            package_id: "Acme.Web".into(),
            package_version: "1.0.0".into(),
            deployed_from: Some("C:\\Octopus\\Files\\Acme.Web.1.0.0.nupkg-2b5b1f0c".into()),
        }]
    );
    assert_eq!(e.tenant_id, None);
    assert!(!entries[1].was_successful);
    assert_eq!(entries[1].installed_on, Some(utc(2014, 3, 5, 5, 6, 7)));
    assert_eq!(entries[2].installed_on, Some(utc(2014, 3, 6, 17, 6, 7)));
    assert_eq!(entries[2].packages[0].deployed_from, None);
    assert_eq!(entries[3].installed_on, None);
    assert!(entries[3].packages.is_empty());
}

#[test]
fn legacy_entries_are_kept_when_the_journal_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("DeploymentJournal.xml");
    std::fs::copy(fixture("legacy.xml"), &path).unwrap();
    let journal = DeploymentJournal::at(&path);
    let before = journal.entries().unwrap();
    let new = entry("new", "Set-A", utc(2026, 1, 1, 0, 0, 0), true, ("Acme.Web", "2.0.0"));
    journal.add(&new).unwrap();
    let after = journal.entries().unwrap();
    assert_eq!(after.len(), 5);
    assert_eq!(&after[..4], &before[..], "old entries survive");
    assert_eq!(after[4], new);
    // As the reference (which writes back the elements it read), the legacy entries stay
    // exactly as they were written: the append touched only the end of the file.
    let original = std::fs::read_to_string(fixture("legacy.xml")).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let untouched = original.trim_end().strip_suffix("</Deployments>").unwrap().trim_end();
    assert!(text.starts_with(untouched), "{text}");
    assert!(text.ends_with(&format!("\n  {}\n</Deployments>", xml::entry_in_document(&new))), "{text}");
}

#[test]
fn missing_journal_is_empty_and_add_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let journal = DeploymentJournal::at(dir.path().join("deep/er/DeploymentJournal.xml"));
    assert_eq!(journal.entries().unwrap(), vec![]);
    assert_eq!(journal.latest_installation("S").unwrap(), None);
    assert!(!dir.path().join("deep").exists(), "reading creates nothing, not even the directory");
    let e = entry("a", "S", utc(2026, 1, 1, 0, 0, 0), true, ("P", "1.0.0"));
    journal.add(&e).unwrap();
    assert_eq!(journal.entries().unwrap(), vec![e]);
    assert!(journal.lock_path().ends_with("DeploymentJournal.xml.lock"));
    // No temp file is left beside it.
    let names: Vec<String> = std::fs::read_dir(journal.path().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn corrupt_journals_are_moved_aside_with_a_warning() {
    let cases: &[&[u8]] = &[
        b"",
        b"<Deployments><Deployment Id=\"a\" RetentionPolicySet=\"S\" WasSucc",
        b"\x00\x01garbage\xff",
        b"<Deployments><Deployment Id=\"a\" /></Deployments>trailing",
    ];
    for bytes in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("DeploymentJournal.xml");
        std::fs::write(&path, bytes).unwrap();
        let (log, out, _err) = Log::capture();
        let journal = DeploymentJournal::at(&path).with_log(log);
        assert_eq!(journal.entries().unwrap(), vec![], "{:?}", String::from_utf8_lossy(bytes));
        let aside: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("DeploymentJournal.xml.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "moved aside exactly once");
        assert_eq!(std::fs::read(&aside[0]).unwrap(), *bytes, "history kept byte for byte");
        let text = out.contents();
        assert!(text.contains("##octopus[stdout-warning]"), "{text}");
        assert!(text.contains("is unreadable") && text.contains(".corrupt-"), "{text}");
        // The next write starts a fresh, valid journal.
        let e = entry("b", "S", utc(2026, 1, 1, 0, 0, 0), true, ("P", "1"));
        journal.add(&e).unwrap();
        assert_eq!(journal.entries().unwrap(), vec![e]);
    }
}

#[test]
fn corrupt_journal_found_by_a_writer_is_moved_aside_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("DeploymentJournal.xml");
    std::fs::write(&path, b"<Deployments><Deploy").unwrap();
    let journal = DeploymentJournal::at(&path);
    let e = entry("b", "S", utc(2026, 1, 1, 0, 0, 0), true, ("P", "1"));
    journal.add(&e).unwrap();
    assert_eq!(journal.entries().unwrap(), vec![e]);
    let count = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".corrupt-"))
        .count();
    assert_eq!(count, 1);
}

#[test]
fn stale_temp_files_of_killed_writers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("DeploymentJournal.xml");
    let stale = dir.path().join(".DeploymentJournal.xml.abc123.tmp");
    std::fs::write(&stale, b"<Deploym").unwrap();
    let unrelated = dir.path().join(".other.xml.abc123.tmp");
    std::fs::write(&unrelated, b"x").unwrap();
    DeploymentJournal::at(&path).add(&entry("a", "S", utc(2026, 1, 1, 0, 0, 0), true, ("P", "1"))).unwrap();
    assert!(!stale.exists());
    assert!(unrelated.exists());
}

#[test]
fn concurrent_writers_in_one_process_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("DeploymentJournal.xml");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let journal = DeploymentJournal::at(&path);
            std::thread::spawn(move || {
                for i in 0..10 {
                    let e = entry(&format!("{t}-{i}"), "S", utc(2026, 1, 1, 0, 0, 0), true, ("P", "1"));
                    journal.add(&e).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut ids: Vec<String> = DeploymentJournal::at(&path).entries().unwrap().into_iter().map(|e| e.id).collect();
    ids.sort();
    let mut expected: Vec<String> = (0..8).flat_map(|t| (0..10).map(move |i| format!("{t}-{i}"))).collect();
    expected.sort();
    assert_eq!(ids, expected);
}

#[test]
fn lookups_follow_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let journal = DeploymentJournal::at(dir.path().join("DeploymentJournal.xml"));
    let entries = [
        entry("old-ok", "Set-A", utc(2026, 1, 1, 0, 0, 0), true, ("Acme", "1.0.0")),
        entry("new-failed", "Set-A", utc(2026, 1, 3, 0, 0, 0), false, ("Acme", "1.0.0")),
        entry("mid-ok", "Set-A", utc(2026, 1, 2, 0, 0, 0), true, ("Acme", "1.0.1")),
        entry("other-set", "Set-B", utc(2026, 1, 9, 0, 0, 0), true, ("Acme", "1.0.0")),
    ];
    for e in &entries {
        journal.add(e).unwrap();
    }
    let id = |e: Option<JournalEntry>| e.map(|e| e.id);
    assert_eq!(id(journal.latest_for_package("set-a", "ACME", "1.0.0").unwrap()).as_deref(), Some("new-failed"));
    assert_eq!(id(journal.latest_for_package("Set-A", "Acme", "1.0.1").unwrap()).as_deref(), Some("mid-ok"));
    assert_eq!(id(journal.latest_for_package("Set-A", "Acme", "9.9.9").unwrap()), None);
    assert_eq!(id(journal.latest_for_package("Set-C", "Acme", "1.0.0").unwrap()), None);
    assert_eq!(id(journal.latest_installation("Set-A").unwrap()).as_deref(), Some("new-failed"));
    assert_eq!(id(journal.latest_successful_installation("Set-A").unwrap()).as_deref(), Some("mid-ok"));
    assert_eq!(id(journal.latest_installation("Set-B").unwrap()).as_deref(), Some("other-set"));
}

#[test]
fn same_second_entries_prefer_the_one_written_last() {
    let t = utc(2026, 1, 1, 0, 0, 0);
    let entries = vec![entry("first", "S", t, false, ("P", "1")), entry("second", "S", t, true, ("P", "1"))];
    assert_eq!(latest(entries, |_| true).unwrap().id, "second");
    let entries =
        vec![entry("timed", "S", t, true, ("P", "1")), JournalEntry { id: "untimed".into(), ..Default::default() }];
    assert_eq!(latest(entries, |_| true).unwrap().id, "timed");
}

#[test]
fn journal_path_from_variables() {
    let mut v = VariableDictionary::new();
    assert!(DeploymentJournal::from_variables(&v).unwrap().is_none());
    v.set("env:TentacleHome", Some("/home/t".to_string()));
    assert_eq!(
        DeploymentJournal::from_variables(&v).unwrap().unwrap().path(),
        Path::new("/home/t/DeploymentJournal.xml")
    );
    v.set("env:TentacleJournal", Some("/elsewhere/j.xml".to_string()));
    assert_eq!(DeploymentJournal::from_variables(&v).unwrap().unwrap().path(), Path::new("/elsewhere/j.xml"));
    v.set("env:TentacleJournal", Some(String::new()));
    assert_eq!(
        DeploymentJournal::from_variables(&v).unwrap().unwrap().path(),
        Path::new("/home/t/DeploymentJournal.xml")
    );
}

fn previous_vars(v: &VariableDictionary) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for prefix in ["PreviousInstallation", "PreviousSuccessfulInstallation"] {
        for field in PREVIOUS_FIELDS {
            let name = format!("Octopus.Tentacle.{prefix}.{field}");
            if let Some(value) = v.get_raw(&name) {
                out.push((format!("{prefix}.{field}"), value.to_string()));
            }
        }
    }
    out
}

#[test]
fn previous_installation_variables() {
    let dir = tempfile::tempdir().unwrap();
    let journal = DeploymentJournal::at(dir.path().join("DeploymentJournal.xml"));
    let mut ok = entry("ok", "Set-A", utc(2026, 1, 1, 0, 0, 0), true, ("Acme", "1.0.0"));
    ok.custom_installation_directory = Some("/var/www".into());
    journal.add(&ok).unwrap();
    journal.add(&entry("failed", "Set-A", utc(2026, 1, 2, 0, 0, 0), false, ("Acme", "1.0.1"))).unwrap();

    // No retention policy set: nothing is set.
    let mut v = VariableDictionary::new();
    set_previous_installation_variables(Some(&journal), &mut v).unwrap();
    assert!(previous_vars(&v).is_empty());

    v.set("OctopusRetentionPolicySet", Some("Set-A".to_string()));
    set_previous_installation_variables(Some(&journal), &mut v).unwrap();
    let got = previous_vars(&v);
    let expected: Vec<(String, String)> = [
        ("PreviousInstallation.OriginalInstalledPath", "/apps/Acme/1.0.1"),
        ("PreviousInstallation.CustomInstallationDirectory", ""),
        ("PreviousInstallation.PackageFilePath", "/files/Acme.1.0.1.zip"),
        ("PreviousInstallation.PackageVersion", "1.0.1"),
        ("PreviousSuccessfulInstallation.OriginalInstalledPath", "/apps/Acme/1.0.0"),
        ("PreviousSuccessfulInstallation.CustomInstallationDirectory", "/var/www"),
        ("PreviousSuccessfulInstallation.PackageFilePath", "/files/Acme.1.0.0.zip"),
        ("PreviousSuccessfulInstallation.PackageVersion", "1.0.0"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, expected);

    // Another set, or no journal: empty strings.
    for journal in [Some(&journal), None] {
        let mut v = VariableDictionary::new();
        v.set("OctopusRetentionPolicySet", Some("Set-Z".to_string()));
        set_previous_installation_variables(journal, &mut v).unwrap();
        let got = previous_vars(&v);
        assert_eq!(got.len(), 8);
        assert!(got.iter().all(|(_, value)| value.is_empty()), "{got:?}");
    }
}

#[test]
fn a_held_lock_is_waited_for_and_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let journal = DeploymentJournal::at(dir.path().join("DeploymentJournal.xml"))
        .with_lock_timeout(std::time::Duration::from_millis(200));
    let held = NamedLock::acquire(journal.lock_path()).unwrap();
    let e = entry("a", "S", utc(2026, 1, 1, 0, 0, 0), true, ("P", "1"));
    let err = journal.add(&e).unwrap_err().to_string();
    assert!(err.contains("Timed out") && err.contains("DeploymentJournal.xml.lock"), "{err}");
    // Readers take the lock too (shared), so look at the file itself.
    assert!(!journal.path().exists(), "nothing was written");
    // Released while waiting: the update goes through.
    let (log, out, _) = Log::capture();
    let journal = journal.with_lock_timeout(std::time::Duration::from_secs(30)).with_log(log);
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(held);
    });
    journal.add(&e).unwrap();
    releaser.join().unwrap();
    assert_eq!(journal.entries().unwrap(), vec![e]);
    assert!(out.contents().contains("Waiting for the deployment journal lock"), "{}", out.contents());
}
