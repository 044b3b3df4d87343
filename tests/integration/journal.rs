//! Integration tests: DeploymentJournal.xml, retention (`clean`), transfer-package.

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use calamari::{DeploymentJournal, JournalEntry, JournalPackage};

use crate::util::{Run, TestEnv};

const SET: &str = "Environments-1/Projects-1/Step-A/Machines-1/<default>";

fn tentacle_home(env: &TestEnv) -> PathBuf {
    let home = env.path("tentacle");
    std::fs::create_dir_all(&home).unwrap();
    home
}

fn journal(env: &TestEnv) -> DeploymentJournal {
    DeploymentJournal::at(tentacle_home(env).join("DeploymentJournal.xml"))
}

fn read_journal(env: &TestEnv) -> Vec<JournalEntry> {
    let path = tentacle_home(env).join("DeploymentJournal.xml");
    calamari::internals::parse_journal(&std::fs::read(&path).unwrap()).expect("the journal parses")
}

/// A deployment `days_ago` days old with a real extraction directory holding `files` files.
fn deployment(
    env: &TestEnv,
    id: &str,
    set: &str,
    days_ago: i64,
    ok: bool,
    version: &str,
    files: usize,
) -> JournalEntry {
    let dir = env.path(format!("Applications/Acme.Web/{version}"));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for i in 0..files {
        std::fs::write(dir.join(format!("sub/file{i}.txt")), format!("{id} {i}")).unwrap();
    }
    JournalEntry {
        id: id.to_string(),
        environment_id: "Environments-1".into(),
        project_id: "Projects-1".into(),
        retention_policy_set: set.to_string(),
        installed_on: Some(chrono::Utc::now() - chrono_days(days_ago)),
        extracted_to: Some(dir.to_string_lossy().into_owned()),
        was_successful: ok,
        packages: vec![JournalPackage {
            package_id: "Acme.Web".into(),
            package_version: version.into(),
            deployed_from: None,
        }],
        ..JournalEntry::default()
    }
}

/// `days` days and a minute (so "N days ago" is safely past an N-day cutoff).
fn chrono_days(days: i64) -> Duration {
    Duration::from_secs(u64::try_from(days).unwrap() * 86_400 + 60)
}

fn clean(env: &TestEnv, extra: &[&str]) -> Run {
    let set = format!("--retentionPolicySet={SET}");
    let mut args = vec!["clean", set.as_str()];
    args.extend_from_slice(extra);
    env.cmd(&args).env("TentacleHome", tentacle_home(env)).run()
}

fn ids(entries: &[JournalEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.id.as_str()).collect()
}

fn dir_of(entry: &JournalEntry) -> PathBuf {
    PathBuf::from(entry.extracted_to.as_deref().unwrap())
}

#[test]
fn clean_by_days_deletes_old_directories_and_entries_only() {
    let env = TestEnv::new();
    let j = journal(&env);
    let old = deployment(&env, "old", SET, 10, true, "1.0.0", 3);
    let old_failed = deployment(&env, "old-failed", SET, 9, false, "1.0.1", 3);
    // Old, but its directory is shared with a kept deployment (a redeploy into the same dir).
    let mut old_shared = deployment(&env, "old-shared", SET, 8, true, "1.0.2", 1);
    // Old, with a custom installation directory: the extraction dir goes, the custom dir stays.
    let mut old_custom = deployment(&env, "old-custom", SET, 7, true, "1.0.3", 1);
    let custom = env.path("www/acme");
    std::fs::create_dir_all(&custom).unwrap();
    std::fs::write(custom.join("index.html"), "live").unwrap();
    old_custom.custom_installation_directory = Some(custom.to_string_lossy().into_owned());
    // Old, and its "extraction directory" is the custom installation directory itself.
    let mut old_is_custom = deployment(&env, "old-is-custom", SET, 7, true, "1.0.4", 1);
    old_is_custom.extracted_to = Some(custom.to_string_lossy().into_owned());
    let recent = deployment(&env, "recent", SET, 1, true, "2.0.0", 2);
    let current = deployment(&env, "current", SET, 0, true, "2.0.1", 2);
    old_shared.extracted_to = recent.extracted_to.clone();
    let other_set = deployment(&env, "other-set", "Other/Set", 30, true, "0.9.0", 1);
    for e in [&old, &old_failed, &old_shared, &old_custom, &old_is_custom, &recent, &current, &other_set] {
        j.add(e).unwrap();
    }

    let run = clean(&env, &["--days=3"]);
    run.success().stdout_has("Keeping deployments from the last 3 days");
    run.stdout_has(&format!("Removing directory '{}'", dir_of(&old).display()));
    assert!(!dir_of(&old).exists());
    assert!(!dir_of(&old_failed).exists());
    assert!(!dir_of(&old_custom).exists(), "the custom deployment's extraction dir goes");
    assert!(custom.join("index.html").exists(), "a custom installation directory is never deleted");
    assert!(dir_of(&recent).join("sub/file1.txt").exists(), "a kept deployment's directory survives");
    assert!(dir_of(&current).exists());
    assert!(dir_of(&other_set).exists(), "other retention sets are untouched");
    assert_eq!(ids(&read_journal(&env)), ["recent", "current", "other-set"]);
    // Nothing like a half-deleted directory is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(env.path("Applications/Acme.Web"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".deleting-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A second run finds nothing to do.
    clean(&env, &["--days=3"]).success().stdout_has("Did not find any deployments to clean up");
}

/// A clock far ahead of the deployments (or a long pause) never removes the current
/// release or the one before it.
#[test]
fn clean_by_days_never_deletes_the_current_or_previous_release() {
    let env = TestEnv::new();
    let j = journal(&env);
    let entries = [
        deployment(&env, "oldest", SET, 40, true, "1.0.0", 1),
        deployment(&env, "previous", SET, 30, true, "1.0.1", 1),
        deployment(&env, "failed", SET, 25, false, "1.0.2", 1),
        deployment(&env, "current", SET, 20, true, "1.0.3", 1),
    ];
    for e in &entries {
        j.add(e).unwrap();
    }
    clean(&env, &["--days=5"]).success().stdout_has("it is the current or previous successful release");
    assert_eq!(ids(&read_journal(&env)), ["previous", "current"]);
    assert!(!dir_of(&entries[0]).exists());
    assert!(dir_of(&entries[1]).exists());
    assert!(!dir_of(&entries[2]).exists());
    assert!(dir_of(&entries[3]).exists());
}

#[test]
fn clean_by_releases_keeps_this_and_the_previous_n_successful() {
    let env = TestEnv::new();
    let j = journal(&env);
    let entries = [
        deployment(&env, "r1", SET, 6, true, "1.0.0", 1),
        deployment(&env, "r2", SET, 5, true, "1.0.1", 1),
        deployment(&env, "r3-failed", SET, 4, false, "1.0.2", 1),
        deployment(&env, "r4", SET, 3, true, "1.0.3", 1),
        deployment(&env, "r5", SET, 2, true, "1.0.4", 1),
        deployment(&env, "r6-failed", SET, 1, false, "1.0.5", 1),
    ];
    for e in &entries {
        j.add(e).unwrap();
    }
    clean(&env, &["--releases=2"])
        .success()
        .stdout_has("Keeping this deployment and the previous 2 successful deployments");
    let kept = read_journal(&env);
    assert_eq!(ids(&kept), ["r2", "r4", "r5"]);
    for e in &entries {
        assert_eq!(dir_of(e).exists(), ids(&kept).contains(&e.id.as_str()), "{}", e.id);
    }
}

#[test]
fn clean_by_releases_deletes_nothing_when_few_successful() {
    let env = TestEnv::new();
    let j = journal(&env);
    let entries = [deployment(&env, "a", SET, 3, true, "1.0.0", 1), deployment(&env, "b", SET, 2, false, "1.0.1", 1)];
    for e in &entries {
        j.add(e).unwrap();
    }
    clean(&env, &["--releases=1"]).success().stdout_has("Did not find any deployments to clean up");
    assert_eq!(ids(&read_journal(&env)), ["a", "b"]);
    assert!(entries.iter().all(|e| dir_of(e).exists()));
}

#[test]
fn clean_dry_run_changes_nothing() {
    let env = TestEnv::new();
    let j = journal(&env);
    let old = deployment(&env, "old", SET, 10, true, "1.0.0", 2);
    let previous = deployment(&env, "previous", SET, 0, true, "1.9.0", 2);
    let current = deployment(&env, "current", SET, 0, true, "2.0.0", 2);
    for e in [&old, &previous, &current] {
        j.add(e).unwrap();
    }
    let stale = tentacle_home(&env).join("Files/feeds-1/Acme.Web@S1.0.0@X.nupkg.downloading");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, "partial").unwrap();
    age(&stale, "3 days ago");
    let before = std::fs::read(j.path()).unwrap();

    let run = clean(&env, &["--days=1", "--dryRun"]);
    run.success()
        .stdout_has(&format!("Would remove directory '{}'", dir_of(&old).display()))
        .stdout_has("Would remove the journal entry old")
        .stdout_has("Would remove the stale package download")
        .stdout_has("nothing was changed");
    assert!(!run.stdout.contains("Removing directory"), "{}", run.stdout);
    assert!(dir_of(&old).join("sub/file1.txt").exists());
    assert!(stale.exists());
    assert_eq!(std::fs::read(j.path()).unwrap(), before, "the journal is untouched");
}

/// Sets a file's modification time with `touch -d`.
fn age(path: &Path, when: &str) {
    let status = std::process::Command::new("touch").arg("-d").arg(when).arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn clean_removes_stale_downloads_only() {
    let env = TestEnv::new();
    let files = tentacle_home(&env).join("Files/feeds-1");
    std::fs::create_dir_all(&files).unwrap();
    let stale = files.join("A@S1.0.0@1.zip.downloading");
    let fresh = files.join("B@S1.0.0@2.zip.downloading");
    let old_package = files.join("C@S1.0.0@3.zip");
    for p in [&stale, &fresh, &old_package] {
        std::fs::write(p, "x").unwrap();
    }
    age(&stale, "2 days ago");
    age(&old_package, "30 days ago");
    clean(&env, &["--releases=3"]).success();
    assert!(!stale.exists());
    assert!(fresh.exists(), "a download in progress is kept");
    assert!(old_package.exists(), "package files are not retention's business");
}

#[test]
fn clean_needs_a_policy_and_a_set() {
    let env = TestEnv::new();
    env.cmd(&["clean", "--retentionPolicySet=S"])
        .run()
        .code(1)
        .stderr_has("A value for days to keep or releases to keep must be specified");
    env.cmd(&["clean", "--retentionPolicySet=S", "--days=0", "--releases=0"])
        .run()
        .code(1)
        .stderr_has("A value for days to keep or releases to keep must be specified");
    env.cmd(&["clean", "--days=3"]).run().code(1).stderr_has("No retention policy set was specified");
}

#[test]
fn clean_finishes_an_interrupted_run() {
    let env = TestEnv::new();
    let j = journal(&env);
    let old = deployment(&env, "old", SET, 10, true, "1.0.0", 1);
    let previous = deployment(&env, "previous", SET, 1, true, "1.9.0", 1);
    let current = deployment(&env, "current", SET, 0, true, "2.0.0", 1);
    for e in [&old, &previous, &current] {
        j.add(e).unwrap();
    }
    // What a kill between the rename and the journal update leaves: the entry, no directory,
    // and a half-deleted `.deleting-*` directory.
    let leftover = dir_of(&old).with_file_name(".deleting-1.0.0-0badf00d");
    std::fs::rename(dir_of(&old), &leftover).unwrap();
    clean(&env, &["--releases=2"]).success();
    // Releases=2 with 3 successful keeps all: only the leftover goes.
    assert!(!leftover.exists());
    assert_eq!(ids(&read_journal(&env)), ["old", "previous", "current"]);
    clean(&env, &["--days=5"]).success();
    assert_eq!(ids(&read_journal(&env)), ["previous", "current"]);
}

/// `kill -9` at random moments during `clean` never loses track of a directory: every
/// entry still in the journal has its directory complete or absent, and a final run finishes.
#[test]
fn kill_9_during_clean_is_safe_to_repeat() {
    let env = TestEnv::new();
    let j = journal(&env);
    const FILES: usize = 150;
    let mut old = Vec::new();
    for i in 0..8 {
        let e = deployment(&env, &format!("old{i}"), SET, 20 - i, true, &format!("1.0.{i}"), FILES);
        j.add(&e).unwrap();
        old.push(e);
    }
    let previous = deployment(&env, "previous", SET, 1, true, "1.9.0", 2);
    let current = deployment(&env, "current", SET, 0, true, "2.0.0", 2);
    j.add(&previous).unwrap();
    j.add(&current).unwrap();
    let set = format!("--retentionPolicySet={SET}");
    for round in 0..12u64 {
        let mut cmd = env.cmd(&["clean", set.as_str(), "--days=5"]).env("TentacleHome", tentacle_home(&env)).cmd;
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // The kill lands at a pseudo-random moment of the run: the sleep is the test.
        std::thread::sleep(Duration::from_millis(2 + (round * 7919) % 120));
        let _ = child.kill();
        let status = child.wait().unwrap();
        assert!(status.signal() == Some(libc::SIGKILL) || status.success(), "round {round}: {status:?}");
        let entries = read_journal(&env);
        assert!(ids(&entries).contains(&"current"));
        for e in &entries {
            let dir = dir_of(e);
            if dir.exists() {
                let count = std::fs::read_dir(dir.join("sub")).map(|d| d.count()).unwrap_or(0);
                let expected = if e.id.starts_with("old") { FILES } else { 2 };
                assert_eq!(count, expected, "round {round}: {} is half deleted but still journaled", e.id);
            }
        }
    }
    clean(&env, &["--days=5"]).success();
    assert_eq!(ids(&read_journal(&env)), ["previous", "current"]);
    assert!(old.iter().all(|e| !dir_of(e).exists()));
    let mut names: Vec<String> = std::fs::read_dir(env.path("Applications/Acme.Web"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["1.9.0", "2.0.0"]);
}

/// A package file and the variables of a transfer of it.
fn transfer_setup(env: &TestEnv, name: &str, extra: &[(&str, &str, bool)]) -> (PathBuf, PathBuf) {
    let package = env.write(format!("staging/{name}"), format!("package bytes of {name}"));
    let mut vars: Vec<(&str, &str, bool)> = vec![
        ("Octopus.Tentacle.CurrentDeployment.PackageFilePath", package.to_str().unwrap(), false),
        ("Octopus.Action.Package.PackageId", "Acme.Web", false),
        ("Octopus.Action.Package.PackageVersion", "1.0.0", false),
        ("OctopusRetentionPolicySet", SET, false),
        ("Octopus.Environment.Id", "Environments-1", false),
        ("Octopus.Project.Id", "Projects-1", false),
    ];
    vars.extend_from_slice(extra);
    let file = env.variables(&format!("{name}.vars.json"), &vars);
    (package, file)
}

fn transfer(env: &TestEnv, vars: &Path) -> Run {
    env.cmd(&["transfer-package", "--variables", vars.to_str().unwrap()])
        .env("TentacleHome", tentacle_home(env))
        .env("DROP_ROOT", env.path("drop"))
        .run()
}

#[test]
fn transfer_package_copies_sets_outputs_and_journals() {
    let env = TestEnv::new();
    let (package, vars) = transfer_setup(
        &env,
        "Acme.Web.1.0.0.zip",
        &[("Octopus.Action.Package.TransferPath", "$DROP_ROOT/incoming/#{Octopus.Environment.Id}", false)],
    );
    let run = transfer(&env, &vars);
    run.success();
    // Templates in TransferPath evaluate once templating lands; until then the raw text is used.
    let dir = PathBuf::from(run.output_variable("Package.DirectoryPath").expect("Package.DirectoryPath"));
    assert!(dir.starts_with(env.path("drop/incoming")), "{}", dir.display());
    let copied = dir.join("Acme.Web.1.0.0.zip");
    assert_eq!(run.output_variable("Package.FileName").as_deref(), Some("Acme.Web.1.0.0.zip"));
    assert_eq!(run.output_variable("Package.FilePath"), Some(copied.to_string_lossy().into_owned()));
    run.stdout_has("Copied package 'Acme.Web.1.0.0.zip' to directory");
    assert_eq!(std::fs::read(&copied).unwrap(), std::fs::read(&package).unwrap());
    assert!(package.exists(), "the original stays");
    let entries = read_journal(&env);
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert!(e.was_successful);
    assert_eq!(e.retention_policy_set, SET);
    assert_eq!(e.environment_id, "Environments-1");
    assert_eq!(e.extracted_to, None);
    assert_eq!(e.packages[0].package_id, "Acme.Web");
    assert_eq!(e.packages[0].deployed_from, Some(package.to_string_lossy().into_owned()));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(tentacle_home(&env).join("DeploymentJournal.xml")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "a new journal is readable as the reference's is");
}

#[test]
fn transfer_package_renames_and_overwrites() {
    let env = TestEnv::new();
    let target = env.write("drop/Renamed.zip", "old contents");
    let (package, vars) = transfer_setup(
        &env,
        "Acme.Web@S1.0.0@ABCDEF.zip",
        &[
            ("Octopus.Action.Package.TransferPath", env.path("drop").to_str().unwrap(), false),
            ("Octopus.Action.Package.OriginalFileName", "Renamed.zip", false),
        ],
    );
    let run = transfer(&env, &vars);
    run.success().stdout_has("already exists so it will be attempted to be overwritten");
    assert_eq!(std::fs::read(&target).unwrap(), std::fs::read(&package).unwrap());
    assert_eq!(run.output_variable("Package.FileName").as_deref(), Some("Renamed.zip"));
    let names: Vec<_> = std::fs::read_dir(env.path("drop")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "no temp file left: {names:?}");
}

#[test]
fn transfer_package_errors_name_the_cause() {
    let env = TestEnv::new();
    let vars = env.variables("none.json", &[("Octopus.Action.Package.TransferPath", "/tmp/x", false)]);
    transfer(&env, &vars).code(1).stderr_has(
        "No package file was specified. Please provide `Octopus.Tentacle.CurrentDeployment.PackageFilePath` variable",
    );
    let missing = env.path("nowhere/p.zip");
    let vars = env.variables(
        "missing.json",
        &[("Octopus.Tentacle.CurrentDeployment.PackageFilePath", missing.to_str().unwrap(), false)],
    );
    transfer(&env, &vars).code(1).stderr_has(&format!("Could not find package file: {}", missing.display()));
    let (_, vars) = transfer_setup(&env, "p.zip", &[("Octopus.Action.Package.OriginalFileName", "../evil.zip", false)]);
    let vars2 = env.variables(
        "p2.json",
        &[
            ("Octopus.Tentacle.CurrentDeployment.PackageFilePath", env.path("staging/p.zip").to_str().unwrap(), false),
            ("Octopus.Action.Package.TransferPath", env.path("drop").to_str().unwrap(), false),
            ("Octopus.Action.Package.OriginalFileName", "../evil.zip", false),
            ("Octopus.Action.Package.PackageId", "P", false),
        ],
    );
    let _ = vars;
    transfer(&env, &vars2).code(1).stderr_has("is not a plain file name");
    assert!(!env.path("evil.zip").exists());
    // The failure is journaled.
    let entries = read_journal(&env);
    assert_eq!(entries.len(), 1);
    assert!(!entries[0].was_successful);
}

#[test]
fn transfer_package_skips_when_already_installed() {
    let env = TestEnv::new();
    let (_, vars) = transfer_setup(
        &env,
        "Acme.Web.1.0.0.zip",
        &[
            ("Octopus.Action.Package.TransferPath", env.path("drop").to_str().unwrap(), false),
            ("Octopus.Action.Package.SkipIfAlreadyInstalled", "True", false),
        ],
    );
    transfer(&env, &vars).success();
    std::fs::remove_file(env.path("drop/Acme.Web.1.0.0.zip")).unwrap();
    let run = transfer(&env, &vars);
    run.success()
        .stdout_has("The package has already been installed on this machine, so installation will be skipped.");
    assert!(!env.path("drop/Acme.Web.1.0.0.zip").exists(), "nothing copied");
    assert_eq!(read_journal(&env).len(), 1, "a skipped transfer is not journaled");
}

#[test]
fn transfer_package_recovers_from_a_corrupt_journal() {
    let env = TestEnv::new();
    let path = tentacle_home(&env).join("DeploymentJournal.xml");
    std::fs::write(&path, "<Deployments><Deployment Id=\"torn").unwrap();
    let (_, vars) = transfer_setup(
        &env,
        "Acme.Web.1.0.0.zip",
        &[("Octopus.Action.Package.TransferPath", env.path("drop").to_str().unwrap(), false)],
    );
    let run = transfer(&env, &vars);
    run.success().stdout_has("is unreadable").stdout_has("DeploymentJournal.xml.corrupt-");
    assert_eq!(read_journal(&env).len(), 1);
    let aside: Vec<_> = std::fs::read_dir(tentacle_home(&env))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read_to_string(&aside[0]).unwrap(), "<Deployments><Deployment Id=\"torn");
}

/// Eight transfer-package processes at once each add an entry; none is lost.
#[test]
fn eight_concurrent_writers_lose_no_entry() {
    let env = TestEnv::new();
    let mut vars = Vec::new();
    for i in 0..8 {
        let (_, v) = transfer_setup(
            &env,
            &format!("Acme.Web.1.0.{i}.zip"),
            &[("Octopus.Action.Package.TransferPath", env.path(format!("drop/{i}")).to_str().unwrap(), false)],
        );
        vars.push(v);
    }
    for round in 1..=4 {
        let children: Vec<_> = vars
            .iter()
            .map(|v| {
                let mut cmd = env
                    .cmd(&["transfer-package", "--variables", v.to_str().unwrap()])
                    .env("TentacleHome", tentacle_home(&env))
                    .cmd;
                cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let entries = read_journal(&env);
        assert_eq!(entries.len(), 8 * round, "round {round}");
        let mut unique: Vec<&str> = ids(&entries);
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 8 * round, "ids are unique");
    }
}

/// `kill -9` at random moments while writers update a large journal never leaves a journal
/// that is torn without an undo record to repair it, and never loses an entry that was
/// there before (checked after the repair the next opener makes).
#[test]
fn kill_9_during_journal_writes_never_tears_the_journal() {
    let env = TestEnv::new();
    let j = journal(&env);
    // A big journal makes each write take long enough to be hit mid-way.
    seed(&env, &j, 3000);
    let (_, vars) = transfer_setup(
        &env,
        "Acme.Web.1.0.0.zip",
        &[("Octopus.Action.Package.TransferPath", env.path("drop").to_str().unwrap(), false)],
    );
    let mut last = read_journal(&env).len();
    for round in 0..25u64 {
        let mut cmd = env
            .cmd(&["transfer-package", "--variables", vars.to_str().unwrap()])
            .env("TentacleHome", tentacle_home(&env))
            .cmd;
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // The kill lands at a pseudo-random moment of the write: the sleep is the test.
        std::thread::sleep(Duration::from_micros(500 + (round * 7919 * 13) % 80_000));
        let _ = child.kill();
        let status = child.wait().unwrap();
        assert!(status.signal() == Some(libc::SIGKILL) || status.success(), "round {round}: {status:?}");
        let count = journal_after_crash(&env, &format!("round {round}")).len();
        assert!(count == last || count == last + 1, "round {round}: {last} -> {count}");
        last = count;
    }
    // Temp files of killed writers are swept by the next successful write.
    transfer(&env, &vars).success();
    let stray: Vec<_> = std::fs::read_dir(tentacle_home(&env))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// A cheap proxy for power loss: under strace, a new journal is written to a temp file,
/// which is fsync'd, renamed over the journal, and then the directory is fsync'd, in that order.
#[test]
fn journal_write_order_is_write_fsync_rename_fsync_dir() {
    let env = TestEnv::new();
    let (_, vars) = transfer_setup(
        &env,
        "Acme.Web.1.0.0.zip",
        &[("Octopus.Action.Package.TransferPath", env.path("drop").to_str().unwrap(), false)],
    );
    let trace = env.path("strace.txt");
    let cmd = env.cmd(&["transfer-package", "--variables", vars.to_str().unwrap()]).cmd;
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = cmd.get_envs().map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned()))).collect();
    let mut strace = std::process::Command::new("strace");
    strace
        .args(["-f", "-e", "trace=openat,write,fsync,fdatasync,rename,renameat,renameat2", "-o"])
        .arg(&trace)
        .arg(program)
        .args(args)
        .current_dir(env.root())
        .env("TentacleHome", tentacle_home(&env));
    for (k, v) in envs {
        match v {
            Some(v) => strace.env(k, v),
            None => strace.env_remove(k),
        };
    }
    let out = match strace.output() {
        Ok(out) => out,
        Err(e) => {
            crate::util::skip(&format!("strace is not available: {e}"));
            return;
        }
    };
    if !out.status.success() || !trace.exists() {
        crate::util::skip(&format!("strace could not trace here: {}", String::from_utf8_lossy(&out.stderr).trim()));
        return;
    }
    let text = std::fs::read_to_string(&trace).unwrap();
    let home = tentacle_home(&env).to_string_lossy().into_owned();
    let journal = format!("{home}/DeploymentJournal.xml");
    let fd_of = |line: &str| line.rsplit("= ").next().and_then(|n| n.trim().parse::<i32>().ok());
    let lines: Vec<&str> = text.lines().collect();
    let open_tmp = lines
        .iter()
        .position(|l| {
            l.contains("openat(") && l.contains(&format!("{home}/.DeploymentJournal.xml.")) && l.contains("O_CREAT")
        })
        .expect("the journal is written through a temp file");
    let tmp_fd = fd_of(lines[open_tmp]).unwrap();
    let after = |from: usize, pred: &dyn Fn(&str) -> bool, what: &str| -> usize {
        from + 1
            + lines[from + 1..]
                .iter()
                .position(|l| pred(l))
                .unwrap_or_else(|| panic!("no {what} after line {from}:\n{text}"))
    };
    let write = after(open_tmp, &|l| l.contains(&format!("write({tmp_fd},")), "write to the temp file");
    let fsync = after(
        write,
        &|l| l.contains(&format!("fsync({tmp_fd})")) || l.contains(&format!("fdatasync({tmp_fd})")),
        "fsync of the temp file",
    );
    let rename =
        after(fsync, &|l| l.contains("rename") && l.contains(&format!("\"{journal}\"")), "rename over the journal");
    let open_dir =
        after(rename, &|l| l.contains("openat(") && l.contains(&format!("\"{home}\"")), "open of the directory");
    let dir_fd = fd_of(lines[open_dir]).unwrap();
    after(open_dir, &|l| l.contains(&format!("fsync({dir_fd})")), "fsync of the directory");
}

/// Runs `args` under `strace -f` for the given syscalls; the trace's lines, or `None`
/// (after a skip) when strace cannot run here.
fn strace(env: &TestEnv, args: &[&str], syscalls: &str) -> Option<String> {
    let trace = env.path("strace.txt");
    let _ = std::fs::remove_file(&trace);
    let cmd = env.cmd(args).cmd;
    let mut strace = std::process::Command::new("strace");
    strace
        .args(["-f", "-e", &format!("trace={syscalls}"), "-o"])
        .arg(&trace)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .current_dir(env.root())
        .env("TentacleHome", tentacle_home(env));
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => strace.env(k, v),
            None => strace.env_remove(k),
        };
    }
    let out = match strace.output() {
        Ok(out) => out,
        Err(e) => {
            crate::util::skip(&format!("strace is not available: {e}"));
            return None;
        }
    };
    if !out.status.success() || !trace.exists() {
        crate::util::skip(&format!("strace could not trace here: {}", String::from_utf8_lossy(&out.stderr).trim()));
        return None;
    }
    Some(std::fs::read_to_string(&trace).unwrap())
}

/// The power-loss proxy for a change made in place: under strace, the undo record is
/// written and fsync'd before the journal is written to, the journal is fsync'd after its
/// write, and only then is the undo record voided (truncated), in that order.
#[test]
fn an_append_writes_and_syncs_its_undo_record_before_the_journal() {
    let env = TestEnv::new();
    let j = journal(&env);
    seed(&env, &j, 10);
    let (_, vars) = transfer_setup(
        &env,
        "Acme.Web.1.0.0.zip",
        &[("Octopus.Action.Package.TransferPath", env.path("drop").to_str().unwrap(), false)],
    );
    let syscalls = "openat,write,pwrite64,fsync,fdatasync,ftruncate,rename,renameat,renameat2";
    let Some(text) = strace(&env, &["transfer-package", "--variables", vars.to_str().unwrap()], syscalls) else {
        return;
    };
    let home = tentacle_home(&env).to_string_lossy().into_owned();
    let journal = format!("\"{home}/DeploymentJournal.xml\"");
    let undo = format!("\"{home}/DeploymentJournal.xml.undo\"");
    let fd_of = |line: &str| line.rsplit("= ").next().and_then(|n| n.trim().parse::<i32>().ok());
    let lines: Vec<&str> = text.lines().collect();
    let find = |from: usize, pred: &dyn Fn(&str) -> bool, what: &str| -> usize {
        from + lines[from..]
            .iter()
            .position(|l| pred(l))
            .unwrap_or_else(|| panic!("no {what} after line {from}:\n{text}"))
    };
    let open_journal =
        find(0, &|l| l.contains("openat(") && l.contains(&journal) && l.contains("O_RDWR"), "open of the journal");
    let journal_fd = fd_of(lines[open_journal]).unwrap();
    let open_undo = find(
        open_journal,
        &|l| l.contains("openat(") && l.contains(&undo) && l.contains("O_TRUNC"),
        "open of the undo record",
    );
    let undo_fd = fd_of(lines[open_undo]).unwrap();
    let write_undo = find(open_undo, &|l| l.contains(&format!("write({undo_fd},")), "write of the undo record");
    let sync_undo = find(
        write_undo,
        &|l| l.contains(&format!("fdatasync({undo_fd})")) || l.contains(&format!("fsync({undo_fd})")),
        "fsync of the undo record",
    );
    let write_journal = find(sync_undo, &|l| l.contains(&format!("pwrite64({journal_fd},")), "write to the journal");
    assert!(
        !lines[..sync_undo].iter().any(|l| l.contains(&format!("pwrite64({journal_fd},"))),
        "the journal was written before its undo record was durable:\n{text}"
    );
    let sync_journal = find(
        write_journal,
        &|l| l.contains(&format!("fdatasync({journal_fd})")) || l.contains(&format!("fsync({journal_fd})")),
        "fsync of the journal",
    );
    let open_void = find(sync_journal, &|l| l.contains("openat(") && l.contains(&undo), "reopen of the undo record");
    let void_fd = fd_of(lines[open_void]).unwrap();
    find(open_void, &|l| l.contains(&format!("ftruncate({void_fd}, 0)")), "truncation of the undo record");
    // No whole-file rewrite: nothing is renamed over the journal.
    assert!(!text.lines().any(|l| l.contains("rename") && l.contains(&journal)), "{text}");
    assert_eq!(read_journal(&env).len(), 11);
}

/// A lock holder killed with -9 leaves no stale lock; a live holder is waited for.
#[test]
fn journal_lock_is_waited_for_and_dies_with_its_holder() {
    let env = TestEnv::new();
    let (_, vars) = transfer_setup(
        &env,
        "Acme.Web.1.0.0.zip",
        &[("Octopus.Action.Package.TransferPath", env.path("drop").to_str().unwrap(), false)],
    );
    let lock = tentacle_home(&env).join("DeploymentJournal.xml.lock");
    let hold = |seconds: &str| {
        let child =
            std::process::Command::new("flock").args(["-x", "--no-fork"]).arg(&lock).args(["sleep", seconds]).spawn();
        // Return once flock really holds the lock.
        if child.is_ok() {
            crate::util::wait_until(crate::util::PROMPTLY, "flock(1) to hold the journal lock", || {
                std::fs::File::open(&lock).is_ok_and(|file| {
                    use std::os::fd::AsRawFd as _;
                    // SAFETY: flock on a descriptor we own; closing it drops any lock we got.
                    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
                })
            });
        }
        child
    };
    // Killed holder: the next run does not wait.
    let Ok(mut holder) = hold("60") else {
        crate::util::skip("flock(1) is not available");
        return;
    };
    holder.kill().unwrap();
    holder.wait().unwrap();
    let run = transfer(&env, &vars);
    run.success();
    assert!(!run.stdout.contains("Waiting for the deployment journal lock"), "{}", run.stdout);
    // Live holder for three seconds: the run waits, says so, and then writes its entry.
    let mut holder = hold("3").unwrap();
    let run = transfer(&env, &vars);
    run.success().stdout_has("Waiting for the deployment journal lock");
    holder.wait().unwrap();
    assert_eq!(read_journal(&env).len(), 2);
}

/// A proxy for a full disk: when the journal cannot be written (here RLIMIT_FSIZE makes
/// the write past its end fail), the run fails naming the file, the old journal is untouched
/// byte for byte, no temp file is left behind, and the next run adds its entry as usual.
#[test]
fn a_failed_journal_write_leaves_the_old_journal() {
    let env = TestEnv::new();
    let j = journal(&env);
    seed(&env, &j, 1000);
    let before = std::fs::read(j.path()).unwrap();
    assert!(before.len() > 200 * 1024);
    let (_, vars) = transfer_setup(
        &env,
        "Acme.Web.1.0.0.zip",
        &[("Octopus.Action.Package.TransferPath", env.path("drop").to_str().unwrap(), false)],
    );
    // bash: `ulimit -f` counts 1024-byte blocks; SIGXFSZ ignored so write(2) returns EFBIG.
    let script = format!(
        "trap '' XFSZ; ulimit -f 200; exec '{}' transfer-package --variables '{}'",
        crate::util::bin().display(),
        vars.display()
    );
    let cmd = env.cmd(&[]).env("TentacleHome", tentacle_home(&env)).cmd;
    let mut bash = std::process::Command::new("bash");
    bash.arg("-c").arg(&script).current_dir(env.root());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => bash.env(k, v),
            None => bash.env_remove(k),
        };
    }
    let out = bash.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(100), "{stderr}");
    assert!(stderr.contains("/DeploymentJournal.xml'") && stderr.contains("File too large"), "{stderr}");
    assert_eq!(std::fs::read(j.path()).unwrap(), before, "the old journal is untouched");
    let stray: Vec<_> = std::fs::read_dir(tentacle_home(&env))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    // Nothing was half done, so there is nothing to undo: the next run just adds its entry.
    let run = transfer(&env, &vars);
    run.success();
    assert!(!run.stdout.contains("has been undone"), "{}", run.stdout);
    assert_eq!(read_journal(&env).len(), 1001);
}

/// Fills the journal with `count` copies of one successful deployment (ids `seed-<i>`).
fn seed(env: &TestEnv, j: &DeploymentJournal, count: usize) {
    let template = deployment(env, "seed", SET, 5, true, "0.0.1", 0);
    j.update(|entries| {
        for i in 0..count {
            let mut e = template.clone();
            e.id = format!("seed-{i}");
            entries.push(e);
        }
    })
    .unwrap();
}

/// A tar.gz package `Acme.Web.<version>.tar.gz` holding one file.
fn web_package(env: &TestEnv, version: &str) -> PathBuf {
    crate::util::tar_gz(env, format!("Acme.Web.{version}.tar.gz"), &[("index.html", b"hi", 0o644)])
}

/// Runs deploy-package for `package` with the retention set and `extra` variables.
fn deploy(env: &TestEnv, package: &Path, extra: &[(&str, &str, bool)]) -> Run {
    let apps = env.path("Applications");
    let mut vars = vec![
        ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.to_str().unwrap(), false),
        ("OctopusRetentionPolicySet", SET, false),
        ("Octopus.Environment.Name", "Production", false),
    ];
    vars.extend_from_slice(extra);
    let file = env.variables("vars.json", &vars);
    env.cmd(&[
        "deploy-package",
        &format!("--package={}", package.display()),
        &format!("--variables={}", file.display()),
    ])
    .env("TentacleHome", tentacle_home(env))
    .run()
}

#[test]
fn clean_deletes_the_directories_of_deployments_made_by_deploy_package() {
    // deploy-package records CustomInstallationDirectory = ExtractedTo when none is
    // configured; that must not make every directory "custom" and undeletable.
    let env = TestEnv::new();
    let package = web_package(&env, "1.0.0");
    for _ in 0..8 {
        deploy(&env, &package, &[]).success();
    }
    let entries = read_journal(&env);
    assert_eq!(entries.len(), 8);
    assert!(entries.iter().all(|e| e.custom_installation_directory == e.extracted_to), "{entries:#?}");
    let dirs: Vec<PathBuf> = entries.iter().map(dir_of).collect();
    assert!(dirs.iter().all(|d| d.is_dir()));

    clean(&env, &["--releases=1"]).success();
    let kept = read_journal(&env);
    assert_eq!(kept.len(), 2, "this deployment and the previous successful one");
    for (entry, dir) in entries.iter().zip(&dirs) {
        let stays = kept.iter().any(|k| k.id == entry.id);
        assert_eq!(dir.exists(), stays, "{}", dir.display());
    }
    let parent = dirs[0].parent().unwrap();
    assert_eq!(std::fs::read_dir(parent).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count(), 2);
}

#[test]
fn clean_keeps_a_configured_custom_installation_directory() {
    let env = TestEnv::new();
    let package = web_package(&env, "1.0.0");
    let site = env.path("www/site");
    for _ in 0..3 {
        deploy(
            &env,
            &package,
            &[("Octopus.Action.Package.CustomInstallationDirectory", site.to_str().unwrap(), false)],
        )
        .success();
    }
    clean(&env, &["--releases=1"]).success();
    assert_eq!(read_journal(&env).len(), 2);
    assert!(site.join("index.html").is_file(), "the custom directory is never deleted");
}

#[test]
fn skip_if_already_installed_uses_the_indexed_primary_package_variables() {
    // The agent names the primary package as Octopus.Action.Package[].PackageId/PackageVersion.
    let env = TestEnv::new();
    let package = web_package(&env, "2.0.0");
    let vars = [
        ("Octopus.Action.Package[].PackageId", "Acme.Web", false),
        ("Octopus.Action.Package[].PackageVersion", "2.0.0", false),
        ("Octopus.Action.Package[].OriginalPath", "/feeds/Acme.Web.2.0.0.tar.gz", false),
        ("Octopus.Action.Package.SkipIfAlreadyInstalled", "True", false),
    ];
    deploy(&env, &package, &vars).success();
    let second = deploy(&env, &package, &vars);
    second
        .success()
        .stdout_has("The package has already been installed on this machine, so installation will be skipped.");
    let entries = read_journal(&env);
    assert_eq!(entries.len(), 1, "the skipped deployment writes no entry");
    assert_eq!(entries[0].packages[0].package_id, "Acme.Web");
    assert_eq!(entries[0].packages[0].package_version, "2.0.0");
    assert_eq!(entries[0].packages[0].deployed_from.as_deref(), Some("/feeds/Acme.Web.2.0.0.tar.gz"));
    assert!(!env.path("Applications/Production/Acme.Web/2.0.0_1").exists());
}

#[test]
fn adding_a_journal_entry_is_logged_verbosely_with_its_xml() {
    let env = TestEnv::new();
    let package = web_package(&env, "3.0.0");
    let run = deploy(&env, &package, &[]);
    run.success()
        .stdout_has("Adding journal entry:\n<Deployment Id=\"")
        .stdout_has("<Package PackageId=\"Acme.Web\" PackageVersion=\"3.0.0\"");
    let before = &run.stdout[..run.stdout.find("Adding journal entry").unwrap()];
    let level = &before[before.rfind("##octopus[stdout-").unwrap()..];
    assert!(level.starts_with("##octopus[stdout-verbose]"), "logged at {level}");
}

/// A package with `files` files and a substitution target, so a kill can land during the
/// extraction, the scripts or the substitution.
fn busy_package(env: &TestEnv, files: usize) -> PathBuf {
    let bodies: Vec<(String, String)> =
        (0..files).map(|i| (format!("files/f{i}.txt"), format!("file {i} #{{Name}}"))).collect();
    let mut entries: Vec<(&str, &[u8], u32)> =
        bodies.iter().map(|(name, body)| (name.as_str(), body.as_bytes(), 0o644)).collect();
    entries.push(("PreDeploy.sh", b"echo pre\n", 0o644));
    // A Deploy script that takes a while: the kill often lands after the directory is in
    // place and before the deployment ends, where an orphan used to be left.
    entries.push(("Deploy.sh", b"echo deploy\nsleep 0.2\n", 0o644));
    crate::util::tar_gz(env, "Acme.Busy.1.0.0.tar.gz", &entries)
}

#[test]
fn kill_9_at_random_moments_of_deploy_package_leaves_no_directory_retention_cannot_find() {
    let env = TestEnv::new();
    let package = busy_package(&env, 400);
    let apps = env.path("Applications");
    let vars = env.variables(
        "vars.json",
        &[
            ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.to_str().unwrap(), false),
            ("OctopusRetentionPolicySet", SET, false),
            ("Octopus.Environment.Name", "Production", false),
            ("Name", "World", false),
            ("Octopus.Action.EnabledFeatures", "Octopus.Features.SubstituteInFiles", false),
            ("Octopus.Action.SubstituteInFiles.TargetFiles", "files/*.txt", false),
        ],
    );
    const TRIALS: u64 = 30;
    let mut killed = 0;
    for trial in 0..TRIALS {
        let mut cmd = env
            .cmd(&[
                "deploy-package",
                &format!("--package={}", package.display()),
                &format!("--variables={}", vars.display()),
            ])
            .env("TentacleHome", tentacle_home(&env))
            .cmd;
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // The kill lands at a pseudo-random moment of the run: the sleep is the test.
        std::thread::sleep(Duration::from_micros(500 + (trial * 7919 * 13) % 400_000));
        let _ = child.kill();
        let status = child.wait().unwrap();
        assert!(status.signal() == Some(libc::SIGKILL) || status.success(), "trial {trial}: {status:?}");
        killed += u32::from(status.signal() == Some(libc::SIGKILL));
    }
    assert!(killed > 0, "no trial was killed: the package deploys too fast for the test");
    // One deployment that completes, then one clean.
    deploy_busy(&env, &package, &vars).success();
    clean(&env, &["--releases=1"]).success();

    let journaled: Vec<PathBuf> =
        read_journal(&env).iter().filter_map(|e| e.extracted_to.clone()).map(PathBuf::from).collect();
    let parent = apps.join("Production/Acme.Busy");
    for entry in std::fs::read_dir(&parent).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            assert!(!name.contains("partial"), "a dead extraction's partial directory is left: {name}");
            continue;
        }
        assert!(
            journaled.contains(&path),
            "{} is unknown to the journal (killed {killed} of {TRIALS})",
            path.display()
        );
    }
}

fn deploy_busy(env: &TestEnv, package: &Path, vars: &Path) -> Run {
    env.cmd(&[
        "deploy-package",
        &format!("--package={}", package.display()),
        &format!("--variables={}", vars.display()),
    ])
    .env("TentacleHome", tentacle_home(env))
    .run()
}

// ---------------------------------------------------------------------------------------
// Crash safety of changes made in place (issue 20): kill -9 at every checkpoint of a
// change, and at random points of random changes.

/// The journal as a crash left it, then as the next opener repairs it. Checks that the raw
/// file either parses or has an undo record in force to repair it, that after repair it
/// parses on its own (as the reference would read it) and holds each id once. Returns the
/// repaired entries.
#[track_caller]
fn journal_after_crash(env: &TestEnv, context: &str) -> Vec<JournalEntry> {
    let path = tentacle_home(env).join("DeploymentJournal.xml");
    let undo = tentacle_home(env).join("DeploymentJournal.xml.undo");
    let raw = std::fs::read(&path).unwrap_or_default();
    let undo_in_force = std::fs::metadata(&undo).is_ok_and(|m| m.len() > 0);
    assert!(
        raw.is_empty() || calamari::internals::parse_journal(&raw).is_ok() || undo_in_force,
        "{context}: a torn journal without an undo record in force"
    );
    let entries = journal(env).entries().unwrap_or_else(|e| panic!("{context}: {e}"));
    let repaired = read_journal(env);
    assert_eq!(repaired, entries, "{context}: the file and the library agree");
    let mut unique = ids(&entries);
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), entries.len(), "{context}: an id appears twice");
    entries
}

/// A command killed by `CALAMARI_FAULT_AT=<checkpoint>`; asserts it died there.
fn killed_at(env: &TestEnv, args: &[&str], checkpoint: &str) {
    let out = env
        .cmd(args)
        .env("TentacleHome", tentacle_home(env))
        .env("CALAMARI_FAULT_AT", checkpoint)
        .cmd
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "{args:?} did not reach {checkpoint}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

const CHANGE_CHECKPOINTS: [&str; 5] =
    ["journal-undo-written", "journal-edit-written", "journal-synced", "journal-indexed", "journal-committed"];

/// A kill at each checkpoint of the two changes of a deployment (the in-progress entry, its
/// completion) and of a transfer's one: the journal always reads back, and holds the entry
/// exactly when its change had reached the disk whole; nothing already there is lost.
#[test]
fn kill_9_at_every_checkpoint_of_a_journal_change_loses_nothing_committed() {
    let package = |env: &TestEnv| web_package(env, "1.0.0");
    for checkpoint in CHANGE_CHECKPOINTS {
        // The whole change is on disk from the first edit on (one edit per change here).
        let applied = checkpoint != "journal-undo-written";
        for (nth, what) in [(1, "in-progress entry"), (2, "completion")] {
            let env = TestEnv::new();
            let j = journal(&env);
            seed(&env, &j, 1000);
            let package = package(&env);
            let apps = env.path("Applications");
            let vars = env.variables(
                "vars.json",
                &[
                    ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.to_str().unwrap(), false),
                    ("OctopusRetentionPolicySet", SET, false),
                    ("Octopus.Environment.Name", "Production", false),
                ],
            );
            let args = [
                "deploy-package".to_string(),
                format!("--package={}", package.display()),
                format!("--variables={}", vars.display()),
            ];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            killed_at(&env, &args, &format!("{checkpoint}#{nth}"));
            let context = format!("deploy-package killed at {checkpoint} of its {what}");
            let entries = journal_after_crash(&env, &context);
            assert_eq!(entries.iter().filter(|e| e.id.starts_with("seed-")).count(), 1000, "{context}");
            let ours: Vec<&JournalEntry> = entries.iter().filter(|e| !e.id.starts_with("seed-")).collect();
            let expected = match (nth, applied) {
                (1, false) => None,
                (1, true) | (2, false) => Some(false),
                _ => Some(true),
            };
            assert_eq!(ours.len(), usize::from(expected.is_some()), "{context}: {ours:#?}");
            if let Some(successful) = expected {
                assert_eq!(ours[0].was_successful, successful, "{context}");
            }
            // The next deployment goes through as usual.
            deploy(&env, &package, &[]).success();
            assert_eq!(journal_after_crash(&env, &context).len(), 1001 + usize::from(expected.is_some()), "{context}");
        }
        let env = TestEnv::new();
        seed(&env, &journal(&env), 1000);
        let (_, vars) = transfer_setup(
            &env,
            "Acme.Web.1.0.0.zip",
            &[("Octopus.Action.Package.TransferPath", env.path("drop").to_str().unwrap(), false)],
        );
        killed_at(&env, &["transfer-package", "--variables", vars.to_str().unwrap()], checkpoint);
        let context = format!("transfer-package killed at {checkpoint}");
        assert_eq!(journal_after_crash(&env, &context).len(), 1000 + usize::from(applied), "{context}");
    }
}

/// A kill at each checkpoint of `clean` (entries blanked in place, or, in a small journal,
/// the whole file rewritten without them): the removal happens whole or not at all.
#[test]
fn kill_9_during_the_removal_of_entries_removes_all_or_none() {
    // (checkpoint, whether the removal is on disk whole by then): four entries go, one
    // edit each; killed between two edits, the change is undone.
    let in_place: &[(&str, bool)] = &[
        ("journal-undo-written", false),
        ("journal-edit-written", false),
        ("journal-edit-written#3", false),
        ("journal-edit-written#4", true),
        ("journal-synced", true),
        ("journal-indexed", true),
        ("journal-committed", true),
    ];
    // In a small journal the removal rewrites it whole instead (temp file, rename).
    let compacted: &[(&str, bool)] = &[("journal-compaction-written", false), ("journal-compacted", true)];
    for (seeded, checkpoints) in [(1000, in_place), (0, compacted)] {
        for &(checkpoint, removed) in checkpoints {
            let env = TestEnv::new();
            let j = journal(&env);
            seed(&env, &j, seeded);
            for i in 0..6 {
                j.add(&deployment(&env, &format!("old{i}"), "Old/Set", 30 - i, true, &format!("0.{i}"), 0)).unwrap();
            }
            let set = "--retentionPolicySet=Old/Set";
            killed_at(&env, &["clean", set, "--releases=1"], checkpoint);
            let context = format!("clean killed at {checkpoint} ({seeded} other entries)");
            let entries = journal_after_crash(&env, &context);
            let old: Vec<&str> = ids(&entries).into_iter().filter(|id| id.starts_with("old")).collect();
            let expected: &[&str] =
                if removed { &["old4", "old5"] } else { &["old0", "old1", "old2", "old3", "old4", "old5"] };
            assert_eq!(old, expected, "{context}");
            assert_eq!(entries.len() - old.len(), seeded, "{context}");
        }
    }
}

/// A small deterministic generator, so a failing round can be replayed (the seed is in
/// every message; `CALAMARI_KILL_SEED` picks another).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// kill -9 at random points of random journal changes (deployments, transfers, removals),
/// at checkpoints and at random moments: after each, the journal reads back whole, every
/// entry whose command reported success is there (a deployment's as successful), and each
/// removal happened whole or not at all.
#[test]
fn kill_9_at_random_points_of_journal_changes_never_loses_a_committed_entry() {
    let seed_value: u64 =
        std::env::var("CALAMARI_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1a7e_2026);
    let mut rng = Rng(seed_value);
    let env = TestEnv::new();
    let j = journal(&env);
    seed(&env, &j, 800);
    let package = web_package(&env, "1.0.0");
    let apps = env.path("Applications");
    let deploy_vars = env.variables(
        "vars.json",
        &[
            ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.to_str().unwrap(), false),
            ("OctopusRetentionPolicySet", SET, false),
            ("Octopus.Environment.Name", "Production", false),
        ],
    );
    // Entries whose command succeeded: a deployment's directory, a transfer's package.
    let mut deployed: Vec<PathBuf> = Vec::new();
    let mut transferred: Vec<String> = Vec::new();
    let mut killed = 0;
    const ROUNDS: u64 = 36;
    for round in 0..ROUNDS {
        let context = format!("round {round} (CALAMARI_KILL_SEED={seed_value})");
        let before = journal_after_crash(&env, &context);
        let old_before: Vec<String> =
            before.iter().filter(|e| e.retention_policy_set == "Old/Set").map(|e| e.id.clone()).collect();
        let (args, op): (Vec<String>, &str) = match rng.below(3) {
            0 => (
                vec![
                    "deploy-package".into(),
                    format!("--package={}", package.display()),
                    format!("--variables={}", deploy_vars.display()),
                ],
                "deploy",
            ),
            1 => {
                let (_, vars) = transfer_setup(
                    &env,
                    &format!("Acme.Web.1.0.{round}.zip"),
                    &[("Octopus.Action.Package.TransferPath", env.path("drop").to_str().unwrap(), false)],
                );
                (vec!["transfer-package".into(), "--variables".into(), vars.display().to_string()], "transfer")
            }
            _ => {
                for i in 0..4 {
                    let id = format!("old-{round}-{i}");
                    // Each round's entries are newer than the last round's, the last the newest.
                    let days_ago = 200 - 4 * i64::try_from(round).unwrap() - i;
                    j.add(&deployment(&env, &id, "Old/Set", days_ago, true, "0.0.1", 0)).unwrap();
                }
                (vec!["clean".into(), "--retentionPolicySet=Old/Set".into(), "--releases=1".into()], "clean")
            }
        };
        let old_before: Vec<String> = if op == "clean" {
            read_journal(&env).iter().filter(|e| e.retention_policy_set == "Old/Set").map(|e| e.id.clone()).collect()
        } else {
            old_before
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = env.cmd(&args).env("TentacleHome", tentacle_home(&env));
        let mode = rng.below(3);
        if mode == 0 {
            let checkpoint = CHANGE_CHECKPOINTS[rng.below(CHANGE_CHECKPOINTS.len() as u64) as usize];
            cmd = cmd.env("CALAMARI_FAULT_AT", format!("{checkpoint}#{}", 1 + rng.below(2)));
        }
        let mut cmd = cmd.env("CALAMARI_FAULT_DELAY_US", "1500").cmd;
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        if mode == 1 {
            // The kill lands at a pseudo-random moment of the run: the sleep is the test.
            std::thread::sleep(Duration::from_micros(1000 + rng.below(60_000)));
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let succeeded = out.status.success();
        assert!(succeeded || out.status.signal() == Some(libc::SIGKILL), "{context}: {op} {:?}", out.status);
        killed += u32::from(!succeeded);
        if succeeded {
            match op {
                "deploy" => {
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    let run = Run { code: 0, stdout: stdout.into_owned(), stderr: String::new() };
                    let dir = run.output_variable("Octopus.Action.Package.InstallationDirectoryPath").unwrap();
                    deployed.push(PathBuf::from(dir));
                }
                "transfer" => {
                    transferred.push(env.path(format!("staging/Acme.Web.1.0.{round}.zip")).display().to_string())
                }
                _ => {}
            }
        }
        let after = journal_after_crash(&env, &context);
        for dir in &deployed {
            let entry = after.iter().find(|e| e.extracted_to_path() == Some(dir.as_path()));
            assert!(entry.is_some_and(|e| e.was_successful), "{context}: the deployment to {} is lost", dir.display());
        }
        for from in &transferred {
            let found =
                after.iter().any(|e| e.package().and_then(|p| p.deployed_from.as_deref()) == Some(from.as_str()));
            assert!(found, "{context}: the transfer of {from} is lost");
        }
        assert_eq!(after.iter().filter(|e| e.id.starts_with("seed-")).count(), 800, "{context}");
        if op == "clean" {
            let old_after: Vec<String> =
                after.iter().filter(|e| e.retention_policy_set == "Old/Set").map(|e| e.id.clone()).collect();
            let kept = old_before.len().min(2);
            assert!(
                old_after == old_before || (old_after.len() == kept && old_before.ends_with(&old_after)),
                "{context}: a partial removal: {old_before:?} -> {old_after:?}"
            );
        }
    }
    assert!(killed >= 10, "only {killed} of {ROUNDS} rounds were killed");
}
