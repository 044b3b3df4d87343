//! The versioned install `TentacleHome/Calamari/<version>/Success.txt`: install, bundles,
//! check-install, installed-versions, prune, and faults (kill -9 at random moments and at
//! every checkpoint, concurrent installs, a full disk in a tmpfs, a read-only home). The
//! invariant checked after every fault is checked here with code independent of the
//! library: `Success.txt` exists ⇒ every file the manifest lists has its size and SHA-256,
//! and nothing else is in the directory.

// Tests print the random seed on stdout, so a failing run can be repeated.
#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::util::{TestEnv, bin};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Names in `home/Calamari`, sorted.
fn listing(home: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(home.join("Calamari")) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// The install invariant for one version directory: when `Success.txt` exists, the
/// manifest names this version and every file it lists (and nothing else) is present with
/// the listed size, SHA-256 and executable bit. Returns whether the install is complete.
#[track_caller]
fn assert_invariant(home: &Path, version: &str) -> bool {
    let dir = home.join("Calamari").join(version);
    if !dir.join("Success.txt").is_file() {
        return false;
    }
    let marker = std::fs::read_to_string(dir.join("Success.txt")).unwrap();
    assert!(marker.starts_with(&format!("Calamari {version}\n")), "Success.txt is torn or empty: {marker:?}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("complete install has a manifest"))
            .expect("manifest parses");
    assert_eq!(manifest["version"], version);
    let mut expected: BTreeSet<String> = ["Success.txt".to_string(), "manifest.json".to_string()].into();
    for file in manifest["files"].as_array().expect("files array") {
        let rel = file["path"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel} listed but unreadable: {e}"));
        assert_eq!(bytes.len() as u64, file["size"].as_u64().unwrap(), "size of {rel}");
        assert_eq!(sha256(&bytes), file["sha256"].as_str().unwrap(), "sha256 of {rel}");
        let mode = std::fs::metadata(dir.join(rel)).unwrap().permissions().mode();
        assert_eq!(mode & 0o111 != 0, file["executable"].as_bool().unwrap(), "executable bit of {rel}");
        expected.insert(rel.split('/').next().unwrap().to_string());
    }
    let present: BTreeSet<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(present, expected, "files of the complete install {}", dir.display());
    true
}

/// A bundle in our format with the given files: (path, contents, executable).
fn make_bundle(version: &str, files: &[(String, Vec<u8>, bool)]) -> Vec<u8> {
    let manifest = serde_json::json!({
        "format": 1,
        "name": "Calamari",
        "version": version,
        "platform": platform(),
        "files": files.iter().map(|(p, d, x)| serde_json::json!({
            "path": p, "size": d.len(), "sha256": sha256(d), "executable": x
        })).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut add = |path: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, data).unwrap();
    };
    add("manifest.json", &manifest, 0o644);
    for (path, data, executable) in files {
        add(path, data, if *executable { 0o755 } else { 0o644 });
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// A small deterministic pseudo-random generator (xorshift64*); the seed is printed so a
/// failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn from_clock(what: &str) -> Rng {
        let seed = std::env::var("CALAMARI_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
                ^ u64::from(std::process::id())
        });
        println!("{what}: CALAMARI_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// `calamari <args>` as a plain `Command` (for killing and concurrency).
fn raw_cmd(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = env.cmd(args).cmd;
    cmd.stdout(Stdio::null()).stderr(Stdio::piped()).stdin(Stdio::null());
    cmd
}

// ---------------------------------------------------------------------------------------
// Install, check-install, the options.

#[test]
fn install_writes_the_binary_and_manifest_then_success_and_a_second_run_does_nothing() {
    let env = TestEnv::new();
    let home = env.path("tentacle");
    let h = path_str(&home);
    env.cmd(&["install", "--home", h]).run().success().stdout_has("is installed at");
    assert!(assert_invariant(&home, VERSION));
    assert_eq!(listing(&home), [".install.lock", VERSION]);
    let installed = home.join("Calamari").join(VERSION).join("calamari");
    assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(bin()).unwrap(), "the running build was copied");

    // A sentinel line in Success.txt shows whether a later run rewrote it.
    let marker = home.join("Calamari").join(VERSION).join("Success.txt");
    let mut text = std::fs::read_to_string(&marker).unwrap();
    text.push_str("sentinel\n");
    std::fs::write(&marker, &text).unwrap();
    env.cmd(&["install", "--home", h]).run().success().stdout_has("already installed");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), text, "Success.txt untouched");

    env.cmd(&["install", "--home", h, "--force"]).run().success().stdout_has("(reinstalled)");
    assert!(!std::fs::read_to_string(&marker).unwrap().contains("sentinel"), "--force rewrote the install");
    assert!(assert_invariant(&home, VERSION));
    assert_eq!(listing(&home), [".install.lock", VERSION], "nothing left of the old install");

    env.cmd(&["check-install", "--home", h, "--version", VERSION]).run().success();
    let out = Command::new(&installed).arg("version").output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains(VERSION));
}

#[test]
fn install_repairs_a_half_made_version_directory_and_removes_leftovers() {
    let env = TestEnv::new();
    let home = env.path("tentacle");
    env.write(format!("tentacle/Calamari/{VERSION}/calamari"), b"half a binary");
    env.write(format!("tentacle/Calamari/.tmp-{VERSION}-0123456789abcdef/calamari"), b"staged");
    env.write("tentacle/Calamari/.old-0.0.1-0123456789abcdef/calamari", b"old");
    env.cmd(&["check-install", "--home", path_str(&home), "--version", VERSION])
        .run()
        .code(3)
        .stdout_has("Directory is incomplete (no Success.txt)");
    env.cmd(&["install", "--home", path_str(&home)]).run().success().stdout_has("replaced an incomplete install");
    assert!(assert_invariant(&home, VERSION));
    assert_eq!(listing(&home), [".install.lock", VERSION]);
}

#[test]
fn check_install_reports_the_agents_warning_and_exit_3() {
    let env = TestEnv::new();
    let home = env.path("tentacle");
    let h = path_str(&home);
    // A fresh machine: no Calamari at all, so the Calamari root is named.
    let root = home.join("Calamari");
    let run = env.cmd(&["check-install", "--home", h, "--version", "9.9.9"]).run();
    run.code(3)
        .stdout_has(&format!("Not running latest version of Calamari. Directory does not exist: {}\n", root.display()));
    // With the root there, the missing version directory is named.
    std::fs::create_dir_all(&root).unwrap();
    let missing = root.join("9.9.9");
    env.cmd(&["check-install", "--home", h, "--version", "9.9.9"]).run().code(3).stdout_has(&format!(
        "Not running latest version of Calamari. Directory does not exist: {}",
        missing.display()
    ));
    // `--version` belongs to check-install, in both spellings.
    env.cmd(&["check-install", &format!("--home={h}"), "--version=9.9.9"]).run().code(3);
    env.cmd(&["check-install", "--home", h, "--version", "../etc"])
        .run()
        .code(1)
        .stderr_has("invalid Calamari version");
    env.cmd(&["check-install", "--home", h]).run().code(1).stderr_has("--version");
    // TentacleHome stands in for --home.
    env.cmd(&["check-install", "--version", "9.9.9"]).env("TentacleHome", &home).run().code(3).stdout_has(h);
    env.cmd(&["check-install", "--version", "9.9.9"]).run().code(1).stderr_has("TentacleHome");
    env.cmd(&["install", "--home", h, "--sha256", &"0".repeat(64)]).run().code(1).stderr_has("--bundle");
}

// ---------------------------------------------------------------------------------------
// Bundles.

#[test]
fn bundle_round_trip_installs_a_runnable_calamari_in_a_fresh_home() {
    let env = TestEnv::new();
    let out = env.path("out");
    let run = env.cmd(&["bundle", "--output", path_str(&out)]).run();
    run.success().stdout_has(&format!("Calamari.{VERSION}.tar.gz"));
    let bundle = out.join(format!("Calamari.{VERSION}.tar.gz"));
    let bytes = std::fs::read(&bundle).unwrap();
    let sidecar = std::fs::read_to_string(out.join(format!("Calamari.{VERSION}.tar.gz.sha256"))).unwrap();
    assert_eq!(sidecar, format!("{}  Calamari.{VERSION}.tar.gz\n", sha256(&bytes)), "sha256sum format");
    run.stdout_has(&sha256(&bytes));

    // The manifest inside names the version; the entries are plain regular files.
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            assert!(e.header().entry_type().is_file());
            e.path().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    assert_eq!(names, ["manifest.json", "calamari"]);

    let home = env.path("fresh-home");
    let h = path_str(&home);
    env.cmd(&["install", "--home", h, "--bundle", path_str(&bundle), "--sha256", &sha256(&bytes)])
        .run()
        .success()
        .stdout_has("is installed at");
    env.cmd(&["check-install", "--home", h, "--version", VERSION]).run().success();
    assert!(assert_invariant(&home, VERSION));
    let installed = home.join("Calamari").join(VERSION).join("calamari");
    let out = Command::new(&installed).arg("version").output().unwrap();
    assert!(out.status.success(), "installed binary runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains(VERSION));
    // The installed Calamari sees itself installed.
    let out = Command::new(&installed).args(["check-install", "--home", h, "--version", VERSION]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    env.cmd(&["install", "--home", h, "--bundle", path_str(&bundle)]).run().success().stdout_has("already installed");
}

#[test]
fn first_push_bootstrap_with_plain_tar_then_the_bundle_installs_itself() {
    // The first push to a machine without Calamari: plain `tar` takes the
    // binary out of the bundle into a scratch directory, and that binary installs the
    // bundle properly (verified, staged, Success.txt last).
    let env = TestEnv::new();
    let out = env.path("out");
    env.cmd(&["bundle", "--output", path_str(&out)]).run().success();
    let bundle = out.join(format!("Calamari.{VERSION}.tar.gz"));
    let home = env.path("ssh-home/.octopus/Instance");
    let script = r#"
        set -eu
        scratch=$(mktemp -d "$2/.bootstrap.XXXXXX")
        tar -xzf "$1" -C "$scratch" calamari
        sha=$(cut -d' ' -f1 "$1.sha256")
        "$scratch/calamari" install --home "$3" --bundle "$1" --sha256 "$sha"
        rm -rf "$scratch"
    "#;
    let status = Command::new("sh")
        .args(["-c", script, "sh", path_str(&bundle), path_str(env.root()), path_str(&home)])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(assert_invariant(&home, VERSION));
    env.cmd(&["check-install", "--home", path_str(&home), "--version", VERSION]).run().success();
}

#[test]
fn bad_bundles_are_refused_before_the_home_is_touched() {
    let env = TestEnv::new();
    let files = vec![("calamari".to_string(), b"#!/bin/sh\necho hi\n".to_vec(), true)];
    let good = make_bundle("7.0.0", &files);
    let good_path = env.write("good.tar.gz", &good);

    // A tampered entry: the manifest's hash no longer matches.
    let mut tampered_files = files.clone();
    tampered_files[0].1 = b"#!/bin/sh\necho HI\n".to_vec();
    let tampered = {
        let mut bytes = make_bundle("7.0.0", &tampered_files);
        // Same archive but with the manifest of the original files.
        let original_manifest = {
            let mut a = tar::Archive::new(flate2::read::GzDecoder::new(good.as_slice()));
            let mut e = a.entries().unwrap().next().unwrap().unwrap();
            let mut m = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut m).unwrap();
            m
        };
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (path, data) in
            [("manifest.json", original_manifest.as_slice()), ("calamari", tampered_files[0].1.as_slice())]
        {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o755);
            tar.append_data(&mut header, path, data).unwrap();
        }
        bytes.clear();
        bytes.extend(tar.into_inner().unwrap().finish().unwrap());
        bytes
    };
    let wrong_sha_message = format!("expected {}", "ab".repeat(32));
    let cases: Vec<(&str, Vec<u8>, Option<String>, &str)> = vec![
        ("truncated", good[..good.len() / 2].to_vec(), None, "corrupt Calamari bundle"),
        ("truncated-trailer", good[..good.len() - 4].to_vec(), None, "not a readable gzip-compressed tar"),
        ("not-gzip", b"hello".to_vec(), None, "not a readable gzip-compressed tar"),
        ("tampered", tampered, None, "entry 'calamari' has SHA-256"),
        ("wrong-sha", good.clone(), Some("ab".repeat(32)), &wrong_sha_message),
        ("bad-sha", good.clone(), Some("xyz".into()), "invalid SHA-256 'xyz'"),
    ];
    for (name, bytes, sha, expected) in cases {
        let bundle = env.write(format!("{name}.tar.gz"), &bytes);
        let home = env.path(format!("home-{name}"));
        let mut args = vec!["install", "--home", path_str(&home), "--bundle", path_str(&bundle)];
        if let Some(sha) = &sha {
            args.extend(["--sha256", sha]);
        }
        let run = env.cmd(&args).run();
        run.code(1).stderr_has(expected);
        if sha.is_none() || name == "tampered" {
            run.stderr_has(path_str(&bundle));
        }
        assert!(!home.exists(), "{name}: the home was touched");
    }

    // A wrong .sha256 beside the bundle is checked too.
    env.write("good.tar.gz.sha256", format!("{}  good.tar.gz\n", "0".repeat(64)));
    let home = env.path("home-sidecar");
    env.cmd(&["install", "--home", path_str(&home), "--bundle", path_str(&good_path)])
        .run()
        .code(1)
        .stderr_has("has SHA-256");
    assert!(!home.exists());
    env.write("good.tar.gz.sha256", format!("{}  good.tar.gz\n", sha256(&good)));
    env.cmd(&["install", "--home", path_str(&home), "--bundle", path_str(&good_path)]).run().success();
    assert!(assert_invariant(&home, "7.0.0"));
    let installed = home.join("Calamari/7.0.0/calamari");
    let out = Command::new(&installed).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n", "executable bit kept");
}

// ---------------------------------------------------------------------------------------
// installed-versions and prune.

fn fake_version(env: &TestEnv, version: &str, complete: bool) {
    env.write(format!("tentacle/Calamari/{version}/calamari"), version);
    if complete {
        env.write(format!("tentacle/Calamari/{version}/Success.txt"), "");
    }
}

#[test]
fn installed_versions_lists_complete_installs_newest_first() {
    let env = TestEnv::new();
    let home = env.path("tentacle");
    env.cmd(&["installed-versions", "--home", path_str(&home)]).run().success();
    for v in ["1.2.0", "1.10.0", "2.0.0-beta.1", "2.0.0", "0.9.1", "not-a-version"] {
        fake_version(&env, v, true);
    }
    fake_version(&env, "3.0.0", false);
    env.write("tentacle/Calamari/.tmp-4.0.0-x/Success.txt", "");
    let run = env.cmd(&["installed-versions", "--home", path_str(&home)]).run();
    run.success();
    let listed: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with("##octopus")).collect();
    assert_eq!(listed, ["2.0.0", "2.0.0-beta.1", "1.10.0", "1.2.0", "0.9.1", "not-a-version"]);
}

#[test]
fn prune_keeps_the_newest_and_removes_incomplete_installs_and_leftovers() {
    let env = TestEnv::new();
    let home = env.path("tentacle");
    for v in ["1.0.0", "2.0.0", "3.0.0", "10.0.0"] {
        fake_version(&env, v, true);
    }
    fake_version(&env, "11.0.0", false);
    env.write("tentacle/Calamari/.tmp-12.0.0-dead/calamari", "x");
    env.cmd(&["prune", "--home", path_str(&home), "--keep", "2"]).run().success().stdout_has("Kept 10.0.0, 3.0.0");
    assert_eq!(listing(&home), [".install.lock", "10.0.0", "3.0.0"]);
    env.cmd(&["prune", "--home", path_str(&home), "--keep", "2"]).run().success();
    assert_eq!(listing(&home), [".install.lock", "10.0.0", "3.0.0"], "prune is idempotent");
    env.cmd(&["prune", "--home", path_str(&home)]).run().code(1).stderr_has("--keep");
}

#[test]
fn prune_never_removes_the_running_calamari() {
    let env = TestEnv::new();
    let home = env.path("tentacle");
    env.cmd(&["install", "--home", path_str(&home)]).run().success();
    for v in ["999.0.0", "1000.0.0"] {
        fake_version(&env, v, true);
    }
    fake_version(&env, "0.0.1", true);
    let installed = home.join("Calamari").join(VERSION).join("calamari");
    let out = Command::new(&installed).args(["prune", "--home", path_str(&home), "--keep", "0"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("it is the one running"), "{stdout}");
    assert_eq!(listing(&home), [".install.lock", VERSION]);
    assert!(assert_invariant(&home, VERSION));
}

#[test]
fn install_removes_old_versions_keeping_the_newest_three_and_any_that_a_process_runs() {
    let env = TestEnv::new();
    let home = env.path("tentacle");
    for v in ["0.0.1", "0.0.2", "0.0.3", "0.0.4", "0.0.5"] {
        fake_version(&env, v, true);
    }
    fake_version(&env, "0.0.6", false);
    // 0.0.1 is in use: a process runs a binary of that version.
    let sleeper = home.join("Calamari/0.0.1/sleep");
    std::fs::copy("/bin/sleep", &sleeper).unwrap();
    let mut running = Command::new(&sleeper).arg("60").spawn().unwrap();
    crate::util::wait_until(crate::util::PROMPTLY, "the sleeper to start", || {
        std::fs::read_link(format!("/proc/{}/exe", running.id())).is_ok_and(|exe| exe == sleeper)
    });
    let run = env.cmd(&["install", "--home", path_str(&home)]).run();
    let _ = running.kill();
    let _ = running.wait();
    run.success()
        .stdout_has(&format!("Keeping Calamari 0.0.1: process {} is running it", running.id()))
        .stdout_has("Removed older Calamari versions: 0.0.6, 0.0.2 (keeping 0.1.0 and up to 3 other complete versions)")
        .stdout_has("Removing incomplete install 0.0.6");
    assert_eq!(listing(&home), [".install.lock", "0.0.1", "0.0.3", "0.0.4", "0.0.5", VERSION]);

    // --keep=N, and --noPrune keeps everything.
    fake_version(&env, "0.0.7", true);
    env.cmd(&["install", "--home", path_str(&home), "--force", "--noPrune"])
        .run()
        .success()
        .output_lacks("Removed older");
    assert_eq!(listing(&home), [".install.lock", "0.0.1", "0.0.3", "0.0.4", "0.0.5", "0.0.7", VERSION]);
    env.cmd(&["install", "--home", path_str(&home), "--force", "--keep=1"])
        .run()
        .success()
        .stdout_has("Removed older Calamari versions: 0.0.5, 0.0.4, 0.0.3, 0.0.1 (keeping");
    assert_eq!(listing(&home), [".install.lock", "0.0.7", VERSION]);
    // An install that finds its version complete writes nothing and removes nothing.
    fake_version(&env, "0.0.8", true);
    env.cmd(&["install", "--home", path_str(&home), "--keep=0"]).run().success().stdout_has("already installed");
    assert_eq!(listing(&home), [".install.lock", "0.0.7", "0.0.8", VERSION]);
}

// ---------------------------------------------------------------------------------------
// Faults: kill -9.

/// Runs an install that is expected to be killed at `checkpoint`; asserts it was.
fn install_killed_at(env: &TestEnv, home: &Path, checkpoint: &str, extra: &[&str]) {
    let mut args = vec!["install", "--home", path_str(home)];
    args.extend(extra);
    let out = raw_cmd(env, &args).env("CALAMARI_FAULT_AT", checkpoint).output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "install reached checkpoint {checkpoint}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kill_at_every_checkpoint_never_leaves_success_beside_an_incomplete_install() {
    let env = TestEnv::new();
    let fresh = [
        "locked",
        "staging-created",
        "file-written",
        "file-synced",
        "staged",
        "renamed",
        "marker-written",
        "marker-renamed",
        "installed",
    ];
    for checkpoint in fresh {
        let home = env.path(format!("home-{checkpoint}"));
        install_killed_at(&env, &home, checkpoint, &[]);
        let complete = assert_invariant(&home, VERSION);
        assert_eq!(complete, matches!(checkpoint, "marker-renamed" | "installed"), "{checkpoint}");
        env.cmd(&["install", "--home", path_str(&home)]).run().success();
        assert!(assert_invariant(&home, VERSION), "repaired after {checkpoint}");
        assert_eq!(listing(&home), [".install.lock", VERSION], "no leftovers after {checkpoint}");
    }
    // A forced reinstall over a complete install, killed at each of its steps.
    let home = env.path("home-force");
    env.cmd(&["install", "--home", path_str(&home)]).run().success();
    for checkpoint in ["staged", "old-marker-removed", "old-moved", "renamed", "marker-written", "installed"] {
        install_killed_at(&env, &home, checkpoint, &["--force"]);
        let complete = assert_invariant(&home, VERSION);
        assert_eq!(complete, matches!(checkpoint, "staged" | "installed"), "--force killed at {checkpoint}");
        env.cmd(&["install", "--home", path_str(&home)]).run().success();
        assert!(assert_invariant(&home, VERSION));
        // A complete version makes `install` a no-op; leftovers go with the next real install or prune.
        env.cmd(&["prune", "--home", path_str(&home), "--keep", "1"]).run().success();
        assert_eq!(listing(&home), [".install.lock", VERSION], "no leftovers after --force {checkpoint}");
    }
}

/// Starts `cmd`, SIGKILLs it after `delay` unless it finished; returns true when killed.
fn run_and_kill_after(mut cmd: Command, delay: Duration) -> bool {
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "an unkilled install succeeds: {status:?}");
            return false;
        }
        if start.elapsed() >= delay {
            child.kill().unwrap();
            let status = child.wait().unwrap();
            // It may have finished between the last poll and the kill.
            let killed = status.signal() == Some(libc::SIGKILL);
            assert!(killed || status.success(), "an unkilled install succeeds: {status:?}");
            return killed;
        }
        std::thread::sleep(Duration::from_micros(200).min(delay.saturating_sub(start.elapsed())));
    }
}

#[test]
fn kill_9_at_random_moments_of_many_bundle_installs() {
    const ITERATIONS: usize = 100;
    let env = TestEnv::new();
    let mut rng = Rng::from_clock("kill_9_at_random_moments_of_many_bundle_installs");
    let files: Vec<(String, Vec<u8>, bool)> = (0..16)
        .map(|i| {
            (if i % 4 == 0 { format!("lib/part{i}.bin") } else { format!("part{i}.bin") }, rng.bytes(16 * 1024), i == 0)
        })
        .collect();
    let bundle = env.write("b.tar.gz", make_bundle("5.4.3", &files));
    let home = env.path("tentacle");
    let (mut killed, mut completed) = (0, 0);
    for i in 0..ITERATIONS {
        let force = assert_invariant(&home, "5.4.3");
        let mut args = vec!["install", "--home", path_str(&home), "--bundle", path_str(&bundle)];
        if force {
            args.push("--force");
        }
        let mut cmd = raw_cmd(&env, &args);
        // ~40 checkpoints x 1 ms: an install takes ~40-80 ms, the kill lands anywhere in 0-100 ms.
        cmd.env("CALAMARI_FAULT_DELAY_US", "1000");
        if run_and_kill_after(cmd, Duration::from_micros(rng.below(100_000))) {
            killed += 1;
        } else {
            completed += 1;
        }
        assert_invariant(&home, "5.4.3");
        if i % 10 == 9 {
            // A later install repairs whatever was left.
            env.cmd(&["install", "--home", path_str(&home), "--bundle", path_str(&bundle)]).run().success();
            assert!(assert_invariant(&home, "5.4.3"), "repaired after iteration {i}");
            env.cmd(&["prune", "--home", path_str(&home), "--keep", "1"]).run().success();
            assert_eq!(listing(&home), [".install.lock", "5.4.3"]);
        }
    }
    println!("{killed} installs killed, {completed} completed");
    assert!(killed > 0, "the kills landed inside installs");
}

#[test]
fn kill_9_at_random_moments_of_installs_of_the_running_build() {
    const ITERATIONS: usize = 20;
    let env = TestEnv::new();
    let mut rng = Rng::from_clock("kill_9_at_random_moments_of_installs_of_the_running_build");
    // Calibrate: how long does one install take here?
    let start = Instant::now();
    env.cmd(&["install", "--home", path_str(&env.path("calibrate"))]).run().success();
    let span = start.elapsed().as_micros() as u64 * 3 / 2;
    let home = env.path("tentacle");
    let mut killed = 0;
    for _ in 0..ITERATIONS {
        let mut args = vec!["install", "--home", path_str(&home)];
        if assert_invariant(&home, VERSION) {
            args.push("--force");
        }
        if run_and_kill_after(raw_cmd(&env, &args), Duration::from_micros(rng.below(span))) {
            killed += 1;
        }
        assert_invariant(&home, VERSION);
    }
    println!("{killed} of {ITERATIONS} installs killed");
    env.cmd(&["install", "--home", path_str(&home)]).run().success();
    assert!(assert_invariant(&home, VERSION));
    env.cmd(&["prune", "--home", path_str(&home), "--keep", "1"]).run().success();
    assert_eq!(listing(&home), [".install.lock", VERSION]);
}

#[test]
fn concurrent_installs_all_succeed_with_one_complete_install_per_version() {
    let env = TestEnv::new();
    let files: Vec<(String, Vec<u8>, bool)> =
        (0..8).map(|i| (format!("f{i}"), Rng(i + 1).bytes(8 * 1024), false)).collect();
    let bundle = env.write("b.tar.gz", make_bundle("6.0.0", &files));
    for round in 0..5 {
        let home = env.path(format!("home-{round}"));
        let children: Vec<_> = (0..4)
            .map(|i| {
                let args: Vec<&str> = if i % 2 == 0 {
                    vec!["install", "--home", path_str(&home), "--bundle", path_str(&bundle)]
                } else {
                    vec!["install", "--home", path_str(&home)]
                };
                let mut cmd = raw_cmd(&env, &args);
                cmd.env("CALAMARI_FAULT_DELAY_US", "300");
                cmd.spawn().unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        assert!(assert_invariant(&home, "6.0.0"));
        assert!(assert_invariant(&home, VERSION));
        let mut expected = vec![".install.lock", "6.0.0", VERSION];
        expected.sort();
        assert_eq!(listing(&home), expected);
    }
}

#[test]
fn an_install_waiting_on_the_lock_takes_over_when_the_holder_is_killed() {
    // flock dies with its holder, so no stale lock. The holder stalls at its
    // checkpoints while holding the lock; the waiter says it waits; the holder is killed.
    use std::io::BufRead as _;
    let env = TestEnv::new();
    let home = env.path("tentacle");
    /// Kills the holder even when an assertion fails first.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut holder = KillOnDrop(
        raw_cmd(&env, &["install", "--home", path_str(&home)])
            .env("CALAMARI_FAULT_DELAY_US", "60000000")
            .spawn()
            .unwrap(),
    );
    // Wait until the holder has the lock: our own non-blocking flock on it fails.
    let lock_path = home.join("Calamari/.install.lock");
    crate::util::wait_until(Duration::from_secs(60), "the holder to take the install lock", || {
        std::fs::File::open(&lock_path).is_ok_and(|file| {
            use std::os::fd::AsRawFd as _;
            // SAFETY: flock on a descriptor we own; closing it drops any lock we got.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
        })
    });
    let mut waiter = env.cmd(&["install", "--home", path_str(&home)]).cmd;
    let mut waiter = waiter.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(waiter.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines.next().expect("the waiter reports that it waits").unwrap();
        seen.push(line.clone());
        if line.contains("Waiting for another Calamari install to finish") {
            break;
        }
    }
    holder.0.kill().unwrap();
    assert_eq!(holder.0.wait().unwrap().signal(), Some(libc::SIGKILL));
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = waiter.wait().unwrap();
    assert!(status.success(), "{seen:?} {rest:?}");
    assert!(rest.iter().any(|l| l.contains("is installed at")), "{rest:?}");
    assert!(assert_invariant(&home, VERSION));
    assert_eq!(listing(&home), [".install.lock", VERSION]);
}

// ---------------------------------------------------------------------------------------
// Faults: full disk and read-only home, each in a private mount namespace.

/// Runs `script` with `sh -c` inside `unshare -m`; `None` (after `util::skip`) when
/// mount namespaces or mounts are not permitted here.
fn in_mount_namespace(env: &TestEnv, script: &str, args: &[&str]) -> Option<(String, String)> {
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs \"$1\"", "sh", path_str(env.root())])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            crate::util::skip(&format!(
                "unshare -m with mount not permitted: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        Err(e) => {
            crate::util::skip(&format!("unshare not available: {e}"));
            return None;
        }
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", script, "sh"]).args(args).current_dir(env.root());
    cmd.env("HOME", env.path("home")).env_remove("TentacleHome").env_remove("CALAMARI_FAULT_AT");
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "namespace script failed\n{stdout}\n{stderr}");
    Some((stdout, stderr))
}

#[test]
fn a_full_disk_fails_naming_the_path_and_leaves_the_old_version_complete() {
    let env = TestEnv::new();
    let home = env.path("tentacle");
    std::fs::create_dir_all(&home).unwrap();
    let small: Vec<(String, Vec<u8>, bool)> = vec![("calamari".into(), b"#!/bin/sh\n".to_vec(), true)];
    let bundle = env.write("small.tar.gz", make_bundle("0.0.1", &small));
    let script = r#"
        set -u
        mount -t tmpfs -o size=1m tmpfs "$2"
        "$1" install --home "$2" --bundle "$3"; echo "small=$?"
        "$1" install --home "$2"; echo "big=$?"
        "$1" check-install --home "$2" --version 0.0.1 >/dev/null; echo "old=$?"
        "$1" check-install --home "$2" --version "$4" >/dev/null; echo "new=$?"
        echo "listing: $(ls -A "$2/Calamari" | tr '\n' ' ')"
    "#;
    let Some((stdout, stderr)) =
        in_mount_namespace(&env, script, &[path_str(&bin()), path_str(&home), path_str(&bundle), VERSION])
    else {
        return;
    };
    let context = format!("{stdout}\n--- stderr ---\n{stderr}");
    assert!(stdout.contains("small=0\n"), "{context}");
    assert!(stdout.contains("big=100\n"), "{context}");
    assert!(stdout.contains("old=0\n") && stdout.contains("new=3\n"), "{context}");
    assert!(stderr.contains("No space left on device"), "{context}");
    assert!(stderr.contains(path_str(&home.join("Calamari"))), "the error names the path: {context}");
    let listing = stdout.lines().find_map(|l| l.strip_prefix("listing: ")).unwrap();
    let mut names: Vec<&str> = listing.split_whitespace().collect();
    names.sort();
    assert_eq!(names, [".install.lock", "0.0.1"], "staging removed, nothing half-written: {context}");
    assert!(!home.join("Calamari").exists(), "the tmpfs lived only in the namespace");
}

#[test]
fn a_full_ext4_disk_and_exhausted_inodes_fail_cleanly() {
    // tmpfs has no reserved blocks or delayed allocation: repeat on a real ext4 (a loop
    // file, filled so ~1 MiB stays free), and run out of inodes on a tmpfs.
    let env = TestEnv::new();
    let ext4 = env.path("ext4-home");
    let inodes = env.path("inode-home");
    std::fs::create_dir_all(&ext4).unwrap();
    std::fs::create_dir_all(&inodes).unwrap();
    let many: Vec<(String, Vec<u8>, bool)> = (0..40).map(|i| (format!("f{i}"), vec![b'x'; 100], false)).collect();
    let bundle = env.write("many.tar.gz", make_bundle("0.0.2", &many));
    let script = r#"
        set -u
        truncate -s 8M "$5/img" && mkfs.ext4 -q -F "$5/img" && mount -o loop "$5/img" "$2" || { echo SETUP-FAILED; exit 0; }
        fallocate -l 5M "$2/filler" || { echo SETUP-FAILED; exit 0; }
        "$1" install --home "$2"; echo "ext4=$?"
        echo "ext4-listing: $(ls -A "$2/Calamari" | tr '
' ' ')"
        mount -t tmpfs -o size=4m,nr_inodes=24 tmpfs "$3"
        "$1" install --home "$3" --bundle "$4"; echo "inodes=$?"
        echo "inode-listing: $(ls -A "$3/Calamari" | tr '
' ' ')"
    "#;
    let calamari = bin();
    let args = [path_str(&calamari), path_str(&ext4), path_str(&inodes), path_str(&bundle), path_str(env.root())];
    let Some((stdout, stderr)) = in_mount_namespace(&env, script, &args) else {
        return;
    };
    if stdout.contains("SETUP-FAILED") {
        crate::util::skip(&format!("no loop-mounted ext4 here: {}", stderr.trim()));
        return;
    }
    let context = format!("{stdout}\n--- stderr ---\n{stderr}");
    assert!(stdout.contains("ext4=100\n") && stdout.contains("inodes=100\n"), "{context}");
    assert_eq!(stderr.matches("No space left on device").count(), 2, "{context}");
    assert!(stderr.contains(path_str(&ext4.join("Calamari"))), "{context}");
    assert!(stderr.contains(path_str(&inodes.join("Calamari"))), "{context}");
    for prefix in ["ext4-listing: ", "inode-listing: "] {
        let listing = stdout.lines().find_map(|l| l.strip_prefix(prefix)).unwrap();
        assert_eq!(listing.trim(), ".install.lock", "staging removed: {context}");
    }
}

#[test]
fn a_read_only_home_fails_clearly_and_a_complete_one_still_passes() {
    let env = TestEnv::new();
    let empty = env.path("empty-home");
    let installed = env.path("installed-home");
    std::fs::create_dir_all(&empty).unwrap();
    env.cmd(&["install", "--home", path_str(&installed)]).run().success();
    let script = r#"
        set -u
        for d in "$2" "$3"; do mount --bind "$d" "$d" && mount -o remount,bind,ro "$d"; done
        "$1" install --home "$2"; echo "empty=$?"
        "$1" install --home "$3"; echo "installed=$?"
        "$1" prune --home "$3" --keep 1; echo "prune=$?"
        "$1" check-install --home "$3" --version "$4"; echo "check=$?"
    "#;
    let Some((stdout, stderr)) =
        in_mount_namespace(&env, script, &[path_str(&bin()), path_str(&empty), path_str(&installed), VERSION])
    else {
        return;
    };
    let context = format!("{stdout}\n--- stderr ---\n{stderr}");
    assert!(stdout.contains("empty=100\n"), "{context}");
    assert!(stderr.contains("Read-only file system"), "{context}");
    assert!(stderr.contains(&format!("'{}'", empty.join("Calamari").display())), "names the path: {context}");
    assert!(stdout.contains("installed=0\n") && stdout.contains("already installed"), "{context}");
    assert!(stdout.contains("prune=100\n"), "prune needs to write its lock: {context}");
    assert!(stdout.contains("check=0\n"), "{context}");
    assert!(std::fs::read_dir(&empty).unwrap().next().is_none(), "nothing written");
    assert!(assert_invariant(&installed, VERSION));
}

#[test]
fn strace_shows_fsync_before_rename_and_success_written_last() {
    // A cheap power-loss proxy: the real syscalls, in order.
    let env = TestEnv::new();
    let home = env.path("tentacle");
    let trace = env.path("trace");
    let mut cmd = Command::new("strace");
    cmd.args(["-e", "trace=openat,fsync,fdatasync,rename,renameat,renameat2", "-o", path_str(&trace)])
        .arg(bin())
        .args(["install", "--home", path_str(&home)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match cmd.output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            crate::util::skip(&format!("strace could not trace here: {}", String::from_utf8_lossy(&out.stderr).trim()));
            return;
        }
        Err(e) => {
            crate::util::skip(&format!("strace not available: {e}"));
            return;
        }
    }
    let root = format!("{}/", path_str(&home.join("Calamari")));
    let normalise = |path: &str| -> Option<String> {
        let rel = format!("{path}/").strip_prefix(&root)?.trim_end_matches('/').to_string();
        Some(
            rel.split('/')
                .map(|c| {
                    if c.starts_with(".tmp-") {
                        ".tmp-*"
                    } else if c.starts_with(".Success.txt.") {
                        ".Success.txt.*"
                    } else {
                        c
                    }
                })
                .collect::<Vec<_>>()
                .join("/"),
        )
    };
    let quoted = |text: &str| -> Vec<String> { text.split('"').skip(1).step_by(2).map(str::to_string).collect() };
    let mut fds = std::collections::HashMap::new();
    let mut events = Vec::new();
    for line in std::fs::read_to_string(&trace).unwrap().lines() {
        if line.starts_with("openat(") {
            let (call, result) = line.rsplit_once(" = ").unwrap();
            if let (Some(path), Ok(fd)) = (quoted(call).first().cloned(), result.trim().parse::<i32>()) {
                fds.insert(fd, path);
            }
        } else if let Some(rest) = line.strip_prefix("fsync(").or_else(|| line.strip_prefix("fdatasync(")) {
            let fd: i32 = rest.split(')').next().unwrap().parse().unwrap();
            if let Some(path) = fds.get(&fd).and_then(|p| normalise(p)) {
                events.push(format!("fsync {path}"));
            }
        } else if line.starts_with("rename") {
            let paths = quoted(line);
            if let [from, to] = &paths[..] {
                events.push(format!("rename {} -> {}", normalise(from).unwrap(), normalise(to).unwrap()));
            }
        }
    }
    let v = VERSION;
    let expected = [
        "fsync .tmp-*/calamari".to_string(),
        "fsync .tmp-*/manifest.json".to_string(),
        "fsync .tmp-*".to_string(),
        format!("rename .tmp-* -> {v}"),
        "fsync ".to_string(),
        format!("fsync {v}/.Success.txt.*"),
        format!("rename {v}/.Success.txt.* -> {v}/Success.txt"),
        format!("fsync {v}"),
    ];
    assert_eq!(events, expected);
}

#[test]
fn the_invariant_check_catches_a_damaged_complete_install() {
    // The fault tests rely on `assert_invariant`; show it fails on a bad state.
    let env = TestEnv::new();
    let home = env.path("tentacle");
    env.cmd(&["install", "--home", path_str(&home)]).run().success();
    let dir = home.join("Calamari").join(VERSION);
    std::fs::write(dir.join("calamari"), b"truncated").unwrap();
    assert!(std::panic::catch_unwind(|| assert_invariant(&home, VERSION)).is_err(), "damaged file");
    std::fs::remove_file(dir.join("calamari")).unwrap();
    assert!(std::panic::catch_unwind(|| assert_invariant(&home, VERSION)).is_err(), "missing file");
    std::fs::remove_file(dir.join("Success.txt")).unwrap();
    assert!(!assert_invariant(&home, VERSION), "incomplete is allowed");
}

#[test]
fn fault_injection_is_off_without_the_variable() {
    // The checkpoints are inert in production: a plain install passes them all.
    let env = TestEnv::new();
    let home = env.path("tentacle");
    let out = raw_cmd(&env, &["install", "--home", path_str(&home)]).env("CALAMARI_FAULT_AT", "").output().unwrap();
    assert!(out.status.success());
    assert!(assert_invariant(&home, VERSION));
}
