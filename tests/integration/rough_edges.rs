//! What a new user met and should not have (issue 21, item 6): messages that name the real
//! mistake, no log lines about features the deployment does not use, no announcement of
//! what will not happen.

use crate::util::{TestEnv, tar_gz};

#[test]
fn an_unclosed_closing_tag_is_named_and_a_missing_template_asks_for_either_option() {
    let env = TestEnv::new();
    env.cmd(&["evaluate", "--template=#{if Foo}yes#{/if"])
        .run()
        .code(1)
        .stderr_has("line 1, column 18: unexpected end of input; expected '}': the '#{/if' is not closed");
    let run = env.cmd(&["evaluate"]).run();
    run.code(1).stderr_has("<--template <TEXT>|--file <PATH>>");
    run.output_lacks("expected a variable name");
}

#[test]
fn a_deployment_without_release_settings_says_nothing_about_links_or_health_checks() {
    let env = TestEnv::new();
    let pkg = tar_gz(&env, "Acme.Plain.1.0.0.tar.gz", &[("a.txt", b"a", 0o644)]);
    let apps = env.path("Applications").display().to_string();
    let vars = env.variables("vars.json", &[("Octopus.Tentacle.Agent.ApplicationDirectoryPath", &apps, false)]);
    let run = env
        .cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", vars.display())])
        .run();
    run.success().stdout_has("Running convention: extract package");
    for absent in ["current link", "health check", "release:"] {
        run.output_lacks(absent);
    }
}

#[test]
fn extracting_to_an_existing_directory_fails_without_announcing_the_extraction() {
    let env = TestEnv::new();
    let pkg = tar_gz(&env, "Acme.Plain.1.0.0.tar.gz", &[("a.txt", b"a", 0o644)]);
    std::fs::create_dir_all(env.path("exists")).unwrap();
    let run = env.cmd(&["extract-package", &format!("--package={}", pkg.display()), "--destination=exists"]).run();
    run.code(1).stderr_has("already exists; extraction needs a new directory");
    run.output_lacks("Extracting package to");
}
