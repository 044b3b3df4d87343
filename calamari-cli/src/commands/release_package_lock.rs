//! `calamari release-package-lock`: release every package lock a task holds, then expire
//! locks older than `Octopus.Calamari.PackageRetentionLockExpiration` (reference
//! `ReleasePackageLockCommand`).

use calamari::Outcome;
use calamari::{ReleasePackageLockRequest, release_package_lock};

use crate::context::Context;

/// Options of `release-package-lock`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The task whose locks are released.
    #[arg(long = "taskId", value_name = "ID")]
    task_id: Option<String>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    release_package_lock(&ReleasePackageLockRequest { task_id: args.task_id }, &variables, &ctx.log)
}
