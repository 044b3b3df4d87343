//! The per-step directory that holds a script's bootstrap and variables file.
//!
//! Layout: `<base>/step-<pid>-<random>/` with mode 0700, files inside 0600 (created with
//! `O_EXCL`). `<base>` is `$TentacleHome/Work` when TentacleHome is set, else
//! `$TMPDIR/calamari-<uid>`; it must be a real directory (not a symlink) owned by us, and
//! is made 0700. The directory is removed when the [`StepDir`] is dropped, on success and
//! failure alike. A step killed with SIGKILL cannot clean up, so every new step first
//! sweeps the step directories whose creator is gone: their `.lock` (flock, released by
//! the kernel when the holder dies) can be taken and their pid no longer runs. Processes
//! the dead step left behind (found by its marker, see [`super::process`]) are killed.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use crate::fs::{IoContext as _, Result};
use crate::lock::NamedLock;

/// A private directory for one script run, removed on drop.
#[derive(Debug)]
pub(crate) struct StepDir {
    path: PathBuf,
    lock: Option<NamedLock>,
    /// A random id, also used to find the step's processes.
    id: String,
}

impl StepDir {
    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a new step directory under the default base, sweeping dead steps first.
    pub(crate) fn create(variables: &crate::VariableDictionary) -> Result<StepDir> {
        Self::create_in(&default_base(variables))
    }

    /// Creates a new step directory under `base`, sweeping dead steps first.
    pub(crate) fn create_in(base: &Path) -> Result<StepDir> {
        ensure_private_dir(base)?;
        sweep(base);
        let id = format!("{:016x}", rand::random::<u64>());
        let path = base.join(format!("step-{}-{id}", std::process::id()));
        DirBuilder::new().mode(0o700).create(&path).at("create step directory", &path)?;
        let lock = NamedLock::try_acquire(path.join(".lock"))?;
        Ok(StepDir { path, lock, id })
    }

    /// The step's random id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Writes a new file (0600, must not exist) in the directory and returns its path.
    pub(crate) fn write(&self, name: &str, contents: &[u8]) -> Result<PathBuf> {
        let path = self.path.join(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .at("create", &path)?;
        file.write_all(contents).at("write", &path)?;
        Ok(path)
    }
}

impl Drop for StepDir {
    fn drop(&mut self) {
        // Best effort. A script may have chmod-ed things inside; make sure we can delete.
        let _ = crate::fs::set_mode(&self.path, 0o700);
        let _ = crate::fs::remove_dir_all(&self.path);
        self.lock.take();
    }
}

/// `$TentacleHome/Work` (the agent's `env:TentacleHome`), or `$TMPDIR/calamari-<uid>`.
pub(crate) fn default_base(variables: &crate::VariableDictionary) -> PathBuf {
    let home = variables.get_raw(&format!("env:{}", crate::env_vars::TENTACLE_HOME)).filter(|v| !v.trim().is_empty());
    match home {
        Some(home) => PathBuf::from(home).join("Work"),
        None => std::env::temp_dir().join(format!("calamari-{}", rustix::process::getuid().as_raw())),
    }
}

/// Creates `dir` (0700) or checks that the existing one is a directory we own, then
/// makes it 0700.
fn ensure_private_dir(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent() {
        crate::fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).at("create directory", dir),
    }
    let meta = crate::fs::symlink_metadata(dir)?;
    let uid = rustix::process::geteuid().as_raw();
    if !meta.file_type().is_dir() || meta.uid() != uid {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "not a directory owned by the current user; refusing to keep secrets there",
        ))
        .at("use private directory", dir);
    }
    if meta.mode() & 0o077 != 0 {
        crate::fs::set_mode(dir, 0o700)?;
    }
    Ok(())
}

/// Removes step directories left behind by steps that were killed.
pub(crate) fn sweep(base: &Path) {
    let Ok(entries) = crate::fs::read_dir(base) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix("step-") else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let path = entry.path();
        if pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists() {
            continue; // its creator still runs
        }
        if pid == std::process::id() {
            continue; // ours: dropped by its guard
        }
        let lock_path = path.join(".lock");
        if lock_path.exists() {
            match NamedLock::try_acquire(&lock_path) {
                Ok(Some(_held)) => {}
                _ => continue,
            }
        }
        // Processes of the dead step (its marker is the directory's id) are stopped too.
        if let Some(id) = rest.split('-').nth(1).filter(|id| !id.is_empty()) {
            super::process::kill_marked(id);
        }
        let _ = crate::fs::set_mode(&path, 0o700);
        let _ = crate::fs::remove_dir_all(&path);
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests {
    use super::*;

    #[test]
    fn private_files_and_cleanup() {
        let base = tempfile::tempdir().unwrap();
        let step = StepDir::create_in(base.path()).unwrap();
        let file = step.write("Variables.bin", b"secret").unwrap();
        assert_eq!(std::fs::metadata(step.path()).unwrap().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        assert!(step.write("Variables.bin", b"again").is_err(), "files are created exclusively");
        let dir = step.path().to_path_buf();
        drop(step);
        assert!(!dir.exists());
    }

    #[test]
    fn leftovers_of_dead_steps_are_swept() {
        let base = tempfile::tempdir().unwrap();
        // pid 0x7fffffff cannot exist (pid_max is at most 2^22).
        let dead = base.path().join("step-2147483647-deadbeef");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("Variables.bin"), "secret").unwrap();
        let live = StepDir::create_in(base.path()).unwrap();
        assert!(!dead.exists(), "a dead step's directory is removed by the next run");
        assert!(live.path().exists());
    }
}
