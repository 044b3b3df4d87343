//! `calamari transfer-package`: copy the current deployment's package file to
//! `Octopus.Action.Package.TransferPath` (reference `TransferPackageCommand.cs`). The work
//! lives in `calamari::journal::transfer`.

use crate::cli::Context;

/// Options of `transfer-package` (none: everything comes from variables).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn exec(_args: Args, ctx: &Context) -> calamari::Result<i32> {
    let mut variables = ctx.variables()?;
    calamari::journal::transfer::transfer_package(&mut variables, &ctx.log)?;
    Ok(0)
}
