//! The Ansible role `contrib/ansible/roles/calamari` with ansible-core against the real
//! sshd servers of `sshd.rs`: the first run installs Calamari from a bundle built by the
//! binary, deploys a package with an encrypted variables file and returns
//! `calamari_result`; the example playbook run again does not re-install; a failing
//! script fails the play unless ignored; a bad bundle hash fails the install, a wrong
//! password or an unknown extra argument the run; two plays at once install once; the
//! password is in no process's argv while the plays run, and the work directories are gone
//! after.
//!
//! Skipped when `ansible-playbook` is missing (`.ci/install.d/ssh.sh` installs ansible-core)
//! or sshd cannot run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::sshd::SshFleet;
use crate::util::{self, TestEnv, tar_gz};

const INSTANCE: &str = "OctopusServer";
const PASSWORD: &str = "pw-Ansible-7f3a-never-in-argv";
const TOKEN: &str = "tok-Ansible-sensitive-value";
/// A play on a loaded machine: ansible-core spends seconds per task in Python start-up.
const PLAY_TIMEOUT: Duration = Duration::from_secs(900);

fn version() -> String {
    let out = Command::new(util::bin()).arg("version").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn roles_path() -> PathBuf {
    util::repo_root().join("contrib/ansible/roles")
}

fn example_playbook() -> PathBuf {
    util::repo_root().join("contrib/ansible/example-playbook.yml")
}

/// `None` (after a skip) when ansible-playbook does not run here.
fn ansible_available() -> Option<()> {
    let ok = Command::new("ansible-playbook")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(())
    } else {
        util::skip("ansible-playbook is not installed (.ci/install.d/ssh.sh installs ansible-core)");
        None
    }
}

/// The controller side of one test: inventory, private Ansible directories, the inputs.
struct Controller {
    env: TestEnv,
    inventory: PathBuf,
    /// Numbers each play's output files, so plays may run at once.
    plays: AtomicUsize,
}

impl Controller {
    /// Writes an inventory for `fleet` (group `calamari_targets`, the example playbook's)
    /// with `vars` as group variables, an empty ansible.cfg and Ansible's own directories.
    fn new(env: TestEnv, fleet: &SshFleet, vars: &[(&str, String)]) -> Controller {
        let mut inv = String::from("[calamari_targets]\n");
        for host in &fleet.hosts {
            inv.push_str(&format!("{a} ansible_host={a}\n", a = host.alias));
        }
        inv.push_str("\n[calamari_targets:vars]\n");
        inv.push_str(&format!("ansible_ssh_common_args='-F {}'\n", fleet.ssh_config.display()));
        inv.push_str("ansible_pipelining=true\n");
        for (k, v) in vars {
            inv.push_str(&format!("{k}={v}\n"));
        }
        let inventory = env.write("inventory.ini", inv);
        env.write("ansible.cfg", "");
        for dir in ["ansible-home", "ansible-local-tmp", "cp"] {
            std::fs::create_dir_all(env.path(dir)).unwrap();
        }
        Controller { env, inventory, plays: AtomicUsize::new(0) }
    }

    /// `ansible-playbook -i <inventory> <playbook> <args>` with the role on the roles path
    /// and private temp/control directories; `env` adds variables. Waits up to
    /// [`PLAY_TIMEOUT`].
    fn play(&self, playbook: &Path, args: &[&str], env: &[(&str, &str)]) -> util::Run {
        let mut cmd = Command::new("ansible-playbook");
        cmd.arg("-i").arg(&self.inventory).arg(playbook).args(args).current_dir(self.env.root());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ANSIBLE_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env("ANSIBLE_CONFIG", self.env.path("ansible.cfg"))
            .env("ANSIBLE_ROLES_PATH", roles_path())
            .env("ANSIBLE_HOME", self.env.path("ansible-home"))
            .env("ANSIBLE_LOCAL_TEMP", self.env.path("ansible-local-tmp"))
            // `~` is each host's own $HOME (sshd.rs gives every host its own).
            .env("ANSIBLE_REMOTE_TEMP", "~/.ansible/tmp")
            .env("ANSIBLE_SSH_CONTROL_PATH_DIR", self.env.path("cp"))
            .env("ANSIBLE_PYTHON_INTERPRETER", "auto_silent")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "false")
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let n = self.plays.fetch_add(1, Ordering::Relaxed);
        let out = self.env.path(format!("play-{n}.out"));
        let err = self.env.path(format!("play-{n}.err"));
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let mut child = cmd.spawn().expect("spawn ansible-playbook");
        let deadline = Instant::now() + PLAY_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ansible-playbook ran longer than {PLAY_TIMEOUT:?}: {}", std::fs::read_to_string(&out).unwrap());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        util::Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&out).unwrap(),
            stderr: std::fs::read_to_string(&err).unwrap(),
        }
    }

    /// A playbook that runs the role and writes each host's `calamari_result` to
    /// `results/<host>.json` on the controller.
    fn result_playbook(&self) -> PathBuf {
        let results = self.env.path("results");
        std::fs::create_dir_all(&results).unwrap();
        self.env.write(
            "play.yml",
            format!(
                "- name: Run the calamari role\n  hosts: calamari_targets\n  gather_facts: false\n  roles:\n    - role: calamari\n  \
                 post_tasks:\n    - name: Keep calamari_result\n      ansible.builtin.copy:\n        \
                 content: \"{{{{ calamari_result | to_json }}}}\"\n        dest: \"{}/{{{{ inventory_hostname }}}}.json\"\n      \
                 delegate_to: localhost\n",
                results.display()
            ),
        )
    }

    fn result(&self, host: &str) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.env.path(format!("results/{host}.json"))).expect("calamari_result written");
        serde_json::from_str(&text).expect("calamari_result is JSON")
    }
}

/// The lines Ansible printed for one task, from its `TASK [...]` header to the next.
fn task_output<'a>(stdout: &'a str, task: &str) -> &'a str {
    let header = format!("TASK [calamari : {task}]");
    let start = stdout.find(&header).unwrap_or_else(|| panic!("no task '{task}' in:\n{stdout}"));
    let rest = &stdout[start + header.len()..];
    let end = rest.find("\nTASK [").or_else(|| rest.find("\nPLAY RECAP")).unwrap_or(rest.len());
    &rest[..end]
}

/// Reads every process's argv from /proc in a loop until stopped, keeping any that holds
/// the password.
struct ArgvWatch {
    stop: Arc<AtomicBool>,
    scans: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<BTreeSet<String>>>,
}

impl ArgvWatch {
    fn start(secret: &'static str) -> ArgvWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let scans = Arc::new(AtomicUsize::new(0));
        let (s, n) = (stop.clone(), scans.clone());
        let thread = std::thread::spawn(move || {
            let mut found = BTreeSet::new();
            while !s.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    if let Ok(argv) = std::fs::read(entry.path().join("cmdline"))
                        && argv.windows(secret.len()).any(|w| w == secret.as_bytes())
                    {
                        found.insert(String::from_utf8_lossy(&argv).replace('\0', " "));
                    }
                }
                n.fetch_add(1, Ordering::Relaxed);
            }
            found
        });
        ArgvWatch { stop, scans, thread: Some(thread) }
    }

    /// Stops and asserts no argv held the secret.
    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let found = self.thread.take().unwrap().join().unwrap();
        assert!(self.scans.load(Ordering::Relaxed) > 10, "the argv scan hardly ran");
        assert!(found.is_empty(), "the password was on a command line: {found:?}");
    }
}

fn work_entries(fleet: &SshFleet) -> Vec<String> {
    let mut left = Vec::new();
    for host in &fleet.hosts {
        for dir in [host.tentacle_home(INSTANCE).join("Work"), host.home.join(".ansible/tmp")] {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                left.extend(entries.flatten().map(|e| e.path().display().to_string()));
            }
        }
    }
    left
}

fn bundle(env: &TestEnv) -> PathBuf {
    env.cmd(&["bundle", "--output", "dist"]).run().success();
    let bundle = env.path(format!("dist/Calamari.{}.tar.gz", version()));
    assert!(bundle.is_file());
    bundle
}

fn success_txt(fleet: &SshFleet, i: usize) -> PathBuf {
    fleet.hosts[i].tentacle_home(INSTANCE).join(format!("Calamari/{}/Success.txt", version()))
}

#[test]
fn the_role_installs_once_deploys_and_returns_output_variables() {
    if ansible_available().is_none() {
        return;
    }
    let Some(fleet) = SshFleet::start(2) else { return };
    let env = TestEnv::new();
    let bundle = bundle(&env);
    let package = tar_gz(
        &env,
        "Acme.Web.1.0.0.tar.gz",
        &[
            ("index.html", b"Hello #{Name}", 0o644),
            (
                "Deploy.sh",
                format!("echo deployed\nset_octopusvariable Where \"$PWD\"\nset_octopusvariable Token \"{TOKEN}\" -sensitive\n")
                    .as_bytes(),
                0o755,
            ),
        ],
    );
    let json = util::variables_json(&[
        ("Octopus.Action.EnabledFeatures", "Octopus.Features.SubstituteInFiles", false),
        ("Octopus.Action.SubstituteInFiles.TargetFiles", "index.html", false),
        ("Name", "Ansible", false),
    ]);
    let variables = env.write("vars.bin", calamari::encrypt_variables(json.as_bytes(), PASSWORD));
    let secrets = env.write("secrets.yml", format!("calamari_variables_password: \"{PASSWORD}\"\n"));
    let ctl = Controller::new(
        env,
        &fleet,
        &[
            ("calamari_bundle", bundle.display().to_string()),
            ("calamari_package", package.display().to_string()),
            ("calamari_variables_file", variables.display().to_string()),
        ],
    );

    // First run: installs on both hosts, deploys, returns calamari_result.
    let watch = ArgvWatch::start(PASSWORD);
    let playbook = ctl.result_playbook();
    // Without pipelining (Ansible's default) the module arguments, the password among them,
    // go through a file in the remote temp directory, which must be gone afterwards.
    let secrets_arg = format!("@{}", secrets.display());
    let run = ctl.play(&playbook, &["-e", &secrets_arg, "-e", "ansible_pipelining=false"], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let install = task_output(&run.stdout, "calamari install");
    assert!(install.contains("changed: [host1]") && install.contains("changed: [host2]"), "{install}");
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert!(success_txt(&fleet, i).is_file(), "no Success.txt on {}", host.alias);
        let result = ctl.result(&host.alias);
        assert_eq!(result["rc"], 0, "{result}");
        let vars = &result["output_variables"];
        let where_ = vars["Where"].as_str().expect("the script's output variable");
        assert!(Path::new(where_).starts_with(&host.home), "{where_} is not under {}", host.home.display());
        assert_eq!(std::fs::read_to_string(Path::new(where_).join("index.html")).unwrap(), "Hello Ansible");
        assert_eq!(vars["Package.ExtractedFileCount"], "2");
        assert_eq!(vars["Token"], "********", "a sensitive output variable is masked");
        let lines: Vec<&str> = result["stdout_lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        assert!(lines.contains(&"deployed"), "{lines:?}");
        let text = result.to_string();
        let token_b64 = calamari::ServiceMessage::encode_value(TOKEN);
        assert!(!text.contains(TOKEN) && !text.contains(&token_b64), "the sensitive value leaked: {text}");
    }
    assert!(!run.stdout.contains(PASSWORD) && !run.stdout.contains(TOKEN), "{}", run.stdout);
    assert_eq!(work_entries(&fleet), Vec::<String>::new(), "work or temp directories left behind");
    let mtimes: Vec<_> =
        (0..2).map(|i| std::fs::metadata(success_txt(&fleet, i)).unwrap().modified().unwrap()).collect();

    // Again with the example playbook (password from the environment): nothing installed.
    let run = ctl.play(&example_playbook(), &[], &[("CALAMARI_VARIABLES_PASSWORD", PASSWORD)]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let install = task_output(&run.stdout, "calamari install");
    assert!(install.contains("skipping: [host1]") && install.contains("skipping: [host2]"), "{install}");
    assert!(!install.contains("changed:"), "{install}");
    for (i, mtime) in mtimes.iter().enumerate() {
        assert_eq!(&std::fs::metadata(success_txt(&fleet, i)).unwrap().modified().unwrap(), mtime, "re-installed");
    }
    assert!(run.stdout.contains("\"Where\": \"") && run.stdout.contains("\"Token\": \"********\""), "{}", run.stdout);
    assert!(!run.stdout.contains(PASSWORD), "{}", run.stdout);
    watch.finish();
    assert_eq!(work_entries(&fleet), Vec::<String>::new(), "work or temp directories left behind");
}

#[test]
fn a_failing_script_fails_the_play_unless_ignored_and_bad_inputs_fail_it() {
    if ansible_available().is_none() {
        return;
    }
    let Some(fleet) = SshFleet::start(1) else { return };
    let env = TestEnv::new();
    let bundle = bundle(&env);
    // Without the .sha256 beside it the role computes the hash on the controller.
    std::fs::remove_file(format!("{}.sha256", bundle.display())).unwrap();
    let package = tar_gz(&env, "Acme.Fail.1.0.0.tar.gz", &[("Deploy.sh", b"echo about to fail\nexit 3\n", 0o755)]);
    let variables = env.variables("vars.json", &[("Name", "plain", false)]);
    let ctl = Controller::new(
        env,
        &fleet,
        &[
            ("calamari_bundle", bundle.display().to_string()),
            ("calamari_package", package.display().to_string()),
            ("calamari_variables_file", variables.display().to_string()),
        ],
    );
    let playbook = ctl.result_playbook();

    // A wrong hash: calamari install refuses the bundle, nothing is installed.
    let wrong = "0".repeat(64);
    let run = ctl.play(&playbook, &["-e", &format!("calamari_bundle_sha256={wrong}")], &[]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(task_output(&run.stdout, "calamari install").contains("fatal: [host1]"), "{}", run.stdout);
    assert!(!success_txt(&fleet, 0).exists());
    assert_eq!(work_entries(&fleet), Vec::<String>::new(), "the install's temp directory left behind");

    // The script fails: so does the play, with calamari's exit code and output.
    let run = ctl.play(&playbook, &[], &[]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(success_txt(&fleet, 0).is_file(), "installed with the computed hash");
    let failed = task_output(&run.stdout, "Fail when calamari deploy-package failed");
    assert!(
        failed.contains("fatal: [host1]") && failed.contains("calamari deploy-package exited with code"),
        "{failed}"
    );
    assert!(failed.contains("about to fail"), "{failed}");
    assert!(!ctl.env.path("results/host1.json").exists(), "the play went on after the failure");
    assert_eq!(work_entries(&fleet), Vec::<String>::new(), "the work directory left behind on failure");

    // Ignored: the play succeeds and calamari_result carries the exit code.
    let run = ctl.play(&playbook, &["-e", "calamari_ignore_errors=true"], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let result = ctl.result("host1");
    let rc = result["rc"].as_i64().expect("rc is a number");
    assert_ne!(rc, 0, "{result}");
    assert!(result["stdout_lines"].as_array().unwrap().iter().any(|l| l == "about to fail"), "{result}");
    assert_eq!(work_entries(&fleet), Vec::<String>::new());

    // An encrypted variables file with the wrong password: Calamari's message, not the password.
    let encrypted = ctl.env.write("vars.bin", calamari::encrypt_variables(b"[]", PASSWORD));
    let wrong = ctl.env.write(
        "wrong.yml",
        format!("calamari_variables_file: \"{}\"\ncalamari_variables_password: \"{TOKEN}\"\n", encrypted.display()),
    );
    let run = ctl.play(&playbook, &["-e", &format!("@{}", wrong.display())], &[]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let failed = task_output(&run.stdout, "Fail when calamari deploy-package failed");
    assert!(failed.contains("wrong password or corrupt file"), "{failed}");
    assert!(!run.stdout.contains(TOKEN) && !run.stdout.contains(PASSWORD), "{}", run.stdout);
    assert_eq!(work_entries(&fleet), Vec::<String>::new());

    // calamari_extra_args reach the command line: Calamari refuses an unknown option.
    let run = ctl.play(&playbook, &["-e", r#"{"calamari_extra_args": ["--noSuchOption"]}"#], &[]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let failed = task_output(&run.stdout, "Fail when calamari deploy-package failed");
    assert!(
        failed.contains("exited with code 1") && failed.contains("unexpected argument '--noSuchOption'"),
        "{failed}"
    );
}

#[test]
fn two_plays_at_once_install_once() {
    if ansible_available().is_none() {
        return;
    }
    let Some(fleet) = SshFleet::start(1) else { return };
    let env = TestEnv::new();
    let bundle = bundle(&env);
    let package = tar_gz(&env, "Acme.Both.1.0.0.tar.gz", &[("Deploy.sh", b"echo deployed\n", 0o755)]);
    let ctl = Controller::new(
        env,
        &fleet,
        &[("calamari_bundle", bundle.display().to_string()), ("calamari_package", package.display().to_string())],
    );
    let playbook = ctl.result_playbook();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| ctl.play(&playbook, &[], &[]));
        let b = s.spawn(|| ctl.play(&playbook, &[], &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    for run in [&a, &b] {
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    }
    // Whether the second play found Success.txt already (the install skipped) or installed
    // after waiting for the first one's lock (Calamari said it was already installed), one
    // play installed.
    let installs =
        [&a, &b].iter().filter(|r| task_output(&r.stdout, "calamari install").contains("changed: [host1]")).count();
    assert_eq!(installs, 1, "{}\n----\n{}", a.stdout, b.stdout);
    assert!(success_txt(&fleet, 0).is_file());
    let calamari_dir = fleet.hosts[0].tentacle_home(INSTANCE).join("Calamari");
    let mut versions: Vec<String> = std::fs::read_dir(&calamari_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    versions.sort();
    assert_eq!(versions, vec![version()], "leftovers in {}", calamari_dir.display());
    assert_eq!(work_entries(&fleet), Vec::<String>::new());
}
