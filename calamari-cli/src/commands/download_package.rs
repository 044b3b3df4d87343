//! `calamari download-package`: fetch a package from a NuGet, Maven, Helm, npm, PyPI or
//! plain HTTP feed into the package cache, `$TentacleHome/Files/<feedId>`, and report it
//! as `StagedPackage.*` output variables.

use std::path::PathBuf;

use calamari::Outcome;
use calamari::{DownloadPackageRequest, download_package_and_register, resolve_password};

use crate::cli::Context;

/// Options of `download-package`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The package id (`group:artifact` for Maven).
    #[arg(long = "packageId", value_name = "ID")]
    package_id: Option<String>,
    /// The package version.
    #[arg(long = "packageVersion", value_name = "VERSION")]
    package_version: Option<String>,
    /// Version format: Semver (default), Maven, Octopus, Lexicographic, Docker.
    #[arg(long = "packageVersionFormat", value_name = "FORMAT")]
    package_version_format: Option<String>,
    /// The feed's id: the package lands in $TentacleHome/Files/<feedId>.
    #[arg(long = "feedId", value_name = "ID")]
    feed_id: Option<String>,
    /// The feed's URL (NuGet: the v3 service index; Http: the file, {packageId} and
    /// {packageVersion} replaced).
    #[arg(long = "feedUri", value_name = "URL")]
    feed_uri: Option<String>,
    /// NuGet (default), Maven, Helm, Npm, PyPi or Http.
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
    /// How many times to try in all (default 5).
    #[arg(long = "attempts", value_name = "N")]
    attempts: Option<String>,
    /// Linear backoff: the n-th retry waits n times this many seconds (default 10).
    #[arg(long = "attemptBackoffSeconds", value_name = "SECONDS")]
    attempt_backoff_seconds: Option<String>,
    /// Download even when the package cache already has the package.
    #[arg(long = "forcePackageDownload")]
    force_package_download: bool,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    let feed_password =
        resolve_password(args.feed_password.as_deref(), args.feed_password_file.as_deref(), "--feedPasswordFile")?;
    let request = DownloadPackageRequest {
        package_id: args.package_id,
        package_version: args.package_version,
        package_version_format: args.package_version_format,
        feed_id: args.feed_id,
        feed_uri: args.feed_uri,
        feed_type: args.feed_type,
        feed_username: args.feed_username,
        feed_password,
        attempts: args.attempts,
        attempt_backoff_seconds: args.attempt_backoff_seconds,
        force_package_download: args.force_package_download,
    };
    download_package_and_register(&request, &variables, &ctx.environment, &ctx.log)
}
