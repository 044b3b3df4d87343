//! Script isolation (`--scriptIsolationLevel`, `--scriptIsolationMutexName`,
//! `--scriptIsolationTimeout`): the lock under `$TentacleHome` held for the whole command.
//!
//! Each holder runs `hold-<tag>.sh`, which creates `started-<tag>` and then waits until the
//! test creates `release-<tag>`: a run that has not created its `started-` file has not
//! begun its command, which is how the tests see who waits for whom.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::util::{self, TestCommand, TestEnv};

/// Several arguments at once.
trait ArgsExt {
    fn args<S: AsRef<std::ffi::OsStr>>(self, args: &[S]) -> Self;
}

impl ArgsExt for TestCommand {
    fn args<S: AsRef<std::ffi::OsStr>>(self, args: &[S]) -> Self {
        args.iter().fold(self, |cmd, arg| cmd.arg(arg))
    }
}

/// A `calamari run-script` started in the background, its output collected as it comes.
struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the exit; returns the code, stdout and stderr.
    fn finish(mut self) -> (i32, String, String) {
        let status = self.child.wait().unwrap();
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let code = status.code().unwrap_or(-1);
        (code, self.stdout(), self.stderr.lock().unwrap().clone())
    }
}

fn collect(mut from: impl std::io::Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (text, reader)
}

fn home(env: &TestEnv) -> PathBuf {
    env.path("tentacle")
}

/// The isolation options for `level` and `mutex`.
fn options(level: &str, mutex: &str) -> Vec<String> {
    vec![format!("--scriptIsolationLevel={level}"), format!("--scriptIsolationMutexName={mutex}")]
}

/// Starts `run-script` of a script that holds until `release-<tag>` exists.
fn start(env: &TestEnv, tag: &str, level: &str, mutex: &str, extra: &[&str]) -> Running {
    env.write(
        format!("hold-{tag}.sh"),
        format!("touch started-{tag}\nwhile [ ! -e release-{tag} ]; do sleep 0.01; done\necho finished-{tag}\n"),
    );
    let mut cmd = env.cmd(&["run-script", &format!("--script=hold-{tag}.sh")]);
    for option in options(level, mutex) {
        cmd = cmd.arg(option);
    }
    for arg in extra {
        cmd = cmd.arg(arg);
    }
    let mut child = cmd
        .env("TentacleHome", home(env))
        .cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn calamari");
    let (stdout, out_reader) = collect(child.stdout.take().unwrap());
    let (stderr, err_reader) = collect(child.stderr.take().unwrap());
    Running { child, stdout, stderr, readers: vec![out_reader, err_reader] }
}

fn started(env: &TestEnv, tag: &str) -> bool {
    env.path(format!("started-{tag}")).exists()
}

fn wait_started(env: &TestEnv, tag: &str) {
    util::wait_until(util::PROMPTLY, &format!("run {tag} to start its script"), || started(env, tag));
}

/// Waits until `run` says it is waiting for `mutex`, and returns what it printed.
fn wait_waiting(run: &Running, mutex: &str) -> String {
    let needle = format!("Waiting for the script isolation mutex '{mutex}'");
    util::wait_for(util::PROMPTLY, "the waiting message", || {
        let out = run.stdout();
        out.contains(&needle).then_some(out)
    })
}

fn release(env: &TestEnv, tag: &str) {
    env.write(format!("release-{tag}"), "");
}

#[track_caller]
fn finished_ok(run: Running, tag: &str) {
    let (code, out, err) = run.finish();
    assert_eq!(code, 0, "run {tag}\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
    assert!(out.contains(&format!("finished-{tag}")), "{out}");
}

#[test]
fn two_full_isolation_runs_take_turns_and_the_waiter_names_the_holder() {
    let env = TestEnv::new();
    let a = start(&env, "a", "FullIsolation", "M", &[]);
    wait_started(&env, "a");
    let b = start(&env, "b", "FullIsolation", "M", &[]);
    let waiting = wait_waiting(&b, "M");
    assert!(!started(&env, "b"), "b ran while a held the mutex");
    assert!(
        waiting.contains(&format!("s, no timeout): held by pid {} (run-script FullIsolation, since 20", a.pid())),
        "{waiting}"
    );
    // The holder's record is on disk while it runs, under its pid.
    let holders = home(&env).join("ScriptIsolation.M.holders");
    let records: Vec<String> =
        std::fs::read_dir(&holders).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].starts_with(&format!("{}-", a.pid())), "{records:?}");
    release(&env, "a");
    finished_ok(a, "a");
    wait_started(&env, "b");
    release(&env, "b");
    finished_ok(b, "b");
    // The lock file stays (deleting it would race); the records are gone.
    assert!(home(&env).join("ScriptIsolation.M.lock").is_file());
    assert_eq!(std::fs::read_dir(&holders).unwrap().count(), 0);
}

#[test]
fn no_isolation_runs_overlap_and_all_are_listed_as_holders() {
    let env = TestEnv::new();
    let a = start(&env, "a", "NoIsolation", "M", &[]);
    let b = start(&env, "b", "noisolation", "M", &[]);
    wait_started(&env, "a");
    wait_started(&env, "b");
    // A FullIsolation run waits for both, and names both.
    let c = start(&env, "c", "FullIsolation", "M", &[]);
    let waiting = wait_waiting(&c, "M");
    for pid in [a.pid(), b.pid()] {
        assert!(waiting.contains(&format!("pid {pid} (run-script NoIsolation, since ")), "{waiting}");
    }
    release(&env, "a");
    finished_ok(a, "a");
    assert!(!started(&env, "c"), "c ran while b held the mutex shared");
    release(&env, "b");
    finished_ok(b, "b");
    wait_started(&env, "c");
    release(&env, "c");
    finished_ok(c, "c");
}

#[test]
fn no_isolation_waits_for_a_full_isolation_holder() {
    let env = TestEnv::new();
    let a = start(&env, "a", "FullIsolation", "M", &[]);
    wait_started(&env, "a");
    let b = start(&env, "b", "NoIsolation", "M", &[]);
    let waiting = wait_waiting(&b, "M");
    assert!(waiting.contains("(NoIsolation, waited ") && waiting.contains("s, no timeout): held by pid "), "{waiting}");
    assert!(!started(&env, "b"));
    release(&env, "a");
    finished_ok(a, "a");
    wait_started(&env, "b");
    release(&env, "b");
    finished_ok(b, "b");
}

#[test]
fn different_mutex_names_do_not_block_each_other() {
    let env = TestEnv::new();
    let a = start(&env, "a", "FullIsolation", "One", &[]);
    let b = start(&env, "b", "FullIsolation", "Two", &[]);
    wait_started(&env, "a");
    wait_started(&env, "b");
    release(&env, "a");
    release(&env, "b");
    finished_ok(a, "a");
    finished_ok(b, "b");
    assert!(home(&env).join("ScriptIsolation.One.lock").is_file());
    assert!(home(&env).join("ScriptIsolation.Two.lock").is_file());
}

#[test]
fn a_timeout_exits_1_naming_the_mutex_the_timeout_and_the_holder() {
    let env = TestEnv::new();
    let a = start(&env, "a", "FullIsolation", "M", &[]);
    wait_started(&env, "a");
    let run = env
        .cmd(&["run-script", "--script=never.sh", "--scriptIsolationTimeout=00:00:00.2"])
        .args(&options("FullIsolation", "M"))
        .env("TentacleHome", home(&env))
        .run();
    run.code(1).stderr_has(&format!(
        "Timed out after 00:00:00.2000000 (--scriptIsolationTimeout) waiting for the script isolation mutex 'M' (FullIsolation); held by pid {} (run-script FullIsolation, since ",
        a.pid()
    ));
    // Every command is guarded, and a zero timeout does not wait at all.
    env.cmd(&["version", "--scriptIsolationTimeout=0"])
        .args(&options("NoIsolation", "M"))
        .env("TentacleHome", home(&env))
        .run()
        .code(1)
        .stderr_has("Timed out after 00:00:00 (--scriptIsolationTimeout) waiting for the script isolation mutex 'M' (NoIsolation)")
        .output_lacks(calamari::VERSION);
    release(&env, "a");
    finished_ok(a, "a");
    // Free again: the same command runs.
    env.cmd(&["version", "--scriptIsolationTimeout=0"])
        .args(&options("FullIsolation", "M"))
        .env("TentacleHome", home(&env))
        .run()
        .success()
        .stdout_has(calamari::VERSION);
}

#[test]
fn sigint_or_sigterm_while_waiting_exits_at_once_with_128_plus_the_signal() {
    let env = TestEnv::new();
    let a = start(&env, "a", "FullIsolation", "M", &[]);
    wait_started(&env, "a");
    for (tag, signal, name) in [("b", libc::SIGINT, "SIGINT"), ("c", libc::SIGTERM, "SIGTERM")] {
        let waiter = start(&env, tag, "FullIsolation", "M", &[]);
        wait_waiting(&waiter, "M");
        // SAFETY: kill(2) on the calamari child this test spawned.
        unsafe {
            libc::kill(waiter.pid() as i32, signal);
        }
        let (code, out, err) = waiter.finish();
        assert_eq!(code, 128 + signal, "{out}\n{err}");
        assert!(
            err.contains(&format!("Cancelled by {name} while waiting for the script isolation mutex 'M'")),
            "{err}"
        );
        assert!(!started(&env, tag));
    }
    release(&env, "a");
    finished_ok(a, "a");
}

#[test]
fn records_of_dead_holders_are_ignored_and_removed() {
    let env = TestEnv::new();
    let holders = home(&env).join("ScriptIsolation.M.holders");
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = holders.join(format!("{dead}-12345"));
    env.write(&stale, "level=FullIsolation\ncommand=deploy-package\nsince=2020-01-01T00:00:00Z\n");
    // Our own pid with a start time that is not ours: a pid reused since the record.
    let reused = holders.join(format!("{}-1", std::process::id()));
    env.write(&reused, "level=FullIsolation\ncommand=clean\nsince=2020-01-01T00:00:00Z\n");
    let a = start(&env, "a", "NoIsolation", "M", &[]);
    wait_started(&env, "a");
    let b = start(&env, "b", "FullIsolation", "M", &[]);
    let waiting = wait_waiting(&b, "M");
    assert!(waiting.contains(&format!(": held by pid {} (run-script NoIsolation, since ", a.pid())), "{waiting}");
    assert!(!waiting.contains("deploy-package") && !waiting.contains("clean"), "{waiting}");
    assert!(!stale.exists() && !reused.exists());
    release(&env, "a");
    release(&env, "b");
    finished_ok(a, "a");
    finished_ok(b, "b");
    // A stale record alone blocks nobody.
    env.write(&stale, "level=FullIsolation\ncommand=x\nsince=y\n");
    env.cmd(&["version", "--scriptIsolationTimeout=0"])
        .args(&options("FullIsolation", "M"))
        .env("TentacleHome", home(&env))
        .run()
        .success();
    assert!(!stale.exists());
}

#[test]
fn bad_isolation_options_exit_1_naming_the_option() {
    let env = TestEnv::new();
    let home = home(&env);
    let cases: &[(&[&str], &str)] = &[
        (
            &["--scriptIsolationLevel=Partial", "--scriptIsolationMutexName=M"],
            "--scriptIsolationLevel expects FullIsolation or NoIsolation, found 'Partial'",
        ),
        (
            &["--scriptIsolationLevel=FullIsolation", "--scriptIsolationMutexName=M", "--scriptIsolationTimeout=5m"],
            "--scriptIsolationTimeout expects a TimeSpan such as 00:05:00 ([d.]hh:mm[:ss[.fffffff]], or -00:00:00.0010000 for no limit), found '5m'",
        ),
        (
            &[
                "--scriptIsolationLevel=FullIsolation",
                "--scriptIsolationMutexName=M",
                "--scriptIsolationTimeout=-00:00:05",
            ],
            "found '-00:00:05'",
        ),
        (
            &["--scriptIsolationLevel=FullIsolation", "--scriptIsolationMutexName="],
            "--scriptIsolationMutexName must not be empty, found ''",
        ),
        (
            &["--scriptIsolationLevel=FullIsolation", "--scriptIsolationMutexName=../x"],
            "--scriptIsolationMutexName must be usable as a file name (no '/', '\\' or NUL), found '../x'",
        ),
        (&["--scriptIsolationLevel=FullIsolation"], "--scriptIsolationLevel needs --scriptIsolationMutexName as well"),
        (&["--scriptIsolationMutexName=M"], "--scriptIsolationMutexName needs --scriptIsolationLevel as well"),
        (
            &["--scriptIsolationTimeout=00:01:00"],
            "--scriptIsolationTimeout needs --scriptIsolationLevel and --scriptIsolationMutexName as well",
        ),
    ];
    for (args, message) in cases {
        env.cmd(&["version"])
            .args(args)
            .env("TentacleHome", &home)
            .run()
            .code(1)
            .stderr_has(message)
            .output_lacks(calamari::VERSION);
    }
    env.cmd(&["version"])
        .args(&options("FullIsolation", "M"))
        .run()
        .code(1)
        .stderr_has("Script isolation (--scriptIsolationLevel) needs the environment variable 'TentacleHome', which has not been set");
    assert!(!home.exists(), "nothing is created for a refused option");
    // The infinite TimeSpan of the reference is accepted, and the options are in the help.
    env.cmd(&["version", "--scriptIsolationTimeout=-00:00:00.0010000"])
        .args(&options("fullisolation", "M"))
        .env("TentacleHome", &home)
        .run()
        .success();
    let help = env.cmd(&["run-script", "--help"]).run();
    help.success()
        .stdout_has("--scriptIsolationLevel <LEVEL>")
        .stdout_has("--scriptIsolationMutexName <NAME>")
        .stdout_has("--scriptIsolationTimeout <TIMESPAN>");
}

#[test]
fn a_filesystem_that_ignores_flock_moves_the_lock_to_a_local_temp_directory() {
    let env = TestEnv::new();
    let tmp = env.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    env.write("s.sh", "echo ran\n");
    let run = env
        .cmd(&["run-script", "--script=s.sh"])
        .args(&options("FullIsolation", "M"))
        .env("TentacleHome", home(&env))
        .env("TMPDIR", &tmp)
        .env("CALAMARI_FAULT_FLOCK_IGNORED", home(&env))
        .run();
    let moved = tmp.join("octopus.tentacle");
    run.success()
        .stdout_has("ran")
        .stdout_has(&format!("Script isolation mutex 'M' is held in {} instead, as the ", moved.display()));
    assert!(
        run.stdout.contains(&format!("filesystem of {} does not enforce file locks", home(&env).display())),
        "{}",
        run.stdout
    );
    assert!(moved.join("ScriptIsolation.M.lock").is_file());
}

#[test]
fn without_any_directory_that_enforces_flock_the_command_runs_unisolated_with_an_alert() {
    let env = TestEnv::new();
    // TentacleHome's own name is unique, so the fallbacks under /tmp and /dev/shm are too.
    let home = env.root().to_path_buf();
    let name = format!("octopus.{}", home.file_name().unwrap().to_string_lossy());
    let tmp = env.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let fallbacks = [tmp.join(&name), PathBuf::from("/tmp").join(&name), PathBuf::from("/dev/shm").join(&name)];
    let ignored = std::env::join_paths(std::iter::once(home.clone()).chain(fallbacks.iter().cloned())).unwrap();
    env.write("s.sh", "echo ran\n");
    let run = env
        .cmd(&["run-script", "--script=s.sh"])
        .args(&options("NoIsolation", "M"))
        .env("TentacleHome", &home)
        .env("TMPDIR", &tmp)
        .env("CALAMARI_FAULT_FLOCK_IGNORED", &ignored)
        .run();
    for dir in &fallbacks {
        let _ = std::fs::remove_dir_all(dir);
    }
    run.success()
        .stdout_has("ran")
        .stdout_has("Unable to support any script isolation, as the ")
        .stdout_has("Running without any isolation.")
        .stdout_has("##octopus[calamari-script-isolation-alert requestedType=");
}
