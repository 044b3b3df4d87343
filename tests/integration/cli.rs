//! The CLI contract: command first, camelCase options in both `=` and space forms,
//! unknown commands and options rejected with exit 1, `--help` everywhere, `version`.

use crate::util::TestEnv;

#[test]
fn version_prints_the_version_and_exits_zero() {
    let env = TestEnv::new();
    let run = env.cmd(&["version"]).run();
    run.success().stdout_has(env!("CARGO_PKG_VERSION"));
}

#[test]
fn unknown_command_names_it_and_exits_one() {
    let env = TestEnv::new();
    env.cmd(&["deploy-pakage"]).run().code(1).stderr_has("deploy-pakage");
}

#[test]
fn unknown_option_names_it_and_exits_one() {
    let env = TestEnv::new();
    env.cmd(&["check-install", "--hoem=x"]).run().code(1).stderr_has("--hoem");
}

#[test]
fn help_works_on_every_command() {
    let env = TestEnv::new();
    let commands = [
        "version",
        "install",
        "bundle",
        "check-install",
        "installed-versions",
        "prune",
        "extract-package",
        "find-package",
        "evaluate",
        "substitute-in-files",
        "run-script",
        "deploy-package",
        "clean",
        "transfer-package",
    ];
    for command in commands {
        let run = env.cmd(&[command, "--help"]).run();
        run.success().stdout_has("Usage: calamari");
    }
    env.cmd(&["--help"]).run().success().stdout_has("deploy-package");
}

#[test]
fn options_accept_equals_and_space_forms() {
    let env = TestEnv::new();
    let vars = env.variables("v.json", &[("Greeting", "hi", false), ("OctopusPrintVariables", "True", false)]);
    let vars = vars.to_str().unwrap();
    for args in [
        vec!["evaluate", "--template=x", &*format!("--variables={vars}")],
        vec!["evaluate", "--template", "x", "--variables", vars],
    ] {
        env.cmd(&args).run().success().stdout_has("[Greeting] = 'hi'");
    }
}

#[test]
fn missing_command_is_a_user_error() {
    let env = TestEnv::new();
    env.cmd(&[]).run().code(1).stderr_has("Usage");
}
