//! Integration tests: `calamari run-script`: bootstraps and their helpers (bash, Python;
//! PowerShell text in unit tests), service messages, output variables, masking, secrets
//! kept out of argv/env/files, and process handling (orphans, timeout, signals, big output).

#![allow(clippy::print_stdout)] // the peak memory measurement is printed on purpose

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::util::{self, TestEnv};

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn copy_fixture(env: &TestEnv, name: &str) -> std::path::PathBuf {
    let bytes = std::fs::read(util::fixtures().join("scripts").join(name)).expect("fixture exists");
    env.write(name, bytes)
}

fn has_python() -> bool {
    let ok = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        util::skip("python3 is not installed");
    }
    ok
}

/// Pids of processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

#[test]
fn bash_helpers_emit_the_reference_service_messages() {
    let env = TestEnv::new();
    copy_fixture(&env, "helpers.sh");
    let vars = env.variables(
        "v.json",
        &[
            ("Plain", "plain value", false),
            ("Octopus.Action.Name", "Deploy", false),
            ("Octopus.Machine.Name", "web01", false),
        ],
    );
    let run = env.cmd(&["run-script", "--script=helpers.sh", "--variables", vars.to_str().unwrap()]).run();
    run.success().stdout_has("plain: plain value\n").stdout_has("array: plain value\n").stdout_has("done");
    let artifact = env.path("artifact.txt").canonicalize().unwrap();
    let artifact = artifact.to_str().unwrap();
    run.stdout_has(&format!(
        "##octopus[createArtifact path='{}' name='{}' length='{}']",
        b64(artifact),
        b64("artifact.txt"),
        b64("9")
    ))
    .stdout_has(&format!("name='{}' length=", b64("renamed.txt")))
    .stdout_has(&format!("##octopus[progress percentage='{}' message='{}']", b64("50"), b64("half way")))
    .stdout_has(&format!(
        "##octopus[set-environmentstate key='{}' value='{}' type='{}']",
        b64("Key"),
        b64("State value"),
        b64("State")
    ))
    .stdout_has(&format!(
        "##octopus[set-environmentstate key='{}' value='{}' type='{}']",
        b64("Site"),
        b64("https://example.com"),
        b64("Url")
    ))
    .stdout_has("##octopus[stdout-verbose]\na verbose line\n")
    .stdout_has("##octopus[stdout-highlight]\na highlight line\n")
    .stdout_has("##octopus[stdout-wait]\na wait line\n")
    .stdout_has("##octopus[stdout-warning]\na warning line\n##octopus[stdout-default]\n")
    .stdout_has(&format!("encoded: {}\n", b64("héllo")))
    .stdout_has("decoded: hello\n".replace("hello", "héllo").as_str())
    // the sensitive output value: masked in text from then on, present only in the message
    .stdout_has("later: ********\n")
    .output_lacks("later: hush-hush-value");
    assert_eq!(run.output_variable("OutName").as_deref(), Some("out value"));
    assert_eq!(run.output_variable("SecretOut").as_deref(), Some("hush-hush-value"));
    assert!(run.stdout.contains(&format!("value=\"{}\" sensitive=\"VHJ1ZQ==\"]", b64("hush-hush-value"))));
    assert_eq!(run.output_variable("Octopus.Action.Script.ExitCode").as_deref(), Some("0"));
    assert!(!env.path("Script.sh").exists());
}

#[test]
fn python_helpers_emit_the_reference_service_messages() {
    if !has_python() {
        return;
    }
    let env = TestEnv::new();
    copy_fixture(&env, "helpers.py");
    let vars = env.variables("v.json", &[("Plain", "plain value", false)]);
    let run = env.cmd(&["run-script", "--script=helpers.py", "--variables", vars.to_str().unwrap()]).run();
    let artifact = env.path("artifact.txt").canonicalize().unwrap();
    run.success()
        .stdout_has("plain: plain value\n")
        .stdout_has("dict: plain value\n")
        .stdout_has(&format!(
            "##octopus[createArtifact path='{}' name='{}' length='{}']",
            b64(artifact.to_str().unwrap()),
            b64("artifact.txt"),
            b64("9")
        ))
        .stdout_has(&format!("name='{}'", b64("renamed.txt")))
        .stdout_has(&format!("##octopus[progress percentage='{}' message='{}']", b64("50"), b64("half way")))
        .stdout_has("##octopus[stdout-verbose]\na verbose line\n")
        .stdout_has("##octopus[stdout-highlight]\na highlight line\n")
        .stdout_has("##octopus[stdout-wait]\na wait line\n")
        .stdout_has("##octopus[stdout-warning]\na warning line\n")
        .stdout_has("later: ********\n")
        .stdout_has("done");
    assert_eq!(run.output_variable("OutName").as_deref(), Some("out value"));
    assert_eq!(run.output_variable("SecretOut").as_deref(), Some("hush-hush-value"));
}

#[test]
fn python_failstep_and_exit_codes() {
    if !has_python() {
        return;
    }
    let env = TestEnv::new();
    env.write("f.py", "failstep('broken on purpose')\n");
    env.cmd(&["run-script", "--script=f.py"])
        .run()
        .code(255)
        .stdout_has(&format!("##octopus[resultMessage message='{}']", b64("broken on purpose")));
    env.write("e.py", "import sys\nsys.exit(4)\n");
    let run = env.cmd(&["run-script", "--script=e.py"]).run();
    run.code(4);
    assert_eq!(run.output_variable("Octopus.Action.Script.ExitCode").as_deref(), Some("4"));
}

/// Values with quotes, `$(...)`, backticks, newlines, control characters and non-ASCII
/// come back byte for byte, through every way of reading them.
#[test]
fn variable_values_come_back_byte_for_byte() {
    let tricky =
        "it's \"quoted\" $(touch pwned) `touch pwned2` ${HOME} \\ \n second line\n\ttab \u{1}\u{7f} é ✓ \u{1F600}\n\n";
    let env = TestEnv::new();
    let vars = env.variables("v.json", &[("Tricky", tricky, false), ("Octopus.Action.Name", "A", false)]);
    env.write(
        "s.sh",
        "set -euo pipefail\nprintf '%s' \"$(get_octopusvariable Tricky)\" > via_get.bin\nprintf '%s' \"${octopus_parameters[Tricky]}\" > via_array.bin\nset_octopusvariable Copy \"${octopus_parameters[Tricky]}\"\n",
    );
    let run = env.cmd(&["run-script", "--script=s.sh", "--variables", vars.to_str().unwrap()]).run();
    run.success();
    // `$(...)` strips trailing newlines, as in any shell.
    assert_eq!(std::fs::read_to_string(env.path("via_get.bin")).unwrap(), tricky.trim_end_matches('\n'));
    assert_eq!(std::fs::read_to_string(env.path("via_array.bin")).unwrap(), tricky);
    assert_eq!(run.output_variable("Copy").as_deref(), Some(tricky));
    assert!(!env.path("pwned").exists() && !env.path("pwned2").exists(), "values are never executed");
    if has_python() {
        env.write("s.py", "open('via_py.bin', 'w', encoding='utf-8').write(get_octopusvariable('Tricky'))\n");
        env.cmd(&["run-script", "--script=s.py", "--variables", vars.to_str().unwrap()]).run().success();
        assert_eq!(std::fs::read_to_string(env.path("via_py.bin")).unwrap(), tricky);
    }
}

#[test]
fn parameters_keep_their_quoting() {
    let env = TestEnv::new();
    env.write("p.sh", "set -u\nprintf '<%s>\\n' \"$@\"\necho \"count=$#\"\n");
    env.cmd(&["run-script", "--script=p.sh", r#"--scriptParameters=-Name "John Smith" 'it''s' plain"#])
        .run()
        .success()
        .stdout_has("<-Name>\n<John Smith>\n<its>\n<plain>\ncount=4\n");
    let vars = env.variables("v.json", &[("Octopus.Action.Script.ScriptParameters", r#""a b" c"#, false)]);
    env.cmd(&["run-script", "--script=p.sh", "--variables", vars.to_str().unwrap()])
        .run()
        .success()
        .stdout_has("<a b>\n<c>\ncount=2\n");
    env.cmd(&["run-script", "--script=p.sh"]).run().success().stdout_has("count=0\n");
    // `$0` is the script itself, so scripts find their siblings.
    env.write("sub/lib.sh", "greeting=from-sibling\n");
    env.write("sub/main.sh", "set -eu\nsource \"$(dirname \"$0\")/lib.sh\"\necho \"$greeting $(basename \"$0\")\"\n");
    env.cmd(&["run-script", "--script=sub/main.sh"]).run().success().stdout_has("from-sibling main.sh\n");
    if has_python() {
        env.write("p.py", "import sys\nfor a in sys.argv[1:]:\n    print('<' + a + '>')\n");
        env.cmd(&["run-script", "--script=p.py", r#"--scriptParameters=-Name "John Smith" 'x y'"#])
            .run()
            .success()
            .stdout_has("<-Name>\n<John Smith>\n<x y>\n");
    }
}

#[test]
fn fail_step_with_and_without_a_message() {
    let env = TestEnv::new();
    env.write("f1.sh", "set -euo pipefail\nfail_step \"It broke\"\necho unreachable\n");
    env.cmd(&["run-script", "--script=f1.sh"])
        .run()
        .code(1)
        .stdout_has(&format!("##octopus[resultMessage message='{}']", b64("It broke")))
        .output_lacks("unreachable");
    env.write("f2.sh", "set -euo pipefail\nfail_step\necho unreachable\n");
    let run = env.cmd(&["run-script", "--script=f2.sh"]).run();
    run.code(1).output_lacks("resultMessage").output_lacks("unreachable");
}

#[test]
fn exit_codes_stderr_and_fail_on_error_output() {
    let env = TestEnv::new();
    env.write("e.sh", "echo out\necho 'to stderr' >&2\nexit 3\n");
    let run = env.cmd(&["run-script", "--script=e.sh"]).run();
    run.code(3).stdout_has("out\n").stderr_has("to stderr\n");
    assert_eq!(run.output_variable("Octopus.Action.Script.ExitCode").as_deref(), Some("3"));
    env.write("w.sh", "echo 'warning only' >&2\n");
    env.cmd(&["run-script", "--script=w.sh"]).run().success();
    let vars = env.variables("v.json", &[("Octopus.Action.FailScriptOnErrorOutput", "True", false)]);
    env.cmd(&["run-script", "--script=w.sh", "--variables", vars.to_str().unwrap()]).run().code(255);
}

#[test]
fn killed_by_a_signal_names_the_signal() {
    let env = TestEnv::new();
    env.write("k.sh", "echo before\nkill -9 $$\n");
    env.cmd(&["run-script", "--script=k.sh"]).run().code(137).stdout_has("before").stderr_has("signal 9 (SIGKILL)");
}

#[test]
fn inline_scripts_from_variables() {
    let env = TestEnv::new();
    let vars = env.variables(
        "v.json",
        &[
            ("Octopus.Action.Script.ScriptBody", "echo \"inline #{Who} $0\"", false),
            ("Octopus.Action.Script.Syntax", "Bash", false),
            ("Who", "world", false),
        ],
    );
    env.cmd(&["run-script", "--variables", vars.to_str().unwrap()]).run().success().stdout_has("inline ");
    assert!(!env.path("Script.sh").exists(), "the inline script is removed afterwards");
    let vars = env.variables("v2.json", &[("Octopus.Action.Script.ScriptBody[Bash]", "echo from-indexed-body", false)]);
    env.cmd(&["run-script", "--variables", vars.to_str().unwrap()]).run().success().stdout_has("from-indexed-body");
    env.write("scripts/named.sh", "echo from-file-name\n");
    let vars = env.variables("v3.json", &[("Octopus.Action.Script.ScriptFileName", "scripts/named.sh", false)]);
    env.cmd(&["run-script", "--variables", vars.to_str().unwrap()]).run().success().stdout_has("from-file-name");
    env.cmd(&["run-script"]).run().code(1).stderr_has("No script to run");
}

#[test]
fn bash_script_modules_sit_beside_the_script() {
    let env = TestEnv::new();
    let vars = env.variables(
        "v.json",
        &[
            ("Octopus.Script.Module[Greeter]", "greet() { echo \"hello from module $1\"; }", false),
            ("Octopus.Script.Module.Language[Greeter]", "Bash", false),
        ],
    );
    env.write("m.sh", "set -euo pipefail\nsource ./Greeter.sh\ngreet bob\n");
    env.cmd(&["run-script", "--script=m.sh", "--variables", vars.to_str().unwrap()])
        .run()
        .success()
        .stdout_has("hello from module bob");
    assert!(!env.path("Greeter.sh").exists(), "modules are removed afterwards");
    if has_python() {
        let vars = env.variables(
            "py.json",
            &[
                ("Octopus.Script.Module[PyGreeter]", "def greet(n):\n    print('hello from py module ' + n)\n", false),
                ("Octopus.Script.Module.Language[PyGreeter]", "Python", false),
            ],
        );
        env.write("m.py", "import PyGreeter\nPyGreeter.greet('ann')\n");
        env.cmd(&["run-script", "--script=m.py", "--variables", vars.to_str().unwrap()])
            .run()
            .success()
            .stdout_has("hello from py module ann");
        assert!(!env.path("PyGreeter.py").exists());
        assert!(!env.path("__pycache__").exists(), "no compiled copy of the module is left");
    }
}

#[test]
fn crlf_scripts_stdin_and_invalid_utf8() {
    let env = TestEnv::new();
    env.write("c.sh", "echo crlf-ok\r\nif read -r x; then echo \"got $x\"; else echo stdin-eof; fi\r\nprintf 'bad \\xff\\xfe bytes\\n'\r\nprintf 'no newline at end'\r\n");
    env.cmd(&["run-script", "--script=c.sh"])
        .run()
        .success()
        .stdout_has("crlf-ok\n")
        .stdout_has("stdin-eof\n")
        .stdout_has("bad \u{FFFD}\u{FFFD} bytes\n")
        .stdout_has("no newline at end\n");
}

#[test]
fn service_messages_split_over_lines_and_malformed_ones() {
    let env = TestEnv::new();
    let (n, v) = (b64("Split"), b64("joined"));
    env.write(
        "m.sh",
        format!(
            "echo \"##octopus[setVariable name='{n}'\"\necho \" value='{v}']\"\necho \"##octopus[setVariable name='not base64!']\"\necho '##octopus is not a message'\n"
        ),
    );
    let run = env.cmd(&["run-script", "--script=m.sh"]).run();
    run.success().stdout_has("##octopus[setVariable name='not base64!']\n").stdout_has("##octopus is not a message\n");
    assert_eq!(run.output_variable("Split").as_deref(), Some("joined"));
}

/// A secret never appears in clear in stdout or stderr, whatever the script prints: the
/// value, its base64, each line of a multi-line value.
#[test]
fn secrets_are_masked_in_all_output() {
    let env = TestEnv::new();
    let secret = "Sup3r-S3cret-Passw0rd";
    let pem = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----";
    let vars = env.variables(
        "v.json",
        &[("Password", secret, true), ("Key", pem, true), ("OctopusPrintVariables", "True", false)],
    );
    env.write(
        "s.sh",
        "set -euo pipefail\npw=$(get_octopusvariable Password)\necho \"pw=$pw\"\necho \"pw again ${octopus_parameters[Password]}\" >&2\nprintf '%s' \"$pw\" | base64\necho \"x$(printf 'ab%s' \"$pw\" | base64 -w0)\"\nprintf '%s\\n' \"${octopus_parameters[Key]}\"\nset -x\necho \"$pw\" > /dev/null\n",
    );
    let run = env.cmd(&["run-script", "--script=s.sh", "--variables", vars.to_str().unwrap()]).run();
    run.success().stdout_has("pw=********").stderr_has("pw again ********");
    for needle in [secret, "MIIBOgIBAAJBAKj34GkxFhD9", &b64(secret)] {
        run.output_lacks(needle);
    }
}

/// While the script runs, the secret is in no process's argv or environment, and the only
/// file holding it is 0600 in a 0700 directory; afterwards nothing is left.
#[test]
fn secrets_stay_out_of_argv_env_and_readable_files() {
    let env = TestEnv::new();
    let secret = "Argv-Env-Probe-Secret-4711";
    let vars = env.variables("v.json", &[("Password", secret, true)]);
    let home = env.path("tentacle");
    std::fs::create_dir_all(&home).unwrap();
    // The script must still be running while the test scans processes and files.
    env.write("s.sh", "echo ready\nsleep 2\necho finished\n");
    let mut child = env
        .cmd(&["run-script", "--script=s.sh", "--variables", vars.to_str().unwrap()])
        .env("TentacleHome", &home)
        .cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    read_until(&mut stdout, "ready");
    // The script runs: scan every process.
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        for what in ["cmdline", "environ"] {
            if let Ok(bytes) = std::fs::read(format!("/proc/{pid}/{what}")) {
                assert!(!String::from_utf8_lossy(&bytes).contains(secret), "secret in /proc/{pid}/{what}");
            }
        }
    }
    // Files holding it: only inside a 0700 step directory, 0600 each.
    use std::os::unix::fs::MetadataExt as _;
    let mut holders = 0;
    for entry in walkdir::WalkDir::new(env.root()).into_iter().flatten() {
        if entry.file_type().is_file() && entry.path() != vars {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            if String::from_utf8_lossy(&bytes).contains(secret) {
                holders += 1;
                assert_eq!(entry.metadata().unwrap().mode() & 0o777, 0o600, "{}", entry.path().display());
                let parent = entry.path().parent().unwrap();
                assert_eq!(std::fs::metadata(parent).unwrap().mode() & 0o777, 0o700, "{}", parent.display());
                assert!(parent.starts_with(home.join("Work")), "{}", entry.path().display());
            }
        }
    }
    assert_eq!(holders, 1, "exactly one file (the variables file) holds the secret while the script runs");
    let status = child.wait().unwrap();
    assert!(status.success());
    let leftovers: Vec<_> = std::fs::read_dir(home.join("Work")).unwrap().flatten().map(|e| e.path()).collect();
    assert!(leftovers.is_empty(), "step directory removed: {leftovers:?}");
}

#[test]
fn a_killed_steps_leftovers_are_removed_by_the_next_run() {
    let env = TestEnv::new();
    let home = env.path("tentacle");
    let dead = home.join("Work/step-2147483647-0123456789abcdef");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("Variables.bin"), "Password\0secret\0").unwrap();
    env.write("s.sh", "echo hi\n");
    env.cmd(&["run-script", "--script=s.sh"]).env("TentacleHome", &home).run().success();
    assert!(!dead.exists());
}

/// Calamari SIGKILLed mid-step: the interpreter gets SIGTERM at once (PDEATHSIG), and the
/// next step removes the leftover files and kills what the dead step left running.
#[test]
fn after_calamari_is_killed_the_next_run_cleans_up() {
    let env = TestEnv::new();
    let home = env.path("tentacle");
    let vars = env.variables("v.json", &[("Password", "Killed-Step-Secret-99", true)]);
    env.write("s.sh", "sleep 98770 &\necho started\nsleep 98771\n");
    let mut child = env
        .cmd(&["run-script", "--script=s.sh", "--variables", vars.to_str().unwrap()])
        .env("TentacleHome", &home)
        .cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    read_until(&mut stdout, "started");
    child.kill().unwrap();
    child.wait().unwrap();
    let leftovers = || std::fs::read_dir(home.join("Work")).unwrap().flatten().count();
    assert_eq!(leftovers(), 1, "a SIGKILLed step cannot clean up after itself");
    env.write("next.sh", "echo next\n");
    env.cmd(&["run-script", "--script=next.sh"]).env("TentacleHome", &home).run().success();
    assert_eq!(leftovers(), 0, "the next run removed the dead step's directory");
    util::wait_until(util::PROMPTLY, "the dead step's background process to be killed", || {
        processes_with("sleep 98770").is_empty()
    });
    util::wait_until(util::PROMPTLY, "the dead step's foreground process to be killed", || {
        processes_with("sleep 98771").is_empty()
    });
}

#[test]
fn orphaned_children_do_not_hang_the_step() {
    let env = TestEnv::new();
    env.write("o.sh", "sleep 98761 &\nsetsid sleep 98762 &\necho main-done\n");
    let started = Instant::now();
    let run = env.cmd(&["run-script", "--script=o.sh"]).run();
    run.success().stdout_has("main-done");
    assert!(started.elapsed() < Duration::from_secs(60), "the step ended");
    util::wait_until(util::PROMPTLY, "the background child to be killed", || processes_with("sleep 98761").is_empty());
    util::wait_until(util::PROMPTLY, "the setsid child to be killed", || processes_with("sleep 98762").is_empty());
}

#[test]
fn a_background_process_that_let_go_of_the_output_is_left_alone() {
    // As the reference: starting a daemon from a step is legitimate.
    let env = TestEnv::new();
    let duration = format!("sleep {}", 200_000 + std::process::id() % 100_000);
    env.write("d.sh", format!("({duration} >/dev/null 2>&1 &)\necho main-done\n"));
    env.cmd(&["run-script", "--script=d.sh"]).run().success().stdout_has("main-done");
    // The detached child may still be between fork and exec: wait for it to show.
    let detached = util::wait_for(util::PROMPTLY, "the detached child to be running", || {
        Some(processes_with(&duration)).filter(|pids| !pids.is_empty())
    });
    for pid in &detached {
        // SAFETY: kill(2) on the pid this test started through the script.
        unsafe {
            libc::kill(*pid as i32, libc::SIGKILL);
        }
    }
    assert_eq!(detached.len(), 1, "detached child keeps running");
}

#[test]
fn timeout_stops_the_whole_group() {
    let env = TestEnv::new();
    let vars = env.variables("v.json", &[("Octopus.Action.Script.Timeout", "1", false)]);
    env.write("t.sh", "trap '' TERM\nsleep 98764 &\necho started\nwhile true; do sleep 0.1; done\n");
    let run = env.cmd(&["run-script", "--script=t.sh", "--variables", vars.to_str().unwrap()]).run();
    run.code(1).stdout_has("started").stderr_has("timed out after 1 seconds");
    util::wait_until(util::PROMPTLY, "the timed-out step's background process to be killed", || {
        processes_with("sleep 98764").is_empty()
    });
}

#[test]
fn sigterm_to_calamari_stops_the_script_group() {
    let env = TestEnv::new();
    env.write("s.sh", "sleep 98765 &\necho started\nwait\n");
    let mut child =
        env.cmd(&["run-script", "--script=s.sh"]).cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    read_until(&mut stdout, "started");
    // SAFETY: kill(2) on the calamari child this test spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{err}");
    assert!(err.contains("cancelled") && err.contains("SIGTERM"), "{err}");
    util::wait_until(util::PROMPTLY, "the cancelled step's background process to be killed", || {
        processes_with("sleep 98765").is_empty()
    });
}

/// 100 MB of output streams through with bounded memory: calamari's peak RSS (VmHWM)
/// stays far below the output size, and every line arrives.
#[test]
fn large_output_streams_with_bounded_memory() {
    let env = TestEnv::new();
    let line = "x".repeat(99);
    let lines = 1_000_000u64; // 100 bytes each with the newline: 100 MB
    env.write("big.sh", format!("yes '{line}' | head -n {lines}\nhead -c 300000 /dev/zero | tr '\\0' a\necho\n"));
    let mut child =
        env.cmd(&["run-script", "--script=big.sh"]).cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watcher = {
        let peak = peak.clone();
        std::thread::spawn(move || {
            while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kb) = status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    peak.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let (mut bytes, mut newlines, mut long_pieces) = (0u64, 0u64, 0u64);
    let mut current = 0u64;
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        bytes += n as u64;
        for b in &buf[..n] {
            if *b == b'\n' {
                if current == 64 * 1024 {
                    long_pieces += 1;
                }
                newlines += 1;
                current = 0;
            } else {
                current += 1;
            }
        }
    }
    assert!(child.wait().unwrap().success());
    watcher.join().unwrap();
    assert!(bytes >= lines * 100, "all output arrived: {bytes} bytes");
    assert!(newlines >= lines, "{newlines} lines");
    assert_eq!(long_pieces, 4, "a 300 kB line comes in 64 KiB pieces, nothing dropped");
    let peak_mb = peak.load(std::sync::atomic::Ordering::Relaxed) / 1024;
    assert!(peak_mb > 0, "peak RSS was measured");
    println!("calamari peak RSS {peak_mb} MB for 100 MB of output");
    assert!(peak_mb < 64, "calamari peak RSS {peak_mb} MB for 100 MB of output");
}

#[test]
fn set_u_and_unknown_syntax() {
    let env = TestEnv::new();
    env.write("u.sh", "set -euo pipefail\nx=$(get_octopusvariable Nope)\necho \"empty:[$x]\"\nset_octopusvariable OnlyName \"\"\necho ok\n");
    let run = env.cmd(&["run-script", "--script=u.sh"]).run();
    run.success().stdout_has("empty:[]").stdout_has("ok");
    env.write("x.csx", "");
    env.cmd(&["run-script", "--script=x.csx"]).run().code(1).stderr_has("no known script syntax");
    let missing = Path::new("missing.sh");
    env.cmd(&["run-script", "--script", missing.to_str().unwrap()]).run().code(1).stderr_has("missing.sh");
}

/// A script that deletes its own directory still gets reported and cleaned up after.
#[test]
fn a_script_deleting_its_own_directory() {
    let env = TestEnv::new();
    let home = env.path("tentacle");
    env.write("gone/s.sh", "cd /\nrm -rf \"$OLDPWD\"\necho deleted\nexit 5\n");
    let run = env.cmd(&["run-script", "--script=gone/s.sh"]).env("TentacleHome", &home).run();
    run.code(5).stdout_has("deleted");
    assert!(!env.path("gone").exists());
    assert_eq!(std::fs::read_dir(home.join("Work")).unwrap().count(), 0, "step directory removed");
}

/// `run-script --package`: the package is extracted into `./staging` and the script named by
/// `--script` or `Octopus.Action.Script.ScriptFileName` runs inside it.
#[test]
fn run_script_runs_a_script_inside_a_package() {
    let env = TestEnv::new();
    let pkg = env.path("Tools.1.0.0.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(std::fs::File::create(&pkg).unwrap(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (name, body) in [
            (
                "scripts/run.sh",
                "echo \"ran in $(basename $(dirname $(pwd)))/$(basename $(pwd)) with $1\"\ncat ../data.txt\n",
            ),
            ("data.txt", "payload\n"),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, name, body.as_bytes()).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
    }
    let package_arg = format!("--package={}", pkg.display());
    env.cmd(&["run-script", &package_arg, "--script=scripts/run.sh", "--scriptParameters=first"])
        .run()
        .success()
        .stdout_has("ran in staging/scripts with first")
        .stdout_has("payload");
    assert!(env.path("staging/data.txt").is_file());
    let vars = env.variables("v.json", &[("Octopus.Action.Script.ScriptFileName", "scripts/run.sh", false)]);
    env.cmd(&["run-script", &package_arg, &format!("--variables={}", vars.display())])
        .run()
        .success()
        .stdout_has("ran in staging_1/scripts with");
    let bad = env.write("bad.tar.gz", "not a gzip stream");
    env.cmd(&["run-script", &format!("--package={}", bad.display()), "--script=x.sh"])
        .run()
        .code(1)
        .stderr_has("bad.tar.gz");
}

/// Reads a running calamari's stdout until `marker` has appeared; returns what was read.
fn read_until(stdout: &mut impl Read, marker: &str) -> String {
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains(marker) {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "calamari ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

/// Two documents, a separator with trailing spaces, and empty documents at the end.
const K8S_MANIFEST: &str =
    "kind: ConfigMap\nmetadata:\n  name: first\n---   \nkind: Secret\nmetadata:\n  name: second\n---\n---";

#[test]
fn bash_reports_kubernetes_manifests_one_message_per_document() {
    let env = TestEnv::new();
    env.write("manifest.yaml", format!("{K8S_MANIFEST}\n\n"));
    env.write(
        "k8s.sh",
        "set -euo pipefail\n\
         report_kubernetes_manifest \"$(get_octopusvariable Manifest)\"\n\
         report_kubernetes_manifest \"$(get_octopusvariable Manifest)\" apps\n\
         report_kubernetes_manifest_file manifest.yaml files\n\
         report_kubernetes_manifest_file missing.yaml\n\
         echo done\n",
    );
    let vars = env.variables("v.json", &[("Manifest", K8S_MANIFEST, false)]);
    let run = env.cmd(&["run-script", "--script=k8s.sh", "--variables", vars.to_str().unwrap()]).run();
    run.success().stdout_has("done");
    let first = b64("kind: ConfigMap\nmetadata:\n  name: first\n");
    let second = b64("kind: Secret\nmetadata:\n  name: second\n");
    let expected: Vec<String> = ["", "apps", "files"]
        .iter()
        .flat_map(|ns| {
            let ns = if ns.is_empty() { String::new() } else { format!(" ns='{}'", b64(ns)) };
            [
                format!("##octopus[k8s-manifest-applied manifest='{first}'{ns}]"),
                format!("##octopus[k8s-manifest-applied manifest='{second}'{ns}]"),
            ]
        })
        .collect();
    let reported: Vec<&str> = run.stdout.lines().filter(|l| l.contains("k8s-manifest-applied")).collect();
    assert_eq!(reported, expected, "{}", run.stdout);
    run.stdout_has("No Kubernetes manifest file was found at 'missing.yaml'.");
}

#[test]
fn python_scripts_see_the_bootstrap_modules_without_importing_them() {
    if !has_python() {
        return;
    }
    let env = TestEnv::new();
    env.write(
        "globals.py",
        "print('args:', sys.argv[1], sys.argv[2])\n\
         print('script:', os.path.basename(sys.argv[0]))\n\
         print('b64:', base64.b64encode(b'hi').decode(), binascii.hexlify(b'hi').decode())\n\
         print('name:', __name__)\n",
    );
    let vars = env.variables("v.json", &[]);
    let run = env
        .cmd(&["run-script", "--script=globals.py", "--scriptParameters=first 'second one'", "--variables"])
        .arg(&vars)
        .run();
    run.success()
        .stdout_has("args: first second one\n")
        .stdout_has("script: globals.py\n")
        .stdout_has("b64: aGk= 6869\n")
        .stdout_has("name: __main__\n");
}

/// Whether `tool` is on the PATH; records a skip when it is not.
fn has_tool(tool: &str) -> bool {
    let ok =
        Command::new("bash").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
    if !ok {
        util::skip(&format!("{tool} is not installed: its form of a secret is not checked"));
    }
    ok
}

/// A secret printed through a common encoder is masked too: `base64` wrapping a 100-byte
/// secret at 76 columns, its URL-safe form, hex dumps (`xxd -p`, `od -An -tx1`,
/// `hexdump -C`, `hexdump`) and Python's `json.dumps` of a non-ASCII secret. No piece of
/// the secret long enough to be masked (8 base64 characters, 4 bytes in hex or in clear)
/// appears anywhere, and the marker lines between the forms all do.
#[test]
fn secrets_are_masked_in_encoded_forms() {
    let env = TestEnv::new();
    // 100 printable bytes whose base64 holds `+` and `/`.
    let mut long = String::from("k3y>>>?");
    while long.len() < 100 {
        long.push_str(&format!("{}-~>?", long.len()));
    }
    long.truncate(100);
    let unicode = "pässwörd-€-😀-gehéim";
    let vars = env.variables("v.json", &[("Long", &long, true), ("Uni", unicode, true)]);
    let mut script = String::from("set -euo pipefail\npw=$(get_octopusvariable Long)\necho marker-start\n");
    let mut markers = vec!["marker-start"];
    let mut form = |tool: &str, command: &str, marker: &'static str| {
        if has_tool(tool) {
            script.push_str(&format!("{command}\necho {marker}\n"));
            markers.push(marker);
        }
    };
    form("base64", "printf '%s' \"$pw\" | base64", "marker-base64");
    form("base64", "printf 'prefix:%s:suffix' \"$pw\" | base64", "marker-base64-inside");
    form("tr", "printf '%s' \"$pw\" | base64 | tr '+/' '-_'", "marker-url-safe");
    form("xxd", "printf '%s' \"$pw\" | xxd -p", "marker-xxd");
    form("xxd", "printf '%s' \"$pw\" | xxd -p -u", "marker-xxd-upper");
    form("od", "printf '%s' \"$pw\" | od -An -tx1", "marker-od");
    form("hexdump", "printf '%s' \"$pw\" | hexdump -C", "marker-hexdump-c");
    form("hexdump", "printf '%s' \"$pw\" | hexdump", "marker-hexdump");
    form(
        "python3",
        "python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' \"$(get_octopusvariable Uni)\" >&2",
        "marker-json",
    );
    env.write("enc.sh", &script);
    let run = env.cmd(&["run-script", "--script=enc.sh", "--variables"]).arg(&vars).run();
    run.success();
    for marker in &markers {
        run.stdout_has(&format!("{marker}\n"));
    }
    let output = format!("{}{}", run.stdout, run.stderr);
    let safe = |s: &str| s.replace('+', "-").replace('/', "_");
    // Base64: any 8 stable characters of the secret's encoding at any of the three offsets.
    for shift in 0..3 {
        let encoded = b64(&format!("{}{long}", "\0".repeat(shift)));
        let core = &encoded[[0, 2, 3][shift]..encoded.trim_end_matches('=').len() - 1];
        for i in 0..=core.len() - 8 {
            for piece in [core[i..i + 8].to_string(), safe(&core[i..i + 8])] {
                assert!(!output.contains(&piece), "base64 piece {piece:?} of the secret printed:\n{output}");
            }
        }
    }
    // Hex and the dumps' ASCII column: any 4 bytes of the secret, in any case and spacing.
    for window in long.as_bytes().windows(4) {
        let lower: String = window.iter().map(|b| format!("{b:02x}")).collect();
        let spaced: Vec<String> = window.iter().map(|b| format!("{b:02x}")).collect();
        for piece in [lower.clone(), lower.to_uppercase(), spaced.join(" "), String::from_utf8_lossy(window).into()] {
            assert!(!output.contains(&piece), "piece {piece:?} of the secret printed:\n{output}");
        }
    }
    let escaped = "p\\u00e4ssw\\u00f6rd-\\u20ac-\\ud83d\\ude00-geh\\u00e9im";
    for needle in [long.as_str(), unicode, escaped] {
        run.output_lacks(needle);
    }
    if markers.contains(&"marker-json") {
        run.stderr_has("\"********\"");
    }
}

#[test]
fn bash_target_helpers_artifact_paths_and_environment_as_the_reference() {
    let env = TestEnv::new();
    let body = "mkdir -p sub; echo x > sub/a.txt\n\
                new_octopusartifact ./sub/../sub/a.txt\n\
                new_octopustarget -n web -t t-1 --inputs '{}' --roles web,api --worker-pool pool --update-if-existing\n\
                new_octopustarget --name api --target-id t-2 --inputs '{\"a\":1}' --roles api\n\
                remove-octopustarget web-01\n\
                remove_octopustarget web-02\n\
                new_octopustarget --bogus x || echo \"refused $?\"\n";
    env.write("targets.sh", body);
    let run = env.cmd(&["run-script", "--script=targets.sh"]).run();
    run.success().stderr_has("Error: Unknown option: --bogus\n").stdout_has("refused 1\n");
    let full = env.path("sub/a.txt").canonicalize().unwrap();
    let expected = [
        format!(
            "##octopus[createArtifact path='{}' name='{}' length='{}']",
            b64(full.to_str().unwrap()),
            b64("a.txt"),
            b64("2")
        ),
        format!(
            "##octopus[createStepPackageTarget  name='{}' targetId='{}' inputs='{}' octopusRoles='{}' octopusDefaultWorkerPoolIdOrName='{}' updateIfExisting='{}']",
            b64("web"),
            b64("t-1"),
            b64("{}"),
            b64("web,api"),
            b64("pool"),
            b64("true")
        ),
        format!(
            "##octopus[createStepPackageTarget  name='{}' targetId='{}' inputs='{}' octopusRoles='{}']",
            b64("api"),
            b64("t-2"),
            b64("{\"a\":1}"),
            b64("api")
        ),
        format!("##octopus[delete-target machine='{}']", b64("web-01")),
        format!("##octopus[delete-target machine='{}']", b64("web-02")),
    ];
    for line in expected {
        assert!(run.stdout.lines().any(|l| l == line), "stdout lacks {line}\n{}", run.stdout);
    }
    // The environment block holds what `uname -a` and `whoami` print.
    let command = |program: &str, arg: &str| {
        let out = Command::new(program).arg(arg).output().expect("coreutils");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    run.stdout_has(&format!("  OperatingSystem: {}\n", command("uname", "-a")))
        .stdout_has(&format!("  CurrentUser: {}\n", command("id", "-un")));
}

#[test]
fn python_helpers_as_the_reference_the_version_set_variables_and_an_empty_fail_message() {
    if !has_python() {
        return;
    }
    let env = TestEnv::new();
    env.write(
        "ref.py",
        "set_octopusvariable('Colour', 'green')\n\
         print('after set:', get_octopusvariable('Colour'), octopusvariables['Colour'], get_octopusvariable('colour'))\n\
         set_octopusvariable('Empty', '')\n\
         failstep('')\n\
         print('unreachable')\n",
    );
    let vars = env.variables("v.json", &[("Colour", "blue", false)]);
    let run = env.cmd(&["run-script", "--script=ref.py", "--variables"]).arg(&vars).run();
    let version = Command::new("python3").args(["-c", "import sys; print(sys.version)"]).output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    run.code(255)
        .stdout_has(&format!("{version}##octopus[stdout-default]\n"))
        .stdout_has("after set: green green green\n")
        .stdout_has("##octopus[resultMessage message='']")
        .output_lacks("unreachable");
    // The interpreter's version, at verbose level, before the script's first line.
    let at = run.stdout.find(&version).unwrap();
    let level = run.stdout[..at].rfind("##octopus[stdout-").unwrap();
    assert!(run.stdout[level..].starts_with("##octopus[stdout-verbose]"), "{}", run.stdout);
    assert!(at < run.stdout.find("after set:").unwrap(), "{}", run.stdout);
    assert_eq!(run.output_variable("Colour").as_deref(), Some("green"));
    assert_eq!(run.output_variable("Empty").as_deref(), Some(""));
}

#[test]
fn bash_artifacts_environment_state_and_information_as_the_reference() {
    let env = TestEnv::new();
    env.write(
        "ref.sh",
        "set -euo pipefail\n\
         echo x > a.txt\n\
         new_octopusartifact a.txt\n\
         set_environmentstate K V -sensitive Url\n\
         set_environmentstate K V '' ''\n\
         set_environmentstate '' ''\n\
         log_environment_information\n\
         new_octopusartifact missing.txt || echo \"refused $?\"\n",
    );
    let run = env.cmd(&["run-script", "--script=ref.sh"]).run();
    run.code(1)
        .stdout_has(
            "Collecting a.txt as an artifact...\n##octopus[stdout-verbose]\nArtifact a.txt will be collected from ",
        )
        // (a sensitive one is written again by Calamari, with the value masked from then on)
        .stdout_has(&format!(
            "##octopus[set-environmentstate key=\"{}\" value=\"{}\" sensitive=\"{}\" type=\"{}\"]\n",
            b64("K"),
            b64("V"),
            b64("True"),
            b64("Url")
        ))
        .stdout_has(&format!(
            "##octopus[set-environmentstate key='{}' value='{}' type='{}']\n",
            b64("K"),
            b64("V"),
            b64("State")
        ))
        .stdout_has(&format!("##octopus[set-environmentstate type='{}']\n", b64("State")))
        .stdout_has("Collecting missing.txt as an artifact...\n")
        .stderr_has("Error: Could not find the file 'missing.txt' to collect as an artifact.");
    // Calamari's block before the script, then the function's, with the same fields.
    assert_eq!(run.stdout.matches("Bash Environment Information:\n").count(), 2, "{}", run.stdout);
    let pid_line = run.stdout.lines().filter(|l| l.starts_with("  HostProcessID: ")).nth(1).unwrap();
    assert!(pid_line["  HostProcessID: ".len()..].parse::<u32>().is_ok(), "{pid_line}");
    let cpus = Command::new("getconf").arg("_NPROCESSORS_ONLN").output().unwrap();
    let cpus = String::from_utf8(cpus.stdout).unwrap();
    assert_eq!(run.stdout.matches(&format!("  ProcessorCount: {}\n", cpus.trim())).count(), 2, "{}", run.stdout);

    // Suppressed: neither block.
    env.write("info.sh", "log_environment_information\necho done\n");
    let vars = env.variables("v.json", &[("Octopus.Action.Script.SuppressEnvironmentLogging", "True", false)]);
    let run = env.cmd(&["run-script", "--script=info.sh", "--variables"]).arg(&vars).run();
    run.success().stdout_has("done\n").output_lacks("Environment Information");
}
