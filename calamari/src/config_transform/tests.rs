//! Both conventions on real directories: which files are transformed and in what order,
//! the log lines, how the variables map warnings and errors, the all-or-nothing writes,
//! encodings, and the configuration variables (the reference's
//! `ConfigurationTransformConventionFixture`, `ConfigurationTransformsFixture`,
//! `ConfigurationVariablesFixture` cases).

use std::path::PathBuf;

use super::*;
use crate::log::SharedBuffer;

const XDT: &str = "xmlns:xdt=\"http://schemas.microsoft.com/XML-Document-Transform\"";

struct Package {
    dir: tempfile::TempDir,
}

impl Package {
    fn new(files: &[(&str, &str)]) -> Package {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Package { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    fn transform(&self, vars: &[(&str, &str)]) -> (Result<(), crate::Error>, VariableDictionary, String, String) {
        let mut variables = VariableDictionary::new();
        for (k, v) in vars {
            variables.set(*k, Some((*v).to_string()));
        }
        let (log, out, err): (Log, SharedBuffer, SharedBuffer) = Log::capture();
        let result = apply_configuration_transforms(self.dir.path(), &mut variables, &log);
        (result, variables, out.contents(), err.contents())
    }

    fn replace(&self, variables: &VariableDictionary) -> (Result<(), crate::Error>, String, String) {
        let (log, out, err) = Log::capture();
        let result = replace_configuration_variables(self.dir.path(), variables, &log);
        (result, out.contents(), err.contents())
    }
}

fn web_config(value: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<configuration>\n  <appSettings>\n    <add key=\"Env\" value=\"{value}\" />\n  </appSettings>\n</configuration>\n"
    )
}

fn set_env(value: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<configuration {XDT}>\n  <appSettings>\n    <add key=\"Env\" value=\"{value}\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(key)\" />\n  </appSettings>\n</configuration>\n"
    )
}

const AUTOMATIC: (&str, &str) = ("Octopus.Action.Package.AutomaticallyRunConfigurationTransformationFiles", "True");

#[test]
fn release_then_environment_then_tenant_transforms_run_on_every_config_file() {
    let pkg = Package::new(&[
        ("Web.config", &web_config("dev")),
        ("Web.Release.config", &set_env("release")),
        ("Web.Production.config", &set_env("production")),
        ("Web.Tenant-1.config", &set_env("tenant")),
        ("sub/Web.config", &web_config("dev")),
        ("sub/Web.Release.config", &set_env("sub-release")),
    ]);
    let (result, variables, out, err) = pkg.transform(&[
        AUTOMATIC,
        ("Octopus.Environment.Name", "Production"),
        ("Octopus.Deployment.Tenant.Name", "Tenant-1"),
    ]);
    result.unwrap();
    assert_eq!(err, "");
    assert_eq!(pkg.read("Web.config"), web_config("tenant"));
    assert_eq!(pkg.read("sub/Web.config"), web_config("sub-release"));
    let p = |rel: &str| pkg.path(rel).display().to_string();
    let order: Vec<&str> = out.lines().filter(|l| l.starts_with("Transforming")).collect();
    assert_eq!(
        order,
        [
            format!("Transforming '{}' using '{}'.", p("Web.config"), p("Web.Release.config")),
            format!("Transforming '{}' using '{}'.", p("Web.config"), p("Web.Production.config")),
            format!("Transforming '{}' using '{}'.", p("Web.config"), p("Web.Tenant-1.config")),
            format!("Transforming '{}' using '{}'.", p("sub/Web.config"), p("sub/Web.Release.config")),
        ]
    );
    assert_eq!(
        variables.get_raw(vn::APPLIED_TRANSFORMS),
        Some(
            [
                p("Web.Release.config"),
                p("Web.Production.config"),
                p("Web.Tenant-1.config"),
                p("sub/Web.Release.config")
            ]
            .join("|")
            .as_str()
        )
    );
    // The transform files themselves are left as they were.
    assert_eq!(pkg.read("Web.Release.config"), set_env("release"));
}

#[test]
fn automatic_transforms_need_their_flag() {
    let pkg = Package::new(&[("Web.config", &web_config("dev")), ("Web.Release.config", &set_env("release"))]);
    let (result, variables, out, _) = pkg.transform(&[]);
    result.unwrap();
    assert_eq!(pkg.read("Web.config"), web_config("dev"));
    assert!(!out.contains("Transforming"), "{out}");
    assert_eq!(variables.get_raw(vn::APPLIED_TRANSFORMS), Some(""));
}

#[test]
fn explicit_transforms_and_what_they_did_not_do() {
    let pkg = Package::new(&[
        ("foo.config", &web_config("dev")),
        ("foo.bar.config", &set_env("bar")),
        ("settings.xml", &web_config("dev")),
        ("transforms/settings.prod.xml", &set_env("prod")),
    ]);
    let (result, _, out, _) = pkg.transform(&[(
        vn::ADDITIONAL_TRANSFORMS,
        "foo.bar.config => foo.config\r\n*.bar.config => foo.config, foo.missing.config => foo.config\ntransforms\\settings.prod.xml => settings.xml",
    )]);
    result.unwrap();
    assert_eq!(pkg.read("foo.config"), web_config("bar"));
    assert_eq!(pkg.read("settings.xml"), web_config("prod"));
    assert!(out.contains("The transform pattern \"*.bar.config => foo.config\" was not performed as it overlapped with another transform."), "{out}");
    assert!(out.contains("The transform pattern \"foo.missing.config => foo.config\" was not performed as no matching files could be found."), "{out}");
    assert!(out.contains("For detailed diagnostic logging, please set a variable 'Octopus.Action.Package.EnableDiagnosticsConfigTransformationLogging' with a value of 'True'."), "{out}");
    let (result, _, _, _) = pkg.transform(&[(vn::ADDITIONAL_TRANSFORMS, "a.config =>")]);
    assert_eq!(
        result.unwrap_err().to_string(),
        "The transform definition 'a.config =>' in Octopus.Action.Package.AdditionalXmlConfigurationTransforms has no target: expected 'transform.config => target.config'"
    );
}

#[test]
fn diagnostics_log_the_search() {
    let pkg = Package::new(&[("app.config", &web_config("dev")), ("app.Test.config", &set_env("test"))]);
    let (result, _, out, _) = pkg.transform(&[
        AUTOMATIC,
        ("Octopus.Environment.Name", "Test"),
        (vn::DIAGNOSTICS, "True"),
        (vn::ADDITIONAL_TRANSFORMS, "app.Test.config => app.config"),
    ]);
    result.unwrap();
    let p = |rel: &str| pkg.path(rel).display().to_string();
    for line in [
        format!(
            "Recursively searching for transformation files that match *.config in folder '{}'",
            pkg.dir.path().display()
        ),
        format!("Found config file '{}'", p("app.config")),
        " - checking against transform 'app.Test.config => app.config'".to_string(),
        " - Skipping as file name 'app.Test.config' does not match the target pattern 'app.config'".to_string(),
        " - checking against transform 'Release'".to_string(),
        format!(
            " - skipping as neither transform 'app.Release.config' nor transform 'app.Release' could be found in '{}'",
            pkg.dir.path().display()
        ),
        " - checking against transform 'Test'".to_string(),
        format!(
            " - Skipping as target '{}' has already been transformed by transform '{}'",
            p("app.config"),
            p("app.Test.config")
        ),
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in\n{out}");
    }
}

/// A transform whose target is missing, applied after one that works.
fn failing_package() -> Package {
    let warning = format!(
        "<?xml version=\"1.0\"?>\n<configuration {XDT}>\n  <appSettings>\n    <add key=\"NewName\" xdt:Locator=\"Condition(@key='OldName')\" xdt:Transform=\"SetAttributes(key)\" />\n  </appSettings>\n</configuration>\n"
    );
    Package::new(&[
        ("a.config", &web_config("dev")),
        ("a.Release.config", &set_env("release")),
        ("b.config", &web_config("dev")),
        ("b.Release.config", &warning),
    ])
}

#[test]
fn a_warning_fails_the_transform_and_nothing_is_written() {
    let pkg = failing_package();
    let (result, variables, _, err) = pkg.transform(&[AUTOMATIC]);
    let error = result.unwrap_err();
    let (b, tb) = (pkg.path("b.config"), pkg.path("b.Release.config"));
    assert_eq!(
        error.to_string(),
        format!("The XML configuration file {} failed with transformation file {}.", b.display(), tb.display())
    );
    assert_eq!(error.kind(), crate::ErrorKind::User);
    assert!(err.contains(&format!("File {}, line 4, position 6: ", tb.display())), "{err}");
    assert!(
        err.contains("No element in the source document matches '/configuration/appSettings/add[@key='OldName']'"),
        "{err}"
    );
    assert!(
        err.contains(&format!("Could not transform the file '{}' using the pattern 'Release'.", b.display())),
        "{err}"
    );
    // a.config was transformed first, but nothing reaches the disk when a transform fails.
    assert_eq!(pkg.read("a.config"), web_config("dev"));
    assert_eq!(pkg.read("b.config"), web_config("dev"));
    assert_eq!(variables.get_raw(vn::APPLIED_TRANSFORMS), None);
}

#[test]
fn warnings_not_treated_as_errors_are_warnings() {
    let pkg = failing_package();
    let (result, _, out, err) = pkg.transform(&[AUTOMATIC, (vn::WARNINGS_AS_ERRORS, "False")]);
    result.unwrap();
    assert_eq!(err, "");
    assert!(
        out.contains("No element in the source document matches '/configuration/appSettings/add[@key='OldName']'"),
        "{out}"
    );
    assert_eq!(pkg.read("a.config"), web_config("release"));
}

#[test]
fn ignoring_errors_makes_warnings_information_and_skips_files_that_are_not_xml() {
    let pkg = failing_package();
    std::fs::write(pkg.path("c.config"), "<resources>\n  <p text=\"&nbsp;\"/>\n</resources>").unwrap();
    std::fs::write(pkg.path("c.Release.config"), set_env("x")).unwrap();
    let (result, _, out, err) = pkg.transform(&[AUTOMATIC, (vn::IGNORE_ERRORS, "True")]);
    result.unwrap();
    assert_eq!(err, "");
    assert!(out.contains("XML transformation warnings will be downgraded to information because the variable Octopus.Action.Package.IgnoreConfigTransformationErrors has been set to true."));
    assert!(
        out.contains(&format!(
            "The XML configuration file '{}' is not valid XML (line 2, column",
            pkg.path("c.config").display()
        )),
        "{out}"
    );
    assert_eq!(pkg.read("a.config"), web_config("release"));
    assert_eq!(pkg.read("c.config"), "<resources>\n  <p text=\"&nbsp;\"/>\n</resources>");
}

#[test]
fn a_transform_or_target_that_is_not_xml_fails_naming_it() {
    let pkg = Package::new(&[
        ("Web.config", &web_config("dev")),
        ("Web.Release.config", "<configuration>\n  <oops>\n</configuration>"),
    ]);
    let (result, _, _, err) = pkg.transform(&[AUTOMATIC]);
    let message = result.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "The XML transform file '{}' is not valid XML (line 3, column 1): ",
            pkg.path("Web.Release.config").display()
        )),
        "{message}"
    );
    assert!(err.contains(&message), "{err}");
    assert_eq!(pkg.read("Web.config"), web_config("dev"));

    let pkg = Package::new(&[("Web.config", "not xml"), ("Web.Release.config", &set_env("x"))]);
    let (result, _, _, _) = pkg.transform(&[AUTOMATIC]);
    let message = result.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "The XML configuration file '{}' is not valid XML",
            pkg.path("Web.config").display()
        )),
        "{message}"
    );
}

#[test]
fn removing_the_root_is_reported_but_written() {
    let pkg = Package::new(&[
        ("Web.config", &web_config("dev")),
        (
            "Web.Release.config",
            &format!("<?xml version=\"1.0\"?>\n\n<configuration {XDT} xdt:Transform=\"Remove\">\n</configuration>\n"),
        ),
    ]);
    let (result, _, _, err) = pkg.transform(&[AUTOMATIC]);
    result.unwrap();
    assert!(err.contains("no longer has a root element and is invalid after being transformed by"), "{err}");
    assert_eq!(pkg.read("Web.config"), "<?xml version=\"1.0\"?>\n");
}

#[test]
fn suppressed_logging_leaves_out_the_transform_progress() {
    let pkg = Package::new(&[("Web.config", &web_config("dev")), ("Web.Release.config", &set_env("release"))]);
    let (result, _, out, _) = pkg.transform(&[AUTOMATIC, (vn::SUPPRESS_LOGGING, "True")]);
    result.unwrap();
    assert!(out.contains("Verbose XML transformation logging has been turned off"), "{out}");
    assert!(!out.contains("Executing SetAttributes"), "{out}");
    let (_, _, out, _) = pkg.transform(&[AUTOMATIC]);
    assert!(out.contains("Executing SetAttributes"), "{out}");
}

#[test]
fn encodings_and_byte_order_marks_are_kept() {
    let pkg = Package::new(&[("Web.Release.config", &set_env("café"))]);
    let mut latin = b"<?xml version=\"1.0\" encoding=\"windows-1252\"?>\n<configuration>\n  <appSettings>\n    <add key=\"Env\" value=\"na\xefve\" />\n  </appSettings>\n</configuration>\n".to_vec();
    std::fs::write(pkg.path("Web.config"), &latin).unwrap();
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(web_config("dev").as_bytes());
    std::fs::write(pkg.path("Other.config"), &bom).unwrap();
    std::fs::write(pkg.path("Other.Release.config"), set_env("ok")).unwrap();
    let (result, _, _, _) = pkg.transform(&[AUTOMATIC]);
    result.unwrap();
    let replaced = latin.windows(4).position(|w| w == b"na\xefv").unwrap();
    latin.splice(replaced..replaced + 5, b"caf\xe9".iter().copied());
    assert_eq!(std::fs::read(pkg.path("Web.config")).unwrap(), latin);
    let mut expected = b"\xEF\xBB\xBF".to_vec();
    expected.extend_from_slice(web_config("ok").as_bytes());
    assert_eq!(std::fs::read(pkg.path("Other.config")).unwrap(), expected);
}

// ---- configuration variables ----

const APP_CONFIG: &str = "\u{feff}<?xml version=\"1.0\"?>\r\n\r\n<configuration>\r\n  <appSettings>\r\n    <add key=\"WelcomeMessage\" value=\"Welcome\" />\r\n    <add key=\"LogFile\" value=\"\" />\r\n    <add key=\"DatabaseConnection\" value=\"ABC\" />\r\n    <add key=\"NoValue\" />\r\n  </appSettings>\r\n\r\n  <connectionStrings>\r\n    <add name=\"MyDb1\" connectionString=\"X\" />\r\n    <add name=\"MyDb2\" connectionString=\"Y\" />\r\n  </connectionStrings>\r\n</configuration>\r\n";

fn vars(pairs: &[(&str, Option<&str>)]) -> VariableDictionary {
    let mut v = VariableDictionary::new();
    for (k, value) in pairs {
        v.set(*k, value.map(str::to_string));
    }
    v
}

#[test]
fn app_settings_and_connection_strings_are_replaced_in_place() {
    let pkg = Package::new(&[("App.config", APP_CONFIG), ("sub/Views/Web.config", APP_CONFIG)]);
    let variables = vars(&[
        ("welcomemessage", Some("Hello world")),
        ("LogFile", Some("C:\\Log.txt")),
        ("DatabaseConnection", None),
        ("NoValue", Some("added")),
        ("MyDb2", Some("Server=bar&bar=123;\"q\"")),
        ("Unrelated", Some("x")),
    ]);
    let (result, out, _) = pkg.replace(&variables);
    result.unwrap();
    let expected = APP_CONFIG
        .replace("value=\"Welcome\"", "value=\"Hello world\"")
        .replace("key=\"LogFile\" value=\"\"", "key=\"LogFile\" value=\"C:\\Log.txt\"")
        .replace("value=\"ABC\"", "value=\"\"")
        .replace("<add key=\"NoValue\" />", "<add key=\"NoValue\" value=\"added\" />")
        .replace("connectionString=\"Y\"", "connectionString=\"Server=bar&amp;bar=123;&quot;q&quot;\"");
    assert_eq!(pkg.read("App.config"), expected);
    assert_eq!(pkg.read("sub/Views/Web.config"), expected);
    let app = pkg.path("App.config").display().to_string();
    assert!(
        out.contains(&format!("Updating appSettings, applicationSettings, and connectionStrings in: {app}")),
        "{out}"
    );
    let settings: Vec<&str> = out.lines().filter(|l| l.starts_with("Setting '")).take(5).collect();
    assert_eq!(
        settings,
        [
            "Setting 'welcomemessage' = 'Hello world'",
            "Setting 'LogFile' = 'C:\\Log.txt'",
            "Setting 'DatabaseConnection' = ''",
            "Setting 'NoValue' = 'added'",
            "Setting 'MyDb2' = 'Server=bar&bar=123;\"q\"'",
        ]
    );
}

#[test]
fn settings_in_a_namespace_and_strongly_typed_settings() {
    let crazy = "<configuration xmlns=\"http://schemas.microsoft.com/.NetConfiguration/v2.0\">\n  <appSettings>\n    <add key=\"WelcomeMessage\" value=\"\" />\n  </appSettings>\n</configuration>\n";
    let strong = "<?xml version=\"1.0\"?>\n<configuration>\n    <applicationSettings>\n        <AppSettings.Properties.Settings>\n            <setting name=\"WelcomeMessage\" serializeAs=\"String\">\n                <value>Hello</value>\n            </setting>\n            <setting name=\"Empty\" serializeAs=\"String\">\n                <value />\n            </setting>\n            <setting name=\"Missing\" serializeAs=\"String\">\n            </setting>\n        </AppSettings.Properties.Settings>\n    </applicationSettings>\n</configuration>\n";
    let pkg = Package::new(&[("Crazy.config", crazy), ("Strong.config", strong)]);
    let variables = vars(&[("WelcomeMessage", Some("Hello <world>")), ("Empty", Some("e")), ("Missing", Some("m"))]);
    pkg.replace(&variables).0.unwrap();
    assert_eq!(pkg.read("Crazy.config"), crazy.replace("value=\"\"", "value=\"Hello &lt;world&gt;\""));
    let expected = strong
        .replace("<value>Hello</value>", "<value>Hello &lt;world&gt;</value>")
        .replace("<value />", "<value>e</value>")
        .replace(
            "<setting name=\"Missing\" serializeAs=\"String\">\n            </setting>",
            "<setting name=\"Missing\" serializeAs=\"String\">\n                <value>m</value>\n            </setting>",
        );
    assert_eq!(pkg.read("Strong.config"), expected);
}

#[test]
fn transform_files_applied_are_skipped_and_files_without_settings_logged() {
    let pkg = Package::new(&[
        ("Web.config", &web_config("dev")),
        ("Web.Release.config", &set_env("#{Env}")),
        ("Other.config", "<configuration/>"),
    ]);
    let mut variables = vars(&[("Env", Some("prod"))]);
    variables.set(vn::APPLIED_TRANSFORMS, Some(pkg.path("Web.Release.config").display().to_string()));
    let (result, out, _) = pkg.replace(&variables);
    result.unwrap();
    assert_eq!(pkg.read("Web.config"), web_config("prod"));
    assert_eq!(pkg.read("Web.Release.config"), set_env("#{Env}"));
    assert!(out.contains(&format!(
        "File '{}' was interpreted as an XML configuration transform; variable substitution won't be attempted.",
        pkg.path("Web.Release.config").display()
    )));
    assert!(out.contains(&format!(
        "No matching appSetting, applicationSetting, nor connectionString names were found in: {}",
        pkg.path("Other.config").display()
    )));
}

#[test]
fn a_config_file_that_is_not_xml_fails_unless_ignored_and_nothing_is_written() {
    let bad = "<?xml version=\"1.0\"?>\n<resources>\n<p text=\"&nbsp;\"/>\n</resources>";
    let pkg = Package::new(&[("A.config", &web_config("dev")), ("B.config", bad)]);
    let variables = vars(&[("Env", Some("prod"))]);
    let (result, _, err) = pkg.replace(&variables);
    let message = result.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "The XML configuration file '{}' is not valid XML (line 3",
            pkg.path("B.config").display()
        )),
        "{message}"
    );
    assert!(err.contains(&format!(
        "Exception while replacing configuration-variables in: {}",
        pkg.path("B.config").display()
    )));
    assert_eq!(pkg.read("A.config"), web_config("dev"));

    let mut variables = variables;
    variables.set(vn::IGNORE_REPLACEMENT_ERRORS, Some("true".into()));
    let (result, out, _) = pkg.replace(&variables);
    result.unwrap();
    assert!(out.contains("Ignoring variable replacement error: The XML configuration file"), "{out}");
    assert_eq!(pkg.read("A.config"), web_config("prod"));
    assert_eq!(pkg.read("B.config"), bad);
}

#[test]
fn nothing_changes_when_no_setting_is_named() {
    let pkg = Package::new(&[("App.config", APP_CONFIG)]);
    let before = std::fs::metadata(pkg.path("App.config")).unwrap().modified().unwrap();
    pkg.replace(&vars(&[("Other", Some("x"))])).0.unwrap();
    assert_eq!(pkg.read("App.config"), APP_CONFIG);
    assert_eq!(std::fs::metadata(pkg.path("App.config")).unwrap().modified().unwrap(), before);
}
