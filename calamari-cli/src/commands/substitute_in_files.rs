//! `calamari substitute-in-files`.

use crate::cli::Context;

/// Options of `substitute-in-files`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn exec(_args: Args, _ctx: &Context) -> calamari::Result<i32> {
    Err(calamari::Error::command("substitute-in-files is not implemented yet"))
}
