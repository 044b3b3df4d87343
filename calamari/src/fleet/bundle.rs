//! The Calamari bundle a fleet run pushes: `--bundle=FILE`, or one made from the running
//! executable, only when the first host needs it, and kept in
//! `$XDG_CACHE_HOME/calamari/fleet/<executable's SHA-256>/` (`~/.cache/...`) for the next run.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::fs::IoContext as _;
use crate::self_install::{CalamariExecutable, verify_bundle, write_bundle};

/// A bundle ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Bundle {
    /// The file.
    pub(crate) path: PathBuf,
    /// Its SHA-256 (hex).
    pub(crate) sha256: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// The version it installs.
    pub(crate) version: String,
}

/// The bundle could not be made, read or verified. Cheap to clone: every host that needs
/// the bundle gets the same error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", crate::error::chain(&**.source))]
pub struct BundleError {
    #[source]
    source: Arc<crate::self_install::Error>,
}

impl From<crate::self_install::Error> for BundleError {
    fn from(e: crate::self_install::Error) -> Self {
        BundleError { source: Arc::new(e) }
    }
}

impl From<crate::fs::IoError> for BundleError {
    fn from(e: crate::fs::IoError) -> Self {
        crate::self_install::Error::from(e).into()
    }
}

/// Where the bundle comes from; made at most once per run.
#[derive(Debug)]
pub(crate) struct BundleSource {
    given: Option<PathBuf>,
    executable: Option<CalamariExecutable>,
    made: Mutex<Option<Result<Bundle, BundleError>>>,
}

impl BundleSource {
    pub(crate) fn new(given: Option<PathBuf>, executable: Option<CalamariExecutable>) -> Self {
        BundleSource { given, executable, made: Mutex::new(None) }
    }

    /// The version the hosts must have: the bundle's when one is given (its manifest is
    /// read at once), else this build's.
    pub(crate) fn version(&self) -> Result<String, BundleError> {
        match &self.given {
            Some(_) => self.get().map(|b| b.version),
            None => Ok(crate::VERSION.to_string()),
        }
    }

    /// Whether the bundle was given (`--bundle`): it may be for another platform.
    pub(crate) fn is_given(&self) -> bool {
        self.given.is_some()
    }

    /// The bundle, made or verified on first use.
    pub(crate) fn get(&self) -> Result<Bundle, BundleError> {
        let mut made = self.made.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        made.get_or_insert_with(|| self.make()).clone()
    }

    fn make(&self) -> Result<Bundle, BundleError> {
        let path = match (&self.given, &self.executable) {
            (Some(path), _) => path.clone(),
            (None, Some(executable)) => {
                let exe_hash = crate::package::hash::hash_file(executable.path())
                    .map_err(|e| crate::self_install::Error::Bundle {
                        bundle: executable.path().to_path_buf(),
                        problem: crate::error::chain(&e),
                    })?
                    .sha256;
                let dir = cache_dir().join(&exe_hash[..16]);
                let path = dir.join(format!("Calamari.{}.tar.gz", crate::VERSION));
                if path.is_file() && verify_bundle(&path, None).is_ok() {
                    path
                } else {
                    write_bundle(&dir, executable)?
                }
            }
            (None, None) => {
                return Err(crate::self_install::Error::NotCalamari { path: PathBuf::new() }.into());
            }
        };
        let manifest = verify_bundle(&path, None)?;
        let (sha256, size) = {
            use sha2::Digest as _;
            let mut hasher = sha2::Sha256::new();
            let size = std::io::copy(&mut crate::fs::open(&path)?, &mut hasher).at("read", &path)?;
            (hex::encode(hasher.finalize()), size)
        };
        Ok(Bundle { path, sha256, size, version: manifest.version })
    }
}

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("calamari").join("fleet")
}
