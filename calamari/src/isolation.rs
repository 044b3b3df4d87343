//! Script isolation: `--scriptIsolationLevel`, `--scriptIsolationMutexName` and
//! `--scriptIsolationTimeout`, a cross-process lock held for the whole command.
//!
//! The lock is `flock(2)` on `$TentacleHome/ScriptIsolation.<mutex>.lock`, the file and the
//! lock kind the reference uses (its `FileShare.None`/`ReadWrite` are `flock` exclusive /
//! shared on Unix), so a Calamari for Rust and a .NET Calamari on the same machine exclude
//! each other. `FullIsolation` takes it exclusive (nothing else with the same mutex runs),
//! `NoIsolation` shared (any number of `NoIsolation` runs together, none while a
//! `FullIsolation` one runs). The kernel drops the lock when the holder dies.
//!
//! Every holder records itself in `ScriptIsolation.<mutex>.holders/<pid>-<start time>`
//! (level, command, since when), so a waiter can say whom it waits for, every
//! [`REPORT_EVERY`]; records of processes that are gone are ignored and deleted.
//!
//! After taking the lock, a second open file description of the same file tries the
//! conflicting lock without blocking: when it succeeds, the filesystem does not enforce
//! `flock` (an NFS mount without locking, some FUSE filesystems). Then, as the reference
//! does, the lock moves to a local temporary directory (`$TMPDIR`, `/tmp`, `/dev/shm`, each
//! `/octopus.<name of TentacleHome>`) with a warning; when none enforces locks either, the
//! command runs without isolation, with a warning and a `calamari-script-isolation-alert`
//! service message.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::FlockOperation;

use crate::fs::{IoContext as _, IoError};
use crate::log::Level;
use crate::{AgentEnvironment, Log, ServiceMessage};

/// How often a waiter says again whom it waits for.
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

/// The longest mutex name: `ScriptIsolation.<name>.holders` must fit in a 255-byte file name.
const MAX_NAME_BYTES: usize = 200;

/// `--scriptIsolationTimeout` spelled as the reference spells "no limit"
/// (`Timeout.InfiniteTimeSpan`, minus one millisecond).
pub const INFINITE_TIMESPAN: &str = "-00:00:00.0010000";

/// Why isolation could not be enforced.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--scriptIsolationLevel` is neither `FullIsolation` nor `NoIsolation`.
    #[error("--scriptIsolationLevel expects FullIsolation or NoIsolation, found '{value}'")]
    UnknownLevel {
        /// The value given.
        value: String,
    },
    /// `--scriptIsolationTimeout` is not a .NET TimeSpan we accept.
    #[error(
        "--scriptIsolationTimeout expects a TimeSpan such as 00:05:00 ([d.]hh:mm[:ss[.fffffff]], or {INFINITE_TIMESPAN} for no limit), found '{value}'"
    )]
    BadTimeout {
        /// The value given.
        value: String,
    },
    /// `--scriptIsolationMutexName` cannot name a lock file.
    #[error("--scriptIsolationMutexName {problem}, found '{value}'")]
    BadMutexName {
        /// The value given.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// One isolation option was given without another it needs.
    #[error("{given} needs {missing} as well")]
    Incomplete {
        /// The option given.
        given: &'static str,
        /// The option missing.
        missing: &'static str,
    },
    /// Isolation was asked for but `$TentacleHome`, where the lock lives, is not set.
    #[error(
        "Script isolation (--scriptIsolationLevel) needs the environment variable 'TentacleHome', which has not been set"
    )]
    NoTentacleHome,
    /// Another holder kept the mutex longer than `--scriptIsolationTimeout`.
    #[error(
        "Timed out after {timeout} (--scriptIsolationTimeout) waiting for the script isolation mutex '{mutex}' ({level}); {holders}"
    )]
    Timeout {
        /// The mutex name.
        mutex: String,
        /// The level asked for.
        level: IsolationLevel,
        /// The timeout, as a TimeSpan.
        timeout: String,
        /// Who held it when we gave up.
        holders: String,
    },
    /// SIGINT or SIGTERM arrived while waiting for the mutex.
    #[error("Cancelled by {name} while waiting for the script isolation mutex '{mutex}'")]
    Cancelled {
        /// The mutex name.
        mutex: String,
        /// The signal.
        signal: i32,
        /// Its name (`SIGINT`).
        name: String,
    },
    /// The lock file or a holder record could not be opened, locked or written.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// `--scriptIsolationLevel`: what else may run beside this command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    /// Nothing else with the same mutex: an exclusive lock.
    FullIsolation,
    /// Other `NoIsolation` runs, but no `FullIsolation` one: a shared lock.
    NoIsolation,
}

impl IsolationLevel {
    /// Parses a level as the reference does (case-insensitive).
    ///
    /// # Errors
    /// [`Error::UnknownLevel`] for anything else.
    pub fn parse(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "fullisolation" => Ok(IsolationLevel::FullIsolation),
            "noisolation" => Ok(IsolationLevel::NoIsolation),
            _ => Err(Error::UnknownLevel { value: value.to_string() }),
        }
    }

    fn lock(self, blocking: bool) -> FlockOperation {
        match (self, blocking) {
            (IsolationLevel::FullIsolation, false) => FlockOperation::NonBlockingLockExclusive,
            (IsolationLevel::NoIsolation, false) => FlockOperation::NonBlockingLockShared,
            (IsolationLevel::FullIsolation, true) => FlockOperation::LockExclusive,
            (IsolationLevel::NoIsolation, true) => FlockOperation::LockShared,
        }
    }

    /// The lock that must conflict with ours if the filesystem enforces `flock`.
    fn conflicting(self) -> FlockOperation {
        match self {
            IsolationLevel::FullIsolation => FlockOperation::NonBlockingLockShared,
            IsolationLevel::NoIsolation => FlockOperation::NonBlockingLockExclusive,
        }
    }

    fn lock_type(self) -> &'static str {
        match self {
            IsolationLevel::FullIsolation => "Exclusive",
            IsolationLevel::NoIsolation => "Shared",
        }
    }
}

impl std::fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IsolationLevel::FullIsolation => "FullIsolation",
            IsolationLevel::NoIsolation => "NoIsolation",
        })
    }
}

/// Parses `--scriptIsolationTimeout`, a .NET TimeSpan: `d`, `[d.]hh:mm[:ss[.fffffff]]` or
/// `d:hh:mm:ss[.fffffff]`. `None` is no limit: the reference's `Timeout.InfiniteTimeSpan`
/// (`-00:00:00.0010000`, that is minus one millisecond); any other negative value is refused.
///
/// # Errors
/// [`Error::BadTimeout`] naming the value.
pub fn parse_timespan(value: &str) -> Result<Option<Duration>, Error> {
    let bad = || Error::BadTimeout { value: value.to_string() };
    let span = crate::timespan::parse(value).ok_or_else(bad)?;
    if span.negative {
        return if span.duration == Duration::from_millis(1) { Ok(None) } else { Err(bad()) };
    }
    Ok(Some(span.duration))
}

/// A duration as a .NET TimeSpan prints it (`[d.]hh:mm:ss[.fffffff]`), as the messages show it.
pub fn format_timespan(duration: Duration) -> String {
    crate::timespan::format(duration)
}

/// Checks `--scriptIsolationMutexName`: it becomes part of a file name.
fn check_mutex_name(name: &str) -> Result<(), Error> {
    let bad = |problem| Err(Error::BadMutexName { value: name.to_string(), problem });
    if name.trim().is_empty() {
        bad("must not be empty")
    } else if name.contains(['/', '\\', '\0']) {
        bad("must be usable as a file name (no '/', '\\' or NUL)")
    } else if name.len() > MAX_NAME_BYTES {
        bad("must be at most 200 bytes long")
    } else {
        Ok(())
    }
}

/// The isolation options as given on the command line, and the command they guard.
#[derive(Debug, Clone, Default)]
pub struct IsolationRequest {
    /// `--scriptIsolationLevel`.
    pub level: Option<String>,
    /// `--scriptIsolationMutexName`.
    pub mutex_name: Option<String>,
    /// `--scriptIsolationTimeout` (no limit when absent).
    pub timeout: Option<String>,
    /// What this process runs, for the holder record waiters show (`run-script`).
    pub command: String,
}

/// Holds the isolation lock until dropped (an empty guard when no isolation was asked for,
/// or none could be enforced).
#[derive(Debug)]
#[must_use = "the isolation lock is released when the guard is dropped"]
pub struct IsolationGuard {
    held: Option<Held>,
}

impl IsolationGuard {
    /// The lock file held, if any.
    pub fn lock_file(&self) -> Option<&Path> {
        self.held.as_ref().map(|h| h.path.as_path())
    }
}

#[derive(Debug)]
struct Held {
    file: File,
    path: PathBuf,
    record: Option<PathBuf>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // The record goes first, so nobody who gets the lock next sees us in it.
        if let Some(record) = &self.record {
            let _ = crate::fs::remove_file(record);
        }
        let _ = rustix::fs::flock(&self.file, FlockOperation::Unlock);
    }
}

/// Validates the isolation options and, when they ask for isolation, takes the lock: waits
/// (saying whom for, every [`REPORT_EVERY`]) up to the timeout. Without any isolation
/// option, returns an empty guard at once.
///
/// # Errors
/// [`Error::UnknownLevel`], [`Error::BadTimeout`], [`Error::BadMutexName`],
/// [`Error::Incomplete`] and [`Error::NoTentacleHome`] for options that cannot be used;
/// [`Error::Timeout`] when the wait runs out; [`Error::Cancelled`] on SIGINT or SIGTERM
/// while waiting; [`Error::Io`] when the lock file cannot be opened.
pub fn enforce_isolation(
    request: &IsolationRequest,
    environment: &AgentEnvironment,
    log: &Log,
) -> Result<IsolationGuard, Error> {
    let level = request.level.as_deref().map(IsolationLevel::parse).transpose()?;
    if let Some(name) = &request.mutex_name {
        check_mutex_name(name)?;
    }
    let timeout = request.timeout.as_deref().map(parse_timespan).transpose()?.flatten();
    let (level, mutex) = match (level, &request.mutex_name) {
        (None, None) if request.timeout.is_none() => return Ok(IsolationGuard { held: None }),
        (Some(level), Some(mutex)) => (level, mutex.as_str()),
        (Some(_), None) => {
            return Err(Error::Incomplete { given: "--scriptIsolationLevel", missing: "--scriptIsolationMutexName" });
        }
        (None, Some(_)) => {
            return Err(Error::Incomplete { given: "--scriptIsolationMutexName", missing: "--scriptIsolationLevel" });
        }
        (None, None) => {
            return Err(Error::Incomplete {
                given: "--scriptIsolationTimeout",
                missing: "--scriptIsolationLevel and --scriptIsolationMutexName",
            });
        }
    };
    let home = environment.tentacle_home().ok_or(Error::NoTentacleHome)?;
    let wait = Wait { mutex, level, timeout, started: Instant::now(), command: &request.command, log };
    log.verbose(format!("Acquiring script isolation mutex {mutex} with {} lock", level.lock_type()));

    let mut refused = Vec::new();
    for (i, dir) in candidate_directories(&home, environment).into_iter().enumerate() {
        if i > 0 && !ours(&dir) {
            refused.push(format!("{} is not a directory of this user", dir.display()));
            continue;
        }
        match wait.lock_in(&dir)? {
            Taken::Held(held) => {
                if !refused.is_empty() {
                    log.warn(format!(
                        "Script isolation mutex '{mutex}' is held in {} instead, as {}.",
                        dir.display(),
                        refused.join("; ")
                    ));
                }
                return Ok(IsolationGuard { held: Some(held) });
            }
            Taken::NotEnforced { filesystem } => {
                refused.push(format!("the {filesystem} filesystem of {} does not enforce file locks", dir.display()));
            }
        }
    }
    log.warn(format!(
        "Unable to support any script isolation, as {}. Running without any isolation.",
        refused.join("; ")
    ));
    log.service_message(
        Level::Warn,
        &ServiceMessage::new("calamari-script-isolation-alert")
            .with("requestedType", level.lock_type())
            .with("enforcedType", "None")
            .with("fallbackUsed", "False")
            .with("capabilityInfo", refused.join(", ")),
    );
    Ok(IsolationGuard { held: None })
}

/// `$TentacleHome`, then the reference's local fallbacks for a home whose filesystem does
/// not enforce locks.
fn candidate_directories(home: &Path, environment: &AgentEnvironment) -> Vec<PathBuf> {
    let namespace = format!("octopus.{}", home.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    let mut dirs = vec![home.to_path_buf()];
    let tmpdir = environment.get("TMPDIR").map(PathBuf::from);
    if let Some(tmp) = &tmpdir {
        dirs.push(tmp.join(&namespace));
    }
    for fixed in ["/tmp", "/dev/shm"] {
        if tmpdir.as_deref() != Some(Path::new(fixed)) && Path::new(fixed).is_dir() {
            dirs.push(Path::new(fixed).join(&namespace));
        }
    }
    dirs
}

/// True when `dir` is (or, created now, becomes) a real directory owned by this user: a
/// fallback in a shared temporary directory that another user made is not used.
fn ours(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    if crate::fs::create_dir_all(dir).is_err() {
        return false;
    }
    crate::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == rustix::process::geteuid().as_raw())
}

enum Taken {
    Held(Held),
    NotEnforced { filesystem: String },
}

struct Wait<'a> {
    mutex: &'a str,
    level: IsolationLevel,
    timeout: Option<Duration>,
    started: Instant,
    command: &'a str,
    log: &'a Log,
}

impl Wait<'_> {
    /// Takes the lock in `dir`, waiting for other holders, and checks that the filesystem
    /// enforces it.
    fn lock_in(&self, dir: &Path) -> Result<Taken, Error> {
        let path = dir.join(format!("ScriptIsolation.{}.lock", self.mutex));
        let holders = dir.join(format!("ScriptIsolation.{}.holders", self.mutex));
        crate::fs::create_dir_all(dir)?;
        let file = open_lock_file(&path)?;
        self.wait_for(&file, &path, &holders)?;
        if !enforces_locks(&path, self.level)? {
            let _ = rustix::fs::flock(&file, FlockOperation::Unlock);
            return Ok(Taken::NotEnforced { filesystem: filesystem_name(&file) });
        }
        let record = self.record(&holders)?;
        Ok(Taken::Held(Held { file, path, record: Some(record) }))
    }

    fn wait_for(&self, file: &File, path: &Path, holders: &Path) -> Result<(), Error> {
        let mut signals = None;
        let mut next_report = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match rustix::fs::flock(file, self.level.lock(false)) {
                // A Ctrl-C that came while we waited still stops us, lock or not.
                Ok(()) => match crate::signals::received().filter(|_| signals.is_some()) {
                    None => return Ok(()),
                    Some(signal) => {
                        let _ = rustix::fs::flock(file, FlockOperation::Unlock);
                        let name = crate::signals::signal_name(signal);
                        return Err(Error::Cancelled { mutex: self.mutex.to_string(), signal, name });
                    }
                },
                Err(rustix::io::Errno::WOULDBLOCK) => {}
                Err(e) => return Err(std::io::Error::from(e)).at("lock", path).map_err(Error::from),
            }
            if let Some(signal) = crate::signals::received().filter(|_| signals.is_some()) {
                let name = crate::signals::signal_name(signal);
                return Err(Error::Cancelled { mutex: self.mutex.to_string(), signal, name });
            }
            let waited = self.started.elapsed();
            if self.timeout.is_some_and(|t| waited >= t) {
                return Err(Error::Timeout {
                    mutex: self.mutex.to_string(),
                    level: self.level,
                    timeout: format_timespan(self.timeout.unwrap_or_default()),
                    holders: describe(&read_holders(holders)),
                });
            }
            if signals.is_none() {
                signals = Some(crate::signals::SignalGuard::install());
            }
            if Instant::now() >= next_report {
                let limit = match self.timeout {
                    Some(t) => format!("timeout {}", format_timespan(t)),
                    None => "no timeout".to_string(),
                };
                self.log.info(format!(
                    "Waiting for the script isolation mutex '{}' ({}, waited {}s, {limit}): {}",
                    self.mutex,
                    self.level,
                    waited.as_secs(),
                    describe(&read_holders(holders))
                ));
                next_report = Instant::now() + REPORT_EVERY;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Writes this process's holder record and deletes those of dead processes (all other
    /// records when ours is exclusive: nobody else can hold the lock).
    fn record(&self, holders: &Path) -> Result<PathBuf, Error> {
        crate::fs::create_dir_all(holders)?;
        let me = std::process::id();
        let record = holders.join(format!("{me}-{}", start_time(me).unwrap_or(0)));
        let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let text = format!("level={}\ncommand={}\nsince={since}\n", self.level, self.command.replace('\n', " "));
        // A new file, never through whatever sits at that name (a record left by a dead
        // process, or a link planted in a shared temporary directory).
        crate::fs::remove_file(&record)?;
        let mut file =
            OpenOptions::new().write(true).create_new(true).open(&record).at("create holder record", &record)?;
        file.write_all(text.as_bytes()).at("write", &record)?;
        // Holding it exclusively, nobody else can: every other record is stale. (Shared
        // holders leave the cleaning of dead records to the waiters, who read them anyway.)
        if self.level == IsolationLevel::FullIsolation {
            for entry in crate::fs::read_dir(holders)?.flatten() {
                if entry.path() != record {
                    let _ = crate::fs::remove_file(entry.path());
                }
            }
        }
        Ok(record)
    }
}

/// Opens (creating it) a lock file; a symbolic link planted in its place is refused.
fn open_lock_file(path: &Path) -> Result<File, Error> {
    use std::os::unix::fs::OpenOptionsExt as _;
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .at("open lock file", path)?)
}

/// True when a second open file description of `path` cannot take the lock that conflicts
/// with the one this process holds.
fn enforces_locks(path: &Path, level: IsolationLevel) -> Result<bool, Error> {
    if fault::flock_ignored(path) {
        return Ok(false);
    }
    let probe = open_lock_file(path)?;
    match rustix::fs::flock(&probe, level.conflicting()) {
        Ok(()) => {
            let _ = rustix::fs::flock(&probe, FlockOperation::Unlock);
            Ok(false)
        }
        Err(_) => Ok(true),
    }
}

/// The filesystem type of `file`, by name where known.
fn filesystem_name(file: &File) -> String {
    let Ok(stat) = rustix::fs::fstatfs(file) else { return "unknown".into() };
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    let magic = stat.f_type as u64 & 0xFFFF_FFFF;
    match magic {
        0x6969 => "nfs".into(),
        0xFF53_4D42 => "cifs".into(),
        0xFE53_4D42 => "smb2".into(),
        0x6573_5546 => "fuse".into(),
        0x0102_1997 => "9p".into(),
        0xEF53 => "ext4".into(),
        0x0102_1994 => "tmpfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794C_7630 => "overlay".into(),
        other => format!("0x{other:x}"),
    }
}

/// One holder, from its record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    pid: u32,
    level: String,
    command: String,
    since: String,
}

/// The live holders recorded in `dir`; records of processes that are gone (or whose pid
/// now belongs to a younger process) are deleted.
fn read_holders(dir: &Path) -> Vec<Holder> {
    let Ok(entries) = crate::fs::read_dir(dir) else { return Vec::new() };
    let mut holders = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((pid, start)) = name.split_once('-').and_then(|(p, s)| Some((p.parse().ok()?, s.parse().ok()?)))
        else {
            continue;
        };
        if !alive(pid, start) {
            let _ = crate::fs::remove_file(&path);
            continue;
        }
        let text = crate::fs::read_to_string(&path).unwrap_or_default();
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .unwrap_or("unknown")
                .to_string()
        };
        holders.push(Holder { pid, level: field("level"), command: field("command"), since: field("since") });
    }
    holders.sort_by_key(|h| h.pid);
    holders
}

fn describe(holders: &[Holder]) -> String {
    if holders.is_empty() {
        return "held by a process that left no record (a Calamari that does not record holders?)".into();
    }
    let list: Vec<String> =
        holders.iter().map(|h| format!("pid {} ({} {}, since {})", h.pid, h.command, h.level, h.since)).collect();
    format!("held by {}", list.join(", "))
}

/// True when `pid` runs and, where the start time can be read, started at `start`.
fn alive(pid: u32, start: u64) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    match rustix::process::test_kill_process(raw) {
        Ok(()) | Err(rustix::io::Errno::PERM) => {}
        Err(_) => return false,
    }
    match start_time(pid) {
        Some(now) => start == 0 || now == start,
        None => true,
    }
}

/// The start time of `pid` in clock ticks since boot (`/proc/<pid>/stat`, field 22), which
/// tells a reused pid from the process that wrote a record.
fn start_time(pid: u32) -> Option<u64> {
    let stat = crate::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Test-only: make the lock check report that a directory's filesystem ignores `flock`.
mod fault {
    use std::path::Path;

    /// With the `fault-injection` feature: directories, separated by ':', whose lock files
    /// behave as on a filesystem that does not enforce `flock`.
    #[cfg(feature = "fault-injection")]
    pub(super) const FLOCK_IGNORED_ENV: &str = "CALAMARI_FAULT_FLOCK_IGNORED";

    #[cfg(feature = "fault-injection")]
    pub(super) fn flock_ignored(path: &Path) -> bool {
        let Some(dirs) = std::env::var_os(FLOCK_IGNORED_ENV) else { return false };
        let parent = path.parent();
        std::env::split_paths(&dirs).any(|d| !d.as_os_str().is_empty() && parent == Some(d.as_path()))
    }

    #[cfg(not(feature = "fault-injection"))]
    #[inline(always)]
    pub(super) fn flock_ignored(_path: &Path) -> bool {
        false
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn timespans_parse_as_dotnet_parses_them() {
        let s = |v| parse_timespan(v).unwrap();
        assert_eq!(s("00:05:00"), Some(Duration::from_secs(300)));
        assert_eq!(s("00:05"), Some(Duration::from_secs(300)));
        assert_eq!(s("5"), Some(Duration::from_secs(5 * 86_400)));
        assert_eq!(s("1.12:00:00"), Some(Duration::from_secs(36 * 3600)));
        assert_eq!(s("1:12:00:00"), Some(Duration::from_secs(36 * 3600)));
        assert_eq!(s(" 00:00:01.5 "), Some(Duration::from_millis(1500)));
        assert_eq!(s("00:00:00.0000001"), Some(Duration::from_nanos(100)));
        assert_eq!(s("1.12:00:00.25"), Some(Duration::from_millis(36 * 3_600_000 + 250)));
        assert_eq!(s("24.20:31:23.6470000"), Some(Duration::from_millis(i32::MAX as u64)));
        assert_eq!(s("0"), Some(Duration::ZERO));
        assert_eq!(s("-00:00:00"), Some(Duration::ZERO));
        assert_eq!(s(INFINITE_TIMESPAN), None);
        assert_eq!(s("-00:00:00.001"), None);
        for bad in [
            "",
            "x",
            "-1",
            "-00:00:01",
            "24:00:00",
            "00:60:00",
            "00:00:60",
            "1.2",
            "00:00:00.12345678",
            "1:2:3:4:5",
            "00:05.",
            "00:05.0",
        ] {
            assert!(matches!(parse_timespan(bad), Err(Error::BadTimeout { .. })), "{bad:?}");
        }
    }

    #[test]
    fn timespans_format_as_dotnet_formats_them() {
        assert_eq!(format_timespan(Duration::from_secs(300)), "00:05:00");
        assert_eq!(format_timespan(Duration::from_millis(1500)), "00:00:01.5000000");
        assert_eq!(format_timespan(Duration::from_secs(36 * 3600)), "1.12:00:00");
    }

    #[test]
    fn levels_are_case_insensitive_and_mutex_names_are_file_names() {
        assert_eq!(IsolationLevel::parse("fullisolation").unwrap(), IsolationLevel::FullIsolation);
        assert_eq!(IsolationLevel::parse("NOISOLATION").unwrap(), IsolationLevel::NoIsolation);
        assert!(IsolationLevel::parse("Partial").is_err());
        assert!(check_mutex_name("RunningScript").is_ok());
        for bad in ["", "  ", "a/b", "a\\b", "a\0b"] {
            assert!(check_mutex_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_mutex_name(&"x".repeat(201)).is_err());
    }

    #[test]
    fn a_dead_holders_record_is_ignored_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!("{dead}-1"));
        std::fs::write(&stale, "level=FullIsolation\ncommand=x\nsince=y\n").unwrap();
        let me = std::process::id();
        let mine = dir.path().join(format!("{me}-{}", start_time(me).unwrap_or(0)));
        std::fs::write(&mine, "level=NoIsolation\ncommand=run-script\nsince=now\n").unwrap();
        let holders = read_holders(dir.path());
        assert_eq!(
            holders,
            vec![Holder { pid: me, level: "NoIsolation".into(), command: "run-script".into(), since: "now".into() }]
        );
        assert!(!stale.exists());
    }
}
