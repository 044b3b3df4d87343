//! `calamari transfer-package`.

use crate::cli::Context;

/// Options of `transfer-package`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn exec(_args: Args, _ctx: &Context) -> calamari::Result<i32> {
    Err(calamari::Error::command("transfer-package is not implemented yet"))
}
