//! Unit tests of the script module: syntax, parameters, modules, payload, and running real
//! bash and Python scripts through `run_script` with a captured log.

#![allow(clippy::print_stdout)] // SKIP lines and measurements are printed on purpose

use super::*;
use crate::script::interpreter::find_program;

#[test]
fn syntax_from_extension() {
    let cases = [
        ("a.sh", Some(ScriptSyntax::Bash)),
        ("A.SH", Some(ScriptSyntax::Bash)),
        ("x/y.ps1", Some(ScriptSyntax::PowerShell)),
        ("z.py", Some(ScriptSyntax::Python)),
        ("z.csx", None),
        ("noext", None),
    ];
    for (path, expected) in cases {
        assert_eq!(ScriptSyntax::from_path(Path::new(path)), expected, "{path}");
    }
    assert_eq!(ScriptSyntax::preferred_order().iter().map(|s| s.extension()).collect::<Vec<_>>(), ["sh", "py", "ps1"]);
}

#[test]
fn parameters_split_like_a_shell() {
    let cases: [(&str, &[&str]); 6] = [
        ("a b  c", &["a", "b", "c"]),
        (r#""a b" 'c d'"#, &["a b", "c d"]),
        (r#""say \"hi\"" it's"#, &[r#"say "hi""#, "its"]),
        (r"a\ b", &["a b"]),
        ("''", &[""]),
        ("-Name 'O''Brien'", &["-Name", "OBrien"]),
    ];
    for (input, expected) in cases {
        assert_eq!(python::split_parameters(input), expected, "{input}");
    }
}

#[test]
fn payload_is_name_nul_value_nul_with_evaluated_values() {
    let mut vars = VariableDictionary::new();
    vars.set("A", "1".to_string());
    vars.set("B", None);
    vars.set("C", "x\0y".to_string());
    assert_eq!(variables_payload(&vars).unwrap(), b"A\x001\x00B\x00\x00C\x00xy\x00");
}

#[test]
fn modules_of_the_matching_language_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = VariableDictionary::new();
    vars.set("Octopus.Script.Module[My Lib]", "say() { echo hi; }".to_string());
    vars.set("Octopus.Script.Module.Language[My Lib]", "Bash".to_string());
    vars.set("Octopus.Script.Module[Ps]", "function x {}".to_string());
    let bash = write_script_modules(dir.path(), ScriptSyntax::Bash, &vars).unwrap();
    assert_eq!(bash, vec![modules::ScriptModule { name: "My Lib".into(), path: dir.path().join("MyLib.sh") }]);
    let ps = write_script_modules(dir.path(), ScriptSyntax::PowerShell, &vars).unwrap();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].name, "Ps");
    let name = ps[0].path.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("Library_Ps_") && name.ends_with(".psm1"), "{name}");
    assert!(write_script_modules(dir.path(), ScriptSyntax::Python, &vars).unwrap().is_empty());
}

#[test]
fn powershell_local_variables_follow_the_reference_naming() {
    let names =
        ["Foo_bar", "Octopus.Action.Name", "Octopus.Action[Step].Output.X", "日本.名前", "a😀b", "...", "Plain"];
    let locals = powershell::local_variables(names.into_iter());
    let got: Vec<(&str, &str)> = locals.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    assert_eq!(
        got,
        [
            ("Foobar", "Foo_bar"),
            ("Foo_bar", "Foo_bar"),
            ("OctopusActionName", "Octopus.Action.Name"),
            ("日本名前", "日本.名前"),
            // .NET sees a character outside the BMP as two surrogates, neither a letter.
            ("ab", "a😀b"),
            ("Plain", "Plain"),
        ]
    );
}

#[test]
fn powershell_values_are_single_quoted_literals() {
    assert_eq!(powershell::escape("it's"), "it''s");
    assert_eq!(powershell::escape("‘curly’"), "‘‘curly’’");
    assert_eq!(powershell::escape("$(x) `n \"q\""), "$(x) `n \"q\"");
    let args = powershell::arguments(Path::new("/s/it's/Bootstrap.ps1"), true);
    assert_eq!(args[..6], ["-NoProfile", "-NoLogo", "-NonInteractive", "-ExecutionPolicy", "Unrestricted", "-Command"]);
    assert_eq!(
        args[6],
        "Try {. {. '/s/it''s/Bootstrap.ps1'; if ((test-path variable:global:lastexitcode)) { exit $LastExitCode }};} catch { throw }"
    );
    assert_eq!(powershell::arguments(Path::new("/b.ps1"), false)[0], "-NoLogo");
}

/// The typed target helpers: one `New-<Name>` per registration, a parameter that depends on
/// another written only when that one is set (string: not empty, switch: on, int: > 0).
#[test]
fn powershell_script_functions_are_generated_from_the_registration() {
    let json = r#"[{"Name":"OctopusWebTarget","Description":"","ServiceMessageName":"create-webtarget",
        "Parameters":{"url":{"Type":0},"secure":{"Type":1},"port":{"Type":2,"DependsOn":"secure"},"note":{"Type":"String","DependsOn":"url"}}}]"#;
    let text = powershell::script_functions(json).unwrap();
    let expected = "function New-OctopusWebTarget([string] $url, [switch] $secure, [int] $port, [string] $note)\n{\n\t$parameters = \"\"\n\
        \t$tempParameter = Convert-ToServiceMessageParameter -name \"url\" -value $url\n\t$parameters = $parameters, $tempParameter -join ' '\n\
        \t$tempParameter = Convert-ToServiceMessageParameter -name \"secure\" -value $secure\n\t$parameters = $parameters, $tempParameter -join ' '\n\
        \tif ($secure -eq $true)\n\t{\n\
        \t\t$tempParameter = Convert-ToServiceMessageParameter -name \"port\" -value $port\n\t\t$parameters = $parameters, $tempParameter -join ' '\n\t}\n\
        \tif (![string]::IsNullOrEmpty($url))\n\t{\n\
        \t\t$tempParameter = Convert-ToServiceMessageParameter -name \"note\" -value $note\n\t\t$parameters = $parameters, $tempParameter -join ' '\n\t}\n\
        \tWrite-Host \"##octopus[create-webtarget $($parameters)]\"\n}\n\n";
    assert_eq!(text, expected);
    for (bad, reason) in [
        ("{}", "not a JSON array"),
        (r#"[{"Name":"X; rm -rf /","ServiceMessageName":"m"}]"#, "'X; rm -rf /' is not an identifier"),
        (r#"[{"Name":"X","ServiceMessageName":"m]'"}]"#, "service message name 'm]'' of New-X"),
        (r#"[{"Name":"X","ServiceMessageName":"m","Parameters":{"$(x)":{"Type":0}}}]"#, "'$(x)' of New-X"),
        (r#"[{"Name":"X","ServiceMessageName":"m","Parameters":{"a":{"Type":7}}}]"#, "type 7 of parameter 'a'"),
    ] {
        let err = powershell::script_functions(bad).unwrap_err().to_string();
        assert!(err.contains("Octopus.Sashimi.ScriptFunctions.Registration") && err.contains(reason), "{bad}: {err}");
    }
}

fn run(file: &str, body: &str, params: Option<&str>, vars: &mut VariableDictionary) -> (ScriptOutcome, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join(file);
    std::fs::write(&script, body).unwrap();
    let (log, out, err) = Log::capture();
    let outcome = run_script(&script, params, vars, &log).unwrap();
    (outcome, out.contents(), err.contents())
}

#[test]
fn bash_reads_variables_and_sets_outputs() {
    let mut vars = VariableDictionary::new();
    vars.set("Greeting", "hello 'world' $(date) `id`\nline two é".to_string());
    vars.set("Octopus.Action.Name", "Step".to_string());
    let body = r#"set -euo pipefail
printf '[%s]\n' "$(get_octopusvariable Greeting)"
printf '<%s>\n' "${octopus_parameters[Greeting]}"
printf '{%s}\n' "$(get_octopusvariable greeting)"
printf '(%s)\n' "$(get_octopusvariable Missing)"
set_octopusvariable Out "v1"
echo "args:$#:$1:$2"
"#;
    let (outcome, out, err) = run("s.sh", body, Some(r#""a b" 'c'"#), &mut vars);
    assert_eq!(outcome, ScriptOutcome { exit_code: 0, had_error_output: false }, "{out}\n{err}");
    assert!(out.contains("[hello 'world' $(date) `id`\nline two é]"), "{out}");
    assert!(out.contains("<hello 'world'"), "{out}");
    assert!(out.contains("{hello 'world'"), "{out}");
    assert!(out.contains("()"), "{out}");
    assert!(out.contains("args:2:a b:c"), "{out}");
    assert_eq!(vars.get_raw("Out"), Some("v1"));
    assert_eq!(vars.get_raw("Octopus.Action[Step].Output.Out"), Some("v1"));
}

#[test]
fn python_reads_variables_and_sets_outputs() {
    if find_program("python3").is_none() {
        crate::test_support::skip("python3 is not installed");
        return;
    }
    let mut vars = VariableDictionary::new();
    vars.set("Greeting", "hi \"there\" é".to_string());
    let body = r#"import sys
print("[" + get_octopusvariable("Greeting") + "]")
print("[" + get_octopusvariable("greeting") + "]")
set_octopusvariable("Out", "v2")
print("args:" + "|".join(sys.argv[1:]))
"#;
    let (outcome, out, err) = run("s.py", body, Some(r#""a b" c"#), &mut vars);
    assert_eq!(outcome.exit_code, 0, "{out}\n{err}");
    assert_eq!(out.matches("[hi \"there\" é]").count(), 2, "{out}");
    assert!(out.contains("args:a b|c"), "{out}");
    assert_eq!(vars.get_raw("Out"), Some("v2"));
}

/// Variables.sh is data only: sourcing it sets exactly the given keys and values, byte for
/// byte, and runs nothing, whatever they contain.
#[test]
fn bash_variables_source_round_trips_and_runs_nothing() {
    use rand::RngExt as _;
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("pwned");
    let canary_cmd = format!("$(touch {})", canary.display());
    let mut values: Vec<String> = [
        "plain",
        "",
        "it's",
        "''",
        "\\",
        "\\'",
        "a]b",
        "*",
        "@",
        "$HOME ${HOME} `id`",
        "line\nbreak\r\n",
        "\t\u{1}\u{1b}[31m\u{7f}",
        "é ✓ \u{1F600}",
        "'$'\\x41'",
        "trailing backslash\\",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    values.push(canary_cmd.clone());
    values.push(format!("'{canary_cmd}'"));
    let mut rng = rand::rng();
    let alphabet: Vec<char> = "ab'\"\\$`()[]{}*@!#;&|<>\n\r\t \u{1}\u{7f}é✓".chars().collect();
    for _ in 0..200 {
        let len = rng.random_range(0..12);
        values.push((0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect());
    }
    let pairs: Vec<(String, String)> =
        values.iter().enumerate().map(|(i, v)| (format!("k{i}{v}"), v.clone())).collect();
    let borrowed: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let file = dir.path().join("Variables.sh");
    std::fs::write(&file, bash::variables_source(&borrowed)).unwrap();
    let dump = std::process::Command::new("bash")
        .arg("-c")
        .arg("set -eu; declare -A octopus_parameters; source \"$1\"; for k in \"${!octopus_parameters[@]}\"; do printf '%s\\0%s\\0' \"$k\" \"${octopus_parameters[$k]}\"; done")
        .arg("bash")
        .arg(&file)
        .output()
        .unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let text = String::from_utf8(dump.stdout).unwrap();
    let mut parts = text.split('\0');
    let mut got = std::collections::BTreeMap::new();
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        got.insert(k.to_string(), v.to_string());
    }
    let expected: std::collections::BTreeMap<String, String> = pairs.into_iter().collect();
    assert_eq!(got, expected);
    assert!(!canary.exists(), "sourcing the variables ran a command");
}

#[test]
fn bash_helpers_work_with_no_variables_under_set_u() {
    let mut vars = VariableDictionary::new();
    let (outcome, out, err) = run(
        "s.sh",
        "set -euo pipefail\nx=$(get_octopusvariable Missing)\necho \"[$x] ${#octopus_parameters[@]}\"\n",
        None,
        &mut vars,
    );
    assert_eq!(outcome.exit_code, 0, "{out}\n{err}");
    assert!(out.contains("[] 0\n"), "{out}");
}

/// Each message is built from the variant's data, in the words callers and tests expect.
#[test]
fn error_messages_name_their_data() {
    let script = PathBuf::from("/w/s.sh");
    let cases = [
        (Error::ScriptNotFound { path: script.clone() }, "Could not find the script file '/w/s.sh'"),
        (
            Error::UnknownSyntaxName { name: "Cobol".to_string(), variable: variable_names::SYNTAX },
            "Unknown script syntax 'Cobol' in Octopus.Action.Script.Syntax",
        ),
        (
            Error::InterpreterMissing {
                program: "python3",
                description: "Python 3 (python3)",
                install: " Install it.",
                syntax: ScriptSyntax::Python,
                script: PathBuf::from("/w/s.py"),
            },
            "Python 3 (python3) was not found on the PATH; it is needed to run '/w/s.py'. Install it.",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
        assert_eq!(crate::error::code_of(&error), 1, "{message}");
    }
}

#[test]
fn a_missing_script_and_an_unknown_syntax_name_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = Log::capture();
    let missing = dir.path().join("missing.sh");
    let err = run_script(&missing, None, &mut VariableDictionary::new(), &log).unwrap_err();
    assert!(matches!(&err, Error::ScriptNotFound { path } if *path == missing), "{err}");
    let mut vars = VariableDictionary::new();
    vars.set(variable_names::SCRIPT_BODY, "echo hi".to_string());
    vars.set(variable_names::SYNTAX, "Cobol".to_string());
    let err = inline_script(&vars).unwrap_err();
    assert!(matches!(&err, Error::UnknownSyntaxName { name, .. } if name == "Cobol"), "{err}");
}

/// Each placeholder is filled once: a path that happens to hold `{{...}}` stays as it is.
#[test]
fn powershell_bootstrap_placeholders_are_filled_in_one_pass() {
    let text = powershell::bootstrap_text(&powershell::Bootstrap {
        variables_file: Path::new("/s/Variables.bin"),
        locals_file: Path::new("/s/Locals.bin"),
        script: Path::new("/w/{{PARAMETERS}}.ps1"),
        parameters: Some("-Name 'x'"),
        modules: &[],
        functions: "",
        psdebug: None,
    });
    assert!(text.contains("$__octopusScript = '/w/{{PARAMETERS}}.ps1'"), "{text}");
    assert!(text.contains("$__octopusScriptParameters = '-Name ''x'''"), "{text}");
    assert!(!text.contains("{{SCRIPT}}") && !text.contains("{{PSDEBUG"), "every placeholder is filled");
}
