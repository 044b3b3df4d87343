//! `calamari clean-packages`: apply the machine package cache retention strategy
//! (`MachinePackageCacheRetentionStrategy`) to `$TentacleHome/Files` (reference
//! `CleanPackagesCommand`).

use calamari::Outcome;

use crate::context::Context;

/// Options of `clean-packages` (none of its own).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn exec(_args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    calamari::clean_packages(&variables, &ctx.log)?;
    Ok(Outcome::Success)
}
