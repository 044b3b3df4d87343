//! The command a fleet run carries to every host, with its local files read once for all
//! hosts before any is contacted: each package's hashes and size, each other file's name
//! in the upload.

use std::path::{Path, PathBuf};

use super::Error;
use super::args::{CommandArg, FileKind};

/// What to do on every host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetCommand {
    /// `calamari fleet check`: the installs and free space, from a script (no Calamari needed).
    Check,
    /// Any Calamari command (`deploy-package`, `run-script`, `prune`...), run by the remote
    /// Calamari after it was pushed where missing.
    Remote(String),
}

impl FleetCommand {
    /// `check` is the fleet's own; every other name is Calamari's.
    pub fn parse(name: &str) -> Self {
        if name == "check" { FleetCommand::Check } else { FleetCommand::Remote(name.to_string()) }
    }

    /// The name as given.
    pub fn name(&self) -> &str {
        match self {
            FleetCommand::Check => "check",
            FleetCommand::Remote(name) => name,
        }
    }
}

impl std::fmt::Display for FleetCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A package to send, hashed once.
#[derive(Debug, Clone)]
pub(crate) struct LocalPackage {
    pub(crate) path: PathBuf,
    /// Its file name: its name in the remote package cache too.
    pub(crate) name: String,
    pub(crate) sha256: String,
    pub(crate) sha1: String,
    pub(crate) size: u64,
}

/// One argument of the command, its file (if any) made ready.
#[derive(Debug, Clone)]
pub(crate) enum PreparedArg {
    /// Passed as given.
    Plain(String),
    /// `--<option>=<package>`: to the remote package cache (unless it holds the same bytes).
    Package { option: &'static str, package: LocalPackage },
    /// `--<option>=<file>`: uploaded into the work directory as `entry`.
    File { option: &'static str, local: PathBuf, entry: String },
}

/// The command's arguments, ready for every host.
#[derive(Debug, Clone, Default)]
pub(crate) struct PreparedCommand {
    pub(crate) args: Vec<PreparedArg>,
}

impl PreparedCommand {
    /// Reads every package (hashes, size) and names every other file's upload.
    ///
    /// # Errors
    /// [`Error::Package`] when a package cannot be read; [`Error::Usage`] for a file whose
    /// name cannot travel.
    pub(crate) fn prepare(args: &[CommandArg]) -> Result<Self, Error> {
        let mut prepared = Vec::with_capacity(args.len());
        for (i, arg) in args.iter().enumerate() {
            prepared.push(match arg {
                CommandArg::Plain(text) => PreparedArg::Plain(text.clone()),
                CommandArg::File { option, path, kind: FileKind::Package } => {
                    let hashes = crate::package::hash::hash_file(path)
                        .map_err(|source| Error::Package { path: path.clone(), source: Box::new(source) })?;
                    let size = crate::fs::metadata(path)?.len();
                    let package = LocalPackage {
                        path: path.clone(),
                        name: base_name(option, path)?,
                        sha256: hashes.sha256,
                        sha1: hashes.sha1,
                        size,
                    };
                    PreparedArg::Package { option, package }
                }
                CommandArg::File { option, path, .. } => {
                    // Variables (and scripts, which may hold secrets too): 0600 in the 0700 work directory.
                    let entry = format!("files/{i}-{}", base_name(option, path)?);
                    PreparedArg::File { option, local: path.clone(), entry }
                }
            });
        }
        Ok(PreparedCommand { args: prepared })
    }

    /// The packages, in the command's order.
    pub(crate) fn packages(&self) -> impl Iterator<Item = &LocalPackage> {
        self.args.iter().filter_map(|arg| match arg {
            PreparedArg::Package { package, .. } => Some(package),
            _ => None,
        })
    }
}

fn base_name(option: &str, path: &Path) -> Result<String, Error> {
    path.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.contains('\n'))
        .map(str::to_string)
        .ok_or_else(|| Error::Usage(format!("--{option}='{}' has no file name that can be sent", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_hashed_once_and_files_named_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let package = dir.path().join("A.1.0.0.tar");
        crate::fs::write(&package, b"abc").unwrap();
        let args = vec![
            CommandArg::Plain("--x=1".into()),
            CommandArg::File { option: "package", path: package.clone(), kind: FileKind::Package },
            CommandArg::File { option: "script", path: dir.path().join("s.sh"), kind: FileKind::Other },
        ];
        let prepared = PreparedCommand::prepare(&args).unwrap();
        let packages: Vec<_> = prepared.packages().collect();
        assert_eq!(packages.len(), 1);
        assert_eq!((packages[0].name.as_str(), packages[0].size), ("A.1.0.0.tar", 3));
        assert_eq!(packages[0].sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert!(matches!(&prepared.args[2], PreparedArg::File { entry, .. } if entry == "files/2-s.sh"));

        let missing =
            vec![CommandArg::File { option: "package", path: dir.path().join("no.tar"), kind: FileKind::Package }];
        let e = PreparedCommand::prepare(&missing).unwrap_err();
        assert!(e.to_string().contains("no.tar"), "{e}");
        assert_eq!(FleetCommand::parse("check"), FleetCommand::Check);
        assert_eq!(FleetCommand::parse("run-script").name(), "run-script");
    }
}
