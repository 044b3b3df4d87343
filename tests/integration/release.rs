//! Releases through the real binary: the `Calamari.Release.*` variables of `deploy-package`
//! (an atomic current link, shared paths, the HTTP and command health gates, switching back
//! on failure), `calamari rollback`, retention around a current link, the link's lock, a
//! reader that never sees a missing link or a partial release, and kill -9 trials.

use std::io::{Read as _, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use calamari::JournalEntry;

use crate::util::{PROMPTLY, Run, TestEnv, wait_until};

const SET: &str = "Environments-1/Projects-1/Step-1/Machines-1/<default>";
/// Files in every test release besides `marker.txt` and the scripts.
const FILES: usize = 20;

/// `Acme.Web.<version>.tar.gz`: `marker.txt` (the version), `files/f0..f19.txt`, and `extra`
/// (path, contents) entries.
fn package(env: &TestEnv, version: &str, extra: &[(&str, &str)]) -> PathBuf {
    let files: Vec<(String, String)> =
        (0..FILES).map(|i| (format!("files/f{i}.txt"), format!("{version} {i}"))).collect();
    let mut entries: Vec<(&str, &[u8], u32)> = vec![("marker.txt", version.as_bytes(), 0o644)];
    entries.extend(files.iter().map(|(name, body)| (name.as_str(), body.as_bytes(), 0o644)));
    entries.extend(extra.iter().map(|(name, body)| (*name, body.as_bytes(), 0o644)));
    crate::util::tar_gz(env, format!("Acme.Web.{version}.tar.gz"), &entries)
}

fn link(env: &TestEnv) -> PathBuf {
    env.path("srv/acme/current")
}

fn release_dir(env: &TestEnv, version: &str) -> PathBuf {
    env.path(format!("Applications/Test/Acme.Web/{version}"))
}

fn variables(env: &TestEnv, extra: &[(&str, &str)]) -> PathBuf {
    let apps = env.path("Applications").display().to_string();
    let current = link(env).display().to_string();
    let mut vars: Vec<(&str, &str, bool)> = vec![
        ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", &apps, false),
        ("Octopus.Environment.Name", "Test", false),
        ("Octopus.Environment.Id", "Environments-1", false),
        ("Octopus.Project.Id", "Projects-1", false),
        ("OctopusRetentionPolicySet", SET, false),
        ("Octopus.Action.Name", "Web", false),
    ];
    if !extra.iter().any(|(k, _)| *k == "Calamari.Release.CurrentLink") {
        vars.push(("Calamari.Release.CurrentLink", &current, false));
    }
    vars.extend(extra.iter().map(|(k, v)| (*k, *v, false)));
    let name = format!("vars-{}.json", rand_suffix());
    env.variables(&name, &vars)
}

fn rand_suffix() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed) as u64
}

fn deploy_cmd(env: &TestEnv, pkg: &Path, extra: &[(&str, &str)]) -> std::process::Command {
    let vars = variables(env, extra);
    env.cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", vars.display())])
        .env("TentacleHome", env.path("home"))
        .cmd
}

fn deploy(env: &TestEnv, pkg: &Path, extra: &[(&str, &str)]) -> Run {
    let vars = variables(env, extra);
    env.cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", vars.display())])
        .env("TentacleHome", env.path("home"))
        .run()
}

fn rollback(env: &TestEnv, args: &[&str]) -> Run {
    let set = format!("--retentionPolicySet={SET}");
    let mut all = vec!["rollback", set.as_str()];
    all.extend_from_slice(args);
    env.cmd(&all).env("TentacleHome", env.path("home")).run()
}

fn target(env: &TestEnv) -> PathBuf {
    std::fs::read_link(link(env)).expect("the current link resolves")
}

fn entries(env: &TestEnv) -> Vec<JournalEntry> {
    let bytes = std::fs::read(env.path("home/DeploymentJournal.xml")).unwrap_or_default();
    calamari::internals::parse_journal(&bytes).expect("the journal parses")
}

fn installed_in(e: &JournalEntry) -> Option<PathBuf> {
    e.installation_directory().map(Path::to_path_buf)
}

/// Names in the link's directory other than the link, its lock and `shared`.
fn strays(env: &TestEnv) -> Vec<String> {
    std::fs::read_dir(link(env).parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !["current", "current.lock", "shared"].contains(&n.as_str()))
        .collect()
}

#[test]
fn the_link_switches_after_deploy_and_post_deploy_runs_after_the_switch() {
    let env = TestEnv::new();
    let current = link(&env);
    let scripts = [
        ("Deploy.sh", "echo \"Deploy sees $(readlink \"$LINK\" || echo nothing)\""),
        ("PostDeploy.sh", "echo \"PostDeploy sees $(readlink \"$LINK\")\""),
    ];
    let v1 = package(&env, "1.0.1", &scripts);
    let v2 = package(&env, "1.0.2", &scripts);
    let link_env = current.display().to_string();
    let run = |pkg: &Path| {
        let mut cmd = deploy_cmd(&env, pkg, &[]);
        cmd.env("LINK", &link_env);
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = run(&v1);
    assert_eq!(code, Some(0), "{out}");
    let (d1, d2) = (release_dir(&env, "1.0.1"), release_dir(&env, "1.0.2"));
    assert!(out.contains("Deploy sees nothing"), "{out}");
    assert!(out.contains(&format!("PostDeploy sees {}", d1.display())), "{out}");
    assert!(out.contains(&format!("Switched the current link '{}' to '{}'", current.display(), d1.display())), "{out}");
    assert_eq!(target(&env), d1);

    let (code, out) = run(&v2);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("Deploy sees {}", d1.display())), "{out}");
    assert!(out.contains(&format!("PostDeploy sees {}", d2.display())), "{out}");
    assert_eq!(target(&env), d2);
    assert_eq!(std::fs::read_to_string(current.join("marker.txt")).unwrap(), "1.0.2");
    assert!(strays(&env).is_empty(), "temporary links left: {:?}", strays(&env));

    // The output variables and the journal's extra attributes.
    let run = deploy(&env, &package(&env, "1.0.3", &[]), &[]);
    run.success();
    assert_eq!(run.output_variable("Calamari.Release.CurrentLink").as_deref(), current.to_str());
    assert_eq!(run.output_variable("Calamari.Release.PreviousTarget").as_deref(), d2.to_str());
    let journal = std::fs::read_to_string(env.path("home/DeploymentJournal.xml")).unwrap();
    assert!(
        journal.contains(&format!(
            "WasSuccessful=\"True\" CurrentLink=\"{}\" PreviousTarget=\"{}\"",
            current.display(),
            d2.display()
        )),
        "{journal}"
    );
    let e = entries(&env);
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].previous_target, None);
    assert!(e.iter().all(|e| e.was_successful && e.current_link.as_deref() == current.to_str()));
}

#[test]
fn deployments_without_release_variables_write_no_release_attributes() {
    let env = TestEnv::new();
    deploy(&env, &package(&env, "1.0.1", &[]), &[("Calamari.Release.CurrentLink", "")]).success();
    let journal = std::fs::read_to_string(env.path("home/DeploymentJournal.xml")).unwrap();
    assert!(!journal.contains("CurrentLink") && !journal.contains("PreviousTarget"), "{journal}");
    assert!(!link(&env).parent().unwrap().exists());
}

#[test]
fn a_non_link_at_the_link_path_or_a_relative_link_fails_before_extraction() {
    let env = TestEnv::new();
    std::fs::create_dir_all(link(&env)).unwrap();
    std::fs::write(link(&env).join("index.html"), "old site").unwrap();
    deploy(&env, &package(&env, "1.0.1", &[]), &[]).code(1).stderr_has(&format!(
        "The current link '{}' (Calamari.Release.CurrentLink) is a directory, not a symbolic link",
        link(&env).display()
    ));
    assert!(!env.path("Applications").exists(), "nothing may be extracted");
    assert_eq!(std::fs::read_to_string(link(&env).join("index.html")).unwrap(), "old site");

    std::fs::remove_dir_all(link(&env)).unwrap();
    std::fs::write(link(&env), "a file").unwrap();
    deploy(&env, &package(&env, "1.0.1", &[]), &[]).code(1).stderr_has("is a file, not a symbolic link");

    deploy(&env, &package(&env, "1.0.1", &[]), &[("Calamari.Release.CurrentLink", "srv/current")])
        .code(1)
        .stderr_has("Calamari.Release.CurrentLink must be an absolute path, found 'srv/current'");
    assert!(!env.path("Applications").exists());
}

#[test]
fn shared_paths_are_linked_before_pre_deploy_and_outlive_releases() {
    let env = TestEnv::new();
    let shared = link(&env).parent().unwrap().join("shared");
    std::fs::create_dir_all(shared.join("config")).unwrap();
    std::fs::write(shared.join("config/app.ini"), "secret=shared").unwrap();
    let extra = [
        ("config/app.ini", "secret=from-package"),
        ("PreDeploy.sh", "echo \"pre $(cat marker.txt)\" >> logs/deploys.log\necho \"config: $(cat config/app.ini)\""),
    ];
    let vars = [("Calamari.Release.SharedPaths", "logs\nconfig/app.ini\n")];
    let run = deploy(&env, &package(&env, "1.0.1", &extra), &vars);
    run.success()
        .stdout_has("config: secret=shared")
        .stdout_has("The package's 'config/app.ini' is replaced by a link to the shared");
    deploy(&env, &package(&env, "1.0.2", &extra), &vars).success();
    assert_eq!(std::fs::read_to_string(shared.join("logs/deploys.log")).unwrap(), "pre 1.0.1\npre 1.0.2\n");
    for v in ["1.0.1", "1.0.2"] {
        let dir = release_dir(&env, v);
        assert_eq!(std::fs::read_link(dir.join("logs")).unwrap(), shared.join("logs"));
        assert_eq!(std::fs::read_link(dir.join("config/app.ini")).unwrap(), shared.join("config/app.ini"));
    }
    assert_eq!(std::fs::read_to_string(shared.join("config/app.ini")).unwrap(), "secret=shared");

    for bad in ["../escape", "/etc/passwd"] {
        deploy(&env, &package(&env, "1.0.3", &[]), &[("Calamari.Release.SharedPaths", bad)])
            .code(1)
            .stderr_has(&format!("The shared path '{bad}' (Calamari.Release.SharedPaths) must be a relative path that stays inside shared/"));
    }
    assert!(!release_dir(&env, "1.0.3").exists());
    deploy(
        &env,
        &package(&env, "1.0.3", &[]),
        &[("Calamari.Release.CurrentLink", ""), ("Calamari.Release.SharedPaths", "logs")],
    )
    .code(1)
    .stderr_has("Calamari.Release.SharedPaths is set but Calamari.Release.CurrentLink is not");
}

/// A loopback HTTP server whose status for the n-th request (from 0) `status` decides.
fn http_server(status: impl Fn(usize) -> u16 + Send + 'static) -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let code = status(n);
            let reason = if code == 200 { "OK" } else { "Internal Server Error" };
            let _ = write!(stream, "HTTP/1.1 {code} {reason}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (url, hits)
}

const DEPLOY_FAILED: (&str, &str) = (
    "DeployFailed.sh",
    "echo \"DeployFailed: RolledBack=$(get_octopusvariable Calamari.Release.RolledBack) link=$(readlink \"$(get_octopusvariable Calamari.Release.CurrentLink)\")\"",
);

#[test]
fn an_http_health_check_gates_the_release_and_a_failure_switches_back() {
    let env = TestEnv::new();
    // 200 for the first release; for the second, 500 twice then 200 (polling succeeds).
    let (url, hits) = http_server(|n| if n == 1 || n == 2 { 500 } else { 200 });
    let check = [("Calamari.Release.HealthCheckUrl", url.as_str()), ("Calamari.Release.HealthCheckTimeout", "20")];
    deploy(&env, &package(&env, "1.0.1", &[]), &check)
        .success()
        .stdout_has(&format!("The health check GET {url} succeeded: HTTP 200 OK"));
    deploy(&env, &package(&env, "1.0.2", &[]), &check).success();
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    assert_eq!(target(&env), release_dir(&env, "1.0.2"));

    // A server that always answers 500: the link goes back, DeployFailed sees it.
    let (bad, _) = http_server(|_| 500);
    let check = [("Calamari.Release.HealthCheckUrl", bad.as_str()), ("Calamari.Release.HealthCheckTimeout", "0.6")];
    let run = deploy(&env, &package(&env, "1.0.3", &[DEPLOY_FAILED]), &check);
    run.code(1)
        .stderr_has(&format!("The health check GET {bad} did not succeed within 0.6 seconds"))
        .stderr_has("last result: HTTP 500 Internal Server Error")
        .stdout_has(&format!("DeployFailed: RolledBack=True link={}", release_dir(&env, "1.0.2").display()));
    assert_eq!(target(&env), release_dir(&env, "1.0.2"));
    let last = entries(&env).pop().unwrap();
    assert!(!last.was_successful);
    assert_eq!(installed_in(&last), Some(release_dir(&env, "1.0.3")));
    assert_eq!(last.previous_target.as_deref(), release_dir(&env, "1.0.2").to_str());

    // Nobody listening: the last result says so.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    deploy(
        &env,
        &package(&env, "1.0.4", &[]),
        &[("Calamari.Release.HealthCheckUrl", &closed), ("Calamari.Release.HealthCheckTimeout", "0.3")],
    )
    .code(1)
    .stderr_has("last result: cannot connect to 127.0.0.1");
    assert_eq!(target(&env), release_dir(&env, "1.0.2"));

    // https is refused before anything is extracted, with the reason.
    deploy(&env, &package(&env, "1.0.5", &[]), &[("Calamari.Release.HealthCheckUrl", "https://example.test/")])
        .code(1)
        .stderr_has("The health check URL 'https://example.test/' (Calamari.Release.HealthCheckUrl) cannot be used: only http:// URLs are supported");
    assert!(!release_dir(&env, "1.0.5").exists());
}

#[test]
fn a_command_health_check_runs_in_the_release_and_a_failure_switches_back() {
    let env = TestEnv::new();
    let check = [("Calamari.Release.HealthCheckCommand", "grep -q 1.0 marker.txt && echo healthy")];
    deploy(&env, &package(&env, "1.0.1", &[]), &check).success().stdout_has(
        "The health check command 'grep -q 1.0 marker.txt && echo healthy' succeeded: exit code 0: healthy",
    );
    let check = [
        ("Calamari.Release.HealthCheckCommand", "echo \"not ready: $(cat marker.txt)\" >&2; exit 3"),
        ("Calamari.Release.HealthCheckTimeout", "0.5"),
    ];
    deploy(&env, &package(&env, "2.0.0", &[DEPLOY_FAILED]), &check)
        .code(1)
        .stderr_has("did not succeed within 0.5 seconds")
        .stderr_has("last result: exit code 3: not ready: 2.0.0")
        .stdout_has(&format!("DeployFailed: RolledBack=True link={}", release_dir(&env, "1.0.1").display()));
    assert_eq!(target(&env), release_dir(&env, "1.0.1"));
    deploy(
        &env,
        &package(&env, "2.0.1", &[]),
        &[("Calamari.Release.HealthCheckCommand", "true"), ("Calamari.Release.HealthCheckUrl", "http://x/")],
    )
    .code(1)
    .stderr_has("Set Calamari.Release.HealthCheckUrl or Calamari.Release.HealthCheckCommand, not both");
}

#[test]
fn a_post_deploy_failure_switches_back_and_a_first_release_leaves_no_link() {
    let env = TestEnv::new();
    let failing = [("PostDeploy.sh", "echo \"post sees $(cat \"$LINK/marker.txt\")\"; exit 4"), DEPLOY_FAILED];
    let mut cmd = deploy_cmd(&env, &package(&env, "1.0.1", &failing), &[]);
    let out = cmd.env("LINK", link(&env)).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("post sees 1.0.1"), "{stdout}");
    assert!(stdout.contains("DeployFailed: RolledBack=True link="), "{stdout}");
    assert!(std::fs::symlink_metadata(link(&env)).is_err(), "a failed first release leaves no link");

    deploy(&env, &package(&env, "1.0.2", &[]), &[]).success();
    let mut cmd = deploy_cmd(&env, &package(&env, "1.0.3", &failing), &[]);
    let out = cmd.env("LINK", link(&env)).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(target(&env), release_dir(&env, "1.0.2"));
    // A failure before the switch (Deploy) leaves the link alone and RolledBack False.
    let run = deploy(&env, &package(&env, "1.0.4", &[("Deploy.sh", "exit 2"), DEPLOY_FAILED]), &[]);
    run.code(1).stdout_has("DeployFailed: RolledBack=False");
    assert_eq!(target(&env), release_dir(&env, "1.0.2"));
    let ok: Vec<bool> = entries(&env).iter().map(|e| e.was_successful).collect();
    assert_eq!(ok, [false, true, false, false]);
}

#[test]
fn rollback_walks_back_through_releases_and_names_the_one_restored() {
    let env = TestEnv::new();
    rollback(&env, &[]).code(1).stderr_has(&format!(
        "No deployment of the retention policy set '{SET}' has a current link (Calamari.Release.CurrentLink): nothing to roll back"
    ));
    for v in ["1.0.1", "1.0.2", "1.0.3"] {
        deploy(&env, &package(&env, v, &[]), &[]).success();
    }
    let (d1, d2, d3) = (release_dir(&env, "1.0.1"), release_dir(&env, "1.0.2"), release_dir(&env, "1.0.3"));
    let run = rollback(&env, &[]);
    run.success().stdout_has(&format!(
        "Rolled back '{}' to '{}' (Acme.Web 1.0.2), was '{}'; it is now the current release",
        link(&env).display(),
        d2.display(),
        d3.display()
    ));
    assert_eq!(run.output_variable("Calamari.Release.PreviousTarget").as_deref(), d3.to_str());
    assert_eq!(target(&env), d2);
    rollback(&env, &[]).success().stdout_has("(Acme.Web 1.0.1)");
    assert_eq!(target(&env), d1);
    rollback(&env, &[]).code(1).stderr_has(&format!(
        "Nothing to roll back to: no successful deployment of '{SET}' before the current release '{}' has a directory that still exists",
        d1.display()
    ));
    assert_eq!(target(&env), d1);

    // Each rollback is journaled as a successful deployment of the restored release.
    let e = entries(&env);
    assert_eq!(e.len(), 5);
    assert_eq!(installed_in(&e[3]), Some(d2.clone()));
    assert_eq!(e[3].previous_target.as_deref(), d3.to_str());
    assert!(e[3].was_successful);

    // A named deployment, with a script run in the restored directory.
    let v3_id = e[2].id.clone();
    env.write(
        "after.sh",
        "echo \"restored in $(pwd): $(cat marker.txt) rolled back=$(get_octopusvariable Calamari.Release.RolledBack)\"",
    );
    rollback(&env, &[&format!("--deploymentId={v3_id}"), "--script=after.sh"])
        .success()
        .stdout_has(&format!("restored in {}: 1.0.3 rolled back=True", d3.display()));
    assert_eq!(target(&env), d3);
    assert!(std::fs::read_dir(&d3).unwrap().all(|f| !f.unwrap().file_name().to_string_lossy().contains("rollback")));
    rollback(&env, &[&format!("--deploymentId={v3_id}")]).code(1).stderr_has("it is already current");
    rollback(&env, &["--deploymentId=nope"])
        .code(1)
        .stderr_has(&format!("The journal has no deployment 'nope' in the retention policy set '{SET}'"));
    std::fs::remove_dir_all(&d1).unwrap();
    rollback(&env, &[&format!("--deploymentId={}", e[0].id)]).code(1).stderr_has("no longer exists");
    env.write("fail.sh", "exit 6");
    rollback(&env, &["--script=fail.sh"])
        .code(1)
        .stderr_has(&format!("returned non-zero exit code: 6; the current link points at '{}'", d2.display()));
    env.cmd(&["rollback"]).env("TentacleHome", env.path("home")).run().code(1).stderr_has("--retentionPolicySet");
}

#[test]
fn clean_never_deletes_the_current_release_nor_the_rollback_target() {
    let env = TestEnv::new();
    for v in ["1.0.1", "1.0.2", "1.0.3", "1.0.4"] {
        deploy(&env, &package(&env, v, &[]), &[]).success();
    }
    // Current: 1.0.2 (rolled back twice); its rollback target: 1.0.1.
    rollback(&env, &[]).success();
    rollback(&env, &[]).success();
    assert_eq!(target(&env), release_dir(&env, "1.0.2"));
    let set = format!("--retentionPolicySet={SET}");
    // Keeps the newest two successful entries (the rollback to 1.0.2 and to 1.0.3).
    env.cmd(&["clean", &set, "--releases=1"]).env("TentacleHome", env.path("home")).run().success();
    assert!(release_dir(&env, "1.0.2").join("marker.txt").exists(), "the current release was deleted");
    assert!(release_dir(&env, "1.0.1").join("marker.txt").exists(), "the rollback target was deleted");
    assert!(release_dir(&env, "1.0.3").exists());
    assert!(!release_dir(&env, "1.0.4").exists());
    let dirs: Vec<PathBuf> = entries(&env).iter().filter_map(installed_in).collect();
    assert!(dirs.contains(&release_dir(&env, "1.0.1")) && dirs.contains(&release_dir(&env, "1.0.2")), "{dirs:?}");
    rollback(&env, &[]).success().stdout_has("(Acme.Web 1.0.1)");
}

#[test]
fn deployments_to_one_link_wait_for_each_other_and_a_killed_holder_blocks_nobody() {
    let env = TestEnv::new();
    let (inside, go) = (env.path("inside"), env.path("go"));
    let waiting = format!(
        "touch '{}'\nfor i in $(seq 1 2000); do [ -f '{}' ] && break; sleep 0.01; done",
        inside.display(),
        go.display()
    );
    let mut holder = deploy_cmd(&env, &package(&env, "1.0.1", &[("Deploy.sh", &waiting)]), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(PROMPTLY, "the first deployment to reach its Deploy script", || inside.exists());
    let out_path = env.path("second.out");
    let mut second = deploy_cmd(&env, &package(&env, "1.0.2", &[]), &[])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(PROMPTLY, "the second deployment to wait for the release lock", || {
        std::fs::read_to_string(&out_path).unwrap_or_default().contains("Waiting for the release lock")
    });
    assert!(!release_dir(&env, "1.0.2").exists(), "the second deployment did not wait");
    holder.kill().unwrap();
    assert_eq!(holder.wait().unwrap().signal(), Some(libc::SIGKILL));
    let status = second.wait().unwrap();
    std::fs::write(&go, "").unwrap();
    assert!(status.success(), "{}", std::fs::read_to_string(&out_path).unwrap());
    assert_eq!(target(&env), release_dir(&env, "1.0.2"));
    // The lock file is still there; it blocks nobody.
    assert!(link(&env).with_file_name("current.lock").exists());
    deploy(&env, &package(&env, "1.0.3", &[]), &[]).success().output_lacks("Waiting for the release lock");
}

/// A reader resolving the link and reading through it in a tight loop while deployments and
/// rollbacks run never sees a missing link, a dangling target or a partial release.
#[test]
fn a_reader_never_sees_a_missing_link_or_a_partial_release() {
    let env = TestEnv::new();
    deploy(&env, &package(&env, "1.0.0", &[]), &[]).success();
    let stop = Arc::new(AtomicBool::new(false));
    let current = link(&env);
    let reader = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let target = std::fs::read_link(&current).unwrap_or_else(|e| panic!("the link is missing: {e}"));
                assert!(target.is_dir(), "the link dangles: {}", target.display());
                let marker = std::fs::read_to_string(current.join("marker.txt")).expect("marker.txt through the link");
                assert!(marker.starts_with("1.0."), "{marker:?}");
                let count = std::fs::read_dir(current.join("files")).expect("files/ through the link").count();
                assert_eq!(count, FILES, "a partial release");
                reads += 1;
            }
            reads
        })
    };
    // 50 operations: deployments, every third followed by a rollback.
    let mut ops = 0;
    let mut v = 1;
    while ops < 50 {
        deploy(&env, &package(&env, &format!("1.0.{v}"), &[]), &[]).success();
        ops += 1;
        if v % 3 == 0 && ops < 50 {
            rollback(&env, &[]).success();
            ops += 1;
        }
        v += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("the reader saw a broken link");
    assert!(reads > 50, "the reader ran only {reads} times");
}

/// kill -9 at random moments of deployments with a current link: the link always resolves
/// to a complete release that the journal lists as successful.
#[test]
fn kill_9_during_deployments_leaves_the_link_at_a_complete_successful_release() {
    let env = TestEnv::new();
    let scripts = [("Deploy.sh", "sleep 0.05"), ("PostDeploy.sh", "sleep 0.05")];
    deploy(&env, &package(&env, "1.0.0", &[]), &[]).success();
    const TRIALS: u64 = 15;
    let mut killed = 0;
    for trial in 0..TRIALS {
        let pkg = package(&env, &format!("1.0.{}", trial + 1), &scripts);
        let mut child = deploy_cmd(&env, &pkg, &[]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // The kill lands at a pseudo-random moment of the run: the sleep is the test.
        std::thread::sleep(Duration::from_micros(2_000 + (trial * 7919 * 13) % 350_000));
        let _ = child.kill();
        let status = child.wait().unwrap();
        killed += u32::from(status.signal() == Some(libc::SIGKILL));
        let target = target(&env);
        let marker = std::fs::read_to_string(target.join("marker.txt")).expect("a complete release");
        assert_eq!(target.file_name().unwrap().to_string_lossy(), marker.trim(), "trial {trial}");
        assert_eq!(std::fs::read_dir(target.join("files")).unwrap().count(), FILES, "trial {trial}");
        let listed = entries(&env).iter().any(|e| e.was_successful && installed_in(e).as_deref() == Some(&target));
        assert!(listed, "trial {trial}: the journal does not list {} as successful", target.display());
    }
    assert!(killed > 0, "no trial was killed");
    // A stray temporary link of a killed switch is removed by the next deployment.
    deploy(&env, &package(&env, "2.0.0", &[]), &[]).success();
    assert!(strays(&env).is_empty(), "{:?}", strays(&env));
}
