//! Operator locks through the real binary: `lock acquire|status|release`, and a deployment
//! or rollback to a locked set refused before anything is extracted or switched.

use crate::util::{TestEnv, tar_gz};

const SET: &str = "Environments-1/Projects-1/Step-1/Machines-1/<default>";

fn deploy(env: &TestEnv, version: &str) -> crate::util::Run {
    let pkg = tar_gz(env, format!("Acme.Web.{version}.tar.gz"), &[("index.html", version.as_bytes(), 0o644)]);
    let apps = env.path("Applications").display().to_string();
    let link = env.path("srv/current").display().to_string();
    let vars = env.variables(
        &format!("vars-{version}.json"),
        &[
            ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", &apps, false),
            ("Octopus.Environment.Name", "Test", false),
            ("OctopusRetentionPolicySet", SET, false),
            ("Calamari.Release.CurrentLink", &link, false),
        ],
    );
    env.cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", vars.display())])
        .env("TentacleHome", env.path("home"))
        .run()
}

fn lock(env: &TestEnv, args: &[&str]) -> crate::util::Run {
    let mut all = vec!["lock"];
    all.extend_from_slice(args);
    env.cmd(&all).env("TentacleHome", env.path("home")).run()
}

#[test]
fn a_locked_set_refuses_deployments_and_rollbacks_until_released() {
    let env = TestEnv::new();
    deploy(&env, "1.0.0").success();
    deploy(&env, "1.0.1").success();
    let set = format!("--retentionPolicySet={SET}");
    lock(&env, &["acquire", &set, "--message=checking the migration", "--holder=alice@ops"])
        .success()
        .stdout_has(&format!("Locked '{SET}' for alice@ops at "));
    lock(&env, &["acquire", &set, "--message=mine now"])
        .code(1)
        .stderr_has(&format!("The retention policy set '{SET}' locked by alice@ops since "))
        .stderr_has(": checking the migration. Nothing was changed");

    let refused = deploy(&env, "1.0.2");
    refused
        .code(1)
        .stderr_has(&format!("The retention policy set '{SET}' locked by alice@ops since "))
        .stderr_has(": checking the migration. Nothing was deployed; `calamari lock release");
    refused.output_lacks("Extracting");
    assert!(!env.path("Applications/Test/Acme.Web/1.0.2").exists(), "nothing was extracted");
    let journal = std::fs::read_to_string(env.path("home/DeploymentJournal.xml")).unwrap();
    assert!(!journal.contains("1.0.2"), "nothing was journalled");
    let rollback = env.cmd(&["rollback", &set]).env("TentacleHome", env.path("home")).run();
    rollback.code(1).stderr_has("Nothing was rolled back");
    assert!(std::fs::read_link(env.path("srv/current")).unwrap().ends_with("1.0.1"), "the link did not move");

    let status = lock(&env, &["status", "--format=json"]);
    status.success();
    let locks: serde_json::Value = serde_json::from_str(status.stdout.trim()).unwrap();
    assert_eq!(locks[0]["retentionPolicySet"], SET);
    assert_eq!(locks[0]["holder"], "alice@ops");
    assert_eq!(locks[0]["message"], "checking the migration");
    lock(&env, &["status", "--retentionPolicySet=other"]).success().stdout_has("'other' is not locked");

    lock(&env, &["release", &set]).success().stdout_has("Released the lock on");
    lock(&env, &["release", &set]).success().stdout_has("was not locked");
    lock(&env, &["status"]).success().stdout_has("No retention policy set is locked");
    deploy(&env, "1.0.2").success();
}

#[test]
fn acquire_needs_a_set_a_message_and_a_home() {
    let env = TestEnv::new();
    lock(&env, &["acquire", "--retentionPolicySet= ", "--message=m"])
        .code(1)
        .stderr_has("--retentionPolicySet is required");
    lock(&env, &["acquire", "--retentionPolicySet=s", "--message="]).code(1).stderr_has("--message is required");
    env.cmd(&["lock", "status"]).run().code(1).stderr_has("TentacleHome is not set");
}
