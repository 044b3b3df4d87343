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
    let files: Vec<(&str, &[u8], u32)> = files.iter().map(|(name, bytes)| (*name, *bytes, 0o644)).collect();
    crate::util::tar_gz(env, "Acme.Structured.1.0.0.tar.gz", &files)
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
    // The reference exits 100 (a plain exception); a file the user shipped is their mistake.
    run.code(1);
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

#[test]
fn yaml_structures_take_plain_values_and_directives_are_kept() {
    let env = TestEnv::new();
    let yaml = b"%YAML 1.2\n%TAG !cfg! tag:example.com,2026:\n%TAG !! tag:yaml.org,2002:\n---\nserver:\n  host: a\n  port: 1\nports:\n- 80\n- 81\nflag: !cfg!bool \"false\"\nname: app # c\ngone: [1]\nempty: {a: 1}\n";
    let pkg = package(&env, &[("app.yaml", yaml)]);
    let (run, dir) = deploy(
        &env,
        &pkg,
        &[
            (TARGETS, "app.yaml", false),
            ("server", "local", false),
            ("ports", "none", false),
            ("flag", "true", false),
            ("name", "~", false),
            ("gone", "", false),
            ("empty", "#{Missing}", false),
        ],
    );
    run.success().stdout_has("with format Yaml");
    assert_eq!(
        std::fs::read_to_string(dir.join("app.yaml")).unwrap(),
        "%YAML 1.2\n%TAG !cfg! tag:example.com,2026:\n%TAG !! tag:yaml.org,2002:\n---\nserver: local\nports: none\nflag: !cfg!bool \"true\"\nname: \"~\" # c\ngone: \"\"\nempty: \"#{Missing}\"\n"
    );
}

#[test]
fn yaml_parse_error_names_the_line_and_column_of_the_fault() {
    let env = TestEnv::new();
    // Four lines: the last is not indented under the block scalar, so it is a key without ':'.
    let pkg = package(&env, &[("broken.yaml", b"name: app\nport: 80\nmotd: |\nnot part of the block")]);
    let (run, dir) = deploy(&env, &pkg, &[(TARGETS, "broken.yaml", false), ("name", "x", false)]);
    run.code(1).output_lacks("Line: 5");
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(output.contains("The file could not be parsed as Yaml: (Line: 4, Col: 1, Idx: 27)"), "{output}");
    assert!(output.contains("See verbose logs for more details."), "{output}");
    assert!(!output.contains("line 5"), "{output}");
    assert_eq!(std::fs::read(dir.join("broken.yaml")).unwrap(), b"name: app\nport: 80\nmotd: |\nnot part of the block");
}

#[test]
fn xml_processing_instructions_wildcards_and_declared_encoding() {
    let env = TestEnv::new();
    let latin2 = b"<?xml version=\"1.0\" encoding=\"iso-8859-2\"?>\n<names xmlns=\"urn:n\" xmlns:p=\"urn:p\">\n  <?style old?>\n  <name>Micha\xB3</name>\n  <p:name>Jan</p:name>\n</names>\n";
    let pkg = package(&env, &[("kept.xml", latin2), ("switched.xml", latin2)]);
    let (run, dir) = deploy(
        &env,
        &pkg,
        &[
            (TARGETS, "kept.xml\nswitched.xml", false),
            ("//*:name[2]", "Miko\u{142}aj", false),
            ("/*:names/processing-instruction('style')", "new", false),
        ],
    );
    run.success();
    // Both values fit in ISO 8859-2: the file stays in it, declaration and all.
    assert_eq!(
        std::fs::read(dir.join("kept.xml")).unwrap(),
        b"<?xml version=\"1.0\" encoding=\"iso-8859-2\"?>\n<names xmlns=\"urn:n\" xmlns:p=\"urn:p\">\n  <?style new?>\n  <name>Micha\xB3</name>\n  <p:name>Miko\xB3aj</p:name>\n</names>\n"
    );

    let env = TestEnv::new();
    let pkg = package(&env, &[("switched.xml", latin2)]);
    let (run, dir) =
        deploy(&env, &pkg, &[(TARGETS, "switched.xml", false), ("//*:name[1]", "\u{5f20}\u{4f1f}", false)]);
    run.success().stdout_has("cannot be represented in the output encoding; writing UTF-8 instead");
    assert_eq!(
        std::fs::read_to_string(dir.join("switched.xml")).unwrap(),
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<names xmlns=\"urn:n\" xmlns:p=\"urn:p\">\n  <?style old?>\n  <name>\u{5f20}\u{4f1f}</name>\n  <p:name>Jan</p:name>\n</names>\n"
    );
}

#[test]
fn properties_non_ascii_values_are_written_as_unicode_escapes() {
    let env = TestEnv::new();
    let pkg = package(&env, &[("app.properties", b"greeting=hi\nk\\u1e1by=old\n")]);
    let (run, dir) = deploy(
        &env,
        &pkg,
        &[
            (TARGETS, "app.properties", false),
            ("greeting", "\u{398}ctopus \u{fc}", false),
            ("k\u{1e1b}y", "new", false),
        ],
    );
    run.success().stdout_has("with format Properties");
    assert_eq!(
        std::fs::read_to_string(dir.join("app.properties")).unwrap(),
        "greeting=\\u0398ctopus \\u00FC\nk\\u1e1by=new\n"
    );
}

#[test]
fn structured_config_messages_are_worded_as_the_reference_words_them() {
    let env = TestEnv::new();
    let xml = b"<root xmlns:a=\"urn:one\">\n  <inner xmlns:a=\"urn:two\"><a:x>1</a:x></inner>\n  <list><item>1</item></list>\n</root>\n";
    let pkg = package(&env, &[("conf/app.xml", xml), ("conf/app.settings", b"{\"a\": 1}"), ("conf/sub/x.txt", b"x")]);
    let (run, dir) = deploy(
        &env,
        &pkg,
        &[
            (TARGETS, "conf/app.xml\nconf/app.settings\nconf/sub", false),
            ("//list", "<unclosed>", false),
            ("a", "2", false),
        ],
    );
    run.success()
        .stdout_has("app.xml matches a known filename pattern, and will be treated as Xml. The file will be tried as Json first for backwards compatibility.")
        .stdout_has("app.settings does not match any known filename patterns. The file will be tried as multiple formats and will be treated as the first format that can be successfully parsed.")
        .stdout_has("The registered replacers we will try, in order, are: JsonFormatVariableReplacer,XmlFormatVariableReplacer")
        .stdout_has("Skipping structured variable replacement on 'conf/sub' because it is a directory.")
        .stdout_has("The namespace 'urn:two' could not be mapped to the 'a' prefix, as another namespace 'urn:one' is already mapped to that prefix. XPath selectors using this prefix may not return the expected nodes. You can avoid this by ensuring all namespaces in your document have unique prefixes.")
        .stdout_has("Could not set the value of the XML element at XPath '//list' to '<unclosed>'. Expected a valid XML fragment. Skipping replacement of this element.");
    assert_eq!(std::fs::read(dir.join("conf/app.xml")).unwrap(), xml);
    assert_eq!(std::fs::read_to_string(dir.join("conf/app.settings")).unwrap(), "{\"a\": 2}");
}
