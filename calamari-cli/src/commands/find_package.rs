//! `calamari find-package`: look for a package (or its nearest earlier versions) in the
//! agent's package cache, `$TentacleHome/Files`, and report it with `foundPackage`
//! service messages.

use calamari::Outcome;
use calamari::{FindPackageRequest, find_package_and_register};

use crate::context::Context;

/// Options of `find-package`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The package id.
    #[arg(long = "packageId", value_name = "ID")]
    package_id: Option<String>,
    /// The package version.
    #[arg(long = "packageVersion", value_name = "VERSION")]
    package_version: Option<String>,
    /// The package's SHA-1.
    #[arg(long = "packageHash", value_name = "SHA1")]
    package_hash: Option<String>,
    /// Version format: Semver, Maven, Docker, Octopus, Lexicographic [default: Semver]
    #[arg(long = "packageVersionFormat", value_name = "FORMAT", default_value = "Semver")]
    package_version_format: String,
    /// Only report an exact match, never earlier versions.
    #[arg(long = "exactMatch", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    exact_match: Option<String>,
}

impl Args {
    fn request(self) -> FindPackageRequest {
        FindPackageRequest {
            package_id: self.package_id,
            package_version: self.package_version,
            package_hash: self.package_hash,
            package_version_format: self.package_version_format,
            exact_match: self.exact_match,
        }
    }
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    find_package_and_register(&args.request(), &variables, &ctx.environment, &ctx.log)
}

/// Options of `find-and-register-package`: those of `find-package`, and the task.
#[derive(Debug, clap::Args)]
pub(crate) struct AndRegisterArgs {
    #[command(flatten)]
    find: Args,
    /// The server task the package is used by (its lock is held until
    /// `release-package-lock --taskId` releases it).
    #[arg(long = "taskId", value_name = "ID")]
    task_id: Option<String>,
}

pub(crate) fn exec_and_register(args: AndRegisterArgs, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    calamari::find_and_register_package(
        &args.find.request(),
        args.task_id.as_deref(),
        &variables,
        &ctx.environment,
        &ctx.log,
    )
}
