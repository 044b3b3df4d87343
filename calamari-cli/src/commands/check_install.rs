//! `calamari check-install`.

use crate::cli::Context;

/// Options of `check-install`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn exec(_args: Args, _ctx: &Context) -> calamari::Result<i32> {
    Err(calamari::Error::command("check-install is not implemented yet"))
}
