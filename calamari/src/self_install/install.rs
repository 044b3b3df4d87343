//! The install transaction: lock, clean leftovers, stage, switch, mark (see the module doc).

use std::path::{Path, PathBuf};

use super::layout::{
    self, BINARY_NAME, LOCK_FILE, MANIFEST_FILE, OLD_PREFIX, SUCCESS_FILE, TEMP_PREFIX, calamari_dir, temp_name,
};
use super::ops::{Ops, RealOps};
use super::stager::{CalamariExecutable, InstallOptions, Stager, acquire_lock, remove_leftovers};
use super::versions::{InstallState, state_of};
use super::{Error, bundle};
use crate::fs;
use crate::log::Log;

/// What an install did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallStatus {
    /// Installed where nothing was.
    Installed,
    /// Replaced an incomplete version directory (no `Success.txt`) left by an interrupted run.
    Repaired,
    /// Replaced a complete install (`force`).
    Reinstalled,
    /// The version was complete already; nothing was written.
    AlreadyInstalled,
}

/// The result of an install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOutcome {
    /// The version installed.
    pub version: String,
    /// `home/Calamari/<version>`.
    pub dir: PathBuf,
    /// What was done.
    pub status: InstallStatus,
}

/// Installs the Calamari executable `executable` as this build's version,
/// `home/Calamari/<VERSION>/calamari`, with `Success.txt` last.
///
/// The executable is taken explicitly: a program that embeds this library must not install
/// *itself* as Calamari by accident. The `calamari` binary passes
/// [`CalamariExecutable::running`].
///
/// # Errors
/// I/O errors name the path (read-only home, "No space left on device"); a version
/// directory is never left with `Success.txt` unless complete.
pub fn install_executable(
    home: &Path,
    executable: &CalamariExecutable,
    options: &InstallOptions,
    log: &Log,
) -> Result<InstallOutcome, Error> {
    install_executable_with(&mut RealOps, home, executable, options, log)
}

pub(crate) fn install_executable_with(
    ops: &mut dyn Ops,
    home: &Path,
    executable: &CalamariExecutable,
    options: &InstallOptions,
    log: &Log,
) -> Result<InstallOutcome, Error> {
    install_with(ops, home, crate::VERSION, options, log, &mut |stager| {
        let (mut exe, label) = executable.open()?;
        stager.add_file(BINARY_NAME, true, &mut exe, &label)?;
        Ok(())
    })
}

/// Installs the version in `bundle` (see [`install_bundle_with`]) with default options.
///
/// # Errors
/// As [`install_bundle_with`].
pub fn install_bundle(
    home: &Path,
    bundle: &Path,
    expected_sha256: Option<&str>,
    log: &Log,
) -> Result<InstallOutcome, Error> {
    install_bundle_with(home, bundle, expected_sha256, &InstallOptions::default(), log)
}

/// Installs the version in `bundle` into `home/Calamari/<version>/`. The bundle is verified
/// first (its SHA-256 when `expected_sha256` is given, gzip/tar format, manifest, every
/// entry's hash, the platform) and nothing in `home` is touched when that fails; while
/// extracting every hash is checked again.
///
/// # Errors
/// [`Error::BundleHash`], [`Error::Bundle`] (naming the entry and hash), [`Error::InvalidSha256`],
/// or I/O errors naming the path.
pub fn install_bundle_with(
    home: &Path,
    bundle: &Path,
    expected_sha256: Option<&str>,
    options: &InstallOptions,
    log: &Log,
) -> Result<InstallOutcome, Error> {
    let mut verified = bundle::open_verified(bundle, expected_sha256)?;
    log.verbose(format!(
        "Verified bundle {} (Calamari {}, {} files, SHA-256 {})",
        bundle.display(),
        verified.manifest.version,
        verified.manifest.files.len(),
        verified.sha256
    ));
    let version = verified.manifest.version.clone();
    install_with(&mut RealOps, home, &version, options, log, &mut |stager| verified.extract_into(stager))
}

type Payload<'p> = dyn FnMut(&mut Stager<'_>) -> Result<(), Error> + 'p;

/// The transaction shared by [`install_executable`] and [`install_bundle`].
pub(crate) fn install_with(
    ops: &mut dyn Ops,
    home: &Path,
    version: &str,
    options: &InstallOptions,
    log: &Log,
    payload: &mut Payload<'_>,
) -> Result<InstallOutcome, Error> {
    layout::validate_version(version)?;
    let root = calamari_dir(home);
    let dir = root.join(version);
    let outcome = |status| InstallOutcome { version: version.to_string(), dir: dir.clone(), status };

    // Complete already: write nothing (this also works on a read-only home).
    if !options.force && state_of(&dir) == InstallState::Complete {
        log.info(format!("Calamari {version} is already installed at {} (Success.txt present).", dir.display()));
        return Ok(outcome(InstallStatus::AlreadyInstalled));
    }

    if !root.is_dir() {
        fs::create_dir_all(&root)?;
        fs::sync_path(home)?;
    }
    let _lock = acquire_lock(&root.join(LOCK_FILE), options.lock_timeout, log)?;
    ops.checkpoint("locked");
    remove_leftovers(ops, &root, log)?;

    let existing = state_of(&dir);
    if existing == InstallState::Complete && !options.force {
        log.info(format!(
            "Calamari {version} was installed at {} by another process meanwhile (Success.txt present).",
            dir.display()
        ));
        return Ok(outcome(InstallStatus::AlreadyInstalled));
    }
    log.info(format!("Installing Calamari {version} into {}", dir.display()));

    let staging = root.join(temp_name(TEMP_PREFIX, version));
    ops.create_dir(&staging)?;
    ops.checkpoint("staging-created");
    let staged = {
        let mut stager = Stager::new(&mut *ops, staging.clone());
        payload(&mut stager).and_then(|()| stager.finish(version))
    };
    let manifest = match staged {
        Ok(manifest) => manifest,
        Err(e) => {
            discard(ops, &staging, log);
            return Err(e);
        }
    };
    ops.checkpoint("staged");

    let (status, old) = match switch(ops, &root, &dir, &staging, existing, version) {
        Ok(done) => done,
        Err(e) => {
            discard(ops, &staging, log);
            return Err(e);
        }
    };
    ops.checkpoint("renamed");

    let marker = format!(
        "Calamari {version}\nplatform: {}\nmanifest-sha256: {}\ninstalled: {}\n",
        manifest.platform,
        super::ops::hash_reader(&mut manifest.to_json().as_slice(), Path::new(MANIFEST_FILE))?.1,
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    write_marker(ops, &dir, marker.as_bytes())?;
    ops.checkpoint("installed");

    if let Some(old) = old
        && let Err(e) = ops.remove_dir_all(&old)
    {
        log.verbose(format!("Could not remove the replaced install (a later install removes it): {e}"));
    }
    let what = match status {
        InstallStatus::Repaired => " (replaced an incomplete install)",
        InstallStatus::Reinstalled => " (reinstalled)",
        _ => "",
    };
    log.info(format!("Calamari {version} is installed at {}{what}", dir.display()));
    Ok(outcome(status))
}

/// Makes the staging directory the version directory; returns the status and the
/// directory moved aside, if any.
fn switch(
    ops: &mut dyn Ops,
    root: &Path,
    dir: &Path,
    staging: &Path,
    existing: InstallState,
    version: &str,
) -> Result<(InstallStatus, Option<PathBuf>), Error> {
    let status = match existing {
        InstallState::Missing => InstallStatus::Installed,
        InstallState::Incomplete => InstallStatus::Repaired,
        InstallState::Complete => {
            // The old install stops claiming completeness before anything of it moves.
            ops.remove_file(&dir.join(SUCCESS_FILE))?;
            ops.sync_dir(dir)?;
            ops.checkpoint("old-marker-removed");
            InstallStatus::Reinstalled
        }
    };
    let old = if existing == InstallState::Missing {
        None
    } else {
        let old = root.join(temp_name(OLD_PREFIX, version));
        ops.rename(dir, &old)?;
        ops.checkpoint("old-moved");
        Some(old)
    };
    ops.rename(staging, dir)?;
    ops.sync_dir(root)?;
    Ok((status, old))
}

/// `Success.txt` as temp file, fsync, rename, fsync of the directory. This is what
/// [`crate::fs::write_atomic`] does, spelled out through [`Ops`] so tests see each step.
fn write_marker(ops: &mut dyn Ops, dir: &Path, contents: &[u8]) -> Result<(), Error> {
    let tmp = dir.join(format!(".{SUCCESS_FILE}.{:016x}.tmp", rand::random::<u64>()));
    let result = (|| {
        ops.write_file(&tmp, 0o644, &mut &contents[..], Path::new(SUCCESS_FILE))?;
        ops.sync_file(&tmp)?;
        ops.checkpoint("marker-written");
        ops.rename(&tmp, &dir.join(SUCCESS_FILE))?;
        ops.checkpoint("marker-renamed");
        ops.sync_dir(dir)
    })();
    if result.is_err() {
        let _ = ops.remove_file(&tmp);
    }
    Ok(result?)
}

/// Removes a staging directory after a failure (best effort: a later install removes it too).
fn discard(ops: &mut dyn Ops, staging: &Path, log: &Log) {
    if let Err(e) = ops.remove_dir_all(staging) {
        log.verbose(format!("Could not remove the staging directory (a later install removes it): {e}"));
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
pub(crate) mod tests {
    use super::super::manifest::Manifest;
    use super::super::ops::Recorder;
    use super::*;
    use crate::lock::NamedLock;
    use std::time::Duration;

    fn payload(stager: &mut Stager<'_>) -> Result<(), Error> {
        stager.add_file("calamari", true, &mut &b"binary"[..], Path::new("src"))?;
        stager.add_file("lib/data.txt", false, &mut &b"data"[..], Path::new("src"))?;
        Ok(())
    }

    fn install(home: &Path, force: bool) -> (InstallOutcome, Vec<String>) {
        let (log, _, _) = Log::capture();
        let mut rec = Recorder { base: calamari_dir(home), events: Vec::new() };
        let options = InstallOptions { force, ..InstallOptions::default() };
        let outcome = install_with(&mut rec, home, "9.8.7", &options, &log, &mut payload).unwrap();
        (outcome, rec.events)
    }

    fn position(events: &[String], wanted: &str) -> usize {
        events.iter().position(|e| e == wanted).unwrap_or_else(|| panic!("no '{wanted}' in {events:#?}"))
    }

    #[test]
    fn a_fresh_install_fsyncs_files_then_renames_then_writes_the_marker_atomically() {
        let home = tempfile::tempdir().unwrap();
        let (outcome, events) = install(home.path(), false);
        assert_eq!(outcome.status, InstallStatus::Installed);
        let expected = [
            "mkdir .tmp-*",
            "write .tmp-*/calamari",
            "fsync .tmp-*/calamari",
            "mkdir .tmp-*/lib",
            "write .tmp-*/lib/data.txt",
            "fsync .tmp-*/lib/data.txt",
            "write .tmp-*/manifest.json",
            "fsync .tmp-*/manifest.json",
            "fsync-dir .tmp-*/lib",
            "fsync-dir .tmp-*",
            "rename .tmp-* -> 9.8.7",
            "fsync-dir ",
            "write 9.8.7/.Success.txt.*",
            "fsync 9.8.7/.Success.txt.*",
            "rename 9.8.7/.Success.txt.* -> 9.8.7/Success.txt",
            "fsync-dir 9.8.7",
        ];
        let fs_events: Vec<&String> = events.iter().filter(|e| !e.starts_with("checkpoint")).collect();
        assert_eq!(fs_events, expected, "{events:#?}");
        // Checkpoints sit between the steps they name.
        assert!(position(&events, "checkpoint staged") < position(&events, "rename .tmp-* -> 9.8.7"));
        assert!(
            position(&events, "checkpoint marker-written")
                < position(&events, "rename 9.8.7/.Success.txt.* -> 9.8.7/Success.txt")
        );
        let dir = version_dir_of(home.path());
        assert_eq!(std::fs::read(dir.join("lib/data.txt")).unwrap(), b"data");
        let manifest = Manifest::parse(&std::fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap();
        assert_eq!(manifest.files.len(), 2);
        assert!(std::fs::read_to_string(dir.join(SUCCESS_FILE)).unwrap().starts_with("Calamari 9.8.7\n"));
    }

    fn version_dir_of(home: &Path) -> PathBuf {
        layout::version_dir(home, "9.8.7")
    }

    #[test]
    fn a_second_install_writes_nothing() {
        let home = tempfile::tempdir().unwrap();
        install(home.path(), false);
        let (outcome, events) = install(home.path(), false);
        assert_eq!(outcome.status, InstallStatus::AlreadyInstalled);
        assert!(events.is_empty(), "{events:#?}");
    }

    #[test]
    fn force_removes_the_old_marker_before_moving_the_old_install_aside() {
        let home = tempfile::tempdir().unwrap();
        install(home.path(), false);
        let (outcome, events) = install(home.path(), true);
        assert_eq!(outcome.status, InstallStatus::Reinstalled);
        let staged = position(&events, "checkpoint staged");
        let unmark = position(&events, "rm 9.8.7/Success.txt");
        let aside = position(&events, "rename 9.8.7 -> .old-*");
        let switch = position(&events, "rename .tmp-* -> 9.8.7");
        let mark = position(&events, "rename 9.8.7/.Success.txt.* -> 9.8.7/Success.txt");
        let cleanup = position(&events, "rm -r .old-*");
        assert!(staged < unmark && unmark < aside && aside < switch && switch < mark && mark < cleanup, "{events:#?}");
        assert!(version_dir_of(home.path()).join(SUCCESS_FILE).is_file());
    }

    #[test]
    fn an_incomplete_install_and_leftovers_are_replaced() {
        let home = tempfile::tempdir().unwrap();
        let root = calamari_dir(home.path());
        std::fs::create_dir_all(root.join("9.8.7")).unwrap();
        std::fs::write(root.join("9.8.7/calamari"), b"half").unwrap();
        std::fs::create_dir_all(root.join(".tmp-9.8.7-dead")).unwrap();
        std::fs::create_dir_all(root.join(".old-1.0-dead/x")).unwrap();
        let (outcome, events) = install(home.path(), false);
        assert_eq!(outcome.status, InstallStatus::Repaired);
        assert!(events.contains(&"rm -r .tmp-*".to_string()) && events.contains(&"rm -r .old-*".to_string()));
        let names: Vec<String> =
            std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, [".install.lock", "9.8.7"]);
        assert_eq!(std::fs::read(root.join("9.8.7/calamari")).unwrap(), b"binary");
    }

    #[test]
    fn a_failing_payload_leaves_no_staging_and_no_marker() {
        let home = tempfile::tempdir().unwrap();
        let (log, _, _) = Log::capture();
        let mut failing = |stager: &mut Stager<'_>| -> Result<(), Error> {
            stager.add_file("calamari", true, &mut &b"binary"[..], Path::new("src"))?;
            Err(Error::SourceVanished { path: "source".into() })
        };
        let err = install_with(&mut RealOps, home.path(), "1.0.0", &InstallOptions::default(), &log, &mut failing)
            .unwrap_err();
        assert!(err.to_string().contains("source went away"), "{err}");
        let root = calamari_dir(home.path());
        let names: Vec<String> =
            std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, [".install.lock"]);
    }

    #[test]
    fn a_held_lock_is_waited_for_and_times_out_naming_the_lock() {
        let home = tempfile::tempdir().unwrap();
        let held = NamedLock::acquire(calamari_dir(home.path()).join(LOCK_FILE)).unwrap();
        let (log, out, _) = Log::capture();
        let options = InstallOptions { force: false, lock_timeout: Duration::from_millis(100) };
        let err = install_with(&mut RealOps, home.path(), "1.0.0", &options, &log, &mut payload).unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        assert!(err.to_string().contains(LOCK_FILE), "{err}");
        assert!(out.contents().contains("Waiting for another Calamari install to finish"));
        assert_eq!(state_of(&layout::version_dir(home.path(), "1.0.0")), InstallState::Missing);
        drop(held);
        let outcome = install_with(&mut RealOps, home.path(), "1.0.0", &options, &log, &mut payload).unwrap();
        assert_eq!(outcome.status, InstallStatus::Installed);
    }

    /// A stand-in Calamari executable named `calamari`.
    pub(crate) fn fake_calamari(dir: &Path) -> CalamariExecutable {
        let path = dir.join("calamari");
        std::fs::write(&path, b"#!/bin/sh\necho calamari\n").unwrap();
        CalamariExecutable::at(path).unwrap()
    }

    #[test]
    fn only_an_executable_named_calamari_is_installed() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("my-agent");
        std::fs::write(&other, b"x").unwrap();
        let err = CalamariExecutable::at(&other).unwrap_err();
        assert!(matches!(err, Error::NotCalamari { .. }), "{err}");
        assert!(err.to_string().contains("my-agent"), "{err}");
        // The test binary itself is not Calamari either.
        assert!(matches!(CalamariExecutable::running().unwrap_err(), Error::NotCalamari { .. }));
    }

    #[test]
    fn an_executable_installs_and_matches_its_manifest() {
        let home = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        let (log, out, _) = Log::capture();
        let outcome =
            install_executable(home.path(), &fake_calamari(bin.path()), &InstallOptions::default(), &log).unwrap();
        assert_eq!(outcome.status, InstallStatus::Installed);
        assert!(out.contents().contains("is installed at"));
        let manifest = super::super::verify_install(home.path(), crate::VERSION).unwrap();
        assert_eq!(manifest.files[0].path, BINARY_NAME);
        assert!(manifest.files[0].executable);
    }
}
