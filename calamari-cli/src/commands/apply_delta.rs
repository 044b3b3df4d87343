//! `calamari apply-delta`: rebuild a new package from a basis package and an Octodiff
//! delta into the package cache, `$TentacleHome/Files`, and report it with a
//! `deltaVerification` service message.

use calamari::{ApplyDeltaRequest, Outcome, apply_delta};

use crate::context::Context;

/// Options of `apply-delta`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The package the delta was made for.
    #[arg(long = "basisFileName", value_name = "FILE")]
    basis_file_name: Option<String>,
    /// The SHA-1 of the basis package.
    #[arg(long = "fileHash", value_name = "SHA1")]
    file_hash: Option<String>,
    /// The delta (.octodelta) to apply.
    #[arg(long = "deltaFileName", value_name = "FILE")]
    delta_file_name: Option<String>,
    /// The new package's file name (Id.Version.ext); the result goes to the package cache.
    #[arg(long = "newFileName", value_name = "NAME")]
    new_file_name: Option<String>,
    /// Report progress while applying.
    #[arg(long = "progress")]
    progress: bool,
    /// Do not check the result's SHA-1 against the one the delta was made for.
    #[arg(long = "skipVerification")]
    skip_verification: bool,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let _variables = ctx.variables()?;
    let request = ApplyDeltaRequest {
        basis_file_name: args.basis_file_name,
        file_hash: args.file_hash,
        delta_file_name: args.delta_file_name,
        new_file_name: args.new_file_name,
        progress: args.progress,
        skip_verification: args.skip_verification,
    };
    apply_delta(&request, &ctx.environment, &ctx.log)
}
