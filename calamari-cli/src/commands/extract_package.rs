//! `calamari extract-package`.

use crate::cli::Context;

/// Options of `extract-package`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn exec(_args: Args, _ctx: &Context) -> calamari::Result<i32> {
    Err(calamari::Error::command("extract-package is not implemented yet"))
}
