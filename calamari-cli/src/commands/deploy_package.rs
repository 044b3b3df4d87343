//! `calamari deploy-package --package=FILE`: the whole convention pipeline.

use calamari::Outcome;
use std::path::PathBuf;

use crate::cli::Context;

/// Options of `deploy-package`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The package file to deploy.
    #[arg(long = "package", value_name = "FILE")]
    package: PathBuf,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    crate::cli::check_package_option(&args.package, ctx)?;
    let mut variables = ctx.variables()?;
    calamari::deploy_package(&args.package, &mut variables, &ctx.log)?;
    Ok(Outcome::Success)
}
