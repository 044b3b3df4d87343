//! `calamari transfer-package`: copy the current deployment's package file to
//! `Octopus.Action.Package.TransferPath` (reference `TransferPackageCommand.cs`). The work
//! lives in `calamari::transfer_package`.

use crate::context::Context;
use calamari::Outcome;

/// Options of `transfer-package` (none: everything comes from variables).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn exec(_args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let mut variables = ctx.variables()?;
    calamari::transfer_package(&mut variables, &ctx.log)?;
    Ok(Outcome::Success)
}
