//! The machine package cache and its retention through the real binary: `register-package`,
//! `release-package-lock`, `clean-packages` (both strategies, FreeSpace on a small tmpfs),
//! locks and their expiry, a corrupt journal, concurrent registrations, the registrations
//! `deploy-package` and `find-package` make, and bad variables.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::{PROMPTLY, TestEnv, bin, tar_gz, wait_until};

fn home(env: &TestEnv) -> PathBuf {
    env.path("tentacle")
}

fn journal_path(env: &TestEnv) -> PathBuf {
    home(env).join("PackageRetentionJournal.json")
}

fn journal(env: &TestEnv) -> Value {
    serde_json::from_slice(&std::fs::read(journal_path(env)).expect("the journal exists")).expect("the journal is JSON")
}

/// `(id, version, lock task ids)` of every entry, in file order.
fn entries(env: &TestEnv) -> Vec<(String, String, Vec<String>)> {
    journal(env)["JournalEntries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let locks = e["locks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["DeploymentTaskId"]["Value"].as_str().unwrap().to_string());
            (
                e["Package"]["PackageId"]["Value"].as_str().unwrap().to_string(),
                e["Package"]["Version"]["Version"].as_str().unwrap().to_string(),
                locks.collect(),
            )
        })
        .collect()
}

/// A package file of `size` bytes in the cache.
fn cached(env: &TestEnv, id: &str, version: &str, size: usize) -> PathBuf {
    env.write(format!("tentacle/Files/feeds-1/{id}.{version}.zip"), vec![b'p'; size])
}

fn register(env: &TestEnv, id: &str, version: &str, path: &Path, task: &str) -> crate::util::Run {
    env.cmd(&[
        "register-package",
        &format!("--packageId={id}"),
        &format!("--packageVersion={version}"),
        "--taskId",
        task,
    ])
    .arg(format!("--packagePath={}", path.display()))
    .env("TentacleHome", home(env))
    .run()
}

fn with_vars(env: &TestEnv, args: &[&str], vars: &[(&str, &str, bool)]) -> crate::util::Run {
    let file = env.variables(&format!("vars-{}.json", rand_name()), vars);
    env.cmd(args).arg(format!("--variables={}", file.display())).env("TentacleHome", home(env)).run()
}

fn rand_name() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

fn quantities(versions: &str) -> [(&'static str, &str, bool); 2] {
    [
        ("MachinePackageCacheRetentionStrategy", "Quantities", false),
        ("MachinePackageCacheRetentionQuantityOfVersionsToKeep", versions, false),
    ]
}

#[test]
fn register_writes_the_reference_journal_shape() {
    let env = TestEnv::new();
    let pkg = cached(&env, "Acme.Web", "1.0.0", 1234);
    register(&env, "Acme.Web", "1.0.0", &pkg, "ServerTasks-1")
        .success()
        .stdout_has("Registered package use/lock for Acme.Web v1.0.0 and task ServerTasks-1");
    register(&env, "acme.web", "1.0.0", &pkg, "ServerTasks-2").success();
    let j = journal(&env);
    let entry = &j["JournalEntries"][0];
    assert_eq!(j["JournalEntries"].as_array().unwrap().len(), 1, "one package, ids compared ignoring case: {j}");
    assert_eq!(entry["Package"]["PackageId"]["Value"], "Acme.Web");
    assert_eq!(entry["Package"]["Version"], serde_json::json!({"Version": "1.0.0", "Format": "Semver"}));
    assert_eq!(entry["Package"]["Path"]["Value"], pkg.display().to_string());
    assert_eq!(entry["FileSizeBytes"], 1234);
    assert_eq!(entry["usages"].as_array().unwrap().len(), 2);
    assert_eq!(entry["usages"][1]["CacheAgeAtUsage"]["Value"], 2);
    assert_eq!(entry["locks"][1]["DeploymentTaskId"]["Value"], "ServerTasks-2");
    let date = entry["usages"][0]["DateTime"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(date).is_ok() && date.split('.').nth(1).unwrap().len() == 13,
        "{date}"
    );
    assert_eq!(j["Cache"]["CacheAge"]["Value"], 2);
    // No temp files or stray journals left.
    let mut names: Vec<String> =
        std::fs::read_dir(home(&env)).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["Files", "PackageRetentionJournal.json", "PackageRetentionJournal.json.lock"]);
}

#[test]
fn register_package_options_are_checked() {
    let env = TestEnv::new();
    let pkg = cached(&env, "Acme", "1.0.0", 10);
    let run = |args: &[&str]| {
        let mut all = vec!["register-package"];
        all.extend_from_slice(args);
        env.cmd(&all).env("TentacleHome", home(&env)).run()
    };
    let path = format!("--packagePath={}", pkg.display());
    run(&["--packageId=Acme", "--packageVersion=1.0.0", &path])
        .code(1)
        .stdout_has("Unable to register package use.")
        .stderr_has("No task ID was specified. Please pass --taskId ServerTasks-1");
    run(&["--packageId=Acme", "--packageVersion=1.0.0", &path, "--taskId=T", "--packageVersionFormat=Zig"])
        .code(1)
        .stderr_has("The provided version format `Zig` is not recognised.");
    run(&["--packageId=Acme", "--packageVersion=1.x", &path, "--taskId=T"])
        .code(1)
        .stderr_has("Package version '1.x' is not a valid Semver version string.");
    run(&["--packageId=Acme", "--packageVersion=1.x", &path, "--taskId=T", "--packageVersionFormat=maven"]).success();
    run(&["--packageId=Acme", "--packageVersion=1.0.0", "--packagePath=missing.zip", "--taskId=T"])
        .code(1)
        .stderr_has(&format!("Could not find package file: {}", env.path("missing.zip").display()));
    env.cmd(&["register-package", "--packageId=Acme", "--packageVersion=1.0.0", &path, "--taskId=T"])
        .run()
        .code(1)
        .stderr_has("neither the environment variable CalamariPackageRetentionJournalPath nor TentacleHome is set");
    assert_eq!(entries(&env), [("Acme".to_string(), "1.x".to_string(), vec!["T".to_string()])]);
    assert_eq!(journal(&env)["JournalEntries"][0]["Package"]["Version"]["Format"], "Maven");
}

#[test]
fn the_journal_path_comes_from_calamari_package_retention_journal_path() {
    let env = TestEnv::new();
    let pkg = cached(&env, "Acme", "1.0.0", 10);
    let elsewhere = env.path("elsewhere/journal.json");
    env.cmd(&["register-package", "--packageId=Acme", "--packageVersion=1.0.0", "--taskId=T"])
        .arg(format!("--packagePath={}", pkg.display()))
        .env("TentacleHome", home(&env))
        .env("CalamariPackageRetentionJournalPath", &elsewhere)
        .run()
        .success();
    assert!(elsewhere.is_file());
    assert!(!journal_path(&env).exists());
}

#[test]
fn quantities_remove_old_versions_and_ids_but_never_locked_packages() {
    let env = TestEnv::new();
    let a1 = cached(&env, "Acme", "1.0.0", 10);
    let a2 = cached(&env, "Acme", "2.0.0", 10);
    let a3 = cached(&env, "Acme", "3.0.0", 10);
    let b1 = cached(&env, "Beta", "1.0.0", 10);
    let c1 = cached(&env, "Gamma", "1.0.0", 10);
    for (i, (id, v, p)) in [
        ("Acme", "1.0.0", &a1),
        ("Acme", "2.0.0", &a2),
        ("Acme", "3.0.0", &a3),
        ("Beta", "1.0.0", &b1),
        ("Gamma", "1.0.0", &c1),
    ]
    .into_iter()
    .enumerate()
    {
        register(&env, id, v, p, &format!("ServerTasks-{}", i + 1)).success();
    }
    // Everything is locked: nothing goes.
    with_vars(&env, &["clean-packages"], &quantities("1"))
        .success()
        .stdout_has("Removed 0 packages from the package cache.");
    assert!(a1.is_file() && a2.is_file());
    // Release all but Acme 1.0.0's task: 2.0.0 is the older unlocked version beyond the one to keep.
    for task in ["ServerTasks-2", "ServerTasks-3", "ServerTasks-4", "ServerTasks-5"] {
        env.cmd(&["release-package-lock", "--taskId", task]).env("TentacleHome", home(&env)).run().success();
    }
    with_vars(&env, &["clean-packages"], &quantities("1"))
        .success()
        .stdout_has(&format!("Removing package file '{}'", a2.display()))
        .stdout_has("Removed 1 package from the package cache.");
    assert!(a1.is_file(), "locked by ServerTasks-1");
    assert!(!a2.exists());
    assert!(a3.is_file() && b1.is_file() && c1.is_file());
    // Keep one package id: Gamma was used last; Acme 3.0.0 and Beta go, Acme 1.0.0 stays locked.
    let mut vars = quantities("5").to_vec();
    vars.push(("MachinePackageCacheRetentionQuantityOfPackagesToKeep", "1", false));
    with_vars(&env, &["clean-packages"], &vars).success().stdout_has("Removed 2 packages from the package cache.");
    assert!(!a3.exists() && !b1.exists());
    assert!(a1.is_file() && c1.is_file());
    let left: Vec<(String, String)> = entries(&env).into_iter().map(|(id, v, _)| (id, v)).collect();
    assert_eq!(left, [("Acme".to_string(), "1.0.0".to_string()), ("Gamma".to_string(), "1.0.0".to_string())]);
}

#[test]
fn a_package_file_already_gone_is_not_an_error() {
    let env = TestEnv::new();
    let pkg = cached(&env, "Acme", "1.0.0", 10);
    register(&env, "Acme", "1.0.0", &pkg, "T-1").success();
    env.cmd(&["release-package-lock", "--taskId=t-1"]).env("TentacleHome", home(&env)).run().success();
    std::fs::remove_file(&pkg).unwrap();
    with_vars(&env, &["clean-packages"], &quantities("0"))
        .success()
        .stdout_has(&format!("Package at {} not found.", pkg.display()))
        .stdout_has("Removed 1 package from the package cache.");
    assert!(entries(&env).is_empty());
}

/// Rewrites the DateTime of every lock of `task` to `days` days ago.
fn backdate_locks(env: &TestEnv, task: &str, days: i64) {
    let mut j = journal(env);
    let when = (chrono::Utc::now() - chrono::TimeDelta::days(days)).format("%Y-%m-%dT%H:%M:%S%.f+00:00").to_string();
    for entry in j["JournalEntries"].as_array_mut().unwrap() {
        for lock in entry["locks"].as_array_mut().unwrap() {
            if lock["DeploymentTaskId"]["Value"] == task {
                lock["DateTime"] = Value::String(when.clone());
            }
        }
    }
    std::fs::write(journal_path(env), serde_json::to_vec(&j).unwrap()).unwrap();
}

#[test]
fn release_removes_the_tasks_locks_and_expires_stale_ones() {
    let env = TestEnv::new();
    let a = cached(&env, "Acme", "1.0.0", 10);
    let b = cached(&env, "Beta", "1.0.0", 10);
    register(&env, "Acme", "1.0.0", &a, "T-old").success();
    register(&env, "Beta", "1.0.0", &b, "T-new").success();
    register(&env, "Beta", "1.0.0", &b, "T-done").success();
    backdate_locks(&env, "T-old", 20);
    let locks = |env: &TestEnv| entries(env).into_iter().map(|(_, _, l)| l).collect::<Vec<_>>();
    // 30 days: only T-done's lock goes.
    with_vars(
        &env,
        &["release-package-lock", "--taskId=T-done"],
        &[("Octopus.Calamari.PackageRetentionLockExpiration", "30.00:00:00", false)],
    )
    .success();
    assert_eq!(locks(&env), [vec!["T-old".to_string()], vec!["T-new".to_string()]]);
    // The default, 14 days: T-old's 20-day-old lock expires; T-new's stays.
    env.cmd(&["release-package-lock", "--taskId=T-none"]).env("TentacleHome", home(&env)).run().success();
    assert_eq!(locks(&env), [vec![], vec!["T-new".to_string()]]);
    // A TimeSpan of whole days, and of zero: every lock is stale.
    with_vars(
        &env,
        &["release-package-lock", "--taskId=T-none"],
        &[("Octopus.Calamari.PackageRetentionLockExpiration", "0", false)],
    )
    .success();
    assert_eq!(locks(&env), [Vec::<String>::new(), vec![]]);
    // Usages stay: they are the history retention ranks by.
    assert_eq!(journal(&env)["JournalEntries"][1]["usages"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_variable_values_fail_naming_the_variable_and_change_nothing() {
    let env = TestEnv::new();
    let pkg = cached(&env, "Acme", "1.0.0", 10);
    register(&env, "Acme", "1.0.0", &pkg, "T-1").success();
    let before = std::fs::read(journal_path(&env)).unwrap();
    let cases: [(&[&str], (&str, &str), &str); 6] = [
        (
            &["clean-packages"],
            ("OctopusPackageRetentionPercentFreeDiskSpace", "lots"),
            "The variable OctopusPackageRetentionPercentFreeDiskSpace must be a whole number of percent from 0 to 100, but it is 'lots'",
        ),
        (&["clean-packages"], ("OctopusPackageRetentionPercentFreeDiskSpace", "150"), "but it is '150'"),
        (
            &["clean-packages"],
            ("MachinePackageCacheRetentionStrategy", "Biggest"),
            "The variable MachinePackageCacheRetentionStrategy must be FreeSpace or Quantities, but it is 'Biggest'",
        ),
        (
            &["release-package-lock", "--taskId=T-1"],
            ("Octopus.Calamari.PackageRetentionLockExpiration", "soon"),
            "The variable Octopus.Calamari.PackageRetentionLockExpiration must be a .NET TimeSpan",
        ),
        (
            &["register-package"],
            ("Calamari.PackageRetention.LockTimeout", "never"),
            "The variable Calamari.PackageRetention.LockTimeout must be a number of seconds",
        ),
        (&["clean-packages"], ("Calamari.PackageRetention.LockTimeout", "-1"), "but it is '-1'"),
    ];
    for (args, (name, value), message) in cases {
        let mut args = args.to_vec();
        let path = format!("--packagePath={}", pkg.display());
        if args[0] == "register-package" {
            args.extend(["--packageId=Acme", "--packageVersion=1.0.0", "--taskId=T-2", &path]);
        }
        with_vars(&env, &args, &[(name, value, false)]).code(1).stderr_has(message);
    }
    let mut vars = quantities("x").to_vec();
    vars.push(("MachinePackageCacheRetentionPackageUnit", "Bytes", false));
    with_vars(&env, &["clean-packages"], &vars)
        .code(1)
        .stderr_has("MachinePackageCacheRetentionPackageUnit must be Items");
    with_vars(&env, &["clean-packages"], &quantities("x"))
        .code(1)
        .stderr_has("The variable MachinePackageCacheRetentionQuantityOfVersionsToKeep must be a whole number, -1 for all, but it is 'x'");
    assert_eq!(std::fs::read(journal_path(&env)).unwrap(), before, "nothing changed");
    assert!(pkg.is_file());
}

#[test]
fn a_corrupt_journal_is_moved_aside_and_the_cache_is_kept() {
    let env = TestEnv::new();
    let pkg = cached(&env, "Acme", "1.0.0", 10);
    std::fs::create_dir_all(home(&env)).unwrap();
    std::fs::write(journal_path(&env), r#"[{"a",}]"#).unwrap();
    let run = with_vars(&env, &["clean-packages"], &quantities("0"));
    run.success().stdout_has(&format!(
        "The existing package retention journal file {} could not be read",
        journal_path(&env).display()
    ));
    let aside: Vec<PathBuf> = std::fs::read_dir(home(&env))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("PackageRetentionJournal_"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].to_string_lossy().ends_with(".json"));
    run.stdout_has(&format!("The file was renamed to {}. A new journal will be created.", aside[0].display()));
    assert_eq!(
        std::fs::read_to_string(&aside[0]).unwrap(),
        r#"[{"a",}]"#,
        "the old journal is kept for a person to read"
    );
    assert!(pkg.is_file(), "nothing is deleted because the journal was unreadable");
    assert!(entries(&env).is_empty());
    // A registration after that works on the fresh journal.
    register(&env, "Acme", "1.0.0", &pkg, "T-1").success();
    assert_eq!(entries(&env).len(), 1);
    // A journal of the wrong shape (valid JSON) is corrupt too.
    std::fs::write(journal_path(&env), r#"{"JournalEntries": 5}"#).unwrap();
    register(&env, "Acme", "1.0.0", &pkg, "T-2").success().stdout_has("could not be read");
    assert_eq!(entries(&env), [("Acme".to_string(), "1.0.0".to_string(), vec!["T-2".to_string()])]);
}

#[test]
fn concurrent_registrations_lose_nothing() {
    let env = TestEnv::new();
    let packages: Vec<PathBuf> = (0..8).map(|i| cached(&env, &format!("Pkg{i}"), "1.0.0", 10)).collect();
    let mut children = Vec::new();
    for round in 0..3 {
        for (i, pkg) in packages.iter().enumerate() {
            let child = Command::new(bin())
                .args(["register-package", &format!("--packageId=Pkg{i}"), "--packageVersion=1.0.0"])
                .arg(format!("--packagePath={}", pkg.display()))
                .arg(format!("--taskId=T-{round}-{i}"))
                .env("TentacleHome", home(&env))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            children.push(child);
        }
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let j = journal(&env);
    assert_eq!(j["Cache"]["CacheAge"]["Value"], 24, "every registration bumped the age once");
    let all = entries(&env);
    assert_eq!(all.len(), 8);
    for (_, _, locks) in &all {
        assert_eq!(locks.len(), 3, "{all:?}");
    }
    let mut ages: Vec<i64> = j["JournalEntries"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["usages"].as_array().unwrap().iter().map(|u| u["CacheAgeAtUsage"]["Value"].as_i64().unwrap()))
        .collect();
    ages.sort_unstable();
    assert_eq!(ages, (1..=24).collect::<Vec<_>>(), "each registration saw the one before it");
}

#[test]
fn a_held_journal_lock_times_out_with_exit_1() {
    let env = TestEnv::new();
    let pkg = cached(&env, "Acme", "1.0.0", 10);
    let lock = home(&env).join("PackageRetentionJournal.json.lock");
    let holder = Command::new("flock").args(["-x", "--no-fork"]).arg(&lock).args(["sleep", "30"]).spawn();
    let Ok(mut holder) = holder else {
        crate::util::skip("flock(1) is not available");
        return;
    };
    wait_until(PROMPTLY, "flock(1) to hold the lock", || {
        use std::os::fd::AsRawFd;
        std::fs::File::open(&lock).is_ok_and(|file| {
            // SAFETY: flock on a descriptor we own; closing it drops any lock we got.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
        })
    });
    let path = format!("--packagePath={}", pkg.display());
    with_vars(
        &env,
        &["register-package", "--packageId=Acme", "--packageVersion=1.0.0", "--taskId=T", &path],
        &[("Calamari.PackageRetention.LockTimeout", "0.3", false)],
    )
    .code(1)
    .stderr_has(&format!(
        "waiting for the package retention journal lock '{}'; another process holds it",
        lock.display()
    ));
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(!journal_path(&env).exists());
}

fn retention_vars(task: Option<&str>, enabled: &str) -> Vec<(&'static str, String, bool)> {
    let mut vars = vec![("Octopus.Calamari.EnablePackageRetention", enabled.to_string(), false)];
    if let Some(task) = task {
        vars.push(("Octopus.Task.Id", task.to_string(), false));
    }
    vars
}

fn deploy(env: &TestEnv, pkg: &Path, vars: &[(&'static str, String, bool)]) -> crate::util::Run {
    let mut all: Vec<(&str, &str, bool)> = vars.iter().map(|(k, v, s)| (*k, v.as_str(), *s)).collect();
    let apps = env.path("apps").display().to_string();
    all.push(("Octopus.Tentacle.Agent.ApplicationDirectoryPath", &apps, false));
    with_vars(env, &["deploy-package", &format!("--package={}", pkg.display())], &all)
}

#[test]
fn deploy_package_registers_its_package_when_retention_is_on() {
    let env = TestEnv::new();
    std::fs::create_dir_all(home(&env).join("Files")).unwrap();
    let pkg = tar_gz(
        &env,
        "tentacle/Files/Acme.Web@S1.2.3@0123456789ABCDEF0123456789ABCDEF.tar.gz",
        &[("index.html", b"hi", 0o644)],
    );
    // Off (the default, and explicitly false): no journal at all.
    deploy(&env, &pkg, &retention_vars(Some("ServerTasks-1"), "False")).success();
    deploy(&env, &pkg, &[("Octopus.Task.Id", "ServerTasks-1".to_string(), false)]).success();
    assert!(!journal_path(&env).exists());
    // On without a task id: the deployment goes on, the reason is logged, nothing written.
    deploy(&env, &pkg, &retention_vars(None, "True"))
        .success()
        .stdout_has("Unable to register package use.\nOctopus.Task.Id is not set.");
    assert!(!journal_path(&env).exists());
    // On: the package is registered and locked for the task.
    deploy(&env, &pkg, &retention_vars(Some("ServerTasks-7"), "true"))
        .success()
        .stdout_has("Registered package use/lock for Acme.Web v1.2.3 and task ServerTasks-7");
    assert_eq!(entries(&env), [("Acme.Web".to_string(), "1.2.3".to_string(), vec!["ServerTasks-7".to_string()])]);
    assert_eq!(journal(&env)["JournalEntries"][0]["Package"]["Path"]["Value"], pkg.display().to_string());
    // A package deployed from outside the cache is not the cache's to delete: not registered.
    let outside = tar_gz(&env, "Other.App.1.0.0.tar.gz", &[("index.html", b"hi", 0o644)]);
    deploy(&env, &outside, &retention_vars(Some("ServerTasks-9"), "true"))
        .success()
        .stdout_has("is not in the package cache ($TentacleHome/Files): its use is not registered for retention.");
    assert_eq!(entries(&env).len(), 1);
    // A journal that cannot be written never fails the deployment.
    std::fs::remove_file(journal_path(&env)).unwrap();
    std::fs::create_dir(journal_path(&env)).unwrap();
    deploy(&env, &pkg, &retention_vars(Some("ServerTasks-8"), "true"))
        .success()
        .stdout_has("Unable to register package use.");
}

#[test]
fn find_package_registers_an_exact_match_when_retention_is_on() {
    use sha1::Digest as _;
    let env = TestEnv::new();
    let files = home(&env).join("Files/feeds-1");
    std::fs::create_dir_all(&files).unwrap();
    let pkg = tar_gz(&env, "tentacle/Files/feeds-1/Acme.2.0.0.tar.gz", &[("a.txt", b"a", 0o644)]);
    let hash = hex::encode(sha1::Sha1::digest(std::fs::read(&pkg).unwrap()));
    let find = |version: &str, vars: &[(&'static str, String, bool)]| {
        let all: Vec<(&str, &str, bool)> = vars.iter().map(|(k, v, s)| (*k, v.as_str(), *s)).collect();
        with_vars(
            &env,
            &[
                "find-package",
                "--packageId=Acme",
                &format!("--packageVersion={version}"),
                &format!("--packageHash={hash}"),
            ],
            &all,
        )
    };
    find("2.0.0", &retention_vars(Some("ServerTasks-3"), "False"))
        .success()
        .stdout_has("##octopus[calamari-found-package]");
    assert!(!journal_path(&env).exists(), "retention off: nothing written");
    // Only earlier versions found: nothing to register.
    find("3.0.0", &retention_vars(Some("ServerTasks-3"), "True")).success();
    assert!(!journal_path(&env).exists());
    find("2.0.0", &retention_vars(Some("ServerTasks-3"), "True"))
        .success()
        .stdout_has("##octopus[calamari-found-package]");
    assert_eq!(entries(&env), [("Acme".to_string(), "2.0.0".to_string(), vec!["ServerTasks-3".to_string()])]);
}

/// FreeSpace on a real small filesystem: a 1 MiB tmpfs mounted over the cache in a private
/// mount namespace, filled with packages until less than the target is free.
#[test]
fn free_space_removes_least_frequently_used_packages_until_enough_is_free() {
    let env = TestEnv::new();
    let files = home(&env).join("Files");
    std::fs::create_dir_all(&files).unwrap();
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs \"$1\"", "sh"])
        .arg(&files)
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            crate::util::skip(&format!(
                "unshare -m with mount not permitted: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return;
        }
        Err(e) => {
            crate::util::skip(&format!("unshare not available: {e}"));
            return;
        }
    }
    // Eight 100 KiB packages P0..P7 registered in order; P5 used three more times; P7 still
    // locked. Everything else released.
    let script = r#"
        set -eu
        calamari="$1"; files="$2"
        mount -t tmpfs -o size=1m tmpfs "$files"
        reg() { "$calamari" register-package --packageId="P$1" --packageVersion=1.0.0 --packagePath="$files/P$1.1.0.0.zip" --taskId="$2" >/dev/null; }
        for i in 0 1 2 3 4 5 6 7; do head -c 102400 /dev/zero > "$files/P$i.1.0.0.zip"; reg $i "T-$i"; done
        for n in a b c; do reg 5 "T-5$n"; done
        for t in T-0 T-1 T-2 T-3 T-4 T-5 T-6 T-5a T-5b T-5c; do "$calamari" release-package-lock --taskId=$t >/dev/null; done
        echo "stat: $(stat -f -c '%a %f %b %S' "$files")"
        "$calamari" clean-packages --variables="$3"; echo "first=$?"
        "$calamari" clean-packages --variables="$4"; echo "second=$?"
        echo "left: $(ls "$files" | tr '\n' ' ')"
    "#;
    let ten = env.variables("ten.json", &[("OctopusPackageRetentionPercentFreeDiskSpace", "10", false)]);
    let fifty = env.variables("fifty.json", &[("OctopusPackageRetentionPercentFreeDiskSpace", "50", false)]);
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(bin())
        .arg(&files)
        .arg(&ten)
        .arg(&fifty)
        .current_dir(env.root())
        .env("TentacleHome", home(&env))
        .env("HOME", env.path("home"))
        .env_remove("CalamariPackageRetentionJournalPath")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let context = format!("{stdout}\n--- stderr ---\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{context}");
    assert!(stdout.contains("first=0\n") && stdout.contains("second=0\n"), "{context}");
    // The expected count from the same figures Calamari reads (available, total, block size).
    let stat: Vec<u64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("stat: "))
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let (free, total) = (stat[0] * stat[3], stat[2] * stat[3]);
    assert!(
        free * 100 > total * 10 && free * 100 < total * 50,
        "the filesystem is between 10 % and 50 % free: {context}"
    );
    assert!(stdout.contains("Detected enough space for new packages."), "10 %: nothing to do: {context}");
    let to_free = (total * 50 / 100 - free) * 130 / 100;
    let expected = to_free.div_ceil(102_400) as usize;
    // Least valuable first: old single-use packages P0, P1...; P6 next; P5 (four uses) last; P7 locked.
    let order = ["P0", "P1", "P2", "P3", "P4", "P6", "P5"];
    let left = stdout.lines().find_map(|l| l.strip_prefix("left: ")).unwrap();
    let left: Vec<&str> = left.split_whitespace().map(|f| f.trim_end_matches(".1.0.0.zip")).collect();
    let mut kept: Vec<&str> = order[expected..].to_vec();
    kept.push("P7");
    kept.sort_unstable();
    assert_eq!(left, kept, "removed the first {expected} in LFU order: {context}");
    assert!(stdout.contains(&format!("Removed {expected} packages from the package cache.")), "{context}");
    let names: Vec<String> = entries(&env).into_iter().map(|(id, _, _)| id).collect();
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, kept, "the journal matches the files");
}

#[test]
fn find_and_register_package_registers_for_its_task_in_one_step() {
    use sha1::Digest as _;
    let env = TestEnv::new();
    std::fs::create_dir_all(home(&env).join("Files/feeds-1")).unwrap();
    let pkg = tar_gz(&env, "tentacle/Files/feeds-1/Acme.2.0.0.tar.gz", &[("a.txt", b"a", 0o644)]);
    let hash = hex::encode(sha1::Sha1::digest(std::fs::read(&pkg).unwrap()));
    let run = |args: &[&str]| env.cmd(args).env("TentacleHome", home(&env)).run();
    // No retention variable needed: registering is what the command is for. The reference's
    // tests spell the options with one dash.
    run(&[
        "find-and-register-package",
        "-packageId=Acme",
        "-packageVersion=2.0.0",
        &format!("-packageHash={hash}"),
        "-taskId=ServerTasks-9",
    ])
    .success()
    .stdout_has("##octopus[calamari-found-package]");
    assert_eq!(entries(&env), [("Acme".to_string(), "2.0.0".to_string(), vec!["ServerTasks-9".to_string()])]);
    // Only an earlier version in the cache: reported, nothing registered.
    run(&[
        "find-and-register-package",
        "--packageId=Acme",
        "--packageVersion=3.0.0",
        "--packageHash=00",
        "--taskId=ServerTasks-10",
    ])
    .success();
    assert_eq!(entries(&env).len(), 1);
    // No task: the reference's messages, exit 1, nothing registered.
    let no_task = run(&[
        "find-and-register-package",
        "--packageId=Acme",
        "--packageVersion=2.0.0",
        &format!("--packageHash={hash}"),
    ]);
    no_task
        .code(1)
        .stderr_has(&format!("Failed to find and register package Acme v2.0.0 hash {hash}"))
        .stderr_has("No task ID was specified. Please pass --taskId YourTaskId");
    let no_id = run(&["find-and-register-package", "--packageVersion=2.0.0", "--taskId=T"]);
    no_id.code(1).stderr_has("No package ID was specified. Please pass --packageId YourPackage");
    assert_eq!(entries(&env).len(), 1);
}
