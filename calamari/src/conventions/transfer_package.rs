//! `calamari transfer-package` (reference `TransferPackageCommand.cs`,
//! `TransferPackageConvention.cs`): copy the current deployment's package file to
//! `Octopus.Action.Package.TransferPath` without extracting it, and journal it like a
//! deployment.
//!
//! Order, as the reference: the package file (`Octopus.Tentacle.CurrentDeployment.PackageFilePath`)
//! must exist; the already-installed check runs first (and may skip the copy); the copy goes to
//! `<TransferPath>/<OriginalFileName or the file's own name>`, overwriting; the output variables
//! `Package.DirectoryPath`, `Package.FileName` and `Package.FilePath` are emitted (service
//! messages only); a journal entry is written on success and on failure. The copy is atomic:
//! a temp file beside the target, fsync'd, renamed over it, so a reader (or a kill) never sees
//! half a package.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::Error;
use super::already_installed::{AlreadyInstalled, check_already_installed};
use crate::fs::IoContext as _;
use crate::journal::{DeploymentJournal, JournalEntry};
use crate::variables::names;
use crate::{Log, Result, VariableDictionary};

/// The package file to transfer.
pub(crate) const CURRENT_DEPLOYMENT_PACKAGE_FILE_PATH: &str = "Octopus.Tentacle.CurrentDeployment.PackageFilePath";
/// Where to copy it (environment variables expanded).
pub(crate) const TRANSFER_PATH: &str = "Octopus.Action.Package.TransferPath";
/// The name to give the copy; the package file's own name when blank.
pub(crate) const ORIGINAL_FILE_NAME: &str = "Octopus.Action.Package.OriginalFileName";
/// Output: the directory the package was copied to.
pub(crate) const OUTPUT_DIRECTORY_PATH: &str = "Package.DirectoryPath";
/// Output: the copy's file name.
pub(crate) const OUTPUT_FILE_NAME: &str = "Package.FileName";
/// Output: the copy's full path.
pub(crate) const OUTPUT_FILE_PATH: &str = "Package.FilePath";

/// What `transfer-package` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transfer {
    /// The journal says the package is already installed: nothing was copied, and no
    /// journal entry is written.
    AlreadyInstalled,
    /// `Octopus.Action.SkipRemainingConventions` was set: nothing was copied.
    Skipped,
    /// The package was copied to this path.
    Copied(PathBuf),
}

/// Runs `transfer-package` against `variables`, logging to `log`.
///
/// # Errors
/// A user error (exit 1) when the package file is not given or missing, the transfer path is
/// blank or the file name is not a plain name; an I/O error naming the path when the copy fails.
pub fn transfer_package(variables: &mut VariableDictionary, log: &Log) -> Result<Transfer> {
    let package = expand_path(variables, &variables.get_or_empty(CURRENT_DEPLOYMENT_PACKAGE_FILE_PATH)?);
    if package.trim().is_empty() {
        return Err(
            Error::MissingVariable { what: "package file", variable: CURRENT_DEPLOYMENT_PACKAGE_FILE_PATH }.into()
        );
    }
    let package = PathBuf::from(package);
    if !package.is_file() {
        return Err(Error::PackageNotFound(package).into());
    }
    let journal = DeploymentJournal::from_variables(variables)?.map(|j| j.with_log(log.clone()));
    // The agent's own request; the already-installed check decides through `Transfer`.
    let skip_journal = variables.get_flag(names::SKIP_JOURNAL, false)?;
    let result = run(journal.as_ref(), variables, log, &package);
    if let Some(journal) =
        journal.as_ref().filter(|_| !skip_journal && !matches!(result, Ok(Transfer::AlreadyInstalled)))
    {
        // The reference's ExtractedTo for a transfer: whatever the agent said was extracted.
        let extracted_to = variables.get(names::ORIGINAL_PACKAGE_DIRECTORY_PATH)?.map(PathBuf::from);
        let written = JournalEntry::for_deployment(variables, result.is_ok(), Some(&package), extracted_to.as_deref())
            .and_then(|entry| entry.map_or(Ok(()), |e| journal.add(&e)));
        match (written, &result) {
            (Err(e), Ok(_)) => return Err(e.into()),
            // The transfer's own error is the one to report.
            (Err(e), Err(_)) => log.warn(format!("Could not record the failed transfer in the journal: {e}")),
            (Ok(()), _) => {}
        }
    }
    result
}

fn run(
    journal: Option<&DeploymentJournal>,
    variables: &mut VariableDictionary,
    log: &Log,
    package: &Path,
) -> Result<Transfer> {
    if let AlreadyInstalled::Yes(_) = check_already_installed(journal, variables, log)? {
        return Ok(Transfer::AlreadyInstalled);
    }
    if variables.get_flag(names::SKIP_REMAINING_CONVENTIONS, false)? {
        return Ok(Transfer::Skipped);
    }
    let transfer_path = expand_path(variables, &variables.get_or_empty(TRANSFER_PATH)?);
    if transfer_path.trim().is_empty() {
        return Err(Error::MissingVariable { what: "transfer path", variable: TRANSFER_PATH }.into());
    }
    let transfer_path = PathBuf::from(transfer_path);
    crate::fs::create_dir_all(&transfer_path)?;
    let file_name = match variables.get(ORIGINAL_FILE_NAME)?.filter(|n| !n.trim().is_empty()) {
        Some(name) => name,
        None => package.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
    };
    if file_name.is_empty() || file_name == "." || file_name == ".." || file_name.contains(['/', '\0']) {
        return Err(Error::NotAPlainFileName { file_name, variable: ORIGINAL_FILE_NAME }.into());
    }
    let file_path = transfer_path.join(&file_name);
    if file_path.exists() {
        log.info(format!("File {} already exists so it will be attempted to be overwritten", file_path.display()));
    }
    copy_atomic(package, &file_path)?;
    log.info(format!("Copied package '{file_name}' to directory '{}'", transfer_path.display()));
    log.output_variable(OUTPUT_DIRECTORY_PATH, &transfer_path.to_string_lossy(), false);
    log.output_variable(OUTPUT_FILE_NAME, &file_name, false);
    log.output_variable(OUTPUT_FILE_PATH, &file_path.to_string_lossy(), false);
    Ok(Transfer::Copied(file_path))
}

/// Copies `from` to `to` through a temp file beside `to` (fsync, rename, fsync of the
/// directory), keeping `from`'s permissions.
///
/// # Errors
/// An I/O error naming the path at fault.
pub(crate) fn copy_atomic(from: &Path, to: &Path) -> Result<(), crate::fs::IoError> {
    let dir = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut source = crate::fs::open(from)?;
    let permissions = source.metadata().at("read metadata of", from)?.permissions();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .at("create temporary file in", dir)?;
    std::io::copy(&mut source, tmp.as_file_mut()).at("copy to", tmp.path())?;
    tmp.as_file_mut().flush().at("write", tmp.path())?;
    tmp.as_file().set_permissions(permissions).at("chmod", tmp.path())?;
    tmp.as_file().sync_all().at("fsync", tmp.path())?;
    tmp.persist(to).map_err(|e| crate::fs::IoError { op: "rename to", path: to.to_path_buf(), source: e.error })?;
    crate::fs::sync_path(dir)
}

/// Expands the agent's environment variables (the `env:NAME` variables) in a path, see
/// [`expand_with`].
fn expand_path(variables: &VariableDictionary, path: &str) -> String {
    expand_with(path, |name| variables.get_raw(&format!("env:{name}")).map(str::to_string))
}

/// Expands environment variables in a path as the reference's
/// `CrossPlatform.ExpandPathEnvironmentVariables` does on Unix: a leading `~` is `$HOME`,
/// `$NAME`, `${NAME}` and `%NAME%` are replaced by the variable's value when it is set (and
/// left as written when not), and `\$` is a literal `$`. `lookup` gives a variable's value.
pub(crate) fn expand_with(path: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let path = match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match lookup("HOME") {
            Some(home) => format!("{home}{rest}"),
            None => path.to_string(),
        },
        _ => path.to_string(),
    };
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(path.len());
    let mut rest = path.as_str();
    while let Some(i) = rest.find(['$', '%', '\\']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("\\$") {
            out.push('$');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            match after.find('}') {
                Some(end) if !after[..end].is_empty() && after[..end].chars().all(is_name) => {
                    match lookup(&after[..end]) {
                        Some(v) => out.push_str(&v),
                        None => out.push_str(&tail[..end + 3]),
                    }
                    rest = &after[end + 1..];
                }
                _ => {
                    out.push('$');
                    rest = &tail[1..];
                }
            }
        } else if let Some(after) = tail.strip_prefix('$') {
            let len = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
            if len == 0 {
                out.push('$');
            } else {
                match lookup(&after[..len]) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&tail[..len + 1]),
                }
            }
            rest = &after[len..];
        } else if let Some(after) = tail.strip_prefix('%') {
            match after.find('%') {
                Some(end) if end > 0 && !after[..end].contains(['/', ' ']) => match lookup(&after[..end]) {
                    Some(v) => {
                        out.push_str(&v);
                        rest = &after[end + 1..];
                    }
                    None => {
                        out.push('%');
                        rest = after;
                    }
                },
                _ => {
                    out.push('%');
                    rest = after;
                }
            }
        } else {
            out.push('\\');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests {
    use super::*;

    #[test]
    fn environment_expansion() {
        let lookup = |name: &str| match name {
            "HOME" => Some("/home/u".to_string()),
            "DROP" => Some("/srv/drop".to_string()),
            _ => None,
        };
        let cases = [
            ("~/pkgs", "/home/u/pkgs"),
            ("~", "/home/u"),
            ("~other/x", "~other/x"),
            ("$DROP/in", "/srv/drop/in"),
            ("${DROP}/in", "/srv/drop/in"),
            ("%DROP%/in", "/srv/drop/in"),
            ("$NOPE/in", "$NOPE/in"),
            ("${NOPE}/in", "${NOPE}/in"),
            ("%NOPE%/in", "%NOPE%/in"),
            ("/a\\$DROP", "/a$DROP"),
            ("/100%/x", "/100%/x"),
            ("/a$/b", "/a$/b"),
            ("/a\\b", "/a\\b"),
            ("/plain/path", "/plain/path"),
        ];
        for (input, expected) in cases {
            assert_eq!(expand_with(input, lookup), expected, "{input}");
        }
    }

    #[test]
    fn copy_atomic_replaces_and_keeps_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a.zip");
        std::fs::write(&from, b"new contents").unwrap();
        std::fs::set_permissions(&from, std::fs::Permissions::from_mode(0o640)).unwrap();
        let to = dir.path().join("out/b.zip");
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(&to, b"old").unwrap();
        copy_atomic(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"new contents");
        assert_eq!(std::fs::metadata(&to).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_dir(to.parent().unwrap()).unwrap().count(), 1, "no temp file left");
        // Copying a file onto itself keeps it.
        copy_atomic(&to, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"new contents");
    }
}
