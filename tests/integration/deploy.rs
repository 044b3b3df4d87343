//! `deploy-package` through the real binary: every convention and gate in the reference's
//! order, the failure path with `DeployFailed`, `SkipIfAlreadyInstalled`, custom
//! installation directories, parallel deployments, and the bundled sample deployment.

use std::path::{Path, PathBuf};

use crate::util::{Run, TestEnv, fixtures};

/// Builds `<dir>/<name>` (a .tar.gz) from (path, contents, mode) entries.
fn package(env: &TestEnv, name: &str, files: &[(&str, &str, u32)]) -> PathBuf {
    let files: Vec<(&str, &[u8], u32)> = files.iter().map(|(p, c, m)| (*p, c.as_bytes(), *m)).collect();
    crate::util::tar_gz(env, name, &files)
}

/// Common variables: staging under the sandbox, a journal, ids for the journal entry.
fn base_vars(env: &TestEnv) -> Vec<(String, String, bool)> {
    [
        ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", env.path("Applications").display().to_string()),
        ("Octopus.Environment.Name", "Test".to_string()),
        ("Octopus.Environment.Id", "Environments-1".to_string()),
        ("Octopus.Project.Id", "Projects-1".to_string()),
        ("OctopusRetentionPolicySet", "Environments-1/Projects-1/Step-1/Machines-1/<default>".to_string()),
        ("Octopus.Action.Package.PackageId", "Acme.Test".to_string()),
        ("Octopus.Action.Package.PackageVersion", "1.0.0".to_string()),
        ("Octopus.Action.Name", "Step One".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v, false))
    .collect()
}

fn deploy(env: &TestEnv, pkg: &Path, extra: &[(&str, &str, bool)]) -> Run {
    let mut vars = base_vars(env);
    vars.extend(extra.iter().map(|(k, v, s)| (k.to_string(), v.to_string(), *s)));
    let refs: Vec<(&str, &str, bool)> = vars.iter().map(|(k, v, s)| (k.as_str(), v.as_str(), *s)).collect();
    let file = env.variables("vars.json", &refs);
    env.cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", file.display())])
        .env("TentacleHome", env.path("home"))
        .run()
}

fn journal(env: &TestEnv) -> String {
    std::fs::read_to_string(env.path("home/DeploymentJournal.xml")).unwrap_or_default()
}

fn staging(env: &TestEnv, suffix: &str) -> PathBuf {
    env.path(format!("Applications/Test/Acme.Test/1.0.0{suffix}"))
}

#[test]
fn extracts_runs_packaged_scripts_in_order_and_journals() {
    let env = TestEnv::new();
    let pkg = package(
        &env,
        "Acme.Test.1.0.0.tar.gz",
        &[
            ("PreDeploy.sh", "echo \"hello from PreDeploy in $(basename $(pwd))\"", 0o644),
            ("Deploy.sh", "echo hello from Deploy\nset_octopusvariable Answer 42", 0o644),
            (
                "PostDeploy.sh",
                "echo \"PostDeploy sees $(get_octopusvariable 'Octopus.Action[Step One].Output.Answer')\"",
                0o644,
            ),
            ("app/run.sh", "#!/bin/sh\necho run", 0o755),
        ],
    );
    let run = deploy(&env, &pkg, &[]);
    run.success()
        .stdout_has("hello from PreDeploy in 1.0.0")
        .stdout_has("hello from Deploy")
        .stdout_has("PostDeploy sees 42");
    let pre = run.stdout.find("hello from PreDeploy").unwrap();
    let dep = run.stdout.find("hello from Deploy").unwrap();
    assert!(pre < dep, "PreDeploy runs before Deploy");
    let dir = staging(&env, "");
    assert_eq!(
        run.output_variable("Octopus.Action.Package.InstallationDirectoryPath"),
        Some(dir.display().to_string())
    );
    assert_eq!(run.output_variable("Package.ExtractedFileCount").as_deref(), Some("4"));
    assert_eq!(run.output_variable("Answer").as_deref(), Some("42"));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.join("app/run.sh")).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "the executable bit survives extraction");
    for script in ["PreDeploy.sh", "Deploy.sh", "PostDeploy.sh"] {
        assert!(!dir.join(script).exists(), "{script} is deleted after it ran");
    }
    let journal = journal(&env);
    assert!(journal.contains("WasSuccessful=\"True\""), "{journal}");
    assert!(journal.contains(&format!("ExtractedTo=\"{}\"", dir.display())), "{journal}");
    assert!(journal.contains("PackageId=\"Acme.Test\""), "{journal}");

    deploy(&env, &pkg, &[]).success();
    assert!(staging(&env, "_1").is_dir(), "a redeploy of the same version gets a _1 directory");
}

#[test]
fn only_the_preferred_packaged_script_runs_and_scripts_can_be_kept() {
    let env = TestEnv::new();
    let pkg = package(
        &env,
        "Acme.Test.1.0.0.tar.gz",
        &[
            ("Deploy.sh", "echo bash-ran", 0o644),
            ("Deploy.py", "print('python-ran')", 0o644),
            ("Deploy.ps1", "Write-Host ps-ran", 0o644),
        ],
    );
    let run = deploy(&env, &pkg, &[("OctopusDeleteScriptsOnCleanup", "False", false)]);
    run.success().stdout_has("bash-ran");
    assert!(!run.stdout.contains("python-ran") && !run.stdout.contains("ps-ran"), "{}", run.stdout);
    assert!(
        staging(&env, "").join("Deploy.py").exists(),
        "scripts are kept when OctopusDeleteScriptsOnCleanup is false"
    );
}

#[test]
fn failure_runs_deploy_failed_sets_last_error_and_journals_the_failure() {
    let env = TestEnv::new();
    let pkg = package(
        &env,
        "Acme.Test.1.0.0.tar.gz",
        &[
            ("Deploy.sh", "echo about to fail; exit 3", 0o644),
            ("PostDeploy.sh", "echo should-not-run", 0o644),
            ("DeployFailed.sh", "echo \"rollback saw: $(get_octopusvariable OctopusLastErrorMessage)\"", 0o644),
        ],
    );
    let run = deploy(&env, &pkg, &[]);
    run.code(1).stdout_has("rollback saw: Script").stdout_has("returned non-zero exit code: 3");
    run.stderr_has("returned non-zero exit code: 3. Deployment terminated.");
    assert!(!run.stdout.contains("should-not-run"));
    assert!(!staging(&env, "").join("DeployFailed.sh").exists(), "DeployFailed scripts are deleted at cleanup");
    assert!(journal(&env).contains("WasSuccessful=\"False\""), "{}", journal(&env));
}

#[test]
fn deploy_failed_does_not_run_on_success_and_is_deleted() {
    let env = TestEnv::new();
    let pkg = package(
        &env,
        "Acme.Test.1.0.0.tar.gz",
        &[("DeployFailed.sh", "echo rollback-ran", 0o644), ("a.txt", "a", 0o644)],
    );
    let run = deploy(&env, &pkg, &[]);
    run.success();
    assert!(!run.stdout.contains("rollback-ran"));
    assert!(!staging(&env, "").join("DeployFailed.sh").exists());
}

#[test]
fn skip_if_already_installed_uses_the_journal() {
    let env = TestEnv::new();
    let pkg = package(&env, "Acme.Test.1.0.0.tar.gz", &[("Deploy.sh", "echo deployed-once", 0o644)]);
    let skip = [("Octopus.Action.Package.SkipIfAlreadyInstalled", "True", false)];
    deploy(&env, &pkg, &skip).success().stdout_has("deployed-once");
    let second = deploy(&env, &pkg, &skip);
    second
        .success()
        .stdout_has("The package has already been installed on this machine, so installation will be skipped.");
    assert!(!second.stdout.contains("deployed-once"));
    assert!(!staging(&env, "_1").exists());
    assert_eq!(
        second.output_variable("Octopus.Action.Package.InstallationDirectoryPath"),
        Some(staging(&env, "").display().to_string())
    );
    assert_eq!(journal(&env).matches("<Deployment ").count(), 1, "a skipped deployment writes no journal entry");
}

#[test]
fn configured_scripts_run_around_packaged_ones_when_the_feature_is_enabled() {
    let env = TestEnv::new();
    let pkg = package(
        &env,
        "Acme.Test.1.0.0.tar.gz",
        &[("PreDeploy.sh", "echo packaged-pre", 0o644), ("Deploy.sh", "echo packaged-deploy", 0o644)],
    );
    let run = deploy(
        &env,
        &pkg,
        &[
            ("Octopus.Action.EnabledFeatures", "Octopus.Features.CustomScripts", false),
            ("Octopus.Action.CustomScripts.PreDeploy.sh", "echo configured-pre", false),
            ("Octopus.Action.CustomScripts.Deploy.sh", "echo configured-deploy", false),
        ],
    );
    run.success();
    let order: Vec<usize> = ["configured-pre", "packaged-pre", "packaged-deploy", "configured-deploy"]
        .iter()
        .map(|s| run.stdout.find(s).unwrap_or_else(|| panic!("{s} missing: {}", run.stdout)))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "order {order:?}\n{}", run.stdout);
    assert!(!staging(&env, "").join("Octopus.Action.CustomScripts.PreDeploy.sh").exists());

    let without_feature = TestEnv::new();
    let pkg = package(&without_feature, "Acme.Test.1.0.0.tar.gz", &[("a.txt", "a", 0o644)]);
    let run =
        deploy(&without_feature, &pkg, &[("Octopus.Action.CustomScripts.PreDeploy.sh", "echo configured-pre", false)]);
    run.success();
    assert!(!run.stdout.contains("configured-pre"), "configured scripts need the CustomScripts feature");
}

#[test]
fn skip_remaining_conventions_stops_the_pipeline() {
    let env = TestEnv::new();
    let pkg = package(
        &env,
        "Acme.Test.1.0.0.tar.gz",
        &[
            ("PreDeploy.sh", "set_octopusvariable Octopus.Action.SkipRemainingConventions True", 0o644),
            ("Deploy.sh", "echo deploy-should-not-run", 0o644),
        ],
    );
    let run = deploy(&env, &pkg, &[]);
    run.success();
    assert!(!run.stdout.contains("deploy-should-not-run"), "{}", run.stdout);
}

#[test]
fn substitution_and_structured_variables_are_gated_by_features() {
    let env = TestEnv::new();
    let files =
        [("web.config", "<add value=\"#{Greeting}\"/>", 0o644), ("appsettings.json", "{\"Greeting\": \"dev\"}", 0o644)];
    let pkg = package(&env, "Acme.Test.1.0.0.tar.gz", &files);
    deploy(&env, &pkg, &[("Greeting", "hello", false)]).success();
    let dir = staging(&env, "");
    assert_eq!(std::fs::read_to_string(dir.join("web.config")).unwrap(), "<add value=\"#{Greeting}\"/>");
    assert_eq!(std::fs::read_to_string(dir.join("appsettings.json")).unwrap(), "{\"Greeting\": \"dev\"}");

    let run = deploy(
        &env,
        &pkg,
        &[
            ("Greeting", "hello", false),
            (
                "Octopus.Action.EnabledFeatures",
                "Octopus.Features.SubstituteInFiles,Octopus.Features.JsonConfigurationVariables",
                false,
            ),
            ("Octopus.Action.SubstituteInFiles.TargetFiles", "*.config", false),
            ("Octopus.Action.Package.JsonConfigurationVariablesTargets", "appsettings.json", false),
        ],
    );
    run.success();
    let dir = staging(&env, "_1");
    assert_eq!(std::fs::read_to_string(dir.join("web.config")).unwrap(), "<add value=\"hello\"/>");
    assert_eq!(std::fs::read_to_string(dir.join("appsettings.json")).unwrap(), "{\"Greeting\": \"hello\"}");
}

#[test]
fn custom_installation_directory_copies_purges_with_exclusions_and_switches_scripts_there() {
    let env = TestEnv::new();
    let custom = env.path("www/acme");
    std::fs::create_dir_all(custom.join("logs")).unwrap();
    std::fs::write(custom.join("logs/keep.log"), "keep").unwrap();
    std::fs::write(custom.join("stale.txt"), "stale").unwrap();
    let pkg = package(
        &env,
        "Acme.Test.1.0.0.tar.gz",
        &[("index.html", "hi", 0o644), ("Deploy.sh", "echo \"deploy in $(pwd)\"", 0o644)],
    );
    let run = deploy(
        &env,
        &pkg,
        &[
            ("Octopus.Action.Package.CustomInstallationDirectory", &custom.display().to_string(), false),
            ("Octopus.Action.Package.CustomInstallationDirectoryShouldBePurgedBeforeDeployment", "True", false),
            ("Octopus.Action.Package.CustomInstallationDirectoryPurgeExclusions", "logs/**", false),
        ],
    );
    run.success().stdout_has("Copying package contents to").stdout_has(&format!("deploy in {}", custom.display()));
    assert_eq!(
        run.output_variable("Octopus.Action.Package.InstallationDirectoryPath"),
        Some(custom.display().to_string())
    );
    assert!(custom.join("index.html").is_file());
    assert!(custom.join("logs/keep.log").is_file(), "excluded files survive the purge");
    assert!(!custom.join("stale.txt").exists(), "other files are purged");

    let relative = deploy(&env, &pkg, &[("Octopus.Action.Package.CustomInstallationDirectory", "relative/dir", false)]);
    relative.code(1).stderr_has("is a relative path");
}

#[test]
fn eight_parallel_deployments_get_eight_directories_and_eight_journal_entries() {
    let env = TestEnv::new();
    let pkg = package(&env, "Acme.Test.1.0.0.tar.gz", &[("Deploy.sh", "echo parallel", 0o644), ("a.txt", "a", 0o644)]);
    let vars = base_vars(&env);
    let refs: Vec<(&str, &str, bool)> = vars.iter().map(|(k, v, s)| (k.as_str(), v.as_str(), *s)).collect();
    let file = env.variables("vars.json", &refs);
    let children: Vec<_> = (0..8)
        .map(|_| {
            let mut cmd = env
                .cmd(&[
                    "deploy-package",
                    &format!("--package={}", pkg.display()),
                    &format!("--variables={}", file.display()),
                ])
                .env("TentacleHome", env.path("home"))
                .cmd;
            cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut dirs: Vec<String> = std::fs::read_dir(env.path("Applications/Test/Acme.Test"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    dirs.sort();
    assert_eq!(dirs, ["1.0.0", "1.0.0_1", "1.0.0_2", "1.0.0_3", "1.0.0_4", "1.0.0_5", "1.0.0_6", "1.0.0_7"]);
    assert_eq!(journal(&env).matches("<Deployment ").count(), 8, "{}", journal(&env));
}

#[test]
fn the_bundled_sample_deploys_end_to_end() {
    let env = TestEnv::new();
    let sample = fixtures().join("sample");
    let run = env
        .cmd(&[
            "deploy-package",
            &format!("--package={}", sample.join("Acme.Web.1.0.0.tar.gz").display()),
            &format!("--variables={}", sample.join("variables.json").display()),
        ])
        .env("TentacleHome", env.path("home"))
        .run();
    run.success()
        .stdout_has("PreDeploy: preparing Acme.Web 1.0.0 for Production")
        .stdout_has("PostDeploy: the app is live at https://web01.example.com")
        .output_lacks("correct-horse-battery-staple")
        .output_lacks("tok-1.0.0-s3cr3t");
    let dir = env.path("home/Applications/Production/Acme.Web/1.0.0");
    let config = std::fs::read_to_string(dir.join("config/web.config")).unwrap();
    assert!(config.contains("value=\"Production\""), "{config}");
    assert!(config.contains("value=\"db01.production.internal\""), "{config}");
    assert!(config.contains("#{NotAVariable}"), "escaped text stays literal: {config}");
    let settings = std::fs::read_to_string(dir.join("appsettings.json")).unwrap();
    assert!(settings.contains("\"Default\": \"Warning\""), "{settings}");
    assert!(settings.contains("\"MaxUploadMb\": 50"), "{settings}");
    assert!(journal(&env).contains("Acme.Web"));
}

#[test]
fn a_failure_before_extraction_never_runs_or_deletes_scripts_in_the_working_directory() {
    let env = TestEnv::new();
    env.write("DeployFailed.sh", "echo rollback-from-cwd");
    let not_a_package = env.write("Acme.Test.1.0.0.tar.gz", "this is not gzip data");
    let run = deploy(&env, &not_a_package, &[]);
    run.code(1);
    assert!(!run.stdout.contains("rollback-from-cwd"), "{}", run.stdout);
    assert!(env.path("DeployFailed.sh").is_file(), "a file in the caller's directory was deleted");
}

#[test]
fn additional_paths_are_searched_for_substitution_and_structured_targets() {
    let env = TestEnv::new();
    let shared = env.path("shared-config");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("extra.config"), "name=#{Greeting}").unwrap();
    std::fs::write(shared.join("extra.json"), "{\"Greeting\": \"dev\"}").unwrap();
    let pkg = package(&env, "Acme.Test.1.0.0.tar.gz", &[("a.txt", "a", 0o644)]);
    deploy(
        &env,
        &pkg,
        &[
            ("Greeting", "hello", false),
            ("Octopus.Action.AdditionalPaths", &shared.display().to_string(), false),
            (
                "Octopus.Action.EnabledFeatures",
                "Octopus.Features.SubstituteInFiles,Octopus.Features.JsonConfigurationVariables",
                false,
            ),
            ("Octopus.Action.SubstituteInFiles.TargetFiles", "*.config", false),
            ("Octopus.Action.Package.JsonConfigurationVariablesTargets", "*.json", false),
        ],
    )
    .success();
    assert_eq!(std::fs::read_to_string(shared.join("extra.config")).unwrap(), "name=hello");
    assert_eq!(std::fs::read_to_string(shared.join("extra.json")).unwrap(), "{\"Greeting\": \"hello\"}");
}

#[test]
fn enabled_features_run_their_embedded_scripts_and_features_without_scripts_are_skipped() {
    // HelloWorld has a bash and a PowerShell script; both run, as in the reference on Linux.
    if !crate::util::pwsh_available() {
        return;
    }
    let env = TestEnv::new();
    let pkg = package(&env, "Acme.Test.1.0.0.tar.gz", &[("PreDeploy.sh", "echo packaged-pre", 0o644)]);
    let features = "Octopus.Features.WildflyDeployCLI,Octopus.Features.HelloWorld,Octopus.Features.CustomScripts";
    let run = deploy(
        &env,
        &pkg,
        &[
            ("Octopus.Action.EnabledFeatures", features, false),
            ("Octopus.Action.CustomScripts.PreDeploy.sh", "echo configured-pre", false),
        ],
    );
    run.success()
        .stdout_has(
            "The enabled feature Octopus.Features.WildflyDeployCLI will not run: deploying to WildFly is not supported",
        )
        .output_lacks("Did not overwrite");
    let order: Vec<usize> = ["Hello World!", "configured-pre", "packaged-pre"]
        .iter()
        .map(|s| run.stdout.find(s).unwrap_or_else(|| panic!("{s} missing: {}", run.stdout)))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "BeforePreDeploy runs first: {order:?}\n{}", run.stdout);
    assert_eq!(run.stdout.matches("Hello World!").count(), 2, "{}", run.stdout);
    let dir = staging(&env, "");
    for ext in ["sh", "ps1"] {
        let script = dir.join(format!("Octopus.Features.HelloWorld_BeforePreDeploy.{ext}"));
        assert!(!script.exists(), "the feature script is deleted: {}", script.display());
    }

    let without = TestEnv::new();
    let pkg = package(&without, "Acme.Test.1.0.0.tar.gz", &[("a.txt", "a", 0o644)]);
    deploy(&without, &pkg, &[]).success().output_lacks("Hello World!");
    let other_case =
        deploy(&without, &pkg, &[("Octopus.Action.EnabledFeatures", "octopus.features.helloworld", false)]);
    other_case.success().output_lacks("Hello World!");
}

#[test]
fn a_feature_script_already_on_disk_is_run_instead_and_its_failure_fails_the_deployment() {
    let env = TestEnv::new();
    let name = "Octopus.Features.HelloWorld_BeforePreDeploy.sh";
    let pkg = package(
        &env,
        "Acme.Test.1.0.0.tar.gz",
        &[
            (name, "echo overridden-feature; exit 4", 0o644),
            ("PreDeploy.sh", "echo pre-should-not-run", 0o644),
            ("DeployFailed.sh", "echo \"rollback saw: $(get_octopusvariable OctopusLastErrorMessage)\"", 0o644),
        ],
    );
    let run = deploy(&env, &pkg, &[("Octopus.Action.EnabledFeatures", "Octopus.Features.HelloWorld", false)]);
    let script = staging(&env, "").join(name);
    let message = format!("Script '{}' returned non-zero exit code: 4", script.display());
    run.code(1)
        .stdout_has("overridden-feature")
        .stdout_has(&format!("Did not overwrite '{}', it was already on disk", script.display()))
        .stdout_has(&format!("rollback saw: {message}"))
        .stderr_has(&message)
        .output_lacks("Hello World!")
        .output_lacks("pre-should-not-run");
    assert!(!script.exists(), "the feature script is deleted after it ran");
    assert!(journal(&env).contains("WasSuccessful=\"False\""), "{}", journal(&env));
}

#[test]
fn run_script_sees_the_previous_installations_from_a_journal_written_by_deploy_package() {
    let env = TestEnv::new();
    let pkg = package(&env, "Acme.Test.1.0.0.tar.gz", &[("a.txt", "a", 0o644)]);
    std::fs::create_dir_all(env.path("failing")).unwrap();
    let failing = package(&env, "failing/Acme.Test.1.0.0.tar.gz", &[("Deploy.sh", "exit 2", 0o644)]);
    let fields = ["OriginalInstalledPath", "CustomInstallationDirectory", "PackageFilePath", "PackageVersion"];
    let mut body = String::new();
    for prefix in ["PreviousInstallation", "PreviousSuccessfulInstallation"] {
        for field in fields {
            body.push_str(&format!(
                "echo \"{prefix}.{field}=[$(get_octopusvariable Octopus.Tentacle.{prefix}.{field})]\"\n"
            ));
        }
    }
    let run_script = |extra: &[(&str, &str, bool)]| {
        let mut vars = base_vars(&env);
        vars.push(("Octopus.Action.Script.ScriptBody".into(), body.clone(), false));
        vars.push(("Octopus.Action.Script.Syntax".into(), "Bash".into(), false));
        vars.extend(extra.iter().map(|(k, v, s)| (k.to_string(), v.to_string(), *s)));
        let refs: Vec<(&str, &str, bool)> = vars.iter().map(|(k, v, s)| (k.as_str(), v.as_str(), *s)).collect();
        let file = env.variables("script-vars.json", &refs);
        env.cmd(&["run-script", &format!("--variables={}", file.display())]).env("TentacleHome", env.path("home")).run()
    };

    let before = run_script(&[]);
    before.success().stdout_has("PreviousInstallation.OriginalInstalledPath=[]\n");

    deploy(&env, &pkg, &[]).success();
    deploy(&env, &failing, &[]).code(1);
    let run = run_script(&[]);
    run.success()
        .stdout_has(&format!("PreviousInstallation.OriginalInstalledPath=[{}]\n", staging(&env, "_1").display()))
        .stdout_has(&format!("PreviousInstallation.PackageFilePath=[{}]\n", failing.display()))
        .stdout_has("PreviousInstallation.PackageVersion=[1.0.0]\n")
        .stdout_has("PreviousInstallation.CustomInstallationDirectory=[")
        .stdout_has(&format!(
            "PreviousSuccessfulInstallation.OriginalInstalledPath=[{}]\n",
            staging(&env, "").display()
        ))
        .stdout_has(&format!("PreviousSuccessfulInstallation.PackageFilePath=[{}]\n", pkg.display()))
        .stdout_has("PreviousSuccessfulInstallation.PackageVersion=[1.0.0]\n");

    let other_set =
        run_script(&[("OctopusRetentionPolicySet", "Environments-1/Projects-2/Step-1/Machines-1/<default>", false)]);
    other_set.success().stdout_has("PreviousSuccessfulInstallation.OriginalInstalledPath=[]\n");
}

#[test]
fn enabled_features_that_will_not_run_are_named_in_a_warning() {
    let env = TestEnv::new();
    let pkg = package(&env, "Acme.Test.1.0.0.tar.gz", &[("Deploy.sh", "echo deployed", 0o644)]);
    let features = "Octopus.Features.CustomDirectory, Octopus.Features.IISWebSite,Octopus.Features.WindowsService,\
                    octopus.features.vhd,Octopus.Features.Teleport,Octopus.Features.SubstituteInFiles";
    let run = deploy(&env, &pkg, &[("Octopus.Action.EnabledFeatures", features, false)]);
    run.success().stdout_has("deployed");
    let warnings: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("The enabled feature ")).collect();
    assert_eq!(
        warnings,
        [
            "The enabled feature Octopus.Features.IISWebSite will not run: IIS is Windows-only, so no IIS web site, application or virtual directory is configured.",
            "The enabled feature Octopus.Features.WindowsService will not run: Windows services are Windows-only, so no service is installed, reconfigured or started.",
            "The enabled feature Octopus.Features.Vhd will not run: VHD images are Windows-only, so no VHD is mounted.",
            "The enabled feature Octopus.Features.Teleport will not run: this Calamari does not know it, so it is ignored.",
        ],
        "{}",
        run.stdout
    );
    // They are warnings: written at the warning level, before the package is extracted.
    let first = run.stdout.find("The enabled feature").unwrap();
    assert!(run.stdout[..first].ends_with("##octopus[stdout-warning]\n"), "{}", run.stdout);
    assert!(first < run.stdout.find("deployed").unwrap());
}
