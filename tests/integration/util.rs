//! The test harness: a temp directory per test, a builder for running the real binary
//! with a clean environment, assertions on what it did, polling to a deadline, and the
//! one way a test reports that it skipped.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_calamari"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("calamari-cli sits in the workspace").to_path_buf()
}

/// The project's own fixtures.
pub fn fixtures() -> PathBuf {
    repo_root().join("fixtures")
}

/// `../shared` beside the checkout (CI has it); `None`, after [`skip`], when absent.
pub fn shared_dir(what: &str) -> Option<PathBuf> {
    let dir = repo_root().join("../shared");
    if dir.is_dir() {
        Some(dir.canonicalize().expect("existing directory canonicalises"))
    } else {
        skip(&format!("{what}: ../shared is not beside the checkout"));
        None
    }
}

/// The environment variable naming the file that [`skip`] appends to.
pub const SKIP_LOG_VAR: &str = "CALAMARI_TEST_SKIP_LOG";

/// Records that the running test skips its checks, or the part of them that needs what
/// is missing, so a skip shows in CI's summary instead of passing silently: prints
/// `SKIP <test>: <reason>` and appends the same line to the file named by
/// `CALAMARI_TEST_SKIP_LOG` (by default `skipped-tests.log` in Cargo's temp directory under
/// the target directory).
pub fn skip(reason: &str) {
    // libtest runs each test on a thread named after it (`module::test_name`).
    let thread = std::thread::current();
    let reason = reason.trim().replace('\n', " | ");
    let line = format!("SKIP {}: {reason}\n", thread.name().unwrap_or("<unnamed test>"));
    print!("{line}");
    let log = std::env::var_os(SKIP_LOG_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.log"));
    // One write of one short line to an O_APPEND file: lines of concurrent tests do not interleave.
    let written =
        std::fs::OpenOptions::new().create(true).append(true).open(&log).and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!("cannot record the skip in {}: {e}", log.display());
    }
}

/// Whether `pwsh` (PowerShell 7.2+) is on the PATH for the PowerShell tests. Without it a
/// test skips through [`skip`], except under CI (`CI=true`), where a PowerShell test that
/// cannot run fails: `.ci/install.d/pwsh.sh` installs it there.
#[track_caller]
pub fn pwsh_available() -> bool {
    let found =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("pwsh").is_file()));
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "pwsh is not on the PATH under CI: .ci/install.d/pwsh.sh should have installed it"
        );
        skip("pwsh (PowerShell 7.2 or newer) is not on the PATH; bash ../shared/tools/pwsh/install.sh installs it");
    }
    found
}

/// How long to wait for something that should happen promptly (a killed process to be
/// gone, a child to reach a state) before failing: generous, for a loaded CI machine.
pub const PROMPTLY: Duration = Duration::from_secs(20);

/// Polls `probe` every 10 ms until it returns `Some`, and returns that value; panics
/// naming `what` was awaited when `timeout` passes first.
#[track_caller]
pub fn wait_for<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `condition` every 10 ms until it holds; panics naming `what` was awaited when
/// `timeout` passes first.
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    wait_for(timeout, what, || condition().then_some(()));
}

/// One test's sandbox: a temp directory used as working directory, HOME and TentacleHome.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("calamari-it-").tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home dir");
        TestEnv { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating parents) and returns its path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("parent dir");
        }
        std::fs::write(&p, contents).expect("write fixture file");
        p
    }

    /// Writes a variables file (`[{"k","v","s"}]`) from (name, value, sensitive) triples.
    pub fn variables(&self, rel: &str, vars: &[(&str, &str, bool)]) -> PathBuf {
        self.write(rel, variables_json(vars))
    }

    /// `calamari <args>` with cwd = the sandbox and a clean environment.
    pub fn cmd(&self, args: &[&str]) -> TestCommand {
        let mut cmd = Command::new(bin());
        cmd.args(args).current_dir(self.root());
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("Tentacle")
                || k.starts_with("Octopus")
                || k.starts_with("Calamari")
                || k == "AdditionalVariablesPath"
            {
                cmd.env_remove(&key);
            }
        }
        cmd.env("HOME", self.path("home"));
        TestCommand { cmd, stdin: None }
    }
}

/// JSON for a variables file.
pub fn variables_json(vars: &[(&str, &str, bool)]) -> String {
    let items: Vec<serde_json::Value> =
        vars.iter().map(|(k, v, s)| serde_json::json!({"k": k, "v": v, "s": s})).collect();
    serde_json::to_string(&items).expect("serialisable")
}

pub struct TestCommand {
    pub cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl TestCommand {
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn run(mut self) -> Run {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.cmd.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = self.cmd.spawn().expect("spawn calamari");
        if let Some(bytes) = self.stdin.take() {
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin.write_all(&bytes).expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait for calamari");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What a run did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn context(&self) -> String {
        format!("exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\n{}", self.context());
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.context());
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(self.stdout.contains(needle), "stdout lacks {needle:?}\n{}", self.context());
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}\n{}", self.context());
        self
    }

    #[track_caller]
    pub fn output_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle) && !self.stderr.contains(needle),
            "output contains {needle:?}\n{}",
            self.context()
        );
        self
    }

    /// The decoded `setVariable` output variables in stdout, in order.
    pub fn output_variables(&self) -> Vec<(String, String)> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut out = Vec::new();
        for line in self.stdout.lines() {
            let Some(rest) = line.trim().strip_prefix("##octopus[setVariable ") else { continue };
            let attr = |name: &str| -> Option<String> {
                let start = rest.find(&format!("{name}="))? + name.len() + 2;
                let quote = rest.as_bytes()[start - 1] as char;
                let end = start + rest[start..].find(quote)?;
                String::from_utf8(b64.decode(&rest[start..end]).ok()?).ok()
            };
            if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
                out.push((n, v));
            }
        }
        out
    }

    /// The last value of an output variable.
    pub fn output_variable(&self, name: &str) -> Option<String> {
        self.output_variables().into_iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Writes `env.path(name)`, a `.tar.gz` package holding `(path, contents, mode)` regular
/// files (mtime 2023-11-14), and returns its path.
pub fn tar_gz(env: &TestEnv, name: impl AsRef<Path>, files: &[(&str, &[u8], u32)]) -> PathBuf {
    let path = env.path(name);
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (entry, contents, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, entry, *contents).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
    path
}
