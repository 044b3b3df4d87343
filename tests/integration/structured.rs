//! Integration tests: structured configuration variables through `deploy-package`
//! (`Octopus.Features.JsonConfigurationVariables`). Each test builds a small package, deploys
//! it with the feature on, and checks the files left in the installation directory (the
//! library behaviour is covered in detail by the approval cases in `fixtures/structured/`).

use std::path::{Path, PathBuf};

use crate::util::{Run, TestEnv};

const FEATURE: &str = "Octopus.Features.JsonConfigurationVariables";
const TARGETS: &str = "Octopus.Action.Package.JsonConfigurationVariablesTargets";

/// Writes `Acme.Structured.1.0.0.tar.gz` holding `files` and returns its path.
fn package(env: &TestEnv, files: &[(&str, &[u8])]) -> PathBuf {
    let path = env.path("Acme.Structured.1.0.0.tar.gz");
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        tar.append_data(&mut header, name, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    path
}

/// Deploys the package with the feature enabled and `extra` variables.
fn deploy(env: &TestEnv, package: &Path, extra: &[(&str, &str, bool)]) -> (Run, PathBuf) {
    let apps = env.path("Applications");
    let apps = apps.to_string_lossy().into_owned();
    let mut vars: Vec<(&str, &str, bool)> = vec![
        ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.as_str(), false),
        ("Octopus.Action.Package.PackageId", "Acme.Structured", false),
        ("Octopus.Action.Package.PackageVersion", "1.0.0", false),
        ("Octopus.Action.EnabledFeatures", FEATURE, false),
    ];
    vars.extend_from_slice(extra);
    env.variables("vars.json", &vars);
    let run = env
        .cmd(&["deploy-package", &format!("--package={}", package.display()), "--variables=vars.json"])
        .env("TentacleHome", env.path("home"))
        .run();
    let dir = run
        .output_variable("Octopus.Action.Package.InstallationDirectoryPath")
        .map(PathBuf::from)
        .unwrap_or_else(|| env.path("Applications/Acme.Structured/1.0.0"));
    (run, dir)
}

#[test]
fn json_yaml_xml_and_properties_are_replaced_keeping_their_style() {
    let env = TestEnv::new();
    let json = b"{\r\n  \"Name\": \"dev\", // comment\r\n  \"Port\": 80,\r\n  \"Log\": {\"Level\": \"Debug\"}\r\n}\r\n";
    let yaml = b"# settings\nname: dev   # inline\nport: 80\n";
    let xml = b"<?xml version=\"1.0\"?>\n<config>\n  <!-- c -->\n  <add key=\"Name\" value=\"dev\"/>\n</config>\n";
    let props = b"# props\nname = dev\nport: 80\n";
    let pkg = package(
        &env,
        &[
            ("appsettings.json", json),
            ("config/app.yaml", yaml),
            ("config/app.xml", xml),
            ("config/app.properties", props),
        ],
    );
    let (run, dir) = deploy(
        &env,
        &pkg,
        &[
            (TARGETS, "appsettings.json\nconfig/*.yaml\nconfig/app.xml\nconfig/*.properties", false),
            ("Name", "prod", false),
            ("name", "prod", false),
            ("Port", "8080", false),
            ("Log:Level", "Warning", false),
            ("/config/add[@key='Name']/@value", "prod", false),
        ],
    );
    run.success()
        .stdout_has("Structured variable replacement succeeded on file")
        .stdout_has("with format Json")
        .stdout_has("with format Yaml")
        .stdout_has("with format Xml")
        .stdout_has("with format Properties");
    let read = |rel: &str| std::fs::read_to_string(dir.join(rel)).unwrap();
    assert_eq!(
        read("appsettings.json"),
        "{\r\n  \"Name\": \"prod\", // comment\r\n  \"Port\": 8080,\r\n  \"Log\": {\"Level\": \"Warning\"}\r\n}\r\n"
    );
    assert_eq!(read("config/app.yaml"), "# settings\nname: prod   # inline\nport: 8080\n");
    assert_eq!(
        read("config/app.xml"),
        "<?xml version=\"1.0\"?>\n<config>\n  <!-- c -->\n  <add key=\"Name\" value=\"prod\"/>\n</config>\n"
    );
    assert_eq!(read("config/app.properties"), "# props\nname = prod\nport: 8080\n");
}

#[test]
fn unparseable_file_fails_the_deployment_naming_file_and_format() {
    let env = TestEnv::new();
    let pkg = package(&env, &[("broken.json", b"{\"a\": ")]);
    let (run, _) = deploy(&env, &pkg, &[(TARGETS, "broken.json", false), ("a", "1", false)]);
    // What the binary returns today; a file the user shipped is their mistake, so 1 may be meant.
    run.code(100);
    assert!(format!("{}{}", run.stdout, run.stderr).contains("The file could not be parsed as Json"), "{run:?}");
    assert!(format!("{}{}", run.stdout, run.stderr).contains("broken.json"), "{run:?}");
}

#[test]
fn missing_target_warns_and_octopus_variables_are_not_structures() {
    let env = TestEnv::new();
    let pkg = package(&env, &[("a.json", b"{\"Octopus\": {\"Rocks\": 1}, \"OctopusX\": 1}")]);
    let (run, dir) = deploy(
        &env,
        &pkg,
        &[(TARGETS, "a.json\nnothing/*.json", false), ("OctopusX", "2", false), ("Octopus:Rocks", "3", false)],
    );
    run.success().stdout_has("No files were found that match the replacement target pattern 'nothing/*.json'");
    assert_eq!(std::fs::read_to_string(dir.join("a.json")).unwrap(), "{\"Octopus\": {\"Rocks\": 3}, \"OctopusX\": 1}");
}

#[test]
fn sensitive_values_are_written_but_never_logged() {
    let env = TestEnv::new();
    let pkg = package(&env, &[("a.json", b"{\"Password\": \"x\"}")]);
    let (run, dir) = deploy(&env, &pkg, &[(TARGETS, "a.json", false), ("Password", "s3cr3t-value", true)]);
    run.success().output_lacks("s3cr3t-value");
    assert_eq!(std::fs::read_to_string(dir.join("a.json")).unwrap(), "{\"Password\": \"s3cr3t-value\"}");
}
