//! Integration tests: `apply-delta`, `delta signature` and `delta create` through the real
//! binary: every Octodiff conformance case in `../shared/conformance/octodiff` (applied
//! deltas, our signatures and deltas byte for byte, bad files refused promptly with no
//! output left), the reference's messages and exit codes, and round trips on real packages.

use std::io::{Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha1::Digest as _;

use crate::util::{self, Run, TestEnv};

fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(bytes))
}

fn conformance() -> Option<PathBuf> {
    util::shared_dir("Octodiff conformance vectors").map(|d| d.join("conformance/octodiff"))
}

/// The decoded attributes of the `deltaVerification` messages in stdout.
fn delta_verification(run: &Run) -> Vec<Vec<(String, String)>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for line in run.stdout.lines() {
        let Some(rest) = line.trim().strip_prefix("##octopus[deltaVerification ") else { continue };
        let rest = rest.strip_suffix(']').expect("message ends with ]");
        let mut attrs = Vec::new();
        for part in rest.split(' ') {
            let (name, value) = part.split_once('=').expect("name=value");
            let value = value.trim_matches('"');
            attrs.push((name.to_string(), String::from_utf8(b64.decode(value).expect("base64")).expect("utf-8")));
        }
        out.push(attrs);
    }
    out
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The one `deltaVerification error`'s text.
#[track_caller]
fn reported_error(run: &Run) -> String {
    let messages = delta_verification(run);
    assert_eq!(messages.len(), 1, "one deltaVerification message\n{}\n{}", run.stdout, run.stderr);
    attr(&messages[0], "error").unwrap_or_else(|| panic!("an error attribute: {:?}", messages[0])).to_string()
}

/// The applied package: (remotePath, hash, size) of the one successful message.
#[track_caller]
fn applied(run: &Run) -> (PathBuf, String, u64) {
    let messages = delta_verification(run);
    assert_eq!(messages.len(), 1, "one deltaVerification message\n{}\n{}", run.stdout, run.stderr);
    let m = &messages[0];
    assert!(attr(m, "error").is_none(), "no error: {m:?}");
    (
        PathBuf::from(attr(m, "remotePath").expect("remotePath")),
        attr(m, "hash").expect("hash").to_string(),
        attr(m, "size").expect("size").parse().expect("size is a number"),
    )
}

fn cache(env: &TestEnv) -> PathBuf {
    env.path("tentacle/Files")
}

/// Everything in the package cache (none of it should be `.partial`).
fn cache_files(env: &TestEnv) -> Vec<PathBuf> {
    match std::fs::read_dir(cache(env)) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn apply_args(basis: &Path, hash: &str, delta: &Path, new_name: &str) -> Vec<String> {
    vec![
        "apply-delta".into(),
        format!("--basisFileName={}", basis.display()),
        format!("--fileHash={hash}"),
        format!("--deltaFileName={}", delta.display()),
        format!("--newFileName={new_name}"),
    ]
}

/// Runs `calamari <args>` with TentacleHome set, failing if it takes longer than 60 s
/// (a reader that loops on a bad delta must not hang the suite).
fn run_bounded(env: &TestEnv, args: &[String]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = env.cmd(&args).env("TentacleHome", env.path("tentacle")).cmd;
    command.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let mut child = command.spawn().expect("spawn calamari");
    let started = Instant::now();
    let status = util::wait_for(Duration::from_secs(60), "calamari to finish", || child.try_wait().unwrap());
    let _ = status;
    assert!(started.elapsed() < Duration::from_secs(60));
    let out = child.wait_with_output().expect("collect output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn apply(env: &TestEnv, basis: &Path, delta: &Path, new_name: &str) -> Run {
    let hash = sha1_hex(&std::fs::read(basis).unwrap());
    run_bounded(env, &apply_args(basis, &hash, delta, new_name))
}

/// `sha256ctr`: SHA-256(seed || u64 LE i) for i = 0, 1, ... cut to `length`, then the edits.
fn generate(spec: &serde_json::Value) -> Vec<u8> {
    assert_eq!(spec["generate"], "sha256ctr", "generator {spec}");
    let seed = spec["seed"].as_str().unwrap();
    let length = spec["length"].as_u64().unwrap() as usize;
    let mut data = Vec::with_capacity(length + 32);
    let mut i = 0u64;
    while data.len() < length {
        let mut h = sha2::Sha256::new();
        h.update(seed.as_bytes());
        h.update(i.to_le_bytes());
        data.extend_from_slice(&h.finalize());
        i += 1;
    }
    data.truncate(length);
    for edit in spec["edits"].as_array().into_iter().flatten() {
        let offset = edit["offset"].as_u64().unwrap() as usize;
        let remove = edit["remove"].as_u64().unwrap() as usize;
        let insert = hex::decode(edit["insert"].as_str().unwrap_or("")).unwrap();
        data.splice(offset..offset + remove, insert);
    }
    data
}

/// A case's input: a path under the vectors, or a generator spec written to the sandbox.
fn input(dir: &Path, env: &TestEnv, value: &serde_json::Value, name: &str) -> PathBuf {
    match value {
        serde_json::Value::String(rel) => dir.join(rel),
        spec => env.write(name, generate(spec)),
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn adler32_case(dir: &Path, case: &serde_json::Value) -> Result<(), String> {
    use calamari::internals::RollingChecksum;
    let algorithm = RollingChecksum::from_name(case["algorithm"].as_str().unwrap()).ok_or("unknown algorithm")?;
    let data = std::fs::read(dir.join(case["input"].as_str().unwrap())).unwrap();
    for c in case["calculate"].as_array().into_iter().flatten() {
        let (offset, count) = (c["offset"].as_u64().unwrap() as usize, c["count"].as_u64().unwrap() as usize);
        let got = algorithm.calculate(&data[offset..offset + count]);
        ensure!(got == c["expected"].as_u64().unwrap() as u32, "calculate {c}: got {got}");
    }
    for r in case["rotate"].as_array().into_iter().flatten() {
        let n = |k: &str| r[k].as_u64().unwrap();
        let got = algorithm.rotate(n("checksum") as u32, n("remove") as u8, n("add") as u8, n("chunkSize") as u32);
        ensure!(got == n("expected") as u32, "rotate {r}: got {got}");
    }
    Ok(())
}

fn signature_case(dir: &Path, env: &TestEnv, case: &serde_json::Value) -> Result<(), String> {
    let basis = dir.join(case["basis"].as_str().unwrap());
    let expected = dir.join(case["signature"].as_str().unwrap());
    let chunk_size = case["chunkSize"].as_u64().unwrap();
    let basis_bytes = std::fs::read(&basis).unwrap();
    let signature = calamari::internals::read_signature(&expected).map_err(|e| format!("reading: {e}"))?;
    ensure!(signature.algorithm.name() == case["algorithm"], "algorithm {}", signature.algorithm.name());
    if let Some(chunks) = case["chunks"].as_array() {
        let got: Vec<serde_json::Value> = signature
            .chunks
            .iter()
            .map(|c| serde_json::json!([c.start, c.length, c.checksum, hex::encode(c.hash)]))
            .collect();
        ensure!(&got == chunks, "chunks read {got:?}");
    }
    // Every chunk is that part of the basis: its length, checksum and SHA-1.
    let mut start = 0usize;
    for c in &signature.chunks {
        let part = &basis_bytes[start..start + usize::from(c.length)];
        ensure!(c.start as usize == start && c.checksum == signature.algorithm.calculate(part), "chunk {c:?}");
        ensure!(hex::encode(c.hash) == sha1_hex(part), "chunk {c:?} hash");
        start += usize::from(c.length);
    }
    ensure!(start == basis_bytes.len(), "chunks cover {start} of {} bytes", basis_bytes.len());
    if case["algorithm"] == "Adler32" {
        let ours = env.path("ours.octosig");
        let run = env
            .cmd(&["delta", "signature", &basis.display().to_string(), &ours.display().to_string()])
            .arg(format!("--chunkSize={chunk_size}"))
            .run();
        ensure!(run.code == 0, "delta signature failed: {}{}", run.stdout, run.stderr);
        ensure!(std::fs::read(&ours).unwrap() == std::fs::read(&expected).unwrap(), "our signature differs");
    }
    Ok(())
}

fn delta_case(dir: &Path, env: &TestEnv, case: &serde_json::Value) -> Result<(), String> {
    let basis = input(dir, env, &case["basis"], "basis.bin");
    let new = input(dir, env, &case["new"], "new.bin");
    let expected_delta = dir.join(case["delta"].as_str().unwrap());
    let new_bytes = std::fs::read(&new).unwrap();
    let new_sha1 = case["newSha1"].as_str().unwrap();
    ensure!(sha1_hex(&new_bytes) == new_sha1, "the new file's SHA1");
    if let Some(basis_sha1) = case["basisSha1"].as_str() {
        ensure!(sha1_hex(&std::fs::read(&basis).unwrap()) == basis_sha1, "the basis's SHA1");
    }
    // Applying the given delta gives the new file.
    let run = apply(env, &basis, &expected_delta, "Conformance.1.0.0.zip");
    ensure!(run.code == 0, "apply-delta failed: {}{}", run.stdout, run.stderr);
    let (path, hash, size) = applied(&run);
    ensure!(path.starts_with(cache(env)), "written to {}", path.display());
    ensure!(std::fs::read(&path).unwrap() == new_bytes, "the applied result differs from the new file");
    ensure!(hash == new_sha1 && size == new_bytes.len() as u64, "reported {hash} {size}");
    std::fs::remove_file(&path).unwrap();
    if let Some(commands) = case["commands"].as_array() {
        let basis_len = std::fs::metadata(&basis).unwrap().len();
        let got = calamari::internals::explain_delta(&expected_delta, basis_len).map_err(|e| e.to_string())?;
        let want: Vec<&str> = commands.iter().map(|c| c.as_str().unwrap()).collect();
        ensure!(got == want, "commands {got:?}");
    }
    // Our signature (or the case's) and our delta: the same bytes when the builder follows
    // Octodiff's rules, and in any case a delta that applies.
    let signature = match case["signature"].as_str() {
        Some(rel) => dir.join(rel),
        None => {
            let sig = env.path("basis.octosig");
            let run = env
                .cmd(&["delta", "signature", &basis.display().to_string(), &sig.display().to_string()])
                .arg(format!("--chunkSize={}", case["chunkSize"]))
                .run();
            ensure!(run.code == 0, "delta signature failed: {}{}", run.stdout, run.stderr);
            sig
        }
    };
    let ours = env.path("ours.octodelta");
    let run = env.cmd(&["delta", "create"]).arg(&signature).arg(&new).arg(&ours).run();
    ensure!(run.code == 0, "delta create failed: {}{}", run.stdout, run.stderr);
    if case["builderIdentical"] == true {
        ensure!(std::fs::read(&ours).unwrap() == std::fs::read(&expected_delta).unwrap(), "our delta differs");
    }
    let run = apply(env, &basis, &ours, "Conformance.1.0.1.zip");
    let (path, _, _) = applied(&run);
    ensure!(std::fs::read(&path).unwrap() == new_bytes, "our delta does not round-trip");
    std::fs::remove_file(&path).unwrap();
    Ok(())
}

fn delta_writer_case(dir: &Path, case: &serde_json::Value) -> Result<(), String> {
    use calamari::internals::DeltaWriter;
    let mut writer = match case["header"].as_str() {
        Some(h) => {
            let hash: [u8; 20] = hex::decode(h).unwrap().try_into().map_err(|_| "a 20-byte header hash")?;
            DeltaWriter::new(Vec::new(), &hash).unwrap()
        }
        None => DeltaWriter::commands_only(Vec::new()),
    };
    let mut source = case["sourceData"].as_str().map(|rel| std::fs::File::open(dir.join(rel)).unwrap());
    let mut buf = vec![0u8; 64];
    for op in case["ops"].as_array().unwrap() {
        let (a, b) = (op[1].as_u64().unwrap(), op[2].as_u64().unwrap());
        match op[0].as_str().unwrap() {
            "copy" => writer.copy(a, b).unwrap(),
            "data" => {
                let file = source.as_mut().ok_or("data without sourceData")?;
                file.seek(SeekFrom::Start(0)).unwrap();
                writer.data_from(file, a, b, &mut buf).unwrap();
            }
            other => return Err(format!("op {other}")),
        }
    }
    let got = hex::encode(writer.finish().unwrap());
    ensure!(got == case["expected"].as_str().unwrap(), "wrote {got}");
    Ok(())
}

fn bad_delta_case(dir: &Path, env: &TestEnv, case: &serde_json::Value) -> Result<(), String> {
    let basis = dir.join(case["basis"].as_str().unwrap());
    let delta = dir.join(case["delta"].as_str().unwrap());
    let started = Instant::now();
    let run = apply(env, &basis, &delta, "Conformance.1.0.0.zip");
    ensure!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    ensure!(run.code == 0, "exit code {} (the reference reports and exits 0)", run.code);
    let error = reported_error(&run);
    ensure!(
        error.contains("The delta file") || error.starts_with("Verification of the patched file failed"),
        "error {error:?}"
    );
    ensure!(cache_files(env).is_empty(), "left {:?}", cache_files(env));
    Ok(())
}

fn bad_signature_case(dir: &Path, env: &TestEnv, case: &serde_json::Value) -> Result<(), String> {
    let signature = dir.join(case["signature"].as_str().unwrap());
    let out = env.path("refused.octodelta");
    let run = env.cmd(&["delta", "create"]).arg(&signature).arg(dir.join("files/cert.bin")).arg(&out).run();
    ensure!(run.code == 1, "exit code {}: {}{}", run.code, run.stdout, run.stderr);
    ensure!(run.stderr.contains("The signature file"), "error {:?}", run.stderr);
    ensure!(!out.exists() && !env.path("refused.octodelta.partial").exists(), "output left behind");
    Ok(())
}

#[test]
fn every_octodiff_conformance_case_passes() {
    let Some(dir) = conformance() else { return };
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let list = cases["cases"].as_array().unwrap();
    assert_eq!(list.len() as u64, cases["count"].as_u64().unwrap());
    let mut failures = Vec::new();
    for case in list {
        let env = TestEnv::new();
        let result = match case["kind"].as_str().unwrap() {
            "adler32" => adler32_case(&dir, case),
            "signature" => signature_case(&dir, &env, case),
            "delta" => delta_case(&dir, &env, case),
            "delta-writer" => delta_writer_case(&dir, case),
            "bad-delta" => bad_delta_case(&dir, &env, case),
            "bad-signature" => bad_signature_case(&dir, &env, case),
            other => Err(format!("unknown kind {other}")),
        };
        if let Err(e) = result {
            failures.push(format!("{}: {e}", case["id"].as_str().unwrap()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), list.len(), failures.join("\n"));
}

/// A delta between two versions of a real package: the tar fixture with a region changed
/// and data appended.
fn package_pair(env: &TestEnv) -> (PathBuf, PathBuf) {
    let basis = util::fixtures().join("packages/Sample.App.2.1.0-beta.1.tar");
    let mut bytes = std::fs::read(&basis).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 100] {
        *b ^= 0x5a;
    }
    bytes.extend_from_slice(&[7u8; 3000]);
    (basis, env.write("Sample.App.2.2.0.tar", bytes))
}

fn signature_and_delta(env: &TestEnv, basis: &Path, new: &Path) -> PathBuf {
    let (sig, delta) = (env.path("basis.octosig"), env.path("new.octodelta"));
    env.cmd(&["delta", "signature"]).arg(basis).arg(&sig).run().success().stdout_has("Wrote the signature");
    env.cmd(&["delta", "create", "--progress"])
        .arg(&sig)
        .arg(new)
        .arg(&delta)
        .run()
        .success()
        .stdout_has("Building delta: 100%")
        .stdout_has("copied from the basis");
    delta
}

#[test]
fn signature_create_and_apply_round_trip_on_real_packages() {
    let env = TestEnv::new();
    let (basis, new) = package_pair(&env);
    let delta = signature_and_delta(&env, &basis, &new);
    let new_bytes = std::fs::read(&new).unwrap();
    assert!(std::fs::metadata(&delta).unwrap().len() < new_bytes.len() as u64 / 2, "the delta is small");
    let hash = sha1_hex(&std::fs::read(&basis).unwrap());
    let run = run_bounded(&env, &apply_args(&basis, &hash, &delta, "Sample.App.2.2.0.tar"));
    run.success().stdout_has(&format!("Applying delta to {} with hash {hash} and storing as ", basis.display()));
    let (path, reported_hash, size) = applied(&run);
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("Sample.App@S2.2.0@") && name.ends_with(".tar"), "{name}");
    assert_eq!(path.parent().unwrap(), cache(&env));
    assert_eq!(std::fs::read(&path).unwrap(), new_bytes);
    assert_eq!((reported_hash, size), (sha1_hex(&new_bytes), new_bytes.len() as u64));
    assert_eq!(cache_files(&env), vec![path]);

    // Between unrelated packages of every format the delta is mostly data, and still right.
    let packages = util::fixtures().join("packages");
    for (from, to) in [
        ("Sample.App.2.1.0-beta.1.zip", "Sample.App.2.1.0-beta.1.tar.gz"),
        ("Sample.App.2.1.0-beta.1.nupkg", "Sample.App.2.1.0-beta.1.jar"),
    ] {
        let env = TestEnv::new();
        let (basis, new) = (packages.join(from), packages.join(to));
        let delta = signature_and_delta(&env, &basis, &new);
        let (path, _, _) = applied(apply(&env, &basis, &delta, to).success());
        assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&new).unwrap(), "{from} -> {to}");
    }
}

#[test]
fn missing_options_are_reported_with_the_reference_messages() {
    let env = TestEnv::new();
    let basis = env.write("Acme.Web.1.0.0.zip", b"basis");
    let delta = env.write("Acme.Web.1.0.0_to_1.0.1.octodelta", b"delta");
    let all = [
        (
            "--basisFileName",
            basis.display().to_string(),
            "No basis file was specified. Please pass --basisFileName MyPackage.1.0.0.0.nupkg",
        ),
        ("--fileHash", "Hash".to_string(), "No file hash was specified. Please pass --fileHash MyFileHash"),
        (
            "--deltaFileName",
            delta.display().to_string(),
            "No delta file was specified. Please pass --deltaFileName MyPackage.1.0.0.0_to_1.0.0.1.octodelta",
        ),
        (
            "--newFileName",
            "Acme.Web.1.0.1.zip".to_string(),
            "No new file name was specified. Please pass --newFileName MyPackage.1.0.0.1.nupkg",
        ),
    ];
    for (missing, _, message) in &all {
        for blank in [false, true] {
            let mut args = vec!["apply-delta".to_string()];
            for (option, value, _) in &all {
                if option == missing {
                    if blank {
                        args.push(format!("{option}= "));
                    }
                } else {
                    args.push(format!("{option}={value}"));
                }
            }
            let run = run_bounded(&env, &args);
            run.code(0);
            assert_eq!(reported_error(&run), *message);
            assert!(cache_files(&env).is_empty());
        }
    }
}

#[test]
fn missing_files_and_a_basis_hash_mismatch_are_reported() {
    let env = TestEnv::new();
    let basis = env.write("Acme.Web.1.0.0.zip", b"the basis package");
    let delta = env.write("Acme.Web.1.0.0_to_1.0.1.octodelta", b"This is a delta file!\n");
    let missing = env.path("Files/MyPackage.1.0.0.nupkg");
    let run = run_bounded(&env, &apply_args(&missing, "Hash", &delta, "New"));
    run.code(0);
    assert_eq!(reported_error(&run), format!("Could not find basis file: {}", missing.display()));

    let missing = env.path("Files/Acme.Web.1.0.0_to_1.0.1.octodelta");
    let run = run_bounded(&env, &apply_args(&basis, "Hash", &missing, "New"));
    assert_eq!(reported_error(&run), format!("Could not find delta file: {}", missing.display()));

    // Relative names are found from the working directory.
    let other = "2e9407c9eae20ffa94bf050283f9b4292a48504c";
    let run = run_bounded(
        &env,
        &apply_args(
            Path::new("Acme.Web.1.0.0.zip"),
            other,
            Path::new("Acme.Web.1.0.0_to_1.0.1.octodelta"),
            "Acme.Web.1.0.1.zip",
        ),
    );
    run.code(0);
    let actual = sha1_hex(b"the basis package");
    assert_eq!(
        reported_error(&run),
        format!("Basis file hash `{actual}` does not match the file hash specified `{other}`")
    );
    assert!(cache_files(&env).is_empty());

    // Not a delta at all: reported as corrupt, after the line that says what is applied.
    let run = apply(&env, &basis, &delta, "Acme.Web.1.0.1.zip");
    run.code(0).stdout_has(&format!(
        "Applying delta to {} with hash {actual} and storing as {}",
        basis.display(),
        cache(&env).display()
    ));
    let error = reported_error(&run);
    assert!(error.contains("is corrupt") && error.contains("OCTODELTA"), "{error}");
    assert!(cache_files(&env).is_empty());
}

#[test]
fn skip_verification_keeps_a_result_whose_hash_differs_from_the_header() {
    let Some(dir) = conformance() else { return };
    let env = TestEnv::new();
    let basis = dir.join("files/cert.bin");
    let delta = dir.join("own/bad-wrong-new-file-hash.octodelta");
    let run = apply(&env, &basis, &delta, "Acme.1.0.0.zip");
    assert!(reported_error(&run).starts_with("Verification of the patched file failed."));
    assert!(cache_files(&env).is_empty());

    let mut args = apply_args(&basis, &sha1_hex(&std::fs::read(&basis).unwrap()), &delta, "Acme.1.0.0.zip");
    args.push("--skipVerification".into());
    args.push("--progress".into());
    let run = run_bounded(&env, &args);
    run.success().stdout_has("Applying delta: 100%");
    let (path, hash, size) = applied(&run);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!((hash, size), (sha1_hex(&bytes), bytes.len() as u64));
}

#[test]
fn no_tentacle_home_or_a_new_name_that_is_no_package_name_exit_1() {
    let env = TestEnv::new();
    let basis = env.write("Acme.Web.1.0.0.zip", b"basis");
    let delta = env.write("d.octodelta", b"delta");
    let hash = sha1_hex(b"basis");
    let args = apply_args(&basis, &hash, &delta, "Acme.Web.1.0.1.zip");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.cmd(&args).run().code(1).stderr_has("Environment variable 'TentacleHome' has not been set.");
    let run = run_bounded(&env, &apply_args(&basis, &hash, &delta, "New"));
    run.code(1).stderr_has("--newFileName 'New' is not a package file name");
    assert!(delta_verification(&run).is_empty());
}

#[test]
fn delta_signature_and_create_refuse_bad_options_and_missing_files() {
    let env = TestEnv::new();
    let basis = env.write("basis.bin", vec![1u8; 5000]);
    for size in ["127", "31745"] {
        env.cmd(&["delta", "signature", "basis.bin", "out.octosig", "--chunkSize", size])
            .run()
            .code(1)
            .stderr_has(&format!("--chunkSize must be between 128 and 31744 bytes, found {size}"));
    }
    env.cmd(&["delta", "signature", "missing.bin", "out.octosig"])
        .run()
        .code(1)
        .stderr_has("Could not find the basis file: missing.bin");
    assert!(!env.path("out.octosig").exists() && !env.path("out.octosig.partial").exists());
    env.cmd(&["delta", "create", "missing.octosig", "basis.bin", "out.octodelta"])
        .run()
        .code(1)
        .stderr_has("Could not find the signature file: missing.octosig");
    env.cmd(&["delta", "signature", "basis.bin", "basis.octosig", "--chunkSize=31744"])
        .run()
        .success()
        .stdout_has("1 chunk of up to 31744 bytes");
    env.cmd(&["delta", "create", "basis.octosig", "new.bin", "out.octodelta"])
        .run()
        .code(1)
        .stderr_has("Could not find the new file: new.bin");
    assert!(!env.path("out.octodelta").exists() && !env.path("out.octodelta.partial").exists());
    // A signature is no delta: refused by apply-delta as corrupt.
    let run = apply(&env, &basis, &env.path("basis.octosig"), "Acme.1.0.0.zip");
    assert!(reported_error(&run).contains("does not start with OCTODELTA"));
}
