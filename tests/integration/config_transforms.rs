//! Integration tests: XML configuration transforms (`Octopus.Features.ConfigurationTransforms`)
//! and .NET configuration variables (`Octopus.Features.ConfigurationVariables`) through
//! `deploy-package`. Each test builds a package, deploys it and checks the files left in the
//! installation directory and the log lines (the engine itself is covered case by case by the
//! unit tests in `calamari/src/config_transform/`).

use std::path::{Path, PathBuf};

use crate::util::{Run, TestEnv};

const TRANSFORMS: &str = "Octopus.Features.ConfigurationTransforms";
const CONFIG_VARIABLES: &str = "Octopus.Features.ConfigurationVariables";
const AUTOMATIC: &str = "Octopus.Action.Package.AutomaticallyRunConfigurationTransformationFiles";
const ADDITIONAL: &str = "Octopus.Action.Package.AdditionalXmlConfigurationTransforms";
const UPDATE_APP_SETTINGS: &str = "Octopus.Action.Package.AutomaticallyUpdateAppSettingsAndConnectionStrings";
const XDT: &str = "xmlns:xdt=\"http://schemas.microsoft.com/XML-Document-Transform\"";

/// Writes `Acme.Web.1.0.0.tar.gz` holding `files` and returns its path.
fn package(env: &TestEnv, files: &[(&str, &str)]) -> PathBuf {
    let files: Vec<(&str, &[u8], u32)> = files.iter().map(|(name, text)| (*name, text.as_bytes(), 0o644)).collect();
    crate::util::tar_gz(env, "Acme.Web.1.0.0.tar.gz", &files)
}

/// Deploys the package to `Production` with `features` enabled and `extra` variables; the run
/// and the installation directory.
fn deploy(env: &TestEnv, package: &Path, features: &str, extra: &[(&str, &str)]) -> (Run, PathBuf) {
    let apps = env.path("Applications").display().to_string();
    let mut vars: Vec<(&str, &str, bool)> = vec![
        ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.as_str(), false),
        ("Octopus.Environment.Name", "Production", false),
        ("Octopus.Action.Package.PackageId", "Acme.Web", false),
        ("Octopus.Action.Package.PackageVersion", "1.0.0", false),
        ("Octopus.Action.EnabledFeatures", features, false),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, *v, false)));
    env.variables("vars.json", &vars);
    let run = env
        .cmd(&["deploy-package", &format!("--package={}", package.display()), "--variables=vars.json"])
        .env("TentacleHome", env.path("home"))
        .run();
    (run, env.path("Applications/Production/Acme.Web/1.0.0"))
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap()
}

/// Every file left in `dir`, relative, sorted (to see that nothing else was written).
fn listing(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> =
        walk(dir).into_iter().map(|p| p.strip_prefix(dir).unwrap().display().to_string()).collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

const WEB_CONFIG: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<!-- Acme -->\r\n<configuration>\r\n  <appSettings>\r\n    <add key=\"Greeting\" value=\"dev\" />\r\n    <add key=\"Level\" value=\"Debug\" />\r\n    <add key=\"Last\"   value='dev' />\r\n  </appSettings>\r\n  <connectionStrings>\r\n    <add name=\"Db\" connectionString=\"Server=dev\" />\r\n  </connectionStrings>\r\n  <system.web>\r\n    <compilation debug=\"true\" targetFramework=\"4.8\" />\r\n    <customErrors mode=\"Off\" />\r\n  </system.web>\r\n</configuration>\r\n";

#[test]
fn transforms_then_configuration_variables_then_structured_variables_in_the_reference_order() {
    let env = TestEnv::new();
    // The Release transform takes a value substituted into it first (SubstituteInFiles runs
    // before the transforms); the environment's runs after it.
    let release = format!(
        "<?xml version=\"1.0\"?>\n<configuration {XDT}>\n  <appSettings>\n    <add key=\"Level\" value=\"#{{Level}}\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(key)\" />\n    <add key=\"Greeting\" value=\"from-release\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(key)\" />\n    <add key=\"Added\" value=\"new\" xdt:Transform=\"Insert\" />\n  </appSettings>\n  <system.web>\n    <compilation xdt:Transform=\"RemoveAttributes(debug)\" />\n    <customErrors xdt:Transform=\"Remove\" />\n  </system.web>\n</configuration>\n"
    );
    let production = format!(
        "<configuration {XDT}>\n  <connectionStrings>\n    <add name=\"Db\" connectionString=\"Server=prod\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(name)\"/>\n  </connectionStrings>\n</configuration>\n"
    );
    let pkg = package(
        &env,
        &[("Web.config", WEB_CONFIG), ("Web.Release.config", &release), ("Web.Production.config", &production)],
    );
    let (run, dir) = deploy(
        &env,
        &pkg,
        &format!(
            "Octopus.Features.SubstituteInFiles,{TRANSFORMS},{CONFIG_VARIABLES},Octopus.Features.JsonConfigurationVariables"
        ),
        &[
            (AUTOMATIC, "True"),
            (UPDATE_APP_SETTINGS, "True"),
            ("Octopus.Action.SubstituteInFiles.TargetFiles", "Web.Release.config"),
            ("Octopus.Action.Package.JsonConfigurationVariablesTargets", "Web.config"),
            ("Level", "Warning"),
            // A configuration variable, applied after the transforms: it wins over them.
            ("Greeting", "from-variable"),
            // Set by a configuration variable and then by a structured one, which runs last.
            ("Last", "from-variable"),
            ("/configuration/appSettings/add[@key='Last']/@value", "from-structured"),
        ],
    );
    let web = dir.join("Web.config").display().to_string();
    run.success()
        .stdout_has(&format!("Transforming '{web}' using '{}'.", dir.join("Web.Release.config").display()))
        .stdout_has(&format!("Transforming '{web}' using '{}'.", dir.join("Web.Production.config").display()))
        .stdout_has(&format!("Updating appSettings, applicationSettings, and connectionStrings in: {web}"))
        .stdout_has(&format!(
            "File '{}' was interpreted as an XML configuration transform; variable substitution won't be attempted.",
            dir.join("Web.Release.config").display()
        ))
        .stdout_has("Structured variable replacement succeeded on file")
        .output_lacks("will not run");
    let position = |needle: &str| run.stdout.find(needle).unwrap_or_else(|| panic!("{needle} in {}", run.stdout));
    let using = |file: &str| format!("using '{}'.", dir.join(file).display());
    assert!(position(&using("Web.Release.config")) < position(&using("Web.Production.config")));
    assert!(position(&using("Web.Production.config")) < position("Updating appSettings"));
    assert!(position("Updating appSettings") < position("Structured variable replacement succeeded"));
    // Only what the steps changed differs: line endings, quotes, comments are as they were;
    // the inserted element is on a line of its own, the removed one's line is gone.
    assert_eq!(
        read(&dir, "Web.config"),
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<!-- Acme -->\r\n<configuration>\r\n  <appSettings>\r\n    <add key=\"Greeting\" value=\"from-variable\" />\r\n    <add key=\"Level\" value=\"Warning\" />\r\n    <add key=\"Last\"   value='from-structured' />\r\n    <add key=\"Added\" value=\"new\"/>\r\n  </appSettings>\r\n  <connectionStrings>\r\n    <add name=\"Db\" connectionString=\"Server=prod\" />\r\n  </connectionStrings>\r\n  <system.web>\r\n    <compilation targetFramework=\"4.8\" />\r\n  </system.web>\r\n</configuration>\r\n"
    );
    // The transform file was substituted, but not variable-replaced.
    assert!(read(&dir, "Web.Release.config").contains("value=\"Warning\" xdt:Transform"));
    assert!(read(&dir, "Web.Release.config").contains("value=\"from-release\""));
}

#[test]
fn explicit_transforms_from_other_directories_and_with_wildcards() {
    let env = TestEnv::new();
    let set = |key: &str, value: &str| {
        format!(
            "<configuration {XDT}><appSettings><add key=\"{key}\" value=\"{value}\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(key)\"/></appSettings></configuration>"
        )
    };
    let app = "<configuration>\n  <appSettings>\n    <add key=\"A\" value=\"0\" />\n    <add key=\"B\" value=\"0\" />\n  </appSettings>\n</configuration>\n";
    let outside = env.write("shared/common.config", set("B", "outside"));
    let pkg = package(
        &env,
        &[
            ("config/web.config", app),
            ("config/app.config", app),
            ("transforms/web.octopus.config", &set("A", "web")),
            ("transforms/app.octopus.config", &set("A", "app")),
        ],
    );
    let definitions =
        format!("transforms/*.octopus.config => config/*.config\n{} => config/*.config", outside.display());
    let (run, dir) = deploy(&env, &pkg, TRANSFORMS, &[(ADDITIONAL, &definitions)]);
    run.success();
    let with = |a: &str, b: &str| {
        app.replace("\"A\" value=\"0\"", &format!("\"A\" value=\"{a}\""))
            .replace("\"B\" value=\"0\"", &format!("\"B\" value=\"{b}\""))
    };
    assert_eq!(read(&dir, "config/web.config"), with("web", "outside"));
    assert_eq!(read(&dir, "config/app.config"), with("app", "outside"));
    // The transform files are *.config files too, but no definition targets them.
    assert_eq!(read(&dir, "transforms/web.octopus.config"), set("A", "web"));
}

/// A package whose second transform file is not XML, after one that is fine.
fn package_with_a_broken_transform(env: &TestEnv) -> PathBuf {
    let good = format!(
        "<configuration {XDT}><appSettings><add key=\"Level\" value=\"Info\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(key)\"/></appSettings></configuration>"
    );
    package(
        env,
        &[
            ("Web.config", WEB_CONFIG),
            ("Web.Release.config", &good),
            ("Web.Production.config", "<configuration>\n  <appSettings>\n</configuration>\n"),
        ],
    )
}

#[test]
fn a_transform_that_is_not_xml_exits_1_naming_it_and_leaves_the_package_untouched() {
    let env = TestEnv::new();
    let pkg = package_with_a_broken_transform(&env);
    let (run, dir) = deploy(&env, &pkg, TRANSFORMS, &[(AUTOMATIC, "True")]);
    let broken = dir.join("Web.Production.config").display().to_string();
    run.code(1)
        .stderr_has(&format!("The XML transform file '{broken}' is not valid XML (line 3, column 1)"))
        .stderr_has(&format!(
            "Could not transform the file '{}' using the pattern 'Production'.",
            dir.join("Web.config").display()
        ));
    // The Release transform had been applied in memory; nothing was written.
    assert_eq!(read(&dir, "Web.config"), WEB_CONFIG);
    assert_eq!(listing(&dir), ["Web.Production.config", "Web.Release.config", "Web.config"]);
}

#[test]
fn ignore_config_transformation_errors_turns_errors_into_warnings() {
    let env = TestEnv::new();
    let pkg = package_with_a_broken_transform(&env);
    let (run, dir) = deploy(
        &env,
        &pkg,
        TRANSFORMS,
        &[(AUTOMATIC, "True"), ("Octopus.Action.Package.IgnoreConfigTransformationErrors", "True")],
    );
    let broken = dir.join("Web.Production.config").display().to_string();
    run.success()
        .stdout_has("##octopus[stdout-warning]")
        .stdout_has(&format!("The XML transform file '{broken}' is not valid XML"));
    assert_eq!(read(&dir, "Web.config"), WEB_CONFIG.replace("value=\"Debug\"", "value=\"Info\""));
}

#[test]
fn a_transform_that_matches_nothing_fails_unless_warnings_are_allowed() {
    let env = TestEnv::new();
    let missing = format!(
        "<?xml version=\"1.0\"?>\n<configuration {XDT}>\n  <appSettings>\n    <add key=\"NewName\" xdt:Locator=\"Condition(@key='OldName')\" xdt:Transform=\"SetAttributes(key)\" />\n  </appSettings>\n</configuration>"
    );
    let pkg = package(&env, &[("Web.config", WEB_CONFIG), ("Web.Release.config", &missing)]);
    let (run, dir) = deploy(&env, &pkg, TRANSFORMS, &[(AUTOMATIC, "True")]);
    let (web, release) = (dir.join("Web.config"), dir.join("Web.Release.config"));
    run.code(1)
        .stderr_has(&format!("File {}, line 4, position 6: ", release.display()))
        .stderr_has("No element in the source document matches '/configuration/appSettings/add[@key='OldName']'")
        .stderr_has(&format!(
            "The XML configuration file {} failed with transformation file {}.",
            web.display(),
            release.display()
        ));
    assert_eq!(read(&dir, "Web.config"), WEB_CONFIG);

    for (flag, value, level) in [
        ("Octopus.Action.Package.TreatConfigTransformationWarningsAsErrors", "False", "##octopus[stdout-warning]"),
        ("Octopus.Action.Package.IgnoreConfigTransformationErrors", "True", "##octopus[stdout-default]"),
    ] {
        let env = TestEnv::new();
        let pkg = package(&env, &[("Web.config", WEB_CONFIG), ("Web.Release.config", &missing)]);
        let (run, _) = deploy(&env, &pkg, TRANSFORMS, &[(AUTOMATIC, "True"), (flag, value)]);
        run.success();
        let at =
            run.stdout.find("No element in the source document matches").unwrap_or_else(|| panic!("{}", run.stdout));
        assert_eq!(
            run.stdout[..at].rfind("##octopus[").map(|i| run.stdout[i..at].lines().next().unwrap()),
            Some(level),
            "{flag}"
        );
    }
}

#[test]
fn configuration_variables_need_their_flag_and_name_a_file_that_is_not_xml() {
    let env = TestEnv::new();
    let pkg = package(
        &env,
        &[("Web.config", WEB_CONFIG), ("Bad.config", "<resources>\n  <p text=\"&nbsp;\"/>\n</resources>\n")],
    );
    let (run, dir) = deploy(&env, &pkg, CONFIG_VARIABLES, &[("Greeting", "hello")]);
    run.success().output_lacks("appSettings");
    assert_eq!(read(&dir, "Web.config"), WEB_CONFIG);

    let env = TestEnv::new();
    let pkg = package(
        &env,
        &[("Web.config", WEB_CONFIG), ("Bad.config", "<resources>\n  <p text=\"&nbsp;\"/>\n</resources>\n")],
    );
    let (run, dir) = deploy(&env, &pkg, CONFIG_VARIABLES, &[(UPDATE_APP_SETTINGS, "True"), ("Greeting", "hello")]);
    run.code(1).stderr_has(&format!(
        "The XML configuration file '{}' is not valid XML (line 2",
        dir.join("Bad.config").display()
    ));
    assert_eq!(read(&dir, "Web.config"), WEB_CONFIG);

    let env = TestEnv::new();
    let pkg = package(
        &env,
        &[("Web.config", WEB_CONFIG), ("Bad.config", "<resources>\n  <p text=\"&nbsp;\"/>\n</resources>\n")],
    );
    let (run, dir) = deploy(
        &env,
        &pkg,
        CONFIG_VARIABLES,
        &[
            (UPDATE_APP_SETTINGS, "True"),
            ("Greeting", "hello"),
            ("Octopus.Action.Package.IgnoreVariableReplacementErrors", "True"),
        ],
    );
    run.success().stdout_has("Ignoring variable replacement error: The XML configuration file");
    assert_eq!(
        read(&dir, "Web.config"),
        WEB_CONFIG
            .replace("value=\"dev\" />\r\n    <add key=\"Level\"", "value=\"hello\" />\r\n    <add key=\"Level\"")
    );
}

#[test]
fn sensitive_values_reach_the_file_but_not_the_log() {
    let env = TestEnv::new();
    let pkg = package(&env, &[("Web.config", WEB_CONFIG)]);
    let apps = env.path("Applications").display().to_string();
    env.variables(
        "vars.json",
        &[
            ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.as_str(), false),
            ("Octopus.Action.EnabledFeatures", CONFIG_VARIABLES, false),
            (UPDATE_APP_SETTINGS, "True", false),
            ("Db", "Server=prod;Password=hunter2-secret", true),
        ],
    );
    let run = env
        .cmd(&["deploy-package", &format!("--package={}", pkg.display()), "--variables=vars.json"])
        .env("TentacleHome", env.path("home"))
        .run();
    run.success().stdout_has("Setting 'Db' = '").output_lacks("hunter2-secret");
    let dir = env.path("Applications/Acme.Web/1.0.0");
    assert!(read(&dir, "Web.config").contains("connectionString=\"Server=prod;Password=hunter2-secret\""));
}
