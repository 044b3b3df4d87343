//! PowerShell through the real binary under a real `pwsh`: `run-script` with files, inline
//! bodies, parameters and script modules; every helper of the bootstrap and the service
//! messages it writes; exit codes; variables as data; masking; the PowerShell options;
//! `deploy-package` with `.ps1` convention scripts. What the reference's own PowerShell
//! tests assert (output, variables, output variables, artifacts, parameters, dot-sourcing,
//! paths with `$` and `'`, invalid syntax, exit codes, modules), in our own scripts.
//!
//! Each test starts with [`util::pwsh_available`]: without pwsh it skips, except under CI,
//! where it fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::util::{self, Run, TestEnv};

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// `##octopus[name a='<base64>' ...]`, as the bootstrap's helpers write it.
fn message(name: &str, attributes: &[(&str, &str)]) -> String {
    let attributes: String = attributes.iter().map(|(k, v)| format!(" {k}='{}'", b64(v))).collect();
    format!("##octopus[{name}{attributes}]")
}

/// Writes `name` (creating parents) and runs it with `run-script`, the variables and any
/// further arguments.
fn run_ps(env: &TestEnv, name: &str, body: &str, vars: &[(&str, &str, bool)], extra: &[&str]) -> Run {
    env.write(name, body);
    let file = env.variables("vars.json", vars);
    let mut args =
        vec!["run-script".to_string(), format!("--script={name}"), format!("--variables={}", file.display())];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.cmd(&args).run()
}

/// The files directly in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn hello_logs_the_version_table_and_the_pwsh_process() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let run = run_ps(&env, "Hello.ps1", "Write-Host 'Hello!'", &[], &[]);
    run.success().stdout_has("\nHello!\n");
    let lines: Vec<&str> = run.stdout.lines().map(str::trim_end).collect();
    assert!(lines.contains(&"PSEdition                      Core"), "{}", run.stdout);
    let host = lines.iter().find(|l| l.trim_start().starts_with("HostProcess: ")).expect("HostProcess line");
    let host = host.trim_start().strip_prefix("HostProcess: pwsh (").and_then(|r| r.strip_suffix(')'));
    assert!(host.is_some_and(|pid| pid.parse::<u32>().is_ok()), "{}", run.stdout);
    assert_eq!(run.output_variable("Octopus.Action.Script.ExitCode").as_deref(), Some("0"));
    // Suppressed on request, as the reference.
    let quiet = run_ps(
        &env,
        "Hello.ps1",
        "Write-Host 'Hello!'",
        &[("Octopus.Action.Script.SuppressEnvironmentLogging", "True", false)],
        &[],
    );
    quiet.success().stdout_has("Hello!").output_lacks("PowerShell Environment Information");
}

#[test]
fn exit_codes_follow_the_reference() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let cases: [(&str, i32, &[&str]); 10] = [
        ("Write-Host 'Hello!'; exit 2", 2, &[]),
        ("bash -c 'exit 3'", 3, &[]),
        ("bash -c 'exit 4'; Write-Host 'a cmdlet after the native command'", 4, &[]),
        ("throw 'it broke'", 1, &["OperationStopped: it broke", "+ throw 'it broke'", "at <ScriptBlock>, "]),
        // $ErrorActionPreference is Stop, as the reference leaves it: Write-Error ends the script.
        ("Write-Error 'Hello-Error!'; Write-Host unreachable", 1, &["NotSpecified: Hello-Error!"]),
        ("$ErrorActionPreference = 'Continue'; Write-Error 'Hello-Error!'; Write-Host reached", 0, &["Hello-Error!"]),
        ("Get-ChildItem a b c d e", 1, &["A positional parameter cannot be found that accepts"]),
        ("Fail-Step 'It broke'", 255, &[]),
        ("Fail-Step", 255, &[]),
        ("[Console]::Error.WriteLine('error')", 0, &["error"]),
    ];
    for (body, code, stderr) in cases {
        let run = run_ps(&env, "Exit.ps1", body, &[], &[]);
        run.code(code).output_lacks("unreachable");
        for needle in stderr {
            run.stderr_has(needle);
        }
        assert_eq!(run.output_variable("Octopus.Action.Script.ExitCode"), Some(code.to_string()), "{body}");
    }
    let run = run_ps(&env, "Exit.ps1", "Fail-Step 'It broke'", &[], &[]);
    run.stdout_has(&message("resultMessage", &[("message", "It broke")]));
    run_ps(&env, "Exit.ps1", "Fail-Step", &[], &[]).output_lacks("resultMessage");
    run_ps(&env, "Exit.ps1", "$ErrorActionPreference = 'Continue'; Write-Error 'E'; Write-Host reached", &[], &[])
        .stdout_has("reached");
    // Error output fails the step only when asked to.
    let fail_on_stderr = [("Octopus.Action.FailScriptOnErrorOutput", "True", false)];
    run_ps(&env, "Exit.ps1", "[Console]::Error.WriteLine('error')", &fail_on_stderr, &[]).code(255);
    run_ps(&env, "Exit.ps1", "Write-Host 'Hello!'", &fail_on_stderr, &[]).success();
}

#[test]
fn a_syntax_error_names_its_line_and_every_error() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let run = run_ps(&env, "InvalidSyntax.ps1", "Write-Host 'not reached'\n$#FC(@UCJ@(#U", &[], &[]);
    run.code(1)
        .stderr_has("ParserError:")
        .stderr_has(&format!("At {}:2 char:10", env.path("InvalidSyntax.ps1").display()))
        .stderr_has("+ $#FC(@UCJ@(#U")
        .stderr_has("Unexpected token '@(' in expression or statement.")
        .stderr_has("Missing closing ')' in expression.")
        .stderr_has("The splatting operator '@' cannot be used to reference variables in an expression. '@UCJ' can be used only as an argument to a command. To reference variables in an expression use '$UCJ'.")
        .stderr_has("at <ScriptBlock>, ")
        .output_lacks("not reached");
}

#[test]
fn output_streams_and_levels() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let body = r#"
Write-Host "Hello, write-host!"
Write-Verbose "Hello, write-verbose!"
Write-Output "Hello, write-output!"
Write-Warning "Hello, write-warning!"
Write-Warning "This warning should not appear in logs!" -WarningAction SilentlyContinue
$saved = $WarningPreference
$WarningPreference = 'SilentlyContinue'
Write-Warning "This warning should not appear in logs!"
$WarningPreference = $saved
Write-Highlight "Hello, highlight!"
Write-Wait "Hello, wait!"
Write-Debug "Hello, debug!"
"piped one", "piped two" | Write-Verbose
Write-Error "Hello-Error!"
"#;
    let run = run_ps(&env, "Output.ps1", body, &[], &[]);
    run.code(1)
        .stdout_has("Hello, write-host!\n")
        .stdout_has("Hello, write-output!\n")
        .stdout_has("##octopus[stdout-verbose]\nHello, write-verbose!\n")
        .stdout_has("##octopus[stdout-warning]\nHello, write-warning!\n")
        .stdout_has("##octopus[stdout-highlight]\nHello, highlight!\n")
        .stdout_has("##octopus[stdout-wait]\nHello, wait!\n")
        // Calamari writes a level message only when the level changes.
        .stdout_has("##octopus[stdout-verbose]\nHello, debug!\npiped one\npiped two\n##octopus[stdout-default]")
        .stderr_has("Hello-Error!")
        .output_lacks("This warning should not appear in logs!");
    // No ANSI colour sequences reach the log.
    assert!(!run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'), "{run:?}");
}

#[test]
fn helpers_write_the_reference_service_messages() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    env.write("present.txt", "123456789");
    for i in 0..3 {
        env.write(format!("piped/CanCreateArtifactPiped{i}.artifact"), "");
    }
    env.write("manifest.yaml", "a: 1\n---   \nb: 2\n");
    let body = r#"
Set-OctopusVariable -Name "TestA" -Value "World!"
Set-OctopusVariable -Name "TestC" -Value "Hello?!@CW)*F@!(#*DDOLDSKC<>'"
Set-OctopusVariable -Name "SecretSquirrel" -Value "X marks the spot" -Sensitive
$x = Set-OctopusVariable -Name "TestD" -Value "Hello"
Set-EnvironmentState -Key "MyKey" -Value "MyValue"
Set-EnvironmentState -Key "SecretKey" -Value "Secret Value" -Sensitive
Set-EnvironmentUrl -Key "MyEnvironment" -Url "https://my-environment.example.com"
New-OctopusArtifact -Path present.txt
New-OctopusArtifact -Path present.txt -Name renamed.txt
New-OctopusArtifact -Path '\tmp\calamari\File.txt'
Get-ChildItem -Path piped -Filter *.artifact | New-OctopusArtifact
Update-Progress 50 "Half Way"
"Half Way" | Update-Progress 50
Report-KubernetesManifest -manifest "x: 1`n---`ny: 2`n---`n---`n"
"z: 3" | Report-KubernetesManifest -namespace "my"
Report-KubernetesManifestFile -path manifest.yaml -namespace ns1
Report-KubernetesManifestFile -path missing.yaml
Remove-OctopusTarget -targetIdOrName "web-01"
New-OctopusTarget -Name "web" -TargetId "t-1" -Inputs '{"a":1}' -Roles "web,api"
New-OctopusTarget -Name "web" -TargetId "t-1" -Inputs '{}' -Roles "web" -WorkerPoolIdOrName "pool" -UpdateIfExisting
Write-Host (Convert-ToServiceMessageParameter -name "p" -value "v")
"#;
    let run = run_ps(&env, "Helpers.ps1", body, &[], &[]);
    run.success();
    let vars = run.output_variables();
    for (name, value) in [
        ("TestA", "World!"),
        ("TestC", "Hello?!@CW)*F@!(#*DDOLDSKC<>'"),
        ("SecretSquirrel", "X marks the spot"),
        ("TestD", "Hello"),
    ] {
        assert!(vars.contains(&(name.to_string(), value.to_string())), "{name}: {vars:?}");
    }
    assert!(
        run.stdout.lines().any(|l| l.contains(&format!("name=\"{}\"", b64("SecretSquirrel")))
            && l.contains(&format!("sensitive=\"{}\"", b64("True")))),
        "{}",
        run.stdout
    );
    let present = env.path("present.txt").canonicalize().unwrap();
    let present = present.to_str().unwrap();
    for expected in [
        message("set-environmentstate", &[("key", "MyKey"), ("value", "MyValue"), ("type", "State")]),
        message(
            "set-environmentstate",
            &[("key", "MyEnvironment"), ("value", "https://my-environment.example.com"), ("type", "Url")],
        ),
        message("createArtifact", &[("path", present), ("name", "present.txt"), ("length", "9")]),
        message("createArtifact", &[("path", present), ("name", "renamed.txt"), ("length", "9")]),
        // The reference's test: on Linux the backslashes become a full path, the name stays.
        message(
            "createArtifact",
            &[("path", "/tmp/calamari/File.txt"), ("name", r"\tmp\calamari\File.txt"), ("length", "0")],
        ),
        message("progress", &[("percentage", "50"), ("message", "Half Way")]),
        message("k8s-manifest-applied", &[("manifest", "x: 1\n")]),
        message("k8s-manifest-applied", &[("manifest", "y: 2\n")]),
        message("k8s-manifest-applied", &[("manifest", "z: 3"), ("ns", "my")]),
        message("k8s-manifest-applied", &[("manifest", "a: 1\n"), ("ns", "ns1")]),
        message("k8s-manifest-applied", &[("manifest", "b: 2\n"), ("ns", "ns1")]),
        message("delete-target", &[("machine", "web-01")]),
        format!(
            "##octopus[createStepPackageTarget {}]",
            [
                ("name", "web"),
                ("targetId", "t-1"),
                ("inputs", "{\"a\":1}"),
                ("octopusRoles", "web,api"),
                ("octopusDefaultWorkerPoolIdOrName", ""),
                ("updateIfExisting", "False"),
            ]
            .map(|(k, v)| format!(" {k}='{}'", b64(v)))
            .concat()
        ),
        format!(
            "##octopus[createStepPackageTarget {}]",
            [
                ("name", "web"),
                ("targetId", "t-1"),
                ("inputs", "{}"),
                ("octopusRoles", "web"),
                ("octopusDefaultWorkerPoolIdOrName", "pool"),
                ("updateIfExisting", "True"),
            ]
            .map(|(k, v)| format!(" {k}='{}'", b64(v)))
            .concat()
        ),
        format!("p='{}'", b64("v")),
    ] {
        assert!(run.stdout.lines().any(|l| l == expected), "stdout lacks the line {expected}\n{}", run.stdout);
    }
    // Sensitive messages are written once by Calamari itself, unmasked, in its own quoting.
    let sensitive_state = format!(
        "##octopus[set-environmentstate key=\"{}\" value=\"{}\" sensitive=\"{}\" type=\"{}\"]",
        b64("SecretKey"),
        b64("Secret Value"),
        b64("True"),
        b64("State")
    );
    assert!(run.stdout.contains(&sensitive_state), "{}", run.stdout);
    for i in 0..3 {
        let path = env.path(format!("piped/CanCreateArtifactPiped{i}.artifact")).canonicalize().unwrap();
        let name = format!("CanCreateArtifactPiped{i}.artifact");
        run.stdout_has(&message(
            "createArtifact",
            &[("path", path.to_str().unwrap()), ("name", &name), ("length", "0")],
        ));
    }
    assert_eq!(run.stdout.matches(&message("progress", &[("percentage", "50"), ("message", "Half Way")])).count(), 2);
    assert_eq!(run.stdout.matches("k8s-manifest-applied").count(), 5, "empty documents are skipped");
    run.stdout_has("There is no file at '\\tmp\\calamari\\File.txt' right now. Writing the service message just in case the file is available when the artifacts are collected at a later point in time.")
        .stdout_has("Artifact renamed.txt will be collected from ")
        .stdout_has("No Kubernetes manifest file was found at 'missing.yaml'.");
}

#[test]
fn variables_arrive_as_data_with_the_reference_local_names() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let marker = env.path("pwned");
    let hostile =
        format!("'; Set-Content '{0}' x; '\" $(Set-Content '{0}' y) `$x @(1) \r\nsecond line", marker.display());
    let vars = [
        ("Variable1", "ABC", false),
        ("Variable2", "DEF", false),
        ("Variable3", "GHI", false),
        ("Foo_bar", "Hello", false),
        ("Host", "Never", false),
        ("Octopus.Action[Step].Output.X", "indexed", false),
        ("Hostile", hostile.as_str(), false),
        ("Octopus.Script.Module[Lib]", "function Lib {}", false),
    ];
    let body = r#"
Write-Host "V1=" $Variable1
Write-Host "V2=" $Variable2
Write-Host "V3=" $OctopusParameters["variable3"]
Write-Host "FooBar=" $foobar
Write-Host "Foo_Bar=" $Foo_Bar
Write-Host "H=" $Host.Name
Write-Host "Indexed=" $OctopusParameters['Octopus.Action[Step].Output.X']
Write-Host "Type=" $OctopusParameters.GetType().FullName
Write-Host "Modules in parameters=" $OctopusParameters.ContainsKey('Octopus.Script.Module[Lib]')
[Console]::Out.WriteLine("Hostile=[" + $Hostile + "]")
[Console]::Out.WriteLine("Same=" + ($Hostile -ceq $OctopusParameters['Hostile']))
"#;
    let run = run_ps(&env, "PrintVariables.ps1", body, &vars, &[]);
    run.success()
        .stdout_has("V1= ABC\n")
        .stdout_has("V2= DEF\n")
        .stdout_has("V3= GHI\n")
        .stdout_has("FooBar= Hello\n")
        .stdout_has("Foo_Bar= Hello\n")
        .stdout_has("H= ConsoleHost\n")
        .stdout_has("Indexed= indexed\n")
        .stdout_has("Type= System.Collections.Generic.Dictionary`2[[System.String")
        .stdout_has("Modules in parameters= False\n")
        .stdout_has("Same=True\n");
    let hostile_start = hostile.replace("\r\n", "\n");
    let first_line = hostile_start.lines().next().unwrap();
    run.stdout_has(&format!("Hostile=[{first_line}"));
    assert!(!marker.exists(), "a variable's value ran as code");
}

#[test]
fn a_thousand_variables_are_all_readable() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let owned: Vec<(String, String)> = (0..1000).map(|i| (format!("Project.Var{i}"), format!("value-{i}"))).collect();
    let vars: Vec<(&str, &str, bool)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str(), false)).collect();
    let body = r#"
$missing = 0
for ($i = 0; $i -lt 1000; $i++) { if ($OctopusParameters["Project.Var$i"] -ne "value-$i") { $missing++ } }
Write-Host "missing=$missing local=$ProjectVar999"
"#;
    run_ps(&env, "Many.ps1", body, &vars, &[]).success().stdout_has("missing=0 local=value-999\n");
}

#[test]
fn sensitive_values_are_masked_in_every_stream() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let secret = "s3cr3t-P@ss";
    let body = r#"
Write-Host "host $Password"
Write-Output "output $Password"
[Console]::Error.WriteLine("stderr $Password")
Write-Warning "warning $Password"
Write-Verbose "verbose $Password"
Write-Debug "debug $Password"
$ErrorActionPreference = 'Continue'
Write-Error "error record $Password"
$ErrorActionPreference = 'Stop'
throw "terminating $Password"
"#;
    let run = run_ps(&env, "Mask.ps1", body, &[("Password", secret, true)], &[]);
    run.code(1).output_lacks(secret);
    // A secret written into the script itself (as substitution does) is masked where the
    // error record quotes the line.
    let literal = run_ps(&env, "Literal.ps1", &format!("throw 'no {secret}'"), &[("Password", secret, true)], &[]);
    literal.code(1).output_lacks(secret).stderr_has("+ throw 'no ********'");
    for stream in ["host", "output", "warning", "verbose", "debug"] {
        run.stdout_has(&format!("{stream} ********"));
    }
    // The error record's position text quotes the line holding the variable's name only;
    // the messages themselves are masked.
    run.stderr_has("stderr ********").stderr_has("error record ********").stderr_has("terminating ********");
}

#[test]
fn script_parameters_quoted_switches_and_positional() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let body = "param([string]$Parameter0, [string]$Parameter1, [switch]$Flag, [int]$Count)\nWrite-Host \"Parameters $Parameter0$Parameter1 flag=$Flag count=$Count\"";
    let params = "-Parameter0 \"Para meter0\" -Parameter1 'Para meter1' -Flag -Count 3";
    run_ps(&env, "Parameters.ps1", body, &[], &[&format!("--scriptParameters={params}")])
        .success()
        .stdout_has("Parameters Para meter0Para meter1 flag=True count=3\n");
    // From the variable, and positional.
    run_ps(&env, "Parameters.ps1", body, &[("Octopus.Action.Script.ScriptParameters", "'a b' c", false)], &[])
        .success()
        .stdout_has("Parameters a bc flag=False count=0\n");
    // Parameters that do not parse: a clear error, and the script never starts.
    let marker = env.path("started");
    let body = format!("param($a) Set-Content '{}' started", marker.display());
    let run = run_ps(&env, "Parameters.ps1", &body, &[], &["--scriptParameters=-a \"unterminated"]);
    run.code(1)
        .stderr_has(&format!(
            "The script parameters for '{}' are not valid PowerShell",
            env.path("Parameters.ps1").display()
        ))
        .stderr_has("The string is missing the terminator")
        .stderr_has("Script parameters: -a \"unterminated");
    assert!(!marker.exists(), "the script ran with parameters that do not parse");
}

#[test]
fn script_modules_are_imported_and_a_broken_one_stops_the_step() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let vars = [
        ("Octopus.Script.Module[Foo]", "function SayHello() { Write-Host \"Hello from module!\" }", false),
        ("Octopus.Script.Module[Bash Lib]", "say() { echo hi; }", false),
        ("Octopus.Script.Module.Language[Bash Lib]", "Bash", false),
    ];
    let before = {
        env.write("UseModule.ps1", "SayHello");
        listing(env.root())
    };
    let run = run_ps(&env, "UseModule.ps1", "SayHello", &vars, &[]);
    run.success()
        .stdout_has("Hello from module!\n")
        .stdout_has("Writing script module 'Foo' as PowerShell module Library_Foo_")
        .stdout_has("Importing Script Module 'Foo' from '");
    let mut after = listing(env.root());
    after.retain(|n| n != "vars.json");
    assert_eq!(after, before, "the module files are removed after the run");

    let marker = env.path("script-ran");
    let body = format!("Set-Content '{}' x\nSayHello", marker.display());
    let broken = [("Octopus.Script.Module[Foo]", "function SayHello() { Write-Host \"Hello from module! }", false)];
    let run = run_ps(&env, "UseModule.ps1", &body, &broken, &[]);
    run.code(1)
        .stderr_has(&format!("Failed to import Script Module 'Foo' from '{}", env.path("Library_Foo_").display()))
        .stderr_has("ParserError:")
        .stderr_has("+ function SayHello() { Write-Host \"Hello from module! }")
        .stderr_has("The string is missing the terminator: \".")
        .stderr_has("Missing closing '}' in statement block")
        .stderr_has("at Import-ScriptModule, ")
        .stderr_has("at <ScriptBlock>, ");
    assert!(!marker.exists(), "the script ran after its module failed to import");
}

#[test]
fn dot_sourcing_and_paths_with_dollar_quote_and_spaces() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    env.write("Path With $/MyFunctions.ps1", "function Say-Hello { Write-Host 'Hello!' }");
    let body = "$here = Split-Path -Parent $MyInvocation.MyCommand.Path\n. $here\\MyFunctions.ps1\nSay-Hello";
    run_ps(&env, "Path With $/CanDotSource.ps1", body, &[], &[]).success().stdout_has("Hello!\n");
    run_ps(&env, "Path With '/Path'With$Quote.ps1", "Write-Host \"Hello from a path containing a '\"", &[], &[])
        .success()
        .stdout_has("Hello from a path containing a '\n");
    // A script with a BOM and a non-ASCII character reads as UTF-8.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(
        "[System.Text.Encoding]::UTF8.GetBytes('\u{2013}') | ForEach-Object { Write-Host $_ }".as_bytes(),
    );
    env.write("ScriptWithBOM.ps1", &bom);
    let file = env.variables("none.json", &[]);
    env.cmd(&["run-script", "--script=ScriptWithBOM.ps1", &format!("--variables={}", file.display())])
        .run()
        .success()
        .stdout_has("226\n128\n147\n");
}

#[test]
fn inline_scripts_and_the_preferred_syntax() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let vars = [
        (
            "Octopus.Action.Script.ScriptBody",
            "Write-Host \"The variable is ##{Octopus.Machine.Name}\"\nWrite-Host \"Evaluated: '#{Octopus.Machine.Name}'\"",
            false,
        ),
        ("Octopus.Action.Script.Syntax", "PowerShell", false),
        ("Octopus.Machine.Name", "Foo", false),
    ];
    let file = env.variables("v.json", &vars);
    env.cmd(&["run-script", &format!("--variables={}", file.display())])
        .run()
        .success()
        .stdout_has("The variable is #{Octopus.Machine.Name}\n")
        .stdout_has("Evaluated: 'Foo'\n");
    assert!(!env.path("Script.ps1").exists(), "the inline script is removed");
    // A script file given with --script is not substituted.
    run_ps(&env, "File.ps1", "Write-Host \"Hello #{Octopus.Machine.Name}!\"", &vars[2..], &[])
        .success()
        .stdout_has("Hello #{Octopus.Machine.Name}!\n");
    // Bodies by syntax: bash is preferred on Linux.
    let by_syntax = [
        ("Octopus.Action.Script.ScriptBody[PowerShell]", "Write-Host 'Hello PowerShell'", false),
        ("Octopus.Action.Script.ScriptBody[Bash]", "echo Hello Bash", false),
    ];
    let file = env.variables("v2.json", &by_syntax);
    let run = env.cmd(&["run-script", &format!("--variables={}", file.display())]).run();
    run.success().stdout_has("Hello Bash\n").output_lacks("Hello PowerShell");
    let file = env.variables("v3.json", &by_syntax[..1]);
    env.cmd(&["run-script", &format!("--variables={}", file.display())])
        .run()
        .success()
        .stdout_has("Hello PowerShell\n");
}

/// The script reads its own pwsh command line from /proc.
const PRINT_COMMAND_LINE: &str =
    "Write-Host ('cmdline: ' + [System.IO.File]::ReadAllText(\"/proc/$PID/cmdline\").Replace([char]0, ' '))";

#[test]
fn execute_without_profile_passes_no_profile() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    for (value, expected) in
        [(Some("true"), true), (Some("True"), true), (Some("false"), false), (Some(""), false), (None, false)]
    {
        let vars: Vec<(&str, &str, bool)> =
            value.map(|v| ("Octopus.Action.PowerShell.ExecuteWithoutProfile", v, false)).into_iter().collect();
        let run = run_ps(&env, "Profile.ps1", PRINT_COMMAND_LINE, &vars, &[]);
        run.success();
        let line = run.stdout.lines().find(|l| l.starts_with("cmdline: ")).expect("command line printed");
        assert!(line.contains("-NoLogo -NonInteractive -ExecutionPolicy Unrestricted -Command"), "{line}");
        assert_eq!(line.contains("-NoProfile -NoLogo"), expected, "{value:?}: {line}");
    }
}

#[test]
fn psdebug_trace_and_strict_mode() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let body = "$declared = 'yes'\nWrite-Host \"declared=$declared\"\nWrite-Host (\"undeclared=\" + $neverAssigned)";
    let run = run_ps(&env, "Debug.ps1", body, &[], &[]);
    run.success().stdout_has("undeclared=\n").output_lacks("DEBUG:");

    let run = run_ps(&env, "Debug.ps1", body, &[("Octopus.Action.PowerShell.PSDebug.Trace", "1", false)], &[]);
    run.success()
        .stdout_has("Octopus.Action.PowerShell.PSDebug.Trace is enabled. This should only be used for debugging, and then disabled again for normal deployments.")
        .stdout_has("DEBUG:    1+  >>>> $declared = 'yes'\n");
    // Only the user's script is traced, not the bootstrap around it.
    assert!(!run.stdout.contains("__octopus") && !run.stdout.contains("Bootstrap.ps1"), "{}", run.stdout);
    let run = run_ps(&env, "Debug.ps1", body, &[("Octopus.Action.PowerShell.PSDebug.Trace", "True", false)], &[]);
    run.success().stdout_has("DEBUG:    1+  >>>> $declared = 'yes'\n").stdout_has("! SET $declared = 'yes'.");

    let run = run_ps(&env, "Debug.ps1", body, &[("Octopus.Action.PowerShell.PSDebug.Strict", "True", false)], &[]);
    run.code(1)
        .stdout_has("Octopus.Action.PowerShell.PSDebug.Strict is enabled, putting PowerShell into strict mode")
        .stdout_has("declared=yes\n")
        .stderr_has("The variable '$neverAssigned' cannot be retrieved because it has not been set.");
    // The helpers work under strict mode too.
    let helpers = "Set-OctopusVariable -Name A -Value B\nNew-OctopusArtifact -Path nothing.txt\nUpdate-Progress 5 m\nWrite-Warning w";
    run_ps(&env, "Strict.ps1", helpers, &[("Octopus.Action.PowerShell.PSDebug.Strict", "True", false)], &[]).success();
}

#[test]
fn unique_cache_path_is_private_to_the_step_and_removed() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let body = "Write-Host \"cache=$env:XDG_CACHE_HOME\"";
    let run = run_ps(&env, "Cache.ps1", body, &[("Octopus.Action.PowerShell.UniqueCachePath", "True", false)], &[]);
    run.success();
    let cache = run.stdout.lines().find_map(|l| l.strip_prefix("cache=")).expect("cache printed").to_string();
    assert!(cache.ends_with("/PowerShellCache") && cache.contains("/step-"), "{cache}");
    assert!(!Path::new(&cache).parent().unwrap().exists(), "the step directory is removed");
    run_ps(&env, "Cache.ps1", body, &[], &[]).success().stdout_has("cache=\n");
}

#[test]
fn retry_proxy_and_escaping_helpers() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let body = r#"
$global:attempts = 0
Execute-WithRetry -command { $global:attempts++; if ($global:attempts -lt 3) { throw "flaky $global:attempts" }; Write-Host "done after $global:attempts" } -sleepBetweenFailures 0
Write-Host ("quoted=" + (ConvertTo-QuotedString 'a b'))
Write-Host ("console=" + (ConvertTo-ConsoleEscapedArgument 'say "hi" \'))
Write-Host ("powershell=" + (ConvertTo-PowershellEscapedArgument 'a`b[c]$d'))
Write-Host ("proxy=" + $OctopusProxy.GetType().Name + " " + $OctopusProxy.Address)
try { Execute-WithRetry -command { throw "always" } -maxFailures 2 -sleepBetweenFailures 0 } catch { Write-Host "gave up: $($_.Exception.Message)" }
"#;
    run_ps(&env, "Retry.ps1", body, &[], &[])
        .success()
        .stdout_has("Attempt 1 of 3 failed: flaky 1\n")
        .stdout_has("Attempt 2 of 3 failed: flaky 2\n")
        .stdout_has("Retrying...\n")
        .stdout_has("done after 3\n")
        .stdout_has("quoted=\"a b\"\n")
        .stdout_has("console=say \\\"hi\\\" \\\\\"\n")
        .stdout_has("powershell=a``b`[c]`$d\n")
        .stdout_has("proxy=WebProxy \n")
        .stdout_has("Attempt 1 of 2 failed: always\n")
        .stdout_has("gave up: always\n");
    // HTTP_PROXY, with the credentials it carries.
    let run = env.cmd(&["run-script", "--script=Proxy.ps1"]).env("HTTP_PROXY", "http://user:p%40ss@127.0.0.1:3128");
    env.write("Proxy.ps1", "Write-Host (\"proxy=\" + $OctopusProxy.Address + \" user=\" + $OctopusProxy.Credentials.UserName + \" \" + ([System.Net.Http.HttpClient]::DefaultProxy -eq $OctopusProxy))");
    run.run().success().stdout_has("proxy=http://user:p%40ss@127.0.0.1:3128/ user=user True\n");
}

#[test]
fn typed_target_functions_from_the_registration() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let registration = r#"[{"Name":"OctopusWebTarget","Description":"","ServiceMessageName":"create-webtarget",
        "Parameters":{"url":{"Type":0},"secure":{"Type":1},"port":{"Type":2,"DependsOn":"secure"}}}]"#;
    let vars = [("Octopus.Sashimi.ScriptFunctions.Registration", registration, false)];
    let body =
        "New-OctopusWebTarget -url 'https://a' -secure -port 443\nNew-OctopusWebTarget -url 'https://b' -port 80";
    let run = run_ps(&env, "Targets.ps1", body, &vars, &[]);
    run.success()
        .stdout_has(&format!(
            "##octopus[create-webtarget  url='{}' secure='{}' port='{}']",
            b64("https://a"),
            b64("True"),
            b64("443")
        ))
        .stdout_has(&format!("##octopus[create-webtarget  url='{}' secure='{}']", b64("https://b"), b64("False")));
    let bad = [("Octopus.Sashimi.ScriptFunctions.Registration", r#"[{"Name":"X;Y","ServiceMessageName":"m"}]"#, false)];
    run_ps(&env, "Targets.ps1", body, &bad, &[])
        .code(1)
        .stderr_has("Cannot generate the script functions of Octopus.Sashimi.ScriptFunctions.Registration: the function name 'X;Y' is not an identifier");
}

#[test]
fn a_missing_pwsh_fails_before_anything_of_the_step_runs() {
    // Runs whether or not pwsh is installed: the PATH here has none.
    let env = TestEnv::new();
    let empty_path = env.path("empty-path");
    std::fs::create_dir_all(&empty_path).unwrap();
    env.write("Step.ps1", "Write-Host never");
    let vars = env.variables("v.json", &[("Octopus.Script.Module[Foo]", "function Foo {}", false)]);
    let before = listing(env.root());
    let run = env
        .cmd(&["run-script", "--script=Step.ps1", &format!("--variables={}", vars.display())])
        .env("PATH", &empty_path)
        .run();
    run.code(1)
        .stderr_has(&format!(
            "PowerShell 7.2 or newer (pwsh) was not found on the PATH; it is needed to run '{}'. Install PowerShell 7.2 or newer",
            env.path("Step.ps1").display()
        ))
        .output_lacks("never");
    assert_eq!(listing(env.root()), before, "nothing was written beside the script");
    // TentacleHome's Work directory holds no step directory either.
    let work = env.path("home/Work");
    assert!(!work.exists() || listing(&work).iter().all(|n| !n.starts_with("step-")), "{:?}", listing(&work));
}

#[test]
fn a_background_job_does_not_keep_the_step_running() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let tag = 300_000 + std::process::id() % 100_000;
    let body = format!(
        "Start-Job {{ Start-Sleep {tag} }} | Out-Null\nStart-Process -FilePath sleep -ArgumentList {} \nWrite-Host main-done",
        tag + 1
    );
    let started = Instant::now();
    run_ps(&env, "Background.ps1", &body, &[], &[]).success().stdout_has("main-done");
    assert!(started.elapsed() < Duration::from_secs(120), "the step ended");
    let sleeper = format!("sleep {}", tag + 1);
    util::wait_until(util::PROMPTLY, "the started process to be stopped", || {
        std::fs::read_dir("/proc").unwrap().flatten().all(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| !String::from_utf8_lossy(&c).replace('\0', " ").contains(&sleeper))
                .unwrap_or(true)
        })
    });
}

/// A package holding (path, contents) files.
fn package(env: &TestEnv, files: &[(&str, &str)]) -> PathBuf {
    let files: Vec<(&str, &[u8], u32)> = files.iter().map(|(p, c)| (*p, c.as_bytes(), 0o644)).collect();
    util::tar_gz(env, "Acme.Ps.1.0.0.tar.gz", &files)
}

fn deploy(env: &TestEnv, pkg: &Path, extra: &[(&str, &str, bool)]) -> Run {
    let apps = env.path("Applications").display().to_string();
    let mut vars = vec![
        ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.as_str(), false),
        ("Octopus.Environment.Name", "Test", false),
        ("OctopusRetentionPolicySet", "Environments-1/Projects-1/Step-1/Machines-1/<default>", false),
        ("Octopus.Action.Package.PackageId", "Acme.Ps", false),
        ("Octopus.Action.Package.PackageVersion", "1.0.0", false),
        ("Octopus.Action.Name", "Step One", false),
    ];
    vars.extend_from_slice(extra);
    let file = env.variables("deploy.json", &vars);
    env.cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", file.display())])
        .env("TentacleHome", env.path("home"))
        .run()
}

#[test]
fn deploy_package_runs_powershell_conventions_in_order() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let pkg = package(
        &env,
        &[
            (
                "PreDeploy.ps1",
                "Write-Host \"PreDeploy in $((Get-Location).Path | Split-Path -Leaf)\"\nSet-OctopusVariable -Name Answer -Value 42",
            ),
            (
                "Deploy.ps1",
                "Write-Host \"Deploy sees $($OctopusParameters['Octopus.Action[Step One].Output.Answer'])\"\nWrite-Host \"config: $(Get-Content app.config)\"",
            ),
            ("PostDeploy.ps1", "Write-Host 'PostDeploy ran'"),
            ("DeployFailed.ps1", "Write-Host 'DeployFailed ran'"),
            ("app.config", "env=#{Octopus.Environment.Name}"),
        ],
    );
    let run = deploy(
        &env,
        &pkg,
        &[
            ("Octopus.Action.SubstituteInFiles.TargetFiles", "app.config", false),
            ("Octopus.Action.EnabledFeatures", "Octopus.Features.SubstituteInFiles", false),
        ],
    );
    run.success()
        .stdout_has("PreDeploy in 1.0.0\n")
        .stdout_has("Deploy sees 42\n")
        .stdout_has("config: env=Test\n")
        .stdout_has("PostDeploy ran\n")
        .output_lacks("DeployFailed ran");
    let pre = run.stdout.find("PreDeploy in").unwrap();
    let dep = run.stdout.find("Deploy sees").unwrap();
    let post = run.stdout.find("PostDeploy ran").unwrap();
    assert!(pre < dep && dep < post, "{}", run.stdout);
    let dir = env.path("Applications/Test/Acme.Ps/1.0.0");
    for script in ["PreDeploy.ps1", "Deploy.ps1", "PostDeploy.ps1", "DeployFailed.ps1"] {
        assert!(!dir.join(script).exists(), "{script} is removed after the deployment");
    }
}

#[test]
fn deploy_package_a_failing_powershell_deploy_runs_deploy_failed() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let pkg = package(
        &env,
        &[
            ("Deploy.ps1", "Write-Host 'about to fail'\nthrow 'deploy broke'"),
            ("PostDeploy.ps1", "Write-Host 'should-not-run'"),
            ("DeployFailed.ps1", "Write-Host \"rollback saw: $($OctopusParameters['OctopusLastErrorMessage'])\""),
        ],
    );
    let run = deploy(&env, &pkg, &[]);
    run.code(1)
        .stdout_has("about to fail")
        .stderr_has("OperationStopped: deploy broke")
        .stdout_has("rollback saw: Script")
        .stderr_has("returned non-zero exit code: 1. Deployment terminated.")
        .output_lacks("should-not-run");
}

#[test]
fn deploy_package_prefers_bash_and_runs_configured_powershell() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let pkg = package(&env, &[("Deploy.sh", "echo bash-ran"), ("Deploy.ps1", "Write-Host ps-ran")]);
    let run = deploy(
        &env,
        &pkg,
        &[
            ("Octopus.Action.EnabledFeatures", "Octopus.Features.CustomScripts", false),
            (
                "Octopus.Action.CustomScripts.PostDeploy.ps1",
                "Write-Host \"configured PowerShell in $($OctopusParameters['Octopus.Environment.Name'])\"",
                false,
            ),
        ],
    );
    run.success().stdout_has("bash-ran\n").stdout_has("configured PowerShell in Test\n").output_lacks("ps-ran");
    let dir = env.path("Applications/Test/Acme.Ps/1.0.0");
    assert!(!dir.join("Deploy.ps1").exists() && !dir.join("Deploy.sh").exists(), "both Deploy scripts are removed");
    assert!(!dir.join("Octopus.Action.CustomScripts.PostDeploy.ps1").exists(), "the configured script is removed");
}

#[test]
fn powershell_feature_scripts_run_and_can_be_overridden() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let features = [("Octopus.Action.EnabledFeatures", "Octopus.Features.HelloWorld", false)];
    let pkg = package(&env, &[("PreDeploy.ps1", "Write-Host packaged-pre")]);
    let run = deploy(&env, &pkg, &features);
    run.success().stdout_has("packaged-pre");
    assert_eq!(run.stdout.matches("Hello World!").count(), 2, "bash's and PowerShell's: {}", run.stdout);
    let dir = env.path("Applications/Test/Acme.Ps/1.0.0");
    let script = dir.join("Octopus.Features.HelloWorld_BeforePreDeploy.ps1");
    run.stdout_has(&format!("Creating '{}' from embedded resource", script.display()));
    assert!(!script.exists(), "the feature script is deleted");

    // One already in the package runs instead of ours, and its failure fails the deployment.
    let env = TestEnv::new();
    let pkg = package(
        &env,
        &[
            ("Octopus.Features.HelloWorld_BeforePreDeploy.ps1", "Write-Host overridden-feature; exit 5"),
            ("PreDeploy.ps1", "Write-Host pre-should-not-run"),
        ],
    );
    let run = deploy(&env, &pkg, &features);
    let script = env.path("Applications/Test/Acme.Ps/1.0.0/Octopus.Features.HelloWorld_BeforePreDeploy.ps1");
    run.code(1)
        .stdout_has("overridden-feature")
        .stdout_has(&format!("Did not overwrite '{}', it was already on disk", script.display()))
        .stderr_has(&format!("Script '{}' returned non-zero exit code: 5", script.display()))
        .output_lacks("pre-should-not-run");
}

#[test]
fn packaged_scripts_of_run_script_have_variables_substituted() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let body = "Write-Host \"OctopusParameter: $($OctopusParameters['Octopus.Environment.Name'])\"\n\
                Write-Host \"InlineVariable: $OctopusEnvironmentName\"\n\
                Write-Host \"VariableSubstitution: #{Octopus.Environment.Name}\"\n";
    let pkg = package(&env, &[("Deploy.ps1", body)]);
    let vars = env.variables(
        "v.json",
        &[
            ("Octopus.Environment.Name", "Production", false),
            ("Octopus.Action.Script.ScriptFileName", "Deploy.ps1", false),
        ],
    );
    let run = env
        .cmd(&["run-script", &format!("--package={}", pkg.display()), &format!("--variables={}", vars.display())])
        .run();
    run.success()
        .stdout_has(&format!("Performing variable substitution on '{}'", env.path("staging/Deploy.ps1").display()))
        .stdout_has("OctopusParameter: Production\n")
        .stdout_has("InlineVariable: Production\n")
        .stdout_has("VariableSubstitution: Production\n");
    // `--script` with `--package` names a packaged script: substituted too.
    let vars = env.variables("v2.json", &[("Octopus.Environment.Name", "Staging", false)]);
    env.cmd(&[
        "run-script",
        &format!("--package={}", pkg.display()),
        "--script=Deploy.ps1",
        &format!("--variables={}", vars.display()),
    ])
    .run()
    .success()
    .stdout_has("VariableSubstitution: Staging\n");
}

#[test]
fn a_missing_ps1_is_named_and_nothing_is_left_behind() {
    if !util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let vars = env.variables("v.json", &[("Octopus.Script.Module[Foo]", "function Foo {}", false)]);
    let before = listing(env.root());
    let run = env.cmd(&["run-script", "--script=Missing.ps1", &format!("--variables={}", vars.display())]).run();
    run.code(1).stderr_has(&format!("Could not find the script file '{}'", env.path("Missing.ps1").display()));
    assert_eq!(listing(env.root()), before, "nothing was written beside the script");
}
