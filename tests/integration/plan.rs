//! `deploy-package --plan`: what the deployment would do, with the files it would change as
//! unified diffs (sensitive values masked), and nothing left behind: no staging directory,
//! journal, lock, link or temporary directory.

use std::path::Path;

use crate::util::{Run, TestEnv, tar_gz};

fn package(env: &TestEnv) -> std::path::PathBuf {
    tar_gz(
        env,
        "Acme.Web.1.0.0.tar.gz",
        &[
            ("index.html", b"Hello #{Name}\nline2\nline3\nline4\nline5\nDB=#{DbPassword}\n", 0o644),
            ("app.json", b"{\"Db\":{\"Password\":\"old\",\"Host\":\"h\"}}\n", 0o644),
            ("PreDeploy.sh", b"echo pre > touched-by-predeploy\n", 0o644),
        ],
    )
}

fn plan(env: &TestEnv, extra: &[(&str, &str)]) -> Run {
    let apps = env.path("Applications").display().to_string();
    let link = env.path("srv/current").display().to_string();
    let mut vars: Vec<(&str, &str, bool)> = vec![
        ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", &apps, false),
        ("Octopus.Environment.Name", "Production", false),
        ("OctopusRetentionPolicySet", "web", false),
        ("Name", "World", false),
        ("DbPassword", "s3cret!", true),
        ("Db:Password", "s3cret!", true),
        (
            "Octopus.Action.EnabledFeatures",
            "Octopus.Features.SubstituteInFiles,Octopus.Features.JsonConfigurationVariables,Octopus.Features.IISWebSite",
            false,
        ),
        ("Octopus.Action.SubstituteInFiles.TargetFiles", "index.html", false),
        ("Octopus.Action.Package.JsonConfigurationVariablesTargets", "app.json", false),
        ("Calamari.Release.CurrentLink", &link, false),
        ("Calamari.Release.HealthCheckCommand", "test -f index.html", false),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, *v, false)));
    let file = env.variables("vars.json", &vars);
    let pkg = package(env);
    std::fs::create_dir_all(env.path("tmp")).unwrap();
    env.cmd(&[
        "deploy-package",
        &format!("--package={}", pkg.display()),
        &format!("--variables={}", file.display()),
        "--plan",
    ])
    .env("TentacleHome", env.path("home"))
    .env("TMPDIR", env.path("tmp"))
    .run()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn the_plan_shows_directory_conventions_scripts_and_diffs_and_changes_nothing() {
    let env = TestEnv::new();
    let run = plan(&env, &[]);
    let staging = env.path("Applications/Production/Acme.Web/1.0.0");
    run.success()
        .stdout_has(&format!("would extract Acme.Web 1.0.0 (3 files) to '{}'", staging.display()))
        .stdout_has("warning: The enabled feature Octopus.Features.IISWebSite will not run")
        .stdout_has("would run the packaged script PreDeploy.sh")
        .stdout_has(&format!("would switch '{}' to '{}'", env.path("srv/current").display(), staging.display()))
        .stdout_has("would check command 'test -f index.html'")
        .stdout_has(&format!("--- a{}/index.html\n+++ b{}/index.html\n", staging.display(), staging.display()))
        .stdout_has("-Hello #{Name}\n+Hello World\n line2\n")
        .stdout_has("-DB=#{DbPassword}\n+DB=********\n")
        .stdout_has(
            "-{\"Db\":{\"Password\":\"old\",\"Host\":\"h\"}}\n+{\"Db\":{\"Password\":\"********\",\"Host\":\"h\"}}\n",
        )
        .stdout_has(&format!("would record the deployment in '{}'", env.path("home/DeploymentJournal.xml").display()))
        .stdout_has("Nothing was changed.")
        .output_lacks("s3cret!");
    assert!(!env.path("Applications").exists(), "no staging directory");
    assert!(!env.path("srv").exists(), "no link, no lock, not even the link's directory");
    assert_eq!(entries(&env.path("home")), Vec::<String>::new(), "no journal, lock or cache entry in TentacleHome");
    assert_eq!(entries(&env.path("tmp")), Vec::<String>::new(), "the temporary extraction is gone");
}

#[test]
fn a_plan_for_a_locked_set_or_a_missing_package_fails_as_the_deployment_would() {
    let env = TestEnv::new();
    env.cmd(&["lock", "acquire", "--retentionPolicySet=web", "--message=frozen for the audit"])
        .env("TentacleHome", env.path("home"))
        .run()
        .success();
    plan(&env, &[]).code(1).stderr_has("frozen for the audit. Nothing was deployed");
    env.cmd(&["deploy-package", "--package=missing.1.0.0.tar.gz", "--plan"])
        .run()
        .code(1)
        .stderr_has("missing.1.0.0.tar.gz");
}
