//! Script output hot paths: the `##octopus[...]` parser and the masker, per line of output.
//! Run: `cargo bench -p calamari --bench scripts`.

use calamari::ServiceMessage;
use calamari::{Masker, ServiceMessageParser as Parser};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn lines() -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..10_000 {
        if i % 100 == 0 {
            out.push(ServiceMessage::set_variable(&format!("Name{i}"), "some value", false).to_string());
        } else {
            out.push(format!(
                "2026-11-22 02:00:{:02} INFO deploying component {i} to /opt/app/releases/{i} ... ok",
                i % 60
            ));
        }
    }
    out
}

/// 10,000 lines as `base64` (76 columns) and `hexdump -C` print pseudo-random bytes.
fn dump_lines() -> Vec<String> {
    use base64::Engine as _;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut bytes = || {
        (0..57)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect::<Vec<u8>>()
    };
    let mut out = Vec::new();
    for i in 0..10_000 {
        let chunk = bytes();
        if i % 2 == 0 {
            out.push(base64::engine::general_purpose::STANDARD.encode(&chunk));
        } else {
            let hex: Vec<String> = chunk[..16].iter().map(|b| format!("{b:02x}")).collect();
            let ascii: String =
                chunk[..16].iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect();
            out.push(format!("{:08x}  {}  {}  |{ascii}|", i * 16, hex[..8].join(" "), hex[8..].join(" ")));
        }
    }
    out
}

fn parser(c: &mut Criterion) {
    let lines = lines();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut group = c.benchmark_group("service_message_parser");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("10k_lines_1pct_messages", |b| {
        b.iter(|| {
            let mut parser = Parser::new();
            let mut out = Vec::with_capacity(4);
            let mut n = 0;
            for line in &lines {
                parser.feed(line, &mut out);
                n += out.len();
                out.clear();
            }
            n
        })
    });
    group.finish();
}

fn masker(c: &mut Criterion) {
    let lines = lines();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut group = c.benchmark_group("masker");
    group.throughput(Throughput::Bytes(bytes as u64));
    for secrets in [0usize, 10, 100] {
        let mut masker = Masker::new();
        for i in 0..secrets {
            masker.add(&format!("s3cret-value-{i}-{}", "x".repeat(i % 20)));
        }
        group.bench_function(format!("10k_lines_{secrets}_secrets"), |b| {
            b.iter(|| lines.iter().map(|l| masker.mask(l).len()).sum::<usize>())
        });
    }
    // Encoder output (no secret in it): every line is a base64 run or a hex dump, the
    // slow path of the encoded forms (a base64 automaton over each run, hex decoded).
    let dumps = dump_lines();
    let dump_bytes: usize = dumps.iter().map(|l| l.len() + 1).sum();
    group.throughput(Throughput::Bytes(dump_bytes as u64));
    for secrets in [10usize, 100] {
        let mut masker = Masker::new();
        for i in 0..secrets {
            masker.add(&format!("s3cret-value-{i}-{}", "x".repeat(i * 7 % 90)));
        }
        group.bench_function(format!("10k_dump_lines_{secrets}_secrets"), |b| {
            b.iter(|| dumps.iter().map(|l| masker.mask(l).len()).sum::<usize>())
        });
    }
    group.finish();
    // Registering secrets one by one, as the CLI does when it loads the variables.
    c.bench_function("masker/add_200_secrets_one_by_one", |b| {
        b.iter(|| {
            let mut masker = Masker::new();
            for i in 0..200 {
                masker.add(&format!("s3cret-value-{i}-{}", "x".repeat(i % 20)));
            }
            masker.is_empty()
        })
    });
}

criterion_group!(benches, parser, masker);
criterion_main!(benches);
