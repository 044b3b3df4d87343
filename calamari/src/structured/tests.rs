//! Approval tests: every folder under `fixtures/structured/` is a case with an `input.*`
//! file, a `variables.json` object (`name -> string or null`), and either `expected.*`
//! (the exact bytes after replacement; absent when the file must stay untouched) or
//! `expected.error` (text the error must contain). An optional `expected.log` lists lines
//! the log must contain.

use std::path::{Path, PathBuf};

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/structured")
}

fn load_variables(path: &Path) -> VariableDictionary {
    let text = std::fs::read_to_string(path).unwrap();
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    let mut vars = VariableDictionary::new();
    for (k, v) in json {
        match v {
            serde_json::Value::Null => vars.set(k, None),
            serde_json::Value::String(s) => vars.set(k, Some(s)),
            other => vars.set(k, Some(other.to_string())),
        }
    }
    vars
}

fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_stem().is_some_and(|s| s == stem) && p.extension().is_some_and(|e| e != "error" && e != "log"))
}

fn run_case(case: &Path) -> Result<(), String> {
    let input = find(case, "input").ok_or("no input.* file")?;
    let vars = load_variables(&case.join("variables.json"));
    let work = tempfile::tempdir().unwrap();
    let name = input.file_name().unwrap().to_string_lossy().into_owned();
    let target = work.path().join(&name);
    std::fs::copy(&input, &target).unwrap();
    let (log, out, err) = Log::capture();
    let result = replace_in_files(work.path(), std::slice::from_ref(&name), &vars, &log);
    let output = format!("{}{}", out.contents(), err.contents());
    if let Ok(expected) = std::fs::read_to_string(case.join("expected.log")) {
        for line in expected.lines().filter(|l| !l.trim().is_empty()) {
            if !output.contains(line) {
                return Err(format!("log lacks {line:?}; log was:\n{output}"));
            }
        }
    }
    let got = std::fs::read(&target).unwrap();
    if let Ok(expected) = std::fs::read_to_string(case.join("expected.error")) {
        let e = match result {
            Ok(_) => return Err("expected an error, got success".into()),
            Err(e) => e.to_string(),
        };
        if !e.contains(expected.trim()) {
            return Err(format!("error {e:?} lacks {:?}", expected.trim()));
        }
        if got != std::fs::read(&input).unwrap() {
            return Err("the file changed although replacement failed".into());
        }
        return Ok(());
    }
    let summary = result.map_err(|e| format!("unexpected error: {e}"))?;
    let expected = match find(case, "expected") {
        Some(p) => std::fs::read(p).unwrap(),
        None => std::fs::read(&input).unwrap(),
    };
    if got != expected {
        return Err(format!(
            "output differs.\n--- got ---\n{}\n--- expected ---\n{}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected)
        ));
    }
    for outcome in &summary.files {
        if let Err(e) = replace(&got, outcome.format, &VariableDictionary::new()) {
            return Err(format!("the output no longer parses: {e}"));
        }
    }
    let changed = summary.changed_files() == 1;
    if changed != (got != std::fs::read(&input).unwrap()) {
        return Err(format!("summary says changed={changed}"));
    }
    Ok(())
}

#[test]
fn approval_cases() {
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(fixtures()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(cases.len() > 10, "fixtures missing");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run_case(c).err().map(|e| format!("{}: {e}", c.file_name().unwrap().to_string_lossy())))
        .collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

mod properties_based {
    //! Property tests: a random document, written by a standard serialiser, with random
    //! leaves replaced, must read back as the same document with exactly those leaves
    //! changed (and nothing else).

    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    fn key() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9_]{0,6}"
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 ]{0,12}",
            "[ -~]{0,12}",
            "[a-z]{1,4}(: |#| #|\"|'|\\\\|\n|\t)[a-z]{0,4}",
            Just("é ü 中文".to_string()),
            Just(String::new()),
            Just("true".to_string()),
            Just("123".to_string()),
        ]
    }

    fn tree() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            text().prop_map(Value::String),
            any::<i32>().prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..5).prop_map(Value::Array),
                prop::collection::btree_map(key(), inner, 1..5).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn leaves(value: &Value, path: String, out: &mut Vec<String>) {
        let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}:{k}") };
        match value {
            Value::Object(m) => m.iter().for_each(|(k, v)| leaves(v, join(k), out)),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| leaves(v, join(&i.to_string()), out)),
            _ => out.push(path),
        }
    }

    fn at<'v>(value: &'v mut Value, path: &str) -> &'v mut Value {
        path.split(':').fold(value, |v, seg| match v {
            Value::Object(m) => m.get_mut(seg).unwrap(),
            Value::Array(a) => &mut a[seg.parse::<usize>().unwrap()],
            _ => unreachable!(),
        })
    }

    /// Picks leaves to replace and the value each gets, and the expected document.
    fn plan(doc: &Value, picks: &[(usize, String)], json_typing: bool) -> (VariableDictionary, Value) {
        // Without JSON typing (YAML), replace only string leaves: a number or bool leaf
        // takes a plain value that reads back typed, which the fixtures cover.
        let mut paths = Vec::new();
        leaves(doc, String::new(), &mut paths);
        let mut vars = VariableDictionary::new();
        let mut expected = doc.clone();
        for (i, new) in picks {
            let path = &paths[i % paths.len()];
            if path.is_empty() || vars.contains(path) {
                continue;
            }
            let slot = at(&mut expected, path);
            if !json_typing && !slot.is_string() {
                continue;
            }
            let (raw, typed) = match slot {
                Value::Number(_) if json_typing => ((i % 1000).to_string(), Value::from(i % 1000)),
                Value::Bool(_) if json_typing => ("true".to_string(), Value::Bool(true)),
                _ => (new.clone(), Value::String(new.clone())),
            };
            *slot = typed;
            vars.set(path.to_uppercase(), Some(raw));
        }
        (vars, expected)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn json_replaces_exactly_the_named_leaves(doc in tree(), pretty in any::<bool>(), picks in prop::collection::vec((any::<usize>(), text()), 0..6)) {
            let text = if pretty { serde_json::to_string_pretty(&doc).unwrap() } else { serde_json::to_string(&doc).unwrap() };
            let (vars, expected) = plan(&doc, &picks, true);
            let out = replace(text.as_bytes(), Format::Json, &vars).unwrap();
            let out = out.unwrap_or_else(|| text.clone().into_bytes());
            let got: Value = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn yaml_replaces_exactly_the_named_leaves(doc in tree(), as_json in any::<bool>(), picks in prop::collection::vec((any::<usize>(), text()), 0..6)) {
            let yaml = to_yaml(&doc);
            let mut text = String::new();
            if as_json {
                // JSON is YAML in flow style: exercises flow collections and double quotes.
                text = serde_json::to_string_pretty(&doc).unwrap();
            } else {
                yaml_rust2::YamlEmitter::new(&mut text).dump(&yaml).unwrap();
            }
            let (vars, expected) = plan(&doc, &picks, false);
            let out = replace(text.as_bytes(), Format::Yaml, &vars).unwrap();
            let out = String::from_utf8(out.unwrap_or_else(|| text.clone().into_bytes())).unwrap();
            let docs = yaml_rust2::YamlLoader::load_from_str(&out).map_err(|e| TestCaseError::fail(format!("{e}\n{out}")))?;
            let mut expected_yaml = to_yaml(&expected);
            // A replaced leaf is a string: compare it as the string it reads back as.
            normalise(&mut expected_yaml);
            let mut got = docs[0].clone();
            normalise(&mut got);
            prop_assert_eq!(got, expected_yaml, "input:\n{}\noutput:\n{}", text, out);
        }
    }

    fn to_yaml(v: &Value) -> yaml_rust2::Yaml {
        use yaml_rust2::Yaml;
        match v {
            Value::Null => Yaml::Null,
            Value::Bool(b) => Yaml::Boolean(*b),
            Value::Number(n) => Yaml::Integer(n.as_i64().unwrap()),
            Value::String(s) => Yaml::String(s.clone()),
            Value::Array(a) => Yaml::Array(a.iter().map(to_yaml).collect()),
            Value::Object(m) => Yaml::Hash(m.iter().map(|(k, v)| (Yaml::String(k.clone()), to_yaml(v))).collect()),
        }
    }

    /// Plain scalars written for replaced values read back typed (`true`, `123`); compare
    /// every scalar by its text.
    fn normalise(y: &mut yaml_rust2::Yaml) {
        use yaml_rust2::Yaml;
        match y {
            Yaml::Array(a) => a.iter_mut().for_each(normalise),
            Yaml::Hash(h) => h.iter_mut().for_each(|(_, v)| normalise(v)),
            Yaml::Integer(i) => *y = Yaml::String(i.to_string()),
            Yaml::Boolean(b) => *y = Yaml::String(b.to_string()),
            Yaml::Real(r) => *y = Yaml::String(r.clone()),
            Yaml::Null => *y = Yaml::String("~".into()),
            _ => {}
        }
    }
}

#[test]
fn deep_json_is_refused_without_overflow() {
    let vars = VariableDictionary::new();
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(replace(deep_json.as_bytes(), Format::Json, &vars), Err(Error::Syntax { .. })));
    let nested = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(replace(nested.as_bytes(), Format::Json, &vars).unwrap(), None);
}

#[test]
fn deep_yaml_does_not_overflow() {
    let vars = VariableDictionary::new();
    let deep_yaml = format!("a: {}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let _ = replace(deep_yaml.as_bytes(), Format::Yaml, &vars);
}

#[test]
fn deep_xml_does_not_overflow() {
    let deep_xml = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
    let mut with_var = VariableDictionary::new();
    with_var.set("//a[1]/@x", Some("1".to_string()));
    assert_eq!(replace(deep_xml.as_bytes(), Format::Xml, &with_var).unwrap(), None);
}

#[test]
fn replace_reports_syntax_errors_and_unchanged_content() {
    let mut vars = VariableDictionary::new();
    vars.set("a", Some("1".to_string()));
    assert_eq!(replace(br#"{"a": 1}"#, Format::Json, &vars).unwrap(), None);
    assert_eq!(replace(br#"{"a": 2}"#, Format::Json, &vars).unwrap().as_deref(), Some(&br#"{"a": 1}"#[..]));
    let err = replace(b"a: [", Format::Yaml, &vars).unwrap_err();
    assert!(err.to_string().contains("could not be parsed as Yaml"), "{err}");
    assert_eq!(crate::error::code_of(&err), 1, "content that does not parse is the user's mistake");
    assert!(matches!(err, Error::Syntax { format: Format::Yaml, syntax: SyntaxError::Yaml(_) }), "{err:?}");
    let err = replace(b"<a><b></a>", Format::Xml, &vars).unwrap_err();
    assert!(
        matches!(err, Error::Syntax { syntax: SyntaxError::Xml(xml::XmlSyntaxError::Reader { .. }), .. }),
        "{err:?}"
    );
    let err = replace(b"{\n  \"a\": x\n}", Format::Json, &vars).unwrap_err();
    let Error::Syntax { syntax: SyntaxError::Json(json), .. } = &err else { panic!("{err:?}") };
    assert_eq!((json.line, json.position), (2, 8));
    let err = replace_in_files(Path::new("."), &["a[".to_string()], &vars, &Log::capture().0).unwrap_err();
    assert!(matches!(err, Error::Pattern(_)), "{err:?}");
    assert_eq!(crate::error::code_of(&err), 1);
}

#[test]
fn files_targets_warnings_and_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("conf/sub")).unwrap();
    std::fs::write(dir.path().join("conf/a.json"), r#"{"k": "old"}"#).unwrap();
    std::fs::write(dir.path().join("conf/sub/b.json"), r#"{"k": "old"}"#).unwrap();
    std::fs::write(dir.path().join("conf/same.json"), r#"{"k": "new"}"#).unwrap();
    std::fs::set_permissions(dir.path().join("conf/a.json"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let same_before = std::fs::metadata(dir.path().join("conf/same.json")).unwrap().modified().unwrap();
    let mut vars = VariableDictionary::new();
    vars.set("k", Some("new".to_string()));
    let (log, out, _) = Log::capture();
    let targets = ["conf/*.json", "conf", "missing/*.yaml", "", "conf/**/b.json"].map(String::from);
    let summary = replace_in_files(dir.path(), &targets, &vars, &log).unwrap();
    let out = out.contents();
    assert!(out.contains("No files were found that match the replacement target pattern 'missing/*.yaml'"), "{out}");
    assert!(out.contains("Skipping structured variable replacement on 'conf' because it is a directory."), "{out}");
    assert_eq!(std::fs::read_to_string(dir.path().join("conf/a.json")).unwrap(), r#"{"k": "new"}"#);
    assert_eq!(std::fs::read_to_string(dir.path().join("conf/sub/b.json")).unwrap(), r#"{"k": "new"}"#);
    let mode = std::fs::metadata(dir.path().join("conf/a.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    assert_eq!(std::fs::metadata(dir.path().join("conf/same.json")).unwrap().modified().unwrap(), same_before);
    let changed: Vec<_> =
        summary.files.iter().map(|f| (f.path.strip_prefix(dir.path()).unwrap().to_path_buf(), f.changed)).collect();
    assert_eq!(
        changed,
        vec![
            (PathBuf::from("conf/a.json"), true),
            (PathBuf::from("conf/same.json"), false),
            (PathBuf::from("conf/sub/b.json"), true)
        ]
    );
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path().join("conf")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn unrepresentable_value_makes_the_file_utf8_with_a_warning() {
    // A windows-1252 file cannot hold `我`: the whole file is written as UTF-8 without a
    // BOM and a warning says so, as substitution does (one rule, in `text_encoding`).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.json");
    std::fs::write(&path, b"{\"name\": \"caf\xE9\", \"city\": \"x\"}").unwrap();
    let mut vars = VariableDictionary::new();
    vars.set("city", Some("我".to_string()));
    let (log, out, _) = Log::capture();
    replace_in_files(dir.path(), &["app.json".to_string()], &vars, &log).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), "{\"name\": \"café\", \"city\": \"我\"}".as_bytes());
    let out = out.contents();
    assert!(out.contains(&crate::text_encoding::unrepresentable_warning(&path)), "{out}");

    let in_memory = replace(b"{\"name\": \"caf\xE9\", \"city\": \"x\"}", Format::Json, &vars).unwrap();
    assert_eq!(in_memory.as_deref(), Some("{\"name\": \"café\", \"city\": \"我\"}".as_bytes()));
}
