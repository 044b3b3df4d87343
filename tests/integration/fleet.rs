//! `calamari fleet` against real sshd servers on loopback (see `sshd.rs`): first push, no
//! re-push, half-installed repaired, two drivers at once, a dropped connection, a full
//! disk, parallel and batch limits, maxFailPercentage, the report, quoting, the password
//! never in any process's argv.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::sshd::{HostSpec, SshFleet};
use crate::util::{self, TestEnv, tar_gz};

const INSTANCE: &str = "OctopusServer";

fn version() -> String {
    let out = std::process::Command::new(util::bin()).arg("version").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn report(path: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written")).expect("report is JSON")
}

fn fleet(env: &TestEnv, fleet: &SshFleet, args: &[&str]) -> util::TestCommand {
    let mut all: Vec<String> = vec!["fleet".into()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.extend(fleet.fleet_args());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    // One bundle cache for all the tests: the bundle of this build is made once.
    env.cmd(&refs).env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-cache"))
}

/// A package with a substitution target and a deploy script that sets an output variable.
fn web_package(env: &TestEnv) -> std::path::PathBuf {
    tar_gz(
        env,
        "Acme.Web.1.0.0.tar.gz",
        &[
            ("index.html", b"Hello #{Name}", 0o644),
            ("Deploy.sh", b"echo \"deployed on $(hostname)\"\nset_octopusvariable Where \"$PWD\"\n", 0o755),
        ],
    )
}

fn deploy_variables(env: &TestEnv) -> std::path::PathBuf {
    env.variables(
        "vars.json",
        &[
            ("Octopus.Action.EnabledFeatures", "Octopus.Features.SubstituteInFiles", false),
            ("Octopus.Action.SubstituteInFiles.TargetFiles", "index.html", false),
            ("Name", "Fleet", false),
        ],
    )
}

#[test]
fn first_push_then_no_repush_and_the_report() {
    let Some(hosts) = SshFleet::start(3) else { return };
    let env = TestEnv::new();
    web_package(&env);
    deploy_variables(&env);
    let run = fleet(
        &env,
        &hosts,
        &["deploy-package", "--package=Acme.Web.1.0.0.tar.gz", "--variables=vars.json", "--report=report.json"],
    )
    .run();
    run.success().stdout_has("host1 | ").stdout_has("3 of 3 hosts succeeded").stdout_has("Pushing Calamari");
    let v = version();
    let entries = report(&env.path("report.json"));
    assert_eq!(entries.len(), 3);
    for (entry, host) in entries.iter().zip(&hosts.hosts) {
        assert_eq!(entry["host"], host.alias.as_str());
        assert_eq!(entry["exitCode"], 0, "{entry}");
        assert_eq!(entry["pushedCalamari"], true);
        assert!(entry["seconds"].as_f64().unwrap() > 0.0);
        let th = host.tentacle_home(INSTANCE);
        assert!(th.join(format!("Calamari/{v}/Success.txt")).is_file());
        assert!(th.join("Files/Acme.Web.1.0.0.tar.gz").is_file());
        let where_ = entry["outputVariables"]["Where"].as_str().expect("output variable collected");
        assert_eq!(std::fs::read_to_string(Path::new(where_).join("index.html")).unwrap(), "Hello Fleet");
        // The work directory is gone.
        assert_eq!(std::fs::read_dir(th.join("Work")).unwrap().count(), 0, "work directories left behind");
    }

    // Again: nothing pushed, the package is not sent again.
    let run = fleet(
        &env,
        &hosts,
        &["deploy-package", "--package=Acme.Web.1.0.0.tar.gz", "--variables=vars.json", "--report=report.json"],
    )
    .run();
    run.success().stdout_has("in the remote cache with the same hash: not sent");
    assert!(!run.stdout.contains("Pushing Calamari"), "{}", run.stdout);
    for entry in report(&env.path("report.json")) {
        assert_eq!(entry["pushedCalamari"], false, "{entry}");
        assert_eq!(entry["exitCode"], 0);
    }
}

fn entry<'a>(entries: &'a [serde_json::Value], host: &str) -> &'a serde_json::Value {
    entries.iter().find(|e| e["host"] == host).unwrap_or_else(|| panic!("{host} not in the report"))
}

#[test]
fn check_reports_half_installs_which_are_repaired_then_prune() {
    let Some(hosts) = SshFleet::start(2) else { return };
    let env = TestEnv::new();
    let v = version();
    // host1: this version half-installed (no Success.txt); host2: only an older version.
    let half = hosts.hosts[0].tentacle_home(INSTANCE).join(format!("Calamari/{v}"));
    std::fs::create_dir_all(&half).unwrap();
    std::fs::write(half.join("calamari"), b"truncated").unwrap();
    let old = hosts.hosts[1].tentacle_home(INSTANCE).join("Calamari/0.0.1");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("Success.txt"), b"").unwrap();

    let run = fleet(&env, &hosts, &["check", "--report=check.json"]).run();
    run.success()
        .stdout_has(&format!("host1 | Incomplete (no Success.txt): {v}"))
        .stdout_has(&format!("host1 | This build's version {v}: incomplete"))
        .stdout_has("host1 | warning: No versions of Calamari are installed.")
        .stdout_has("host2 | Installed Calamari versions: 0.0.1")
        .stdout_has(&format!("host2 | warning: Not running latest version of Calamari. Expected: {v}"))
        .stdout_has("Free disk space under $HOME/.octopus: ");
    let entries = report(&env.path("check.json"));
    assert_eq!(entry(&entries, "host1")["check"]["complete"], false);
    assert!(entry(&entries, "host2")["check"]["freeBytes"].as_u64().unwrap() > 0);

    env.write("hello.sh", "echo \"hello from fleet\"\n");
    let run = fleet(&env, &hosts, &["run-script", "--script=hello.sh", "--report=run.json"]).run();
    run.success().stdout_has("host1 | hello from fleet").stdout_has("host2 | hello from fleet");
    for e in report(&env.path("run.json")) {
        assert_eq!(e["pushedCalamari"], true, "{e}");
    }
    assert!(half.join("Success.txt").is_file(), "the half install was repaired");
    assert!(std::fs::metadata(half.join("calamari")).unwrap().len() > 1000, "the truncated binary was replaced");

    let run = fleet(&env, &hosts, &["check"]).run();
    run.success().stdout_has(&format!("host2 | Installed Calamari versions: {v}, 0.0.1"));
    assert!(!run.stdout.contains("warning:"), "{}", run.stdout);

    fleet(&env, &hosts, &["prune", "--keep=1"]).run().success();
    assert!(!old.exists(), "the older version was pruned");
    assert!(hosts.hosts[1].tentacle_home(INSTANCE).join(format!("Calamari/{v}/Success.txt")).is_file());
}

#[test]
fn two_drivers_at_once_push_and_install_once() {
    let Some(hosts) = SshFleet::start(1) else { return };
    let env = TestEnv::new();
    env.write("hello.sh", "echo hi\n");
    let spawn = |n: usize| {
        let mut cmd = fleet(&env, &hosts, &["run-script", "--script=hello.sh", &format!("--report=r{n}.json")]).cmd;
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (a, b) = (spawn(1), spawn(2));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pushed: Vec<bool> = [1, 2]
        .iter()
        .map(|n| report(&env.path(format!("r{n}.json")))[0]["pushedCalamari"].as_bool().unwrap())
        .collect();
    assert_eq!(pushed.iter().filter(|p| **p).count(), 1, "exactly one driver pushed: {pushed:?}");
    let calamari = hosts.hosts[0].tentacle_home(INSTANCE).join("Calamari");
    let names: Vec<String> =
        std::fs::read_dir(&calamari).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.starts_with(".tmp-") && !n.starts_with(".old-")), "{names:?}");
}

/// A plain-tar package holding one large file (zeros: quick to make, as slow to send as any).
fn big_package(env: &TestEnv, megabytes: u64) -> PathBuf {
    let path = env.path("Big.1.0.0.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(megabytes << 20);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, "big.bin", std::io::repeat(0).take(megabytes << 20)).unwrap();
    builder.into_inner().unwrap();
    path
}

use std::io::Read as _;

#[test]
fn a_dropped_connection_and_an_unreachable_host_fail_alone() {
    let Some(mut hosts) = SshFleet::start(3) else { return };
    hosts.add_unreachable("host4");
    let env = TestEnv::new();
    big_package(&env, 96);
    let mut cmd = fleet(
        &env,
        &hosts,
        &["deploy-package", "--package=Big.1.0.0.tar", "--host=host4", "--maxFailPercentage=50", "--report=r.json"],
    )
    .cmd;
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Mid-upload: the package is arriving in host2's work directory (and is not complete yet).
    let work = hosts.hosts[1].tentacle_home(INSTANCE).join("Work");
    let total = std::fs::metadata(env.path("Big.1.0.0.tar")).unwrap().len();
    let seen = util::wait_for(std::time::Duration::from_secs(120), "host2's upload to start", || {
        std::fs::read_dir(&work).into_iter().flatten().flatten().find_map(|run| {
            std::fs::metadata(run.path().join("packages/Big.1.0.0.tar")).ok().map(|m| m.len()).filter(|l| *l > 0)
        })
    });
    hosts.hosts[1].kill();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    // Killed while the file was still growing: the error names the upload. (Seen complete,
    // the kill may land just after it, while the deployment runs.)
    let expected = if seen < total {
        "host2 | error: connection lost while uploading"
    } else {
        "host2 | error: connection lost while"
    };
    assert!(stderr.contains(expected), "{stderr}");
    assert!(stderr.contains("host4 | error: cannot connect: "), "{stderr}");
    assert!(stderr.contains("2 of 4 hosts failed"), "{stderr}");
    let entries = report(&env.path("r.json"));
    for (host, ok) in [("host1", true), ("host2", false), ("host3", true), ("host4", false)] {
        let e = entry(&entries, host);
        assert_eq!(e["exitCode"] == 0, ok, "{e}");
        if !ok {
            assert!(e["exitCode"].is_null() && e["error"].is_string(), "{e}");
        }
    }
}

#[test]
fn a_full_disk_fails_that_host_clearly() {
    let specs = [HostSpec::default(), HostSpec { tmpfs_kib: Some(1024) }, HostSpec::default()];
    let Some(hosts) = SshFleet::start_with(&specs) else { return };
    let env = TestEnv::new();
    env.write("hello.sh", "echo hi\n");
    let run =
        fleet(&env, &hosts, &["run-script", "--script=hello.sh", "--maxFailPercentage=50", "--report=r.json"]).run();
    run.code(1).stderr_has("host2 | error: ").stderr_has("the remote disk is full").stderr_has("1 of 3 hosts failed");
    let entries = report(&env.path("r.json"));
    assert_eq!(entry(&entries, "host1")["exitCode"], 0);
    assert_eq!(entry(&entries, "host3")["exitCode"], 0);
    assert!(entry(&entries, "host2")["exitCode"].is_null());
    let work = hosts.hosts[1].tentacle_home(INSTANCE).join("Work");
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0, "work directories left on the full host");
}

/// A script that logs its start and end to `log` and fails on a host whose home holds `fail`.
fn logging_script(env: &TestEnv, log: &Path) {
    env.write(
        "step.sh",
        format!(
            "echo \"start $HOME\" >> '{log}'\nsleep 0.4\necho \"end $HOME\" >> '{log}'\nif [ -f \"$HOME/fail\" ]; then exit 3; fi\n",
            log = log.display()
        ),
    );
}

fn max_overlap(log: &str) -> usize {
    let (mut now, mut max) = (0usize, 0usize);
    for line in log.lines() {
        if line.starts_with("start") {
            now += 1;
            max = max.max(now);
        } else {
            now -= 1;
        }
    }
    max
}

#[test]
fn parallel_and_batch_limits() {
    let Some(hosts) = SshFleet::start(4) else { return };
    let env = TestEnv::new();
    let log = env.path("events.log");
    logging_script(&env, &log);
    fleet(&env, &hosts, &["run-script", "--script=step.sh", "--parallel=2"]).run().success();
    let events = std::fs::read_to_string(&log).unwrap();
    assert_eq!(events.lines().count(), 8, "{events}");
    assert!(max_overlap(&events) <= 2, "more than 2 hosts at once:\n{events}");

    // Rolling windows of 2: the second starts after the first ended.
    std::fs::remove_file(&log).unwrap();
    fleet(&env, &hosts, &["run-script", "--script=step.sh", "--batch=50%"]).run().success();
    let events = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    let first: Vec<String> = hosts.hosts[..2].iter().map(|h| format!("end {}", h.home.display())).collect();
    let second: Vec<String> = hosts.hosts[2..].iter().map(|h| format!("start {}", h.home.display())).collect();
    let last_end = lines.iter().rposition(|l| first.iter().any(|f| f == l)).unwrap();
    let first_start = lines.iter().position(|l| second.iter().any(|s| s == l)).unwrap();
    assert!(last_end < first_start, "the second window started early:\n{events}");

    // A failure in the first window: the second is not started.
    std::fs::remove_file(&log).unwrap();
    std::fs::write(hosts.hosts[0].home.join("fail"), b"").unwrap();
    let run = fleet(&env, &hosts, &["run-script", "--script=step.sh", "--batch=2", "--report=r.json"]).run();
    run.code(1).stderr_has("1 of 4 hosts failed, 2 not started");
    let entries = report(&env.path("r.json"));
    assert_eq!(entry(&entries, "host1")["exitCode"], 3);
    assert_eq!(entry(&entries, "host2")["exitCode"], 0);
    for host in ["host3", "host4"] {
        assert!(entry(&entries, host)["exitCode"].is_null());
        assert_eq!(entry(&entries, host)["result"], "notStarted");
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 4);
}

#[test]
fn max_fail_percentage_stops_new_hosts() {
    let Some(hosts) = SshFleet::start(4) else { return };
    let env = TestEnv::new();
    let log = env.path("events.log");
    logging_script(&env, &log);
    std::fs::write(hosts.hosts[0].home.join("fail"), b"").unwrap();
    // Default 0%: after host1 fails nothing else starts.
    let run = fleet(&env, &hosts, &["run-script", "--script=step.sh", "--parallel=1", "--report=r.json"]).run();
    run.code(1).stderr_has("1 of 4 hosts failed, 3 not started").stdout_has("HOST").stdout_has("not started");
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);
    // 25%: one failure of four is not more than that; everyone runs.
    std::fs::remove_file(&log).unwrap();
    let run = fleet(&env, &hosts, &["run-script", "--script=step.sh", "--parallel=1", "--maxFailPercentage=25"]).run();
    run.code(1).stderr_has("1 of 4 hosts failed");
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 8);
}

/// Every process's argv, while `until` is not set; returns how many scans saw `needle` and
/// how many saw a remote `calamari run-script`.
fn scan_argv(needle: String, until: Arc<AtomicBool>, hits: Arc<AtomicUsize>, remote_seen: Arc<AtomicUsize>) {
    while !until.load(Ordering::SeqCst) {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(&needle) {
                hits.fetch_add(1, Ordering::SeqCst);
                println!("password seen in argv: {text}");
            }
            if text.contains("/Calamari/") && text.contains("run-script") {
                remote_seen.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

#[test]
fn the_password_never_appears_in_argv_and_paths_are_quoted() {
    let Some(hosts) = SshFleet::start(2) else { return };
    let env = TestEnv::new();
    let password = "Fleet-Pa55word-Never-In-Argv";
    let plain = util::variables_json(&[("Greeting", "hello through stdin", false), ("Secret", "s3cr3t", true)]);
    env.write("enc vars.json", calamari::encrypt_variables(plain.as_bytes(), password));
    env.write("pw.txt", format!("{password}\n"));
    env.write(
        "my dir/it's a \"script\".sh",
        "sleep 1\necho \"greeting: $(get_octopusvariable Greeting)\"\nset_octopusvariable Token abc -sensitive\n",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (hits, remote_seen) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let scanner = {
        let (stop, hits, remote_seen) = (stop.clone(), hits.clone(), remote_seen.clone());
        let needle = password.to_string();
        std::thread::spawn(move || scan_argv(needle, stop, hits, remote_seen))
    };
    let run = fleet(
        &env,
        &hosts,
        &[
            "run-script",
            "--script=my dir/it's a \"script\".sh",
            "--variables=enc vars.json",
            "--variablesPasswordFile=pw.txt",
            "--report=r.json",
        ],
    )
    .run();
    stop.store(true, Ordering::SeqCst);
    scanner.join().unwrap();
    run.success()
        .stdout_has("host1 | greeting: hello through stdin")
        .stdout_has("host2 | greeting: hello through stdin");
    run.output_lacks(password);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the password was in some process's argv");
    assert!(remote_seen.load(Ordering::SeqCst) > 0, "the scan never saw the remote calamari run");
    for e in report(&env.path("r.json")) {
        assert_eq!(e["outputVariables"]["Token"], "********", "{e}");
    }
    // --serviceMessages passes the protocol through, per host.
    let run = fleet(
        &env,
        &hosts,
        &[
            "run-script",
            "--script=my dir/it's a \"script\".sh",
            "--variables=enc vars.json",
            "--variablesPasswordFile=-",
            "--serviceMessages",
        ],
    )
    .stdin(format!("{password}\n"))
    .run();
    run.success().stdout_has("host1 | ##octopus[setVariable ");
}

#[test]
fn output_streams_line_by_line_as_it_arrives() {
    use std::io::BufRead as _;
    let Some(hosts) = SshFleet::start(1) else { return };
    let env = TestEnv::new();
    let flag = env.path("go-on");
    env.write(
        "wait.sh",
        format!("echo waiting\nwhile [ ! -f '{}' ]; do sleep 0.05; done\necho released\n", flag.display()),
    );
    let mut cmd = fleet(&env, &hosts, &["run-script", "--script=wait.sh"]).cmd;
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // The first line arrives while the script still runs (it waits for the flag).
    let seen = lines.by_ref().map(Result::unwrap).find(|l| l == "host1 | waiting");
    assert!(seen.is_some(), "no streamed line before the end");
    std::fs::write(&flag, b"").unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(rest.iter().any(|l| l == "host1 | released"), "{rest:?}");
    assert!(child.wait().unwrap().success());
}

#[test]
fn usage_errors_exit_1_before_any_connection() {
    let env = TestEnv::new();
    env.cmd(&["fleet", "check"])
        .run()
        .code(1)
        .stderr_has("calamari fleet needs at least one host: --host=DEST or --hosts=FILE");
    env.cmd(&["fleet", "--host=a"]).run().code(1).stderr_has("calamari fleet needs a command");
    env.write("hosts.txt", "# web\nweb1\n-oProxyCommand=evil\n");
    env.cmd(&["fleet", "check", "--hosts=hosts.txt"])
        .run()
        .code(1)
        .stderr_has("invalid host '-oProxyCommand=evil' (")
        .stderr_has("hosts.txt:3): it starts with '-', which ssh would read as an option");
    env.cmd(&["fleet", "check", "--host=a", "--batch=0"]).run().code(1).stderr_has("--batch expects a number of hosts");
    env.cmd(&["fleet", "run-script", "--host=a", "--sensitiveVariablesPassword=x"])
        .run()
        .code(1)
        .stderr_has("--sensitiveVariablesPassword cannot be used with fleet");
    env.cmd(&["fleet", "check", "--hosts=missing.txt"])
        .run()
        .code(1)
        .stderr_has("cannot read the --hosts file: ")
        .stderr_has("missing.txt");
}

#[test]
fn the_sshd_harness_gives_each_host_its_own_home() {
    let Some(hosts) = SshFleet::start(2) else { return };
    for host in &hosts.hosts {
        let out = hosts.ssh(&host.alias, "echo \"$HOME\"");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), host.home.display().to_string());
    }
    assert!(hosts.ansible_inventory("targets").contains("host2 home="));
}

#[test]
fn a_given_bundle_and_a_hosts_file() {
    let Some(hosts) = SshFleet::start(2) else { return };
    let env = TestEnv::new();
    env.cmd(&["bundle", "--output=out"]).run().success();
    let v = version();
    env.write("hosts.txt", "# the web tier\nhost1\n\nhost2   # second\n");
    env.write("hello.sh", "echo hi\n");
    let run = env
        .cmd(&[
            "fleet",
            "run-script",
            "--script=hello.sh",
            "--hosts=hosts.txt",
            &format!("--sshConfig={}", hosts.ssh_config.display()),
            &format!("--bundle=out/Calamari.{v}.tar.gz"),
            "--instance=Other",
        ])
        .run();
    run.success().stdout_has("host1 | hi").stdout_has("host2 | hi").stdout_has("2 of 2 hosts succeeded");
    for host in &hosts.hosts {
        assert!(host.tentacle_home("Other").join(format!("Calamari/{v}/Success.txt")).is_file());
    }
    env.cmd(&["fleet", "check", "--hosts=hosts.txt", "--bundle=out/missing.tar.gz"])
        .env("XDG_CACHE_HOME", env.path("cache"))
        .arg(format!("--sshConfig={}", hosts.ssh_config.display()))
        .run()
        .code(1)
        .stderr_has("--bundle=")
        .stderr_has("missing.tar.gz: ");
}

/// Reproducible incompressible bytes (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An uncompressed tar package `Acme.Data.<version>.tar`: 512 KiB of data, with `changed`
/// bytes of it different from version 1.0.0's (from offset 200,000, or 0 for many), a version file and a deploy script.
fn data_package(env: &TestEnv, version: &str, changed: usize) -> (PathBuf, Vec<u8>) {
    let mut data = noise(512 * 1024, 7);
    let patch = noise(changed, version.len() as u64 * 31 + changed as u64);
    let start = if changed > 200_000 { 0 } else { 200_000 };
    data[start..start + changed].copy_from_slice(&patch);
    let path = env.path(format!("Acme.Data.{version}.tar"));
    let mut builder = tar::Builder::new(Vec::new());
    let files: [(&str, &[u8], u32); 3] = [
        ("data.bin", &data, 0o644),
        ("version.txt", version.as_bytes(), 0o644),
        ("Deploy.sh", b"echo \"deployed version $(cat version.txt)\"\n", 0o755),
    ];
    for (name, bytes, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, bytes).unwrap();
    }
    let bytes = builder.into_inner().unwrap();
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

fn sent(report_path: &Path) -> serde_json::Value {
    let entries = report(report_path);
    let packages = entries[0]["packagesSent"].as_array().expect("packagesSent").clone();
    assert_eq!(packages.len(), 1, "{packages:?}");
    packages[0].clone()
}

#[test]
fn an_earlier_cached_version_gets_a_delta_and_falls_back_to_the_full_package() {
    let Some(hosts) = SshFleet::start(1) else { return };
    let env = TestEnv::new();
    let files = hosts.hosts[0].tentacle_home(INSTANCE).join("Files");
    let deploy = |version: &str, extra: &[&str]| {
        let package = format!("--package=Acme.Data.{version}.tar");
        let mut args = vec!["deploy-package", package.as_str(), "--report=r.json"];
        args.extend_from_slice(extra);
        fleet(&env, &hosts, &args).run()
    };
    // v1.0.0: nothing earlier in the cache, sent whole.
    let (_, v100) = data_package(&env, "1.0.0", 0);
    deploy("1.0.0", &[]).success().stdout_has("host1 | deployed version 1.0.0");
    let first = sent(&env.path("r.json"));
    assert_eq!(first["mode"], "full", "{first}");
    assert_eq!(first["bytes"], v100.len() as u64);

    // v1.0.1, 1 % changed: a delta against v1.0.0, rebuilt into the cache under the package's name.
    let (_, v101) = data_package(&env, "1.0.1", 5 * 1024);
    let run = deploy("1.0.1", &[]);
    run.success()
        .stdout_has("host1 | Package Acme.Data.1.0.1.tar: sent a delta of ")
        .stdout_has(&format!("against Acme.Data.1.0.0.tar instead of {} bytes", v101.len()))
        .stdout_has("host1 | deployed version 1.0.1");
    let delta = sent(&env.path("r.json"));
    assert_eq!(delta["mode"], "delta", "{delta}");
    let bytes = delta["bytes"].as_u64().unwrap();
    assert!(bytes * 10 < v101.len() as u64, "a delta of {bytes} bytes for a package of {}", v101.len());
    println!("delta for a 1%-changed package of {} bytes: {bytes} bytes", v101.len());
    assert_eq!(std::fs::read(files.join("Acme.Data.1.0.1.tar")).unwrap(), v101, "the rebuilt package differs");
    let names: Vec<String> =
        std::fs::read_dir(&files).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "left in the cache: {names:?}");
    // Again: the rebuilt package is found under its name and not sent.
    deploy("1.0.1", &[]).success().stdout_has("Package Acme.Data.1.0.1.tar is in the remote cache with the same hash");
    assert_eq!(sent(&env.path("r.json"))["mode"], "cached");

    // Everything changed: the delta would not be worth it, the full file goes.
    let (_, v090) = data_package(&env, "1.0.1-big", 500_000);
    std::fs::rename(env.path("Acme.Data.1.0.1-big.tar"), env.path("Acme.Data.1.0.1-x.tar")).unwrap();
    let run = deploy("1.0.1-x", &[]);
    run.success().stdout_has("host1 | Package Acme.Data.1.0.1-x.tar: a delta against Acme.Data.1.0.0.tar would be ");
    run.stdout_has(&format!("bytes of {}: sending the full package", v090.len()));
    assert_eq!(sent(&env.path("r.json"))["mode"], "full");
    std::fs::remove_file(files.join("Acme.Data.1.0.1-x.tar")).unwrap();

    // --noDelta: the full file.
    let (_, v102) = data_package(&env, "1.0.2", 5 * 1024);
    let run = deploy("1.0.2", &["--noDelta"]);
    run.success().stdout_has("host1 | deployed version 1.0.2");
    assert!(!run.stdout.contains("delta"), "{}", run.stdout);
    let full = sent(&env.path("r.json"));
    assert_eq!((full["mode"].as_str(), full["bytes"].as_u64()), (Some("full"), Some(v102.len() as u64)));

    // The basis is corrupted after its signature was made (the remote calamari overwrites it
    // as apply-delta starts): apply-delta fails verification and the full package goes.
    let v = version();
    let remote = hosts.hosts[0].tentacle_home(INSTANCE).join(format!("Calamari/{v}"));
    std::fs::rename(remote.join("calamari"), remote.join("calamari.real")).unwrap();
    std::fs::write(
        remote.join("calamari"),
        format!(
            "#!/bin/sh\nif [ \"$1\" = apply-delta ]; then for a; do case $a in --basisFileName=*) printf corrupt | dd of=\"${{a#--basisFileName=}}\" conv=notrunc 2>/dev/null;; esac; done; fi\nexec '{}' \"$@\"\n",
            remote.join("calamari.real").display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(remote.join("calamari"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (_, v103) = data_package(&env, "1.0.3", 5 * 1024);
    let run = deploy("1.0.3", &[]);
    run.success()
        .stdout_has("host1 | Package Acme.Data.1.0.3.tar: the delta against Acme.Data.1.0.2.tar failed (")
        .stdout_has("does not match the file hash specified")
        .stdout_has("sending the full package")
        .stdout_has("host1 | deployed version 1.0.3");
    let fallback = sent(&env.path("r.json"));
    assert_eq!((fallback["mode"].as_str(), fallback["bytes"].as_u64()), (Some("full"), Some(v103.len() as u64)));
    assert_eq!(std::fs::read(files.join("Acme.Data.1.0.3.tar")).unwrap(), v103);
}

fn events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("events written")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {l}")))
        .collect()
}

/// The kinds of `host`'s events, in order.
fn kinds_of(events: &[serde_json::Value], host: &str) -> Vec<String> {
    events.iter().filter(|e| e["host"] == host).map(|e| e["event"].as_str().unwrap().to_string()).collect()
}

#[test]
fn events_say_what_happened_on_each_host_as_it_happened() {
    let Some(hosts) = SshFleet::start(2) else { return };
    let env = TestEnv::new();
    web_package(&env);
    deploy_variables(&env);
    std::fs::write(hosts.hosts[1].home.join("fail"), b"").unwrap();
    env.write("step.sh", "echo one\necho two\necho oops >&2\nif [ -f \"$HOME/fail\" ]; then exit 3; fi\n");
    // First run: Calamari is pushed; the package goes whole.
    let run = fleet(
        &env,
        &hosts,
        &["deploy-package", "--package=Acme.Web.1.0.0.tar.gz", "--variables=vars.json", "--events=ev.jsonl"],
    )
    .run();
    run.success();
    let all = events(&env.path("ev.jsonl"));
    assert_eq!(all.first().unwrap()["event"], "runStarted");
    assert_eq!(all.first().unwrap()["hosts"], serde_json::json!(["host1", "host2"]));
    let last = all.last().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["succeeded"].as_u64(), last["failed"].as_u64()),
        (Some("runFinished"), Some(2), Some(0))
    );
    for host in ["host1", "host2"] {
        assert_eq!(
            kinds_of(&all, host),
            ["hostStarted", "connected", "pushed", "package", "uploaded", "output", "finished"],
            "{all:?}"
        );
        let of = |kind: &str| all.iter().find(|e| e["host"] == host && e["event"] == kind).unwrap();
        assert_eq!(of("pushed")["pushed"], true);
        assert!(of("pushed")["bytes"].as_u64().unwrap() > 100_000);
        assert_eq!(of("package")["name"], "Acme.Web.1.0.0.tar.gz");
        assert_eq!(of("package")["mode"], "full");
        assert_eq!(of("uploaded")["files"], 2, "the package and the variables");
        assert!(of("output")["stdoutLines"].as_u64().unwrap() > 0);
        assert_eq!(of("finished")["exitCode"], 0);
        assert_eq!(of("finished")["result"], "succeeded");
        for e in all.iter().filter(|e| e["host"] == host) {
            assert!(e["time"].as_str().unwrap().ends_with('Z') && e["elapsed"].as_f64().is_some(), "{e}");
        }
    }

    // --events=-: standard output is the events alone; a person's lines go to stderr. A
    // failing host says so; the package is cached now.
    let run = fleet(&env, &hosts, &["run-script", "--script=step.sh", "--events=-"]).run();
    run.code(1).stderr_has("host1 | one").stderr_has("host2 | error: run-script exited with code 3");
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout holds more than events ({e}): {l}")))
        .collect();
    let finished = |host: &str| lines.iter().find(|e| e["host"] == host && e["event"] == "finished").unwrap().clone();
    assert_eq!(
        (finished("host1")["exitCode"].as_i64(), finished("host1")["result"].as_str()),
        (Some(0), Some("succeeded"))
    );
    assert_eq!(finished("host2")["exitCode"], 3);
    assert_eq!(finished("host2")["error"], "run-script exited with code 3");
    // Every line the command wrote (service messages too), and the script's one on stderr.
    let output = lines.iter().find(|e| e["host"] == "host1" && e["event"] == "output").unwrap();
    assert!(output["stdoutLines"].as_u64().unwrap() >= 2, "{output}");
    assert_eq!(output["stderrLines"], 1, "{output}");
    assert!(!kinds_of(&lines, "host1").contains(&"pushed".to_string()), "nothing to push the second time");

    // An events file that cannot be written: exit 1, naming it, before any host.
    let run = fleet(&env, &hosts, &["run-script", "--script=step.sh", "--events=no/such/dir/ev.jsonl"]).run();
    run.code(1).stderr_has("cannot write the --events file: ").stderr_has("no/such/dir/ev.jsonl");
    assert!(!run.stdout.contains("host1 |"), "{}", run.stdout);
}

#[test]
fn retry_failed_runs_again_on_the_hosts_that_failed_only() {
    let Some(hosts) = SshFleet::start(3) else { return };
    let env = TestEnv::new();
    let log = env.path("events.log");
    logging_script(&env, &log);
    std::fs::write(hosts.hosts[1].home.join("fail"), b"").unwrap();
    let run =
        fleet(&env, &hosts, &["run-script", "--script=step.sh", "--maxFailPercentage=50", "--report=first.json"]).run();
    run.code(1).stderr_has("1 of 3 hosts failed");

    // The retry names no host: they come from the report.
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(hosts.hosts[1].home.join("fail")).unwrap();
    let config = format!("--sshConfig={}", hosts.ssh_config.display());
    let retry = |report: &str, out: &str| {
        env.cmd(&[
            "fleet",
            "run-script",
            "--script=step.sh",
            &format!("--retryFailed={report}"),
            &config,
            &format!("--report={out}"),
        ])
        .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-cache"))
        .run()
    };
    let run = retry("first.json", "second.json");
    run.success().stdout_has("1 of 1 hosts succeeded");
    let started: Vec<String> =
        std::fs::read_to_string(&log).unwrap().lines().filter(|l| l.starts_with("start")).map(str::to_string).collect();
    assert_eq!(started, [format!("start {}", hosts.hosts[1].home.display())], "only host2 ran again");
    let second = report(&env.path("second.json"));
    assert_eq!(second.len(), 1);
    assert_eq!((second[0]["host"].as_str(), second[0]["result"].as_str()), (Some("host2"), Some("succeeded")));

    // Nothing failed in that report: nothing to do, exit 0, an empty report.
    let run = retry("second.json", "third.json");
    run.success().stdout_has("Nothing to retry: every host in ").stdout_has("second.json succeeded");
    assert!(report(&env.path("third.json")).is_empty());

    // A report that is not one: exit 1, naming it.
    env.write("bad.json", "{\"hosts\": []}");
    retry("bad.json", "x.json").code(1).stderr_has("--retryFailed=").stderr_has("bad.json: expected the JSON report");
    retry("missing.json", "x.json")
        .code(1)
        .stderr_has("cannot read the --retryFailed report: ")
        .stderr_has("missing.json");
    assert!(!env.path("x.json").exists());
}

#[test]
fn batch_wait_pauses_between_rolling_batches() {
    let Some(hosts) = SshFleet::start(2) else { return };
    let env = TestEnv::new();
    let log = env.path("times.log");
    env.write(
        "stamp.sh",
        format!(
            "echo \"start $HOME $(date +%s.%N)\" >> '{log}'\necho \"end $HOME $(date +%s.%N)\" >> '{log}'\n",
            log = log.display()
        ),
    );
    let run =
        fleet(&env, &hosts, &["run-script", "--script=stamp.sh", "--batch=1", "--batchWait=1.5", "--events=ev.jsonl"])
            .run();
    run.success().stdout_has("Waiting 1.5 s before batch 2");
    let text = std::fs::read_to_string(&log).unwrap();
    let time = |what: &str, host: usize| -> f64 {
        let prefix = format!("{what} {} ", hosts.hosts[host].home.display());
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{prefix} in {text}"))
            .parse()
            .unwrap()
    };
    let gap = time("start", 1) - time("end", 0);
    assert!(gap >= 1.5, "host2 started {gap:.3} s after host1 ended:\n{text}");
    let all = events(&env.path("ev.jsonl"));
    let position = |pred: &dyn Fn(&serde_json::Value) -> bool| all.iter().position(pred).unwrap();
    let waited = position(&|e| e["event"] == "batchWait");
    assert_eq!((all[waited]["batch"].as_u64(), all[waited]["seconds"].as_f64()), (Some(2), Some(1.5)));
    assert!(position(&|e| e["event"] == "finished" && e["host"] == "host1") < waited);
    assert!(waited < position(&|e| e["event"] == "hostStarted" && e["host"] == "host2"));
    assert_eq!(all.iter().filter(|e| e["event"] == "batchStarted").count(), 2);
    // Without --batch it means nothing: refused.
    env.cmd(&["fleet", "check", "--host=a", "--batchWait=2"]).run().code(1).stderr_has("--batchWait needs --batch");
}

#[test]
fn one_ssh_per_host_whether_it_pushes_sends_a_delta_or_finds_the_package_cached() {
    let Some(hosts) = SshFleet::start(2) else { return };
    let env = TestEnv::new();
    // Every ssh the driver starts goes through this wrapper, which logs it (and any master
    // connection option).
    let real = std::process::Command::new("sh").args(["-c", "command -v ssh"]).output().unwrap();
    let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
    let log = env.path("ssh.log");
    let wrapper = env.write(
        "bin/ssh",
        format!(
            "#!/bin/sh\nfor a; do [ \"$a\" = -- ] && break; case $a in -O|-f|-N|-M|ControlMaster*) echo master >> '{log}';; \
             esac; done\necho call >> '{log}'\nexec '{real}' \"$@\"\n",
            log = log.display()
        ),
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", env.path("bin").display(), std::env::var("PATH").unwrap_or_default());
    let deploy = |version: &str| {
        let package = format!("--package=Acme.Data.{version}.tar");
        fleet(&env, &hosts, &["deploy-package", &package, "--report=r.json"]).env("PATH", &path).run()
    };
    let count = || std::fs::read_to_string(&log).unwrap_or_default().lines().filter(|l| *l == "call").count();
    data_package(&env, "1.0.0", 0);
    // Pushes Calamari and sends the package whole.
    deploy("1.0.0").success().stdout_has("Pushing Calamari");
    assert_eq!(count(), 2, "{}", std::fs::read_to_string(&log).unwrap());
    // The package is cached.
    deploy("1.0.0").success().stdout_has("in the remote cache with the same hash");
    assert_eq!(count(), 4);
    // A delta: signature, delta and run in the same session.
    data_package(&env, "1.0.1", 5 * 1024);
    deploy("1.0.1").success().stdout_has("sent a delta of ");
    assert_eq!(count(), 6);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains("master"), "no master connection: {logged}");
    for entry in report(&env.path("r.json")) {
        assert_eq!(entry["packagesSent"][0]["mode"], "delta", "{entry}");
    }
}
