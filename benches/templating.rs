//! Templating benchmarks: substituting a large config text, and evaluating many
//! variables that reference each other. Run with `cargo bench -p calamari --bench templating`.

use std::hint::black_box;

use calamari::ParseMode;
use calamari::VariableDictionary;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn variables(n: usize) -> VariableDictionary {
    let mut d = VariableDictionary::new();
    for i in 0..n {
        d.set(format!("App.Setting.{i:04}"), Some(format!("value-{i}")));
    }
    d.set("Server", Some("web01".to_string()));
    d
}

fn config_text(lines: usize, vars: usize) -> String {
    let mut s = String::with_capacity(lines * 64);
    for i in 0..lines {
        s.push_str(&format!(
            "  <add key=\"k{i}\" value=\"#{{App.Setting.{:04}}}\" /> <!-- plain text -->\r\n",
            i % vars
        ));
    }
    s
}

fn substitution(c: &mut Criterion) {
    let d = variables(2000);
    let text = config_text(100_000, 2000);
    let mut g = c.benchmark_group("substitute");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(10);
    g.bench_function("config_100k_lines", |b| {
        b.iter(|| black_box(&d).evaluate_with(black_box(&text), ParseMode::Resilient).unwrap())
    });
    g.finish();
}

fn many_variables(c: &mut Criterion) {
    let mut d = variables(2000);
    for i in 0..2000 {
        d.set(format!("Derived.{i:04}"), Some(format!("http://#{{Server | ToUpper}}:#{{App.Setting.{i:04}}}/x")));
    }
    let mut g = c.benchmark_group("evaluate");
    g.throughput(Throughput::Elements(2000));
    g.sample_size(20);
    g.bench_function("get_2000_derived_variables", |b| {
        b.iter(|| {
            let fresh = d.clone();
            for i in 0..2000 {
                black_box(fresh.get(&format!("Derived.{i:04}")).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, substitution, many_variables);
criterion_main!(benches);
