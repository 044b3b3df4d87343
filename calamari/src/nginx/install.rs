//! Checking for nginx, and putting a site's files in place without ever leaving nginx with
//! a configuration it rejects.
//!
//! The order, and why:
//! 1. The files are built in a private temporary directory.
//! 2. **A staged view is tested before anything is replaced**: a copy of the configurations
//!    directory with the new files in it (and of each certificate directory) is
//!    bind-mounted over the real one in a private mount namespace that only the
//!    `nginx -t` process sees, so nginx tests exactly what it would load, through its own
//!    main configuration and includes, with every path unchanged. A rejection ends the step
//!    here: nothing was written where nginx reads. Where no mount namespace can be made
//!    (not root, or a container that forbids it) this test is skipped with a verbose note
//!    and step 4 is the test, as in the reference.
//! 3. Each file (and the site's `<name>.conf.d` directory, as a whole) is installed
//!    atomically: written beside its destination as `.<name>.calamari-new`, then swapped in
//!    with `renameat2(RENAME_EXCHANGE)` (two renames where the file system lacks it); what it
//!    replaced is kept beside it as `.<name>.calamari-previous` (hidden, so no `*.conf` or `*`
//!    include reads it).
//! 4. `nginx -t` on the installed configuration, then `nginx -s reload`, as the reference.
//!    When either fails, every file is put back from `.calamari-previous` (or removed, when
//!    there was none) before the step fails with nginx's own message: the running nginx was
//!    never asked to load the rejected configuration and keeps serving the previous one.
//!
//! When Calamari is not root, file operations and nginx run through `sudo -n` (`cp`, `mv`,
//! `rm`, `nginx`: the commands the reference's check asks `sudo` to allow).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Error;
use super::site::{self, Site};
use crate::fs::IoContext as _;
use crate::log::Log;
use crate::variables::VariableDictionary;

/// How files where nginx reads are changed, and how nginx is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Calamari runs as root: directly.
    Direct,
    /// Through `sudo -n`.
    Sudo,
}

impl Access {
    fn current() -> Access {
        if rustix::process::geteuid().is_root() { Access::Direct } else { Access::Sudo }
    }
}

/// The nginx to test and reload.
#[derive(Debug)]
struct Nginx {
    program: PathBuf,
    /// `nginx -c <file>`, when [`site::names::CONFIGURATION_FILE`] names one.
    configuration_file: Option<String>,
    access: Access,
}

impl Nginx {
    fn locate(variables: &VariableDictionary) -> Result<Nginx, Error> {
        let access = Access::current();
        let program = match access {
            Access::Direct => find_on_path("nginx").ok_or(Error::NginxNotFound)?,
            // Under sudo the PATH is sudo's own (`secure_path`): ask it, as the reference does.
            Access::Sudo => {
                let output = Command::new("sudo").args(["-n", "sh", "-c", "command -v nginx"]).output();
                match output {
                    Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
                    _ => return Err(Error::NginxNotFound),
                }
            }
        };
        let configuration_file = variables.get(site::names::CONFIGURATION_FILE)?.filter(|f| !f.trim().is_empty());
        Ok(Nginx { program, configuration_file, access })
    }

    /// `[sudo -n] nginx [-c file] <args>`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = match self.access {
            Access::Direct => Command::new(&self.program),
            Access::Sudo => {
                let mut c = Command::new("sudo");
                c.arg("-n").arg(&self.program);
                c
            }
        };
        if let Some(file) = &self.configuration_file {
            command.args(["-c", file]);
        }
        command.args(args);
        command
    }

    fn describe(&self, args: &[&str]) -> String {
        let sudo = if self.access == Access::Sudo { "sudo -n " } else { "" };
        let conf = self.configuration_file.as_ref().map(|f| format!(" -c {f}")).unwrap_or_default();
        format!("{sudo}{}{conf} {}", self.program.display(), args.join(" "))
    }

    /// Runs nginx with `args`; its output (both streams) logged verbose and returned.
    fn run(&self, args: &[&str], mut command: Command, log: &Log) -> Result<(bool, String), Error> {
        let described = self.describe(args);
        log.verbose(format!("Running {described}"));
        let output = command.output().map_err(|source| Error::Spawn { command: described, source })?;
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stdout));
        let text = text.trim_end().to_string();
        for line in text.lines() {
            log.verbose(line);
        }
        Ok((output.status.success(), text))
    }
}

/// The first executable `name` on the PATH.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        use std::os::unix::fs::PermissionsExt as _;
        candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The feature's checks before the pre-deploy scripts (reference
/// `Octopus.Features.Nginx_BeforePreDeploy.sh`): nginx exists and, when not root, `sudo -n`
/// allows `cp`, `mv`, `rm` and `nginx`.
pub(crate) fn check_prerequisites(variables: &VariableDictionary, log: &Log) -> Result<(), Error> {
    let nginx = Nginx::locate(variables)?;
    log.verbose(format!("Found nginx at {}", nginx.program.display()));
    if nginx.access == Access::Sudo {
        let nginx_path = nginx.program.display().to_string();
        let checks: [(&str, &[&str]); 4] =
            [("cp", &["--help"]), ("mv", &["--help"]), ("rm", &["--help"]), (&nginx_path, &["-h"])];
        let refused: Vec<String> = checks
            .iter()
            .filter(|(program, args)| {
                !Command::new("sudo").arg("-n").arg(program).args(*args).output().is_ok_and(|o| o.status.success())
            })
            .map(|(program, _)| {
                log.error(format!("User does not have 'sudo' access without password to command '{program}'"));
                (*program).to_string()
            })
            .collect();
        if !refused.is_empty() {
            return Err(Error::SudoDenied { commands: refused });
        }
    }
    Ok(())
}

/// One path where nginx reads, replaced as a whole.
#[derive(Debug)]
struct Replacement {
    /// The path nginx reads.
    live: PathBuf,
    /// What goes there (in the private temporary directory); `None` removes it.
    new: Option<PathBuf>,
    /// Whether something was there before.
    had_previous: bool,
}

impl Replacement {
    fn sibling(&self, suffix: &str) -> PathBuf {
        let name = self.live.file_name().expect("live paths end in a file name").to_string_lossy();
        self.live.with_file_name(format!(".{name}.{suffix}"))
    }
    fn staged(&self) -> PathBuf {
        self.sibling("calamari-new")
    }
    fn previous(&self) -> PathBuf {
        self.sibling("calamari-previous")
    }
}

/// The feature's work after the deploy scripts: build the site's files, test them, install
/// them and reload nginx (see the module documentation).
pub(crate) fn configure(variables: &VariableDictionary, log: &Log) -> Result<(), Error> {
    let site = Site::from_variables(variables)?;
    let nginx = Nginx::locate(variables)?;
    let conf_dir = PathBuf::from(&site.configurations_directory);
    if !conf_dir.is_dir() {
        return Err(Error::NoConfigurationsDirectory(conf_dir));
    }
    let ssl_dir = PathBuf::from(
        variables
            .get(site::names::CERTIFICATES_DIRECTORY)?
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| site::DEFAULT_CERTIFICATES_DIRECTORY.to_string()),
    );

    log.verbose("Building nginx configuration");
    let temp = tempfile::Builder::new()
        .prefix("calamari-nginx-")
        .tempdir()
        .at("create a temporary directory in", std::env::temp_dir())?;
    for file in site.files() {
        let path = temp.path().join(&file.relative_path);
        crate::fs::create_dir_all(path.parent().expect("site files sit in a directory"))?;
        crate::fs::write_atomic_with_mode(&path, &file.contents, file.private.then_some(0o600))?;
    }
    let replacements = replacements(&site, temp.path(), &conf_dir, &ssl_dir);

    let mut created_dirs = Vec::new();
    for certificate in &site.certificates {
        let dir = ssl_dir.join(&certificate.file_stem);
        if !dir.exists() {
            Files(nginx.access).create_dir_all(&dir)?;
            created_dirs.push(dir);
        }
    }
    let staged_test = test_staged_view(&nginx, &site, temp.path(), &conf_dir, &ssl_dir, &replacements, log);
    if let Err(e) = staged_test {
        for dir in created_dirs.iter().rev() {
            let _ = Files(nginx.access).remove_all(dir);
        }
        return Err(e);
    }

    let files = Files(nginx.access);
    let mut done: Vec<&Replacement> = Vec::new();
    for replacement in &replacements {
        log.info(format!("Installing {}", replacement.live.display()));
        if let Err(e) = files.replace(replacement) {
            restore(files, &done, log);
            return Err(e);
        }
        done.push(replacement);
    }

    log.info("Validating nginx configuration");
    let (ok, output) = nginx.run(&["-t"], nginx.command(&["-t"]), log)?;
    if !ok {
        restore(files, &done, log);
        return Err(Error::Rejected { command: nginx.describe(&["-t"]), output });
    }
    log.info("Reloading nginx configuration");
    let (ok, output) = nginx.run(&["-s", "reload"], nginx.command(&["-s", "reload"]), log)?;
    if !ok {
        restore(files, &done, log);
        return Err(Error::ReloadFailed { command: nginx.describe(&["-s", "reload"]), output });
    }
    log.info(format!(
        "nginx now serves {} (the previous files are kept beside it as .*.calamari-previous)",
        conf_dir.join(format!("{}.conf", site.name)).display()
    ));
    Ok(())
}

/// What the site replaces: its certificates, its locations directory (removed when the
/// site has no additional locations now), its server file last.
fn replacements(site: &Site, built: &Path, conf_dir: &Path, ssl_dir: &Path) -> Vec<Replacement> {
    let mut out = Vec::new();
    let mut push = |live: PathBuf, new: Option<PathBuf>| {
        let had_previous = live.symlink_metadata().is_ok();
        if new.is_some() || had_previous {
            out.push(Replacement { live, new, had_previous });
        }
    };
    for certificate in &site.certificates {
        for ext in ["crt", "key"] {
            let name = format!("{}/{}.{ext}", certificate.file_stem, certificate.file_stem);
            push(ssl_dir.join(&name), Some(built.join("ssl").join(&name)));
        }
    }
    let locations = format!("{}.conf.d", site.name);
    let built_locations = built.join("conf").join(&locations);
    push(conf_dir.join(&locations), built_locations.is_dir().then_some(built_locations));
    let server = format!("{}.conf", site.name);
    push(conf_dir.join(&server), Some(built.join("conf").join(server)));
    out
}

/// Puts back what `done` replaced, newest first; a failure is logged (the step is failing
/// already) and the rest are still tried.
fn restore(files: Files, done: &[&Replacement], log: &Log) {
    for replacement in done.iter().rev() {
        match files.restore(replacement) {
            Ok(()) => log.info(format!("Put back the previous {}", replacement.live.display())),
            Err(e) => log.error(format!("Could not put back the previous {}: {e}", replacement.live.display())),
        }
    }
}

/// Step 2 of the module documentation: `nginx -t` on a view of the configuration with the
/// new files in it, in a private mount namespace. `Ok` when it passed or could not be run
/// (then the installed configuration is tested instead).
fn test_staged_view(
    nginx: &Nginx,
    site: &Site,
    built: &Path,
    conf_dir: &Path,
    ssl_dir: &Path,
    replacements: &[Replacement],
    log: &Log,
) -> Result<(), Error> {
    if nginx.access != Access::Direct {
        log.verbose("Not root: the new configuration is tested once installed, and put back if nginx rejects it");
        return Ok(());
    }
    let view = built.join("view");
    let mut binds = Vec::new();
    let conf_view = view.join("conf");
    copy_tree(conf_dir, &conf_view)?;
    binds.push((conf_view.clone(), conf_dir.to_path_buf()));
    for certificate in &site.certificates {
        let live = ssl_dir.join(&certificate.file_stem);
        let cert_view = view.join("ssl").join(&certificate.file_stem);
        copy_tree(&live, &cert_view)?;
        binds.push((cert_view, live));
    }
    for replacement in replacements {
        let (root, live_root) = binds
            .iter()
            .find(|(_, live)| replacement.live.starts_with(live))
            .expect("every replacement sits in the configurations or a certificate directory");
        let in_view = root.join(replacement.live.strip_prefix(live_root).expect("checked by starts_with"));
        remove_path(&in_view)?;
        if let Some(new) = &replacement.new {
            copy_tree(new, &in_view)?;
        }
    }
    let mut command = nginx.command(&["-t"]);
    let binds = binds.iter().map(|(from, to)| Ok((c_path(from)?, c_path(to)?))).collect::<Result<Vec<_>, Error>>()?;
    // SAFETY: the closure runs in the child between fork and exec; it only makes system
    // calls on memory prepared before the fork (no allocation, no locks).
    unsafe {
        command.pre_exec(move || {
            rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)?;
            rustix::mount::mount_change(
                c"/",
                rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
            )?;
            for (from, to) in &binds {
                rustix::mount::mount_bind(from.as_c_str(), to.as_c_str())?;
            }
            Ok(())
        });
    }
    log.info(format!("Testing the new configuration of {} before installing it", site.name));
    match nginx.run(&["-t"], command, log) {
        Ok((true, _)) => Ok(()),
        Ok((false, output)) => {
            Err(Error::Rejected { command: format!("{} (on a staged copy)", nginx.describe(&["-t"])), output })
        }
        Err(Error::Spawn { source, .. }) => {
            log.verbose(format!(
                "Could not test the new configuration in a private mount namespace ({source}): it is tested once installed, and put back if nginx rejects it"
            ));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn c_path(path: &Path) -> Result<CString, Error> {
    Ok(CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
        .at("mount", path)?)
}

/// Copies a file or a directory tree (files, directories, symbolic links; modes kept). A
/// missing `from` copies nothing.
fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    if from.symlink_metadata().is_err() {
        return Ok(());
    }
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(from).to_path_buf();
            let source = e.into_io_error().unwrap_or_else(|| std::io::Error::other("a symbolic link loop"));
            crate::fs::IoError { op: "copy", path, source }
        })?;
        let relative = entry.path().strip_prefix(from).expect("walkdir yields paths under its root");
        let dest = if relative.as_os_str().is_empty() { to.to_path_buf() } else { to.join(relative) };
        let kind = entry.file_type();
        if kind.is_dir() {
            crate::fs::create_dir_all(&dest)?;
        } else if kind.is_symlink() {
            crate::fs::symlink(crate::fs::read_link(entry.path())?, &dest)?;
        } else {
            if let Some(parent) = dest.parent() {
                crate::fs::create_dir_all(parent)?;
            }
            crate::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// Removes a file, link or directory tree; a missing path is fine.
fn remove_path(path: &Path) -> Result<(), Error> {
    match path.symlink_metadata() {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => Ok(crate::fs::remove_dir_all(path)?),
        Ok(_) => Ok(crate::fs::remove_file(path)?),
    }
}

/// File operations where nginx reads, directly or through `sudo -n`.
#[derive(Debug, Clone, Copy)]
struct Files(Access);

impl Files {
    fn sudo(args: &[&std::ffi::OsStr]) -> Result<(), Error> {
        let command = format!("sudo -n {}", args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
        let output = Command::new("sudo")
            .arg("-n")
            .args(args)
            .output()
            .map_err(|source| Error::Spawn { command: command.clone(), source })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::SudoCommand { command, output: String::from_utf8_lossy(&output.stderr).trim().to_string() })
        }
    }

    fn create_dir_all(self, dir: &Path) -> Result<(), Error> {
        match self.0 {
            Access::Direct => Ok(crate::fs::create_dir_all(dir)?),
            Access::Sudo => Files::sudo(&["mkdir".as_ref(), "-p".as_ref(), dir.as_os_str()]),
        }
    }

    fn remove_all(self, path: &Path) -> Result<(), Error> {
        match self.0 {
            Access::Direct => remove_path(path),
            Access::Sudo => Files::sudo(&["rm".as_ref(), "-rf".as_ref(), path.as_os_str()]),
        }
    }

    fn copy(self, from: &Path, to: &Path) -> Result<(), Error> {
        match self.0 {
            Access::Direct => copy_tree(from, to),
            Access::Sudo => Files::sudo(&["cp".as_ref(), "-R".as_ref(), from.as_os_str(), to.as_os_str()]),
        }
    }

    fn rename(self, from: &Path, to: &Path) -> Result<(), Error> {
        match self.0 {
            Access::Direct => Ok(crate::fs::rename(from, to)?),
            Access::Sudo => Files::sudo(&["mv".as_ref(), "-T".as_ref(), from.as_os_str(), to.as_os_str()]),
        }
    }

    /// Swaps `a` and `b` in one step where the file system can (both exist).
    fn exchange(self, a: &Path, b: &Path) -> Result<(), Error> {
        if self.0 == Access::Direct {
            let swapped =
                rustix::fs::renameat_with(rustix::fs::CWD, a, rustix::fs::CWD, b, rustix::fs::RenameFlags::EXCHANGE);
            if swapped.is_ok() {
                return Ok(());
            }
        }
        let aside = a.with_file_name(format!(".{}.calamari-swap", a.file_name().unwrap_or_default().to_string_lossy()));
        self.rename(a, &aside)?;
        self.rename(b, a)?;
        self.rename(&aside, b)
    }

    /// Installs `r.new` at `r.live`, keeping what was there as `r.previous()`.
    fn replace(self, r: &Replacement) -> Result<(), Error> {
        let (staged, previous) = (r.staged(), r.previous());
        self.remove_all(&staged)?;
        if let Some(new) = &r.new {
            self.copy(new, &staged)?;
        }
        if !r.had_previous {
            return self.rename(&staged, &r.live);
        }
        self.remove_all(&previous)?;
        match &r.new {
            Some(_) => {
                self.exchange(&staged, &r.live)?;
                self.rename(&staged, &previous)
            }
            None => self.rename(&r.live, &previous),
        }
    }

    /// Undoes [`Files::replace`].
    fn restore(self, r: &Replacement) -> Result<(), Error> {
        if !r.had_previous {
            return self.remove_all(&r.live);
        }
        let previous = r.previous();
        if r.new.is_some() {
            self.exchange(&previous, &r.live)?;
            self.remove_all(&previous)
        } else {
            self.rename(&previous, &r.live)
        }
    }
}
