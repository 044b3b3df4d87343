//! Criterion benches for packages: extracting many small files from .tar.gz and .zip (the
//! file-creation-bound case), inflating one large entry, hashing, and the entry-name check.
//! Inputs are generated in memory (deterministic) and written to a temp dir once.
//! Run: `cargo bench -p calamari --bench package`. Side-by-side runs against GNU tar,
//! bsdtar, unzip, sha1sum and openssl are in `benches/package.sh`.
#![allow(clippy::disallowed_methods)] // the bench writes its inputs with std::fs directly

use std::hint::black_box;
use std::io::Write as _;
use std::path::Path;

use calamari::Log;
use calamari::internals::{entry_path, hash_file};
use calamari::{ExtractOptions, PackageVersion};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn content(i: usize, len: usize) -> Vec<u8> {
    // Text-like, moderately compressible.
    let words = ["alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta ", "eta ", "theta "];
    let mut out = Vec::with_capacity(len);
    let mut x = i as u64 * 2_654_435_761 + 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x % 8) as usize].as_bytes());
    }
    out.truncate(len);
    out
}

fn tar_gz(files: usize, size: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for i in 0..files {
        let data = content(i, size);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_path(format!("d{}/f{i}.txt", i % 16)).unwrap();
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

fn zip(files: usize, size: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for i in 0..files {
        w.start_file(format!("d{}/f{i}.txt", i % 16), opts).unwrap();
        w.write_all(&content(i, size)).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn extract_bench(c: &mut Criterion, name: &str, archive: &Path, bytes: u64) {
    let (log, _, _) = Log::capture();
    let options = ExtractOptions::default();
    let out = tempfile::tempdir().unwrap();
    let mut n = 0u64;
    let mut group = c.benchmark_group("extract");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(name, |b| {
        b.iter(|| {
            n += 1;
            let dest = out.path().join(format!("o{n}"));
            let summary = calamari::extract(archive, &dest, &options, &log).unwrap();
            black_box(summary);
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("small.1.0.0.tar.gz");
    std::fs::write(&tgz, tar_gz(500, 4096)).unwrap();
    extract_bench(c, "tar.gz 500 x 4 KiB", &tgz, 500 * 4096);
    let z = dir.path().join("small.1.0.0.zip");
    std::fs::write(&z, zip(500, 4096)).unwrap();
    extract_bench(c, "zip 500 x 4 KiB", &z, 500 * 4096);
    let big = dir.path().join("big.1.0.0.tar.gz");
    std::fs::write(&big, tar_gz(1, 64 << 20)).unwrap();
    extract_bench(c, "tar.gz 1 x 64 MiB", &big, 64 << 20);

    let hash_input = dir.path().join("hash.bin");
    std::fs::write(&hash_input, content(7, 64 << 20)).unwrap();
    let mut group = c.benchmark_group("hash");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(64 << 20));
    group.bench_function("sha1+sha256 64 MiB", |b| b.iter(|| black_box(hash_file(&hash_input).unwrap())));
    group.finish();

    let names: Vec<String> = (0..1000).map(|i| format!("lib/net45/some/deeper/folder{i}/File.Name.{i}.dll")).collect();
    c.bench_function("entry_path x1000", |b| {
        b.iter(|| {
            for n in &names {
                black_box(entry_path(n).unwrap());
            }
        })
    });
    c.bench_function("version parse+cmp x1000", |b| {
        b.iter(|| {
            let mut last = PackageVersion::parse("0.0.0").unwrap();
            for i in 0..1000u32 {
                let v = PackageVersion::parse(&format!("1.{i}.0.{}-beta.{i}+meta", i % 7)).unwrap();
                black_box(v > last);
                last = v;
            }
        })
    });
}

criterion_group!(package_benches, benches);
criterion_main!(package_benches);
