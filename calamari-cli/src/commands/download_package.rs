//! `calamari download-package`: fetch a package from a NuGet, Maven, Helm, npm, PyPI or
//! plain HTTP feed into the package cache, `$TentacleHome/Files/<feedId>`, and report it
//! as `StagedPackage.*` output variables.

use std::path::PathBuf;

use calamari::Outcome;
use calamari::{DownloadPackageRequest, download_package_and_register, resolve_password};

use crate::context::Context;

/// Options of `download-package`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The package id (`group:artifact` for Maven).
    #[arg(long = "packageId", value_name = "ID")]
    package_id: Option<String>,
    /// The package version.
    #[arg(long = "packageVersion", value_name = "VERSION")]
    package_version: Option<String>,
    /// Version format: Semver, Maven, Octopus, Lexicographic, Docker [default: Semver]
    #[arg(long = "packageVersionFormat", value_name = "FORMAT")]
    package_version_format: Option<String>,
    /// The feed's id: the package lands in $TentacleHome/Files/<feedId>.
    #[arg(long = "feedId", value_name = "ID")]
    feed_id: Option<String>,
    /// The feed's URL (NuGet: the v3 service index; Http: the file, {packageId} and
    /// {packageVersion} replaced).
    #[arg(long = "feedUri", value_name = "URL")]
    feed_uri: Option<String>,
    /// NuGet, Maven, Helm, Npm, PyPi or Http [default: NuGet]
    #[arg(long = "feedType", value_name = "TYPE")]
    feed_type: Option<String>,
    /// Username for an authenticated feed (basic authentication).
    #[arg(long = "feedUsername", value_name = "USER")]
    feed_username: Option<String>,
    /// Password for an authenticated feed. Visible to other users in the process list:
    /// prefer --feedPasswordFile.
    #[arg(long = "feedPassword", value_name = "PASSWORD")]
    feed_password: Option<String>,
    /// Read the feed password from this file ("-" for standard input).
    #[arg(long = "feedPasswordFile", value_name = "PATH")]
    feed_password_file: Option<PathBuf>,
    /// How many times to try in all [default: 5]
    #[arg(long = "attempts", value_name = "N")]
    attempts: Option<String>,
    /// Linear backoff: the n-th retry waits n times this many seconds [default: 10]
    #[arg(long = "attemptBackoffSeconds", value_name = "SECONDS")]
    attempt_backoff_seconds: Option<String>,
    /// Download even when the package cache already has the package.
    #[arg(long = "forcePackageDownload")]
    force_package_download: bool,
}

impl Args {
    fn request(self) -> calamari::Result<DownloadPackageRequest> {
        let feed_password =
            resolve_password(self.feed_password.as_deref(), self.feed_password_file.as_deref(), "--feedPasswordFile")?;
        Ok(DownloadPackageRequest {
            package_id: self.package_id,
            package_version: self.package_version,
            package_version_format: self.package_version_format,
            feed_id: self.feed_id,
            feed_uri: self.feed_uri,
            feed_type: self.feed_type,
            feed_username: self.feed_username,
            feed_password,
            attempts: self.attempts,
            attempt_backoff_seconds: self.attempt_backoff_seconds,
            force_package_download: self.force_package_download,
        })
    }
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    download_package_and_register(&args.request()?, &variables, &ctx.environment, &ctx.log)
}

/// Options of `download-and-register-package`: those of `download-package`, and the task.
#[derive(Debug, clap::Args)]
pub(crate) struct AndRegisterArgs {
    #[command(flatten)]
    download: Args,
    /// The server task the package is used by (its lock is held until
    /// `release-package-lock --taskId` releases it).
    #[arg(long = "taskId", value_name = "ID")]
    task_id: Option<String>,
}

pub(crate) fn exec_and_register(args: AndRegisterArgs, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    calamari::download_and_register_package(
        &args.download.request()?,
        args.task_id.as_deref(),
        &variables,
        &ctx.environment,
        &ctx.log,
    )
}
