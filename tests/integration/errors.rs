//! The exit-code policy and the shape of errors an agent sees: a lock held too long is the
//! same failure (exit 1, naming the lock) wherever it happens, and `OctopusLastError` holds
//! the error's message chain, never Rust debug text.

use std::os::fd::AsRawFd as _;
use std::path::PathBuf;

use crate::util::TestEnv;

/// Holds an exclusive `flock` on `path` for as long as it lives (this process is the holder).
struct HeldLock {
    _file: std::fs::File,
}

impl HeldLock {
    fn on(path: &std::path::Path) -> HeldLock {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
        // SAFETY: flock on a descriptor we own; it is released when the file is closed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(rc, 0, "could not take {}", path.display());
        HeldLock { _file: file }
    }
}

#[test]
fn an_install_lock_held_too_long_exits_1_naming_the_lock() {
    let env = TestEnv::new();
    let home = env.path("tentacle");
    let lock = home.join("Calamari/.install.lock");
    let _held = HeldLock::on(&lock);
    let run = env.cmd(&["install", "--home", home.to_str().unwrap(), "--lockTimeout", "1"]).run();
    run.code(1)
        .stdout_has("Waiting for another Calamari install to finish")
        .stderr_has(&format!("Timed out after 1 seconds waiting for the install lock '{}'", lock.display()));
    assert!(!home.join(format!("Calamari/{}/Success.txt", env!("CARGO_PKG_VERSION"))).exists());
    drop(_held);
    env.cmd(&["install", "--home", home.to_str().unwrap(), "--lockTimeout", "1"]).run().success();
}

/// A tar.gz holding `files` (path, contents).
fn package(env: &TestEnv, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let files: Vec<(&str, &[u8], u32)> = files.iter().map(|(p, c)| (*p, c.as_bytes(), 0o644)).collect();
    crate::util::tar_gz(env, name, &files)
}

#[test]
fn a_failed_script_fails_the_deployment_with_its_exit_code_and_octopus_last_error_is_the_message() {
    let env = TestEnv::new();
    let pkg = package(
        &env,
        "Acme.Fail.1.0.0.tar.gz",
        &[
            ("Deploy.sh", "echo deploying\nexit 7\n"),
            (
                "DeployFailed.sh",
                "echo \"LastError=[$(get_octopusvariable OctopusLastError)]\"\necho \"LastErrorMessage=[$(get_octopusvariable OctopusLastErrorMessage)]\"\n",
            ),
        ],
    );
    let apps = env.path("Applications");
    let vars = env
        .variables("vars.json", &[("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.to_str().unwrap(), false)]);
    let run = env
        .cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", vars.display())])
        .run();
    let script = apps.join("Acme.Fail/1.0.0/Deploy.sh");
    let message = format!("Script '{}' returned non-zero exit code: 7. Deployment terminated.", script.display());
    run.code(1)
        .stdout_has("deploying")
        .stderr_has(&message)
        .stdout_has(&format!("LastError=[{message}]"))
        .stdout_has(&format!("LastErrorMessage=[{message}]"))
        .output_lacks("ScriptFailed")
        .output_lacks("Deployment(");
}

#[test]
fn a_recursive_definition_met_while_choosing_the_staging_directory_exits_101() {
    let env = TestEnv::new();
    let pkg = package(&env, "Acme.Loop.1.0.0.tar.gz", &[("index.html", "hi")]);
    let vars = env.variables(
        "vars.json",
        &[
            ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", "#{Root}", false),
            ("Root", "#{Apps}/x", false),
            ("Apps", "#{Root}", false),
        ],
    );
    let run = env
        .cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", vars.display())])
        .run();
    run.code(101).stderr_has("Octopus.Tentacle.Agent.ApplicationDirectoryPath").stderr_has("Root");
    let extract = env
        .cmd(&["extract-package", &format!("--package={}", pkg.display()), &format!("--variables={}", vars.display())])
        .run();
    extract.code(101);
}
