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
