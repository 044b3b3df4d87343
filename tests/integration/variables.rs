//! Variables input through the binary: plain and encrypted `--variables` files (the
//! encrypted ones built with Python's hashlib and `openssl enc`, independent of our own
//! encryptor), passwords from a file or stdin, legacy files, `env:`, bad input.
//!
//! Each test loads variables with `OctopusPrintVariables=True`, which lists them (the
//! reference's variable logger), so the assertions do not depend on templating.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{TestEnv, variables_json};

/// Encrypts `plain` the way the reference does, with tools independent of our code:
/// key = PBKDF2-HMAC-SHA1(password, "Octopuss", 1000, 32) from Python's hashlib, then
/// `openssl enc -aes-256-cbc` (PKCS7 padding) with a fixed IV, and the `IV__` prefix.
fn encrypt_with_openssl(env: &TestEnv, plain: &str, password: &str, out: &str) -> Option<PathBuf> {
    if Command::new("openssl").arg("version").output().is_err() {
        crate::util::skip("openssl is not installed");
        return None;
    }
    let key = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys;print(hashlib.pbkdf2_hmac('sha1',sys.argv[1].encode(),b'Octopuss',1000,32).hex())",
            password,
        ])
        .output()
        .expect("python3 runs");
    let key = String::from_utf8(key.stdout).unwrap().trim().to_string();
    let iv = "000102030405060708090a0b0c0d0e0f";
    let plain_path = env.write("plain.json", plain);
    let ct = Command::new("openssl")
        .args(["enc", "-aes-256-cbc", "-nosalt", "-K", &key, "-iv", iv, "-in"])
        .arg(&plain_path)
        .output()
        .expect("openssl runs");
    assert!(ct.status.success(), "openssl failed: {}", String::from_utf8_lossy(&ct.stderr));
    std::fs::remove_file(&plain_path).unwrap();
    let mut bytes = b"IV__".to_vec();
    bytes.extend_from_slice(&hex::decode(iv).unwrap());
    bytes.extend_from_slice(&ct.stdout);
    Some(env.write(out, bytes))
}

fn arg(flag: &str, path: &Path) -> String {
    format!("--{flag}={}", path.display())
}

const PRINT: (&str, &str, bool) = ("OctopusPrintVariables", "True", false);

#[test]
fn encrypted_file_from_an_independent_tool_decrypts() {
    let env = TestEnv::new();
    let json = variables_json(&[("Database.Password", "pa$$w0rd-é", true), ("Plain", "visible", false), PRINT]);
    let Some(file) = encrypt_with_openssl(&env, &json, "correct horse", "vars.bin") else { return };
    let run =
        env.cmd(&["evaluate", "--template=x", &arg("variables", &file), "--variablesPassword=correct horse"]).run();
    run.success().stdout_has("[Plain] = 'visible'").stdout_has("[Database.Password] = '********'");
    run.output_lacks("pa$$w0rd-é");
}

#[test]
fn wrong_password_is_a_clear_user_error_that_does_not_echo_the_password() {
    let env = TestEnv::new();
    let json = variables_json(&[("A", "b", false)]);
    let Some(file) = encrypt_with_openssl(&env, &json, "right-password", "vars.bin") else { return };
    let run =
        env.cmd(&["evaluate", "--template=x", &arg("variables", &file), "--variablesPassword=Guessed-Wrongly"]).run();
    run.code(1)
        .stderr_has("Cannot decrypt variables. Check your password is correct.")
        .stderr_has(&file.display().to_string())
        .output_lacks("Guessed-Wrongly");
}

#[test]
fn truncated_ciphertext_names_the_file() {
    let env = TestEnv::new();
    let json = variables_json(&[("A", "b", false)]);
    let Some(file) = encrypt_with_openssl(&env, &json, "pw", "vars.bin") else { return };
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 5]).unwrap();
    env.cmd(&["evaluate", "--template=x", &arg("variables", &file), "--variablesPassword=pw"])
        .run()
        .code(1)
        .stderr_has("Cannot decrypt variables")
        .stderr_has("truncated");
}

#[test]
fn password_from_a_file_or_stdin() {
    let env = TestEnv::new();
    let json = variables_json(&[("FromFile", "yes", false), PRINT]);
    let Some(file) = encrypt_with_openssl(&env, &json, "s3cret pass", "vars.bin") else { return };
    let pw_file = env.write("pw.txt", "s3cret pass\n");
    env.cmd(&["evaluate", "--template=x", &arg("variables", &file), &arg("variablesPasswordFile", &pw_file)])
        .run()
        .success()
        .stdout_has("[FromFile] = 'yes'");
    env.cmd(&["evaluate", "--template=x", &arg("variables", &file), "--variablesPasswordFile=-"])
        .stdin("s3cret pass\n")
        .run()
        .success()
        .stdout_has("[FromFile] = 'yes'");
    env.cmd(&[
        "evaluate",
        "--template=x",
        &arg("variables", &file),
        "--variablesPasswordFile=-",
        "--variablesPassword=x",
    ])
    .run()
    .code(1)
    .stderr_has("not both");
}

#[test]
fn bad_input_files_exit_one_naming_the_file() {
    let env = TestEnv::new();
    let invalid = env.write("invalid.json", "[{\"k\": \"A\", ");
    let wrong_shape = env.write("shape.json", "{\"A\": \"b\"}");
    let missing = env.path("missing.json");
    for (file, message) in [
        (&invalid, "Unable to parse variables as valid JSON."),
        (&wrong_shape, "expected an array"),
        (&missing, "Could not find variables file"),
    ] {
        env.cmd(&["evaluate", "--template=x", &arg("variables", file)])
            .run()
            .code(1)
            .stderr_has(message)
            .stderr_has(&file.display().to_string());
    }
}

#[test]
fn files_merge_in_order_with_legacy_env_and_additional_variables() {
    let env = TestEnv::new();
    let first = env.variables("a.json", &[("Name", "first", false), ("Only.First", "1", false), PRINT]);
    let second = env.variables("b.json", &[("name", "second", false)]);
    let legacy = env.write("legacy.json", r#"{"Legacy.Value": "old-style"}"#);
    let additional = env.write("additional.json", r#"{"Name": "additional"}"#);
    let run = env
        .cmd(&[
            "evaluate",
            "--template=x",
            &arg("variables", &first),
            &arg("variables", &second),
            &arg("sensitiveVariables", &legacy),
        ])
        .env("MY_ENV_VALUE", "from-env")
        .env("AdditionalVariablesPath", &additional)
        .run();
    run.success()
        .stdout_has("[Name] = 'additional'")
        .stdout_has("[Only.First] = '1'")
        .stdout_has("[Legacy.Value] = 'old-style'")
        .stdout_has("[env:MY_ENV_VALUE] = 'from-env'")
        .stdout_has("deprecated");
    let missing_additional =
        env.cmd(&["evaluate", "--template=x"]).env("AdditionalVariablesPath", env.path("nope.json")).run();
    missing_additional.code(1).stderr_has(&format!(
        "Could not read additional variables from JSON file at '{}'. File does not exist. Make sure the file can be read or remove the 'AdditionalVariablesPath' environment variable.",
        env.path("nope.json").display()
    ));
    std::fs::write(env.path("broken.json"), "{not json").unwrap();
    let broken = env.cmd(&["evaluate", "--template=x"]).env("AdditionalVariablesPath", env.path("broken.json")).run();
    broken.code(1).stderr_has("The file could not be read.").stderr_has("broken.json");
}

/// Runs `calamari <args>` (which waits for a password on stdin), polls its
/// `/proc/<pid>/cmdline` until it holds `scrubbed`, lets it finish, and returns the command
/// line as it was last seen.
fn cmdline_once_scrubbed(env: &TestEnv, args: &[&str], scrubbed: &str) -> String {
    use std::io::Write as _;
    let mut cmd = env.cmd(args).cmd;
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let cmdline_path = format!("/proc/{}/cmdline", child.id());
    // Calamari scrubs right after parsing and then blocks reading the password from stdin;
    // poll until the scrub shows, then let it finish.
    let cmdline = || String::from_utf8_lossy(&std::fs::read(&cmdline_path).unwrap_or_default()).into_owned();
    crate::util::wait_until(crate::util::PROMPTLY, &format!("{scrubbed} in /proc/<pid>/cmdline"), || {
        cmdline().contains(scrubbed)
    });
    let last = cmdline();
    child.stdin.take().unwrap().write_all(b"pw\n").unwrap();
    child.wait().unwrap();
    last
}

#[test]
fn a_password_on_the_command_line_is_scrubbed_from_proc_cmdline() {
    let env = TestEnv::new();
    let last = cmdline_once_scrubbed(
        &env,
        &["evaluate", "--template=x", "--sensitiveVariablesPassword=TopSecretValue42", "--variablesPasswordFile=-"],
        "--sensitiveVariablesPassword=****************",
    );
    assert!(!last.contains("TopSecretValue42"), "password visible in /proc: {last:?}");
    assert!(last.contains("--sensitiveVariablesPassword=*"), "{last:?}");

    // In the reference's other spellings too.
    let last = cmdline_once_scrubbed(
        &env,
        &["evaluate", "/template:x", "-SensitiveVariablesPassword:OtherSecret77", "-variablesPasswordFile=-"],
        "-SensitiveVariablesPassword:*************",
    );
    assert!(!last.contains("OtherSecret77"), "password visible in /proc: {last:?}");
}

#[test]
fn a_missing_password_file_names_the_option_and_the_path() {
    let env = TestEnv::new();
    let vars = env.variables("vars.json", &[("A", "1", false)]);
    let missing = env.path("no-such-password.txt");
    let run =
        env.cmd(&["evaluate", "--template=x", &arg("variables", &vars), &arg("variablesPasswordFile", &missing)]).run();
    run.code(1).stderr_has(&format!(
        "The password file '{}' given by --variablesPasswordFile does not exist",
        missing.display()
    ));
    let run = env.cmd(&["evaluate", "--template=x", &arg("sensitiveVariablesPasswordFile", &missing)]).run();
    run.code(1).stderr_has("given by --sensitiveVariablesPasswordFile");
}

#[test]
fn an_encrypted_file_without_a_password_says_it_looks_encrypted_and_what_to_add() {
    let env = TestEnv::new();
    let mut bytes = b"IV__".to_vec();
    bytes.extend((0u8..48).map(|i| i.wrapping_mul(37)));
    let file = env.write("vars.bin", bytes);
    let run = env.cmd(&["evaluate", "--template=x", &arg("variables", &file)]).run();
    run.code(1)
        .stderr_has(&format!("The variables file '{}' looks encrypted", file.display()))
        .stderr_has("add --variablesPassword or --variablesPasswordFile");
}
