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
        "substitute-variables-in-files",
        "structured-config-variables",
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
        // Every spelling the reference's option parser takes: `-` and `/` prefixes, `:` before
        // an inline value, the name in any case.
        vec!["evaluate", "-template=x", &*format!("-variables={vars}")],
        vec!["evaluate", "/template:x", &*format!("/VARIABLES:{vars}")],
        vec!["evaluate", "--TEMPLATE", "x", "-Variables", vars],
    ] {
        env.cmd(&args).run().success().stdout_has("[Greeting] = 'hi'");
    }
    // An option's value that looks like an option stays a value; an unknown option is refused.
    let run = env.cmd(&["evaluate", "--template", "-variables", &format!("--variables={vars}")]).run();
    run.success().stdout_has("-variables");
    env.cmd(&["evaluate", "-template=x", "-nonsense=1"]).run().code(1).stderr_has("unexpected argument");
}

#[test]
fn missing_command_is_a_user_error() {
    let env = TestEnv::new();
    env.cmd(&[]).run().code(1).stderr_has("Usage");
}

#[test]
fn help_subcommand_is_help() {
    let env = TestEnv::new();
    let top = env.cmd(&["help"]).run();
    top.success().stdout_has("Usage: calamari").stdout_has("deploy-package");
    assert_eq!(top.stdout, env.cmd(&["--help"]).run().stdout, "`help` prints what `--help` prints");
    let command = env.cmd(&["help", "extract-package"]).run();
    command.success().stdout_has("Usage: calamari extract-package").stdout_has("--destination");
    assert_eq!(command.stdout, env.cmd(&["extract-package", "--help"]).run().stdout);
    env.cmd(&["help", "no-such-command"]).run().code(1).stderr_has("no-such-command");
}

#[test]
fn a_commands_help_lists_its_own_options_apart_from_the_global_ones() {
    let env = TestEnv::new();
    let run = env.cmd(&["extract-package", "--help"]).run();
    run.success();
    let text = &run.stdout;
    let own = text.find("Options:").expect("an Options section");
    let global = text.find("Global options:").expect("a Global options section");
    // Positions after the usage line, which names the required options too.
    let at = |needle: &str| own + text[own..].find(needle).unwrap_or_else(|| panic!("{needle} missing:\n{text}"));
    assert!(own < at("--package") && at("--package") < global, "{text}");
    assert!(own < at("--packageHash") && at("--packageHash") < global, "{text}");
    assert!(global < at("--variables <FILE>") && global < at("--variablesPasswordFile"), "{text}");
}

#[test]
fn help_says_where_a_package_lands_and_what_the_exit_codes_are() {
    let env = TestEnv::new();
    for command in ["extract-package", "deploy-package"] {
        let run = env.cmd(&[command, "--help"]).run();
        run.success()
            .stdout_has("Octopus.Tentacle.Agent.ApplicationDirectoryPath")
            .stdout_has("$HOME/Applications")
            .stdout_has("<environment>/<package id>/<version>");
    }
    env.cmd(&["--help"]).run().success().stdout_has("130 for Ctrl-C / SIGINT, 143 for SIGTERM").stdout_has("NO_COLOR");
}

/// Runs `calamari <args>` with a terminal on stdin, stdout and stderr (util-linux `script`)
/// and the sandbox's clean environment plus `extra`; everything the terminal showed is in
/// `stdout`. `None`, after [`util::skip`], when `script` is not installed.
pub fn run_in_terminal(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> Option<crate::util::Run> {
    let probe = std::process::Command::new("script").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        crate::util::skip("util-linux `script` is not installed: no pseudo-terminal to test with");
        return None;
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = quote(&crate::util::bin().display().to_string());
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let template = env.cmd(&[]);
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]).current_dir(env.root());
    cmd.env_clear();
    for (k, v) in template.cmd.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    for (k, v) in std::env::vars_os() {
        let name = k.to_string_lossy();
        if name == "PATH" || name == "TERM" || name == "LANG" {
            cmd.env(&k, v);
        }
    }
    if std::env::var_os("TERM").is_none() {
        cmd.env("TERM", "xterm");
    }
    cmd.env_remove("NO_COLOR");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.stdin(std::process::Stdio::null()).output().expect("run script");
    Some(crate::util::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

#[test]
fn no_color_turns_colour_off_at_a_terminal() {
    let env = TestEnv::new();
    let args = ["evaluate", "--template=#{if}"];
    let Some(coloured) = run_in_terminal(&env, &args, &[]) else { return };
    coloured.code(1);
    assert!(coloured.stdout.contains("\x1b["), "an error at a terminal is red: {:?}", coloured.stdout);
    let plain = run_in_terminal(&env, &args, &[("NO_COLOR", "1")]).expect("script ran before");
    plain.code(1);
    assert!(!plain.stdout.contains("\x1b["), "NO_COLOR leaves no escape codes: {:?}", plain.stdout);
    let empty = run_in_terminal(&env, &args, &[("NO_COLOR", "")]).expect("script ran before");
    assert!(empty.stdout.contains("\x1b["), "an empty NO_COLOR does not count: {:?}", empty.stdout);
}

#[test]
fn bundle_and_its_sha256_are_readable_by_others() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = TestEnv::new();
    env.cmd(&["bundle", "--output=out"]).run().success();
    let mut seen = 0;
    for entry in std::fs::read_dir(env.path("out")).unwrap().flatten() {
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{} has mode {mode:o}", entry.path().display());
        seen += 1;
    }
    assert_eq!(seen, 2, "the bundle and its .sha256");
}
