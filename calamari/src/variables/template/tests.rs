//! The data-driven conformance run over `fixtures/conformance/octostache/cases.json`
//! (a copy of the shared Octostache vectors), plus property tests.

use serde_json::Value;

use super::limits::{Limit, LimitContext};
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
                if crate::error::code_of(&e) == 101 {
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
#[allow(clippy::print_stdout)] // the pass/fail summary is the point of this test
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
    // The cases run on this thread (catch_unwind does not move them): the most work any of
    // them took is far below the default limit.
    let most = eval::MOST_WORK.with(std::cell::Cell::get);
    println!("most work of one evaluation: {most} steps");
    assert!(most < 10_000, "{most}");
    assert_eq!(cases.len(), 551, "the fixture holds every shared case");
}

/// The work of one evaluation of `text` (measured on a fresh thread).
fn work_of(d: &VariableDictionary, text: &str) -> u64 {
    std::thread::scope(|s| {
        s.spawn(|| {
            evaluate(d, text, ParseMode::Resilient).unwrap();
            eval::MOST_WORK.with(std::cell::Cell::get)
        })
        .join()
        .unwrap()
    })
}

#[test]
fn the_benchmark_workloads_stay_far_below_the_default_limits() {
    // benches/templating.rs: 100,000 config lines over 2,000 variables, and a variable
    // that uses a filter and two references.
    let mut d = VariableDictionary::new();
    for i in 0..2000 {
        d.set(format!("App.Setting.{i:04}"), Some(format!("value-{i}")));
    }
    d.set("Server", Some("web01".to_string()));
    d.set("Derived", Some("http://#{Server | ToUpper}:#{App.Setting.0001}/x".to_string()));
    let mut text = String::new();
    for i in 0..100_000 {
        text.push_str(&format!(
            "  <add key=\"k{i}\" value=\"#{{App.Setting.{:04}}}\" /> <!-- plain text -->\r\n",
            i % 2000
        ));
    }
    let work = work_of(&d, &text);
    assert!(work < limits::DEFAULT_MAXIMUM_WORK / 100, "{work}");
    assert!(work_of(&d, "#{Derived}") < 100);
    let out = evaluate(&d, &text, ParseMode::Halt).unwrap().output.unwrap();
    assert!(out.len() < limits::DEFAULT_MAXIMUM_VALUE_SIZE, "{}", out.len());
}

fn lowered(pairs: &[(&str, &str)], size: usize, work: u64) -> VariableDictionary {
    let mut d = VariableDictionary::new();
    for (k, v) in pairs {
        d.set(*k, Some(v.to_string()));
    }
    d.set(limits::MAXIMUM_VALUE_SIZE, Some(size.to_string()));
    d.set(limits::MAXIMUM_WORK, Some(work.to_string()));
    d
}

fn limit_of(e: crate::variables::Error) -> (Limit, LimitContext) {
    match e {
        crate::variables::Error::LimitExceeded { limit, at } => (limit, at),
        other => panic!("not a limit: {other}"),
    }
}

#[test]
fn multiplying_filters_stop_at_the_value_size_before_building_the_result() {
    let big = "x\n".repeat(4096);
    let d = lowered(&[("Big", big.as_str())], 100_000, 1_000_000);
    // 8 KiB in, every position replaced by 1 KiB: 8 MiB.
    let r = format!("#{{Big | Replace \"\" \"{}\"}}", "y".repeat(1024));
    let (limit, at) = limit_of(evaluate(&d, &format!("a\n{r}"), ParseMode::Halt).unwrap_err());
    assert_eq!(limit, Limit::ValueSize(100_000));
    assert_eq!(at.position, Some((2, 1)));
    let i = format!("#{{Big | Indent \"{}\"}}", "y".repeat(1024));
    assert_eq!(limit_of(evaluate(&d, &i, ParseMode::Halt).unwrap_err()).0, Limit::ValueSize(100_000));
    // Below the limit they work as before.
    let ok = evaluate(&d, "#{Big | Replace x z | Indent 2}", ParseMode::Halt).unwrap().output.unwrap();
    assert!(ok.starts_with("  z\n  z\n"), "{ok:?}");
    // The limit counts the whole value, not each piece.
    // The limit counts the whole value, not each piece, and is at least eight times the
    // longest raw value (8 KiB here).
    let ten = format!("#{{Big | Append {}}}", "#{Big}".repeat(9));
    let d = lowered(&[("Big", big.as_str()), ("Ten", ten.as_str())], 1000, 1_000_000);
    assert_eq!(evaluate(&d, "#{Big | ToUpper}", ParseMode::Halt).unwrap().output.unwrap().len(), 8192);
    let (limit, at) = limit_of(d.get("Ten").unwrap_err());
    assert_eq!(limit, Limit::ValueSize(65536));
    assert_eq!(at.variable.as_deref(), Some("Ten"));
}

#[test]
fn walking_a_large_json_value_again_and_again_counts_as_work() {
    let json = format!("{{\"a\": \"{}\"}}", "x".repeat(64 * 1024));
    let list = vec!["i"; 1000].join(",");
    let d = lowered(&[("J", json.as_str()), ("L", list.as_str())], 1 << 20, 100_000);
    // 1,000 probes of 64 KiB each: about a million steps.
    let t = "#{each i in L}#{if J.a == \"y\"}#{/if}#{/each}";
    let (limit, at) = limit_of(evaluate(&d, t, ParseMode::Halt).unwrap_err());
    assert_eq!(limit, Limit::Work(100_000));
    assert_eq!(at.position, Some((1, 1)));
    assert_eq!(at.variable.as_deref(), Some("J.a"));
}

fn chain(n: usize, last: &str) -> VariableDictionary {
    let mut d = VariableDictionary::new();
    for i in 0..n {
        d.set(format!("V{i}"), Some(if i + 1 == n { last.to_string() } else { format!("#{{V{}}}", i + 1) }));
    }
    d
}

#[test]
fn long_variable_chains_evaluate_without_overflowing() {
    let d = chain(10_000, "end");
    let e = evaluate(&d, "#{V0}", ParseMode::Halt).unwrap();
    assert_eq!(e.output.as_deref(), Some("end"));
    assert_eq!(d.get("V0").unwrap().as_deref(), Some("end"));
}

#[test]
fn self_reference_through_ten_variables_reports_the_chain() {
    let d = chain(10, "#{V0}");
    let e = evaluate(&d, "#{V0}", ParseMode::Halt).unwrap_err();
    assert_eq!(crate::error::code_of(&e), 101);
    let msg = e.to_string();
    assert!(msg.contains("(V0 -> V1 -> V2 -> V3 -> V4 -> V5 -> V6 -> V7 -> V8 -> V9 -> V0)"), "{msg}");
    let e = d.get("V3").unwrap_err();
    assert!(e.to_string().contains("V3 -> V4"), "{e}");
}

#[test]
fn deep_nesting_is_a_clear_error_in_both_modes() {
    let d = VariableDictionary::new();
    let t = "#{if a}".repeat(10_000) + "x" + &"#{/if}".repeat(10_000);
    let e = evaluate(&d, &t, ParseMode::Halt).unwrap();
    assert_eq!(e.output.as_deref(), Some(t.as_str()));
    assert!(e.error.unwrap().contains("levels deep"));
    let e = evaluate(&d, &t, ParseMode::Resilient).unwrap();
    assert!(e.output.is_some());
    let calc = format!("#{{calc {}1}}", "1+".repeat(100_000));
    assert!(parse(&calc).is_err());
    let idx = format!("#{{{}x{}}}", "A[#{".repeat(5_000), "}]".repeat(5_000));
    // Past the nesting limit the inner `#{` is kept as literal index text.
    let e = evaluate(&d, &idx, ParseMode::Halt).unwrap();
    assert!(e.error.is_some());
}

#[test]
fn a_100_mb_value_is_substituted() {
    let mut d = VariableDictionary::new();
    let big = "x".repeat(100 * 1024 * 1024);
    d.set("Big", Some(big));
    let e = evaluate(&d, "[#{Big | ToUpper}]", ParseMode::Halt).unwrap();
    let out = e.output.unwrap();
    assert_eq!(out.len(), 100 * 1024 * 1024 + 2);
    assert!(out.starts_with("[XX") && out.ends_with("XX]"));
}

#[test]
fn wrong_filter_arguments_echo() {
    let mut d = VariableDictionary::new();
    d.set("A", Some("abc".to_string()));
    for t in [
        "#{A | Substring x y z}",
        "#{A | Truncate -1}",
        "#{A | Indent 1 2 3}",
        "#{A | Replace \"(\"}",
        "#{A | Format Date \"yyyy\"}",
        "#{A | Md5 0}",
        "#{A | FromBase64}",
        "#{A | AddDays 99999999999}",
    ] {
        let e = evaluate(&d, t, ParseMode::Halt).unwrap();
        assert!(e.error.is_some(), "{t} should be unresolved: {:?}", e.output);
        assert!(e.output.unwrap().starts_with("#{A | "), "{t}");
    }
}

#[test]
fn values_are_cached_and_the_cache_is_invalidated_on_set() {
    let mut d = VariableDictionary::new();
    d.set("A", Some("#{B}".to_string()));
    d.set("B", Some("1".to_string()));
    assert_eq!(d.get("A").unwrap().as_deref(), Some("1"));
    assert_eq!(evaluate(&d, "#{A}", ParseMode::Halt).unwrap().output.as_deref(), Some("1"));
    d.set("B", Some("2".to_string()));
    assert_eq!(d.get("A").unwrap().as_deref(), Some("2"));
    assert_eq!(evaluate(&d, "#{A}", ParseMode::Halt).unwrap().output.as_deref(), Some("2"));
    // A doubling chain would take 2^40 evaluations without the cache.
    let mut d = VariableDictionary::new();
    for i in 0..40 {
        d.set(format!("D{i}"), Some(format!("#{{D{}}}#{{D{}}}", i + 1, i + 1)));
    }
    d.set("D40", Some("x".to_string()));
    assert_eq!(evaluate(&d, "#{D39}", ParseMode::Halt).unwrap().output.as_deref(), Some("xx"));
    assert_eq!(d.get("D30").unwrap().map(|v| v.len()), Some(1 << 10));
}

mod properties {
    use proptest::prelude::*;

    use super::super::*;
    use crate::variables::VariableDictionary;

    fn dict() -> VariableDictionary {
        let mut d = VariableDictionary::new();
        d.set("a", Some("1".to_string()));
        d.set("b", Some("#{a}x".to_string()));
        d.set("c[x].d", Some("{\"k\": [1, 2]}".to_string()));
        d.set("loop", Some("#{loop}".to_string()));
        d
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn random_templates_never_panic(t in "([#{}|. \"\\\\\\[\\]()*+/=!a-d0-9]|if |each | in |calc |else|/if|/each|unless ){0,40}") {
            let d = dict();
            for mode in [ParseMode::Halt, ParseMode::Resilient] {
                match evaluate(&d, &t, mode) {
                    Ok(e) => prop_assert!(e.output.is_some() || t.contains("null")),
                    Err(e) => prop_assert_eq!(crate::error::code_of(&e), 101),
                }
            }
            if let Ok(parsed) = parse(&t) {
                let _ = parsed.to_string();
                let _ = parsed.argument_names();
            }
        }

        #[test]
        fn arbitrary_text_never_panics(t in "\\PC{0,60}") {
            let d = dict();
            let _ = evaluate(&d, &t, ParseMode::Halt);
            let _ = evaluate(&d, &t, ParseMode::Resilient);
        }

        #[test]
        fn text_without_a_template_comes_back_byte_for_byte(t in "\\PC{0,80}") {
            prop_assume!(!t.contains("#{"));
            let d = dict();
            for mode in [ParseMode::Halt, ParseMode::Resilient] {
                let e = evaluate(&d, &t, mode).unwrap();
                prop_assert_eq!(e.output.as_deref(), Some(t.as_str()));
                prop_assert!(e.error.is_none());
            }
        }
    }
}
