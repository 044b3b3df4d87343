//! Structured configuration variables: replacing a handful of values in large JSON, YAML,
//! XML and properties files. The JSON group also times what the reference does instead of
//! splicing (parse into a tree, set the values, re-serialise), with serde_json as a fast
//! stand-in for Json.NET.
//!
//! `xml_transforms`: the XDT convention on a `Web.config` of 1,000 `appSettings` with a
//! `Web.Release.config` of 120 transforms (100 `SetAttributes` by `Match(key)`, 10 `Insert`,
//! 10 `Remove`), files and all; and the configuration variables convention setting 100 of
//! the 1,000 settings.
//!
//! `cargo bench -p calamari --bench structured`

#![allow(clippy::disallowed_methods)] // the bench writes its inputs with std::fs directly

use std::hint::black_box;

use calamari::VariableDictionary;
use calamari::{ConfigFormat as Format, replace_structured as replace};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// `n` service entries, each a small object, written in the format's usual style.
fn documents(n: usize) -> [(Format, String); 4] {
    let mut json = String::from("{\n  \"Services\": [\n");
    let mut yaml = String::from("# services\nServices:\n");
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<configuration>\n");
    let mut props = String::from("# services\n");
    for i in 0..n {
        let comma = if i + 1 < n { "," } else { "" };
        json.push_str(&format!(
            "    {{ \"Name\": \"svc{i}\", \"Port\": {}, \"Enabled\": true, \"Tags\": [\"a\", \"b\"] }}{comma}\n",
            8000 + i
        ));
        yaml.push_str(&format!(
            "  - Name: svc{i}   # service\n    Port: {}\n    Enabled: true\n    Tags: [a, b]\n",
            8000 + i
        ));
        xml.push_str(&format!("  <service name=\"svc{i}\" port=\"{}\"><enabled>true</enabled></service>\n", 8000 + i));
        props.push_str(&format!("service.{i}.name = svc{i}\nservice.{i}.port = {}\n", 8000 + i));
    }
    json.push_str("  ]\n}\n");
    xml.push_str("</configuration>\n");
    [(Format::Json, json), (Format::Yaml, yaml), (Format::Xml, xml), (Format::Properties, props)]
}

fn variables(format: Format) -> VariableDictionary {
    let mut vars = VariableDictionary::new();
    // A realistic deployment: many variables, few of which name structures.
    for i in 0..500 {
        vars.set(format!("Octopus.Action.Setting{i}"), Some(format!("value {i}")));
        vars.set(format!("Project.Setting{i}"), Some(format!("value {i}")));
    }
    let names: [&str; 3] = match format {
        Format::Json | Format::Yaml => ["Services:10:Name", "Services:500:Port", "Services:999:Enabled"],
        Format::Xml => {
            ["//service[@name='svc10']/@port", "/configuration/service[500]/enabled", "//service[999]/@name"]
        }
        Format::Properties => ["service.10.name", "service.500.port", "service.999.name"],
    };
    for name in names {
        vars.set(name, Some("42".to_string()));
    }
    vars
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("structured_replace_1000_entries");
    for (format, text) in documents(1000) {
        let vars = variables(format);
        assert!(replace(text.as_bytes(), format, &vars).unwrap().is_some(), "{format} replaces something");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format.name(), |b| b.iter(|| replace(black_box(text.as_bytes()), format, &vars).unwrap()));
        if format == Format::Yaml {
            group.bench_function("Yaml_events_only_baseline", |b| {
                b.iter(|| {
                    let mut parser = yaml_rust2::parser::Parser::new_from_str(black_box(&text));
                    let mut n = 0usize;
                    while !matches!(parser.next_token().unwrap().0, yaml_rust2::Event::StreamEnd) {
                        n += 1;
                    }
                    n
                })
            });
        }
        if format == Format::Json {
            group.bench_function("Json_reserialise_baseline", |b| {
                b.iter(|| {
                    let mut tree: serde_json::Value = serde_json::from_slice(black_box(text.as_bytes())).unwrap();
                    tree["Services"][10]["Name"] = "42".into();
                    tree["Services"][500]["Port"] = 42.into();
                    serde_json::to_vec_pretty(&tree).unwrap()
                })
            });
        }
    }
    group.finish();
}

/// A `Web.config` of `n` settings and a transform touching 120 of them.
fn web_config(n: usize) -> (String, String) {
    let mut config =
        String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<configuration>\r\n  <appSettings>\r\n");
    for i in 0..n {
        config.push_str(&format!("    <add key=\"Setting{i}\" value=\"dev {i}\" />\r\n"));
    }
    config.push_str("  </appSettings>\r\n</configuration>\r\n");
    let mut transform = String::from(
        "<?xml version=\"1.0\"?>\n<configuration xmlns:xdt=\"http://schemas.microsoft.com/XML-Document-Transform\">\n  <appSettings>\n",
    );
    for i in (0..n).step_by(n / 100).take(100) {
        transform.push_str(&format!(
            "    <add key=\"Setting{i}\" value=\"release {i}\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(key)\" />\n"
        ));
    }
    for i in 0..10 {
        transform.push_str(&format!("    <add key=\"New{i}\" value=\"{i}\" xdt:Transform=\"Insert\" />\n"));
        transform.push_str(&format!(
            "    <add key=\"Setting{}\" xdt:Transform=\"Remove\" xdt:Locator=\"Match(key)\" />\n",
            n - 1 - i
        ));
    }
    transform.push_str("  </appSettings>\n</configuration>\n");
    (config, transform)
}

fn bench_transforms(c: &mut Criterion) {
    let (config, transform) = web_config(1000);
    let dir = tempfile::tempdir().unwrap();
    let mut transforms = VariableDictionary::new();
    transforms.set("Octopus.Action.Package.AutomaticallyRunConfigurationTransformationFiles", Some("True".into()));
    let mut settings = VariableDictionary::new();
    for i in (0..1000).step_by(10) {
        settings.set(format!("Setting{i}"), Some(format!("prod {i}")));
    }
    let (log, _, _) = calamari::Log::capture();
    let mut group = c.benchmark_group("xml_transforms");
    group.throughput(Throughput::Bytes(config.len() as u64));
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    group.bench_function("transform_1000_settings_120_transforms", |b| {
        b.iter_batched(
            || {
                write("Web.config", &config);
                write("Web.Release.config", &transform);
                transforms.clone()
            },
            |mut vars| calamari::apply_configuration_transforms(dir.path(), &mut vars, &log).unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });
    std::fs::remove_file(dir.path().join("Web.Release.config")).unwrap();
    group.bench_function("config_variables_1000_settings_100_set", |b| {
        b.iter_batched(
            || write("Web.config", &config),
            |()| calamari::replace_configuration_variables(dir.path(), &settings, &log).unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench, bench_transforms);
criterion_main!(benches);
