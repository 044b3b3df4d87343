//! The data-driven conformance run over `fixtures/conformance/octostache/cases.json`
//! (a copy of the shared Octostache vectors), plus property tests.

use serde_json::Value;

use super::*;
use crate::variables::VariableDictionary;

fn dictionary(case: &Value) -> VariableDictionary {
    let mut d = VariableDictionary::new();
    if let Some(vars) = case["variables"].as_object() {
        for (k, v) in vars {
            d.set(k.clone(), v.as_str().map(str::to_string));
        }
    }
    d
}

/// Runs one case; `Err` describes the mismatch.
fn run_case(case: &Value) -> Result<(), String> {
    let d = dictionary(case);
    let template = case["template"].as_str().unwrap_or("");
    let name = case["name"].as_str().unwrap_or("");
    let expected = &case["expected"];
    let mode = if case["halt_on_error"].as_bool() == Some(false) { ParseMode::Resilient } else { ParseMode::Halt };
    let err = |e: crate::variables::Error| format!("unexpected error: {e}");
    match case["api"].as_str().unwrap_or("") {
        "evaluate" => {
            let e = evaluate(&d, template, mode).map_err(err)?;
            let actual = match (&e.output, case["compare"].as_str()) {
                (Some(o), Some("trim")) => Some(o.trim().to_string()),
                (o, _) => o.clone(),
            };
            if actual.as_deref() != expected.as_str() {
                return Err(format!("output {actual:?}, expected {expected}"));
            }
            match &case["expected_error"] {
                Value::String(s) if e.error.as_deref() != Some(s.as_str()) => {
                    Err(format!("error {:?}, expected {s:?}", e.error))
                }
                Value::Bool(true) if e.error.is_none() => Err("an error was expected".into()),
                Value::Bool(false) if e.error.is_some() => Err(format!("unexpected error text {:?}", e.error)),
                _ => Ok(()),
            }
        }
        "truthy" => {
            let t = d.evaluate_truthy(template).map_err(err)?;
            if Some(t) == expected.as_bool() { Ok(()) } else { Err(format!("truthy {t}")) }
        }
        "error" => match evaluate(&d, template, mode) {
            Err(e) if Some(e.to_string().as_str()) == expected.as_str() => {
                if e.exit_code() == 101 {
                    Ok(())
                } else {
                    Err("recursion must exit 101".into())
                }
            }
            Err(e) => Err(format!("error {e}")),
            Ok(e) => Err(format!("no error, output {:?}", e.output)),
        },
        "raw" => {
            let v = d.get_raw(name);
            if v == expected.as_str() { Ok(()) } else { Err(format!("raw {v:?}")) }
        }
        "get" => {
            let e = d.get_with_error(name).map_err(err)?;
            if e.output.as_deref() != expected.as_str() {
                return Err(format!("get {:?}", e.output));
            }
            if case["expected_error"] == Value::Bool(true) && e.error.is_none() {
                return Err("an error was expected".into());
            }
            if e.output != d.get(name).map_err(err)? {
                return Err("get and get_with_error disagree".into());
            }
            Ok(())
        }
        "flag" => {
            let default = case["default"].as_bool().unwrap_or(false);
            let v = d.get_flag(name, default).map_err(err)?;
            if Some(v) == expected.as_bool() { Ok(()) } else { Err(format!("flag {v}")) }
        }
        "int" => {
            let v = d.get_int(name).map_err(err)?;
            if v.map(i64::from) == expected.as_i64() { Ok(()) } else { Err(format!("int {v:?}")) }
        }
        "require" => {
            let r = d.require(name);
            match (r, case["expected_error"] == Value::Bool(true)) {
                (Err(_), true) => Ok(()),
                (Ok(v), false) if Some(v.as_str()) == expected.as_str() => Ok(()),
                (r, _) => Err(format!("require {r:?}")),
            }
        }
        "indexes" => {
            let mut v = d.get_indexes(name).map_err(err)?;
            let mut want: Vec<String> =
                expected.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect();
            v.sort();
            want.sort();
            if v == want { Ok(()) } else { Err(format!("indexes {v:?}")) }
        }
        "parse" => {
            let ok = match mode {
                ParseMode::Halt => parse(template).is_ok(),
                ParseMode::Resilient => {
                    let _ = parse_resilient(template);
                    true
                }
            };
            if Some(ok) == expected.as_bool() { Ok(()) } else { Err(format!("parse {ok}")) }
        }
        "template_string" => {
            let t = parse(template).map_err(|e| e.message)?.to_string();
            if Some(t.as_str()) == expected.as_str() { Ok(()) } else { Err(format!("rendered {t:?}")) }
        }
        "arguments" => {
            let names = parse(template).map_err(|e| e.message)?.argument_names();
            for want in case["expected_contains"].as_array().into_iter().flatten() {
                if !names.iter().any(|n| Some(n.as_str()) == want.as_str()) {
                    return Err(format!("missing argument {want} in {names:?}"));
                }
            }
            for bad in case["expected_not_contains"].as_array().into_iter().flatten() {
                if names.iter().any(|n| Some(n.as_str()) == bad.as_str()) {
                    return Err(format!("unexpected argument {bad}"));
                }
            }
            Ok(())
        }
        other => Err(format!("unknown api {other}")),
    }
}

#[test]
fn conformance_cases() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/conformance/octostache/cases.json");
    let text = std::fs::read_to_string(path).expect("conformance fixture");
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    let cases = doc["cases"].as_array().expect("cases");
    // Culture-sensitive cases run with en-US semantics, like every other case.
    let mut failed = Vec::new();
    for case in cases {
        let id = case["id"].as_str().unwrap_or("?");
        let result = std::panic::catch_unwind(|| run_case(case)).unwrap_or_else(|_| Err("panicked".into()));
        if let Err(why) = result {
            failed.push(format!("{id}: {why}"));
        }
    }
    let passed = cases.len() - failed.len();
    for f in &failed {
        println!("FAIL {f}");
    }
    println!("{passed} passed, {} failed", failed.len());
    assert!(failed.is_empty(), "{} conformance cases failed", failed.len());
    assert_eq!(cases.len(), 551, "the fixture holds every shared case");
}
