//! Script isolation bench: the whole `enforce_isolation` path a command pays before it
//! starts and when it ends (open the lock file, `flock`, the check that the filesystem
//! enforces it, the holder record; then remove the record and unlock), for an exclusive
//! (`FullIsolation`) and a shared (`NoIsolation`) lock nobody else holds. Goal: well under
//! a millisecond.

use std::hint::black_box;

use calamari::{AgentEnvironment, IsolationRequest, Log, enforce_isolation};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let home = tempfile::tempdir().expect("temp dir");
    let environment = AgentEnvironment {
        variables: vec![("TentacleHome".into(), home.path().display().to_string())],
        working_directory: None,
    };
    let (log, _out, _err) = Log::capture();
    let mut group = c.benchmark_group("isolation");
    for level in ["FullIsolation", "NoIsolation"] {
        let request = IsolationRequest {
            level: Some(level.into()),
            mutex_name: Some("RunningScript".into()),
            timeout: Some("00:00:10".into()),
            command: "run-script".into(),
        };
        group.bench_function(format!("acquire_release/{level}"), |b| {
            b.iter(|| {
                let guard = enforce_isolation(black_box(&request), &environment, &log).expect("lock");
                assert!(guard.lock_file().is_some());
                drop(guard);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
