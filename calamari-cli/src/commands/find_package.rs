//! `calamari find-package`: look for a package (or its nearest earlier versions) in the
//! agent's package cache, `$TentacleHome/Files`, and report it with `foundPackage`
//! service messages.

use calamari::Outcome;
use calamari::{FindPackageRequest, find_package_and_register};

use crate::cli::Context;

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
    /// Version format: Semver (default), Maven, Docker, Octopus, Lexicographic.
    #[arg(long = "packageVersionFormat", value_name = "FORMAT", default_value = "Semver")]
    package_version_format: String,
    /// Only report an exact match, never earlier versions.
    #[arg(long = "exactMatch", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    exact_match: Option<String>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    let request = FindPackageRequest {
        package_id: args.package_id,
        package_version: args.package_version,
        package_hash: args.package_hash,
        package_version_format: args.package_version_format,
        exact_match: args.exact_match,
    };
    find_package_and_register(&request, &variables, &ctx.environment, &ctx.log)
}
