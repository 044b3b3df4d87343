//! The "Deploy to NGINX" feature (`Octopus.Features.Nginx`): the site's configuration
//! files built from the step's variables ([`site`]), checked with `nginx -t` before they
//! replace anything, installed atomically with the previous files kept, and nginx reloaded
//! ([`install`]); a rejected configuration or a failed reload puts the previous files back.
//!
//! The reference does this in two embedded bash scripts around a feature class: before the
//! pre-deploy scripts it checks that `nginx` exists and that `sudo -n` allows `cp`, `mv`,
//! `rm` and `nginx`; after the deploy scripts it copies the new files over the old ones and
//! only then runs `nginx -t` and `nginx -s reload`, so a rejected configuration stays
//! installed and breaks the next reload or restart. Here the same checks run (with the
//! reference's messages), without `sudo` when Calamari runs as root, and the order is:
//! build, test a staged view, install, test, reload (see [`install`]).

pub(crate) mod install;
pub(crate) mod site;

use std::path::PathBuf;

pub(crate) use install::{check_prerequisites, configure};

/// What can go wrong configuring nginx. Every variant names the variable, file or command
/// at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No location with the path `/` or `= /`.
    #[error(
        "The nginx step needs a root location: {} must hold a location whose path is '/' or '= /'",
        site::names::LOCATIONS
    )]
    MissingRootLocation,
    /// A variable holding JSON that cannot be used.
    #[error("The nginx step's {variable} cannot be used: {reason}")]
    BadJson {
        /// The variable.
        variable: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Neither the config name nor the package id gives a file name.
    #[error(
        "The nginx configuration needs a file name: {} is empty and {variable} is '{found}'",
        site::names::CONFIG_NAME
    )]
    NoConfigName {
        /// What the variable held.
        found: String,
        /// The variable the name came from.
        variable: &'static str,
    },
    /// A binding's certificate variable lacks a part.
    #[error("The https binding's certificate variable '{variable}' has no value for {part}")]
    MissingCertificate {
        /// The certificate variable.
        variable: String,
        /// The missing part (`<variable>.CertificatePem`...).
        part: String,
    },
    /// An https binding with neither certificate files nor a certificate variable.
    #[error(
        "The https binding {binding} in {} has neither a certificate location nor a certificate variable",
        site::names::BINDINGS
    )]
    HttpsBindingWithoutCertificate {
        /// The binding (`https *:443`).
        binding: String,
    },
    /// `nginx` cannot be found (reference message).
    #[error(
        "The executable 'nginx' does not exist, or cannot be located using the PATH in\nthe 'sudo' environment, or the user does not have the required 'sudo' access\nwithout a password.\nFor more on installing nginx, see https://g.octopushq.com/NginxInstall.\nFor more on sudo settings see https://g.octopushq.com/NginxUserPermissions,\nand the 'secure_path' and 'NOPASSWD' options in 'man sudoers'."
    )]
    NginxNotFound,
    /// `sudo -n` refuses commands the feature needs (reference message).
    #[error(
        "User does not have the required 'sudo' access without password (refused: {}).\nSee https://g.octopushq.com/NginxUserPermissions from more information",
        .commands.join(", ")
    )]
    SudoDenied {
        /// The commands refused.
        commands: Vec<String>,
    },
    /// The configurations directory does not exist.
    #[error("The nginx configurations directory '{}' ({}) does not exist", .0.display(), site::names::CONFIGURATIONS_DIRECTORY)]
    NoConfigurationsDirectory(PathBuf),
    /// nginx rejected the new configuration; nothing was changed.
    #[error(
        "nginx rejected the new configuration ({command}); the previous configuration was left in place and keeps serving:\n{output}"
    )]
    Rejected {
        /// The command that failed.
        command: String,
        /// nginx's own output.
        output: String,
    },
    /// `nginx -s reload` failed; the previous files were put back.
    #[error(
        "nginx could not reload its configuration ({command}); the previous configuration files were put back:\n{output}"
    )]
    ReloadFailed {
        /// The command that failed.
        command: String,
        /// nginx's own output.
        output: String,
    },
    /// A command could not be started.
    #[error("Could not run '{command}': {source}")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A `sudo -n` file operation failed.
    #[error("'{command}' failed: {output}")]
    SudoCommand {
        /// The command.
        command: String,
        /// Its output.
        output: String,
    },
    /// A variable could not be evaluated.
    #[error(transparent)]
    Variables(#[from] crate::variables::Error),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
}
