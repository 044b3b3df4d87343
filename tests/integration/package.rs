//! Integration tests: package extraction (every format, the reference's sample packages and
//! our own fixtures), staging directories, hashes, atomicity under kill and concurrency,
//! and find-package.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::{self, TestEnv};

/// `kind mode size path` lines of a tree, sorted, in the format of `fixtures/packages/expected.txt`.
fn listing(root: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let meta = e.path().symlink_metadata().unwrap();
        if meta.file_type().is_symlink() {
            lines.push(format!("l - - {rel} -> {}", std::fs::read_link(e.path()).unwrap().display()));
        } else if meta.is_dir() {
            lines.push(format!("d - - {rel}"));
        } else {
            let x = if meta.permissions().mode() & 0o100 != 0 { "x" } else { "-" };
            lines.push(format!("f {x} {} {rel}", meta.len()));
        }
    }
    lines.sort();
    lines
}

fn extract_to(env: &TestEnv, package: &Path, dest: &str) -> crate::util::Run {
    env.cmd(&["extract-package"])
        .arg(format!("--package={}", package.display()))
        .arg(format!("--destination={dest}"))
        .run()
}

fn acme_tree(resource_size: u64) -> Vec<String> {
    let mut v: Vec<String> = [
        "d - - ChildFolder",
        "d - - EmptyFolder",
        "d - - package",
        "f - 32 ChildFolder/file-in-child-folder.txt",
        "f - 36 package/file-in-the-package-folder.txt",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("f - {resource_size} my resource.txt"));
    v.sort();
    v
}

#[test]
fn shared_samples_extract_to_the_expected_tree() {
    let Some(shared) = util::shared_dir("reference sample packages") else { return };
    let samples = shared.join("fixtures/calamari-samples");
    let env = TestEnv::new();
    for (file, resource_size) in [
        ("Acme.Core.1.0.0.0-bugfix.zip", 16),
        ("Acme.Core.1.0.0.0-bugfix.nupkg", 16),
        ("Acme.Core.1.0.01.nupkg", 16),
        ("Acme.Core.1.0.1+ace8cda.nupkg", 16),
        ("Acme.Core.1.0.0.0-bugfix.tar", 17),
        ("Acme.Core.1.0.0.0-bugfix.tar.gz", 17),
        ("Acme.Core.1.0.0.0-bugfix.tar.bz2", 17),
        ("Acme.Core.1.0.0.0-bugfix.tar.xz", 17),
    ] {
        let run = extract_to(&env, &samples.join(file), &format!("out/{file}"));
        run.success();
        assert_eq!(run.output_variable("Package.ExtractedFileCount").as_deref(), Some("9"), "{file}");
        let dest = env.path(format!("out/{file}"));
        assert_eq!(run.output_variable("Package.InstallationDirectoryPath"), Some(dest.to_string_lossy().into_owned()));
        let tree = listing(&dest);
        // The nested archives stay archives.
        for nested in ["child-archive.zip", "child-archive.nupkg", "child-archive.tar.gz", "child-archive.tar"] {
            assert!(tree.iter().any(|l| l.starts_with("f ") && l.ends_with(&format!(" {nested}"))), "{file}: {tree:?}");
        }
        let rest: Vec<String> =
            tree.into_iter().filter(|l| !l.contains("child-archive")).map(|l| l.replace("f x", "f -")).collect();
        assert_eq!(rest, acme_tree(resource_size), "{file}");
        assert!(
            !dest.join("_rels").exists()
                && !dest.join("Acme.Core.nuspec").exists()
                && !dest.join("[Content_Types].xml").exists()
        );
    }
    let run = extract_to(&env, &samples.join("Acme.Core.1.0.0.0-symlink.tar.gz"), "out/symlink");
    run.success();
    assert_eq!(
        listing(&env.path("out/symlink")).into_iter().map(|l| l.replace("f x", "f -")).collect::<Vec<_>>(),
        [
            "d - - octopus-sample",
            "f - 45 octopus-sample/sample.txt",
            "l - - octopus-sample/link-to-sample -> sample.txt"
        ]
    );
    let run = extract_to(&env, &samples.join("example.0.0.1.tgz"), "out/example");
    run.success();
    let tree = listing(&env.path("out/example"));
    assert!(
        tree.iter()
            .any(|l| l.contains("templates/areallyreallylongfilename") && l.ends_with("123456789101111111111test")),
        "PAX long name: {tree:?}"
    );
    assert_eq!(run.output_variable("Package.ExtractedFileCount").as_deref(), Some("4"));
    extract_to(&env, &samples.join("utf8.Filenames-1.0.0.zip"), "out/utf8").success();
    assert!(env.path("out/utf8/á_ó_í_çø.txt").is_file());
}

#[test]
fn project_fixtures_extract_to_the_expected_tree() {
    let dir = util::fixtures().join("packages");
    let expected: Vec<String> =
        std::fs::read_to_string(dir.join("expected.txt")).unwrap().lines().map(str::to_string).collect();
    let env = TestEnv::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".py") || name.ends_with(".txt") {
            continue;
        }
        seen += 1;
        let run = extract_to(&env, &path, &format!("out/{name}"));
        run.success();
        let mut want = expected.clone();
        if name.ends_with(".nupkg") {
            want.retain(|l| !l.starts_with("l "));
        }
        assert_eq!(listing(&env.path(format!("out/{name}"))), want, "{name}");
        let files = want.iter().filter(|l| !l.starts_with("d ")).count().to_string();
        assert_eq!(run.output_variable("Package.ExtractedFileCount"), Some(files), "{name}");
    }
    assert!(seen >= 9, "fixtures missing: run fixtures/packages/build.py");
}

fn fixture(name: &str) -> PathBuf {
    util::fixtures().join("packages").join(name)
}

#[test]
fn staging_directory_comes_from_variables_and_never_collides() {
    let env = TestEnv::new();
    let apps = env.path("apps");
    let vars = env.variables(
        "v.json",
        &[
            ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.to_str().unwrap(), false),
            ("Octopus.Environment.Name", "Production", false),
            ("Octopus.Deployment.Tenant.Name", "Acme/Corp", false),
        ],
    );
    let package = fixture("Sample.App.2.1.0-beta.1.nupkg");
    let mut dirs = Vec::new();
    for _ in 0..3 {
        let run = env
            .cmd(&["extract-package"])
            .arg(format!("--package={}", package.display()))
            .arg(format!("--variables={}", vars.display()))
            .run();
        run.success().stdout_has("Extracting package to: ").stdout_has("Extracted 5 files");
        let dir = run.output_variable("Octopus.Action.Package.InstallationDirectoryPath").unwrap();
        assert_eq!(run.output_variable("Package.InstallationDirectoryPath").as_deref(), Some(dir.as_str()));
        dirs.push(dir);
    }
    let base = apps.join("AcmeCorp/Production/Sample.App/2.1.0-beta.1");
    let want: Vec<String> = ["", "_1", "_2"].iter().map(|s| format!("{}{s}", base.display())).collect();
    assert_eq!(dirs, want);
    assert!(Path::new(&dirs[2]).join("bin/start.sh").is_file());
}

#[test]
fn staging_falls_back_to_home_applications() {
    let env = TestEnv::new();
    let run = env
        .cmd(&["extract-package"])
        .arg(format!("--package={}", fixture("Sample.App.2.1.0-beta.1.tar.gz").display()))
        .run();
    run.success();
    assert_eq!(
        run.output_variable("Package.InstallationDirectoryPath"),
        Some(env.path("home/Applications/Sample.App/2.1.0-beta.1").to_string_lossy().into_owned())
    );
}

#[test]
fn package_hash_mismatch_fails_before_anything_is_written() {
    let env = TestEnv::new();
    let package = fixture("Sample.App.2.1.0-beta.1.zip");
    let run = env
        .cmd(&["extract-package"])
        .arg(format!("--package={}", package.display()))
        .arg("--packageHash=0123456789012345678901234567890123456789")
        .run();
    run.code(1).stderr_has("0123456789012345678901234567890123456789");
    assert!(!env.path("home/Applications").exists());
    let good = hex_sha1(&package);
    env.cmd(&["extract-package"])
        .arg(format!("--package={}", package.display()))
        .arg(format!("--packageHash={}", good.to_uppercase()))
        .run()
        .success();
}

fn hex_sha1(path: &Path) -> String {
    use sha1::Digest as _;
    hex::encode(sha1::Sha1::digest(std::fs::read(path).unwrap()))
}

#[test]
fn hostile_archive_fails_with_the_entry_named_and_no_destination() {
    let env = TestEnv::new();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.as_old_mut().name[..12].copy_from_slice(b"../../escape");
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let archive = env.write("Evil.1.0.0.tar", b.into_inner().unwrap());
    let run = extract_to(&env, &archive, "out/evil");
    run.code(1).stderr_has("../../escape").stderr_has("outside the intended extraction directory");
    assert!(!env.path("out/evil").exists());
    assert!(!env.path("../escape").exists());
    assert_eq!(std::fs::read_dir(env.path("out")).unwrap().count(), 0, "no partial directory left");
}

#[test]
fn a_package_without_an_extension_gets_the_reference_sentence() {
    let env = TestEnv::new();
    let bare = env.write("AcmeWebPackage", std::fs::read(fixture("Sample.App.2.1.0-beta.1.tar.gz")).unwrap());
    extract_to(&env, &bare, "out/bare")
        .code(1)
        .stderr_has("Package is missing file extension. This is needed to select the correct extraction algorithm.")
        .stderr_has("AcmeWebPackage");
    assert!(!env.path("out/bare").exists());
}

#[test]
fn mismatched_magic_names_both_formats() {
    let env = TestEnv::new();
    let fake = env.write("Fake.1.0.0.zip", std::fs::read(fixture("Sample.App.2.1.0-beta.1.tar.gz")).unwrap());
    extract_to(&env, &fake, "out/fake").code(1).stderr_has("extension says zip but its content is gzip");
}

/// A tar.gz with many files, big enough that extraction takes a while.
fn many_files_package(env: &TestEnv, name: &str, files: usize) -> PathBuf {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let data = vec![b'x'; 2048];
    for i in 0..files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_path(format!("d{}/f{i}.txt", i % 20)).unwrap();
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    let gz = b.into_inner().unwrap().finish().unwrap();
    env.write(name, gz)
}

#[test]
fn killed_extraction_leaves_no_destination_and_the_next_run_cleans_up() {
    let env = TestEnv::new();
    let package = many_files_package(&env, "Big.1.0.0.tar.gz", 6000);
    let out = env.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut cmd =
        env.cmd(&["extract-package"]).arg(format!("--package={}", package.display())).arg("--destination=out/big").cmd;
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Wait until its partial directory holds some files, then kill it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut partial = None;
    while std::time::Instant::now() < deadline && partial.is_none() {
        partial = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.path()).find(|p| {
            p.file_name().unwrap().to_string_lossy().contains(".calamari-partial-")
                && std::fs::read_dir(p.join("d0")).map(|d| d.count() > 5).unwrap_or(false)
        });
        if child.try_wait().unwrap().is_some() {
            break;
        }
    }
    let Some(partial) = partial else {
        child.wait().unwrap();
        util::skip("extraction finished before it could be interrupted");
        return;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!env.path("out/big").exists(), "a killed extraction must leave no destination");
    assert!(partial.exists(), "the partial directory stays until the next run");
    extract_to(&env, &fixture("Sample.App.2.1.0-beta.1.zip"), "out/next").success();
    assert!(!partial.exists(), "the next extraction removes the stale partial directory");
    extract_to(&env, &package, "out/big").success();
    assert_eq!(std::fs::read_dir(env.path("out/big/d0")).unwrap().count(), 300);
}

#[test]
fn eight_concurrent_deployments_get_eight_complete_directories() {
    let env = TestEnv::new();
    let package = many_files_package(&env, "Conc.1.2.3.tar.gz", 200);
    let apps = env.path("apps");
    let vars =
        env.variables("v.json", &[("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.to_str().unwrap(), false)]);
    let children: Vec<_> = (0..8)
        .map(|_| {
            let mut cmd = env
                .cmd(&["extract-package"])
                .arg(format!("--package={}", package.display()))
                .arg(format!("--variables={}", vars.display()))
                .cmd;
            cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let mut dirs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let run = crate::util::Run {
                code: 0,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::new(),
            };
            run.output_variable("Package.InstallationDirectoryPath").unwrap()
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    assert_eq!(dirs.len(), 8, "{dirs:?}");
    for d in &dirs {
        let count = walkdir::WalkDir::new(d).into_iter().flatten().filter(|e| e.file_type().is_file()).count();
        assert_eq!(count, 200, "{d}");
    }
    let names: Vec<_> = std::fs::read_dir(apps.join("Conc")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(names.len(), 8, "only the eight directories, no leftovers: {names:?}");
}

/// Decoded attributes of every `##octopus[name ...]` line.
fn messages(stdout: &str, name: &str) -> Vec<Vec<(String, String)>> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let prefix = format!("##octopus[{name} ");
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .map(|rest| {
            rest.trim_end_matches(']')
                .split("\" ")
                .filter_map(|kv| {
                    let (k, v) = kv.split_once("=\"")?;
                    let v = v.trim_end_matches('"');
                    Some((k.to_string(), String::from_utf8(b64.decode(v).ok()?).ok()?))
                })
                .collect()
        })
        .collect()
}

#[test]
fn find_package_reports_exact_matches_and_earlier_versions() {
    let env = TestEnv::new();
    let files = env.path("tentacle/Files/feeds-1");
    std::fs::create_dir_all(&files).unwrap();
    let nupkg = fixture("Sample.App.2.1.0-beta.1.nupkg");
    let cached = files.join("Sample.App@S2.1.0-beta.1@0123456789ABCDEF0123456789ABCDEF.nupkg");
    std::fs::copy(&nupkg, &cached).unwrap();
    let older = files.join("Sample.App.1.0.0.tar.gz");
    std::fs::copy(fixture("Sample.App.2.1.0-beta.1.tar.gz"), &older).unwrap();
    std::fs::copy(fixture("Sample.App.2.1.0-beta.1.tar.gz"), files.join("Other.App.1.0.0.tar.gz")).unwrap();
    let hash = hex_sha1(&nupkg);
    let find = |version: &str, hash: &str, extra: &[&str]| {
        let mut c = env
            .cmd(&["find-package", "--packageId=Sample.App"])
            .arg(format!("--packageVersion={version}"))
            .arg(format!("--packageHash={hash}"))
            .env("TentacleHome", env.path("tentacle"));
        for a in extra {
            c = c.arg(a);
        }
        c.run()
    };
    let run = find("2.1.0-beta.1", &hash, &[]);
    run.success().stdout_has("##octopus[calamari-found-package]");
    let found = messages(&run.stdout, "foundPackage");
    assert_eq!(found.len(), 1);
    let get = |m: &Vec<(String, String)>, k: &str| m.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(get(&found[0], "id"), "Sample.App");
    assert_eq!(get(&found[0], "version"), "2.1.0-beta.1");
    assert_eq!(get(&found[0], "versionFormat"), "Semver");
    assert_eq!(get(&found[0], "hash"), hash);
    assert_eq!(get(&found[0], "remotePath"), cached.to_string_lossy());
    assert_eq!(get(&found[0], "fileExtension"), ".nupkg");

    let run = find("3.0.0", "ffff", &[]);
    run.success().stdout_has("has not been uploaded").stdout_has("Found 2 earlier versions of Sample.App");
    assert!(!run.stdout.contains("calamari-found-package"));
    let found = messages(&run.stdout, "foundPackage");
    let versions: Vec<String> = found.iter().map(|m| get(m, "version")).collect();
    assert_eq!(versions, ["2.1.0-beta.1", "1.0.0"], "newest first");

    let run = find("3.0.0", "ffff", &["--exactMatch=true"]);
    run.success();
    assert!(messages(&run.stdout, "foundPackage").is_empty());

    let run = find("0.1.0", "ffff", &[]);
    run.success().stdout_has("No earlier packages for Sample.App has been uploaded");

    find("not-a-version", "ffff", &[]).code(1).stderr_has("is not a valid Semver version string");
    env.cmd(&["find-package", "--packageId=A", "--packageVersion=1.0.0", "--packageHash=x"])
        .run()
        .code(1)
        .stderr_has("Environment variable 'TentacleHome' has not been set.");
    env.cmd(&["find-package", "--packageVersion=1.0.0", "--packageHash=x"])
        .run()
        .code(1)
        .stderr_has("No package ID was specified");
}

#[test]
fn archive_limit_variables_are_honoured() {
    let env = TestEnv::new();
    let package = many_files_package(&env, "Lim.1.0.0.tar.gz", 30);
    let vars = env.variables("v.json", &[("Octopus.Calamari.ArchiveLimits.MaximumEntryCount", "10", false)]);
    let run = env
        .cmd(&["extract-package"])
        .arg(format!("--package={}", package.display()))
        .arg(format!("--variables={}", vars.display()))
        .arg("--destination=out/lim")
        .run();
    run.code(1).stderr_has("more than 10 entries");
    assert!(!env.path("out/lim").exists());
    let _ = std::io::stdout().flush();
}

#[test]
fn an_unwritable_destination_is_a_user_error_naming_it() {
    let env = TestEnv::new();
    let package = fixture("Sample.App.2.1.0-beta.1.zip");
    let in_the_way = env.write("a-file", "not a directory");
    let mut destinations = vec![in_the_way.join("out")];
    // Even root cannot create a directory in sysfs.
    if Path::new("/sys/kernel").is_dir() {
        destinations.push(PathBuf::from(format!("/sys/calamari-test-{}/out", std::process::id())));
    }
    // Without root, a read-only parent refuses too.
    let read_only = env.path("read-only");
    std::fs::create_dir(&read_only).unwrap();
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::create_dir(read_only.join("probe")).is_err() {
        destinations.push(read_only.join("out"));
    }
    for destination in destinations {
        let run = extract_to(&env, &package, &destination.display().to_string());
        run.code(1).stderr_has(&format!("Cannot create the extraction destination '{}'", destination.display()));
        run.output_lacks(".calamari-new-").output_lacks(".calamari-partial-");
        assert!(!destination.exists());
    }
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_package_option_naming_a_directory_is_a_user_error() {
    let env = TestEnv::new();
    let dir = env.path("Acme.Web.1.0.0.zip");
    std::fs::create_dir_all(&dir).unwrap();
    for command in ["extract-package", "deploy-package", "run-script"] {
        let run = env.cmd(&[command, "--package=Acme.Web.1.0.0.zip"]).run();
        run.code(1).stderr_has(&format!("--package must name a package file, but '{}' is a directory", dir.display()));
    }
}

#[test]
fn one_file_is_one_file_in_messages() {
    let env = TestEnv::new();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_path("only.txt").unwrap();
    h.set_cksum();
    b.append(&h, &b"hi"[..]).unwrap();
    let package = env.write("One.1.0.0.tar", b.into_inner().unwrap());
    let run = extract_to(&env, &package, "one");
    run.success().stdout_has("Extracted 1 file\n");
    assert!(!run.stdout.contains("1 files"), "{}", run.stdout);
}

/// A `.tar.gz` of `entries` empty files in 100 directories: small to write, slow to
/// extract (one file creation per entry), so there is time to interrupt it.
fn slow_package(env: &TestEnv, name: &str, entries: usize) -> PathBuf {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for i in 0..entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_path(format!("d{}/f{i}", i % 100)).unwrap();
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
    }
    env.write(name, b.into_inner().unwrap().finish().unwrap())
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("calamari-partial") || n.contains("calamari-new") || n == "out")
        .collect()
}

#[test]
fn ctrl_c_or_sigterm_during_an_extraction_removes_the_partial_directory() {
    for (signal, expected) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let env = TestEnv::new();
        let package = slow_package(&env, "Slow.1.0.0.tar.gz", 150_000);
        let mut cmd =
            env.cmd(&["extract-package", "--destination=out"]).arg(format!("--package={}", package.display())).cmd;
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let started = util::wait_for(util::PROMPTLY, "the partial directory", || {
            if child.try_wait().unwrap().is_some() {
                return Some(false);
            }
            let found = std::fs::read_dir(env.root())
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".out.calamari-partial-"));
            found.then_some(true)
        });
        assert!(started, "the extraction ended before its partial directory was seen");
        // SAFETY: sends a signal to our own child, which has not been reaped yet.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(expected), "signal {signal}: {stderr}");
        let name = if signal == libc::SIGINT { "SIGINT" } else { "SIGTERM" };
        assert!(stderr.contains(&format!("was cancelled by {name}")), "{stderr}");
        assert_eq!(leftovers(env.root()), Vec::<String>::new(), "nothing may be left behind");
    }
}

#[test]
fn progress_shows_at_a_terminal_and_never_when_piped() {
    let env = TestEnv::new();
    let package = slow_package(&env, "Slow.1.0.0.tar.gz", 20_000);
    let piped = extract_to(&env, &package, "piped");
    piped.success().output_lacks("Extracting Slow.1.0.0.tar.gz:").output_lacks(" written, ");
    let args = ["extract-package", "--package=Slow.1.0.0.tar.gz", "--destination=terminal"];
    // The line shows at once (not after the default half second), so a fast machine sees it.
    let Some(terminal) = crate::cli::run_in_terminal(&env, &args, &[("CALAMARI_PROGRESS_DELAY_MS", "0")]) else {
        return;
    };
    terminal.success();
    assert!(
        terminal.stdout.contains("Extracting Slow.1.0.0.tar.gz: ") && terminal.stdout.contains(" entries"),
        "no progress line: {:?}",
        &terminal.stdout[..terminal.stdout.len().min(2000)]
    );
    assert!(!terminal.stdout.contains("##octopus["), "no protocol at a terminal");
    assert_eq!(std::fs::read_dir(env.path("terminal/d0")).unwrap().count(), 200);
}

/// Runs a shell script in the sandbox; false (after `util::skip`) when it fails, which
/// means a tool it needs is missing.
fn shell(env: &TestEnv, script: &str, needs: &str) -> bool {
    let out = std::process::Command::new("bash").arg("-ec").arg(script).current_dir(env.root()).output().unwrap();
    if !out.status.success() {
        util::skip(&format!("{needs} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    out.status.success()
}

fn extract_with(env: &TestEnv, package: &Path, vars: &[(&str, &str, bool)], dest: &str) -> crate::util::Run {
    let vars = env.variables("limits.json", vars);
    env.cmd(&["extract-package"])
        .arg(format!("--package={}", package.display()))
        .arg(format!("--variables={}", vars.display()))
        .arg(format!("--destination={dest}"))
        .run()
}

const RATIO: &str = "Octopus.Calamari.ArchiveLimits.MaximumCompressionRatio";
const RATIO_FLOOR: &str = "Octopus.Calamari.ArchiveLimits.CompressionRatioFloor";

#[test]
fn a_bomb_at_the_start_of_a_tar_stream_is_stopped_by_the_ratio_of_bytes_read_so_far() {
    let env = TestEnv::new();
    // 40 MB of zeros (about 40 KB compressed) before 2 MB of noise: the whole archive's
    // ratio is about 20, but the zeros alone expand a thousandfold.
    let script = "head -c 40M /dev/zero > zeros.bin && head -c 2M /dev/urandom > noise.bin \
                  && tar -cf - zeros.bin noise.bin | gzip -9 > Bomb.1.0.0.tgz && rm zeros.bin noise.bin";
    if !shell(&env, script, "GNU tar and gzip") {
        return;
    }
    let package = env.path("Bomb.1.0.0.tgz");
    let limits = [(RATIO, "50", false), (RATIO_FLOOR, "1048576", false)];
    let run = extract_with(&env, &package, &limits, "out/bomb");
    run.code(1)
        .stderr_has("Extraction of '")
        .stderr_has("Bomb.1.0.0.tgz' stopped: it expands to more than 50 times the ")
        .stderr_has("compressed bytes read so far")
        .stderr_has("set Octopus.Calamari.ArchiveLimits.MaximumCompressionRatio to raise the limit");
    assert!(!env.path("out/bomb").exists());
    assert_eq!(std::fs::read_dir(env.path("out")).unwrap().count(), 0, "no partial directory left");
    // Under the floor (256 MiB by default) the same ratio does not apply.
    extract_with(&env, &package, &[(RATIO, "50", false)], "out/fine").success();
    assert_eq!(std::fs::metadata(env.path("out/fine/zeros.bin")).unwrap().len(), 40 << 20);
}

#[test]
fn a_zip_entry_is_held_to_the_ratio_of_its_own_compressed_size() {
    let env = TestEnv::new();
    let script = r#"python3 - <<'PY'
import os, zipfile
with zipfile.ZipFile('Bomb.1.0.0.zip', 'w') as z:
    z.writestr(zipfile.ZipInfo('zeros.bin'), b'\0' * (40 << 20), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    z.writestr(zipfile.ZipInfo('noise.bin'), os.urandom(2 << 20), compress_type=zipfile.ZIP_STORED)
PY"#;
    if !shell(&env, script, "python3 zipfile") {
        return;
    }
    let package = env.path("Bomb.1.0.0.zip");
    let limits = [(RATIO, "50", false), (RATIO_FLOOR, "1048576", false)];
    let run = extract_with(&env, &package, &limits, "out/bomb");
    run.code(1)
        .stderr_has(
            "Bomb.1.0.0.zip' stopped: its entry 'zeros.bin' expands to more than 50 times its compressed size of ",
        )
        .stderr_has("set Octopus.Calamari.ArchiveLimits.MaximumCompressionRatio to raise the limit");
    assert_eq!(std::fs::read_dir(env.path("out")).unwrap().count(), 0, "no partial directory left");
}

/// Free megabytes on the sandbox's filesystem.
fn free_megabytes(env: &TestEnv) -> u64 {
    let out = std::process::Command::new("stat").args(["-f", "-c", "%a %S"]).arg(env.root()).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace().map(|p| p.parse::<u64>().unwrap());
    parts.next().unwrap() * parts.next().unwrap() / (1024 * 1024)
}

#[test]
fn declared_sizes_are_checked_against_the_free_space_as_entries_come() {
    let env = TestEnv::new();
    let free = free_megabytes(&env);
    if free < 3000 {
        util::skip(&format!("needs 3 GB free, has {free} MB"));
        return;
    }
    // Keep all but 2 GB free: the staging check passes, then an entry declaring 4 GiB
    // (whose data is not even there) must stop the extraction before it is written.
    let required = (free - 2048).to_string();
    let apps = env.path("apps");
    let vars = [
        ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", apps.to_str().unwrap(), false),
        ("OctopusFreeDiskSpaceOverrideInMegaBytes", required.as_str(), false),
    ];
    let mut h = tar::Header::new_ustar();
    h.set_path("big.bin").unwrap();
    h.set_size(4 << 30);
    h.set_mode(0o644);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend([0u8; 512]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let tgz = env.write("Big.1.0.0.tgz", gz.finish().unwrap());
    let script = r#"python3 - <<'PY'
import struct, zipfile
with zipfile.ZipFile('Big.2.0.0.zip', 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('big.bin', b'\0' * 1000)
data = bytearray(open('Big.2.0.0.zip', 'rb').read())
# Declare 4 GiB - 16 bytes uncompressed, in the local header and the central directory.
local = data.index(b'PK\x03\x04'); struct.pack_into('<I', data, local + 22, 0xFFFFFFF0)
central = data.index(b'PK\x01\x02'); struct.pack_into('<I', data, central + 24, 0xFFFFFFF0)
open('Big.2.0.0.zip', 'wb').write(data)
PY"#;
    let zip = shell(&env, script, "python3 zipfile").then(|| env.path("Big.2.0.0.zip"));
    for package in std::iter::once(tgz).chain(zip) {
        let vars = env.variables("v.json", &vars);
        let run = env
            .cmd(&["extract-package"])
            .arg(format!("--package={}", package.display()))
            .arg(format!("--variables={}", vars.display()))
            .run();
        run.code(1)
            .stderr_has(&format!("{}' stopped: its entry 'big.bin' declares 4096 MB", package.display()))
            .stderr_has(&format!("which would leave less than the required {required} MB free"))
            .stderr_has("set OctopusFreeDiskSpaceOverrideInMegaBytes to require less free space")
            .stderr_has("OctopusSkipFreeDiskSpaceCheck");
        let id = package.file_name().unwrap().to_string_lossy().split('.').next().unwrap().to_string();
        let parent = apps.join(id);
        assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 0, "nothing left in {}", parent.display());
    }
}

/// Creates `sparse.bin`: "head" at 0, "middle" at 1 MiB, "tail" at 3 MiB, holes between.
const MAKE_SPARSE: &str = r#"python3 -c "
f = open('sparse.bin', 'wb'); f.write(b'head'); f.seek(1 << 20); f.write(b'middle'); f.seek(3 << 20); f.write(b'tail'); f.close()""#;

#[test]
fn sparse_files_extract_with_their_real_name_size_and_holes() {
    let env = TestEnv::new();
    let help = std::process::Command::new("tar").arg("--help").output();
    if !help.is_ok_and(|h| String::from_utf8_lossy(&h.stdout).contains("--sparse-version")) {
        util::skip("GNU tar with --sparse-version is not installed");
        return;
    }
    let script = format!(
        "{MAKE_SPARSE}
         for v in 0.0 0.1 1.0; do tar --sparse --format=posix --sparse-version=$v -cf Sparse$v.1.0.0.tar sparse.bin; done
         tar --sparse --format=gnu -cf SparseGnu.1.0.0.tar sparse.bin"
    );
    if !shell(&env, &script, "GNU tar --sparse") {
        return;
    }
    let original = std::fs::read(env.path("sparse.bin")).unwrap();
    for version in ["0.0", "0.1", "1.0", "Gnu"] {
        let dest = format!("out/{version}");
        extract_to(&env, &env.path(format!("Sparse{version}.1.0.0.tar")), &dest).success();
        assert_eq!(listing(&env.path(&dest)), ["f - 3145732 sparse.bin"], "version {version}");
        assert!(std::fs::read(env.path(&dest).join("sparse.bin")).unwrap() == original, "content of {version}");
    }
    // The PAX versions keep their holes on disk.
    let blocks = std::process::Command::new("stat").args(["-c", "%b"]).arg(env.path("out/1.0/sparse.bin")).output();
    let blocks: u64 = String::from_utf8_lossy(&blocks.unwrap().stdout).trim().parse().unwrap();
    assert!(blocks < 1024, "{blocks} blocks: the holes were written");
}

#[test]
fn sparse_maps_that_do_not_fit_or_unknown_versions_are_refused_naming_the_entry() {
    let env = TestEnv::new();
    let script = r#"python3 - <<'PY'
import io, tarfile
def sparse(archive, pax, data):
    with tarfile.open(archive, 'w', format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo('GNUSparseFile.0/real.bin'); info.size = len(data); info.pax_headers = pax
        t.addfile(info, io.BytesIO(data))
one = {'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'real.bin', 'GNU.sparse.realsize': '1000'}
sparse('Short.1.0.0.tar', one, b'1\n0\n500\n'.ljust(512, b'\0') + b'x' * 10)
sparse('Past.1.0.0.tar', {'GNU.sparse.size': '10', 'GNU.sparse.map': '5,10', 'GNU.sparse.name': 'real.bin'}, b'y' * 10)
sparse('Two.1.0.0.tar', dict(one, **{'GNU.sparse.major': '2'}), b'z' * 10)
PY"#;
    if !shell(&env, script, "python3 tarfile") {
        return;
    }
    for (file, why) in [
        ("Short.1.0.0.tar", "sparse file: the sparse map describes 500 bytes of data but the entry holds 10"),
        ("Past.1.0.0.tar", "sparse file: a segment of the sparse map ends past the real size of 10 bytes"),
        ("Two.1.0.0.tar", "sparse file: GNU sparse format 2.0 is not supported"),
    ] {
        let run = extract_to(&env, &env.path(file), "out/s");
        run.code(1).stderr_has("Refused to extract entry '").stderr_has(why);
        assert!(!env.path("out/s").exists(), "{file}");
    }
    let run = extract_to(&env, &env.path("Short.1.0.0.tar"), "out/s");
    run.stderr_has("entry 'real.bin' of");
}

#[test]
fn zero_padding_after_a_tar_gz_is_accepted_and_other_trailing_data_is_not() {
    let env = TestEnv::new();
    let script = "echo hello > a.txt && tar -czf Padded.1.0.0.tar.gz a.txt && head -c 10240 /dev/zero >> Padded.1.0.0.tar.gz \
                  && gzip -t Padded.1.0.0.tar.gz && cp Padded.1.0.0.tar.gz Junk.1.0.0.tar.gz && printf 'junk' >> Junk.1.0.0.tar.gz";
    if !shell(&env, script, "GNU tar and gzip") {
        return;
    }
    extract_to(&env, &env.path("Padded.1.0.0.tar.gz"), "out/padded").success();
    assert_eq!(std::fs::read_to_string(env.path("out/padded/a.txt")).unwrap(), "hello\n");
    let run = extract_to(&env, &env.path("Junk.1.0.0.tar.gz"), "out/junk");
    run.code(1)
        .stderr_has("is damaged or not a valid archive")
        .stderr_has("neither another gzip member nor zero padding");
    assert!(!env.path("out/junk").exists());
}

#[test]
fn a_path_too_long_once_joined_to_the_destination_exits_1_with_the_name_shortened() {
    let env = TestEnv::new();
    // 20 components of 199 bytes: under the lexical limit of 4096, over it once joined.
    let name: String =
        (0..20).map(|i| format!("{i:02}{}", "d".repeat(197))).collect::<Vec<_>>().join("/") + "/file.txt";
    assert!(name.len() < 4096 && name.len() > 3990, "{}", name.len());
    let script = format!(
        r#"python3 - <<'PY'
import io, tarfile
with tarfile.open('Long.1.0.0.tar', 'w', format=tarfile.PAX_FORMAT) as t:
    info = tarfile.TarInfo('{name}'); info.size = 1
    t.addfile(info, io.BytesIO(b'x'))
PY"#
    );
    if !shell(&env, &script, "python3 tarfile") {
        return;
    }
    // A destination of 100-odd bytes takes the joined paths past the system's 4095.
    let dest = format!("out/{}", "l".repeat(120));
    let run = extract_to(&env, &env.path("Long.1.0.0.tar"), &dest);
    let shortened = format!("{}...{}", &name[..60], &name[name.len() - 40..]);
    run.code(1).stderr_has(&format!("Refused to extract entry '{shortened}' of")).stderr_has("path too long");
    run.output_lacks(&name[..200]);
    assert!(run.stderr.len() < 1000, "{}", run.stderr);
    assert!(!env.path(&dest).exists());
    assert_eq!(std::fs::read_dir(env.path("out")).unwrap().count(), 0, "no partial directory left");
}

#[test]
fn a_zip_name_flagged_utf8_that_is_not_is_refused_with_its_bytes() {
    let env = TestEnv::new();
    let script = r#"python3 - <<'PY'
import struct, zipfile
with zipfile.ZipFile('Names.1.0.0.zip', 'w') as z:
    z.writestr('cafX.txt', b'x')
data = bytearray(open('Names.1.0.0.zip', 'rb').read().replace(b'cafX.txt', b'caf\xe9.txt'))
# Set general-purpose bit 11 (the name is UTF-8) in the local and central headers.
for magic, at in ((b'PK\x03\x04', 6), (b'PK\x01\x02', 8)):
    i = data.index(magic) + at
    struct.pack_into('<H', data, i, struct.unpack_from('<H', data, i)[0] | 0x800)
open('Names.1.0.0.zip', 'wb').write(data)
PY"#;
    if !shell(&env, script, "python3 zipfile") {
        return;
    }
    let run = extract_to(&env, &env.path("Names.1.0.0.zip"), "out/names");
    run.code(1)
        .stderr_has(r"Refused to extract entry 'caf\xe9.txt' of")
        .stderr_has("its name is flagged as UTF-8 but is not valid UTF-8");
    assert!(!env.path("out/names").exists());
}
