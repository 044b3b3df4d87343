//! Any bytes, read as each archive format Calamari supports (chosen by the first byte),
//! must either extract with everything inside the destination or fail cleanly leaving no
//! destination and no partial directory. Panics, aborts and escapes are bugs.
#![no_main]
#![allow(clippy::disallowed_methods)] // the harness writes and lists its scratch files with std::fs directly

use calamari::Log;
use calamari::ExtractOptions;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 8] = [
    "p.1.0.0.zip", "p.1.0.0.nupkg", "p.1.0.0.tar", "p.1.0.0.tar.gz", "p.1.0.0.tar.bz2", "p.1.0.0.tar.xz",
    "p.1.0.0.tar.zst", "p.1.0.0.jar",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join(NAMES[usize::from(selector) % NAMES.len()]);
    std::fs::write(&archive, body).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let dest = work.join("dest");
    let options = ExtractOptions {
        max_uncompressed_bytes: Some(16 << 20),
        max_entries: Some(2000),
        writer_threads: 2,
        ..ExtractOptions::default()
    };
    let (log, _, _) = Log::capture();
    let result = calamari::extract(&archive, &dest, &options, &log);
    // Only the archive and work/ may exist next to the destination.
    let outside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(outside.len(), 2, "something was written outside: {outside:?}");
    let in_work: Vec<_> = std::fs::read_dir(&work).unwrap().flatten().map(|e| e.file_name()).collect();
    match result {
        Ok(_) => {
            assert_eq!(in_work, ["dest"], "leftovers: {in_work:?}");
            let real = dest.canonicalize().unwrap();
            for e in walk(&dest) {
                if let Ok(r) = e.canonicalize() {
                    assert!(r.starts_with(&real), "{} resolves outside to {}", e.display(), r.display());
                }
            }
        }
        Err(_) => assert!(in_work.is_empty(), "a failed extraction left {in_work:?}"),
    }
});

fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&p) {
            for e in rd.flatten() {
                let path = e.path();
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(path.clone());
                }
                out.push(path);
            }
        }
    }
    out
}
