//! `calamari releases` (the set's releases from the journal, newest first, as a table or
//! JSON), `releases mark-bad|mark-good`, and `rollback --to=VERSION` / a plain rollback
//! skipping a release marked bad.

use std::path::PathBuf;

use crate::util::{Run, TestEnv, tar_gz};

const SET: &str = "Environments-1/Projects-1/Step-1/Machines-1/<default>";

fn deploy(env: &TestEnv, version: &str, extra: &[(&str, &str)]) -> Run {
    let pkg = tar_gz(env, format!("Acme.Web.{version}.tar.gz"), &[("index.html", version.as_bytes(), 0o644)]);
    let apps = env.path("Applications").display().to_string();
    let link = env.path("srv/current").display().to_string();
    let mut vars: Vec<(&str, &str, bool)> = vec![
        ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", &apps, false),
        ("Octopus.Environment.Name", "Test", false),
        ("OctopusRetentionPolicySet", SET, false),
        ("Calamari.Release.CurrentLink", &link, false),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, *v, false)));
    let file = env.variables(&format!("vars-{version}.json"), &vars);
    env.cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", file.display())])
        .env("TentacleHome", env.path("home"))
        .run()
}

fn calamari(env: &TestEnv, args: &[&str]) -> Run {
    env.cmd(args).env("TentacleHome", env.path("home")).run()
}

fn releases_json(env: &TestEnv) -> Vec<serde_json::Value> {
    let run = calamari(env, &["releases", &format!("--retentionPolicySet={SET}"), "--format=json"]);
    run.success();
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn current(env: &TestEnv) -> PathBuf {
    std::fs::read_link(env.path("srv/current")).unwrap()
}

#[test]
fn releases_lists_newest_first_with_current_rolled_back_failed_and_bad() {
    let env = TestEnv::new();
    deploy(&env, "1.0.0", &[]).success();
    deploy(&env, "1.0.1", &[]).success();
    deploy(
        &env,
        "1.0.2",
        &[("Calamari.Release.HealthCheckCommand", "exit 3"), ("Calamari.Release.HealthCheckTimeout", "1")],
    )
    .code(1);
    deploy(&env, "1.0.3", &[]).success();
    calamari(&env, &["rollback", &format!("--retentionPolicySet={SET}")]).success();
    assert!(current(&env).ends_with("1.0.1"), "{}", current(&env).display());

    let listed = releases_json(&env);
    let versions: Vec<&str> = listed.iter().map(|r| r["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["1.0.3", "1.0.2", "1.0.1", "1.0.0"]);
    let field = |v: &str, f: &str| listed.iter().find(|r| r["version"] == v).unwrap()[f].clone();
    assert_eq!(field("1.0.1", "current"), true);
    assert_eq!(field("1.0.3", "current"), false);
    assert_eq!(field("1.0.3", "rolledBack"), true);
    assert_eq!(field("1.0.2", "success"), false);
    assert_eq!(field("1.0.0", "rolledBack"), false);
    assert!(field("1.0.0", "directory").as_str().unwrap().ends_with("Acme.Web/1.0.0"));
    assert_eq!(field("1.0.0", "installedOn").as_str().unwrap().len(), "2026-12-08T01:59:28Z".len());

    let table = calamari(&env, &["releases", &format!("--retentionPolicySet={SET}")]);
    table.success().stdout_has("VERSION  INSTALLED (UTC)");
    let lines: Vec<&str> = table.stdout.lines().filter(|l| l.starts_with("1.0.")).collect();
    assert!(
        lines[0].starts_with("1.0.3") && lines[0].contains("succeeded") && lines[0].contains("rolled back"),
        "{lines:?}"
    );
    assert!(lines[1].contains("failed"), "{lines:?}");
    assert!(lines[2].contains("current"), "{lines:?}");
    calamari(&env, &["releases", "--retentionPolicySet=nothing"]).success().stdout_has("no release of 'nothing'");
}

#[test]
fn a_plain_rollback_skips_a_release_marked_bad_and_rollback_to_picks_a_version() {
    let env = TestEnv::new();
    for v in ["1.0.0", "1.0.1", "1.0.2"] {
        deploy(&env, v, &[]).success();
    }
    let set = format!("--retentionPolicySet={SET}");
    calamari(&env, &["releases", "mark-bad", &set, "--version=1.0.1", "--reason=corrupts the cache"])
        .success()
        .stdout_has("Marked Acme.Web 1.0.1");
    assert_eq!(
        releases_json(&env).iter().find(|r| r["version"] == "1.0.1").unwrap()["badReason"],
        "corrupts the cache"
    );
    calamari(&env, &["rollback", &set]).success();
    assert!(current(&env).ends_with("1.0.0"), "the bad 1.0.1 was skipped: {}", current(&env).display());

    calamari(&env, &["rollback", &set, "--to=1.0.2"]).success();
    assert!(current(&env).ends_with("1.0.2"));
    calamari(&env, &["rollback", &set, "--to=1.0.1"])
        .success()
        .stdout_has("which is marked bad (corrupts the cache), as asked");
    assert!(current(&env).ends_with("1.0.1"));
    calamari(&env, &["rollback", &set, "--to=9.9.9"])
        .code(1)
        .stderr_has(&format!("'{SET}' has no release with version 9.9.9"));

    calamari(&env, &["releases", "mark-good", &set, "--version=1.0.1"]).success().stdout_has("is no longer marked bad");
    calamari(&env, &["releases", "mark-good", &set, "--version=1.0.1"]).success().stdout_has("was not marked bad");
    calamari(&env, &["releases", "mark-bad", &set, "--version=7.0.0"])
        .code(1)
        .stderr_has("no release with version 7.0.0");
    calamari(&env, &["releases", "mark-bad", &set]).code(1).stderr_has("<--version <VERSION>|--deploymentId <ID>>");
}
