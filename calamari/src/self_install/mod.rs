//! The versioned install `TentacleHome/Calamari/<version>/`, with `Success.txt` written last.
//!
//! An agent decides whether to push a newer Calamari by checking that
//! `<TentacleHome>/Calamari/<version>/Success.txt` exists (`docs/behaviour.md`, "The self-install"). Everything here
//! keeps one invariant, whatever happens (a `kill -9`, a full disk, a read-only home, two
//! installs at once): **`Success.txt` exists ⇒ every file the manifest lists is there with
//! its recorded SHA-256.**
//!
//! How an install keeps it:
//! 1. Nothing is written when the version is already complete (so a read-only home with the
//!    right version passes), unless `force` is given.
//! 2. A `flock` on `Calamari/.install.lock` serialises installs and prunes of one home; the
//!    kernel drops it when its holder dies. Under the lock, leftover `.tmp-*`/`.old-*`
//!    directories of killed runs are removed.
//! 3. The files go into a fresh sibling `Calamari/.tmp-<version>-<random>/`, each fsync'd,
//!    then `manifest.json` (version, platform, per-file size and SHA-256), then the staging
//!    directory is fsync'd.
//! 4. A half-made version directory (no `Success.txt`) is moved aside; with `force`, a
//!    complete one first loses its `Success.txt` (fsync'd) and is then moved aside, so it is
//!    never destroyed before the new install is complete.
//! 5. One `rename(2)` makes the staging directory the version directory; the parent is fsync'd.
//! 6. `Success.txt` is written as temp file, fsync, rename, fsync of the directory.
//!
//! The same files travel between machines as a bundle, `Calamari.<version>.tar.gz` (a
//! `manifest.json` plus the files, all regular files at plain relative paths) with
//! `Calamari.<version>.tar.gz.sha256` beside it in `sha256sum` format. [`install_bundle`]
//! verifies the whole bundle (format, manifest, every hash, the overall hash when given)
//! before it touches the home, and checks every hash again while extracting.
//!
//! The first push to a machine that has no Calamari yet needs nothing but `tar`: extract
//! the `calamari` entry of the bundle into a scratch directory and let it run
//! `calamari install --home H --bundle FILE --sha256 HEX`, which installs properly.
//!
//! Tests can kill an install at a named checkpoint: see [`fault`].

mod bundle;
pub mod commands;
mod install;
mod layout;
mod manifest;
mod ops;
mod stager;
mod versions;

use std::path::PathBuf;

pub use bundle::{verify_bundle, write_bundle};
pub use commands::{DEFAULT_KEEP_OTHERS, InstallRequest, resolve_home};
pub use install::{InstallOutcome, InstallStatus, install_bundle, install_bundle_with, install_executable};
pub use layout::version_dir;
pub(crate) use layout::{BINARY_NAME, calamari_dir, validate_version};
pub use stager::{CalamariExecutable, InstallOptions};
pub(crate) use versions::compare_versions;
pub use versions::{
    InstallState, InstalledVersion, PruneOptions, PruneReport, check_install, installed_versions, needs_update, prune,
    prune_sparing, verify_install,
};

/// Errors of this module. Each names the path, entry or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed (read-only home, "No space left on device", ...).
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// A version that cannot be a directory name under `Calamari/`.
    #[error("invalid Calamari version '{version}': {reason}")]
    InvalidVersion {
        /// The version as given.
        version: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A `--sha256` value that is not 64 hex digits.
    #[error("invalid SHA-256 '{0}': expected 64 hexadecimal digits")]
    InvalidSha256(String),
    /// The bundle is not a valid Calamari bundle; nothing was written to the home.
    #[error("corrupt Calamari bundle '{}': {problem}", bundle.display())]
    Bundle {
        /// The bundle file.
        bundle: PathBuf,
        /// What is wrong: which entry, which hash.
        problem: String,
    },
    /// The bundle's SHA-256 is not the one expected; nothing was written to the home.
    #[error("Calamari bundle '{}' has SHA-256 {actual}, expected {expected}", bundle.display())]
    BundleHash {
        /// The bundle file.
        bundle: PathBuf,
        /// The hash asked for.
        expected: String,
        /// The hash of the file.
        actual: String,
    },
    /// Another install held the lock for too long.
    #[error(transparent)]
    LockTimeout(#[from] crate::lock::LockTimeout),
    /// An installed version does not match its manifest.
    #[error("Calamari install '{}' is damaged: {problem}", dir.display())]
    Damaged {
        /// The version directory.
        dir: PathBuf,
        /// What does not match.
        problem: String,
    },
    /// Neither `--home` nor `$TentacleHome` names the agent's home.
    #[error("No home given: pass --home or set the TentacleHome environment variable")]
    NoHome,
    /// The version asked for is not installed completely.
    #[error("Calamari {version} is not installed at {}", dir.display())]
    NotInstalled {
        /// The version.
        version: String,
        /// Its directory.
        dir: PathBuf,
    },
    /// A file of the install has an unsafe or reserved name.
    #[error("{problem}")]
    BadFileName {
        /// The relative path.
        path: String,
        /// Why it is refused.
        problem: String,
    },
    /// The executable changed while it was being bundled.
    #[error("{} changed while it was being bundled", path.display())]
    ChangedWhileBundling {
        /// The executable.
        path: PathBuf,
    },
    /// A file to install disappeared while it was being copied.
    #[error("{} went away while it was being installed", path.display())]
    SourceVanished {
        /// The file.
        path: PathBuf,
    },
    /// The executable given to install is not a Calamari executable.
    #[error(
        "'{}' is not a Calamari executable (its file name is not '{}'); refusing to install it as Calamari",
        path.display(), BINARY_NAME
    )]
    NotCalamari {
        /// The executable.
        path: PathBuf,
    },
}

impl From<crate::lock::LockError> for Error {
    fn from(e: crate::lock::LockError) -> Self {
        match e {
            crate::lock::LockError::Io(e) => Error::Io(e),
            crate::lock::LockError::Timeout(t) => Error::LockTimeout(t),
        }
    }
}
