//! Journal benches: parsing and serialising `DeploymentJournal.xml`; the operations a
//! deployment does (the latest entry of its set through the index, an append and the
//! completion of the entry in place, each under the lock with its two fsyncs) on journals
//! of 1,000 and 100,000 entries, to show that they do not grow with the history; and the
//! retention selection.
//!
//! End-to-end figures with the real binary: `benches/journal.sh`.

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
    }
    for n in [1000usize, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let journal = DeploymentJournal::at(dir.path().join("DeploymentJournal.xml"));
        journal.update(|e| e.extend(entries(n))).unwrap();
        let set = "Environments-1/Projects-7/Step-A/Machines-1/<default>";
        group.bench_function(format!("latest_installation_of_{n}"), |b| {
            b.iter(|| journal.latest_installation(black_box(set)).unwrap().unwrap())
        });
        // What a deployment does to the journal: add its in-progress entry, complete it.
        let mut pending = entries(1).remove(0);
        group.bench_function(format!("add_and_complete_in_{n}"), |b| {
            b.iter(|| {
                pending.id = new_guid();
                pending.was_successful = false;
                journal.add(&pending).unwrap();
                pending.was_successful = true;
                journal.replace(&pending).unwrap();
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
