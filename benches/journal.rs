//! Journal benches: parsing and serialising `DeploymentJournal.xml`, a locked atomic `add`
//! (read + rewrite + fsync + rename + fsync dir) to a journal of realistic size, and the
//! retention selection.

use std::hint::black_box;

use calamari::internals::{new_guid, parse_journal, select_for_retention, serialise_journal};
use calamari::{DeploymentJournal, JournalEntry, JournalPackage, RetentionPolicy};
use criterion::{Criterion, criterion_group, criterion_main};

fn entries(n: usize) -> Vec<JournalEntry> {
    let now = chrono::Utc::now();
    (0..n)
        .map(|i| JournalEntry {
            id: new_guid(),
            environment_id: "Environments-1".into(),
            tenant_id: None,
            project_id: format!("Projects-{}", i % 20),
            retention_policy_set: format!("Environments-1/Projects-{}/Step-A/Machines-1/<default>", i % 20),
            installed_on: Some(now - std::time::Duration::from_secs(3600 * i as u64)),
            extracted_to: Some(format!("/home/tentacle/Applications/Prod/Acme.Web/1.0.{i}")),
            custom_installation_directory: None,
            current_link: None,
            previous_target: None,
            was_successful: i % 7 != 0,
            packages: vec![JournalPackage {
                package_id: "Acme.Web".into(),
                package_version: format!("1.0.{i}"),
                deployed_from: Some(format!(
                    "/home/tentacle/Files/Acme.Web@S1.0.{i}@0123456789ABCDEF0123456789ABCDEF.zip"
                )),
            }],
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal");
    for n in [100usize, 1000] {
        let list = entries(n);
        let bytes = serialise_journal(&list);
        group.bench_function(format!("parse_{n}"), |b| b.iter(|| parse_journal(black_box(&bytes)).unwrap()));
        group.bench_function(format!("serialise_{n}"), |b| b.iter(|| serialise_journal(black_box(&list))));
        let dir = tempfile::tempdir().unwrap();
        let journal = DeploymentJournal::at(dir.path().join("DeploymentJournal.xml"));
        journal.update(|e| e.extend(list.iter().cloned())).unwrap();
        let extra = entries(1).remove(0);
        group.bench_function(format!("add_to_{n}"), |b| {
            b.iter(|| {
                journal.add(&extra).unwrap();
                journal.update(|e| e.truncate(n)).unwrap();
            })
        });
    }
    let list = entries(10_000);
    let now = chrono::Utc::now();
    group.bench_function("select_releases_10000", |b| {
        b.iter(|| select_for_retention(black_box(&list), RetentionPolicy::Releases(5), now))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
