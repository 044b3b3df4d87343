//! Integration tests: templating through the binary (`calamari evaluate`) and
//! `calamari substitute-in-files`.

use crate::util::TestEnv;

fn evaluate(env: &TestEnv, vars: &[(&str, &str, bool)], template: &str) -> crate::util::Run {
    let v = env.variables("vars.json", vars);
    env.cmd(&["evaluate", &format!("--variables={}", v.display()), "--template", template]).run()
}

#[test]
fn evaluate_prints_exactly_the_result() {
    let env = TestEnv::new();
    let run = evaluate(
        &env,
        &[
            ("Server", "Web01", false),
            ("Port", "10933", false),
            ("Url", "http://#{Server | ToLower}:#{Port}", false),
            ("List", "a,b", false),
        ],
        "#{Url}/foo #{each p in List}#{p}#{/each} #{if Port == \"10933\"}yes#{/if}",
    );
    run.success();
    assert_eq!(run.stdout, "http://web01:10933/foo ab yes");
}

#[test]
fn evaluate_reads_a_file_and_supports_resilient_mode() {
    let env = TestEnv::new();
    let v = env.variables("vars.json", &[("A", "1", false)]);
    let f = env.write("t.txt", "a=#{A};b=\"#{\"");
    let run = env
        .cmd(&[
            "evaluate",
            &format!("--variables={}", v.display()),
            &format!("--file={}", f.display()),
            "--haltOnError=false",
        ])
        .run();
    run.success();
    assert!(run.stdout.ends_with("a=1;b=\"#{\""), "{:?}", run.stdout);
    // Halting (the default): a parse error is an error, exit 1, reported on stderr.
    let run = env.cmd(&["evaluate", &format!("--variables={}", v.display()), &format!("--file={}", f.display())]).run();
    run.code(1).stderr_has("line 1, column");
}

#[test]
fn evaluate_recursion_exits_101_with_the_chain() {
    let env = TestEnv::new();
    let run = evaluate(
        &env,
        &[("Foo", "#{Fox}", false), ("Fox", "#{Fax}", false), ("Fax", "#{Fix}", false), ("Fix", "#{Foo}", false)],
        "#{Foo}",
    );
    run.code(101).stderr_has("(Foo -> Fox -> Fax -> Fix -> Foo)");
}

#[test]
fn evaluate_unresolved_tokens_fail_with_their_names() {
    let env = TestEnv::new();
    let run = evaluate(&env, &[("A", "1", false)], "#{A} #{Missing | ToUpper}");
    run.code(1).stderr_has("The following tokens were unable to be evaluated: '#{Missing | ToUpper}'");
}

#[test]
fn substitute_in_files_replaces_matching_files_only() {
    let env = TestEnv::new();
    let v = env.variables(
        "vars.json",
        &[
            ("Db", "Server=db01", false),
            ("Octopus.Action.SubstituteInFiles.TargetFiles", "**/*.config\nmissing/*.xml", false),
        ],
    );
    let cfg = env.write("app/web.config", "<add value=\"#{Db}\"/>\r\n<x>##{Db}</x>\r\n");
    let sub = env.write("app/sub/other.config", "plain\n");
    let txt = env.write("app/readme.txt", "#{Db}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let before = std::fs::metadata(&sub).unwrap().modified().unwrap();
    let run = env
        .cmd(&[
            "substitute-in-files",
            &format!("--variables={}", v.display()),
            &format!("--path={}", env.path("app").display()),
        ])
        .run();
    run.success().stdout_has("No files were found in").stdout_has("missing/*.xml");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "<add value=\"Server=db01\"/>\r\n<x>#{Db}</x>\r\n");
    assert_eq!(std::fs::read_to_string(&txt).unwrap(), "#{Db}");
    assert_eq!(std::fs::metadata(&sub).unwrap().modified().unwrap(), before);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777, 0o640);
    }
}

#[test]
fn substitute_in_files_fails_on_parse_errors_when_asked() {
    let env = TestEnv::new();
    let v = env.variables(
        "vars.json",
        &[("A", "1", false), ("OctopusShouldFailDeploymentOnSubstitutionFails", "True", false)],
    );
    let f = env.write("d/a.js", "x=#{A};y=\"#{\"");
    let run = env
        .cmd(&[
            "substitute-in-files",
            &format!("--variables={}", v.display()),
            &format!("--path={}", env.path("d").display()),
            "--targetFiles=*.js",
        ])
        .run();
    run.code(1).stderr_has("a.js");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "x=#{A};y=\"#{\"");
}

#[test]
fn substitute_in_files_handles_invalid_utf8_as_windows_1252() {
    let env = TestEnv::new();
    let v = env.variables("vars.json", &[("A", "é", false)]);
    let f = env.write(
        "d/a.txt",
        b"\xFF\xFEx".iter().skip(2).copied().chain(b"\xE9 #{A}\n".iter().copied()).collect::<Vec<u8>>(),
    );
    env.cmd(&[
        "substitute-in-files",
        &format!("--variables={}", v.display()),
        &format!("--path={}", env.path("d").display()),
        "--targetFiles=a.txt",
    ])
    .run()
    .success();
    assert_eq!(std::fs::read(&f).unwrap(), b"x\xE9 \xE9\n");
}

#[test]
fn evaluate_masks_sensitive_values_unless_asked_to_show_them() {
    let env = TestEnv::new();
    let vars = [("Password", "hunter2-sekret", true), ("User", "admin", false)];
    let run = evaluate(&env, &vars, "#{User}:#{Password}");
    run.success();
    assert_eq!(run.stdout, "admin:********");
    run.output_lacks("hunter2-sekret");
    let v = env.path("vars.json");
    let shown = env
        .cmd(&[
            "evaluate",
            &format!("--variables={}", v.display()),
            "--template=#{User}:#{Password}",
            "--showSensitive",
        ])
        .run();
    shown.success();
    assert_eq!(shown.stdout, "admin:hunter2-sekret");
}

#[test]
fn evaluate_ends_with_a_newline_at_a_terminal_but_not_when_piped() {
    let env = TestEnv::new();
    let piped = evaluate(&env, &[("Name", "World", false)], "Hello #{Name}");
    piped.success();
    assert_eq!(piped.stdout, "Hello World", "piped output is exact");
    let v = env.path("vars.json").display().to_string();
    let args = ["evaluate", &format!("--variables={v}"), "--template=Hello #{Name}"];
    let Some(terminal) = crate::cli::run_in_terminal(&env, &args, &[]) else { return };
    terminal.success();
    // The terminal turns "\n" into "\r\n".
    assert!(terminal.stdout.ends_with("Hello World\r\n"), "{:?}", terminal.stdout);
    let with_newline = ["evaluate", &format!("--variables={v}"), "--template=Hello #{Name}\n"];
    let terminal = crate::cli::run_in_terminal(&env, &with_newline, &[]).expect("script ran before");
    assert!(
        terminal.stdout.ends_with("Hello World\r\n") && !terminal.stdout.ends_with("\r\n\r\n"),
        "{:?}",
        terminal.stdout
    );
}

/// `D0=ab`, `Di=#{D(i-1)}#{D(i-1)}`: `#{Dn}` is 2^(n+1) bytes.
fn doubling_chain(n: usize) -> Vec<(String, String)> {
    let mut vars = vec![("D0".to_string(), "ab".to_string())];
    for i in 1..=n {
        vars.push((format!("D{i}"), format!("#{{D{}}}#{{D{}}}", i - 1, i - 1)));
    }
    vars
}

fn evaluate_owned(env: &TestEnv, vars: &[(String, String)], template: &str) -> crate::util::Run {
    let vars: Vec<(&str, &str, bool)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str(), false)).collect();
    evaluate(env, &vars, template)
}

#[test]
fn evaluate_stops_a_doubling_chain_at_the_lowered_value_size_naming_the_variable() {
    let env = TestEnv::new();
    let mut vars = doubling_chain(25);
    vars.push(("Octopus.Calamari.Template.MaximumValueSize".into(), "1048576".into()));
    // D19 is exactly 1 MiB (allowed); D20 would be 2 MiB.
    let ok = evaluate_owned(&env, &vars, "#{D19}");
    ok.success();
    assert_eq!(ok.stdout.len(), 1 << 20);
    let run = evaluate_owned(&env, &vars, "x #{D25}");
    run.code(1).stderr_has(
        "Template evaluation stopped: a value grew past 1048576 bytes in the value of variable 'D20', reached from line 1, column 3 of the template. Set Octopus.Calamari.Template.MaximumValueSize higher if the value is meant to be this large.",
    );
    assert_eq!(run.stdout, "", "nothing is printed when a limit is exceeded");
}

#[test]
fn evaluate_stops_a_2_to_the_41_byte_value_at_the_default_limit() {
    let env = TestEnv::new();
    // 4 TiB if it were evaluated; the default 64 MiB limit stops it at D26 (D25 is 64 MiB).
    let run = evaluate_owned(&env, &doubling_chain(40), "#{D40}");
    run.code(1).stderr_has("a value grew past 67108864 bytes in the value of variable 'D26'");
}

#[test]
fn evaluate_stops_nested_loops_at_the_work_limit() {
    let env = TestEnv::new();
    let items: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let list = items.join(",");
    // 10^9 iterations if it ran to the end. The default budget (100 million steps) takes
    // seconds in a release build and minutes in a debug one, so the tests lower it.
    let template = "#{each a in L}#{each b in L}#{each c in L}#{/each}#{/each}#{/each}";
    let work = ("Octopus.Calamari.Template.MaximumWork", "1000000", false);
    let run = evaluate(&env, &[("L", list.as_str(), false), work], &format!("start\n  {template}"));
    run.code(1).stderr_has(
        "Template evaluation stopped: the evaluation took more than 1000000 steps at line 2, column 3 of the template. Set Octopus.Calamari.Template.MaximumWork higher if the template is meant to do this much.",
    );
    // A variable whose value is the loops is named.
    let run = evaluate(&env, &[("L", list.as_str(), false), ("Loops", template, false), work], "x#{Loops}");
    run.code(1).stderr_has(
        "the evaluation took more than 1000000 steps in the value of variable 'Loops', reached from line 1, column 2 of the template.",
    );
    // The same loops writing their items (about 3 GB) stop at the value size.
    let size = ("Octopus.Calamari.Template.MaximumValueSize", "1000000", false);
    let writing = "#{each a in L}#{each b in L}#{each c in L}#{c}#{/each}#{/each}#{/each}";
    let run = evaluate(&env, &[("L", list.as_str(), false), size], writing);
    run.code(1).stderr_has("a value grew past 1000000 bytes at line 1, column 1 of the template");
}

#[test]
fn a_limit_variable_that_is_not_a_number_is_a_user_error() {
    let env = TestEnv::new();
    let run = evaluate(&env, &[("A", "1", false), ("Octopus.Calamari.Template.MaximumWork", "lots", false)], "#{A}");
    run.code(1)
        .stderr_has("The variable 'Octopus.Calamari.Template.MaximumWork' must be a positive whole number, not 'lots'");
}

#[test]
fn substitute_in_files_past_a_limit_fails_naming_the_file_and_leaves_it_untouched() {
    let env = TestEnv::new();
    let mut vars = doubling_chain(25);
    vars.push(("Octopus.Calamari.Template.MaximumValueSize".into(), "65536".into()));
    let vars: Vec<(&str, &str, bool)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str(), false)).collect();
    let v = env.variables("vars.json", &vars);
    let text = "<a>#{D3}</a>\n<b>#{D25}</b>\n";
    let f = env.write("d/web.config", text);
    let run = env
        .cmd(&[
            "substitute-in-files",
            &format!("--variables={}", v.display()),
            &format!("--path={}", env.path("d").display()),
            "--targetFiles=*.config",
        ])
        .run();
    run.code(1).stderr_has(&format!("Could not substitute variables in '{}'", f.display())).stderr_has(
        "a value grew past 65536 bytes in the value of variable 'D16', reached from line 2, column 4 of the template",
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), text);
    let leftovers: Vec<_> = std::fs::read_dir(env.path("d")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("web.config")], "no temporary file is left behind");
}

#[test]
fn run_script_whose_variables_include_a_template_bomb_fails_before_running() {
    let env = TestEnv::new();
    let mut vars = doubling_chain(40);
    vars.push(("Harmless".into(), "#{D2}".into()));
    let vars: Vec<(&str, &str, bool)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str(), false)).collect();
    let v = env.variables("vars.json", &vars);
    let script = env.write("s.sh", "echo ran > ran.txt\n");
    let run = env
        .cmd(&["run-script", &format!("--script={}", script.display()), &format!("--variables={}", v.display())])
        .run();
    // Every variable a script receives is evaluated: D26 is the first one past the limit.
    run.code(1).stderr_has("a value grew past 67108864 bytes in the value of variable 'D26'");
    assert!(!env.path("ran.txt").exists(), "the script must not run");
}

#[test]
fn deploy_package_substitution_past_a_limit_fails_naming_the_file() {
    let env = TestEnv::new();
    let pkg = env.path("Acme.Test.1.0.0.tar.gz");
    let marker = env.path("deploy-ran");
    let deploy_sh = format!("echo ran > '{}'\n", marker.display());
    {
        let gz = flate2::write::GzEncoder::new(std::fs::File::create(&pkg).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, contents) in [("web.config", "<b>#{D16}</b>\n"), ("Deploy.sh", deploy_sh.as_str())] {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, name, contents.as_bytes()).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
    }
    let apps = env.path("Applications").display().to_string();
    let mut vars: Vec<(String, String)> = doubling_chain(16);
    for (k, v) in [
        ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.as_str()),
        ("Octopus.Environment.Name", "Test"),
        ("Octopus.Action.Package.PackageId", "Acme.Test"),
        ("Octopus.Action.Package.PackageVersion", "1.0.0"),
        ("Octopus.Action.EnabledFeatures", "Octopus.Features.SubstituteInFiles"),
        ("Octopus.Action.SubstituteInFiles.TargetFiles", "*.config"),
        ("Octopus.Calamari.Template.MaximumValueSize", "65536"),
    ] {
        vars.push((k.to_string(), v.to_string()));
    }
    let vars: Vec<(&str, &str, bool)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str(), false)).collect();
    let v = env.variables("vars.json", &vars);
    let run = env
        .cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", v.display())])
        .env("TentacleHome", env.path("home"))
        .run();
    let staged = env.path("Applications/Test/Acme.Test/1.0.0");
    run.code(1)
        .stderr_has(&format!("Could not substitute variables in '{}", staged.display()))
        .stderr_has("web.config'")
        .stderr_has("a value grew past 65536 bytes in the value of variable 'D16', reached from line 1, column 4");
    assert_eq!(std::fs::read_to_string(staged.join("web.config")).unwrap(), "<b>#{D16}</b>\n");
    assert!(!marker.exists(), "the deployment stops before Deploy.sh");
    // With the default limit the same package deploys and Deploy.sh runs.
    let v = env.variables("vars.json", &vars[..vars.len() - 1]);
    env.cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", v.display())])
        .env("TentacleHome", env.path("home"))
        .run()
        .success();
    assert!(marker.exists());
}

#[test]
fn substitute_in_files_removes_temp_files_left_by_a_killed_run() {
    let env = TestEnv::new();
    let v = env.variables("vars.json", &[("A", "1", false)]);
    let f = env.write("d/a.txt", "x=#{A}");
    // A writer that is gone (its pid reaped), one still running, and a file that only
    // looks similar: only the first is stale.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let mut running = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    let stale = env.write(format!("d/.a.txt.calamari{}.Ab12Cd.tmp", gone.id()), "half written");
    let in_flight = env.write(format!("d/.a.txt.calamari{}.Ef34Gh.tmp", running.id()), "being written");
    let lookalike = env.write("d/.a.txt.backup.tmp", "not ours");
    let run = env
        .cmd(&[
            "substitute-in-files",
            &format!("--variables={}", v.display()),
            &format!("--path={}", env.path("d").display()),
            "--targetFiles=a.txt",
        ])
        .run();
    running.kill().unwrap();
    running.wait().unwrap();
    run.success();
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "x=1");
    assert!(!stale.exists(), "the stale temp file is removed");
    assert!(in_flight.exists() && lookalike.exists(), "a running writer's file and a lookalike are kept");
    let names: Vec<String> = std::fs::read_dir(env.path("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "nothing else is left in the directory: {names:?}");
}
