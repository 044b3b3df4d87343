//! The pieces the install transaction (`install.rs`), the bundle (`bundle.rs`) and the version
//! listing (`versions.rs`) share: the install options, the executable to install, the
//! [`Stager`] that writes one install's files, leftover removal and the install lock. Kept
//! apart from `install.rs` so those three files form no cycle: each of them uses this one.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Error;
use super::layout::{self, BINARY_NAME, MANIFEST_FILE, OLD_PREFIX, SUCCESS_FILE, TEMP_PREFIX};
use super::manifest::{Manifest, ManifestFile};
use super::ops::Ops;
use crate::fs::{self, IoContext};
use crate::lock::NamedLock;
use crate::log::Log;

/// How to install.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Reinstall even when the version is complete.
    pub force: bool,
    /// How long to wait for another install of the same home to finish.
    pub lock_timeout: Duration,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions { force: false, lock_timeout: Duration::from_secs(600) }
    }
}

/// A Calamari executable to install or bundle: its file name must be `calamari`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalamariExecutable {
    path: PathBuf,
    running: bool,
}

impl CalamariExecutable {
    /// The executable at `path`.
    ///
    /// # Errors
    /// [`Error::NotCalamari`] when its file name is not `calamari`; an I/O error when it is
    /// not a readable file.
    pub fn at(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        if path.file_name().is_none_or(|n| n != BINARY_NAME) {
            return Err(Error::NotCalamari { path });
        }
        fs::metadata(&path)?;
        Ok(CalamariExecutable { path, running: false })
    }

    /// The executable of the running process, which must be Calamari (the `calamari`
    /// binary, not a program that embeds the library). On Linux it is read through
    /// `/proc/self/exe`, so a binary replaced on disk while we run is still read whole.
    ///
    /// # Errors
    /// [`Error::NotCalamari`] when the running executable is not named `calamari`.
    pub fn running() -> Result<Self, Error> {
        let exe = std::env::current_exe().at("locate the running executable", "/proc/self/exe")?;
        let mut executable = CalamariExecutable::at(exe)?;
        executable.running = true;
        Ok(executable)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens it for reading; returns the file and the path to name in errors.
    pub(crate) fn open(&self) -> Result<(File, PathBuf), Error> {
        if self.running
            && cfg!(target_os = "linux")
            && let Ok(file) = fs::open("/proc/self/exe")
        {
            return Ok((file, self.path.clone()));
        }
        Ok((fs::open(&self.path)?, self.path.clone()))
    }
}

/// Writes the files of one install into its staging directory.
pub(crate) struct Stager<'a> {
    ops: &'a mut dyn Ops,
    root: PathBuf,
    files: Vec<ManifestFile>,
    dirs: BTreeSet<PathBuf>,
}

impl<'a> Stager<'a> {
    /// A stager writing into the (created, empty) staging directory `root`.
    pub(super) fn new(ops: &'a mut dyn Ops, root: PathBuf) -> Self {
        Stager { ops, root, files: Vec::new(), dirs: BTreeSet::new() }
    }

    /// Writes `rel` from `src` and fsyncs it; returns its manifest entry.
    pub(crate) fn add_file(
        &mut self,
        rel: &str,
        executable: bool,
        src: &mut dyn Read,
        src_label: &Path,
    ) -> Result<ManifestFile, Error> {
        layout::validate_rel_path(rel)
            .map_err(|e| Error::BadFileName { path: rel.to_string(), problem: e.to_string() })?;
        if rel == MANIFEST_FILE || rel == SUCCESS_FILE || self.files.iter().any(|f| f.path == rel) {
            return Err(Error::BadFileName {
                path: rel.to_string(),
                problem: format!("file '{rel}' is reserved or given twice"),
            });
        }
        let mut dir = self.root.clone();
        let components: Vec<&str> = rel.split('/').collect();
        for component in &components[..components.len() - 1] {
            dir.push(component);
            if self.dirs.insert(dir.clone()) {
                self.ops.create_dir(&dir)?;
            }
        }
        let dest = self.root.join(rel);
        let mode = if executable { 0o755 } else { 0o644 };
        let (size, sha256) = self.ops.write_file(&dest, mode, src, src_label)?;
        self.ops.checkpoint("file-written");
        self.ops.sync_file(&dest)?;
        self.ops.checkpoint("file-synced");
        let entry = ManifestFile { path: rel.to_string(), size, sha256, executable };
        self.files.push(entry.clone());
        Ok(entry)
    }

    /// Writes `manifest.json` and fsyncs every directory, deepest first.
    pub(super) fn finish(self, version: &str) -> Result<Manifest, Error> {
        let manifest = Manifest::new(version, self.files);
        let path = self.root.join(MANIFEST_FILE);
        let json = manifest.to_json();
        self.ops.write_file(&path, 0o644, &mut json.as_slice(), Path::new(MANIFEST_FILE))?;
        self.ops.sync_file(&path)?;
        for dir in self.dirs.iter().rev() {
            self.ops.sync_dir(dir)?;
        }
        self.ops.sync_dir(&self.root)?;
        Ok(manifest)
    }
}

/// Removes `.tmp-*` and `.old-*` entries of killed runs. Only called under the lock, so no
/// live install owns them.
pub(crate) fn remove_leftovers(ops: &mut dyn Ops, root: &Path, log: &Log) -> Result<Vec<PathBuf>, Error> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TEMP_PREFIX) || name.starts_with(OLD_PREFIX) {
            let path = entry.path();
            log.verbose(format!("Removing leftover {}", path.display()));
            let result = match entry.file_type() {
                Ok(kind) if kind.is_dir() => ops.remove_dir_all(&path),
                _ => ops.remove_file(&path),
            };
            // A leftover we cannot remove must not block every later install: it claims nothing.
            match result {
                Ok(()) => removed.push(path),
                Err(e) => log.warn(format!("Could not remove a leftover of an interrupted install: {e}")),
            }
        }
    }
    Ok(removed)
}

/// Takes the home's install lock, logging when it has to wait, up to `timeout`.
pub(crate) fn acquire_lock(path: &Path, timeout: Duration, log: &Log) -> Result<NamedLock, Error> {
    let start = Instant::now();
    let mut waited = false;
    let lock = NamedLock::acquire_within("install lock", path, timeout, |path| {
        waited = true;
        log.info(format!("Waiting for another Calamari install to finish (lock {})", path.display()));
    })?;
    if waited {
        log.verbose(format!("Acquired {} after {} ms", path.display(), start.elapsed().as_millis()));
    }
    Ok(lock)
}
