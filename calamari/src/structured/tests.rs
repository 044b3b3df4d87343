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

fn templating_works() -> bool {
    let mut vars = VariableDictionary::new();
    vars.set("A", Some("1".to_string()));
    vars.evaluate("#{A}").ok().and_then(|e| e.output).as_deref() == Some("1")
}

fn run_case(case: &Path) -> Result<(), String> {
    if case.join("needs-templating").exists() && !templating_works() {
        eprintln!("SKIP {}: the templating evaluator is not merged yet", case.display());
        return Ok(());
    }
    let input = find(case, "input").ok_or("no input.* file")?;
    let vars = load_variables(&case.join("variables.json"));
    let work = tempfile::tempdir().unwrap();
    let name = input.file_name().unwrap().to_string_lossy().into_owned();
    let target = work.path().join(&name);
    std::fs::copy(&input, &target).unwrap();
    let (log, out, err) = Log::capture();
    let result = replace_in_files(work.path(), &[name.clone()], &vars, &log);
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
