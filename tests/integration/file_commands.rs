//! Integration tests: the standalone file commands `structured-config-variables`,
//! `substitute-variables-in-files` and `substitute-in-files` with the reference's inputs
//! (`--targetPathVariable`, `--filesToTarget`): the files changed, the files left alone (the
//! same inode: never rewritten), a target that matches nothing, a directory or variable that
//! is missing, and a file that cannot be processed (named, exit 1, nothing written).

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use crate::util::TestEnv;

const TARGETS: &str = "Octopus.Action.Package.JsonConfigurationVariablesTargets";
const FAIL_ON_SUBSTITUTION: &str = "OctopusShouldFailDeploymentOnSubstitutionFails";

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// The names in `dir`, recursively, relative to it.
fn listing(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            out.insert(path.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// structured-config-variables

#[test]
fn structured_config_variables_replaces_the_targets_under_the_directory_a_variable_names() {
    let env = TestEnv::new();
    let json = env.write("app/appsettings.json", "{\n  \"Name\": \"dev\",\n  \"Log\": {\"Level\": \"Debug\"}\n}\n");
    let yaml = env.write("app/config/app.yaml", "# settings\nname: dev\n");
    let other = env.write("app/other.json", "{\"Name\": \"dev\"}\n");
    let other_inode = inode(&other);
    let app = env.path("app");
    // The feature flag is not set: the command does not ask for it, as the reference's does not.
    let vars = env.variables(
        "vars.json",
        &[
            ("InstallDir", app.to_str().unwrap(), false),
            (TARGETS, "appsettings.json\nconfig/*.yaml\nmissing/*.json", false),
            ("Name", "prod", false),
            ("name", "prod", false),
            ("Log:Level", "Warning", false),
        ],
    );
    let run =
        env.cmd(&["structured-config-variables", "--targetPathVariable=InstallDir", "--variables"]).arg(&vars).run();
    run.success()
        .stdout_has(&format!("Structured variable replacement succeeded on file {} with format Json", json.display()))
        .stdout_has(&format!("Structured variable replacement succeeded on file {} with format Yaml", yaml.display()))
        .stdout_has("No files were found that match the replacement target pattern 'missing/*.json'");
    assert_eq!(
        std::fs::read_to_string(&json).unwrap(),
        "{\n  \"Name\": \"prod\",\n  \"Log\": {\"Level\": \"Warning\"}\n}\n"
    );
    assert_eq!(std::fs::read_to_string(&yaml).unwrap(), "# settings\nname: prod\n");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "{\"Name\": \"dev\"}\n");
    assert_eq!(inode(&other), other_inode, "a file no target names is not rewritten");

    // Our --path, relative to the working directory, does the same (nothing left to change).
    let json_inode = inode(&json);
    env.cmd(&["structured-config-variables", "--path=app", "--variables"]).arg(&vars).run().success();
    assert_eq!(inode(&json), json_inode, "a file whose values are already there is not rewritten");
}

#[test]
fn structured_config_variables_names_a_missing_variable_or_directory() {
    let env = TestEnv::new();
    let vars = env.variables("vars.json", &[(TARGETS, "a.json", false), ("Gone", "/nonexistent/app", false)]);
    let run =
        |args: &[&str]| env.cmd(&[&["structured-config-variables"], args].concat()).arg("--variables").arg(&vars).run();
    run(&["--targetPathVariable=InstallDir"])
        .code(1)
        .stderr_has("Could not locate target path from variable InstallDir for StructuredConfigVariablesCommand");
    run(&["--targetPathVariable=Gone"])
        .code(1)
        .stderr_has("The directory '/nonexistent/app' named by the variable Gone does not exist");
    run(&["--path=nowhere"])
        .code(1)
        .stderr_has(&format!("The directory '{}' does not exist", env.path("nowhere").display()));
    // One of the two, not both and not neither.
    run(&[]).code(1).stderr_has("--targetPathVariable");
    run(&["--targetPathVariable=Gone", "--path=."]).code(1).stderr_has("cannot be used with");
}

#[test]
fn structured_config_variables_without_targets_does_nothing() {
    let env = TestEnv::new();
    let file = env.write("app/a.json", "{\"A\": 1}");
    let vars = env.variables("vars.json", &[("A", "2", false)]);
    env.cmd(&["structured-config-variables", "--path=app", "--variables"])
        .arg(&vars)
        .run()
        .success()
        .stdout_has(&format!("No structured configuration target files are given in {TARGETS}; nothing to do"));
    assert_eq!(std::fs::read_to_string(file).unwrap(), "{\"A\": 1}");
}

#[test]
fn a_file_that_does_not_parse_is_named_with_exit_1_and_no_file_is_written() {
    let env = TestEnv::new();
    let first = env.write("app/a.json", "{\"A\": 1}\n");
    let broken = env.write("app/conf/app.xml", "<config><add key=\"A\" value=\"1\"></config>\n");
    let last = env.write("app/z.json", "{\"A\": 1}\n");
    let before = listing(&env.path("app"));
    let inodes = [inode(&first), inode(&broken), inode(&last)];
    let vars = env.variables(
        "vars.json",
        &[
            ("App", env.path("app").to_str().unwrap(), false),
            (TARGETS, "a.json\nconf/app.xml\nz.json", false),
            ("A", "2", false),
        ],
    );
    let run = env.cmd(&["structured-config-variables", "--targetPathVariable=App", "--variables"]).arg(&vars).run();
    run.code(1).stderr_has(&format!(
        "Structured variable replacement failed on file {}. The file could not be parsed as Xml:",
        broken.display()
    ));
    // All or nothing: a.json, processed before the broken file, is as it was; no temp file is left.
    assert_eq!(std::fs::read_to_string(&first).unwrap(), "{\"A\": 1}\n");
    assert_eq!(std::fs::read_to_string(&last).unwrap(), "{\"A\": 1}\n");
    assert_eq!([inode(&first), inode(&broken), inode(&last)], inodes);
    assert_eq!(listing(&env.path("app")), before);
}

// ---------------------------------------------------------------------------------------
// substitute-variables-in-files

#[test]
fn substitute_variables_in_files_works_in_the_current_deployments_directory() {
    let env = TestEnv::new();
    let config = env.write("staged/web.config", "<add value=\"#{Db}\"/>\r\n");
    let readme = env.write("staged/docs/readme.txt", "db: #{Db}\n");
    let untouched = env.write("staged/other.txt", "#{Db}\n");
    let untouched_inode = inode(&untouched);
    let staged = env.path("staged");
    let vars = env.variables(
        "vars.json",
        &[("Db", "Server=db01", false), ("OctopusOriginalPackageDirectoryPath", staged.to_str().unwrap(), false)],
    );
    let run = env
        .cmd(&["substitute-variables-in-files", "--filesToTarget=*.config;docs/*.txt\nmissing.txt", "--variables"])
        .arg(&vars)
        .run();
    run.success().stdout_has(&format!("Performing variable substitution on '{}'", config.display())).stdout_has(
        &format!(
            "No files were found in {} that match the substitution target pattern 'missing.txt'",
            staged.display()
        ),
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "<add value=\"Server=db01\"/>\r\n");
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), "db: Server=db01\n");
    assert_eq!(std::fs::read_to_string(&untouched).unwrap(), "#{Db}\n");
    assert_eq!(inode(&untouched), untouched_inode);

    // Without OctopusOriginalPackageDirectoryPath: the working directory.
    let here = env.write("work/here.txt", "#{Db}");
    let vars = env.variables("plain.json", &[("Db", "Server=db02", false)]);
    env.cmd(&["substitute-variables-in-files", "--filesToTarget=here.txt", "--variables"])
        .arg(&vars)
        .current_dir(env.path("work"))
        .run()
        .success();
    assert_eq!(std::fs::read_to_string(here).unwrap(), "Server=db02");
}

#[test]
fn substitute_variables_in_files_failures_name_the_file_or_directory_and_write_nothing() {
    let env = TestEnv::new();
    let first = env.write("d/a.txt", "#{A}");
    let broken = env.write("d/b.js", "x=#{A};y=\"#{\"");
    let before = listing(&env.path("d"));
    let d = env.path("d");
    let vars = env.variables(
        "vars.json",
        &[
            ("A", "1", false),
            (FAIL_ON_SUBSTITUTION, "True", false),
            ("OctopusOriginalPackageDirectoryPath", d.to_str().unwrap(), false),
        ],
    );
    let run = env.cmd(&["substitute-variables-in-files", "--filesToTarget=a.txt;b.js", "--variables"]).arg(&vars).run();
    run.code(1)
        .stderr_has(&format!("Parsing file '{}' with Octostache returned the following error", broken.display()));
    assert_eq!(std::fs::read_to_string(&first).unwrap(), "#{A}", "all or nothing: a.txt is as it was");
    assert_eq!(listing(&d), before);

    let vars = env.variables("gone.json", &[("OctopusOriginalPackageDirectoryPath", "/nonexistent/staged", false)]);
    env.cmd(&["substitute-variables-in-files", "--filesToTarget=a.txt", "--variables"])
        .arg(&vars)
        .run()
        .code(1)
        .stderr_has("The directory '/nonexistent/staged' named by the variable OctopusOriginalPackageDirectoryPath does not exist");
    env.cmd(&["substitute-variables-in-files"]).run().code(1).stderr_has("--filesToTarget");
}

// ---------------------------------------------------------------------------------------
// substitute-in-files with the reference's inputs

#[test]
fn substitute_in_files_takes_the_reference_inputs() {
    let env = TestEnv::new();
    let a = env.write("pkg/a.conf", "#{Name}");
    let b = env.write("pkg/sub/b.conf", "#{Name}");
    let c = env.write("pkg/c.conf", "#{Name}");
    let vars =
        env.variables("vars.json", &[("Target", env.path("pkg").to_str().unwrap(), false), ("Name", "Acme", false)]);
    env.cmd(&[
        "substitute-in-files",
        "--targetPathVariable=Target",
        "--filesToTarget=a.conf",
        "--filesToTarget",
        "sub/*.conf",
        "--variables",
    ])
    .arg(&vars)
    .run()
    .success();
    assert_eq!(std::fs::read_to_string(a).unwrap(), "Acme");
    assert_eq!(std::fs::read_to_string(b).unwrap(), "Acme");
    assert_eq!(std::fs::read_to_string(c).unwrap(), "#{Name}");
    env.cmd(&["substitute-in-files", "--targetPathVariable=Missing", "--filesToTarget=a.conf", "--variables"])
        .arg(&vars)
        .run()
        .code(1)
        .stderr_has("Could not locate target path from variable Missing for SubstituteInFilesCommand");
    env.cmd(&["substitute-in-files", "--path=pkg", "--filesToTarget=a.conf", "--targetFiles=c.conf"])
        .run()
        .code(1)
        .stderr_has("cannot be used with");
}
