//! `calamari extract-package`: extract a package, to `--destination` or to the staging
//! directory the variables choose, and report where as output variables.

use std::path::PathBuf;

use calamari::Outcome;
use calamari::{ExtractPackageRequest, extract_package};

use crate::context::Context;

/// Options of `extract-package`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The package file.
    #[arg(long = "package", value_name = "FILE")]
    package: PathBuf,
    /// Extract here (must not exist; its parent is created) instead of the staging
    /// directory described below.
    #[arg(long = "destination", value_name = "DIR")]
    destination: Option<PathBuf>,
    /// Expected SHA-1 of the package; a mismatch fails before anything is written.
    #[arg(long = "packageHash", value_name = "SHA1")]
    package_hash: Option<String>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    crate::context::check_package_option(&args.package, ctx)?;
    let variables = ctx.variables()?;
    let request = ExtractPackageRequest {
        package: args.package,
        destination: args.destination,
        package_hash: args.package_hash,
        working_directory: ctx.environment.working_directory()?.to_path_buf(),
    };
    extract_package(&request, &variables, &ctx.log)?;
    Ok(Outcome::Success)
}
