//! `calamari deploy-package --package=FILE`: the whole convention pipeline.

use calamari::Outcome;
use std::path::PathBuf;

use crate::context::Context;

/// Options of `deploy-package`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The package file to deploy.
    #[arg(long = "package", value_name = "FILE")]
    package: PathBuf,
    /// Show everything the deployment would do (directory, conventions, scripts, the files it
    /// would change as unified diffs, the release switch and health check) and change nothing.
    #[arg(long = "plan")]
    plan: bool,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    crate::context::check_package_option(&args.package, ctx)?;
    let mut variables = ctx.variables()?;
    if args.plan {
        calamari::plan_deploy_package(&args.package, &mut variables, &ctx.log)?;
        return Ok(Outcome::Success);
    }
    calamari::deploy_package(&args.package, &mut variables, &ctx.log)?;
    Ok(Outcome::Success)
}
